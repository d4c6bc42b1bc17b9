//! Validation: turns the file as written ([`RawConfig`]) into the typed
//! [`Config`], checking every value and naming the key of the first one
//! that is wrong. Also the small parsers other parts share: listen
//! addresses and whether a URL points at this machine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::schema::{
    RawAuth, RawCollectors, RawConfig, RawDiscovery, RawPolling, RawProject, RawSharding,
};
use super::{
    AuthConfig, AuthMethod, Checker, CollectorsConfig, Config, ConfigError, DEFAULT_ACCESS_KEY_ENV,
    DEFAULT_AUTH_BACKOFF, DEFAULT_MAX_REQUESTS_PER_SECOND, DEFAULT_PASSWORD_ENV,
    DEFAULT_SECRET_KEY_ENV, DEFAULT_SECURITY_TOKEN_ENV, DEFAULT_STALE_AFTER, DEFAULT_TIMEOUT,
    DEFAULT_TOKEN_ENV, DiscoveryConfig, FailuresConfig, Intervals, MAX_AUTH_BACKOFF, MAX_INTERVAL,
    MAX_LOOKBACK, PollingConfig, ProjectConfig, ShardingConfig, StateConfig, WebConfig,
};
use crate::buckets::DurationBuckets;
use crate::caps::MAX_LABEL_CHARS_LIMIT;
use crate::secret::SecretSource;
use crate::urn::FunctionUrn;

pub(super) fn validate(raw: RawConfig, c: &Checker<'_>) -> Result<Config, ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_LISTEN_ADDRESS;

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
}
