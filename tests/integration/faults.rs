//! Faults and hostile input: retries and their limits, throttling, hangs,
//! huge bodies, staleness, counters across failures, hostile names, the
//! cardinality cap, overrunning polls, and scrapers hammering `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::simulator::{
    Fault, FaultSetting, FunctionSpec, Invocation, SimStatus, Simulator,
};
use functiongraph_exporter::timefmt::now_unix;

use crate::util::{
    DEADLINE, Exposition, Harness, PROJECT, Setup, inject_fault, log_text, simulator,
};

const F: &str = "default:f1";

fn requests(m: &Exposition, endpoint: &str, code: &str) -> f64 {
    m.value(
        "functiongraph_exporter_api_requests_total",
        &[("endpoint", endpoint), ("code", code)],
    )
    .unwrap_or(0.0)
}

async fn start(sim: &Simulator, polling: &str) -> Harness {
    Harness::start_ready(
        sim,
        Setup {
            functions: &[F, "default:f2"],
            polling,
            ..Setup::default()
        },
    )
    .await
}

/// [`start`] with `f1`'s `endpoint` answering with `fault`.
async fn start_faulty(endpoint: Endpoint, fault: Fault, polling: &str) -> (Simulator, Harness) {
    let sim = simulator(&[F, "default:f2"]);
    inject_fault(&sim, PROJECT, "f1", endpoint, fault);
    let h = start(&sim, polling).await;
    (sim, h)
}

/// Starts the exporter on every function the simulator lists, with
/// `polling` as more `[polling]` lines.
async fn start_discovering(sim: Simulator, polling: &str) -> Harness {
    let setup = Setup {
        polling,
        project: "[projects.discovery]\nenabled = true",
        ..Setup::default()
    };
    Harness::start_with(sim, setup).await
}

/// Makes `name`'s `endpoint` answer with `fault` for its next `times`
/// requests.
fn flaky(sim: &Simulator, name: &str, endpoint: Endpoint, fault: Fault, times: u32) {
    sim.set_fault(
        PROJECT,
        "default",
        name,
        endpoint,
        FaultSetting::Times(fault, times),
    );
}

/// 5xx answers are retried, and the collector succeeds when a retry does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried() {
    let sim = simulator(&[F, "default:f2"]);
    flaky(
        &sim,
        "f1",
        Endpoint::Code,
        Fault::error(503, "FSS.0503", "busy"),
        2,
    );
    let h = start(&sim, "").await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    assert_eq!(requests(&m, "code", "503"), 2.0);
    assert_eq!(requests(&m, "code", "200"), 2.0, "one per function");
    h.stop().await;
}

/// Throttling (the gateway's APIGW.0308 and FunctionGraph's FSS.0429) is
/// counted and retried; a Retry-After is waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_counted_retried_and_retry_after_honoured() {
    let sim = simulator(&[F, "default:f2"]);
    flaky(
        &sim,
        "f1",
        Endpoint::Code,
        Fault::throttle("APIGW.0308", Some(1)),
        1,
    );
    flaky(
        &sim,
        "f2",
        Endpoint::Versions,
        Fault::throttle("FSS.0429", None),
        1,
    );
    sim.record_request_times(true);
    let h = start(&sim, "").await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    assert_eq!(m.up("f2"), 1.0);
    let throttled = |endpoint| {
        m.get(
            "functiongraph_exporter_api_throttled_total",
            &[("project_id", PROJECT), ("endpoint", endpoint)],
        )
    };
    assert_eq!(throttled("code"), 1.0);
    assert_eq!(throttled("versions"), 1.0);
    assert_eq!(requests(&m, "code", "429"), 1.0);
    // Retry-After: 1 second between the first request and the last one.
    let times = sim.request_times();
    let span = times.last().unwrap().duration_since(times[0]);
    assert!(
        span >= Duration::from_secs(1),
        "Retry-After honoured: {span:?}"
    );
    h.stop().await;
}

/// Other 4xx are never retried: the same request fails the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried() {
    let (_sim, h) = start_faulty(
        Endpoint::Code,
        Fault::error(400, "FSS.1001", "invalid query parameter"),
        "",
    )
    .await;
    let m = h.metrics().await;
    assert_eq!(requests(&m, "code", "400"), 1.0);
    assert_eq!(m.up("f1"), 0.0);
    assert_eq!(m.up("f2"), 1.0);
    h.stop().await;
}

