//! Shared test harness: the simulator and the exporter on `127.0.0.1:0`,
//! talking real HTTP, and a small reader of the exposition format.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::app::{self, Running};
use functiongraph_exporter::clock::ManualClock;
use functiongraph_exporter::config::Config;
use functiongraph_exporter::simulator::{Fault, FunctionSpec, Simulator};
use functiongraph_exporter::web::LiveWebConfig;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";
pub const REGION: &str = "ap-southeast-1";
pub const TOKEN: &str = "test-token-s3cr3t";

/// A bound on anything a test waits for, so a bug fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A simulator with one project and the given functions (`package:name`,
/// Python, latest only).
pub fn simulator(functions: &[&str]) -> Simulator {
    simulator_in(PROJECT, functions)
}

/// [`simulator`] for another project id.
pub fn simulator_in(project_id: &str, functions: &[&str]) -> Simulator {
    let sim = Simulator::new(TOKEN);
    sim.add_project(project_id, REGION);
    for f in functions {
        let (package, name) = f.split_once(':').expect("package:name");
        sim.add_function(project_id, FunctionSpec::new(package, name));
    }
    sim
}

/// Makes `endpoint` of the function `default:{name}` in `project_id` answer
/// with `fault`.
pub fn inject_fault(
    sim: &Simulator,
    project_id: &str,
    name: &str,
    endpoint: Endpoint,
    fault: Fault,
) {
    sim.set_fault(project_id, "default", name, endpoint, fault);
}

/// Serves `sim` on an ephemeral loopback port until `shutdown`.
pub async fn serve_simulator(sim: &Simulator, shutdown: &CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sim = sim.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move { sim.serve(listener, shutdown).await });
    addr
}

/// An exporter polling a simulator (which the test keeps a handle on).
pub struct Harness {
    pub exporter: Running,
    /// The configuration it was started with (for reloads).
    pub config: Config,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    _dir: TempDir,
}

/// What to start the exporter with.
pub struct Setup<'a> {
    /// Function references, as written in `functions = [...]`.
    pub functions: &'a [&'a str],
    /// The token the exporter sends (from a file), unless `auth` is given.
    pub token: &'a str,
    /// The whole `[projects.auth]` table body, replacing the token file;
    /// `{endpoint}` is replaced by the simulator's URL.
    pub auth: Option<String>,
    /// Extra `[polling]` lines.
    pub polling: &'a str,
    /// Extra `[[projects]]` lines.
    pub project: &'a str,
    /// Override of the project's endpoint (default: the simulator).
    pub endpoint: Option<String>,
    pub project_id: &'a str,
    /// The exporter's clock (default: the system's).
    pub clock: Option<Arc<ManualClock>>,
    /// `--web.config.file` (default: none).
    pub web_config: Option<PathBuf>,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            functions: &[],
            token: TOKEN,
            auth: None,
            polling: "",
            project: "",
            endpoint: None,
            project_id: PROJECT,
            clock: None,
            web_config: None,
        }
    }
}

impl<'a> Setup<'a> {
    /// The defaults, for `functions` of the project `project_id`.
    pub fn of(project_id: &'a str, functions: &'a [&'a str]) -> Self {
        Self {
            functions,
            project_id,
            ..Self::default()
        }
    }
}

impl Harness {
    /// Starts the exporter against `sim`, without waiting for readiness.
    pub async fn start(sim: Simulator, functions: &[&str]) -> Harness {
        Self::start_with(
            sim,
            Setup {
                functions,
                ..Setup::default()
            },
        )
        .await
    }

    /// [`Harness::start_with`] on `sim`, then waits for its first cycle.
    pub async fn start_ready(sim: &Simulator, setup: Setup<'_>) -> Harness {
        let h = Self::start_with(sim.clone(), setup).await;
        h.ready().await;
        h
    }

    /// Starts the exporter without waiting for readiness.
    pub async fn start_with(sim: Simulator, setup: Setup<'_>) -> Harness {
        let shutdown = CancellationToken::new();
        let sim_addr = serve_simulator(&sim, &shutdown).await;
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{}\n", setup.token)).unwrap();
        let sim_url = format!("http://{sim_addr}");
        let endpoint = setup.endpoint.unwrap_or_else(|| sim_url.clone());
        let auth = match setup.auth {
            Some(a) => a.replace("{endpoint}", &sim_url),
            None => format!(
                "type = \"token\"\ntoken_file = \"{}\"",
                token_file.display()
            ),
        };
        let config = config_text(
            setup.functions,
            &endpoint,
            setup.project_id,
            &auth,
            setup.polling,
        )
        .replace(
            "[projects.auth]",
            &format!("{}\n[projects.auth]", setup.project),
        );
        let web = setup
            .web_config
            .map(|p| Arc::new(LiveWebConfig::load(p).unwrap()));
        Self::launch(&config, shutdown, dir, setup.clock, web).await
    }

