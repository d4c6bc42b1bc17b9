//! `/failures`: the latest failed and discarded async invocations of each
//! function, the way from an alert ("payment-webhook failed 52 times") to
//! the requests behind it.
//!
//! Request ids and error messages are never labels; they are here, newest
//! first: function, qualifier, request id, status, error code, error
//! message (cut to a few hundred characters), start, end, duration. HTML by
//! default, every upstream string escaped; JSON when the client prefers
//! `application/json`. `?function=NAME` keeps one function (by name, as in
//! the `function` label), `?request_id=ID` one request (the exemplar of a
//! Grafana panel links here). Authentication is the same as `/metrics`.

use std::fmt::Write;

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Response};
use percent_encoding::percent_decode_str;
use serde::Serialize;

use super::{Chunks, HttpResponse, negotiate};
use crate::state::{FailureRecord, Store};

/// Rows shown at most (the newest), so the page stays small whatever the
/// number of functions.
const MAX_ROWS: usize = 1000;

/// What `?…` asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filter {
    function: Option<String>,
    request_id: Option<String>,
}

impl Filter {
    fn parse(query: Option<&str>) -> Self {
        let mut f = Self::default();
        for pair in query.unwrap_or_default().split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = v.replace('+', " ");
            let v = percent_decode_str(&v).decode_utf8_lossy().trim().to_owned();
            if v.is_empty() {
                continue;
            }
            match k {
                "function" => f.function = Some(v),
                "request_id" => f.request_id = Some(v),
                _ => {}
            }
        }
        f
    }
}

/// One row, as JSON.
#[derive(Debug, Serialize)]
struct Row<'a> {
    function: &'a str,
    package: &'a str,
    qualifier: &'a str,
    project_id: &'a str,
    request_id: &'a str,
    status: &'a str,
    error_code: &'a str,
    error_message: &'a str,
    /// RFC 3339, UTC (the API's clock).
    start_time: Option<String>,
    end_time: Option<String>,
    duration_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Page<'a> {
    failures: Vec<Row<'a>>,
    /// More matched than are shown.
    truncated: bool,
}

/// Answers `GET /failures`.
pub(super) fn page(store: &Store, query: Option<&str>, headers: &HeaderMap) -> HttpResponse {
    let filter = Filter::parse(query);
    let functions = store.functions();
    let mut rows: Vec<(i64, Row<'_>)> = Vec::new();
    for f in &functions {
        if filter
            .function
            .as_deref()
            .is_some_and(|name| name != f.urn.name())
        {
            continue;
        }
        for r in f.recent_failures.iter() {
            if filter
                .request_id
                .as_deref()
                .is_some_and(|id| id != r.request_id)
            {
                continue;
            }
            rows.push((r.end.or(r.start).unwrap_or(i64::MIN), row(&f.urn, r)));
        }
    }
    // Newest first; ties in a stable order.
    rows.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.request_id.cmp(b.1.request_id))
    });
    let truncated = rows.len() > MAX_ROWS;
    rows.truncate(MAX_ROWS);
    let rows: Vec<Row<'_>> = rows.into_iter().map(|(_, r)| r).collect();
    let (body, content_type) = if negotiate::prefers_json(headers) {
        let page = Page {
            failures: rows,
            truncated,
        };
        let json = serde_json::to_string(&page).unwrap_or_else(|_| "{}".to_owned());
        (json, "application/json")
    } else {
        (html(&rows, &filter, truncated), "text/html; charset=utf-8")
    };
    let mut r = Response::new(Chunks::from(Bytes::from(body)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(hyper::header::VARY, HeaderValue::from_static("Accept"));
    r
}

fn row<'a>(urn: &'a crate::urn::FunctionUrn, r: &'a FailureRecord) -> Row<'a> {
    Row {
        function: urn.name(),
        package: urn.package(),
        qualifier: urn.qualifier(),
        project_id: urn.project_id(),
        request_id: &r.request_id,
        status: r.status.as_str(),
        error_code: &r.error_code,
        error_message: &r.error_message,
        start_time: r.start.and_then(rfc3339),
        end_time: r.end.and_then(rfc3339),
        duration_seconds: r.duration(),
    }
}

fn rfc3339(t: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn html(rows: &[Row<'_>], filter: &Filter, truncated: bool) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as esc};
    let mut table = String::new();
    for r in rows {
        let _ = writeln!(
            table,
            "<tr><td><a href=\"/failures?function={link}\">{function}</a></td><td>{qualifier}</td><td><code>{request_id}</code></td><td>{status}</td><td>{code}</td><td>{message}</td><td>{start}</td><td>{end}</td><td>{duration}</td></tr>",
            link = attr(
                &percent_encoding::utf8_percent_encode(
                    r.function,
                    percent_encoding::NON_ALPHANUMERIC
                )
                .to_string()
            ),
            function = esc(r.function),
            qualifier = esc(r.qualifier),
            request_id = esc(r.request_id),
            status = r.status,
            code = esc(r.error_code),
            message = esc(r.error_message),
            start = r.start_time.as_deref().unwrap_or(""),
            end = r.end_time.as_deref().unwrap_or(""),
            duration = r
                .duration_seconds
                .map(|d| format!("{d} s"))
                .unwrap_or_default(),
        );
    }
    let scope = match (&filter.function, &filter.request_id) {
        (Some(f), _) => format!("of <code>{}</code> ", esc(f)),
        (None, Some(id)) => format!("with request id <code>{}</code> ", esc(id)),
        (None, None) => String::new(),
    };
    let more = if truncated {
        format!("<p>Only the newest {MAX_ROWS} are shown; filter by function to see the rest.</p>")
    } else {
        String::new()
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Recent failures · FunctionGraph Exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}</style>
</head>
<body>
<h1>Recent failures {scope}</h1>
<p><a href="/">Exporter</a> · <a href="/failures">All functions</a> · the latest failed and discarded asynchronous invocations counted per function (<code>failures.keep</code>), newest first; times are UTC in the API's clock. Request ids and error messages come from the FunctionGraph API as they are (escaped here). Also as JSON: <code>Accept: application/json</code>.</p>
<form method="get" action="/failures"><label>Function <input name="function" value="{value}"></label> <button>Filter</button></form>
{more}<table>
<tr><th>Function</th><th>Qualifier</th><th>Request id</th><th>Status</th><th>Error code</th><th>Error message</th><th>Start</th><th>End</th><th>Duration</th></tr>
{table}</table>
</body>
</html>
"#,
        value = attr(filter.function.as_deref().unwrap_or("")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_decoded() {
        assert_eq!(
            Filter::parse(Some("function=pay%2Dment+hook&x=1&request_id=")),
            Filter {
                function: Some("pay-ment hook".into()),
                request_id: None,
            }
        );
        assert_eq!(Filter::parse(None), Filter::default());
    }
}
