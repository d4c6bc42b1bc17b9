//! The accept loop: TCP connections, TLS when the web configuration asks
//! for it, HTTP/1 on each connection, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::ClientAddr;
use crate::web::LiveWebConfig;

/// How long in-flight responses get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);
/// A client must complete the TLS handshake within this time.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts HTTP/1 connections and answers them with `handler` until
/// `shutdown`, with TLS on every connection when `web` says so; then stops
/// accepting and gives open connections [`SHUTDOWN_GRACE`] to finish.
/// The web configuration is refreshed (files re-read if they changed) once
/// per new connection, before its handshake.
pub(super) async fn accept_loop<H, F, B, E>(
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
    let builder = crate::accept::http1();
    while let Some((stream, peer)) = crate::accept::next(&listener, &shutdown, "").await {
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
                None => {
                    #[cfg(target_os = "linux")]
                    let stream = super::sendfile::SendfileStream::new(stream);
                    serve_io(&builder, watcher, stream, service).await;
                }
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
