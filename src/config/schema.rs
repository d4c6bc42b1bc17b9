//! The configuration file as written: the serde types that mirror the
//! TOML ([`RawConfig`] and its sections), with their defaults, and
//! [`parse_raw`], which reads text into them and turns serde's errors into a
//! [`ConfigError`] naming the key and line. No checking beyond types here;
//! that is `validate`'s job.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{
    ConfigError, DEFAULT_CONCURRENCY, DEFAULT_DISCOVERY_INTERVAL, DEFAULT_INTERVAL,
    DEFAULT_LATE_VISIBILITY, DEFAULT_LISTEN_ADDRESS, DEFAULT_LOOKBACK, DEFAULT_MAX_ASYNC_DURATION,
    DEFAULT_MAX_FUNCTIONS, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_TRACKED_INVOCATIONS,
    DEFAULT_RETRIES, DEFAULT_STATISTICS_PERIOD, FailuresConfig,
};
use crate::buckets::DURATION_BUCKETS;
use crate::caps::{DEFAULT_MAX_LABEL_CHARS, DEFAULT_MAX_QUOTA_TYPES, DEFAULT_MAX_VERSIONS};

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) web: RawWeb,
    #[serde(default)]
    pub(super) polling: RawPolling,
    #[serde(default)]
    pub(super) collectors: RawCollectors,
    #[serde(default)]
    pub(super) sharding: RawSharding,
    #[serde(default)]
    pub(super) state: RawState,
    #[serde(default)]
    pub(super) failures: RawFailures,
    #[serde(default)]
    pub(super) projects: Vec<RawProject>,
}

/// `[failures]`: what is kept of failed and discarded invocations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawFailures {
    /// Latest failed and discarded invocations kept per function (`/failures`).
    pub(super) keep: usize,
    /// Distinct `error_code` labels per function.
    pub(super) max_error_codes: usize,
    /// One log line per counted failure.
    pub(super) log: bool,
}

impl Default for RawFailures {
    fn default() -> Self {
        let d = FailuresConfig::default();
        Self {
            keep: d.keep,
            max_error_codes: d.max_error_codes,
            log: d.log,
        }
    }
}

/// `[state]`: durable counting state.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    /// File the counting state is kept in; off when absent.
    pub(super) path: Option<PathBuf>,
}

/// `[polling.intervals]`: how often each collector runs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawIntervals {
    #[serde(with = "humantime_serde::option")]
    pub(super) async_invocations: Option<Duration>,
    #[serde(with = "humantime_serde::option")]
    pub(super) versions: Option<Duration>,
    #[serde(with = "humantime_serde::option")]
    pub(super) code: Option<Duration>,
    #[serde(with = "humantime_serde::option")]
    pub(super) snapshot: Option<Duration>,
    #[serde(with = "humantime_serde::option")]
    pub(super) statistics: Option<Duration>,
    #[serde(with = "humantime_serde::option")]
    pub(super) quotas: Option<Duration>,
}

/// `[collectors]`: optional collectors, one switch each.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawCollectors {
    pub(super) statistics: bool,
    /// Minutes of look-back of the statistics API: 5, 15 or 60.
    pub(super) statistics_period_minutes: u32,
    pub(super) quotas: bool,
}

impl Default for RawCollectors {
    fn default() -> Self {
        Self {
            statistics: false,
            statistics_period_minutes: DEFAULT_STATISTICS_PERIOD,
            quotas: false,
        }
    }
}

/// `[sharding]`: which share of the functions this replica polls.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSharding {
    pub(super) count: u32,
    pub(super) index: Option<u32>,
}

impl Default for RawSharding {
    fn default() -> Self {
        Self {
            count: 1,
            index: None,
        }
    }
}

/// `[projects.discovery]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDiscovery {
    pub(super) enabled: bool,
    pub(super) packages: Vec<String>,
    pub(super) include: Option<String>,
    pub(super) exclude: Option<String>,
    #[serde(with = "humantime_serde")]
    pub(super) refresh_interval: Duration,
}

impl Default for RawDiscovery {
    fn default() -> Self {
        Self {
            enabled: false,
            packages: Vec::new(),
            include: None,
            exclude: None,
            refresh_interval: DEFAULT_DISCOVERY_INTERVAL,
        }
    }
}

/// `[web]`: the HTTP server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawWeb {
    /// `host:port` to serve `/metrics` on.
    pub(super) listen_address: String,
}

impl Default for RawWeb {
    fn default() -> Self {
        Self {
            listen_address: DEFAULT_LISTEN_ADDRESS.to_owned(),
        }
    }
}

