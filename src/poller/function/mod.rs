//! One poll of one function: the collectors that are due, run
//! concurrently, folded into a new [`FunctionReport`].
//!
//! Each collector has its own interval (async invocations often, versions,
//! code and snapshot state rarely); one that is not due keeps its last
//! values.
//!
//! A failing collector keeps its last good value and reports failure; the
//! other collectors of the function, and every other function, are
//! unaffected. It is tried again after its interval, then after twice its
//! interval, four times, ... up to sixteen times its interval or 30
//! minutes, whichever is shorter (never less than the interval); one
//! success resets that. Meanwhile its series keep saying it fails, and the
//! landing page shows when it is tried next. Requests the project's
//! authentication gate holds back do not count: the gate has its own
//! back-off, and the collectors follow it as soon as it opens.
//!
//! A function's requests share the concurrency bound fairly: until a poll of
//! it has completed with every request answered in time (at start, and
//! after any timeout), a function has at most its share of the slots (the
//! bound divided by the number of functions, at least one) in flight at
//! once; and once one of its requests goes unanswered in time, the rest of
//! that poll is not sent (they fail too, and back off with it). So a
//! function whose API hangs costs one slot for one timeout per attempt, not
//! one per collector, while a function known to answer runs its collectors
//! side by side.
//!
//! A snapshot answer meaning "snapshots do not apply to this function" is
//! remembered: the snapshot API is asked again only when the function's
//! code changes (digest or runtime) or a day later.
//!
//! Failures are logged at `warn` when they start or change, at `debug`
//! while they repeat, and recovery at `info`, so a function that is down
//! for a night writes a few lines, not thousands. Permission denials are
//! logged once per project and API by [`Denials`].
//!
//! This file owns the poll and its schedule, back-off and fair share; what
//! the answers of the versions, snapshot and statistics APIs become is in
//! `resources`.

mod resources;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::api::model::CodeBody;
use crate::api::{ApiError, ApiErrorKind, Client, Endpoint};
use crate::caps::{Cap, Caps};
use crate::config::Intervals;
use crate::state::{
    CodeInfo, Collected, CollectorHealth, CollectorKind, FunctionReport, SnapshotInfo,
};
use crate::urn::FunctionUrn;

use resources::{poll_snapshot, poll_versions, statistics_of};

use super::async_tracker::{AsyncTracker, PollNews, TrackerSettings};
use super::checkpoint::FunctionState;
use super::permissions::Denials;

/// A failing collector's back-off grows to at most this many intervals...
const BACKOFF_MAX_FACTOR: u32 = 16;
/// ... and at most this long (but never below the interval).
const BACKOFF_MAX: Duration = Duration::from_secs(30 * 60);
/// A remembered "snapshots do not apply" is checked again after this long.
pub const NOT_APPLICABLE_RECHECK: Duration = Duration::from_secs(24 * 3600);

/// When each collector runs, shared by all functions.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub intervals: Intervals,
    /// Minutes of look-back of the statistics API, when that collector is on.
    pub statistics_period: Option<u32>,
    /// A failed collector's last values are exported for this long after
    /// its last success, then dropped.
    pub stale_after: Duration,
    /// How async invocations are counted.
    pub tracker: TrackerSettings,
    /// Caps on upstream strings and lists.
    pub caps: Caps,
}

impl Schedule {
    /// Half a cycle: a collector due within it runs in this cycle (so a
    /// 5-minute collector on a 1-minute cycle runs every fifth cycle, not
    /// every sixth).
    fn tolerance(&self) -> f64 {
        self.intervals.cycle().as_secs_f64() / 2.0
    }

    /// A collector is due when its interval is over, give or take half a
    /// cycle.
    fn due(&self, last: Option<f64>, interval: Duration, now: f64) -> bool {
        last.is_none_or(|l| now + self.tolerance() >= l + interval.as_secs_f64())
    }

    fn interval(&self, kind: CollectorKind) -> Duration {
        let i = &self.intervals;
        match kind {
            CollectorKind::AsyncInvocations => i.async_invocations,
            CollectorKind::Versions => i.versions,
            CollectorKind::Code => i.code,
            CollectorKind::Snapshot => i.snapshot,
            CollectorKind::Statistics => i.statistics,
        }
    }
}

