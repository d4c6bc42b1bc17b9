//! Counting a function's asynchronous invocations exactly once.
//!
//! `request_id` is the identity of an invocation. The tracker remembers
//! every record it may be shown again, and counts a record when it first
//! sees it in a terminal status (SUCCESS, FAIL, DISCARD): never twice, and
//! never a record already terminal in the first poll (the baseline).
//!
//! What the API does not promise is never relied on: the order of a
//! listing, what its `count` means, or which of a record's times
//! `query_begin_time` filters on. All windows are in the API's clock (see
//! `api::skew`). Each poll reads:
//!
//! 1. **Everything recent**: all records from `late_visibility` (plus a
//!    small slack) before the end of the previous such listing, up to now.
//!    A record that shows up in the listing up to `late_visibility` after
//!    its `start_time` is still inside this window when it appears; a
//!    record that finished since the previous poll is seen in its terminal
//!    status. Paging by offset while records are added can repeat a record
//!    across pages but not skip one, and the windows overlap, so nothing
//!    falls between two polls.
//! 2. **Older pending invocations**, those still `WAIT`/`RUNNING` whose start
//!    is before that window (invocations longer than `late_visibility`):
//!    whichever is cheaper, one lookup per `request_id`, or the terminal
//!    listings (`SUCCESS`, `FAIL`, `DISCARD`) over their span. Terminal
//!    listings only ever grow, so they never skip a record; a record missing
//!    from them is still pending. Absence from a `WAIT`/`RUNNING` listing is
//!    never taken as an outcome.
//!
//! So the requests per poll follow the records started recently and the
//! long-running ones, not the size of the lookback window or the number of
//! records already counted. Pending invocations are tracked until they
//! finish or for `max_duration` (then given up and counted as abandoned).
//!
//! Records whose times are malformed or far outside any window asked for
//! are implausible: counted once when terminal (they are invocations), but
//! never held in the window gauge, the duration histogram or the last
//! failure time; remembered while the API keeps sending them.
//!
//! The state the counters need survives a restart through
//! [`AsyncTracker::save`] and [`AsyncTracker::restore`].
//!
//! This file owns the tracker, its settings and its durable state; what
//! each poll asks the API is in `listing`, what a record does to the counts
//! and the records gauge in `counting`.

mod aged;
mod counting;
mod known;
mod listing;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::buckets::DurationBuckets;
use crate::state::{AsyncCounters, DurationHistogram, Exemplar, FailureRecord, InvocationStatus};
use aged::AgedCounts;
use known::KnownDigests;

/// Records per page: the API's maximum.
const PAGE_LIMIT: u32 = 500;
/// Pages per listing before giving up on the rest (100,000 records).
const MAX_PAGES: usize = 200;
/// Added to every window for estimates of the API's clock (one-second
/// `Date` headers) and for polls that start late.
const SLACK_SECONDS: i64 = 30;
/// Records dated further in the API's future than this are implausible.
const FUTURE_TOLERANCE_SECONDS: i64 = 300;
/// Kept beyond the oldest time any listing may still reach back to.
const RETENTION_MARGIN_SECONDS: i64 = 60;
/// Longest error code kept as a label value; longer ones are `other`.
const MAX_ERROR_CODE_CHARS: usize = 32;
/// The `tracing` target of the optional line per counted failure
/// (`failures.log`), so log pipelines can route it.
pub(crate) const FAILURE_LOG_TARGET: &str = "functiongraph_exporter::failures";
/// Longest `request_id` remembered (the reference gives 64).
const MAX_REQUEST_ID_LEN: usize = crate::caps::MAX_REQUEST_ID_CHARS;

/// How the tracker counts; from the configuration, may change on reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerSettings {
    /// Window of the records gauge, seconds.
    pub lookback: i64,
    /// Longest delay between a record's `start_time` and its first
    /// appearance in listings, seconds.
    pub late_visibility: i64,
    /// Longest a pending invocation is tracked, seconds.
    pub max_duration: i64,
    /// Most records remembered for this function.
    pub max_records: usize,
    /// The async collector's interval, seconds.
    pub interval: i64,
    /// Failed and discarded invocations kept for `/failures`.
    pub recent_failures: usize,
    /// Distinct `error_code` labels per function.
    pub max_error_codes: usize,
    /// One log line per counted failure.
    pub log_failures: bool,
    /// Upper bounds of the duration histogram.
    pub buckets: DurationBuckets,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            lookback: 3600,
            late_visibility: 300,
            max_duration: 24 * 3600,
            max_records: 100_000,
            interval: 60,
            recent_failures: 20,
            max_error_codes: 20,
            log_failures: false,
            buckets: DurationBuckets::default(),
        }
    }
}

