//! The scheduler: which functions are polled, and when.
//!
//! A poll cycle runs at start-up and then every cycle period (the shortest
//! collector interval). Each cycle first refreshes the projects whose
//! discovery is due, checks with one project-level request the credentials
//! not yet known to work, then polls every function of this shard: the first
//! cycle all at once (bounded by the request concurrency and each project's
//! rate limit) so the exporter is ready quickly, later cycles spread over
//! the first half of the period, each function at a fixed offset derived
//! from its URN, so the API sees a steady trickle rather than a burst. In
//! each poll only the collectors that are due run. A function whose
//! previous poll is still running is skipped with a warning, never polled
//! twice at once. Project quotas are polled alongside, when enabled.
//!
//! Every function gets its fair share of the request concurrency (see
//! `function`): at most the bound divided by the number of functions (at
//! least one) of its requests in flight at once, and a function whose
//! requests go unanswered stops sending the rest of its poll and backs off.
//!
//! Discovered functions that the API says are gone (absent from a listing,
//! or answering 404 with `FSS.1051`, `FSS.1052`, `FSS.1053` or `FSS.0404`
//! on any endpoint) are checked once more, one by one, and removed with all
//! their series when that confirms it. Functions listed in the
//! configuration are never removed.
//!
//! The scheduler knows nothing of Prometheus: it fills the store, and the
//! exposition reads it.

mod async_tracker;
pub mod checkpoint;
pub mod discovery;
mod function;
mod permissions;
mod quotas;
pub mod shard;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub use async_tracker::{AsyncTracker, TrackerSettings, TrackerState};
pub use checkpoint::Checkpoint;
pub use function::{
    FunctionPoller, NOT_APPLICABLE_RECHECK, PollContext, PollOutcome, Schedule, backoff_delay,
};
pub use permissions::Denials;
pub use shard::Shard;

use crate::api::Client;
use crate::caps::{Cap, Caps};
use crate::clock::Clock;
use crate::config::{DiscoveryConfig, Intervals};
use crate::state::{Collected, FunctionReport, Quota, Store};
use crate::sync::{MutexExt, RwLockExt};
use crate::urn::FunctionUrn;

/// Share of the cycle period over which later cycles spread their polls.
const SPREAD: f64 = 0.5;

/// Polls under way at once per slot of the concurrency bound.
const POLLS_PER_SLOT: usize = 4;

/// One project as the scheduler sees it.
pub struct ProjectTarget {
    pub project_id: String,
    pub region: String,
    pub client: Arc<Client>,
    /// Functions listed in the configuration.
    pub explicit: Vec<FunctionUrn>,
    pub discovery: Option<DiscoveryConfig>,
}

/// How the scheduler runs.
pub struct Settings {
    pub intervals: Intervals,
    /// How long a failed collector's last values stay exported.
    pub stale_after: Duration,
    /// Cap on monitored functions; the rest are dropped and counted.
    pub max_functions: usize,
    /// How async invocations are counted (the lookback among it).
    pub tracker: TrackerSettings,
    /// Where the counting state is kept, if anywhere.
    pub checkpoint: Option<Arc<Checkpoint>>,
    /// Look-back minutes of the statistics collector, when enabled.
    pub statistics_period: Option<u32>,
    pub quotas: bool,
    /// API requests in flight at once (`polling.concurrency`): each
    /// function's share of it is this divided by the number of functions.
    pub concurrency: usize,
    pub shard: Shard,
    /// Decides what is due, and dates the async windows.
    pub clock: Arc<dyn Clock>,
    /// Caps on upstream data (label length, versions, quota types).
    pub caps: Caps,
}

/// One monitored function and its poll state.
struct Monitored {
    urn: FunctionUrn,
    /// Its project (looked up in the current [`Epoch`] at each poll, so
    /// a reload's new client is used).
    project_id: String,
    /// Found by discovery (and so removable when gone).
    discovered: bool,
    /// Delay from a spread cycle's start to this function's poll.
    offset: Duration,
    /// Held for the whole of a poll: `try_lock` failing means the previous
    /// poll is still running.
    poller: Mutex<FunctionPoller>,
}