/// The pause before the next attempt of a collector that failed `failures`
/// times in a row: its interval, doubled per further failure, up to 16
/// intervals or 30 minutes, whichever is shorter, and never shorter than
/// the interval.
pub fn backoff_delay(interval: Duration, failures: u32) -> Duration {
    let cap = (interval * BACKOFF_MAX_FACTOR)
        .min(BACKOFF_MAX)
        .max(interval);
    let factor = 1u32 << failures.saturating_sub(1).min(BACKOFF_MAX_FACTOR.ilog2());
    (interval * factor).min(cap)
}

/// What the scheduler passes to a poll besides the client and schedule.
pub struct PollContext<'a> {
    /// Requests in flight at once, at most, of a function not known to
    /// answer in time (see the module documentation).
    pub share: usize,
    /// Every collector now, due or not, backing off or not, and snapshot
    /// state asked even where it is remembered not to apply.
    pub everything: bool,
    /// Where permission denials are tracked and logged.
    pub denials: &'a Denials,
}

/// What a poll found.
pub struct PollOutcome {
    pub report: Arc<FunctionReport>,
    /// The API said the function does not exist (404 with `FSS.1051`,
    /// `FSS.1052`, `FSS.1053` or `FSS.0404`, on any endpoint) and nothing
    /// in the poll said otherwise.
    pub gone: bool,
    /// What the async invocations collector saw besides counts.
    pub news: PollNews,
}

/// A collector's failures in a row, and when it is tried next.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    /// Clock seconds.
    next: f64,
}

/// A remembered "snapshots do not apply to this function", and the code it
/// was said of.
#[derive(Debug, Clone)]
struct NotApplicable {
    since: f64,
    digest: Option<String>,
    runtime: Option<String>,
}

/// The poll state of one function, owned by its entry in the scheduler (`Monitored`).
#[derive(Debug)]
pub struct FunctionPoller {
    urn: FunctionUrn,
    /// When each collector last succeeded (clock seconds).
    last_run: HashMap<CollectorKind, f64>,
    /// The collectors failing now.
    backoff: HashMap<CollectorKind, Backoff>,
    tracker: AsyncTracker,
    /// Digest of the code at the last successful code poll.
    digest: Option<String>,
    code_changes: u64,
    not_applicable: Option<NotApplicable>,
    /// The latest poll completed with every request answered in time: its
    /// collectors may run side by side, not only within its fair share.
    answers: bool,
    /// The report published last; failed collectors keep its values.
    current: Arc<FunctionReport>,
    /// The error summary logged last, per collector.
    logged: HashMap<CollectorKind, String>,
}

impl FunctionPoller {
    /// A function's poll state: from a saved state when there is one
    /// (counters carry on), else from a fresh baseline.
    pub fn new(urn: FunctionUrn, tracker: TrackerSettings, saved: Option<FunctionState>) -> Self {
        let (tracker, code_changes) = match saved {
            Some(s) => (AsyncTracker::restore(tracker, s.tracker), s.code_changes),
            None => (AsyncTracker::new(tracker), 0),
        };
        let mut current = FunctionReport::new(urn.clone());
        current.recent_failures = tracker.recent_failures().cloned().collect();
        Self {
            current: Arc::new(current),
            urn,
            last_run: HashMap::new(),
            backoff: HashMap::new(),
            tracker,
            digest: None,
            code_changes,
            not_applicable: None,
            answers: false,
            logged: HashMap::new(),
        }
    }

    /// What a restart needs to carry on counting.
    pub fn save_state(&self) -> FunctionState {
        FunctionState {
            tracker: self.tracker.save(),
            code_changes: self.code_changes,
        }
    }

    /// Whether `kind` runs in a poll at `now`: when its interval is over,
    /// or, while it fails, when its back-off is.
    fn due(&self, schedule: &Schedule, kind: CollectorKind, now: f64) -> bool {
        match self.backoff.get(&kind) {
            Some(b) => now + schedule.tolerance() >= b.next,
            None => schedule.due(
                self.last_run.get(&kind).copied(),
                schedule.interval(kind),
                now,
            ),
        }
    }

