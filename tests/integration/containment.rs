//! One failure stays one failure, and costs once: each row of issue 11's
//! table as a test against the simulator. A 403 naming a missing permission
//! fails one collector (a refused token still pauses the project);
//! "snapshots do not apply" is remembered; a failing collector backs off;
//! fields the exporter does not read, and numbers sent as strings, do not
//! fail a collector; every documented not-found code means gone; functions
//! whose API hangs cannot starve the others.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::clock::{Clock, ManualClock};
use functiongraph_exporter::simulator::{Fault, FunctionSpec, Invocation, SimStatus, Simulator};
use functiongraph_exporter::timefmt::now_unix;

use crate::util::{
    Exposition, Harness, PROJECT, REGION, Setup, captured_logs, inject_fault, log_text, simulator,
};

const MINUTE: Duration = Duration::from_secs(60);

/// A Java function with a published version `v1`: snapshots apply to it.
fn java(name: &str) -> FunctionSpec {
    FunctionSpec::new("default", name)
        .runtime("Java17")
        .code("jar", 4096)
        .version("v1")
}

/// The reference to a function's version `v1`.
fn v1(name: &str) -> String {
    format!("{PROJECT}:default:{name}:v1")
}

fn counter(m: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.value(name, labels).unwrap_or(0.0)
}

fn requests(m: &Exposition, endpoint: &str, code: &str) -> f64 {
    counter(
        m,
        "functiongraph_exporter_api_requests_total",
        &[("endpoint", endpoint), ("code", code)],
    )
}

/// Log lines containing every one of `parts`.
fn log_lines(parts: &[&str]) -> Vec<String> {
    log_text()
        .lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .map(str::to_owned)
        .collect()
}

/// An exporter on a manual clock with the default intervals (async
/// invocations every minute, the rest every five), no rate limit (the clock
/// jumps) and no retries (each attempt is one request).
async fn start(sim: &Simulator, functions: &[&str], clock: &Arc<ManualClock>) -> Harness {
    Harness::start_ready(
        sim,
        Setup {
            functions,
            polling: "interval = \"1m\"\nretries = 0",
            project: "max_requests_per_second = 100000",
            clock: Some(Arc::clone(clock)),
            ..Setup::default()
        },
    )
    .await
}

/// Starts the exporter on a clock of its own (returned with it) and waits
/// for its first cycle; it polls once a minute without retries
/// or a rate limit worth the name; `project` and `auth` are more lines of
/// the project's table (before its sub-tables) and of its auth table.
async fn start_each_minute(
    sim: &Simulator,
    project: &str,
    auth: &str,
) -> (Harness, Arc<ManualClock>) {
    let toml = format!(
        r#"
[polling]
interval = "1m"
retries = 0
[[projects]]
project_id = "{PROJECT}"
region = "{REGION}"
endpoint = "{{endpoint}}"
max_requests_per_second = 100000
{project}[projects.auth]
type = "token"
token_file = "{{token_file}}"
{auth}"#
    );
    let clock = Arc::new(ManualClock::new());
    let h = Harness::start_toml(sim.clone(), &toml, Some(Arc::clone(&clock))).await;
    h.ready().await;
    (h, clock)
}

