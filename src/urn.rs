//! Function URNs: parsing the full and short forms users write, and
//! encoding them for a request path.
//!
//! A FunctionGraph URN is
//! `urn:fss:<region>:<project_id>:function:<package>:<name>[:<version>|:!<alias>]`.
//! Wherever the API takes a URN as a path parameter it also accepts short
//! forms (reference, section 2.1): `name`, `package:name`,
//! `project:package:name` and `project:package:name:qualifier`. The exporter
//! always expands them to the full, qualified form before it sends anything,
//! so that a URN means the same thing in the request, the logs and the
//! labels.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The RFC 3986 "unreserved" set kept literal by the gateway's canonical
/// form: everything else is `%XX`-encoded with upper-case hex.
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `s` the way the API gateway canonicalises path segments
/// and query components (`:` → `%3A`, `!` → `%21`, space → `%20`).
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// The qualifier used when a URN names none.
pub const LATEST: &str = "latest";

/// A fully qualified function URN.
///
/// Shared, not copied: every report of a function carries its URN, and
/// the renderer compares the URNs of successive reports, so a clone is a
/// reference count and two clones of one URN compare equal without
/// comparing their text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FunctionUrn(Arc<Parts>);

/// The fields of a [`FunctionUrn`], ordered as its text is.
#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Parts {
    region: String,
    project_id: String,
    package: String,
    name: String,
    /// A version name (`latest`, `v1`) or an alias with its `!` prefix.
    qualifier: String,
    /// [`FunctionUrn::spread_key`], a function of the fields above (so
    /// last, and never deciding an order or an equality by itself).
    spread_key: u64,
}

impl Ord for FunctionUrn {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for FunctionUrn {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Why a URN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrnError {
    #[error("empty function reference")]
    Empty,
    #[error("expected 1 to 4, 7 or 8 colon-separated fields, found {0}")]
    FieldCount(usize),
    #[error("a full URN must start with \"urn:fss:\"")]
    Prefix,
    #[error("field 5 of a full URN must be \"function\", found {0:?}")]
    Kind(String),
    #[error("the {field} is empty")]
    EmptyField { field: &'static str },
    #[error(
        "the {field} {value:?} contains a character that is not allowed (whitespace, control, ':', '/', '?', '#' or '%')"
    )]
    BadChar { field: &'static str, value: String },
    #[error("the URN names project {found}, but it is listed under project {expected}")]
    ProjectMismatch { expected: String, found: String },
    #[error("the URN names region {found}, but it is listed under region {expected}")]
    RegionMismatch { expected: String, found: String },
}

impl FunctionUrn {
    /// Builds a URN from its parts, checking each one.
    pub fn new(
        region: &str,
        project_id: &str,
        package: &str,
        name: &str,
        qualifier: &str,
    ) -> Result<Self, UrnError> {
        check("region", region)?;
        check("project id", project_id)?;
        check("package", package)?;
        check("function name", name)?;
        check("qualifier", qualifier)?;
        if qualifier == "!" {
            return Err(UrnError::EmptyField {
                field: "alias name",
            });
        }
        let text = [
            "urn:fss:",
            region,
            ":",
            project_id,
            ":function:",
            package,
            ":",
            name,
            ":",
            qualifier,
        ];
        Ok(Self(Arc::new(Parts {
            region: region.to_owned(),
            project_id: project_id.to_owned(),
            package: package.to_owned(),
            name: name.to_owned(),
            qualifier: qualifier.to_owned(),
            spread_key: fnv1a(text.iter().flat_map(|part| part.bytes())),
        })))
    }

    /// Parses a function reference as the API accepts it in a path, in the
    /// context of the project it is configured under, and expands it to the
    /// full qualified form. A URN that names another project or region is
    /// refused rather than silently polled with the wrong credentials.
    pub fn parse_in(s: &str, region: &str, project_id: &str) -> Result<Self, UrnError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(UrnError::Empty);
        }
        let fields: Vec<&str> = s.split(':').collect();
        let (urn_region, urn_project, package, name, qualifier) = match fields.as_slice() {
            [name] => (region, project_id, "default", *name, LATEST),
            [package, name] => (region, project_id, *package, *name, LATEST),
            [project, package, name] => (region, *project, *package, *name, LATEST),
            [project, package, name, qualifier] => (region, *project, *package, *name, *qualifier),
            [urn, fss, r, p, kind, package, name, rest @ ..] if rest.len() <= 1 => {
                if *urn != "urn" || *fss != "fss" {
                    return Err(UrnError::Prefix);
                }
                if *kind != "function" {
                    return Err(UrnError::Kind((*kind).to_owned()));
                }
                let qualifier = rest.first().copied().unwrap_or(LATEST);
                (*r, *p, *package, *name, qualifier)
            }
            other => return Err(UrnError::FieldCount(other.len())),
        };
        if urn_project != project_id {
            return Err(UrnError::ProjectMismatch {
                expected: project_id.to_owned(),
                found: urn_project.to_owned(),
            });
        }
        if urn_region != region {
            return Err(UrnError::RegionMismatch {
                expected: region.to_owned(),
                found: urn_region.to_owned(),
            });
        }
        Self::new(region, project_id, package, name, qualifier)
    }

