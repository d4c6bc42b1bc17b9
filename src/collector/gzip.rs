//! gzip bodies made of a large head that changes rarely and a small tail
//! that changes on every scrape, compressing the head only once.
//!
//! The head is deflated once and ended with a full flush: its output is
//! byte-aligned, no final block is written, and the compressor's window is
//! reset, so the deflate output of a fresh compressor may follow it
//! directly (the technique `pigz` uses to compress in parallel). A body is
//! then the gzip header and compressed head, kept, plus the tail deflated
//! on its own, plus a trailer with the CRC-32 and length of head and tail
//! together. The result is one ordinary gzip member that every client
//! decompresses.

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

/// A gzip member header: magic, deflate, no flags, no mtime, no extra
/// flags, unknown OS (RFC 1952).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Why compression failed (never expected with valid flate2 usage).
#[derive(Debug, thiserror::Error)]
#[error("gzip: {0}")]
pub struct GzipError(String);

/// A compressed head, ready to be completed by any number of tails.
pub struct GzipHead {
    bytes: Bytes,
    crc: u32,
    len: u64,
}

impl GzipHead {
    /// Compresses `head`.
    pub fn new(head: &[u8]) -> Result<Self, GzipError> {
        let mut bytes = Vec::with_capacity(head.len() / 4 + 64);
        bytes.extend_from_slice(&HEADER);
        let mut c = Compress::new(Compression::default(), false);
        deflate(&mut c, head, FlushCompress::Full, &mut bytes)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(head);
        Ok(Self {
            bytes: Bytes::from(bytes),
            crc: crc.finalize(),
            len: head.len() as u64,
        })
    }

    /// The complete gzip body of head followed by `tail`, in two parts: the
    /// cached compressed head (shared, not copied) and the rest.
    pub fn finish(&self, tail: &[u8]) -> Result<(Bytes, Vec<u8>), GzipError> {
        let mut out = Vec::with_capacity(tail.len() / 2 + 64);
        let mut c = Compress::new(Compression::default(), false);
        deflate(&mut c, tail, FlushCompress::Finish, &mut out)?;
        let mut crc = crc32fast::Hasher::new_with_initial_len(self.crc, self.len);
        crc.update(tail);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32.
        let total = self.len.wrapping_add(tail.len() as u64) as u32;
        out.extend_from_slice(&total.to_le_bytes());
        Ok((self.bytes.clone(), out))
    }
}

/// Runs `input` through `c` with `flush`, appending to `out`, until all
/// input is consumed and the flush is complete.
fn deflate(
    c: &mut Compress,
    mut input: &[u8],
    flush: FlushCompress,
    out: &mut Vec<u8>,
) -> Result<(), GzipError> {
    loop {
        out.reserve(input.len() / 2 + 1024);
        let before = c.total_in();
        let status = c
            .compress_vec(input, out, flush)
            .map_err(|e| GzipError(e.to_string()))?;
        let consumed = usize::try_from(c.total_in() - before)
            .map_err(|_| GzipError("consumed more than the input".to_owned()))?;
        input = input.get(consumed..).unwrap_or_default();
        match status {
            Status::StreamEnd => return Ok(()),
            // Done when everything was consumed and the output did not
            // fill up (a full buffer may hide pending flush output).
            Status::Ok | Status::BufError if input.is_empty() && out.len() < out.capacity() => {
                if matches!(flush, FlushCompress::Finish) {
                    continue;
                }
                return Ok(());
            }
            Status::Ok | Status::BufError => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn head_and_tails_round_trip() {
        let head: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("metric{{i=\"{}\"}} {}\n", i % 977, i).into_bytes())
            .collect();
        let prefix = GzipHead::new(&head).unwrap();
        for tail in [&b""[..], b"tail 1\n# EOF\n", &head[..5000]] {
            let (head_part, rest) = prefix.finish(tail).unwrap();
            let body = [&head_part[..], &rest[..]].concat();
            let mut expected = head.clone();
            expected.extend_from_slice(tail);
            assert_eq!(gunzip(&body), expected);
            // A single member: the plain decoder sees the end of the stream.
            assert!(body.len() < expected.len() / 4);
        }
    }

    #[test]
    fn empty_head() {
        let prefix = GzipHead::new(b"").unwrap();
        let joined = |(h, r): (Bytes, Vec<u8>)| [&h[..], &r[..]].concat();
        assert_eq!(gunzip(&joined(prefix.finish(b"x 1\n").unwrap())), b"x 1\n");
        assert_eq!(gunzip(&joined(prefix.finish(b"").unwrap())), b"");
    }
}
