//! Response bodies as the API sends them, decoded tolerantly.
//!
//! Only the fields the exporter uses are declared: a field it does not read
//! cannot break decoding, whatever its type (the snapshot API's `code` has
//! been seen as `0` where the SDK declares a string, versions' `code_size`
//! as `"245"` where it declares an integer). Every declared field is
//! optional (example bodies in the docs omit fields the schema lists),
//! `null` counts as absent, and every numeric field is accepted as a number
//! or as a string holding one (reference, section 8, gotcha 1: the SDKs and
//! the API disagree on such types). A field that is present with a value
//! that cannot be what it means (`"big"` for a size, an object for a name)
//! is an error that names the field, because a silently wrong value is
//! worse than a failed collector.

use serde::{Deserialize, Deserializer};

use crate::timefmt::parse_api_time;

use super::paginate::Page;

/// `GET .../async-invocations`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AsyncInvocationsBody {
    #[serde(deserialize_with = "null_as_default")]
    pub invocations: Vec<AsyncInvocation>,
    #[serde(deserialize_with = "lenient_marker")]
    pub next_marker: Option<u64>,
    #[serde(deserialize_with = "lenient_marker")]
    pub count: Option<u64>,
}

/// One asynchronous invocation record.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AsyncInvocation {
    pub request_id: Option<String>,
    pub status: Option<String>,
    /// `YYYY-MM-DDTHH:mm:ss`, UTC.
    pub start_time: Option<String>,
    /// Same format; empty while the invocation has not finished.
    pub end_time: Option<String>,
    /// `0` on success. A number in the reference, a string in some SDKs:
    /// read as text; anything else is taken as absent, never as an error.
    #[serde(deserialize_with = "loose_code")]
    pub error_code: Option<String>,
    /// Empty on success; anything but a string is taken as absent.
    #[serde(deserialize_with = "loose_string")]
    pub error_message: Option<String>,
}

/// `GET .../versions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VersionsBody {
    #[serde(deserialize_with = "null_as_default")]
    pub versions: Vec<VersionRecord>,
    #[serde(deserialize_with = "lenient_marker")]
    pub next_marker: Option<u64>,
    #[serde(deserialize_with = "lenient_marker")]
    pub count: Option<u64>,
}

/// One version of a function.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VersionRecord {
    pub version: Option<String>,
    pub runtime: Option<String>,
    pub code_type: Option<String>,
    #[serde(deserialize_with = "lenient_time")]
    pub last_modified: Option<i64>,
}

/// `GET .../code`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeBody {
    pub runtime: Option<String>,
    pub code_type: Option<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub code_size: Option<u64>,
    /// SHA-512 hex of the code package.
    pub digest: Option<String>,
    #[serde(deserialize_with = "lenient_time")]
    pub last_modified: Option<i64>,
    pub strategy_config: Option<StrategyConfig>,
}

/// Scaling policy of a function.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StrategyConfig {
    /// Maximum instances: −1 unlimited, 0 function disabled.
    #[serde(deserialize_with = "lenient_i64")]
    pub concurrency: Option<i64>,
}

/// `GET .../snapshots/{action}`. Its `code` ("snapshot creation response
/// code", undocumented values, seen as a number and as a string) is not
/// read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SnapshotBody {
    pub state: Option<String>,
}

/// `GET /v2/{project_id}/fgs/functions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FunctionsBody {
    #[serde(deserialize_with = "null_as_default")]
    pub functions: Vec<FunctionRecord>,
    #[serde(deserialize_with = "lenient_marker")]
    pub next_marker: Option<u64>,
    #[serde(deserialize_with = "lenient_marker")]
    pub count: Option<u64>,
}

/// One function in a list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FunctionRecord {
    pub func_urn: Option<String>,
    pub func_name: Option<String>,
    pub package: Option<String>,
}

