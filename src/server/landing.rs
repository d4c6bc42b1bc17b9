//! The landing page on `/`: every function's status, last poll and
//! errors, and the permission denials by project and collector.

use bytes::Bytes;
use hyper::Response;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};

use super::{Chunks, HttpResponse, ServerState};

/// The landing page, from the store's current reports.
pub(super) fn page(state: &ServerState) -> HttpResponse {
    use html_escape::encode_text as esc;
    use std::fmt::Write;
    let functions = state.store.functions();
    let up = functions.iter().filter(|f| f.up()).count();
    let mut rows = String::new();
    for f in &functions {
        let status = match (f.polls, f.up()) {
            (0, _) => "not polled yet",
            (_, true) => "up",
            (_, false) => "down",
        };
        let last_poll = f.last_poll.map_or_else(|| "never".to_owned(), rfc3339);
        let last = f.last_success.map_or_else(|| "never".to_owned(), rfc3339);
        let mut errors: Vec<String> = f
            .errors()
            .into_iter()
            .map(|(k, e)| {
                let mut line = esc(&error_line(k, e)).into_owned();
                if let Some(h) = f.health.get(&k) {
                    let _ = write!(
                        line,
                        " <small>({} in a row; next attempt {})</small>",
                        h.consecutive_failures,
                        h.next_attempt
                            .map_or_else(|| "at the next poll".to_owned(), rfc3339)
                    );
                }
                line
            })
            .collect();
        if let Some(t) = f.snapshot_recheck {
            errors.push(format!(
                "<small>snapshot: not applicable to this function; asked again {} or when its code changes</small>",
                rfc3339(t)
            ));
        }
        let _ = writeln!(
            rows,
            "<tr class=\"{status_class}\"><td><code>{urn}</code></td><td>{status}</td><td>{last_poll}</td><td>{last}</td><td>{errors}</td></tr>",
            status_class = if f.up() { "up" } else { "down" },
            urn = esc(&f.urn.to_string()),
            errors = errors.join("<br>"),
        );
    }
    // Permission denials, by project and collector, with the functions
    // refused (the API answers per function).
    let mut denied: std::collections::BTreeMap<
        (&str, crate::state::CollectorKind, &str),
        Vec<String>,
    > = std::collections::BTreeMap::new();
    for f in &functions {
        for (kind, h) in &f.health {
            if let Some(why) = &h.permission_denied {
                denied
                    .entry((f.urn.project_id(), *kind, why.as_str()))
                    .or_default()
                    .push(format!("{}:{}", f.urn.package(), f.urn.name()));
            }
        }
    }
    let permissions = if denied.is_empty() {
        String::new()
    } else {
        let mut out = String::from(
            "<h2>Permission denied</h2>\n<p>The credentials work, but may not call these APIs for these functions: only these collectors fail (and back off). Grant the permission named to the exporter's IAM user or agency.</p>\n<table>\n<tr><th>Project</th><th>Collector</th><th>Answer</th><th>Functions</th></tr>\n",
        );
        for ((project, kind, why), names) in &denied {
            let _ = writeln!(
                out,
                "<tr class=\"down\"><td><code>{}</code></td><td>{kind}</td><td>{}</td><td>{}</td></tr>",
                esc(project),
                esc(why),
                esc(&names.join(", ")),
            );
        }
        out.push_str("</table>\n");
        out
    };
    let body = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>FunctionGraph Exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}tr.down td{{background:#fee}}</style>
</head>
<body>
<h1>FunctionGraph Exporter</h1>
<p>Version {version}. <a href="{metrics}">Metrics</a> · <a href="/failures">Recent failures</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
<p>Values are refreshed by background polling (every {interval} s for asynchronous invocations; see <code>polling.intervals</code> for the others); scrapes are served from memory and never call the API. Times are UTC.</p>
{permissions}<h2>Functions ({up} of {total} up)</h2>
<table>
<tr><th>Function</th><th>Status</th><th>Last poll</th><th>Last success</th><th>Errors</th></tr>
{rows}</table>
</body>
</html>
"#,
        version = crate::exposition::exporter::VERSION,
        metrics = esc(&state.telemetry_path),
        interval = state.interval.as_secs(),
        total = functions.len(),
    );
    let mut r = Response::new(Chunks::from(Bytes::from(body)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Unix seconds as RFC 3339 (UTC).
fn rfc3339(t: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// One line for a failing collector: the error as the API client words
/// it, which starts with the endpoint (`async_invocations: http 500 ...`),
/// so the collector's name is added only when the endpoint does not
/// already start with it.
fn error_line(kind: crate::state::CollectorKind, error: &str) -> String {
    let endpoint = error.split(": ").next().unwrap_or_default();
    let named = endpoint.starts_with(kind.as_str())
        && endpoint
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_');
    let line = if named {
        error.to_owned()
    } else {
        format!("{kind}: {error}")
    };
    // One line, whatever the upstream text holds.
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::CollectorKind;

    #[test]
    fn an_error_line_names_its_collector_once() {
        assert_eq!(
            error_line(
                CollectorKind::AsyncInvocations,
                "async_invocations: http 500: boom (request id r1)"
            ),
            "async_invocations: http 500: boom (request id r1)"
        );
        assert_eq!(
            error_line(
                CollectorKind::Snapshot,
                "snapshot_state: http 502:\n bad\r\ngateway"
            ),
            "snapshot_state: http 502: bad gateway"
        );
        assert_eq!(
            error_line(CollectorKind::Code, "no complete response within 10s"),
            "code: no complete response within 10s"
        );
    }
}