/// Per-project scheduling state.
struct ProjectState {
    target: ProjectTarget,
    /// Clock time when discovery is next due.
    next_discovery: std::sync::Mutex<f64>,
    /// Clock time when quotas are next due.
    next_quotas: std::sync::Mutex<f64>,
    quotas: std::sync::Mutex<Collected<Vec<Quota>>>,
}

/// The configuration-dependent part of the scheduler, one per
/// configuration: a reload replaces it as a whole (a new epoch), while the
/// functions' poll state carries on.
struct Epoch {
    projects: Vec<ProjectState>,
    schedule: Arc<Schedule>,
    settings: Settings,
}

impl Epoch {
    fn new(projects: Vec<ProjectTarget>, settings: Settings) -> Self {
        Self {
            schedule: Arc::new(Schedule {
                intervals: settings.intervals.clone(),
                statistics_period: settings.statistics_period,
                stale_after: settings.stale_after,
                tracker: settings.tracker,
                caps: settings.caps,
            }),
            projects: projects
                .into_iter()
                .map(|target| ProjectState {
                    target,
                    next_discovery: std::sync::Mutex::new(f64::MIN),
                    next_quotas: std::sync::Mutex::new(f64::MIN),
                    quotas: std::sync::Mutex::new(Collected::default()),
                })
                .collect(),
            settings,
        }
    }

    fn project(&self, project_id: &str) -> Option<&ProjectState> {
        self.projects
            .iter()
            .find(|p| p.target.project_id == project_id)
    }

    /// The configured functions this shard polls, by project.
    fn explicit(&self) -> Vec<(String, FunctionUrn)> {
        self.projects
            .iter()
            .flat_map(|p| {
                p.target
                    .explicit
                    .iter()
                    .filter(|u| self.settings.shard.owns(u))
                    .map(|u| (p.target.project_id.clone(), u.clone()))
            })
            .collect()
    }
}

/// What cycles share.
struct Shared {
    monitored: RwLock<BTreeMap<FunctionUrn, Arc<Monitored>>>,
    epoch: RwLock<Arc<Epoch>>,
    store: Arc<Store>,
    ready: watch::Sender<bool>,
    denials: Denials,
}

/// Polls every target on schedule. Built by [`Poller::new`], driven by
/// [`Poller::run`].
pub struct Poller {
    shared: Arc<Shared>,
    requests: mpsc::Receiver<Request>,
}

/// What the handle asks of the run loop.
enum Request {
    /// A cycle now; `everything`: every collector, due or not.
    Cycle {
        everything: bool,
        reply: oneshot::Sender<()>,
    },
    /// A new configuration.
    Reconfigure {
        projects: Vec<ProjectTarget>,
        settings: Box<Settings>,
        reply: oneshot::Sender<()>,
    },
}

/// Talks to a running [`Poller`]: readiness, on-demand cycles, reloads.
#[derive(Clone)]
pub struct PollerHandle {
    requests: mpsc::Sender<Request>,
    ready: watch::Receiver<bool>,
}

/// The poller has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the poller has stopped")]
pub struct Stopped;

impl PollerHandle {
    /// True once a complete poll cycle has finished.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Turns true once a complete poll cycle has finished: what the
    /// server's readiness is wired to.
    pub fn ready_signal(&self) -> watch::Receiver<bool> {
        self.ready.clone()
    }

    /// Waits until a complete poll cycle has finished.
    pub async fn wait_ready(&self) -> Result<(), Stopped> {
        let mut rx = self.ready.clone();
        rx.wait_for(|ready| *ready)
            .await
            .map(|_| ())
            .map_err(|_| Stopped)
    }

    /// Polls every collector of every function now (due or not), without
    /// spreading, after polls still running finish; returns when the cycle
    /// is complete. For tests and tools: the schedule is unchanged.
    pub async fn poll_now(&self) -> Result<(), Stopped> {
        self.trigger(true).await
    }

    /// Runs one cycle now exactly as the schedule would (discovery and
    /// collectors only when due by the clock), without spreading.
    pub async fn run_cycle(&self) -> Result<(), Stopped> {
        self.trigger(false).await
    }

