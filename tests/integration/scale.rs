//! Scale and coverage: discovery, sharding, several projects, the API
//! budget (intervals and rate limit), and the optional statistics and
//! quotas collectors.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::clock::ManualClock;
use functiongraph_exporter::poller::shard::hashmod;
use functiongraph_exporter::simulator::{Fault, FunctionSpec, Invocation, SimStatus};
use functiongraph_exporter::timefmt::now_unix;

use crate::util::{Exposition, Harness, PROJECT, REGION, simulator};

const OTHER: &str = "b0000000000000000000000000000001";

/// A project table polling the simulator with the test token.
fn project(id: &str, functions: &str, extra: &str) -> String {
    format!(
        r#"
[[projects]]
project_id = "{id}"
region = "{REGION}"
endpoint = "{{endpoint}}"
functions = [{functions}]
{extra}
[projects.auth]
type = "token"
token_file = "{{token_file}}"
"#
    )
}

fn config(polling: &str, rest: &str) -> String {
    format!("[web]\nlisten_address = \"127.0.0.1:0\"\n[polling]\n{polling}\n{rest}")
}

/// The monitored functions, by name.
fn functions(m: &Exposition) -> BTreeSet<String> {
    m.matching("functiongraph_up", &[])
        .map(|(_, labels, _)| labels["function"].clone())
        .collect()
}

/// Three replicas with `count = 3` poll disjoint sets whose union is every
/// function, split exactly as Prometheus' hashmod splits the URNs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_split_300_functions() {
    let sim = simulator(&[]);
    sim.generate_functions(PROJECT, "fn-", 300);
    let mut seen: Vec<BTreeSet<String>> = Vec::new();
    for index in 0u64..3 {
        let toml = config(
            "interval = \"1h\"\nconcurrency = 32",
            &format!(
                "[sharding]\ncount = 3\nindex = {index}\n{}",
                project(
                    PROJECT,
                    "",
                    "max_requests_per_second = 100000\n[projects.discovery]\nenabled = true"
                )
            ),
        );
        let h = Harness::start_toml(sim.clone(), &toml, None).await;
        h.ready().await;
        let m = h.metrics().await;
        let mine = functions(&m);
        assert_eq!(
            m.get(
                "functiongraph_exporter_shard_info",
                &[("index", &index.to_string()), ("count", "3")]
            ),
            1.0
        );
        assert_eq!(m.get("functiongraph_exporter_shards", &[]), 3.0);
        assert_eq!(
            m.get(
                "functiongraph_exporter_functions",
                &[("project_id", PROJECT)]
            ),
            mine.len() as f64
        );
        for name in &mine {
            let urn = format!("urn:fss:{REGION}:{PROJECT}:function:default:{name}:latest");
            assert_eq!(hashmod(&urn, 3), index, "{urn} polled by shard {index}");
            assert_eq!(m.up(name), 1.0);
        }
        h.stop().await;
        seen.push(mine);
    }
    let union: BTreeSet<&String> = seen.iter().flatten().collect();
    assert_eq!(union.len(), 300, "every function is polled");
    assert_eq!(
        seen.iter().map(BTreeSet::len).sum::<usize>(),
        300,
        "and only once"
    );
}

/// Discovery picks up a function created while running; a deleted one
/// (404 FSS.1051, confirmed by a listing) loses all its series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_follows_creation_and_deletion() {
    let sim = simulator(&["default:f1", "default:f2"]);
    let clock = Arc::new(ManualClock::new());
    let toml = config(
        "interval = \"1m\"",
        &project(
            PROJECT,
            "",
            "[projects.discovery]\nenabled = true\nrefresh_interval = \"10m\"",
        ),
    );
    let h = Harness::start_toml(sim.clone(), &toml, Some(Arc::clone(&clock))).await;
    h.ready().await;
    let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    assert_eq!(functions(&h.metrics().await), names(&["f1", "f2"]));

    assert!(sim.remove_function(PROJECT, "default", "f2"));
    sim.add_function(PROJECT, FunctionSpec::new("default", "f3"));
    // A minute later the async collector is due again (discovery is not).
    clock.advance(Duration::from_secs(61));
    h.run_cycle().await;
    let m = h.metrics().await;
    assert_eq!(
        functions(&m),
        names(&["f1"]),
        "f2 gone at once; f3 not listed yet"
    );
    assert!(!m.text.contains("function=\"f2\""), "no series of f2 left");

    clock.advance(Duration::from_secs(11 * 60));
    h.run_cycle().await;
    let m = h.metrics().await;
    assert_eq!(functions(&m), names(&["f1", "f3"]));
    assert_eq!(m.up("f3"), 1.0);
    assert_eq!(
        m.get(
            "functiongraph_exporter_functions",
            &[("project_id", PROJECT)]
        ),
        2.0
    );
    h.stop().await;
}

