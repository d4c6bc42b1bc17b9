//! The FunctionGraph API client: one per project, typed endpoints, typed
//! errors.
//!
//! This file owns the client, its options and the typed endpoints (each
//! builds a path and a query, and bounds what the page it gets back may
//! hold). Every request goes through [`Client::get`] (`transport`): it
//! passes the project's authentication gate ([`gate`]), gets its
//! credentials' headers (signed over exactly what is sent: an already
//! encoded path and a canonical query string), waits for a slot of the
//! global concurrency bound, enforces the per-request timeout and body size
//! cap, reports the outcome to an [`ApiObserver`] and decodes the body
//! tolerantly. The client knows nothing of Prometheus: the observer is how
//! request counts and durations leave it.

pub mod auth;
pub mod concurrency;
pub mod error;
pub mod gate;
pub mod model;
pub mod paginate;
pub mod query;
pub mod sign;
pub mod skew;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

pub use auth::{Credentials, PasswordTokens};
pub use concurrency::Concurrency;
pub use error::{ApiError, ApiErrorKind};
pub use paginate::{Page, Paged, paginate};
pub use query::Query;
pub use transport::http_client;
pub(crate) use transport::{redirect_error, transport_error};

use crate::caps::{self, Cap};
use crate::clock::Clock;
use crate::named::named_enum;
use crate::secret::debug_only;
use crate::timefmt::format_query_time;
use crate::urn::{FunctionUrn, encode_component};
use model::{
    AsyncInvocation, CodeBody, FunctionRecord, QuotasBody, SnapshotBody, StatisticsBody,
    VersionRecord,
};

named_enum! {
    /// The API endpoints the exporter calls, named as they appear in the
    /// `endpoint` label of its own metrics.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Endpoint {
        ListFunctions => "list_functions",
        AsyncInvocations => "async_invocations",
        Versions => "versions",
        Code => "code",
        SnapshotState => "snapshot_state",
        SnapshotEnable => "snapshot_enable",
        /// IAM `POST /v3/auth/tokens` (password authentication).
        IamTokens => "iam_tokens",
        /// Per-function statistics (optional collector).
        Statistics => "statistics",
        /// Project quotas (optional collector).
        Quotas => "quotas",
    }
}

/// The two actions of the snapshot endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotAction {
    /// Snapshot creation status.
    State,
    /// Whether snapshot-based cold start is switched on.
    EnableSnapshot,
}

impl SnapshotAction {
    fn path(self) -> &'static str {
        match self {
            SnapshotAction::State => "state",
            SnapshotAction::EnableSnapshot => "enableSnapshot",
        }
    }

    fn endpoint(self) -> Endpoint {
        match self {
            SnapshotAction::State => Endpoint::SnapshotState,
            SnapshotAction::EnableSnapshot => Endpoint::SnapshotEnable,
        }
    }
}

/// Receives the outcome of every request: how the exporter counts its API
/// cost without the client knowing about metrics.
pub trait ApiObserver: Send + Sync + 'static {
    /// `outcome` is the HTTP status code as text, or `timeout` / `error`
    /// when no status arrived.
    fn observe(&self, endpoint: Endpoint, outcome: &str, elapsed: Duration);
    /// The gateway or IAM refused a project's credentials (401 or 403).
    fn auth_failure(&self, project_id: &str);
    /// The gateway answered 429 (throttled).
    fn throttled(&self, project_id: &str, endpoint: Endpoint);
    /// A 403 named a missing permission for this endpoint (the credentials
    /// themselves were accepted).
    fn permission_denied(&self, project_id: &str, endpoint: Endpoint);
    /// `n` upstream items were dropped or truncated by `cap`; `subject`
    /// says where (a function URN, a project id).
    fn capped(&self, cap: Cap, n: u64, subject: &str) {
        let _ = (cap, n, subject);
    }
    /// A new estimate of how far the API's clock is ahead of the local one
    /// (negative: behind), from its responses' `Date` headers.
    fn clock_offset(&self, _project_id: &str, _seconds: f64) {}
}

