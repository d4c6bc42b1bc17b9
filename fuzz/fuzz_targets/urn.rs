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

mod common;

use common::round_trips;
use functiongraph_exporter::urn::FunctionUrn;
use libfuzzer_sys::fuzz_target;

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
