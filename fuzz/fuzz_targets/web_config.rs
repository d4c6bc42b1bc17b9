//! The `--web.config.file` parser, `web::config::WebConfig::parse`, on
//! arbitrary UTF-8 (exporter-toolkit's YAML format).
//!
//! Invariants:
//! - no panic;
//! - an error names the file;
//! - relative TLS file paths are resolved against the file's directory;
//! - neither the `Debug` form of an accepted configuration nor an error
//!   message shows a secret: a bcrypt hash from `basic_auth_users` or the
//!   inline `tls_server_config.key` (checked for values of 8 characters or
//!   more written exactly once in the input, so that a key name or another
//!   field cannot legitimately repeat them).

#![no_main]

use std::path::Path;

use functiongraph_exporter::web::config::WebConfig;
use libfuzzer_sys::fuzz_target;
use serde_norway::Value;

const FILE: &str = "/etc/fuzz/web.yml";

/// The secret strings of the document, as far as it is a mapping.
fn secrets(text: &str) -> Vec<String> {
    let Ok(Value::Mapping(doc)) = serde_norway::from_str::<Value>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(Value::Mapping(users)) = doc.get("basic_auth_users") {
        out.extend(users.values().filter_map(|v| v.as_str().map(str::to_owned)));
    }
    if let Some(Value::Mapping(tls)) = doc.get("tls_server_config")
        && let Some(key) = tls.get("key").and_then(Value::as_str)
    {
        out.push(key.to_owned());
    }
    out.retain(|s| s.chars().count() >= 8 && text.matches(s.as_str()).count() == 1);
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let shown = match WebConfig::parse(text, Path::new(FILE)) {
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with(FILE), "{message}");
            message
        }
        Ok(config) => {
            if let Some(tls) = &config.tls {
                for file in tls.files() {
                    assert!(file.starts_with("/"), "{}", file.display());
                }
                assert!(tls.min_version <= tls.max_version);
            }
            for (name, value) in &config.headers {
                assert!(!name.as_str().is_empty());
                let _ = value.to_str();
            }
            format!("{config:?}")
        }
    };
    for secret in secrets(text) {
        assert!(!shown.contains(&secret), "secret {secret:?} shown: {shown}");
    }
});
