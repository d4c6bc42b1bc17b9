//! The async duration histogram: the counts with an exemplar per bucket
//! ([`DurationHistogram`]) that a function's report carries, over the
//! bounds of [`DurationBuckets`].

use crate::buckets::DurationBuckets;

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
    use crate::buckets::DURATION_BUCKETS;

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
