//! The Prometheus side: turns the store's reports and the exporter's own
//! metrics into the exposition served on `/metrics`, in text format 0.0.4
//! or OpenMetrics 1.0.0, plain or gzip-compressed.
//!
//! Rendering never touches the API. An exposition has three parts:
//!
//! - the per-function families, kept as a grid of segments (one family's
//!   series of one block of functions, see [`layout`]) in each format
//!   served, and in gzip-compressed form for clients that ask for it. A
//!   segment is encoded (and compressed) again only when what it says
//!   changed, and the body is assembled from the segments; so a scrape
//!   after polls of k functions costs the encoding of about those k, and
//!   any number of scrapers between two polls cost one assembly;
//! - the project-level families (functions monitored, quotas): a few
//!   series, encoded again when functions come or go or a project's
//!   report changes;
//! - the exporter's own metrics (API request counters, poll duration,
//!   caps): gathered and encoded again when they or the store changed
//!   (their [`ExporterMetrics::stamp`], the store's generation), so a
//!   scrape between two polls does not; and `process_*` (CPU, memory,
//!   descriptors), read for each body, last.
//!
//! A body is served again as it is, without gathering anything, while
//! neither the store nor the exporter's own metrics changed (their
//! [`ExporterMetrics::stamp`]) and it is less than [`REUSE_FOR`] old: so
//! the `process_*` samples are at most that old, every other sample is
//! current, and any number of scrapers of an unchanged store cost one
//! rendering a second.
//!
//! A gzip body is the compressed pieces of the first two parts (the
//! segments of a family encoded together compressed as a chain, each after
//! the one before it, and compressed again when the one before changes),
//! the
//! exporter's own metrics as compressed when gathered, and `process_*`
//! stored uncompressed (a kilobyte or two; compressing it cost a
//! compressor reset per body), as one gzip member (see [`gzip`]). Once
//! the first two parts have been sent [`COMPACT_AFTER`] times unchanged, a
//! thread of their own compresses them again as one stream
//! ([`GzipHead::compact`]), and bodies carry that until they change: a
//! body served that often is worth the bytes it saves every send.
//!
//! A gzip body of at most [`MIRROR_MAX`] bytes served again
//! [`MIRROR_AFTER`] times is copied whole into a memory file
//! ([`crate::mirror`]), from which the server sends it with `sendfile` in
//! one call rather than copying it into each socket: many scrapers a
//! second get there, Prometheus (one scrape per target and interval, two
//! for an HA pair) does not. Larger bodies are copied: `sendfile` costs
//! more than the copy there.
//!
//! A format's encodings are kept while it is asked for: one not asked for
//! in [`VIEW_IDLE`] is dropped (Prometheus asks for compressed OpenMetrics
//! only; the plain forms are for people and are kept while they look).
//!
//! The OpenMetrics form also carries exemplars: the latest failed and
//! discarded request of each function's invocation counter, and the latest
//! request of each duration bucket.

mod const_family;
mod encode;
pub mod exporter;
mod families;
pub mod gzip;
mod layout;
pub mod openmetrics;
#[cfg(target_os = "linux")]
pub mod process;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::proto::MetricFamily;

pub use exporter::ExporterMetrics;
use exporter::Stamp;

use crate::state::{ProjectReport, Store};
use crate::sync::MutexExt;
use families::{DEFS, FAMILIES, describe};
use gzip::{Deflated, Deflater, GzipError, GzipHead};
use layout::{Layout, Piece, Segment, VIEWS};

/// The `Content-Type` of text format 0.0.4, exactly as Prometheus wants it.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` of OpenMetrics 1.0.0, exactly as Prometheus wants it.
pub const OPENMETRICS_CONTENT_TYPE: &str = openmetrics::CONTENT_TYPE;

/// A format's encodings are dropped when it has not been asked for in this
/// long.
pub const VIEW_IDLE: Duration = Duration::from_secs(600);

/// How long a body is served again when nothing it says changed but the
/// process metrics (CPU, memory, file descriptors) it carries.
pub const REUSE_FOR: Duration = Duration::from_secs(1);