    /// Applies a new configuration: functions no longer configured (or no
    /// longer this shard's) are dropped with their series, new ones are
    /// added, and the rest keep their state (counters, tracked records)
    /// but use the new clients and intervals from their next poll.
    pub async fn reconfigure(
        &self,
        projects: Vec<ProjectTarget>,
        settings: Settings,
    ) -> Result<(), Stopped> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::Reconfigure {
                projects,
                settings: Box::new(settings),
                reply,
            })
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    async fn trigger(&self, everything: bool) -> Result<(), Stopped> {
        let (reply, rx) = oneshot::channel();
        self.requests
            .send(Request::Cycle { everything, reply })
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}

impl Poller {
    /// Prepares the schedule; every configured function of this shard gets
    /// an unpolled entry in the store right away.
    pub fn new(
        projects: Vec<ProjectTarget>,
        store: Arc<Store>,
        settings: Settings,
    ) -> (Self, PollerHandle) {
        let (ready_tx, ready_rx) = watch::channel(false);
        let (request_tx, request_rx) = mpsc::channel(4);
        let epoch = Arc::new(Epoch::new(projects, settings));
        let shared = Arc::new(Shared {
            monitored: RwLock::new(BTreeMap::new()),
            epoch: RwLock::new(Arc::clone(&epoch)),
            store,
            ready: ready_tx,
            denials: Denials::default(),
        });
        for (project_id, urn) in epoch.explicit() {
            shared.add(&epoch, &project_id, [urn], false);
        }
        (
            Self {
                shared,
                requests: request_rx,
            },
            PollerHandle {
                requests: request_tx,
                ready: ready_rx,
            },
        )
    }

    /// Runs cycles until `shutdown`; polls in flight are then abandoned.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut period = self.shared.epoch().settings.intervals.cycle();
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut cycles = JoinSet::new();
        let mut first = true;
        {
            let epoch = self.shared.epoch();
            tracing::info!(
                functions = self.shared.monitored().len(),
                cycle = %humantime::format_duration(period),
                shard = epoch.settings.shard.index,
                shards = epoch.settings.shard.count,
                "poller started"
            );
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    let mode = if first { Mode::Burst } else { Mode::Spread };
                    if first {
                        // Spread cycles poll each function up to half a
                        // period after the cycle starts; starting the first
                        // one half a period early keeps every function's
                        // first two polls at most one period apart.
                        ticker.reset_after(period.mul_f64(1.0 - SPREAD));
                    }
                    first = false;
                    cycles.spawn(Arc::clone(&self.shared).cycle(mode, None));
                }
                Some(request) = self.requests.recv() => match request {
                    Request::Cycle { everything, reply } => {
                        let mode = Mode::OnDemand { everything };
                        cycles.spawn(Arc::clone(&self.shared).cycle(mode, Some(reply)));
                    }
                    Request::Reconfigure { projects, settings, reply } => {
                        self.shared.reconfigure(projects, *settings);
                        let new_period = self.shared.epoch().settings.intervals.cycle();
                        if new_period != period {
                            period = new_period;
                            ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
                        }
                        let _ = reply.send(());
                    }
                },
                Some(_) = cycles.join_next(), if !cycles.is_empty() => {}
            }
        }
        cycles.abort_all();
        tracing::info!("poller stopped");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every function at once (the first cycle).
    Burst,
    /// Each function at its offset.
    Spread,
    /// Asked for through the [`PollerHandle`].
    OnDemand { everything: bool },
}

impl Shared {
    fn monitored(&self) -> Vec<Arc<Monitored>> {
        let monitored = self.monitored.read_or_recover();
        monitored.values().cloned().collect()
    }

    fn epoch(&self) -> Arc<Epoch> {
        Arc::clone(&self.epoch.read_or_recover())
    }

