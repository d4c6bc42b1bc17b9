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

use crate::secret::SecretSource;
use crate::urn::FunctionUrn;

/// Where `--config` points when it is not given, if that file exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/functiongraph_exporter.toml";
/// The exporter's port, next free slot after 10049 in the Prometheus
/// default-port list (see the conventions reference, section 3.7).
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:10050";
/// The environment variable a token is read from when neither `token_env`
/// nor `token_file` is set.
pub const DEFAULT_TOKEN_ENV: &str = "FUNCTIONGRAPH_TOKEN";

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONCURRENCY: i64 = 8;
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);
const DEFAULT_MAX_RESPONSE_BYTES: i64 = 16 * 1024 * 1024;

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
    projects: Vec<RawProject>,
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
    /// Per HTTP request, first byte sent to last byte read.
    #[serde(with = "humantime_serde")]
    timeout: Duration,
    /// API requests in flight across all functions and projects.
    concurrency: i64,
    /// Window of async invocation records taken into account.
    #[serde(with = "humantime_serde")]
    async_lookback: Duration,
    /// Larger API responses are refused (and the collector fails).
    max_response_bytes: i64,
}

impl Default for RawPolling {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            async_lookback: DEFAULT_LOOKBACK,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
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
    auth: RawAuth,
}

/// `[projects.auth]`, tagged by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum RawAuth {
    Token(RawTokenAuth),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenAuth {
    token_env: Option<String>,
    token_file: Option<PathBuf>,
}

// === validated ===

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub web: WebConfig,
    pub polling: PollingConfig,
    pub projects: Vec<ProjectConfig>,
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
    pub max_response_bytes: usize,
}

/// One project: where its API is, how to authenticate, what to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectConfig {
    pub project_id: String,
    pub region: String,
    /// `scheme://host[:port][/prefix]`, no trailing slash.
    pub endpoint: String,
    pub functions: Vec<FunctionUrn>,
    pub auth: AuthConfig,
}

/// How a project authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// An IAM token sent as `X-Auth-Token`.
    Token(SecretSource),
}

impl AuthConfig {
    /// A short description for logs and `--check-config` (never the secret).
    pub fn describe(&self) -> String {
        match self {
            AuthConfig::Token(source) => format!("token from {source}"),
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
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES as usize,
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
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
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
        let functions: usize = self.projects.iter().map(|p| p.functions.len()).sum();
        let _ = writeln!(
            s,
            "projects: {}, functions: {functions}",
            self.projects.len()
        );
        for project in &self.projects {
            let _ = writeln!(
                s,
                "- project {} ({}) at {}, auth: {}",
                project.project_id,
                project.region,
                project.endpoint,
                project.auth.describe()
            );
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
    let listen_address = raw.web.listen_address.parse().map_err(|e| {
        c.err(
            "web.listen_address",
            format!(
                "invalid address {:?} (expected host:port, e.g. 0.0.0.0:10050): {e}",
                raw.web.listen_address
            ),
        )
    })?;
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
    Ok(Config {
        web: WebConfig { listen_address },
        polling,
        projects,
    })
}

fn validate_polling(p: &RawPolling, c: &Checker<'_>) -> Result<PollingConfig, ConfigError> {
    if p.interval < Duration::from_secs(1) {
        return Err(c.err("polling.interval", "must be at least 1s"));
    }
    if p.timeout.is_zero() {
        return Err(c.err("polling.timeout", "must be greater than zero"));
    }
    if p.timeout > p.interval {
        return Err(c.err(
            "polling.timeout",
            format!(
                "must not exceed polling.interval ({}), or polls would overlap",
                humantime::format_duration(p.interval)
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
    if p.max_response_bytes < 1024 {
        return Err(c.err(
            "polling.max_response_bytes",
            format!("must be at least 1024, found {}", p.max_response_bytes),
        ));
    }
    Ok(PollingConfig {
        interval: p.interval,
        timeout: p.timeout,
        concurrency: p.concurrency as usize,
        async_lookback: p.async_lookback,
        max_response_bytes: usize::try_from(p.max_response_bytes).unwrap_or(usize::MAX),
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
    if p.functions.is_empty() {
        return Err(c.err(key("functions"), "at least one function is required"));
    }
    let mut functions: Vec<FunctionUrn> = Vec::with_capacity(p.functions.len());
    for (j, f) in p.functions.iter().enumerate() {
        let urn = FunctionUrn::parse_in(f, &p.region, &p.project_id)
            .map_err(|e| c.err(key(&format!("functions[{j}]")), format!("{f:?}: {e}")))?;
        if let Some(k) = functions.iter().position(|u| *u == urn) {
            return Err(c.err(
                key(&format!("functions[{j}]")),
                format!("{f:?} is the same function as functions[{k}] ({urn})"),
            ));
        }
        functions.push(urn);
    }
    let auth = match p.auth {
        RawAuth::Token(t) => match (t.token_env, t.token_file) {
            (Some(_), Some(_)) => {
                return Err(c.err(key("auth"), "set token_env or token_file, not both"));
            }
            (Some(env), None) => {
                if !valid_env_name(&env) {
                    return Err(c.err(
                        key("auth.token_env"),
                        format!("{env:?} is not a valid environment variable name"),
                    ));
                }
                AuthConfig::Token(SecretSource::Env(env))
            }
            (None, Some(file)) => {
                if file.as_os_str().is_empty() {
                    return Err(c.err(key("auth.token_file"), "must not be empty"));
                }
                AuthConfig::Token(SecretSource::File(file))
            }
            (None, None) => AuthConfig::Token(SecretSource::Env(DEFAULT_TOKEN_ENV.to_owned())),
        },
    };
    Ok(ProjectConfig {
        project_id: p.project_id,
        region: p.region,
        endpoint,
        functions,
        auth,
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
            AuthConfig::Token(SecretSource::Env(DEFAULT_TOKEN_ENV.into()))
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
    fn syntax_errors_give_the_line() {
        let err = Config::from_toml("[web]\nlisten_address = \n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml: line 2: "), "{err}");
    }
}
