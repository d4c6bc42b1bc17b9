//! The per-function part of the exposition as a grid: families down,
//! blocks of functions across. Each cell (a *segment*: one family's series
//! of one block's functions) is encoded, and compressed, only when what it
//! says changes, so a scrape after polls of k functions costs about the
//! segments of those k functions, not the whole exposition.
//!
//! Functions are laid out in blocks by their URN's spread key, the order
//! in which the poller visits them within a cycle (see
//! [`FunctionUrn::spread_key`]): the functions polled between two scrapes
//! sit next to each other, in a few blocks, and the other blocks' segments
//! are reused as they are. Within a family, series therefore come in that
//! order, not sorted by name (Prometheus does not care about the order).
//!
//! Each stretch of spread keys has two blocks: one for the functions with
//! asynchronous traffic (invocations counted or records in the window) and
//! one for the quiet rest. A poll changes an active function's async
//! families, but of a quiet one only its poll timestamps; kept apart, the
//! quiet functions' async series (all zeros, most of the records gauge and
//! the invocation counters) are not encoded again because an active
//! neighbour's changed. A function moves between its two blocks when it
//! becomes active or quiet.
//!
//! What a function's series of a family say is reduced to a fingerprint
//! ([`Fingerprint`]); a new report changes the stamp of the segments
//! of the families whose fingerprints changed, and nothing else (a poll
//! that changes only the last-success timestamp re-encodes that family's
//! segment alone). A family whose inputs a new report left as the
//! previous one had them ([`changed_families`]) keeps its fingerprint without
//! computing it again. Each format served (a *view*: text or OpenMetrics,
//! plain or gzip) keeps its own encoding of each segment and re-encodes
//! those whose stamp moved when it is next asked for.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use super::encode::{Fingerprint, identity};
use super::families::{FAMILIES, changed_families, describe};
use super::gzip::Deflated;
use crate::state::{FunctionReport, Store};
use crate::urn::FunctionUrn;

/// Text and OpenMetrics, each plain and gzip-compressed.
pub(crate) const VIEWS: usize = 4;

/// The number of functions a block aims at: large enough that a segment
/// compresses well, small enough that a scrape re-encodes little more
/// than what changed. (Small in unit tests, so that a few hundred
/// functions exercise many blocks and re-layouts.)
const BLOCK_TARGET: usize = if cfg!(test) { 8 } else { 128 };
/// At least 2^4 blocks, so that what changed between two scrapes is a
/// small part of the whole even for a few hundred functions.
const MIN_BITS: u32 = 4;
const MAX_BITS: u32 = 16;

/// One function in the layout.
pub(crate) struct Member {
    pub report: Arc<FunctionReport>,
    key: u64,
    /// Which of its stretch's two blocks it is in (see [`is_active`]).
    active: bool,
    /// The escaped identity labels.
    pub identity: Box<str>,
    fingerprints: [u64; FAMILIES],
}

impl Member {
    fn new(report: Arc<FunctionReport>, key: u64) -> Self {
        Self {
            identity: identity(&report.urn).into_boxed_str(),
            fingerprints: fingerprints(&report),
            active: is_active(&report),
            report,
            key,
        }
    }

    fn urn(&self) -> &FunctionUrn {
        &self.report.urn
    }
}

/// Whether a function has asynchronous traffic: invocations counted, or
/// records in the window. Such a function's async series change with its
/// polls; a quiet function's do not.
pub(crate) fn is_active(report: &FunctionReport) -> bool {
    let counters = &report.async_counters;
    counters.terminal.iter().any(|n| *n > 0)
        || counters.durations.count > 0
        || report
            .async_invocations
            .value
            .as_ref()
            .is_some_and(|w| w.by_status.iter().any(|n| *n > 0))
}

fn fingerprints(report: &FunctionReport) -> [u64; FAMILIES] {
    std::array::from_fn(|family| fingerprint(family, report))
}

fn fingerprint(family: usize, report: &FunctionReport) -> u64 {
    let mut f = Fingerprint::default();
    describe(family, report, &mut f);
    f.finish()
}