    /// Starts monitoring functions of a project (those already monitored
    /// are left alone), within `max_functions`.
    fn add(
        &self,
        epoch: &Epoch,
        project_id: &str,
        urns: impl IntoIterator<Item = FunctionUrn>,
        discovered: bool,
    ) {
        let settings = &epoch.settings;
        let period = settings.intervals.cycle();
        let tracker = epoch.schedule.tracker;
        let mut monitored = self.monitored.write_or_recover();
        let mut dropped = 0u64;
        for urn in urns {
            if monitored.contains_key(&urn) {
                continue;
            }
            if monitored.len() >= settings.max_functions {
                dropped += 1;
                continue;
            }
            if discovered {
                tracing::info!(function = %urn, "discovered function; polling it");
            }
            let mut report = FunctionReport::new(urn.clone());
            if epoch.schedule.statistics_period.is_some() {
                report.statistics = Some(Collected::default());
            }
            self.store.publish(report);
            monitored.insert(
                urn.clone(),
                Arc::new(Monitored {
                    offset: offset(&urn, period),
                    project_id: project_id.to_owned(),
                    discovered,
                    poller: Mutex::new(FunctionPoller::new(
                        urn.clone(),
                        tracker,
                        settings
                            .checkpoint
                            .as_ref()
                            .and_then(|c| c.take(&urn.to_string())),
                    )),
                    urn,
                }),
            );
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                max_functions = settings.max_functions,
                "more functions than polling.max_functions; the rest are not monitored"
            );
            self.store.record_dropped(dropped);
        }
    }

    /// Swaps in a new configuration (see [`PollerHandle::reconfigure`]).
    fn reconfigure(&self, projects: Vec<ProjectTarget>, settings: Settings) {
        let epoch = Arc::new(Epoch::new(projects, settings));
        let explicit: BTreeSet<FunctionUrn> =
            epoch.explicit().into_iter().map(|(_, u)| u).collect();
        let stale: Vec<FunctionUrn> = self
            .monitored()
            .into_iter()
            .filter(|s| {
                let keep = match epoch.project(&s.project_id) {
                    None => false,
                    Some(p) if s.discovered => {
                        p.target.discovery.is_some() && epoch.settings.shard.owns(&s.urn)
                    }
                    Some(_) => explicit.contains(&s.urn),
                };
                !keep
            })
            .map(|s| s.urn.clone())
            .collect();
        for urn in &stale {
            self.remove(urn);
        }
        for (project_id, urn) in epoch.explicit() {
            self.add(&epoch, &project_id, [urn], false);
        }
        *self.epoch.write_or_recover() = epoch;
        tracing::info!(
            functions = self.monitored().len(),
            removed = stale.len(),
            "configuration reloaded"
        );
    }

    fn all_polled(&self) -> bool {
        self.monitored().iter().all(|s| {
            self.store
                .function(&s.urn)
                .is_some_and(|report| report.polls > 0)
        })
    }

    /// Stops monitoring a function and drops its series.
    fn remove(&self, urn: &FunctionUrn) {
        let mut monitored = self.monitored.write_or_recover();
        if monitored.remove(urn).is_some() {
            self.store.remove(urn);
            self.denials.forget(urn);
            if let Some(c) = &self.epoch().settings.checkpoint {
                c.forget(&urn.to_string());
            }
            tracing::info!(function = %urn, "function is gone; its series are removed");
        }
    }

    /// One function's poll in a cycle, and what follows it: the checkpoint,
    /// the store, and noting a discovered function that is gone.
    async fn poll_function(
        self: Arc<Self>,
        epoch: Arc<Epoch>,
        function: Arc<Monitored>,
        mode: Mode,
        share: usize,
        everything: bool,
        gone: Arc<std::sync::Mutex<Vec<Arc<Monitored>>>>,
    ) {
        let Some(project) = epoch.project(&function.project_id) else {
            return;
        };
        let mut poller = match mode {
            Mode::OnDemand { .. } => function.poller.lock().await,
            Mode::Burst | Mode::Spread => match function.poller.try_lock() {
                Ok(p) => p,
                Err(_) => {
                    tracing::warn!(
                        function = %function.urn,
                        "previous poll still running; skipping this one (is polling.interval too short?)"
                    );
                    return;
                }
            },
        };
        let ctx = PollContext {
            share,
            everything,
            denials: &self.denials,
        };
        let outcome = poller
            .poll(
                &project.target.client,
                &epoch.schedule,
                epoch.settings.clock.unix(),
                &ctx,
            )
            .await;
        // Counted values are shown only once they would survive a
        // restart: a restart must never bring back lower counters.
        if let Some(c) = &epoch.settings.checkpoint {
            c.save(&function.urn.to_string(), &poller.save_state())
                .await;
        }
        self.store
            .record_async_anomalies(outcome.news.implausible, outcome.news.abandoned);
        // Not brought back if it was removed meanwhile.
        self.store.update(outcome.report);
        if outcome.gone && function.discovered {
            gone.lock_or_recover().push(Arc::clone(&function));
        }
    }

    async fn cycle(self: Arc<Self>, mode: Mode, reply: Option<oneshot::Sender<()>>) {
        let started = Instant::now();
        // One configuration for the whole cycle, even if a reload lands.
        let epoch = self.epoch();
        let settings = &epoch.settings;
        let now = settings.clock.unix();
        let everything = matches!(mode, Mode::OnDemand { everything: true });
        let mut tasks = JoinSet::new();
        let tolerance = settings.intervals.cycle().as_secs_f64() / 2.0;
        for (i, p) in epoch.projects.iter().enumerate() {
            let Some(d) = &p.target.discovery else {
                continue;
            };
            if take_due(&p.next_discovery, now, d.refresh_interval, tolerance) || everything {
                let (shared, epoch) = (Arc::clone(&self), Arc::clone(&epoch));
                tasks.spawn(async move { shared.discover(&epoch, i).await });
            }
        }
        // New functions are polled in this very cycle.
        while tasks.join_next().await.is_some() {}
        // Credentials not verified yet (at start, or when a refusal's
        // back-off is over) are checked with one project-level request
        // before the functions' requests go out: while unverified they go
        // one at a time, and a function whose API hangs must not be the one
        // everything waits on.
        for p in &epoch.projects {
            if !p.target.client.credentials_verified() {
                let client = Arc::clone(&p.target.client);
                tasks.spawn(async move {
                    if let Err(e) = client.verify_credentials().await {
                        tracing::debug!(project_id = client.project_id(), error = %e, "credentials not verified");
                    }
                });
            }
        }
        while tasks.join_next().await.is_some() {}

        for (i, p) in epoch.projects.iter().enumerate() {
            let interval = settings.intervals.quotas;
            if settings.quotas && (take_due(&p.next_quotas, now, interval, tolerance) || everything)
            {
                let (shared, epoch) = (Arc::clone(&self), Arc::clone(&epoch));
                tasks.spawn(async move { shared.poll_quotas(&epoch, i).await });
            }
        }
        let gone = Arc::new(std::sync::Mutex::new(Vec::new()));
        let monitored = self.monitored();
        // Each function's share of the concurrency bound.
        let share = (settings.concurrency / monitored.len().max(1)).max(1);
        // Polls under way at once. The requests in flight are bounded by
        // the concurrency anyway; this bounds the polls' state, which
        // otherwise, in a cycle that starts every function at once (the
        // first one, `poll_now`), is allocated for every function together
        // while all but a few wait for a request slot, and the allocator
        // keeps much of that peak resident. A few times the concurrency
        // keeps every request slot busy (a poll makes its requests one
        // after the other once the share is one slot); a poll whose API
        // hangs holds its place no longer than its requests' slow-request
        // rules allow.
        let under_way = Arc::new(Semaphore::new(
            settings.concurrency.saturating_mul(POLLS_PER_SLOT).max(1),
        ));
        for function in monitored {
            let shared = Arc::clone(&self);
            let epoch = Arc::clone(&epoch);
            let gone = Arc::clone(&gone);
            let under_way = Arc::clone(&under_way);
            tasks.spawn(async move {
                if mode == Mode::Spread && !function.offset.is_zero() {
                    tokio::time::sleep(function.offset).await;
                }
                // Never closed: an error cannot happen.
                let _place = under_way.acquire_owned().await;
                // The poll's state lives on the heap only while it runs: a
                // task waiting for its offset or its place (every
                // function's, for most of a cycle) stays a few hundred bytes
                // instead of the size of the largest poll state (about 20
                // KB).
                Box::pin(shared.poll_function(epoch, function, mode, share, everything, gone))
                    .await;
            });
        }
        while tasks.join_next().await.is_some() {}
        let gone: Vec<Arc<Monitored>> = std::mem::take(&mut *gone.lock_or_recover());
        for function in gone {
            self.confirm_gone(&epoch, &function).await;
        }
        let took = started.elapsed();
        self.store.record_cycle(took);
        // One line per cap whose state changed in this cycle.
        self.store.caps().log_changes();
        // Ready once every function has been polled at least once (a cycle
        // that skipped a still-running poll does not count for it).
        if !*self.ready.borrow() && self.all_polled() {
            self.ready.send_replace(true);
        }
        tracing::debug!(took = ?took, ?mode, "poll cycle complete");
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }

    /// Refreshes one project's discovered functions.
    async fn discover(&self, epoch: &Epoch, project: usize) {
        let p = &epoch.projects[project].target;
        let Some(config) = &p.discovery else { return };
        let shard = epoch.settings.shard;
        let found = match discovery::discover(&p.client, &p.region, config, shard).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(project_id = %p.project_id, error = %e, "function discovery failed; keeping the functions known so far");
                return;
            }
        };
        let explicit: BTreeSet<&FunctionUrn> = p.explicit.iter().collect();
        // A name too long for a label is not monitored (a cut name would
        // not be the function's).
        let caps = epoch.settings.caps;
        let before = found.len();
        let found: BTreeSet<FunctionUrn> = found
            .into_iter()
            .filter(|u| !caps.too_long(u.name()) && !caps.too_long(u.package()))
            .collect();
        p.client.capped(
            Cap::LabelLength,
            (before - found.len()) as u64,
            &p.project_id,
        );
        let known: Vec<Arc<Monitored>> = self
            .monitored()
            .into_iter()
            .filter(|s| s.project_id == p.project_id && s.discovered)
            .collect();
        let missing: Vec<Arc<Monitored>> = known
            .iter()
            .filter(|s| !found.contains(&s.urn))
            .cloned()
            .collect();
        let new: Vec<FunctionUrn> = found
            .into_iter()
            .filter(|u| !explicit.contains(u))
            .collect();
        tracing::debug!(project_id = %p.project_id, found = new.len(), missing = missing.len(), "discovery refreshed");
        self.add(epoch, &p.project_id, new, true);
        for function in missing {
            self.confirm_gone(epoch, &function).await;
        }
    }

    /// Removes a discovered function once the API confirms it is gone.
    async fn confirm_gone(&self, epoch: &Epoch, function: &Monitored) {
        let Some(project) = epoch.project(&function.project_id) else {
            return;
        };
        let client = &project.target.client;
        match discovery::exists(client, &function.urn).await {
            Ok(false) => self.remove(&function.urn),
            Ok(true) => {}
            Err(e) => {
                tracing::debug!(function = %function.urn, error = %e, "could not confirm that a function is gone; keeping it")
            }
        }
    }
}

