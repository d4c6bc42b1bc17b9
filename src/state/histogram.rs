//! The async duration histogram: its bucket bounds ([`DurationBuckets`],
//! checked from `polling.async_duration_buckets`) and the counts with an
//! exemplar per bucket ([`DurationHistogram`]) that a function's report
//! carries.

use std::fmt;
use std::sync::Mutex;

use crate::sync::MutexExt;

/// The default upper bounds (seconds) of the async duration histogram
/// (`polling.async_duration_buckets`). Times in the API have one-second
/// resolution, so no bucket is below a second; a pending invocation is
/// tracked for a day by default (`polling.async_max_duration`), so the last
/// bucket is a day.
pub const DURATION_BUCKETS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 43200.0, 86400.0,
];

/// Most bounds a duration histogram may have (each is a series per
/// function).
pub const MAX_DURATION_BUCKETS: usize = 40;

/// The upper bounds of the async duration histogram: finite, positive and
/// strictly increasing (`+Inf` is implied). A layout is interned: it is
/// `Copy`, and the same bounds are one allocation for the life of the
/// process, however often a configuration naming them is reloaded.
#[derive(Clone, Copy, PartialEq)]
pub struct DurationBuckets(&'static [f64]);

// Bounds are finite (never NaN), so equality is an equivalence.
impl Eq for DurationBuckets {}

impl fmt::Debug for DurationBuckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0).finish()
    }
}

impl Default for DurationBuckets {
    fn default() -> Self {
        Self(&DURATION_BUCKETS)
    }
}

impl DurationBuckets {
    /// Checks and interns `bounds`.
    pub fn new(bounds: &[f64]) -> Result<Self, String> {
        if bounds.is_empty() {
            return Err("must name at least one bound".to_owned());
        }
        if bounds.len() > MAX_DURATION_BUCKETS {
            return Err(format!(
                "must name at most {MAX_DURATION_BUCKETS} bounds (each is a series per function), found {}",
                bounds.len()
            ));
        }
        if let Some(b) = bounds.iter().find(|b| !b.is_finite() || **b <= 0.0) {
            return Err(format!(
                "bounds must be finite numbers of seconds above 0 (+Inf is always added), found {b}"
            ));
        }
        if let Some(w) = bounds.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "bounds must be strictly increasing, found {} before {}",
                w[0], w[1]
            ));
        }
        if bounds == DURATION_BUCKETS {
            return Ok(Self::default());
        }
        static INTERNED: Mutex<Vec<&'static [f64]>> = Mutex::new(Vec::new());
        let mut interned = INTERNED.lock_or_recover();
        if let Some(known) = interned.iter().find(|b| **b == bounds) {
            return Ok(Self(known));
        }
        let leaked: &'static [f64] = Box::leak(bounds.to_vec().into_boxed_slice());
        interned.push(leaked);
        Ok(Self(leaked))
    }

    /// The finite upper bounds, increasing.
    pub fn bounds(&self) -> &'static [f64] {
        self.0
    }
}

/// One counted invocation, as an OpenMetrics exemplar: the way from a
/// counter or a histogram bucket to the request behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Exemplar {
    pub request_id: String,
    /// 1 for a counter; the observed duration for a histogram bucket.
    pub value: f64,
    /// When the invocation ended (Unix seconds, API clock).
    pub timestamp: f64,
}

/// A cumulative distribution of durations: counts per bucket of its
/// [`DurationBuckets`] (not cumulative; the last slot is `+Inf`), and the
/// latest invocation each bucket counted.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationHistogram {
    buckets: DurationBuckets,
    /// One per bound, then `+Inf`.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
    /// The latest observation of each slot of `counts`.
    pub exemplars: Vec<Option<Exemplar>>,
}

impl Default for DurationHistogram {
    fn default() -> Self {
        Self::new(DurationBuckets::default())
    }
}

impl DurationHistogram {
    /// An empty histogram over `buckets`.
    pub fn new(buckets: DurationBuckets) -> Self {
        let slots = buckets.bounds().len() + 1;
        Self {
            buckets,
            counts: vec![0; slots],
            sum: 0.0,
            count: 0,
            exemplars: vec![None; slots],
        }
    }

    /// Its bucket layout.
    pub fn buckets(&self) -> DurationBuckets {
        self.buckets
    }

    pub fn observe(&mut self, seconds: f64) {
        self.slot(seconds);
    }

    /// Observes one invocation's duration and keeps it as its bucket's
    /// exemplar if it ended last.
    pub fn observe_request(&mut self, seconds: f64, request_id: &str, ended: f64) {
        let slot = self.slot(seconds);
        if self.exemplars[slot]
            .as_ref()
            .is_none_or(|e| e.timestamp <= ended)
        {
            self.exemplars[slot] = Some(Exemplar {
                request_id: request_id.to_owned(),
                value: seconds,
                timestamp: ended,
            });
        }
    }

    fn slot(&mut self, seconds: f64) -> usize {
        let bounds = self.buckets.bounds();
        let slot = bounds
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(bounds.len());
        self.counts[slot] += 1;
        self.sum += seconds;
        self.count += 1;
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_by_upper_bound() {
        let mut h = DurationHistogram::default();
        for s in [0.0, 1.0, 1.5, 60.0, 1e9] {
            h.observe(s);
        }
        assert_eq!(h.counts[0], 2); // 0 and 1 are <= 1
        assert_eq!(h.counts[1], 1); // 1.5 <= 2
        assert_eq!(h.counts[5], 1); // 60 <= 60
        assert_eq!(h.counts[DURATION_BUCKETS.len()], 1); // +Inf
        assert_eq!(h.counts.len(), DURATION_BUCKETS.len() + 1);
        assert_eq!(h.count, 5);
    }
}