/// Row 1. A 403 `FSS.1127` (permission denied) from `snapshots/state` of
/// some functions fails their snapshot collector only: no auth back-off,
/// every other collector and function carries on, async counts go on. It
/// is logged once for the project and API, naming the permission, and
/// shown on the landing page; when the permission is granted, the
/// collector recovers at its next attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_denial_fails_only_that_collector_of_those_functions() {
    let _ = captured_logs();
    let sim = simulator(&["default:py"]);
    for name in ["j1", "j2", "j3"] {
        sim.add_function(PROJECT, java(name));
    }
    let denied = Fault::error(
        403,
        "FSS.1127",
        "The EPS user has no permission for functiongraph:function:getSnapshotState",
    );
    for name in ["j1", "j2"] {
        inject_fault(&sim, PROJECT, name, Endpoint::SnapshotState, denied.clone());
    }
    let (j1, j2, j3) = (v1("j1"), v1("j2"), v1("j3"));
    let clock = Arc::new(ManualClock::new());
    let h = start(&sim, &[&j1, &j2, &j3, "default:py"], &clock).await;

    let m = h.metrics().await;
    for f in ["j1", "j2"] {
        assert_eq!(m.success(f, "snapshot"), 0.0, "{f}");
        for c in ["async_invocations", "versions", "code"] {
            assert_eq!(m.success(f, c), 1.0, "{f} {c}");
        }
    }
    for f in ["j3", "py"] {
        assert_eq!(m.up(f), 1.0, "{f}");
    }
    let project = [("project_id", PROJECT)];
    assert_eq!(
        counter(&m, "functiongraph_exporter_auth_failures_total", &project),
        0.0,
        "a permission is no credential"
    );
    assert_eq!(
        counter(
            &m,
            "functiongraph_exporter_api_permission_denied_total",
            &[("project_id", PROJECT), ("endpoint", "snapshot_state")]
        ),
        2.0
    );

    // No project back-off: a minute later every function's async
    // invocations are listed, and a new failure of j1 is counted.
    let now = now_unix();
    assert!(sim.add_invocation(
        PROJECT,
        "default",
        "j1",
        Invocation::new("late-fail", SimStatus::Fail, now - 5, Some(now - 1)).through("v1")
    ));
    let before = sim.requests_to(Endpoint::AsyncInvocations);
    clock.advance(MINUTE);
    h.run_cycle().await;
    assert_eq!(sim.requests_to(Endpoint::AsyncInvocations) - before, 4);
    let m = h.metrics().await;
    assert_eq!(m.invocations("j1", "FAIL"), 1.0);
    assert_eq!(
        m.success("j1", "snapshot"),
        0.0,
        "still failing, backing off"
    );
    assert_eq!(m.success("j1", "async_invocations"), 1.0);

    // Logged once, for the project and API, with the code and message.
    let logged = log_lines(&["permission denied: the credentials", "snapshot_state"]);
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(logged[0].contains("FSS.1127"), "{}", logged[0]);
    assert!(logged[0].contains("getSnapshotState"), "{}", logged[0]);
    assert!(log_lines(&["authentication failed"]).is_empty());

    let page = h.status_page().await;
    assert!(page.contains("<h2>Permission denied</h2>"), "{page}");
    assert!(page.contains("FSS.1127"), "{page}");
    assert!(page.contains("default:j1, default:j2"), "{page}");
    assert!(page.contains("next attempt"), "{page}");

    // Granted: the snapshot collector succeeds at its next attempt (its
    // interval, five minutes, after the denial).
    sim.clear_faults();
    clock.advance(4 * MINUTE);
    h.run_cycle().await;
    let m = h.metrics().await;
    for f in ["j1", "j2", "j3", "py"] {
        assert_eq!(m.up(f), 1.0, "{f}");
    }
    assert_eq!(log_lines(&["permission granted again"]).len(), 1);
    assert!(!h.status_page().await.contains("Permission denied"));
    h.stop().await;
}

