//! The simulator's HTTP side: routes, authentication, parameter checks,
//! pagination and the JSON the real API sends, field names and time formats
//! included (reference, sections 3 and 7), and IAM's token endpoint.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::api::Endpoint;
use crate::server::HttpResponse;
use crate::timefmt::{format_last_modified, format_query_time, parse_query_time};
use crate::urn::FunctionUrn;

use super::Simulator;
use super::gateway::Received;
use super::world::{Fault, Function, Invocation, SimStatus};

/// Largest async-invocations page the API serves.
const ASYNC_MAX_LIMIT: u64 = 500;
const ASYNC_DEFAULT_LIMIT: u64 = 100;
/// Largest (and default) functions page.
const FUNCTIONS_MAX_ITEMS: u64 = 400;

/// An error answer: status, `error_code`, `error_msg`.
struct ApiFailure(StatusCode, &'static str, String);

type Answer = Result<Value, ApiFailure>;

/// Largest request body read (IAM token requests are small).
const MAX_BODY: usize = 64 * 1024;

/// Answers one request; an error closes the connection without an answer.
pub(super) async fn handle(
    sim: &Simulator,
    req: Request<Incoming>,
) -> Result<Response<SimBody>, std::io::Error> {
    let request_id = sim.next_request_id();
    let (parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => Bytes::new(),
        }
    } else {
        Bytes::new()
    };
    let (endpoint, mut answer) = route(sim, &parts, &body);
    if let Some(e) = endpoint {
        sim.count(e);
    }
    // Counted in flight until the answer is produced, or until the client
    // gives up and the connection (and this future) is dropped.
    let _in_flight = function_of(parts.uri.path()).map(|f| sim.start_request(f));
    let latency = sim.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Ok(Reply::Delayed(delay, inner)) = answer {
        tokio::time::sleep(delay).await;
        answer = Ok(*inner);
    }
    let streamed = match &answer {
        Ok(Reply::Fault(Fault::Reset)) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "simulated connection reset",
            ));
        }
        Ok(Reply::Fault(Fault::Huge(size))) => Some(SimBody::huge(*size)),
        Ok(Reply::Fault(Fault::Stall)) => Some(SimBody::stall()),
        _ => None,
    };
    let mut response = match streamed {
        Some(body) => {
            let mut r = Response::new(body);
            if let Some(len) = r.body().declared_len() {
                r.headers_mut()
                    .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json;charset=UTF-8"),
            );
            r
        }
        None => answer_response(answer, &request_id)
            .await
            .map(SimBody::Full),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    // The API's own clock, which may differ from the exporter's.
    let clock =
        std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(sim.now()).unwrap_or_default());
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(clock)) {
        response.headers_mut().insert(hyper::header::DATE, v);
    }
    Ok(response)
}

/// A response body: whole, or streamed to misbehave.
pub(super) enum SimBody {
    Full(crate::server::Chunks),
    /// Valid JSON of `total` bytes, sent in chunks (several hundred MB
    /// without holding them).
    Huge {
        total: u64,
        left: u64,
        head: bool,
    },
    /// Half a body, then nothing, ever.
    Stall {
        first: Option<Bytes>,
    },
}

impl SimBody {
    const CHUNK: usize = 64 * 1024;

    fn huge(size: usize) -> Self {
        let total = size as u64 + 15; // {"padding":"…"}
        SimBody::Huge {
            total,
            left: total,
            head: true,
        }
    }

    fn stall() -> Self {
        SimBody::Stall {
            first: Some(Bytes::from_static(
                b"{\"invocations\":[{\"request_id\":\"a\",",
            )),
        }
    }

    /// The Content-Length to announce.
    fn declared_len(&self) -> Option<u64> {
        match self {
            SimBody::Full(_) => None,
            SimBody::Huge { total, .. } => Some(*total),
            SimBody::Stall { .. } => Some(4096),
        }
    }
}

impl hyper::body::Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        match self.get_mut() {
            SimBody::Full(chunks) => std::pin::Pin::new(chunks)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|never| match never {}))),
            SimBody::Huge { left, head, .. } => {
                if *left == 0 {
                    return Poll::Ready(None);
                }
                let chunk = if *head {
                    *head = false;
                    Bytes::from_static(b"{\"padding\":\"")
                } else if *left == 2 {
                    Bytes::from_static(b"\"}")
                } else {
                    let n = (*left - 2).min(Self::CHUNK as u64) as usize;
                    Bytes::from(vec![b'x'; n])
                };
                *left -= chunk.len() as u64;
                Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
            }
            SimBody::Stall { first } => match first.take() {
                Some(b) => Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
                // Never woken: the client's timeout ends it.
                None => Poll::Pending,
            },
        }
    }
}

