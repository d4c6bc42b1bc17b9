//! Configuration: the TOML file as written ([`RawConfig`]), checked and
//! turned into what the rest of the program uses ([`Config`]).
//!
//! Unknown keys are errors, so a typo never passes silently. Every error
//! names the file, the key path and what is wrong
//! (`config.toml: polling.interval: must be at least 1s`). Parsing is pure
//! ([`Config::from_toml`]); [`Config::load`] only adds reading the file.
//! Secrets are not read here: the config says where they are, and the app
//! reads them when it builds clients.

use std::collections::HashMap;
use std::fmt::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::api::gate::MAX_AUTH_BACKOFF;
use crate::caps::{
    DEFAULT_MAX_LABEL_CHARS, DEFAULT_MAX_QUOTA_TYPES, DEFAULT_MAX_VERSIONS, MAX_LABEL_CHARS_LIMIT,
};
use crate::secret::SecretSource;
use crate::state::{DURATION_BUCKETS, DurationBuckets};
use crate::urn::FunctionUrn;

/// Where `--config` points when it is not given, if that file exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/functiongraph_exporter.toml";
/// The exporter's port. Not in `/etc/services` nor IANA's registry, clear of
/// the Zabbix agent (10050), trapper (10051), Java gateway (10052) and web
/// service (10053) that run on many of the same hosts, of 10049 (claimed by
/// another exporter) and of 10080 (Amanda; blocked by browsers).
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:10054";
/// The environment variable a token is read from when neither `token_env`
/// nor `token_file` is set.
pub const DEFAULT_TOKEN_ENV: &str = "FUNCTIONGRAPH_TOKEN";
/// The official SDKs' variables for an access key pair and the security
/// token of temporary credentials.
pub const DEFAULT_ACCESS_KEY_ENV: &str = "HUAWEICLOUD_SDK_AK";
pub const DEFAULT_SECRET_KEY_ENV: &str = "HUAWEICLOUD_SDK_SK";
pub const DEFAULT_SECURITY_TOKEN_ENV: &str = "HUAWEICLOUD_SDK_SECURITY_TOKEN";
/// The environment variable an IAM password is read from by default.
pub const DEFAULT_PASSWORD_ENV: &str = "FUNCTIONGRAPH_PASSWORD";
/// First pause after an authentication failure; it doubles while failures
/// go on, up to [`MAX_AUTH_BACKOFF`]. The gateway locks an access key for
/// five minutes after five consecutive failures, so never hammer it.
pub const DEFAULT_AUTH_BACKOFF: Duration = Duration::from_secs(60);

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONCURRENCY: i64 = 8;
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);
const DEFAULT_MAX_RESPONSE_BYTES: i64 = 16 * 1024 * 1024;
/// Versions, code and snapshot state change rarely: polled this often.
const DEFAULT_SLOW_INTERVAL: Duration = Duration::from_secs(5 * 60);
const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(10 * 60);
const DEFAULT_MAX_REQUESTS_PER_SECOND: u32 = 20;
const DEFAULT_STATISTICS_PERIOD: u32 = 5;
const DEFAULT_RETRIES: u32 = 2;
const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(15 * 60);
/// Longest interval of anything polled (and of discovery): a day.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Longest async lookback and staleness limit.
const MAX_LOOKBACK: Duration = Duration::from_secs(30 * 24 * 3600);
const DEFAULT_MAX_FUNCTIONS: usize = 10_000;
/// The largest configuration file read (40,000 functions take about 3 MB).
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;
/// How long after its start an async record may first show in listings.
const DEFAULT_LATE_VISIBILITY: Duration = Duration::from_secs(5 * 60);
/// How long a pending async invocation is tracked.
const DEFAULT_MAX_ASYNC_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Async invocation records remembered per function.
const DEFAULT_MAX_TRACKED_INVOCATIONS: usize = 100_000;

// === raw: the file as written ===

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    polling: RawPolling,
    #[serde(default)]
    collectors: RawCollectors,
    #[serde(default)]
    sharding: RawSharding,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    failures: RawFailures,
    #[serde(default)]
    projects: Vec<RawProject>,
}

/// `[failures]`: what is kept of failed and discarded invocations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFailures {
    /// Latest failed and discarded invocations kept per function (`/failures`).
    keep: usize,
    /// Distinct `error_code` labels per function.
    max_error_codes: usize,
    /// One log line per counted failure.
    log: bool,
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
struct RawState {
    /// File the counting state is kept in; off when absent.
    path: Option<PathBuf>,
}

/// `[polling.intervals]`: how often each collector runs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawIntervals {
    #[serde(with = "humantime_serde::option")]
    async_invocations: Option<Duration>,
    #[serde(with = "humantime_serde::option")]
    versions: Option<Duration>,
    #[serde(with = "humantime_serde::option")]
    code: Option<Duration>,
    #[serde(with = "humantime_serde::option")]
    snapshot: Option<Duration>,
    #[serde(with = "humantime_serde::option")]
    statistics: Option<Duration>,
    #[serde(with = "humantime_serde::option")]
    quotas: Option<Duration>,
}

