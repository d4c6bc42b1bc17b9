//! The per-function families: their names, HELP and types, and the
//! samples each function contributes to each, described once for every
//! encoder ([`Sink`]: text 0.0.4, OpenMetrics, and the fingerprint that
//! tells whether a function's series of a family changed).
//!
//! Every series carries the function's identity labels: `function`,
//! `package`, `qualifier` (version or `!alias` polled) and `project_id`,
//! which the encoders write; a description adds only the labels beyond
//! them. Nothing free-form from the API (request ids, error messages) ever
//! becomes a label; request ids are OpenMetrics exemplars only.
//!
//! A function that has not been polled yet has no series. The duration
//! histogram appears once the function has counted an invocation with a
//! duration: functions without asynchronous traffic do not carry
//! `buckets + 3` series of zeros.

use prometheus::proto::MetricFamily;

use crate::state::{
    DurationHistogram, Exemplar, FunctionReport, InvocationStatus, ProjectReport, QuotaUnit,
    SNAPSHOT_STATES, SnapshotInfo,
};

use super::const_family::{Family, label};

/// Label value of a snapshot state the API reported but the exporter does
/// not know (and of a missing state).
const UNKNOWN_STATE: &str = "unknown";

/// What a family's samples are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    /// Named `…_total`.
    Counter,
    /// `_bucket`, `_sum` and `_count` samples.
    Histogram,
}

/// One per-function family.
#[derive(Debug)]
pub(crate) struct FamilyDef {
    pub name: &'static str,
    /// Without the refresh note every HELP ends with.
    pub help: &'static str,
    pub kind: Kind,
}

const fn def(name: &'static str, kind: Kind, help: &'static str) -> FamilyDef {
    FamilyDef { name, help, kind }
}

/// How many per-function families there are.
pub(crate) const FAMILIES: usize = 23;

const UP: usize = 0;
const COLLECTOR_SUCCESS: usize = 1;
const RECORDS: usize = 2;
const INVOCATIONS: usize = 3;
const FAILURES: usize = 4;
const DURATION: usize = 5;
const LAST_FAILURE: usize = 6;
const CODE_SIZE: usize = 7;
const CODE_MODIFIED: usize = 8;
const CODE_CHANGES: usize = 9;
const INFO: usize = 10;
const MAX_INSTANCES: usize = 11;
const VERSIONS: usize = 12;
const VERSION_INFO: usize = 13;
const SNAPSHOT_STATE: usize = 14;
const SNAPSHOT_ENABLED: usize = 15;
const STAT_INVOCATIONS: usize = 16;
const STAT_ERRORS: usize = 17;
const STAT_THROTTLES: usize = 18;
const STAT_AVERAGE: usize = 19;
const STAT_MAX: usize = 20;
const STAT_MIN: usize = 21;
const LAST_POLL: usize = 22;