    fn runtime(&self) -> Option<&str> {
        self.current.code.value.as_ref().map(|c| c.runtime.as_str())
    }

    /// Snapshots were said not to apply, less than a day ago, to the code
    /// the function still has.
    fn remembered_not_applicable(&self, now: f64) -> bool {
        self.not_applicable.as_ref().is_some_and(|na| {
            now - na.since < NOT_APPLICABLE_RECHECK.as_secs_f64()
                && na.digest == self.digest
                && na.runtime.as_deref() == self.runtime()
        })
    }

    /// Polls the collectors that are due with `client` and returns the new
    /// report. `now` is Unix time in seconds. The client and the schedule
    /// are passed in, not kept, so a configuration reload applies to the
    /// next poll while the function's state (counters, tracked records)
    /// carries on.
    pub async fn poll(
        &mut self,
        client: &Client,
        schedule: &Schedule,
        now: f64,
        ctx: &PollContext<'_>,
    ) -> PollOutcome {
        // The statistics collector may have been switched on or off.
        match (schedule.statistics_period, &self.current.statistics) {
            (Some(_), None) => {
                Arc::make_mut(&mut self.current).statistics = Some(Collected::default())
            }
            (None, Some(_)) => {
                Arc::make_mut(&mut self.current).statistics = None;
                self.backoff.remove(&CollectorKind::Statistics);
            }
            _ => {}
        }
        self.tracker.set_settings(schedule.tracker);
        let due = |kind| ctx.everything || self.due(schedule, kind, now);
        let run_async = due(CollectorKind::AsyncInvocations);
        let run_versions = due(CollectorKind::Versions);
        let run_code = due(CollectorKind::Code);
        let run_snapshot = due(CollectorKind::Snapshot);
        // Known not to apply: no request, and the collector succeeds.
        let snapshot_remembered =
            run_snapshot && !ctx.everything && self.remembered_not_applicable(now);
        let statistics_period = schedule
            .statistics_period
            .filter(|_| due(CollectorKind::Statistics));

        let share = Semaphore::new(match self.answers {
            true => CollectorKind::ALL.len(),
            false => ctx.share.max(1),
        });
        let stalled = AtomicBool::new(false);
        let fair = Fair {
            share: &share,
            stalled: &stalled,
        };
        let (urn, tracker) = (&self.urn, &mut self.tracker);
        let (asyncs, versions, code, snapshot, statistics) = tokio::join!(
            // Windows are asked for in the API's clock.
            fair.run(run_async, Endpoint::AsyncInvocations, async {
                tracker
                    .poll(client, urn, client.api_now().floor() as i64)
                    .await
            }),
            fair.run(
                run_versions,
                Endpoint::Versions,
                poll_versions(client, urn, schedule.caps)
            ),
            fair.run(run_code, Endpoint::Code, client.code(urn)),
            async {
                match snapshot_remembered {
                    true => Some(Ok((SnapshotInfo::NotApplicable, false))),
                    false => {
                        fair.run(
                            run_snapshot,
                            Endpoint::SnapshotState,
                            poll_snapshot(client, urn),
                        )
                        .await
                    }
                }
            },
            fair.run(statistics_period.is_some(), Endpoint::Statistics, async {
                client
                    .statistics(urn, statistics_period.unwrap_or_default())
                    .await
                    .map(statistics_of)
            }),
        );
        let snapshot_said_gone = matches!(snapshot, Some(Ok((_, true))));
        let snapshot = snapshot.map(|r| r.map(|(info, _)| info));
        let errors = [
            asyncs.as_ref().and_then(|r| r.as_ref().err()),
            versions.as_ref().and_then(|r| r.as_ref().err()),
            code.as_ref().and_then(|r| r.as_ref().err()),
            snapshot.as_ref().and_then(|r| r.as_ref().err()),
            statistics.as_ref().and_then(|r| r.as_ref().err()),
        ];
        // A request that succeeded shows the function exists (a remembered
        // snapshot answer is no request).
        let answered = [
            asyncs.as_ref().is_some_and(Result::is_ok),
            versions.as_ref().is_some_and(Result::is_ok),
            code.as_ref().is_some_and(Result::is_ok),
            !snapshot_remembered
                && !snapshot_said_gone
                && snapshot.as_ref().is_some_and(Result::is_ok),
            statistics.as_ref().is_some_and(Result::is_ok),
        ];
        let gone = (snapshot_said_gone || errors.iter().flatten().any(|e| e.is_gone()))
            && !answered.iter().any(|a| *a);
        // Known to answer once a poll got answers and nothing timed out;
        // a poll in which nothing ran changes nothing.
        if stalled.load(Ordering::Relaxed) {
            self.answers = false;
        } else if answered.iter().any(|a| *a)
            || errors.iter().flatten().any(|e| e.status().is_some())
        {
            self.answers = true;
        }

        let mut next = (*self.current).clone();
        next.polls += 1;
        let code = code.map(|r| {
            r.map(|body| {
                let mut cut = 0;
                let info = self.code_info(body, &schedule.caps, &mut cut);
                client.capped(Cap::LabelLength, cut, &self.urn.to_string());
                info
            })
        });
        // The code the function has after this poll: a remembered "does not
        // apply" holds only for it.
        let new_digest = self.digest.clone();
        let new_runtime = match &code {
            Some(Ok(c)) => Some(c.runtime.clone()),
            _ => self.runtime().map(str::to_owned),
        };
        match &snapshot {
            Some(Ok(SnapshotInfo::NotApplicable)) if !snapshot_remembered => {
                self.not_applicable = Some(NotApplicable {
                    since: now,
                    digest: new_digest,
                    runtime: new_runtime,
                });
            }
            Some(Ok(SnapshotInfo::Known { .. })) => self.not_applicable = None,
            _ => {}
        }
        let current = &self.current;
        let mut folder = Folder {
            urn: &self.urn,
            logged: &mut self.logged,
            last_run: &mut self.last_run,
            backoff: &mut self.backoff,
            denials: ctx.denials,
            schedule,
            now,
        };
        next.async_invocations = folder.fold(
            CollectorKind::AsyncInvocations,
            &current.async_invocations,
            asyncs,
        );
        next.versions = folder.fold(CollectorKind::Versions, &current.versions, versions);
        next.code = folder.fold(CollectorKind::Code, &current.code, code);
        next.snapshot = folder.fold(CollectorKind::Snapshot, &current.snapshot, snapshot);
        if let Some(previous) = &current.statistics {
            next.statistics = Some(folder.fold(CollectorKind::Statistics, previous, statistics));
        }
        next.async_counters = Arc::clone(self.tracker.counters());
        let news = if run_async {
            self.tracker.news()
        } else {
            PollNews::default()
        };
        if news.failures > 0 {
            next.recent_failures = self.tracker.recent_failures().cloned().collect();
        }
        if news.forgotten > 0 {
            client.capped(
                Cap::TrackedInvocations,
                news.forgotten,
                &self.urn.to_string(),
            );
        }
        next.code_changes = self.code_changes;
        next.last_poll = Some(now);
        if next.up() {
            next.last_success = Some(now);
        }
        next.health = self.health();
        tracing::debug!(
            function = %self.urn,
            up = next.up(),
            async_requests = news.requests,
            "function polled"
        );
        // One report, shared with the store that publishes it.
        self.current = Arc::new(next);
        // Against the code as of this poll (not shared yet: no copy).
        let recheck = self
            .not_applicable
            .as_ref()
            .filter(|_| self.remembered_not_applicable(now))
            .map(|na| na.since + NOT_APPLICABLE_RECHECK.as_secs_f64());
        Arc::make_mut(&mut self.current).snapshot_recheck = recheck;
        PollOutcome {
            report: Arc::clone(&self.current),
            gone,
            news,
        }
    }