/// Include and exclude patterns and package filters; configured functions
/// and discovered ones merge without duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_filters() {
    let sim = simulator(&["default:api-one", "default:api-two-test", "default:worker"]);
    sim.add_function(PROJECT, FunctionSpec::new("etl", "api-etl"));
    let toml = config(
        "interval = \"1h\"",
        &project(
            PROJECT,
            "\"default:worker\", \"default:api-one\"",
            "[projects.discovery]\nenabled = true\npackages = [\"default\"]\ninclude = \"^api-\"\nexclude = \"-test$\"",
        ),
    );
    let h = Harness::start_toml(sim, &toml, None).await;
    h.ready().await;
    let m = h.metrics().await;
    let got = functions(&m);
    assert_eq!(
        got,
        ["api-one", "worker"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(
        m.matching("functiongraph_up", &[("function", "api-one")])
            .count(),
        1
    );
    h.stop().await;
}

/// One project answering 500 everywhere does not stop or stale the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_project_leaves_the_other_fresh() {
    let sim = simulator(&["default:a1", "default:a2"]);
    sim.add_project(OTHER, REGION);
    sim.add_function(OTHER, FunctionSpec::new("default", "b1"));
    sim.set_project_fault(OTHER, Some(Fault::error(500, "FSS.0500", "internal error")));
    let toml = config(
        "interval = \"1h\"",
        &format!(
            "{}{}",
            project(PROJECT, "\"default:a1\", \"default:a2\"", ""),
            project(OTHER, "\"default:b1\"", "")
        ),
    );
    let h = Harness::start_toml(sim, &toml, None).await;
    h.ready().await;
    let before = now_unix() as f64;
    h.poll().await;
    let m = h.metrics().await;
    for f in ["a1", "a2"] {
        assert_eq!(m.up(f), 1.0);
        let last = m.get(
            "functiongraph_exporter_last_poll_success_timestamp_seconds",
            &[("function", f)],
        );
        assert!(last >= before - 1.0, "{f} freshly polled");
    }
    assert_eq!(m.up("b1"), 0.0);
    h.stop().await;
}

/// API cost at the default intervals, per function and hour: 60 async
/// listings and 12 each of versions and code; for a function snapshots
/// apply to (a published version of a Java function), 12 each of snapshot
/// state and `enableSnapshot` (108 in all); for one they do not apply to,
/// none after the first answer, which is remembered (84 in all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_cost_per_function_per_hour_at_defaults() {
    let names = ["default:c1", "default:c2", "default:c3"];
    let sim = simulator(&names);
    sim.add_function(
        PROJECT,
        FunctionSpec::new("default", "j1")
            .runtime("Java17")
            .version("v1"),
    );
    let clock = Arc::new(ManualClock::new());
    let toml = config(
        "",
        // The clock jumps a minute per cycle: lift the rate limit, which
        // counts real seconds.
        &project(
            PROJECT,
            &format!("\"default:c1\", \"default:c2\", \"default:c3\", \"{PROJECT}:default:j1:v1\""),
            "max_requests_per_second = 100000",
        ),
    );
    let h = Harness::start_toml(sim.clone(), &toml, Some(Arc::clone(&clock))).await;
    h.ready().await;
    let count = |e| sim.requests_to(e);
    let endpoints = [
        Endpoint::AsyncInvocations,
        Endpoint::Versions,
        Endpoint::Code,
        Endpoint::SnapshotState,
        Endpoint::SnapshotEnable,
    ];
    let before: Vec<u64> = endpoints.iter().map(|e| count(*e)).collect();
    let of = |name| sim.requests_of("default", name);
    let python_before: Vec<u64> = ["c1", "c2", "c3"].iter().map(|n| of(*n)).collect();
    let java_before = of("j1");
    for _ in 0..60 {
        clock.advance(Duration::from_secs(60));
        h.run_cycle().await;
    }
    let per_endpoint: Vec<u64> = endpoints
        .iter()
        .zip(&before)
        .map(|(e, b)| count(*e) - b)
        .collect();
    assert_eq!(per_endpoint, vec![4 * 60, 4 * 12, 4 * 12, 12, 12]);
    for (name, b) in ["c1", "c2", "c3"].iter().zip(&python_before) {
        assert_eq!(of(*name) - b, 84, "{name}: snapshots do not apply");
    }
    assert_eq!(of("j1") - java_before, 108, "j1: snapshots apply");
    h.stop().await;
}

