//! The web configuration file: exporter-toolkit's YAML format, parsed and
//! validated into a [`WebConfig`]. This reads the YAML only; certificates
//! and keys are read by [`super::tls`].
//!
//! Keys, as exporter-toolkit spells them:
//!
//! - `tls_server_config`: `cert_file`/`cert` and `key_file`/`key` (PEM;
//!   a file wins over inline text, as in exporter-toolkit),
//!   `client_auth_type` (`NoClientCert`, the default,
//!   `RequireAndVerifyClientCert` or `VerifyClientCertIfGiven`, with
//!   `client_ca_file` or `client_ca`), `min_version`/`max_version` (`TLS12`,
//!   `TLS13`). `cipher_suites`, `curve_preferences` and
//!   `prefer_server_cipher_suites` are accepted and ignored with a warning:
//!   rustls offers only modern suites and curves. `client_allowed_sans` is
//!   refused: ignoring it would let in every client the CA signed.
//!   `RequestClientCert` and `RequireAnyClientCert` are refused: they accept
//!   certificates without verifying them.
//! - `http_server_config`: `headers` (the five security headers
//!   exporter-toolkit allows) is applied to every response; `http2` is
//!   accepted and ignored (the exporter speaks HTTP/1.1).
//! - `basic_auth_users`: user name to bcrypt hash.
//! - `rate_limit`: accepted and ignored with a warning.
//!
//! Unknown keys are errors at every level. Relative paths are relative to
//! the web configuration file's directory, as in exporter-toolkit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hyper::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer};

use crate::secret::Secret;

/// Why a web configuration is not usable. Never contains a password, a
/// hash or a private key.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("{path}: reading the web configuration: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
}

impl WebConfigError {
    pub(crate) fn invalid(path: &Path, detail: impl Into<String>) -> Self {
        WebConfigError::Invalid {
            path: path.display().to_string(),
            detail: detail.into(),
        }
    }
}

/// A validated web configuration.
#[derive(Debug)]
pub struct WebConfig {
    /// `None`: plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Basic authentication users and their bcrypt hashes; empty: no
    /// authentication.
    pub users: BTreeMap<String, Secret>,
    /// Extra response headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Keys accepted but ignored, to be logged.
    pub warnings: Vec<String>,
}

/// Where PEM text comes from.
#[derive(Debug, Clone)]
pub enum Pem {
    File(PathBuf),
    /// Inline in the web configuration (redacted in `Debug`: it may be a
    /// private key).
    Inline(Secret),
}

/// Whether and how clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequireAndVerifyClientCert,
    VerifyClientCertIfGiven,
}

/// A TLS protocol version rustls speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// `tls_server_config`, validated.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: Pem,
    pub key: Pem,
    pub client_auth: ClientAuth,
    /// Required unless `client_auth` is `NoClientCert`, where it is absent.
    pub client_ca: Option<Pem>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
}

impl TlsSettings {
    /// The files this configuration reads, to notice when they change.
    pub fn files(&self) -> Vec<PathBuf> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|p| match p {
                Pem::File(f) => Some(f.clone()),
                Pem::Inline(_) => None,
            })
            .collect()
    }
}

impl WebConfig {
    /// Parses and validates `text`, the content of the file at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, WebConfigError> {
        let de = serde_norway::Deserializer::from_str(text);
        let raw: Option<RawConfig> = match serde_path_to_error::deserialize(de) {
            Ok(raw) => raw,
            Err(e) => {
                let at = e.path().to_string();
                let inner = e.into_inner();
                let detail = if at.is_empty() || at == "." {
                    inner.to_string()
                } else {
                    format!("{at}: {inner}")
                };
                return Err(WebConfigError::invalid(path, detail));
            }
        };
        let raw = raw.unwrap_or_default();
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut warnings = Vec::new();
        let tls = match raw.tls_server_config {
            Some(t) => t
                .validate(dir, &mut warnings)
                .map_err(|d| WebConfigError::invalid(path, d))?,
            None => None,
        };
        let mut users = BTreeMap::new();
        for (user, hash) in raw.basic_auth_users.unwrap_or_default().0 {
            if bcrypt::HashParts::from_str(hash.0.expose()).is_err() {
                return Err(WebConfigError::invalid(
                    path,
                    format!(
                        "basic_auth_users.{user}: not a bcrypt hash (expected 60 characters starting $2y$, $2b$ or $2a$, as `htpasswd -nBC 10 {user}` prints after the colon)"
                    ),
                ));
            }
            users.insert(user, hash.0);
        }
        let mut headers = Vec::new();
        if let Some(http) = raw.http_server_config {
            for (name, value) in http.headers.unwrap_or_default().0 {
                headers.push(
                    validate_header(&name, &value).map_err(|d| WebConfigError::invalid(path, d))?,
                );
            }
            // http2: the exporter speaks HTTP/1.1 only; nothing to warn about.
            let _ = http.http2;
        }
        if raw.rate_limit.is_some() {
            warnings
                .push("rate_limit is not implemented by this exporter and is ignored".to_owned());
        }
        Ok(Self {
            tls,
            users,
            headers,
            warnings,
        })
    }
}

