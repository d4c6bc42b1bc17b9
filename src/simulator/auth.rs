//! The simulator's gateway and IAM: which credentials it accepts.
//!
//! Like the real API gateway it accepts static and IAM-issued tokens
//! (`X-Auth-Token`, with an expiry) and AK/SK signatures (verified by
//! [`super::gateway`] from the request as received, with the 15-minute
//! clock-skew limit), locks an access key for a while after five
//! consecutive failures, and requires the signed `X-Security-Token` of
//! temporary credentials. IAM's `POST /v3/auth/tokens` issues
//! project-scoped tokens for known users.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::gateway::{Received, verify};

/// The gateway refuses signatures older or newer than this.
pub(crate) const MAX_SKEW_SECONDS: i64 = 15 * 60;

const PREFIX: &str = "Incorrect IAM authentication information: ";

/// An access key the simulated account has.
#[derive(Debug, Clone)]
struct AccessKey {
    secret: String,
    /// Temporary credentials: requests must carry this, signed.
    security_token: Option<String>,
}

/// Consecutive failures of one access key.
#[derive(Debug, Clone, Copy, Default)]
struct Failures {
    count: u32,
    locked_until: i64,
}

/// The accepted credentials and their state.
#[derive(Debug)]
pub(super) struct AuthState {
    tokens: HashSet<String>,
    keys: HashMap<String, AccessKey>,
    /// (domain name, user name) → password.
    users: HashMap<(String, String), String>,
    /// Issued IAM token → expiry (simulator clock).
    issued: HashMap<String, i64>,
    failures: HashMap<String, Failures>,
    pub token_ttl: i64,
    pub lockout_after: u32,
    pub lockout_seconds: i64,
    issued_count: u64,
}

impl AuthState {
    pub(crate) fn new(token: &str) -> Self {
        Self {
            tokens: HashSet::from([token.to_owned()]),
            keys: HashMap::new(),
            users: HashMap::new(),
            issued: HashMap::new(),
            failures: HashMap::new(),
            token_ttl: 24 * 3600,
            lockout_after: 5,
            lockout_seconds: 5 * 60,
            issued_count: 0,
        }
    }

    pub(crate) fn set_static_tokens(&mut self, tokens: &[&str]) {
        self.tokens = tokens.iter().map(|t| (*t).to_owned()).collect();
    }

    pub(crate) fn add_key(
        &mut self,
        access_key: &str,
        secret_key: &str,
        security_token: Option<&str>,
    ) {
        self.keys.insert(
            access_key.to_owned(),
            AccessKey {
                secret: secret_key.to_owned(),
                security_token: security_token.map(str::to_owned),
            },
        );
    }

    pub(crate) fn add_user(&mut self, domain: &str, user: &str, password: &str) {
        self.users
            .insert((domain.to_owned(), user.to_owned()), password.to_owned());
    }

    /// Checks a FunctionGraph request's credentials; the error is the
    /// gateway's `error_msg` for a 401 `APIGW.0301`.
    pub(crate) fn check(&mut self, req: &Received<'_>, now: i64) -> Result<(), String> {
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(authorization) = header("authorization") {
            return self.check_signature(req, authorization, now);
        }
        match header("x-auth-token") {
            Some(t) if self.tokens.contains(t) => Ok(()),
            Some(t) => match self.issued.get(t) {
                Some(expires) if *expires > now => Ok(()),
                Some(expires) => Err(format!(
                    "{PREFIX}token expires, expires_at: {}",
                    rfc3339(*expires)
                )),
                None => Err(format!("{PREFIX}decrypt token fail")),
            },
            None => Err(format!("{PREFIX}x-auth-token not found")),
        }
    }

    fn check_signature(
        &mut self,
        req: &Received<'_>,
        authorization: &str,
        now: i64,
    ) -> Result<(), String> {
        let access_key = authorization
            .split("Access=")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_default()
            .trim()
            .to_owned();
        let f = self.failures.get(&access_key).copied().unwrap_or_default();
        if now < f.locked_until {
            return Err(format!(
                "{PREFIX}AK access failed to reach the limit,forbidden"
            ));
        }
        let keys = &self.keys;
        let verified = verify(
            req,
            |ak| keys.get(ak).map(|k| k.secret.clone()),
            now,
            MAX_SKEW_SECONDS,
        )
        .map_err(|e| e.gateway_message())
        .and_then(|ak| {
            let expected = keys.get(&ak).and_then(|k| k.security_token.as_deref());
            let sent = req
                .headers
                .get("x-security-token")
                .and_then(|v| v.to_str().ok());
            let signed = authorization
                .to_ascii_lowercase()
                .contains("x-security-token");
            match expected {
                Some(t) if sent != Some(t) || !signed => Err(format!(
                    "{PREFIX}verify aksk signature fail, security token invalid or not signed"
                )),
                _ => Ok(()),
            }
        });
        match verified {
            Ok(()) => {
                self.failures.remove(&access_key);
                Ok(())
            }
            Err(message) => {
                if self.keys.contains_key(&access_key) {
                    let f = self.failures.entry(access_key).or_default();
                    f.count += 1;
                    if f.count >= self.lockout_after {
                        f.count = 0;
                        f.locked_until = now + self.lockout_seconds;
                    }
                }
                Err(message)
            }
        }
    }

    /// IAM `POST /v3/auth/tokens` with the password method: the token and
    /// the body, or the status and IAM's error body.
    pub(crate) fn issue_token(
        &mut self,
        body: &[u8],
        projects: &HashMap<String, String>,
        now: i64,
    ) -> Result<(String, Value), (u16, Value)> {
        let bad = |status: u16, message: &str| {
            (
                status,
                json!({"error": {"code": status, "message": message, "title": "Bad Request"}}),
            )
        };
        let req: Value =
            serde_json::from_slice(body).map_err(|_| bad(400, "The request body is invalid."))?;
        let auth = &req["auth"];
        let user = &auth["identity"]["password"]["user"];
        let (Some(name), Some(password), Some(domain)) = (
            user["name"].as_str(),
            user["password"].as_str(),
            user["domain"]["name"].as_str(),
        ) else {
            return Err(bad(400, "The request body is invalid."));
        };
        let scope = &auth["scope"]["project"];
        let project = scope["id"]
            .as_str()
            .filter(|id| projects.contains_key(*id))
            .map(str::to_owned)
            .or_else(|| {
                let region = scope["name"].as_str()?;
                projects
                    .iter()
                    .find(|(_, r)| *r == region)
                    .map(|(id, _)| id.clone())
            })
            .ok_or_else(|| bad(400, "The project in the scope does not exist."))?;
        if self
            .users
            .get(&(domain.to_owned(), name.to_owned()))
            .map(String::as_str)
            != Some(password)
        {
            return Err((
                401,
                json!({"error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}}),
            ));
        }
        self.issued_count += 1;
        let token = format!("MIIsim{:08x}{:016x}", self.issued_count, now.unsigned_abs());
        let expires = now + self.token_ttl;
        self.issued.insert(token.clone(), expires);
        let region = projects.get(&project).cloned().unwrap_or_default();
        Ok((
            token,
            json!({"token": {
                "methods": ["password"],
                "issued_at": rfc3339(now),
                "expires_at": rfc3339(expires),
                "project": {"id": project, "name": region},
                "user": {"name": name, "domain": {"name": domain}},
            }}),
        ))
    }
}

/// `2019-02-13T06:52:13.000000Z`, the way IAM writes times.
pub(super) fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map(|s| s.replace('Z', ".000000Z"))
        .unwrap_or_default()
}
