//! One poll of one function: the four collectors, run concurrently, folded
//! into a new [`FunctionSnapshot`].
//!
//! A failing collector keeps its last good value and reports failure; the
//! other collectors of the function, and every other function, are
//! unaffected. Failures are logged at `warn` when they start or change,
//! at `debug` while they repeat, and recovery at `info`, so a function that
//! is down for a night writes a few lines, not thousands.

use std::collections::HashMap;
use std::sync::Arc;

use crate::api::model::{CodeBody, SnapshotBody, VersionRecord};
use crate::api::{ApiError, Client, SnapshotAction, paginate};
use crate::state::{
    CodeInfo, Collected, CollectorKind, FunctionSnapshot, SNAPSHOT_STATES, SnapshotInfo,
    VersionInfo,
};
use crate::urn::FunctionUrn;

use super::async_tracker::AsyncTracker;

/// Versions per page: a function has at most 20 including `latest`.
const VERSIONS_PAGE: u32 = 20;
/// Pages of versions before giving up.
const VERSIONS_MAX_PAGES: usize = 50;

/// The poll state of one function, owned by its slot in the scheduler.
#[derive(Debug)]
pub struct FunctionPoller {
    urn: FunctionUrn,
    client: Arc<Client>,
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
    pub fn new(urn: FunctionUrn, client: Arc<Client>, lookback_seconds: i64) -> Self {
        Self {
            current: FunctionSnapshot::new(urn.clone()),
            urn,
            client,
            tracker: AsyncTracker::new(lookback_seconds),
            digest: None,
            code_changes: 0,
            logged: HashMap::new(),
        }
    }

    pub fn urn(&self) -> &FunctionUrn {
        &self.urn
    }

    /// Polls every collector once and returns the new snapshot.
    /// `now` is Unix time in seconds.
    pub async fn poll(&mut self, now: f64) -> FunctionSnapshot {
        let now_secs = now.floor() as i64;
        let (asyncs, versions, code, snapshot) = tokio::join!(
            self.tracker.poll(&self.client, &self.urn, now_secs),
            poll_versions(&self.client, &self.urn),
            self.client.code(&self.urn),
            poll_snapshot(&self.client, &self.urn),
        );
        let mut next = self.current.clone();
        next.polls += 1;
        let code = code.map(|body| self.code_info(body));
        let (urn, logged, current) = (&self.urn, &mut self.logged, &self.current);
        next.async_invocations = settle(
            urn,
            logged,
            CollectorKind::AsyncInvocations,
            &current.async_invocations,
            asyncs,
        );
        next.async_counters = self.tracker.counters().clone();
        next.versions = settle(
            urn,
            logged,
            CollectorKind::Versions,
            &current.versions,
            versions,
        );
        next.code = settle(urn, logged, CollectorKind::Code, &current.code, code);
        next.code_changes = self.code_changes;
        next.snapshot = settle(
            urn,
            logged,
            CollectorKind::Snapshot,
            &current.snapshot,
            snapshot,
        );
        if next.up() {
            next.last_success = Some(now);
        }
        tracing::debug!(
            function = %self.urn,
            up = next.up(),
            async_requests = self.tracker.last_requests(),
            "function polled"
        );
        self.current = next.clone();
        next
    }

    fn code_info(&mut self, body: CodeBody) -> CodeInfo {
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
            runtime: body.runtime.unwrap_or_default(),
            code_type: body.code_type.unwrap_or_default(),
            size_bytes: body.code_size,
            last_modified: body.last_modified,
            max_instances: body.strategy_config.and_then(|s| s.concurrency),
        }
    }
}

/// Folds one collector's result into its published state, logging
/// changes of health.
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

async fn poll_versions(client: &Client, urn: &FunctionUrn) -> Result<Vec<VersionInfo>, ApiError> {
    let paged = paginate(0, VERSIONS_MAX_PAGES, |marker| {
        client.versions(urn, marker, VERSIONS_PAGE)
    })
    .await?;
    let mut versions: Vec<VersionInfo> = paged
        .items
        .into_iter()
        .filter_map(|v: VersionRecord| {
            Some(VersionInfo {
                version: v.version.filter(|s| !s.is_empty())?,
                runtime: v.runtime.unwrap_or_default(),
                code_type: v.code_type.unwrap_or_default(),
                last_modified: v.last_modified,
            })
        })
        .collect();
    versions.sort_by(|a, b| a.version.cmp(&b.version));
    versions.dedup_by(|a, b| a.version == b.version);
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
