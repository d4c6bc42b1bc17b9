//! The API gateway's side of AK/SK authentication: checks an
//! `SDK-HMAC-SHA256` `Authorization` header against the request as received.
//!
//! This is a second, independent implementation of the algorithm in the
//! reference (section 6); it shares no code with the client's signer, so a
//! mistake in one cannot hide the same mistake in the other. Like the real
//! gateway it rebuilds the canonical request from what arrived: the path
//! decoded once and re-encoded, the query parsed, decoded, sorted and
//! re-encoded, and the headers named in `SignedHeaders`. Failures carry the
//! gateway's `APIGW.0301` texts (reference, section 7.3).

use hmac::{Hmac, Mac};
use hyper::http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// `X-Sdk-Date`: `YYYYMMDDTHHMMSSZ`, UTC.
const SDK_DATE: &[BorrowedFormatItem<'_>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// RFC 3986 unreserved characters, kept literal in canonical components.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A request as the gateway received it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The raw request path, percent-encoded or not.
    pub path: &'a str,
    /// The raw query, without `?`; may be empty.
    pub query: &'a str,
    /// All request headers.
    pub headers: &'a HeaderMap,
    /// The body bytes.
    pub body: &'a [u8],
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("authorization header missing")]
    MissingAuthorization,
    #[error("authorization header malformed: {0}")]
    Malformed(String),
    #[error("authorization algorithm {0:?} not supported")]
    UnsupportedAlgorithm(String),
    #[error("access key {0:?} unknown")]
    UnknownAccessKey(String),
    #[error("signed headers do not include x-sdk-date")]
    DateNotSigned,
    #[error("signed header {0:?} missing from the request")]
    MissingSignedHeader(String),
    #[error("x-sdk-date header missing")]
    MissingDate,
    #[error("x-sdk-date {0:?} is not YYYYMMDDTHHMMSSZ")]
    BadDate(String),
    #[error("signature expired: signature time {signature_time}, server time {server_time}")]
    Expired {
        signature_time: String,
        server_time: String,
    },
    #[error("signature mismatch")]
    SignatureMismatch { canonical_request: String },
}

impl VerifyError {
    /// The gateway's `error_msg` for the 401 (`APIGW.0301`) body. The texts
    /// for a missing header, an unknown key, an expired signature and a
    /// mismatch (with the canonical request's lines joined by `|`) are the
    /// ones the reference quotes; the others follow their style.
    pub fn gateway_message(&self) -> String {
        let reason = match self {
            VerifyError::MissingAuthorization => "x-auth-token not found".to_owned(),
            VerifyError::Malformed(detail) => {
                format!("verify aksk signature fail, invalid authorization header: {detail}")
            }
            VerifyError::UnsupportedAlgorithm(algorithm) => {
                format!("verify aksk signature fail, unsupported algorithm: {algorithm}")
            }
            VerifyError::UnknownAccessKey(ak) => format!("ak {ak} not exist"),
            VerifyError::DateNotSigned => {
                "verify aksk signature fail, x-sdk-date is not a signed header".to_owned()
            }
            VerifyError::MissingSignedHeader(name) => {
                format!("verify aksk signature fail, signed header {name} not found")
            }
            VerifyError::MissingDate => {
                "verify aksk signature fail, x-sdk-date not found".to_owned()
            }
            VerifyError::BadDate(value) => {
                format!("verify aksk signature fail, invalid x-sdk-date: {value}")
            }
            VerifyError::Expired {
                signature_time,
                server_time,
            } => format!(
                "calc aksk signature fail:signature expired, \
                 signature time:{signature_time}, server time:{server_time}"
            ),
            VerifyError::SignatureMismatch { canonical_request } => format!(
                "verify aksk signature fail, canonicalRequest:{}",
                canonical_request.replace('\n', "|")
            ),
        };
        format!("Incorrect IAM authentication information: {reason}")
    }
}