/// `[collectors]`: optional collectors, one switch each.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCollectors {
    statistics: bool,
    /// Minutes of look-back of the statistics API: 5, 15 or 60.
    statistics_period_minutes: u32,
    quotas: bool,
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
struct RawSharding {
    count: u32,
    index: Option<u32>,
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
struct RawDiscovery {
    enabled: bool,
    packages: Vec<String>,
    include: Option<String>,
    exclude: Option<String>,
    #[serde(with = "humantime_serde")]
    refresh_interval: Duration,
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
struct RawWeb {
    /// `host:port` to serve `/metrics` on.
    listen_address: String,
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
struct RawPolling {
    /// How often each function is polled.
    #[serde(with = "humantime_serde")]
    interval: Duration,
    /// Per HTTP request, first byte sent to last byte read; by default
    /// [`DEFAULT_TIMEOUT`] or the shortest collector interval, if shorter.
    #[serde(with = "humantime_serde::option")]
    timeout: Option<Duration>,
    /// API requests in flight across all functions and projects.
    concurrency: i64,
    /// Window of async invocation records taken into account.
    #[serde(with = "humantime_serde")]
    async_lookback: Duration,
    /// How long after its start a record may first show in listings.
    #[serde(with = "humantime_serde")]
    async_late_visibility: Duration,
    /// How long a pending invocation is tracked.
    #[serde(with = "humantime_serde")]
    async_max_duration: Duration,
    /// Upper bounds (seconds) of the async duration histogram.
    async_duration_buckets: Vec<f64>,
    /// Async invocation records remembered per function.
    max_tracked_invocations: usize,
    /// Larger API responses are refused (and the collector fails).
    max_response_bytes: i64,
    /// Per-collector intervals.
    intervals: RawIntervals,
    /// Retries of a request failing with 5xx, 429 or a transport error (never a
    /// timeout: the collector backs off instead).
    retries: u32,
    /// A failed collector's last values are dropped after this long.
    #[serde(with = "humantime_serde::option")]
    stale_after: Option<Duration>,
    /// At most this many functions are monitored (the rest are dropped and counted).
    max_functions: usize,
    /// Upstream strings that become label values are at most this long.
    max_label_length: usize,
    /// Versions exported per function at most.
    max_versions: usize,
    /// Quota types exported per project at most.
    max_quota_types: usize,
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
struct RawProject {
    project_id: String,
    region: String,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    functions: Vec<String>,
    #[serde(default)]
    max_requests_per_second: Option<u32>,
    #[serde(default)]
    discovery: RawDiscovery,
    /// Send credentials over plain HTTP to a host outside the loopback
    /// range (the endpoint or the IAM endpoint).
    #[serde(default)]
    allow_insecure_http: bool,
    auth: RawAuth,
}

/// `[projects.auth]`, tagged by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum RawAuth {
    Token(RawTokenAuth),
    Aksk(RawAkSkAuth),
    Password(RawPasswordAuth),
}

/// `type = "token"`: a static IAM token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenAuth {
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    #[serde(default, with = "humantime_serde::option")]
    failure_backoff: Option<Duration>,
}

/// `type = "aksk"`: an access key pair, signing every request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAkSkAuth {
    access_key_env: Option<String>,
    access_key_file: Option<PathBuf>,
    secret_key_env: Option<String>,
    secret_key_file: Option<PathBuf>,
    security_token_env: Option<String>,
    security_token_file: Option<PathBuf>,
    #[serde(default, with = "humantime_serde::option")]
    failure_backoff: Option<Duration>,
}

/// `type = "password"`: an IAM user's password, exchanged for tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPasswordAuth {
    user_name: String,
    domain_name: String,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    iam_endpoint: Option<String>,
    #[serde(default, with = "humantime_serde::option")]
    failure_backoff: Option<Duration>,
}

// === validated ===

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where it was read from (the file's path), for run-time errors that
    /// must name the file and key, as start-up errors do.
    pub origin: String,
    pub web: WebConfig,
    pub polling: PollingConfig,
    pub collectors: CollectorsConfig,
    pub sharding: ShardingConfig,
    pub state: StateConfig,
    pub failures: FailuresConfig,
    pub projects: Vec<ProjectConfig>,
}

/// What is kept of failed and discarded invocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailuresConfig {
    /// Latest failed and discarded invocations kept per function, shown on
    /// `/failures`.
    pub keep: usize,
    /// Distinct `error_code` labels of
    /// `functiongraph_async_invocation_failures_total` per function.
    pub max_error_codes: usize,
    /// One structured log line per counted failure.
    pub log: bool,
}

impl Default for FailuresConfig {
    fn default() -> Self {
        Self {
            keep: 20,
            max_error_codes: 20,
            log: false,
        }
    }
}

/// Durable counting state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateConfig {
    /// The state file (`{shard}` replaced by the shard index); `None`:
    /// counters start from zero at every start.
    pub path: Option<PathBuf>,
}

/// How often each collector runs. The poll cycle runs at the shortest of
/// them; a collector that is not due in a cycle keeps its last values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervals {
    pub async_invocations: Duration,
    pub versions: Duration,
    pub code: Duration,
    pub snapshot: Duration,
    pub statistics: Duration,
    pub quotas: Duration,
}

impl Intervals {
    /// The defaults for a base `interval`: async invocations and statistics
    /// every interval, the rest every 5 minutes (or the interval, if longer).
    pub fn defaults(interval: Duration) -> Self {
        let slow = interval.max(DEFAULT_SLOW_INTERVAL);
        Self {
            async_invocations: interval,
            versions: slow,
            code: slow,
            snapshot: slow,
            statistics: interval,
            quotas: slow,
        }
    }

    /// The cycle period: the shortest interval.
    pub fn cycle(&self) -> Duration {
        [
            self.async_invocations,
            self.versions,
            self.code,
            self.snapshot,
            self.statistics,
            self.quotas,
        ]
        .into_iter()
        .min()
        .unwrap_or(self.async_invocations)
    }
}

/// Optional collectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorsConfig {
    /// Per-function statistics (`statistics/{period}`).
    pub statistics: bool,
    /// Look-back of the statistics API, in minutes (5, 15 or 60).
    pub statistics_period_minutes: u32,
    /// Project quotas (`fgs/quotas`).
    pub quotas: bool,
}

impl Default for CollectorsConfig {
    fn default() -> Self {
        Self {
            statistics: false,
            statistics_period_minutes: DEFAULT_STATISTICS_PERIOD,
            quotas: false,
        }
    }
}

