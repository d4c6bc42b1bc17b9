//! The bound on API requests in flight across all projects, and the share
//! of it that slow requests may hold.
//!
//! Every request holds one of `polling.concurrency` slots while it is in
//! flight. A request that hangs would hold its slot for the whole request
//! timeout, so a handful of functions whose API hangs could take every slot
//! and stall every other function. So a request still unanswered after a
//! quarter of the timeout is *slow*, and at most half of the slots (at least
//! one) may be held by slow requests: a request that becomes slow while that
//! share is taken is abandoned at once (it fails like a timeout; the
//! poller then backs that collector off), and its slot goes to the next
//! request. Requests answered in time are never affected; slow ones are
//! only cut short when half the slots are already waiting on slow answers.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{AcquireError, Semaphore, SemaphorePermit};

/// Share of the timeout after which a request in flight is slow.
const SLOW_AFTER_DIVISOR: u32 = 4;

/// The slots of the concurrency bound, shared by every client.
#[derive(Debug)]
pub struct Concurrency {
    permits: Semaphore,
    slow: Semaphore,
    slow_max: usize,
}

/// Why an exchange was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// No complete answer within the timeout.
    Timeout,
    /// Still unanswered after `after`, while `slow` slower requests held
    /// every slot slow requests may hold.
    Abandoned { after: Duration, slow: usize },
}

impl Concurrency {
    /// `limit` requests in flight at once, at most half of them (at least
    /// one) slow.
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        let slow_max = (limit / 2).max(1);
        Self {
            permits: Semaphore::new(limit),
            slow: Semaphore::new(slow_max),
            slow_max,
        }
    }

    /// Waits for a slot (in arrival order).
    pub async fn acquire(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        self.permits.acquire().await
    }

    /// How many requests may be slow at once.
    pub fn slow_max(&self) -> usize {
        self.slow_max
    }

    /// Runs one exchange, already holding its slot, within `timeout`: past
    /// a quarter of it, the exchange goes on only if it gets one of the
    /// slow requests' places.
    pub async fn run<F: Future>(&self, timeout: Duration, exchange: F) -> Result<F::Output, Cut> {
        let after = timeout / SLOW_AFTER_DIVISOR;
        let exchange = std::pin::pin!(exchange);
        let mut exchange = exchange;
        if let Ok(out) = tokio::time::timeout(after, exchange.as_mut()).await {
            return Ok(out);
        }
        let Ok(_slow) = self.slow.try_acquire() else {
            return Err(Cut::Abandoned {
                after,
                slow: self.slow_max,
            });
        };
        tokio::time::timeout(timeout - after, exchange)
            .await
            .map_err(|_| Cut::Timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn fast_answers_are_untouched_and_slow_ones_take_at_most_half_the_slots() {
        let c = Arc::new(Concurrency::new(8));
        assert_eq!(c.slow_max(), 4);
        let timeout = Duration::from_secs(10);
        // An answer within the timeout but after a quarter of it goes on
        // while there is room among the slow.
        let late = c.run(timeout, async {
            tokio::time::sleep(Duration::from_secs(6)).await;
            7
        });
        assert_eq!(late.await, Ok(7));
        let fast = c.run(timeout, async { 1 });
        assert_eq!(fast.await, Ok(1));

        // Eight hanging exchanges: four go on to the timeout, four are
        // abandoned when they become slow.
        let started = tokio::time::Instant::now();
        let mut hanging = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let c = Arc::clone(&c);
            hanging.spawn(async move {
                let _slot = c.acquire().await.unwrap();
                let cut = c.run(timeout, std::future::pending::<()>()).await;
                (cut.unwrap_err(), started.elapsed())
            });
        }
        let mut outcomes = Vec::new();
        while let Some(r) = hanging.join_next().await {
            outcomes.push(r.unwrap());
        }
        let abandoned: Vec<_> = outcomes
            .iter()
            .filter(|(cut, _)| matches!(cut, Cut::Abandoned { slow: 4, .. }))
            .collect();
        let timed_out: Vec<_> = outcomes
            .iter()
            .filter(|(cut, _)| *cut == Cut::Timeout)
            .collect();
        assert_eq!((abandoned.len(), timed_out.len()), (4, 4), "{outcomes:?}");
        assert!(abandoned.iter().all(|(_, at)| *at == timeout / 4));
        assert!(timed_out.iter().all(|(_, at)| *at == timeout));
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_request_waits_at_most_a_quarter_timeout_behind_hanging_ones() {
        let c = Arc::new(Concurrency::new(2));
        let timeout = Duration::from_secs(8);
        let started = tokio::time::Instant::now();
        for _ in 0..2 {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let _slot = c.acquire().await.unwrap();
                let _ = c.run(timeout, std::future::pending::<()>()).await;
            });
        }
        tokio::task::yield_now().await;
        let _slot = c.acquire().await.unwrap();
        assert_eq!(
            started.elapsed(),
            timeout / 4,
            "one of the two was abandoned"
        );
        assert_eq!(c.run(timeout, async { "ok" }).await, Ok("ok"));
    }
}
