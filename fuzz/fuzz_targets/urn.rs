//! Function URNs: `FunctionUrn::parse_full` on the whole input, and, with
//! the input split into lines, `FunctionUrn::parse_in(reference, region,
//! project)` (3 lines) and `FunctionUrn::new(region, project, package,
//! name, qualifier)` (5 lines; discovery builds URNs this way from API
//! records).
//!
//! Invariants:
//! - no panic;
//! - a URN that was accepted re-parses from its `Display` form (the full
//!   qualified URN, as the API returns it) to the same value, both with
//!   `parse_full` and with `parse_in` under its own region and project;
//! - its path segment is unreserved characters and `%XX` only, and decodes
//!   back to the `Display` form.

#![no_main]

use functiongraph_exporter::urn::FunctionUrn;
use libfuzzer_sys::fuzz_target;

fn round_trips(urn: &FunctionUrn) {
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

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(urn) = FunctionUrn::parse_full(text) {
        round_trips(&urn);
    }
    let lines: Vec<&str> = text.split('\n').collect();
    match lines.as_slice() {
        [region, project, reference] => {
            if let Ok(urn) = FunctionUrn::parse_in(reference, region, project) {
                assert_eq!(urn.region(), *region);
                assert_eq!(urn.project_id(), *project);
                round_trips(&urn);
            }
        }
        [region, project, package, name, qualifier] => {
            if let Ok(urn) = FunctionUrn::new(region, project, package, name, qualifier) {
                assert_eq!(
                    (urn.package(), urn.name(), urn.qualifier()),
                    (*package, *name, *qualifier)
                );
                round_trips(&urn);
            }
        }
        _ => {}
    }
});
