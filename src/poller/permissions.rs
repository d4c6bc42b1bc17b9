//! Permission denials, per project and API: which functions an API refuses
//! for lack of a permission (a 403 naming one, see `api::error`), so that a
//! denial is logged once when it starts or changes and once when it ends,
//! however many functions and polls it touches.
//!
//! A denial fails only the collector that asked, for that function (the
//! API answers per function: resource-level policies and enterprise
//! projects can allow some functions and refuse others), and that collector
//! backs off like any failing one. Nothing here stops a request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::api::{ApiError, Endpoint};
use crate::sync::MutexExt;
use crate::urn::FunctionUrn;

/// One API refused for lack of a permission in one project.
#[derive(Debug)]
struct Denial {
    /// The refusal as logged (error code and message).
    summary: String,
    functions: BTreeSet<FunctionUrn>,
}

/// The denials of every project, keyed by project id and endpoint.
#[derive(Debug, Default)]
pub struct Denials {
    map: Mutex<BTreeMap<(String, Endpoint), Denial>>,
}

impl Denials {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, Endpoint), Denial>> {
        self.map.lock_or_recover()
    }

    /// `urn`'s request to `error.endpoint` was refused for lack of a
    /// permission. Logs at `warn` when the project's API was not refused
    /// before, or now with another answer.
    pub fn denied(&self, urn: &FunctionUrn, error: &ApiError) {
        let summary = match error.error_code() {
            Some(code) => format!("{code}: {}", message(error)),
            None => message(error),
        };
        let project_id = urn.project_id().to_owned();
        let mut map = self.map();
        let denial = map
            .entry((project_id.clone(), error.endpoint))
            .or_insert_with(|| Denial {
                summary: String::new(),
                functions: BTreeSet::new(),
            });
        let changed = denial.summary != summary;
        denial.functions.insert(urn.clone());
        if changed {
            tracing::warn!(
                project_id = %project_id,
                endpoint = %error.endpoint,
                error_code = error.error_code(),
                permission = %summary,
                function = %urn,
                request_id = error.request_id.as_deref(),
                "permission denied: the credentials may not call this API; only its collector fails, for the functions refused, and it backs off (the landing page lists them)"
            );
            denial.summary = summary;
        } else {
            tracing::debug!(project_id = %project_id, endpoint = %error.endpoint, function = %urn, "permission still denied");
        }
    }

    /// `urn`'s requests to `endpoints` succeeded: logs at `info` when that
    /// ends a project's denial of one of them.
    pub fn allowed(&self, urn: &FunctionUrn, endpoints: &[Endpoint]) {
        let mut map = self.map();
        for endpoint in endpoints {
            let key = (urn.project_id().to_owned(), *endpoint);
            let Some(denial) = map.get_mut(&key) else {
                continue;
            };
            if denial.functions.remove(urn) && denial.functions.is_empty() {
                tracing::info!(project_id = %key.0, endpoint = %endpoint, "permission granted again: no function is refused this API any more");
                map.remove(&key);
            }
        }
    }

    /// Forgets a function that is no longer monitored.
    pub fn forget(&self, urn: &FunctionUrn) {
        let mut map = self.map();
        for denial in map.values_mut() {
            denial.functions.remove(urn);
        }
        map.retain(|_, d| !d.functions.is_empty());
    }

    /// How many functions of `project_id` are refused `endpoint` now.
    pub fn count(&self, project_id: &str, endpoint: Endpoint) -> usize {
        self.map()
            .get(&(project_id.to_owned(), endpoint))
            .map_or(0, |d| d.functions.len())
    }
}

fn message(error: &ApiError) -> String {
    match &error.kind {
        crate::api::ApiErrorKind::Status { message, .. } => message.clone(),
        _ => error.summary(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiErrorKind;

    fn urn(name: &str) -> FunctionUrn {
        FunctionUrn::new(
            "r",
            "0123456789abcdef0123456789abcdef",
            "default",
            name,
            "latest",
        )
        .unwrap()
    }

    #[test]
    fn a_denial_is_tracked_per_project_and_api_until_no_function_is_refused() {
        let d = Denials::default();
        let e = ApiError::new(
            Endpoint::SnapshotState,
            ApiErrorKind::Status {
                status: 403,
                code: Some("FSS.1127".into()),
                message: "no permission".into(),
            },
        );
        d.denied(&urn("a"), &e);
        d.denied(&urn("b"), &e);
        d.denied(&urn("b"), &e);
        let p = "0123456789abcdef0123456789abcdef";
        assert_eq!(d.count(p, Endpoint::SnapshotState), 2);
        assert_eq!(d.count(p, Endpoint::Code), 0);
        d.allowed(
            &urn("a"),
            &[Endpoint::SnapshotState, Endpoint::SnapshotEnable],
        );
        assert_eq!(d.count(p, Endpoint::SnapshotState), 1);
        d.forget(&urn("b"));
        assert_eq!(d.count(p, Endpoint::SnapshotState), 0);
    }
}
