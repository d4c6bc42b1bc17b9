//! What the poller found, as plain data: the seam between the poller (which
//! knows HTTP and nothing of Prometheus) and the collectors (which know
//! Prometheus and nothing of HTTP).
//!
//! Each function poll publishes an immutable [`FunctionSnapshot`] into the
//! [`Store`]. Readers (the `/metrics` renderer, the landing page) take
//! `Arc`s of the current snapshots under a short read lock and never wait
//! for a poll. A generation number changes whenever anything is published,
//! so a renderer can reuse its last output while nothing changed; each
//! function's snapshot also carries the generation it was published in, so
//! a renderer can find the few functions that changed since it last looked
//! ([`Store::changes_since`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use std::time::Duration;

use crate::caps::CapCounters;
use crate::urn::FunctionUrn;

/// The four per-function collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CollectorKind {
    AsyncInvocations,
    Versions,
    Code,
    Snapshot,
    /// Optional: the statistics API.
    Statistics,
}

impl CollectorKind {
    pub const ALL: [CollectorKind; 5] = [
        CollectorKind::AsyncInvocations,
        CollectorKind::Versions,
        CollectorKind::Code,
        CollectorKind::Snapshot,
        CollectorKind::Statistics,
    ];

    /// The value of the `collector` label.
    pub fn as_str(self) -> &'static str {
        match self {
            CollectorKind::AsyncInvocations => "async_invocations",
            CollectorKind::Versions => "versions",
            CollectorKind::Code => "code",
            CollectorKind::Snapshot => "snapshot",
            CollectorKind::Statistics => "statistics",
        }
    }
}

impl fmt::Display for CollectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status of an asynchronous invocation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum InvocationStatus {
    Wait,
    Running,
    Success,
    Fail,
    Discard,
}

impl InvocationStatus {
    pub const ALL: [InvocationStatus; 5] = [
        InvocationStatus::Wait,
        InvocationStatus::Running,
        InvocationStatus::Success,
        InvocationStatus::Fail,
        InvocationStatus::Discard,
    ];
    /// The statuses an invocation ends in, in the order of
    /// [`AsyncCounters::terminal`].
    pub const TERMINAL: [InvocationStatus; 3] = [
        InvocationStatus::Success,
        InvocationStatus::Fail,
        InvocationStatus::Discard,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvocationStatus::Wait => "WAIT",
            InvocationStatus::Running => "RUNNING",
            InvocationStatus::Success => "SUCCESS",
            InvocationStatus::Fail => "FAIL",
            InvocationStatus::Discard => "DISCARD",
        }
    }

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

/// The default upper bounds (seconds) of the async duration histogram
/// (`polling.async_duration_buckets`). Times in the API have one-second
/// resolution, so no bucket is below a second; a pending invocation is
/// tracked for a day by default (`polling.async_max_duration`), so the last
/// bucket is a day.
pub const DURATION_BUCKETS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 43200.0, 86400.0,
];

/// Most bounds a duration histogram may have (each is a series per
/// function).
pub const MAX_DURATION_BUCKETS: usize = 40;

/// The upper bounds of the async duration histogram: finite, positive and
/// strictly increasing (`+Inf` is implied). A layout is interned: it is
/// `Copy`, and the same bounds are one allocation for the life of the
/// process, however often a configuration naming them is reloaded.
#[derive(Clone, Copy, PartialEq)]
pub struct DurationBuckets(&'static [f64]);

// Bounds are finite (never NaN), so equality is an equivalence.
impl Eq for DurationBuckets {}

impl fmt::Debug for DurationBuckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0).finish()
    }
}

impl Default for DurationBuckets {
    fn default() -> Self {
        Self(&DURATION_BUCKETS)
    }
}

