//! The exporter's own metrics: API cost, poll timing, caps on upstream
//! data, the web server's protection, build and process.
//!
//! These are directly instrumented (counters the API client bumps through
//! [`ApiObserver`]) in a registry of their own, apart from the function
//! families that are rebuilt from reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

use crate::api::{ApiObserver, Endpoint};
use crate::caps::{Cap, CapCounters};
use crate::state::CycleStats;

/// What protects the HTTP server right now, as the web configuration in
/// force says (the application wires the web configuration to it).
pub trait ServingSecurity: Send + Sync {
    /// Connections are TLS.
    fn tls(&self) -> bool;
    /// Requests need basic authentication.
    fn basic_auth(&self) -> bool;
}

/// Buckets for API request durations, in seconds.
const REQUEST_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Version facts baked in at build time (see `build.rs`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("FGE_REVISION");
pub const RUSTC: &str = env!("FGE_RUSTC_VERSION");

/// The state [`ExporterMetrics`] were in: the count of changes from
/// outside, the caps' counts and the web server's security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    changes: u64,
    caps: u64,
    tls: bool,
    basic_auth: bool,
}

/// Defines the exporter's own metrics in one registry: each is made and
/// registered in one step (definitions are constants, so a failure is a
/// bug).
struct Definitions<'a>(&'a Registry);

impl Definitions<'_> {
    fn register<M: Collector + Clone + 'static>(&self, metric: prometheus::Result<M>) -> M {
        let metric = metric.expect("valid metric definition");
        self.0
            .register(Box::new(metric.clone()))
            .expect("metric names are unique");
        metric
    }

    fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(IntCounterVec::new(Opts::new(name, help), labels))
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.register(IntCounter::new(name, help))
    }

    fn gauge(&self, name: &str, help: &str) -> Gauge {
        self.register(Gauge::new(name, help))
    }

    fn int_gauge(&self, name: &str, help: &str) -> IntGauge {
        self.register(IntGauge::new(name, help))
    }

    /// An info metric: a gauge whose series are always 1.
    fn info(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.register(IntGaugeVec::new(Opts::new(name, help), labels))
    }
}

/// The exporter's own metrics.
pub struct ExporterMetrics {
    /// Everything but `process_*`.
    registry: Registry,
    /// `process_*`, read from the kernel at each gathering, apart from the
    /// registry: what the rest says is kept while [`ExporterMetrics::stamp`]
    /// holds, and these are not.
    #[cfg(target_os = "linux")]
    process: super::process::ProcessMetrics,
    shard_info: IntGaugeVec,
    shards: IntGauge,
    api_requests: IntCounterVec,
    api_duration: HistogramVec,
    auth_failures: IntCounterVec,
    throttled: IntCounterVec,
    permission_denied: IntCounterVec,
    poll_duration: Gauge,
    dropped_functions: IntCounter,
    caps: Arc<CapCounters>,
    capped: IntCounterVec,
    web_tls: IntGauge,
    web_basic_auth: IntGauge,
    /// Set once, at start-up: read at every scrape (for the stamp)
    /// without a lock.
    security: OnceLock<Arc<dyn ServingSecurity>>,
    clock_offset: GaugeVec,
    implausible_records: IntCounter,
    abandoned_invocations: IntCounter,
    /// Bumped by everything that changes these metrics from outside
    /// (requests observed, shard, projects, security): with the store's
    /// generation, it tells a renderer whether what it gathered last still
    /// holds (see [`ExporterMetrics::stamp`]).
    changes: AtomicU64,
}

impl ExporterMetrics {
    pub fn new() -> Self {
        Self::with_caps(Arc::new(CapCounters::new()))
    }