async fn answer_response(answer: Result<Reply, ApiFailure>, request_id: &str) -> HttpResponse {
    match answer {
        Ok(Reply::Json(v)) => json_response(StatusCode::OK, &v),
        Ok(Reply::Token(token, v)) => {
            let mut r = json_response(StatusCode::CREATED, &v);
            if let Ok(h) = HeaderValue::from_str(&token) {
                r.headers_mut().insert("x-subject-token", h);
            }
            r
        }
        Ok(Reply::Raw(status, v)) => json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            &v,
        ),
        Ok(Reply::Fault(Fault::Body(body))) => raw(StatusCode::OK, body),
        Ok(Reply::Fault(Fault::Status { status, body })) => raw(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        ),
        Ok(Reply::Fault(Fault::Throttle { code, retry_after })) => {
            let message = if code.starts_with("APIGW") {
                "The throttling threshold has been reached: policy user over ratelimit, limit:20, time:1 second"
            } else {
                "too many requests, please retry later"
            };
            let mut r = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"error_code": code, "error_msg": message, "request_id": request_id}),
            );
            if let Some(seconds) = retry_after {
                r.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            r
        }
        // Until shutdown: the client gives up on its own timeout. (Huge,
        // Stall and Reset were answered before.)
        Ok(Reply::Fault(Fault::Hang | Fault::Stall | Fault::Reset | Fault::Huge(_))) => {
            std::future::pending::<()>().await;
            unreachable!("pending never completes")
        }
        Ok(Reply::Fault(Fault::Delay(_)) | Reply::Delayed(..)) => {
            json_response(StatusCode::OK, &json!({}))
        }
        Ok(Reply::Fault(Fault::Redirect { status, location })) => {
            let mut r = raw(
                StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND),
                String::new(),
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(hyper::header::LOCATION, v);
            }
            r
        }
        // Answered in `answer` for the async endpoint; elsewhere an empty body.
        Ok(Reply::Fault(Fault::EndlessRecords { .. })) => json_response(StatusCode::OK, &json!({})),
        Err(ApiFailure(status, code, msg)) => json_response(
            status,
            &json!({"error_code": code, "error_msg": msg, "request_id": request_id}),
        ),
    }
}

enum Reply {
    Json(Value),
    /// An issued IAM token (`X-Subject-Token`) and the token body.
    Token(String, Value),
    /// Any status with a JSON body (IAM's errors).
    Raw(u16, Value),
    Fault(Fault),
    /// The answer, to be sent after a delay.
    Delayed(Duration, Box<Reply>),
}

fn route(
    sim: &Simulator,
    req: &Parts,
    body: &[u8],
) -> (Option<Endpoint>, Result<Reply, ApiFailure>) {
    let path = req.uri.path();
    if path == "/v3/auth/tokens" && req.method == Method::POST {
        if let Some(fault) = sim.world().iam_fault.as_mut().and_then(|r| r.take()) {
            return (Some(Endpoint::IamTokens), Ok(Reply::Fault(fault)));
        }
        let stated_expiry = sim.world().stated_token_expiry;
        let projects = sim
            .world()
            .projects
            .iter()
            .map(|(id, p)| (id.clone(), p.region.clone()))
            .collect();
        let now = sim.now();
        let answer = match sim.auth().issue_token(body, &projects, now) {
            Ok((token, mut v)) => {
                if let Some(offset) = stated_expiry {
                    v["token"]["expires_at"] = json!(super::auth::rfc3339(now + offset));
                }
                Reply::Token(token, v)
            }
            Err((status, v)) => Reply::Raw(status, v),
        };
        return (Some(Endpoint::IamTokens), Ok(answer));
    }
    let segments: Vec<&str> = path.split('/').collect();
    // ["", "v2", project, "fgs", "functions", urn?, resource?, action?]
    let (project, rest) = match segments.as_slice() {
        ["", "v2", project, "fgs", "functions", rest @ ..] => (*project, rest),
        ["", "v2", project, "fgs", "quotas"] => (*project, &[][..]),
        _ => return (None, Err(no_such_api())),
    };
    let endpoint = match rest {
        [] if path.ends_with("/quotas") => Endpoint::Quotas,
        [] => Endpoint::ListFunctions,
        [_, "code"] => Endpoint::Code,
        [_, "versions"] => Endpoint::Versions,
        [_, "async-invocations"] => Endpoint::AsyncInvocations,
        [_, "snapshots", "state"] => Endpoint::SnapshotState,
        [_, "snapshots", "enableSnapshot"] => Endpoint::SnapshotEnable,
        [_, "statistics", _] => Endpoint::Statistics,
        _ => return (None, Err(no_such_api())),
    };
    if req.method != Method::GET {
        return (Some(endpoint), Err(no_such_api()));
    }
    let received = Received {
        method: req.method.as_str(),
        path,
        query: req.uri.query().unwrap_or(""),
        headers: &req.headers,
        body,
    };
    let now = sim.now();
    if let Err(message) = sim.auth().check(&received, now) {
        return (
            Some(endpoint),
            Err(ApiFailure(StatusCode::UNAUTHORIZED, "APIGW.0301", message)),
        );
    }
    let answer = answer(sim, req, endpoint, project, rest.first().copied());
    (Some(endpoint), answer)
}

