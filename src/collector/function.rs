//! Per-function metric families, built from the store's snapshots.
//!
//! Every series carries the function's identity labels: `function`,
//! `package`, `qualifier` (version or `!alias` polled) and `project_id`.
//! Nothing free-form from the API (request ids, error messages) ever
//! becomes a label.

use prometheus::proto::{LabelPair, MetricFamily};

use crate::state::{
    FunctionSnapshot, InvocationStatus, ProjectSnapshot, QuotaUnit, SNAPSHOT_STATES, SnapshotInfo,
};

use super::family::{Family, label};
use super::openmetrics::SampleExemplars;

/// Label value of a snapshot state the API reported but the exporter does
/// not know (and of a missing state).
const UNKNOWN_STATE: &str = "unknown";

/// Builds the per-function families, and beside them their samples'
/// exemplars (for OpenMetrics). `refresh` is appended to every HELP text
/// (the same whatever the configuration, see `collector::REFRESH`).
pub fn families(
    snapshots: &[impl AsRef<FunctionSnapshot>],
    refresh: &str,
) -> (Vec<MetricFamily>, Vec<Vec<SampleExemplars>>) {
    let help = |text: &str| format!("{text} {refresh}");
    let mut up = Family::gauge(
        "functiongraph_up",
        &help(
            "1 if the latest poll of the function succeeded on every collector that applies to it, else 0.",
        ),
    );
    let mut success = Family::gauge(
        "functiongraph_collector_success",
        &help("1 if the collector's latest poll of the function succeeded, else 0."),
    );
    let mut window = Family::gauge(
        "functiongraph_async_invocation_records",
        &help(
            "Asynchronous invocation records in the lookback window (polling.async_lookback), by status.",
        ),
    );
    let mut totals = Family::counter(
        "functiongraph_async_invocations_total",
        &help(
            "Asynchronous invocations seen reaching a terminal status (SUCCESS, FAIL, DISCARD), each request counted exactly once. Records already terminal at the first poll are not counted. In OpenMetrics, FAIL and DISCARD carry the latest request counted as an exemplar.",
        ),
    );
    let mut failures = Family::counter(
        "functiongraph_async_invocation_failures_total",
        &help(
            "FAIL asynchronous invocations by the record's error_code, each request counted once, as in functiongraph_async_invocations_total{status=\"FAIL\"}, which they sum to. Per function at most failures.max_error_codes codes; the rest are error_code=\"other\", a record without one error_code=\"unknown\".",
        ),
    );
    let mut durations = Family::histogram(
        "functiongraph_async_invocation_duration_seconds",
        &help(
            "end_time - start_time of the asynchronous invocations counted in functiongraph_async_invocations_total (one-second resolution).",
        ),
    );
    let mut last_failure = Family::gauge(
        "functiongraph_async_invocation_last_failure_timestamp_seconds",
        &help("Start time (Unix seconds) of the newest FAIL asynchronous invocation record seen."),
    );
    let mut code_size = Family::gauge(
        "functiongraph_code_size_bytes",
        &help("Size of the function's code package (code API, code_size)."),
    );
    let mut code_modified = Family::gauge(
        "functiongraph_code_last_modified_timestamp_seconds",
        &help(
            "When the function's code was last modified (code API, last_modified, read as UTC), Unix seconds.",
        ),
    );
    let mut code_changes = Family::counter(
        "functiongraph_code_changes_total",
        &help("Changes of the code digest (code API, digest) observed since the exporter started."),
    );
    let mut info = Family::gauge(
        "functiongraph_function_info",
        &help("Function metadata from the code API, always 1; join with group_left."),
    );
    let mut max_instances = Family::gauge(
        "functiongraph_max_instances",
        &help(
            "Maximum instances of the function (strategy_config.concurrency): -1 means unlimited, 0 means the function is disabled.",
        ),
    );
    let mut versions = Family::gauge(
        "functiongraph_versions",
        &help(
            "Number of versions of the function, latest included, across all pages of the versions API.",
        ),
    );
    let mut version_info = Family::gauge(
        "functiongraph_version_info",
        &help("One series per version of the function, always 1 (versions API)."),
    );
    let mut snapshot_state = Family::gauge(
        "functiongraph_snapshot_state",
        &help(
            "Snapshot state of the function (snapshots/state): 1 for the current state, 0 for the others; unknown for a state the exporter does not know. Absent for functions snapshots do not apply to (only published versions of Java functions have them).",
        ),
    );
    let mut snapshot_enabled = Family::gauge(
        "functiongraph_snapshot_enabled",
        &help("1 if snapshot-based cold start is switched on (snapshots/enableSnapshot), else 0."),
    );
    let mut stat_invocations = Family::gauge(
        "functiongraph_statistics_invocations",
        &help(
            "Invocations over the statistics API's look-back period (collectors.statistics_period_minutes; statistics API, count). Absent when the API had no data.",
        ),
    );
    let mut stat_errors = Family::gauge(
        "functiongraph_statistics_errors",
        &help(
            "Failed invocations over the statistics look-back period (statistics API, fail_count).",
        ),
    );
    let mut stat_throttles = Family::gauge(
        "functiongraph_statistics_throttles",
        &help(
            "Throttled invocations over the statistics look-back period (statistics API, reject_count).",
        ),
    );
    let mut stat_avg = Family::gauge(
        "functiongraph_statistics_duration_average_seconds",
        &help(
            "Average invocation duration over the statistics look-back period, weighted by invocations (statistics API, duration).",
        ),
    );
    let mut stat_max = Family::gauge(
        "functiongraph_statistics_duration_max_seconds",
        &help(
            "Longest invocation over the statistics look-back period (statistics API, max_duration).",
        ),
    );
    let mut stat_min = Family::gauge(
        "functiongraph_statistics_duration_min_seconds",
        &help(
            "Shortest invocation over the statistics look-back period (statistics API, min_duration).",
        ),
    );
    let mut last_poll = Family::gauge(
        "functiongraph_exporter_last_poll_success_timestamp_seconds",
        &help("When a poll of the function last succeeded on every collector, Unix seconds."),
    );

    for snap in snapshots {
        let snap = snap.as_ref();
        if snap.polls == 0 {
            continue;
        }
        let base = [
            label("function", snap.urn.name()),
            label("package", snap.urn.package()),
            label("qualifier", snap.urn.qualifier()),
            label("project_id", snap.urn.project_id()),
        ];
        let with = |extra: &[(&str, &str)]| -> Vec<LabelPair> {
            let mut v = base.to_vec();
            v.extend(extra.iter().map(|(k, val)| label(k, val)));
            v
        };

        up.sample(with(&[]), if snap.up() { 1.0 } else { 0.0 });
        for (kind, ok) in snap.successes() {
            success.sample(
                with(&[("collector", kind.as_str())]),
                f64::from(u8::from(ok)),
            );
        }
        if let Some(t) = snap.last_success {
            last_poll.sample(with(&[]), t.floor());
        }

        if let Some(w) = &snap.async_invocations.value {
            for status in InvocationStatus::ALL {
                window.sample(
                    with(&[("status", status.as_str())]),
                    w.by_status[status.index()] as f64,
                );
            }
            if let Some(t) = w.last_failure {
                last_failure.sample(with(&[]), t as f64);
            }
        }
        // Counters exist from the first poll, at 0, whatever its outcome:
        // a failure-ratio query must never divide by "no data".
        for (i, status) in InvocationStatus::TERMINAL.iter().enumerate() {
            // The way from an alert to the request: failures only.
            let exemplar = match status {
                InvocationStatus::Success => None,
                _ => snap.async_counters.latest[i].as_ref(),
            };
            totals.sample_with_exemplar(
                with(&[("status", status.as_str())]),
                snap.async_counters.terminal[i] as f64,
                exemplar,
            );
        }
        for (code, n) in &snap.async_counters.failures_by_code {
            failures.sample(with(&[("error_code", code)]), *n as f64);
        }
        durations.histogram_sample(with(&[]), &snap.async_counters.durations);
        code_changes.sample(with(&[]), snap.code_changes as f64);

        if let Some(code) = &snap.code.value {
            if let Some(size) = code.size_bytes {
                code_size.sample(with(&[]), size as f64);
            }
            if let Some(t) = code.last_modified {
                code_modified.sample(with(&[]), t as f64);
            }
            if let Some(n) = code.max_instances {
                max_instances.sample(with(&[]), n as f64);
            }
            info.sample(
                with(&[("runtime", &code.runtime), ("code_type", &code.code_type)]),
                1.0,
            );
        }

        if let Some(vs) = &snap.versions.value {
            versions.sample(with(&[]), vs.len() as f64);
            for v in vs {
                version_info.sample(
                    with(&[
                        ("version", &v.version),
                        ("runtime", &v.runtime),
                        ("code_type", &v.code_type),
                    ]),
                    1.0,
                );
            }
        }

        if let Some(st) = snap.statistics.as_ref().and_then(|c| c.value.as_ref()) {
            for (family, value) in [
                (&mut stat_invocations, st.invocations),
                (&mut stat_errors, st.errors),
                (&mut stat_throttles, st.throttles),
                (&mut stat_avg, st.duration_average),
                (&mut stat_max, st.duration_max),
                (&mut stat_min, st.duration_min),
            ] {
                if let Some(v) = value {
                    family.sample(with(&[]), v);
                }
            }
        }

        if let Some(SnapshotInfo::Known { state, enabled }) = &snap.snapshot.value {
            for (i, name) in SNAPSHOT_STATES.iter().enumerate() {
                snapshot_state.sample(
                    with(&[("state", name)]),
                    f64::from(u8::from(*state == Some(i))),
                );
            }
            snapshot_state.sample(
                with(&[("state", UNKNOWN_STATE)]),
                f64::from(u8::from(state.is_none())),
            );
            if let Some(e) = enabled {
                snapshot_enabled.sample(with(&[]), f64::from(u8::from(*e)));
            }
        }
    }

    let (families, exemplars) = [
        up,
        success,
        window,
        totals,
        failures,
        durations,
        last_failure,
        code_size,
        code_modified,
        code_changes,
        info,
        max_instances,
        versions,
        version_info,
        snapshot_state,
        snapshot_enabled,
        stat_invocations,
        stat_errors,
        stat_throttles,
        stat_avg,
        stat_max,
        stat_min,
        last_poll,
    ]
    .into_iter()
    .filter_map(Family::finish)
    .unzip();
    (families, exemplars)
}