/// A gzip view's cached part is compacted ([`GzipHead::compact`]) once it
/// has been sent this many times: compacting costs about what compressing
/// the whole exposition once does, and each later send copies a third
/// fewer bytes into the socket (BENCHMARKS.md has the figures). One
/// Prometheus scraping every 15 s gets there only after an hour without a
/// change; many scrapers of an unchanged store within seconds.
pub const COMPACT_AFTER: u64 = 256;

/// A gzip body served again this many times (within its [`REUSE_FOR`])
/// is mirrored whole in a memory file and sent from there with `sendfile`
/// (see `server::sendfile`). One copy of the body into the file, once a
/// second at most; each later send then copies nothing into the socket.
/// Measured with `bench -- ab` (BENCHMARKS.md): at 1,000 functions and 64
/// connections 4 % more requests a second than copying every body, and
/// 9 % more than sending the compacted part by `sendfile` and the rest
/// copied; on one connection the same as copying.
pub const MIRROR_AFTER: u64 = 8;

/// Bodies larger than this are copied into the socket however often they
/// are sent. Measured side by side (`bench -- ab N 10 64`, 2026-12-04),
/// the exporter's CPU per request sending the whole body with `sendfile`
/// against copying it: 91 KB (1,000 functions) 18.0 against 19.3 µs,
/// about 180 KB (2,000) 25.9 / 24.9 against 30.9 / 31.1 in two runs,
/// about 225 KB (2,500) 42.9 against 35.8, about 270 KB (3,000) 53.4
/// against 45.7, about 440 KB (5,000) 87.7 against 65.4, 870 KB (10,000)
/// 379 against 159: above about 200 KB splicing a memory file's pages
/// into the socket costs more than the copy (nginx's own `sendfile` from
/// its page cache doubled its CPU per request between 2,000 and 2,500
/// functions too).
pub const MIRROR_MAX: usize = 192 * 1024;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4, the fallback.
    Text,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// The exact `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// A rendered `/metrics` body: shared cached pieces and the fresh tail as
/// separate chunks, so the cached part is never copied per scrape.
#[derive(Debug, Clone)]
pub struct Body {
    pub chunks: Vec<Bytes>,
    /// Whether the chunks are gzip-compressed. Compression was asked for but
    /// failed when this is false; the body is then plain.
    pub gzip: bool,
}

impl Body {
    /// The whole body in one buffer (tests and `render`).
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.as_slice() {
            [one] => one.clone(),
            chunks => Bytes::from(chunks.concat()),
        }
    }
}

/// Appended to every per-function HELP text. It names no interval: HELP
/// must not change with the configuration (Prometheus keeps metadata per
/// name, and collectors run at different intervals anyway).
pub const REFRESH: &str = "Refreshed by background polling, not at scrape time.";

