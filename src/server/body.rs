//! The response body of the exporter's server: a few `Bytes` chunks sent
//! as they are, so the cached exposition goes out without being copied
//! (the cached part and the fresh tail are two chunks of one response).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// A body made of chunks.
#[derive(Debug, Default)]
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    len: u64,
}

impl Chunks {
    /// A body of these chunks, in order.
    pub fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let len = chunks.iter().map(|c| c.len() as u64).sum();
        Self { chunks, len }
    }
}

impl From<Bytes> for Chunks {
    fn from(b: Bytes) -> Self {
        Self::new([b])
    }
}

impl From<String> for Chunks {
    fn from(s: String) -> Self {
        Self::new([Bytes::from(s)])
    }
}

impl From<&'static str> for Chunks {
    fn from(s: &'static str) -> Self {
        Self::new([Bytes::from_static(s.as_bytes())])
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.chunks.pop_front().map(|c| {
            this.len -= c.len() as u64;
            Ok(Frame::data(c))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn chunks_are_sent_in_order_with_an_exact_length() {
        let body = Chunks::new([Bytes::from("ab"), Bytes::new(), Bytes::from("cde")]);
        assert_eq!(body.size_hint().exact(), Some(5));
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"abcde");
    }
}
