//! The [`Store`]: the latest report of every monitored function and
//! project, published by the poller and read by the renderers under short
//! locks, with the generation counter that tells a reader what changed
//! ([`Store::changes_since`]) and the cycle statistics ([`CycleStats`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::{FunctionReport, ProjectReport};
use crate::caps::CapCounters;
use crate::sync::{MutexExt, RwLockExt};
use crate::urn::FunctionUrn;

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

/// A function's report in the store, and the generation it was
/// published in.
#[derive(Debug)]
struct Entry {
    report: Arc<FunctionReport>,
    changed: u64,
}

/// What changed among the functions since a generation
/// ([`Store::changes_since`]).
#[derive(Debug, Default)]
pub struct FunctionChanges {
    /// Reports published after that generation, ordered by URN.
    pub changed: Vec<Arc<FunctionReport>>,
    /// Functions in the store now.
    pub total: usize,
    /// The generation these changes bring a reader up to.
    pub generation: u64,
}

/// The latest report of every monitored function.
#[derive(Debug, Default)]
pub struct Store {
    functions: RwLock<BTreeMap<FunctionUrn, Entry>>,
    projects: RwLock<BTreeMap<String, Arc<ProjectReport>>>,
    cycles: Mutex<CycleStats>,
    generation: AtomicU64,
    /// What the caps on upstream data dropped (shared with the exporter's
    /// own metrics).
    caps: Arc<CapCounters>,
    /// Reports a reader no longer needs ([`Store::retire`]), freed by the
    /// next publication.
    retired: Mutex<Vec<Arc<FunctionReport>>>,
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

    /// Replaces a function's report.
    pub fn publish(&self, report: FunctionReport) {
        let mut map = self.functions.write_or_recover();
        let changed = self.next_generation();
        let old = map.insert(
            report.urn.clone(),
            Entry {
                report: Arc::new(report),
                changed,
            },
        );
        drop(map);
        self.free(old);
    }

    /// Hands over reports a reader kept and has replaced (the renderer
    /// holds each function's previous report until it catches up, so it
    /// often holds the last reference): the next publication frees them,
    /// on the poller's time rather than a scrape's.
    pub fn retire(&self, reports: Vec<Arc<FunctionReport>>) {
        if reports.is_empty() {
            return;
        }
        let mut retired = self.retired.lock_or_recover();
        if retired.is_empty() {
            *retired = reports;
        } else {
            retired.extend(reports);
        }
    }

    /// Frees what a publication replaced and the retired reports, after
    /// the functions' lock is released (so that readers do not wait on
    /// the freeing).
    fn free<T>(&self, replaced: T) {
        drop(replaced);
        let retired = std::mem::take(&mut *self.retired.lock_or_recover());
        drop(retired);
    }

    /// Forgets a function (it is no longer monitored).
    pub fn remove(&self, urn: &FunctionUrn) {
        let mut map = self.functions.write_or_recover();
        if map.remove(urn).is_some() {
            self.next_generation();
        }
    }

    /// Replaces a project's report.
    pub fn publish_project(&self, report: ProjectReport) {
        let mut map = self.projects.write_or_recover();
        map.insert(report.project_id.clone(), Arc::new(report));
        drop(map);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current project reports, ordered by project id.
    pub fn projects(&self) -> Vec<Arc<ProjectReport>> {
        let map = self.projects.read_or_recover();
        map.values().cloned().collect()
    }

    /// Whether a function is monitored.
    pub fn contains(&self, urn: &FunctionUrn) -> bool {
        let map = self.functions.read_or_recover();
        map.contains_key(urn)
    }

    /// Replaces a function's report only if the function is still
    /// monitored (a poll that finishes after its function was removed must
    /// not bring its series back).
    pub fn update(&self, report: impl Into<Arc<FunctionReport>>) -> bool {
        let report = report.into();
        let mut map = self.functions.write_or_recover();
        let Some(entry) = map.get_mut(&report.urn) else {
            return false;
        };
        entry.changed = self.next_generation();
        let old = std::mem::replace(&mut entry.report, report);
        drop(map);
        self.free(old);
        true
    }

    /// Counts functions left out by the cardinality cap.
    pub fn record_dropped(&self, n: u64) {
        let mut c = self.cycles.lock_or_recover();
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
        let mut c = self.cycles.lock_or_recover();
        c.implausible_records += implausible;
        c.abandoned_invocations += abandoned;
        drop(c);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Records a completed poll cycle.
    pub fn record_cycle(&self, duration: Duration) {
        let mut c = self.cycles.lock_or_recover();
        c.completed += 1;
        c.last_duration = Some(duration);
        drop(c);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current reports, ordered by URN.
    pub fn functions(&self) -> Vec<Arc<FunctionReport>> {
        let map = self.functions.read_or_recover();
        map.values().map(|e| Arc::clone(&e.report)).collect()
    }

    /// The reports published after generation `since` (all of them for
    /// 0), and how many functions there are: what a reader that has seen
    /// the store up to `since` needs to catch up. Functions removed since
    /// show only in `total`.
    pub fn changes_since(&self, since: u64) -> FunctionChanges {
        let map = self.functions.read_or_recover();
        FunctionChanges {
            changed: map
                .values()
                .filter(|e| e.changed > since)
                .map(|e| Arc::clone(&e.report))
                .collect(),
            total: map.len(),
            // Under the read lock: every change up to it is in the map.
            generation: self.generation(),
        }
    }

    /// One function's current report.
    pub fn function(&self, urn: &FunctionUrn) -> Option<Arc<FunctionReport>> {
        let map = self.functions.read_or_recover();
        map.get(urn).map(|e| Arc::clone(&e.report))
    }

    pub fn cycles(&self) -> CycleStats {
        self.cycles.lock_or_recover().clone()
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
    fn publishing_changes_the_generation() {
        let store = Store::new();
        let urn = FunctionUrn::parse_full(
            "urn:fss:r:0123456789abcdef0123456789abcdef:function:default:f",
        )
        .unwrap();
        let g0 = store.generation();
        store.publish(FunctionReport::new(urn.clone()));
        assert_ne!(store.generation(), g0);
        assert_eq!(store.functions().len(), 1);
        let g1 = store.generation();
        store.remove(&urn);
        assert_ne!(store.generation(), g1);
        assert!(store.functions().is_empty());
    }

    #[test]
    fn retired_reports_are_freed_by_the_next_publication() {
        let store = Store::new();
        let urn = FunctionUrn::parse_full(
            "urn:fss:r:0123456789abcdef0123456789abcdef:function:default:f",
        )
        .unwrap();
        store.publish(FunctionReport::new(urn.clone()));
        // A reader's copy of the report, which it later replaces.
        let kept = store.function(&urn).unwrap();
        let weak = Arc::downgrade(&kept);
        let mut next = FunctionReport::new(urn.clone());
        next.polls = 1;
        assert!(store.update(next));
        store.retire(vec![kept]);
        assert!(weak.upgrade().is_some(), "freed before a publication");
        let mut next = FunctionReport::new(urn.clone());
        next.polls = 2;
        assert!(store.update(next));
        assert!(weak.upgrade().is_none(), "still held after a publication");
        assert_eq!(store.function(&urn).unwrap().polls, 2);
    }
}
