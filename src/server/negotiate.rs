//! Content negotiation for `/metrics`: which exposition format (`Accept`)
//! and whether to compress (`Accept-Encoding`).
//!
//! Formats, as Prometheus' content negotiation asks: the highest-weighted
//! format the client accepts among OpenMetrics 1.0.0 and text 0.0.4, with
//! text 0.0.4 as the fallback for anything else (no `Accept`, `*/*`,
//! OpenMetrics 0.0.1, text 1.0.0, protobuf, garbage). Each format takes the
//! weight of the most specific media range that matches it (RFC 9110
//! §12.5.1): `application/openmetrics-text;version=1.0.0` before
//! `application/openmetrics-text` before `application/*` before `*/*`. On
//! a tie, text 0.0.4 wins.

use std::cell::RefCell;

use hyper::HeaderMap;
use hyper::header::{ACCEPT, ACCEPT_ENCODING};

use crate::exposition::Format;

/// A media type a response can be sent as: type, subtype and the
/// `version` parameter it is sent with (empty for none).
type MediaType = (&'static str, &'static str, &'static str);

const OPENMETRICS: MediaType = ("application", "openmetrics-text", "1.0.0");
const TEXT: MediaType = ("text", "plain", "0.0.4");
const JSON: MediaType = ("application", "json", "");
const HTML: MediaType = ("text", "html", "");

/// Longer `Accept` values are negotiated every time rather than kept.
const REMEMBERED_LEN: usize = 512;

thread_local! {
    /// The latest lone `Accept` value of at most [`REMEMBERED_LEN`] bytes
    /// negotiated on this thread, and its format. A scraper sends the same
    /// header every time, and parsing it was 3 % of the exporter's CPU
    /// serving an unchanged body to 64 connections.
    static LATEST: RefCell<(Vec<u8>, Format)> = const { RefCell::new((Vec::new(), Format::Text)) };
}

/// The format to answer a request with `headers` in.
pub(crate) fn format(headers: &HeaderMap) -> Format {
    let mut values = headers.get_all(ACCEPT).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return negotiate_format(headers);
    };
    let value = value.as_bytes();
    if value.len() > REMEMBERED_LEN {
        return negotiate_format(headers);
    }
    LATEST.with_borrow_mut(|(latest, format)| {
        if latest.as_slice() != value {
            *format = negotiate_format(headers);
            latest.clear();
            latest.extend_from_slice(value);
        }
        *format
    })
}

/// [`format`] without what it remembers.
fn negotiate_format(headers: &HeaderMap) -> Format {
    if prefers(headers, OPENMETRICS, TEXT) {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Whether a page that exists as HTML and as JSON should be JSON: the
/// client weighs `application/json` above `text/html` (HTML is the
/// default, for browsers and for no `Accept` at all).
pub(crate) fn prefers_json(headers: &HeaderMap) -> bool {
    prefers(headers, JSON, HTML)
}

/// Whether the `Accept` headers weigh `candidate` above `default` (and
/// accept it at all); each gets the q of its most specific matching range.
fn prefers(headers: &HeaderMap, candidate: MediaType, default: MediaType) -> bool {
    let mut candidate_weight = Weight::default();
    let mut default_weight = Weight::default();
    for value in headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let Some(range) = MediaRange::parse(range) else {
                continue;
            };
            candidate_weight.consider(range.matches(candidate), range.q);
            default_weight.consider(range.matches(default), range.q);
        }
    }
    candidate_weight.q() > 0.0 && candidate_weight.q() > default_weight.q()
}

/// Whether the client accepts a gzip-compressed body.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip: Option<f32> = None;
    let mut any: Option<f32> = None;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for coding in value.split(',') {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let q = quality(parts);
            if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(gzip.map_or(q, |g| g.max(q)));
            } else if name == "*" {
                any = Some(any.map_or(q, |a| a.max(q)));
            }
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// The weight of one format: the q of the most specific matching range.
#[derive(Default)]
struct Weight {
    best: Option<(u8, f32)>,
}

impl Weight {
    fn consider(&mut self, specificity: Option<u8>, q: f32) {
        let Some(s) = specificity else { return };
        self.best = match self.best {
            Some((bs, bq)) if bs > s => Some((bs, bq)),
            Some((bs, bq)) if bs == s => Some((bs, bq.max(q))),
            _ => Some((s, q)),
        };
    }

    fn q(&self) -> f32 {
        self.best.map_or(0.0, |(_, q)| q)
    }
}

/// One media range of an `Accept` header.
struct MediaRange<'a> {
    kind: &'a str,
    subtype: &'a str,
    version: Option<&'a str>,
    q: f32,
}