/// `GET .../statistics/{period}`: series of `{timestamp, value}` buckets;
/// a value of −1 means "no data in that bucket".
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StatisticsBody {
    #[serde(deserialize_with = "null_as_default")]
    pub count: Vec<SlaValue>,
    /// Average duration, milliseconds.
    #[serde(deserialize_with = "null_as_default")]
    pub duration: Vec<SlaValue>,
    #[serde(deserialize_with = "null_as_default")]
    pub fail_count: Vec<SlaValue>,
    #[serde(deserialize_with = "null_as_default")]
    pub max_duration: Vec<SlaValue>,
    #[serde(deserialize_with = "null_as_default")]
    pub min_duration: Vec<SlaValue>,
    /// Throttled invocations.
    #[serde(deserialize_with = "null_as_default")]
    pub reject_count: Vec<SlaValue>,
}

/// One bucket of a statistics series.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SlaValue {
    #[serde(deserialize_with = "lenient_time")]
    pub timestamp: Option<i64>,
    #[serde(deserialize_with = "lenient_f64")]
    pub value: Option<f64>,
}

/// `GET /v2/{project_id}/fgs/quotas`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QuotasBody {
    pub quotas: Option<QuotaList>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QuotaList {
    #[serde(deserialize_with = "null_as_default")]
    pub resources: Vec<QuotaRecord>,
}

/// One resource quota.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct QuotaRecord {
    /// The limit.
    #[serde(deserialize_with = "lenient_f64")]
    pub quota: Option<f64>,
    #[serde(deserialize_with = "lenient_f64")]
    pub used: Option<f64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub unit: Option<String>,
}

impl From<AsyncInvocationsBody> for Page<AsyncInvocation> {
    fn from(b: AsyncInvocationsBody) -> Self {
        Page {
            items: b.invocations,
            next_marker: b.next_marker,
            count: b.count,
        }
    }
}

impl From<VersionsBody> for Page<VersionRecord> {
    fn from(b: VersionsBody) -> Self {
        Page {
            items: b.versions,
            next_marker: b.next_marker,
            count: b.count,
        }
    }
}

impl From<FunctionsBody> for Page<FunctionRecord> {
    fn from(b: FunctionsBody) -> Self {
        Page {
            items: b.functions,
            next_marker: b.next_marker,
            count: b.count,
        }
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
}

/// A pagination number: integer, or a string of digits. Negative, empty or
/// non-numeric values mean "absent" (which stops pagination).
fn lenient_marker<'de, D>(d: D) -> Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(
        match Option::<NumberOrString>::deserialize(d).ok().flatten() {
            Some(NumberOrString::Unsigned(n)) => Some(n),
            Some(NumberOrString::Signed(_)) => None,
            Some(NumberOrString::Float(f)) if f >= 0.0 && f.fract() == 0.0 && f < 1e18 => {
                Some(f as u64)
            }
            Some(NumberOrString::Float(_)) => None,
            Some(NumberOrString::Text(s)) => s.trim().parse().ok(),
            None => None,
        },
    )
}

/// A number the exporter reads, given as a JSON number or as a string
/// holding one (surrounding spaces ignored). `null` and an empty string are
/// absent; anything else (a non-numeric string, a boolean, an object, a
/// number out of the type's range) is an error that names the field.
trait LenientNumber: Sized {
    fn from_u64(v: u64) -> Option<Self>;
    fn from_i64(v: i64) -> Option<Self>;
    fn from_f64(v: f64) -> Option<Self>;
    fn parse(s: &str) -> Option<Self>;
}

impl LenientNumber for u64 {
    fn from_u64(v: u64) -> Option<Self> {
        Some(v)
    }
    fn from_i64(v: i64) -> Option<Self> {
        u64::try_from(v).ok()
    }
    fn from_f64(v: f64) -> Option<Self> {
        (v >= 0.0 && v.fract() == 0.0 && v < 1.8e19).then_some(v as u64)
    }
    fn parse(s: &str) -> Option<Self> {
        s.parse()
            .ok()
            .or_else(|| s.parse().ok().and_then(Self::from_f64))
    }
}