/// How to reach one project's API.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `scheme://host[:port]`, without a trailing slash.
    pub endpoint: String,
    pub project_id: String,
    /// Per request, from the first byte sent to the last byte read.
    pub timeout: Duration,
    /// Responses larger than this are refused.
    pub max_body_bytes: usize,
    /// First pause after an authentication failure.
    pub auth_backoff: Duration,
    /// Longest pause after authentication failures (the first doubles
    /// while they go on, up to this).
    pub max_auth_backoff: Duration,
    /// Token bucket: requests per second (and burst) for this project.
    pub max_requests_per_second: u32,
    /// Requests of this project in flight at once (under the global bound),
    /// so that one slow project cannot take every slot.
    pub max_in_flight: usize,
    /// Retries of a request that failed with 5xx, 429, a timeout or a
    /// transport error.
    pub retries: u32,
    /// Time a request and its retries may take in all (a poll must not run
    /// into the next one).
    pub retry_budget: Duration,
}

/// Parameters of one async-invocations page request.
#[derive(Debug, Clone, Default)]
pub struct AsyncQuery<'a> {
    pub marker: u64,
    pub limit: u32,
    pub status: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// Unix seconds, sent as `YYYY-MM-DDTHH:MM:SS` UTC.
    pub begin: Option<i64>,
    pub end: Option<i64>,
}

/// A client for one project.
pub struct Client {
    http: reqwest::Client,
    options: ClientOptions,
    /// `host[:port]` of the endpoint, as reqwest sends it in `Host` (and as
    /// the signature must cover it).
    host: String,
    /// Shared with the client a reload replaces when the credentials did
    /// not change, with the gate and the limiter (see [`Client::inherit`]).
    credentials: Arc<Credentials>,
    gate: Arc<gate::AuthGate>,
    clock: Arc<dyn Clock>,
    /// The project's request rate limit.
    limiter: Arc<governor::DefaultDirectRateLimiter>,
    /// The project's share of the concurrency bound.
    project_permits: Semaphore,
    /// The global bound on API requests in flight, shared by all clients.
    permits: Arc<Concurrency>,
    observer: Arc<dyn ApiObserver>,
    /// The API's clock, from its `Date` headers.
    skew: skew::ClockSkew,
}

debug_only!(Client: options, credentials);

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("building the http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("endpoint {0:?} is not a URL with a host")]
    Endpoint(String),
}