/// `package:name` of the function a request path names, if it names one.
fn function_of(path: &str) -> Option<String> {
    let segment = path.split('/').nth(5).filter(|s| !s.is_empty())?;
    let raw = percent_decode_str(segment).decode_utf8_lossy();
    let urn = FunctionUrn::parse_full(&raw).ok()?;
    Some(format!("{}:{}", urn.package(), urn.name()))
}

fn no_such_api() -> ApiFailure {
    ApiFailure(
        StatusCode::NOT_FOUND,
        "APIGW.0101",
        "The API does not exist or has not been published in the environment".to_owned(),
    )
}

fn answer(
    sim: &Simulator,
    req: &Parts,
    endpoint: Endpoint,
    project: &str,
    urn_segment: Option<&str>,
) -> Result<Reply, ApiFailure> {
    let query = parse_query(req.uri.query().unwrap_or(""));
    let now = sim.now();
    let mut world = sim.world();
    let world = &mut *world;
    let Some(p) = world.projects.get(project) else {
        return Err(ApiFailure(
            StatusCode::FORBIDDEN,
            "FSS.0403",
            format!("the token is not valid for project {project}"),
        ));
    };
    if let Some(fault) = world.project_faults.get_mut(project).and_then(|r| r.take()) {
        return Ok(Reply::Fault(fault));
    }
    let Some(segment) = urn_segment else {
        return if endpoint == Endpoint::Quotas {
            Ok(Reply::Json(quotas(
                p.functions.values(),
                &world.extra_quotas,
            )))
        } else {
            list_functions(project, &p.region, p.functions.values(), &query).map(Reply::Json)
        };
    };
    let raw = percent_decode_str(segment).decode_utf8_lossy();
    let urn = FunctionUrn::parse_in(&raw, &p.region, project).map_err(|e| {
        ApiFailure(
            StatusCode::BAD_REQUEST,
            "FSS.1309",
            format!("invalid function urn: {e}"),
        )
    })?;
    let key = (urn.package().to_owned(), urn.name().to_owned());
    // A function's faults apply even once it is deleted (how a deleted
    // function answers is itself a fault mode: FSS.1052, FSS.0404, ...).
    let fault_key = (project.to_owned(), key.0.clone(), key.1.clone(), endpoint);
    let fault = world.faults.get_mut(&fault_key).and_then(|r| r.take());
    let Some(f) = p.functions.get(&key) else {
        return match fault {
            Some(fault) if !matches!(fault, Fault::Delay(_)) => Ok(Reply::Fault(fault)),
            _ => Err(ApiFailure(
                StatusCode::NOT_FOUND,
                "FSS.1051",
                "Not found the function".to_owned(),
            )),
        };
    };
    let delay = match fault {
        Some(Fault::Delay(d)) => Some(d),
        Some(Fault::EndlessRecords { request_id_len })
            if endpoint == Endpoint::AsyncInvocations =>
        {
            return endless_records(world, &query, request_id_len, now).map(Reply::Json);
        }
        Some(fault) => return Ok(Reply::Fault(fault)),
        None => None,
    };
    let Some(version) = f.resolve(urn.qualifier()) else {
        return Err(if urn.is_alias() {
            ApiFailure(
                StatusCode::NOT_FOUND,
                "FSS.1053",
                "Not found the function alias".to_owned(),
            )
        } else {
            ApiFailure(
                StatusCode::NOT_FOUND,
                "FSS.1052",
                "Not found the function version".to_owned(),
            )
        });
    };
    let value = match endpoint {
        Endpoint::AsyncInvocations => async_invocations(f, urn.qualifier(), &query, now)?,
        Endpoint::Versions => versions(project, &p.region, f, &query)?,
        Endpoint::Code => code(project, &p.region, f, &version),
        Endpoint::SnapshotState | Endpoint::SnapshotEnable => {
            snapshot(f, &version, endpoint == Endpoint::SnapshotEnable)?
        }
        Endpoint::Statistics => {
            let period = req
                .uri
                .path()
                .rsplit('/')
                .next()
                .and_then(|p| p.parse::<i64>().ok())
                .filter(|p| [5, 15, 60].contains(p))
                .ok_or_else(|| bad_param("period", req.uri.path()))?;
            statistics(f, urn.qualifier(), period, now)
        }
        // Answered before the function is resolved.
        Endpoint::ListFunctions | Endpoint::IamTokens | Endpoint::Quotas => {
            return Err(no_such_api());
        }
    };
    Ok(match delay {
        Some(d) => Reply::Delayed(d, Box::new(Reply::Json(value))),
        None => Reply::Json(value),
    })
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode_str(k).decode_utf8_lossy().into_owned(),
                percent_decode_str(v).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

fn bad_param(name: &str, value: &str) -> ApiFailure {
    ApiFailure(
        StatusCode::BAD_REQUEST,
        "FSS.1001",
        format!("invalid query parameter {name}: {value:?}"),
    )
}

fn number(query: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, ApiFailure> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| bad_param(name, v)),
    }
}

