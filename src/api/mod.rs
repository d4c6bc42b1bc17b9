//! The FunctionGraph API client: one per project, typed endpoints, typed
//! errors.
//!
//! Every request goes through [`Client::get`]: it passes the project's
//! authentication gate ([`gate`]), gets its credentials' headers (signed
//! over exactly what is sent: an already encoded path and a canonical query
//! string), waits for a slot of the global concurrency bound, enforces the
//! per-request timeout and body size cap, reports the outcome to an
//! [`ApiObserver`] and decodes the body tolerantly. The client knows nothing of Prometheus: the observer is how
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

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

pub use auth::{Credentials, PasswordTokens};
pub use concurrency::Concurrency;
pub use error::{ApiError, ApiErrorKind};
pub use paginate::{Page, Paged, paginate};
pub use query::Query;

use crate::caps::{self, Cap};
use crate::clock::Clock;
use crate::timefmt::format_query_time;
use crate::urn::{FunctionUrn, encode_component};
use model::{
    AsyncInvocation, CodeBody, FunctionRecord, QuotasBody, SnapshotBody, StatisticsBody,
    VersionRecord,
};

/// The API endpoints the exporter calls, named as they appear in the
/// `endpoint` label of its own metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    ListFunctions,
    AsyncInvocations,
    Versions,
    Code,
    SnapshotState,
    SnapshotEnable,
    /// IAM `POST /v3/auth/tokens` (password authentication).
    IamTokens,
    /// Per-function statistics (optional collector).
    Statistics,
    /// Project quotas (optional collector).
    Quotas,
}

