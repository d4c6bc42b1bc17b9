//! API errors: what went wrong with one request, typed, with the fields an
//! operator needs in a log line (endpoint, HTTP status, `error_code`,
//! message, `X-Request-Id`).

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
}

impl ApiError {
    pub fn new(endpoint: Endpoint, kind: ApiErrorKind) -> Self {
        Self {
            endpoint,
            request_id: None,
            kind,
            retry_after: None,
        }
    }

    /// Failures worth another try: 5xx, 429, timeouts and transport
    /// errors. Never other 4xx: the same request would fail the same way
    /// (and 401/403 count towards the access key's lock-out).
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Status { status, .. } => *status == 429 || *status >= 500,
            ApiErrorKind::Timeout(_) | ApiErrorKind::Transport(_) => true,
            _ => false,
        }
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

    /// A refusal of the credentials by the gateway or IAM (401 or 403).
    /// The gateway locks an access key after five in a row, so these are
    /// never retried with the same credentials.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
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
        PAIRS.iter().find_map(|(c, m)| {
            let code = text(obj.get(*c));
            let msg = text(obj.get(*m));
            (code.is_some() || msg.is_some()).then(|| (code, msg.unwrap_or_default()))
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
