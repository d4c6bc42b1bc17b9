//! What the fuzz targets share: the invariants every accepted function URN
//! keeps (the `urn` target checks them on URNs it parses, `config` on the
//! URNs of every configuration that validates).

use functiongraph_exporter::urn::FunctionUrn;

/// Asserts the invariants of an accepted URN: it re-parses from its
/// `Display` form (the full qualified URN, as the API returns it) to the
/// same value, with `parse_full` and with `parse_in` under its own region
/// and project; its path segment is unreserved characters and `%XX` only,
/// and decodes back to the `Display` form.
pub fn round_trips(urn: &FunctionUrn) {
    let shown = urn.to_string();
    let back = FunctionUrn::parse_full(&shown)
        .unwrap_or_else(|e| panic!("{shown:?} does not re-parse: {e}"));
    assert_eq!(&back, urn, "{shown:?}");
    let back = FunctionUrn::parse_in(&shown, urn.region(), urn.project_id())
        .unwrap_or_else(|e| panic!("{shown:?} does not re-parse in its project: {e}"));
    assert_eq!(&back, urn, "{shown:?}");
    assert_eq!(urn.is_alias(), urn.qualifier().starts_with('!'));

    let segment = urn.path_segment();
    assert!(
        segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)),
        "{segment}"
    );
    assert_eq!(decode_percent(&segment), shown);
}

/// Strict `%XX` decoding (no dependency on the library's decoder).
fn decode_percent(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits after %"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}
