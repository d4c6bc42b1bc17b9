//! What the poller found, as plain data: the seam between the poller (which
//! knows HTTP and nothing of Prometheus) and the exposition (which knows
//! Prometheus and nothing of HTTP).
//!
//! Each function poll publishes an immutable [`FunctionReport`] into the
//! [`Store`]. Readers (the `/metrics` renderer, the landing page) take
//! `Arc`s of the current reports under a short read lock and never wait
//! for a poll. A generation number changes whenever anything is published,
//! so a renderer can reuse its last output while nothing changed; each
//! function's report also carries the generation it was published in, so
//! a renderer can find the few functions that changed since it last looked
//! ([`Store::changes_since`]).
//!
//! This file owns the report types; `histogram` the async duration
//! histogram and its buckets, `store` the [`Store`] itself.

mod histogram;
mod store;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use crate::named::named_enum;
use crate::urn::FunctionUrn;

pub use histogram::{DurationHistogram, Exemplar};
pub use store::{CycleStats, FunctionChanges, Store};

named_enum! {
    /// The per-function collectors (the API resources polled for each
    /// function), named by the value of the `collector` label.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum CollectorKind {
        AsyncInvocations => "async_invocations",
        Versions => "versions",
        Code => "code",
        Snapshot => "snapshot",
        /// Optional: the statistics API.
        Statistics => "statistics",
    }
}

named_enum! {
    /// Status of an asynchronous invocation, named as the API spells it.
    #[derive(
        Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
    )]
    pub enum InvocationStatus {
        Wait => "WAIT",
        Running => "RUNNING",
        Success => "SUCCESS",
        Fail => "FAIL",
        Discard => "DISCARD",
    }
}

impl InvocationStatus {
    /// The statuses an invocation ends in, in the order of
    /// [`AsyncCounters::terminal`].
    pub const TERMINAL: [InvocationStatus; 3] = [
        InvocationStatus::Success,
        InvocationStatus::Fail,
        InvocationStatus::Discard,
    ];

    /// Parses the API's status; unknown values are `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn is_terminal(self) -> bool {
        Self::TERMINAL.contains(&self)
    }

    /// Index into [`InvocationStatus::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Index into [`InvocationStatus::TERMINAL`], for terminal statuses.
    pub fn terminal_index(self) -> Option<usize> {
        Self::TERMINAL.iter().position(|s| *s == self)
    }
}

/// Counts that only grow (across restarts, with `[state] path`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AsyncCounters {
    /// Terminal invocations first seen terminal after the baseline, by
    /// [`InvocationStatus::TERMINAL`] index.
    pub terminal: [u64; 3],
    /// `end_time − start_time` of each of them (the histogram is
    /// exported once it has counted one).
    pub durations: DurationHistogram,
    /// The latest invocation counted in each of `terminal`.
    pub latest: [Option<Exemplar>; 3],
    /// `FAIL` invocations by the record's `error_code`; at most the
    /// configured number of codes, the rest under [`OTHER_ERROR_CODE`].
    pub failures_by_code: BTreeMap<String, u64>,
}

impl AsyncCounters {
    /// Counters at zero over `buckets`. Those over the default buckets are
    /// one allocation shared by every function that has counted nothing
    /// (most functions never will; counting copies them first, see
    /// [`Arc::make_mut`]).
    pub fn empty(buckets: crate::buckets::DurationBuckets) -> Arc<Self> {
        static EMPTY: LazyLock<Arc<AsyncCounters>> = LazyLock::new(Arc::default);
        if buckets == crate::buckets::DurationBuckets::default() {
            Arc::clone(&EMPTY)
        } else {
            Arc::new(Self {
                durations: DurationHistogram::new(buckets),
                ..Self::default()
            })
        }
    }
}

/// The `error_code` label of failures whose code is beyond the cap.
pub const OTHER_ERROR_CODE: &str = "other";
/// The `error_code` label of failures whose record had no code.
pub const UNKNOWN_ERROR_CODE: &str = "unknown";