    /// Starts the exporter on a clock of its own (returned with it), for
    /// `functions` of `project_id` with `auth` as its auth table, and waits
    /// for its first cycle.
    pub async fn start_clocked(
        sim: &Simulator,
        project_id: &str,
        functions: &[&str],
        auth: String,
    ) -> (Harness, Arc<ManualClock>) {
        let setup = Setup {
            auth: Some(auth),
            ..Setup::of(project_id, functions)
        };
        Self::start_on_clock(sim, setup).await
    }

    /// [`Harness::start_ready`] on a clock of its own, returned with it.
    pub async fn start_on_clock(sim: &Simulator, setup: Setup<'_>) -> (Harness, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let setup = Setup {
            clock: Some(Arc::clone(&clock)),
            ..setup
        };
        (Self::start_ready(sim, setup).await, clock)
    }

    /// Starts the exporter with `--web.config.file` `web`, on a simulator of
    /// `functions`, without waiting for readiness.
    pub async fn start_web(functions: &[&str], web: PathBuf) -> Harness {
        Self::start_with(
            simulator(functions),
            Setup {
                functions,
                web_config: Some(web),
                ..Setup::default()
            },
        )
        .await
    }

    /// Starts the exporter with a whole configuration file, in which
    /// `{endpoint}` stands for the simulator's URL and `{token_file}` for a
    /// file holding [`TOKEN`].
    pub async fn start_toml(
        sim: Simulator,
        toml: &str,
        clock: Option<Arc<ManualClock>>,
    ) -> Harness {
        let shutdown = CancellationToken::new();
        let sim_addr = serve_simulator(&sim, &shutdown).await;
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, TOKEN).unwrap();
        let config = toml
            .replace("{endpoint}", &format!("http://{sim_addr}"))
            .replace("{token_file}", &token_file.display().to_string());
        Self::launch(&config, shutdown, dir, clock, None).await
    }

    async fn launch(
        config: &str,
        shutdown: CancellationToken,
        dir: TempDir,
        clock: Option<Arc<ManualClock>>,
        web: Option<Arc<LiveWebConfig>>,
    ) -> Harness {
        let config = Config::from_toml(config, "test.toml").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut options = app::Options::default();
        if let Some(clock) = clock {
            options.clock = clock;
        }
        options.web = web;
        let exporter = app::start_with(&config, listener, shutdown.clone(), options)
            .await
            .unwrap();
        Harness {
            exporter,
            config,
            http: reqwest::Client::new(),
            shutdown,
            _dir: dir,
        }
    }

    /// Runs one cycle as the schedule would (only what is due).
    pub async fn run_cycle(&self) {
        tokio::time::timeout(DEADLINE, self.exporter.poller().run_cycle())
            .await
            .expect("poll cycle within the deadline")
            .unwrap();
    }

    pub async fn ready(&self) {
        tokio::time::timeout(DEADLINE, self.exporter.poller().wait_ready())
            .await
            .expect("first poll cycle within the deadline")
            .unwrap();
    }

    /// Runs one complete poll cycle now.
    pub async fn poll(&self) {
        tokio::time::timeout(DEADLINE, self.exporter.poller().poll_now())
            .await
            .expect("poll cycle within the deadline")
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.exporter.local_addr())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// Scrapes `/metrics`.
    pub async fn metrics(&self) -> Exposition {
        let r = self.get("/metrics").await;
        assert_eq!(r.status(), 200);
        Exposition::parse(&r.text().await.unwrap())
    }

    /// The status page at `/`, where each collector's last error is shown.
    pub async fn status_page(&self) -> String {
        self.get("/").await.text().await.unwrap()
    }

    /// Asserts that the status page shows `text`.
    pub async fn assert_page_shows(&self, text: &str) {
        let page = self.status_page().await;
        assert!(page.contains(text), "{page}");
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.exporter.wait())
            .await
            .expect("exporter stops within the deadline");
    }
}

