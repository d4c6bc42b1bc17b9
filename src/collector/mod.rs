//! The Prometheus side: turns the store's snapshots and the exporter's own
//! metrics into the exposition served on `/metrics`.
//!
//! Rendering never touches the API. The per-function part is rebuilt only
//! when the store's generation changed since the last render, so any number
//! of scrapers between two polls cost one render; the exporter's own part
//! (request counters, process metrics) is encoded fresh on every scrape.

pub mod exporter;
mod family;
mod function;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use exporter::ExporterMetrics;

use crate::state::Store;

/// The `Content-Type` of text format 0.0.4, exactly as Prometheus wants it.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders `/metrics`.
pub struct Renderer {
    store: Arc<Store>,
    exporter: Arc<ExporterMetrics>,
    /// Appended to every per-function HELP text.
    refresh: String,
    /// The per-function part and the store generation it was built from.
    cache: Mutex<Option<(u64, Arc<String>)>>,
}

impl Renderer {
    pub fn new(store: Arc<Store>, exporter: Arc<ExporterMetrics>, interval: Duration) -> Self {
        Self {
            store,
            exporter,
            refresh: format!(
                "Refreshed by background polling every {} seconds, not at scrape time.",
                interval.as_secs()
            ),
            cache: Mutex::new(None),
        }
    }

    /// The whole exposition in text format 0.0.4.
    pub fn render(&self) -> String {
        let functions = self.functions_part();
        let mut out = String::with_capacity(functions.len() + 16 * 1024);
        out.push_str(&functions);
        self.exporter.encode(&self.store.cycles(), &mut out);
        out
    }

    fn functions_part(&self) -> Arc<String> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Read the generation before the snapshots: a publish in between
        // makes the next render rebuild, never serves stale data as fresh.
        let generation = self.store.generation();
        if let Some((g, text)) = cache.as_ref() {
            if *g == generation {
                return Arc::clone(text);
            }
        }
        let snapshots = self.store.functions();
        let families = function::families(&snapshots, &self.refresh);
        let mut text = String::new();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut text) {
            tracing::error!(error = %e, "encoding function metrics");
        }
        let text = Arc::new(text);
        *cache = Some((generation, Arc::clone(&text)));
        text
    }
}
