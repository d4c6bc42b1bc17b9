//! The Prometheus side: turns the store's snapshots and the exporter's own
//! metrics into the exposition served on `/metrics`, in text format 0.0.4
//! or OpenMetrics 1.0.0, plain or gzip-compressed.
//!
//! Rendering never touches the API. An exposition has two parts:
//!
//! - the per-function part, rebuilt from the store's snapshots only when
//!   the store's generation changed (that is, after a poll published
//!   something). Its families are built once per generation; each format's
//!   text, and its gzip-compressed form, are made once per generation, on
//!   the first scrape that asks for that format or compression. So any
//!   number of scrapers between two polls cost one render and one
//!   compression of this part, which is nearly all of the body.
//! - the exporter's own part (API request counters, poll duration, process
//!   CPU and memory): small, and changing all the time, so it is gathered
//!   and encoded fresh on every scrape and is never stale.
//!
//! A gzip body is the cached compressed function part followed by the
//! freshly compressed exporter part in one gzip member (see [`gzip`]), so
//! compression per scrape costs only the small part as well.
//!
//! The OpenMetrics form also carries exemplars: the latest failed and
//! discarded request of each function's invocation counter, and the latest
//! request of each duration bucket.

pub mod exporter;
mod family;
mod function;
pub mod gzip;
pub mod openmetrics;
#[cfg(target_os = "linux")]
pub mod process;

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use prometheus::proto::MetricFamily;

pub use exporter::ExporterMetrics;

use crate::state::Store;
use gzip::GzipHead;

/// The `Content-Type` of text format 0.0.4, exactly as Prometheus wants it.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` of OpenMetrics 1.0.0, exactly as Prometheus wants it.
pub const OPENMETRICS_CONTENT_TYPE: &str = openmetrics::CONTENT_TYPE;

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

/// A rendered `/metrics` body: the cached per-function part and the fresh
/// tail as separate chunks, so the large part is never copied per scrape.
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
    /// The per-function part of the latest generation rendered.
    cache: Mutex<Option<Arc<FunctionPart>>>,
}

/// The per-function part of one store generation, encoded in both formats
/// when it is built; the metric families themselves are not kept (they
/// take several times the memory of the text).
struct FunctionPart {
    generation: u64,
    text: Arc<Encoded>,
    openmetrics: Arc<Encoded>,
}

/// One encoding of the function part, and its compressed form once asked
/// for (`None` if compression failed).
struct Encoded {
    plain: Bytes,
    gzip: OnceLock<Option<GzipHead>>,
}

impl Encoded {
    fn new(plain: String) -> Arc<Self> {
        Arc::new(Self {
            plain: Bytes::from(plain),
            gzip: OnceLock::new(),
        })
    }

    fn gzip_head(&self) -> Option<&GzipHead> {
        self.gzip
            .get_or_init(|| match GzipHead::new(&self.plain) {
                Ok(head) => Some(head),
                Err(e) => {
                    tracing::error!(error = %e, "compressing function metrics");
                    None
                }
            })
            .as_ref()
    }
}

impl Renderer {
    pub fn new(store: Arc<Store>, exporter: Arc<ExporterMetrics>) -> Self {
        Self {
            store,
            exporter,
            cache: Mutex::new(None),
        }
    }

    /// The whole exposition in text format 0.0.4.
    pub fn render(&self) -> String {
        let body = self.body(Format::Text, false);
        String::from_utf8_lossy(&body.to_bytes()).into_owned()
    }

    /// True when a [`Renderer::body`] call would be served from the cache
    /// (no rendering or compression of the per-function part), so it can
    /// run on the async runtime; otherwise it should run where blocking is
    /// fine.
    pub fn is_cached(&self, format: Format, gzip: bool) -> bool {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let Some(part) = cache.as_ref() else {
            return false;
        };
        if part.generation != self.store.generation() {
            return false;
        }
        let encoded = match format {
            Format::Text => &part.text,
            Format::OpenMetrics => &part.openmetrics,
        };
        !gzip || encoded.gzip.get().is_some()
    }