/// What the tracker remembers of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    status: InvocationStatus,
    /// Unix seconds (API clock); `None` when malformed.
    start: Option<i64>,
    end: Option<i64>,
    /// Terminal, and counted (or part of the baseline): never counted again.
    settled: bool,
    /// Dated implausibly: outside the gauge, the histogram and the last
    /// failure time.
    implausible: bool,
    /// When a listing last returned it (API clock).
    last_seen: i64,
}

impl Record {
    /// Not yet settled: still to be counted when it ends.
    fn pending(&self) -> bool {
        !self.settled
    }

    /// The latest of its times, for retention.
    fn latest(&self) -> Option<i64> {
        match (self.start, self.end) {
            (Some(s), Some(e)) => Some(s.max(e)),
            (s, e) => s.or(e),
        }
    }
}

/// What happened in the latest poll beyond the counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollNews {
    /// API requests made.
    pub requests: usize,
    /// Records first seen with implausible times.
    pub implausible: u64,
    /// Pending invocations given up on.
    pub abandoned: u64,
    /// Records forgotten because of `max_records`.
    pub forgotten: u64,
    /// Failed and discarded invocations counted.
    pub failures: u64,
}

/// Per-function state of the async invocations collector.
#[derive(Debug)]
pub struct AsyncTracker {
    settings: TrackerSettings,
    records: HashMap<Box<str>, Record>,
    /// Terminal records no listing can return any more, by start second:
    /// SUCCESS, FAIL, DISCARD counts, for the records gauge only.
    aged: AgedCounts,
    /// Settled records remembered by digest only.
    known: KnownDigests,
    /// End of the last complete listing of everything recent (API clock);
    /// `None` until the baseline is read.
    covered_until: Option<i64>,
    /// Records started before this and not remembered are old and settled
    /// (set when state is restored; see [`AsyncTracker::restore`]).
    settled_before: Option<i64>,
    /// Settled records of a restored state, by [`digest`] of their
    /// `request_id`, until no listing can return them.
    settled_digests: HashSet<u64>,
    /// When the digests can be forgotten: once the horizon passes this.
    settled_digests_until: i64,
    /// The oldest start any listing may reach back to, as of the latest
    /// poll (saved with the state).
    horizon: i64,
    /// Shared with the reports published since they last changed (a poll
    /// that counts nothing copies nothing).
    counters: Arc<AsyncCounters>,
    last_failure: Option<i64>,
    news: PollNews,
    /// The latest failed and discarded invocations, newest first.
    recent: VecDeque<FailureRecord>,
    /// The function, for the optional failure log lines.
    subject: Option<String>,
    /// Records of the listing being applied that start before this are
    /// implausible (see [`AsyncTracker::oldest_plausible`]).
    plausible_from: i64,
}

impl AsyncTracker {
    pub fn new(settings: TrackerSettings) -> Self {
        let counters = AsyncCounters::empty(settings.buckets);
        Self {
            settings: sanitize(settings),
            records: HashMap::new(),
            aged: AgedCounts::default(),
            known: KnownDigests::default(),
            covered_until: None,
            settled_before: None,
            settled_digests: HashSet::new(),
            settled_digests_until: i64::MIN,
            horizon: i64::MIN,
            counters,
            last_failure: None,
            news: PollNews::default(),
            plausible_from: i64::MIN,
            recent: VecDeque::new(),
            subject: None,
        }
    }

    /// Changes the settings (a reload); they apply from the next poll.
    pub fn set_settings(&mut self, settings: TrackerSettings) {
        if settings.buckets != self.counters.durations.buckets() {
            // Counts in other buckets cannot be carried over; as after a
            // restart, the histogram starts again (rate() sees a reset).
            tracing::warn!(
                buckets = ?settings.buckets,
                "polling.async_duration_buckets changed; the duration histogram starts again from zero"
            );
            Arc::make_mut(&mut self.counters).durations = DurationHistogram::new(settings.buckets);
        }
        self.settings = sanitize(settings);
    }

    pub fn counters(&self) -> &Arc<AsyncCounters> {
        &self.counters
    }

    /// What the latest poll did besides counting.
    pub fn news(&self) -> PollNews {
        self.news
    }