    /// The failing collectors' back-off, for the report.
    fn health(&self) -> BTreeMap<CollectorKind, CollectorHealth> {
        self.backoff
            .iter()
            .map(|(kind, b)| {
                let collected_error = self.logged.get(kind);
                (
                    *kind,
                    CollectorHealth {
                        consecutive_failures: b.failures,
                        next_attempt: Some(b.next),
                        permission_denied: collected_error
                            .filter(|s| s.starts_with(PERMISSION_MARK))
                            .map(|s| s[PERMISSION_MARK.len()..].to_owned()),
                    },
                )
            })
            .collect()
    }

    /// The code API's answer; `runtime` and `code_type` become labels, so
    /// they are cut to the label cap (`cut` counts them).
    fn code_info(&mut self, body: CodeBody, caps: &Caps, cut: &mut u64) -> CodeInfo {
        if let Some(digest) = body.digest.filter(|d| !d.is_empty()) {
            match &self.digest {
                Some(old) if *old != digest => {
                    self.code_changes += 1;
                    tracing::info!(function = %self.urn, "code digest changed");
                }
                _ => {}
            }
            self.digest = Some(digest);
        }
        CodeInfo {
            runtime: caps.label(body.runtime.unwrap_or_default(), cut),
            code_type: caps.label(body.code_type.unwrap_or_default(), cut),
            size_bytes: body.code_size,
            last_modified: body.last_modified,
            max_instances: body.strategy_config.and_then(|s| s.concurrency),
        }
    }
}

