//! gzip bodies assembled from pieces compressed one by one, so that a
//! piece is compressed when its text changes and not at every scrape.
//!
//! Each piece is deflated on its own (a compressor freshly reset, so it
//! refers to nothing before it) and ended with a sync flush: its output is
//! byte-aligned and holds no final block, so pieces may follow one another
//! in any order and the deflate stream stays valid (the technique `pigz`
//! uses to compress in parallel). (Not a full flush: it makes the same
//! bytes, and also clears the compressor's 128 KB hash table, which the
//! reset before the next piece clears again: an eighth of
//! compressing a piece of a few KB.) A piece may instead be *chained* to
//! the piece compressed just before it ([`Deflater::piece_after`]): no
//! reset, so it may refer to that piece's text, and it is valid only right
//! after that piece; whoever keeps pieces compresses it again when its
//! predecessor changes (chains are kept under [`CHAIN_LIMIT`] so that a
//! change costs little more than its own piece). A body is the gzip header, the pieces,
//! the part read again for every body (`process_*`) stored uncompressed in
//! the final block, and a trailer with the CRC-32 and length of the whole, which are
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
//!
//! A head sent often enough is worth compressing again as one stream
//! ([`GzipHead::compact`]): inflated and deflated anew at level 2, without
//! the pieces' boundaries, it is about a third smaller, for about what
//! compressing the whole exposition once costs (6 ms at 1,000 functions,
//! 80 ms at 10,000).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use zlib_rs::crc32::{crc32, crc32_combine_gen, crc32_combine_op};

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

/// The compression level of a compacted head ([`GzipHead::compact`]):
/// zlib-rs's level 2 is its fastest with Huffman codes built for the text
/// (level 1 uses fixed ones); measured in BENCHMARKS.md.
const COMPACT_LEVEL: u32 = 2;

/// How much plain text a chain of pieces ([`Deflater::piece_after`]) may
/// hold before the next piece starts a chain of its own: a piece that
/// changes makes every piece chained after it compress again, so a chain
/// is kept short; past a deflate window (32 KB), a reset is a small part
/// of compressing the text anyway.
const CHAIN_LIMIT: usize = 32 * 1024;

/// A compressor, reused from piece to piece (setting one up costs more
/// than compressing a small piece).
pub struct Deflater {
    c: Compress,
    /// What the compressor writes into, kept from piece to piece: a piece
    /// is then one allocation of its exact size.
    out: Vec<u8>,
    /// The piece the compressor made last, and the plain bytes it took
    /// since its last reset: the state a piece chained after it goes on
    /// from (`None` after a failure, which leaves the state unknown).
    last: Option<(u64, usize)>,
}

impl Default for Deflater {
    fn default() -> Self {
        Self {
            c: Compress::new(Compression::new(LEVEL), false),
            out: Vec::new(),
            last: None,
        }
    }
}

impl Deflater {
    /// Compresses `plain` into a piece that can stand anywhere in a
    /// deflate stream before its last block.
    pub fn piece(&mut self, plain: &[u8]) -> Result<Deflated, GzipError> {
        self.compress(plain, None)
    }

    /// Compresses `plain` into a piece to be sent right after the piece
    /// `previous`. When that is the piece this compressor made last (and
    /// their chain is shorter than [`CHAIN_LIMIT`]), the compressor goes
    /// on without a reset: the piece may refer to the text before it, and
    /// stands only right after `previous` ([`Deflated::after`]), which
    /// saves the reset and compresses better. Otherwise as
    /// [`Deflater::piece`].
    pub fn piece_after(&mut self, plain: &[u8], previous: u64) -> Result<Deflated, GzipError> {
        let chained = self
            .last
            .is_some_and(|(id, run)| id == previous && run < CHAIN_LIMIT);
        self.compress(plain, chained.then_some(previous))
    }

