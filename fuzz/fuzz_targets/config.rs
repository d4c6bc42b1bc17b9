//! `Config::from_toml` on arbitrary UTF-8, and `Config::summary()` of every
//! configuration that validates.
//!
//! Invariants:
//! - no panic (parsing, validation, error and summary formatting);
//! - parsing is deterministic: the same text gives an equal `Config`;
//! - the summary names every project and never carries a credential: the
//!   default credential variables hold a marker value, which must not appear
//!   in the summary, the `Debug` form or an error message;
//! - every configured function URN is in its project's region and project,
//!   and keeps the invariants of the `urn` target (`common::round_trips`):
//!   it re-parses from its `Display` form (as the API returns URNs) to the
//!   same value, and its path segment is pure unreserved-or-%XX text that
//!   decodes back to that form.

#![no_main]

use std::sync::Once;

mod common;

use common::round_trips;
use functiongraph_exporter::config::Config;
use libfuzzer_sys::fuzz_target;

/// What every credential variable holds during the run.
const MARKER: &str = "fuzz-credential-5a1e2b9c7d";

static ENV: Once = Once::new();

fn set_credentials() {
    ENV.call_once(|| {
        for name in [
            "FUNCTIONGRAPH_TOKEN",
            "FUNCTIONGRAPH_PASSWORD",
            "HUAWEICLOUD_SDK_AK",
            "HUAWEICLOUD_SDK_SK",
            "HUAWEICLOUD_SDK_SECURITY_TOKEN",
        ] {
            // SAFETY: set once, before any parsing, on the only thread that
            // touches the environment in this process.
            unsafe { std::env::set_var(name, MARKER) };
        }
    });
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    set_credentials();
    // The marker can only leak if it did not come from the input itself.
    let may_check_marker = !text.contains(MARKER);

    match Config::from_toml(text, "fuzz.toml") {
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("fuzz.toml"), "{message}");
            if may_check_marker {
                assert!(!message.contains(MARKER), "credential in error: {message}");
            }
        }
        Ok(config) => {
            let again = Config::from_toml(text, "fuzz.toml").expect("parsed once, parses again");
            assert_eq!(config, again);

            let summary = config.summary();
            let debug = format!("{config:?}");
            if may_check_marker {
                assert!(
                    !summary.contains(MARKER),
                    "credential in summary: {summary}"
                );
                assert!(!debug.contains(MARKER), "credential in Debug: {debug}");
            }
            for project in &config.projects {
                assert!(summary.contains(&project.project_id), "{summary}");
                let _ = project.auth.describe();
                for urn in &project.functions {
                    assert_eq!(urn.project_id(), project.project_id);
                    assert_eq!(urn.region(), project.region);
                    round_trips(urn);
                }
            }
        }
    }
});
