//! Probes as an attacker would make them (issue 10), one test per row: a
//! hostile upstream (redirects elsewhere, endless records, huge strings,
//! odd dates, expiries in the past), hostile clients of our port (the
//! lifecycle endpoint, a password-guessing flood), odd files (FIFOs,
//! devices, empty configurations, weakened web configurations) and broken
//! pipes. Everything runs against the simulator, or the built binary, over
//! real loopback HTTP.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::config::{AuthConfig, Config};
use functiongraph_exporter::secret::SecretSource;
use functiongraph_exporter::simulator::{Fault, FunctionSpec, Recorder, Simulator};
use reqwest::header::AUTHORIZATION;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::util::{
    BinaryFiles, DEADLINE, Exposition, Harness, PROJECT, REGION, SecretFiles, Setup, TOKEN,
    binary_command, body_of, captured_logs, config_text, inject_fault, log_text, run_binary,
    scrape_until, simulator, simulator_in,
};

const BIN: &str = env!("CARGO_BIN_EXE_functiongraph_exporter");
const AK: &str = "AKSECURITYTEST000001";
const SK: &str = "sk-security-SECRET-1a2b3c4d5e6f7a8b9c";
const STS: &str = "sts-security-TOKEN-9z8y7x6w";
const PASSWORD: &str = "pw-security-PASSWORD-5e4d3c";

fn capped(m: &Exposition, cap: &str) -> f64 {
    m.get("functiongraph_exporter_capped_total", &[("cap", cap)])
}

/// A recorder on its own loopback port: the "other host".
async fn recorder(shutdown: &CancellationToken) -> (Recorder, String) {
    let recorder = Recorder::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (r, s) = (recorder.clone(), shutdown.clone());
    tokio::spawn(async move { r.serve(listener, s).await });
    (recorder, format!("http://{addr}"))
}

fn password_auth(files: &SecretFiles) -> String {
    format!(
        "type = \"password\"\nuser_name = \"exporter\"\ndomain_name = \"acme\"\npassword_file = \"{}\"\niam_endpoint = \"{{endpoint}}\"\n",
        files.path("password")
    )
}

/// Starts the exporter on `default:f1` of `project`, logging in to IAM
/// with a password (the simulator gets the user), and waits for its first
/// cycle; the password file goes with it.
async fn start_with_password(sim: &Simulator, project: &str) -> (Harness, SecretFiles) {
    sim.add_iam_user("acme", "exporter", PASSWORD);
    let files = SecretFiles::new(&[("password", PASSWORD)]);
    let setup = Setup {
        auth: Some(password_auth(&files)),
        ..Setup::of(project, &["default:f1"])
    };
    (Harness::start_ready(sim, setup).await, files)
}

// === Row: the FunctionGraph endpoint answers 302 to another host ===

/// A redirect to another host is refused in every authentication mode: the
/// other host receives nothing (no token, no signature, no security token,
/// no project id, no Referer), the collector fails with the status and the
/// target host, and the status is counted like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_redirects_are_not_followed_in_any_auth_mode() {
    let shutdown = CancellationToken::new();
    let (recorder, other) = recorder(&shutdown).await;
    let files = SecretFiles::new(&[
        ("ak", AK),
        ("sk", SK),
        ("sts", STS),
        ("password", PASSWORD),
        ("token", TOKEN),
    ]);
    let modes = [
        (
            "a1000000000000000000000000000001",
            format!("type = \"token\"\ntoken_file = \"{}\"", files.path("token")),
        ),
        (
            "a1000000000000000000000000000002",
            format!(
                "type = \"aksk\"\naccess_key_file = \"{}\"\nsecret_key_file = \"{}\"\nsecurity_token_file = \"{}\"",
                files.path("ak"),
                files.path("sk"),
                files.path("sts")
            ),
        ),
        ("a1000000000000000000000000000003", password_auth(&files)),
    ];
    for (status, (project, auth)) in [302u16, 307, 308].into_iter().zip(modes) {
        let sim = simulator_in(project, &["default:f1"]);
        sim.add_temporary_access_key(AK, SK, STS);
        sim.add_iam_user("acme", "exporter", PASSWORD);
        let target = format!("{other}/v2/{project}/steal?x=1");
        inject_fault(
            &sim,
            project,
            "f1",
            Endpoint::Code,
            Fault::redirect(status, &target),
        );
        let h = Harness::start_ready(
            &sim,
            Setup {
                auth: Some(auth),
                polling: "retries = 0",
                ..Setup::of(project, &["default:f1"])
            },
        )
        .await;
        h.poll().await;
        let m = h.metrics().await;
        assert_eq!(m.success("f1", "code"), 0.0, "{status}");
        assert_eq!(
            m.success("f1", "versions"),
            1.0,
            "{status}: others unaffected"
        );
        assert!(
            m.get(
                "functiongraph_exporter_api_requests_total",
                &[("endpoint", "code"), ("code", &status.to_string())]
            ) >= 2.0,
            "{status}: counted like any status"
        );
        let page = h.status_page().await;
        assert!(
            page.contains(&format!("http {status}: redirect to {other} refused")),
            "{status}: the error names the status and the target host: {page}"
        );
        h.stop().await;
    }
    let received = recorder.received();
    assert!(
        received.is_empty(),
        "the other host received: {:?}",
        received.iter().map(|r| r.text()).collect::<Vec<_>>()
    );
    shutdown.cancel();
}

