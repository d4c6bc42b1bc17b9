//! Credentials and how they are put on a request.
//!
//! Token authentication sends `X-Auth-Token`, marked sensitive so that the
//! HTTP stack never prints it.

use std::fmt;

use reqwest::header::HeaderValue;

use crate::secret::Secret;

/// How requests of one project authenticate.
#[derive(Clone)]
pub enum Credentials {
    /// An IAM token, sent as `X-Auth-Token`.
    Token(Secret),
}

impl Credentials {
    /// Adds the authentication headers to a request.
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credentials::Token(token) => match HeaderValue::from_str(token.expose()) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    request.header("x-auth-token", value)
                }
                // Validated when the token is loaded; an invalid header value
                // goes without a token and gets the gateway's 401.
                Err(_) => request,
            },
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}