/// Verifies the `Authorization` header of `req`: parses
/// `SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...`, requires
/// `x-sdk-date` among the signed headers, checks that `X-Sdk-Date` is
/// within `max_skew_seconds` of `now_unix`, looks up the access key's secret
/// with `secret_of`, recomputes the signature over the received request and
/// the headers named in `SignedHeaders` (looked up in any case, written
/// as listed), and compares it in constant time.
/// Returns the access key.
pub fn verify(
    req: &Received<'_>,
    secret_of: impl Fn(&str) -> Option<String>,
    now_unix: i64,
    max_skew_seconds: i64,
) -> Result<String, VerifyError> {
    let authorization = req
        .headers
        .get(hyper::http::header::AUTHORIZATION)
        .ok_or(VerifyError::MissingAuthorization)?
        .to_str()
        .map_err(|_| malformed("not visible ASCII"))?;
    let auth = parse_authorization(authorization)?;
    let signed: Vec<&str> = auth.signed_headers.split(';').collect();
    if signed.iter().any(|name| name.is_empty()) {
        return Err(malformed("empty name in SignedHeaders"));
    }
    if !signed
        .iter()
        .any(|name| name.eq_ignore_ascii_case("x-sdk-date"))
    {
        return Err(VerifyError::DateNotSigned);
    }

    let date = req
        .headers
        .get("x-sdk-date")
        .ok_or(VerifyError::MissingDate)?;
    let date = String::from_utf8_lossy(date.as_bytes()).into_owned();
    let signed_at = PrimitiveDateTime::parse(&date, SDK_DATE)
        .map_err(|_| VerifyError::BadDate(date.clone()))?
        .assume_utc()
        .unix_timestamp();
    if now_unix.abs_diff(signed_at) > u64::try_from(max_skew_seconds).unwrap_or(0) {
        return Err(VerifyError::Expired {
            signature_time: date,
            server_time: format_sdk_date(now_unix),
        });
    }

    let secret = secret_of(auth.access_key)
        .ok_or_else(|| VerifyError::UnknownAccessKey(auth.access_key.to_owned()))?;
    let provided = hex::decode(auth.signature).map_err(|_| malformed("Signature is not hex"))?;

    let mut canonical_headers = String::new();
    for name in &signed {
        let mut values: Vec<String> = req
            .headers
            .get_all(*name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .collect();
        if values.is_empty() {
            return Err(VerifyError::MissingSignedHeader((*name).to_owned()));
        }
        values.sort();
        for value in values {
            canonical_headers.push_str(&format!("{name}:{value}\n"));
        }
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(req.query),
        auth.signed_headers,
        hex::encode(Sha256::digest(req.body)),
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    // `new_from_slice` accepts keys of any length for HMAC; an error could
    // only count as a mismatch.
    let matches = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).is_ok_and(|mut mac| {
        mac.update(string_to_sign.as_bytes());
        mac.verify_slice(&provided).is_ok()
    });
    if matches {
        Ok(auth.access_key.to_owned())
    } else {
        Err(VerifyError::SignatureMismatch { canonical_request })
    }
}

/// The three elements of an `Authorization` header.
struct Authorization<'a> {
    access_key: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn malformed(detail: impl Into<String>) -> VerifyError {
    VerifyError::Malformed(detail.into())
}

/// Parses `SDK-HMAC-SHA256 Access=<ak>, SignedHeaders=<h;h>, Signature=<hex>`.
fn parse_authorization<'a>(value: &'a str) -> Result<Authorization<'a>, VerifyError> {
    let (algorithm, elements) = value.trim().split_once(' ').ok_or_else(|| {
        malformed("expected \"<algorithm> Access=..., SignedHeaders=..., Signature=...\"")
    })?;
    if algorithm != ALGORITHM {
        return Err(VerifyError::UnsupportedAlgorithm(algorithm.to_owned()));
    }
    let (mut access_key, mut signed_headers, mut signature) = (None, None, None);
    for element in elements.split(',') {
        let (key, value) = element
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed(format!("element {:?} is not key=value", element.trim())))?;
        let slot = match key {
            "Access" => &mut access_key,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(malformed(format!("unknown element {key:?}"))),
        };
        if slot.replace(value).is_some() {
            return Err(malformed(format!("{key} given twice")));
        }
    }
    let required = |value: Option<&'a str>, key: &str| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| malformed(format!("{key} missing or empty")))
    };
    Ok(Authorization {
        access_key: required(access_key, "Access")?,
        signed_headers: required(signed_headers, "SignedHeaders")?,
        signature: required(signature, "Signature")?,
    })
}

