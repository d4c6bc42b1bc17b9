//! What the records gauge keeps of settled records no listing can return
//! any more: how many started in each second of the lookback window, by
//! terminal status. Exact to the second, and small: the records of one
//! status started in the same second are one 8-byte entry (in a queue at
//! most twice as long as it needs), however busy the function is. A
//! `BTreeMap` per second cost about 40 bytes an entry, which was most of
//! what the trackers of 10,000 functions grew by over their first hour.

use std::collections::VecDeque;

/// Settled records' counts by start second (API clock) and terminal
/// status (SUCCESS, FAIL, DISCARD, as [`InvocationStatus::terminal_index`]).
///
/// [`InvocationStatus::terminal_index`]: crate::state::InvocationStatus::terminal_index
#[derive(Debug, Default)]
pub(super) struct AgedCounts {
    /// The second the offsets count from: at most every start kept.
    base: i64,
    /// Per terminal status, `(seconds after base, records)` in ascending
    /// order of second, one entry per second.
    runs: [VecDeque<(u32, u32)>; 3],
}

impl AgedCounts {
    /// One more record of terminal status `status` started at `start`.
    pub(super) fn add(&mut self, start: i64, status: usize) {
        if status >= self.runs.len() {
            return;
        }
        if self.is_empty() {
            self.base = start;
        }
        let offset = match self.offset(start) {
            Some(offset) => offset,
            None => {
                self.rebase(start);
                match self.offset(start) {
                    Some(offset) => offset,
                    // Older than the newest second kept by more than an
                    // offset can say: outside any window that holds it.
                    None => return,
                }
            }
        };
        let runs = &mut self.runs[status];
        // Records mostly age in order of start: the search ends at the back.
        let at = runs.partition_point(|&(o, _)| o < offset);
        match runs.get_mut(at) {
            Some((o, n)) if *o == offset => *n = n.saturating_add(1),
            _ => runs.insert(at, (offset, 1)),
        }
    }

    /// Forgets the records started before `from` (the window's start).
    pub(super) fn forget_before(&mut self, from: i64) {
        let from = self.offset_at_least(from);
        for runs in &mut self.runs {
            let gone = from.map_or(runs.len(), |from| runs.partition_point(|&(o, _)| o < from));
            runs.drain(..gone);
            // A burst that has left the window gives its memory back.
            if runs.capacity() > 64 && runs.capacity() > 4 * runs.len() {
                runs.shrink_to(2 * runs.len());
            }
        }
    }

    /// The records started at `from` or later, by terminal status.
    pub(super) fn count_from(&self, from: i64) -> [u64; 3] {
        let mut counts = [0u64; 3];
        let Some(from) = self.offset_at_least(from) else {
            return counts;
        };
        for (runs, count) in self.runs.iter().zip(&mut counts) {
            let at = runs.partition_point(|&(o, _)| o < from);
            *count = runs.range(at..).map(|&(_, n)| u64::from(n)).sum();
        }
        counts
    }

    fn is_empty(&self) -> bool {
        self.runs.iter().all(VecDeque::is_empty)
    }

    /// `start` as an offset from the base, if it can be one.
    fn offset(&self, start: i64) -> Option<u32> {
        u32::try_from(start.checked_sub(self.base)?).ok()
    }

    /// The smallest offset of a second at or after `t`: 0 for any `t` at
    /// or before the base, `None` for one beyond every offset.
    fn offset_at_least(&self, t: i64) -> Option<u32> {
        match t.checked_sub(self.base) {
            Some(d) if d <= 0 => Some(0),
            Some(d) => u32::try_from(d).ok(),
            None if t < self.base => Some(0),
            None => None,
        }
    }

