//! What one record does to a function's counts: counted once when it is
//! first seen terminal (the counter, the duration histogram, exemplars,
//! error codes, recent failures), remembered while a listing may return
//! it, then forgotten into the records gauge's aggregate; the cap on
//! records remembered; the records gauge itself.

use std::collections::HashSet;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use crate::api::model::AsyncInvocation;
use crate::state::{
    AsyncWindow, Exemplar, FailureRecord, InvocationStatus, OTHER_ERROR_CODE, UNKNOWN_ERROR_CODE,
};
use crate::timefmt::parse_api_time;

use super::{
    AsyncTracker, FAILURE_LOG_TARGET, FUTURE_TOLERANCE_SECONDS, MAX_ERROR_CODE_CHARS,
    MAX_REQUEST_ID_LEN, Mode, RETENTION_MARGIN_SECONDS, Record, SLACK_SECONDS, digest,
};

impl AsyncTracker {
    /// Takes one record into account.
    pub(super) fn apply(&mut self, r: AsyncInvocation, now: i64, mode: Mode) {
        let Some(id) = r.request_id.filter(|s| !s.is_empty()) else {
            tracing::debug!("async invocation record without request_id ignored");
            return;
        };
        if id.len() > MAX_REQUEST_ID_LEN {
            tracing::debug!(
                length = id.len(),
                "async invocation record with an overlong request_id ignored"
            );
            return;
        }
        let Some(status) = r.status.as_deref().and_then(InvocationStatus::parse) else {
            tracing::debug!(request_id = %id, status = ?r.status, "async invocation record with unknown status ignored");
            return;
        };
        let start = r.start_time.as_deref().and_then(parse_api_time);
        let end = r.end_time.as_deref().and_then(parse_api_time);
        let plausible =
            start.is_some_and(|s| s >= self.plausible_from && s <= now + FUTURE_TOLERANCE_SECONDS);
        if plausible && status == InvocationStatus::Fail {
            let s = start.unwrap_or_default();
            self.last_failure = Some(self.last_failure.map_or(s, |f| f.max(s)));
        }
        let digest = if self.settled_digests.is_empty() && self.known.is_empty() {
            None
        } else {
            Some(digest(&id))
        };
        if digest.is_some_and(|d| self.known.seen_again(d, now)) {
            // Settled, counted or part of a baseline: never counted again.
            return;
        }
        let known_before_restart = digest.is_some_and(|d| self.settled_digests.contains(&d));
        let counted = Counted {
            request_id: &id,
            status,
            start,
            end,
            plausible,
            error_code: r.error_code.as_deref(),
            error_message: r.error_message.as_deref(),
        };
        let count = match self.records.entry(Box::from(id.as_str())) {
            Entry::Vacant(v) => {
                let baseline = known_before_restart
                    || match mode {
                        Mode::Baseline => true,
                        Mode::Restored { before } => start.is_some_and(|s| s < before),
                        Mode::Counting => false,
                    };
                if !plausible && !known_before_restart {
                    self.news.implausible += 1;
                    // Each is logged once; a flood of them, once at WARN.
                    if self.news.implausible == 1 {
                        tracing::warn!(
                            request_id = %v.key(),
                            start_time = ?r.start_time,
                            end_time = ?r.end_time,
                            "async invocation record dated implausibly; counted once, kept out of the records gauge and the duration histogram"
                        );
                    } else {
                        tracing::debug!(
                            request_id = %v.key(),
                            start_time = ?r.start_time,
                            end_time = ?r.end_time,
                            "another async invocation record dated implausibly"
                        );
                    }
                }
                v.insert(Record {
                    status,
                    start,
                    end,
                    settled: status.is_terminal() || known_before_restart,
                    implausible: !plausible,
                    last_seen: now,
                });
                status.is_terminal() && !baseline
            }
            Entry::Occupied(mut o) => {
                let rec = o.get_mut();
                rec.last_seen = now;
                if rec.settled {
                    // Terminal is final; a listing that says otherwise is stale.
                    false
                } else {
                    rec.status = status;
                    rec.start = start.or(rec.start);
                    rec.end = end;
                    rec.settled = status.is_terminal();
                    rec.implausible = !plausible;
                    rec.settled
                }
            }
        };
        if count {
            self.count(&counted, now);
        }
    }