impl Client {
    pub fn new(
        options: ClientOptions,
        http: reqwest::Client,
        credentials: Credentials,
        clock: Arc<dyn Clock>,
        permits: Arc<Concurrency>,
        observer: Arc<dyn ApiObserver>,
    ) -> Result<Self, BuildError> {
        let url = reqwest::Url::parse(&options.endpoint)
            .map_err(|_| BuildError::Endpoint(options.endpoint.clone()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(BuildError::Endpoint(options.endpoint.clone())),
        };
        credentials.warn_if_world_readable();
        let rate = std::num::NonZeroU32::new(options.max_requests_per_second.max(1))
            .unwrap_or(std::num::NonZeroU32::MIN);
        Ok(Self {
            limiter: Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(
                rate,
            ))),
            project_permits: Semaphore::new(options.max_in_flight.max(1)),
            gate: Arc::new(gate::AuthGate::new(
                &options.project_id,
                options.auth_backoff,
                options.max_auth_backoff,
                Arc::clone(&clock),
            )),
            http,
            host,
            options,
            credentials: Arc::new(credentials),
            clock,
            permits,
            observer,
            skew: skew::ClockSkew::new(),
        })
    }

    /// Takes over the state `previous` (the same project's client before a
    /// reload) built up about its credentials: the authentication gate with
    /// its back-off, and the credentials themselves with their cached IAM
    /// token; and its request rate limiter when `limiter` (the rate did not
    /// change). Only for a project whose endpoint and credentials did not
    /// change: a reload must not reset a back-off that protects the access
    /// key from the gateway's lock-out.
    pub fn inherit(mut self, previous: &Client, limiter: bool) -> Self {
        self.gate = Arc::clone(&previous.gate);
        self.credentials = Arc::clone(&previous.credentials);
        if limiter {
            self.limiter = Arc::clone(&previous.limiter);
        }
        self
    }

    pub fn project_id(&self) -> &str {
        &self.options.project_id
    }

    /// Whether the project's credentials are known to work. Until they are,
    /// requests go out one at a time (see [`gate`]).
    pub fn credentials_verified(&self) -> bool {
        self.gate.is_open()
    }

    /// Checks the credentials with the cheapest project-level request (one
    /// function listed), so that the one-at-a-time probing of unverified
    /// credentials is not done by a function's request, which may hang.
    /// A permission denial counts as verified: the credentials were
    /// accepted.
    pub async fn verify_credentials(&self) -> Result<(), ApiError> {
        match self.functions(0, 1, None, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permission_denied() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reports `n` upstream items dropped or truncated by `cap` (the poller
    /// reports its caps through the client's observer).
    pub fn capped(&self, cap: Cap, n: u64, subject: &str) {
        self.observer.capped(cap, n, subject);
    }

    /// The API's current time, Unix seconds: the local clock corrected by
    /// the offset the API's responses showed (uncorrected before the first
    /// response).
    pub fn api_now(&self) -> f64 {
        self.clock.unix() + self.skew.offset().unwrap_or(0.0)
    }

    fn function_path(&self, urn: &FunctionUrn, rest: &str) -> String {
        format!(
            "/v2/{}/fgs/functions/{}/{rest}",
            encode_component(&self.options.project_id),
            urn.path_segment()
        )
    }

    /// `GET .../async-invocations`: one page.
    pub async fn async_invocations(
        &self,
        urn: &FunctionUrn,
        q: &AsyncQuery<'_>,
    ) -> Result<Page<AsyncInvocation>, ApiError> {
        let query = Query::new()
            .with("marker", q.marker.to_string())
            .with("limit", q.limit.to_string())
            .with_opt("status", q.status)
            .with_opt("request_id", q.request_id)
            .with_opt("query_begin_time", q.begin.map(format_query_time))
            .with_opt("query_end_time", q.end.map(format_query_time));
        let path = self.function_path(urn, "async-invocations");
        let body: model::AsyncInvocationsBody =
            self.get(Endpoint::AsyncInvocations, &path, &query).await?;
        let mut page: Page<AsyncInvocation> = body.into();
        let subject = urn.to_string();
        self.page_size(&mut page, q.limit, &subject);
        // The API documents request ids of at most 64 characters; a longer
        // one is not a record the exporter keeps (a hostile or broken
        // upstream could otherwise fill memory with them). Nor is a record
        // whose status or times are paragraphs.
        let mut long_ids = 0;
        let mut long_fields = 0;
        page.items.retain(|r| {
            if r.request_id
                .as_deref()
                .is_some_and(|id| caps::too_long(id, caps::MAX_REQUEST_ID_CHARS))
            {
                long_ids += 1;
                return false;
            }
            let long = [&r.status, &r.start_time, &r.end_time]
                .into_iter()
                .flatten()
                .any(|f| caps::too_long(f, caps::MAX_RECORD_FIELD_CHARS));
            long_fields += u64::from(long);
            !long
        });
        self.observer
            .capped(Cap::RequestIdLength, long_ids, &subject);
        self.observer
            .capped(Cap::RecordFieldLength, long_fields, &subject);
        Ok(page)
    }

    /// Drops the items of a page beyond the `asked` page size: a server
    /// that sends more than it was asked for cannot make a listing hold
    /// more than pages × page size items.
    fn page_size<T>(&self, page: &mut Page<T>, asked: u32, subject: &str) {
        let asked = asked.max(1) as usize;
        if page.items.len() > asked {
            let extra = page.items.len() - asked;
            page.items.truncate(asked);
            self.observer.capped(Cap::PageSize, extra as u64, subject);
        }
    }

    /// `GET .../versions`: one page.
    pub async fn versions(
        &self,
        urn: &FunctionUrn,
        marker: u64,
        maxitems: u32,
    ) -> Result<Page<VersionRecord>, ApiError> {
        let query = Query::new()
            .with("marker", marker.to_string())
            .with("maxitems", maxitems.to_string());
        let path = self.function_path(urn, "versions");
        let body: model::VersionsBody = self.get(Endpoint::Versions, &path, &query).await?;
        let mut page: Page<VersionRecord> = body.into();
        let subject = urn.to_string();
        self.page_size(&mut page, maxitems, &subject);
        // Bounded before the pages add up; the poller applies the configured
        // (smaller) label cap and counts what it cuts.
        let before = page.items.len();
        page.items.retain(|v| {
            v.version
                .as_deref()
                .is_none_or(|n| !caps::too_long(n, caps::MAX_LABEL_CHARS_LIMIT))
        });
        for v in &mut page.items {
            for field in [&mut v.runtime, &mut v.code_type] {
                if let Some(f) = field
                    .as_mut()
                    .filter(|f| caps::too_long(f, caps::MAX_LABEL_CHARS_LIMIT))
                {
                    *f = caps::truncate(f, caps::MAX_LABEL_CHARS_LIMIT).0;
                }
            }
        }
        self.observer.capped(
            Cap::LabelLength,
            (before - page.items.len()) as u64,
            &subject,
        );
        Ok(page)
    }

    /// `GET .../code`.
    pub async fn code(&self, urn: &FunctionUrn) -> Result<CodeBody, ApiError> {
        let path = self.function_path(urn, "code");
        self.get(Endpoint::Code, &path, &Query::new()).await
    }

    /// `GET .../snapshots/{action}`.
    pub async fn snapshot(
        &self,
        urn: &FunctionUrn,
        action: SnapshotAction,
    ) -> Result<SnapshotBody, ApiError> {
        let path = self.function_path(urn, &format!("snapshots/{}", action.path()));
        self.get(action.endpoint(), &path, &Query::new()).await
    }

    /// `GET .../statistics/{period}` (period in minutes).
    pub async fn statistics(
        &self,
        urn: &FunctionUrn,
        period_minutes: u32,
    ) -> Result<StatisticsBody, ApiError> {
        let path = self.function_path(urn, &format!("statistics/{period_minutes}"));
        self.get(Endpoint::Statistics, &path, &Query::new()).await
    }

    /// `GET /v2/{project_id}/fgs/quotas`.
    pub async fn quotas(&self) -> Result<QuotasBody, ApiError> {
        let path = format!(
            "/v2/{}/fgs/quotas",
            encode_component(&self.options.project_id)
        );
        self.get(Endpoint::Quotas, &path, &Query::new()).await
    }

    /// `GET /v2/{project_id}/fgs/functions`: one page, optionally filtered
    /// by package and by name (the API matches names by substring).
    pub async fn functions(
        &self,
        marker: u64,
        maxitems: u32,
        package: Option<&str>,
        name: Option<&str>,
    ) -> Result<Page<FunctionRecord>, ApiError> {
        let query = Query::new()
            .with("marker", marker.to_string())
            .with("maxitems", maxitems.to_string())
            .with_opt("package_name", package)
            .with_opt("func_name", name);
        let path = format!(
            "/v2/{}/fgs/functions",
            encode_component(&self.options.project_id)
        );
        let body: model::FunctionsBody = self.get(Endpoint::ListFunctions, &path, &query).await?;
        let mut page: Page<FunctionRecord> = body.into();
        let subject = self.options.project_id.clone();
        self.page_size(&mut page, maxitems, &subject);
        // Names that could never be labels are dropped before the pages
        // add up (discovery applies the configured cap to the rest).
        let before = page.items.len();
        page.items.retain(|f| {
            let urn_limit = 4 * caps::MAX_LABEL_CHARS_LIMIT;
            f.func_urn
                .as_deref()
                .is_none_or(|u| !caps::too_long(u, urn_limit))
                && [&f.func_name, &f.package]
                    .into_iter()
                    .flatten()
                    .all(|n| !caps::too_long(n, caps::MAX_LABEL_CHARS_LIMIT))
        });
        self.observer.capped(
            Cap::LabelLength,
            (before - page.items.len()) as u64,
            &subject,
        );
        Ok(page)
    }
}