/// Which share of the functions this replica polls: those whose URN's MD5,
/// last 8 bytes as a big-endian integer, modulo `count` is `index` (the
/// arithmetic of Prometheus' `hashmod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardingConfig {
    pub count: u32,
    /// `None`: from the host name's StatefulSet ordinal (`name-3` → 3).
    pub index: Option<u32>,
}

impl Default for ShardingConfig {
    fn default() -> Self {
        Self {
            count: 1,
            index: None,
        }
    }
}

/// Function discovery for one project.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Packages to list; empty: all.
    pub packages: Vec<String>,
    /// Function names must match this...
    pub include: Option<regex::Regex>,
    /// ...and not this.
    pub exclude: Option<regex::Regex>,
    pub refresh_interval: Duration,
}

impl PartialEq for DiscoveryConfig {
    fn eq(&self, other: &Self) -> bool {
        let re = |r: &Option<regex::Regex>| r.as_ref().map(|r| r.as_str().to_owned());
        self.packages == other.packages
            && re(&self.include) == re(&other.include)
            && re(&self.exclude) == re(&other.exclude)
            && self.refresh_interval == other.refresh_interval
    }
}

impl Eq for DiscoveryConfig {}

impl DiscoveryConfig {
    /// Whether a function name passes the include and exclude filters.
    pub fn admits(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|r| r.is_match(name))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(name))
    }
}

/// The HTTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    pub listen_address: SocketAddr,
}

/// How the API is polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollingConfig {
    pub interval: Duration,
    pub timeout: Duration,
    pub concurrency: usize,
    pub async_lookback: Duration,
    /// How long after its start an async record may first show in listings.
    pub async_late_visibility: Duration,
    /// How long a pending async invocation is tracked.
    pub async_max_duration: Duration,
    /// Upper bounds of `functiongraph_async_invocation_duration_seconds`.
    pub async_duration_buckets: DurationBuckets,
    /// Async invocation records remembered per function.
    pub max_tracked_invocations: usize,
    pub max_response_bytes: usize,
    pub intervals: Intervals,
    /// Retries of a transient failure (5xx, 429, timeout, transport).
    pub retries: u32,
    /// How long a failed collector's last values are still exported.
    pub stale_after: Duration,
    /// Cap on monitored functions (label cardinality).
    pub max_functions: usize,
    /// Cap on the length of upstream strings that become label values.
    pub max_label_length: usize,
    /// Cap on the versions exported per function.
    pub max_versions: usize,
    /// Cap on the quota types exported per project.
    pub max_quota_types: usize,
}

/// One project: where its API is, how to authenticate, what to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectConfig {
    pub project_id: String,
    pub region: String,
    /// `scheme://host[:port][/prefix]`, no trailing slash.
    pub endpoint: String,
    /// Functions listed explicitly (never removed, even when gone).
    pub functions: Vec<FunctionUrn>,
    /// Token-bucket limit on this project's API requests.
    pub max_requests_per_second: u32,
    pub discovery: Option<DiscoveryConfig>,
    pub auth: AuthConfig,
    /// Credentials may go over plain HTTP to a host outside the loopback
    /// range (`allow_insecure_http`).
    pub allow_insecure_http: bool,
}

/// How a project authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub method: AuthMethod,
    /// First pause after an authentication failure (it doubles while
    /// failures go on, up to [`MAX_AUTH_BACKOFF`]).
    pub failure_backoff: Duration,
}

/// The three ways of authenticating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// Every request signed with an access key pair (`SDK-HMAC-SHA256`);
    /// with a security token for temporary credentials.
    AkSk {
        access_key: SecretSource,
        secret_key: SecretSource,
        security_token: Option<SecretSource>,
    },
    /// Project-scoped IAM tokens obtained with a user's password.
    Password {
        user_name: String,
        domain_name: String,
        password: SecretSource,
        /// `scheme://host[:port]`, no trailing slash.
        iam_endpoint: String,
    },
    /// A static IAM token sent as `X-Auth-Token`.
    Token(SecretSource),
}

impl AuthConfig {
    /// Token authentication from `source`, with the default back-off.
    pub fn token(source: SecretSource) -> Self {
        Self {
            method: AuthMethod::Token(source),
            failure_backoff: DEFAULT_AUTH_BACKOFF,
        }
    }

    /// A short description for logs and `--check-config` (never a secret).
    pub fn describe(&self) -> String {
        match &self.method {
            AuthMethod::AkSk {
                access_key,
                secret_key,
                security_token,
            } => {
                let mut s =
                    format!("aksk (access key from {access_key}, secret key from {secret_key}");
                if let Some(t) = security_token {
                    s.push_str(&format!(", security token from {t}"));
                }
                s.push(')');
                s
            }
            AuthMethod::Password {
                user_name,
                domain_name,
                password,
                iam_endpoint,
            } => format!(
                "password (user {user_name} of account {domain_name}, password from {password}, tokens from {iam_endpoint})"
            ),
            AuthMethod::Token(source) => format!("token from {source}"),
        }
    }

    /// Every secret source, named by its key, for checking they can be read.
    pub fn sources(&self) -> Vec<(&'static str, &SecretSource)> {
        match &self.method {
            AuthMethod::AkSk {
                access_key,
                secret_key,
                security_token,
            } => {
                let mut v = vec![("access key", access_key), ("secret key", secret_key)];
                if let Some(t) = security_token {
                    v.push(("security token", t));
                }
                v
            }
            AuthMethod::Password { password, .. } => vec![("password", password)],
            AuthMethod::Token(t) => vec![("token", t)],
        }
    }
}

