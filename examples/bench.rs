//! Benchmarks of the exporter, each reported as a ratio against a limit
//! measured in the same run (see BENCHMARKS.md).
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench -- all
//! cargo run --release --example bench -- poll-cycle 1000
//! cargo run --release --example bench -- api-cost
//! cargo run --release --example bench -- hanging 180
//! cargo run --release --example bench -- login-flood 250
//! cargo run --release --example bench -- check-config 40000
//! cargo run --release --example bench -- endless-records 150 2048
//! cargo run --release --example bench -- accuracy [name filter]
//! cargo run --release --example bench -- scrape 10000
//! cargo run --release --example bench -- changing 10000 60 15 120   # N, interval s, scrape every s, phase s
//! cargo run --release --example bench -- memory 10000
//! cargo run --release --example bench -- prometheus 10000 180
//! cargo run --release --example bench -- ab 1000 20 64 OLD NEW   # N, cycles, connections, builds
//! ```
//!
//! The exporter runs as its own process (the release binary), polling a
//! simulator in this process on loopback, so its memory and CPU are its
//! own. `scrape` also needs Debian's `nginx` and `wrk`, `prometheus` the
//! `prometheus` binary, `changing` `python3` (for zlib). `ab` sets builds of the exporter (paths
//! to binaries, or wrappers that set an environment) side by side.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::app;
use functiongraph_exporter::clock::{Clock, ManualClock, SystemClock};
use functiongraph_exporter::config::Config;
use functiongraph_exporter::simulator::{Fault, FunctionSpec, Simulator};
use functiongraph_exporter::urn::FunctionUrn;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const PROJECT: &str = "be0c0000000000000000000000000001";
const TOKEN: &str = "bench-token";

#[path = "bench/accuracy.rs"]
mod accuracy;
#[path = "bench/scrape.rs"]
mod scrape;
mod support;

use support::{
    REGION, Res, binary, collector_intervals, config_toml, serve, spawn_exporter,
    spawn_exporter_logging, token_dir, write_config,
};

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let what = args.first().map(String::as_str).unwrap_or("all");
    let n = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    rt.block_on(async {
        match what {
            "poll-cycle" => poll_cycle(n(1, 1000), Duration::from_millis(20), n(2, 64)).await,
            "api-cost" => api_cost().await,
            "hanging" => hanging(n(1, 180) as u64).await,
            "scrape" => scrape::scrape(n(1, 1000)).await,
            "ab" => {
                let binaries = args.iter().skip(4).map(std::path::PathBuf::from).collect();
                scrape::ab(n(1, 1000), n(2, 20), n(3, 64) as u32, binaries).await
            }
            "changing" => {
                let every = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(15.0);
                scrape::changing(n(1, 10_000), n(2, 60) as u64, every, n(4, 120) as u64).await
            }
            "memory" => scrape::memory(n(1, 1000)).await,
            "prometheus" => scrape::prometheus(n(1, 10_000), n(2, 180) as u64).await,
            "startup" => startup().await,
            "login-flood" => login_flood(n(1, 250)).await,
            "check-config" => check_config(n(1, 40_000)),
            "endless-records" => endless_records(n(1, 150), n(2, 2048)).await,
            "accuracy" => accuracy::run(args.get(1).map(String::as_str)).await,
            "all" => {
                for concurrency in [50, 64] {
                    for functions in [100, 1000, 10_000] {
                        poll_cycle(functions, Duration::from_millis(20), concurrency).await?;
                    }
                }
                api_cost().await?;
                hanging(180).await?;
                for functions in [1000, 10_000] {
                    scrape::scrape(functions).await?;
                }
                for functions in [500, 1000, 10_000] {
                    scrape::memory(functions).await?;
                    scrape::changing(functions, 60, 15.0, 120).await?;
                }
                scrape::changing(10_000, 15, 1.5, 60).await?;
                scrape::changing(500, 20, 1.0, 60).await?;
                scrape::prometheus(10_000, 180).await?;
                startup().await?;
                check_config(40_000)?;
                login_flood(250).await?;
                endless_records(150, 2048).await?;
                accuracy::run(None).await
            }
            other => Err(format!("unknown benchmark {other:?}").into()),
        }
    })
}