// === Row: the IAM endpoint answers 307 to another host ===

/// An IAM redirect is refused: the password body is not re-sent, no token
/// from elsewhere is trusted, and the API sees no request with one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_redirects_send_no_password_elsewhere() {
    let shutdown = CancellationToken::new();
    let (recorder, other) = recorder(&shutdown).await;
    let project = "a1000000000000000000000000000004";
    let sim = simulator_in(project, &["default:f1"]);
    sim.set_iam_fault(Some(Fault::redirect(
        307,
        &format!("{other}/v3/auth/tokens?nocatalog=true"),
    )));
    let (h, _files) = start_with_password(&sim, project).await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 0.0);
    // Each collector's request asks IAM (a failure that is not a refusal
    // starts no back-off), and each is refused.
    let iam = sim.requests_to(Endpoint::IamTokens);
    assert!(iam >= 1);
    assert_eq!(
        m.get(
            "functiongraph_exporter_api_requests_total",
            &[("endpoint", "iam_tokens"), ("code", "307")]
        ),
        iam as f64
    );
    assert_eq!(
        sim.requests(),
        iam,
        "no API request went out with a token from elsewhere"
    );
    assert!(recorder.received().is_empty(), "{:?}", recorder.received());
    let page = h.status_page().await;
    assert!(
        page.contains(&format!("http 307: redirect to {other} refused")),
        "{page}"
    );
    assert!(!page.contains(PASSWORD));
    h.stop().await;
    shutdown.cancel();
}

/// Plain HTTP to a host outside the loopback range is refused by the
/// configuration unless the project opts in.
#[test]
fn cleartext_credentials_need_an_explicit_opt_in() {
    let config = |endpoint: &str, iam: &str, extra: &str| {
        format!(
            r#"
[[projects]]
project_id = "{PROJECT}"
region = "{REGION}"
endpoint = "{endpoint}"
functions = ["f"]
{extra}
[projects.auth]
type = "password"
user_name = "u"
domain_name = "d"
iam_endpoint = "{iam}"
"#
        )
    };
    let https = "https://iam.example.com";
    for (endpoint, iam, key) in [
        ("http://fg.example.com", https, "projects[0].endpoint"),
        ("http://10.0.0.1:8080", https, "projects[0].endpoint"),
        (
            "https://fg.example.com",
            "http://iam.example.com",
            "projects[0].auth.iam_endpoint",
        ),
    ] {
        let err = Config::from_toml(&config(endpoint, iam, ""), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("t.toml: {key}: ")) && err.contains("allow_insecure_http"),
            "{err}"
        );
        let ok = Config::from_toml(
            &config(endpoint, iam, "allow_insecure_http = true"),
            "t.toml",
        )
        .unwrap();
        assert!(ok.projects[0].allow_insecure_http);
    }
    for local in [
        "http://127.0.0.1:9000",
        "http://[::1]:9000",
        "http://localhost:9000",
    ] {
        Config::from_toml(&config(local, local, ""), "t.toml").unwrap();
    }
}

// === Row: POST /-/reload without basic auth ===

