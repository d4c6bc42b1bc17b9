//! Routing: basic authentication (with `--web.config.file`), then which
//! path and method get which answer: `/metrics`, `/-/reload`, the health
//! endpoints, `/failures` and the landing page.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER, VARY,
    WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};

use super::{Chunks, ClientAddr, HttpResponse, ServerState, failures, landing, negotiate};
use crate::web::auth::Verdict;

/// How long an authentication attempt turned away as "busy" waits for
/// its 429.
const BUSY_DELAY: Duration = Duration::from_secs(1);

/// Answers one request: basic authentication first when the web
/// configuration has users, then [`dispatch`]; the configured response
/// headers are added to every answer.
pub(super) async fn handle(state: &ServerState, req: Request<Incoming>) -> HttpResponse {
    let Some(web) = &state.web else {
        return dispatch(state, &req).await;
    };
    let active = web.current();
    let client = req
        .extensions()
        .get::<ClientAddr>()
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |a| {
            a.0.ip()
        });
    let verdict = web
        .authorize(&active, req.headers().get(AUTHORIZATION), client)
        .await;
    let mut response = match verdict {
        Verdict::Allowed => dispatch(state, &req).await,
        Verdict::Denied => unauthorized(),
        Verdict::Busy => {
            // Slowed down: a client that floods gets its "busy" after a
            // pause, so its retries cannot take the CPU the verifications
            // (and everyone else) need.
            tokio::time::sleep(BUSY_DELAY).await;
            let mut r = text(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many authentication attempts waiting; try again later.\n",
            );
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    };
    for (name, value) in &active.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// `/-/reload` (asynchronous: it waits for the reload), then the rest.
async fn dispatch(state: &ServerState, req: &Request<Incoming>) -> HttpResponse {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    if req.uri().path() == state.telemetry_path && get {
        return metrics(state, req).await;
    }
    if req.uri().path() != "/-/reload" {
        return route(state, req);
    }
    if *req.method() != Method::POST && *req.method() != Method::PUT {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed; use POST.\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST, PUT"));
        return r;
    }
    let Some(reload) = &state.reload else {
        // Prometheus' answer, word for word.
        return text(StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n");
    };
    if let Err(not_until) = state.reload_limiter.check() {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        let mut r = text(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many reloads; try again later.\n",
        );
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        return r;
    }
    let (reply, outcome) = tokio::sync::oneshot::channel();
    if reload.send(reply).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Shutting down.\n");
    }
    match outcome.await {
        Ok(Ok(())) => text(StatusCode::OK, "Configuration reloaded.\n"),
        Ok(Err(e)) => {
            let mut r = Response::new(Chunks::from(Bytes::from(format!(
                "Reload refused, the running configuration is kept: {e}\n"
            ))));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Shutting down.\n"),
    }
}

/// 401 with the basic authentication challenge.
fn unauthorized() -> HttpResponse {
    let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized.\n");
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(crate::web::auth::CHALLENGE),
    );
    r
}

fn route(state: &ServerState, req: &Request<Incoming>) -> HttpResponse {
    let path = req.uri().path();
    let allowed = matches!(*req.method(), Method::GET | Method::HEAD);
    let known = path == state.telemetry_path
        || matches!(path, "/" | "/failures" | "/-/healthy" | "/-/ready");
    if !known {
        let mut r = Response::new(Chunks::from(Bytes::from(format!(
            "Not found. Metrics are at {}.\n",
            state.telemetry_path
        ))));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return r;
    }
    if !allowed {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        // Answered in `dispatch`, which may render off the runtime.
        p if p == state.telemetry_path => {
            text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error.\n")
        }
        "/failures" => failures::page(&state.store, req.uri().query(), req.headers()),
        "/-/healthy" => text(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if state.readiness.is_ready() => text(StatusCode::OK, "Ready.\n"),
        "/-/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the first poll cycle has not completed.\n",
        ),
        _ => landing::page(state),
    }
}

/// `/metrics`, in the negotiated format and encoding. Served from the
/// cache on the runtime; when the per-function part must be rendered or
/// compressed first (once per poll), that runs on the blocking pool so the
/// runtime keeps serving.
async fn metrics(state: &ServerState, req: &Request<Incoming>) -> HttpResponse {
    let format = negotiate::format(req.headers());
    let gzip = negotiate::accepts_gzip(req.headers());
    let renderer = Arc::clone(&state.renderer);
    let body = if let Some(body) = renderer.reused(format, gzip) {
        body
    } else if renderer.is_cached(format, gzip) {
        renderer.body(format, gzip)
    } else {
        match tokio::task::spawn_blocking(move || renderer.body(format, gzip)).await {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "rendering /metrics");
                return text(StatusCode::INTERNAL_SERVER_ERROR, "Rendering failed.\n");
            }
        }
    };
    let mut r = Response::new(Chunks::new(body.chunks));
    let headers = r.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    // The body depends on both request headers.
    headers.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    if body.gzip {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// A plain-text response.
pub(super) fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    let mut r = Response::new(Chunks::from(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
