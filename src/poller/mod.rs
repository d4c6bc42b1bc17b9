//! The scheduler: when each function is polled.
//!
//! A poll cycle starts at start-up and then every `interval`. The first
//! cycle polls every function at once (bounded by the global request
//! concurrency), so the exporter is ready quickly; later cycles spread the
//! functions over the first half of the interval, each at a fixed offset
//! derived from its URN, so the API sees a steady trickle instead of a burst
//! every minute. A function whose previous poll is still running is skipped
//! with a warning, never polled twice at once. Each poll publishes its
//! snapshot to the [`Store`] as soon as it finishes.
//!
//! The scheduler knows nothing of Prometheus: it fills the store, and the
//! collectors read it.

mod async_tracker;
mod function;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub use async_tracker::AsyncTracker;
pub use function::FunctionPoller;

use crate::api::Client;
use crate::state::{FunctionSnapshot, Store};
use crate::urn::FunctionUrn;

/// Share of the interval over which later cycles spread their polls.
const SPREAD: f64 = 0.5;

/// One monitored function and its poll state.
struct Slot {
    urn: FunctionUrn,
    /// Delay from a cycle's start to this function's poll (after the first
    /// cycle).
    offset: Duration,
    /// Held for the whole of a poll: `try_lock` failing means the previous
    /// poll is still running.
    poller: Mutex<FunctionPoller>,
}

/// What a function is polled with.
pub struct Target {
    pub urn: FunctionUrn,
    pub client: Arc<Client>,
}

/// Polls every target on schedule. Built by [`Poller::new`], driven by
/// [`Poller::run`].
pub struct Poller {
    slots: Arc<Vec<Arc<Slot>>>,
    store: Arc<Store>,
    interval: Duration,
    ready: watch::Sender<bool>,
    triggers: mpsc::Receiver<oneshot::Sender<()>>,
}

/// Talks to a running [`Poller`]: readiness, and on-demand cycles.
#[derive(Clone)]
pub struct PollerHandle {
    triggers: mpsc::Sender<oneshot::Sender<()>>,
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

    /// Waits until a complete poll cycle has finished.
    pub async fn wait_ready(&self) -> Result<(), Stopped> {
        let mut rx = self.ready.clone();
        rx.wait_for(|ready| *ready)
            .await
            .map(|_| ())
            .map_err(|_| Stopped)
    }

    /// Polls every function now, without spreading, waiting for polls still
    /// running to finish first; returns when the cycle is complete. For
    /// tests and tools: the schedule itself is unchanged.
    pub async fn poll_now(&self) -> Result<(), Stopped> {
        let (tx, rx) = oneshot::channel();
        self.triggers.send(tx).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}

impl Poller {
    /// Prepares the schedule; every target gets an unpolled entry in the
    /// store right away.
    pub fn new(
        targets: Vec<Target>,
        store: Arc<Store>,
        interval: Duration,
        async_lookback: Duration,
    ) -> (Self, PollerHandle) {
        let lookback = i64::try_from(async_lookback.as_secs()).unwrap_or(i64::MAX);
        let slots = targets
            .into_iter()
            .map(|t| {
                store.publish(FunctionSnapshot::new(t.urn.clone()));
                Arc::new(Slot {
                    offset: offset(&t.urn, interval),
                    poller: Mutex::new(FunctionPoller::new(t.urn.clone(), t.client, lookback)),
                    urn: t.urn,
                })
            })
            .collect();
        let (ready_tx, ready_rx) = watch::channel(false);
        let (trigger_tx, trigger_rx) = mpsc::channel(4);
        (
            Self {
                slots: Arc::new(slots),
                store,
                interval,
                ready: ready_tx,
                triggers: trigger_rx,
            },
            PollerHandle {
                triggers: trigger_tx,
                ready: ready_rx,
            },
        )
    }

    /// Runs cycles until `shutdown`; polls in flight are then abandoned.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut cycles = JoinSet::new();
        let mut first = true;
        tracing::info!(
            functions = self.slots.len(),
            interval = %humantime::format_duration(self.interval),
            "poller started"
        );
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    let mode = if first { Mode::Burst } else { Mode::Spread };
                    first = false;
                    cycles.spawn(self.cycle(mode, None));
                }
                Some(reply) = self.triggers.recv() => {
                    cycles.spawn(self.cycle(Mode::OnDemand, Some(reply)));
                }
                Some(_) = cycles.join_next(), if !cycles.is_empty() => {}
            }
        }
        cycles.abort_all();
        tracing::info!("poller stopped");
    }

    fn cycle(
        &self,
        mode: Mode,
        reply: Option<oneshot::Sender<()>>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let slots = Arc::clone(&self.slots);
        let store = Arc::clone(&self.store);
        let ready = self.ready.clone();
        async move {
            let started = Instant::now();
            let mut polls = JoinSet::new();
            for slot in slots.iter() {
                let slot = Arc::clone(slot);
                let store = Arc::clone(&store);
                polls.spawn(async move {
                    if mode == Mode::Spread && !slot.offset.is_zero() {
                        tokio::time::sleep(slot.offset).await;
                    }
                    let mut poller = match mode {
                        Mode::OnDemand => slot.poller.lock().await,
                        Mode::Burst | Mode::Spread => match slot.poller.try_lock() {
                            Ok(p) => p,
                            Err(_) => {
                                tracing::warn!(
                                    function = %slot.urn,
                                    "previous poll still running; skipping this one (is polling.interval too short?)"
                                );
                                return;
                            }
                        },
                    };
                    let snapshot = poller.poll(unix_now()).await;
                    store.publish(snapshot);
                });
            }
            while polls.join_next().await.is_some() {}
            let took = started.elapsed();
            store.record_cycle(took);
            ready.send_replace(true);
            tracing::debug!(took = ?took, ?mode, "poll cycle complete");
            if let Some(reply) = reply {
                let _ = reply.send(());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every function at once (the first cycle).
    Burst,
    /// Each function at its offset.
    Spread,
    /// Asked for through [`PollerHandle::poll_now`].
    OnDemand,
}

/// A stable offset in `[0, SPREAD × interval)` from the URN (FNV-1a), so a
/// function keeps its place in the cycle across restarts.
fn offset(urn: &FunctionUrn, interval: Duration) -> Duration {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in urn.to_string().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let fraction = (hash >> 11) as f64 / (1u64 << 53) as f64;
    interval.mul_f64(SPREAD * fraction)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
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
