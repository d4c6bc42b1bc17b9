//! Caps on what upstream data may cost: every string, list or record the
//! API sends that the exporter keeps is bounded, and what a bound drops or
//! truncates is counted here, by [`Cap`], as plain data.
//!
//! The API client and the poller report through [`CapCounters::record`]
//! (the client via [`crate::api::ApiObserver::capped`]); the exposition
//! exports the counts as `functiongraph_exporter_capped_total{cap}`; and
//! once per poll cycle [`CapCounters::log_changes`] writes one line per cap
//! whose state changed: a warning when upstream data starts exceeding it,
//! an info line when a whole cycle went by without that. So a hostile or
//! broken upstream costs a bounded amount of memory and a few log lines,
//! never one line per record.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::named::named_enum;
use crate::sync::MutexExt;

/// The longest `request_id` kept: the API documents at most 64 characters.
/// Records with a longer one are dropped.
pub const MAX_REQUEST_ID_CHARS: usize = 64;
/// The longest error text kept for logs and the landing page, in
/// characters (longer text is cut and ends in `…`).
pub const MAX_ERROR_CHARS: usize = 300;
/// Default of `polling.max_label_length`.
pub const DEFAULT_MAX_LABEL_CHARS: usize = 128;
/// The largest `polling.max_label_length` allowed: names longer than this
/// are dropped as pages are decoded, before the configured cap applies.
pub const MAX_LABEL_CHARS_LIMIT: usize = 1024;
/// The longest status or time string of an async invocation record (a
/// status is a word, a time about 30 characters).
pub const MAX_RECORD_FIELD_CHARS: usize = 64;
/// Default of `polling.max_versions`.
pub const DEFAULT_MAX_VERSIONS: usize = 100;
/// Default of `polling.max_quota_types`.
pub const DEFAULT_MAX_QUOTA_TYPES: usize = 100;

/// The configurable caps the poller applies (`polling.max_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Longest upstream string kept as a label value, in characters.
    pub max_label_length: usize,
    /// Versions kept per function.
    pub max_versions: usize,
    /// Quota types kept per project.
    pub max_quota_types: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            max_label_length: DEFAULT_MAX_LABEL_CHARS,
            max_versions: DEFAULT_MAX_VERSIONS,
            max_quota_types: DEFAULT_MAX_QUOTA_TYPES,
        }
    }
}

impl Caps {
    /// A label value from upstream that describes something (a runtime, a
    /// unit): cut to the maximum length; `cut` counts it when it was.
    pub fn label(&self, s: String, cut: &mut u64) -> String {
        if !too_long(&s, self.max_label_length) {
            return s;
        }
        *cut += 1;
        truncate(&s, self.max_label_length).0
    }

    /// Whether an upstream string that identifies something (a version, a
    /// function name) is too long to become a label: such items are dropped,
    /// since a cut name could be mistaken for another.
    pub fn too_long(&self, s: &str) -> bool {
        too_long(s, self.max_label_length)
    }
}

named_enum! {
    /// One cap: the value of the `cap` label.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Cap {
        /// Async invocation records whose `request_id` is longer than
        /// [`MAX_REQUEST_ID_CHARS`]: dropped.
        RequestIdLength => "request_id_length",
        /// Upstream strings that become label values (runtime, code type,
        /// version, quota resource and unit, discovered function names) longer
        /// than `polling.max_label_length`: identities dropped, descriptions
        /// truncated.
        LabelLength => "label_length",
        /// Versions of a function beyond `polling.max_versions`: dropped.
        Versions => "versions",
        /// Quota types of a project beyond `polling.max_quota_types`: dropped.
        QuotaTypes => "quota_types",
        /// Error text longer than [`MAX_ERROR_CHARS`]: truncated.
        ErrorText => "error_text",
        /// Async invocation records tracked per function beyond their cap:
        /// dropped (counted by the async tracker).
        TrackedInvocations => "tracked_invocations",
        /// Items of a list page beyond the page size asked for: dropped.
        PageSize => "page_size",
        /// Async invocation records whose status or time is longer than
        /// [`MAX_RECORD_FIELD_CHARS`]: dropped.
        RecordFieldLength => "record_field_length",
    }
}

