//! The transport chain every API request goes through, in order: the
//! project's authentication gate, signing, retries of transient failures
//! (with back-off and a time budget), the request rate limit, the
//! per-project and global concurrency bounds, the per-request timeout, the
//! response body cap, and tolerant decoding; plus the HTTP client they run
//! on (no redirects: credentials go to the configured hosts only).
//!
//! The typed endpoints in [`super`] build a path and a query and call
//! [`Client::get`]; nothing here knows what an endpoint returns.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

use super::{
    ApiError, ApiErrorKind, BuildError, Client, Endpoint, Query, auth, concurrency, error, gate,
};
use crate::caps::{self, Cap};

/// First back-off before a retry; it doubles per attempt, with full jitter.
const RETRY_BASE: Duration = Duration::from_millis(500);
/// Longest back-off between two attempts.
const RETRY_CAP: Duration = Duration::from_secs(30);

/// The HTTP client every API client of the process is built on: keep-alive,
/// gzip, `User-Agent`, the documented `Content-Type`. It follows no
/// redirect and sends no `Referer`: credentials go to the configured hosts
/// only, so a 3xx answer is a failure like any other status (see
/// `redirect_error`).
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
    /// Sends one GET and decodes a success body as `T`.
    ///
    /// `path` must already be percent-encoded; `query` is sent in canonical
    /// form. Errors carry the endpoint, status, `error_code` and request id.
    /// A 401 saying an IAM token expired is retried once with a fresh token;
    /// no other failure is retried here. Error text is bounded (see
    /// `Client::bound`).
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

/// A transport error without the request's URL: the endpoint is named
/// beside it anyway, and the whole URL-encoded query (times, markers) made
/// log lines and the landing page unreadable.
pub(crate) fn transport_error(e: reqwest::Error) -> String {
    error_chain(&e.without_url())
}

/// An error and its causes on one line: reqwest's top-level message alone
/// ("error sending request") does not say what happened.
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