/// Renders `/metrics`.
pub struct Renderer {
    store: Arc<Store>,
    exporter: Arc<ExporterMetrics>,
    /// Shared with a compaction's thread, which puts its result back.
    inner: Arc<Mutex<Inner>>,
    /// The latest body of each view, served again while it holds. Apart
    /// from `inner`, so that it is served while a rendering runs.
    served: Mutex<[Option<Served>; VIEWS]>,
    /// The latest compaction's thread: one runs at a time.
    compaction: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A body as served, and what it was rendered from.
struct Served {
    /// The store's generation and the exporter's metrics' stamp, read
    /// before the rendering (a change during it makes the next request
    /// render again).
    stamps: (u64, Stamp),
    at: Instant,
    body: Body,
    /// The body's first chunk as rendered: the cached part, which
    /// following bodies may share (`body` may be mirrored since).
    cached: Option<Bytes>,
    /// How many times this body has been served again.
    reused: u64,
    /// How many times the body's cached part has been sent, in this and
    /// the previous bodies that share it.
    sends: u64,
}

/// What a rendering encoded again, for the debug log.
#[derive(Default)]
struct Encoded {
    segments: usize,
    /// Of those, the ones encoded again only because the piece they were
    /// chained to changed.
    rechained: usize,
    /// Compressed chained to the piece before them (no reset).
    chained: usize,
    bytes: usize,
    /// Segments and bytes per family.
    per_family: [(usize, usize); FAMILIES],
}

/// What is kept between scrapes.
struct Inner {
    layout: Layout,
    /// The project reports of the latest assembly, and a number that
    /// changes with them.
    projects: Vec<Arc<ProjectReport>>,
    projects_stamp: u64,
    views: [Option<View>; VIEWS],
    deflater: Deflater,
    /// Reused for encoding segments.
    scratch: String,
}

/// The exporter's own metrics but `process_*` as a view encoded them,
/// and the stamps they were gathered at.
struct Own {
    stamps: (u64, Stamp),
    piece: Piece,
}

/// One format (text or OpenMetrics, plain or gzip) as served.
struct View {
    used: Instant,
    /// `# HELP` and `# TYPE` of each per-function family.
    headers: Vec<Piece>,
    /// The per-function and project parts, assembled.
    body: Arc<Assembled>,
    /// The membership and projects stamp `body` was assembled at.
    assembled: Option<(u64, u64)>,
    /// The store generation `body` is current for.
    generation: u64,
    /// The exporter's own metrics but `process_*` as last encoded.
    own: Option<Own>,
    /// Whether `body` is compacted or being compacted.
    compacted: bool,
    /// The project part `body` was assembled with (it changes with
    /// nothing but the stamp in `assembled`).
    projects: Option<Piece>,
    /// The renderings of this view that encoded something, plus one (see
    /// `Segment::moved_in`).
    renderings: u64,
}

/// The cached part of a body.
enum Assembled {
    Plain(Vec<Bytes>),
    Gzip(GzipHead),
}

fn view_index(format: Format, gzip: bool) -> usize {
    let f = match format {
        Format::Text => 0,
        Format::OpenMetrics => 2,
    };
    f + usize::from(gzip)
}

impl Renderer {
    pub fn new(store: Arc<Store>, exporter: Arc<ExporterMetrics>) -> Self {
        Self {
            store,
            exporter,
            inner: Arc::new(Mutex::new(Inner {
                layout: Layout::default(),
                projects: Vec::new(),
                projects_stamp: 0,
                views: Default::default(),
                deflater: Deflater::default(),
                scratch: String::new(),
            })),
            served: Mutex::default(),
            compaction: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock_or_recover()
    }

    fn lock_served(&self) -> std::sync::MutexGuard<'_, [Option<Served>; VIEWS]> {
        self.served.lock_or_recover()
    }

    fn stamps(&self) -> (u64, Stamp) {
        (self.store.generation(), self.exporter.stamp())
    }

    /// The latest body of a view, if it still holds at `stamps`.
    fn reusable(&self, index: usize, stamps: (u64, Stamp)) -> Option<Body> {
        let (body, sends, reused) = {
            let mut served = self.lock_served();
            let s = served[index].as_mut()?;
            if s.stamps != stamps || s.at.elapsed() >= REUSE_FOR {
                return None;
            }
            s.sends += 1;
            s.reused += 1;
            (s.body.clone(), s.sends, s.reused)
        };
        self.compact_if_sent_often(index, &body, sends);
        if body.gzip && reused == MIRROR_AFTER {
            self.mirror(index, &body);
        }
        Some(body)
    }

    /// Replaces a view's latest body, if it still is `body`, by the same
    /// bytes in one chunk mirrored in a memory file ([`MIRROR_AFTER`]).
    /// The copy is made outside the lock: requests go on being served
    /// meanwhile.
    fn mirror(&self, index: usize, body: &Body) {
        if !cfg!(target_os = "linux") || !worth_mirroring(body) {
            return;
        }
        let whole = crate::mirror::mirrored(body.chunks.concat());
        let mut served = self.lock_served();
        if let Some(s) = served[index].as_mut() {
            if same_chunks(&s.body, body) {
                s.body.chunks = vec![whole];
            }
        }
    }

    /// Compacts a gzip view's cached part every [`COMPACT_AFTER`] sends
    /// (after the first, only if it was not: another view's compaction
    /// ran, or the part was replaced).
    fn compact_if_sent_often(&self, index: usize, body: &Body, sends: u64) {
        if body.gzip && sends.is_multiple_of(COMPACT_AFTER) {
            self.compact(index);
        }
    }

    /// The whole exposition in text format 0.0.4.
    pub fn render(&self) -> String {
        let body = self.body(Format::Text, false);
        String::from_utf8_lossy(&body.to_bytes()).into_owned()
    }