impl Default for PollingConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY as usize,
            async_lookback: DEFAULT_LOOKBACK,
            async_late_visibility: DEFAULT_LATE_VISIBILITY,
            async_max_duration: DEFAULT_MAX_ASYNC_DURATION,
            async_duration_buckets: DurationBuckets::default(),
            max_tracked_invocations: DEFAULT_MAX_TRACKED_INVOCATIONS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES as usize,
            intervals: Intervals::defaults(DEFAULT_INTERVAL),
            retries: DEFAULT_RETRIES,
            stale_after: DEFAULT_STALE_AFTER,
            max_functions: DEFAULT_MAX_FUNCTIONS,
            max_label_length: DEFAULT_MAX_LABEL_CHARS,
            max_versions: DEFAULT_MAX_VERSIONS,
            max_quota_types: DEFAULT_MAX_QUOTA_TYPES,
        }
    }
}

// === errors ===

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {}{message}", location(key, *line))]
    Invalid {
        /// The file, or what stood for it.
        origin: String,
        /// Key path such as `projects[0].auth.token_env`; empty for syntax errors.
        key: String,
        /// 1-based line, when known.
        line: Option<usize>,
        message: String,
    },
}

fn location(key: &str, line: Option<usize>) -> String {
    match (key.is_empty(), line) {
        (false, Some(l)) => format!("{key} (line {l}): "),
        (false, None) => format!("{key}: "),
        (true, Some(l)) => format!("line {l}: "),
        (true, None) => String::new(),
    }
}

struct Checker<'a> {
    origin: &'a str,
}

impl Checker<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            key: key.into(),
            line: None,
            message: message.into(),
        }
    }
}

// === parsing and validation ===

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::secret::read_bounded(path, MAX_CONFIG_BYTES).map_err(|source| {
            ConfigError::Read {
                path: path.to_owned(),
                source,
            }
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw = parse_raw(text, origin)?;
        validate(raw, &Checker { origin })
    }

    /// A one-screen summary for `--check-config`: projects, functions,
    /// intervals and where credentials come from, never their values.
    pub fn summary(&self) -> String {
        const MAX_LISTED: usize = 10;
        let mut s = String::new();
        let p = &self.polling;
        let _ = writeln!(s, "web.listen_address: {}", self.web.listen_address);
        let _ = writeln!(
            s,
            "polling: interval {}, timeout {}, concurrency {}, async lookback {}, max response {} bytes",
            humantime::format_duration(p.interval),
            humantime::format_duration(p.timeout),
            p.concurrency,
            humantime::format_duration(p.async_lookback),
            p.max_response_bytes,
        );
        let _ = writeln!(
            s,
            "caps: {} functions, {} versions per function, {} quota types per project, labels of {} characters",
            p.max_functions, p.max_versions, p.max_quota_types, p.max_label_length,
        );
        let _ = writeln!(
            s,
            "async invocations: late visibility {}, tracked up to {}, at most {} records per function, duration buckets {:?} s",
            humantime::format_duration(p.async_late_visibility),
            humantime::format_duration(p.async_max_duration),
            p.max_tracked_invocations,
            p.async_duration_buckets,
        );
        let _ = match &self.state.path {
            Some(path) => writeln!(s, "state: kept in {}", path.display()),
            None => writeln!(
                s,
                "state: not kept (counters start from zero at every start)"
            ),
        };
        let i = &p.intervals;
        let d = humantime::format_duration;
        let _ = writeln!(
            s,
            "intervals: async invocations {}, versions {}, code {}, snapshot {}, statistics {}, quotas {}",
            d(i.async_invocations),
            d(i.versions),
            d(i.code),
            d(i.snapshot),
            d(i.statistics),
            d(i.quotas),
        );
        let on = |b: bool| if b { "on" } else { "off" };
        let _ = writeln!(
            s,
            "collectors: statistics {} (period {}m), quotas {}",
            on(self.collectors.statistics),
            self.collectors.statistics_period_minutes,
            on(self.collectors.quotas),
        );
        let _ = match (self.sharding.count, self.sharding.index) {
            (1, _) => writeln!(s, "sharding: off (one replica polls every function)"),
            (n, Some(i)) => writeln!(s, "sharding: shard {i} of {n}"),
            (n, None) => writeln!(
                s,
                "sharding: {n} shards, this one's index from the host name's ordinal"
            ),
        };
        let functions: usize = self.projects.iter().map(|p| p.functions.len()).sum();
        let _ = writeln!(
            s,
            "projects: {}, functions: {functions}",
            self.projects.len()
        );
        for project in &self.projects {
            let _ = writeln!(
                s,
                "- project {} ({}) at {}, auth: {}, at most {} requests/s{}",
                project.project_id,
                project.region,
                project.endpoint,
                project.auth.describe(),
                project.max_requests_per_second,
                if project.allow_insecure_http {
                    ", credentials over plain HTTP allowed (allow_insecure_http)"
                } else {
                    ""
                },
            );
            if let Some(disc) = &project.discovery {
                let _ = writeln!(
                    s,
                    "    discovery every {}: packages {}, include {}, exclude {}",
                    d(disc.refresh_interval),
                    if disc.packages.is_empty() {
                        "all".to_owned()
                    } else {
                        disc.packages.join(", ")
                    },
                    disc.include.as_ref().map_or("any", |r| r.as_str()),
                    disc.exclude.as_ref().map_or("none", |r| r.as_str()),
                );
            }
            for urn in project.functions.iter().take(MAX_LISTED) {
                let _ = writeln!(s, "    {urn}");
            }
            if project.functions.len() > MAX_LISTED {
                let _ = writeln!(
                    s,
                    "    ... and {} more",
                    project.functions.len() - MAX_LISTED
                );
            }
        }
        s
    }
}

