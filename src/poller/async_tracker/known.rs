//! Settled records remembered by a digest of their `request_id` alone:
//! those a listing returned recently but whose times are older than any
//! listing asks for, kept only so that being returned again (by an API
//! that ignores the time filter) does not count them again. Their share of
//! the records gauge is in the aged counts already.
//!
//! A busy function's first poll reads an hour of records, nearly all of
//! them this, and they are kept for `async_late_visibility` + 2 intervals.
//! They are kept in batches by when a listing last returned them, each a
//! sorted list of digests: 8 bytes a record (a table with a last-seen time
//! and a latest time per digest was 24 bytes and twice that with its
//! slack; the whole record with its `request_id`, about 146).

/// The digests of settled records, by when a listing last returned them.
#[derive(Debug, Default)]
pub(super) struct KnownDigests {
    batches: Vec<Batch>,
}

#[derive(Debug)]
struct Batch {
    /// When a listing last returned these records (API clock).
    last_seen: i64,
    /// The latest time of any of them; `i64::MIN` when none has one (or
    /// all are dated implausibly): kept while a listing may reach it.
    latest: i64,
    /// The digests, sorted once [`KnownDigests::tidy`] has run. A digest
    /// returned again is added to a newer batch and stays in its old one
    /// until that one goes.
    digests: Vec<u64>,
    sorted: bool,
}

impl Batch {
    fn contains(&self, digest: u64) -> bool {
        if self.sorted {
            self.digests.binary_search(&digest).is_ok()
        } else {
            self.digests.contains(&digest)
        }
    }
}

impl KnownDigests {
    /// Whether `digest` is remembered.
    #[cfg(test)]
    fn contains(&self, digest: u64) -> bool {
        self.batches.iter().any(|b| b.contains(digest))
    }

    /// If `digest` is remembered, it was returned again at `now`: it is
    /// remembered from then on. Returns whether it was remembered.
    pub(super) fn seen_again(&mut self, digest: u64, now: i64) -> bool {
        let Some(latest) = self
            .batches
            .iter()
            .filter(|b| b.contains(digest))
            .map(|b| b.latest)
            .max()
        else {
            return false;
        };
        let batch = self.batch(now, latest);
        if !batch.contains(digest) {
            if batch.sorted {
                let at = batch.digests.partition_point(|&d| d < digest);
                batch.digests.insert(at, digest);
            } else {
                batch.digests.push(digest);
            }
        }
        true
    }

    /// Remembers `digest`, last returned at `last_seen`, whose latest time
    /// is `latest`. [`KnownDigests::tidy`] then sorts what was added.
    pub(super) fn add(&mut self, digest: u64, last_seen: i64, latest: i64) {
        let batch = self.batch(last_seen, latest);
        batch.digests.push(digest);
        batch.sorted = false;
    }

    /// Sorts the batches added to, drops repeated digests and spare room.
    pub(super) fn tidy(&mut self) {
        for b in self.batches.iter_mut().filter(|b| !b.sorted) {
            b.digests.sort_unstable();
            b.digests.dedup();
            b.digests.shrink_to_fit();
            b.sorted = true;
        }
    }

    /// Forgets the batches no longer returned recently (last returned
    /// before `seen_recently`) whose times no listing reaches (before
    /// `horizon`).
    pub(super) fn forget(&mut self, seen_recently: i64, horizon: i64) {
        self.batches
            .retain(|b| b.last_seen >= seen_recently || b.latest >= horizon);
    }

    /// Forgets up to `n` digests, least recently returned first; returns
    /// how many went.
    pub(super) fn forget_oldest(&mut self, n: usize) -> usize {
        self.batches.sort_by_key(|b| b.last_seen);
        let mut gone = 0;
        for b in &mut self.batches {
            let take = (n - gone).min(b.digests.len());
            b.digests.truncate(b.digests.len() - take);
            gone += take;
            if gone == n {
                break;
            }
        }
        self.batches.retain(|b| !b.digests.is_empty());
        gone
    }

    /// How many digests are kept (one returned again may count twice
    /// until its older batch goes).
    pub(super) fn len(&self) -> usize {
        self.batches.iter().map(|b| b.digests.len()).sum()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Every digest kept, perhaps some twice.
    pub(super) fn digests(&self) -> impl Iterator<Item = u64> + '_ {
        self.batches.iter().flat_map(|b| b.digests.iter().copied())
    }

    /// The batch of `last_seen`, made if there is none, its latest time at
    /// least `latest`.
    fn batch(&mut self, last_seen: i64, latest: i64) -> &mut Batch {
        let at = match self.batches.iter().position(|b| b.last_seen == last_seen) {
            Some(at) => at,
            None => {
                self.batches.push(Batch {
                    last_seen,
                    latest,
                    digests: Vec::new(),
                    sorted: true,
                });
                self.batches.len() - 1
            }
        };
        let batch = &mut self.batches[at];
        batch.latest = batch.latest.max(latest);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_found_until_their_batch_is_forgotten() {
        let mut k = KnownDigests::default();
        for d in (0..1000u64).rev() {
            k.add(d * 7919, 100, 50);
        }
        k.add(3, 160, i64::MIN);
        // Found before and after tidying.
        assert!(k.contains(7919 * 999) && k.contains(3));
        k.tidy();
        assert!(k.contains(7919 * 999) && k.contains(0) && k.contains(3));
        assert!(!k.contains(1));
        assert_eq!(k.len(), 1001);
        // Returned again at 200: kept past the forgetting of batch 100.
        assert!(k.seen_again(7919 * 5, 200));
        assert!(!k.seen_again(1, 200), "never remembered");
        assert!(!k.contains(1));
        k.forget(150, 51);
        assert!(k.contains(7919 * 5) && k.contains(3));
        assert!(!k.contains(7919 * 6));
        assert_eq!(k.len(), 2);
        // A batch whose times a listing still reaches is kept.
        k.forget(300, 50);
        assert!(k.contains(7919 * 5), "latest 50 reaches the horizon 50");
        assert!(!k.contains(3), "no time: kept only while returned");
        k.forget(300, 51);
        assert!(k.is_empty());
    }

    #[test]
    fn the_least_recently_returned_go_first() {
        let mut k = KnownDigests::default();
        for d in 0..10 {
            k.add(d, 100, 0);
            k.add(100 + d, 200, 0);
        }
        k.tidy();
        assert_eq!(k.forget_oldest(15), 15);
        assert_eq!(k.len(), 5);
        assert!((0..10).all(|d| !k.contains(d)));
        assert_eq!((100..110).filter(|&d| k.contains(d)).count(), 5);
        assert_eq!(k.forget_oldest(10), 5);
        assert!(k.is_empty());
        let mut all: Vec<u64> = k.digests().collect();
        all.sort_unstable();
        assert!(all.is_empty());
    }
}