/// Slices one page out of `items` and adds `next_marker` and `count`.
fn page<T>(items: Vec<T>, marker: u64, limit: u64) -> (Vec<T>, u64, u64) {
    let count = items.len() as u64;
    let start = marker.min(count) as usize;
    let end = (marker.saturating_add(limit)).min(count) as usize;
    let next = end as u64;
    let page = items.into_iter().skip(start).take(end - start).collect();
    (page, next, count)
}

fn async_invocations(
    f: &Function,
    qualifier: &str,
    query: &HashMap<String, String>,
    now: i64,
) -> Answer {
    let marker = number(query, "marker", 0)?;
    let limit = number(query, "limit", ASYNC_DEFAULT_LIMIT)?;
    if limit > ASYNC_MAX_LIMIT {
        return Err(bad_param("limit", &limit.to_string()));
    }
    let status = match query.get("status") {
        Some(s) => Some(SimStatus::parse(s).ok_or_else(|| bad_param("status", s))?),
        None => None,
    };
    let time = |name: &str, default: i64| match query.get(name) {
        Some(v) => parse_query_time(v).ok_or_else(|| bad_param(name, v)),
        None => Ok(default),
    };
    let begin = time("query_begin_time", now - 3600)?;
    let end = time("query_end_time", now)?;
    let request_id = query.get("request_id");
    let mut matching: Vec<&Invocation> = f
        .invocations
        .iter()
        .filter(|i| i.qualifier == qualifier)
        .filter(|i| i.visible_at <= now)
        .filter(|i| i.pinned || (i.start >= begin && i.start <= end))
        .filter(|i| status.is_none_or(|s| i.status == s))
        .filter(|i| request_id.is_none_or(|r| i.request_id == *r))
        .collect();
    // Newest first, as the console shows them.
    matching.sort_by(|a, b| b.start.cmp(&a.start).then(a.request_id.cmp(&b.request_id)));
    let (items, next_marker, count) = page(matching, marker, limit);
    let invocations: Vec<Value> = items
        .iter()
        .map(|i| {
            let (start, end) = match &i.raw_times {
                Some((s, e)) => (s.clone(), e.clone()),
                None => (
                    format_query_time(i.start),
                    i.end.map(format_query_time).unwrap_or_default(),
                ),
            };
            json!({
                "request_id": i.request_id,
                "status": i.status.as_str(),
                "error_message": i.error_message,
                "error_code": i.error_code,
                "start_time": start,
                "end_time": end,
            })
        })
        .collect();
    Ok(json!({"invocations": invocations, "count": count, "next_marker": next_marker}))
}

fn function_urn(project: &str, region: &str, f: &Function, version: Option<&str>) -> String {
    let base = format!(
        "urn:fss:{region}:{project}:function:{}:{}",
        f.spec.package, f.spec.name
    );
    match version {
        Some(v) => format!("{base}:{v}"),
        None => base,
    }
}