/// The exporter binary with its log lines kept.
struct Binary {
    child: Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    fn spawn(args: &[&str]) -> Binary {
        let mut child = binary_command(args).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("serving metrics on http://").nth(1) {
                    let _ = tx.send(rest.split("/metrics").next().unwrap_or_default().to_owned());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(DEADLINE)
            .expect("the exporter logs its address");
        Binary { child, addr, lines }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn signal(&self, signal: &str) {
        crate::util::send_signal(&self.child, signal);
    }

    /// Waits until a log line contains `needle` (the binary logs what it
    /// did; this waits for that, not for a time).
    fn wait_for_line(&self, needle: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}: {:#?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn count_lines(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Without `--web.enable-lifecycle`, `POST /-/reload` answers 403 as
/// Prometheus does, while SIGHUP still reloads; an empty configuration
/// applied by SIGHUP is refused and logged, and the running one goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_api_is_off_by_default_and_sighup_always_works() {
    let sim = simulator(&["default:f1", "default:f2"]);
    let shutdown = CancellationToken::new();
    let files = BinaryFiles::serve(&sim, &shutdown, &["default:f1"]).await;
    let exporter = Binary::spawn(&["--config", &files.config_path()]);
    let http = reqwest::Client::new();
    scrape_until(&http, &exporter.addr, "f1 up", |m| {
        m.value("functiongraph_up", &[("function", "f1")]) == Some(1.0)
    })
    .await;

    files.write(&["default:f1", "default:f2"]);
    for method in [reqwest::Method::POST, reqwest::Method::PUT] {
        let r = http
            .request(method, exporter.url("/-/reload"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.text().await.unwrap().trim(),
            "Lifecycle API is not enabled."
        );
    }
    assert_eq!(exporter.count_lines("configuration reloaded"), 0);
    exporter.signal("-HUP");
    scrape_until(&http, &exporter.addr, "f2 up after SIGHUP", |m| {
        m.value("functiongraph_up", &[("function", "f2")]) == Some(1.0)
    })
    .await;

    // An empty file: refused, logged, and nothing changes.
    std::fs::write(&files.config, "").unwrap();
    exporter.signal("-HUP");
    exporter.wait_for_line("reload refused");
    assert!(
        exporter.count_lines("at least one [[projects]] table is required") >= 1,
        "{:#?}",
        exporter.lines.lock().unwrap()
    );
    let m = scrape_until(&http, &exporter.addr, "a poll after the refusal", |_| true).await;
    assert_eq!(m.up("f1"), 1.0);
    assert_eq!(m.up("f2"), 1.0);
    let ready = http.get(exporter.url("/-/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    drop(exporter);
    shutdown.cancel();
}

/// With `--web.enable-lifecycle`, reloads over HTTP work but are
/// rate-limited: a burst gets a few through, then 429 with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_reloads_are_rate_limited() {
    let sim = simulator(&["default:f1"]);
    let shutdown = CancellationToken::new();
    let files = BinaryFiles::serve(&sim, &shutdown, &["default:f1"]).await;
    let exporter = Binary::spawn(&["--config", &files.config_path(), "--web.enable-lifecycle"]);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let (mut accepted, mut limited) = (0u64, 0u64);
    for _ in 0..40 {
        let r = http.post(exporter.url("/-/reload")).send().await.unwrap();
        match r.status().as_u16() {
            200 => accepted += 1,
            429 => {
                limited += 1;
                let retry: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=2).contains(&retry), "{retry}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // Five at once, then one per two seconds of however long this took.
    let allowed = 5 + started.elapsed().as_secs() / 2 + 1;
    assert!(
        accepted >= 1 && accepted <= allowed,
        "{accepted} of 40 accepted, at most {allowed}"
    );
    assert!(limited >= 1);
    drop(exporter);
    shutdown.cancel();
}

/// A reload keeps a project's authentication back-off (and cached token)
/// while its credentials are unchanged: a refused key is not tried again
/// early. New credentials start afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_back_off_of_unchanged_credentials() {
    let sim = simulator(&["default:f1", "default:f2"]);
    let h = Harness::start_ready(
        &sim,
        Setup {
            functions: &["default:f1", "default:f2"],
            token: "a-wrong-token",
            ..Setup::default()
        },
    )
    .await;
    assert_eq!(sim.requests(), 1, "one probe, then the back-off");
    for _ in 0..3 {
        h.exporter.reload(&h.config).await.unwrap();
        h.poll().await;
    }
    assert_eq!(sim.requests(), 1, "reloads do not reset the back-off");
    let m = h.metrics().await;
    assert_eq!(
        m.get(
            "functiongraph_exporter_auth_failures_total",
            &[("project_id", PROJECT)]
        ),
        1.0
    );

    // Other credentials: probed at once (and they work).
    let files = SecretFiles::new(&[("token", TOKEN)]);
    let mut fixed = h.config.clone();
    fixed.projects[0].auth = AuthConfig::token(SecretSource::File(files.path("token").into()));
    h.exporter.reload(&fixed).await.unwrap();
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    assert_eq!(m.up("f2"), 1.0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_cached_iam_token() {
    let project = "a1000000000000000000000000000005";
    let sim = simulator_in(project, &["default:f1"]);
    let (h, _files) = start_with_password(&sim, project).await;
    assert_eq!(sim.requests_to(Endpoint::IamTokens), 1);
    for _ in 0..3 {
        h.exporter.reload(&h.config).await.unwrap();
        h.poll().await;
    }
    assert_eq!(sim.requests_to(Endpoint::IamTokens), 1, "the token is kept");
    assert_eq!(h.metrics().await.up("f1"), 1.0);
    h.stop().await;
}

// === Row: an empty config file ===

#[test]
fn a_configuration_without_projects_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("empty.toml", ""),
        ("no-projects.toml", "[polling]\ninterval = \"30s\"\n"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = Command::new(BIN)
            .args(["--config", &path.display().to_string(), "--check-config"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{}: projects: at least one [[projects]] table is required",
                path.display()
            )),
            "{name}: {stderr}"
        );
    }
}

// === Row: an empty web config applied at run time ===

fn bcrypt_hash(password: &str, cost: u32) -> String {
    bcrypt::hash(password, cost).unwrap()
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Removing basic authentication at run time is logged at WARN and shows
/// in `functiongraph_exporter_web_basic_auth_enabled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_basic_auth_is_never_silent() {
    captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web-downgrade.yml");
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  alice: \"{}\"\n", bcrypt_hash("pw", 4)),
    )
    .unwrap();
    let h = Harness::start_web(&["default:f1"], web.clone()).await;
    h.ready().await;
    let fresh = || {
        reqwest::Client::builder()
            .timeout(DEADLINE)
            .build()
            .unwrap()
    };
    let body = body_of(
        fresh()
            .get(h.url("/metrics"))
            .header(AUTHORIZATION, basic("alice", "pw")),
    )
    .await;
    let m = Exposition::parse(&body);
    assert_eq!(
        m.get("functiongraph_exporter_web_basic_auth_enabled", &[]),
        1.0
    );
    assert_eq!(m.get("functiongraph_exporter_web_tls_enabled", &[]), 0.0);

    let tmp = web.with_extension("tmp");
    std::fs::write(&tmp, "").unwrap();
    std::fs::rename(&tmp, &web).unwrap();
    let r = fresh().get(h.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the new (empty) configuration is in force");
    let m = Exposition::parse(&r.text().await.unwrap());
    assert_eq!(
        m.get("functiongraph_exporter_web_basic_auth_enabled", &[]),
        0.0
    );
    let web_name = web.display().to_string();
    let warned: Vec<String> = log_text()
        .lines()
        .filter(|l| l.contains("WITHOUT basic authentication") && l.contains(&web_name))
        .map(str::to_owned)
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("WARN"), "{}", warned[0]);
    h.stop().await;
}

// === Row: 250 concurrent clients with a wrong password ===

/// While 250 clients from one address guess passwords, a correct login
/// that is not cached yet, from another address, is verified next: not
/// after the guesses queued before it. Checked by counting the guesses that
/// got a verdict (401) while the login waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_login_is_not_queued_behind_a_guessing_flood() {
    const FLOODERS: usize = 250;
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    // Cost 8: each wrong guess costs a real bcrypt (a few ms here).
    std::fs::write(
        &web,
        format!(
            "basic_auth_users:\n  prometheus: \"{}\"\n",
            bcrypt_hash("the-right-one", 8)
        ),
    )
    .unwrap();
    let h = Harness::start_web(&["default:f1"], web).await;
    h.ready().await;
    let url = h.url("/-/healthy");
    let stop = Arc::new(AtomicBool::new(false));
    let verdicts = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    // One client (its pool opens a connection per concurrent request).
    let client = reqwest::Client::builder()
        .timeout(DEADLINE)
        .local_address(IpAddr::from([127, 0, 0, 1]))
        .build()
        .unwrap();
    let mut flood = Vec::new();
    for i in 0..FLOODERS {
        let (url, stop, verdicts, busy, client) = (
            url.clone(),
            Arc::clone(&stop),
            Arc::clone(&verdicts),
            Arc::clone(&busy),
            client.clone(),
        );
        flood.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // Every guess is new: no cache helps.
                let r = client
                    .get(&url)
                    .header(
                        AUTHORIZATION,
                        basic("prometheus", &format!("guess-{i}-{n}")),
                    )
                    .send()
                    .await;
                match r.map(|r| r.status().as_u16()) {
                    Ok(401) => {
                        verdicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(429) => {
                        busy.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                    Ok(other) => panic!("a guess got {other}"),
                    Err(_) => {}
                }
            }
        }));
    }
    // The flood is on once guesses are being verified and turned away.
    let deadline = Instant::now() + DEADLINE;
    while verdicts.load(Ordering::Relaxed) < 5 || busy.load(Ordering::Relaxed) < 5 {
        assert!(Instant::now() < deadline, "the flood did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let legit = reqwest::Client::builder()
        .timeout(DEADLINE)
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let before = verdicts.load(Ordering::Relaxed);
    let r = legit
        .get(&url)
        .header(AUTHORIZATION, basic("prometheus", "the-right-one"))
        .send()
        .await
        .unwrap();
    let during = verdicts.load(Ordering::Relaxed) - before;
    assert_eq!(r.status(), 200);
    assert!(
        !flood.iter().all(|t| t.is_finished()),
        "the flood was still on when the login succeeded"
    );
    stop.store(true, Ordering::Relaxed);
    for t in flood {
        t.await.unwrap();
    }
    // One verification may be running and the flooding address gets every
    // other turn; a queue in arrival order would put up to 250 ahead.
    assert!(
        during <= 10,
        "{during} guesses were verified while the login waited"
    );
    h.stop().await;
}

// === Row: endless async pages of fresh records with 2 KB request ids ===

/// Records with over-long request ids are dropped as they are decoded (and
/// counted, and logged once), so such an upstream costs nothing that
/// stays; the function's other collectors and other functions carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_records_with_long_request_ids_are_dropped() {
    captured_logs();
    let project = "a1000000000000000000000000000006";
    let sim = simulator_in(project, &["default:endless", "default:calm"]);
    inject_fault(
        &sim,
        project,
        "endless",
        Endpoint::AsyncInvocations,
        Fault::EndlessRecords {
            request_id_len: 2048,
        },
    );
    let h = Harness::start_ready(
        &sim,
        Setup::of(project, &["default:endless", "default:calm"]),
    )
    .await;
    let before = sim.requests_to(Endpoint::AsyncInvocations);
    for _ in 0..3 {
        h.poll().await;
    }
    let m = h.metrics().await;
    assert_eq!(m.up("calm"), 1.0);
    assert_eq!(m.up("endless"), 1.0);
    assert_eq!(m.records("endless", "SUCCESS"), 0.0, "nothing kept");
    assert!(capped(&m, "request_id_length") >= 4.0 * 500.0);
    // A page with nothing usable ends the listing: a few requests per poll.
    assert!(sim.requests_to(Endpoint::AsyncInvocations) - before <= 3 * 4);
    let logs = log_text();
    let warned = logs
        .lines()
        .filter(|l| l.contains("exceeds a cap") && l.contains("request_id_length"))
        .count();
    assert_eq!(
        warned, 1,
        "one line for the change of state, not one per page"
    );
    h.stop().await;
}

// === Row: upstream strings: 8 MB error message, 1,000 versions with 2 KB
// names, 5,000 quota types ===

/// An 8 MB error message, and an 8 MB string where a number belongs, end
/// up as a few hundred characters in the log and on the landing page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_error_texts_are_cut() {
    captured_logs();
    let project = "a1000000000000000000000000000007";
    let sim = simulator_in(project, &["default:loud", "default:typo"]);
    let huge = "E".repeat(8 << 20);
    inject_fault(
        &sim,
        project,
        "loud",
        Endpoint::Code,
        Fault::error(500, "FSS.0500", &huge),
    );
    inject_fault(
        &sim,
        project,
        "typo",
        Endpoint::Code,
        Fault::Body(format!("{{\"code_size\":\"{huge}\"}}")),
    );
    let h = Harness::start_ready(
        &sim,
        Setup {
            polling: "retries = 0",
            ..Setup::of(project, &["default:loud", "default:typo"])
        },
    )
    .await;
    let m = h.metrics().await;
    assert_eq!(m.success("loud", "code"), 0.0);
    assert_eq!(m.success("typo", "code"), 0.0);
    assert!(capped(&m, "error_text") >= 2.0);
    let page = h.status_page().await;
    assert!(
        page.len() < 16 * 1024,
        "landing page of {} bytes",
        page.len()
    );
    assert!(page.contains("code: http 500 FSS.0500: EEEE"), "{page}");
    assert!(page.contains("code_size: invalid value"), "{page}");
    let longest = log_text().lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4096, "a log line of {longest} bytes");
    h.stop().await;
}

