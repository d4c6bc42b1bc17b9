//! What each poll of one function asks the API: step 1, the listing of
//! everything recent, and step 2, the older pending invocations (by
//! request id or by terminal listings, whichever is cheaper); see the
//! parent module for why these windows count every record once.

use crate::api::model::AsyncInvocation;
use crate::api::{ApiError, AsyncQuery, Client, paginate};
use crate::state::{AsyncWindow, InvocationStatus};
use crate::urn::FunctionUrn;

use super::{AsyncTracker, MAX_PAGES, Mode, PAGE_LIMIT, PollNews, SLACK_SECONDS};

impl AsyncTracker {
    /// Polls the API and returns the window as it now stands. `now` is the
    /// API's time (Unix seconds). On error the records applied before the
    /// failure stay applied, and the next poll starts where this one could
    /// not finish.
    pub async fn poll(
        &mut self,
        client: &Client,
        urn: &FunctionUrn,
        now: i64,
    ) -> Result<AsyncWindow, ApiError> {
        self.news = PollNews::default();
        if self.settings.log_failures && self.subject.is_none() {
            self.subject = Some(urn.to_string());
        }
        let late = self.settings.late_visibility + SLACK_SECONDS;
        match self.covered_until {
            None => {
                // The baseline reaches as far back as any later listing will.
                let begin = now - self.settings.lookback.max(late);
                self.plausible_from = self.oldest_plausible(begin, now);
                for r in self.list(client, urn, None, begin, now).await? {
                    self.apply(r, now, Mode::Baseline);
                }
                self.covered_until = Some(now);
            }
            Some(covered) => {
                let mut begin = (covered - late).min(now - late);
                let mode = match self.settled_before.take() {
                    // Just restored: read the whole window once for the
                    // gauge; what is older than the saved horizon and not
                    // remembered was settled before the restart.
                    Some(before) => {
                        begin = begin.min(now - self.settings.lookback);
                        Mode::Restored { before }
                    }
                    None => Mode::Counting,
                };
                self.plausible_from = self.oldest_plausible(begin, now);
                let records = match self.list(client, urn, None, begin, now).await {
                    Ok(r) => r,
                    Err(e) => {
                        if let Mode::Restored { before } = mode {
                            self.settled_before = Some(before);
                        }
                        return Err(e);
                    }
                };
                for r in records {
                    self.apply(r, now, mode);
                }
                self.covered_until = Some(now.max(covered));
                self.settle_older(client, urn, begin, now).await?;
            }
        }
        self.retain(now);
        Ok(self.window(now))
    }

    /// Step 2: pending invocations that started before this poll's window
    /// of everything recent.
    pub(super) async fn settle_older(
        &mut self,
        client: &Client,
        urn: &FunctionUrn,
        begin: i64,
        now: i64,
    ) -> Result<(), ApiError> {
        let abandon_before = now - self.settings.max_duration;
        let mut older: Vec<(Box<str>, Option<i64>)> = Vec::new();
        let mut abandoned = Vec::new();
        for (id, r) in &self.records {
            // Implausible records are only remembered, never looked for.
            if !r.pending() || r.implausible || r.start.is_some_and(|s| s >= begin) {
                continue;
            }
            if r.start.is_some_and(|s| s < abandon_before) || r.last_seen < abandon_before {
                abandoned.push(id.clone());
            } else {
                older.push((id.clone(), r.start));
            }
        }
        if !abandoned.is_empty() {
            tracing::warn!(
                function = %urn,
                invocations = abandoned.len(),
                max_duration_seconds = self.settings.max_duration,
                "async invocations still pending after polling.async_max_duration; no longer tracked, their outcome will not be counted"
            );
            for id in abandoned {
                self.records.remove(&id);
                self.news.abandoned += 1;
            }
        }
        if older.is_empty() {
            return Ok(());
        }
        let span_begin = older
            .iter()
            .filter_map(|(_, s)| *s)
            .min()
            .unwrap_or(abandon_before)
            .max(abandon_before);
        // What the terminal listings over the span would cost, from what is
        // known of it (the records remembered there, pending ones in each).
        let known = self
            .records
            .values()
            .filter(|r| r.start.is_some_and(|s| s >= span_begin && s <= begin))
            .count();
        let listing_pages = 3 * (1 + known / PAGE_LIMIT as usize);
        self.plausible_from = self.oldest_plausible(span_begin - SLACK_SECONDS, now);
        if older.len() <= listing_pages {
            older.sort_by_key(|(_, s)| *s);
            for (id, start) in older {
                let query = AsyncQuery {
                    marker: 0,
                    limit: 10,
                    request_id: Some(&id),
                    begin: Some(start.unwrap_or(span_begin) - SLACK_SECONDS),
                    end: Some(now),
                    ..AsyncQuery::default()
                };
                self.news.requests += 1;
                let page = client.async_invocations(urn, &query).await?;
                if let Some(r) = page
                    .items
                    .into_iter()
                    .find(|r| r.request_id.as_deref() == Some(&*id))
                {
                    self.apply(r, now, Mode::Counting);
                }
            }
        } else {
            for status in InvocationStatus::TERMINAL {
                let records = self
                    .list(client, urn, Some(status), span_begin - SLACK_SECONDS, begin)
                    .await?;
                for r in records {
                    self.apply(r, now, Mode::Counting);
                }
            }
        }
        Ok(())
    }

    pub(super) async fn list(
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
        self.news.requests += paged.pages;
        if paged.truncated {
            tracing::warn!(
                function = %urn,
                pages = paged.pages,
                "async invocation listing stopped at the page cap; records beyond it are not counted"
            );
        }
        Ok(paged.items)
    }
}
