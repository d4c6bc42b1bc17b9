//! From the alert to the failed request: exemplars in OpenMetrics (checked
//! by a strict parser), failures by error code, the `/failures` page in
//! HTML and JSON, and the optional log line per failure.

use std::process::Command;

use functiongraph_exporter::simulator::{Invocation, SimStatus, Simulator};
use functiongraph_exporter::timefmt::now_unix;
use serde_json::Value;

use crate::util::{
    Exposition, Harness, PROJECT, Setup, body_of, captured_logs, log_text, run_with_input,
    simulator,
};

const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

fn failed(id: &str, code: i64, message: &str, start: i64, end: Option<i64>) -> Invocation {
    let mut inv = Invocation::new(id, SimStatus::Fail, start, end);
    inv.error_code = code;
    inv.error_message = message.to_owned();
    inv
}

/// An exporter whose first poll saw nothing, then one poll that counts
/// failures of `pay` with a hostile message, a discard and a success.
async fn scenario(polling: &str) -> (Harness, Simulator, i64) {
    let sim = simulator(&["default:pay", "default:other"]);
    let h = Harness::start_ready(
        &sim,
        Setup {
            functions: &["default:pay", "default:other"],
            polling,
            ..Setup::default()
        },
    )
    .await;
    let now = now_unix();
    let add = |inv| assert!(sim.add_invocation(PROJECT, "default", "pay", inv));
    add(failed("req-a", 500, "boom", now - 30, Some(now - 28)));
    add(failed(
        "req-<b>",
        429,
        "<script>alert(\"x\")</script> & more",
        now - 20,
        Some(now - 9),
    ));
    add(failed("req-c", 500, "boom again", now - 10, Some(now - 8)));
    add(Invocation::new("req-d", SimStatus::Discard, now - 7, None));
    add(Invocation::new(
        "req-s",
        SimStatus::Success,
        now - 5,
        Some(now - 4),
    ));
    h.poll().await;
    (h, sim, now)
}

async fn scrape(h: &Harness, accept: &str) -> String {
    body_of(h.http.get(h.url("/metrics")).header("accept", accept)).await
}

/// Starts the exporter on `default:pay` with `failures` as its
/// `[failures]` table.
async fn start_paying(sim: &Simulator, failures: &str) -> Harness {
    let toml = format!(
        "{}\n[failures]\n{failures}\n",
        crate::util::config_text(
            &["default:pay"],
            "{endpoint}",
            PROJECT,
            "type = \"token\"\ntoken_file = \"{token_file}\"",
            "",
        )
    );
    Harness::start_toml(sim.clone(), &toml, None).await
}

/// `path` of the failures page, asked for as JSON.
async fn failures_json(h: &Harness, path: &str) -> Value {
    let body = body_of(h.http.get(h.url(path)).header("accept", "application/json")).await;
    serde_json::from_str(&body).unwrap()
}

/// The OpenMetrics exposition types the invocation counter as a counter,
/// carries the latest FAIL and DISCARD request as exemplars (end time as
/// their timestamp) and the latest request of each histogram bucket; text
/// 0.0.4 carries none. Both pass their strict checkers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_carries_request_id_exemplars() {
    let (h, _sim, now) = scenario("").await;
    let om = scrape(&h, PROMETHEUS_ACCEPT).await;
    assert!(
        om.contains("\n# TYPE functiongraph_async_invocations counter\n"),
        "{om}"
    );
    let line = |status: &str| {
        om.lines()
            .find(|l| {
                l.starts_with("functiongraph_async_invocations_total{function=\"pay\"")
                    && l.contains(&format!("status=\"{status}\""))
            })
            .unwrap_or_else(|| panic!("no {status} sample in {om}"))
            .to_owned()
    };
    assert!(
        line("FAIL").ends_with(&format!("}} 3 # {{request_id=\"req-c\"}} 1 {}.0", now - 8)),
        "{}",
        line("FAIL")
    );
    assert!(
        line("DISCARD").contains("} 1 # {request_id=\"req-d\"} 1 "),
        "{}",
        line("DISCARD")
    );
    assert!(!line("SUCCESS").contains('#'), "{}", line("SUCCESS"));
    // The 2 s failures and the 1 s success share a bucket: its exemplar is
    // the last one counted there.
    assert!(
        om.contains("functiongraph_async_invocation_duration_seconds_bucket{function=\"pay\",package=\"default\",qualifier=\"latest\",project_id=\"0123456789abcdef0123456789abcdef\",le=\"30.0\"} "),
        "{om}"
    );
    let bucket_exemplars = om
        .lines()
        .filter(|l| {
            l.starts_with("functiongraph_async_invocation_duration_seconds_bucket{function=\"pay\"")
                && l.contains(" # {request_id=")
        })
        .count();
    assert!(bucket_exemplars >= 2, "{om}");

    let text = scrape(&h, "text/plain;version=0.0.4").await;
    assert!(!text.contains(" # {"), "no exemplars in text 0.0.4");
    assert!(text.contains("\n# TYPE functiongraph_async_invocations_total counter\n"));
    check_openmetrics(&om);
    #[cfg(has_promtool)]
    crate::cli::promtool_check_metrics(&text);
    h.stop().await;
}

