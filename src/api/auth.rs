//! Credentials: the headers that prove who sends a request.
//!
//! - AK/SK: every request is signed (`SDK-HMAC-SHA256`, see [`super::sign`])
//!   with a fresh `X-Sdk-Date`; temporary credentials add a signed
//!   `X-Security-Token`.
//! - Password: a project-scoped IAM token from `POST /v3/auth/tokens`,
//!   cached, refreshed ahead of its expiry, and once more when the gateway
//!   says it expired. One token request at a time per project, however many
//!   requests wait for it.
//! - Token: a static IAM token.
//!
//! Secrets come from [`SecretCell`]s, so a rotated file is picked up at the
//! next request. Every header carrying a secret is marked sensitive, and no
//! secret is ever formatted into a log line or an error.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::clock::Clock;
use crate::secret::{Secret, SecretCell, SecretError};
use crate::timefmt::parse_api_time;

use super::error::parse_error_body;
use super::sign::{SigningInput, sdk_date, sign};
use super::{ApiError, ApiErrorKind, ApiObserver, Endpoint};

/// A token is refreshed this long before it expires, or halfway through
/// its life if that is sooner.
const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// A new token is never asked for sooner than this after the last one,
/// whatever expiry IAM states (an expiry in the past, from a wrong clock,
/// would otherwise mean a token request per API request).
pub const MIN_TOKEN_REFRESH: Duration = Duration::from_secs(60);
/// The largest IAM answer body read (`nocatalog=true` keeps it small).
const MAX_IAM_BODY: usize = 1024 * 1024;

/// What is about to be sent, as the signature needs it.
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// `host[:port]` as sent in `Host`.
    pub host: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    /// The query as sent, canonical, without `?`.
    pub query: &'a str,
    pub project_id: &'a str,
}

/// Headers for one request.
pub struct Authorization {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The IAM token used, so that a "token expired" answer can invalidate
    /// exactly that one.
    pub token: Option<Secret>,
}

/// How requests of one project authenticate.
pub enum Credentials {
    /// Every request signed with an access key pair.
    AkSk {
        access_key: SecretCell,
        secret_key: SecretCell,
        security_token: Option<SecretCell>,
    },
    /// IAM tokens obtained with a password.
    Password(PasswordTokens),
    /// A static IAM token.
    Token(SecretCell),
}

impl Credentials {
    /// The authentication headers for a request. `clock` dates signatures.
    pub async fn authorize(
        &self,
        parts: &RequestParts<'_>,
        clock: &dyn Clock,
        endpoint: Endpoint,
    ) -> Result<Authorization, ApiError> {
        let secret_err =
            |e: SecretError| ApiError::new(endpoint, ApiErrorKind::Credentials(e.to_string()));
        match self {
            Credentials::AkSk {
                access_key,
                secret_key,
                security_token,
            } => {
                let date = sdk_date(clock.unix().floor() as i64);
                let token = match security_token {
                    Some(t) => Some(t.get().map_err(secret_err)?),
                    None => None,
                };
                let mut signed_headers = vec![
                    ("content-type", "application/json"),
                    ("x-project-id", parts.project_id),
                ];
                if let Some(t) = &token {
                    signed_headers.push(("x-security-token", t.expose()));
                }
                let signed = sign(
                    access_key.get().map_err(secret_err)?.expose(),
                    secret_key.get().map_err(secret_err)?.expose(),
                    &SigningInput {
                        method: parts.method,
                        host: parts.host,
                        path: parts.path,
                        canonical_query: parts.query,
                        headers: &signed_headers,
                        body: b"",
                        sdk_date: &date,
                    },
                );
                let mut headers = vec![
                    (
                        HeaderName::from_static("x-sdk-date"),
                        header(&date, endpoint)?,
                    ),
                    (
                        HeaderName::from_static("authorization"),
                        sensitive(&signed.authorization, endpoint)?,
                    ),
                ];
                if let Some(t) = &token {
                    headers.push((
                        HeaderName::from_static("x-security-token"),
                        sensitive(t.expose(), endpoint)?,
                    ));
                }
                Ok(Authorization {
                    headers,
                    token: None,
                })
            }
            Credentials::Password(tokens) => {
                let token = tokens.token().await?;
                Ok(Authorization {
                    headers: vec![(
                        HeaderName::from_static("x-auth-token"),
                        sensitive(token.expose(), endpoint)?,
                    )],
                    token: Some(token),
                })
            }
            Credentials::Token(cell) => {
                let token = cell.get().map_err(secret_err)?;
                Ok(Authorization {
                    headers: vec![(
                        HeaderName::from_static("x-auth-token"),
                        sensitive(token.expose(), endpoint)?,
                    )],
                    token: None,
                })
            }
        }
    }