impl Endpoint {
    pub const ALL: [Endpoint; 9] = [
        Endpoint::ListFunctions,
        Endpoint::AsyncInvocations,
        Endpoint::Versions,
        Endpoint::Code,
        Endpoint::SnapshotState,
        Endpoint::SnapshotEnable,
        Endpoint::IamTokens,
        Endpoint::Statistics,
        Endpoint::Quotas,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ListFunctions => "list_functions",
            Endpoint::AsyncInvocations => "async_invocations",
            Endpoint::Versions => "versions",
            Endpoint::Code => "code",
            Endpoint::SnapshotState => "snapshot_state",
            Endpoint::SnapshotEnable => "snapshot_enable",
            Endpoint::IamTokens => "iam_tokens",
            Endpoint::Statistics => "statistics",
            Endpoint::Quotas => "quotas",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

/// An observer that drops everything.
pub struct NoopObserver;

impl ApiObserver for NoopObserver {
    fn observe(&self, _: Endpoint, _: &str, _: Duration) {}
    fn auth_failure(&self, _: &str) {}
    fn throttled(&self, _: &str, _: Endpoint) {}
    fn permission_denied(&self, _: &str, _: Endpoint) {}
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

/// First back-off before a retry; it doubles per attempt, with full jitter.
const RETRY_BASE: Duration = Duration::from_millis(500);
/// Longest back-off between two attempts.
const RETRY_CAP: Duration = Duration::from_secs(30);

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

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.options)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("building the http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("endpoint {0:?} is not a URL with a host")]
    Endpoint(String),
}

/// The HTTP client every API client of the process is built on: keep-alive,
/// gzip, `User-Agent`, the documented `Content-Type`. It follows no
/// redirect and sends no `Referer`: credentials go to the configured hosts
/// only, so a 3xx answer is a failure like any other status (see
/// [`redirect_error`]).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, BuildError> {
    let mut headers = HeaderMap::new();
    // The API documents Content-Type as mandatory, even on GET.
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(reqwest::Client::builder()
        .user_agent(concat!(
            "functiongraph_exporter/",
            env!("CARGO_PKG_VERSION")
        ))
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .gzip(true)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()?)
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

    /// How far the API's clock is ahead of the local one, once known.
    pub fn clock_offset(&self) -> Option<f64> {
        self.skew.offset()
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

    /// Sends one GET and decodes a success body as `T`.
    ///
    /// `path` must already be percent-encoded; `query` is sent in canonical
    /// form. Errors carry the endpoint, status, `error_code` and request id.
    /// A 401 saying an IAM token expired is retried once with a fresh token;
    /// no other failure is retried here. Error text is bounded (see
    /// [`Client::bound`]).
    pub async fn get<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        path: &str,
        query: &Query,
    ) -> Result<T, ApiError> {
        self.get_unbounded(endpoint, path, query)
            .await
            .map_err(|e| self.bound(e))
    }

    /// Cuts the free text of an error (decode errors quote upstream
    /// strings, which can be megabytes) to a few hundred characters, as
    /// upstream error messages already are, and counts what was cut: the
    /// text ends up in log lines and on the landing page.
    fn bound(&self, mut e: ApiError) -> ApiError {
        let cut = match &mut e.kind {
            ApiErrorKind::Decode(m) | ApiErrorKind::Transport(m) | ApiErrorKind::Credentials(m) => {
                let short = error::shorten(m);
                let cut = was_shortened(&short);
                *m = short;
                cut
            }
            ApiErrorKind::Status { code, message, .. } => {
                was_shortened(message) || code.as_deref().is_some_and(was_shortened)
            }
            _ => false,
        };
        if cut {
            self.observer
                .capped(Cap::ErrorText, 1, &self.options.project_id);
        }
        e
    }

    async fn get_unbounded<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        path: &str,
        query: &Query,
    ) -> Result<T, ApiError> {
        let canonical = query.canonical();
        let parts = auth::RequestParts {
            method: "GET",
            host: &self.host,
            path,
            query: &canonical,
            project_id: &self.options.project_id,
        };
        let mut refreshed = false;
        let mut attempt = 0;
        let deadline = Instant::now() + self.options.retry_budget;
        loop {
            let admission = self.gate.admit(endpoint).await?;
            let authorization = match self
                .credentials
                .authorize(&parts, self.clock.as_ref(), endpoint)
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    self.settle_auth(&e, &admission);
                    return Err(e);
                }
            };
            let result = self
                .send(endpoint, path, &canonical, authorization.headers)
                .await;
            match &result {
                Err(e) if e.is_token_expiry() && !refreshed => {
                    self.observer.auth_failure(&self.options.project_id);
                    if self
                        .credentials
                        .token_expired(authorization.token.as_ref())
                        .await
                    {
                        tracing::debug!(project_id = %self.options.project_id, "IAM token expired early; fetching a new one");
                        refreshed = true;
                        continue;
                    }
                    self.settle_auth(e, &admission);
                }
                Err(e) => {
                    self.settle_auth(e, &admission);
                    if let Some(delay) = self.retry_delay(e, attempt, deadline) {
                        drop(admission);
                        attempt += 1;
                        tracing::debug!(
                            project_id = %self.options.project_id,
                            %endpoint,
                            attempt,
                            delay = ?delay,
                            error = %e,
                            "retrying after a transient failure"
                        );
                        // Sleeps holding no slot and no rate-limit token; the
                        // next attempt is signed afresh.
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
                Ok(_) => self.gate.accepted(),
            }
            drop(admission);
            let (request_id, body) = result?;
            return decode(endpoint, request_id, &body);
        }
    }

    /// The pause before another attempt, or `None` when the failure is not
    /// transient, the retries are used up, or the next attempt could not
    /// finish within the budget. A server's `Retry-After` is honoured.
    fn retry_delay(&self, e: &ApiError, attempt: u32, deadline: Instant) -> Option<Duration> {
        if attempt >= self.options.retries || !e.is_retryable() {
            return None;
        }
        let delay = e.retry_after.unwrap_or_else(|| {
            let ceiling = RETRY_BASE
                .saturating_mul(1 << attempt.min(16))
                .min(RETRY_CAP);
            ceiling.mul_f64(rand::random::<f64>())
        });
        (Instant::now() + delay + self.options.timeout <= deadline).then_some(delay)
    }