/// Project-level families: functions monitored, and quotas.
pub fn project_families(
    snapshots: &[impl AsRef<FunctionSnapshot>],
    projects: &[impl AsRef<ProjectSnapshot>],
    refresh: &str,
) -> Vec<MetricFamily> {
    let mut functions = Family::gauge(
        "functiongraph_exporter_functions",
        "Functions this exporter (this shard) monitors, configured and discovered, by project.",
    );
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for s in snapshots {
        *counts.entry(s.as_ref().urn.project_id()).or_default() += 1;
    }
    for (project, n) in counts {
        functions.sample(vec![label("project_id", project)], n as f64);
    }
    // One unit per name: counts, bytes (the API's MB) and seconds each
    // have their own pair of families.
    let units = [QuotaUnit::Count, QuotaUnit::Bytes, QuotaUnit::Seconds];
    let mut quotas: Vec<(QuotaUnit, Family, Family)> = units
        .iter()
        .map(|&unit| {
            let what = match unit {
                QuotaUnit::Count => "a count",
                QuotaUnit::Bytes => "bytes (the API's MB converted)",
                QuotaUnit::Seconds => "seconds",
            };
            let limit = Family::gauge(
                &format!("functiongraph_quota_limit{}", unit.suffix()),
                &format!(
                    "Quota of a project resource measured in {what} (quotas API, quota). {refresh}"
                ),
            );
            let used = Family::gauge(
                &format!("functiongraph_quota_used{}", unit.suffix()),
                &format!(
                    "Usage of a project resource measured in {what} (quotas API, used). {refresh}"
                ),
            );
            (unit, limit, used)
        })
        .collect();
    for p in projects {
        let p = p.as_ref();
        for q in p.quotas.value.iter().flatten() {
            let labels = || {
                vec![
                    label("project_id", &p.project_id),
                    label("resource", &q.resource),
                ]
            };
            if let Some((_, limit, used)) = quotas.iter_mut().find(|(u, _, _)| *u == q.unit) {
                limit.sample(labels(), q.limit);
                used.sample(labels(), q.used);
            }
        }
    }
    std::iter::once(functions)
        .chain(
            quotas
                .into_iter()
                .flat_map(|(_, limit, used)| [limit, used]),
        )
        .filter_map(Family::finish)
        .map(|(family, _)| family)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{AsyncWindow, CodeInfo, Collected, VersionInfo};
    use crate::urn::FunctionUrn;

    fn urn(package: &str, name: &str) -> FunctionUrn {
        FunctionUrn::new(
            "r",
            "0123456789abcdef0123456789abcdef",
            package,
            name,
            "latest",
        )
        .unwrap()
    }

    fn ok<T>(v: T) -> Collected<T> {
        Collected {
            success: true,
            value: Some(v),
            error: None,
        }
    }

    fn polled(urn: FunctionUrn) -> FunctionSnapshot {
        let mut s = FunctionSnapshot::new(urn);
        s.polls = 1;
        s.async_invocations = ok(AsyncWindow {
            by_status: [1, 2, 3, 4, 5],
            last_failure: Some(1_700_000_000),
        });
        s.versions = ok(vec![VersionInfo {
            version: "latest".into(),
            ..VersionInfo::default()
        }]);
        s.code = ok(CodeInfo {
            runtime: "Go1.x".into(),
            size_bytes: Some(10),
            ..CodeInfo::default()
        });
        s.snapshot = ok(SnapshotInfo::Known {
            state: Some(3),
            enabled: None,
        });
        s
    }

    fn encode(snaps: &[FunctionSnapshot]) -> String {
        let snaps: Vec<std::sync::Arc<FunctionSnapshot>> =
            snaps.iter().cloned().map(std::sync::Arc::new).collect();
        let (families, _) = families(&snaps, "R.");
        prometheus::TextEncoder::new()
            .encode_to_string(&families)
            .unwrap()
    }

    #[test]
    fn an_unpolled_function_exports_nothing() {
        assert_eq!(encode(&[FunctionSnapshot::new(urn("default", "f"))]), "");
    }

    #[test]
    fn snapshot_state_is_a_state_set_with_exactly_one_set() {
        let text = encode(&[polled(urn("default", "f"))]);
        let states: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("functiongraph_snapshot_state{"))
            .collect();
        assert_eq!(states.len(), 7);
        assert_eq!(states.iter().filter(|l| l.ends_with(" 1")).count(), 1);
        assert!(
            states
                .iter()
                .any(|l| l.contains("state=\"create_fail\"} 1"))
        );
        // No enableSnapshot answer: no series rather than a guess.
        assert!(!text.contains("functiongraph_snapshot_enabled{"));
    }

    #[test]
    fn a_failed_poll_keeps_counters_and_marks_collectors() {
        let mut s = polled(urn("default", "f"));
        s.code.success = false;
        s.async_counters.terminal = [7, 1, 0];
        let text = encode(&[s]);
        assert!(text.contains("functiongraph_up{function=\"f\",package=\"default\",qualifier=\"latest\",project_id=\"0123456789abcdef0123456789abcdef\"} 0"));
        assert!(text.contains("collector=\"code\"} 0"));
        assert!(text.contains("status=\"SUCCESS\"} 7"));
        assert!(text.contains("status=\"DISCARD\"} 0"));
        // Every family has HELP with the refresh note, and TYPE.
        for line in text.lines().filter(|l| l.starts_with("# HELP")) {
            assert!(line.ends_with(" R."), "{line}");
        }
    }

    #[test]
    fn hostile_names_are_escaped_in_label_values() {
        let text = encode(&[polled(urn("pk\"g\\", "na\"me\\x"))]);
        assert!(
            text.contains(r#"function="na\"me\\x",package="pk\"g\\""#),
            "{text}"
        );
        assert!(!text.contains('\r'));
    }
}