    fn compress(&mut self, plain: &[u8], after: Option<u64>) -> Result<Deflated, GzipError> {
        let run = match (after, self.last.take()) {
            (Some(_), Some((_, run))) => run,
            _ => {
                self.c.reset();
                0
            }
        };
        self.out.clear();
        deflate(&mut self.c, plain, FlushCompress::Sync, &mut self.out)?;
        let len = plain.len() as u64;
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.last = Some((id, run + plain.len()));
        Ok(Deflated {
            id,
            after,
            // A piece is kept until its text changes: not the spare
            // capacity the compressor's output was given.
            bytes: Bytes::copy_from_slice(&self.out),
            crc: crc32(0, plain),
            len,
            shift: crc32_combine_gen(len),
        })
    }
}

/// A compressed piece, with the CRC-32 and length of its plain text.
#[derive(Debug, Clone)]
pub struct Deflated {
    /// Unique to this piece in the process (never reused, unlike the
    /// address of its bytes once they are freed).
    id: u64,
    /// The piece this one was compressed right after, without a reset
    /// ([`Deflater::piece_after`]): it may refer to that piece's text (and
    /// to the chain's before it), so it stands only right after it.
    after: Option<u64>,
    bytes: Bytes,
    crc: u32,
    len: u64,
    /// x^(8·len) modulo the CRC polynomial: what a CRC is multiplied by to
    /// be followed by this piece's.
    shift: u32,
}

impl Deflated {
    /// What tells this piece from every other.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The piece this one must follow, if it was chained to one.
    pub fn after(&self) -> Option<u64> {
        self.after
    }

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
    /// Each piece's id and where its bytes start in `bytes`, in order.
    index: Vec<(u64, usize)>,
}

/// How far [`GzipHead::new`] looks ahead in the previous head for a piece
/// before copying it from the piece itself.
const LOOK_AHEAD: usize = 64;