    /// Tells the gate what a failed request says about the credentials.
    fn settle_auth(&self, e: &ApiError, admission: &gate::Admission<'_>) {
        if e.is_auth_failure() {
            if e.endpoint != Endpoint::IamTokens || e.status().is_some() {
                self.observer.auth_failure(&self.options.project_id);
            }
            self.gate.refused(e, admission);
        } else if e.status().is_some() {
            if e.is_permission_denied() {
                self.observer
                    .permission_denied(&self.options.project_id, e.endpoint);
            }
            // Any other answer came through the gateway: the credentials work.
            self.gate.accepted();
        }
    }

    /// One exchange under the concurrency bound and the timeout, reported
    /// to the observer.
    async fn send(
        &self,
        endpoint: Endpoint,
        path: &str,
        canonical: &str,
        headers: Vec<(reqwest::header::HeaderName, HeaderValue)>,
    ) -> Result<(Option<String>, Bytes), ApiError> {
        // The rate limit first: waiting for a token holds no slot.
        self.limiter.until_ready().await;
        let cancelled = |_| ApiError::new(endpoint, ApiErrorKind::Cancelled);
        let project_permit = self.project_permits.acquire().await.map_err(cancelled)?;
        let permit = self.permits.acquire().await.map_err(cancelled)?;
        let started = Instant::now();
        let exchanged = self
            .permits
            .run(
                self.options.timeout,
                self.exchange(endpoint, path, canonical, headers),
            )
            .await;
        drop(permit);
        drop(project_permit);
        let elapsed = started.elapsed();
        let exchanged = exchanged.unwrap_or_else(|cut| {
            Err(Exchange {
                status: None,
                request_id: None,
                kind: match cut {
                    concurrency::Cut::Timeout => ApiErrorKind::Timeout(self.options.timeout),
                    concurrency::Cut::Abandoned { after, slow } => {
                        ApiErrorKind::Abandoned { after, slow }
                    }
                },
                retry_after: None,
            })
        });
        match exchanged {
            Ok((status, request_id, body)) => {
                self.observer.observe(endpoint, status.as_str(), elapsed);
                Ok((request_id, body))
            }
            Err(e) => {
                if e.status == Some(reqwest::StatusCode::TOO_MANY_REQUESTS) {
                    self.observer.throttled(&self.options.project_id, endpoint);
                }
                let outcome = match (&e.status, &e.kind) {
                    (Some(s), _) => s.as_str().to_owned(),
                    (None, ApiErrorKind::Timeout(_) | ApiErrorKind::Abandoned { .. }) => {
                        "timeout".to_owned()
                    }
                    (None, _) => "error".to_owned(),
                };
                self.observer.observe(endpoint, &outcome, elapsed);
                Err(ApiError {
                    endpoint,
                    request_id: e.request_id,
                    kind: e.kind,
                    retry_after: e.retry_after,
                })
            }
        }
    }

