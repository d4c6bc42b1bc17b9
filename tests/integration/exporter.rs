//! End to end: the simulator and the exporter over real HTTP on loopback,
//! values read back from `/metrics`.

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::simulator::{
    Fault, FaultSetting, FunctionSpec, Invocation, SimStatus, Simulator,
};
use functiongraph_exporter::timefmt::now_unix;

use crate::util::{Harness, PROJECT, Setup, inject_fault, simulator};

const F: &str = "default:f1";

fn add(sim: &Simulator, name: &str, inv: Invocation) {
    assert!(sim.add_invocation(PROJECT, "default", name, inv));
}

/// Adds `invocations` to the records of `default:{name}`, in order.
fn add_all<const N: usize>(sim: &Simulator, name: &str, invocations: [Invocation; N]) {
    for inv in invocations {
        add(sim, name, inv);
    }
}

/// Gauges count the records in the window by status, with every status
/// present (0 when none), and the last failure's start time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_gauges_count_the_window_by_status() {
    let sim = simulator(&[F]);
    let now = now_unix();
    add_all(
        &sim,
        "f1",
        [
            Invocation::new("s1", SimStatus::Success, now - 600, Some(now - 590)),
            Invocation::new("s2", SimStatus::Success, now - 500, Some(now - 499)),
            Invocation::new("x1", SimStatus::Fail, now - 400, Some(now - 398)),
            Invocation::new("w1", SimStatus::Wait, now - 30, None),
            Invocation::new("r1", SimStatus::Running, now - 20, None),
            // Outside the one-hour window: not counted.
            Invocation::new("old", SimStatus::Fail, now - 7200, Some(now - 7100)),
        ],
    );
    let h = Harness::start(sim, &[F]).await;
    h.ready().await;
    let m = h.metrics().await;
    let by = |status| m.records("f1", status);
    assert_eq!(by("SUCCESS"), 2.0);
    assert_eq!(by("FAIL"), 1.0);
    assert_eq!(by("WAIT"), 1.0);
    assert_eq!(by("RUNNING"), 1.0);
    assert_eq!(by("DISCARD"), 0.0);
    assert_eq!(
        m.get(
            "functiongraph_async_invocation_last_failure_timestamp_seconds",
            &[("function", "f1")]
        ),
        (now - 400) as f64
    );
    // The baseline is not counted, but the counters exist at 0.
    for status in ["SUCCESS", "FAIL", "DISCARD"] {
        assert_eq!(m.invocations("f1", status), 0.0);
    }
    assert_eq!(m.up("f1"), 1.0);
    h.stop().await;
}

/// Counters grow by exactly the number of new terminal invocations; a
/// record seen RUNNING then SUCCESS is counted once, and seeing it again
/// in a later poll does not count it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_count_each_new_terminal_invocation_once() {
    let sim = simulator(&[F]);
    let now = now_unix();
    add(
        &sim,
        "f1",
        Invocation::new("base", SimStatus::Success, now - 900, Some(now - 899)),
    );
    let h = Harness::start(sim.clone(), &[F]).await;
    h.ready().await;
    let total = |m: &crate::util::Exposition, status| m.invocations("f1", status);

    let now = now_unix();
    add_all(
        &sim,
        "f1",
        [
            Invocation::new("a", SimStatus::Success, now - 5, Some(now - 2)),
            Invocation::new("b", SimStatus::Success, now - 5, Some(now - 5)),
            Invocation::new("c", SimStatus::Fail, now - 4, Some(now - 1)),
            Invocation::new("d", SimStatus::Discard, now - 3, Some(now - 3)),
            Invocation::new("r", SimStatus::Running, now - 3, None),
        ],
    );
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(total(&m, "SUCCESS"), 2.0);
    assert_eq!(total(&m, "FAIL"), 1.0);
    assert_eq!(total(&m, "DISCARD"), 1.0);
    let count = "functiongraph_async_invocation_duration_seconds_count";
    let sum = "functiongraph_async_invocation_duration_seconds_sum";
    assert_eq!(m.get(count, &[("function", "f1")]), 4.0);
    assert_eq!(m.get(sum, &[("function", "f1")]), 3.0 + 0.0 + 3.0 + 0.0);

    // RUNNING → SUCCESS: counted once, with its duration.
    assert!(sim.set_invocation_status(
        PROJECT,
        "default",
        "f1",
        "r",
        SimStatus::Success,
        Some(now + 7)
    ));
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(total(&m, "SUCCESS"), 3.0);
    assert_eq!(m.get(count, &[("function", "f1")]), 5.0);
    assert_eq!(m.get(sum, &[("function", "f1")]), 16.0);
    assert_eq!(
        m.get(
            "functiongraph_async_invocation_duration_seconds_bucket",
            &[("function", "f1"), ("le", "10")]
        ),
        5.0
    );
    assert_eq!(
        m.get(
            "functiongraph_async_invocation_duration_seconds_bucket",
            &[("function", "f1"), ("le", "1")]
        ),
        2.0
    );

    // Nothing new: nothing counted, though the records are read again in the overlap.
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(total(&m, "SUCCESS"), 3.0);
    assert_eq!(total(&m, "FAIL"), 1.0);
    assert_eq!(total(&m, "DISCARD"), 1.0);
    h.stop().await;
}