    /// Counts an invocation that reached a terminal status: the counter, the
    /// duration histogram, their exemplars, and for failures the error code
    /// and the recent-failures list.
    pub(super) fn count(&mut self, c: &Counted<'_>, now: i64) {
        let Some(i) = c.status.terminal_index() else {
            return;
        };
        // A copy only if a published report still shares the counters.
        let counters = Arc::make_mut(&mut self.counters);
        counters.terminal[i] += 1;
        // Without a usable end_time (a DISCARD often has none), the time it
        // was first seen terminal stands in: an upper bound.
        let end = match c.start {
            Some(s) => c
                .end
                .filter(|e| *e >= s && *e <= now + FUTURE_TOLERANCE_SECONDS),
            None => c.end,
        };
        let ended = end.unwrap_or(now) as f64;
        // The newest by end time, whatever order a listing came in.
        if counters.latest[i]
            .as_ref()
            .is_none_or(|e| e.timestamp <= ended)
        {
            counters.latest[i] = Some(Exemplar {
                request_id: c.request_id.to_owned(),
                value: 1.0,
                timestamp: ended,
            });
        }
        if let (true, Some(s)) = (c.plausible, c.start) {
            let seconds = end.unwrap_or(now).saturating_sub(s).max(0);
            counters
                .durations
                .observe_request(seconds as f64, c.request_id, ended);
        }
        if c.status == InvocationStatus::Success {
            return;
        }
        let code = c.error_code.unwrap_or_default();
        if c.status == InvocationStatus::Fail {
            let codes = &mut counters.failures_by_code;
            let label = if code.is_empty() {
                UNKNOWN_ERROR_CODE
            } else if codes.contains_key(code)
                || (codes.len() < self.settings.max_error_codes
                    && !crate::caps::too_long(code, MAX_ERROR_CODE_CHARS))
            {
                code
            } else {
                OTHER_ERROR_CODE
            };
            *codes.entry(label.to_owned()).or_default() += 1;
        }
        let failure = FailureRecord {
            request_id: c.request_id.to_owned(),
            status: c.status,
            error_code: crate::caps::truncate(code, MAX_ERROR_CODE_CHARS).0,
            error_message: crate::caps::truncate(
                c.error_message.unwrap_or_default(),
                crate::caps::MAX_ERROR_CHARS,
            )
            .0,
            start: c.start,
            end,
        };
        if self.settings.log_failures {
            tracing::info!(
                target: FAILURE_LOG_TARGET,
                function = self.subject.as_deref().unwrap_or_default(),
                request_id = %failure.request_id,
                status = failure.status.as_str(),
                error_code = %failure.error_code,
                error_message = %failure.error_message,
                start_time = ?failure.start,
                end_time = ?failure.end,
                duration_seconds = ?failure.duration(),
                "async invocation {}",
                if c.status == InvocationStatus::Fail { "failed" } else { "discarded" }
            );
        }
        self.recent.push_front(failure);
        self.recent.truncate(self.settings.recent_failures);
        self.news.failures += 1;
    }

    /// The oldest start a record of a listing from `begin` can plausibly
    /// have: the window's own start, or an invocation that has run for up
    /// to `max_duration` (if the API filtered on another time than the
    /// start), less the late-visibility allowance. Records dated more than
    /// [`FUTURE_TOLERANCE_SECONDS`] ahead of the API's clock are not
    /// plausible either.
    pub(super) fn oldest_plausible(&self, begin: i64, now: i64) -> i64 {
        let s = &self.settings;
        begin.min(now - s.lookback.max(s.max_duration)) - s.late_visibility - SLACK_SECONDS
    }