/// True, and the next due time moved an interval ahead, when `next` is due
/// (give or take `tolerance`).
fn take_due(next: &std::sync::Mutex<f64>, now: f64, interval: Duration, tolerance: f64) -> bool {
    let mut n = next.lock_or_recover();
    if now + tolerance >= *n {
        *n = now + interval.as_secs_f64();
        true
    } else {
        false
    }
}

/// A stable offset in `[0, SPREAD × period)` from the URN (FNV-1a), so a
/// function keeps its place in the cycle across restarts.
fn offset(urn: &FunctionUrn, period: Duration) -> Duration {
    // The renderer lays series out in the order of this key too.
    let fraction = (urn.spread_key() >> 11) as f64 / (1u64 << 53) as f64;
    period.mul_f64(SPREAD * fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_spread_and_within_half_the_interval() {
        let interval = Duration::from_secs(60);
        let offsets: Vec<Duration> = (0..200)
            .map(|i| {
                let urn = FunctionUrn::parse_full(&format!(
                    "urn:fss:r:0123456789abcdef0123456789abcdef:function:default:f{i}"
                ))
                .unwrap();
                assert_eq!(offset(&urn, interval), offset(&urn, interval));
                offset(&urn, interval)
            })
            .collect();
        assert!(offsets.iter().all(|o| *o < Duration::from_secs(30)));
        let early = offsets
            .iter()
            .filter(|o| **o < Duration::from_secs(15))
            .count();
        assert!(
            (60..140).contains(&early),
            "{early} of 200 in the first half"
        );
    }
}