/// 1,000 versions with 2 KB names, and a runtime of 2 KB: the names are
/// dropped, the runtime is cut; no label is longer than the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_upstream_strings_never_become_long_labels() {
    let project = "a1000000000000000000000000000008";
    let sim = simulator_in(project, &[]);
    let mut spec = FunctionSpec::new("default", "f1").runtime(&"R".repeat(2048));
    for i in 0..1000 {
        spec = spec.version(&format!("v{i:04}{}", "n".repeat(2043)));
    }
    sim.add_function(project, spec);
    // A discovered function whose name is 2 KB long is not monitored.
    sim.add_function(project, FunctionSpec::new("default", &"g".repeat(2048)));
    let h = Harness::start_ready(
        &sim,
        Setup {
            project: "[projects.discovery]\nenabled = true",
            ..Setup::of(project, &["default:f1"])
        },
    )
    .await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    assert_eq!(
        m.get("functiongraph_versions", &[("function", "f1")]),
        1.0,
        "latest only"
    );
    assert_eq!(
        m.get(
            "functiongraph_exporter_functions",
            &[("project_id", project)]
        ),
        1.0
    );
    // The long names of the first pages (a page the caps leave empty ends
    // the listing, as an empty page does), the runtime of the code answer
    // and of `latest`, the discovered name.
    assert!(
        capped(&m, "label_length") >= 19.0 + 20.0 + 3.0,
        "{}",
        capped(&m, "label_length")
    );
    for line in m.text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.len() < 1024, "{line}");
    }
    let info = m
        .matching("functiongraph_function_info", &[("function", "f1")])
        .next()
        .unwrap();
    assert_eq!(info.1["runtime"].chars().count(), 128);
    h.stop().await;
}