fn versions(project: &str, region: &str, f: &Function, query: &HashMap<String, String>) -> Answer {
    let marker = number(query, "marker", 0)?;
    let maxitems = match number(query, "maxitems", 0)? {
        0 => u64::MAX,
        n => n,
    };
    let names: Vec<&str> = std::iter::once("latest")
        .chain(f.spec.versions.iter().map(String::as_str))
        .collect();
    let (items, next_marker, count) = page(names, marker, maxitems);
    let versions: Vec<Value> = items
        .iter()
        .map(|v| {
            json!({
                "func_urn": function_urn(project, region, f, Some(v)),
                "func_name": f.spec.name,
                "namespace": project,
                "package": f.spec.package,
                "runtime": f.spec.runtime,
                "handler": "index.handler",
                "memory_size": 256,
                "timeout": 30,
                "code_type": f.spec.code_type,
                "code_size": f.spec.code_size,
                "digest": f.digest,
                "version": v,
                "image_name": format!("{v}-{}", f.created),
                "last_modified": format_last_modified(f.last_modified),
                "strategy_config": {"concurrency": f.spec.max_instances},
                "type": "v2",
            })
        })
        .collect();
    Ok(json!({"versions": versions, "next_marker": next_marker, "count": count}))
}

fn code(project: &str, region: &str, f: &Function, version: &str) -> Value {
    json!({
        "func_urn": function_urn(project, region, f, Some(version)),
        "func_name": f.spec.name,
        "domain_id": "14ee2e3501124efcbca7998baa240000",
        "runtime": f.spec.runtime,
        "code_type": f.spec.code_type,
        "code_url": "",
        "code_filename": if f.spec.code_type == "jar" { "app.jar" } else { "index.zip" },
        "code_size": f.spec.code_size,
        "digest": f.digest,
        "last_modified": format_last_modified(f.last_modified),
        "func_code": {"file": "", "link": ""},
        "depend_list": [],
        "depend_version_list": [],
        "strategy_config": {"concurrency": f.spec.max_instances, "concurrent_num": 1},
        "dependencies": [],
    })
}

/// Snapshots exist for published versions of Java functions only; for
/// anything else this simulator answers 400 (the real API's answer is not
/// documented; the exporter treats 400 and 404 as "not applicable").
fn snapshot(f: &Function, version: &str, enable_action: bool) -> Answer {
    if !f.spec.runtime.starts_with("Java") || version == "latest" {
        return Err(ApiFailure(
            StatusCode::BAD_REQUEST,
            "FSS.0400",
            "snapshots are only supported for published versions of Java functions".to_owned(),
        ));
    }
    if enable_action {
        let state = if f.spec.snapshot_enabled {
            "enable"
        } else {
            "disable"
        };
        Ok(json!({"state": state, "code": ""}))
    } else {
        Ok(json!({"state": f.spec.snapshot_state, "code": ""}))
    }
}

/// Per-minute buckets over the last `period` minutes, computed from the
/// function's invocation records; −1 where a bucket had no invocations.
fn statistics(f: &Function, qualifier: &str, period: i64, now: i64) -> Value {
    let end = now - now.rem_euclid(60);
    let mut count = Vec::new();
    let mut fail = Vec::new();
    let mut duration = Vec::new();
    let mut max = Vec::new();
    let mut min = Vec::new();
    let mut reject = Vec::new();
    for i in (0..period).rev() {
        let from = end - (i + 1) * 60;
        let to = from + 60;
        let bucket: Vec<&Invocation> = f
            .invocations
            .iter()
            .filter(|inv| inv.qualifier == qualifier && inv.start >= from && inv.start < to)
            .collect();
        let ts = to * 1000;
        let point = |v: f64| json!({"timestamp": ts, "value": v});
        let ms: Vec<f64> = bucket
            .iter()
            .filter_map(|inv| inv.end.map(|e| ((e - inv.start) * 1000) as f64))
            .collect();
        if bucket.is_empty() {
            for series in [
                &mut count,
                &mut fail,
                &mut duration,
                &mut max,
                &mut min,
                &mut reject,
            ] {
                series.push(point(-1.0));
            }
            continue;
        }
        count.push(point(bucket.len() as f64));
        let failed = bucket
            .iter()
            .filter(|inv| inv.status == SimStatus::Fail)
            .count();
        fail.push(point(failed as f64));
        reject.push(point(0.0));
        if ms.is_empty() {
            for series in [&mut duration, &mut max, &mut min] {
                series.push(point(-1.0));
            }
        } else {
            duration.push(point(ms.iter().sum::<f64>() / ms.len() as f64));
            max.push(point(ms.iter().cloned().fold(f64::MIN, f64::max)));
            min.push(point(ms.iter().cloned().fold(f64::MAX, f64::min)));
        }
    }
    json!({
        "count": count,
        "duration": duration,
        "fail_count": fail,
        "max_duration": max,
        "min_duration": min,
        "reject_count": reject,
        "function_error_count": [],
        "system_error_count": [],
    })
}