/// Row 1, the other side: a 403 that says the token is invalid
/// (`FSS.0403`) is about the credentials, and still pauses the project's
/// requests (the gateway locks a key after five refusals). Requests held
/// back that way do not make the collectors back off on their own: they
/// run as soon as the project's back-off ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_still_pauses_the_project() {
    let sim = simulator(&["default:f1", "default:f2"]);
    let (h, clock) = start_each_minute(
        &sim,
        "functions = [\"default:f1\", \"default:f2\"]\n",
        "failure_backoff = \"10m\"\n",
    )
    .await;
    // The token is refused for every request of the project.
    sim.set_project_fault(
        PROJECT,
        Some(Fault::error(403, "FSS.0403", "invalid token")),
    );
    clock.advance(MINUTE);
    h.run_cycle().await;
    let m = h.metrics().await;
    assert!(
        counter(
            &m,
            "functiongraph_exporter_auth_failures_total",
            &[("project_id", PROJECT)]
        ) >= 1.0
    );
    assert_eq!(
        counter(
            &m,
            "functiongraph_exporter_api_permission_denied_total",
            &[("project_id", PROJECT), ("endpoint", "async_invocations")]
        ),
        0.0
    );
    // The next minute, nothing goes out: f2 fails too, locally.
    let sent = sim.requests();
    clock.advance(MINUTE);
    h.run_cycle().await;
    assert_eq!(sim.requests(), sent, "the project is paused");
    let m = h.metrics().await;
    assert_eq!(m.success("f2", "async_invocations"), 0.0);
    assert!(h.status_page().await.contains("authentication failed"));

    // Fixed, and the project's back-off over: every collector runs at once.
    sim.clear_faults();
    clock.advance(10 * MINUTE);
    h.run_cycle().await;
    let m = h.metrics().await;
    for f in ["f1", "f2"] {
        assert_eq!(m.up(f), 1.0, "{f}");
    }
    h.stop().await;
}

/// Row 2. Snapshot state asked of a function it does not apply to (not
/// Java, or `latest`) answers 400 every time: the answer is remembered, and
/// asked again only when the function's code changes or a day later. It is
/// not an error: the collector succeeds, the function is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_applicable_snapshot_is_remembered() {
    let sim = simulator(&["default:py"]);
    sim.add_function(PROJECT, java("j"));
    let j = v1("j");
    let clock = Arc::new(ManualClock::new());
    let h = start(&sim, &["default:py", &j], &clock).await;
    let asked = |name| {
        // Snapshot requests of one function: every request of it, less the
        // other endpoints' (counted by the simulator per endpoint).
        sim.requests_of("default", name)
    };
    let m = h.metrics().await;
    assert_eq!(m.up("py"), 1.0);
    assert_eq!(m.success("py", "snapshot"), 1.0);
    assert!(
        m.value("functiongraph_snapshot_state", &[("function", "py")])
            .is_none()
    );
    assert_eq!(requests(&m, "snapshot_state", "400"), 1.0);
    assert_eq!(requests(&m, "snapshot_state", "200"), 1.0, "j's");
    h.assert_page_shows("snapshot: not applicable to this function")
        .await;

    // An hour: py's snapshot is not asked again, j's every five minutes.
    let (py_before, j_before) = (asked("py"), asked("j"));
    let m_before = h.metrics().await;
    for _ in 0..60 {
        clock.advance(MINUTE);
        h.run_cycle().await;
    }
    let m = h.metrics().await;
    let delta = |endpoint, code| requests(&m, endpoint, code) - requests(&m_before, endpoint, code);
    assert_eq!(delta("snapshot_state", "400"), 0.0, "py not asked again");
    assert_eq!(delta("snapshot_state", "200"), 12.0, "j every 5 minutes");
    assert_eq!(delta("snapshot_enable", "200"), 12.0);
    assert_eq!(
        asked("py") - py_before,
        60 + 12 + 12,
        "async, versions, code"
    );
    assert_eq!(asked("j") - j_before, 60 + 12 + 12 + 24);
    assert_eq!(m.up("py"), 1.0);

    // New code: seen by the next code poll, asked at the snapshot poll
    // after it, once.
    assert!(sim.set_code(PROJECT, "default", "py", "d1g3st", 8192, now_unix()));
    for _ in 0..15 {
        clock.advance(MINUTE);
        h.run_cycle().await;
    }
    let m = h.metrics().await;
    assert_eq!(requests(&m, "snapshot_state", "400"), 2.0);

    // A day later, asked again.
    clock.advance(Duration::from_secs(24 * 3600));
    h.run_cycle().await;
    let m = h.metrics().await;
    assert_eq!(requests(&m, "snapshot_state", "400"), 3.0);
    assert_eq!(m.up("py"), 1.0);
    h.stop().await;
}

