//! Incremental tracking of a function's asynchronous invocation records.
//!
//! The first poll reads the whole lookback window and takes it as the
//! baseline: records already terminal then are never counted, so a restart
//! does not produce a burst. After that, each poll reads:
//!
//! 1. the records that started since the previous poll (with a short
//!    overlap for clock skew and late visibility);
//! 2. if older records were still `WAIT`/`RUNNING`, the `WAIT` and
//!    `RUNNING` lists from the oldest of them up to step 1's window, which
//!    are as long as the backlog, not as the window;
//! 3. each tracked pending record missing from those lists, by its
//!    `request_id` (it has finished, or left the window).
//!
//! So the pages read per poll grow with the number of new and still-pending
//! records, never with the size of the window. Each `request_id` is counted
//! once, when it is first seen terminal.

use std::collections::{HashMap, HashSet, hash_map::Entry};

use crate::api::model::AsyncInvocation;
use crate::api::{ApiError, AsyncQuery, Client, paginate};
use crate::state::{AsyncCounters, AsyncWindow, InvocationStatus};
use crate::timefmt::parse_api_time;
use crate::urn::FunctionUrn;

/// Records per page: the API's maximum.
const PAGE_LIMIT: u32 = 500;
/// Pages per listing before giving up on the rest (100,000 records).
const MAX_PAGES: usize = 200;
/// How far each poll's "new records" window reaches back before the end of
/// the previous one.
const OVERLAP_SECONDS: i64 = 30;
/// Pending records looked up one by one per poll; the rest wait for the
/// next poll.
const MAX_LOOKUPS: usize = 50;

/// What the tracker remembers of one record.
#[derive(Debug, Clone, Copy)]
struct Seen {
    status: InvocationStatus,
    /// Unix seconds; records leave the window by this time.
    start: i64,
    /// Seen terminal before (in the baseline or counted): never counted again.
    terminal_seen: bool,
}

/// Per-function state of the async invocations collector.
#[derive(Debug)]
pub struct AsyncTracker {
    lookback: i64,
    records: HashMap<String, Seen>,
    /// End of the last successful "new records" query; `None` until the
    /// baseline has been read.
    last_end: Option<i64>,
    counters: AsyncCounters,
    last_failure: Option<i64>,
    /// Requests made by the latest poll (for tests and debug logs).
    last_requests: usize,
}

impl AsyncTracker {
    pub fn new(lookback_seconds: i64) -> Self {
        Self {
            lookback: lookback_seconds.max(1),
            records: HashMap::new(),
            last_end: None,
            counters: AsyncCounters::default(),
            last_failure: None,
            last_requests: 0,
        }
    }

    /// Changes the window (a reload); records outside it leave at the next poll.
    pub fn set_lookback(&mut self, lookback_seconds: i64) {
        self.lookback = lookback_seconds.max(1);
    }

    pub fn counters(&self) -> &AsyncCounters {
        &self.counters
    }

    /// API requests the latest poll made.
    pub fn last_requests(&self) -> usize {
        self.last_requests
    }

    /// Polls the API and returns the window as it now stands. On error the
    /// records applied before the failure stay applied.
    pub async fn poll(
        &mut self,
        client: &Client,
        urn: &FunctionUrn,
        now: i64,
    ) -> Result<AsyncWindow, ApiError> {
        self.last_requests = 0;
        let window_start = now - self.lookback;
        match self.last_end {
            None => {
                let records = self.list(client, urn, None, window_start, now).await?;
                for r in records {
                    self.apply(r, now, true);
                }
                self.last_end = Some(now);
            }
            Some(last_end) => {
                let begin = (last_end - OVERLAP_SECONDS).max(window_start);
                let records = self.list(client, urn, None, begin, now).await?;
                for r in records {
                    self.apply(r, now, false);
                }
                self.last_end = Some(now);
                self.recheck_pending(client, urn, window_start, begin, now)
                    .await?;
            }
        }
        self.expire(window_start);
        Ok(self.window())
    }

    /// Steps 2 and 3: pending records older than this poll's new window.
    async fn recheck_pending(
        &mut self,
        client: &Client,
        urn: &FunctionUrn,
        window_start: i64,
        begin: i64,
        now: i64,
    ) -> Result<(), ApiError> {
        let old_pending: Vec<(String, i64)> = self
            .records
            .iter()
            .filter(|(_, s)| !s.status.is_terminal() && s.start < begin && s.start >= window_start)
            .map(|(id, s)| (id.clone(), s.start))
            .collect();
        let Some(oldest) = old_pending.iter().map(|(_, start)| *start).min() else {
            return Ok(());
        };
        let mut still_pending = HashSet::new();
        for status in [InvocationStatus::Wait, InvocationStatus::Running] {
            let records = self.list(client, urn, Some(status), oldest, begin).await?;
            for r in records {
                if let Some(id) = &r.request_id {
                    still_pending.insert(id.clone());
                }
                self.apply(r, now, false);
            }
        }
        let mut lookups: Vec<(String, i64)> = old_pending
            .into_iter()
            .filter(|(id, _)| !still_pending.contains(id))
            .collect();
        // Oldest first: they are the closest to leaving the window.
        lookups.sort_by_key(|(_, start)| *start);
        for (id, _) in lookups.into_iter().take(MAX_LOOKUPS) {
            let query = AsyncQuery {
                marker: 0,
                limit: 10,
                request_id: Some(&id),
                begin: Some(window_start),
                end: Some(now),
                ..AsyncQuery::default()
            };
            self.last_requests += 1;
            let page = client.async_invocations(urn, &query).await?;
            match page
                .items
                .into_iter()
                .find(|r| r.request_id.as_deref() == Some(id.as_str()))
            {
                Some(r) => self.apply(r, now, false),
                // Not in the window any more: stop tracking it.
                None => {
                    self.records.remove(&id);
                }
            }
        }
        Ok(())
    }