    /// The latest failed and discarded invocations counted, newest first.
    pub fn recent_failures(&self) -> impl Iterator<Item = &FailureRecord> {
        self.recent.iter()
    }

    /// What a restart needs to carry on counting: the counters, the window
    /// position, the pending records, and a digest of every settled record
    /// a listing may still return.
    pub fn save(&self) -> TrackerState {
        let mut pending = Vec::new();
        let mut settled: Vec<u64> = self.settled_digests.iter().copied().collect();
        settled.extend(self.known.digests());
        for (id, r) in &self.records {
            if r.settled {
                settled.push(digest(id));
            } else {
                pending.push((id.to_string(), *r));
            }
        }
        TrackerState {
            covered_until: self.covered_until,
            horizon: self.horizon,
            terminal: self.counters.terminal,
            buckets: self.counters.durations.buckets().bounds().to_vec(),
            bucket_counts: self.counters.durations.counts(),
            duration_sum: self.counters.durations.sum,
            duration_count: self.counters.durations.count,
            last_failure: self.last_failure,
            pending,
            settled,
            failures_by_code: self
                .counters
                .failures_by_code
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            recent_failures: self.recent.iter().cloned().collect(),
            latest: self.counters.latest.to_vec(),
            bucket_exemplars: self.counters.durations.exemplars(),
        }
    }

    /// A tracker that carries on from a saved state: its counters continue,
    /// its first poll reads from where the saved one stopped (so what
    /// finished in between is counted once), and it rebuilds the records
    /// gauge.
    pub fn restore(settings: TrackerSettings, state: TrackerState) -> Self {
        let mut t = Self::new(settings);
        // Filled in a copy: a function that had counted nothing keeps
        // sharing the zero counters after a restart too.
        let mut counters = AsyncCounters::clone(&t.counters);
        counters.terminal = state.terminal;
        let restored = state.buckets == settings.buckets.bounds()
            && counters.durations.restore(
                state.bucket_counts,
                state.duration_sum,
                state.duration_count,
                state.bucket_exemplars,
            );
        if !restored {
            tracing::warn!(
                "saved duration histogram has other buckets; the histogram starts again from zero"
            );
        }
        t.last_failure = state.last_failure;
        counters.failures_by_code = state.failures_by_code.into_iter().collect();
        if let Ok(latest) = state.latest.try_into() {
            counters.latest = latest;
        }
        if counters != *t.counters {
            t.counters = Arc::new(counters);
        }
        t.recent = state.recent_failures.into_iter().collect();
        t.recent.truncate(t.settings.recent_failures);
        t.covered_until = state.covered_until;
        t.horizon = state.horizon;
        t.settled_before = state.covered_until.map(|_| state.horizon);
        t.settled_digests = state.settled.into_iter().collect();
        t.settled_digests_until = state
            .covered_until
            .unwrap_or(i64::MIN)
            .saturating_add(FUTURE_TOLERANCE_SECONDS);
        t.records = state
            .pending
            .into_iter()
            .filter(|(id, r)| !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && !r.settled)
            .map(|(id, r)| (id.into_boxed_str(), r))
            .collect();
        t
    }
}