impl GzipHead {
    /// The header followed by `pieces`, in one buffer.
    ///
    /// The pieces that `previous` holds too are copied from its buffer, a
    /// run of consecutive ones at a time: between two scrapes most pieces
    /// stay, and one sequential copy of the previous buffer reads memory
    /// faster than pieces scattered over the heap, untouched for seconds
    /// (copying them one by one was the most of assembling a head).
    pub fn new<'a>(
        previous: Option<&GzipHead>,
        pieces: impl IntoIterator<Item = &'a Deflated> + Clone,
    ) -> Self {
        let size: usize = pieces.clone().into_iter().map(|p| p.bytes.len()).sum();
        let mut bytes = Vec::with_capacity(HEADER.len() + size);
        bytes.extend_from_slice(&HEADER);
        let (old, old_index) =
            previous.map_or((&[][..], &[][..]), |h| (&h.bytes[..], &h.index[..]));
        let mut index = Vec::with_capacity(old_index.len().max(16));
        // The run of the previous buffer still to be copied, and where the
        // previous head's index is up to.
        let mut run = 0..0;
        let mut next = 0;
        // The CRC-32 of nothing is 0.
        let mut crc = 0;
        let mut len = 0u64;
        for p in pieces {
            index.push((p.id, bytes.len() + run.len()));
            let found = old_index
                .get(next..)
                .unwrap_or_default()
                .iter()
                .take(LOOK_AHEAD)
                .position(|(id, _)| *id == p.id);
            match found {
                Some(k) => {
                    let start = old_index[next + k].1;
                    next += k + 1;
                    if start != run.end {
                        bytes.extend_from_slice(&old[run.clone()]);
                        run = start..start;
                    }
                    run.end = start + p.bytes.len();
                }
                None => {
                    bytes.extend_from_slice(&old[run.clone()]);
                    run = 0..0;
                    bytes.extend_from_slice(&p.bytes);
                }
            }
            crc = crc32_combine_op(crc, p.crc, p.shift);
            len += p.len;
        }
        bytes.extend_from_slice(&old[run]);
        Self {
            bytes: Bytes::from(bytes),
            crc,
            len,
            index,
        }
    }

    /// The complete gzip body of the head, then `piece`, then `tail`, in
    /// two parts: the head (shared, not copied) and the rest (a copy of
    /// the piece, a few KB, and the tail stored uncompressed (see
    /// [`stored_last`]): one write fewer than sending the piece apart,
    /// which cost a fifth of the requests a second on one connection).
    pub fn finish(&self, piece: &Deflated, tail: &[u8]) -> (Bytes, Vec<u8>) {
        let mut out = Vec::with_capacity(piece.bytes.len() + tail.len() + 64);
        out.extend_from_slice(&piece.bytes);
        stored_last(tail, &mut out);
        let crc = crc32_combine_op(self.crc, piece.crc, piece.shift);
        out.extend_from_slice(&crc32(crc, tail).to_le_bytes());
        // ISIZE is the length modulo 2^32.
        let total = self
            .len
            .wrapping_add(piece.len)
            .wrapping_add(tail.len() as u64) as u32;
        out.extend_from_slice(&total.to_le_bytes());
        (self.bytes.clone(), out)
    }

    /// The length of the plain text of the head.
    pub fn plain_len(&self) -> u64 {
        self.len
    }

    /// The size of the head as sent.
    pub fn compressed_len(&self) -> usize {
        self.bytes.len()
    }

    /// The same text compressed again as one stream rather than pieces
    /// (so that later text refers to earlier, and with Huffman codes built
    /// for it), for a head sent often enough to be worth it: an
    /// exposition comes out about a third smaller. It streams (the text is
    /// never whole in memory) and checks what it decompressed against the
    /// head's length and CRC-32. The result has no piece index, so a head
    /// built after it copies every piece from the pieces themselves.
    pub fn compact(&self) -> Result<GzipHead, GzipError> {
        let stream = self
            .bytes
            .get(HEADER.len()..)
            .ok_or_else(|| GzipError::new("compacting: a head without a header"))?;
        let mut inflate = Decompress::new(false);
        let mut deflater = Compress::new(Compression::new(COMPACT_LEVEL), false);
        let mut out = Vec::with_capacity(self.bytes.len() / 2);
        out.extend_from_slice(&HEADER);
        let mut plain = Vec::with_capacity(64 * 1024);
        let mut input = stream;
        let mut crc = 0;
        loop {
            plain.clear();
            let before = inflate.total_in();
            let status = inflate
                .decompress_vec(input, &mut plain, FlushDecompress::None)
                .map_err(|e| GzipError(format!("compacting: {e}")))?;
            let consumed = usize::try_from(inflate.total_in() - before)
                .map_err(|_| GzipError::new("compacting: consumed more than the input"))?;
            input = input.get(consumed..).unwrap_or_default();
            if status == Status::StreamEnd {
                return Err(GzipError::new("compacting: a head with a final block"));
            }
            if plain.is_empty() {
                if consumed == 0 {
                    break;
                }
                continue;
            }
            crc = crc32(crc, &plain);
            deflate(&mut deflater, &plain, FlushCompress::None, &mut out)?;
        }
        if !input.is_empty() || inflate.total_out() != self.len || crc != self.crc {
            return Err(GzipError::new(
                "compacting: the head does not decompress to its own text",
            ));
        }
        deflate(&mut deflater, &[], FlushCompress::Sync, &mut out)?;
        out.shrink_to_fit();
        Ok(GzipHead {
            bytes: Bytes::from(out),
            crc: self.crc,
            len: self.len,
            index: Vec::new(),
        })
    }
}

