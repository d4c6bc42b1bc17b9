//! The HTTP server: `/metrics`, the landing page and the health endpoints,
//! and the accept loop with graceful shutdown.
//!
//! Requests are answered from memory only; nothing here calls the API.
//!
//! `/metrics` negotiates its format (OpenMetrics 1.0.0 or text 0.0.4) and
//! gzip compression ([`negotiate`]); the bodies come from the collector's
//! cache. With `--web.config.file` ([`crate::web`]), connections are TLS
//! (the configuration is re-checked on every new connection, so a rotated
//! certificate is served without a restart) and every path requires basic
//! authentication when users are configured, as in exporter-toolkit.
//!
//! `POST /-/reload` is the lifecycle API: as in Prometheus it answers 403
//! unless `--web.enable-lifecycle` was given (SIGHUP always reloads), and
//! it is rate-limited: a few reloads at once, then one every two seconds.

mod body;
mod failures;
mod negotiate;

pub use body::Chunks;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER,
    VARY, WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::collector::Renderer;
use crate::poller::PollerHandle;
use crate::state::Store;
use crate::web::LiveWebConfig;
use crate::web::auth::Verdict;

/// How long in-flight responses get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);
/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an authentication attempt turned away as "busy" waits for
/// its 429.
const BUSY_DELAY: Duration = Duration::from_secs(1);
/// A client must complete the TLS handshake within this time.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as every handler here builds it.
pub type HttpResponse = Response<Chunks>;

/// What the exporter's handlers need.
pub struct ServerState {
    pub renderer: Arc<Renderer>,
    pub store: Arc<Store>,
    pub poller: PollerHandle,
    /// For the landing page.
    pub interval: Duration,
    /// `--web.config.file`: TLS and basic authentication.
    pub web: Option<Arc<LiveWebConfig>>,
    /// Where `POST /-/reload` sends its request: `None` unless the
    /// lifecycle API is enabled (`--web.enable-lifecycle`).
    pub reload: Option<tokio::sync::mpsc::Sender<crate::app::ReloadRequest>>,
    /// Bounds the rate of `POST /-/reload` (see [`reload_limiter`]).
    pub reload_limiter: governor::DefaultDirectRateLimiter,
    /// `--web.telemetry-path`: where the metrics are served.
    pub telemetry_path: String,
}

/// Where the metrics are served unless `--web.telemetry-path` says otherwise.
pub const DEFAULT_TELEMETRY_PATH: &str = "/metrics";

/// Paths the exporter serves besides the metrics.
const OTHER_PATHS: [&str; 5] = ["/", "/failures", "/-/healthy", "/-/ready", "/-/reload"];

/// `--web.telemetry-path`: an absolute path, without a query, that no
/// other endpoint uses.
pub fn parse_telemetry_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') || s.len() < 2 {
        return Err(format!(
            "{s:?}: must be an absolute path other than /, e.g. /metrics"
        ));
    }
    if s.contains(['?', '#']) || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{s:?}: must be a plain path (no query, fragment, spaces)"
        ));
    }
    if OTHER_PATHS.contains(&s) {
        return Err(format!("{s:?}: already serves another endpoint"));
    }
    Ok(s.to_owned())
}

/// Reloads accepted over HTTP: five at once, then one every two seconds.
/// (Reloads are applied one at a time anyway; this bounds how often a
/// client can make the exporter re-read its files.)
pub fn reload_limiter() -> governor::DefaultDirectRateLimiter {
    let quota = governor::Quota::with_period(RELOAD_PERIOD)
        .expect("non-zero period")
        .allow_burst(std::num::NonZeroU32::new(5).expect("non-zero"));
    governor::RateLimiter::direct(quota)
}

/// One more HTTP reload is allowed per this period, after the burst.
const RELOAD_PERIOD: Duration = Duration::from_secs(2);

