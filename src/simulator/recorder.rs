//! The "other host" of the redirect tests: a second listener that records
//! everything it receives (method, URI, headers, body) and answers like a
//! server that would gladly take credentials: a token for an IAM request,
//! an empty success for anything else. A test points a
//! [`super::Fault::Redirect`] at it and then checks that nothing, and no
//! secret, ever arrived.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::HeaderValue;
use hyper::{Method, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::serve::serve;
use crate::sync::MutexExt;

/// Largest request body kept.
const MAX_BODY: usize = 1024 * 1024;

/// One request as the recorder received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub uri: String,
    /// Names lower-case, values as sent (lossily decoded).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// Everything received, as text, to search for a secret.
    pub fn text(&self) -> String {
        let mut s = format!("{} {}\n", self.method, self.uri);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s.push_str(&String::from_utf8_lossy(&self.body));
        s
    }
}

/// A recording listener; clones share what was received.
#[derive(Clone, Default)]
pub struct Recorder {
    received: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Recorded> {
        self.received.lock_or_recover().clone()
    }

    /// Records every request on `listener` until `shutdown`.
    pub async fn serve(&self, listener: TcpListener, shutdown: CancellationToken) {
        let received = Arc::clone(&self.received);
        serve(listener, shutdown, move |req| {
            let received = Arc::clone(&received);
            async move {
                let (parts, body) = req.into_parts();
                let body = Limited::new(body, MAX_BODY)
                    .collect()
                    .await
                    .map(|b| b.to_bytes().to_vec())
                    .unwrap_or_default();
                let iam = parts.method == Method::POST && parts.uri.path() == "/v3/auth/tokens";
                received
                    .lock_or_recover()
                    .push(Recorded {
                        method: parts.method.to_string(),
                        uri: parts.uri.to_string(),
                        headers: parts
                            .headers
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.as_str().to_owned(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect(),
                        body,
                    });
                let answer = if iam {
                    r#"{"token":{"issued_at":"2020-01-01T00:00:00.000000Z","expires_at":"9999-01-01T00:00:00.000000Z"}}"#
                } else {
                    "{}"
                };
                let mut r = Response::new(Full::new(Bytes::from_static(answer.as_bytes())));
                *r.status_mut() = if iam {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                if iam {
                    r.headers_mut().insert(
                        "x-subject-token",
                        HeaderValue::from_static("token-issued-by-the-other-host"),
                    );
                }
                Ok::<_, Infallible>(r)
            }
        })
        .await
    }
}
