//! Project quotas: one request per project for its quotas, converted to
//! base units, capped (label length, quota types), de-duplicated by
//! resource and published to the store. The scheduler decides when.

use super::{Epoch, Shared};
use crate::api::ApiError;
use crate::caps::Cap;
use crate::state::{Collected, ProjectReport, Quota, QuotaUnit};
use crate::sync::MutexExt;

impl Shared {
    /// Polls one project's quotas and publishes them, keeping the last
    /// value when the call fails.
    pub(super) async fn poll_quotas(&self, epoch: &Epoch, project: usize) {
        let p = &epoch.projects[project];
        let caps = epoch.settings.caps;
        let client = &p.target.client;
        let result: Result<Vec<Quota>, ApiError> = client.quotas().await.map(|body| {
            let mut long = 0u64;
            let mut quotas: Vec<Quota> = body
                .quotas
                .map(|q| q.resources)
                .unwrap_or_default()
                .into_iter()
                .filter_map(quota_of)
                .filter(|q| {
                    let keep = !caps.too_long(&q.resource);
                    long += u64::from(!keep);
                    keep
                })
                .collect();
            // One series per resource, whatever the API repeats.
            let mut seen = std::collections::HashSet::new();
            quotas.retain(|q| seen.insert(q.resource.clone()));
            let extra = quotas.len().saturating_sub(caps.max_quota_types);
            quotas.truncate(caps.max_quota_types);
            let subject = &p.target.project_id;
            client.capped(Cap::LabelLength, long, subject);
            client.capped(Cap::QuotaTypes, extra as u64, subject);
            quotas
        });
        let collected = {
            let mut q = p.quotas.lock_or_recover();
            *q = match result {
                Ok(v) => Collected {
                    success: true,
                    value: Some(v),
                    error: None,
                },
                Err(e) => {
                    tracing::warn!(project_id = %p.target.project_id, error = %e, "quotas collector failed");
                    Collected {
                        success: false,
                        value: q.value.take(),
                        error: Some(e.to_string()),
                    }
                }
            };
            q.clone()
        };
        self.store.publish_project(ProjectReport {
            project_id: p.target.project_id.clone(),
            quotas: collected,
        });
    }
}

/// A quota in base units: MB become bytes, minutes seconds. A unit that
/// cannot be converted to a base unit is left out (logged at debug): one
/// metric name holds one unit.
fn quota_of(r: crate::api::model::QuotaRecord) -> Option<Quota> {
    let resource = r.kind.filter(|k| !k.is_empty())?;
    let raw = r.unit.unwrap_or_default();
    let (factor, unit) = match raw.trim().to_ascii_lowercase().as_str() {
        "" | "count" => (1.0, QuotaUnit::Count),
        "b" | "byte" | "bytes" => (1.0, QuotaUnit::Bytes),
        "kb" => (1024.0, QuotaUnit::Bytes),
        "mb" => (1024.0 * 1024.0, QuotaUnit::Bytes),
        "gb" => (1024.0 * 1024.0 * 1024.0, QuotaUnit::Bytes),
        "ms" => (0.001, QuotaUnit::Seconds),
        "s" | "sec" | "second" | "seconds" => (1.0, QuotaUnit::Seconds),
        "min" | "minute" | "minutes" => (60.0, QuotaUnit::Seconds),
        "h" | "hour" | "hours" => (3600.0, QuotaUnit::Seconds),
        _ => {
            tracing::debug!(resource = %resource, unit = %raw.chars().take(32).collect::<String>(), "quota in a unit with no base unit; not exported");
            return None;
        }
    };
    Some(Quota {
        resource,
        unit,
        used: r.used? * factor,
        limit: r.quota? * factor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`quota_of`] of an answer with every field present.
    fn quota(limit: f64, used: f64, kind: &str, unit: &str) -> Option<Quota> {
        quota_of(crate::api::model::QuotaRecord {
            quota: Some(limit),
            used: Some(used),
            kind: Some(kind.into()),
            unit: Some(unit.into()),
        })
    }

    #[test]
    fn quotas_are_converted_to_base_units() {
        let q = quota(2.0, 1.0, "fgs_func_code_size", "MB").unwrap();
        assert_eq!(
            (q.limit, q.used, q.unit),
            (2_097_152.0, 1_048_576.0, QuotaUnit::Bytes)
        );
        let q = quota(400.0, 3.0, "fgs_func_num", "").unwrap();
        assert_eq!(q.unit, QuotaUnit::Count);
        let q = quota(15.0, 1.0, "fgs_func_scale_down_timeout", "min").unwrap();
        assert_eq!((q.limit, q.unit), (900.0, QuotaUnit::Seconds));
        // No base unit: left out rather than mixed into another name.
        assert!(quota(1.0, 1.0, "fgs_func_mystery", "furlongs").is_none());
        assert!(quota_of(crate::api::model::QuotaRecord::default()).is_none());
    }
}
