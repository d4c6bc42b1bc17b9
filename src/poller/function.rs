//! One poll of one function: the collectors that are due, run
//! concurrently, folded into a new [`FunctionSnapshot`].
//!
//! Each collector has its own interval (async invocations often, versions,
//! code and snapshot state rarely); one that is not due keeps its last
//! values, and one that failed is tried again at the next poll.
//!
//! A failing collector keeps its last good value and reports failure; the
//! other collectors of the function, and every other function, are
//! unaffected. Failures are logged at `warn` when they start or change,
//! at `debug` while they repeat, and recovery at `info`, so a function that
//! is down for a night writes a few lines, not thousands.

use std::collections::HashMap;

use std::time::Duration;

use crate::api::model::{CodeBody, SlaValue, SnapshotBody, StatisticsBody, VersionRecord};
use crate::api::{ApiError, Client, SnapshotAction, paginate};
use crate::caps::{Cap, Limits};
use crate::config::Intervals;
use crate::state::{
    CodeInfo, Collected, CollectorKind, FunctionSnapshot, SNAPSHOT_STATES, SnapshotInfo,
    Statistics, VersionInfo,
};
use crate::urn::{FunctionUrn, LATEST};

use super::async_tracker::{AsyncTracker, PollNews, TrackerSettings};
use super::checkpoint::FunctionState;

/// Versions per page: a function has at most 20 including `latest`.
const VERSIONS_PAGE: u32 = 20;
/// Pages of versions before giving up.
const VERSIONS_MAX_PAGES: usize = 50;

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
    pub limits: Limits,
}

impl Schedule {
    /// A collector is due when its interval is over, give or take half a
    /// cycle (so a 5-minute collector on a 1-minute cycle runs every fifth
    /// cycle, not every sixth).
    fn due(&self, last: Option<f64>, interval: Duration, now: f64) -> bool {
        let tolerance = self.intervals.cycle().as_secs_f64() / 2.0;
        last.is_none_or(|l| now + tolerance >= l + interval.as_secs_f64())
    }
}

/// What a poll found.
pub struct PollOutcome {
    pub snapshot: FunctionSnapshot,
    /// The API said the function does not exist (404 `FSS.1051`).
    pub gone: bool,
    /// What the async invocations collector saw besides counts.
    pub news: PollNews,
}

