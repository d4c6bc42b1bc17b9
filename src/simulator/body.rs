//! The simulator's response body: whole, or streamed to misbehave (a body
//! of hundreds of megabytes sent without holding it, or half a body and
//! then nothing, ever).

use bytes::Bytes;
use http_body_util::Full;

/// A response body: whole, or streamed to misbehave.
pub(super) enum SimBody {
    Full(Full<Bytes>),
    /// Valid JSON of `total` bytes, sent in chunks (several hundred MB
    /// without holding them).
    Huge {
        total: u64,
        left: u64,
        head: bool,
    },
    /// Half a body, then nothing, ever.
    Stall {
        first: Option<Bytes>,
    },
}

impl SimBody {
    const CHUNK: usize = 64 * 1024;

    pub(super) fn huge(size: usize) -> Self {
        let total = size as u64 + 15; // {"padding":"…"}
        SimBody::Huge {
            total,
            left: total,
            head: true,
        }
    }

    pub(super) fn stall() -> Self {
        SimBody::Stall {
            first: Some(Bytes::from_static(
                b"{\"invocations\":[{\"request_id\":\"a\",",
            )),
        }
    }

    /// The Content-Length to announce.
    pub(super) fn declared_len(&self) -> Option<u64> {
        match self {
            SimBody::Full(_) => None,
            SimBody::Huge { total, .. } => Some(*total),
            SimBody::Stall { .. } => Some(4096),
        }
    }
}

impl hyper::body::Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        match self.get_mut() {
            SimBody::Full(chunks) => std::pin::Pin::new(chunks)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|never| match never {}))),
            SimBody::Huge { left, head, .. } => {
                if *left == 0 {
                    return Poll::Ready(None);
                }
                let chunk = if *head {
                    *head = false;
                    Bytes::from_static(b"{\"padding\":\"")
                } else if *left == 2 {
                    Bytes::from_static(b"\"}")
                } else {
                    let n = (*left - 2).min(Self::CHUNK as u64) as usize;
                    Bytes::from(vec![b'x'; n])
                };
                *left -= chunk.len() as u64;
                Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
            }
            SimBody::Stall { first } => match first.take() {
                Some(b) => Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
                // Never woken: the client's timeout ends it.
                None => Poll::Pending,
            },
        }
    }
}
