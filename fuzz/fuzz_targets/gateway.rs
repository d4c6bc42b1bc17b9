//! The simulator's gateway-side AK/SK check,
//! `simulator::gateway::verify`, on a request built from the input.
//!
//! Input format (lines separated by `\n`): method, path, query,
//! `Authorization` value, then any number of `name: value` header lines
//! (bytes, not necessarily UTF-8, as a request on the wire; spaces around a
//! value are dropped, as hyper does). The seeds are the reference's signing
//! vectors, which verify.
//!
//! Invariants:
//! - no panic, whatever the header, path, query, clock or skew;
//! - an accepted request names the one access key that has a secret;
//! - every refusal formats as a gateway message.

#![no_main]

use functiongraph_exporter::simulator::gateway::{Received, verify};
use hyper::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const AK: &str = "AKIDEXAMPLE0000000000";
const SK: &str = "SKEXAMPLEsecretKey0123456789abcdefghijklm";
/// 20240102T030405Z, the seeds' `X-Sdk-Date`.
const NOW: i64 = 1_704_164_645;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|b| *b == b'\n');
    let method = String::from_utf8_lossy(lines.next().unwrap_or_default());
    let path = String::from_utf8_lossy(lines.next().unwrap_or_default());
    let query = String::from_utf8_lossy(lines.next().unwrap_or_default());
    let mut headers = HeaderMap::new();
    if let Some(Ok(value)) = lines.next().map(HeaderValue::from_bytes) {
        headers.insert(hyper::http::header::AUTHORIZATION, value);
    }
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        // As hyper's parser: optional whitespace around a value is not part of it.
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    let body: &[u8] = if method.eq_ignore_ascii_case("post") {
        b"{\"a\":1}"
    } else {
        b""
    };
    let req = Received {
        method: &method,
        path: &path,
        query: &query,
        headers: &headers,
        body,
    };
    let secret_of = |ak: &str| (ak == AK).then(|| SK.to_owned());
    for (now, skew) in [
        (NOW, 15 * 60),
        (i64::MAX, 15 * 60),
        (i64::MIN, i64::MAX),
        (NOW, -1),
    ] {
        match verify(&req, secret_of, now, skew) {
            Ok(ak) => assert_eq!(ak, AK),
            Err(e) => {
                let message = e.gateway_message();
                assert!(message.starts_with("Incorrect IAM authentication information: "));
                let _ = e.to_string();
            }
        }
    }
});