/// The poll state of one function, owned by its slot in the scheduler.
#[derive(Debug)]
pub struct FunctionPoller {
    urn: FunctionUrn,
    /// When each collector last succeeded (clock seconds).
    last_run: HashMap<CollectorKind, f64>,
    tracker: AsyncTracker,
    /// Digest of the code at the last successful code poll.
    digest: Option<String>,
    code_changes: u64,
    /// The snapshot published last; failed collectors keep its values.
    current: FunctionSnapshot,
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
        let mut current = FunctionSnapshot::new(urn.clone());
        current.recent_failures = tracker.recent_failures().cloned().collect();
        Self {
            current,
            urn,
            last_run: HashMap::new(),
            tracker,
            digest: None,
            code_changes,
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

    pub fn urn(&self) -> &FunctionUrn {
        &self.urn
    }

    /// Polls the collectors that are due (all of them with `everything`)
    /// with `client` and returns the new snapshot. `now` is Unix time in
    /// seconds. The client and the schedule are passed in, not kept, so a
    /// configuration reload applies to the next poll while the function's
    /// state (counters, tracked records) carries on.
    pub async fn poll(
        &mut self,
        client: &Client,
        schedule: &Schedule,
        now: f64,
        everything: bool,
    ) -> PollOutcome {
        // The statistics collector may have been switched on or off.
        match (schedule.statistics_period, &self.current.statistics) {
            (Some(_), None) => self.current.statistics = Some(Collected::default()),
            (None, Some(_)) => self.current.statistics = None,
            _ => {}
        }
        self.tracker.set_settings(schedule.tracker);
        let intervals = &schedule.intervals;
        let due = |kind: CollectorKind, interval: Duration| {
            everything || schedule.due(self.last_run.get(&kind).copied(), interval, now)
        };
        let run_async = due(CollectorKind::AsyncInvocations, intervals.async_invocations);
        let run_versions = due(CollectorKind::Versions, intervals.versions);
        let run_code = due(CollectorKind::Code, intervals.code);
        let run_snapshot = due(CollectorKind::Snapshot, intervals.snapshot);
        let statistics_period = schedule
            .statistics_period
            .filter(|_| due(CollectorKind::Statistics, intervals.statistics));
        let (urn, tracker) = (&self.urn, &mut self.tracker);
        let (asyncs, versions, code, snapshot, statistics) = tokio::join!(
            async {
                match run_async {
                    // Windows are asked for in the API's clock.
                    true => Some(
                        tracker
                            .poll(client, urn, client.api_now().floor() as i64)
                            .await,
                    ),
                    false => None,
                }
            },
            async {
                match run_versions {
                    true => Some(poll_versions(client, urn, schedule.limits).await),
                    false => None,
                }
            },
            async {
                match run_code {
                    true => Some(client.code(urn).await),
                    false => None,
                }
            },
            async {
                match run_snapshot {
                    true => Some(poll_snapshot(client, urn).await),
                    false => None,
                }
            },
            async {
                match statistics_period {
                    Some(period) => Some(client.statistics(urn, period).await.map(statistics_of)),
                    None => None,
                }
            },
        );
        let gone = [
            asyncs.as_ref().map(|r| r.as_ref().err()),
            versions.as_ref().map(|r| r.as_ref().err()),
            code.as_ref().map(|r| r.as_ref().err()),
        ]
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.status() == Some(404) && e.error_code() == Some("FSS.1051"));

        let mut next = self.current.clone();
        next.polls += 1;
        let code = code.map(|r| {
            r.map(|body| {
                let mut cut = 0;
                let info = self.code_info(body, &schedule.limits, &mut cut);
                client.capped(Cap::LabelLength, cut, &self.urn.to_string());
                info
            })
        });
        let current = &self.current;
        let mut folder = Folder {
            urn: &self.urn,
            logged: &mut self.logged,
            last_run: &mut self.last_run,
            now,
            stale_after: schedule.stale_after.as_secs_f64(),
        };
        if let Some(c) = folder.fold(
            CollectorKind::AsyncInvocations,
            &current.async_invocations,
            asyncs,
        ) {
            next.async_invocations = c;
        }
        if let Some(c) = folder.fold(CollectorKind::Versions, &current.versions, versions) {
            next.versions = c;
        }
        if let Some(c) = folder.fold(CollectorKind::Code, &current.code, code) {
            next.code = c;
        }
        if let Some(c) = folder.fold(CollectorKind::Snapshot, &current.snapshot, snapshot) {
            next.snapshot = c;
        }
        if let (Some(previous), Some(r)) = (&current.statistics, statistics) {
            next.statistics = folder.fold(CollectorKind::Statistics, previous, Some(r));
        }
        next.async_counters = self.tracker.counters().clone();
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
        if next.up() {
            next.last_success = Some(now);
        }
        tracing::debug!(
            function = %self.urn,
            up = next.up(),
            async_requests = news.requests,
            "function polled"
        );
        self.current = next.clone();
        PollOutcome {
            snapshot: next,
            gone,
            news,
        }
    }

    /// The code API's answer; `runtime` and `code_type` become labels, so
    /// they are cut to the label cap (`cut` counts them).
    fn code_info(&mut self, body: CodeBody, limits: &Limits, cut: &mut u64) -> CodeInfo {
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
            runtime: limits.label(body.runtime.unwrap_or_default(), cut),
            code_type: limits.label(body.code_type.unwrap_or_default(), cut),
            size_bytes: body.code_size,
            last_modified: body.last_modified,
            max_instances: body.strategy_config.and_then(|s| s.concurrency),
        }
    }
}

/// Folds one collector's result into its published state, logging
/// changes of health.
/// Folds the collectors that ran into the next snapshot.
struct Folder<'a> {
    urn: &'a FunctionUrn,
    logged: &'a mut HashMap<CollectorKind, String>,
    last_run: &'a mut HashMap<CollectorKind, f64>,
    now: f64,
    stale_after: f64,
}

impl Folder<'_> {
    /// `None` in, `None` out: the collector was not due.
    fn fold<T: Clone>(
        &mut self,
        kind: CollectorKind,
        previous: &Collected<T>,
        result: Option<Result<T, ApiError>>,
    ) -> Option<Collected<T>> {
        let result = result?;
        if result.is_ok() {
            self.last_run.insert(kind, self.now);
        }
        let mut collected = settle(self.urn, self.logged, kind, previous, result);
        let fresh = self
            .last_run
            .get(&kind)
            .is_some_and(|last| self.now - last <= self.stale_after);
        if !collected.success && !fresh && collected.value.take().is_some() {
            tracing::info!(function = %self.urn, collector = %kind, "collector failing for longer than polling.stale_after; its last values are no longer exported");
        }
        Some(collected)
    }
}

