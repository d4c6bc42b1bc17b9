//! gzip bodies assembled from pieces compressed one by one, so that a
//! piece is compressed when its text changes and not at every scrape.
//!
//! Each piece is deflated on its own (a compressor freshly reset, so it
//! refers to nothing before it) and ended with a full flush: its output is
//! byte-aligned and holds no final block, so pieces may follow one another
//! in any order and the deflate stream stays valid (the technique `pigz`
//! uses to compress in parallel). A body is the gzip header, the pieces,
//! one last piece (the part that changes per scrape) with the final block,
//! and a trailer with the CRC-32 and length of the whole, which are
//! combined from the pieces' own without reading them again. The result is
//! one ordinary gzip member that every client decompresses.
//!
//! Combining two CRCs multiplies the first by x^(8·len) of the second
//! (modulo the CRC polynomial). Each piece computes its factor once, when
//! it is compressed; an assembly then costs one multiplication per piece
//! (computing the factor each time, as `crc32fast`'s `combine` does, took
//! about a microsecond a piece: 0.4 ms of every assembly at 500 functions).
//!
//! Pieces are compressed by zlib-rs at level 1 (zlib-ng's "quick"
//! strategy: static Huffman codes, no trees to build per piece): a piece
//! is compressed again whenever its text changes, and a scrape's cost is
//! mostly the pieces its polls changed, so speed matters more than the
//! last byte. Measured on exposition text cut into pieces of 2, 8 and
//! 30 KB (BENCHMARKS.md, "Later on 2026-12-03"), level 1 takes 2.6, 1.1
//! and 0.9 ms per MB against level 2's 6.3, 2.6 and 1.9 (building each
//! piece's Huffman trees and resetting the compressor is most of level
//! 2's cost on small pieces), for 10 to 20 % more bytes; in the exporter
//! (BENCHMARKS.md, "Once more on 2026-12-03") a scrape of a changing
//! store at 1,000 functions cost 28 % less CPU, for a body 24 % larger.
//! It is also 2 to 3 times as fast as miniz_oxide's level 1 (flate2's
//! default backend), which makes 10 to 14 % fewer bytes.

use std::sync::Mutex;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};
use zlib_rs::crc32::{crc32, crc32_combine_gen, crc32_combine_op};

use crate::sync::MutexExt;

/// A gzip member header: magic, deflate, no flags, no mtime, no extra
/// flags, unknown OS (RFC 1952).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Why compression failed (never expected with valid flate2 usage).
#[derive(Debug, thiserror::Error)]
#[error("gzip: {0}")]
pub struct GzipError(String);

impl GzipError {
    pub fn new(what: &str) -> Self {
        Self(what.to_owned())
    }
}

/// The compression level of every piece (see the module documentation).
const LEVEL: u32 = 1;

/// The spare deflaters [`Deflater::with`] keeps.
const MAX_SPARE: usize = 4;

/// A compressor, reused from piece to piece (setting one up costs more
/// than compressing a small piece).
pub struct Deflater {
    c: Compress,
}

impl Default for Deflater {
    fn default() -> Self {
        Self {
            c: Compress::new(Compression::new(LEVEL), false),
        }
    }
}

impl Deflater {
    /// Compresses `plain` into a piece that can stand anywhere in a
    /// deflate stream before its last block.
    pub fn piece(&mut self, plain: &[u8]) -> Result<Deflated, GzipError> {
        let mut out = Vec::with_capacity(plain.len() / 8 + 64);
        self.c.reset();
        deflate(&mut self.c, plain, FlushCompress::Full, &mut out)?;
        // A piece is kept until its text changes: not the spare capacity
        // reserved for the compressor's output (an eighth of the text,
        // about twice what the compressor makes of an exposition).
        out.shrink_to_fit();
        let len = plain.len() as u64;
        Ok(Deflated {
            bytes: Bytes::from(out),
            crc: crc32(0, plain),
            len,
            shift: crc32_combine_gen(len),
        })
    }

    /// Compresses `plain` as the end of a deflate stream, onto `out`.
    fn last(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), GzipError> {
        self.c.reset();
        deflate(&mut self.c, plain, FlushCompress::Finish, out)
    }

    /// Runs `f` with a spare deflater, kept for the next call whichever
    /// thread makes it. (Not one per thread: a rendering runs on a
    /// blocking-pool thread, which exits after 10 s idle, so with one
    /// scraper every 15 s each rendering set up a compressor of its own,
    /// a few hundred KB of tables allocated and zeroed.)
    pub fn with<T>(f: impl FnOnce(&mut Deflater) -> T) -> T {
        static SPARE: Mutex<Vec<Deflater>> = Mutex::new(Vec::new());
        let mut d = SPARE.lock_or_recover().pop().unwrap_or_default();
        let out = f(&mut d);
        // As many as renderings ran at once, up to a few.
        let mut spare = SPARE.lock_or_recover();
        if spare.len() < MAX_SPARE {
            spare.push(d);
        }
        out
    }
}

