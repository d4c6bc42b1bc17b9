//! Configuration: the TOML file checked and turned into what the rest of
//! the program uses ([`Config`]). This file owns the typed configuration,
//! its defaults and [`ConfigError`]; the file as written lives in
//! `schema`, the checks that turn it into a [`Config`] in `validate`, and
//! the `--check-config` summary in `summary`.
//!
//! Unknown keys are errors, so a typo never passes silently. Every error
//! names the file, the key path and what is wrong
//! (`config.toml: polling.interval: must be at least 1s`). Parsing is pure
//! ([`Config::from_toml`]); [`Config::load`] only adds reading the file.
//! Secrets are not read here: the config says where they are, and the app
//! reads them when it builds clients.

mod schema;
mod summary;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::buckets::DurationBuckets;
use crate::caps::{DEFAULT_MAX_LABEL_CHARS, DEFAULT_MAX_QUOTA_TYPES, DEFAULT_MAX_VERSIONS};
use crate::secret::SecretSource;
use crate::urn::FunctionUrn;

pub use validate::{is_loopback, parse_listen_address};

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
/// Longest back-off after authentication failures: the largest
/// `failure_backoff` allowed, and where the doubling stops.
pub const MAX_AUTH_BACKOFF: Duration = Duration::from_secs(15 * 60);

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
            AuthMethod::AkSk { .. } => {
                let from: Vec<String> = self
                    .sources()
                    .into_iter()
                    .map(|(key, source)| format!("{key} from {source}"))
                    .collect();
                format!("aksk ({})", from.join(", "))
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

// === loading ===

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
        let raw = schema::parse_raw(text, origin)?;
        validate::validate(raw, &Checker { origin })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
