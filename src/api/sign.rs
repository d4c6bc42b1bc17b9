//! AK/SK request signing, `SDK-HMAC-SHA256` (reference, section 6): the
//! canonical request, the string to sign, the signature and the
//! `Authorization` header for exactly the request that will be sent.
//!
//! This is not AWS SigV4: there is no key derivation and no credential
//! scope, the secret key itself is the HMAC key. The functions here are pure
//! (no clock, no I/O): the caller picks `X-Sdk-Date` (see [`sdk_date`]),
//! then sends the path, query, headers and body it signed, unchanged.

use hmac::{Hmac, Mac};
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::secret::debug_only;
use crate::urn::encode_component;

/// The algorithm name that opens the `Authorization` header and the string
/// to sign.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// What is signed: exactly what will be sent. Not `Debug`: the headers may
/// hold a security token.
#[derive(Clone, Copy)]
pub struct SigningInput<'a> {
    /// The HTTP method, e.g. `GET`.
    pub method: &'a str,
    /// `host[:port]` as sent in the `Host` header.
    pub host: &'a str,
    /// The request path as sent on the wire, possibly already percent-encoded.
    pub path: &'a str,
    /// The query string exactly as sent, without `?`; may be empty. The
    /// client builds it canonically (sorted, RFC 3986 encoded), so it is
    /// signed as is.
    pub canonical_query: &'a str,
    /// Further headers to sign, names in any case, e.g. `Content-Type`,
    /// `X-Project-Id`, `X-Security-Token`. [`sign`] adds `Host` and
    /// `X-Sdk-Date` itself; names containing `_` are never signed.
    pub headers: &'a [(&'a str, &'a str)],
    /// The exact body bytes; empty for none.
    pub body: &'a [u8],
    /// The `X-Sdk-Date` value, `YYYYMMDDTHHMMSSZ`.
    pub sdk_date: &'a str,
}

/// The outcome of signing, with the intermediate strings for debugging.
/// Its `Debug` shows only the signed header names and the signature, as the
/// canonical request may hold a security token.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    /// The `Authorization` header value.
    pub authorization: String,
    /// The signed header names, lower-case, sorted, `;`-separated.
    pub signed_headers: String,
    /// The canonical request (step 8).
    pub canonical_request: String,
    /// The string to sign (step 9).
    pub string_to_sign: String,
    /// The lower-case hex signature.
    pub signature: String,
}

debug_only!(Signed: signed_headers, signature);

/// Signs a request, adding `Host` (from `input.host`) and `X-Sdk-Date` (from
/// `input.sdk_date`) to `input.headers`; headers of those two names in
/// `input.headers` are ignored, so the request must send these values.
pub fn sign(access_key: &str, secret_key: &str, input: &SigningInput<'_>) -> Signed {
    let mut headers: Vec<(&str, &str)> = input
        .headers
        .iter()
        .filter(|(name, _)| {
            !name.eq_ignore_ascii_case("host") && !name.eq_ignore_ascii_case("x-sdk-date")
        })
        .copied()
        .collect();
    headers.push(("host", input.host));
    headers.push(("x-sdk-date", input.sdk_date));
    sign_with_headers(
        access_key,
        secret_key,
        input.method,
        input.path,
        input.canonical_query,
        &headers,
        input.body,
        input.sdk_date,
    )
}

