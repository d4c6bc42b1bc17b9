//! The API's time formats, read tolerantly and written exactly.
//!
//! FunctionGraph mixes formats (reference, section 8, gotcha 5): async
//! records use `2019-10-25T15:37:27` (UTC, no zone), `last_modified` uses
//! `2019-10-25 15:37:27`, other places carry an RFC 3339 offset. Like the
//! official SDK, a string without a zone is taken as UTC, and anything that
//! does not parse is reported as absent rather than as an error.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Parses an API time string into Unix seconds (fractions dropped).
/// Returns `None` for empty or unparsable input.
pub fn parse_api_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let with_t = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let with_t_frac =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    let with_space = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let with_space_frac =
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");
    [with_t, with_t_frac, with_space, with_space_frac]
        .iter()
        .find_map(|f| PrimitiveDateTime::parse(s, f).ok())
        .map(|t| t.assume_offset(UtcOffset::UTC).unix_timestamp())
}

/// Formats Unix seconds as a query time: UTC, `YYYY-MM-DDTHH:MM:SS`, no
/// zone suffix and no fraction, as the API documents.
pub fn format_query_time(unix_seconds: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

/// Formats Unix seconds the way the code and versions APIs show
/// `last_modified` (`YYYY-MM-DD HH:MM:SS`, UTC).
pub fn format_last_modified(unix_seconds: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

/// Parses a query time exactly as [`format_query_time`] writes it.
pub fn parse_query_time(s: &str) -> Option<i64> {
    PrimitiveDateTime::parse(
        s,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .ok()
    .map(|t| t.assume_offset(UtcOffset::UTC).unix_timestamp())
}

/// The current time in Unix seconds.
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_documented_format() {
        let t = 1_572_521_878; // 2019-10-31 11:37:58 UTC
        assert_eq!(parse_api_time("2019-10-31 11:37:58"), Some(t));
        assert_eq!(parse_api_time("2019-10-31T11:37:58"), Some(t));
        assert_eq!(parse_api_time("2019-10-31T11:37:58Z"), Some(t));
        assert_eq!(parse_api_time("2019-10-31T19:37:58+08:00"), Some(t));
        assert_eq!(parse_api_time("2019-10-31T11:37:58.855000Z"), Some(t));
        assert_eq!(parse_api_time("2019-10-31 11:37:58.5"), Some(t));
    }

    #[test]
    fn garbage_is_absent_not_an_error() {
        assert_eq!(parse_api_time(""), None);
        assert_eq!(parse_api_time("  "), None);
        assert_eq!(parse_api_time("yesterday"), None);
        assert_eq!(parse_api_time("2019-13-45 99:99:99"), None);
    }

    #[test]
    fn query_times_round_trip_without_zone_or_fraction() {
        let s = format_query_time(1_704_160_800);
        assert_eq!(s, "2024-01-02T02:00:00");
        assert_eq!(parse_query_time(&s), Some(1_704_160_800));
        assert_eq!(format_last_modified(1_572_521_878), "2019-10-31 11:37:58");
        assert_eq!(parse_query_time("2024-01-02 02:00:00"), None);
    }
}