/// `plain` as the last blocks of a byte-aligned deflate stream, stored as
/// they are (RFC 1951, 3.2.4: a block header in a byte of its own, then
/// the length and its complement, then the bytes).
///
/// The tail (the `process_*` families) is read again for every body and
/// is a kilobyte or two: compressing it meant resetting a compressor,
/// which clears zlib-rs's 128 KB hash table, for a few hundred bytes
/// saved (a twentieth of a changing store's rendering at 500 functions).
fn stored_last(plain: &[u8], out: &mut Vec<u8>) {
    const MAX: usize = u16::MAX as usize;
    let blocks = plain.len().div_ceil(MAX).max(1);
    out.reserve(plain.len() + 5 * blocks);
    for i in 0..blocks {
        let block = plain
            .get(i * MAX..plain.len().min((i + 1) * MAX))
            .unwrap_or_default();
        // BFINAL on the last block, BTYPE 00 (stored), the rest of the
        // byte padding.
        out.push(u8::from(i + 1 == blocks));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
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

    /// The tail is stored, in as many blocks as its length needs (at most
    /// 65,535 bytes each); the body decompresses, checksum and length
    /// included, to the head's text and the tail.
    #[test]
    fn a_tail_of_any_length_is_stored_in_final_blocks() {
        let mut d = Deflater::default();
        let piece = d.piece(b"head text\n").unwrap();
        let head = GzipHead::new(None, [&piece]);
        let empty = d.piece(b"").unwrap();
        for n in [0, 1, 65_535, 65_536, 200_000] {
            let tail: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
            let (h, rest) = head.finish(&empty, &tail);
            assert!(rest.len() >= n, "stored, not compressed");
            let body = [&h[..], &rest[..]].concat();
            assert!(
                gunzip(&body) == [&b"head text\n"[..], &tail].concat(),
                "{n} bytes"
            );
        }
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
        let own = b"own_metric 1\n".repeat(50);
        let own_piece = d.piece(&own).unwrap();
        for order in [[0, 1, 2, 3], [3, 2, 0, 1], [2, 2, 3, 0]] {
            let head = GzipHead::new(None, order.iter().map(|i| &pieces[*i]));
            for tail in [&b""[..], b"tail 1\n# EOF\n", &texts[0][..5000]] {
                let (h, rest) = head.finish(&own_piece, tail);
                let body = [&h[..], &rest[..]].concat();
                let mut expected: Vec<u8> = order.iter().flat_map(|i| texts[*i].clone()).collect();
                expected.extend_from_slice(&own);
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

    /// Pieces chained one after another say their texts in that order,
    /// compress better than alone, and a chain starts anew past
    /// CHAIN_LIMIT or when the piece asked to follow is not the last one
    /// made.
    #[test]
    fn chained_pieces_follow_the_piece_they_were_made_after() {
        let mut d = Deflater::default();
        let texts: Vec<Vec<u8>> = (0..12).map(|i| text(150 + i, 7)).collect();
        let first = d.piece(&texts[0]).unwrap();
        assert_eq!(first.after(), None);
        let mut chain = vec![first];
        for t in &texts[1..] {
            let previous = chain.last().unwrap().id();
            chain.push(d.piece_after(t, previous).unwrap());
        }
        let mut run = 0;
        for (i, p) in chain.iter().enumerate().skip(1) {
            run += texts[i - 1].len();
            if run >= CHAIN_LIMIT {
                assert_eq!(p.after(), None, "piece {i} starts a chain");
                run = 0;
            } else {
                assert_eq!(p.after(), Some(chain[i - 1].id()), "piece {i}");
            }
        }
        assert!(chain.iter().any(|p| p.after().is_none()) && chain[1].after().is_some());
        let empty = d.piece(b"").unwrap();
        let (h, rest) = GzipHead::new(None, &chain).finish(&empty, b"# EOF\n");
        let body = [&h[..], &rest[..]].concat();
        let mut expected = texts.concat();
        expected.extend_from_slice(b"# EOF\n");
        assert_eq!(gunzip(&body), expected);
        let alone: usize = texts
            .iter()
            .map(|t| Deflater::default().piece(t).unwrap().compressed_len())
            .sum();
        let chained: usize = chain.iter().map(Deflated::compressed_len).sum();
        assert!(chained < alone, "{chained} of {alone}");
        // Not after the last piece made: a piece of its own.
        let other = d.piece(&texts[0]).unwrap();
        assert_eq!(
            d.piece_after(&texts[1], chain[3].id()).unwrap().after(),
            None
        );
        assert_eq!(
            d.piece_after(&texts[1], other.id()).unwrap().after(),
            None,
            "`other` is no longer the last piece made"
        );
    }

    /// A head built from the previous one (pieces kept, replaced, added,
    /// dropped and moved, in runs and alone) holds exactly the bytes of
    /// one built from the pieces alone, and stays a valid stream.
    #[test]
    fn heads_built_from_their_predecessors_are_byte_exact() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(13);
        let mut d = Deflater::default();
        let fresh = |d: &mut Deflater, rng: &mut StdRng| {
            let n = rng.random_range(0..300);
            d.piece(&text(n, rng.random())).unwrap()
        };
        let mut pieces: Vec<Deflated> = (0..40).map(|_| fresh(&mut d, &mut rng)).collect();
        let mut head = GzipHead::new(None, &pieces);
        for round in 0..200 {
            for _ in 0..rng.random_range(0..6) {
                let i = rng.random_range(0..pieces.len());
                match rng.random_range(0..5) {
                    0 if pieces.len() > 1 => drop(pieces.remove(i)),
                    1 => pieces.insert(i, fresh(&mut d, &mut rng)),
                    2 => {
                        let j = rng.random_range(0..pieces.len());
                        pieces.swap(i, j);
                    }
                    // The same piece twice (a header repeated).
                    3 => pieces.insert(i, pieces[rng.random_range(0..pieces.len())].clone()),
                    _ => pieces[i] = fresh(&mut d, &mut rng),
                }
            }
            // Sometimes a head not built from the one before.
            let previous = (round % 17 != 0).then_some(&head);
            let next = GzipHead::new(previous, &pieces);
            let alone = GzipHead::new(None, &pieces);
            assert_eq!(next.bytes, alone.bytes, "round {round}");
            assert_eq!((next.crc, next.len), (alone.crc, alone.len));
            assert_eq!(next.index, alone.index);
            head = next;
        }
        let empty = d.piece(b"").unwrap();
        let (h, rest) = head.finish(&empty, b"# EOF\n");
        let body = [&h[..], &rest[..]].concat();
        let expected: Vec<u8> = pieces
            .iter()
            .flat_map(|p| {
                let (h, r) = GzipHead::new(None, [p]).finish(&empty, b"");
                gunzip(&[&h[..], &r[..]].concat())
            })
            .chain(b"# EOF\n".iter().copied())
            .collect();
        assert_eq!(gunzip(&body), expected);
    }

    /// A compacted head says the same text in fewer bytes, ends the same
    /// way as any head, and a head built after it is byte-exact.
    #[test]
    fn a_compacted_head_says_the_same_in_fewer_bytes() {
        let mut d = Deflater::default();
        let texts: Vec<Vec<u8>> = (0..60).map(|i| text(300 + i * 7, i)).collect();
        let pieces: Vec<Deflated> = texts.iter().map(|t| d.piece(t).unwrap()).collect();
        let head = GzipHead::new(None, &pieces);
        let compact = head.compact().unwrap();
        assert!(
            compact.bytes.len() < head.bytes.len() * 9 / 10,
            "{} of {}",
            compact.bytes.len(),
            head.bytes.len()
        );
        assert_eq!((compact.crc, compact.len), (head.crc, head.len));
        let own = d.piece(b"own 1\n").unwrap();
        let said = |head: &GzipHead, tail: &[u8]| {
            let (h, rest) = head.finish(&own, tail);
            gunzip(&[&h[..], &rest[..]].concat())
        };
        let mut expected = texts.concat();
        expected.extend_from_slice(b"own 1\ntail 2\n# EOF\n");
        assert_eq!(said(&compact, b"tail 2\n# EOF\n"), expected);
        // Compacting what is compact changes nothing it says.
        assert_eq!(said(&compact.compact().unwrap(), b""), said(&head, b""));
        // The next head copies its pieces from the pieces.
        let next = GzipHead::new(Some(&compact), &pieces[1..]);
        assert_eq!(next.bytes, GzipHead::new(None, &pieces[1..]).bytes);
        // A head that does not say what its CRC says is not compacted.
        let wrong = GzipHead {
            crc: head.crc ^ 1,
            bytes: head.bytes.clone(),
            len: head.len,
            index: Vec::new(),
        };
        assert!(wrong.compact().is_err());
        let empty = GzipHead::new(None, std::iter::empty()).compact().unwrap();
        assert_eq!(said(&empty, b"x\n"), b"own 1\nx\n");
    }

    #[test]
    fn nothing_but_a_tail() {
        let head = GzipHead::new(None, std::iter::empty());
        let empty = Deflater::default().piece(b"").unwrap();
        let body = |tail: &[u8]| {
            let (h, r) = head.finish(&empty, tail);
            [&h[..], &r[..]].concat()
        };
        assert_eq!(gunzip(&body(b"x 1\n")), b"x 1\n");
        assert_eq!(gunzip(&body(b"")), b"");
    }
}
