//! What the answers of the per-function APIs become: versions (paged,
//! within the caps), snapshot state (two actions, with "not applicable"
//! told from a failure) and statistics (series folded into one value
//! each).

use crate::api::model::{SlaValue, SnapshotBody, StatisticsBody, VersionRecord};
use crate::api::{ApiError, Client, SnapshotAction, paginate};
use crate::caps::{Cap, Caps};
use crate::state::{SNAPSHOT_STATES, SnapshotInfo, Statistics, VersionInfo};
use crate::urn::{FunctionUrn, LATEST};

/// Versions per page: a function has at most 20 including `latest`.
const VERSIONS_PAGE: u32 = 20;
/// Pages of versions before giving up.
const VERSIONS_MAX_PAGES: usize = 50;

/// Sums a statistics series over its buckets that have data (−1 is "no
/// data", never a value).
fn sum(series: &[SlaValue]) -> Option<f64> {
    let values: Vec<f64> = series
        .iter()
        .filter_map(|p| p.value)
        .filter(|v| *v >= 0.0)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The statistics of the look-back period, durations in seconds.
pub(super) fn statistics_of(body: StatisticsBody) -> Statistics {
    let ms = |v: f64| v / 1000.0;
    let with_data = |series: &[SlaValue]| -> Vec<(Option<i64>, f64)> {
        series
            .iter()
            .filter_map(|p| p.value.filter(|v| *v >= 0.0).map(|v| (p.timestamp, v)))
            .collect()
    };
    // Average duration weighted by each bucket's invocations.
    let counts = with_data(&body.count);
    let averages = with_data(&body.duration);
    let (mut weighted, mut weight) = (0.0, 0.0);
    for (ts, avg) in &averages {
        let n = counts
            .iter()
            .find(|(t, _)| t == ts)
            .map_or(1.0, |(_, n)| n.max(1.0));
        weighted += avg * n;
        weight += n;
    }
    let max = with_data(&body.max_duration)
        .into_iter()
        .map(|(_, v)| v)
        .reduce(f64::max);
    let min = with_data(&body.min_duration)
        .into_iter()
        .map(|(_, v)| v)
        .reduce(f64::min);
    Statistics {
        invocations: sum(&body.count),
        errors: sum(&body.fail_count),
        throttles: sum(&body.reject_count),
        duration_average: (weight > 0.0).then(|| ms(weighted / weight)),
        duration_max: max.map(ms),
        duration_min: min.map(ms),
    }
}

/// Every version of a function, within the caps: a version whose name is
/// longer than the label cap is dropped, its runtime and code type are cut
/// to it, and beyond `max_versions` the oldest are dropped (`latest` is
/// always kept). What the caps drop or cut is counted.
pub(super) async fn poll_versions(
    client: &Client,
    urn: &FunctionUrn,
    caps: Caps,
) -> Result<Vec<VersionInfo>, ApiError> {
    let paged = paginate(0, VERSIONS_MAX_PAGES, |marker| {
        client.versions(urn, marker, VERSIONS_PAGE)
    })
    .await?;
    let (mut long, mut cut) = (0u64, 0u64);
    let mut versions: Vec<VersionInfo> = paged
        .items
        .into_iter()
        .filter_map(|v: VersionRecord| {
            let version = v.version.filter(|s| !s.is_empty())?;
            if caps.too_long(&version) {
                long += 1;
                return None;
            }
            Some(VersionInfo {
                version,
                runtime: caps.label(v.runtime.unwrap_or_default(), &mut cut),
                code_type: caps.label(v.code_type.unwrap_or_default(), &mut cut),
                last_modified: v.last_modified,
            })
        })
        .collect();
    versions.sort_by(|a, b| a.version.cmp(&b.version));
    versions.dedup_by(|a, b| a.version == b.version);
    let extra = versions.len().saturating_sub(caps.max_versions);
    if extra > 0 {
        // Keep `latest` and the most recently modified.
        versions.sort_by(|a, b| {
            (b.version == LATEST)
                .cmp(&(a.version == LATEST))
                .then(b.last_modified.cmp(&a.last_modified))
                .then(a.version.cmp(&b.version))
        });
        versions.truncate(caps.max_versions);
        versions.sort_by(|a, b| a.version.cmp(&b.version));
    }
    let subject = urn.to_string();
    client.capped(Cap::LabelLength, long + cut, &subject);
    client.capped(Cap::Versions, extra as u64, &subject);
    Ok(versions)
}

/// Snapshots exist only for published versions of Java functions. For
/// other functions the API answers with a client error; the reference
/// (section 3.2) documents 400 and 404 (`FSS.1051`) for this endpoint and
/// says to expect "a 4xx or a disable-type answer". So a 400 or 404 from
/// `snapshots/state` means "not applicable": the collector succeeds and
/// exports no snapshot series. (A function that really is gone fails the
/// code and versions collectors, which is what marks it down.) When the
/// state is readable, `enableSnapshot` is asked too.
///
/// The second value says whether the answer was a not-found code (a 404
/// with `FSS.1051` is the documented answer for a function that does not
/// exist, and may be how some regions say "not applicable"): the poll counts
/// it as a sign that the function is gone, not as proof that it exists.
pub(super) async fn poll_snapshot(
    client: &Client,
    urn: &FunctionUrn,
) -> Result<(SnapshotInfo, bool), ApiError> {
    let state = match client.snapshot(urn, SnapshotAction::State).await {
        Ok(body) => body,
        Err(e) if not_applicable(&e) => return Ok((SnapshotInfo::NotApplicable, e.is_gone())),
        Err(e) => return Err(e),
    };
    let enabled = match client.snapshot(urn, SnapshotAction::EnableSnapshot).await {
        Ok(body) => parse_enabled(&body),
        Err(e) if not_applicable(&e) => None,
        Err(e) => return Err(e),
    };
    Ok((
        SnapshotInfo::Known {
            state: parse_state(&state),
            enabled,
        },
        false,
    ))
}

fn not_applicable(e: &ApiError) -> bool {
    matches!(e.status(), Some(400 | 404))
}

fn parse_state(body: &SnapshotBody) -> Option<usize> {
    let state = body.state.as_deref()?.trim().to_ascii_lowercase();
    SNAPSHOT_STATES.iter().position(|s| *s == state)
}

/// The `enableSnapshot` answer's format is not documented; read the likely
/// spellings of on and off, and anything else as unknown.
fn parse_enabled(body: &SnapshotBody) -> Option<bool> {
    let v = body.state.as_deref()?.trim().to_ascii_lowercase();
    match v.as_str() {
        "enable" | "enabled" | "true" | "on" | "1" | "yes" => Some(true),
        "disable" | "disabled" | "false" | "off" | "0" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiErrorKind;
    use crate::api::Endpoint;

    fn body(state: Option<&str>) -> SnapshotBody {
        SnapshotBody {
            state: state.map(str::to_owned),
        }
    }

    #[test]
    fn snapshot_states_map_to_the_known_set_or_unknown() {
        assert_eq!(parse_state(&body(Some("enable"))), Some(0));
        assert_eq!(parse_state(&body(Some("CIRCUIT_BREAKING"))), Some(5));
        assert_eq!(parse_state(&body(Some("melting"))), None);
        assert_eq!(parse_state(&body(None)), None);
        assert_eq!(parse_enabled(&body(Some("true"))), Some(true));
        assert_eq!(parse_enabled(&body(Some("disable"))), Some(false));
        assert_eq!(parse_enabled(&body(Some("maybe"))), None);
    }

    #[test]
    fn statistics_skip_no_data_buckets() {
        let point = |t: i64, v: f64| SlaValue {
            timestamp: Some(t),
            value: Some(v),
        };
        let body = StatisticsBody {
            count: vec![point(1, 3.0), point(2, -1.0), point(3, 1.0)],
            duration: vec![point(1, 100.0), point(2, -1.0), point(3, 500.0)],
            fail_count: vec![point(1, -1.0)],
            max_duration: vec![point(1, 300.0), point(3, 500.0)],
            min_duration: vec![point(1, 10.0), point(3, 500.0)],
            reject_count: vec![],
        };
        let s = statistics_of(body);
        assert_eq!(s.invocations, Some(4.0));
        assert_eq!(s.errors, None, "only -1: no data, not 0 and not -1");
        assert_eq!(s.throttles, None);
        assert_eq!(s.duration_average, Some(0.2)); // (100*3 + 500*1) / 4 ms
        assert_eq!(s.duration_max, Some(0.5));
        assert_eq!(s.duration_min, Some(0.01));
    }

    #[test]
    fn only_400_and_404_mean_not_applicable() {
        let status = |s| {
            ApiError::new(
                Endpoint::SnapshotState,
                ApiErrorKind::Status {
                    status: s,
                    code: None,
                    message: String::new(),
                },
            )
        };
        assert!(not_applicable(&status(400)));
        assert!(not_applicable(&status(404)));
        assert!(!not_applicable(&status(401)));
        assert!(!not_applicable(&status(500)));
        assert!(!not_applicable(&ApiError::new(
            Endpoint::SnapshotState,
            ApiErrorKind::Decode("x".into())
        )));
    }
}
