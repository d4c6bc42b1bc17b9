//! The authentication gate of one project: how the exporter avoids
//! locking its own access key out.
//!
//! The API gateway locks an access key for five minutes after five
//! consecutive authentication failures, for every client using it. So:
//!
//! - until a request of the project has been accepted, only one request at
//!   a time goes out (the "probe"); the others wait for its outcome;
//! - after a refusal of the credentials (a 401, or a 403 that does not name
//!   a missing permission: see [`ApiError::is_auth_failure`]), nothing goes
//!   out for a back-off period (doubling while failures go on, up to a
//!   maximum the client is given: 15 minutes): requests fail locally with
//!   [`ApiErrorKind::AuthBackoff`], which marks the functions down;
//! - when the period is over, one probe tries again.
//!
//! The gate logs each change of state once: the failure with the gateway's
//! error code and message at `warn`, the recovery at `info`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, MutexGuard};

use crate::clock::Clock;

use super::{ApiError, ApiErrorKind, Endpoint};
use crate::sync::MutexExt;

#[derive(Debug, Clone)]
enum State {
    /// No request accepted yet: one probe at a time.
    Unverified,
    /// The credentials work.
    Open,
    /// The last probe was refused; nothing goes out before `until`.
    Failing {
        until: SystemTime,
        backoff: Duration,
        /// The refusal, for the local errors and the logs.
        summary: String,
    },
}

/// Admission to send one request.
pub struct Admission<'a> {
    /// Held by the probe until its outcome is reported.
    probe: Option<MutexGuard<'a, ()>>,
}

impl Admission<'_> {
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }
}

/// One project's gate.
pub struct AuthGate {
    project_id: String,
    state: std::sync::Mutex<State>,
    probe: Mutex<()>,
    initial_backoff: Duration,
    max_backoff: Duration,
    clock: Arc<dyn Clock>,
}

impl AuthGate {
    /// A gate whose back-off starts at `initial_backoff` and doubles up to
    /// `max_backoff`.
    pub fn new(
        project_id: &str,
        initial_backoff: Duration,
        max_backoff: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            project_id: project_id.to_owned(),
            state: std::sync::Mutex::new(State::Unverified),
            probe: Mutex::new(()),
            initial_backoff,
            max_backoff,
            clock,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock_or_recover()
    }

    /// Waits until a request may go out, or refuses it during back-off.
    pub async fn admit(&self, endpoint: Endpoint) -> Result<Admission<'_>, ApiError> {
        if let Some(decision) = self.decide(endpoint) {
            return decision.map(|()| Admission { probe: None });
        }
        let guard = self.probe.lock().await;
        // The probe we waited for may have settled it.
        match self.decide(endpoint) {
            Some(decision) => decision.map(|()| Admission { probe: None }),
            None => Ok(Admission { probe: Some(guard) }),
        }
    }

    /// `Some(Ok)`: go; `Some(Err)`: refused; `None`: a probe is needed.
    fn decide(&self, endpoint: Endpoint) -> Option<Result<(), ApiError>> {
        match &*self.state() {
            State::Open => Some(Ok(())),
            State::Failing { until, summary, .. } if self.clock.now() < *until => Some(Err(
                ApiError::new(endpoint, ApiErrorKind::AuthBackoff(summary.clone())),
            )),
            State::Unverified | State::Failing { .. } => None,
        }
    }

    /// Whether the credentials are known to work (a request was accepted
    /// and none refused since).
    pub fn is_open(&self) -> bool {
        matches!(*self.state(), State::Open)
    }

    /// The gateway accepted a request: the credentials work.
    pub fn accepted(&self) {
        let mut state = self.state();
        if let State::Failing { .. } = *state {
            tracing::info!(project_id = %self.project_id, "authentication recovered");
        }
        *state = State::Open;
    }

    /// The gateway or IAM refused the credentials.
    pub fn refused(&self, error: &ApiError, admission: &Admission<'_>) {
        let summary = error.summary();
        let mut state = self.state();
        let backoff = match &*state {
            // A probe was refused again: wait longer.
            State::Failing { backoff, .. } if admission.is_probe() => {
                (*backoff * 2).min(self.max_backoff)
            }
            // Requests in flight when the first refusal arrived: the
            // back-off already started.
            State::Failing { .. } => return,
            State::Open | State::Unverified => self.initial_backoff,
        };
        let changed = match &*state {
            State::Failing { summary: s, .. } => *s != summary,
            _ => true,
        };
        if changed {
            tracing::warn!(
                project_id = %self.project_id,
                endpoint = %error.endpoint,
                status = error.status(),
                error_code = error.error_code(),
                request_id = error.request_id.as_deref(),
                error = %summary,
                retry_in = %humantime::format_duration(backoff),
                "authentication failed; pausing this project's requests"
            );
        } else {
            tracing::debug!(
                project_id = %self.project_id,
                error = %summary,
                retry_in = %humantime::format_duration(backoff),
                "authentication still failing"
            );
        }
        *state = State::Failing {
            until: self.clock.now() + backoff,
            backoff,
            summary,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn refusal() -> ApiError {
        ApiError::new(
            Endpoint::Code,
            ApiErrorKind::Status {
                status: 401,
                code: Some("APIGW.0301".into()),
                message: "verify aksk signature fail".into(),
            },
        )
    }

    #[tokio::test]
    async fn one_probe_then_back_off_then_probe_again() {
        let clock = Arc::new(ManualClock::new());
        let gate = AuthGate::new(
            "p",
            Duration::from_secs(60),
            Duration::from_secs(900),
            clock.clone(),
        );
        let first = gate.admit(Endpoint::Code).await.unwrap();
        assert!(first.is_probe());
        gate.refused(&refusal(), &first);
        drop(first);
        let err = gate.admit(Endpoint::Versions).await.err().unwrap();
        assert!(matches!(err.kind, ApiErrorKind::AuthBackoff(_)), "{err}");
        assert_eq!(err.endpoint, Endpoint::Versions);

        clock.advance(Duration::from_secs(61));
        let probe = gate.admit(Endpoint::Code).await.unwrap();
        assert!(probe.is_probe());
        gate.refused(&refusal(), &probe);
        drop(probe);
        // Doubled: still refused after another 61 s.
        clock.advance(Duration::from_secs(61));
        assert!(gate.admit(Endpoint::Code).await.is_err());
        clock.advance(Duration::from_secs(60));
        let probe = gate.admit(Endpoint::Code).await.unwrap();
        gate.accepted();
        drop(probe);
        let open = gate.admit(Endpoint::Code).await.unwrap();
        assert!(!open.is_probe());
    }

    #[tokio::test]
    async fn waiters_follow_the_probe_outcome() {
        let clock = Arc::new(ManualClock::new());
        let gate = Arc::new(AuthGate::new(
            "p",
            Duration::from_secs(60),
            Duration::from_secs(900),
            clock,
        ));
        let probe = gate.admit(Endpoint::Code).await.unwrap();
        let waiter = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.admit(Endpoint::Code).await.map(|a| a.is_probe()) })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        gate.accepted();
        drop(probe);
        assert!(
            !waiter.await.unwrap().unwrap(),
            "a waiter after an accepted probe goes without probing"
        );
    }
}