/// A simulator with `functions` functions, served on loopback.
async fn simulator(functions: usize) -> Res<(Simulator, SocketAddr, CancellationToken)> {
    let sim = Simulator::new(TOKEN);
    sim.add_project(PROJECT, REGION);
    sim.generate_functions(PROJECT, "bench-", functions);
    let shutdown = CancellationToken::new();
    let addr = serve(&sim, &shutdown).await?;
    Ok((sim, addr, shutdown))
}

/// A configuration polling every simulated function explicitly.
fn config_text(sim: SocketAddr, functions: usize, token_file: &Path, polling: &str) -> String {
    let list: Vec<String> = (0..functions)
        .map(|i| format!("default:bench-{i:04}"))
        .collect();
    let rate = "max_requests_per_second = 1000000";
    config_toml(polling, PROJECT, sim, &list, rate, token_file)
}

/// The exporter in this process (to drive its cycles or read its store),
/// on a loopback port.
async fn start_in_process(config: &Config, options: app::Options) -> Res<app::Running> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(app::start_with(config, listener, CancellationToken::new(), options).await?)
}

/// The exporter binary, started with a configuration; stopped on drop.
struct Exporter {
    child: Child,
    addr: String,
    /// Its configuration and token files (and room for a run's others).
    dir: tempfile::TempDir,
    /// The CPU seconds of each body it rendered (its debug log's "body
    /// rendered" lines): the rendering thread's own time, without the
    /// polls running beside it.
    rendered: Arc<Mutex<Vec<f64>>>,
}