    /// Forgets what no listing can return any more, keeping its share of
    /// the records gauge; enforces the cap.
    pub(super) fn retain(&mut self, now: i64) {
        let late = self.settings.late_visibility + SLACK_SECONDS;
        let oldest_pending = self
            .records
            .values()
            .filter(|r| r.pending() && !r.implausible)
            .filter_map(|r| r.start)
            .min();
        let covered = self.covered_until.unwrap_or(now);
        let horizon = oldest_pending
            .unwrap_or(i64::MAX)
            .min(covered - late)
            .min(now - late)
            - RETENTION_MARGIN_SECONDS;
        self.horizon = horizon;
        if horizon > self.settled_digests_until && !self.settled_digests.is_empty() {
            self.settled_digests = HashSet::new();
        }
        let seen_recently = now - late - 2 * self.settings.interval;
        let window_start = now - self.settings.lookback;
        let (aged, known) = (&mut self.aged, &mut self.known);
        known.forget(seen_recently, horizon);
        self.records.retain(|id, r| {
            let seen = r.last_seen >= seen_recently;
            if r.pending() {
                // Implausible records are remembered only while the API
                // keeps sending them.
                return seen || !r.implausible;
            }
            let latest = match r.latest() {
                Some(t) if !r.implausible => t,
                _ => i64::MIN,
            };
            if latest >= horizon {
                // A listing may still return it.
                return true;
            }
            if let (false, Some(s), Some(i)) = (r.implausible, r.start, r.status.terminal_index()) {
                if s >= window_start {
                    aged.add(s, i);
                }
            }
            if seen {
                // Returned recently, so perhaps returned again: remembered,
                // but by digest only.
                known.add(digest(id), r.last_seen, latest);
            }
            false
        });
        self.known.tidy();
        self.aged.forget_before(window_start);
        self.enforce_cap(window_start);
        // The baseline of a busy function (an hour of records) is gone a
        // few minutes later: its table should not stay that large.
        let len = self.records.len();
        if self.records.capacity() > 4 * len.max(16) {
            self.records.shrink_to(2 * len);
        }
    }

    /// Over the cap, the settled records remembered by digest go first
    /// (least recently seen first), then the oldest settled records (into
    /// the gauge's aggregate), then the oldest pending ones (abandoned).
    pub(super) fn enforce_cap(&mut self, window_start: i64) {
        let remembered = self.records.len() + self.known.len();
        let mut over = remembered.saturating_sub(self.settings.max_records);
        if over == 0 {
            return;
        }
        // Counted (and logged once per change) as the tracked_invocations cap.
        self.news.forgotten += over as u64;
        over -= self.known.forget_oldest(over);
        if over == 0 {
            return;
        }
        let mut victims: Vec<(bool, i64, Box<str>)> = self
            .records
            .iter()
            .map(|(id, r)| (r.pending(), r.start.unwrap_or(i64::MIN), id.clone()))
            .collect();
        victims.sort_unstable();
        for (pending, start, id) in victims.into_iter().take(over) {
            let Some(r) = self.records.remove(&id) else {
                continue;
            };
            if pending {
                self.news.abandoned += 1;
            } else if let (false, Some(i)) = (r.implausible, r.status.terminal_index()) {
                if start >= window_start {
                    self.aged.add(start, i);
                }
            }
        }
    }

    /// The records gauge: records started within the lookback, by status.
    pub(super) fn window(&self, now: i64) -> AsyncWindow {
        let from = now - self.settings.lookback;
        let to = now + FUTURE_TOLERANCE_SECONDS;
        let mut by_status = [0u64; 5];
        for r in self.records.values() {
            if !r.implausible && r.start.is_some_and(|s| s >= from && s <= to) {
                by_status[r.status.index()] += 1;
            }
        }
        let aged = self.aged.count_from(from);
        for (status, count) in InvocationStatus::TERMINAL.iter().zip(aged) {
            by_status[status.index()] += count;
        }
        AsyncWindow {
            by_status,
            last_failure: self.last_failure,
        }
    }
}

/// What is counted of one invocation.
pub(super) struct Counted<'a> {
    request_id: &'a str,
    status: InvocationStatus,
    start: Option<i64>,
    end: Option<i64>,
    plausible: bool,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
}
