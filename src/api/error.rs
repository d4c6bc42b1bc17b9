//! API errors: what went wrong with one request, typed, with the fields an
//! operator needs in a log line (endpoint, HTTP status, `error_code`,
//! message, `X-Request-Id`), and what each kind of failure means for the
//! exporter:
//!
//! - a **credential failure** ([`ApiError::is_auth_failure`]: any 401, a 403
//!   that does not name a permission, any refusal by IAM's token endpoint)
//!   says the credentials themselves are bad; the project's gate backs off;
//! - a **permission denial** ([`ApiError::is_permission_denied`]: a 403 with
//!   `FSS.1126`/`FSS.1127`/`FSS.1128`, the gateway's access-control refusals
//!   `APIGW.0402`/`APIGW.0404`, or an IAM policy denial) says the
//!   credentials work but may not call this API for this resource; only the
//!   collector that asked fails;
//! - **gone** ([`ApiError::is_gone`]: 404 with `FSS.1051`, `FSS.1052`,
//!   `FSS.1053` or `FSS.0404`) says the function (or its version or alias)
//!   does not exist.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::Endpoint;

/// The longest upstream error message kept, in characters.
const MAX_MESSAGE_CHARS: usize = crate::caps::MAX_ERROR_CHARS;

/// A failed API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub endpoint: Endpoint,
    /// `X-Request-Id` of the response, when there was one.
    pub request_id: Option<String>,
    pub kind: ApiErrorKind,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

/// What kind of failure it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// The server answered with a non-success status.
    Status {
        status: u16,
        /// `error_code` (`FSS.1051`, `APIGW.0301`, ...), when the body had one.
        code: Option<String>,
        message: String,
    },
    /// No complete answer within the per-request timeout.
    Timeout(Duration),
    /// Connection, TLS or protocol failure.
    Transport(String),
    /// A success status with a body that is not what the API documents.
    Decode(String),
    /// The body exceeded the configured size cap.
    TooLarge { limit: usize },
    /// The exporter is shutting down.
    Cancelled,
    /// Not sent: the project's credentials were refused and it is in
    /// back-off (see `api::gate`). Carries the refusal.
    AuthBackoff(String),
    /// A credential could not be read (e.g. its file disappeared).
    Credentials(String),
    /// No complete answer within `after` while other requests that were
    /// just as slow already held their share of the concurrency bound (see
    /// `api::concurrency`): given up early so that hanging requests cannot
    /// hold every slot.
    Abandoned { after: Duration, slow: usize },
    /// Not sent, for the reason given (e.g. another request of the same
    /// function's poll got no answer in time).
    NotSent(String),
}

/// Error codes of a 403 that names a missing permission rather than bad
/// credentials (reference, sections 7.2 and 7.3): FunctionGraph's "no
/// permission to call the API", "enterprise project user lacks permission"
/// and "listing enterprise projects failed", and the gateway's access
/// control refusals. `APIG.` is the gateway prefix some regions use.
const PERMISSION_CODES: [&str; 7] = [
    "FSS.1126",
    "FSS.1127",
    "FSS.1128",
    "APIGW.0402",
    "APIGW.0404",
    "APIG.0402",
    "APIG.0404",
];

/// Error codes saying the function, its version or its alias does not
/// exist (reference, section 7.2).
const GONE_CODES: [&str; 4] = ["FSS.1051", "FSS.1052", "FSS.1053", "FSS.0404"];

/// Prefixed to the message of an error body that carries IAM's
/// `encoded_authorization_message` (an IAM policy denial; reference, 7.1).
pub const POLICY_DENIAL: &str = "IAM policy denial:";

/// Words of a 403's message that say the credentials themselves are bad.
const CREDENTIAL_WORDS: [&str; 7] = [
    "token",
    "signature",
    "aksk",
    "credential",
    "authenticat",
    "access key",
    "secretkey",
];

/// Words of a 403's message that say a permission is missing.
const PERMISSION_WORDS: [&str; 6] = [
    "permission",
    "policy",
    "not authorized to perform",
    "not allowed to perform",
    "access denied",
    "forbidden to perform",
];

impl ApiError {
    pub fn new(endpoint: Endpoint, kind: ApiErrorKind) -> Self {
        Self {
            endpoint,
            request_id: None,
            kind,
            retry_after: None,
        }
    }