impl<'a> MediaRange<'a> {
    fn parse(s: &'a str) -> Option<Self> {
        let mut parts = s.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let (kind, subtype) = (kind.trim(), subtype.trim());
        if kind.is_empty() || subtype.is_empty() {
            return None;
        }
        let mut version = None;
        let mut q = 1.0;
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim() {
                k if k.eq_ignore_ascii_case("version") => version = Some(v),
                k if k.eq_ignore_ascii_case("q") => q = parse_q(v),
                _ => {}
            }
        }
        Some(Self {
            kind,
            subtype,
            version,
            q,
        })
    }

    /// How specifically this range matches the media type `kind/subtype;
    /// version=version` (3: with its version, 2: type without version,
    /// 1: `kind/*`, 0: `*/*`), or `None` if it does not.
    fn matches(&self, (kind, subtype, version): MediaType) -> Option<u8> {
        if self.kind == "*" {
            return (self.subtype == "*").then_some(0);
        }
        if !self.kind.eq_ignore_ascii_case(kind) {
            return None;
        }
        if self.subtype == "*" {
            return Some(1);
        }
        if !self.subtype.eq_ignore_ascii_case(subtype) {
            return None;
        }
        match self.version {
            None => Some(2),
            Some(v) if v == version => Some(3),
            Some(_) => None,
        }
    }
}

/// The `q` parameter among `params` (default 1).
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> f32 {
    for param in params {
        if let Some((k, v)) = param.split_once('=') {
            if k.trim().eq_ignore_ascii_case("q") {
                return parse_q(v.trim());
            }
        }
    }
    1.0
}

/// A q-value, clamped to 0..=1; unparsable is 0 (not acceptable).
fn parse_q(v: &str) -> f32 {
    match v.parse::<f32>() {
        Ok(q) if q.is_finite() => q.clamp(0.0, 1.0),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    /// Prometheus 3's default scrape `Accept` header.
    const PROMETHEUS: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

    fn headers(name: hyper::header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// The format for these `Accept` values, asserting that asking again
    /// (remembered) and negotiating afresh agree.
    fn fmt(values: &[&str]) -> Format {
        let h = headers(ACCEPT, values);
        let first = format(&h);
        assert_eq!(format(&h), first, "remembered: {values:?}");
        assert_eq!(negotiate_format(&h), first, "negotiated: {values:?}");
        first
    }

    #[test]
    fn formats() {
        assert_eq!(fmt(&[PROMETHEUS]), Format::OpenMetrics);
        assert_eq!(fmt(&[]), Format::Text);
        assert_eq!(fmt(&["text/plain"]), Format::Text);
        assert_eq!(fmt(&["*/*"]), Format::Text);
        assert_eq!(fmt(&["application/openmetrics-text"]), Format::OpenMetrics);
        assert_eq!(
            fmt(&["Application/OpenMetrics-Text; Version=\"1.0.0\""]),
            Format::OpenMetrics
        );
        // Only versions we speak count.
        assert_eq!(
            fmt(&["application/openmetrics-text;version=0.0.1"]),
            Format::Text
        );
        assert_eq!(fmt(&["text/plain;version=1.0.0"]), Format::Text);
        // Weights decide; a tie goes to text.
        assert_eq!(
            fmt(&[
                "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4"
            ]),
            Format::Text
        );
        assert_eq!(
            fmt(&["text/plain,application/openmetrics-text"]),
            Format::Text
        );
        assert_eq!(
            fmt(&["text/plain;q=0.1", "application/openmetrics-text;q=0.2"]),
            Format::OpenMetrics
        );
        // The most specific range wins: OpenMetrics refused explicitly.
        assert_eq!(fmt(&["application/openmetrics-text;q=0,*/*"]), Format::Text);
        assert_eq!(
            fmt(&["application/*;q=0.9,text/plain;q=0.5"]),
            Format::OpenMetrics
        );
        // Garbage falls back to text.
        assert_eq!(fmt(&["nonsense, ;;, /, a/b;q=x"]), Format::Text);
        assert_eq!(fmt(&["application/openmetrics-text;q=zz"]), Format::Text);
        // One value remembered does not answer for two, nor for a longer
        // one that starts the same.
        assert_eq!(fmt(&["text/plain;q=0.1"]), Format::Text);
        assert_eq!(
            fmt(&["text/plain;q=0.1", "application/openmetrics-text;q=0.2"]),
            Format::OpenMetrics
        );
        assert_eq!(
            fmt(&["text/plain;q=0.1,application/openmetrics-text;q=0.2"]),
            Format::OpenMetrics
        );
        let long = format!(
            "{}, application/openmetrics-text",
            " ".repeat(REMEMBERED_LEN)
        );
        assert_eq!(fmt(&[&long]), Format::OpenMetrics);
    }

    #[test]
    fn gzip() {
        let gz = |v: &[&str]| accepts_gzip(&headers(ACCEPT_ENCODING, v));
        assert!(gz(&["gzip"]));
        assert!(gz(&["br, GZip;q=0.5"]));
        assert!(gz(&["*"]));
        assert!(gz(&["identity", "gzip"]));
        assert!(!gz(&[]));
        assert!(!gz(&["identity"]));
        assert!(!gz(&["gzip;q=0"]));
        assert!(!gz(&["gzip;q=0, *"]));
        assert!(!gz(&["deflate, br"]));
    }
}