/// Beyond `polling.max_versions` and `polling.max_quota_types`, versions
/// and quota types are dropped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_quota_types_are_capped() {
    let project = "a1000000000000000000000000000009";
    let sim = simulator_in(project, &[]);
    let mut spec = FunctionSpec::new("default", "f1");
    for i in 0..300 {
        spec = spec.version(&format!("v{i:03}"));
    }
    sim.add_function(project, spec);
    sim.add_quota_types(5000, 8);
    sim.add_quota_types(3, 2048);
    let setup = Setup {
        polling: "max_versions = 50\nmax_quota_types = 20\n[collectors]\nquotas = true",
        ..Setup::of(project, &["default:f1"])
    };
    let h = Harness::start_ready(&sim, setup).await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    assert_eq!(m.get("functiongraph_versions", &[("function", "f1")]), 50.0);
    assert_eq!(
        m.matching("functiongraph_version_info", &[("function", "f1")])
            .count(),
        50
    );
    assert!(
        m.value(
            "functiongraph_version_info",
            &[("function", "f1"), ("version", "latest")]
        )
        .is_some(),
        "latest is always kept"
    );
    assert_eq!(capped(&m, "versions"), 251.0);
    // 20 quota types kept, one of them in bytes (fgs_func_code_size).
    assert_eq!(
        m.matching("functiongraph_quota_limit", &[]).count()
            + m.matching("functiongraph_quota_limit_bytes", &[]).count(),
        20
    );
    assert_eq!(capped(&m, "quota_types"), (4 + 5000 - 20) as f64);
    assert_eq!(capped(&m, "label_length"), 3.0);
    #[cfg(has_promtool)]
    crate::cli::promtool_check_metrics(&m.text);
    h.stop().await;
}