    /// Failures worth another try: 5xx, 429 and transport errors. Never
    /// other 4xx: the same request would fail the same way (and 401/403
    /// count towards the access key's lock-out). Never a timeout either: a
    /// request that got no answer in time would hold a slot of the
    /// concurrency bound for as long again, so the collector fails and backs
    /// off instead (see `poller::function`).
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Status { status, .. } => *status == 429 || *status >= 500,
            ApiErrorKind::Transport(_) => true,
            _ => false,
        }
    }

    /// No answer in time: the per-request timeout, or abandoned early while
    /// the concurrency bound's share for slow requests was taken.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            ApiErrorKind::Timeout(_) | ApiErrorKind::Abandoned { .. }
        )
    }

    /// Whether the request reached the API at all: false for requests held
    /// back by the project's authentication back-off, not sent for another
    /// reason, cancelled by shutdown, or whose credentials could not be read.
    pub fn reached_api(&self) -> bool {
        !matches!(
            self.kind,
            ApiErrorKind::AuthBackoff(_)
                | ApiErrorKind::NotSent(_)
                | ApiErrorKind::Cancelled
                | ApiErrorKind::Credentials(_)
        )
    }

    /// HTTP status, for failures that had one.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ApiErrorKind::Status { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The upstream `error_code`, when there was one.
    pub fn error_code(&self) -> Option<&str> {
        match &self.kind {
            ApiErrorKind::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// A refusal of the credentials themselves by the gateway or IAM: any
    /// 401, any refusal by IAM's token endpoint, and a 403 that does not
    /// name a missing permission (see [`ApiError::is_permission_denied`];
    /// a 403 saying nothing recognisable is taken as a credential failure,
    /// the safe side of the gateway's lock-out). The gateway locks an access
    /// key after five in a row, so these are never retried with the same
    /// credentials, and they pause the whole project (`api::gate`).
    pub fn is_auth_failure(&self) -> bool {
        match self.status() {
            Some(401) => true,
            Some(403) => !self.is_permission_denied(),
            _ => false,
        }
    }

    /// A 403 naming a missing permission: the credentials were accepted,
    /// but may not call this API for this resource. Recognised by its code
    /// (`PERMISSION_CODES`), by IAM's `encoded_authorization_message`
    /// ([`POLICY_DENIAL`]), or, without a known code, by a message that
    /// speaks of a permission or policy and not of a token, signature or
    /// credential. `FSS.0401`, `FSS.0403` ("invalid token") and the
    /// gateway's `APIGW.0301` are always credential failures; so is any
    /// refusal by IAM's token endpoint (IAM refusing the user).
    pub fn is_permission_denied(&self) -> bool {
        let ApiErrorKind::Status {
            status: 403,
            code,
            message,
        } = &self.kind
        else {
            return false;
        };
        if self.endpoint == Endpoint::IamTokens {
            return false;
        }
        let code = code.as_deref().unwrap_or_default();
        if PERMISSION_CODES
            .iter()
            .any(|c| c.eq_ignore_ascii_case(code))
        {
            return true;
        }
        if ["FSS.0401", "FSS.0403", "APIGW.0301", "APIG.0301"]
            .iter()
            .any(|c| c.eq_ignore_ascii_case(code))
        {
            return false;
        }
        if message.starts_with(POLICY_DENIAL) {
            return true;
        }
        let m = message.to_ascii_lowercase();
        PERMISSION_WORDS.iter().any(|w| m.contains(w))
            && !CREDENTIAL_WORDS.iter().any(|w| m.contains(w))
    }

    /// The API says the function, its version or its alias does not exist
    /// (404 with `FSS.1051`, `FSS.1052`, `FSS.1053` or `FSS.0404`).
    pub fn is_gone(&self) -> bool {
        self.status() == Some(404)
            && self
                .error_code()
                .is_some_and(|code| GONE_CODES.iter().any(|c| c.eq_ignore_ascii_case(code)))
    }

    /// Anything about authentication, including requests held back by the
    /// project's back-off (logged once by the gate, not per function).
    pub fn is_auth_related(&self) -> bool {
        self.is_auth_failure() || matches!(self.kind, ApiErrorKind::AuthBackoff(_))
    }

    /// A 401 saying the token expired (a fresh token may fix it).
    pub fn is_token_expiry(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Status {
                status: 401,
                message,
                ..
            } => {
                let m = message.to_ascii_lowercase();
                m.contains("expire") || m.contains("token must be updated")
            }
            _ => false,
        }
    }

    /// The error without its request id: two failures with the same summary
    /// are the same problem, which is what "log once per change" compares.
    pub fn summary(&self) -> String {
        let mut s = format!("{}: ", self.endpoint);
        self.kind.write(&mut s);
        s
    }
}