impl Exporter {
    /// Polls `functions` functions of the simulator at `sim` with the
    /// `[polling]` lines `polling` (see [`config_text`]).
    fn start(sim: SocketAddr, functions: usize, polling: &str) -> Res<Exporter> {
        let (dir, token) = token_dir(TOKEN)?;
        let path = write_config(dir.path(), &config_text(sim, functions, &token, polling))?;
        // FGE_BENCH_RUST_LOG=... shows the exporter's log.
        let show = std::env::var_os("FGE_BENCH_RUST_LOG").is_some();
        let rendered = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&rendered);
        let (child, addr) = spawn_exporter_logging(
            &path,
            &["--log.level", "warn"],
            "warn,functiongraph_exporter=info,functiongraph_exporter::exposition=debug",
            move |l| {
                if show {
                    eprintln!("exporter: {l}");
                }
                if l.contains("body rendered") {
                    let cpu = l
                        .split("cpu_seconds=")
                        .nth(1)
                        .and_then(|v| v.split_whitespace().next().and_then(|v| v.parse().ok()));
                    if let Some(cpu) = cpu {
                        seen.lock().unwrap().push(cpu);
                    }
                }
            },
        )?;
        Ok(Exporter {
            child,
            addr,
            dir,
            rendered,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_ready(addr: &str) -> Res<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(r) = http.get(format!("http://{addr}/-/ready")).send().await {
            if r.status() == 200 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err("not ready".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Poll cycle efficiency: a full cycle's wall time against the limit
/// `requests × latency / concurrency`.
async fn poll_cycle(functions: usize, latency: Duration, concurrency: usize) -> Res<()> {
    let (sim, addr, stop) = simulator(functions).await?;
    sim.set_latency(latency);
    let (_dir, token) = token_dir(TOKEN)?;
    // In-process, to drive a cycle on demand and time exactly it.
    let toml = config_text(
        addr,
        functions,
        &token,
        &format!(
            "interval = \"1h\"\ntimeout = \"30s\"\nconcurrency = {concurrency}\nmax_functions = 100000"
        ),
    );
    let config = Config::from_toml(&toml, "bench")?;
    let running = start_in_process(&config, app::Options::default()).await?;
    running.poller().wait_ready().await?;
    // The simulator's actual service time (its timer rounds up): the median
    // of sequential requests, measured now, is the L of the limit.
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/v2/{PROJECT}/fgs/functions/default%3Abench-0000/code");
    let mut samples = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        http.get(&url)
            .header("x-auth-token", TOKEN)
            .send()
            .await?
            .bytes()
            .await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    let measured = samples[samples.len() / 2];
    let before = sim.requests();
    let started = Instant::now();
    running.poller().poll_now().await?;
    let took = started.elapsed();
    let requests = sim.requests() - before;
    let limit = measured.mul_f64(requests as f64 / concurrency as f64);
    // Requests are indivisible: no schedule beats ceil(R / C) rounds.
    let rounds = measured * (requests as u32).div_ceil(concurrency as u32);
    println!(
        "poll-cycle | N={functions} L={}ms (measured {:.2}ms) C={concurrency} | requests {requests} | cycle {:.3}s | limit R*L/C {:.3}s | ratio {:.3} | (ceil(R/C)*L {:.3}s, ratio {:.3})",
        latency.as_millis(),
        measured.as_secs_f64() * 1000.0,
        took.as_secs_f64(),
        limit.as_secs_f64(),
        took.as_secs_f64() / limit.as_secs_f64(),
        rounds.as_secs_f64(),
        took.as_secs_f64() / rounds.as_secs_f64(),
    );
    running.stop().await;
    stop.cancel();
    Ok(())
}

/// API cost per function per hour at the default intervals, for functions
/// snapshots apply to (published versions of Java functions) and for the
/// rest, against the minimum the intervals imply: 60 async listings, 12
/// each of versions and code, and for the former 12 each of snapshot state
/// and `enableSnapshot` (the latter's "not applicable" is remembered).
async fn api_cost() -> Res<()> {
    let functions = 10;
    let (sim, addr, stop) = simulator(functions).await?;
    for i in 0..functions {
        sim.add_function(
            PROJECT,
            FunctionSpec::new("default", &format!("java-{i:04}"))
                .runtime("Java17")
                .code("jar", 1 << 20)
                .version("v1"),
        );
    }
    let (_dir, token) = token_dir(TOKEN)?;
    let java: Vec<String> = (0..functions)
        .map(|i| format!("\"{PROJECT}:default:java-{i:04}:v1\""))
        .collect();
    let toml = config_text(addr, functions, &token, "").replace(
        "functions = [",
        &format!("functions = [{}, ", java.join(", ")),
    );
    let config = Config::from_toml(&toml, "bench")?;
    let clock = Arc::new(ManualClock::new());
    let options = app::Options {
        clock: clock.clone(),
        ..app::Options::default()
    };
    let running = start_in_process(&config, options).await?;
    running.poller().wait_ready().await?;
    let of = |prefix: &str| -> u64 {
        (0..functions)
            .map(|i| sim.requests_of("default", &format!("{prefix}{i:04}")))
            .sum()
    };
    let (python_before, java_before) = (of("bench-"), of("java-"));
    for _ in 0..60 {
        clock.advance(Duration::from_secs(60));
        running.poller().run_cycle().await?;
    }
    for (kind, prefix, before, minimum) in [
        (
            "Java published version (snapshots apply)",
            "java-",
            java_before,
            60.0 + 4.0 * 12.0,
        ),
        (
            "other functions (snapshots do not apply)",
            "bench-",
            python_before,
            60.0 + 2.0 * 12.0,
        ),
    ] {
        let per_hour = (of(prefix) - before) as f64 / functions as f64;
        println!(
            "api-cost | defaults, {kind} | requests per function per hour {per_hour:.1} | minimum {minimum:.0} | ratio {:.3}",
            per_hour / minimum
        );
    }
    running.stop().await;
    stop.cancel();
    Ok(())
}

/// Healthy functions beside functions whose API hangs: 16 functions whose
/// every request hangs and 4 healthy ones, concurrency 8, a 20 s interval
/// and the default 10 s timeout, for `seconds` of real time; and, as the
/// reference, the same 20 functions all healthy, for as long, in the same
/// run. Reports when `/-/ready` came and the 4 functions' worst staleness
/// (time since the start of their last complete poll, sampled every 100 ms
/// once they were first polled), against the interval: the goals are at
/// most 1 and 1.5.
async fn hanging(seconds: u64) -> Res<()> {
    let interval = Duration::from_secs(20);
    let mut reference = None;
    for hanging in [0usize, 16] {
        let (ready, first, worst, requests) = hanging_run(hanging, interval, seconds).await?;
        let ratio = |d: Duration| d.as_secs_f64() / interval.as_secs_f64();
        println!(
            "hanging | {hanging} hanging + {} healthy, C=8, interval {}s, timeout 10s, {seconds}s | ready after {:.1}s, ratio {:.2} of the interval (goal <= 1) | the 4 watched first polled after {:.1}s, then worst staleness {:.1}s, ratio {:.2} (goal <= 1.5){} | requests to hanging functions {requests} ({:.1} per function in the run)",
            20 - hanging,
            interval.as_secs(),
            ready.as_secs_f64(),
            ratio(ready),
            first.as_secs_f64(),
            worst.as_secs_f64(),
            ratio(worst),
            reference.map_or(String::new(), |r: Duration| format!(
                " | against all healthy: {:.2}",
                worst.as_secs_f64() / r.as_secs_f64()
            )),
            requests as f64 / hanging.max(1) as f64,
        );
        reference.get_or_insert(worst);
    }
    Ok(())
}

/// One run of [`hanging`]: ready after, the 4 watched functions first
/// polled after, their worst staleness, requests to the hanging ones.
async fn hanging_run(
    hanging: usize,
    interval: Duration,
    seconds: u64,
) -> Res<(Duration, Duration, Duration, u64)> {
    let sim = Simulator::new(TOKEN);
    sim.add_project(PROJECT, REGION);
    sim.generate_functions(PROJECT, "hang-", 16);
    sim.generate_functions(PROJECT, "ok-", 4);
    for i in 0..hanging {
        for endpoint in [
            Endpoint::AsyncInvocations,
            Endpoint::Versions,
            Endpoint::Code,
            Endpoint::SnapshotState,
        ] {
            sim.set_fault(
                PROJECT,
                "default",
                &format!("hang-{i:04}"),
                endpoint,
                Fault::Hang,
            );
        }
    }
    let stop = CancellationToken::new();
    let addr = serve(&sim, &stop).await?;
    let (_dir, token) = token_dir(TOKEN)?;
    let names: Vec<String> = (0..16)
        .map(|i| format!("default:hang-{i:04}"))
        .chain((0..4).map(|i| format!("default:ok-{i:04}")))
        .collect();
    let s = interval.as_secs();
    let polling = format!(
        "interval = \"{s}s\"\nconcurrency = 8\n{}",
        collector_intervals(s)
    );
    let toml = config_toml(&polling, PROJECT, addr, &names, "", &token);
    let config = Config::from_toml(&toml, "bench")?;
    let started = Instant::now();
    let running = start_in_process(&config, app::Options::default()).await?;
    let watched: Vec<FunctionUrn> = (0..4)
        .map(|i| {
            FunctionUrn::new(REGION, PROJECT, "default", &format!("ok-{i:04}"), "latest")
                .expect("valid urn")
        })
        .collect();
    let mut ready_after = None;
    let mut worst = Duration::ZERO;
    let mut first_fresh = None;
    let clock = SystemClock;
    while started.elapsed() < Duration::from_secs(seconds) {
        if ready_after.is_none() && running.poller().is_ready() {
            ready_after = Some(started.elapsed());
        }
        let now = clock.unix();
        let lasts: Vec<Option<f64>> = watched
            .iter()
            .map(|u| running.store().function(u).and_then(|s| s.last_success))
            .collect();
        if lasts.iter().all(Option::is_some) {
            first_fresh.get_or_insert(started.elapsed());
            for last in lasts.into_iter().flatten() {
                worst = worst.max(Duration::from_secs_f64((now - last).max(0.0)));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let requests: u64 = (0..hanging)
        .map(|i| sim.requests_of("default", &format!("hang-{i:04}")))
        .sum();
    running.stop().await;
    stop.cancel();
    Ok((
        ready_after.ok_or("never ready")?,
        first_fresh.ok_or("never polled")?,
        worst,
        requests,
    ))
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> Res<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let fields: BTreeMap<&str, u64> = status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k, v.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    Ok(fields.get("VmRSS").copied().unwrap_or(0) * 1024)
}

/// The resident memory's parts, in bytes: anonymous (the heap, stacks) and
/// file-backed (the binary's pages that were touched).
fn rss_parts(pid: u32) -> Res<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Ok((field("RssAnon"), field("RssFile") + field("RssShmem")))
}

/// Start-up: process start to serving `/-/healthy` (the first poll still
/// running), against starting the same binary for `--version`.
async fn startup() -> Res<()> {
    let (sim, addr, stop) = simulator(1000).await?;
    // The first poll cannot finish: it does not count.
    sim.set_latency(Duration::from_secs(20));
    let (dir, token) = token_dir(TOKEN)?;
    let polling = "interval = \"1h\"\ntimeout = \"30s\"";
    let path = write_config(dir.path(), &config_text(addr, 1000, &token, polling))?;
    let mut serving = Vec::new();
    let mut version = Vec::new();
    let http = reqwest::Client::new();
    for _ in 0..15 {
        let started = Instant::now();
        let out = Command::new(binary()).arg("--version").output()?;
        assert!(out.status.success());
        version.push(started.elapsed());

        let started = Instant::now();
        let (mut child, addr) = spawn_exporter(&path, &["--log.level", "warn"], |_| {})?;
        loop {
            if let Ok(r) = http.get(format!("http://{addr}/-/healthy")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        serving.push(started.elapsed());
        let _ = child.kill();
        let _ = child.wait();
    }
    serving.sort();
    version.sort();
    let (s, v) = (serving[serving.len() / 2], version[version.len() / 2]);
    println!(
        "startup | 1000 functions | to serving {:.1} ms (median of 15) | bare process start {:.1} ms | ratio {:.2}",
        s.as_secs_f64() * 1000.0,
        v.as_secs_f64() * 1000.0,
        s.as_secs_f64() / v.as_secs_f64()
    );
    stop.cancel();
    Ok(())
}

/// Basic authentication under a password-guessing flood: `clients`
/// connections from 127.0.0.1 send ever new wrong passwords, while correct
/// logins that are not cached yet (a different user each time, bcrypt cost
/// 10) come from 127.0.0.2. Their latency is set against the same logins
/// with no flood (one bcrypt verification), measured in the same run.
async fn login_flood(clients: usize) -> Res<()> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const USERS: usize = 20;
    const QUIET: usize = 5;
    let (_sim, addr, stop) = simulator(10).await?;
    let (dir, token) = token_dir(TOKEN)?;
    let mut web = String::from("basic_auth_users:\n");
    for i in 0..USERS {
        web.push_str(&format!(
            "  user{i}: \"{}\"\n",
            bcrypt::hash(format!("password-{i}"), 10)?
        ));
    }
    let web_path = dir.path().join("web.yml");
    std::fs::write(&web_path, web)?;
    let config_path = write_config(
        dir.path(),
        &config_text(addr, 10, &token, "interval = \"1h\""),
    )?;
    let web_arg = web_path.display().to_string();
    let (mut child, exporter) = spawn_exporter(
        &config_path,
        &["--log.level", "warn", "--web.config.file", &web_arg],
        |_| {},
    )?;
    let url = format!("http://{exporter}/-/healthy");
    let basic = |user: &str, password: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let legit = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(60))
        .build()?;
    let login = |i: usize| {
        let (legit, url, header) = (
            legit.clone(),
            url.clone(),
            basic(&format!("user{i}"), &format!("password-{i}")),
        );
        async move {
            let started = Instant::now();
            let r = legit
                .get(&url)
                .header("authorization", header)
                .send()
                .await?;
            if r.status() != 200 {
                return Err(format!("login {i}: {}", r.status()).into());
            }
            Res::Ok(started.elapsed())
        }
    };
    let mut quiet = Vec::new();
    for i in 0..QUIET {
        quiet.push(login(i).await?);
    }
    let flag = Arc::new(AtomicBool::new(false));
    let (verdicts, busy) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut flood = Vec::new();
    for c in 0..clients {
        let (flag, verdicts, busy, url) = (
            Arc::clone(&flag),
            Arc::clone(&verdicts),
            Arc::clone(&busy),
            url.clone(),
        );
        let header = basic;
        flood.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .local_address(std::net::IpAddr::from([127, 0, 0, 1]))
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client");
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                n += 1;
                let user = format!("user{}", (c + n as usize) % USERS);
                let r = client
                    .get(&url)
                    .header("authorization", header(&user, &format!("guess-{c}-{n}")))
                    .send()
                    .await;
                match r.map(|r| r.status().as_u16()) {
                    Ok(401) => verdicts.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => busy.fetch_add(1, Ordering::Relaxed),
                    Err(_) => 0,
                };
            }
        }));
    }
    // Let the flood fill every queue.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (v0, b0) = (
        verdicts.load(Ordering::Relaxed),
        busy.load(Ordering::Relaxed),
    );
    let flood_started = Instant::now();
    let mut flooded = Vec::new();
    for i in QUIET..USERS {
        flooded.push(login(i).await?);
    }
    let elapsed = flood_started.elapsed().as_secs_f64();
    let (v1, b1) = (
        verdicts.load(Ordering::Relaxed),
        busy.load(Ordering::Relaxed),
    );
    flag.store(true, Ordering::Relaxed);
    for t in flood {
        let _ = t.await;
    }
    let _ = child.kill();
    let _ = child.wait();
    stop.cancel();
    quiet.sort();
    flooded.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (q, f, worst) = (
        quiet[quiet.len() / 2],
        flooded[flooded.len() / 2],
        flooded[flooded.len() - 1],
    );
    println!(
        "login-flood | {clients} clients guessing from another address ({:.0} guesses/s verified, {:.0}/s turned away busy) | fresh correct login, bcrypt cost 10: median {:.0} ms, max {:.0} ms ({} logins) | without the flood: median {:.0} ms | ratio {:.2} | goal: max <= 2000 ms",
        (v1 - v0) as f64 / elapsed,
        (b1 - b0) as f64 / elapsed,
        ms(f),
        ms(worst),
        flooded.len(),
        ms(q),
        f.as_secs_f64() / q.as_secs_f64(),
    );
    Ok(())
}

/// Memory under an upstream that answers every async-invocations page with
/// records never seen before (`request_id_len` characters long) and never
/// says the listing is done, for `seconds`, polling 10 functions every 5 s
/// (one of them the endless one): resident memory over time, and whether
/// the other functions kept polling.
async fn endless_records(seconds: usize, request_id_len: usize) -> Res<()> {
    let functions = 10;
    let (sim, addr, stop) = simulator(functions).await?;
    sim.set_fault(
        PROJECT,
        "default",
        "bench-0000",
        Endpoint::AsyncInvocations,
        Fault::EndlessRecords { request_id_len },
    );
    let exporter = Exporter::start(addr, functions, "interval = \"5s\"\ntimeout = \"5s\"")?;
    wait_ready(&exporter.addr).await?;
    let start = rss(exporter.pid())?;
    let mut peak = start;
    let began = Instant::now();
    let before = sim.requests_to(Endpoint::AsyncInvocations);
    while began.elapsed() < Duration::from_secs(seconds as u64) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak = peak.max(rss(exporter.pid())?);
    }
    let end = rss(exporter.pid())?;
    let pages = sim.requests_to(Endpoint::AsyncInvocations) - before;
    let body = support::metrics_text(&reqwest::Client::new(), &exporter.addr).await?;
    let up = body
        .lines()
        .filter(|l| l.starts_with("functiongraph_up{") && l.ends_with(" 1"))
        .count();
    let capped: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("functiongraph_exporter_capped_total{"))
        .collect();
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "endless-records | {seconds} s, request ids of {request_id_len} characters, {pages} async pages served | RSS {:.1} MiB at start, {:.1} MiB peak, {:.1} MiB at end | functions up {up} of {functions} | {}",
        mib(start),
        mib(peak),
        mib(end),
        capped.join(", ")
    );
    drop(exporter);
    stop.cancel();
    Ok(())
}

