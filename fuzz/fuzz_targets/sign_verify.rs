//! Differential: the client's signer (`api::sign`) against the simulator's
//! independent gateway check (`simulator::gateway::verify`).
//!
//! A request is built from structured input the way the client builds one:
//! path segments encoded with `urn::encode_component`, the query with
//! `api::query::Query`, extra headers (valid names and values only), a body,
//! an access key (letters and digits, as issued), any secret key, and a
//! signing time in years 1..=9999. It is signed with `api::sign::sign`,
//! the headers it would send are put in a `HeaderMap`, and the gateway must
//! accept it; it must refuse it when the secret differs.

#![no_main]

use functiongraph_exporter::api::query::Query;
use functiongraph_exporter::api::sign::{SigningInput, sdk_date, sign};
use functiongraph_exporter::simulator::gateway::{Received, VerifyError, verify};
use functiongraph_exporter::urn::encode_component;
use hyper::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const FIRST: i64 = -62_135_596_800;
const LAST: i64 = 253_402_300_799;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "get"];

#[derive(Debug, Arbitrary)]
struct Input {
    method: u8,
    host: String,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    access_key: String,
    secret_key: String,
    time: u64,
}

fuzz_target!(|input: Input| {
    let access_key: String = input
        .access_key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if access_key.is_empty() {
        return;
    }
    let Ok(host) = HeaderValue::from_str(&input.host) else {
        return;
    };
    let method = METHODS[usize::from(input.method) % METHODS.len()];
    let path: String = input
        .segments
        .iter()
        .map(|s| format!("/{}", encode_component(s)))
        .collect();
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        path
    };
    let query = input
        .query
        .iter()
        .fold(Query::new(), |q, (k, v)| q.with(k, v.as_str()))
        .canonical();
    let now = FIRST + (input.time % (LAST - FIRST) as u64) as i64;
    let date = sdk_date(now);

    // Headers the client would send besides Host, X-Sdk-Date and
    // Authorization, which it sets itself.
    // Values may be any UTF-8 `HeaderValue::from_str` takes (obs-text
    // included), as a security token read from a file could be.
    let mut extra: Vec<(HeaderName, HeaderValue, &str)> = Vec::new();
    for (name, value) in &input.headers {
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        if matches!(n.as_str(), "host" | "x-sdk-date" | "authorization") {
            continue;
        }
        extra.push((n, v, value));
    }
    let to_sign: Vec<(&str, &str)> = extra.iter().map(|(n, _, v)| (n.as_str(), *v)).collect();

    let signed = sign(
        &access_key,
        &input.secret_key,
        &SigningInput {
            method,
            host: &input.host,
            path: &path,
            canonical_query: &query,
            headers: &to_sign,
            body: &input.body,
            sdk_date: &date,
        },
    );

    let mut headers = HeaderMap::new();
    for (n, v, _) in extra {
        headers.append(n, v);
    }
    headers.insert(hyper::http::header::HOST, host);
    headers.insert(
        "x-sdk-date",
        HeaderValue::from_str(&date).expect("ASCII date"),
    );
    headers.insert(
        hyper::http::header::AUTHORIZATION,
        HeaderValue::from_str(&signed.authorization).expect("ASCII authorization"),
    );
    let req = Received {
        method,
        path: &path,
        query: &query,
        headers: &headers,
        body: &input.body,
    };

    let secret = input.secret_key.clone();
    match verify(
        &req,
        |ak| (ak == access_key).then(|| secret.clone()),
        now,
        0,
    ) {
        Ok(ak) => assert_eq!(ak, access_key),
        Err(VerifyError::SignatureMismatch { canonical_request }) => panic!(
            "signer and gateway disagree\nclient:\n{}\ngateway:\n{canonical_request}",
            signed.canonical_request
        ),
        Err(e) => panic!("gateway refused a signed request: {e}"),
    }

    let wrong = format!("{}x", input.secret_key);
    assert!(matches!(
        verify(&req, |_| Some(wrong.clone()), now, 0),
        Err(VerifyError::SignatureMismatch { .. })
    ));
});
