//! The built binary: `--check-config`, `--version`, `--demo`, signals, and
//! `promtool check metrics` on the demo's live output.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::util::{DEADLINE, Exposition, SERVING, run_with_input};

const BIN: &str = env!("CARGO_BIN_EXE_functiongraph_exporter");

fn manifest(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("FUNCTIONGRAPH_TOKEN")
        .env_remove("HUAWEICLOUD_SDK_AK")
        .env_remove("HUAWEICLOUD_SDK_SK")
        .env_remove("HUAWEICLOUD_SDK_SECURITY_TOKEN")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A valid configuration: exit 0 and a summary, with no secret in it.
#[test]
fn check_config_summarises_without_secrets() {
    let secret = "sup3r-s3cret-token-value";
    let out = run(
        &[
            "--config",
            &manifest("config/example.toml"),
            "--check-config",
        ],
        &[
            ("HUAWEICLOUD_SDK_AK", "AKEXAMPLE"),
            ("HUAWEICLOUD_SDK_SK", secret),
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("configuration is valid"), "{stdout}");
    assert!(stdout.contains("projects: 1, functions: 3"), "{stdout}");
    assert!(stdout.contains("interval 1m"), "{stdout}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
}

/// Invalid configurations and unreadable secrets exit 2 with the reason.
#[test]
fn check_config_rejects_problems_with_exit_2() {
    let bad = manifest("tests/fixtures/config/unknown-key.bad.toml");
    let out = run(&["--config", &bad, "--check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("polling.intervall (line 3): unknown field `intervall`"));

    let out = run(
        &[
            "--config",
            &manifest("config/example.toml"),
            "--check-config",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "projects[0].auth: access key: environment variable HUAWEICLOUD_SDK_AK is not set"
        ),
        "{}",
        text(&out.stderr)
    );

    // Starting (not just checking) with a bad file also exits 2 before anything runs.
    let out = run(&["--config", &bad], &[]);
    assert_eq!(out.status.code(), Some(2));

    // No --config and no default file.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no configuration: pass --config.file FILE"));

    // Usage errors too.
    let out = run(&["--demo", "--config", "x.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn version_names_the_build() {
    let out = run(&["--version"], &[]);
    assert!(out.status.success());
    let v = text(&out.stdout);
    assert!(
        v.starts_with(&format!(
            "functiongraph_exporter {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{v}"
    );
    assert!(v.contains("revision") && v.contains("rustc"), "{v}");
}

/// The demo, started as a user would, on an ephemeral port.
pub(crate) struct Demo {
    child: Child,
    pub(crate) addr: String,
    http: reqwest::blocking::Client,
}

impl Demo {
    pub(crate) fn start() -> Demo {
        let (child, addr) =
            crate::util::spawn_binary(&["--demo", "--web.listen-address", "127.0.0.1:0"]);
        let demo = Demo {
            child,
            addr,
            http: reqwest::blocking::Client::new(),
        };
        demo.wait_ready();
        demo
    }

    pub(crate) fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    pub(crate) fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .unwrap()
    }

    /// Polls /-/ready: readiness is what the demo promises, not a time.
    fn wait_ready(&self) {
        let deadline = Instant::now() + DEADLINE;
        let mut backoff = Duration::from_millis(20);
        while self.get("/-/ready").status() != 200 {
            assert!(
                Instant::now() < deadline,
                "demo not ready within {DEADLINE:?}"
            );
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    pub(crate) fn metrics(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status(), 200);
        r.text().unwrap()
    }

    /// The exposition once the demo has counted an asynchronous invocation
    /// with a duration: the duration histogram appears only then, which
    /// may be a poll after readiness.
    pub(crate) fn metrics_after_first_invocation(&self) -> String {
        const HISTOGRAM: &str = "functiongraph_async_invocation_duration_seconds_bucket{";
        let deadline = Instant::now() + DEADLINE;
        let mut backoff = Duration::from_millis(20);
        loop {
            let body = self.metrics();
            if body.contains(HISTOGRAM) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "no invocation counted by the demo within {DEADLINE:?}"
            );
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// Sends SIGTERM and returns the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        crate::util::send_signal(&self.child, "-TERM");
        crate::util::exit_status(&mut self.child, "no exit of SIGTERM")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every metric of the contract has live values in the demo.
#[test]
fn demo_serves_every_metric() {
    let demo = Demo::start();
    let m = Exposition::parse(&demo.metrics_after_first_invocation());
    let names = m.names();
    for name in [
        "functiongraph_up",
        "functiongraph_collector_success",
        "functiongraph_async_invocation_records",
        "functiongraph_async_invocations_total",
        "functiongraph_async_invocation_duration_seconds_bucket",
        "functiongraph_async_invocation_last_failure_timestamp_seconds",
        "functiongraph_code_size_bytes",
        "functiongraph_code_last_modified_timestamp_seconds",
        "functiongraph_code_changes_total",
        "functiongraph_function_info",
        "functiongraph_max_instances",
        "functiongraph_versions",
        "functiongraph_version_info",
        "functiongraph_snapshot_state",
        "functiongraph_snapshot_enabled",
        "functiongraph_exporter_api_requests_total",
        "functiongraph_exporter_api_request_duration_seconds_bucket",
        "functiongraph_exporter_poll_duration_seconds",
        "functiongraph_exporter_last_poll_success_timestamp_seconds",
        "functiongraph_exporter_build_info",
    ] {
        assert!(names.contains(name), "{name} missing from the demo");
    }
    for (_, labels, v) in m.matching("functiongraph_up", &[]) {
        assert_eq!(*v, 1.0, "{labels:?} is down in the demo");
    }
    assert_eq!(m.matching("functiongraph_up", &[]).count(), 5);
    let status = demo.terminate();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
}

/// `promtool check metrics` has nothing to say about the live demo output.
#[test]
#[cfg_attr(not(has_promtool), ignore = "no promtool: apt install prometheus")]
fn demo_metrics_pass_promtool() {
    let demo = Demo::start();
    let body = demo.metrics_after_first_invocation();
    promtool_check_metrics(&body);
}

/// Runs `promtool check metrics` on `body` and requires silence and success.
pub fn promtool_check_metrics(body: &str) {
    let promtool = option_env!("FGE_PROMTOOL").unwrap_or("promtool");
    let mut cmd = Command::new(promtool);
    let out = run_with_input(cmd.args(["check", "metrics"]), body, "promtool runs");
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}"
    );
}

/// Starts `cmd` (the binary, or a wrapper that execs it) and returns it and
/// the addresses and paths it logs that it serves metrics on, e.g.
/// `127.0.0.1:4711/metrics`, once `count` of them were logged.
fn spawn_serving(cmd: Command, count: usize) -> (Child, Vec<String>) {
    let (child, lines) = crate::util::spawn_serving(cmd, count);
    let served = lines
        .iter()
        .map(|line| {
            let rest = line.split(SERVING).nth(1).unwrap_or_default();
            rest.split('"').next().unwrap_or_default().to_owned()
        })
        .collect();
    (child, served)
}

fn get(url: &str) -> (u16, String) {
    let r = reqwest::blocking::get(url).unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// `--web.listen-address` repeated: every address serves; `--web.telemetry-path`
/// moves the metrics (and the landing page links there).
#[test]
fn several_listen_addresses_and_a_telemetry_path() {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.telemetry-path",
        "/prom",
    ]);
    let (mut child, served) = spawn_serving(cmd, 2);
    assert_ne!(served[0], served[1]);
    for s in &served {
        assert!(s.ends_with("/prom"), "{s}");
        let (status, body) = get(&format!("http://{s}"));
        assert_eq!(status, 200);
        assert!(body.contains("functiongraph_exporter_build_info"), "{body}");
        let base = s.trim_end_matches("/prom");
        assert_eq!(get(&format!("http://{base}/metrics")).0, 404);
        let (_, landing) = get(&format!("http://{base}/"));
        assert!(
            landing.contains("<a href=\"/prom\">Metrics</a>"),
            "{landing}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `--web.systemd-socket`: the exporter serves on the socket it inherits as
/// file descriptor 3 (LISTEN_FDS=1, LISTEN_PID its own), as systemd passes it
/// from a .socket unit. Python stands in for systemd: it binds the socket,
/// sets the variables and execs the exporter (same process id).
#[test]
fn systemd_socket_activation() {
    let wrapper = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
sys.stderr.write("bound 127.0.0.1:%d\n" % s.getsockname()[1])
os.execv(sys.argv[1], sys.argv[1:])
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", wrapper, BIN, "--demo", "--web.systemd-socket"]);
    let (mut child, served) = spawn_serving(cmd, 1);
    let (status, body) = get(&format!("http://{}", served[0]));
    assert_eq!(status, 200);
    assert!(body.contains("functiongraph_exporter_build_info"), "{body}");
    let _ = child.kill();
    let _ = child.wait();

    // Without a socket from systemd: a clear error, exit 1.
    let out = run(&["--demo", "--web.systemd-socket"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--web.systemd-socket: no TCP socket was passed"),
        "{}",
        text(&out.stderr)
    );
}

/// `--config.file` is the flag; `--config` stays as an alias.
#[test]
fn config_file_flag_and_its_alias() {
    let bad = manifest("tests/fixtures/config/unknown-key.bad.toml");
    for flag in ["--config.file", "--config"] {
        let out = run(&[flag, &bad, "--check-config"], &[]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(
            text(&out.stderr).contains("unknown field `intervall`"),
            "{flag}"
        );
    }
}