/// A test configuration polling `functions` at `endpoint`. The interval
/// is long: the tests drive cycles themselves.
pub fn config_text(
    functions: &[&str],
    endpoint: &str,
    project_id: &str,
    auth: &str,
    polling: &str,
) -> String {
    let functions: Vec<String> = functions.iter().map(|f| format!("{f:?}")).collect();
    // A long interval unless the test sets one: tests drive cycles themselves.
    let interval = if polling
        .lines()
        .any(|l| l.trim_start().starts_with("interval"))
    {
        ""
    } else {
        "interval = \"1h\"\n"
    };
    format!(
        r#"
[web]
listen_address = "127.0.0.1:0"

[polling]
{interval}{polling}

[[projects]]
project_id = "{project_id}"
region = "{REGION}"
endpoint = "{endpoint}"
functions = [{}]
[projects.auth]
{auth}
"#,
        functions.join(", "),
    )
}

/// A configuration file for the built binary, which polls on its own:
/// every second, from the simulator, with a token read from a file.
pub struct BinaryFiles {
    dir: TempDir,
    endpoint: String,
    token_file: String,
    /// The configuration file.
    pub config: PathBuf,
}

impl BinaryFiles {
    /// Serves `sim` until `shutdown` and writes a configuration polling
    /// `functions` from it.
    pub async fn serve(sim: &Simulator, shutdown: &CancellationToken, functions: &[&str]) -> Self {
        let sim_addr = serve_simulator(sim, shutdown).await;
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, TOKEN).unwrap();
        let files = Self {
            config: dir.path().join("config.toml"),
            endpoint: format!("http://{sim_addr}"),
            token_file: token_file.display().to_string(),
            dir,
        };
        files.write(functions);
        files
    }

    /// The configuration polling `functions`.
    pub fn text(&self, functions: &[&str]) -> String {
        config_text(
            functions,
            &self.endpoint,
            PROJECT,
            &format!("type = \"token\"\ntoken_file = \"{}\"", self.token_file),
            "interval = \"1s\"\ntimeout = \"1s\"",
        )
    }

    /// Writes the configuration polling `functions` over the file.
    pub fn write(&self, functions: &[&str]) {
        std::fs::write(&self.config, self.text(functions)).unwrap();
    }

    /// The configuration file's path, for `--config.file`.
    pub fn config_path(&self) -> String {
        self.config.display().to_string()
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Secret files in a temporary directory.
pub struct SecretFiles {
    pub dir: TempDir,
}

impl SecretFiles {
    /// Writes each `(name, value)`.
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in files {
            std::fs::write(dir.path().join(name), value).unwrap();
        }
        Self { dir }
    }

    /// The path of the file `name`, as a configuration names it.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// Writes a secret file the way rotations do: a new file renamed over the
/// old one.
pub fn write_secret(path: &Path, value: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, value).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Everything logged in this process, at every level, from the first call
/// on. (nextest runs each test in its own process; under `cargo test`,
/// filter the lines by something unique to the test.)
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .try_init();
        buffer
    })
    .clone()
}

/// The captured log as text.
pub fn log_text() -> String {
    String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A parsed text exposition: samples by name and labels.
pub struct Exposition {
    pub text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(parse_sample)
            .collect();
        Self {
            text: text.to_owned(),
            samples,
        }
    }

    /// The value of the one sample of `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = self.matching(name, labels).map(|(_, _, v)| *v).collect();
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} samples",
            found.len()
        );
        found.first().copied()
    }

    /// Like [`Exposition::value`], but the sample must exist.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in:\n{}", self.text))
    }

    /// `functiongraph_collector_success` of one function's collector.
    pub fn success(&self, function: &str, collector: &str) -> f64 {
        self.get(
            "functiongraph_collector_success",
            &[("function", function), ("collector", collector)],
        )
    }

    /// `functiongraph_up` of one function.
    pub fn up(&self, function: &str) -> f64 {
        self.get("functiongraph_up", &[("function", function)])
    }

    /// `functiongraph_async_invocations_total` of one function and status.
    pub fn invocations(&self, function: &str, status: &str) -> f64 {
        self.get(
            "functiongraph_async_invocations_total",
            &[("function", function), ("status", status)],
        )
    }

    /// `functiongraph_async_invocation_records` of one function and status
    /// (the records in the window).
    pub fn records(&self, function: &str, status: &str) -> f64 {
        self.get(
            "functiongraph_async_invocation_records",
            &[("function", function), ("status", status)],
        )
    }

    /// `functiongraph_snapshot_state` of one function and state (1 for the
    /// state it is in).
    pub fn snapshot_state(&self, function: &str, state: &str) -> f64 {
        self.get(
            "functiongraph_snapshot_state",
            &[("function", function), ("state", state)],
        )
    }

    /// The sum of the samples of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, _, v)| v).sum()
    }

    /// Samples of `name` whose labels include `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a (String, BTreeMap<String, String>, f64)> + 'a {
        self.samples.iter().filter(move |(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Metric names present (sample names, with suffixes).
    pub fn names(&self) -> std::collections::BTreeSet<&str> {
        self.samples.iter().map(|(n, _, _)| n.as_str()).collect()
    }
}

fn parse_sample(line: &str) -> (String, BTreeMap<String, String>, f64) {
    let (series, value) = line.rsplit_once(' ').expect("sample has a value");
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line}"));
    let Some((name, rest)) = series.split_once('{') else {
        return (series.to_owned(), BTreeMap::new(), value);
    };
    let body = rest.strip_suffix('}').expect("closing brace");
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(
            chars.next(),
            Some('"'),
            "label value starts with a quote in {line}"
        );
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("dangling escape in {line}"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        if chars.peek() == Some(&',') {
            chars.next();
        }
        labels.insert(key.trim().to_owned(), value);
    }
    (name.to_owned(), labels, value)
}