fn settle<T: Clone>(
    urn: &FunctionUrn,
    logged: &mut HashMap<CollectorKind, String>,
    kind: CollectorKind,
    previous: &Collected<T>,
    result: Result<T, ApiError>,
) -> Collected<T> {
    match result {
        Ok(value) => {
            if logged.remove(&kind).is_some() {
                tracing::info!(function = %urn, collector = %kind, "collector recovered");
            }
            Collected {
                success: true,
                value: Some(value),
                error: None,
            }
        }
        Err(e) => {
            let summary = e.summary();
            // Authentication problems are the project's: its gate logs them
            // once, not once per function and collector.
            let quiet = e.is_auth_related() || logged.get(&kind) == Some(&summary);
            if !quiet {
                tracing::warn!(
                    function = %urn,
                    collector = %kind,
                    endpoint = %e.endpoint,
                    status = e.status(),
                    error_code = e.error_code(),
                    request_id = e.request_id.as_deref(),
                    error = %summary,
                    "collector failed"
                );
                logged.insert(kind, summary);
            } else {
                tracing::debug!(
                    function = %urn,
                    collector = %kind,
                    request_id = e.request_id.as_deref(),
                    error = %summary,
                    "collector still failing"
                );
            }
            Collected {
                success: false,
                value: previous.value.clone(),
                error: Some(e.to_string()),
            }
        }
    }
}

