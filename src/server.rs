//! The HTTP server: `/metrics`, the landing page and the health endpoints,
//! and the accept loop with graceful shutdown that the simulator reuses.
//!
//! Requests are answered from memory only; nothing here calls the API.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::collector::{Renderer, TEXT_CONTENT_TYPE};
use crate::poller::PollerHandle;
use crate::state::Store;

/// How long in-flight responses get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);
/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as every handler here builds it.
pub type HttpResponse = Response<Full<Bytes>>;

/// What the exporter's handlers need.
pub struct ServerState {
    pub renderer: Renderer,
    pub store: Arc<Store>,
    pub poller: PollerHandle,
    /// For the landing page.
    pub interval: Duration,
}

/// Serves the exporter on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, state: Arc<ServerState>, shutdown: CancellationToken) {
    serve_connections(listener, shutdown, move |req| {
        let state = Arc::clone(&state);
        async move { handle(&state, req) }
    })
    .await
}

/// Accepts HTTP/1 connections and answers them with `handler` until
/// `shutdown`; then stops accepting and gives open connections
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve_connections<H, F>(listener: TcpListener, shutdown: CancellationToken, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let fut = handler(req);
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after the shutdown grace period; closing them");
        }
    }
}

fn handle(state: &ServerState, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path();
    let allowed = matches!(*req.method(), Method::GET | Method::HEAD);
    let known = matches!(path, "/" | "/metrics" | "/-/healthy" | "/-/ready");
    if !known {
        return text(
            StatusCode::NOT_FOUND,
            "Not found. Metrics are at /metrics.\n",
        );
    }
    if !allowed {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/metrics" => {
            let body = state.renderer.render();
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_CONTENT_TYPE));
            r
        }
        "/-/healthy" => text(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if state.poller.is_ready() => text(StatusCode::OK, "Ready.\n"),
        "/-/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the first poll cycle has not completed.\n",
        ),
        _ => landing(state),
    }
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn landing(state: &ServerState) -> HttpResponse {
    use html_escape::encode_text as esc;
    use std::fmt::Write;
    let functions = state.store.functions();
    let up = functions.iter().filter(|f| f.up()).count();
    let mut rows = String::new();
    for f in &functions {
        let status = match (f.polls, f.up()) {
            (0, _) => "not polled yet",
            (_, true) => "up",
            (_, false) => "down",
        };
        let last = f
            .last_success
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t as i64).ok())
            .map(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            })
            .unwrap_or_else(|| "never".to_owned());
        let errors: Vec<String> = f
            .errors()
            .into_iter()
            .map(|(k, e)| format!("{k}: {}", esc(e)))
            .collect();
        let _ = writeln!(
            rows,
            "<tr class=\"{status_class}\"><td><code>{urn}</code></td><td>{status}</td><td>{last}</td><td>{errors}</td></tr>",
            status_class = if f.up() { "up" } else { "down" },
            urn = esc(&f.urn.to_string()),
            errors = errors.join("<br>"),
        );
    }
    let body = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>FunctionGraph Exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}tr.down td{{background:#fee}}</style>
</head>
<body>
<h1>FunctionGraph Exporter</h1>
<p>Version {version}. <a href="/metrics">Metrics</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
<p>Values are refreshed by background polling every {interval} s; scrapes are served from memory and never call the API.</p>
<h2>Functions ({up} of {total} up)</h2>
<table>
<tr><th>Function</th><th>Last poll</th><th>Last success</th><th>Errors</th></tr>
{rows}</table>
</body>
</html>
"#,
        version = crate::collector::exporter::VERSION,
        interval = state.interval.as_secs(),
        total = functions.len(),
    );
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
