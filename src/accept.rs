//! Taking connections off a listening socket, the same way for both HTTP
//! servers in the crate: the exporter's ([`crate::server`]) and the
//! simulator's. A neutral piece, so that neither depends on the other.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// HTTP/1 connections as both servers serve them: request headers within
/// [`HEADER_READ_TIMEOUT`].
pub(crate) fn http1() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// The next connection on `listener`, or `None` once `shutdown` is
/// cancelled. A failed accept (usually: out of file descriptors) is logged
/// and retried after a pause instead of spinning. `who` starts the log
/// lines (`""` or `"simulator: "`).
///
/// The connection has `TCP_NODELAY` set: responses leave at once; without
/// it, a body's last segment waits for the client's delayed ACK (Nagle),
/// which is most of a request's latency on a fast network.
pub(crate) async fn next(
    listener: &TcpListener,
    shutdown: &CancellationToken,
    who: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "{who}setting TCP_NODELAY");
                }
                return Some((stream, peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, "{who}accepting a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