/// A window larger than one page is read across pages; after the baseline,
/// a poll reads the recent records only (those started within
/// `polling.async_late_visibility` of the previous poll), and an older
/// pending record is looked up by its request id until it finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_and_incremental_reads() {
    let sim = simulator(&[F]);
    let now = now_unix();
    for i in 0..1234 {
        let start = now - 3000 + i;
        add(
            &sim,
            "f1",
            Invocation::new(
                &format!("old-{i}"),
                SimStatus::Success,
                start,
                Some(start + 1),
            ),
        );
    }
    // A long-running record, older than any poll overlap.
    add(
        &sim,
        "f1",
        Invocation::new("slow", SimStatus::Running, now - 2000, None),
    );
    let h = Harness::start(sim.clone(), &[F]).await;
    h.ready().await;
    // 1235 records at 500 per page: 3 pages.
    assert_eq!(sim.requests_to(Endpoint::AsyncInvocations), 3);
    let m = h.metrics().await;
    assert_eq!(m.records("f1", "SUCCESS"), 1234.0);

    // Next poll: one page of recent records (none) and one lookup of the
    // pending record, no matter how large the window is.
    let before = sim.requests_to(Endpoint::AsyncInvocations);
    h.poll().await;
    assert_eq!(sim.requests_to(Endpoint::AsyncInvocations) - before, 2);

    // 600 new records: two pages of them.
    let now = now_unix();
    for i in 0..600 {
        add(
            &sim,
            "f1",
            Invocation::new(&format!("new-{i}"), SimStatus::Fail, now - 2, Some(now - 1)),
        );
    }
    assert!(sim.set_invocation_status(
        PROJECT,
        "default",
        "f1",
        "slow",
        SimStatus::Success,
        Some(now - 1)
    ));
    let before = sim.requests_to(Endpoint::AsyncInvocations);
    h.poll().await;
    // 2 pages of new records + 1 lookup of "slow".
    assert_eq!(sim.requests_to(Endpoint::AsyncInvocations) - before, 3);
    let m = h.metrics().await;
    let total = |status| m.invocations("f1", status);
    assert_eq!(total("FAIL"), 600.0);
    assert_eq!(total("SUCCESS"), 1.0);
    assert_eq!(m.records("f1", "RUNNING"), 0.0);

    // Nothing pending any more: only the recent-records listing, two pages
    // because the 600 records are still recent (and are not counted again).
    let before = sim.requests_to(Endpoint::AsyncInvocations);
    h.poll().await;
    assert_eq!(sim.requests_to(Endpoint::AsyncInvocations) - before, 2);
    let m = h.metrics().await;
    assert_eq!(m.invocations("f1", "FAIL"), 600.0);
    h.stop().await;
}