/// A request that never gets an answer times out; only that collector of
/// that function fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_times_out_alone() {
    let (_sim, h) = start_faulty(
        Endpoint::Versions,
        Fault::Hang,
        "timeout = \"1s\"\nretries = 0",
    )
    .await;
    let m = h.metrics().await;
    assert_eq!(m.success("f1", "versions"), 0.0);
    assert_eq!(m.success("f1", "code"), 1.0);
    assert_eq!(m.success("f2", "versions"), 1.0);
    assert_eq!(requests(&m, "versions", "timeout"), 1.0);
    h.stop().await;
}

/// A body of several hundred MB is refused without reading it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_refused() {
    let (_sim, h) = start_faulty(
        Endpoint::Code,
        Fault::Huge(300 * 1024 * 1024),
        "max_response_bytes = 1048576",
    )
    .await;
    let m = h.metrics().await;
    assert_eq!(m.success("f1", "code"), 0.0);
    assert_eq!(m.up("f2"), 1.0);
    h.assert_page_shows("response body larger than 1048576 bytes")
        .await;
    h.stop().await;
}

/// A body that stalls halfway, and a connection reset without an answer,
/// fail their collector (a timeout, a transport error) and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_and_resets_fail_only_their_collector() {
    let sim = simulator(&[F, "default:f2"]);
    inject_fault(&sim, PROJECT, "f1", Endpoint::Code, Fault::Stall);
    inject_fault(&sim, PROJECT, "f1", Endpoint::Versions, Fault::Reset);
    let h = start(&sim, "timeout = \"1s\"\nretries = 1").await;
    let m = h.metrics().await;
    assert_eq!(m.success("f1", "code"), 0.0);
    assert_eq!(m.success("f1", "versions"), 0.0);
    assert_eq!(m.success("f1", "async_invocations"), 1.0);
    assert_eq!(m.up("f2"), 1.0);
    assert!(
        requests(&m, "code", "timeout") >= 1.0,
        "the stalled body times out"
    );
    assert_eq!(
        requests(&m, "versions", "error"),
        2.0,
        "the reset is retried once"
    );
    let page = h.status_page().await;
    assert!(page.contains("versions: transport error"), "{page}");
    // One clean line: the collector named once, no request URL with its
    // URL-encoded query.
    assert!(!page.contains("versions: versions:"), "{page}");
    assert!(
        !page.contains("for url") && !page.contains("/v2/"),
        "{page}"
    );
    h.stop().await;
}

/// Counters keep their values through failed polls: they never go down,
/// and never disappear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_survive_failed_polls() {
    let sim = simulator(&[F, "default:f2"]);
    let h = start(&sim, "").await;
    let now = now_unix();
    assert!(sim.add_invocation(
        PROJECT,
        "default",
        "f1",
        Invocation::new("a", SimStatus::Fail, now - 2, Some(now - 1))
    ));
    h.poll().await;
    let total = |m: &Exposition| m.invocations("f1", "FAIL");
    assert_eq!(total(&h.metrics().await), 1.0);
    inject_fault(
        &sim,
        PROJECT,
        "f1",
        Endpoint::AsyncInvocations,
        Fault::error(500, "FSS.0500", "down"),
    );
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(m.success("f1", "async_invocations"), 0.0);
    assert_eq!(total(&m), 1.0);
    sim.set_fault(PROJECT, "default", "f1", Endpoint::AsyncInvocations, None);
    h.poll().await;
    assert_eq!(total(&h.metrics().await), 1.0);
    h.stop().await;
}

/// A failed collector's last values stay exported up to `stale_after`,
/// then go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_values_are_dropped_after_the_limit() {
    let sim = simulator(&[F, "default:f2"]);
    let setup = Setup {
        functions: &[F, "default:f2"],
        polling: "stale_after = \"2h\"",
        ..Setup::default()
    };
    let (h, clock) = Harness::start_on_clock(&sim, setup).await;
    let down = Fault::error(500, "FSS.0500", "down");
    inject_fault(&sim, PROJECT, "f1", Endpoint::Code, down);
    // An hour later f1's code size is still there; 90 minutes after that,
    // past the limit, it is gone. f2's, fresh, stays.
    for (minutes, kept, why) in [
        (60, true, "kept within the limit"),
        (90, false, "dropped after 2h"),
    ] {
        clock.advance(Duration::from_secs(minutes * 60));
        h.poll().await;
        let m = h.metrics().await;
        assert_eq!(m.success("f1", "code"), 0.0);
        let size = |f| m.value("functiongraph_code_size_bytes", &[("function", f)]);
        assert_eq!(size("f1").is_some(), kept, "{why}");
        assert!(size("f2").is_some());
    }
    h.stop().await;
}