fn parse_raw(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
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

fn validate(raw: RawConfig, c: &Checker<'_>) -> Result<Config, ConfigError> {
    let listen_address = parse_listen_address(&raw.web.listen_address)
        .map_err(|e| c.err("web.listen_address", e))?;
    let polling = validate_polling(&raw.polling, c)?;
    let mut projects = Vec::with_capacity(raw.projects.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, p) in raw.projects.into_iter().enumerate() {
        let project = validate_project(p, i, c)?;
        if let Some(first) = seen.insert(project.project_id.clone(), i) {
            return Err(c.err(
                format!("projects[{i}].project_id"),
                format!(
                    "project {} is already configured as projects[{first}]",
                    project.project_id
                ),
            ));
        }
        projects.push(project);
    }
    let collectors = validate_collectors(&raw.collectors, c)?;
    let sharding = validate_sharding(&raw.sharding, c)?;
    if projects.is_empty() {
        // Without this, an empty or truncated file would be a valid
        // configuration that silently monitors nothing.
        return Err(c.err(
            "projects",
            "at least one [[projects]] table is required; a configuration without projects would monitor nothing",
        ));
    }
    let state = match raw.state.path {
        Some(p) if p.as_os_str().is_empty() => {
            return Err(c.err(
                "state.path",
                "must not be empty (leave it out to keep no state)",
            ));
        }
        Some(p) if p.is_dir() => {
            return Err(c.err(
                "state.path",
                format!("{} is a directory; name a file in it", p.display()),
            ));
        }
        path => StateConfig { path },
    };
    let f = &raw.failures;
    if f.keep > 1000 {
        return Err(c.err(
            "failures.keep",
            format!("must be at most 1000, found {}", f.keep),
        ));
    }
    if !(1..=1000).contains(&f.max_error_codes) {
        return Err(c.err(
            "failures.max_error_codes",
            format!("must be between 1 and 1000, found {}", f.max_error_codes),
        ));
    }
    let failures = FailuresConfig {
        keep: f.keep,
        max_error_codes: f.max_error_codes,
        log: f.log,
    };
    Ok(Config {
        origin: c.origin.to_owned(),
        web: WebConfig { listen_address },
        polling,
        collectors,
        sharding,
        state,
        failures,
        projects,
    })
}

fn validate_collectors(
    r: &RawCollectors,
    c: &Checker<'_>,
) -> Result<CollectorsConfig, ConfigError> {
    if ![5, 15, 60].contains(&r.statistics_period_minutes) {
        return Err(c.err(
            "collectors.statistics_period_minutes",
            format!(
                "must be 5, 15 or 60 (the periods the statistics API offers), found {}",
                r.statistics_period_minutes
            ),
        ));
    }
    Ok(CollectorsConfig {
        statistics: r.statistics,
        statistics_period_minutes: r.statistics_period_minutes,
        quotas: r.quotas,
    })
}

fn validate_sharding(r: &RawSharding, c: &Checker<'_>) -> Result<ShardingConfig, ConfigError> {
    if r.count == 0 {
        return Err(c.err("sharding.count", "must be at least 1"));
    }
    if let Some(index) = r.index {
        if index >= r.count {
            return Err(c.err(
                "sharding.index",
                format!("must be below sharding.count ({}), found {index}", r.count),
            ));
        }
    }
    Ok(ShardingConfig {
        count: r.count,
        index: r.index,
    })
}

fn validate_polling(p: &RawPolling, c: &Checker<'_>) -> Result<PollingConfig, ConfigError> {
    if p.interval < Duration::from_secs(1) {
        return Err(c.err("polling.interval", "must be at least 1s"));
    }
    if p.interval > MAX_INTERVAL {
        return Err(c.err("polling.interval", "must be at most 1d"));
    }
    if p.timeout.is_some_and(|t| t.is_zero()) {
        return Err(c.err("polling.timeout", "must be greater than zero"));
    }
    if let Some(timeout) = p.timeout.filter(|t| *t > p.interval) {
        return Err(c.err(
            "polling.timeout",
            format!(
                "must not exceed polling.interval ({}), or polls would overlap; found {}",
                humantime::format_duration(p.interval),
                humantime::format_duration(timeout)
            ),
        ));
    }
    if !(1..=1000).contains(&p.concurrency) {
        return Err(c.err(
            "polling.concurrency",
            format!("must be between 1 and 1000, found {}", p.concurrency),
        ));
    }
    if p.async_lookback < Duration::from_secs(60) {
        return Err(c.err("polling.async_lookback", "must be at least 1m"));
    }
    if p.async_lookback > MAX_LOOKBACK {
        return Err(c.err("polling.async_lookback", "must be at most 30d"));
    }
    if p.async_late_visibility > Duration::from_secs(24 * 3600) {
        return Err(c.err("polling.async_late_visibility", "must be at most 1d"));
    }
    if p.async_max_duration < Duration::from_secs(60) {
        return Err(c.err("polling.async_max_duration", "must be at least 1m"));
    }
    if p.async_max_duration > MAX_LOOKBACK {
        return Err(c.err("polling.async_max_duration", "must be at most 30d"));
    }
    let async_duration_buckets = DurationBuckets::new(&p.async_duration_buckets)
        .map_err(|e| c.err("polling.async_duration_buckets", e))?;
    if p.max_tracked_invocations < 100 {
        return Err(c.err(
            "polling.max_tracked_invocations",
            format!("must be at least 100, found {}", p.max_tracked_invocations),
        ));
    }
    if p.max_response_bytes < 1024 {
        return Err(c.err(
            "polling.max_response_bytes",
            format!("must be at least 1024, found {}", p.max_response_bytes),
        ));
    }
    let defaults = Intervals::defaults(p.interval);
    let i = &p.intervals;
    let intervals = Intervals {
        async_invocations: i.async_invocations.unwrap_or(defaults.async_invocations),
        versions: i.versions.unwrap_or(defaults.versions),
        code: i.code.unwrap_or(defaults.code),
        snapshot: i.snapshot.unwrap_or(defaults.snapshot),
        statistics: i.statistics.unwrap_or(defaults.statistics),
        quotas: i.quotas.unwrap_or(defaults.quotas),
    };
    for (name, d) in [
        ("async_invocations", intervals.async_invocations),
        ("versions", intervals.versions),
        ("code", intervals.code),
        ("snapshot", intervals.snapshot),
        ("statistics", intervals.statistics),
        ("quotas", intervals.quotas),
    ] {
        if d < Duration::from_secs(1) {
            return Err(c.err(format!("polling.intervals.{name}"), "must be at least 1s"));
        }
        if d > MAX_INTERVAL {
            return Err(c.err(format!("polling.intervals.{name}"), "must be at most 1d"));
        }
    }
    if p.retries > 10 {
        return Err(c.err(
            "polling.retries",
            format!("must be at most 10, found {}", p.retries),
        ));
    }
    let longest = [
        intervals.async_invocations,
        intervals.versions,
        intervals.code,
        intervals.snapshot,
        intervals.statistics,
        intervals.quotas,
    ]
    .into_iter()
    .max()
    .unwrap_or(p.interval);
    let stale_after = match p.stale_after {
        Some(d) if d < intervals.cycle() => {
            return Err(c.err(
                "polling.stale_after",
                "must be at least the shortest collector interval",
            ));
        }
        Some(d) if d > MAX_LOOKBACK => {
            return Err(c.err("polling.stale_after", "must be at most 30d"));
        }
        Some(d) => d,
        None => DEFAULT_STALE_AFTER.max(longest.saturating_mul(2)),
    };
    if p.max_functions == 0 {
        return Err(c.err("polling.max_functions", "must be at least 1"));
    }
    for (key, value, min, max) in [
        (
            "polling.max_label_length",
            p.max_label_length,
            16,
            MAX_LABEL_CHARS_LIMIT,
        ),
        ("polling.max_versions", p.max_versions, 1, 100_000),
        ("polling.max_quota_types", p.max_quota_types, 1, 100_000),
    ] {
        if !(min..=max).contains(&value) {
            return Err(c.err(
                key,
                format!("must be between {min} and {max}, found {value}"),
            ));
        }
    }
    // A default never makes another key invalid: without `timeout`,
    // `interval = "3s"` gets a 3s timeout.
    let timeout = p
        .timeout
        .unwrap_or(DEFAULT_TIMEOUT.min(intervals.cycle()).min(p.interval));
    if timeout > intervals.cycle() {
        return Err(c.err(
            "polling.timeout",
            format!(
                "must not exceed the shortest collector interval ({}), or polls would overlap; found {}",
                humantime::format_duration(intervals.cycle()),
                humantime::format_duration(timeout)
            ),
        ));
    }
    Ok(PollingConfig {
        interval: p.interval,
        timeout,
        concurrency: p.concurrency as usize,
        async_lookback: p.async_lookback,
        async_late_visibility: p.async_late_visibility,
        async_max_duration: p.async_max_duration,
        async_duration_buckets,
        max_tracked_invocations: p.max_tracked_invocations,
        max_response_bytes: usize::try_from(p.max_response_bytes).unwrap_or(usize::MAX),
        intervals,
        retries: p.retries,
        stale_after,
        max_functions: p.max_functions,
        max_label_length: p.max_label_length,
        max_versions: p.max_versions,
        max_quota_types: p.max_quota_types,
    })
}

fn validate_project(
    p: RawProject,
    i: usize,
    c: &Checker<'_>,
) -> Result<ProjectConfig, ConfigError> {
    let key = |k: &str| format!("projects[{i}].{k}");
    if p.project_id.len() != 32 || !p.project_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(c.err(
            key("project_id"),
            format!(
                "must be the 32-character IAM project id (letters and digits), found {:?}",
                p.project_id
            ),
        ));
    }
    let region_ok = !p.region.is_empty()
        && p.region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        return Err(c.err(
            key("region"),
            format!(
                "must be a region id such as ap-southeast-1, found {:?}",
                p.region
            ),
        ));
    }
    let endpoint = match &p.endpoint {
        Some(e) => validate_endpoint(e).map_err(|m| c.err(key("endpoint"), m))?,
        None => format!("https://functiongraph.{}.myhuaweicloud.com", p.region),
    };
    check_cleartext(&endpoint, p.allow_insecure_http, &key("endpoint"), i, c)?;
    let discovery = validate_discovery(&p.discovery, &key("discovery"), c)?;
    if p.functions.is_empty() && discovery.is_none() {
        return Err(c.err(
            key("functions"),
            "at least one function is required (or enable [projects.discovery])",
        ));
    }
    let max_requests_per_second = p
        .max_requests_per_second
        .unwrap_or(DEFAULT_MAX_REQUESTS_PER_SECOND);
    if max_requests_per_second == 0 {
        return Err(c.err(key("max_requests_per_second"), "must be at least 1"));
    }
    let mut functions: Vec<FunctionUrn> = Vec::with_capacity(p.functions.len());
    // Linear in the number of functions: 40,000 listed functions are checked
    // in well under a second.
    let mut seen: HashMap<FunctionUrn, usize> = HashMap::with_capacity(p.functions.len());
    for (j, f) in p.functions.iter().enumerate() {
        let urn = FunctionUrn::parse_in(f, &p.region, &p.project_id)
            .map_err(|e| c.err(key(&format!("functions[{j}]")), format!("{f:?}: {e}")))?;
        if let Some(k) = seen.insert(urn.clone(), j) {
            return Err(c.err(
                key(&format!("functions[{j}]")),
                format!("{f:?} is the same function as functions[{k}] ({urn})"),
            ));
        }
        functions.push(urn);
    }
    let auth = validate_auth(p.auth, &p.region, &key("auth"), c)?;
    if let AuthMethod::Password { iam_endpoint, .. } = &auth.method {
        check_cleartext(
            iam_endpoint,
            p.allow_insecure_http,
            &key("auth.iam_endpoint"),
            i,
            c,
        )?;
    }
    Ok(ProjectConfig {
        project_id: p.project_id,
        region: p.region,
        endpoint,
        functions,
        max_requests_per_second,
        discovery,
        auth,
        allow_insecure_http: p.allow_insecure_http,
    })
}