/// One function whose code endpoint fails is down; the others stay up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_function_does_not_affect_the_others() {
    let sim = simulator(&["default:f1", "default:f2", "default:f3"]);
    inject_fault(
        &sim,
        PROJECT,
        "f2",
        Endpoint::Code,
        Fault::error(500, "FSS.0500", "internal error"),
    );
    let h = Harness::start(sim.clone(), &["default:f1", "default:f2", "default:f3"]).await;
    h.ready().await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    assert_eq!(m.up("f2"), 0.0);
    assert_eq!(m.up("f3"), 1.0);
    assert_eq!(m.success("f2", "code"), 0.0);
    assert_eq!(m.success("f2", "versions"), 1.0);
    assert_eq!(m.success("f2", "async_invocations"), 1.0);
    assert_eq!(m.success("f1", "code"), 1.0);
    assert!(
        m.value("functiongraph_code_size_bytes", &[("function", "f2")])
            .is_none()
    );
    assert_eq!(
        m.get(
            "functiongraph_exporter_api_requests_total",
            &[("endpoint", "code"), ("code", "500")]
        ),
        3.0
    );
    assert!(
        m.value(
            "functiongraph_exporter_last_poll_success_timestamp_seconds",
            &[("function", "f2")]
        )
        .is_none()
    );

    // A 500 is retried twice before the collector gives up.
    // The landing page says why.
    let page = h.status_page().await;
    assert!(
        page.contains("code: http 500 FSS.0500: internal error"),
        "{page}"
    );
    assert!(!page.contains("code: code:"), "the prefix once: {page}");
    // The "Last poll" column shows when (UTC), beside the status.
    assert!(
        page.contains("<td>down</td><td>20") && page.contains("<th>Last poll</th>"),
        "{page}"
    );

    // Healed: the next poll brings it back, and the last value is kept on failure.
    sim.set_fault(PROJECT, "default", "f2", Endpoint::Code, FaultSetting::Heal);
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(m.up("f2"), 1.0);
    inject_fault(
        &sim,
        PROJECT,
        "f2",
        Endpoint::Code,
        Fault::error(503, "FSS.0503", "unavailable"),
    );
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(m.up("f2"), 0.0);
    assert_eq!(
        m.get("functiongraph_code_size_bytes", &[("function", "f2")]),
        2048.0
    );
    h.stop().await;
}

/// Bodies that are not what the API documents fail that collector only,
/// with the field named in the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_fail_only_their_collector() {
    let sim = simulator(&["default:f1", "default:f2"]);
    inject_fault(
        &sim,
        PROJECT,
        "f1",
        Endpoint::Versions,
        Fault::Body("<html>not json</html>".into()),
    );
    inject_fault(
        &sim,
        PROJECT,
        "f2",
        Endpoint::Code,
        Fault::Body(r#"{"code_size":"big"}"#.into()),
    );
    let h = Harness::start(sim, &["default:f1", "default:f2"]).await;
    h.ready().await;
    let m = h.metrics().await;
    assert_eq!(m.success("f1", "versions"), 0.0);
    assert_eq!(m.success("f1", "code"), 1.0);
    assert_eq!(m.success("f2", "code"), 0.0);
    assert_eq!(m.success("f2", "versions"), 1.0);
    h.assert_page_shows("code: unexpected response body: code_size: invalid value")
        .await;
    h.stop().await;
}

/// Versions, code and snapshot state, including functions snapshots do
/// not apply to, which stay up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_code_and_snapshots() {
    let sim = simulator(&["default:py"]);
    sim.add_function(
        PROJECT,
        FunctionSpec::new("orders", "java")
            .runtime("Java17")
            .code("jar", 1_000_000)
            .version("v1")
            .version("v2")
            .alias("prod", "v2")
            .snapshot("creating", false)
            .max_instances(-1),
    );
    let java = format!("{PROJECT}:orders:java:!prod");
    let h = Harness::start(sim.clone(), &["default:py", &java]).await;
    h.ready().await;
    let m = h.metrics().await;
    let java_labels = [("function", "java"), ("qualifier", "!prod")];
    assert_eq!(m.get("functiongraph_up", &java_labels), 1.0);
    assert_eq!(m.get("functiongraph_versions", &java_labels), 3.0);
    for v in ["latest", "v1", "v2"] {
        assert_eq!(
            m.get(
                "functiongraph_version_info",
                &[("function", "java"), ("version", v)]
            ),
            1.0
        );
    }
    assert_eq!(
        m.get("functiongraph_code_size_bytes", &java_labels),
        1_000_000.0
    );
    assert_eq!(m.get("functiongraph_max_instances", &java_labels), -1.0);
    assert_eq!(
        m.get(
            "functiongraph_function_info",
            &[
                ("function", "java"),
                ("runtime", "Java17"),
                ("code_type", "jar")
            ]
        ),
        1.0
    );
    assert_eq!(m.snapshot_state("java", "creating"), 1.0);
    let states: f64 = m.sum("functiongraph_snapshot_state", &[("function", "java")]);
    assert_eq!(states, 1.0, "exactly one state is 1");
    assert_eq!(
        m.matching("functiongraph_snapshot_state", &[("function", "java")])
            .count(),
        7
    );
    assert_eq!(m.get("functiongraph_snapshot_enabled", &java_labels), 0.0);
    // Python on latest: not applicable, not down, no snapshot series.
    assert_eq!(m.up("py"), 1.0);
    assert_eq!(m.success("py", "snapshot"), 1.0);
    assert_eq!(
        m.matching("functiongraph_snapshot_state", &[("function", "py")])
            .count(),
        0
    );
    assert_eq!(m.get("functiongraph_code_changes_total", &java_labels), 0.0);

    // A deploy changes the digest; an unknown snapshot state maps to unknown.
    assert!(sim.set_code(
        PROJECT,
        "orders",
        "java",
        "feedface",
        1_000_500,
        1_700_000_000
    ));
    assert!(sim.set_snapshot(PROJECT, "orders", "java", "melting", true));
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(m.get("functiongraph_code_changes_total", &java_labels), 1.0);
    assert_eq!(
        m.get("functiongraph_code_size_bytes", &java_labels),
        1_000_500.0
    );
    assert_eq!(
        m.get(
            "functiongraph_code_last_modified_timestamp_seconds",
            &java_labels
        ),
        1_700_000_000.0
    );
    assert_eq!(m.snapshot_state("java", "unknown"), 1.0);
    assert_eq!(m.get("functiongraph_snapshot_enabled", &java_labels), 1.0);
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(m.get("functiongraph_code_changes_total", &java_labels), 1.0);
    h.stop().await;
}