/// The per-project token bucket spreads requests instead of bursting: no
/// second sees more than the rate plus the burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_spreads_requests() {
    let sim = simulator(&[]);
    sim.generate_functions(PROJECT, "r-", 20);
    sim.record_request_times(true);
    let list: Vec<String> = (0..20).map(|i| format!("\"default:r-{i:04}\"")).collect();
    let toml = config(
        "interval = \"1h\"\nconcurrency = 32",
        &project(PROJECT, &list.join(", "), "max_requests_per_second = 20"),
    );
    let h = Harness::start_toml(sim.clone(), &toml, None).await;
    h.ready().await;
    let times = sim.request_times();
    // One listing checks the credentials, then 4 requests per function.
    assert_eq!(times.len(), 1 + 80);
    assert_eq!(sim.requests_to(Endpoint::ListFunctions), 1);
    for (i, t) in times.iter().enumerate() {
        let window = times[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
            .count();
        assert!(window <= 40, "{window} requests within one second");
    }
    h.stop().await;
}

/// Statistics and quotas, when switched on; "no data" (-1) is never a value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_and_quotas() {
    let sim = simulator(&["default:busy", "default:idle"]);
    let now = now_unix();
    for (i, status) in [SimStatus::Success, SimStatus::Success, SimStatus::Fail]
        .into_iter()
        .enumerate()
    {
        let start = now - 90 - i as i64;
        assert!(sim.add_invocation(
            PROJECT,
            "default",
            "busy",
            Invocation::new(&format!("s{i}"), status, start, Some(start + 2))
        ));
    }
    let toml = config(
        "interval = \"1h\"",
        &format!(
            "[collectors]\nstatistics = true\nquotas = true\n{}",
            project(PROJECT, "\"default:busy\", \"default:idle\"", "")
        ),
    );
    let h = Harness::start_toml(sim, &toml, None).await;
    h.ready().await;
    let m = h.metrics().await;
    let busy = [("function", "busy")];
    assert_eq!(m.get("functiongraph_statistics_invocations", &busy), 3.0);
    assert_eq!(m.get("functiongraph_statistics_errors", &busy), 1.0);
    assert_eq!(
        m.get("functiongraph_statistics_duration_max_seconds", &busy),
        2.0
    );
    assert_eq!(m.success("idle", "statistics"), 1.0);
    assert!(
        m.value(
            "functiongraph_statistics_invocations",
            &[("function", "idle")]
        )
        .is_none()
    );
    assert!(!m.text.contains(" -1\n"), "no -1 anywhere");
    assert_eq!(
        m.get(
            "functiongraph_quota_used",
            &[("resource", "fgs_func_num"), ("project_id", PROJECT)]
        ),
        2.0
    );
    assert_eq!(
        m.get("functiongraph_quota_limit", &[("resource", "fgs_func_num")]),
        400.0
    );
    assert_eq!(
        m.get(
            "functiongraph_quota_limit_bytes",
            &[("resource", "fgs_func_code_size")]
        ),
        81920.0 * 1024.0 * 1024.0
    );
    // One unit per name: no unit label, and bytes never under the count name.
    assert!(!m.text.contains("unit=\""));
    assert!(
        m.value(
            "functiongraph_quota_limit",
            &[("resource", "fgs_func_code_size")]
        )
        .is_none()
    );
    h.stop().await;
}