/// Refuses plain HTTP to a host outside the loopback range unless the
/// project opted in: credentials (tokens, passwords, security tokens) would
/// cross the network unencrypted.
fn check_cleartext(
    endpoint: &str,
    allowed: bool,
    key: &str,
    project: usize,
    c: &Checker<'_>,
) -> Result<(), ConfigError> {
    let Ok(url) = reqwest::Url::parse(endpoint) else {
        return Ok(());
    };
    if url.scheme() != "http" || allowed || is_loopback(&url) {
        return Ok(());
    }
    Err(c.err(
        key,
        format!(
            "{endpoint:?}: plain HTTP to a host outside the loopback range would send credentials unencrypted; use https, or set projects[{project}].allow_insecure_http = true to accept that risk"
        ),
    ))
}

/// Whether a URL's host is on this machine: 127.0.0.0/8, ::1, `localhost`.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let d = bare.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

fn validate_discovery(
    d: &RawDiscovery,
    key: &str,
    c: &Checker<'_>,
) -> Result<Option<DiscoveryConfig>, ConfigError> {
    let regex = |name: &str, pattern: &Option<String>| match pattern {
        None => Ok(None),
        Some(p) => regex::Regex::new(p).map(Some).map_err(|e| {
            c.err(
                format!("{key}.{name}"),
                format!("invalid regular expression: {e}"),
            )
        }),
    };
    let include = regex("include", &d.include)?;
    let exclude = regex("exclude", &d.exclude)?;
    if !d.enabled {
        return Ok(None);
    }
    if d.refresh_interval < Duration::from_secs(1) || d.refresh_interval > MAX_INTERVAL {
        return Err(c.err(
            format!("{key}.refresh_interval"),
            "must be between 1s and 1d",
        ));
    }
    if let Some(j) = d.packages.iter().position(|p| p.trim().is_empty()) {
        return Err(c.err(format!("{key}.packages[{j}]"), "must not be empty"));
    }
    Ok(Some(DiscoveryConfig {
        packages: d.packages.clone(),
        include,
        exclude,
        refresh_interval: d.refresh_interval,
    }))
}