/// The built binary with `args`, its log at the default level on a pipe
/// (stdout discarded).
pub fn binary_command(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_functiongraph_exporter"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Runs the built binary with `args` to its end, within the deadline: its
/// exit code, stdout and stderr (each read as it comes, so neither pipe
/// fills up).
pub fn run_binary(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = binary_command(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            pipe.read_to_string(&mut s).unwrap();
            s
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let status = exit_status(&mut child, &format!("{args:?} did not exit"));
    (
        status.code(),
        stdout.join().unwrap(),
        stderr.join().unwrap(),
    )
}

/// Starts the built binary with `args` (log at the default level, stdout
/// discarded) and returns it and the address it logs that it serves on,
/// in logfmt as Prometheus writes it (the default format).
pub fn spawn_binary(args: &[&str]) -> (std::process::Child, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_functiongraph_exporter"));
    cmd.args(args);
    let (child, lines) = spawn_serving(cmd, 1);
    let line = &lines[0];
    assert!(
        line.starts_with("time=") && line.contains(" level=info msg=\"serving metrics on "),
        "not logfmt: {line}"
    );
    let rest = line.split(SERVING).nth(1).unwrap_or_default();
    (
        child,
        rest.split("/metrics").next().unwrap_or_default().to_owned(),
    )
}

/// What the exporter logs before the address it serves metrics on.
pub const SERVING: &str = "serving metrics on http://";

/// Starts `cmd` (the binary, or a wrapper that execs it; log at the
/// default level, stdout discarded) and returns it and the first `count`
/// lines it logs saying where it serves metrics ([`SERVING`]). Its log is
/// drained in the background so it never blocks on a full pipe.
pub fn spawn_serving(
    mut cmd: std::process::Command,
    count: usize,
) -> (std::process::Child, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(SERVING) {
                let _ = tx.send(line);
            }
        }
    });
    let lines = (0..count)
        .map(|_| {
            rx.recv_timeout(DEADLINE)
                .expect("the exporter logs where it serves")
        })
        .collect();
    (child, lines)
}

/// Sends `signal` (`-HUP`, `-TERM`) to the process `child`.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Waits for `child` to exit, within the deadline; past it, kills it and
/// panics saying `what` did not happen.
pub fn exit_status(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` (`what` names it when it cannot start) with `input` on its
/// standard input, to its end: its status and what it wrote.
pub fn run_with_input(
    cmd: &mut std::process::Command,
    input: &str,
    what: &str,
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(what);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Sends `request` and returns the body of its response.
pub async fn body_of(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// Scrapes `http://{addr}/metrics` until `check` holds, within the deadline
/// (for a separate process polling on its own: this waits for a state, not
/// for a time).
pub async fn scrape_until(
    http: &reqwest::Client,
    addr: &str,
    what: &str,
    check: impl Fn(&Exposition) -> bool,
) -> Exposition {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let m = match http.get(format!("http://{addr}/metrics")).send().await {
            Ok(r) => Exposition::parse(&r.text().await.unwrap_or_default()),
            Err(_) => Exposition::parse(""),
        };
        if check(&m) {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} not seen within {DEADLINE:?}:\n{}",
            m.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