/// A stable 64-bit digest of a `request_id` (the first bytes of its
/// SHA-256): what a saved state remembers of a settled record.
fn digest(id: &str) -> u64 {
    let d = Sha256::digest(id.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

/// How a record first seen is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The first poll: what is already terminal is not counted.
    Baseline,
    /// After a restore: records started before `before` were settled.
    Restored {
        before: i64,
    },
    Counting,
}

fn sanitize(s: TrackerSettings) -> TrackerSettings {
    TrackerSettings {
        lookback: s.lookback.max(1),
        late_visibility: s.late_visibility.max(0),
        max_duration: s.max_duration.max(1),
        max_records: s.max_records.max(1),
        interval: s.interval.max(1),
        ..s
    }
}

/// A tracker's durable state (see [`AsyncTracker::save`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerState {
    covered_until: Option<i64>,
    horizon: i64,
    terminal: [u64; 3],
    /// The histogram's bucket bounds, so a changed layout is recognised.
    buckets: Vec<f64>,
    bucket_counts: Vec<u64>,
    duration_sum: f64,
    duration_count: u64,
    last_failure: Option<i64>,
    /// Pending records, whole.
    pending: Vec<(String, Record)>,
    /// Settled records a listing may still return, by [`digest`].
    settled: Vec<u64>,
    failures_by_code: Vec<(String, u64)>,
    recent_failures: Vec<FailureRecord>,
    /// Exemplars of the counters and of the histogram's buckets.
    latest: Vec<Option<Exemplar>>,
    bucket_exemplars: Vec<Option<Exemplar>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::AsyncInvocation;

    fn rec(id: &str, status: &str, start: i64, end: Option<i64>) -> AsyncInvocation {
        AsyncInvocation {
            request_id: Some(id.into()),
            status: Some(status.into()),
            start_time: Some(crate::timefmt::format_query_time(start)),
            end_time: end.map(crate::timefmt::format_query_time),
            ..AsyncInvocation::default()
        }
    }

    fn tracker() -> AsyncTracker {
        let mut t = AsyncTracker::new(TrackerSettings::default());
        t.plausible_from = t.oldest_plausible(1_700_000_000 - 3600, 1_700_000_000);
        t
    }

    #[test]
    fn baseline_is_not_counted_but_later_transitions_are_once() {
        let now = 1_700_000_000;
        let mut t = tracker();
        let a_done = rec("a", "SUCCESS", now - 100, Some(now - 90));
        let b_running = rec("b", "RUNNING", now - 50, None);
        let b_done = rec("b", "SUCCESS", now - 50, Some(now - 20));
        for r in [a_done.clone(), b_running.clone()] {
            t.apply(r, now, Mode::Baseline);
        }
        assert_eq!(t.counters.terminal, [0, 0, 0]);
        for r in [
            // b finishes: counted once, with its duration
            b_done.clone(),
            b_done,
            // a new failure
            rec("c", "FAIL", now - 10, Some(now - 9)),
            // a seen again: not counted; a stale listing cannot reopen b
            a_done,
            b_running,
        ] {
            t.apply(r, now, Mode::Counting);
        }
        assert_eq!(t.counters.terminal, [1, 1, 0]);
        assert_eq!(t.counters.durations.count, 2);
        assert_eq!(t.counters.durations.sum, 31.0);
        let w = t.window(now);
        assert_eq!(w.by_status, [0, 0, 2, 1, 0]);
        assert_eq!(w.last_failure, Some(now - 10));
    }

    /// Counters handed out (to a published report) never change
    /// afterwards: counting copies them first, and a poll that counts
    /// nothing hands out the same ones again.
    #[test]
    fn counters_handed_out_are_copied_before_counting() {
        let now = 1_700_000_000;
        let mut t = tracker();
        t.apply(
            rec("a", "SUCCESS", now - 100, Some(now - 90)),
            now,
            Mode::Counting,
        );
        let published = Arc::clone(t.counters());
        assert_eq!(published.terminal, [1, 0, 0]);
        t.apply(
            rec("a", "SUCCESS", now - 100, Some(now - 90)),
            now,
            Mode::Counting,
        );
        assert!(
            Arc::ptr_eq(&published, t.counters()),
            "copied without a count"
        );
        t.apply(
            rec("b", "FAIL", now - 50, Some(now - 40)),
            now,
            Mode::Counting,
        );
        assert_eq!(published.terminal, [1, 0, 0], "a published copy changed");
        assert_eq!(published.durations.count, 1);
        assert_eq!(t.counters().terminal, [1, 1, 0]);
        assert_eq!(t.counters().durations.count, 2);
    }

    #[test]
    fn implausible_and_bad_records() {
        let now = 1_700_000_000;
        let mut t = tracker();
        // Year 1 and a day ahead: counted once each, never in the gauge.
        let ancient = AsyncInvocation {
            request_id: Some("ancient".into()),
            status: Some("FAIL".into()),
            start_time: Some("0001-01-01T00:00:00".into()),
            end_time: Some("0001-01-01T00:00:01".into()),
            ..AsyncInvocation::default()
        };
        for poll in 0..3 {
            let at = now + poll * 60;
            t.apply(ancient.clone(), at, Mode::Counting);
            t.apply(
                rec("future", "FAIL", now + 86_400, Some(now + 86_401)),
                at,
                Mode::Counting,
            );
            t.retain(at);
        }
        assert_eq!(t.counters.terminal, [0, 2, 0]);
        assert_eq!(t.counters.durations.count, 0);
        assert_eq!(t.window(now).by_status, [0; 5]);
        assert_eq!(t.window(now).last_failure, None);
        // No id, unknown status, overlong id: ignored.
        t.apply(rec("weird", "PAUSED", now - 10, None), now, Mode::Counting);
        t.apply(
            rec(&"x".repeat(65), "FAIL", now - 10, None),
            now,
            Mode::Counting,
        );
        t.apply(
            AsyncInvocation {
                request_id: None,
                status: Some("FAIL".into()),
                ..Default::default()
            },
            now,
            Mode::Counting,
        );
        assert_eq!(t.counters.terminal, [0, 2, 0]);
    }

    #[test]
    fn a_discard_without_end_time_is_in_the_histogram() {
        let now = 1_700_000_000;
        let mut t = tracker();
        t.apply(rec("d", "WAIT", now - 40, None), now - 30, Mode::Counting);
        t.apply(rec("d", "DISCARD", now - 40, None), now, Mode::Counting);
        assert_eq!(t.counters.terminal, [0, 0, 1]);
        assert_eq!(t.counters.durations.count, 1);
        assert_eq!(t.counters.durations.sum, 40.0);
    }

    #[test]
    fn old_settled_records_move_to_the_gauge_aggregate() {
        let now = 1_700_000_000;
        let mut t = tracker();
        t.covered_until = Some(now);
        for i in 0..100 {
            t.apply(
                rec(
                    &format!("s{i}"),
                    "SUCCESS",
                    now - 3000 + i,
                    Some(now - 2990 + i),
                ),
                now - 2000,
                Mode::Counting,
            );
        }
        t.apply(rec("p", "RUNNING", now - 100, None), now, Mode::Counting);
        t.retain(now);
        assert_eq!(t.records.len(), 1, "only the pending one is remembered");
        assert_eq!(t.window(now).by_status, [0, 1, 100, 0, 0]);
        assert_eq!(
            t.window(now + 1000).by_status[2],
            0,
            "aged out of the window"
        );
    }

    #[test]
    fn the_cap_forgets_settled_records_first() {
        let now = 1_700_000_000;
        let mut t = AsyncTracker::new(TrackerSettings {
            max_records: 10,
            ..TrackerSettings::default()
        });
        t.plausible_from = t.oldest_plausible(now - 3600, now);
        for i in 0..20 {
            t.apply(
                rec(
                    &format!("s{i}"),
                    "SUCCESS",
                    now - 100 + i,
                    Some(now - 90 + i),
                ),
                now,
                Mode::Counting,
            );
        }
        for i in 0..5 {
            t.apply(
                rec(&format!("p{i}"), "RUNNING", now - 50 + i, None),
                now,
                Mode::Counting,
            );
        }
        t.retain(now);
        assert_eq!(t.records.len(), 10);
        assert_eq!(t.records.values().filter(|r| r.pending()).count(), 5);
        assert_eq!(t.news.abandoned, 0);
        assert_eq!(
            t.window(now).by_status[2],
            20,
            "the gauge keeps the forgotten ones"
        );
    }

    #[test]
    fn state_round_trips() {
        let now = 1_700_000_000;
        let mut t = tracker();
        t.covered_until = Some(now);
        t.apply(
            rec("a", "SUCCESS", now - 10, Some(now - 5)),
            now,
            Mode::Counting,
        );
        t.apply(rec("b", "RUNNING", now - 10, None), now, Mode::Counting);
        t.retain(now);
        let state = t.save();
        let bytes = postcard::to_allocvec(&state).unwrap();
        let back: TrackerState = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, state);
        let mut r = AsyncTracker::restore(TrackerSettings::default(), back);
        r.plausible_from = t.plausible_from;
        assert_eq!(r.counters, t.counters);
        assert_eq!(r.records.len(), 1, "the pending one, whole");
        // Seen again after the restart: a not counted again, b counted once.
        r.apply(
            rec("a", "SUCCESS", now - 10, Some(now - 5)),
            now + 60,
            Mode::Counting,
        );
        r.apply(
            rec("b", "SUCCESS", now - 10, Some(now + 20)),
            now + 60,
            Mode::Counting,
        );
        assert_eq!(r.counters.terminal, [2, 0, 0]);
    }

    /// A function that had counted nothing shares the zero counters after a
    /// restart as before it; one that had counted keeps its counts.
    #[test]
    fn a_restored_tracker_that_counted_nothing_shares_the_zero_counters() {
        let quiet = AsyncTracker::new(TrackerSettings::default());
        let restored = AsyncTracker::restore(TrackerSettings::default(), quiet.save());
        assert!(Arc::ptr_eq(restored.counters(), quiet.counters()));
        let now = 1_700_000_000;
        let mut busy = tracker();
        busy.apply(
            rec("a", "FAIL", now - 10, Some(now - 5)),
            now,
            Mode::Counting,
        );
        let restored = AsyncTracker::restore(TrackerSettings::default(), busy.save());
        assert!(!Arc::ptr_eq(restored.counters(), quiet.counters()));
        assert_eq!(restored.counters(), busy.counters());
    }

    /// A busy function's first poll: an hour of settled records. Once the
    /// poll is over, those older than any listing asks for are remembered
    /// by digest alone; listed again they are not counted again, nor twice
    /// in the gauge; they are forgotten once no longer listed, and a saved
    /// state still knows them.
    #[test]
    fn an_hour_of_baseline_is_remembered_by_digest_until_no_longer_listed() {
        let now = 1_700_000_000;
        let mut t = tracker();
        let hour: Vec<AsyncInvocation> = (0..3600)
            .step_by(3)
            .map(|k| {
                let status = if k % 100 == 0 { "FAIL" } else { "SUCCESS" };
                rec(
                    &format!("r{k}"),
                    status,
                    now - 3600 + k,
                    Some(now - 3590 + k),
                )
            })
            .collect();
        for r in hour.clone() {
            t.apply(r, now, Mode::Baseline);
        }
        t.covered_until = Some(now);
        t.retain(now);
        let gauge = t.window(now).by_status;
        assert_eq!(gauge, [0, 0, 1188, 12, 0]);
        // Still listable (latest at or after the horizon): whole records.
        let horizon = t.horizon;
        let listable = hour
            .iter()
            .filter(|r| parse_time(&r.end_time) >= horizon)
            .count();
        assert_eq!(t.records.len(), listable);
        assert!(listable < 200, "{listable}");
        assert_eq!(t.known.len(), 1200 - listable);
        // The same listing again: nothing counted, the gauge unchanged.
        for r in hour.clone() {
            t.apply(r, now + 60, Mode::Counting);
        }
        t.retain(now + 60);
        assert_eq!(t.counters.terminal, [0, 0, 0]);
        let in_window = |at: i64| {
            let from = at - 3600;
            let started = |status: &str| {
                hour.iter()
                    .filter(|r| r.status.as_deref() == Some(status))
                    .filter(|r| parse_time(&r.start_time) >= from)
                    .count() as u64
            };
            [0, 0, started("SUCCESS"), started("FAIL"), 0]
        };
        assert_eq!(gauge, in_window(now));
        assert_eq!(t.window(now + 60).by_status, in_window(now + 60));
        // A saved state knows every one of them.
        let state = t.save();
        let mut r = AsyncTracker::restore(TrackerSettings::default(), state);
        r.plausible_from = t.plausible_from;
        for rec in hour.clone() {
            r.apply(rec, now + 120, Mode::Counting);
        }
        assert_eq!(r.counters.terminal, [0, 0, 0]);
        // No longer listed: forgotten, their share of the gauge kept until
        // they leave the lookback.
        let later = now + 60 + 330 + 120 + 1;
        t.retain(later);
        assert!(t.known.is_empty(), "{}", t.known.len());
        assert_eq!(t.window(later).by_status, in_window(later));
    }

    /// The cap counts records remembered by digest, and forgets them first.
    #[test]
    fn the_cap_forgets_records_remembered_by_digest_first() {
        let now = 1_700_000_000;
        let mut t = AsyncTracker::new(TrackerSettings {
            max_records: 100,
            ..TrackerSettings::default()
        });
        t.plausible_from = t.oldest_plausible(now - 3600, now);
        t.covered_until = Some(now);
        for k in 0..150 {
            t.apply(
                rec(
                    &format!("old{k}"),
                    "SUCCESS",
                    now - 3000 + k,
                    Some(now - 2990 + k),
                ),
                now,
                Mode::Baseline,
            );
        }
        for k in 0..20 {
            t.apply(
                rec(
                    &format!("new{k}"),
                    "SUCCESS",
                    now - 100 + k,
                    Some(now - 90 + k),
                ),
                now,
                Mode::Baseline,
            );
        }
        t.retain(now);
        assert_eq!(t.records.len(), 20);
        assert_eq!(t.known.len(), 80);
        assert_eq!(t.news.forgotten, 70);
        assert_eq!(t.window(now).by_status[2], 170, "the gauge keeps them all");
    }

    fn parse_time(t: &Option<String>) -> i64 {
        t.as_deref()
            .and_then(crate::timefmt::parse_api_time)
            .unwrap()
    }
}