fn validate_auth(
    raw: RawAuth,
    region: &str,
    key: &str,
    c: &Checker<'_>,
) -> Result<AuthConfig, ConfigError> {
    // One secret from an environment variable or a file, never both.
    let source = |name: &str,
                  env: Option<String>,
                  file: Option<PathBuf>,
                  default_env: Option<&str>|
     -> Result<Option<SecretSource>, ConfigError> {
        match (env, file) {
            (Some(_), Some(_)) => {
                Err(c.err(key, format!("set {name}_env or {name}_file, not both")))
            }
            (Some(env), None) if !valid_env_name(&env) => Err(c.err(
                format!("{key}.{name}_env"),
                format!("{env:?} is not a valid environment variable name"),
            )),
            (Some(env), None) => Ok(Some(SecretSource::Env(env))),
            (None, Some(file)) if file.as_os_str().is_empty() => {
                Err(c.err(format!("{key}.{name}_file"), "must not be empty"))
            }
            (None, Some(file)) => Ok(Some(SecretSource::File(file))),
            (None, None) => Ok(default_env.map(|e| SecretSource::Env(e.to_owned()))),
        }
    };
    let required = |s: Option<SecretSource>| s.expect("a default environment variable is given");
    let (method, backoff) = match raw {
        RawAuth::Token(t) => (
            AuthMethod::Token(required(source(
                "token",
                t.token_env,
                t.token_file,
                Some(DEFAULT_TOKEN_ENV),
            )?)),
            t.failure_backoff,
        ),
        RawAuth::Aksk(a) => {
            let security_token = match source(
                "security_token",
                a.security_token_env,
                a.security_token_file,
                None,
            )? {
                Some(s) => Some(s),
                // Like the official SDKs: temporary credentials' token from
                // the environment when it is there.
                None => std::env::var_os(DEFAULT_SECURITY_TOKEN_ENV)
                    .map(|_| SecretSource::Env(DEFAULT_SECURITY_TOKEN_ENV.to_owned())),
            };
            (
                AuthMethod::AkSk {
                    access_key: required(source(
                        "access_key",
                        a.access_key_env,
                        a.access_key_file,
                        Some(DEFAULT_ACCESS_KEY_ENV),
                    )?),
                    secret_key: required(source(
                        "secret_key",
                        a.secret_key_env,
                        a.secret_key_file,
                        Some(DEFAULT_SECRET_KEY_ENV),
                    )?),
                    security_token,
                },
                a.failure_backoff,
            )
        }
        RawAuth::Password(p) => {
            for (name, value) in [("user_name", &p.user_name), ("domain_name", &p.domain_name)] {
                if value.trim().is_empty() {
                    return Err(c.err(format!("{key}.{name}"), "must not be empty"));
                }
            }
            let iam_endpoint = match &p.iam_endpoint {
                Some(e) => {
                    validate_endpoint(e).map_err(|m| c.err(format!("{key}.iam_endpoint"), m))?
                }
                None => format!("https://iam.{region}.myhuaweicloud.com"),
            };
            (
                AuthMethod::Password {
                    user_name: p.user_name,
                    domain_name: p.domain_name,
                    password: required(source(
                        "password",
                        p.password_env,
                        p.password_file,
                        Some(DEFAULT_PASSWORD_ENV),
                    )?),
                    iam_endpoint,
                },
                p.failure_backoff,
            )
        }
    };
    let failure_backoff = backoff.unwrap_or(DEFAULT_AUTH_BACKOFF);
    if failure_backoff.is_zero() || failure_backoff > MAX_AUTH_BACKOFF {
        return Err(c.err(
            format!("{key}.failure_backoff"),
            format!(
                "must be greater than zero and at most {}",
                humantime::format_duration(MAX_AUTH_BACKOFF)
            ),
        ));
    }
    Ok(AuthConfig {
        method,
        failure_backoff,
    })
}

