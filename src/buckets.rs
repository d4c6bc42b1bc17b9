//! The bucket bounds of the async duration histogram: the defaults, and
//! [`DurationBuckets`], a checked and interned list of bounds. A leaf
//! module: the configuration checks `polling.async_duration_buckets` into
//! it, the poller counts and the exposition writes with it.

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
