//! Function discovery: which functions a project has, from the list
//! functions API, filtered by package, by include/exclude patterns on the
//! name, and by shard.
//!
//! A listing that fails changes nothing: functions are only ever removed
//! after the API confirmed, for that one function, that it is gone.

use std::collections::BTreeSet;

use crate::api::model::FunctionRecord;
use crate::api::{ApiError, Client, paginate};
use crate::config::DiscoveryConfig;
use crate::urn::{FunctionUrn, LATEST};

use super::shard::Shard;

/// The API's largest page of functions.
const PAGE: u32 = 400;
/// Pages per listing before giving up (40,000 functions).
const MAX_PAGES: usize = 100;

/// Lists a project's functions that pass the filters and belong to `shard`,
/// as `latest` URNs.
pub async fn discover(
    client: &Client,
    region: &str,
    config: &DiscoveryConfig,
    shard: Shard,
) -> Result<BTreeSet<FunctionUrn>, ApiError> {
    let packages: Vec<Option<&str>> = if config.packages.is_empty() {
        vec![None]
    } else {
        config.packages.iter().map(|p| Some(p.as_str())).collect()
    };
    let mut found = BTreeSet::new();
    for package in packages {
        let paged = paginate(0, MAX_PAGES, |marker| {
            client.functions(marker, PAGE, package, None)
        })
        .await?;
        if paged.truncated {
            tracing::warn!(
                project_id = client.project_id(),
                pages = paged.pages,
                "function listing stopped at the page cap; some functions are not discovered"
            );
        }
        for record in paged.items {
            let Some(urn) = urn_of(&record, region, client.project_id()) else {
                tracing::debug!(?record.func_urn, "listed function without a usable URN ignored");
                continue;
            };
            if package.is_some_and(|p| p != urn.package()) {
                continue;
            }
            if config.admits(urn.name()) && shard.owns(&urn) {
                found.insert(urn);
            }
        }
    }
    Ok(found)
}

/// Asks the API whether one function still exists.
pub async fn exists(client: &Client, urn: &FunctionUrn) -> Result<bool, ApiError> {
    let page = client
        .functions(0, PAGE, Some(urn.package()), Some(urn.name()))
        .await?;
    Ok(page.items.iter().any(|r| {
        urn_of(r, urn.region(), urn.project_id())
            .is_some_and(|u| u.package() == urn.package() && u.name() == urn.name())
    }))
}

/// The `latest` URN of a listed function: from `func_urn` (its version
/// field, if any, ignored), else from `package` and `func_name`.
fn urn_of(record: &FunctionRecord, region: &str, project_id: &str) -> Option<FunctionUrn> {
    let (package, name) = match &record.func_urn {
        Some(u) => {
            let parsed = FunctionUrn::parse_full(u).ok()?;
            (parsed.package().to_owned(), parsed.name().to_owned())
        }
        None => (
            record
                .package
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            record.func_name.clone()?,
        ),
    };
    FunctionUrn::new(region, project_id, &package, &name, LATEST).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn listed_functions_become_latest_urns() {
        let rec = |urn: Option<&str>, package: Option<&str>, name: Option<&str>| FunctionRecord {
            func_urn: urn.map(str::to_owned),
            package: package.map(str::to_owned),
            func_name: name.map(str::to_owned),
        };
        let u = urn_of(
            &rec(Some(&format!("urn:fss:r:{P}:function:etl:job")), None, None),
            "r",
            P,
        )
        .unwrap();
        assert_eq!(
            u.to_string(),
            format!("urn:fss:r:{P}:function:etl:job:latest")
        );
        let u = urn_of(
            &rec(
                Some(&format!("urn:fss:r:{P}:function:etl:job:v3")),
                None,
                None,
            ),
            "r",
            P,
        )
        .unwrap();
        assert_eq!(u.qualifier(), "latest");
        let u = urn_of(&rec(None, Some("pkg"), Some("f")), "r", P).unwrap();
        assert_eq!((u.package(), u.name()), ("pkg", "f"));
        assert!(urn_of(&rec(None, None, None), "r", P).is_none());
        assert!(urn_of(&rec(Some("garbage"), None, None), "r", P).is_none());
    }
}