    /// After a 401 saying the token expired: true if a fresh token can be
    /// fetched (password authentication), which the next
    /// [`Credentials::authorize`] then does, once for all waiting requests.
    pub async fn token_expired(&self, used: Option<&Secret>) -> bool {
        match (self, used) {
            (Credentials::Password(tokens), Some(used)) => {
                tokens.invalidate(used).await;
                true
            }
            _ => false,
        }
    }

    /// Warns about secret files other users can read.
    pub fn warn_if_world_readable(&self) {
        let cells: Vec<&SecretCell> = match self {
            Credentials::AkSk {
                access_key: ak,
                secret_key: sk,
                security_token: token,
            } => [ak, sk].into_iter().chain(token).collect(),
            Credentials::Password(p) => vec![&p.password],
            Credentials::Token(t) => vec![t],
        };
        for cell in cells {
            cell.warn_if_world_readable();
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::AkSk { .. } => f.write_str("AkSk(<redacted>)"),
            Credentials::Password(p) => write!(f, "Password(user {}, <redacted>)", p.user_name),
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

fn header(value: &str, endpoint: Endpoint) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(value).map_err(|_| {
        ApiError::new(
            endpoint,
            ApiErrorKind::Credentials(
                "a credential contains characters not allowed in an HTTP header".into(),
            ),
        )
    })
}

fn sensitive(value: &str, endpoint: Endpoint) -> Result<HeaderValue, ApiError> {
    let mut v = header(value, endpoint)?;
    v.set_sensitive(true);
    Ok(v)
}

/// A cached IAM token.
struct CachedToken {
    token: Secret,
    /// When to fetch a new one (local clock).
    refresh_at: SystemTime,
    /// When the gateway stops accepting it (local clock).
    expires_at: SystemTime,
}

/// Reads a response body of at most [`MAX_IAM_BODY`] bytes.
async fn read_capped(response: &mut reqwest::Response) -> Result<Vec<u8>, ApiErrorKind> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_IAM_BODY as u64)
    {
        return Err(ApiErrorKind::TooLarge {
            limit: MAX_IAM_BODY,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ApiErrorKind::Transport(super::transport_error(e)))?
    {
        if body.len() + chunk.len() > MAX_IAM_BODY {
            return Err(ApiErrorKind::TooLarge {
                limit: MAX_IAM_BODY,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Project-scoped IAM tokens for a user, fetched with a password.
pub struct PasswordTokens {
    pub user_name: String,
    pub domain_name: String,
    pub password: SecretCell,
    /// `scheme://host[:port]`.
    pub iam_endpoint: String,
    pub project_id: String,
    pub http: reqwest::Client,
    pub timeout: Duration,
    pub clock: Arc<dyn Clock>,
    pub observer: Arc<dyn ApiObserver>,
    cache: Mutex<Option<CachedToken>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenBody {
    token: TokenFields,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenFields {
    expires_at: Option<String>,
    issued_at: Option<String>,
}

impl PasswordTokens {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        user_name: String,
        domain_name: String,
        password: SecretCell,
        iam_endpoint: String,
        project_id: String,
        http: reqwest::Client,
        timeout: Duration,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn ApiObserver>,
    ) -> Self {
        Self {
            user_name,
            domain_name,
            password,
            iam_endpoint,
            project_id,
            http,
            timeout,
            clock,
            observer,
            cache: Mutex::new(None),
        }
    }

    /// A valid token: the cached one, or a fresh one when it is due for
    /// refresh. The cache lock makes concurrent callers share one fetch.
    async fn token(&self) -> Result<Secret, ApiError> {
        let mut cache = self.cache.lock().await;
        let now = self.clock.now();
        if let Some(c) = cache.as_ref() {
            if now < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        match self.fetch().await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                *cache = Some(fresh);
                Ok(token)
            }
            // A refresh ahead of time failed, but the old token is still
            // good: use it, and try again at the next request.
            Err(e) => match cache.as_ref() {
                Some(c) if now < c.expires_at && !e.is_auth_failure() => {
                    tracing::warn!(project_id = %self.project_id, error = %e, "refreshing the IAM token failed; using the current one until it expires");
                    Ok(c.token.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Drops the cached token if it is the one that was refused.
    async fn invalidate(&self, used: &Secret) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.token == *used) {
            *cache = None;
        }
    }

    async fn fetch(&self) -> Result<CachedToken, ApiError> {
        let endpoint = Endpoint::IamTokens;
        let password = self
            .password
            .get()
            .map_err(|e| ApiError::new(endpoint, ApiErrorKind::Credentials(e.to_string())))?;
        let body = serde_json::json!({
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {
                        "name": self.user_name,
                        "password": password.expose(),
                        "domain": {"name": self.domain_name},
                    }},
                },
                "scope": {"project": {"id": self.project_id}},
            }
        });
        let url = format!("{}/v3/auth/tokens?nocatalog=true", self.iam_endpoint);
        let started = Instant::now();
        let sent = tokio::time::timeout(
            self.timeout,
            self.http
                .post(&url)
                .header("content-type", "application/json;charset=utf8")
                .body(body.to_string())
                .send(),
        )
        .await;
        let mut response = match sent {
            Err(_) => {
                self.observer
                    .observe(endpoint, "timeout", started.elapsed());
                return Err(ApiError::new(endpoint, ApiErrorKind::Timeout(self.timeout)));
            }
            Ok(Err(e)) => {
                self.observer.observe(endpoint, "error", started.elapsed());
                return Err(ApiError::new(
                    endpoint,
                    ApiErrorKind::Transport(super::transport_error(e)),
                ));
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(super::error::shorten);
        let subject = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(Secret::new);
        let fail = |kind| ApiError {
            endpoint,
            request_id: request_id.clone(),
            kind,
            retry_after: None,
        };
        if status.is_redirection() {
            // Not followed: the body carried the password.
            self.observer
                .observe(endpoint, status.as_str(), started.elapsed());
            let base = reqwest::Url::parse(&url).ok();
            return Err(fail(super::redirect_error(
                status,
                response.headers(),
                base.as_ref(),
            )));
        }
        // Bounded, and within what is left of the timeout.
        let remaining = self.timeout.saturating_sub(started.elapsed());
        let bytes = match tokio::time::timeout(remaining, read_capped(&mut response)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(kind)) => {
                self.observer
                    .observe(endpoint, status.as_str(), started.elapsed());
                return Err(fail(kind));
            }
            Err(_) => {
                self.observer
                    .observe(endpoint, "timeout", started.elapsed());
                return Err(fail(ApiErrorKind::Timeout(self.timeout)));
            }
        };
        self.observer
            .observe(endpoint, status.as_str(), started.elapsed());
        if !status.is_success() {
            let (code, message) = parse_error_body(&bytes);
            return Err(fail(ApiErrorKind::Status {
                status: status.as_u16(),
                code,
                message,
            }));
        }
        let token = subject.filter(|t| !t.expose().is_empty()).ok_or_else(|| {
            fail(ApiErrorKind::Decode(
                "no X-Subject-Token header in the IAM answer".into(),
            ))
        })?;
        let fields: TokenBody = serde_json::from_slice(&bytes)
            .map_err(|e| fail(ApiErrorKind::Decode(format!("token body: {e}"))))?;
        let now = self.clock.now();
        let expires = fields.token.expires_at.as_deref().and_then(parse_api_time);
        let issued = fields.token.issued_at.as_deref().and_then(parse_api_time);
        // The token's lifetime by the server's own clock, applied to ours,
        // so clock skew cannot make a token look fresher than it is.
        let lifetime = match (issued, expires) {
            (Some(i), Some(e)) if e > i => Duration::from_secs((e - i) as u64),
            (_, Some(e)) => {
                let local = now
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                Duration::from_secs(e.saturating_sub(local).max(0) as u64)
            }
            // No expiry given: assume the documented 24 hours.
            _ => Duration::from_secs(24 * 3600),
        };
        let ahead = REFRESH_AHEAD.min(lifetime / 2);
        let mut refresh_in = lifetime - ahead;
        if refresh_in < MIN_TOKEN_REFRESH {
            tracing::warn!(
                project_id = %self.project_id,
                expires_at = fields.token.expires_at.as_deref().map(super::error::shorten),
                issued_at = fields.token.issued_at.as_deref().map(super::error::shorten),
                lifetime = %humantime::format_duration(lifetime),
                "IAM issued a token that expires within a minute or has already expired by this host's clock (is a clock wrong?); using it, and asking for a new one in no less than 1m"
            );
            refresh_in = MIN_TOKEN_REFRESH;
        }
        tracing::debug!(project_id = %self.project_id, lifetime = %humantime::format_duration(lifetime), "obtained an IAM token");
        Ok(CachedToken {
            token,
            refresh_at: now + refresh_in,
            expires_at: now + lifetime.max(refresh_in),
        })
    }
}