impl Cap {
    /// What the cap bounds, for log lines.
    fn describe(self) -> &'static str {
        match self {
            Cap::RequestIdLength => {
                "async invocation records with a request_id longer than 64 characters are dropped"
            }
            Cap::LabelLength => {
                "upstream strings longer than polling.max_label_length are dropped (names) or truncated (descriptions)"
            }
            Cap::Versions => "versions beyond polling.max_versions per function are dropped",
            Cap::QuotaTypes => "quota types beyond polling.max_quota_types per project are dropped",
            Cap::ErrorText => "error text is cut to 300 characters",
            Cap::TrackedInvocations => {
                "async invocation records beyond the per-function tracking cap are dropped"
            }
            Cap::PageSize => "list items beyond the page size asked for are dropped",
            Cap::RecordFieldLength => {
                "async invocation records with a status or time longer than 64 characters are dropped"
            }
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The longest "where" kept for a cap's log line.
const MAX_SUBJECT_CHARS: usize = 200;

/// How many items each cap dropped or truncated since start, and what the
/// last one concerned (a function URN, a project id).
#[derive(Debug, Default)]
pub struct CapCounters {
    counts: [AtomicU64; Cap::ALL.len()],
    /// Where each cap was last exceeded (the `subject` of its latest count).
    subjects: Mutex<[Option<String>; Cap::ALL.len()]>,
    /// Counts at the last [`CapCounters::log_changes`], and whether each cap
    /// was being exceeded then.
    logged: Mutex<[(u64, bool); Cap::ALL.len()]>,
}

impl CapCounters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `n` items dropped or truncated by `cap`; `subject` says where
    /// (a function, a project), for the log line.
    pub fn count_dropped(&self, cap: Cap, n: u64, subject: &str) {
        if n == 0 {
            return;
        }
        self.counts[cap.index()].fetch_add(n, Ordering::Relaxed);
        let subject: String = subject.chars().take(MAX_SUBJECT_CHARS).collect();
        let mut subjects = self.subjects.lock_or_recover();
        subjects[cap.index()] = Some(subject);
    }

    /// Items `cap` dropped or truncated since start.
    pub fn get(&self, cap: Cap) -> u64 {
        self.counts[cap.index()].load(Ordering::Relaxed)
    }

    /// Logs each cap whose state changed since the last call: a warning
    /// when items were dropped since then and none had been before, an info
    /// line when none were since then but some had been. Called once per
    /// poll cycle, so a cap hit on every page is one line, not thousands.
    pub fn log_changes(&self) {
        let mut logged = self.logged.lock_or_recover();
        for cap in Cap::ALL {
            let now = self.get(cap);
            let (before, was_exceeded) = logged[cap.index()];
            let exceeded = now > before;
            if exceeded && !was_exceeded {
                let subject = self.subjects.lock_or_recover()[cap.index()]
                    .clone()
                    .unwrap_or_default();
                let dropped = now - before;
                let what = cap.describe();
                // Cut error text loses no metric: worth a note, not a warning
                // (the gateway's signature errors are longer than the cap).
                if cap == Cap::ErrorText {
                    tracing::info!(
                        cap = cap.as_str(),
                        dropped,
                        latest = %subject,
                        "upstream data exceeds a cap: {what}; counted in functiongraph_exporter_capped_total"
                    );
                } else {
                    tracing::warn!(
                        cap = cap.as_str(),
                        dropped,
                        latest = %subject,
                        "upstream data exceeds a cap: {what}; counted in functiongraph_exporter_capped_total"
                    );
                }
            } else if !exceeded && was_exceeded {
                tracing::info!(cap = cap.as_str(), "upstream data no longer exceeds a cap");
            }
            logged[cap.index()] = (now, exceeded);
        }
    }
}

/// `s` cut to at most `max` characters (the last one an ellipsis when
/// cut), and whether it was cut.
pub fn truncate(s: &str, max: usize) -> (String, bool) {
    if s.chars().count() <= max {
        return (s.to_owned(), false);
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    (out, true)
}

/// Whether `s` is longer than `max` characters (without counting all of a
/// long one).
pub fn too_long(s: &str, max: usize) -> bool {
    s.chars().nth(max).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_truncation() {
        let c = CapCounters::new();
        c.count_dropped(Cap::Versions, 3, "f");
        c.count_dropped(Cap::Versions, 0, "g");
        assert_eq!(c.get(Cap::Versions), 3);
        assert_eq!(c.get(Cap::ErrorText), 0);
        assert_eq!(truncate("abc", 3), ("abc".to_owned(), false));
        assert_eq!(truncate("abcd", 3), ("ab…".to_owned(), true));
        assert!(too_long("abcd", 3));
        assert!(!too_long("abc", 3));
        assert!(Cap::ALL.iter().enumerate().all(|(i, c)| c.index() == i));
    }
}