fn validate_endpoint(e: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(e).map_err(|err| format!("invalid URL {e:?}: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{e:?}: scheme must be https (or http for a local simulator)"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{e:?}: URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{e:?}: URL must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{:?}: credentials do not belong in the URL; use [projects.auth]",
            url.host_str().unwrap_or_default()
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A listen address as the Prometheus family writes it: `IP:PORT`,
/// `[IPv6]:PORT`, or `:PORT` for every IPv4 interface (`0.0.0.0:PORT`).
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, String> {
    let full = match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_owned(),
    };
    full.parse().map_err(|e| {
        format!("invalid address {s:?} (expected [host]:port, e.g. 0.0.0.0:10054 or :10054): {e}")
    })
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "0123456789abcdef0123456789abcdef";

    fn minimal(extra_polling: &str) -> String {
        format!(
            r#"
[polling]
{extra_polling}

[[projects]]
project_id = "{P}"
region = "ap-southeast-1"
functions = ["default:my-func"]
[projects.auth]
type = "token"
"#
        )
    }

    #[test]
    fn defaults_fill_everything_not_given() {
        let c = Config::from_toml(&minimal(""), "t.toml").unwrap();
        assert_eq!(c.web.listen_address.to_string(), DEFAULT_LISTEN_ADDRESS);
        assert_eq!(c.polling, PollingConfig::default());
        let p = &c.projects[0];
        assert_eq!(
            p.endpoint,
            "https://functiongraph.ap-southeast-1.myhuaweicloud.com"
        );
        assert_eq!(
            p.auth,
            AuthConfig::token(SecretSource::Env(DEFAULT_TOKEN_ENV.into()))
        );
        assert_eq!(
            p.functions[0].to_string(),
            format!("urn:fss:ap-southeast-1:{P}:function:default:my-func:latest")
        );
    }

    #[test]
    fn errors_name_file_key_and_problem() {
        let cases = [
            (
                "intervl = \"60s\"",
                "t.toml: polling.intervl (line 3): unknown field `intervl`, expected one of `interval`",
            ),
            ("interval = \"60x\"", "t.toml: polling.interval (line 3): "),
            (
                "interval = \"0s\"",
                "t.toml: polling.interval: must be at least 1s",
            ),
            (
                "concurrency = 0",
                "t.toml: polling.concurrency: must be between 1 and 1000, found 0",
            ),
            (
                "concurrency = \"8\"",
                "t.toml: polling.concurrency (line 3): invalid type",
            ),
        ];
        for (polling, expected) in cases {
            let err = Config::from_toml(&minimal(polling), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(expected),
                "{polling}: got {err:?}, want prefix {expected:?}"
            );
        }
    }

    #[test]
    fn the_default_timeout_fits_a_short_interval() {
        let c = Config::from_toml(&minimal("interval = \"3s\""), "t.toml").unwrap();
        assert_eq!(c.polling.timeout, Duration::from_secs(3));
        let c =
            Config::from_toml(&minimal("intervals.async_invocations = \"2s\""), "t.toml").unwrap();
        assert_eq!(c.polling.timeout, Duration::from_secs(2));
        let c = Config::from_toml(&minimal("interval = \"30s\""), "t.toml").unwrap();
        assert_eq!(c.polling.timeout, DEFAULT_TIMEOUT);
        // Given explicitly, a timeout longer than the interval is still an error.
        let err = Config::from_toml(&minimal("interval = \"3s\"\ntimeout = \"5s\""), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("polling.timeout: must not exceed polling.interval (3s), or polls would overlap; found 5s"), "{err}");
    }

    #[test]
    fn the_default_port_is_no_registered_service() {
        let port = DEFAULT_LISTEN_ADDRESS.rsplit(':').next().unwrap();
        // Zabbix agent, trapper, Java gateway, web service; another
        // exporter's 10049; Amanda's 10080.
        for taken in ["10049", "10050", "10051", "10052", "10053", "10080"] {
            assert_ne!(port, taken);
        }
        if let Ok(services) = std::fs::read_to_string("/etc/services") {
            let entry = format!("{port}/");
            assert!(
                !services
                    .lines()
                    .filter_map(|l| l.split_whitespace().nth(1))
                    .any(|p| p.starts_with(&entry)),
                "port {port} is registered in /etc/services"
            );
        }
    }

    #[test]
    fn listen_addresses_take_the_port_only_form() {
        assert_eq!(
            parse_listen_address(":10054").unwrap().to_string(),
            "0.0.0.0:10054"
        );
        assert_eq!(
            parse_listen_address("[::1]:9").unwrap().to_string(),
            "[::1]:9"
        );
        assert!(parse_listen_address("10054").is_err());
        assert!(parse_listen_address(":").is_err());
        let c = Config::from_toml(
            &format!("[web]\nlisten_address = \":9999\"\n{}", minimal("")),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.web.listen_address.to_string(), "0.0.0.0:9999");
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let err = Config::from_toml("[web]\nlisten_address = \n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml: line 2: "), "{err}");
    }
}