    async fn exchange(
        &self,
        endpoint: Endpoint,
        path: &str,
        canonical: &str,
        headers: Vec<(reqwest::header::HeaderName, HeaderValue)>,
    ) -> Result<(reqwest::StatusCode, Option<String>, Bytes), Exchange> {
        let url = if canonical.is_empty() {
            format!("{}{path}", self.options.endpoint)
        } else {
            format!("{}{path}?{canonical}", self.options.endpoint)
        };
        // X-Project-Id is sent (and signed) as the official SDKs do.
        let mut request = self
            .http
            .get(&url)
            .header("x-project-id", &self.options.project_id);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let sent = self.clock.unix();
        let mut response = request.send().await.map_err(|e| Exchange {
            status: None,
            request_id: None,
            kind: ApiErrorKind::Transport(transport_error(e)),
            retry_after: None,
        })?;
        let status = response.status();
        if let Some(date) = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
        {
            if let Some(offset) = self.skew.observe(sent, self.clock.unix(), date) {
                self.observer.clock_offset(&self.options.project_id, offset);
            }
        }
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(error::shorten);
        let retry_after = retry_after(response.headers());
        let fail = |kind| Exchange {
            status: Some(status),
            request_id: request_id.clone(),
            kind,
            retry_after,
        };
        if status.is_redirection() {
            let url = reqwest::Url::parse(&url).ok();
            return Err(fail(redirect_error(
                status,
                response.headers(),
                url.as_ref(),
            )));
        }
        let limit = self.options.max_body_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(fail(ApiErrorKind::TooLarge { limit }));
        }
        let mut body = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(fail(ApiErrorKind::TooLarge { limit }));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(fail(ApiErrorKind::Transport(transport_error(e)))),
            }
        }
        if !status.is_success() {
            let (code, message) = error::parse_error_body(&body);
            return Err(fail(ApiErrorKind::Status {
                status: status.as_u16(),
                code,
                message,
            }));
        }
        tracing::trace!(%endpoint, %url, status = status.as_u16(), bytes = body.len(), "api response");
        Ok((status, request_id, body.freeze()))
    }
}

/// The failure of a 3xx answer: redirects are never followed, since the
/// request carries credentials meant for the configured host only. The
/// message names the status and the host the answer pointed to (from
/// `Location`, resolved against the request URL; shortened and cleaned, as
/// it comes from upstream).
pub(crate) fn redirect_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    request: Option<&reqwest::Url>,
) -> ApiErrorKind {
    let location = headers
        .get(reqwest::header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let target = location.as_deref().map(|l| {
        let resolved = match request {
            Some(base) => base.join(l).ok(),
            None => reqwest::Url::parse(l).ok(),
        };
        match resolved {
            Some(u) => {
                let host = u.host_str().unwrap_or("?");
                match u.port() {
                    Some(p) => format!("{}://{host}:{p}", u.scheme()),
                    None => format!("{}://{host}", u.scheme()),
                }
            }
            None => format!("an unparsable location {l:?}"),
        }
    });
    let message = match target {
        Some(t) => format!(
            "redirect to {} refused: credentials are only sent to the configured endpoint",
            error::shorten(&t)
        ),
        None => "redirect without a Location refused: credentials are only sent to the configured endpoint".to_owned(),
    };
    ApiErrorKind::Status {
        status: status.as_u16(),
        code: None,
        message,
    }
}

/// A failed exchange before it is attributed to an endpoint.
struct Exchange {
    status: Option<reqwest::StatusCode>,
    request_id: Option<String>,
    kind: ApiErrorKind,
    retry_after: Option<Duration>,
}

/// Whether [`error::shorten`] cut `s` (it ends in an ellipsis after the
/// maximum length; an upstream text of exactly that shape counts too).
fn was_shortened(s: &str) -> bool {
    s.ends_with('…') && s.chars().count() == caps::MAX_ERROR_CHARS + 1
}

/// `Retry-After`: delta-seconds or an HTTP date. Capped at an hour.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(v)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(d.min(Duration::from_secs(3600)))
}

fn decode<T: DeserializeOwned>(
    endpoint: Endpoint,
    request_id: Option<String>,
    body: &[u8],
) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| ApiError {
        endpoint,
        request_id,
        kind: ApiErrorKind::Decode(e.to_string()),
        retry_after: None,
    })
}

/// An error and its causes on one line: reqwest's top-level message alone
/// ("error sending request") does not say what happened.
/// A transport error without the request's URL: the endpoint is named
/// beside it anyway, and the whole URL-encoded query (times, markers) made
/// log lines and the landing page unreadable.
pub(crate) fn transport_error(e: reqwest::Error) -> String {
    error_chain(&e.without_url())
}

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