impl DurationBuckets {
    /// Checks and interns `bounds`.
    pub fn new(bounds: &[f64]) -> Result<Self, String> {
        if bounds.is_empty() {
            return Err("must name at least one bound".to_owned());
        }
        if bounds.len() > MAX_DURATION_BUCKETS {
            return Err(format!(
                "must name at most {MAX_DURATION_BUCKETS} bounds (each is a series per function), found {}",
                bounds.len()
            ));
        }
        if let Some(b) = bounds.iter().find(|b| !b.is_finite() || **b <= 0.0) {
            return Err(format!(
                "bounds must be finite numbers of seconds above 0 (+Inf is always added), found {b}"
            ));
        }
        if let Some(w) = bounds.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "bounds must be strictly increasing, found {} before {}",
                w[0], w[1]
            ));
        }
        if bounds == DURATION_BUCKETS {
            return Ok(Self::default());
        }
        static INTERNED: Mutex<Vec<&'static [f64]>> = Mutex::new(Vec::new());
        let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = interned.iter().find(|b| **b == bounds) {
            return Ok(Self(known));
        }
        let leaked: &'static [f64] = Box::leak(bounds.to_vec().into_boxed_slice());
        interned.push(leaked);
        Ok(Self(leaked))
    }

    /// The finite upper bounds, increasing.
    pub fn bounds(&self) -> &'static [f64] {
        self.0
    }
}

/// One counted invocation, as an OpenMetrics exemplar: the way from a
/// counter or a histogram bucket to the request behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Exemplar {
    pub request_id: String,
    /// 1 for a counter; the observed duration for a histogram bucket.
    pub value: f64,
    /// When the invocation ended (Unix seconds, API clock).
    pub timestamp: f64,
}

/// A cumulative distribution of durations: counts per bucket of its
/// [`DurationBuckets`] (not cumulative; the last slot is `+Inf`), and the
/// latest invocation each bucket counted.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationHistogram {
    buckets: DurationBuckets,
    /// One per bound, then `+Inf`.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
    /// The latest observation of each slot of `counts`.
    pub exemplars: Vec<Option<Exemplar>>,
}

impl Default for DurationHistogram {
    fn default() -> Self {
        Self::new(DurationBuckets::default())
    }
}

impl DurationHistogram {
    /// An empty histogram over `buckets`.
    pub fn new(buckets: DurationBuckets) -> Self {
        let slots = buckets.bounds().len() + 1;
        Self {
            buckets,
            counts: vec![0; slots],
            sum: 0.0,
            count: 0,
            exemplars: vec![None; slots],
        }
    }

    /// Its bucket layout.
    pub fn buckets(&self) -> DurationBuckets {
        self.buckets
    }

    pub fn observe(&mut self, seconds: f64) {
        self.slot(seconds);
    }

    /// Observes one invocation's duration and keeps it as its bucket's
    /// exemplar if it ended last.
    pub fn observe_request(&mut self, seconds: f64, request_id: &str, ended: f64) {
        let slot = self.slot(seconds);
        if self.exemplars[slot]
            .as_ref()
            .is_none_or(|e| e.timestamp <= ended)
        {
            self.exemplars[slot] = Some(Exemplar {
                request_id: request_id.to_owned(),
                value: seconds,
                timestamp: ended,
            });
        }
    }