/// A failed or discarded invocation, for `/failures` (never a label).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailureRecord {
    pub request_id: String,
    pub status: InvocationStatus,
    /// The record's `error_code`, as text; empty when absent.
    pub error_code: String,
    /// The record's `error_message`, cut to a few hundred characters.
    pub error_message: String,
    /// Unix seconds (API clock).
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl FailureRecord {
    /// `end − start`, when both are known and in order.
    pub fn duration(&self) -> Option<i64> {
        match (self.start, self.end) {
            (Some(s), Some(e)) if e >= s => Some(e - s),
            _ => None,
        }
    }
}

/// The async invocation records in the lookback window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsyncWindow {
    /// By [`InvocationStatus::ALL`] index.
    pub by_status: [u64; 5],
    /// Start time (Unix seconds) of the newest `FAIL` record seen.
    pub last_failure: Option<i64>,
}

/// One version of a function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: String,
    pub runtime: String,
    pub code_type: String,
    pub last_modified: Option<i64>,
}

/// From the code API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeInfo {
    pub runtime: String,
    pub code_type: String,
    pub size_bytes: Option<u64>,
    pub last_modified: Option<i64>,
    /// `strategy_config.concurrency`: −1 unlimited, 0 disabled.
    pub max_instances: Option<i64>,
}

/// Snapshot states the API documents; anything else is `Unknown`.
pub const SNAPSHOT_STATES: [&str; 6] = [
    "enable",
    "disable",
    "creating",
    "create_fail",
    "expire",
    "circuit_breaking",
];

/// From the snapshot API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotInfo {
    /// The API said snapshots do not apply to this function (see
    /// `poller::function::resources` for how that is recognised).
    NotApplicable,
    Known {
        /// Index into [`SNAPSHOT_STATES`], or `None` for a state not listed.
        state: Option<usize>,
        /// From `enableSnapshot`, when its answer could be read.
        enabled: Option<bool>,
    },
}

/// From the statistics API over its look-back period. `None` where the API
/// had no data (its `-1`): "no data" is never exported as a value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statistics {
    /// Invocations in the period.
    pub invocations: Option<f64>,
    /// Failed invocations in the period.
    pub errors: Option<f64>,
    /// Throttled (rejected) invocations in the period.
    pub throttles: Option<f64>,
    /// Seconds, over the buckets that had data.
    pub duration_average: Option<f64>,
    pub duration_max: Option<f64>,
    pub duration_min: Option<f64>,
}

/// One resource quota of a project.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    /// The API's `type`, e.g. `fgs_func_num`.
    pub resource: String,
    /// The base unit both values are in (the API's MB converted to bytes).
    pub unit: QuotaUnit,
    pub used: f64,
    pub limit: f64,
}

/// The base unit of a quota: each is exported under its own metric names
/// (one unit per name), never as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QuotaUnit {
    /// A number of things (the API's empty unit).
    Count,
    Bytes,
    Seconds,
}

impl QuotaUnit {
    /// The metric name suffix: none for counts, else `_bytes`/`_seconds`.
    pub fn suffix(self) -> &'static str {
        match self {
            QuotaUnit::Count => "",
            QuotaUnit::Bytes => "_bytes",
            QuotaUnit::Seconds => "_seconds",
        }
    }
}

/// Everything known about one project after its latest quota poll.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectReport {
    pub project_id: String,
    pub quotas: Collected<Vec<Quota>>,
}

/// The outcome of one collector in the latest poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected<T> {
    pub success: bool,
    /// The latest value read successfully; kept when a later poll fails.
    pub value: Option<T>,
    /// Why the latest poll failed (for logs and the landing page only;
    /// never a label).
    pub error: Option<String>,
}

impl<T> Default for Collected<T> {
    fn default() -> Self {
        Self {
            success: false,
            value: None,
            error: None,
        }
    }
}