    /// The exporter's metrics, counting caps in `caps` (shared with the
    /// store, where the poller reports what it dropped).
    pub fn with_caps(caps: Arc<CapCounters>) -> Self {
        let registry = Registry::new();
        let def = Definitions(&registry);
        let api_requests = def.counter_vec(
            "functiongraph_exporter_api_requests_total",
            "FunctionGraph API requests made, by endpoint and HTTP status code (timeout or error when no status arrived).",
            &["endpoint", "code"],
        );
        let api_duration = def.register(HistogramVec::new(
            HistogramOpts::new(
                "functiongraph_exporter_api_request_duration_seconds",
                "Duration of FunctionGraph API requests, by endpoint, body read included.",
            )
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["endpoint"],
        ));
        let auth_failures = def.counter_vec(
            "functiongraph_exporter_auth_failures_total",
            "Requests whose credentials the API gateway or IAM refused (HTTP 401, or 403 not naming a missing permission), by project. Five in a row lock an access key for five minutes; the exporter pauses the project's requests after each.",
            &["project_id"],
        );
        let throttled = def.counter_vec(
            "functiongraph_exporter_api_throttled_total",
            "API requests answered with HTTP 429 (throttled), by project and endpoint.",
            &["project_id", "endpoint"],
        );
        let permission_denied = def.counter_vec(
            "functiongraph_exporter_api_permission_denied_total",
            "API requests refused with HTTP 403 naming a missing permission (FSS.1126, FSS.1127, FSS.1128, APIGW.0402, APIGW.0404 or an IAM policy denial), by project and endpoint. The credentials work; only the collector that asked fails, and it backs off.",
            &["project_id", "endpoint"],
        );
        let dropped_functions = def.counter(
            "functiongraph_exporter_functions_dropped_total",
            "Functions found (configured or discovered) but not monitored because polling.max_functions was reached.",
        );
        let clock_offset = def.register(GaugeVec::new(
            Opts::new(
                "functiongraph_exporter_api_clock_offset_seconds",
                "How far the FunctionGraph API's clock is ahead of the exporter's (negative: behind), from the Date headers of its responses, by project. Async invocation windows are asked for in the API's time.",
            ),
            &["project_id"],
        ));
        let implausible_records = def.counter(
            "functiongraph_exporter_async_implausible_records_total",
            "Asynchronous invocation records whose times were malformed or far outside the window asked for. Each is counted once in functiongraph_async_invocations_total when terminal, never in the window gauge or the duration histogram; logged once.",
        );
        let abandoned_invocations = def.counter(
            "functiongraph_exporter_async_abandoned_invocations_total",
            "Pending asynchronous invocations no longer tracked, because they were still WAIT or RUNNING after polling.async_max_duration or the tracked-records cap was reached; their outcome is not counted.",
        );
        let poll_duration = def.gauge(
            "functiongraph_exporter_poll_duration_seconds",
            "Wall time of the last complete poll cycle over all functions; after the first cycle, polls are spread over the first half of polling.interval.",
        );
        def.info(
            "functiongraph_exporter_build_info",
            "Build of the running exporter, always 1.",
            &["version", "revision", "rustc"],
        )
        .with_label_values(&[VERSION, REVISION, RUSTC])
        .set(1);
        let shard_info = def.info(
            "functiongraph_exporter_shard_info",
            "This replica's shard, always 1: it polls the functions whose URN's MD5 (last 8 bytes, big-endian) modulo count equals index, as Prometheus' hashmod.",
            &["index", "count"],
        );
        // The count as a value, so that PromQL can compare it with how many
        // replicas report (FunctionGraphExporterShardsMissing).
        let shards = def.int_gauge(
            "functiongraph_exporter_shards",
            "Number of replicas the functions are split over (sharding.count); every replica exports the same value, and fewer replicas reporting than it leaves functions unpolled.",
        );
        shards.set(1);

        let capped = def.counter_vec(
            "functiongraph_exporter_capped_total",
            "Upstream items dropped or truncated because they exceeded a cap, by cap.",
            &["cap"],
        );
        for cap in Cap::ALL {
            capped.with_label_values(&[cap.as_str()]);
        }
        let web_tls = def.int_gauge(
            "functiongraph_exporter_web_tls_enabled",
            "1 if the exporter's HTTP server speaks TLS (web configuration file), else 0.",
        );
        let web_basic_auth = def.int_gauge(
            "functiongraph_exporter_web_basic_auth_enabled",
            "1 if the exporter's HTTP server requires basic authentication (web configuration file in force), else 0.",
        );
        Self {
            registry,
            #[cfg(target_os = "linux")]
            process: super::process::ProcessMetrics::for_self(),
            shard_info,
            shards,
            api_requests,
            api_duration,
            auth_failures,
            throttled,
            permission_denied,
            poll_duration,
            dropped_functions,
            caps,
            capped,
            web_tls,
            web_basic_auth,
            security: OnceLock::new(),
            clock_offset,
            implausible_records,
            abandoned_invocations,
            changes: AtomicU64::new(0),
        }
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// What these metrics (other than the `process_*` ones, which are
    /// read from the kernel) say depends on: equal stamps, equal
    /// samples. Whatever the store says is covered by its own generation.
    pub fn stamp(&self) -> Stamp {
        let (tls, basic_auth) = self.security();
        Stamp {
            changes: self.changes.load(Ordering::Acquire),
            // Cap counts only grow, so their sum changes with any of them.
            caps: Cap::ALL
                .iter()
                .fold(0u64, |sum, cap| sum.wrapping_add(self.caps.get(*cap))),
            tls,
            basic_auth,
        }
    }

    fn security(&self) -> (bool, bool) {
        self.security
            .get()
            .map_or((false, false), |s| (s.tls(), s.basic_auth()))
    }

    /// The cap counters these metrics export.
    pub fn caps(&self) -> &Arc<CapCounters> {
        &self.caps
    }

    /// Where the web server's TLS and basic-authentication state is read
    /// from at each scrape; set once (later calls change nothing).
    pub fn set_security(&self, security: Option<Arc<dyn ServingSecurity>>) {
        if let Some(security) = security {
            if self.security.set(security).is_err() {
                tracing::debug!("the serving security was set already; kept");
            }
        }
        self.changed();
    }

    /// Records this replica's shard: `index` of `count` replicas.
    pub fn set_shard(&self, index: u32, count: u32) {
        self.shards.set(i64::from(count));
        self.shard_info.reset();
        self.shard_info
            .with_label_values(&[index.to_string(), count.to_string()])
            .set(1);
        self.changed();
    }

    /// Creates a project's counters at 0, so that `increase()` and alerts
    /// see the first failure.
    pub fn init_project(&self, project_id: &str) {
        self.auth_failures.with_label_values(&[project_id]);
        for endpoint in Endpoint::ALL {
            self.throttled
                .with_label_values(&[project_id, endpoint.as_str()]);
            self.permission_denied
                .with_label_values(&[project_id, endpoint.as_str()]);
        }
        self.changed();
    }

    /// The exporter's metric families but `process_*` (see
    /// [`ExporterMetrics::gather_process`], whose families sort after
    /// these), for the text and OpenMetrics encoders alike. They say the
    /// same while [`ExporterMetrics::stamp`] and the store's generation
    /// hold.
    pub fn gather(&self, cycles: &CycleStats) -> Vec<prometheus::proto::MetricFamily> {
        match cycles.last_duration {
            Some(d) => self.poll_duration.set(d.as_secs_f64()),
            None => self.poll_duration.set(0.0),
        }
        for (counter, total) in [
            (&self.dropped_functions, cycles.dropped_functions),
            (&self.implausible_records, cycles.implausible_records),
            (&self.abandoned_invocations, cycles.abandoned_invocations),
        ] {
            let counted = counter.get();
            if total > counted {
                counter.inc_by(total - counted);
            }
        }
        for cap in Cap::ALL {
            let counter = self.capped.with_label_values(&[cap.as_str()]);
            let (now, shown) = (self.caps.get(cap), counter.get());
            if now > shown {
                counter.inc_by(now - shown);
            }
        }
        let (tls, basic_auth) = self.security();
        self.web_tls.set(i64::from(tls));
        self.web_basic_auth.set(i64::from(basic_auth));
        self.registry.gather()
    }

    /// The `process_*` families, read now.
    pub fn gather_process(&self) -> Vec<prometheus::proto::MetricFamily> {
        #[cfg(target_os = "linux")]
        return self.process.collect();
        #[cfg(not(target_os = "linux"))]
        Vec::new()
    }
}

impl Default for ExporterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiObserver for ExporterMetrics {
    fn observe(&self, endpoint: Endpoint, outcome: &str, elapsed: Duration) {
        self.api_requests
            .with_label_values(&[endpoint.as_str(), outcome])
            .inc();
        self.api_duration
            .with_label_values(&[endpoint.as_str()])
            .observe(elapsed.as_secs_f64());
        self.changed();
    }

    fn auth_failure(&self, project_id: &str) {
        self.auth_failures.with_label_values(&[project_id]).inc();
        self.changed();
    }

    fn throttled(&self, project_id: &str, endpoint: Endpoint) {
        self.throttled
            .with_label_values(&[project_id, endpoint.as_str()])
            .inc();
        self.changed();
    }

    fn permission_denied(&self, project_id: &str, endpoint: Endpoint) {
        self.permission_denied
            .with_label_values(&[project_id, endpoint.as_str()])
            .inc();
        self.changed();
    }

    fn capped(&self, cap: Cap, n: u64, subject: &str) {
        self.caps.count_dropped(cap, n, subject);
        self.changed();
    }

    fn clock_offset(&self, project_id: &str, seconds: f64) {
        self.clock_offset
            .with_label_values(&[project_id])
            .set(seconds);
        self.changed();
    }
}
