//! A fixed simulator scenario rendered to a checked-in exposition
//! (`tests/fixtures/golden.prom`), which `promtool check metrics` must pass
//! without a word. Values that depend on the clock or the machine (request
//! and poll durations, poll timestamps) are set to 0; process metrics and
//! build info are left out. `UPDATE_GOLDEN=1` rewrites the file.

use std::path::PathBuf;

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::simulator::{Fault, FunctionSpec, Invocation, SimStatus};
use functiongraph_exporter::timefmt::now_unix;

use crate::util::{Harness, PROJECT, inject_fault, simulator};

/// Families whose values depend on the clock or the machine.
const ZEROED: [&str; 5] = [
    "functiongraph_exporter_api_request_duration_seconds",
    "functiongraph_exporter_api_clock_offset_seconds",
    "functiongraph_exporter_poll_duration_seconds",
    "functiongraph_exporter_last_poll_success_timestamp_seconds",
    "functiongraph_async_invocation_last_failure_timestamp_seconds",
];
/// Families left out of the golden file.
const DROPPED: [&str; 2] = ["process_", "functiongraph_exporter_build_info"];

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden.prom")
}

fn family_of(line: &str) -> &str {
    if let Some(rest) = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
    {
        return rest.split(' ').next().unwrap_or_default();
    }
    line.split(['{', ' ']).next().unwrap_or_default()
}

fn normalise(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let family = family_of(line);
        if DROPPED.iter().any(|p| family.starts_with(p)) {
            continue;
        }
        if !line.starts_with('#') && ZEROED.iter().any(|p| family.starts_with(p)) {
            let (series, _) = line.rsplit_once(' ').unwrap();
            out.push_str(series);
            out.push_str(" 0\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Runs the fixed scenario and returns its normalised exposition.
async fn scenario() -> String {
    let sim = simulator(&["default:alpha", "default:broken"]);
    sim.add_function(
        PROJECT,
        FunctionSpec::new("orders", "java")
            .runtime("Java17")
            .code("jar", 4_194_304)
            .version("v1")
            .version("v2")
            .alias("prod", "v2")
            .snapshot("enable", true),
    );
    assert!(sim.set_code(PROJECT, "default", "alpha", "aa11", 2048, 1_700_000_000));
    assert!(sim.set_code(PROJECT, "orders", "java", "bb22", 4_194_304, 1_700_000_600));
    inject_fault(
        &sim,
        PROJECT,
        "broken",
        Endpoint::Code,
        Fault::error(500, "FSS.0500", "internal error"),
    );
    let now = now_unix();
    let b3_start = now - 10;
    for (id, status, start, end) in [
        ("b1", SimStatus::Success, now - 900, Some(now - 898)),
        ("b2", SimStatus::Fail, now - 800, Some(now - 790)),
        ("b3", SimStatus::Running, b3_start, None),
    ] {
        assert!(sim.add_invocation(
            PROJECT,
            "default",
            "alpha",
            Invocation::new(id, status, start, end)
        ));
    }
    let h = Harness::start(
        sim.clone(),
        &[
            "default:alpha",
            "default:broken",
            &format!("{PROJECT}:orders:java:!prod"),
        ],
    )
    .await;
    h.ready().await;
    let now = now_unix();
    for (id, status, start, end) in [
        ("n1", SimStatus::Success, now - 5, Some(now - 4)),
        ("n2", SimStatus::Success, now - 5, Some(now)),
        ("n3", SimStatus::Discard, now - 3, Some(now - 3)),
        ("n4", SimStatus::Wait, now - 1, None),
    ] {
        assert!(sim.add_invocation(
            PROJECT,
            "default",
            "alpha",
            Invocation::new(id, status, start, end)
        ));
    }
    assert!(sim.set_invocation_status(
        PROJECT,
        "default",
        "alpha",
        "b3",
        SimStatus::Fail,
        Some(b3_start + 7)
    ));
    assert!(sim.set_code(PROJECT, "default", "alpha", "aa12", 2100, 1_700_000_100));
    h.poll().await;
    let text = h.metrics().await.text;
    h.stop().await;
    normalise(&text)
}

/// The scenario's exposition is exactly the golden file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposition_matches_the_golden_file() {
    let got = scenario().await;
    let path = golden_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if got != want {
        let diff: Vec<String> = got
            .lines()
            .zip(want.lines().chain(std::iter::repeat("<missing>")))
            .filter(|(g, w)| g != w)
            .take(5)
            .map(|(g, w)| format!("  got:  {g}\n  want: {w}"))
            .collect();
        panic!(
            "exposition differs from {} ({} vs {} lines); rerun with UPDATE_GOLDEN=1 if intended:\n{}",
            path.display(),
            got.lines().count(),
            want.lines().count(),
            diff.join("\n")
        );
    }
}

/// promtool has nothing to say about the golden file.
#[test]
#[cfg_attr(not(has_promtool), ignore = "no promtool: apt install prometheus")]
fn golden_file_passes_promtool() {
    let body = std::fs::read_to_string(golden_path()).unwrap();
    assert!(body.contains("functiongraph_up{"));
    crate::cli::promtool_check_metrics(&body);
}