/// Quotes, backslashes, newlines and non-ASCII in names and versions are
/// escaped in the exposition, which stays valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_escaped() {
    let sim = simulator(&[]);
    sim.add_function(
        PROJECT,
        FunctionSpec::new("pkg\"x", "we\"ird\\name-函数").version("v1\nINJECTED 1"),
    );
    let h = start_discovering(sim, "").await;
    h.ready().await;
    let m = h.metrics().await;
    assert_eq!(
        m.get(
            "functiongraph_up",
            &[("function", "we\"ird\\name-函数"), ("package", "pkg\"x")]
        ),
        1.0
    );
    assert_eq!(
        m.get(
            "functiongraph_version_info",
            &[("version", "v1\nINJECTED 1")]
        ),
        1.0
    );
    assert!(
        !m.text.lines().any(|l| l.starts_with("INJECTED")),
        "no injected sample line"
    );
    #[cfg(has_promtool)]
    crate::cli::promtool_check_metrics(&m.text);
    h.stop().await;
}

/// `max_functions` caps how many functions are monitored; the rest are
/// counted, not silently lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_cap_counts_what_it_drops() {
    let sim = simulator(&[]);
    sim.generate_functions(PROJECT, "cap-", 8);
    let h = start_discovering(sim, "max_functions = 5\n").await;
    h.ready().await;
    let m = h.metrics().await;
    assert_eq!(m.matching("functiongraph_up", &[]).count(), 5);
    assert_eq!(
        m.get("functiongraph_exporter_functions_dropped_total", &[]),
        3.0
    );
    h.stop().await;
}

/// A poll that overruns its interval is skipped, not stacked: each function
/// has at most one poll in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overrunning_poll_is_skipped_not_stacked() {
    let logs_before = log_text().len();
    let sim = simulator(&[F]);
    // One request at a time, three of them slow: a poll takes over 2 s,
    // twice the interval.
    for endpoint in [Endpoint::Code, Endpoint::Versions, Endpoint::SnapshotState] {
        inject_fault(
            &sim,
            PROJECT,
            "f1",
            endpoint,
            Fault::Delay(Duration::from_millis(700)),
        );
    }
    let h = Harness::start_with(
        sim.clone(),
        Setup {
            functions: &[F],
            polling: "interval = \"1s\"\ntimeout = \"1s\"\nconcurrency = 1\n[polling.intervals]\ncode = \"1s\"\nversions = \"1s\"\nsnapshot = \"1s\"",
            ..Setup::default()
        },
    )
    .await;
    // Wait (bounded) for the scheduler to meet the still-running poll.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let logs = log_text();
        if logs[logs_before..].contains("previous poll still running; skipping") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no skipped poll within the deadline"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The slow poll itself completes and is published.
    h.ready().await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    h.stop().await;
}

/// 200 concurrent scrapers: every scrape is complete, none reaches the API,
/// and polling goes on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_scrapers_do_not_disturb_polling() {
    let names: Vec<String> = (0..50).map(|i| format!("default:load-{i:04}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let sim = simulator(&[]);
    sim.generate_functions(PROJECT, "load-", 50);
    let h = Arc::new(
        Harness::start_with(
            sim.clone(),
            Setup {
                functions: &refs,
                polling: "concurrency = 16",
                project: "max_requests_per_second = 100000",
                ..Setup::default()
            },
        )
        .await,
    );
    h.ready().await;
    let reference = h.metrics().await;
    let expected_up = reference.matching("functiongraph_up", &[]).count();
    let before = sim.requests();
    let mut scrapers = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let h = Arc::clone(&h);
        scrapers.spawn(async move {
            for _ in 0..2 {
                let r = h.get("/metrics").await;
                assert_eq!(r.status(), 200);
                let body = r.text().await.unwrap();
                assert_eq!(body.matches("\nfunctiongraph_up{").count(), 50);
            }
        });
    }
    // A full poll cycle while they hammer.
    h.poll().await;
    let polled = sim.requests() - before;
    while let Some(r) = scrapers.join_next().await {
        r.unwrap();
    }
    assert_eq!(expected_up, 50);
    assert_eq!(
        sim.requests() - before,
        polled,
        "scrapes made no API request"
    );
    assert!(
        polled >= 200,
        "the cycle polled every function ({polled} requests)"
    );
    match Arc::try_unwrap(h) {
        Ok(h) => h.stop().await,
        Err(_) => panic!("scrapers still hold the harness"),
    }
}