/// `--check-config` of a file listing `functions` functions, against the
/// same for a tenth of them, both less the time for one function: linear
/// work gives a ratio near 10 (the duplicate check used to compare every
/// pair: a ratio near 100).
fn check_config(functions: usize) -> Res<()> {
    let dir = tempfile::tempdir()?;
    let time = |n: usize| -> Res<Duration> {
        let path = dir.path().join(format!("config-{n}.toml"));
        let list: Vec<String> = (0..n).map(|i| format!("\"default:f{i:06}\"")).collect();
        std::fs::write(
            &path,
            format!(
                "[[projects]]\nproject_id = \"{PROJECT}\"\nregion = \"{REGION}\"\nfunctions = [{}]\n[projects.auth]\ntype = \"token\"\ntoken_env = \"BENCH_TOKEN\"\n",
                list.join(", ")
            ),
        )?;
        let mut runs = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let out = Command::new(binary())
                .args(["--check-config", "--config"])
                .arg(&path)
                .env("BENCH_TOKEN", TOKEN)
                .output()?;
            runs.push(started.elapsed());
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
            }
        }
        runs.sort();
        Ok(runs[runs.len() / 2])
    };
    // The same for one function: process start and the fixed work, taken
    // off both before they are compared.
    let base = time(1)?;
    let small = time(functions / 10)?;
    let large = time(functions)?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "check-config | {functions} functions {:.0} ms (median of 5) | {} functions {:.0} ms | 1 function {:.0} ms | ratio of the parts above 1 function {:.1} (linear: ~10, quadratic: ~100)",
        ms(large),
        functions / 10,
        ms(small),
        ms(base),
        (ms(large) - ms(base)) / (ms(small) - ms(base))
    );
    Ok(())
}