/// Prefix of a logged summary that was a permission denial (logged by
/// [`Denials`], not per collector).
const PERMISSION_MARK: &str = "permission denied: ";

/// A function's fair share of the concurrency bound within one poll: at
/// most `share` of its collectors run at once, and once one of its requests
/// went unanswered in time, the others are not sent.
struct Fair<'a> {
    share: &'a Semaphore,
    stalled: &'a AtomicBool,
}

impl Fair<'_> {
    /// `None` when the collector is not to run.
    async fn run<T>(
        &self,
        run: bool,
        endpoint: Endpoint,
        collector: impl Future<Output = Result<T, ApiError>>,
    ) -> Option<Result<T, ApiError>> {
        if !run {
            return None;
        }
        let Ok(_slot) = self.share.acquire().await else {
            return Some(Err(ApiError::new(endpoint, ApiErrorKind::Cancelled)));
        };
        if self.stalled.load(Ordering::Relaxed) {
            return Some(Err(ApiError::new(
                endpoint,
                ApiErrorKind::NotSent(
                    "another request of this function got no answer in time in this poll".into(),
                ),
            )));
        }
        let result = collector.await;
        if result.as_ref().is_err_and(ApiError::is_timeout) {
            self.stalled.store(true, Ordering::Relaxed);
        }
        Some(result)
    }
}

/// The endpoints a collector calls.
fn endpoints(kind: CollectorKind) -> &'static [Endpoint] {
    match kind {
        CollectorKind::AsyncInvocations => &[Endpoint::AsyncInvocations],
        CollectorKind::Versions => &[Endpoint::Versions],
        CollectorKind::Code => &[Endpoint::Code],
        CollectorKind::Snapshot => &[Endpoint::SnapshotState, Endpoint::SnapshotEnable],
        CollectorKind::Statistics => &[Endpoint::Statistics],
    }
}

/// Folds the collectors that ran into the next report, keeps the back-off
/// of those that failed, and logs changes of health.
struct Folder<'a> {
    urn: &'a FunctionUrn,
    logged: &'a mut HashMap<CollectorKind, String>,
    last_run: &'a mut HashMap<CollectorKind, f64>,
    backoff: &'a mut HashMap<CollectorKind, Backoff>,
    denials: &'a Denials,
    schedule: &'a Schedule,
    now: f64,
}