/// The address a request came from, put in its extensions by the accept
/// loop (basic authentication queues verifications per address).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// Serves the exporter on every listener until `shutdown`.
pub async fn serve(
    listeners: Vec<TcpListener>,
    state: Arc<ServerState>,
    shutdown: CancellationToken,
) {
    if let Some(web) = &state.web {
        let active = web.current();
        tracing::info!(
            file = %web.path().display(),
            tls = web.tls_enabled(),
            basic_auth = active.users.is_some(),
            "web configuration in force"
        );
    }
    let mut loops = tokio::task::JoinSet::new();
    for listener in listeners {
        let web = state.web.clone();
        let state = Arc::clone(&state);
        loops.spawn(accept_loop(listener, shutdown.clone(), web, move |req| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(handle(&state, req).await) }
        }));
    }
    while loops.join_next().await.is_some() {}
}

/// Accepts HTTP/1 connections and answers them with `handler` until
/// `shutdown`, with TLS on every connection when `web` says so; then stops
/// accepting and gives open connections [`SHUTDOWN_GRACE`] to finish.
/// The web configuration is refreshed (files re-read if they changed) once
/// per new connection, before its handshake.
async fn accept_loop<H, F, B, E>(
    listener: TcpListener,
    shutdown: CancellationToken,
    web: Option<Arc<LiveWebConfig>>,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
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
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Responses leave at once: without this, a body's last segment
        // waits for the client's delayed ACK (Nagle), which is most of a
        // scrape's latency on a fast network.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
        let handler = handler.clone();
        let service = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ClientAddr(peer));
            handler(req)
        });
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let web = web.clone();
        tokio::spawn(async move {
            // Re-read the web configuration if its files changed.
            let tls = web.and_then(|w| w.refresh().tls.clone());
            match tls {
                None => serve_io(&builder, watcher, stream, service).await,
                Some(config) => {
                    let Some(stream) = handshake(config, stream).await else {
                        return;
                    };
                    serve_io(&builder, watcher, stream, service).await;
                }
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

/// The TLS handshake, bounded in time.
async fn handshake(
    config: Arc<rustls::ServerConfig>,
    stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "tls handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("tls handshake timed out");
            None
        }
    }
}

/// Serves HTTP/1 on one connection, watched for graceful shutdown.
async fn serve_io<I, S, B>(builder: &http1::Builder, watcher: Watcher, io: I, service: S)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "http connection ended with an error");
    }
}