    /// Parses a URN as the API returns it (7 or 8 fields), without a project
    /// context. An unqualified URN means `latest`.
    pub fn parse_full(s: &str) -> Result<Self, UrnError> {
        let fields: Vec<&str> = s.split(':').collect();
        if fields.len() != 7 && fields.len() != 8 {
            return Err(UrnError::FieldCount(fields.len()));
        }
        Self::parse_in(s, fields[2], fields[3])
    }

    pub fn region(&self) -> &str {
        &self.0.region
    }

    pub fn project_id(&self) -> &str {
        &self.0.project_id
    }

    pub fn package(&self) -> &str {
        &self.0.package
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The version name or `!alias`.
    pub fn qualifier(&self) -> &str {
        &self.0.qualifier
    }

    /// A stable 64-bit hash of the full URN (FNV-1a over its text): the
    /// poller derives each function's place in a cycle from it, and the
    /// renderer lays series out in the same order, so that the functions
    /// polled between two scrapes sit next to each other. Computed once,
    /// when the URN is made.
    pub fn spread_key(&self) -> u64 {
        self.0.spread_key
    }

    /// True when the qualifier names an alias rather than a version.
    pub fn is_alias(&self) -> bool {
        self.0.qualifier.starts_with('!')
    }

    /// The URN as one percent-encoded path segment: identical on the wire
    /// and in the AK/SK canonical URI.
    pub fn path_segment(&self) -> String {
        encode_component(&self.to_string())
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn check(field: &'static str, value: &str) -> Result<(), UrnError> {
    if value.is_empty() {
        return Err(UrnError::EmptyField { field });
    }
    // ':' separates the fields: a part containing one would make a URN
    // that does not parse back to itself.
    if value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ':' | '/' | '?' | '#' | '%'))
    {
        return Err(UrnError::BadChar {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

impl fmt::Display for FunctionUrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "urn:fss:{}:{}:function:{}:{}:{}",
            self.0.region, self.0.project_id, self.0.package, self.0.name, self.0.qualifier
        )
    }
}

impl fmt::Debug for FunctionUrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FunctionUrn({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "0123456789abcdef0123456789abcdef";
    const R: &str = "ap-southeast-1";

    fn full(q: &str) -> String {
        format!("urn:fss:{R}:{P}:function:default:my-func:{q}")
    }

    #[test]
    fn short_forms_expand_to_the_full_qualified_urn() {
        let expected = full("latest");
        for s in [
            "my-func".to_owned(),
            "default:my-func".to_owned(),
            format!("{P}:default:my-func"),
            format!("{P}:default:my-func:latest"),
            format!("urn:fss:{R}:{P}:function:default:my-func"),
            full("latest"),
        ] {
            let urn = FunctionUrn::parse_in(&s, R, P).unwrap();
            assert_eq!(urn.to_string(), expected, "from {s}");
        }
    }

    #[test]
    fn qualifiers_and_aliases_are_kept() {
        let urn = FunctionUrn::parse_in(&format!("{P}:etl:job:!prod"), R, P).unwrap();
        assert_eq!(urn.package(), "etl");
        assert_eq!(urn.name(), "job");
        assert_eq!(urn.qualifier(), "!prod");
        assert!(urn.is_alias());
        let urn = FunctionUrn::parse_in(&full("v20240102-030405"), R, P).unwrap();
        assert_eq!(urn.qualifier(), "v20240102-030405");
        assert!(!urn.is_alias());
    }

    #[test]
    fn path_segment_encodes_colon_and_bang() {
        let urn = FunctionUrn::parse_in(&full("!prod"), R, P).unwrap();
        assert_eq!(
            urn.path_segment(),
            format!("urn%3Afss%3A{R}%3A{P}%3Afunction%3Adefault%3Amy-func%3A%21prod")
        );
    }

    #[test]
    fn encode_component_matches_the_gateway_canonical_form() {
        // Vector E of the reference: space, '*', '~' and '/'.
        assert_eq!(encode_component("demo fn*1~/x"), "demo%20fn%2A1~%2Fx");
        assert_eq!(
            encode_component("2024-01-02T02:00:00"),
            "2024-01-02T02%3A00%3A00"
        );
        assert_eq!(encode_component("é"), "%C3%A9");
    }

    #[test]
    fn bad_references_are_refused_with_a_reason() {
        let cases: &[(&str, UrnError)] = &[
            ("", UrnError::Empty),
            ("a:b:c:d:e", UrnError::FieldCount(5)),
            ("a:b:c:d:e:f:g:h:i", UrnError::FieldCount(9)),
            (
                "urn:xyz:ap-southeast-1:p:function:default:f",
                UrnError::Prefix,
            ),
            (
                "default:",
                UrnError::EmptyField {
                    field: "function name",
                },
            ),
            (
                "default:my func",
                UrnError::BadChar {
                    field: "function name",
                    value: "my func".into(),
                },
            ),
        ];
        for (input, err) in cases {
            assert_eq!(
                FunctionUrn::parse_in(input, R, P).unwrap_err(),
                *err,
                "{input:?}"
            );
        }
        let other = "ffffffffffffffffffffffffffffffff";
        assert_eq!(
            FunctionUrn::parse_in(&format!("{other}:default:f"), R, P).unwrap_err(),
            UrnError::ProjectMismatch {
                expected: P.into(),
                found: other.into()
            }
        );
        assert_eq!(
            FunctionUrn::parse_in(&format!("urn:fss:cn-north-4:{P}:function:default:f"), R, P)
                .unwrap_err(),
            UrnError::RegionMismatch {
                expected: R.into(),
                found: "cn-north-4".into()
            }
        );
        assert_eq!(
            FunctionUrn::parse_in(&format!("{P}:default:f:!"), R, P).unwrap_err(),
            UrnError::EmptyField {
                field: "alias name"
            }
        );
    }

    #[test]
    fn no_part_may_contain_a_colon() {
        // Found by the urn fuzz target: region ":" (and any part with a ':',
        // e.g. a function name from a discovery record) made a URN whose
        // Display form has extra fields and does not parse back.
        assert_eq!(
            FunctionUrn::parse_in("2", ":", "2").unwrap_err(),
            UrnError::BadChar {
                field: "region",
                value: ":".into()
            }
        );
        assert_eq!(
            FunctionUrn::new(R, P, "default", "a:b", LATEST).unwrap_err(),
            UrnError::BadChar {
                field: "function name",
                value: "a:b".into()
            }
        );
        assert!(FunctionUrn::new(R, P, "pkg:x", "f", LATEST).is_err());
        assert!(FunctionUrn::new(R, &format!("{P}:x"), "default", "f", LATEST).is_err());
        let urn = FunctionUrn::new(R, P, "default", "f", "!prod").unwrap();
        assert_eq!(FunctionUrn::parse_full(&urn.to_string()).unwrap(), urn);
    }

    #[test]
    fn the_spread_key_is_fnv1a_over_the_text_and_clones_compare_equal() {
        let urn = FunctionUrn::parse_in("p1:default:hello:!prod", "cn-north-4", "p1").unwrap();
        assert_eq!(urn.spread_key(), fnv1a(urn.to_string().bytes()));
        // FNV-1a's published vector for "a".
        assert_eq!(fnv1a("a".bytes()), 0xaf63_dc4c_8601_ec8c);
        let same = FunctionUrn::parse_full(&urn.to_string()).unwrap();
        assert_eq!(same.cmp(&urn), Ordering::Equal);
        assert_eq!(same, urn.clone());
        let other = FunctionUrn::parse_in("p1:default:hello:!prof", "cn-north-4", "p1").unwrap();
        assert!(urn < other);
        assert_ne!(urn.spread_key(), other.spread_key());
    }

    #[test]
    fn parse_full_reads_api_urns() {
        let urn =
            FunctionUrn::parse_full(&format!("urn:fss:{R}:{P}:function:default:my-func")).unwrap();
        assert_eq!(urn.qualifier(), "latest");
        assert_eq!(urn.region(), R);
        assert!(FunctionUrn::parse_full("default:my-func").is_err());
    }
}