/// `[polling]`: how the API is polled.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawPolling {
    /// How often each function is polled.
    #[serde(with = "humantime_serde")]
    pub(super) interval: Duration,
    /// Per HTTP request, first byte sent to last byte read; by default
    /// [`DEFAULT_TIMEOUT`] or the shortest collector interval, if shorter.
    #[serde(with = "humantime_serde::option")]
    pub(super) timeout: Option<Duration>,
    /// API requests in flight across all functions and projects.
    pub(super) concurrency: i64,
    /// Window of async invocation records taken into account.
    #[serde(with = "humantime_serde")]
    pub(super) async_lookback: Duration,
    /// How long after its start a record may first show in listings.
    #[serde(with = "humantime_serde")]
    pub(super) async_late_visibility: Duration,
    /// How long a pending invocation is tracked.
    #[serde(with = "humantime_serde")]
    pub(super) async_max_duration: Duration,
    /// Upper bounds (seconds) of the async duration histogram.
    pub(super) async_duration_buckets: Vec<f64>,
    /// Async invocation records remembered per function.
    pub(super) max_tracked_invocations: usize,
    /// Larger API responses are refused (and the collector fails).
    pub(super) max_response_bytes: i64,
    /// Per-collector intervals.
    pub(super) intervals: RawIntervals,
    /// Retries of a request failing with 5xx, 429 or a transport error (never a
    /// timeout: the collector backs off instead).
    pub(super) retries: u32,
    /// A failed collector's last values are dropped after this long.
    #[serde(with = "humantime_serde::option")]
    pub(super) stale_after: Option<Duration>,
    /// At most this many functions are monitored (the rest are dropped and counted).
    pub(super) max_functions: usize,
    /// Upstream strings that become label values are at most this long.
    pub(super) max_label_length: usize,
    /// Versions exported per function at most.
    pub(super) max_versions: usize,
    /// Quota types exported per project at most.
    pub(super) max_quota_types: usize,
}

impl Default for RawPolling {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            timeout: None,
            concurrency: DEFAULT_CONCURRENCY,
            async_lookback: DEFAULT_LOOKBACK,
            async_late_visibility: DEFAULT_LATE_VISIBILITY,
            async_max_duration: DEFAULT_MAX_ASYNC_DURATION,
            async_duration_buckets: DURATION_BUCKETS.to_vec(),
            max_tracked_invocations: DEFAULT_MAX_TRACKED_INVOCATIONS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            intervals: RawIntervals::default(),
            retries: DEFAULT_RETRIES,
            stale_after: None,
            max_functions: DEFAULT_MAX_FUNCTIONS,
            max_label_length: DEFAULT_MAX_LABEL_CHARS,
            max_versions: DEFAULT_MAX_VERSIONS,
            max_quota_types: DEFAULT_MAX_QUOTA_TYPES,
        }
    }
}

/// `[[projects]]`: one IAM project (one region of one account).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub(super) project_id: String,
    pub(super) region: String,
    #[serde(default)]
    pub(super) endpoint: Option<String>,
    #[serde(default)]
    pub(super) functions: Vec<String>,
    #[serde(default)]
    pub(super) max_requests_per_second: Option<u32>,
    #[serde(default)]
    pub(super) discovery: RawDiscovery,
    /// Send credentials over plain HTTP to a host outside the loopback
    /// range (the endpoint or the IAM endpoint).
    #[serde(default)]
    pub(super) allow_insecure_http: bool,
    pub(super) auth: RawAuth,
}

/// `[projects.auth]`, tagged by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(super) enum RawAuth {
    Token(RawTokenAuth),
    Aksk(RawAkSkAuth),
    Password(RawPasswordAuth),
}

/// `type = "token"`: a static IAM token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokenAuth {
    pub(super) token_env: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    #[serde(default, with = "humantime_serde::option")]
    pub(super) failure_backoff: Option<Duration>,
}

/// `type = "aksk"`: an access key pair, signing every request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAkSkAuth {
    pub(super) access_key_env: Option<String>,
    pub(super) access_key_file: Option<PathBuf>,
    pub(super) secret_key_env: Option<String>,
    pub(super) secret_key_file: Option<PathBuf>,
    pub(super) security_token_env: Option<String>,
    pub(super) security_token_file: Option<PathBuf>,
    #[serde(default, with = "humantime_serde::option")]
    pub(super) failure_backoff: Option<Duration>,
}

/// `type = "password"`: an IAM user's password, exchanged for tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPasswordAuth {
    pub(super) user_name: String,
    pub(super) domain_name: String,
    pub(super) password_env: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) iam_endpoint: Option<String>,
    #[serde(default, with = "humantime_serde::option")]
    pub(super) failure_backoff: Option<Duration>,
}

pub(super) fn parse_raw(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|r| text[..r.start.min(text.len())].matches('\n').count() + 1)
    };
    let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: String::new(),
        line: line_of(e.span()),
        message: e.message().trim().to_owned(),
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        ConfigError::Invalid {
            origin: origin.to_owned(),
            key: if key == "." { String::new() } else { key },
            line: line_of(inner.span()),
            message: inner.message().trim().to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn syntax_errors_give_the_line() {
        let err = Config::from_toml("[web]\nlisten_address = \n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml: line 2: "), "{err}");
    }
}