impl LenientNumber for i64 {
    fn from_u64(v: u64) -> Option<Self> {
        i64::try_from(v).ok()
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(v)
    }
    fn from_f64(v: f64) -> Option<Self> {
        (v.fract() == 0.0 && v.abs() < 9.2e18).then_some(v as i64)
    }
    fn parse(s: &str) -> Option<Self> {
        s.parse()
            .ok()
            .or_else(|| s.parse().ok().and_then(Self::from_f64))
    }
}

impl LenientNumber for f64 {
    fn from_u64(v: u64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_f64(v: f64) -> Option<Self> {
        v.is_finite().then_some(v)
    }
    fn parse(s: &str) -> Option<Self> {
        s.parse().ok().and_then(Self::from_f64)
    }
}

struct LenientVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: LenientNumber> serde::de::Visitor<'de> for LenientVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number or a numeric string")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::from_u64(v)
            .map(Some)
            .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::from_i64(v)
            .map(Some)
            .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::from_f64(v)
            .map(Some)
            .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Float(v), &self))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() {
            return Ok(None);
        }
        T::parse(t)
            .map(Some)
            .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn lenient_number<'de, D: Deserializer<'de>, T: LenientNumber>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_any(LenientVisitor(std::marker::PhantomData))
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    lenient_number(d)
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    lenient_number(d)
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    lenient_number(d)
}

/// A time given as a string in one of the API's date formats (taken as
/// written, whatever the year), or as a number of Unix seconds (or
/// milliseconds, when implausibly large for seconds: numbers only, as the
/// statistics timestamps are). Anything else, and a time outside years
/// 1 to 9999, is absent.
fn lenient_time<'de, D>(d: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    const MS_THRESHOLD: i64 = 100_000_000_000; // year 5138 in seconds
    const FIRST: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let number = |t: i64| if t > MS_THRESHOLD { t / 1000 } else { t };
    Ok(
        match Option::<NumberOrString>::deserialize(d).ok().flatten() {
            Some(NumberOrString::Text(s)) => parse_api_time(&s),
            Some(NumberOrString::Unsigned(n)) => i64::try_from(n).ok().map(number),
            Some(NumberOrString::Signed(n)) => Some(number(n)),
            Some(NumberOrString::Float(f)) if f.is_finite() && f.abs() < 9.2e18 => {
                Some(number(f as i64))
            }
            Some(NumberOrString::Float(_)) | None => None,
        }
        .filter(|t| (FIRST..=LAST).contains(t)),
    )
}

/// An error code given as a number or a string; other types are absent (a
/// field the exporter only shows must never fail a collector).
fn loose_code<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
    .filter(|s| !s.is_empty()))
}