/// Runs the strict OpenMetrics parser on `om` and returns what it found
/// (families with their types, exemplars).
fn check_openmetrics(om: &str) -> String {
    if cfg!(not(has_openmetrics_parser)) {
        eprintln!("python3 prometheus_client not installed: strict OpenMetrics check skipped");
        return String::new();
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/tools/openmetrics_check.py"
    );
    let out = run_with_input(Command::new("python3").arg(script), om, "python3 runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("family functiongraph_async_invocations counter"),
        "{report}"
    );
    assert!(
        report.contains("exemplar functiongraph_async_invocations_total request_id="),
        "{report}"
    );
    report
}

/// `pay`'s failures with the error code `code`.
fn by_code(m: &Exposition, code: &str) -> Option<f64> {
    m.value(
        "functiongraph_async_invocation_failures_total",
        &[("function", "pay"), ("error_code", code)],
    )
}

/// Failures by error code sum to the FAIL counter, each request once, and
/// beyond the cap the codes are `other`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_by_error_code_sum_to_the_fail_counter() {
    let (h, sim, now) = scenario("").await;
    // Seen again: not counted again.
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(by_code(&m, "500"), Some(2.0));
    assert_eq!(by_code(&m, "429"), Some(1.0));
    let fail = m.invocations("pay", "FAIL");
    let sum: f64 = m.sum(
        "functiongraph_async_invocation_failures_total",
        &[("function", "pay")],
    );
    assert_eq!(sum, fail);
    assert_eq!(fail, 3.0);
    h.stop().await;

    // With a cap of one code: the first code keeps its label, the rest are
    // "other"; the sum still matches.
    drop(sim);
    let sim = simulator(&["default:pay"]);
    let h = start_paying(&sim, "max_error_codes = 1").await;
    h.ready().await;
    for (i, code) in [501, 502, 503, 501].into_iter().enumerate() {
        assert!(sim.add_invocation(
            PROJECT,
            "default",
            "pay",
            failed(&format!("r{i}"), code, "x", now - 10 + i as i64, Some(now))
        ));
        h.poll().await;
    }
    let m = h.metrics().await;
    assert_eq!(by_code(&m, "501"), Some(2.0));
    assert_eq!(by_code(&m, "other"), Some(2.0));
    assert_eq!(by_code(&m, "502"), None);
    h.stop().await;
}

/// `/failures` lists the failed and discarded requests newest first,
/// escaped in HTML, as data in JSON, filtered by function or request id;
/// the landing page links to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failures_page_shows_the_requests_escaped() {
    let (h, _sim, now) = scenario("").await;
    let html = h.get("/failures").await.text().await.unwrap();
    assert!(html.contains("<code>req-&lt;b&gt;</code>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; more"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    let order: Vec<usize> = ["req-d", "req-c", "req-&lt;b&gt;", "req-a"]
        .iter()
        .map(|id| html.find(&format!("<code>{id}</code>")).expect(id))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "newest first: {order:?}"
    );
    assert!(!html.contains("req-s"), "successes are not failures");

    let json: Value = failures_json(&h, "/failures?function=pay").await;
    let failures = json["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 4, "{json}");
    let b = &failures[2];
    assert_eq!(b["request_id"], "req-<b>");
    assert_eq!(b["status"], "FAIL");
    assert_eq!(b["error_code"], "429");
    assert_eq!(b["error_message"], "<script>alert(\"x\")</script> & more");
    assert_eq!(b["function"], "pay");
    assert_eq!(b["qualifier"], "latest");
    assert_eq!(b["duration_seconds"], 11);
    let end = time::OffsetDateTime::from_unix_timestamp(now - 9)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(b["end_time"], end.as_str());
    assert_eq!(failures[0]["status"], "DISCARD");

    let other: Value = failures_json(&h, "/failures?function=other").await;
    assert_eq!(other["failures"].as_array().unwrap().len(), 0);
    let one = h
        .get("/failures?request_id=req-a")
        .await
        .text()
        .await
        .unwrap();
    assert!(one.contains("<code>req-a</code>") && !one.contains("<code>req-c</code>"));
    assert!(h.status_page().await.contains("href=\"/failures\""));
    h.stop().await;
}

/// With `failures.log = true`, each counted failure is one structured log
/// line (target `functiongraph_exporter::failures`), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_can_be_logged_once() {
    captured_logs();
    let sim = simulator(&["default:pay"]);
    let h = start_paying(&sim, "log = true").await;
    h.ready().await;
    let now = now_unix();
    assert!(sim.add_invocation(
        PROJECT,
        "default",
        "pay",
        failed("logged-1", 500, "went wrong", now - 3, Some(now - 1))
    ));
    h.poll().await;
    h.poll().await;
    let logs = log_text();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("functiongraph_exporter::failures"))
        .collect();
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(
        lines[0].contains("request_id=logged-1") && lines[0].contains("error_code=500"),
        "{}",
        lines[0]
    );
    h.stop().await;
}