/// The per-function families, in exposition order.
pub(crate) static DEFS: [FamilyDef; FAMILIES] = [
    def(
        "functiongraph_up",
        Kind::Gauge,
        "1 if the latest poll of the function succeeded on every collector that applies to it, else 0.",
    ),
    def(
        "functiongraph_collector_success",
        Kind::Gauge,
        "1 if the collector's latest poll of the function succeeded, else 0.",
    ),
    def(
        "functiongraph_async_invocation_records",
        Kind::Gauge,
        "Asynchronous invocation records in the lookback window (polling.async_lookback), by status.",
    ),
    def(
        "functiongraph_async_invocations_total",
        Kind::Counter,
        "Asynchronous invocations seen reaching a terminal status (SUCCESS, FAIL, DISCARD), each request counted exactly once. Records already terminal at the first poll are not counted. In OpenMetrics, FAIL and DISCARD carry the latest request counted as an exemplar.",
    ),
    def(
        "functiongraph_async_invocation_failures_total",
        Kind::Counter,
        "FAIL asynchronous invocations by the record's error_code, each request counted once, as in functiongraph_async_invocations_total{status=\"FAIL\"}, which they sum to. Per function at most failures.max_error_codes codes; the rest are error_code=\"other\", a record without one error_code=\"unknown\".",
    ),
    def(
        "functiongraph_async_invocation_duration_seconds",
        Kind::Histogram,
        "end_time - start_time of the asynchronous invocations counted in functiongraph_async_invocations_total (one-second resolution; buckets: polling.async_duration_buckets). Present once the function has counted one.",
    ),
    def(
        "functiongraph_async_invocation_last_failure_timestamp_seconds",
        Kind::Gauge,
        "Start time (Unix seconds) of the newest FAIL asynchronous invocation record seen.",
    ),
    def(
        "functiongraph_code_size_bytes",
        Kind::Gauge,
        "Size of the function's code package (code API, code_size).",
    ),
    def(
        "functiongraph_code_last_modified_timestamp_seconds",
        Kind::Gauge,
        "When the function's code was last modified (code API, last_modified, read as UTC), Unix seconds.",
    ),
    def(
        "functiongraph_code_changes_total",
        Kind::Counter,
        "Changes of the code digest (code API, digest) observed since the exporter started.",
    ),
    def(
        "functiongraph_function_info",
        Kind::Gauge,
        "Function metadata from the code API, always 1; join with group_left.",
    ),
    def(
        "functiongraph_max_instances",
        Kind::Gauge,
        "Maximum instances of the function (strategy_config.concurrency): -1 means unlimited, 0 means the function is disabled.",
    ),
    def(
        "functiongraph_versions",
        Kind::Gauge,
        "Number of versions of the function, latest included, across all pages of the versions API.",
    ),
    def(
        "functiongraph_version_info",
        Kind::Gauge,
        "One series per version of the function, always 1 (versions API).",
    ),
    def(
        "functiongraph_snapshot_state",
        Kind::Gauge,
        "Snapshot state of the function (snapshots/state): 1 for the current state, 0 for the others; unknown for a state the exporter does not know. Absent for functions snapshots do not apply to (only published versions of Java functions have them).",
    ),
    def(
        "functiongraph_snapshot_enabled",
        Kind::Gauge,
        "1 if snapshot-based cold start is switched on (snapshots/enableSnapshot), else 0.",
    ),
    def(
        "functiongraph_statistics_invocations",
        Kind::Gauge,
        "Invocations over the statistics API's look-back period (collectors.statistics_period_minutes; statistics API, count). Absent when the API had no data.",
    ),
    def(
        "functiongraph_statistics_errors",
        Kind::Gauge,
        "Failed invocations over the statistics look-back period (statistics API, fail_count).",
    ),
    def(
        "functiongraph_statistics_throttles",
        Kind::Gauge,
        "Throttled invocations over the statistics look-back period (statistics API, reject_count).",
    ),
    def(
        "functiongraph_statistics_duration_average_seconds",
        Kind::Gauge,
        "Average invocation duration over the statistics look-back period, weighted by invocations (statistics API, duration).",
    ),
    def(
        "functiongraph_statistics_duration_max_seconds",
        Kind::Gauge,
        "Longest invocation over the statistics look-back period (statistics API, max_duration).",
    ),
    def(
        "functiongraph_statistics_duration_min_seconds",
        Kind::Gauge,
        "Shortest invocation over the statistics look-back period (statistics API, min_duration).",
    ),
    def(
        "functiongraph_exporter_last_poll_success_timestamp_seconds",
        Kind::Gauge,
        "When a poll of the function last succeeded on every collector, Unix seconds.",
    ),
];

/// Where a description of samples goes. The family, and the function's
/// identity labels, are the sink's context.
pub(crate) trait Sink {
    /// A gauge or counter sample with `labels` beyond the identity, and
    /// for a counter the latest request it counted.
    fn sample(&mut self, labels: &[(&str, &str)], value: f64, exemplar: Option<&Exemplar>);
    /// A histogram, with no labels beyond the identity.
    fn histogram(&mut self, h: &DurationHistogram);
}