    fn slot(&mut self, seconds: f64) -> usize {
        let bounds = self.buckets.bounds();
        let slot = bounds
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(bounds.len());
        self.counts[slot] += 1;
        self.sum += seconds;
        self.count += 1;
        slot
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
    /// `poller::snapshot` for how that is recognised).
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

/// Project-level data (quotas).
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSnapshot {
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
pub struct FunctionSnapshot {
    pub urn: FunctionUrn,
    /// Completed polls since start.
    pub polls: u64,
    /// Unix time (seconds) of the latest completed poll, successful or not.
    pub last_poll: Option<f64>,
    /// Unix time (seconds) of the last poll in which every applicable
    /// collector succeeded.
    pub last_success: Option<f64>,
    pub async_invocations: Collected<AsyncWindow>,
    pub async_counters: AsyncCounters,
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

impl FunctionSnapshot {
    /// A function that has not been polled yet.
    pub fn new(urn: FunctionUrn) -> Self {
        Self {
            urn,
            polls: 0,
            last_poll: None,
            last_success: None,
            async_invocations: Collected::default(),
            async_counters: AsyncCounters::default(),
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
    pub fn successes(&self) -> Vec<(CollectorKind, bool)> {
        let mut v = vec![
            (
                CollectorKind::AsyncInvocations,
                self.async_invocations.success,
            ),
            (CollectorKind::Versions, self.versions.success),
            (CollectorKind::Code, self.code.success),
            (CollectorKind::Snapshot, self.snapshot.success),
        ];
        if let Some(s) = &self.statistics {
            v.push((CollectorKind::Statistics, s.success));
        }
        v
    }

    /// True when the latest poll succeeded on every collector.
    pub fn up(&self) -> bool {
        self.polls > 0 && self.successes().iter().all(|(_, ok)| *ok)
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

/// Facts about the poll cycles as a whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleStats {
    /// Completed cycles since start.
    pub completed: u64,
    /// Functions not monitored because of `polling.max_functions`, since
    /// start (each time one was found).
    pub dropped_functions: u64,
    /// Wall time of the last completed cycle.
    pub last_duration: Option<Duration>,
    /// Async invocation records with implausible times, since start.
    pub implausible_records: u64,
    /// Pending async invocations given up on, since start.
    pub abandoned_invocations: u64,
}

/// A function's snapshot in the store, and the generation it was
/// published in.
#[derive(Debug)]
struct Entry {
    snapshot: Arc<FunctionSnapshot>,
    changed: u64,
}

/// What changed among the functions since a generation
/// ([`Store::changes_since`]).
#[derive(Debug, Default)]
pub struct FunctionChanges {
    /// Snapshots published after that generation, ordered by URN.
    pub changed: Vec<Arc<FunctionSnapshot>>,
    /// Functions in the store now.
    pub total: usize,
    /// The generation these changes bring a reader up to.
    pub generation: u64,
}

/// The latest snapshot of every monitored function.
#[derive(Debug, Default)]
pub struct Store {
    functions: RwLock<BTreeMap<FunctionUrn, Entry>>,
    projects: RwLock<BTreeMap<String, Arc<ProjectSnapshot>>>,
    cycles: Mutex<CycleStats>,
    generation: AtomicU64,
    /// What the caps on upstream data dropped (shared with the exporter's
    /// own metrics).
    caps: Arc<CapCounters>,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose cap counts go to `caps`.
    pub fn with_caps(caps: Arc<CapCounters>) -> Self {
        Self {
            caps,
            ..Self::default()
        }
    }

    /// Counts of what the caps on upstream data dropped or truncated.
    pub fn caps(&self) -> &Arc<CapCounters> {
        &self.caps
    }

    /// The next generation, for a change made under a write lock of the
    /// functions (so that a reader holding the read lock sees every change
    /// up to the generation it reads).
    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Replaces a function's snapshot.
    pub fn publish(&self, snapshot: FunctionSnapshot) {
        let mut map = self.functions.write().unwrap_or_else(|e| e.into_inner());
        let changed = self.next_generation();
        map.insert(
            snapshot.urn.clone(),
            Entry {
                snapshot: Arc::new(snapshot),
                changed,
            },
        );
    }

    /// Forgets a function (it is no longer monitored).
    pub fn remove(&self, urn: &FunctionUrn) {
        let mut map = self.functions.write().unwrap_or_else(|e| e.into_inner());
        if map.remove(urn).is_some() {
            self.next_generation();
        }
    }

    /// Replaces a project's snapshot.
    pub fn publish_project(&self, snapshot: ProjectSnapshot) {
        let mut map = self.projects.write().unwrap_or_else(|e| e.into_inner());
        map.insert(snapshot.project_id.clone(), Arc::new(snapshot));
        drop(map);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current project snapshots, ordered by project id.
    pub fn projects(&self) -> Vec<Arc<ProjectSnapshot>> {
        let map = self.projects.read().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }

    /// Whether a function is monitored.
    pub fn contains(&self, urn: &FunctionUrn) -> bool {
        let map = self.functions.read().unwrap_or_else(|e| e.into_inner());
        map.contains_key(urn)
    }

    /// Replaces a function's snapshot only if the function is still
    /// monitored (a poll that finishes after its function was removed must
    /// not bring its series back).
    pub fn update(&self, snapshot: FunctionSnapshot) -> bool {
        let mut map = self.functions.write().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = map.get_mut(&snapshot.urn) else {
            return false;
        };
        slot.changed = self.next_generation();
        slot.snapshot = Arc::new(snapshot);
        true
    }

    /// Counts functions left out by the cardinality cap.
    pub fn record_dropped(&self, n: u64) {
        let mut c = self.cycles.lock().unwrap_or_else(|e| e.into_inner());
        c.dropped_functions += n;
        drop(c);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Counts async invocation records with implausible times, and pending
    /// invocations no longer tracked.
    pub fn record_async_anomalies(&self, implausible: u64, abandoned: u64) {
        if implausible == 0 && abandoned == 0 {
            return;
        }
        let mut c = self.cycles.lock().unwrap_or_else(|e| e.into_inner());
        c.implausible_records += implausible;
        c.abandoned_invocations += abandoned;
        drop(c);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Records a completed poll cycle.
    pub fn record_cycle(&self, duration: Duration) {
        let mut c = self.cycles.lock().unwrap_or_else(|e| e.into_inner());
        c.completed += 1;
        c.last_duration = Some(duration);
        drop(c);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current snapshots, ordered by URN.
    pub fn functions(&self) -> Vec<Arc<FunctionSnapshot>> {
        let map = self.functions.read().unwrap_or_else(|e| e.into_inner());
        map.values().map(|e| Arc::clone(&e.snapshot)).collect()
    }

    /// The snapshots published after generation `since` (all of them for
    /// 0), and how many functions there are: what a reader that has seen
    /// the store up to `since` needs to catch up. Functions removed since
    /// show only in `total`.
    pub fn changes_since(&self, since: u64) -> FunctionChanges {
        let map = self.functions.read().unwrap_or_else(|e| e.into_inner());
        FunctionChanges {
            changed: map
                .values()
                .filter(|e| e.changed > since)
                .map(|e| Arc::clone(&e.snapshot))
                .collect(),
            total: map.len(),
            // Under the read lock: every change up to it is in the map.
            generation: self.generation(),
        }
    }

    /// One function's current snapshot.
    pub fn function(&self, urn: &FunctionUrn) -> Option<Arc<FunctionSnapshot>> {
        let map = self.functions.read().unwrap_or_else(|e| e.into_inner());
        map.get(urn).map(|e| Arc::clone(&e.snapshot))
    }

    pub fn cycles(&self) -> CycleStats {
        self.cycles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes whenever anything in the store changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_by_upper_bound() {
        let mut h = DurationHistogram::default();
        for s in [0.0, 1.0, 1.5, 60.0, 1e9] {
            h.observe(s);
        }
        assert_eq!(h.counts[0], 2); // 0 and 1 are <= 1
        assert_eq!(h.counts[1], 1); // 1.5 <= 2
        assert_eq!(h.counts[5], 1); // 60 <= 60
        assert_eq!(h.counts[DURATION_BUCKETS.len()], 1); // +Inf
        assert_eq!(h.counts.len(), DURATION_BUCKETS.len() + 1);
        assert_eq!(h.count, 5);
    }

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

    #[test]
    fn publishing_changes_the_generation() {
        let store = Store::new();
        let urn = FunctionUrn::parse_full(
            "urn:fss:r:0123456789abcdef0123456789abcdef:function:default:f",
        )
        .unwrap();
        let g0 = store.generation();
        store.publish(FunctionSnapshot::new(urn.clone()));
        assert_ne!(store.generation(), g0);
        assert_eq!(store.functions().len(), 1);
        let g1 = store.generation();
        store.remove(&urn);
        assert_ne!(store.generation(), g1);
        assert!(store.functions().is_empty());
    }
}
