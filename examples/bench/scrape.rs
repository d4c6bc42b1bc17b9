//! Scrape benchmarks: `/metrics` as Prometheus asks for it (OpenMetrics,
//! gzip, one connection) and as load tools do (64 connections), against
//! nginx serving the identical bytes; a store that changes under scraping
//! (polls spread over the interval), with CPU per scrape set against zlib
//! level 1 over the same bytes; resident memory against one text
//! exposition; and a real Prometheus scraping 10,000 functions.
//!
//! Every process started here (exporter, nginx, prometheus) is stopped
//! before the subcommand returns, its whole process group for nginx.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use super::support::Res;
use super::{Exporter, PROJECT, rss, rss_parts, wait_ready};
use functiongraph_exporter::simulator::{Activity, Simulator};

/// What Prometheus 2.x sends (its default scrape protocols).
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// wrk's timeout: far above the slowest response seen, so that p99 is a
/// latency and not the timeout.
const WRK_TIMEOUT: &str = "60s";

/// `uptime`'s load averages, recorded with every figure (the machine is
/// shared).
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A simulator with `functions` functions, one in four of them with
/// asynchronous traffic when `traffic` (2 a minute, 4 % failing, 1 to 30 s
/// each), generated every second until `stop`, and an hour of it already
/// (the default `async_lookback`): what the exporter remembers of the
/// window is full from the first cycle, as after an hour of running.
async fn simulator(
    functions: usize,
    traffic: bool,
) -> Res<(
    Simulator,
    std::net::SocketAddr,
    tokio_util::sync::CancellationToken,
)> {
    let (sim, addr, stop) = super::simulator(functions).await?;
    if traffic {
        for i in (0..functions).step_by(4) {
            let mut a = Activity::steady("latest", 2.0, (1, 30));
            a.fail_ratio = 0.04;
            sim.set_activity(PROJECT, "default", &format!("bench-{i:04}"), Some(a));
        }
        sim.backfill(Duration::from_secs(3600));
        let (s, t) = (sim.clone(), stop.clone());
        tokio::spawn(async move { s.run_activity(Duration::from_secs(1), t).await });
    }
    Ok((sim, addr, stop))
}

/// The exporter polling `functions` functions every `interval`, after its
/// first complete cycle.
async fn start_exporter(
    functions: usize,
    interval: &str,
    traffic: bool,
) -> Res<(Exporter, tokio_util::sync::CancellationToken)> {
    let (exporter, stop, _) = start_polled(functions, interval, traffic).await?;
    Ok((exporter, stop))
}

/// [`start_exporter`], with the simulator it polls (which counts the API
/// requests it answers).
async fn start_polled(
    functions: usize,
    interval: &str,
    traffic: bool,
) -> Res<(Exporter, tokio_util::sync::CancellationToken, Simulator)> {
    let (sim, addr, stop) = simulator(functions, traffic).await?;
    let exporter = Exporter::start(
        addr,
        functions,
        &format!("interval = \"{interval}\"\nconcurrency = 64\nmax_functions = 100000"),
    )?;
    wait_ready(&exporter.addr).await?;
    Ok((exporter, stop, sim))
}

/// A client that asks as Prometheus does and keeps the body compressed.
fn prometheus_client() -> Res<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("accept", PROMETHEUS_ACCEPT.parse()?);
    headers.insert("accept-encoding", "gzip".parse()?);
    Ok(reqwest::Client::builder()
        .no_gzip()
        .default_headers(headers)
        .build()?)
}

/// One scrape of `url` by [`prometheus_client`]: the content type, the
/// content encoding and the body as sent.
async fn scrape_as_prometheus(url: &str) -> Res<(String, String, bytes::Bytes)> {
    let r = prometheus_client()?.get(url).send().await?;
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, encoding) = (header("content-type"), header("content-encoding"));
    Ok((content_type, encoding, r.bytes().await?))
}

fn plain_client() -> Res<reqwest::Client> {
    Ok(reqwest::Client::builder().no_gzip().build()?)
}

/// The exporter's CPU time so far (user + system, all threads, also those
/// that exited), from /proc/PID/stat in clock ticks.
fn cpu_seconds(pid: u32) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').ok_or("no ) in stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the man page; `rest` starts at field 3.
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

/// The CPU time of the threads alive now, in nanoseconds (schedstat is
/// exact, where /proc/PID/stat counts 10 ms ticks).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// wrk's figures for one run.
#[derive(Debug, Default)]
struct Wrk {
    rps: f64,
    p50: String,
    p99: String,
    max: String,
    errors: String,
}

/// `RPS req/s p50 P50 p99 P99 max MAX ERRORS`, as the reports show it.
impl std::fmt::Display for Wrk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} req/s p50 {} p99 {} max {} {}",
            self.rps, self.p50, self.p99, self.max, self.errors
        )
    }
}

fn wrk(url: &str, connections: u32, prometheus: bool) -> Res<Wrk> {
    wrk_for(url, connections, prometheus, 10)
}

