//! The `--check-config` summary: a one-screen description of a validated
//! [`Config`] (projects, functions, intervals, where credentials come
//! from, never their values), also its [`Display`](std::fmt::Display).

use std::fmt::{self, Write};

use super::Config;

impl Config {
    /// A one-screen summary for `--check-config`: projects, functions,
    /// intervals and where credentials come from, never their values.
    pub fn summary(&self) -> String {
        const MAX_LISTED: usize = 10;
        let mut s = String::new();
        let p = &self.polling;
        let _ = writeln!(s, "web.listen_address: {}", self.web.listen_address);
        let _ = writeln!(
            s,
            "polling: interval {}, timeout {}, concurrency {}, async lookback {}, max response {} bytes",
            humantime::format_duration(p.interval),
            humantime::format_duration(p.timeout),
            p.concurrency,
            humantime::format_duration(p.async_lookback),
            p.max_response_bytes,
        );
        let _ = writeln!(
            s,
            "caps: {} functions, {} versions per function, {} quota types per project, labels of {} characters",
            p.max_functions, p.max_versions, p.max_quota_types, p.max_label_length,
        );
        let _ = writeln!(
            s,
            "async invocations: late visibility {}, tracked up to {}, at most {} records per function, duration buckets {:?} s",
            humantime::format_duration(p.async_late_visibility),
            humantime::format_duration(p.async_max_duration),
            p.max_tracked_invocations,
            p.async_duration_buckets,
        );
        let _ = match &self.state.path {
            Some(path) => writeln!(s, "state: kept in {}", path.display()),
            None => writeln!(
                s,
                "state: not kept (counters start from zero at every start)"
            ),
        };
        let i = &p.intervals;
        let d = humantime::format_duration;
        let _ = writeln!(
            s,
            "intervals: async invocations {}, versions {}, code {}, snapshot {}, statistics {}, quotas {}",
            d(i.async_invocations),
            d(i.versions),
            d(i.code),
            d(i.snapshot),
            d(i.statistics),
            d(i.quotas),
        );
        let on = |b: bool| if b { "on" } else { "off" };
        let _ = writeln!(
            s,
            "collectors: statistics {} (period {}m), quotas {}",
            on(self.collectors.statistics),
            self.collectors.statistics_period_minutes,
            on(self.collectors.quotas),
        );
        let _ = match (self.sharding.count, self.sharding.index) {
            (1, _) => writeln!(s, "sharding: off (one replica polls every function)"),
            (n, Some(i)) => writeln!(s, "sharding: shard {i} of {n}"),
            (n, None) => writeln!(
                s,
                "sharding: {n} shards, this one's index from the host name's ordinal"
            ),
        };
        let functions: usize = self.projects.iter().map(|p| p.functions.len()).sum();
        let _ = writeln!(
            s,
            "projects: {}, functions: {functions}",
            self.projects.len()
        );
        for project in &self.projects {
            let _ = writeln!(
                s,
                "- project {} ({}) at {}, auth: {}, at most {} requests/s{}",
                project.project_id,
                project.region,
                project.endpoint,
                project.auth.describe(),
                project.max_requests_per_second,
                if project.allow_insecure_http {
                    ", credentials over plain HTTP allowed (allow_insecure_http)"
                } else {
                    ""
                },
            );
            if let Some(disc) = &project.discovery {
                let _ = writeln!(
                    s,
                    "    discovery every {}: packages {}, include {}, exclude {}",
                    d(disc.refresh_interval),
                    if disc.packages.is_empty() {
                        "all".to_owned()
                    } else {
                        disc.packages.join(", ")
                    },
                    disc.include.as_ref().map_or("any", |r| r.as_str()),
                    disc.exclude.as_ref().map_or("none", |r| r.as_str()),
                );
            }
            for urn in project.functions.iter().take(MAX_LISTED) {
                let _ = writeln!(s, "    {urn}");
            }
            if project.functions.len() > MAX_LISTED {
                let _ = writeln!(
                    s,
                    "    ... and {} more",
                    project.functions.len() - MAX_LISTED
                );
            }
        }
        s
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}
