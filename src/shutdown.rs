//! Signals: SIGTERM (what Kubernetes and systemd send) and SIGINT (Ctrl-C)
//! cancel the one token every task watches; SIGHUP asks for a reload.

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGTERM or SIGINT, logging which arrived.
pub async fn cancel_on_signal(token: CancellationToken) {
    let signal = wait_for_signal().await;
    tracing::info!(signal, "shutting down");
    token.cancel();
}

/// Turns every SIGHUP into a reload request until `shutdown`.
pub async fn reload_on_sighup(
    requests: tokio::sync::mpsc::Sender<crate::server::ReloadRequest>,
    shutdown: CancellationToken,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP; reload with POST /-/reload");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = hup.recv() => {
                    tracing::info!(signal = "SIGHUP", "reloading the configuration");
                    let (reply, _) = tokio::sync::oneshot::channel();
                    if requests.send(reply).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (requests, shutdown);
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C will stop the exporter");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