    /// The latest body in `format` if it is served again (see
    /// [`REUSE_FOR`]): the cheapest answer, tried first.
    pub fn reused(&self, format: Format, gzip: bool) -> Option<Body> {
        self.reusable(view_index(format, gzip), self.stamps())
    }

    /// True when a [`Renderer::body`] call would be served from what is
    /// kept (nothing to encode or compress but the exporter's own
    /// metrics), so it can run on the async runtime; otherwise it should
    /// run where blocking is fine.
    pub fn is_cached(&self, format: Format, gzip: bool) -> bool {
        let generation = self.store.generation();
        let inner = self.lock();
        inner.views[view_index(format, gzip)]
            .as_ref()
            .is_some_and(|v| v.generation == generation)
    }

    /// The whole exposition in `format`, gzip-compressed if `gzip`.
    pub fn body(&self, format: Format, gzip: bool) -> Body {
        let index = view_index(format, gzip);
        let stamps = self.stamps();
        if let Some(body) = self.reusable(index, stamps) {
            return body;
        }
        let at = Instant::now();
        let cpu = thread_cpu();
        let mut encoded = Encoded::default();
        let body = self.render_body(format, gzip, stamps, &mut encoded);
        // Logged after the measurement, which is of the rendering alone.
        let cpu_seconds = thread_cpu() - cpu;
        if encoded.segments > 0 {
            tracing::debug!(
                view = index,
                segments = encoded.segments,
                rechained = encoded.rechained,
                chained = encoded.chained,
                bytes = encoded.bytes,
                families = ?encoded
                    .per_family
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.0 > 0)
                    .map(|(f, c)| (DEFS[f].name, c.0, c.1))
                    .collect::<Vec<_>>(),
                "segments encoded again"
            );
        }
        tracing::debug!(
            view = index,
            seconds = at.elapsed().as_secs_f64(),
            cpu_seconds,
            "body rendered"
        );
        // A body that could not be compressed is not kept: the next
        // request tries again.
        if body.gzip == gzip {
            let sends = {
                let mut served = self.lock_served();
                let sends = match &served[index] {
                    Some(s) if same_bytes(s.cached.as_ref(), body.chunks.first()) => s.sends + 1,
                    _ => 1,
                };
                served[index] = Some(Served {
                    stamps,
                    at,
                    body: body.clone(),
                    cached: body.chunks.first().cloned(),
                    reused: 0,
                    sends,
                });
                sends
            };
            self.compact_if_sent_often(index, &body, sends);
        }
        body
    }