/// How a collector of a function fares beyond its latest outcome: its
/// back-off while it keeps failing (for the landing page).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectorHealth {
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// When it is tried next, Unix seconds (its interval, doubled per
    /// failure in a row up to a cap).
    pub next_attempt: Option<f64>,
    /// The API refused it for lack of a permission (the answer's code and
    /// message).
    pub permission_denied: Option<String>,
}

/// Everything known about one function after its latest poll.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionReport {
    pub urn: FunctionUrn,
    /// Completed polls since start.
    pub polls: u64,
    /// Unix time (seconds) of the latest completed poll, successful or not.
    pub last_poll: Option<f64>,
    /// Unix time (seconds) of the last poll in which every applicable
    /// collector succeeded.
    pub last_success: Option<f64>,
    pub async_invocations: Collected<AsyncWindow>,
    pub async_counters: Arc<AsyncCounters>,
    /// The latest failed and discarded invocations counted, newest first.
    pub recent_failures: Arc<[FailureRecord]>,
    pub versions: Collected<Vec<VersionInfo>>,
    pub code: Collected<CodeInfo>,
    /// Digest changes observed since start.
    pub code_changes: u64,
    pub snapshot: Collected<SnapshotInfo>,
    /// `None` when the statistics collector is off.
    pub statistics: Option<Collected<Statistics>>,
    /// The collectors that are failing and backing off.
    pub health: BTreeMap<CollectorKind, CollectorHealth>,
    /// For a function snapshots do not apply to: when the snapshot API is
    /// asked again (Unix seconds) unless the code changes first.
    pub snapshot_recheck: Option<f64>,
}

impl FunctionReport {
    /// A function that has not been polled yet.
    pub fn new(urn: FunctionUrn) -> Self {
        Self {
            urn,
            polls: 0,
            last_poll: None,
            last_success: None,
            async_invocations: Collected::default(),
            async_counters: AsyncCounters::empty(Default::default()),
            recent_failures: Arc::from(Vec::new()),
            versions: Collected::default(),
            code: Collected::default(),
            code_changes: 0,
            snapshot: Collected::default(),
            statistics: None,
            health: BTreeMap::new(),
            snapshot_recheck: None,
        }
    }

    /// Success of each enabled collector in its latest run.
    pub fn successes(&self) -> impl Iterator<Item = (CollectorKind, bool)> + use<> {
        let statistics = self.statistics.as_ref();
        [
            (
                CollectorKind::AsyncInvocations,
                self.async_invocations.success,
            ),
            (CollectorKind::Versions, self.versions.success),
            (CollectorKind::Code, self.code.success),
            (CollectorKind::Snapshot, self.snapshot.success),
        ]
        .into_iter()
        .chain(statistics.map(|s| (CollectorKind::Statistics, s.success)))
    }

    /// True when the latest poll succeeded on every collector.
    pub fn up(&self) -> bool {
        self.polls > 0 && self.successes().all(|(_, ok)| ok)
    }

    /// The errors of the latest poll, by collector.
    pub fn errors(&self) -> Vec<(CollectorKind, &str)> {
        let statistics = self.statistics.as_ref().and_then(|s| s.error.as_deref());
        [
            (
                CollectorKind::AsyncInvocations,
                self.async_invocations.error.as_deref(),
            ),
            (CollectorKind::Versions, self.versions.error.as_deref()),
            (CollectorKind::Code, self.code.error.as_deref()),
            (CollectorKind::Snapshot, self.snapshot.error.as_deref()),
            (CollectorKind::Statistics, statistics),
        ]
        .into_iter()
        .filter_map(|(k, e)| e.map(|e| (k, e)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_case_insensitively_and_unknown_is_none() {
        assert_eq!(
            InvocationStatus::parse("FAIL"),
            Some(InvocationStatus::Fail)
        );
        assert_eq!(
            InvocationStatus::parse("running"),
            Some(InvocationStatus::Running)
        );
        assert_eq!(InvocationStatus::parse("PAUSED"), None);
        assert_eq!(InvocationStatus::Discard.terminal_index(), Some(2));
        assert_eq!(InvocationStatus::Wait.terminal_index(), None);
    }
}