async fn handle(state: &ServerState, req: Request<Incoming>) -> HttpResponse {
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
        "/-/ready" if state.poller.is_ready() => text(StatusCode::OK, "Ready.\n"),
        "/-/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the first poll cycle has not completed.\n",
        ),
        _ => landing(state),
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
    let body = if renderer.is_cached(format, gzip) {
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

/// Unix seconds as RFC 3339 (UTC).
fn rfc3339(t: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// One line for a failing collector: the error as the API client words
/// it, which starts with the endpoint (`async_invocations: http 500 ...`),
/// so the collector's name is added only when the endpoint does not
/// already start with it.
fn error_line(kind: crate::state::CollectorKind, error: &str) -> String {
    let endpoint = error.split(": ").next().unwrap_or_default();
    let named = endpoint.starts_with(kind.as_str())
        && endpoint
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_');
    let line = if named {
        error.to_owned()
    } else {
        format!("{kind}: {error}")
    };
    // One line, whatever the upstream text holds.
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    let mut r = Response::new(Chunks::from(Bytes::from_static(body.as_bytes())));
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
        let last_poll = f.last_poll.map_or_else(|| "never".to_owned(), rfc3339);
        let last = f.last_success.map_or_else(|| "never".to_owned(), rfc3339);
        let mut errors: Vec<String> = f
            .errors()
            .into_iter()
            .map(|(k, e)| {
                let mut line = esc(&error_line(k, e)).into_owned();
                if let Some(h) = f.health.get(&k) {
                    let _ = write!(
                        line,
                        " <small>({} in a row; next attempt {})</small>",
                        h.consecutive_failures,
                        h.next_attempt
                            .map_or_else(|| "at the next poll".to_owned(), rfc3339)
                    );
                }
                line
            })
            .collect();
        if let Some(t) = f.snapshot_recheck {
            errors.push(format!(
                "<small>snapshot: not applicable to this function; asked again {} or when its code changes</small>",
                rfc3339(t)
            ));
        }
        let _ = writeln!(
            rows,
            "<tr class=\"{status_class}\"><td><code>{urn}</code></td><td>{status}</td><td>{last_poll}</td><td>{last}</td><td>{errors}</td></tr>",
            status_class = if f.up() { "up" } else { "down" },
            urn = esc(&f.urn.to_string()),
            errors = errors.join("<br>"),
        );
    }
    // Permission denials, by project and collector, with the functions
    // refused (the API answers per function).
    let mut denied: std::collections::BTreeMap<
        (&str, crate::state::CollectorKind, &str),
        Vec<String>,
    > = std::collections::BTreeMap::new();
    for f in &functions {
        for (kind, h) in &f.health {
            if let Some(why) = &h.permission_denied {
                denied
                    .entry((f.urn.project_id(), *kind, why.as_str()))
                    .or_default()
                    .push(format!("{}:{}", f.urn.package(), f.urn.name()));
            }
        }
    }
    let permissions = if denied.is_empty() {
        String::new()
    } else {
        let mut out = String::from(
            "<h2>Permission denied</h2>\n<p>The credentials work, but may not call these APIs for these functions: only these collectors fail (and back off). Grant the permission named to the exporter's IAM user or agency.</p>\n<table>\n<tr><th>Project</th><th>Collector</th><th>Answer</th><th>Functions</th></tr>\n",
        );
        for ((project, kind, why), names) in &denied {
            let _ = writeln!(
                out,
                "<tr class=\"down\"><td><code>{}</code></td><td>{kind}</td><td>{}</td><td>{}</td></tr>",
                esc(project),
                esc(why),
                esc(&names.join(", ")),
            );
        }
        out.push_str("</table>\n");
        out
    };
    let body = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>FunctionGraph Exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}tr.down td{{background:#fee}}</style>
</head>
<body>
<h1>FunctionGraph Exporter</h1>
<p>Version {version}. <a href="{metrics}">Metrics</a> · <a href="/failures">Recent failures</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
<p>Values are refreshed by background polling (every {interval} s for asynchronous invocations; see <code>polling.intervals</code> for the others); scrapes are served from memory and never call the API. Times are UTC.</p>
{permissions}<h2>Functions ({up} of {total} up)</h2>
<table>
<tr><th>Function</th><th>Status</th><th>Last poll</th><th>Last success</th><th>Errors</th></tr>
{rows}</table>
</body>
</html>
"#,
        version = crate::collector::exporter::VERSION,
        metrics = esc(&state.telemetry_path),
        interval = state.interval.as_secs(),
        total = functions.len(),
    );
    let mut r = Response::new(Chunks::from(Bytes::from(body)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::CollectorKind;

    #[test]
    fn an_error_line_names_its_collector_once() {
        assert_eq!(
            error_line(
                CollectorKind::AsyncInvocations,
                "async_invocations: http 500: boom (request id r1)"
            ),
            "async_invocations: http 500: boom (request id r1)"
        );
        assert_eq!(
            error_line(
                CollectorKind::Snapshot,
                "snapshot_state: http 502:\n bad\r\ngateway"
            ),
            "snapshot_state: http 502: bad gateway"
        );
        assert_eq!(
            error_line(CollectorKind::Code, "no complete response within 10s"),
            "code: no complete response within 10s"
        );
    }

    #[test]
    fn the_telemetry_path_is_a_free_absolute_path() {
        assert_eq!(parse_telemetry_path("/prom").unwrap(), "/prom");
        for bad in [
            "metrics",
            "/",
            "/failures",
            "/-/ready",
            "/m?x=1",
            "/a b",
            "",
        ] {
            assert!(parse_telemetry_path(bad).is_err(), "{bad:?}");
        }
    }
}