/// Row 3. A collector that fails every time is retried after its interval,
/// then twice that, four times, ... up to sixteen times its interval (or 30
/// minutes); its series say it fails all along, the landing page says when
/// it is tried next, and one success resets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_collector_backs_off_exponentially() {
    let sim = simulator(&["default:f1", "default:f2"]);
    let setup = Setup {
        functions: &["default:f1", "default:f2"],
        polling: "interval = \"1m\"\nretries = 0\n[polling.intervals]\ncode = \"1m\"",
        project: "max_requests_per_second = 100000",
        ..Setup::default()
    };
    let (h, clock) = Harness::start_on_clock(&sim, setup).await;
    let busy = Fault::error(500, "FSS.0500", "internal error");
    inject_fault(&sim, PROJECT, "f1", Endpoint::Code, busy);
    let mut attempts = Vec::new();
    for minute in 1..=50u32 {
        let before = sim.requests_to(Endpoint::Code);
        clock.advance(MINUTE);
        h.run_cycle().await;
        // f2's code is polled every minute; the rest is f1's.
        match sim.requests_to(Endpoint::Code) - before {
            1 => {}
            2 => attempts.push(minute),
            n => panic!("{n} code requests at minute {minute}"),
        }
        let m = h.metrics().await;
        assert_eq!(m.success("f1", "code"), 0.0, "minute {minute}");
        assert_eq!(m.success("f1", "async_invocations"), 1.0, "minute {minute}");
        assert_eq!(m.up("f2"), 1.0);
    }
    // Every minute before: 50 requests. Now: the first failure, then after
    // 1, 2, 4, 8, 16 and 16 minutes.
    assert_eq!(attempts, vec![1, 2, 4, 8, 16, 32, 48]);
    let page = h.status_page().await;
    assert!(page.contains("code: http 500 FSS.0500"), "{page}");
    assert!(page.contains("7 in a row; next attempt "), "{page}");

    // Healed: the next attempt (minute 64) succeeds, and from then on the
    // collector runs every minute again.
    sim.clear_faults();
    let mut calls = Vec::new();
    for minute in 51..=66u32 {
        let before = sim.requests_to(Endpoint::Code);
        clock.advance(MINUTE);
        h.run_cycle().await;
        if sim.requests_to(Endpoint::Code) - before == 2 {
            calls.push(minute);
        }
    }
    assert_eq!(calls, vec![64, 65, 66]);
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    assert!(!h.status_page().await.contains("in a row"));
    h.stop().await;
}