    /// Starts compacting a gzip view's cached part on a thread of its own,
    /// unless it is compact already or another compaction runs; the result
    /// replaces the part if it is still the view's.
    fn compact(&self, index: usize) {
        let mut running = self.compaction.lock_or_recover();
        if running.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        // Not waiting for a rendering: this may run on the async runtime,
        // and the next multiple of COMPACT_AFTER sends tries again.
        let Some(mut inner) = self.inner.try_lock_or_recover() else {
            return;
        };
        let head = {
            let Some(view) = inner.views[index].as_mut() else {
                return;
            };
            if view.compacted || !matches!(*view.body, Assembled::Gzip(_)) {
                return;
            }
            view.compacted = true;
            Arc::clone(&view.body)
        };
        drop(inner);
        let inner = Arc::clone(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("compact".to_owned())
            .spawn(move || {
                let Assembled::Gzip(part) = &*head else {
                    return;
                };
                let cpu = thread_cpu();
                match part.compact() {
                    Ok(compact) => {
                        tracing::debug!(
                            bytes = part.compressed_len(),
                            compacted = compact.compressed_len(),
                            cpu_seconds = thread_cpu() - cpu,
                            "cached part compacted"
                        );
                        let mut inner = inner.lock_or_recover();
                        if let Some(view) = inner.views[index].as_mut() {
                            if Arc::ptr_eq(&view.body, &head) {
                                view.body = Arc::new(Assembled::Gzip(compact));
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "compacting the cached part"),
                }
            });
        match spawned {
            Ok(thread) => *running = Some(thread),
            Err(e) => tracing::warn!(error = %e, "starting a compaction"),
        }
    }

    /// Waits for the latest compaction to end.
    #[cfg(test)]
    fn wait_for_compaction(&self) {
        if let Some(thread) = self.compaction.lock_or_recover().take() {
            thread.join().expect("the compaction does not panic");
        }
    }

    /// The whole exposition in `format`, rendered now from what holds at
    /// `stamps`; what it encoded again is added to `encoded`.
    fn render_body(
        &self,
        format: Format,
        gzip: bool,
        stamps: (u64, Stamp),
        encoded: &mut Encoded,
    ) -> Body {
        let tail = self.tail(format);
        if gzip {
            let compressed = self.cached_part(format, true, encoded).and_then(|head| {
                match (&*head, self.own_part(format, true, stamps)?) {
                    (Assembled::Gzip(head), Piece::Gzip(own)) => {
                        Ok(head.finish(&own, tail.as_bytes()))
                    }
                    _ => Err(GzipError::new("a plain view")),
                }
            });
            match compressed {
                Ok((head, rest)) => {
                    return Body {
                        chunks: vec![head, Bytes::from(rest)],
                        gzip: true,
                    };
                }
                Err(e) => {
                    tracing::error!(error = %e, "compressing the exposition; sent uncompressed")
                }
            }
        }
        let mut chunks = match self.cached_part(format, false, encoded).as_deref() {
            Ok(Assembled::Plain(chunks)) => chunks.clone(),
            _ => Vec::new(),
        };
        // The exporter's own metrics and the process ones in one chunk
        // (one write fewer; see `GzipHead::finish`).
        match self.own_part(format, false, stamps) {
            Ok(Piece::Plain(own)) => chunks.push(Bytes::from([&own[..], tail.as_bytes()].concat())),
            _ => chunks.push(Bytes::from(tail)),
        }
        Body {
            chunks,
            gzip: false,
        }
    }

    /// The exporter's own metrics but `process_*`, in a view: gathered
    /// and encoded again only when `stamps` moved (a scrape between polls
    /// finds them as they were). Kept with the view, which
    /// [`Renderer::cached_part`] makes (without one, when the view could
    /// not be made, they are encoded and not kept).
    fn own_part(
        &self,
        format: Format,
        gzip: bool,
        stamps: (u64, Stamp),
    ) -> Result<Piece, GzipError> {
        let mut inner = self.lock();
        let Inner {
            views,
            deflater,
            scratch: out,
            ..
        } = &mut *inner;
        let view = views[view_index(format, gzip)].as_mut();
        if let Some(own) = view.as_ref().and_then(|v| v.own.as_ref()) {
            if own.stamps == stamps {
                return Ok(own.piece.clone());
            }
        }
        let families = self.exporter.gather(&self.store.cycles());
        out.clear();
        encode_families(format, &families, "the exporter's own metrics", out);
        let piece = piece(out.as_bytes(), gzip, deflater)?;
        if let Some(view) = view {
            view.own = Some(Own {
                stamps,
                piece: piece.clone(),
            });
        }
        Ok(piece)
    }

    /// The `process_*` families, read now, in `format` (with the end of
    /// an OpenMetrics exposition).
    fn tail(&self, format: Format) -> String {
        let process = self.exporter.gather_process();
        let mut tail = String::with_capacity(2048);
        encode_families(format, &process, "the process metrics", &mut tail);
        if format == Format::OpenMetrics {
            tail.push_str(openmetrics::EOF);
        }
        tail
    }

    /// The per-function and project parts in a view, brought up to date;
    /// the segments encoded again are counted in `encoded`.
    fn cached_part(
        &self,
        format: Format,
        gzip: bool,
        encoded: &mut Encoded,
    ) -> Result<Arc<Assembled>, GzipError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let now = Instant::now();
        inner.layout.sync(&self.store);
        self.store.retire(inner.layout.take_retired());
        let projects = self.store.projects();
        let same = projects.len() == inner.projects.len()
            && projects
                .iter()
                .zip(&inner.projects)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if !same {
            inner.projects = projects;
            inner.projects_stamp += 1;
        }
        let index = view_index(format, gzip);
        for (i, slot) in inner.views.iter_mut().enumerate() {
            if i != index && slot.as_ref().is_some_and(|v| now - v.used > VIEW_IDLE) {
                *slot = None;
                inner.layout.drop_view(i);
                self.lock_served()[i] = None;
            }
        }
        if inner.views[index].is_none() {
            inner.views[index] = Some(View::new(format, gzip, REFRESH, &mut inner.deflater)?);
        }
        let Some(view) = inner.views[index].as_mut() else {
            unreachable!("the view was just made")
        };
        view.used = now;
        let mut changed = false;
        for block in &mut inner.layout.blocks {
            let segments = &mut block.segments[index];
            if segments.is_empty() {
                segments.resize_with(FAMILIES, Segment::default);
            }
        }
        // In the order of a body (each family's segments in block order),
        // so that a segment whose text changed can be chained to the one
        // before it when that one's changed too (see
        // `Deflater::piece_after`): the segments a rendering finds changed
        // are those of the functions polled since the one before, and the
        // next poll of those functions changes them together again. A
        // chained segment whose predecessor changed without it is
        // compressed again, on its own: so chains come to hold the
        // segments that change together. Not after a segment that changed
        // in the view's previous rendering too: its functions straddle two
        // scrapes' polls, and the first of those scrapes, an interval
        // later, would break the chain.
        let this = view.renderings + 1;
        for (family, def) in DEFS.iter().enumerate() {
            // The piece a body has right before this family's next one
            // (none: the family's header, which nothing is chained to),
            // and the same if a piece may be chained to it.
            let mut before: Option<u64> = None;
            let mut changed_before: Option<u64> = None;
            for block in &mut inner.layout.blocks {
                let stamp = block.stamps[family];
                let segment = &mut block.segments[index][family];
                let moved = segment.stamp != stamp;
                let straddles = moved && segment.moved_in + 1 == this;
                if moved {
                    segment.moved_in = this;
                }
                let follows = match &segment.piece {
                    Some(Piece::Gzip(d)) => d.after().is_none_or(|p| Some(p) == before),
                    _ => true,
                };
                if moved || !follows {
                    changed = true;
                    let out = &mut inner.scratch;
                    out.clear();
                    for m in &block.members {
                        let mut lines = encode::Lines {
                            format,
                            name: def.name,
                            identity: &m.identity,
                            out,
                        };
                        describe(family, &m.report, &mut lines);
                    }
                    encoded.segments += 1;
                    encoded.rechained += usize::from(!moved);
                    encoded.bytes += out.len();
                    encoded.per_family[family].0 += 1;
                    encoded.per_family[family].1 += out.len();
                    segment.piece = match (out.is_empty(), gzip, changed_before) {
                        (true, ..) => None,
                        (false, true, Some(previous)) if moved => {
                            let d = inner.deflater.piece_after(out.as_bytes(), previous)?;
                            encoded.chained += usize::from(d.after().is_some());
                            Some(Piece::Gzip(d))
                        }
                        (false, ..) => Some(piece(out.as_bytes(), gzip, &mut inner.deflater)?),
                    };
                    segment.stamp = stamp;
                }
                if let Some(Piece::Gzip(d)) = &segment.piece {
                    before = Some(d.id());
                    changed_before = (moved && !straddles).then_some(d.id());
                }
            }
        }
        if changed {
            view.renderings = this;
        }
        let at = (inner.layout.membership, inner.projects_stamp);
        if changed || view.assembled != Some(at) {
            if view.assembled != Some(at) {
                view.projects = project_part(
                    &inner.layout,
                    &inner.projects,
                    REFRESH,
                    format,
                    gzip,
                    &mut inner.deflater,
                )?;
            }
            let projects = view.projects.clone();
            view.compacted = false;
            view.body = Arc::new(assemble(
                &inner.layout,
                index,
                gzip,
                &view.body,
                &view.headers,
                projects,
            ));
            view.assembled = Some(at);
        }
        view.generation = inner.layout.generation();
        Ok(Arc::clone(&view.body))
    }
}

impl View {
    fn new(
        format: Format,
        gzip: bool,
        refresh: &str,
        deflater: &mut Deflater,
    ) -> Result<Self, GzipError> {
        let headers = DEFS
            .iter()
            .map(|def| {
                let mut s = String::new();
                encode::header(format, def, refresh, &mut s);
                piece(s.as_bytes(), gzip, deflater)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            used: Instant::now(),
            headers,
            body: Arc::new(Assembled::Plain(Vec::new())),
            assembled: None,
            generation: 0,
            own: None,
            compacted: false,
            projects: None,
            renderings: 1,
        })
    }
}

/// The calling thread's CPU time in seconds when debug logging is on (to
/// log what a rendering cost), else 0.
fn thread_cpu() -> f64 {
    #[cfg(target_os = "linux")]
    if tracing::enabled!(tracing::Level::DEBUG) {
        return process::thread_cpu_seconds();
    }
    0.0
}

/// Whether two chunks are the same buffer (for a body's first chunk: the
/// same cached part; the one a body holds keeps its memory from being
/// reused, so equal addresses mean the same part).
fn same_bytes(a: Option<&Bytes>, b: Option<&Bytes>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.as_ptr() == y.as_ptr() && x.len() == y.len(),
        _ => false,
    }
}

/// Whether a body is worth mirroring: in more than one chunk (one would
/// be mirrored already, or is plain) and at most [`MIRROR_MAX`] bytes.
fn worth_mirroring(body: &Body) -> bool {
    body.chunks.len() > 1 && body.chunks.iter().map(Bytes::len).sum::<usize>() <= MIRROR_MAX
}

/// Whether two bodies are made of the same buffers.
fn same_chunks(a: &Body, b: &Body) -> bool {
    a.chunks.len() == b.chunks.len()
        && a.chunks
            .iter()
            .zip(&b.chunks)
            .all(|(x, y)| same_bytes(Some(x), Some(y)))
}

/// `plain` as a view keeps it.
fn piece(plain: &[u8], gzip: bool, deflater: &mut Deflater) -> Result<Piece, GzipError> {
    Ok(if gzip {
        Piece::Gzip(deflater.piece(plain)?)
    } else {
        Piece::Plain(Bytes::copy_from_slice(plain))
    })
}

/// The project-level families, encoded for a view.
fn project_part(
    layout: &Layout,
    projects: &[Arc<ProjectReport>],
    refresh: &str,
    format: Format,
    gzip: bool,
    deflater: &mut Deflater,
) -> Result<Option<Piece>, GzipError> {
    let families: Vec<MetricFamily> = families::project_families(
        layout.per_project.iter().map(|(p, n)| (p.as_str(), *n)),
        projects,
        refresh,
    );
    if families.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    encode_families(format, &families, "project metrics", &mut out);
    piece(out.as_bytes(), gzip, deflater).map(Some)
}

/// `families` in `format` onto `out` (without the end of an OpenMetrics
/// exposition); a failure is logged as encoding `what`.
fn encode_families(format: Format, families: &[MetricFamily], what: &str, out: &mut String) {
    match format {
        Format::Text => {
            if let Err(e) = prometheus::TextEncoder::new().encode_utf8(families, out) {
                tracing::error!(error = %e, "encoding {what}");
            }
        }
        Format::OpenMetrics => openmetrics::encode(families, out),
    }
}

/// The per-function families, each family's header followed by its
/// segments in block order, then the project part. `previous` is the
/// view's latest assembly (see [`GzipHead::new`]).
fn assemble(
    layout: &Layout,
    view: usize,
    gzip: bool,
    previous: &Assembled,
    headers: &[Piece],
    projects: Option<Piece>,
) -> Assembled {
    let mut pieces: Vec<&Piece> = Vec::new();
    for (family, header) in headers.iter().enumerate() {
        let segments = layout
            .blocks
            .iter()
            .filter_map(|b| b.segments[view].get(family).and_then(|s| s.piece.as_ref()));
        let start = pieces.len();
        pieces.extend(segments);
        if pieces.len() > start {
            pieces.insert(start, header);
        }
    }
    pieces.extend(projects.as_ref());
    if gzip {
        let previous = match previous {
            Assembled::Gzip(head) => Some(head),
            Assembled::Plain(_) => None,
        };
        let deflated: Vec<&Deflated> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Gzip(d) => Some(d),
                Piece::Plain(_) => None,
            })
            .collect();
        Assembled::Gzip(GzipHead::new(previous, deflated.iter().copied()))
    } else {
        Assembled::Plain(
            pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Plain(b) => Some(b.clone()),
                    Piece::Gzip(_) => None,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests;