/// A segment as a view encoded it.
#[derive(Clone)]
pub(crate) enum Piece {
    Plain(Bytes),
    Gzip(Deflated),
}

/// One view's encoding of one segment.
#[derive(Default)]
pub(crate) struct Segment {
    /// The stamp of the segment encoded (0: never).
    pub stamp: u64,
    /// `None` when the block's functions have no series of the family.
    pub piece: Option<Piece>,
    /// The view's rendering (counting those that encoded something) that
    /// last found this segment's text changed (0: none).
    pub moved_in: u64,
}

/// Functions whose spread keys share their first bits, all active or all
/// quiet.
#[derive(Default)]
pub(crate) struct Block {
    /// Ordered by spread key, then URN.
    pub members: Vec<Member>,
    /// Per family: changes whenever that family's series of this block do.
    pub stamps: [u64; FAMILIES],
    /// Per view, per family (empty until the view is first asked for).
    pub segments: [Vec<Segment>; VIEWS],
}

/// All monitored functions, in blocks.
pub(crate) struct Layout {
    /// 2^bits stretches of spread keys, by their first bits, each as two
    /// blocks (quiet, then active).
    bits: u32,
    pub blocks: Vec<Block>,
    members: usize,
    /// The store generation caught up to.
    synced: u64,
    next_stamp: u64,
    /// Changes whenever a function comes or goes.
    pub membership: u64,
    /// Functions per project id.
    pub per_project: BTreeMap<String, usize>,
    /// The reports replaced or dropped since [`Layout::take_retired`]:
    /// the layout held the last reference to most of them, and freeing
    /// them is the poller's work (see [`Store::retire`]), not a scrape's.
    retired: Vec<Arc<FunctionReport>>,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            bits: MIN_BITS,
            blocks: (0..2 << MIN_BITS).map(|_| Block::default()).collect(),
            members: 0,
            synced: 0,
            next_stamp: 1,
            membership: 0,
            per_project: BTreeMap::new(),
            retired: Vec::new(),
        }
    }
}

impl Layout {
    /// The store generation this layout is current for.
    pub(crate) fn generation(&self) -> u64 {
        self.synced
    }

    fn block_of(&self, key: u64, active: bool) -> usize {
        ((key >> (64 - self.bits)) as usize) << 1 | usize::from(active)
    }

    fn bump(&mut self, block: usize, family: usize) {
        self.blocks[block].stamps[family] = self.next_stamp;
        self.next_stamp += 1;
    }

    /// Catches up with the store: new and changed reports, functions
    /// gone. Costs a pass over the store's functions plus the work for
    /// those that changed.
    pub(crate) fn sync(&mut self, store: &Store) {
        if store.generation() == self.synced {
            return;
        }
        let changes = store.changes_since(self.synced);
        for report in changes.changed {
            let key = report.urn.spread_key();
            let active = is_active(&report);
            let b = self.block_of(key, active);
            let found = self.find(b, key, &report.urn);
            if found.is_err() {
                // Become active or quiet: out of the other block.
                if let Ok(i) = self.find(b ^ 1, key, &report.urn) {
                    let mut m = self.blocks[b ^ 1].members.remove(i);
                    for f in (0..FAMILIES).filter(|f| m.fingerprints[*f] != 0) {
                        self.bump(b ^ 1, f);
                    }
                    let new = fingerprints(&report);
                    for f in (0..FAMILIES).filter(|f| new[*f] != 0) {
                        self.bump(b, f);
                    }
                    let (Ok(i) | Err(i)) = self.find(b, key, &report.urn);
                    let old = std::mem::replace(&mut m.report, report);
                    self.retired.push(old);
                    self.blocks[b].members.insert(
                        i,
                        Member {
                            fingerprints: new,
                            active,
                            ..m
                        },
                    );
                    continue;
                }
            }
            match found {
                Ok(i) => {
                    let m = &self.blocks[b].members[i];
                    let old = m.fingerprints;
                    let changed = changed_families(&m.report, &report);
                    let new = std::array::from_fn(|family| {
                        if changed[family] {
                            fingerprint(family, &report)
                        } else {
                            old[family]
                        }
                    });
                    for f in (0..FAMILIES).filter(|f| old[*f] != new[*f]) {
                        self.bump(b, f);
                    }
                    let m = &mut self.blocks[b].members[i];
                    m.fingerprints = new;
                    let old = std::mem::replace(&mut m.report, report);
                    self.retired.push(old);
                }
                Err(i) => {
                    let m = Member::new(report, key);
                    *self
                        .per_project
                        .entry(m.urn().project_id().to_owned())
                        .or_default() += 1;
                    for f in (0..FAMILIES).filter(|f| m.fingerprints[*f] != 0) {
                        self.bump(b, f);
                    }
                    self.blocks[b].members.insert(i, m);
                    self.members += 1;
                    self.membership += 1;
                }
            }
        }
        if self.members != changes.total {
            self.remove_gone(store);
        }
        self.synced = changes.generation;
        self.relayout_if_needed();
    }

