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
///
/// The per-slot vectors are allocated by the first observation: most
/// functions never have an asynchronous invocation, and at 10,000 of them
/// the empty slots (an exemplar is 40 bytes) were megabytes.
#[derive(Debug, Clone)]
pub struct DurationHistogram {
    buckets: DurationBuckets,
    /// One per bound, then `+Inf`; empty until the first observation.
    counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
    /// The latest observation of each slot of `counts`; empty until the
    /// first observation of a request.
    exemplars: Vec<Option<Exemplar>>,
}

impl Default for DurationHistogram {
    fn default() -> Self {
        Self::new(DurationBuckets::default())
    }
}

/// Equal when they say the same: an untouched histogram equals one whose
/// slots were allocated and are all empty.
impl PartialEq for DurationHistogram {
    fn eq(&self, other: &Self) -> bool {
        self.buckets == other.buckets
            && self.sum == other.sum
            && self.count == other.count
            && (0..self.slots()).all(|i| {
                self.count_in(i) == other.count_in(i) && self.exemplar(i) == other.exemplar(i)
            })
    }
}

impl DurationHistogram {
    /// An empty histogram over `buckets` (nothing allocated).
    pub fn new(buckets: DurationBuckets) -> Self {
        Self {
            buckets,
            counts: Vec::new(),
            sum: 0.0,
            count: 0,
            exemplars: Vec::new(),
        }
    }

    /// Its bucket layout.
    pub fn buckets(&self) -> DurationBuckets {
        self.buckets
    }

    /// Its slots: one per bound, then `+Inf`.
    pub fn slots(&self) -> usize {
        self.buckets.bounds().len() + 1
    }

    /// The observations in slot `i` (not cumulative).
    pub fn count_in(&self, i: usize) -> u64 {
        self.counts.get(i).copied().unwrap_or(0)
    }

    /// The latest observation of a request in slot `i`.
    pub fn exemplar(&self, i: usize) -> Option<&Exemplar> {
        self.exemplars.get(i).and_then(Option::as_ref)
    }

    /// Every slot's count, `slots()` of them (for a saved state).
    pub fn counts(&self) -> Vec<u64> {
        (0..self.slots()).map(|i| self.count_in(i)).collect()
    }

    /// Every slot's exemplar, `slots()` of them (for a saved state).
    pub fn exemplars(&self) -> Vec<Option<Exemplar>> {
        (0..self.slots())
            .map(|i| self.exemplar(i).cloned())
            .collect()
    }

    /// Takes the counts and exemplars of a saved state, if they fit its
    /// slots; false (and unchanged) if they do not.
    pub fn restore(
        &mut self,
        counts: Vec<u64>,
        sum: f64,
        count: u64,
        exemplars: Vec<Option<Exemplar>>,
    ) -> bool {
        if counts.len() != self.slots() {
            return false;
        }
        self.counts = if count == 0 && counts.iter().all(|n| *n == 0) {
            Vec::new()
        } else {
            counts
        };
        self.sum = sum;
        self.count = count;
        if exemplars.len() == self.slots() && exemplars.iter().any(Option::is_some) {
            self.exemplars = exemplars;
        }
        true
    }

    pub fn observe(&mut self, seconds: f64) {
        self.slot(seconds);
    }

    /// Observes one invocation's duration and keeps it as its bucket's
    /// exemplar if it ended last.
    pub fn observe_request(&mut self, seconds: f64, request_id: &str, ended: f64) {
        let slot = self.slot(seconds);
        if self.exemplars.is_empty() {
            self.exemplars = vec![None; self.slots()];
        }
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
        if self.counts.is_empty() {
            self.counts = vec![0; self.slots()];
        }
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
        assert_eq!(h.count_in(0), 2); // 0 and 1 are <= 1
        assert_eq!(h.count_in(1), 1); // 1.5 <= 2
        assert_eq!(h.count_in(5), 1); // 60 <= 60
        assert_eq!(h.count_in(DURATION_BUCKETS.len()), 1); // +Inf
        assert_eq!(h.counts().len(), DURATION_BUCKETS.len() + 1);
        assert_eq!(h.count, 5);
    }

    /// An untouched histogram holds no slots, says what an allocated empty
    /// one says, and a saved state of the wrong shape is refused.
    #[test]
    fn slots_are_allocated_by_the_first_observation() {
        let mut h = DurationHistogram::default();
        assert!(h.counts.is_empty() && h.exemplars.is_empty());
        assert_eq!(h.counts(), vec![0; DURATION_BUCKETS.len() + 1]);
        let mut zeros = DurationHistogram::default();
        assert!(zeros.restore(h.counts(), 0.0, 0, h.exemplars()));
        assert!(
            zeros.counts.is_empty(),
            "an empty saved state allocates nothing"
        );
        assert_eq!(zeros, h);
        assert!(
            !zeros.restore(vec![1, 2], 3.0, 3, Vec::new()),
            "other buckets"
        );
        assert_eq!(zeros, h);
        h.observe(2.0);
        assert_eq!(h.counts.len(), DURATION_BUCKETS.len() + 1);
        assert!(h.exemplars.is_empty(), "no request, no exemplar slots");
        h.observe_request(3.0, "r", 10.0);
        assert_eq!(h.exemplar(2).map(|e| e.request_id.as_str()), Some("r"));
        assert_ne!(h, zeros);
        let mut back = DurationHistogram::default();
        assert!(back.restore(h.counts(), h.sum, h.count, h.exemplars()));
        assert_eq!(back, h);
    }
}