/// Sums a statistics series over its buckets that have data (−1 is "no
/// data", never a value).
fn sum(series: &[SlaValue]) -> Option<f64> {
    let values: Vec<f64> = series
        .iter()
        .filter_map(|p| p.value)
        .filter(|v| *v >= 0.0)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The statistics of the look-back period, durations in seconds.
fn statistics_of(body: StatisticsBody) -> Statistics {
    let ms = |v: f64| v / 1000.0;
    let with_data = |series: &[SlaValue]| -> Vec<(Option<i64>, f64)> {
        series
            .iter()
            .filter_map(|p| p.value.filter(|v| *v >= 0.0).map(|v| (p.timestamp, v)))
            .collect()
    };
    // Average duration weighted by each bucket's invocations.
    let counts = with_data(&body.count);
    let averages = with_data(&body.duration);
    let (mut weighted, mut weight) = (0.0, 0.0);
    for (ts, avg) in &averages {
        let n = counts
            .iter()
            .find(|(t, _)| t == ts)
            .map_or(1.0, |(_, n)| n.max(1.0));
        weighted += avg * n;
        weight += n;
    }
    let max = with_data(&body.max_duration)
        .into_iter()
        .map(|(_, v)| v)
        .reduce(f64::max);
    let min = with_data(&body.min_duration)
        .into_iter()
        .map(|(_, v)| v)
        .reduce(f64::min);
    Statistics {
        invocations: sum(&body.count),
        errors: sum(&body.fail_count),
        throttles: sum(&body.reject_count),
        duration_average: (weight > 0.0).then(|| ms(weighted / weight)),
        duration_max: max.map(ms),
        duration_min: min.map(ms),
    }
}

/// Every version of a function, within the caps: a version whose name is
/// longer than the label cap is dropped, its runtime and code type are cut
/// to it, and beyond `max_versions` the oldest are dropped (`latest` is
/// always kept). What the caps drop or cut is counted.
async fn poll_versions(
    client: &Client,
    urn: &FunctionUrn,
    limits: Limits,
) -> Result<Vec<VersionInfo>, ApiError> {
    let paged = paginate(0, VERSIONS_MAX_PAGES, |marker| {
        client.versions(urn, marker, VERSIONS_PAGE)
    })
    .await?;
    let (mut long, mut cut) = (0u64, 0u64);
    let mut versions: Vec<VersionInfo> = paged
        .items
        .into_iter()
        .filter_map(|v: VersionRecord| {
            let version = v.version.filter(|s| !s.is_empty())?;
            if limits.too_long(&version) {
                long += 1;
                return None;
            }
            Some(VersionInfo {
                version,
                runtime: limits.label(v.runtime.unwrap_or_default(), &mut cut),
                code_type: limits.label(v.code_type.unwrap_or_default(), &mut cut),
                last_modified: v.last_modified,
            })
        })
        .collect();
    versions.sort_by(|a, b| a.version.cmp(&b.version));
    versions.dedup_by(|a, b| a.version == b.version);
    let extra = versions.len().saturating_sub(limits.max_versions);
    if extra > 0 {
        // Keep `latest` and the most recently modified.
        versions.sort_by(|a, b| {
            (b.version == LATEST)
                .cmp(&(a.version == LATEST))
                .then(b.last_modified.cmp(&a.last_modified))
                .then(a.version.cmp(&b.version))
        });
        versions.truncate(limits.max_versions);
        versions.sort_by(|a, b| a.version.cmp(&b.version));
    }
    let subject = urn.to_string();
    client.capped(Cap::LabelLength, long + cut, &subject);
    client.capped(Cap::Versions, extra as u64, &subject);
    Ok(versions)
}

/// Snapshots exist only for published versions of Java functions. For
/// other functions the API answers with a client error; the reference
/// (section 3.2) documents 400 and 404 (`FSS.1051`) for this endpoint and
/// says to expect "a 4xx or a disable-type answer". So a 400 or 404 from
/// `snapshots/state` means "not applicable": the collector succeeds and
/// exports no snapshot series. (A function that really is gone fails the
/// code and versions collectors, which is what marks it down.) When the
/// state is readable, `enableSnapshot` is asked too.
async fn poll_snapshot(client: &Client, urn: &FunctionUrn) -> Result<SnapshotInfo, ApiError> {
    let state = match client.snapshot(urn, SnapshotAction::State).await {
        Ok(body) => body,
        Err(e) if not_applicable(&e) => return Ok(SnapshotInfo::NotApplicable),
        Err(e) => return Err(e),
    };
    let enabled = match client.snapshot(urn, SnapshotAction::EnableSnapshot).await {
        Ok(body) => parse_enabled(&body),
        Err(e) if not_applicable(&e) => None,
        Err(e) => return Err(e),
    };
    Ok(SnapshotInfo::Known {
        state: parse_state(&state),
        enabled,
    })
}

fn not_applicable(e: &ApiError) -> bool {
    matches!(e.status(), Some(400 | 404))
}

fn parse_state(body: &SnapshotBody) -> Option<usize> {
    let state = body.state.as_deref()?.trim().to_ascii_lowercase();
    SNAPSHOT_STATES.iter().position(|s| *s == state)
}

/// The `enableSnapshot` answer's format is not documented; read the likely
/// spellings of on and off, and anything else as unknown.
fn parse_enabled(body: &SnapshotBody) -> Option<bool> {
    let v = body.state.as_deref()?.trim().to_ascii_lowercase();
    match v.as_str() {
        "enable" | "enabled" | "true" | "on" | "1" | "yes" => Some(true),
        "disable" | "disabled" | "false" | "off" | "0" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiErrorKind;
    use crate::api::Endpoint;

    fn body(state: Option<&str>) -> SnapshotBody {
        SnapshotBody {
            state: state.map(str::to_owned),
            code: None,
        }
    }

    #[test]
    fn snapshot_states_map_to_the_known_set_or_unknown() {
        assert_eq!(parse_state(&body(Some("enable"))), Some(0));
        assert_eq!(parse_state(&body(Some("CIRCUIT_BREAKING"))), Some(5));
        assert_eq!(parse_state(&body(Some("melting"))), None);
        assert_eq!(parse_state(&body(None)), None);
        assert_eq!(parse_enabled(&body(Some("true"))), Some(true));
        assert_eq!(parse_enabled(&body(Some("disable"))), Some(false));
        assert_eq!(parse_enabled(&body(Some("maybe"))), None);
    }

    #[test]
    fn statistics_skip_no_data_buckets() {
        let point = |t: i64, v: f64| SlaValue {
            timestamp: Some(t),
            value: Some(v),
        };
        let body = StatisticsBody {
            count: vec![point(1, 3.0), point(2, -1.0), point(3, 1.0)],
            duration: vec![point(1, 100.0), point(2, -1.0), point(3, 500.0)],
            fail_count: vec![point(1, -1.0)],
            max_duration: vec![point(1, 300.0), point(3, 500.0)],
            min_duration: vec![point(1, 10.0), point(3, 500.0)],
            reject_count: vec![],
        };
        let s = statistics_of(body);
        assert_eq!(s.invocations, Some(4.0));
        assert_eq!(s.errors, None, "only -1: no data, not 0 and not -1");
        assert_eq!(s.throttles, None);
        assert_eq!(s.duration_average, Some(0.2)); // (100*3 + 500*1) / 4 ms
        assert_eq!(s.duration_max, Some(0.5));
        assert_eq!(s.duration_min, Some(0.01));
    }

    #[test]
    fn only_400_and_404_mean_not_applicable() {
        let status = |s| {
            ApiError::new(
                Endpoint::SnapshotState,
                ApiErrorKind::Status {
                    status: s,
                    code: None,
                    message: String::new(),
                },
            )
        };
        assert!(not_applicable(&status(400)));
        assert!(not_applicable(&status(404)));
        assert!(!not_applicable(&status(401)));
        assert!(!not_applicable(&status(500)));
        assert!(!not_applicable(&ApiError::new(
            Endpoint::SnapshotState,
            ApiErrorKind::Decode("x".into())
        )));
    }
}