/// Signs a request with `headers` as the complete set of headers to sign
/// (names in any case; names containing `_` are skipped; include `X-Sdk-Date`
/// and `Host` if they are to be signed). `sdk_date` goes into the string to
/// sign. A name given more than once is signed once, with one line per value
/// in sorted order.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per part of the request; sign() is the convenient entry point"
)]
pub fn sign_with_headers(
    access_key: &str,
    secret_key: &str,
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    sdk_date: &str,
) -> Signed {
    let mut lines: Vec<(String, &str)> = headers
        .iter()
        .filter(|(name, _)| !name.contains('_'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim()))
        .collect();
    lines.sort();
    let mut names: Vec<&str> = lines.iter().map(|(name, _)| name.as_str()).collect();
    names.dedup();
    let signed_headers = names.join(";");
    let canonical_headers: String = lines
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();

    let canonical_request = format!(
        "{}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{}",
        method.to_ascii_uppercase(),
        canonical_uri(path),
        hex::encode(Sha256::digest(body)),
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let signature = hmac_sha256_hex(secret_key.as_bytes(), string_to_sign.as_bytes());
    Signed {
        authorization: format!(
            "{ALGORITHM} Access={access_key}, SignedHeaders={signed_headers}, Signature={signature}"
        ),
        signed_headers,
        canonical_request,
        string_to_sign,
        signature,
    }
}

/// The canonical URI of a request path (step 5): percent-decoded once, each
/// `/`-separated segment re-encoded with the RFC 3986 unreserved set, and a
/// trailing `/` appended if missing. Only the canonical form gets that
/// slash, never the path that is sent.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut uri = decoded
        .split('/')
        .map(encode_component)
        .collect::<Vec<_>>()
        .join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Formats Unix seconds as an `X-Sdk-Date` value: UTC, `YYYYMMDDTHHMMSSZ`.
/// Times outside years -9999..=9999 are clamped to that range.
pub fn sdk_date(unix_seconds: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(if unix_seconds < 0 {
        PrimitiveDateTime::MIN.assume_utc()
    } else {
        PrimitiveDateTime::MAX.assume_utc()
    });
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Lower-case hex HMAC-SHA256 of `message` under `key`.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    // HMAC accepts keys of any length (longer ones are hashed first), so
    // `new_from_slice` cannot fail; were it to, an empty signature would be
    // rejected by the gateway rather than panic here.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::signing_vectors::{
        AK, DATE, HOST, NOW, PROJECT_ID, SK, Vector, canonical_uris, vector, vectors,
    };

    fn sign_vector(v: &Vector) -> Signed {
        let (path, query) = v.target.split_once('?').unwrap_or((&v.target, ""));
        let headers = [
            ("Content-Type", "application/json"),
            ("X-Project-Id", PROJECT_ID),
        ];
        sign(
            AK,
            SK,
            &SigningInput {
                method: &v.method,
                host: HOST,
                path,
                canonical_query: query,
                headers: &headers,
                body: v.body.as_bytes(),
                sdk_date: DATE,
            },
        )
    }

    #[test]
    fn reproduces_the_reference_vectors() {
        for v in vectors() {
            let signed = sign_vector(v);
            assert_eq!(
                signed.canonical_request, v.canonical_request,
                "vector {}",
                v.name
            );
            assert_eq!(signed.string_to_sign, v.string_to_sign, "vector {}", v.name);
            assert_eq!(signed.authorization, v.authorization, "vector {}", v.name);
            assert_eq!(
                signed.signed_headers,
                "content-type;host;x-project-id;x-sdk-date"
            );
            assert!(
                v.authorization.ends_with(&signed.signature),
                "vector {}",
                v.name
            );
        }
    }

    #[test]
    fn encoded_and_raw_colons_sign_alike() {
        let (b, b2) = (vector("B"), vector("B2"));
        assert_eq!(
            b.target.replace("%3A", ":"),
            b2.target,
            "B2 is B with raw colons"
        );
        assert_eq!(sign_vector(b), sign_vector(b2));
    }

    #[test]
    fn go_sdk_get_vector() {
        let signed = sign_with_headers(
            "AccessKey",
            "SecretKey",
            "GET",
            "/path",
            "limit=1",
            &[
                ("X-Sdk-Date", "20060102T150405Z"),
                ("TEST_UNDERSCORE", "ignored"),
            ],
            b"",
            "20060102T150405Z",
        );
        assert_eq!(
            signed.authorization,
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
             Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
        );
    }

    #[test]
    fn go_sdk_post_vector_hashes_the_trailing_newline() {
        let post = |body: &[u8]| {
            sign_with_headers(
                "AccessKey",
                "SecretKey",
                "POST",
                "/path",
                "key=value",
                &[("X-Sdk-Date", "20060102T150405Z")],
                body,
                "20060102T150405Z",
            )
        };
        let expected = "cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59";
        assert_eq!(post(b"{\"Name\":\"test\",\"Id\":1}\n").signature, expected);
        assert_ne!(post(b"{\"Name\":\"test\",\"Id\":1}").signature, expected);
    }

    #[test]
    fn header_names_and_values_are_normalised() {
        let input = |headers: &'static [(&'static str, &'static str)]| {
            sign(
                AK,
                SK,
                &SigningInput {
                    method: "get",
                    host: "127.0.0.1:8080",
                    path: "/v2/p/fgs/functions",
                    canonical_query: "",
                    headers,
                    body: b"",
                    sdk_date: DATE,
                },
            )
        };
        let a = input(&[
            ("X-Project-Id", "  p  "),
            ("Content-Type", "application/json"),
        ]);
        let b = input(&[
            ("content-type", "application/json"),
            ("x-project-id", "p"),
            ("Host", "ignored.example"),
            ("X-Sdk-Date", "19700101T000000Z"),
            ("x_custom", "never signed"),
        ]);
        assert_eq!(a, b);
        assert!(
            a.canonical_request
                .starts_with("GET\n/v2/p/fgs/functions/\n\n")
        );
        assert!(a.canonical_request.contains("\nhost:127.0.0.1:8080\n"));
        assert_eq!(
            a.signed_headers,
            "content-type;host;x-project-id;x-sdk-date"
        );
    }

    #[test]
    fn repeated_headers_are_listed_once() {
        let signed = sign_with_headers(
            AK,
            SK,
            "GET",
            "/",
            "",
            &[("X-A", "2"), ("x-a", "1"), ("x-sdk-date", DATE)],
            b"",
            DATE,
        );
        assert_eq!(signed.signed_headers, "x-a;x-sdk-date");
        assert!(
            signed
                .canonical_request
                .contains("\nx-a:1\nx-a:2\nx-sdk-date:")
        );
    }

    #[test]
    fn canonical_uri_decodes_once_and_re_encodes() {
        for c in canonical_uris() {
            assert_eq!(canonical_uri(&c.path), c.canonical, "{:?}", c.path);
        }
    }

    #[test]
    fn sdk_date_formats_utc() {
        assert_eq!(sdk_date(NOW), DATE);
        assert_eq!(sdk_date(0), "19700101T000000Z");
        assert_eq!(sdk_date(i64::MAX), "99991231T235959Z");
        assert_eq!(sdk_date(i64::MIN), "-99990101T000000Z");
    }
}