/// A string; other types are absent.
fn loose_string<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
        let de = &mut serde_json::Deserializer::from_str(s);
        serde_path_to_error::deserialize(de).map_err(|e| e.to_string())
    }

    #[test]
    fn documented_async_example_decodes_without_count_or_marker() {
        let body: AsyncInvocationsBody = decode(
            r#"{"invocations":[{"request_id":"403f","status":"SUCCESS","error_message":"",
                "start_time":"2019-10-25T15:37:27","end_time":"2019-10-25T15:37:27","error_code":0}]}"#,
        )
        .unwrap();
        assert_eq!(body.invocations.len(), 1);
        assert_eq!(body.invocations[0].status.as_deref(), Some("SUCCESS"));
        assert_eq!(body.next_marker, None);
        assert_eq!(body.count, None);
    }

    #[test]
    fn next_marker_accepts_number_or_string() {
        for (json, expected) in [
            (r#"{"next_marker":5}"#, Some(5)),
            (r#"{"next_marker":"5"}"#, Some(5)),
            (r#"{"next_marker":5.0}"#, Some(5)),
            (r#"{"next_marker":null}"#, None),
            (r#"{"next_marker":-1}"#, None),
            (r#"{"next_marker":""}"#, None),
            (r#"{"next_marker":true}"#, None),
            (r#"{}"#, None),
        ] {
            let body: VersionsBody = decode(json).unwrap();
            assert_eq!(body.next_marker, expected, "{json}");
        }
    }

    #[test]
    fn unknown_fields_and_nulls_are_ignored() {
        let body: CodeBody = decode(
            r#"{"code_size":245,"digest":"ab","new_field":{"x":[1,2]},"runtime":null,
                "last_modified":"2019-10-31 11:37:58","strategy_config":{"concurrency":-1}}"#,
        )
        .unwrap();
        assert_eq!(body.code_size, Some(245));
        assert_eq!(body.runtime, None);
        assert_eq!(body.last_modified, Some(1_572_521_878));
        assert_eq!(body.strategy_config.unwrap().concurrency, Some(-1));
        let body: VersionsBody = decode(r#"{"versions":null}"#).unwrap();
        assert!(body.versions.is_empty());
    }

    #[test]
    fn last_modified_accepts_epoch_seconds_and_milliseconds() {
        let body: CodeBody = decode(r#"{"last_modified":1660029887}"#).unwrap();
        assert_eq!(body.last_modified, Some(1_660_029_887));
        let body: CodeBody = decode(r#"{"last_modified":1660029887000}"#).unwrap();
        assert_eq!(body.last_modified, Some(1_660_029_887));
        let body: CodeBody = decode(r#"{"last_modified":"not a time"}"#).unwrap();
        assert_eq!(body.last_modified, None);
    }

    #[test]
    fn dates_after_5138_are_dates_not_milliseconds() {
        let body: CodeBody = decode(r#"{"last_modified":"9999-12-31 23:59:59"}"#).unwrap();
        assert_eq!(body.last_modified, Some(253_402_300_799));
        let body: CodeBody = decode(r#"{"last_modified":"6000-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(body.last_modified, Some(127_174_492_800));
        // Out of the representable range, or not a documented format: absent.
        for bad in [
            r#"{"last_modified":99999999999999999}"#,
            r#"{"last_modified":-99999999999999}"#,
            r#"{"last_modified":"31/12/2026"}"#,
            r#"{"last_modified":1e300}"#,
        ] {
            assert_eq!(
                decode::<CodeBody>(bad).unwrap().last_modified,
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn statistics_and_quotas_decode() {
        let body: StatisticsBody = decode(
            r#"{"count":[{"timestamp":1596679200000,"value":3},{"timestamp":1596682800000,"value":-1}],
                "duration":null,"max_duration":[{"timestamp":"1596679200000","value":12.5}]}"#,
        )
        .unwrap();
        assert_eq!(body.count.len(), 2);
        assert_eq!(body.count[0].timestamp, Some(1_596_679_200));
        assert_eq!(body.count[1].value, Some(-1.0));
        assert!(body.duration.is_empty());
        assert_eq!(body.max_duration[0].value, Some(12.5));
        let q: QuotasBody = decode(
            r#"{"quotas":{"resources":[{"quota":400,"used":12,"type":"fgs_func_num","unit":""}]}}"#,
        )
        .unwrap();
        let r = &q.quotas.unwrap().resources[0];
        assert_eq!(
            (r.quota, r.used, r.kind.as_deref()),
            (Some(400.0), Some(12.0), Some("fgs_func_num"))
        );
    }

    #[test]
    fn fields_the_exporter_does_not_read_never_fail_decoding() {
        // Seen against an API stand-in written apart from this project:
        // snapshot `code` as a number, versions' `code_size` as a string.
        let body: SnapshotBody = decode(r#"{"state":"enable","code":0}"#).unwrap();
        assert_eq!(body.state.as_deref(), Some("enable"));
        let body: VersionsBody = decode(
            r#"{"versions":[{"version":"v1","code_size":"245","memory_size":{"odd":true},
                "func_name":7,"strategy_config":"n/a"}],"count":"1"}"#,
        )
        .unwrap();
        assert_eq!(body.versions[0].version.as_deref(), Some("v1"));
        assert_eq!(body.count, Some(1));
        let body: CodeBody =
            decode(r#"{"func_name":12,"digest":"ab","depend_list":{},"func_code":"x"}"#).unwrap();
        assert_eq!(body.digest.as_deref(), Some("ab"));
        let body: FunctionsBody =
            decode(r#"{"functions":[{"func_name":"f","runtime":3,"timeout":"30"}]}"#).unwrap();
        assert_eq!(body.functions[0].func_name.as_deref(), Some("f"));
        let body: AsyncInvocationsBody = decode(
            r#"{"invocations":[{"status":"FAIL","error_code":"500","error_message":{"x":1}}]}"#,
        )
        .unwrap();
        assert_eq!(body.invocations[0].status.as_deref(), Some("FAIL"));
    }

    #[test]
    fn numeric_fields_accept_numbers_or_numeric_strings() {
        let body: CodeBody =
            decode(r#"{"code_size":"245","strategy_config":{"concurrency":"-1"}}"#).unwrap();
        assert_eq!(body.code_size, Some(245));
        assert_eq!(body.strategy_config.unwrap().concurrency, Some(-1));
        let body: CodeBody =
            decode(r#"{"code_size":" 245 ","strategy_config":{"concurrency":400.0}}"#).unwrap();
        assert_eq!(body.code_size, Some(245));
        assert_eq!(body.strategy_config.unwrap().concurrency, Some(400));
        let body: CodeBody =
            decode(r#"{"code_size":"","strategy_config":{"concurrency":null}}"#).unwrap();
        assert_eq!(body.code_size, None);
        assert_eq!(body.strategy_config.unwrap().concurrency, None);
        let body: StatisticsBody = decode(
            r#"{"count":[{"timestamp":"1596679200000","value":"3"},{"value":"-1"},{"value":2.5}]}"#,
        )
        .unwrap();
        let values: Vec<Option<f64>> = body.count.iter().map(|p| p.value).collect();
        assert_eq!(values, vec![Some(3.0), Some(-1.0), Some(2.5)]);
        let q: QuotasBody = decode(
            r#"{"quotas":{"resources":[{"quota":"400","used":"12","type":"fgs_func_num"}]}}"#,
        )
        .unwrap();
        let r = &q.quotas.unwrap().resources[0];
        assert_eq!((r.quota, r.used), (Some(400.0), Some(12.0)));
    }

    #[test]
    fn a_field_of_the_wrong_type_is_an_error_naming_it() {
        let err = decode::<CodeBody>(r#"{"code_size":"big"}"#).unwrap_err();
        assert!(err.starts_with("code_size: invalid value"), "{err}");
        assert!(
            err.contains("expected a number or a numeric string"),
            "{err}"
        );
        let err = decode::<CodeBody>(r#"{"code_size":-5}"#).unwrap_err();
        assert!(err.starts_with("code_size: invalid value"), "{err}");
        let err = decode::<CodeBody>(r#"{"code_size":true}"#).unwrap_err();
        assert!(err.starts_with("code_size: invalid type"), "{err}");
        let err = decode::<StatisticsBody>(r#"{"count":[{"value":"NaN"}]}"#).unwrap_err();
        assert!(err.starts_with("count[0].value: invalid value"), "{err}");
        let err =
            decode::<AsyncInvocationsBody>(r#"{"invocations":[{"status":"WAIT"},{"status":7}]}"#)
                .unwrap_err();
        assert!(
            err.starts_with("invocations[1].status: invalid type"),
            "{err}"
        );
    }
}