/// Describes the samples `report` contributes to family `family` (an index
/// into [`DEFS`]).
pub(crate) fn describe(family: usize, report: &FunctionReport, sink: &mut impl Sink) {
    if report.polls == 0 {
        return;
    }
    let bit = |b: bool| f64::from(u8::from(b));
    match family {
        UP => sink.sample(&[], bit(report.up()), None),
        COLLECTOR_SUCCESS => {
            for (kind, ok) in report.successes() {
                sink.sample(&[("collector", kind.as_str())], bit(ok), None);
            }
        }
        RECORDS => {
            if let Some(w) = &report.async_invocations.value {
                for status in InvocationStatus::ALL {
                    sink.sample(
                        &[("status", status.as_str())],
                        w.by_status[status.index()] as f64,
                        None,
                    );
                }
            }
        }
        INVOCATIONS => {
            // Counters exist from the first poll, at 0, whatever its
            // outcome: a failure-ratio query must never divide by "no data".
            for (i, status) in InvocationStatus::TERMINAL.iter().enumerate() {
                // The way from an alert to the request: failures only.
                let exemplar = match status {
                    InvocationStatus::Success => None,
                    _ => report.async_counters.latest[i].as_ref(),
                };
                sink.sample(
                    &[("status", status.as_str())],
                    report.async_counters.terminal[i] as f64,
                    exemplar,
                );
            }
        }
        FAILURES => {
            for (code, n) in &report.async_counters.failures_by_code {
                sink.sample(&[("error_code", code)], *n as f64, None);
            }
        }
        DURATION => {
            let h = &report.async_counters.durations;
            if h.count > 0 {
                sink.histogram(h);
            }
        }
        LAST_FAILURE => {
            let t = report
                .async_invocations
                .value
                .as_ref()
                .and_then(|w| w.last_failure);
            if let Some(t) = t {
                sink.sample(&[], t as f64, None);
            }
        }
        CODE_SIZE | CODE_MODIFIED | MAX_INSTANCES | INFO => {
            let Some(code) = &report.code.value else {
                return;
            };
            let value = match family {
                CODE_SIZE => code.size_bytes.map(|v| v as f64),
                CODE_MODIFIED => code.last_modified.map(|v| v as f64),
                MAX_INSTANCES => code.max_instances.map(|v| v as f64),
                _ => {
                    sink.sample(
                        &[("runtime", &code.runtime), ("code_type", &code.code_type)],
                        1.0,
                        None,
                    );
                    None
                }
            };
            if let Some(v) = value {
                sink.sample(&[], v, None);
            }
        }
        CODE_CHANGES => sink.sample(&[], report.code_changes as f64, None),
        VERSIONS => {
            if let Some(vs) = &report.versions.value {
                sink.sample(&[], vs.len() as f64, None);
            }
        }
        VERSION_INFO => {
            for v in report.versions.value.iter().flatten() {
                sink.sample(
                    &[
                        ("version", &v.version),
                        ("runtime", &v.runtime),
                        ("code_type", &v.code_type),
                    ],
                    1.0,
                    None,
                );
            }
        }
        SNAPSHOT_STATE | SNAPSHOT_ENABLED => {
            let Some(SnapshotInfo::Known { state, enabled }) = &report.snapshot.value else {
                return;
            };
            if family == SNAPSHOT_ENABLED {
                if let Some(e) = enabled {
                    sink.sample(&[], bit(*e), None);
                }
                return;
            }
            for (i, name) in SNAPSHOT_STATES.iter().enumerate() {
                sink.sample(&[("state", name)], bit(*state == Some(i)), None);
            }
            sink.sample(&[("state", UNKNOWN_STATE)], bit(state.is_none()), None);
        }
        STAT_INVOCATIONS..=STAT_MIN => {
            let Some(st) = report.statistics.as_ref().and_then(|c| c.value.as_ref()) else {
                return;
            };
            let value = match family {
                STAT_INVOCATIONS => st.invocations,
                STAT_ERRORS => st.errors,
                STAT_THROTTLES => st.throttles,
                STAT_AVERAGE => st.duration_average,
                STAT_MAX => st.duration_max,
                _ => st.duration_min,
            };
            if let Some(v) = value {
                sink.sample(&[], v, None);
            }
        }
        LAST_POLL => {
            if let Some(t) = report.last_success {
                sink.sample(&[], t.floor(), None);
            }
        }
        _ => {}
    }
}