/// A compressed piece, with the CRC-32 and length of its plain text.
#[derive(Debug, Clone)]
pub struct Deflated {
    bytes: Bytes,
    crc: u32,
    len: u64,
    /// x^(8·len) modulo the CRC polynomial: what a CRC is multiplied by to
    /// be followed by this piece's.
    shift: u32,
}

impl Deflated {
    /// The size of the compressed piece.
    pub fn compressed_len(&self) -> usize {
        self.bytes.len()
    }
}

/// The start of a gzip body: header and pieces, ready to be completed by
/// any number of last pieces.
#[derive(Debug)]
pub struct GzipHead {
    bytes: Bytes,
    crc: u32,
    len: u64,
}

impl GzipHead {
    /// The header followed by `pieces`, in one buffer.
    pub fn new<'a>(pieces: impl IntoIterator<Item = &'a Deflated> + Clone) -> Self {
        let size: usize = pieces.clone().into_iter().map(|p| p.bytes.len()).sum();
        let mut bytes = Vec::with_capacity(HEADER.len() + size);
        bytes.extend_from_slice(&HEADER);
        // The CRC-32 of nothing is 0.
        let mut crc = 0;
        let mut len = 0u64;
        for p in pieces {
            bytes.extend_from_slice(&p.bytes);
            crc = crc32_combine_op(crc, p.crc, p.shift);
            len += p.len;
        }
        Self {
            bytes: Bytes::from(bytes),
            crc,
            len,
        }
    }

    /// The complete gzip body of the head followed by `tail`, in two parts:
    /// the head (shared, not copied) and the rest.
    pub fn finish(&self, tail: &[u8]) -> Result<(Bytes, Vec<u8>), GzipError> {
        let mut out = Vec::with_capacity(tail.len() / 4 + 64);
        Deflater::with(|d| d.last(tail, &mut out))?;
        out.extend_from_slice(&crc32(self.crc, tail).to_le_bytes());
        // ISIZE is the length modulo 2^32.
        let total = self.len.wrapping_add(tail.len() as u64) as u32;
        out.extend_from_slice(&total.to_le_bytes());
        Ok((self.bytes.clone(), out))
    }

    /// The length of the plain text of the head.
    pub fn plain_len(&self) -> u64 {
        self.len
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
        out.reserve(input.len() / 4 + 1024);
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

    fn text(n: u32, salt: u32) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("metric{{i=\"{}\"}} {}\n", i % 977, i ^ salt).into_bytes())
            .collect()
    }

    /// Pieces compressed apart, in any order and number, then a tail, make
    /// one gzip member of their texts in that order.
    #[test]
    fn pieces_and_tails_round_trip() {
        let mut d = Deflater::default();
        let texts = [text(20_000, 1), Vec::new(), text(10, 2), text(70_000, 3)];
        let pieces: Vec<Deflated> = texts.iter().map(|t| d.piece(t).unwrap()).collect();
        for order in [[0, 1, 2, 3], [3, 2, 0, 1], [2, 2, 3, 0]] {
            let head = GzipHead::new(order.iter().map(|i| &pieces[*i]));
            for tail in [&b""[..], b"tail 1\n# EOF\n", &texts[0][..5000]] {
                let (h, rest) = head.finish(tail).unwrap();
                let body = [&h[..], &rest[..]].concat();
                let mut expected: Vec<u8> = order.iter().flat_map(|i| texts[*i].clone()).collect();
                expected.extend_from_slice(tail);
                // A single member: the plain decoder saw the whole stream.
                assert_eq!(gunzip(&body), expected);
                // Compressed, not stored (this text of numbers takes 30 %).
                assert!(
                    body.len() < expected.len() / 3 + 100,
                    "{} of {}",
                    body.len(),
                    expected.len()
                );
            }
        }
    }

    #[test]
    fn nothing_but_a_tail() {
        let head = GzipHead::new(std::iter::empty());
        let joined = |(h, r): (Bytes, Vec<u8>)| [&h[..], &r[..]].concat();
        assert_eq!(gunzip(&joined(head.finish(b"x 1\n").unwrap())), b"x 1\n");
        assert_eq!(gunzip(&joined(head.finish(b"").unwrap())), b"");
    }
}