impl Folder<'_> {
    /// `None` in: the collector did not run, and keeps its state (its last
    /// values go once they are older than `stale_after`).
    fn fold<T: Clone>(
        &mut self,
        kind: CollectorKind,
        previous: &Collected<T>,
        result: Option<Result<T, ApiError>>,
    ) -> Collected<T> {
        let mut collected = match result {
            None => previous.clone(),
            Some(Ok(value)) => {
                self.last_run.insert(kind, self.now);
                self.backoff.remove(&kind);
                self.denials.allowed(self.urn, endpoints(kind));
                // A permission granted again is logged by `Denials`.
                let was = self.logged.remove(&kind);
                if was.is_some_and(|s| !s.starts_with(PERMISSION_MARK)) {
                    tracing::info!(function = %self.urn, collector = %kind, "collector recovered");
                }
                Collected {
                    success: true,
                    value: Some(value),
                    error: None,
                }
            }
            Some(Err(e)) => self.failed(kind, previous, e),
        };
        let fresh = self
            .last_run
            .get(&kind)
            .is_some_and(|last| self.now - last <= self.schedule.stale_after.as_secs_f64());
        if !collected.success && !fresh && collected.value.take().is_some() {
            tracing::info!(function = %self.urn, collector = %kind, "collector failing for longer than polling.stale_after; its last values are no longer exported");
        }
        collected
    }

    fn failed<T: Clone>(
        &mut self,
        kind: CollectorKind,
        previous: &Collected<T>,
        e: ApiError,
    ) -> Collected<T> {
        // Requests held back by the project's authentication gate, refused
        // credentials (the gate backs off), unreadable credentials and
        // shutdown say nothing about this collector: no back-off of its own.
        let own = !e.is_auth_related()
            && !matches!(
                e.kind,
                ApiErrorKind::Cancelled | ApiErrorKind::Credentials(_)
            );
        let retry_in = if own {
            let failures = self.backoff.get(&kind).map_or(0, |b| b.failures) + 1;
            let delay = backoff_delay(self.schedule.interval(kind), failures);
            self.backoff.insert(
                kind,
                Backoff {
                    failures,
                    next: self.now + delay.as_secs_f64(),
                },
            );
            Some(delay)
        } else {
            None
        };
        let denied = e.is_permission_denied();
        let summary = match denied {
            true => format!("{PERMISSION_MARK}{}", e.summary()),
            false => e.summary(),
        };
        if denied {
            self.denials.denied(self.urn, &e);
        }
        // Authentication problems are the project's: its gate logs them
        // once, not once per function and collector; permission denials
        // are logged once per project and API.
        let quiet = e.is_auth_related() || denied || self.logged.get(&kind) == Some(&summary);
        if !quiet {
            tracing::warn!(
                function = %self.urn,
                collector = %kind,
                endpoint = %e.endpoint,
                status = e.status(),
                error_code = e.error_code(),
                request_id = e.request_id.as_deref(),
                error = %e.summary(),
                retry_in = retry_in.map(|d| humantime::format_duration(d).to_string()),
                "collector failed"
            );
        } else {
            tracing::debug!(
                function = %self.urn,
                collector = %kind,
                request_id = e.request_id.as_deref(),
                error = %e.summary(),
                retry_in = retry_in.map(|d| humantime::format_duration(d).to_string()),
                "collector still failing"
            );
        }
        if !e.is_auth_related() {
            self.logged.insert(kind, summary);
        }
        Collected {
            success: false,
            value: previous.value.clone(),
            error: Some(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_the_interval_to_sixteen_times_or_thirty_minutes() {
        let m = Duration::from_secs(60);
        let delays: Vec<u64> = (1..=7).map(|n| backoff_delay(m, n).as_secs()).collect();
        assert_eq!(delays, vec![60, 120, 240, 480, 960, 960, 960]);
        let five = Duration::from_secs(300);
        let delays: Vec<u64> = (1..=5).map(|n| backoff_delay(five, n).as_secs()).collect();
        assert_eq!(delays, vec![300, 600, 1200, 1800, 1800], "30 minutes first");
        // Never below the interval, however long it is.
        let hour = Duration::from_secs(3600);
        assert_eq!(backoff_delay(hour, 1), hour);
        assert_eq!(backoff_delay(hour, 9), hour);
        assert_eq!(backoff_delay(Duration::from_secs(2), 1000).as_secs(), 32);
    }
}