    /// Moves the base so that `start` has an offset if it can: seconds
    /// more than `u32::MAX` (136 years) older than the newest of `start`
    /// and those kept are forgotten, `start` among them. The lookback is
    /// at most 30 days, so what is forgotten was outside the window.
    fn rebase(&mut self, start: i64) {
        let old_base = self.base;
        let kept = self
            .runs
            .iter()
            .flat_map(|r| r.front().into_iter().chain(r.back()));
        let (oldest, newest) = kept
            .map(|&(o, _)| old_base.saturating_add(i64::from(o)))
            .fold((start, start), |(lo, hi), s| (lo.min(s), hi.max(s)));
        let base = oldest.max(newest.saturating_sub(i64::from(u32::MAX)));
        for runs in &mut self.runs {
            let moved: VecDeque<(u32, u32)> = runs
                .iter()
                .filter_map(|&(o, n)| {
                    let second = old_base.saturating_add(i64::from(o));
                    Some((u32::try_from(second.checked_sub(base)?).ok()?, n))
                })
                .collect();
            *runs = moved;
        }
        self.base = base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records gauge's answer from a plain list of starts.
    fn expected(records: &[(i64, usize)], from: i64) -> [u64; 3] {
        let mut c = [0u64; 3];
        for &(s, i) in records {
            if s >= from {
                c[i] += 1;
            }
        }
        c
    }

    #[test]
    fn counts_records_from_any_second_in_any_order_of_arrival() {
        let t = 1_780_000_000;
        // In order, out of order, repeated seconds, older than the base.
        let records = [
            (t, 0),
            (t + 5, 0),
            (t + 5, 0),
            (t + 2, 1),
            (t + 9, 2),
            (t - 7, 0),
            (t + 3, 0),
            (t - 7, 1),
            (t + 9, 2),
        ];
        let mut aged = AgedCounts::default();
        for &(s, i) in &records {
            aged.add(s, i);
        }
        for from in t - 10..t + 12 {
            assert_eq!(
                aged.count_from(from),
                expected(&records, from),
                "from {from}"
            );
        }
        assert_eq!(
            aged.runs[0].len(),
            4,
            "one entry per second: {:?}",
            aged.runs
        );
    }

    #[test]
    fn forgets_what_left_the_window_and_nothing_else() {
        let t = 1_780_000_000;
        let mut aged = AgedCounts::default();
        let records: Vec<(i64, usize)> = (0..300).map(|k| (t + k / 2, (k % 3) as usize)).collect();
        for &(s, i) in &records {
            aged.add(s, i);
        }
        aged.forget_before(t + 100);
        let left: Vec<_> = records
            .iter()
            .copied()
            .filter(|&(s, _)| s >= t + 100)
            .collect();
        for from in [
            i64::MIN,
            t - 1,
            t + 99,
            t + 100,
            t + 120,
            t + 149,
            t + 150,
            i64::MAX,
        ] {
            assert_eq!(aged.count_from(from), expected(&left, from), "from {from}");
        }
        aged.forget_before(i64::MAX);
        assert_eq!(aged.count_from(i64::MIN), [0; 3]);
        assert!(aged.is_empty());
        // Empty, it starts again from the next record's second.
        aged.add(t - 1_000_000, 2);
        assert_eq!(aged.count_from(t - 1_000_000), [0, 0, 1]);
    }

    #[test]
    fn of_seconds_too_far_apart_the_newer_are_kept() {
        let mut aged = AgedCounts::default();
        aged.add(0, 0);
        aged.add(1, 0);
        // More than u32::MAX seconds later: the old ones cannot be in the
        // same window, they go.
        let far = 10_000_000_000;
        aged.add(far, 1);
        assert_eq!(aged.count_from(i64::MIN), [0, 1, 0]);
        // Too far back to share a window with what is kept: not kept.
        aged.add(1, 0);
        assert_eq!(aged.count_from(i64::MIN), [0, 1, 0]);
        // Older but close enough: kept, and so is everything else.
        aged.add(far - 1000, 0);
        aged.add(far - 2000, 2);
        assert_eq!(aged.count_from(i64::MIN), [1, 1, 1]);
        assert_eq!(aged.count_from(far - 1000), [1, 1, 0]);
        // The extremes of the clock overflow nothing.
        aged.add(i64::MAX, 2);
        assert_eq!(aged.count_from(i64::MIN), [0, 0, 1]);
        aged.add(i64::MIN, 2);
        assert_eq!(aged.count_from(i64::MIN), [0, 0, 1]);
        assert_eq!(aged.count_from(i64::MAX), [0, 0, 1]);
        aged.forget_before(i64::MAX);
        assert_eq!(aged.count_from(i64::MIN), [0, 0, 1]);
        aged.forget_before(i64::MIN);
        assert_eq!(aged.count_from(i64::MIN), [0, 0, 1]);
        aged.add(i64::MAX, 0);
        assert_eq!(aged.count_from(i64::MAX), [1, 0, 1]);
        assert_eq!(aged.count_from(i64::MAX - 1), [1, 0, 1]);
        // Forgetting from a second beyond every offset forgets everything.
        let mut aged = AgedCounts::default();
        aged.add(-5, 1);
        aged.forget_before(i64::MAX);
        assert!(aged.is_empty());
    }

    #[test]
    fn an_unknown_status_is_ignored() {
        let mut aged = AgedCounts::default();
        aged.add(10, 3);
        assert!(aged.is_empty());
    }
}