/// The headers exporter-toolkit lets `http_server_config.headers` set, and
/// their allowed values (empty: any).
const ALLOWED_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

fn validate_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let Some((canonical, allowed)) = ALLOWED_HEADERS
        .iter()
        .find(|(h, _)| h.eq_ignore_ascii_case(name))
    else {
        let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(h, _)| *h).collect();
        return Err(format!(
            "http_server_config.headers: header {name:?} can not be configured (allowed: {})",
            names.join(", ")
        ));
    };
    if !allowed.is_empty() && !allowed.contains(&value) {
        return Err(format!(
            "http_server_config.headers.{canonical}: invalid value {value:?}, expected one of {allowed:?}"
        ));
    }
    let header_value = HeaderValue::from_str(value)
        .map_err(|_| format!("http_server_config.headers.{canonical}: not a valid header value"))?;
    Ok((HeaderName::from_static(lowercase(canonical)), header_value))
}

fn lowercase(canonical: &str) -> &'static str {
    match canonical {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

/// A map that refuses duplicate keys, as exporter-toolkit's strict YAML
/// decoding does (a second entry for a user would silently win otherwise).
struct UniqueMap<V>(BTreeMap<String, V>);

impl<V> Default for UniqueMap<V> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!("duplicate key {k:?}")));
                    }
                    out.insert(k, v);
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// A string whose value must not print (a hash or a private key).
struct RawSecret(Secret);

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| RawSecret(Secret::new(s)))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<UniqueMap<RawSecret>>,
    #[serde(default)]
    rate_limit: Option<RawRateLimit>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<UniqueMap<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    #[serde(default)]
    #[allow(dead_code)]
    interval: Option<serde_norway::Value>,
    #[serde(default)]
    #[allow(dead_code)]
    burst: Option<serde_norway::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    key: Option<RawSecret>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    client_ca: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
}

/// `Some` non-empty string.
fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl RawTls {
    /// `Ok(None)` when no TLS key is set (plain HTTP, as in
    /// exporter-toolkit).
    fn validate(
        self,
        dir: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<Option<TlsSettings>, String> {
        const P: &str = "tls_server_config";
        let key_inline = self.key.as_ref().filter(|k| !k.0.expose().is_empty());
        for (key, set) in [
            (
                "cipher_suites",
                self.cipher_suites.as_ref().is_some_and(|v| !v.is_empty()),
            ),
            (
                "curve_preferences",
                self.curve_preferences
                    .as_ref()
                    .is_some_and(|v| !v.is_empty()),
            ),
            (
                "prefer_server_cipher_suites",
                self.prefer_server_cipher_suites.is_some(),
            ),
        ] {
            if set {
                warnings.push(format!(
                    "{P}.{key} is ignored: rustls offers only its own modern cipher suites and curves"
                ));
            }
        }
        let enabled = given(&self.cert_file).is_some()
            || given(&self.cert).is_some()
            || given(&self.key_file).is_some()
            || key_inline.is_some()
            || given(&self.client_ca_file).is_some()
            || given(&self.client_ca).is_some()
            || given(&self.client_auth_type).is_some();
        if !enabled {
            return Ok(None);
        }
        let file = |f: &str| Pem::File(dir.join(f));
        let cert = match (given(&self.cert_file), given(&self.cert)) {
            (Some(f), _) => file(f),
            (None, Some(text)) => Pem::Inline(Secret::new(text)),
            (None, None) => return Err(format!("{P}: missing one of cert or cert_file")),
        };
        let key = match (given(&self.key_file), key_inline) {
            (Some(f), _) => file(f),
            (None, Some(k)) => Pem::Inline(k.0.clone()),
            (None, None) => return Err(format!("{P}: missing one of key or key_file")),
        };
        let client_ca = match (given(&self.client_ca_file), given(&self.client_ca)) {
            (Some(f), _) => Some(file(f)),
            (None, Some(text)) => Some(Pem::Inline(Secret::new(text))),
            (None, None) => None,
        };
        let client_auth = match given(&self.client_auth_type).unwrap_or("NoClientCert") {
            "NoClientCert" => ClientAuth::NoClientCert,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            other @ ("RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert") => {
                return Err(format!(
                    "{P}.client_auth_type: {other} is not supported: it accepts client certificates without verifying them; use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file"
                ));
            }
            other => {
                return Err(format!(
                    "{P}.client_auth_type: unknown value {other:?}, expected NoClientCert, RequireAndVerifyClientCert or VerifyClientCertIfGiven"
                ));
            }
        };
        match (client_auth, client_ca.is_some()) {
            (ClientAuth::NoClientCert, true) => {
                return Err(format!(
                    "{P}: client_ca_file is set but client_auth_type is NoClientCert; set client_auth_type: RequireAndVerifyClientCert"
                ));
            }
            (
                ClientAuth::RequireAndVerifyClientCert | ClientAuth::VerifyClientCertIfGiven,
                false,
            ) => {
                return Err(format!(
                    "{P}: client_auth_type verifies client certificates and needs client_ca_file (or client_ca)"
                ));
            }
            _ => {}
        }
        if self
            .client_allowed_sans
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(format!(
                "{P}.client_allowed_sans is not supported by this exporter (it would be ignored, letting in every client certificate the CA signed)"
            ));
        }
        let min_version = version(
            P,
            "min_version",
            self.min_version.as_deref(),
            TlsVersion::Tls12,
        )?;
        let max_version = version(
            P,
            "max_version",
            self.max_version.as_deref(),
            TlsVersion::Tls13,
        )?;
        if min_version > max_version {
            return Err(format!("{P}: min_version is above max_version"));
        }
        Ok(Some(TlsSettings {
            cert,
            key,
            client_auth,
            client_ca,
            min_version,
            max_version,
        }))
    }
}

