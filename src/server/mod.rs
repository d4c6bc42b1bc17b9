//! The HTTP server: `/metrics`, the landing page and the health endpoints,
//! and the accept loop with graceful shutdown.
//!
//! Requests are answered from memory only; nothing here calls the API.
//!
//! - [`serve`] (here) starts one accept loop ([`listener`]) per listener:
//!   TLS, connection handling, graceful shutdown.
//! - `routes`: authentication, then which path gets which answer;
//!   `/metrics` negotiates its format (OpenMetrics 1.0.0 or text 0.0.4) and
//!   gzip compression (`negotiate`), its bodies come from the exposition's
//!   cache.
//! - `landing`: the HTML page on `/`; `failures`: `/failures`.
//! - `sendfile`: plain TCP connections send bodies mirrored in a memory
//!   file ([`crate::mirror`]: gzip expositions served many times a
//!   second) with `sendfile`.
//!
//! With `--web.config.file` ([`crate::web`]), connections are TLS (the
//! configuration is re-checked on every new connection, so a rotated
//! certificate is served without a restart) and every path requires basic
//! authentication when users are configured, as in exporter-toolkit.
//!
//! `POST /-/reload` is the lifecycle API: as in Prometheus it answers 403
//! unless `--web.enable-lifecycle` was given (SIGHUP always reloads), and
//! it is rate-limited: a few reloads at once, then one every two seconds.
//! The server owns the two signals it serves: a [`ReloadRequest`] it sends
//! to whoever applies reloads, and the [`Readiness`] it reports on
//! `/-/ready`; the application wires both.

mod body;
mod failures;
mod landing;
mod listener;
mod negotiate;
mod routes;
#[cfg(target_os = "linux")]
mod sendfile;

pub use body::Chunks;
pub use listener::SHUTDOWN_GRACE;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::Response;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::exposition::Renderer;
use crate::state::Store;
use crate::web::LiveWebConfig;

/// A response as every handler here builds it.
pub type HttpResponse = Response<Chunks>;

/// A reload asked for (over HTTP, or by SIGHUP): the reply says whether it
/// worked.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Whether the exporter is ready (`/-/ready`): true once the first poll
/// cycle has completed. Whoever polls sets it; the server only reads it.
#[derive(Clone)]
pub struct Readiness(watch::Receiver<bool>);

impl Readiness {
    /// Ready when `signal` holds true.
    pub fn new(signal: watch::Receiver<bool>) -> Self {
        Self(signal)
    }

    /// True once the first poll cycle has completed.
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }
}

/// What the exporter's handlers need.
pub struct ServerState {
    pub renderer: Arc<Renderer>,
    pub store: Arc<Store>,
    /// Answers `/-/ready`.
    pub readiness: Readiness,
    /// For the landing page.
    pub interval: Duration,
    /// `--web.config.file`: TLS and basic authentication.
    pub web: Option<Arc<LiveWebConfig>>,
    /// Where `POST /-/reload` sends its request: `None` unless the
    /// lifecycle API is enabled (`--web.enable-lifecycle`).
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
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
    for tcp in listeners {
        let web = state.web.clone();
        let state = Arc::clone(&state);
        loops.spawn(listener::accept_loop(
            tcp,
            shutdown.clone(),
            web,
            move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(routes::handle(&state, req).await) }
            },
        ));
    }
    while loops.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

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