    async fn list(
        &mut self,
        client: &Client,
        urn: &FunctionUrn,
        status: Option<InvocationStatus>,
        begin: i64,
        end: i64,
    ) -> Result<Vec<AsyncInvocation>, ApiError> {
        let paged = paginate(0, MAX_PAGES, |marker| {
            let query = AsyncQuery {
                marker,
                limit: PAGE_LIMIT,
                status: status.map(InvocationStatus::as_str),
                request_id: None,
                begin: Some(begin),
                end: Some(end),
            };
            async move { client.async_invocations(urn, &query).await }
        })
        .await?;
        self.last_requests += paged.pages;
        if paged.truncated {
            tracing::warn!(
                function = %urn,
                pages = paged.pages,
                "async invocation listing stopped at the page cap; older records in the window are not tracked"
            );
        }
        Ok(paged.items)
    }

    /// Takes one record into account.
    fn apply(&mut self, r: AsyncInvocation, now: i64, baseline: bool) {
        let Some(id) = r.request_id.filter(|s| !s.is_empty()) else {
            tracing::debug!("async invocation record without request_id ignored");
            return;
        };
        let Some(status) = r.status.as_deref().and_then(InvocationStatus::parse) else {
            tracing::debug!(request_id = %id, status = ?r.status, "async invocation record with unknown status ignored");
            return;
        };
        let start = r.start_time.as_deref().and_then(parse_api_time);
        let end = r.end_time.as_deref().and_then(parse_api_time);
        if status == InvocationStatus::Fail {
            if let Some(s) = start {
                self.last_failure = Some(self.last_failure.map_or(s, |f| f.max(s)));
            }
        }
        let count = match self.records.entry(id) {
            Entry::Vacant(v) => {
                v.insert(Seen {
                    status,
                    start: start.unwrap_or(now),
                    terminal_seen: status.is_terminal(),
                });
                !baseline && status.is_terminal()
            }
            Entry::Occupied(mut o) => {
                let seen = o.get_mut();
                seen.status = status;
                if let Some(s) = start {
                    seen.start = s;
                }
                let first_terminal = status.is_terminal() && !seen.terminal_seen;
                seen.terminal_seen |= status.is_terminal();
                first_terminal
            }
        };
        if count {
            if let Some(i) = status.terminal_index() {
                self.counters.terminal[i] += 1;
            }
            if let (Some(s), Some(e)) = (start, end) {
                if e >= s {
                    self.counters.durations.observe((e - s) as f64);
                }
            }
        }
    }

    fn expire(&mut self, window_start: i64) {
        self.records.retain(|_, s| s.start >= window_start);
    }

    fn window(&self) -> AsyncWindow {
        let mut by_status = [0u64; 5];
        for s in self.records.values() {
            by_status[s.status.index()] += 1;
        }
        AsyncWindow {
            by_status,
            last_failure: self.last_failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, status: &str, start: i64, end: Option<i64>) -> AsyncInvocation {
        AsyncInvocation {
            request_id: Some(id.into()),
            status: Some(status.into()),
            start_time: Some(crate::timefmt::format_query_time(start)),
            end_time: end.map(crate::timefmt::format_query_time),
        }
    }

    #[test]
    fn baseline_is_not_counted_but_later_transitions_are_once() {
        let now = 1_700_000_000;
        let mut t = AsyncTracker::new(3600);
        t.apply(rec("a", "SUCCESS", now - 100, Some(now - 90)), now, true);
        t.apply(rec("b", "RUNNING", now - 50, None), now, true);
        assert_eq!(t.counters.terminal, [0, 0, 0]);
        // b finishes: counted once, with its duration
        t.apply(rec("b", "SUCCESS", now - 50, Some(now - 20)), now, false);
        t.apply(rec("b", "SUCCESS", now - 50, Some(now - 20)), now, false);
        // a new failure
        t.apply(rec("c", "FAIL", now - 10, Some(now - 9)), now, false);
        // a seen again in an overlap: not counted
        t.apply(rec("a", "SUCCESS", now - 100, Some(now - 90)), now, false);
        assert_eq!(t.counters.terminal, [1, 1, 0]);
        assert_eq!(t.counters.durations.count, 2);
        assert_eq!(t.counters.durations.sum, 31.0);
        let w = t.window();
        assert_eq!(w.by_status, [0, 0, 2, 1, 0]);
        assert_eq!(w.last_failure, Some(now - 10));
    }

    #[test]
    fn records_leave_the_window_and_bad_records_are_ignored() {
        let now = 1_700_000_000;
        let mut t = AsyncTracker::new(3600);
        t.apply(rec("old", "WAIT", now - 4000, None), now, false);
        t.apply(rec("new", "DISCARD", now - 10, Some(now - 5)), now, false);
        t.apply(rec("weird", "PAUSED", now - 10, None), now, false);
        t.apply(
            AsyncInvocation {
                request_id: None,
                status: Some("FAIL".into()),
                ..Default::default()
            },
            now,
            false,
        );
        t.expire(now - 3600);
        assert_eq!(t.window().by_status, [0, 0, 0, 0, 1]);
        assert_eq!(t.counters.terminal, [0, 0, 1]);
        assert_eq!(t.window().last_failure, None);
    }
}