/// What [`describe`] reads of a report, one bit per part: the inputs of
/// each family ([`INPUTS`]), so that a new report's parts are compared
/// with the previous one's once each, not once per family reading them.
mod input {
    pub(super) const SUCCESSES: u16 = 1 << 0;
    pub(super) const WINDOW: u16 = 1 << 1;
    pub(super) const TERMINAL: u16 = 1 << 2;
    pub(super) const FAILURES: u16 = 1 << 3;
    pub(super) const DURATIONS: u16 = 1 << 4;
    pub(super) const CODE: u16 = 1 << 5;
    pub(super) const CODE_CHANGES: u16 = 1 << 6;
    pub(super) const VERSIONS: u16 = 1 << 7;
    pub(super) const SNAPSHOT: u16 = 1 << 8;
    pub(super) const STATISTICS: u16 = 1 << 9;
    pub(super) const LAST_SUCCESS: u16 = 1 << 10;
    /// Every part (the report was, or is, not polled yet).
    pub(super) const ALL: u16 = u16::MAX;
}

/// The parts of a report each family's samples are written from.
const INPUTS: [u16; FAMILIES] = {
    let mut inputs = [0; FAMILIES];
    inputs[UP] = input::SUCCESSES;
    inputs[COLLECTOR_SUCCESS] = input::SUCCESSES;
    inputs[RECORDS] = input::WINDOW;
    inputs[INVOCATIONS] = input::TERMINAL;
    inputs[FAILURES] = input::FAILURES;
    inputs[DURATION] = input::DURATIONS;
    inputs[LAST_FAILURE] = input::WINDOW;
    inputs[CODE_SIZE] = input::CODE;
    inputs[CODE_MODIFIED] = input::CODE;
    inputs[CODE_CHANGES] = input::CODE_CHANGES;
    inputs[INFO] = input::CODE;
    inputs[MAX_INSTANCES] = input::CODE;
    inputs[VERSIONS] = input::VERSIONS;
    inputs[VERSION_INFO] = input::VERSIONS;
    inputs[SNAPSHOT_STATE] = input::SNAPSHOT;
    inputs[SNAPSHOT_ENABLED] = input::SNAPSHOT;
    let mut f = STAT_INVOCATIONS;
    while f <= STAT_MIN {
        inputs[f] = input::STATISTICS;
        f += 1;
    }
    inputs[LAST_POLL] = input::LAST_SUCCESS;
    // A family without inputs here would never be written again.
    let mut f = 0;
    while f < FAMILIES {
        assert!(inputs[f] != 0);
        f += 1;
    }
    inputs
};

/// The families whose samples may differ between reports `a` and `b`,
/// judged by comparing what [`describe`] reads of each, each part once;
/// a family is in the set when unsure. Far cheaper than fingerprints, and
/// a poll leaves most parts as they were. Floats are compared by their
/// bits: `-0` and `0` are written differently, and a NaN is never the
/// same as anything.
pub(crate) fn changed_families(a: &FunctionReport, b: &FunctionReport) -> [bool; FAMILIES] {
    let changed = changed_inputs(a, b);
    INPUTS.map(|inputs| inputs & changed != 0)
}