    /// The whole exposition in `format`, gzip-compressed if `gzip`.
    pub fn body(&self, format: Format, gzip: bool) -> Body {
        let exporter = self.exporter.gather(&self.store.cycles());
        let part = self.functions_part();
        let mut tail = String::with_capacity(16 * 1024);
        let head = match format {
            Format::Text => {
                encode_text(&exporter, &mut tail, "the exporter's own metrics");
                &part.text
            }
            Format::OpenMetrics => {
                openmetrics::encode(&exporter, &[], &mut tail);
                tail.push_str(openmetrics::EOF);
                &part.openmetrics
            }
        };
        if gzip {
            if let Some(compressed) = head.gzip_head() {
                match compressed.finish(tail.as_bytes()) {
                    Ok((head, rest)) => {
                        return Body {
                            chunks: vec![head, Bytes::from(rest)],
                            gzip: true,
                        };
                    }
                    Err(e) => tracing::error!(error = %e, "compressing the exposition"),
                }
            }
        }
        Body {
            chunks: vec![head.plain.clone(), Bytes::from(tail)],
            gzip: false,
        }
    }

    /// The per-function part of the current store generation: built (and
    /// encoded in both formats) once per generation.
    fn functions_part(&self) -> Arc<FunctionPart> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Read the generation before the snapshots: a publish in between
        // makes the next render rebuild, never serves stale data as fresh.
        let generation = self.store.generation();
        if let Some(part) = cache.as_ref() {
            if part.generation == generation {
                return Arc::clone(part);
            }
        }
        let snapshots = self.store.functions();
        let (mut families, exemplars) = function::families(&snapshots, REFRESH);
        families.extend(function::project_families(
            &snapshots,
            &self.store.projects(),
            REFRESH,
        ));
        drop(snapshots);
        let mut text = String::new();
        encode_text(&families, &mut text, "function metrics");
        let mut om = String::with_capacity(text.len() + text.len() / 8);
        openmetrics::encode(&families, &exemplars, &mut om);
        let part = Arc::new(FunctionPart {
            generation,
            text: Encoded::new(text),
            openmetrics: Encoded::new(om),
        });
        *cache = Some(Arc::clone(&part));
        part
    }
}

/// Appends `families` in text format 0.0.4 to `out`.
fn encode_text(families: &[MetricFamily], out: &mut String, what: &str) {
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(families, out) {
        tracing::error!(error = %e, "encoding {what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::FunctionSnapshot;
    use crate::urn::FunctionUrn;

    fn gunzip(b: &[u8]) -> String {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(b)
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    /// Between two publishes, the function part is encoded once and
    /// compressed once per format; a publish makes a new one.
    #[test]
    fn one_render_and_compression_per_generation() {
        let store = Arc::new(Store::new());
        let urn = FunctionUrn::new(
            "r",
            "0123456789abcdef0123456789abcdef",
            "default",
            "f",
            "latest",
        )
        .unwrap();
        store.publish(FunctionSnapshot::new(urn.clone()));
        let r = Renderer::new(Arc::clone(&store), Arc::new(ExporterMetrics::new()));
        assert!(!r.is_cached(Format::OpenMetrics, true));
        let first = r.body(Format::OpenMetrics, true);
        assert!(first.gzip);
        assert!(r.is_cached(Format::OpenMetrics, true));
        assert!(
            r.is_cached(Format::Text, false),
            "both formats are encoded at once"
        );
        assert!(
            !r.is_cached(Format::Text, true),
            "compressed only when asked"
        );
        let part = r.functions_part();
        let second = r.body(Format::OpenMetrics, true);
        let text = r.body(Format::Text, false);
        assert!(Arc::ptr_eq(&part, &r.functions_part()));
        let (first, second) = (gunzip(&first.to_bytes()), gunzip(&second.to_bytes()));
        let plain = String::from_utf8_lossy(&part.openmetrics.plain).into_owned();
        assert!(first.starts_with(&plain) && second.starts_with(&plain));
        assert!(second.ends_with("# EOF\n"));
        assert!(text.to_bytes().starts_with(&part.text.plain));

        store.publish(FunctionSnapshot::new(urn));
        assert!(!r.is_cached(Format::Text, false));
        assert!(!Arc::ptr_eq(&part, &r.functions_part()));
    }
}