fn wrk_for(url: &str, connections: u32, prometheus: bool, seconds: u32) -> Res<Wrk> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        &format!("-t{}", connections.min(2)),
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        WRK_TIMEOUT,
        "--latency",
    ]);
    if prometheus {
        cmd.args(["-H", &format!("Accept: {PROMETHEUS_ACCEPT}")]);
        cmd.args(["-H", "Accept-Encoding: gzip"]);
    }
    let out = cmd.arg(url).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str, n: usize| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(n))
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Wrk {
        rps: text
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("no Requests/sec in wrk output:\n{text}"))?,
        p50: field("50%", 1),
        p99: field("99%", 1),
        max: field("Latency", 3),
        errors: text
            .lines()
            .filter(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// nginx serving files from a directory, in its own process group, which
/// is stopped as a whole on drop (the workers too). With `sendfile` (as
/// nginx is usually configured) a response's bytes go from the page cache
/// to the socket without being copied through the process; without it
/// nginx copies them as the exporter does.
struct Nginx {
    child: Child,
    url: String,
}

impl Nginx {
    async fn start(
        dir: &Path,
        gzip_static: bool,
        sendfile: bool,
        nopush: bool,
        content_type: &str,
    ) -> Res<Nginx> {
        let root = dir.join("www");
        let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
        let conf = dir.join(format!("nginx-{port}.conf"));
        let mut f = std::fs::File::create(&conf)?;
        write!(
            f,
            "daemon off; master_process on; worker_processes 2; pid {d}/nginx-{port}.pid; error_log stderr error;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; sendfile {sendfile}; tcp_nopush {nopush}; tcp_nodelay on; keepalive_requests 1000000;\n\
               types {{ }} default_type \"{content_type}\";\n\
               gzip_static {gz};\n\
               client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
               server {{ listen 127.0.0.1:{port}; root {}; }} }}\n",
            root.display(),
            d = dir.display(),
            gz = if gzip_static { "on" } else { "off" },
            sendfile = if sendfile { "on" } else { "off" },
            nopush = if nopush { "on" } else { "off" },
        )?;
        let child = Command::new("nginx")
            .args([
                "-c",
                &conf.display().to_string(),
                "-p",
                &dir.display().to_string(),
            ])
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let nginx = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}/metrics"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::get(&nginx.url).await.is_err() {
            if Instant::now() > deadline {
                return Err("nginx did not start".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let group = -(self.child.id() as i32);
        // SAFETY: signals to the process group this value started.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        // Workers leave after the master; the group is gone once none is left.
        while unsafe { libc::kill(group, 0) } == 0 {
            if Instant::now() > deadline {
                unsafe { libc::kill(group, libc::SIGKILL) };
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The files nginx serves: `metrics` and, for gzip_static, `metrics.gz`.
fn www(dir: &Path, plain: &[u8], gzipped: Option<&[u8]>) -> Res<()> {
    let root = dir.join("www");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("metrics"), plain)?;
    let gz = root.join("metrics.gz");
    let _ = std::fs::remove_file(&gz);
    if let Some(g) = gzipped {
        std::fs::write(gz, g)?;
    }
    Ok(())
}

fn gunzip(data: &[u8]) -> Res<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

/// The zlib level-1 reference, in Python (the C library): `level1(d, n)`
/// compresses `d` into one gzip member `n` times and gives the median CPU
/// seconds (`process_time`) and the compressed size. Both references
/// ([`zlib_level1`], [`ZlibBeside`]) measure with it.
const PY_LEVEL1: &str = "import sys,time,zlib\n\
    def level1(d,n):\n\
    \x20   t=[]\n\
    \x20   for _ in range(n):\n\
    \x20       s=time.process_time(); c=zlib.compressobj(1,zlib.DEFLATED,31); a=c.compress(d); b=c.flush(); t.append(time.process_time()-s)\n\
    \x20   return sorted(t)[n//2], len(a)+len(b)\n";

/// CPU seconds zlib (Python's, the C library) takes to compress `bytes`
/// at level 1, median of 5, and the size of its gzip output.
fn zlib_level1(dir: &Path, bytes: &[u8]) -> Res<(f64, usize)> {
    let file = dir.join("zlib-input");
    std::fs::write(&file, bytes)?;
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "{PY_LEVEL1}cpu,size=level1(open(sys.argv[1],'rb').read(),5)\nprint(cpu, size)"
        ))
        .arg(&file)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = text
        .split_once(' ')
        .and_then(|(cpu, size)| Some((cpu.parse().ok()?, size.trim().parse().ok()?)));
    Ok(parsed.ok_or_else(|| format!("python zlib: {text}"))?)
}

/// `scrape N`: an unchanged store (interval 1 h, after the first cycle).
/// Text 0.0.4 without compression, 64 connections, against nginx serving
/// the same bytes (the original rows); then Prometheus' headers, 64
/// connections and one, against nginx serving the identical OpenMetrics
/// bytes pre-gzipped (`gzip_static`).
pub async fn scrape(functions: usize) -> Res<()> {
    let (exporter, stop) = start_exporter(functions, "1h", false).await?;
    let dir = exporter.dir.path();
    let url = format!("http://{}/metrics", exporter.addr);
    let text = plain_client()?.get(&url).send().await?.bytes().await?;
    let rss_before = rss(exporter.pid())?;
    println!("load {}", load());
    let u = url.clone();
    let ours = tokio::task::spawn_blocking(move || wrk(&u, 64, false)).await??;
    let rss_after = rss(exporter.pid())?;
    www(dir, &text, None)?;
    let nginx = Nginx::start(
        dir,
        false,
        true,
        true,
        "text/plain; version=0.0.4; charset=utf-8",
    )
    .await?;
    let u = nginx.url.clone();
    let theirs = tokio::task::spawn_blocking(move || wrk(&u, 64, false)).await??;
    drop(nginx);
    println!(
        "scrape text | N={functions} body {} bytes | exporter {ours} | nginx {theirs} | ratio {:.3} | RSS {:.1} -> {:.1} MiB | load {}",
        text.len(),
        ours.rps / theirs.rps,
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
        load()
    );

    // Prometheus' headers. The gzip body nginx serves is the exporter's
    // own (so the bytes on the wire are the same size); its plain text is
    // the same OpenMetrics exposition. It is taken again after each of
    // the exporter's runs: a body sent often is compacted (see
    // `COMPACT_AFTER`), and nginx serves what the exporter served by then.
    let (content_type, encoding, first) = scrape_as_prometheus(&url).await?;
    if encoding != "gzip" || !content_type.starts_with("application/openmetrics-text") {
        return Err(format!("exporter answered {content_type:?} {encoding:?}").into());
    }
    www(dir, &gunzip(&first)?, Some(&first))?;
    // With tcp_nopush (TCP_CORK around sendfile, as nginx is usually
    // configured) and without: corked, some sizes of body wait 40 ms for
    // the client's delayed ACK on one connection (90 KB here), while large
    // ones are sent faster; the reference is whichever serves more.
    let nginx = Nginx::start(dir, true, true, true, &content_type).await?;
    let uncorked = Nginx::start(dir, true, true, false, &content_type).await?;
    // The same without sendfile: what serving costs when the bytes are
    // copied through the process, as the exporter's are.
    let copying = Nginx::start(dir, true, false, true, &content_type).await?;
    for connections in [1, 64] {
        println!("load {}", load());
        let u = url.clone();
        let ours = tokio::task::spawn_blocking(move || wrk(&u, connections, true)).await??;
        let (_, _, gz) = scrape_as_prometheus(&url).await?;
        let om = gunzip(&gz)?;
        www(dir, &om, Some(&gz))?;
        let u = nginx.url.clone();
        let corked = tokio::task::spawn_blocking(move || wrk(&u, connections, true)).await??;
        let u = uncorked.url.clone();
        let not_corked = tokio::task::spawn_blocking(move || wrk(&u, connections, true)).await??;
        let theirs = if corked.rps >= not_corked.rps {
            &corked
        } else {
            &not_corked
        };
        let u = copying.url.clone();
        let copied = tokio::task::spawn_blocking(move || wrk(&u, connections, true)).await??;
        println!(
            "scrape prometheus-headers | N={functions} c={connections} OpenMetrics {} bytes, gzip {} bytes (first served {} bytes) | exporter {ours} | nginx gzip_static {corked} | without tcp_nopush {not_corked} | ratio to the faster {:.3} | nginx gzip_static without sendfile {copied} | ratio {:.3} | RSS {:.1} MiB | load {}",
            om.len(),
            gz.len(),
            first.len(),
            ours.rps / theirs.rps,
            ours.rps / copied.rps,
            rss(exporter.pid())? as f64 / 1048576.0,
            load()
        );
    }
    drop(copying);
    drop(uncorked);
    drop(nginx);
    drop(exporter);
    stop.cancel();
    Ok(())
}

/// Builds of the exporter side by side, on an unchanged store of
/// `functions`, with Prometheus' headers on `connections` connections:
/// every build runs at once (idle but for what it is sent), beside nginx
/// gzip_static (corked) serving the first build's body, and each cycle
/// sends wrk to each of them for 2 s in turn (starting one further each
/// cycle), so that the machine's drift (often more than the difference
/// looked for) falls on all alike. Prints each build's requests a second
/// against nginx's: the ratio of the sums and the median of the cycles'
/// ratios, and each cycle's p99.
pub async fn ab(
    functions: usize,
    cycles: usize,
    connections: u32,
    binaries: Vec<std::path::PathBuf>,
) -> Res<()> {
    if cycles == 0 || binaries.is_empty() {
        return Err("ab: give at least one cycle and one build".into());
    }
    let set_binary = |b: Option<std::path::PathBuf>| {
        *super::support::BINARY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = b;
    };
    let mut targets = Vec::new();
    let mut running = Vec::new();
    for b in &binaries {
        set_binary(Some(b.clone()));
        let started = start_exporter(functions, "1h", false).await;
        set_binary(None);
        let (exporter, stop) = started?;
        let url = format!("http://{}/metrics", exporter.addr);
        // Past COMPACT_AFTER sends, and the compaction done.
        let u = url.clone();
        tokio::task::spawn_blocking(move || wrk_for(&u, 64, true, 2)).await??;
        targets.push((b.display().to_string(), url, vec![exporter.pid()]));
        running.push((exporter, stop));
    }
    let (content_type, _, gz) = scrape_as_prometheus(&targets[0].1).await?;
    let dir = tempfile::tempdir()?;
    www(dir.path(), &gunzip(&gz)?, Some(&gz))?;
    let nginx = Nginx::start(dir.path(), true, true, true, &content_type).await?;
    targets.push((
        "nginx".to_owned(),
        nginx.url.clone(),
        group(nginx.child.id())?,
    ));
    let n = targets.len();
    let mut rps = vec![Vec::new(); n];
    let mut p99 = vec![Vec::new(); n];
    // CPU nanoseconds and requests, summed over the cycles.
    let mut cpu = vec![(0u64, 0.0f64); n];
    for cycle in 0..cycles {
        for k in 0..n {
            let i = (k + cycle) % n;
            let (_, url, pids) = &targets[i];
            let u = url.clone();
            let before: u64 = pids.iter().map(|&p| cpu_ns(p)).sum();
            let r =
                tokio::task::spawn_blocking(move || wrk_for(&u, connections, true, 2)).await??;
            let after: u64 = pids.iter().map(|&p| cpu_ns(p)).sum();
            cpu[i].0 += after.saturating_sub(before);
            cpu[i].1 += r.rps * 2.0;
            rps[i].push(r.rps);
            p99[i].push(r.p99);
        }
    }
    let nginx_rps = &rps[n - 1];
    for (i, (name, _, _)) in targets.iter().enumerate() {
        let mut ratios: Vec<f64> = rps[i].iter().zip(nginx_rps).map(|(a, b)| a / b).collect();
        ratios.sort_by(f64::total_cmp);
        let total: f64 = rps[i].iter().sum::<f64>() / nginx_rps.iter().sum::<f64>();
        println!(
            "ab | {name} | mean {:.0} req/s | ratio of sums {total:.3} | median ratio {:.3} | min {:.3} max {:.3}",
            rps[i].iter().sum::<f64>() / rps[i].len() as f64,
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
        println!(
            "ab | {name} | CPU per request {:.1} us | p99 {}",
            cpu[i].0 as f64 / 1000.0 / cpu[i].1,
            p99[i].join(" ")
        );
    }
    drop(nginx);
    for (exporter, stop) in running {
        drop(exporter);
        stop.cancel();
    }
    Ok(())
}

/// The processes of a process group (nginx's master and workers).
fn group(pgid: u32) -> Res<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")?.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Field 5 of the man page, the third after the command.
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|g| g.parse::<u32>().ok());
        if pgrp == Some(pgid) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// One scrape as Prometheus makes it: latency to the last byte, the
/// exporter's CPU (alive threads) over it, and the compressed size.
async fn scrape_once(
    client: &reqwest::Client,
    url: &str,
    pid: u32,
) -> Res<(f64, f64, bytes::Bytes)> {
    let cpu = cpu_ns(pid);
    let started = Instant::now();
    let body = client.get(url).send().await?.bytes().await?;
    let latency = started.elapsed().as_secs_f64();
    let cpu = cpu_ns(pid).saturating_sub(cpu) as f64 / 1e9;
    if body.get(..2) != Some(&[0x1f, 0x8b][..]) {
        return Err("not a gzip body".into());
    }
    Ok((latency, cpu, body))
}

/// zlib level 1 over each scrape's own bytes, measured as the scrape
/// arrives: one Python process (the C library) takes each decompressed
/// body and answers the CPU its compression took (median of 3). Set
/// against the renderer's CPU over the same scrapes, it is a reference
/// taken at the same moments, which one measured after the phases is not
/// (the machine's speed drifts: the same 4.2 MB took 12.6 to 17.2 ms
/// minutes apart).
struct ZlibBeside {
    tx: std::sync::mpsc::Sender<bytes::Bytes>,
    worker: std::thread::JoinHandle<Res<Vec<f64>>>,
}

impl ZlibBeside {
    fn start() -> Res<Self> {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(format!(
                "{PY_LEVEL1}r=sys.stdin.buffer\n\
                 while True:\n\
                 \x20   h=r.read(8)\n\
                 \x20   if len(h)<8: break\n\
                 \x20   d=r.read(int.from_bytes(h,'little'))\n\
                 \x20   print(level1(d,3)[0], flush=True)"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (mut stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (i, o),
            _ => return Err("python3 without pipes".into()),
        };
        let (tx, rx) = std::sync::mpsc::channel::<bytes::Bytes>();
        let worker = std::thread::spawn(move || -> Res<Vec<f64>> {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let mut cpus = Vec::new();
            for gz in rx {
                let plain = gunzip(&gz)?;
                stdin.write_all(&(plain.len() as u64).to_le_bytes())?;
                stdin.write_all(&plain)?;
                stdin.flush()?;
                let line = lines.next().ok_or("python zlib ended")??;
                cpus.push(line.trim().parse::<f64>()?);
            }
            drop(stdin);
            child.wait()?;
            Ok(cpus)
        });
        Ok(Self { tx, worker })
    }

    /// The CPU seconds of each body sent, in the order they came.
    fn finish(self) -> Res<Vec<f64>> {
        drop(self.tx);
        self.worker.join().map_err(|_| "the zlib worker panicked")?
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Scrapers every `every` for `phase`, `scrapers` of them evenly offset;
/// returns latencies (the first scrape's apart, then the others) and CPU
/// per scrape, the exporter's CPU over the phase and its peak RSS (sampled
/// every 500 ms).
async fn scrape_phase(
    url: &str,
    pid: u32,
    scrapers: usize,
    every: Duration,
    phase: Duration,
    zlib: &ZlibBeside,
) -> Res<(f64, Vec<f64>, Vec<f64>, f64, u64)> {
    let cpu0 = cpu_seconds(pid)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..scrapers {
        let url = url.to_owned();
        let zlib = zlib.tx.clone();
        let offset = every.mul_f64(s as f64 / scrapers as f64);
        tasks.push(tokio::spawn(async move {
            let client = prometheus_client()?;
            let mut results = Vec::new();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if started.elapsed() >= phase {
                    return Ok::<_, Box<dyn std::error::Error + Send + Sync>>(results);
                }
                let (latency, cpu, body) = scrape_once(&client, &url, pid).await?;
                zlib.send(body)?;
                results.push((latency, cpu));
            }
        }));
    }
    let mut peak = 0;
    while started.elapsed() < phase {
        peak = peak.max(rss(pid)?);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut first = f64::NAN;
    let mut latencies = Vec::new();
    let mut cpus = Vec::new();
    for t in tasks {
        for (l, c) in t.await?? {
            // The first scraper's first scrape is the phase's first.
            if first.is_nan() {
                first = l;
            } else {
                latencies.push(l);
            }
            cpus.push(c);
        }
    }
    let cpu = cpu_seconds(pid)? - cpu0;
    peak = peak.max(rss(pid)?);
    latencies.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    Ok((first, latencies, cpus, cpu, peak))
}

/// A phase of polling alone: the exporter's cores over it and its peak RSS
/// (sampled every 500 ms).
async fn polling_alone(pid: u32, phase: Duration) -> Res<(f64, u64)> {
    let cpu0 = cpu_seconds(pid)?;
    let mut peak = 0;
    let started = Instant::now();
    while started.elapsed() < phase {
        peak = peak.max(rss(pid)?);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(((cpu_seconds(pid)? - cpu0) / phase.as_secs_f64(), peak))
}

/// `changing N INTERVAL EVERY PHASE`: polls every INTERVAL seconds, spread
/// over it (one function in four with asynchronous traffic), scraped with
/// Prometheus' headers every EVERY seconds for PHASE seconds by one, then
/// by two scrapers, between PHASE seconds of polling alone before and
/// after them. Reports scrape
/// p50/p99/max, CPU per scrape (the whole process's during the scrape, and
/// the rendering thread's own from the exporter's debug log), the
/// exporter's cores in each phase, RSS,
/// and zlib level 1 over the same OpenMetrics bytes; then, as reference,
/// the same scrapes of an exporter whose store does not change.
pub async fn changing(functions: usize, interval: u64, every: f64, phase: u64) -> Res<()> {
    let (exporter, stop, sim) = start_polled(functions, &format!("{interval}s"), true).await?;
    let dir = exporter.dir.path();
    let url = format!("http://{}/metrics", exporter.addr);
    let pid = exporter.pid();
    let every = Duration::from_secs_f64(every);
    let phase_d = Duration::from_secs(phase);
    // After the first cycle the next ones spread their polls.
    tokio::time::sleep(Duration::from_secs(interval)).await;
    println!(
        "changing | N={functions} interval {interval}s, scraped every {every:?}, phases of {phase}s | RSS after the first cycle {:.1} MiB | load {}",
        rss(pid)? as f64 / 1048576.0,
        load()
    );
    // The API requests each phase made, as the simulator counted them:
    // the process's CPU in a phase is mostly its polls'.
    let mut requests = sim.requests();
    let mut requests_in_phase = || {
        let (before, now) = (requests, sim.requests());
        requests = now;
        now - before
    };
    let (alone, peak_alone) = polling_alone(pid, phase_d).await?;
    let alone_requests = requests_in_phase();
    println!(
        "changing | N={functions} polling alone | {:.4} cores = {:.0} CPU-s per hour | {alone_requests} API requests, {:.1} us of the exporter's CPU each | peak RSS {:.1} MiB | load {}",
        alone,
        alone * 3600.0,
        alone * phase as f64 / alone_requests.max(1) as f64 * 1e6,
        peak_alone as f64 / 1048576.0,
        load()
    );
    let mut bytes = 0;
    let mut phase_cores = Vec::new();
    let mut phase_requests = Vec::new();
    for scrapers in [1, 2] {
        exporter.rendered.lock().unwrap().clear();
        let zlib = ZlibBeside::start()?;
        let (first_lat, steady_lat, cpus, cpu, peak) =
            scrape_phase(&url, pid, scrapers, every, phase_d, &zlib).await?;
        phase_requests.push(requests_in_phase());
        let beside = tokio::task::spawn_blocking(move || zlib.finish()).await??;
        let mut lat = steady_lat.clone();
        lat.push(first_lat);
        lat.sort_by(f64::total_cmp);
        let cores = cpu / phase as f64;
        let n = lat.len();
        let mean_cpu = cpus.iter().sum::<f64>() / n as f64;
        // The rendering thread's own CPU (from the exporter's debug log):
        // what the scrapes cost, without the polls that ran beside them.
        let mut rendered = std::mem::take(&mut *exporter.rendered.lock().unwrap());
        // The phase's first scrape catches up with everything polled
        // since the previous phase's last one (PHASE seconds of polling
        // alone before the one-scraper phase): reported apart from the
        // steady state, in which each scrape follows the previous one by
        // EVERY seconds, as Prometheus scrapes.
        let first = rendered.first().copied().unwrap_or(f64::NAN);
        // Polls come in the first half of each interval, so a few
        // scrapes' mean depends on where they fall; over a whole number
        // of intervals every poll is paid for exactly once. The scrapes
        // after the first that span whole intervals (every scrape of a
        // changing store renders: a body is served again for 1 s at most):
        let per_interval = (interval as f64 / every.as_secs_f64()).round() as usize * scrapers;
        let intervals = (phase_d.saturating_sub(every).as_secs_f64() / interval as f64) as usize;
        let whole: Option<Vec<f64>> = rendered
            .get(1..=intervals * per_interval)
            .filter(|w| !w.is_empty())
            .map(<[f64]>::to_vec);
        let mut steady = rendered.get(1..).unwrap_or_default().to_vec();
        steady.sort_by(f64::total_cmp);
        rendered.sort_by(f64::total_cmp);
        let rendering = rendered.iter().sum::<f64>();
        println!(
            "changing | N={functions} {scrapers} scraper(s) | renderer's own CPU: {} bodies rendered for {n} scrapes, median {:.2} ms, mean per scrape {:.2} ms, max {:.2} ms; {:.1} CPU-s per hour = {:.3} x polling alone",
            rendered.len(),
            quantile(&rendered, 0.5) * 1e3,
            rendering / n as f64 * 1e3,
            rendered.last().copied().unwrap_or(f64::NAN) * 1e3,
            rendering / phase as f64 * 3600.0,
            rendering / phase as f64 / alone,
        );
        println!(
            "changing | N={functions} {scrapers} scraper(s) | first scrape of the phase: latency {:.1} ms, renderer's own CPU {:.2} ms | steady state (the other {} scrapes): latency p50 {:.1} ms p99 {:.1} ms, renderer's own CPU median {:.2} ms, mean per scrape {:.2} ms, max {:.2} ms",
            first_lat * 1e3,
            first * 1e3,
            n.saturating_sub(1),
            quantile(&steady_lat, 0.5) * 1e3,
            quantile(&steady_lat, 0.99) * 1e3,
            quantile(&steady, 0.5) * 1e3,
            steady.iter().sum::<f64>() / n.saturating_sub(1).max(1) as f64 * 1e3,
            steady.last().copied().unwrap_or(f64::NAN) * 1e3,
        );
        match whole {
            Some(w) => {
                let own = w.iter().sum::<f64>() / w.len() as f64;
                println!(
                    "changing | N={functions} {scrapers} scraper(s) | steady state over whole intervals: the {} scrapes after the first, {intervals} x {interval} s: renderer's own CPU mean per scrape {:.2} ms",
                    w.len(),
                    own * 1e3,
                );
                // The same scrapes' own bytes through zlib, each as it came.
                if let Some(z) = beside.get(1..=w.len()) {
                    let zlib = z.iter().sum::<f64>() / z.len() as f64;
                    let (lo, hi) = z.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
                        (lo.min(*v), hi.max(*v))
                    });
                    println!(
                        "changing | N={functions} {scrapers} scraper(s) | zlib level 1 beside each of those scrapes, over its own bytes: mean {:.2} ms ({:.2}-{:.2}) | renderer's own CPU / zlib level 1 = {:.3}",
                        zlib * 1e3,
                        lo * 1e3,
                        hi * 1e3,
                        own / zlib,
                    );
                }
            }
            None => println!(
                "changing | N={functions} {scrapers} scraper(s) | steady state over whole intervals: none (a phase of at least INTERVAL + EVERY seconds has one)"
            ),
        }
        println!(
            "changing | N={functions} {scrapers} scraper(s) | {n} scrapes | latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms | CPU per scrape median {:.2} ms mean {:.2} ms max {:.2} ms | exporter {:.4} cores, +{:.0} CPU-s per hour over polling alone ({:.3}x) | peak RSS {:.1} MiB | load {}",
            quantile(&lat, 0.5) * 1e3,
            quantile(&lat, 0.99) * 1e3,
            lat.last().copied().unwrap_or(f64::NAN) * 1e3,
            quantile(&cpus, 0.5) * 1e3,
            mean_cpu * 1e3,
            cpus.last().copied().unwrap_or(f64::NAN) * 1e3,
            cores,
            (cores - alone) * 3600.0,
            (cores - alone) / alone,
            peak as f64 / 1048576.0,
            load()
        );
        bytes = n;
        phase_cores.push(cores);
        println!(
            "changing | N={functions} {scrapers} scraper(s) | {} API requests in the phase (polling alone: {alone_requests})",
            phase_requests[phase_requests.len() - 1]
        );
    }
    let _ = bytes;
    // Polling alone once more, after the scrapers, and the scrapers'
    // phases set against the mean of the two. The process's CPU in a phase
    // counts the polls in it as well as the scrapes: polls come in the
    // first half of each interval, so a phase that is not a whole number
    // of intervals holds more or fewer of them than the next one (at
    // 10,000 functions and PHASE 135 that moved the difference between
    // phases by more than the scrapes cost). With PHASE a multiple of
    // INTERVAL every phase holds the same polls, and the difference is
    // the scrapers'.
    let (alone_after, _) = polling_alone(pid, phase_d).await?;
    let after_requests = requests_in_phase();
    let baseline = (alone + alone_after) / 2.0;
    // The polls' CPU per API request, from the two phases of polling
    // alone; a scrapers' phase less its own requests' worth of that is
    // what its scrapes cost the process.
    let per_request =
        (alone + alone_after) * phase as f64 / (alone_requests + after_requests).max(1) as f64;
    let scrapes_alone = |i: usize| {
        let polls = phase_requests[i] as f64 * per_request / phase as f64;
        (phase_cores[i] - polls) / baseline
    };
    println!(
        "changing | N={functions} API requests per phase: polling alone {alone_requests} and {after_requests}, one scraper {}, two {} | the exporter's CPU per API request polling alone {:.1} us | the scrapers' phases less their requests at that cost: one scraper {:.3}x polling alone, two {:.3}x",
        phase_requests[0],
        phase_requests[1],
        per_request * 1e6,
        scrapes_alone(0),
        scrapes_alone(1),
    );
    println!(
        "changing | N={functions} polling alone again, after the scrapers | {:.4} cores = {:.0} CPU-s per hour (before them {:.0}) | the scrapers' phases against the mean of the two: one scraper +{:.0} CPU-s per hour ({:.3}x), two +{:.0} ({:.3}x) | load {}",
        alone_after,
        alone_after * 3600.0,
        alone * 3600.0,
        (phase_cores[0] - baseline) * 3600.0,
        (phase_cores[0] - baseline) / baseline,
        (phase_cores[1] - baseline) * 3600.0,
        (phase_cores[1] - baseline) / baseline,
        load()
    );
    // The reference: zlib level 1 over the same OpenMetrics bytes.
    let gz = prometheus_client()?.get(&url).send().await?.bytes().await?;
    let om = gunzip(&gz)?;
    // One Python process's median moves ±20 % from one to the next
    // seconds later (BENCHMARKS.md, "Once more on 2026-12-03"): the
    // median of seven, two seconds apart.
    let mut zlibs = Vec::new();
    let mut zlib_bytes = 0;
    for i in 0..7 {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let (cpu, size) = zlib_level1(dir, &om)?;
        zlibs.push(cpu);
        zlib_bytes = size;
    }
    zlibs.sort_by(f64::total_cmp);
    let zlib = quantile(&zlibs, 0.5);
    // One text exposition (asked last: it makes the exporter keep a text
    // view).
    let rss_end = rss(pid)?;
    let text = plain_client()?.get(&url).send().await?.bytes().await?;
    println!(
        "changing | N={functions} | OpenMetrics {} bytes (gzip {}) | zlib level 1 over them: {:.2} ms CPU (median of 7 processes, {:.2}-{:.2}), {} bytes | one text exposition {:.1} MiB, RSS {:.1} MiB = {:.2} x text; goal 2 x text + 40 MiB = {:.1} MiB | load {}",
        om.len(),
        gz.len(),
        zlib * 1e3,
        zlibs[0] * 1e3,
        zlibs[zlibs.len() - 1] * 1e3,
        zlib_bytes,
        text.len() as f64 / 1048576.0,
        rss_end as f64 / 1048576.0,
        rss_end as f64 / text.len() as f64,
        (2 * text.len() + (40 << 20)) as f64 / 1048576.0,
        load()
    );
    drop(exporter);
    stop.cancel();

    // Same-run reference: the same scrapes of a store that does not change.
    let (exporter, stop) = start_exporter(functions, "1h", true).await?;
    let url = format!("http://{}/metrics", exporter.addr);
    let client = prometheus_client()?;
    scrape_once(&client, &url, exporter.pid()).await?;
    let mut lat = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..20 {
        let (l, c, _) = scrape_once(&client, &url, exporter.pid()).await?;
        lat.push(l);
        cpus.push(c);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lat.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    println!(
        "changing | N={functions} reference, unchanged store | 20 scrapes | latency p50 {:.1} ms p99 {:.1} ms | CPU per scrape median {:.2} ms | load {}",
        quantile(&lat, 0.5) * 1e3,
        quantile(&lat, 0.99) * 1e3,
        quantile(&cpus, 0.5) * 1e3,
        load()
    );
    drop(exporter);
    stop.cancel();
    Ok(())
}

/// `memory N`: RSS after the first cycle and 50 scrapes with Prometheus'
/// headers, against one text exposition (asked for after the RSS is read).
pub async fn memory(functions: usize) -> Res<()> {
    let (exporter, stop) = start_exporter(functions, "1h", false).await?;
    let url = format!("http://{}/metrics", exporter.addr);
    let client = prometheus_client()?;
    for _ in 0..50 {
        client.get(&url).send().await?.bytes().await?;
    }
    let rss_gzip = rss(exporter.pid())?;
    let (anon, file) = rss_parts(exporter.pid())?;
    let text = plain_client()?.get(&url).send().await?.bytes().await?;
    for _ in 0..5 {
        plain_client()?.get(&url).send().await?.bytes().await?;
    }
    let rss_both = rss(exporter.pid())?;
    let series = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    println!(
        "memory | N={functions} | RSS after 50 gzip OpenMetrics scrapes {:.1} MiB ({:.1} MiB anonymous, {:.1} MiB file-backed); after text scrapes too {:.1} MiB | one text exposition {:.1} MiB, {series} series | RSS/text {:.2} | goal 2 x text + 40 MiB = {:.1} MiB | load {}",
        rss_gzip as f64 / 1048576.0,
        anon as f64 / 1048576.0,
        file as f64 / 1048576.0,
        rss_both as f64 / 1048576.0,
        text.len() as f64 / 1048576.0,
        rss_gzip as f64 / text.len() as f64,
        (2 * text.len() + (40 << 20)) as f64 / 1048576.0,
        load()
    );
    drop(exporter);
    stop.cancel();
    Ok(())
}

/// A Prometheus server on loopback with its own temporary directory.
struct Prometheus {
    child: Child,
    api: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SAFETY: a signal to the process this value started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn query(http: &reqwest::Client, api: &str, q: &str) -> Res<Vec<(String, f64)>> {
    let q = percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC);
    let url = format!("{api}/api/v1/query?query={q}");
    let body = http.get(url).send().await?.bytes().await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let mut out = Vec::new();
    for r in v["data"]["result"].as_array().ok_or("no result")? {
        let job = r["metric"]["job"].as_str().unwrap_or_default().to_owned();
        let value: f64 = r["value"][1].as_str().unwrap_or("NaN").parse()?;
        out.push((job, value));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// `prometheus N SECONDS`: a real Prometheus (the `prometheus` binary,
/// loopback, temporary storage) scrapes the exporter (N functions, polls
/// every 60 s spread over the interval, traffic on one function in four)
/// and, as the same-run reference, nginx serving one copy of the same
/// exposition pre-gzipped, every 15 s for SECONDS; reports what
/// Prometheus recorded: `scrape_duration_seconds` and
/// `scrape_samples_scraped`.
pub async fn prometheus(functions: usize, seconds: u64) -> Res<()> {
    let (exporter, stop) = start_exporter(functions, "60s", true).await?;
    let dir = exporter.dir.path();
    let url = format!("http://{}/metrics", exporter.addr);
    let (content_type, _, gz) = scrape_as_prometheus(&url).await?;
    let om = gunzip(&gz)?;
    let samples = om
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    www(dir, &om, Some(&gz))?;
    let nginx = Nginx::start(dir, true, true, true, &content_type).await?;
    let nginx_target = nginx
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 15s\n  scrape_timeout: 10s\n\
             scrape_configs:\n\
             \x20 - job_name: exporter\n    static_configs: [{{targets: [\"{}\"]}}]\n\
             \x20 - job_name: nginx\n    static_configs: [{{targets: [\"{nginx_target}\"]}}]\n",
            exporter.addr
        ),
    )?;
    let data = dir.join("data");
    let api = format!("http://127.0.0.1:{port}");
    let _prometheus = Prometheus {
        child: Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
        api: api.clone(),
    };
    println!(
        "prometheus | N={functions} | exposition {samples} samples, {} bytes, gzip {} | running {seconds}s | load {}",
        om.len(),
        gz.len(),
        load()
    );
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let http = reqwest::Client::new();
    let range = format!("{}s", started.elapsed().as_secs());
    for q in [
        format!("count_over_time(scrape_duration_seconds[{range}])"),
        format!("quantile_over_time(0.5, scrape_duration_seconds[{range}])"),
        format!("max_over_time(scrape_duration_seconds[{range}])"),
        format!("min_over_time(scrape_samples_scraped[{range}])"),
        format!("max_over_time(scrape_samples_scraped[{range}])"),
        format!("min_over_time(up[{range}])"),
    ] {
        println!(
            "prometheus | {q} | {:?}",
            query(&http, &_prometheus.api, &q).await?
        );
    }
    println!("prometheus | load {}", load());
    drop(_prometheus);
    drop(nginx);
    drop(exporter);
    stop.cancel();
    Ok(())
}
