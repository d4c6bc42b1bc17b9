//! Every API response body type decoded from arbitrary bytes exactly as the
//! client decodes them (`decode` in src/api/mod.rs), the error-body reader,
//! and the API time parser.
//!
//! Invariants:
//! - no panic;
//! - a decode error names a path and is one line of bounded length (it is
//!   logged and shown on the landing page);
//! - `parse_error_body` returns a code and a message that are cleaned like
//!   `shorten` promises: at most 300 characters (plus an ellipsis), no
//!   control characters, no surrounding whitespace;
//! - `parse_api_time` is total and agrees with the query-time formatter:
//!   a time it returns (years 1..=9999) formats and re-parses to itself.

#![no_main]

use std::fmt::Debug;

use functiongraph_exporter::api::error::parse_error_body;
use functiongraph_exporter::api::model::{
    AsyncInvocationsBody, CodeBody, FunctionsBody, QuotasBody, SnapshotBody, StatisticsBody,
    VersionsBody,
};
use functiongraph_exporter::timefmt::{
    format_last_modified, format_query_time, parse_api_time, parse_query_time,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

/// `shorten`'s cap, in characters, plus its ellipsis.
const MAX_CHARS: usize = 300 + 1;

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const FIRST: i64 = -62_135_596_800;
const LAST: i64 = 253_402_300_799;

/// As `decode` in src/api/mod.rs.
fn decode<T: DeserializeOwned + Debug>(data: &[u8]) {
    let de = &mut serde_json::Deserializer::from_slice(data);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(body) => {
            let _ = format!("{body:?}");
        }
        Err(e) => {
            let _ = e.path().to_string();
            let message = e.to_string();
            assert!(!message.is_empty());
        }
    }
}

fn assert_clean(what: &str, s: &str) {
    assert!(s.chars().count() <= MAX_CHARS, "{what} too long: {s:?}");
    assert!(
        !s.chars().any(char::is_control),
        "{what} has control characters: {s:?}"
    );
    assert_eq!(s.trim(), s, "{what} not trimmed");
}

fn check_time(s: &str) {
    if let Some(t) = parse_api_time(s)
        && (FIRST..=LAST).contains(&t)
    {
        let q = format_query_time(t);
        assert_eq!(parse_api_time(&q), Some(t), "{s:?} -> {t} -> {q:?}");
        assert_eq!(parse_query_time(&q), Some(t), "{s:?} -> {t} -> {q:?}");
        let l = format_last_modified(t);
        assert_eq!(parse_api_time(&l), Some(t), "{s:?} -> {t} -> {l:?}");
    }
    if let Some(t) = parse_query_time(s) {
        assert_eq!(parse_api_time(s), Some(t), "{s:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    decode::<AsyncInvocationsBody>(data);
    decode::<VersionsBody>(data);
    decode::<CodeBody>(data);
    decode::<SnapshotBody>(data);
    decode::<FunctionsBody>(data);
    decode::<StatisticsBody>(data);
    decode::<QuotasBody>(data);

    let (code, message) = parse_error_body(data);
    assert_clean("message", &message);
    if let Some(code) = &code {
        assert_clean("code", code);
    }

    if let Ok(s) = std::str::from_utf8(data) {
        check_time(s);
    }
});
