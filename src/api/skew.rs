//! The API's clock, as its responses tell it.
//!
//! Async invocation records are dated by the API's clock, and the windows
//! the exporter asks for must be in that clock too: an exporter whose clock
//! runs two minutes ahead would otherwise ask for records that do not exist
//! yet and miss the ones it should see. Every response carries a `Date`
//! header (RFC 7231, one-second resolution); the offset is the `Date` minus
//! the local time at the middle of the exchange, plus half a second for the
//! truncation. The estimate is the median of the last few samples, so one
//! slow response cannot move it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::sync::MutexExt;

/// Samples kept for the median.
const SAMPLES: usize = 5;
/// Exchanges slower than this say too little about the offset.
const MAX_ROUND_TRIP_SECONDS: f64 = 5.0;

/// The measured offset of one API's clock from the local one.
#[derive(Debug, Default)]
pub struct ClockSkew {
    samples: Mutex<VecDeque<f64>>,
}

impl ClockSkew {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one exchange into account: `sent` and `received` are local
    /// Unix times, `date` the response's `Date` header. Returns the new
    /// estimate, or `None` when the sample was unusable.
    pub fn observe(&self, sent: f64, received: f64, date: &str) -> Option<f64> {
        let date = httpdate::parse_http_date(date.trim()).ok()?;
        let date = date
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        let round_trip = received - sent;
        if !(0.0..=MAX_ROUND_TRIP_SECONDS).contains(&round_trip) {
            return None;
        }
        let offset = date + 0.5 - (sent + received) / 2.0;
        let mut samples = self.samples.lock_or_recover();
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(offset);
        Some(median(&samples))
    }

    /// Seconds to add to the local clock to get the API's; `None` before
    /// any response said.
    pub fn offset(&self) -> Option<f64> {
        let samples = self.samples.lock_or_recover();
        (!samples.is_empty()).then(|| median(&samples))
    }
}

fn median(samples: &VecDeque<f64>) -> f64 {
    let mut v: Vec<f64> = samples.iter().copied().collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_the_median_of_recent_samples() {
        let skew = ClockSkew::new();
        assert_eq!(skew.offset(), None);
        // The API is two minutes behind: its Date says 00:00:00 when the
        // local clock says 00:02:00.2.
        let local = 1_700_000_120.2;
        let date = "Tue, 14 Nov 2023 22:13:20 GMT"; // 1_700_000_000
        let o = skew.observe(local - 0.1, local + 0.1, date).unwrap();
        assert!((o - (-119.7)).abs() < 1e-6, "{o}");
        // One wild sample does not move the median of three.
        skew.observe(local, local + 0.2, date);
        skew.observe(local - 1000.0, local - 1000.0 + 0.2, date);
        assert!((skew.offset().unwrap() - (-119.8)).abs() < 0.11);
        // Slow exchanges and bad dates are ignored.
        assert_eq!(skew.observe(local, local + 30.0, date), None);
        assert_eq!(skew.observe(local, local, "yesterday"), None);
    }
}