/// Row 4. Snapshot `{"code": 0}` and versions `code_size: "245"`: fields
/// the exporter does not read never fail a collector, and numbers may come
/// as numeric strings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_fields_and_numeric_strings_do_not_fail_collectors() {
    let sim = simulator(&[]);
    sim.add_function(PROJECT, java("j"));
    let fault = |endpoint, body: &str| {
        inject_fault(&sim, PROJECT, "j", endpoint, Fault::Body(body.to_owned()));
    };
    fault(Endpoint::SnapshotState, r#"{"state":"enable","code":0}"#);
    fault(Endpoint::SnapshotEnable, r#"{"state":"enable","code":0}"#);
    fault(
        Endpoint::Versions,
        r#"{"versions":[{"version":"latest","runtime":"Java17","code_type":"jar","code_size":"245","memory_size":"256","timeout":"30"},{"version":"v1","runtime":"Java17","code_type":"jar","code_size":"245","last_modified":"2019-10-25 15:37:27"}],"next_marker":"2","count":"2"}"#,
    );
    fault(
        Endpoint::Code,
        r#"{"func_name":7,"runtime":"Java17","code_type":"jar","code_size":"4096","digest":"ab","strategy_config":{"concurrency":"-1","concurrent_num":"1"},"depend_list":{}}"#,
    );
    let j = v1("j");
    let h = Harness::start(sim, &[&j]).await;
    h.ready().await;
    let m = h.metrics().await;
    let f = [("function", "j")];
    assert_eq!(m.get("functiongraph_up", &f), 1.0, "{}", m.text);
    assert_eq!(m.get("functiongraph_versions", &f), 2.0);
    assert_eq!(m.get("functiongraph_code_size_bytes", &f), 4096.0);
    assert_eq!(m.get("functiongraph_max_instances", &f), -1.0);
    assert_eq!(m.snapshot_state("j", "enable"), 1.0);
    assert_eq!(m.get("functiongraph_snapshot_enabled", &f), 1.0);
    h.stop().await;
}

/// Row 5. A deleted function is recognised by every documented not-found
/// code (`FSS.1051`, `FSS.1052`, `FSS.0404`), on whichever endpoint says
/// it, and removed once a listing confirms it. A function still listed is
/// kept, and so is one another request of the same poll answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_is_recognised_by_every_documented_code_and_confirmed() {
    let names = ["g1051", "g1052", "g0404", "listed", "answered", "other"];
    let refs: Vec<String> = names.iter().map(|n| format!("default:{n}")).collect();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let sim = simulator(&refs);
    let (h, clock) = start_each_minute(
        &sim,
        "[projects.discovery]\nenabled = true\nrefresh_interval = \"1h\"\n",
        "",
    )
    .await;
    let monitored = |m: &Exposition| -> BTreeSet<String> {
        m.matching("functiongraph_up", &[])
            .map(|(_, l, _)| l["function"].clone())
            .collect()
    };
    assert_eq!(monitored(&h.metrics().await).len(), names.len());

    let fault = |name: &str, endpoint, fault: Fault| {
        inject_fault(&sim, PROJECT, name, endpoint, fault);
    };
    let busy = || Fault::error(500, "FSS.0500", "internal error");
    let all = [
        Endpoint::AsyncInvocations,
        Endpoint::Versions,
        Endpoint::Code,
        Endpoint::SnapshotState,
    ];
    let gone_1052 = || Fault::error(404, "FSS.1052", "Not found the function version");
    let gone_0404 = || Fault::error(404, "FSS.0404", "can not find function");
    // Deleted; the simulator answers FSS.1051 everywhere.
    assert!(sim.remove_function(PROJECT, "default", "g1051"));
    // Deleted; only versions says so (FSS.1052), or only code (FSS.0404),
    // the rest answer 500.
    for (name, says, gone) in [
        ("g1052", Endpoint::Versions, gone_1052()),
        ("g0404", Endpoint::Code, gone_0404()),
    ] {
        assert!(sim.remove_function(PROJECT, "default", name));
        for e in all {
            fault(name, e, if e == says { gone.clone() } else { busy() });
        }
    }
    // Still listed, though everything answers FSS.1052: the listing keeps it.
    for e in all {
        fault("listed", e, gone_1052());
    }
    // Its async invocations say FSS.0404, but its code was read: it exists.
    fault("answered", Endpoint::AsyncInvocations, gone_0404());

    // Five minutes on: every collector is due, discovery is not.
    let listings = sim.requests_to(Endpoint::ListFunctions);
    clock.advance(5 * MINUTE);
    h.run_cycle().await;
    let m = h.metrics().await;
    let expected: BTreeSet<String> = ["listed", "answered", "other"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(monitored(&m), expected);
    for gone in ["g1051", "g1052", "g0404"] {
        assert!(!m.text.contains(&format!("function=\"{gone}\"")), "{gone}");
    }
    assert_eq!(
        sim.requests_to(Endpoint::ListFunctions) - listings,
        4,
        "one confirming listing per suspect, none for the one answered"
    );
    assert_eq!(m.up("listed"), 0.0);
    assert_eq!(m.up("other"), 1.0);
    h.stop().await;
}

/// Row 6. Sixteen functions whose API hangs and four healthy ones, at
/// concurrency 8. Each hanging function sends one request per poll (the
/// rest of its poll is not sent once it went unanswered), each function not
/// yet known to answer has at most its share of the slots in flight, the
/// first cycle completes with the healthy functions up, the hanging ones
/// back off like failing collectors, and the healthy ones are polled fresh
/// every interval. (How long that takes in real time, against an
/// all-healthy run, is `bench -- hanging`, in BENCHMARKS.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_functions_cannot_starve_healthy_ones() {
    let hanging: Vec<String> = (0..16).map(|i| format!("hang-{i:02}")).collect();
    let healthy: Vec<String> = (0..4).map(|i| format!("ok-{i}")).collect();
    let sim = simulator(&[]);
    for name in hanging.iter().chain(&healthy) {
        sim.add_function(PROJECT, FunctionSpec::new("default", name));
    }
    for name in &hanging {
        for e in [
            Endpoint::AsyncInvocations,
            Endpoint::Versions,
            Endpoint::Code,
            Endpoint::SnapshotState,
        ] {
            inject_fault(&sim, PROJECT, name, e, Fault::Hang);
        }
    }
    let refs: Vec<String> = hanging
        .iter()
        .chain(&healthy)
        .map(|n| format!("default:{n}"))
        .collect();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let clock = Arc::new(ManualClock::new());
    let h = Harness::start_with(
        sim.clone(),
        Setup {
            functions: &refs,
            polling: "interval = \"10m\"\ntimeout = \"2s\"\nconcurrency = 8\n[polling.intervals]\nversions = \"10m\"\ncode = \"10m\"\nsnapshot = \"10m\"",
            project: "max_requests_per_second = 100000",
            clock: Some(Arc::clone(&clock)),
            ..Setup::default()
        },
    )
    .await;
    // Ready: every function polled once, in the first cycle.
    h.ready().await;
    // The credentials were checked with a listing, not by whichever
    // function's request came first (while unverified, requests go one at
    // a time, and a hanging one would hold up everything).
    assert_eq!(sim.requests_to(Endpoint::ListFunctions), 1);
    let m = h.metrics().await;
    for name in &healthy {
        assert_eq!(m.up(name), 1.0, "{name}");
        assert_eq!(sim.requests_of("default", name), 4, "{name}");
        assert_eq!(
            sim.max_in_flight_of("default", name),
            1,
            "{name}: its share"
        );
    }
    for name in &hanging {
        assert_eq!(m.up(name), 0.0, "{name}");
        assert_eq!(
            sim.requests_of("default", name),
            1,
            "{name}: one request, the rest of its poll not sent"
        );
    }
    assert_eq!(
        requests(&m, "async_invocations", "timeout"),
        16.0,
        "{}",
        m.text
    );
    h.assert_page_shows("not sent: another request of this function got no answer in time")
        .await;

    // On the manual clock, one interval at a time: the healthy functions
    // are polled and fresh every interval; the hanging ones are tried after
    // 1 and 2 intervals, then every 30 minutes (the cap; one request each).
    let mut tried = Vec::new();
    for interval in 1..=20u32 {
        let before: u64 = hanging.iter().map(|n| sim.requests_of("default", n)).sum();
        clock.advance(Duration::from_secs(600));
        h.run_cycle().await;
        let after: u64 = hanging.iter().map(|n| sim.requests_of("default", n)).sum();
        match after - before {
            0 => {}
            16 => tried.push(interval),
            n => panic!("{n} requests to hanging functions at interval {interval}"),
        }
        let m = h.metrics().await;
        let now = clock.unix();
        for name in &healthy {
            assert_eq!(m.up(name), 1.0);
            let last = m.get(
                "functiongraph_exporter_last_poll_success_timestamp_seconds",
                &[("function", name)],
            );
            assert!(now - last <= 900.0, "{name} fresh within 1.5 intervals");
        }
    }
    assert_eq!(tried, vec![1, 3, 6, 9, 12, 15, 18]);
    h.stop().await;
}