/// A wrong token and an unknown function are reported, not fatal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_and_unknown_function_mark_functions_down() {
    let sim = simulator(&[F]);
    let h = Harness::start_ready(
        &sim,
        Setup {
            functions: &[F],
            token: "expired-token",
            ..Setup::default()
        },
    )
    .await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 0.0);
    // One request went out and was refused; the others were held back.
    let refused: f64 = m.sum(
        "functiongraph_exporter_api_requests_total",
        &[("code", "401")],
    );
    assert_eq!(refused, 1.0);
    assert_eq!(
        m.get(
            "functiongraph_exporter_auth_failures_total",
            &[("project_id", PROJECT)]
        ),
        1.0
    );
    let page = h.status_page().await;
    assert!(page.contains("http 401 APIGW.0301"), "{page}");
    assert!(!page.contains("expired-token") && !m.text.contains("expired-token"));
    h.stop().await;

    let h = Harness::start(simulator(&[F]), &[F, "default:ghost"]).await;
    h.ready().await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    assert_eq!(m.up("ghost"), 0.0);
    h.assert_page_shows("FSS.1051").await;
    h.stop().await;
}

/// `/metrics` is served from memory: a hundred scrapes make no API request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraping_makes_no_api_requests() {
    let sim = simulator(&[F, "default:f2"]);
    let h = Harness::start(sim.clone(), &[F, "default:f2"]).await;
    h.ready().await;
    let before = sim.requests();
    assert!(before > 0);
    for _ in 0..100 {
        let m = h.metrics().await;
        assert_eq!(m.up("f1"), 1.0);
    }
    assert_eq!(sim.requests(), before);
    h.stop().await;
}

/// Paths, methods, content type and readiness.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints() {
    // An upstream that accepts connections and never answers keeps the
    // first cycle open until the request timeout (1 s).
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let h = Harness::start_with(
        simulator(&[F]),
        Setup {
            functions: &[F],
            polling: "timeout = \"1s\"\nretries = 0",
            endpoint: Some(format!("http://{}", blackhole.local_addr().unwrap())),
            ..Setup::default()
        },
    )
    .await;
    assert_eq!(h.get("/-/ready").await.status(), 503);
    assert_eq!(h.get("/-/healthy").await.status(), 200);
    h.ready().await;
    assert_eq!(h.get("/-/ready").await.status(), 200);

    let r = h.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let m = crate::util::Exposition::parse(&r.text().await.unwrap());
    assert_eq!(m.up("f1"), 0.0);
    assert_eq!(
        m.get(
            "functiongraph_exporter_api_requests_total",
            &[("endpoint", "code"), ("code", "timeout")]
        ),
        1.0
    );

    let head = h.http.head(h.url("/metrics")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(head.text().await.unwrap().is_empty());

    assert_eq!(h.get("/nope").await.status(), 404);
    let post = h.http.post(h.url("/metrics")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    let landing = h.get("/").await;
    assert_eq!(landing.status(), 200);
    assert!(landing.text().await.unwrap().contains("href=\"/metrics\""));
    h.stop().await;
}
