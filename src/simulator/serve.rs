//! The simulator's own accept loop: HTTP/1 on plain TCP until a shutdown,
//! then a grace period for the connections still open. It shares nothing
//! with the exporter's server (a test double does not run on the code it
//! tests) beyond the neutral [`crate::accept`]: taking a connection off
//! the socket.

use std::future::Future;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long open connections get to finish after a shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers the connections on `listener` with `handler` until `shutdown`.
/// A handler error closes its connection without an answer (the
/// simulator's "connection reset" fault).
pub(super) async fn serve<H, F, B, E>(
    listener: TcpListener,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    E: Into<BoxError>,
{
    let graceful = GracefulShutdown::new();
    let builder = crate::accept::http1();
    while let Some((stream, _)) = crate::accept::next(&listener, &shutdown, "simulator: ").await {
        let connection =
            builder.serve_connection(TokioIo::new(stream), service_fn(handler.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "simulator: connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {}
    }
}