impl ApiErrorKind {
    fn write(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = match self {
            ApiErrorKind::Status {
                status,
                code: Some(code),
                message,
            } => write!(out, "http {status} {code}: {message}"),
            ApiErrorKind::Status {
                status,
                code: None,
                message,
            } => write!(out, "http {status}: {message}"),
            ApiErrorKind::Timeout(d) => write!(
                out,
                "no complete response within {}",
                humantime::format_duration(*d)
            ),
            ApiErrorKind::Transport(e) => write!(out, "transport error: {e}"),
            ApiErrorKind::Decode(e) => write!(out, "unexpected response body: {e}"),
            ApiErrorKind::TooLarge { limit } => {
                write!(out, "response body larger than {limit} bytes")
            }
            ApiErrorKind::Cancelled => write!(out, "cancelled by shutdown"),
            ApiErrorKind::AuthBackoff(refusal) => write!(
                out,
                "not sent: authentication failed ({refusal}); this project's requests are paused and retried with back-off"
            ),
            ApiErrorKind::Credentials(e) => write!(out, "reading credentials: {e}"),
            ApiErrorKind::Abandoned { after, slow } => write!(
                out,
                "no response within {}, while {slow} other requests as slow held their share of polling.concurrency; abandoned",
                humantime::format_duration(*after)
            ),
            ApiErrorKind::NotSent(reason) => write!(out, "not sent: {reason}"),
        };
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Reads an error body the way the official SDK does (reference, section
/// 7.1): `error_code`/`error_msg`, then `errorCode`/`errorMsg`, then
/// `code`/`message`, then the same keys one level down; failing all that,
/// no code and the raw body (shortened) as the message. The code is
/// shortened like the message; an empty one counts as absent.
pub fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    const PAIRS: [(&str, &str); 3] = [
        ("error_code", "error_msg"),
        ("errorCode", "errorMsg"),
        ("code", "message"),
    ];
    fn text(v: Option<&Value>) -> Option<String> {
        match v? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    fn from_object(v: &Value) -> Option<(Option<String>, String)> {
        let obj = v.as_object()?;
        let (code, msg) = PAIRS.iter().find_map(|(c, m)| {
            let code = text(obj.get(*c));
            let msg = text(obj.get(*m));
            (code.is_some() || msg.is_some()).then(|| (code, msg.unwrap_or_default()))
        })?;
        // IAM's policy denials carry an encoded explanation (which only
        // IAM can decode, and which is too long to show): say what it is.
        let denial = text(obj.get("encoded_authorization_message")).is_some_and(|e| !e.is_empty());
        Some(match denial {
            true => (code, format!("{POLICY_DENIAL} {msg}")),
            false => (code, msg),
        })
    }
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let found = from_object(&v).or_else(|| {
            v.as_object()?
                .values()
                .filter(|inner| inner.is_object())
                .find_map(from_object)
        });
        if let Some((code, msg)) = found {
            // The code lands in the same log line and page as the message.
            let code = code.map(|c| shorten(&c)).filter(|c| !c.is_empty());
            return (code, shorten(&msg));
        }
    }
    (None, shorten(&String::from_utf8_lossy(body)))
}

/// Trims, folds control characters (an upstream message ends up in a log
/// line and on the landing page) and caps the length.
pub fn shorten(s: &str) -> String {
    // Fold first, then trim: a control character that is not whitespace
    // (NUL, ESC) at either end must not leave spaces behind.
    let folded: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = folded.trim().to_owned();
    if cleaned.chars().count() <= MAX_MESSAGE_CHARS {
        cleaned
    } else {
        let mut out: String = cleaned.chars().take(MAX_MESSAGE_CHARS).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_documented_error_shape() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                r#"{"error_code":"FSS.1051","error_msg":"Not found the function"}"#,
                Some("FSS.1051"),
                "Not found the function",
            ),
            (
                r#"{"error_code":"APIGW.0308","error_msg":"throttled","request_id":"x"}"#,
                Some("APIGW.0308"),
                "throttled",
            ),
            (r#"{"errorCode":"E1","errorMsg":"m"}"#, Some("E1"), "m"),
            (r#"{"code":"C","message":"msg"}"#, Some("C"), "msg"),
            (
                r#"{"error":{"code":"401","message":"The token must be updated."}}"#,
                Some("401"),
                "The token must be updated.",
            ),
            ("<html>bad gateway</html>", None, "<html>bad gateway</html>"),
            ("", None, ""),
        ];
        for (body, code, msg) in cases {
            let (c, m) = parse_error_body(body.as_bytes());
            assert_eq!(c.as_deref(), *code, "{body}");
            assert_eq!(m, *msg, "{body}");
        }
    }

    #[test]
    fn messages_are_cleaned_and_capped() {
        assert_eq!(shorten(" a\nb\r\n "), "a b");
        // Found by the api_decode fuzz target: a body of one NUL byte gave
        // " " (trimmed before the NUL was folded into a space).
        assert_eq!(shorten("\0"), "");
        assert_eq!(parse_error_body(b"\0"), (None, String::new()));
        assert_eq!(shorten("\u{1b}[31mred\u{7}\0"), "[31mred");
        let long = "x".repeat(1000);
        assert_eq!(shorten(&long).chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn codes_are_cleaned_and_capped_like_messages() {
        // Found by the api_decode fuzz target: `{"code":"<DEL>n"}` kept its
        // DEL character (and any code, however long or multi-line, was kept
        // as sent) although it ends up in the same log line as the message.
        assert_eq!(
            parse_error_body(b"{\"code\":\"\x7fn\"}"),
            (Some("n".into()), String::new())
        );
        assert_eq!(
            parse_error_body(b"{\"error_code\":\"FSS.1051\\n\",\"error_msg\":\"m\"}"),
            (Some("FSS.1051".into()), "m".into())
        );
        let long = format!(r#"{{"code":"{}"}}"#, "c".repeat(1000));
        let (code, _) = parse_error_body(long.as_bytes());
        assert_eq!(code.unwrap().chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            parse_error_body(br#"{"error_code":"","error_msg":"m"}"#),
            (None, "m".into())
        );
    }

    fn status(endpoint: Endpoint, status: u16, code: Option<&str>, message: &str) -> ApiError {
        ApiError::new(
            endpoint,
            ApiErrorKind::Status {
                status,
                code: code.map(str::to_owned),
                message: message.to_owned(),
            },
        )
    }

    #[test]
    fn credential_failures_and_permission_denials_are_told_apart() {
        let credentials: &[(u16, Option<&str>, &str)] = &[
            (
                401,
                Some("APIGW.0301"),
                "Incorrect IAM authentication information: verify aksk signature fail",
            ),
            (401, Some("FSS.0401"), "unauthorized"),
            (401, None, "no body"),
            (403, Some("FSS.0403"), "invalid token"),
            (
                403,
                Some("APIGW.0301"),
                "Incorrect IAM authentication information: token expires",
            ),
            // A 403 that says nothing recognisable: the safe side.
            (403, None, "<html>Forbidden</html>"),
            (403, Some("FSS.9999"), "forbidden"),
            // Words of both kinds: the credentials win.
            (403, None, "no permission: the token is invalid"),
        ];
        for (s, code, message) in credentials {
            let e = status(Endpoint::Code, *s, *code, message);
            assert!(e.is_auth_failure(), "{e}");
            assert!(!e.is_permission_denied(), "{e}");
        }
        let permissions: &[(Option<&str>, &str)] = &[
            (Some("FSS.1126"), "no permission to call the API"),
            (Some("FSS.1127"), "EPS user has no permission"),
            (Some("fss.1128"), "list enterprise projects failed"),
            (
                Some("APIGW.0402"),
                "The client IP is not allowed to access the API",
            ),
            (Some("APIG.0404"), "access denied"),
            (
                None,
                "Policy doesn't allow functiongraph:function:getCode to be performed.",
            ),
            (Some("IAM.0001"), "IAM policy denial: request denied"),
        ];
        for (code, message) in permissions {
            let e = status(Endpoint::SnapshotState, 403, *code, message);
            assert!(e.is_permission_denied(), "{e}");
            assert!(!e.is_auth_failure(), "{e}");
            assert!(!e.is_auth_related(), "{e}");
        }
        // IAM refusing the user is about the credentials, whatever it says.
        let iam = status(
            Endpoint::IamTokens,
            403,
            None,
            "no permission for this project",
        );
        assert!(iam.is_auth_failure() && !iam.is_permission_denied());
        // Neither: other statuses.
        let e = status(Endpoint::Code, 404, Some("FSS.1127"), "x");
        assert!(!e.is_auth_failure() && !e.is_permission_denied());
    }

    #[test]
    fn an_iam_policy_denial_is_marked_in_the_message() {
        let (code, message) = parse_error_body(
            br#"{"error_code":"FSS.0403","error_msg":"denied","encoded_authorization_message":"AbC..."}"#,
        );
        assert_eq!(code.as_deref(), Some("FSS.0403"));
        assert_eq!(message, format!("{POLICY_DENIAL} denied"));
        let (_, message) = parse_error_body(
            br#"{"error":{"code":"x","message":"denied","encoded_authorization_message":"AbC"}}"#,
        );
        assert!(message.starts_with(POLICY_DENIAL), "{message}");
        let e = status(Endpoint::Versions, 403, None, &message);
        assert!(e.is_permission_denied());
        // An empty one is no denial.
        let (_, message) =
            parse_error_body(br#"{"error_msg":"m","encoded_authorization_message":""}"#);
        assert_eq!(message, "m");
    }

    #[test]
    fn every_documented_not_found_code_means_gone() {
        for code in ["FSS.1051", "FSS.1052", "FSS.1053", "FSS.0404", "fss.0404"] {
            assert!(
                status(Endpoint::AsyncInvocations, 404, Some(code), "").is_gone(),
                "{code}"
            );
        }
        assert!(!status(Endpoint::Code, 404, Some("APIGW.0101"), "no such API").is_gone());
        assert!(!status(Endpoint::Code, 404, None, "").is_gone());
        assert!(!status(Endpoint::Code, 400, Some("FSS.1051"), "").is_gone());
    }

    #[test]
    fn timeouts_are_not_retried_but_transport_errors_and_5xx_are() {
        let t = ApiError::new(
            Endpoint::Code,
            ApiErrorKind::Timeout(Duration::from_secs(1)),
        );
        assert!(t.is_timeout() && !t.is_retryable() && t.reached_api());
        let a = ApiError::new(
            Endpoint::Code,
            ApiErrorKind::Abandoned {
                after: Duration::from_millis(2500),
                slow: 4,
            },
        );
        assert!(a.is_timeout() && !a.is_retryable());
        assert_eq!(
            a.summary(),
            "code: no response within 2s 500ms, while 4 other requests as slow held their share of polling.concurrency; abandoned"
        );
        assert!(
            ApiError::new(Endpoint::Code, ApiErrorKind::Transport("reset".into())).is_retryable()
        );
        assert!(status(Endpoint::Code, 503, None, "").is_retryable());
        let n = ApiError::new(Endpoint::Code, ApiErrorKind::NotSent("why".into()));
        assert!(!n.reached_api());
        assert_eq!(n.summary(), "code: not sent: why");
    }

    #[test]
    fn display_is_context_first_and_carries_the_request_id() {
        let mut e = ApiError::new(
            Endpoint::Code,
            ApiErrorKind::Status {
                status: 404,
                code: Some("FSS.1051".into()),
                message: "Not found the function".into(),
            },
        );
        e.request_id = Some("abc".into());
        assert_eq!(
            e.to_string(),
            "code: http 404 FSS.1051: Not found the function (request id abc)"
        );
        assert_eq!(
            e.summary(),
            "code: http 404 FSS.1051: Not found the function"
        );
        assert_eq!(e.status(), Some(404));
        assert_eq!(e.error_code(), Some("FSS.1051"));
    }
}