/// Whether [`describe`] writes the same samples of `family` for `a` as for
/// `b` (see [`changed_families`]).
#[cfg(test)]
pub(crate) fn same_samples(family: usize, a: &FunctionReport, b: &FunctionReport) -> bool {
    !changed_families(a, b)[family]
}

/// The parts of the reports ([`input`]) that differ.
fn changed_inputs(a: &FunctionReport, b: &FunctionReport) -> u16 {
    if (a.polls == 0) != (b.polls == 0) {
        return input::ALL;
    }
    if a.polls == 0 {
        return 0;
    }
    let (x, y) = (&a.async_counters, &b.async_counters);
    let shared_counters = std::sync::Arc::ptr_eq(x, y);
    let stats = |r: &FunctionReport| {
        r.statistics
            .as_ref()
            .and_then(|c| c.value.as_ref())
            .map(|s| {
                [
                    s.invocations,
                    s.errors,
                    s.throttles,
                    s.duration_average,
                    s.duration_max,
                    s.duration_min,
                ]
                .map(|v| v.map(f64::to_bits))
            })
    };
    let last_success = |r: &FunctionReport| r.last_success.map(|t| t.floor().to_bits());
    let differ = [
        (input::SUCCESSES, !a.successes().eq(b.successes())),
        (
            input::WINDOW,
            a.async_invocations.value != b.async_invocations.value,
        ),
        (
            input::TERMINAL,
            !shared_counters
                && (x.terminal != y.terminal
                    || !x
                        .latest
                        .iter()
                        .zip(&y.latest)
                        .all(|(e, f)| same_exemplar(e.as_ref(), f.as_ref()))),
        ),
        (
            input::FAILURES,
            !shared_counters && x.failures_by_code != y.failures_by_code,
        ),
        (input::DURATIONS, {
            let (h, k) = (&x.durations, &y.durations);
            !shared_counters
                && (h != k
                    || h.sum.to_bits() != k.sum.to_bits()
                    || !(0..h.slots()).all(|i| same_exemplar(h.exemplar(i), k.exemplar(i))))
        }),
        (input::CODE, a.code.value != b.code.value),
        (input::CODE_CHANGES, a.code_changes != b.code_changes),
        (input::VERSIONS, a.versions.value != b.versions.value),
        (input::SNAPSHOT, a.snapshot.value != b.snapshot.value),
        (input::STATISTICS, stats(a) != stats(b)),
        (input::LAST_SUCCESS, last_success(a) != last_success(b)),
    ];
    differ
        .iter()
        .filter(|(_, differs)| *differs)
        .fold(0, |set, (bit, _)| set | bit)
}

fn same_exemplar(a: Option<&Exemplar>, b: Option<&Exemplar>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.request_id == b.request_id
                && a.value.to_bits() == b.value.to_bits()
                && a.timestamp.to_bits() == b.timestamp.to_bits()
        }
        _ => false,
    }
}

/// Project-level families: functions monitored (`counts`: functions per
/// project id), and quotas.
pub(crate) fn project_families<'a>(
    counts: impl IntoIterator<Item = (&'a str, usize)>,
    projects: &[impl AsRef<ProjectReport>],
    refresh: &str,
) -> Vec<MetricFamily> {
    let mut functions = Family::gauge(
        "functiongraph_exporter_functions",
        "Functions this exporter (this shard) monitors, configured and discovered, by project.",
    );
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
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_named_as_their_kind_says() {
        let mut names = std::collections::BTreeSet::new();
        for d in &DEFS {
            assert!(names.insert(d.name), "{} twice", d.name);
            assert_eq!(
                d.kind == Kind::Counter,
                d.name.ends_with("_total"),
                "{}",
                d.name
            );
            assert!(d.help.ends_with('.'), "{}", d.name);
        }
        assert_eq!(
            DEFS[LAST_POLL].name.len(),
            DEFS[LAST_POLL].name.trim().len()
        );
    }
}