    /// Where the function with `key` and `urn` is, or would go, in block `b`.
    fn find(&self, b: usize, key: u64, urn: &FunctionUrn) -> Result<usize, usize> {
        self.blocks[b]
            .members
            .binary_search_by(|m| (m.key, m.urn()).cmp(&(key, urn)))
    }

    /// Drops the functions no longer in the store.
    fn remove_gone(&mut self, store: &Store) {
        let current = store.functions();
        let known: HashSet<&FunctionUrn> = current.iter().map(|s| &s.urn).collect();
        for b in 0..self.blocks.len() {
            let members = std::mem::take(&mut self.blocks[b].members);
            let (kept, gone): (Vec<Member>, Vec<Member>) =
                members.into_iter().partition(|m| known.contains(m.urn()));
            self.blocks[b].members = kept;
            for m in gone {
                for f in (0..FAMILIES).filter(|f| m.fingerprints[*f] != 0) {
                    self.bump(b, f);
                }
                let project = m.urn().project_id();
                if let Some(n) = self.per_project.get_mut(project) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_project.remove(project);
                    }
                }
                self.members -= 1;
                self.membership += 1;
                self.retired.push(m.report);
            }
        }
    }

    /// Re-blocks everything when the blocks have grown to four times, or
    /// shrunk to a quarter of, their target size (every view then encodes
    /// everything once more).
    fn relayout_if_needed(&mut self) {
        let desired = desired_bits(self.members);
        if desired.abs_diff(self.bits) < 2 {
            return;
        }
        let mut members: Vec<Member> = self
            .blocks
            .drain(..)
            .flat_map(|b| b.members.into_iter())
            .collect();
        members.sort_by(|a, b| (a.key, a.urn()).cmp(&(b.key, b.urn())));
        self.bits = desired;
        self.blocks = (0..2usize << desired).map(|_| Block::default()).collect();
        for m in members {
            let b = self.block_of(m.key, m.active);
            self.blocks[b].members.push(m);
        }
        for b in 0..self.blocks.len() {
            for f in 0..FAMILIES {
                self.bump(b, f);
            }
        }
        self.membership += 1;
    }

    /// The reports replaced or dropped since the last call, to be freed
    /// elsewhere.
    pub(crate) fn take_retired(&mut self) -> Vec<Arc<FunctionReport>> {
        std::mem::take(&mut self.retired)
    }

    /// Forgets a view's encodings.
    pub(crate) fn drop_view(&mut self, view: usize) {
        for b in &mut self.blocks {
            b.segments[view] = Vec::new();
        }
    }
}

/// Blocks of about [`BLOCK_TARGET`] functions, and at least 2^MIN_BITS.
fn desired_bits(functions: usize) -> u32 {
    let per_target = (functions / BLOCK_TARGET).max(1);
    per_target.ilog2().clamp(MIN_BITS, MAX_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_grow_in_number_with_the_functions() {
        let t = BLOCK_TARGET;
        assert_eq!(desired_bits(0), MIN_BITS);
        assert_eq!(desired_bits(16 * t), MIN_BITS);
        assert_eq!(desired_bits(78 * t), 6);
        assert_eq!(desired_bits(781 * t), 9);
        assert_eq!(desired_bits(usize::MAX), MAX_BITS);
    }
}