fn version(
    p: &str,
    key: &str,
    value: Option<&str>,
    default: TlsVersion,
) -> Result<TlsVersion, String> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some("TLS12") => Ok(TlsVersion::Tls12),
        Some("TLS13") => Ok(TlsVersion::Tls13),
        Some(v @ ("TLS10" | "TLS11")) => Err(format!(
            "{p}.{key}: {v} is not supported (rustls speaks TLS12 and TLS13)"
        )),
        Some(v) => Err(format!(
            "{p}.{key}: unknown TLS version {v:?}, expected TLS12 or TLS13"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash() -> String {
        bcrypt::hash("pw", 4).unwrap()
    }

    fn parse(text: &str) -> Result<WebConfig, String> {
        WebConfig::parse(text, Path::new("/etc/fge/web.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_files_mean_plain_http_without_auth() {
        for text in [
            "",
            "# nothing\n",
            "{}",
            "tls_server_config:\n",
            "basic_auth_users: {}\n",
        ] {
            let c = parse(text).unwrap();
            assert!(c.tls.is_none() && c.users.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn full_example() {
        let c = parse(&format!(
            r#"
tls_server_config:
  cert_file: tls/server.crt
  key_file: /abs/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  min_version: TLS13
  cipher_suites: [TLS_AES_128_GCM_SHA256]
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  alice: "{}"
"#,
            hash()
        ))
        .unwrap();
        let tls = c.tls.unwrap();
        assert!(matches!(&tls.cert, Pem::File(p) if p == Path::new("/etc/fge/tls/server.crt")));
        assert!(matches!(&tls.key, Pem::File(p) if p == Path::new("/abs/server.key")));
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(tls.max_version, TlsVersion::Tls13);
        assert_eq!(tls.files().len(), 3);
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        // The hash never prints.
        let debug = format!("{:?}", c.users);
        assert!(!debug.contains("$2y$"), "{debug}");
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let cases = [
            ("foo: 1\n", "unknown field `foo`"),
            (
                "tls_server_config:\n  cert_fil: x\n",
                "tls_server_config: unknown field `cert_fil`",
            ),
            (
                "tls_server_config:\n  cert_file: a\n",
                "missing one of key or key_file",
            ),
            (
                "tls_server_config:\n  key_file: a\n",
                "missing one of cert or cert_file",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n  client_ca_file: c\n",
                "RequireAnyClientCert is not supported",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n",
                "unknown value \"Sometimes\"",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
                "needs client_ca_file",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
                "client_auth_type is NoClientCert",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: c\n  client_allowed_sans: [x]\n",
                "client_allowed_sans is not supported",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n",
                "min_version: TLS11 is not supported",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS14\n",
                "unknown TLS version",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n",
                "min_version is above max_version",
            ),
            (
                "basic_auth_users:\n  bob: plaintext-password\n",
                "basic_auth_users.bob: not a bcrypt hash",
            ),
            ("basic_auth_users: [a]\n", "basic_auth_users: invalid type"),
            (
                "http_server_config:\n  headers:\n    X-Powered-By: me\n",
                "can not be configured",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                "invalid value \"allow\"",
            ),
            ("tls_server_config: [\n", "/etc/fge/web.yml: "),
        ];
        for (text, expected) in cases {
            let e = parse(text).expect_err(text);
            assert!(e.starts_with("/etc/fge/web.yml: "), "{e}");
            assert!(e.contains(expected), "{text:?}: {e}");
        }
        // A wrong hash is named by user, and neither it nor a password
        // appears in the message.
        let e = parse("basic_auth_users:\n  bob: hunter2\n").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn duplicate_users_are_refused() {
        let e = parse(&format!(
            "basic_auth_users:\n  a: \"{0}\"\n  a: \"{0}\"\n",
            hash()
        ))
        .unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
    }

    #[test]
    fn inline_pem_and_rate_limit() {
        let c = parse(
            "tls_server_config:\n  cert: |\n    -----BEGIN CERTIFICATE-----\n  key: secret-key-text\nrate_limit:\n  interval: 1s\n  burst: 5\n",
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert!(matches!(tls.cert, Pem::Inline(_)));
        assert!(tls.files().is_empty());
        assert!(!format!("{:?}", tls.key).contains("secret-key-text"));
        assert_eq!(c.warnings.len(), 1);
    }
}