/// The path decoded once, each segment re-encoded, with a trailing `/`.
fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut uri = String::with_capacity(decoded.len() + 1);
    for (i, segment) in decoded.split('/').enumerate() {
        if i > 0 {
            uri.push('/');
        }
        uri.extend(utf8_percent_encode(segment, UNRESERVED));
    }
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// The query's pairs decoded, sorted by key then value, re-encoded, joined
/// with `&`. A `+` stays a `+` (it is not form decoding).
fn canonical_query(raw: &str) -> String {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect();
    pairs.sort();
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(key, value)| {
            format!(
                "{}={}",
                utf8_percent_encode(key, UNRESERVED),
                utf8_percent_encode(value, UNRESERVED)
            )
        })
        .collect();
    encoded.join("&")
}

/// Unix seconds as `YYYYMMDDTHHMMSSZ` (UTC), or the bare number when out of
/// range.
fn format_sdk_date(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(SDK_DATE).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use hyper::http::{HeaderName, HeaderValue};

    use super::*;
    use crate::signing_vectors::{
        AK, DATE, HOST, NOW, PROJECT_ID, SK, Vector, canonical_uris, vector, vectors,
    };

    const MAX_SKEW: i64 = 15 * 60;
    const PREFIX: &str = "Incorrect IAM authentication information: ";

    fn known(ak: &str) -> Option<String> {
        (ak == AK).then(|| SK.to_owned())
    }

    /// Verifies a request built from raw parts; header values may be any bytes.
    fn check(
        method: &str,
        target: &str,
        body: &str,
        headers: &[(&str, &[u8])],
        secret_of: impl Fn(&str) -> Option<String>,
        now: i64,
    ) -> Result<String, VerifyError> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let req = Received {
            method,
            path,
            query,
            headers: &map,
            body: body.as_bytes(),
        };
        verify(&req, secret_of, now, MAX_SKEW)
    }

    /// The vector's headers, with `edit` applied (return `None` to drop one).
    fn headers_of<'a>(
        v: &'a Vector,
        edit: impl Fn(&str, &'a str) -> Option<&'a str>,
    ) -> Vec<(&'a str, &'a [u8])> {
        [
            ("Host", HOST),
            ("Content-Type", "application/json"),
            ("X-Project-Id", PROJECT_ID),
            ("X-Sdk-Date", DATE),
            ("Authorization", &v.authorization),
        ]
        .into_iter()
        .filter_map(|(name, value)| edit(name, value).map(|value| (name, value.as_bytes())))
        .collect()
    }

    /// Verifies vector `v` sent to `target`, with edited headers, at `now`.
    fn check_vector<'a>(
        v: &'a Vector,
        target: &str,
        edit: impl Fn(&str, &'a str) -> Option<&'a str>,
        now: i64,
    ) -> Result<String, VerifyError> {
        check(&v.method, target, &v.body, &headers_of(v, edit), known, now)
    }

    fn unchanged<'a>(_: &str, value: &'a str) -> Option<&'a str> {
        Some(value)
    }

    #[test]
    fn every_reference_vector_verifies() {
        for v in vectors() {
            assert_eq!(
                check_vector(v, &v.target, unchanged, NOW),
                Ok(AK.to_owned()),
                "vector {}",
                v.name
            );
        }
    }

    #[test]
    fn go_sdk_vectors_verify() {
        let go_now = 1_136_214_245; // 20060102T150405Z
        let secret = |ak: &str| (ak == "AccessKey").then(|| "SecretKey".to_owned());
        let get = b"SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
            Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624";
        let post = b"SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
            Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59";
        let date: &[u8] = b"20060102T150405Z";
        let get_headers = [
            ("X-Sdk-Date", date),
            ("Authorization", get),
            ("TEST_UNDERSCORE", b"x"),
        ];
        let post_headers = [("X-Sdk-Date", date), ("Authorization", post)];
        let body = "{\"Name\":\"test\",\"Id\":1}\n";
        assert_eq!(
            check("GET", "/path?limit=1", "", &get_headers, secret, go_now),
            Ok("AccessKey".to_owned())
        );
        assert_eq!(
            check(
                "POST",
                "/path?key=value",
                body,
                &post_headers,
                secret,
                go_now
            ),
            Ok("AccessKey".to_owned())
        );
        let without_newline = check(
            "POST",
            "/path?key=value",
            body.trim_end(),
            &post_headers,
            secret,
            go_now,
        );
        assert!(matches!(
            without_newline,
            Err(VerifyError::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn wrong_secret_is_a_mismatch_with_the_canonical_request() {
        let v = vector("C");
        let headers = headers_of(v, unchanged);
        let err = check(
            &v.method,
            &v.target,
            &v.body,
            &headers,
            |_| Some("wrong".to_owned()),
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            err,
            VerifyError::SignatureMismatch {
                canonical_request: v.canonical_request.to_owned()
            }
        );
        assert_eq!(
            err.gateway_message(),
            format!(
                "{PREFIX}verify aksk signature fail, canonicalRequest:{}",
                v.canonical_request.replace('\n', "|")
            )
        );
        assert!(
            err.gateway_message()
                .contains("x-sdk-date:20240102T030405Z||content-type;host")
        );
    }

    #[test]
    fn query_is_decoded_and_sorted_before_signing() {
        let v = vector("C");
        let (path, query) = v.target.split_once('?').unwrap();
        let raw_colons = format!("{path}?{}", query.replace("%3A", ":"));
        assert!(raw_colons.contains("query_begin_time=2024-01-02T02:00:00&"));
        assert_eq!(
            check_vector(v, &raw_colons, unchanged, NOW),
            Ok(AK.to_owned())
        );
        let lower_hex = format!("{path}?{}", query.replace("%3A", "%3a"));
        assert_eq!(
            check_vector(v, &lower_hex, unchanged, NOW),
            Ok(AK.to_owned())
        );
        let mut pairs: Vec<&str> = query.split('&').collect();
        pairs.reverse();
        let reordered = format!("{path}?{}", pairs.join("&"));
        assert_eq!(
            check_vector(v, &reordered, unchanged, NOW),
            Ok(AK.to_owned())
        );
        let changed = format!("{path}?{}", query.replace("FAIL", "SUCCESS"));
        assert!(matches!(
            check_vector(v, &changed, unchanged, NOW),
            Err(VerifyError::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn clock_skew_beyond_fifteen_minutes_expires() {
        let v = vector("A");
        for now in [NOW + 14 * 60, NOW - 14 * 60, NOW + MAX_SKEW, NOW - MAX_SKEW] {
            assert_eq!(
                check_vector(v, &v.target, unchanged, now),
                Ok(AK.to_owned())
            );
        }
        let err = check_vector(v, &v.target, unchanged, NOW + 16 * 60).unwrap_err();
        assert_eq!(
            err,
            VerifyError::Expired {
                signature_time: DATE.to_owned(),
                server_time: "20240102T032005Z".to_owned()
            }
        );
        assert_eq!(
            err.gateway_message(),
            format!(
                "{PREFIX}calc aksk signature fail:signature expired, \
                 signature time:20240102T030405Z, server time:20240102T032005Z"
            )
        );
        assert!(matches!(
            check_vector(v, &v.target, unchanged, NOW - 16 * 60),
            Err(VerifyError::Expired { .. })
        ));
        assert!(matches!(
            check_vector(v, &v.target, unchanged, i64::MIN),
            Err(VerifyError::Expired { .. })
        ));
    }

    #[test]
    fn unknown_access_key() {
        let v = vector("A");
        let err = check(
            &v.method,
            &v.target,
            &v.body,
            &headers_of(v, unchanged),
            |_| None,
            NOW,
        )
        .unwrap_err();
        assert_eq!(err, VerifyError::UnknownAccessKey(AK.to_owned()));
        assert_eq!(
            err.gateway_message(),
            format!("{PREFIX}ak AKIDEXAMPLE0000000000 not exist")
        );
    }

    #[test]
    fn missing_authorization() {
        let v = vector("A");
        let err = check_vector(
            v,
            &v.target,
            |n, val| (n != "Authorization").then_some(val),
            NOW,
        )
        .unwrap_err();
        assert_eq!(err, VerifyError::MissingAuthorization);
        assert_eq!(
            err.gateway_message(),
            format!("{PREFIX}x-auth-token not found")
        );
    }

    #[test]
    fn date_must_be_signed_present_and_well_formed() {
        let v = vector("A");
        let unsigned_date = v.authorization.replace(";x-sdk-date,", ",");
        let unsigned_date: &str = &unsigned_date;
        let edit = |n: &str, val| {
            Some(if n == "Authorization" {
                unsigned_date
            } else {
                val
            })
        };
        assert_eq!(
            check_vector(v, &v.target, edit, NOW),
            Err(VerifyError::DateNotSigned)
        );

        let no_date = |n: &str, val| (n != "X-Sdk-Date").then_some(val);
        assert_eq!(
            check_vector(v, &v.target, no_date, NOW),
            Err(VerifyError::MissingDate)
        );

        for bad in [
            "2024-01-02T03:04:05Z",
            "20240102T030405",
            "20241302T030405Z",
            "",
        ] {
            let edit = |n: &str, val| Some(if n == "X-Sdk-Date" { bad } else { val });
            assert_eq!(
                check_vector(v, &v.target, edit, NOW),
                Err(VerifyError::BadDate(bad.to_owned()))
            );
        }
    }

    #[test]
    fn signed_header_absent_from_the_request() {
        let v = vector("A");
        let edit = |n: &str, val| (n != "X-Project-Id").then_some(val);
        assert_eq!(
            check_vector(v, &v.target, edit, NOW),
            Err(VerifyError::MissingSignedHeader("x-project-id".to_owned()))
        );
    }

    #[test]
    fn tampering_is_a_mismatch() {
        let f = vector("F");
        let tampered = f.target.replace("!prod", "!prud");
        assert_ne!(tampered, f.target);
        assert!(matches!(
            check_vector(f, &tampered, unchanged, NOW),
            Err(VerifyError::SignatureMismatch { .. })
        ));

        let d = vector("D");
        let headers = headers_of(d, unchanged);
        assert!(matches!(
            check(&d.method, &d.target, "{\"a\":2}", &headers, known, NOW),
            Err(VerifyError::SignatureMismatch { .. })
        ));
        assert!(matches!(
            check("PUT", &d.target, &d.body, &headers, known, NOW),
            Err(VerifyError::SignatureMismatch { .. })
        ));

        let a = vector("A");
        let other_project = |n: &str, val| Some(if n == "X-Project-Id" { "other" } else { val });
        assert!(matches!(
            check_vector(a, &a.target, other_project, NOW),
            Err(VerifyError::SignatureMismatch { .. })
        ));
        let padded_project = |n: &str, val| {
            Some(if n == "X-Project-Id" {
                " 0123456789abcdef0123456789abcdef "
            } else {
                val
            })
        };
        assert_eq!(
            check_vector(a, &a.target, padded_project, NOW),
            Ok(AK.to_owned())
        );
    }

    #[test]
    fn malformed_authorization_never_panics() {
        let v = vector("A");
        let garbage: &[&[u8]] = &[
            b"",
            b" ",
            b"SDK-HMAC-SHA256",
            b"SDK-HMAC-SHA256 ",
            b"SDK-HMAC-SHA256 ,,,",
            b"SDK-HMAC-SHA256 Access",
            b"SDK-HMAC-SHA256 Access=",
            b"SDK-HMAC-SHA256 Access=a=b=c",
            b"SDK-HMAC-SHA256 Access=AK, Access=AK",
            b"SDK-HMAC-SHA256 Access=AK, SignedHeaders=, Signature=",
            b"SDK-HMAC-SHA256 Access=AK, SignedHeaders=x-sdk-date, Signature=00, Extra=1",
            b"SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=;;, Signature=00",
            b"SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=x-sdk-date, Signature=zz",
            b"SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=x-sdk-date, Signature=0",
            b"SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=x-sdk-date, Signature=00",
            b"SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=x-sdk-date;bad name;(, Signature=00",
            b"SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=x-sdk-date;\xc3\xa9, Signature=00",
            b"SDK-HMAC-SHA256 Access=\xff\xfe, SignedHeaders=x-sdk-date, Signature=00",
            b"AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=00",
            b"Bearer token",
            b"sdk-hmac-sha256 Access=AKIDEXAMPLE0000000000, SignedHeaders=x-sdk-date, Signature=00",
        ];
        for value in garbage {
            let mut headers = headers_of(v, |n, val| (n != "Authorization").then_some(val));
            headers.push(("Authorization", value));
            let err = check(&v.method, &v.target, &v.body, &headers, known, NOW).unwrap_err();
            assert!(
                err.gateway_message().starts_with(PREFIX) && !err.to_string().is_empty(),
                "{value:?}: {err:?}"
            );
        }
    }

    #[test]
    fn canonical_forms() {
        for c in canonical_uris() {
            assert_eq!(canonical_uri(&c.path), c.canonical, "{:?}", c.path);
        }
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1&a=0&&c"), "a=0&a=1&b=2&c=");
        assert_eq!(canonical_query("q=a+b%20c~%2a"), "q=a%2Bb%20c~%2A");
        assert_eq!(format_sdk_date(NOW), DATE);
        assert_eq!(format_sdk_date(i64::MAX), i64::MAX.to_string());
    }
}