/// The project's quotas, with usage computed from its functions, and any
/// extra types a test added.
fn quotas<'a>(
    functions: impl Iterator<Item = &'a Function>,
    extra: &[(String, u64, u64)],
) -> Value {
    let functions: Vec<&Function> = functions.collect();
    let code_mb: u64 = functions.iter().map(|f| f.spec.code_size).sum::<u64>() / (1024 * 1024);
    let mut resources = vec![
        json!({"quota": 400, "used": functions.len(), "type": "fgs_func_num", "unit": ""}),
        json!({"quota": 81920, "used": code_mb, "type": "fgs_func_code_size", "unit": "MB"}),
        json!({"quota": 1000, "used": 0, "type": "fgs_func_occurs", "unit": ""}),
        json!({"quota": 1000, "used": 0, "type": "fgs_on_demand_instance_limit", "unit": ""}),
    ];
    resources.extend(extra.iter().map(
        |(kind, quota, used)| json!({"quota": quota, "used": used, "type": kind, "unit": ""}),
    ));
    json!({"quotas": {"resources": resources}})
}

/// A page of async invocation records never seen before (see
/// [`Fault::EndlessRecords`]): as many as asked for, and a `next_marker`
/// that always goes on.
fn endless_records(
    world: &mut super::world::World,
    query: &HashMap<String, String>,
    request_id_len: usize,
    now: i64,
) -> Answer {
    let marker = number(query, "marker", 0)?;
    let limit = number(query, "limit", ASYNC_DEFAULT_LIMIT)?.min(ASYNC_MAX_LIMIT);
    let time = format_query_time(now);
    let invocations: Vec<Value> = (0..limit)
        .map(|_| {
            json!({
                "request_id": world.fresh_id(request_id_len),
                "status": "SUCCESS",
                "error_message": "",
                "error_code": 0,
                "start_time": time,
                "end_time": time,
            })
        })
        .collect();
    Ok(json!({"invocations": invocations, "next_marker": marker + limit.max(1)}))
}

fn list_functions<'a>(
    project: &str,
    region: &str,
    functions: impl Iterator<Item = &'a Function>,
    query: &HashMap<String, String>,
) -> Answer {
    let marker = number(query, "marker", 0)?;
    let maxitems = match query.get("maxitems") {
        None => FUNCTIONS_MAX_ITEMS,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 0 => return Err(bad_param("maxitems", v)),
            Ok(n) if n == 0 || n as u64 > FUNCTIONS_MAX_ITEMS => FUNCTIONS_MAX_ITEMS,
            Ok(n) => n as u64,
            Err(_) => return Err(bad_param("maxitems", v)),
        },
    };
    let package = query.get("package_name");
    let name = query.get("func_name");
    let matching: Vec<&Function> = functions
        .filter(|f| package.is_none_or(|p| f.spec.package == *p))
        .filter(|f| name.is_none_or(|n| f.spec.name.contains(n.as_str())))
        .collect();
    let (items, next_marker, count) = page(matching, marker, maxitems);
    let functions: Vec<Value> = items
        .iter()
        .map(|f| {
            json!({
                "func_urn": function_urn(project, region, f, None),
                "func_name": f.spec.name,
                "namespace": project,
                "package": f.spec.package,
                "runtime": f.spec.runtime,
                "code_type": f.spec.code_type,
                "code_size": f.spec.code_size,
                "digest": f.digest,
                "version": "latest",
                "last_modified": format_last_modified(f.last_modified),
                "strategy_config": {"concurrency": f.spec.max_instances},
                "type": "v2",
            })
        })
        .collect();
    Ok(json!({"functions": functions, "next_marker": next_marker, "count": count}))
}

fn json_response(status: StatusCode, v: &Value) -> HttpResponse {
    let mut r = raw(status, v.to_string());
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    r
}

fn raw(status: StatusCode, body: String) -> HttpResponse {
    let mut r = Response::new(crate::server::Chunks::from(body));
    *r.status_mut() = status;
    r
}