/// A page with more records than asked for, and a record whose status is
/// a paragraph: the extra records and that record are dropped and counted,
/// so pages cannot add up to more than pages × page size small records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_pages_and_record_fields_are_bounded() {
    let project = "a100000000000000000000000000000c";
    let sim = simulator_in(project, &["default:f1"]);
    let time = functiongraph_exporter::timefmt::format_query_time(
        functiongraph_exporter::timefmt::now_unix() - 10,
    );
    let mut records: Vec<String> = (0..600)
        .map(|i| {
            format!(
                r#"{{"request_id":"r{i:04}","status":"SUCCESS","start_time":"{time}","end_time":"{time}"}}"#
            )
        })
        .collect();
    records[0] = format!(
        r#"{{"request_id":"long-status","status":"{}","start_time":"{time}"}}"#,
        "S".repeat(5000)
    );
    inject_fault(
        &sim,
        project,
        "f1",
        Endpoint::AsyncInvocations,
        Fault::Body(format!(r#"{{"invocations":[{}]}}"#, records.join(","))),
    );
    let h = Harness::start_ready(&sim, Setup::of(project, &["default:f1"])).await;
    let m = h.metrics().await;
    assert_eq!(m.success("f1", "async_invocations"), 1.0);
    assert_eq!(
        m.records("f1", "SUCCESS"),
        499.0,
        "the 500 asked for, less the one with a paragraph for a status"
    );
    assert_eq!(capped(&m, "page_size"), 100.0);
    assert_eq!(capped(&m, "record_field_length"), 1.0);
    h.stop().await;
}

// === Row: token_file is a FIFO / /dev/zero ===

/// A configuration file in `dir` whose token is read from `token_file`.
fn token_config(dir: &std::path::Path, token_file: &str) -> String {
    let path = dir.join("config.toml");
    let auth = format!("type = \"token\"\ntoken_file = \"{token_file}\"");
    let text = config_text(&["f"], "http://127.0.0.1:9", PROJECT, &auth, "");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A FIFO, a device, a directory or an oversized file as a secret file (or
/// as the configuration file) fails at once with exit 2, naming what it is;
/// `--check-config` warns about secret files others can read.
#[test]
fn secret_files_must_be_small_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 2 << 20]).unwrap();
    let fifo_name = fifo.display().to_string();
    for (file, expect) in [
        (fifo_name.as_str(), "not a regular file (a FIFO)"),
        ("/dev/zero", "not a regular file (a character device)"),
        ("/tmp", "not a regular file (a directory)"),
        (
            &big.display().to_string(),
            "more than the limit of 1048576 bytes",
        ),
    ] {
        let config = token_config(dir.path(), file);
        for mode in [&["--check-config"][..], &[]] {
            let mut args = vec!["--config", &config];
            args.extend_from_slice(mode);
            args.extend_from_slice(&["--web.listen-address", "127.0.0.1:0"]);
            let (code, _, stderr) = run_binary(&args);
            assert_eq!(code, Some(2), "{file} {mode:?}: {stderr}");
            assert!(stderr.contains(expect), "{file} {mode:?}: {stderr}");
        }
    }
    // The configuration file itself.
    let (code, _, stderr) = run_binary(&["--config", &fifo_name, "--check-config"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not a regular file (a FIFO)"), "{stderr}");

    // Readable by others: a warning, as the run gives.
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = token_config(dir.path(), &token.display().to_string());
    let (code, _, stderr) = run_binary(&["--config", &config, "--check-config"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: secret file") && stderr.contains("is readable by every user"),
        "{stderr}"
    );
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, _, stderr) = run_binary(&["--config", &config, "--check-config"]);
    assert_eq!(code, Some(0));
    assert!(!stderr.contains("warning"), "{stderr}");
}

// === Row: stderr becomes a broken pipe ===

/// A pipe whose reading end is already closed: every write to it fails.
fn broken_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

/// With standard error broken, the exporter runs, and SIGTERM stops it
/// cleanly (its "shutting down" log line fails to write, quietly).
#[test]
fn sigterm_stops_the_exporter_with_a_broken_stderr() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["--demo", "--web.listen-address", &listen])
        .env_remove("RUST_LOG")
        .stdout(broken_pipe())
        .stderr(broken_pipe())
        .spawn()
        .unwrap();
    let http = reqwest::blocking::Client::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ready = http
            .get(format!("http://{listen}/-/ready"))
            .send()
            .is_ok_and(|r| r.status() == 200);
        if ready {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the exporter died");
        assert!(Instant::now() < deadline, "not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    crate::util::send_signal(&child, "-TERM");
    let status = crate::util::exit_status(&mut child, "SIGTERM did not stop the exporter");
    assert_eq!(status.code(), Some(0));
}

/// `--check-config | head -1`: a closed stdout ends the output, not the
/// process with a panic.
#[test]
fn check_config_into_a_closed_pipe_exits_cleanly() {
    let out = Command::new(BIN)
        .args(["--demo", "--check-config"])
        .env_remove("RUST_LOG")
        .stdout(broken_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// === Row: IAM answers with an expiry in the past ===

/// A token IAM says has already expired is used, with a warning, and a new
/// one is asked for no sooner than a minute later, not per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_in_the_past_does_not_mean_a_token_per_request() {
    captured_logs();
    let project = "a100000000000000000000000000000a";
    let functions = ["default:f1", "default:f2"];
    let sim = simulator_in(project, &functions);
    sim.add_iam_user("acme", "exporter", PASSWORD);
    sim.set_stated_token_expiry(Some(-3600));
    let files = SecretFiles::new(&[("password", PASSWORD)]);
    let (h, clock) = Harness::start_clocked(&sim, project, &functions, password_auth(&files)).await;
    for _ in 0..3 {
        h.poll().await;
    }
    assert!(sim.requests() > 20);
    assert_eq!(sim.requests_to(Endpoint::IamTokens), 1);
    clock.advance(Duration::from_secs(61));
    h.poll().await;
    assert_eq!(sim.requests_to(Endpoint::IamTokens), 2);
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    let logs = log_text();
    assert!(
        logs.lines().any(|l| l.contains("WARN")
            && l.contains(project)
            && l.contains("has already expired")),
        "{logs}"
    );
    h.stop().await;
}

// === Row: a date after the year 5138 ===

/// `9999-12-31 23:59:59` is that date, not milliseconds; a date in an
/// undocumented format is absent rather than wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_future_dates_are_read_as_dates() {
    let project = "a100000000000000000000000000000b";
    let sim = simulator_in(project, &["default:far", "default:odd"]);
    assert!(sim.set_code(project, "default", "far", "d1", 10, 253_402_300_799));
    inject_fault(
        &sim,
        project,
        "odd",
        Endpoint::Code,
        Fault::Body(r#"{"code_size":10,"last_modified":"31/12/2026 10:00"}"#.into()),
    );
    let h = Harness::start_ready(&sim, Setup::of(project, &["default:far", "default:odd"])).await;
    let m = h.metrics().await;
    let modified = |f| {
        m.value(
            "functiongraph_code_last_modified_timestamp_seconds",
            &[("function", f)],
        )
    };
    assert_eq!(modified("far"), Some(253_402_300_799.0));
    assert_eq!(modified("odd"), None);
    assert_eq!(
        m.get("functiongraph_code_size_bytes", &[("function", "odd")]),
        10.0
    );
    h.stop().await;
}

// === Row: 40,000 listed functions ===

/// 40,000 listed functions validate (the duplicate check is a hash lookup,
/// not a scan; BENCHMARKS.md has the time), and a duplicate among them is
/// still named with both positions.
#[test]
fn forty_thousand_functions_validate_and_duplicates_are_found() {
    let mut names: Vec<String> = (0..40_000)
        .map(|i| format!("\"default:f{i:05}\""))
        .collect();
    let config = |names: &[String]| {
        format!(
            "[[projects]]\nproject_id = \"{PROJECT}\"\nregion = \"{REGION}\"\nfunctions = [{}]\n[projects.auth]\ntype = \"token\"\n",
            names.join(",")
        )
    };
    let c = Config::from_toml(&config(&names), "t.toml").unwrap();
    assert_eq!(c.projects[0].functions.len(), 40_000);
    names.push("\"f12345\"".into());
    let err = Config::from_toml(&config(&names), "t.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("t.toml: projects[0].functions[40000]: \"f12345\" is the same function as functions[12345]"),
        "{err}"
    );
}
