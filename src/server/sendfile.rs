//! A plain TCP connection that sends mirrored bytes ([`crate::mirror`])
//! with `sendfile` instead of copying them.
//!
//! hyper writes a response as a vectored write of its head and the body's
//! chunks, borrowed from the body's `Bytes`. When one of those slices
//! lies in a mirrored buffer, what comes before it (the response's head)
//! is sent marked "more to come", so it shares packets with what follows,
//! and the slice itself goes with `sendfile` from the buffer's memory
//! file, which lends the file's pages to the socket instead of copying
//! them. hyper sees ordinary partial writes and carries on with the rest.
//!
//! Only bodies served many times a second are mirrored, and then whole
//! (`exposition::MIRROR_AFTER`; up to `exposition::MIRROR_MAX`, above
//! which copying costs less), so such a response is two system calls and
//! leaves in one push. Measured at 1,000 functions (`bench -- ab`,
//! BENCHMARKS.md), that serves 64 connections 4 % more requests a second
//! than copying the body and one connection as many; sending a mirrored
//! part of the body this way and copying the rest after it made a third
//! call and a second push, and served fewer than copying.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustix::net::SendFlags;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that sends mirrored slices with `sendfile`.
pub(super) struct SendfileStream {
    stream: TcpStream,
}

impl SendfileStream {
    pub(super) fn new(stream: TcpStream) -> Self {
        Self { stream }
    }

    /// Runs `f` once the socket is writable, until it no longer says
    /// "would block".
    fn poll_io(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_io(Interest::WRITABLE, || f(&self.stream)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mirrored = bufs
            .iter()
            .enumerate()
            .find_map(|(i, b)| crate::mirror::find(b).map(|found| (i, found)));
        let Some((i, (file, offset))) = mirrored else {
            return Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        };
        if bufs[..i].iter().any(|b| !b.is_empty()) {
            // What comes before (usually the response's head), marked
            // more to come: it leaves in the same packets as the file's
            // pages.
            return this.poll_io(cx, |s| {
                rustix::net::sendmsg(s, &bufs[..i], &mut Default::default(), SendFlags::MORE)
                    .map_err(io::Error::from)
            });
        }
        let len = bufs[i].len();
        let sent = ready!(this.poll_io(cx, |s| {
            let mut at = offset;
            rustix::fs::sendfile(s, &*file, Some(&mut at), len).map_err(io::Error::from)
        }))?;
        #[cfg(test)]
        tests::SENT_FROM_FILES.fetch_add(sent as u64, std::sync::atomic::Ordering::Relaxed);
        if sent == 0 {
            // The file is sealed at the buffer's length: never expected,
            // and no reason to try again.
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "sendfile sent nothing from a mirrored body",
            )));
        }
        Poll::Ready(Ok(sent))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use bytes::Bytes;
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::server::Chunks;

    /// The bytes any `SendfileStream` sent with `sendfile`.
    pub(super) static SENT_FROM_FILES: AtomicU64 = AtomicU64::new(0);

    /// Three responses on one connection, each a head, a mirrored body and
    /// a plain chunk, read by a client with a small receive buffer (so the
    /// server's writes stop and resume many times): every byte arrives, in
    /// order, the mirrored ones by `sendfile`.
    #[tokio::test]
    async fn mirrored_bodies_arrive_whole_and_in_order() {
        let body: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mirrored = crate::mirror::mirrored(body.clone());
        assert!(crate::mirror::find(&mirrored).is_some());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = mirrored.clone();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(move |_| {
                let chunks = Chunks::new([served.slice(1..), Bytes::from_static(b"tail")]);
                async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(chunks)) }
            });
            http1::Builder::new()
                .serve_connection(TokioIo::new(SendfileStream::new(stream)), service)
                .await
        });
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = BufReader::new(socket.connect(addr).await.unwrap());
        let expected = [&body[1..], b"tail"].concat();
        for round in 0..3 {
            let before = SENT_FROM_FILES.load(Ordering::Relaxed);
            client
                .get_mut()
                .write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
                .await
                .unwrap();
            let mut len = None;
            loop {
                let mut line = String::new();
                client.read_line(&mut line).await.unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = Some(v.trim().parse::<usize>().unwrap());
                }
            }
            assert_eq!(len, Some(expected.len()));
            let mut got = vec![0; expected.len()];
            client.read_exact(&mut got).await.unwrap();
            assert!(got == expected, "round {round}: the body as sent");
            let sent = SENT_FROM_FILES.load(Ordering::Relaxed) - before;
            assert_eq!(sent, body.len() as u64 - 1, "round {round}: sendfile");
        }
        drop(client);
        server.await.unwrap().unwrap();
    }
}
