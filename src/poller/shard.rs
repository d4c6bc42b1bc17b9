//! Sharding: which functions this replica polls.
//!
//! A function belongs to shard `hashmod(urn, count)`: the MD5 of its full
//! URN, last 8 bytes read as a big-endian integer, modulo the shard count.
//! That is Prometheus' `hashmod` relabel action, so the split can be
//! reproduced in relabelling and PromQL. N replicas with indexes 0..N
//! together poll every function exactly once.

use md5::{Digest, Md5};

use crate::urn::FunctionUrn;

/// This replica's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// Whether this replica polls `urn`.
    pub fn owns(&self, urn: &FunctionUrn) -> bool {
        self.count <= 1 || hashmod(&urn.to_string(), u64::from(self.count)) == u64::from(self.index)
    }
}

/// Prometheus' `hashmod`: `md5(value)[8..16]` as a big-endian `u64`,
/// modulo `modulus`.
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(value.as_bytes());
    let mut last = [0u8; 8];
    last.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(last) % modulus.max(1)
}

/// The ordinal of a StatefulSet pod's host name (`exporter-3` → 3).
pub fn ordinal_of(hostname: &str) -> Option<u32> {
    let (_, n) = hostname.trim().rsplit_once('-')?;
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashmod_matches_prometheus() {
        // md5("hello") = 5d41402abc4b2a76 b9719d911017c592; the last 8 bytes
        // are 0xb9719d911017c592 = 13362634815750784402.
        assert_eq!(hashmod("hello", u64::MAX), 13_362_634_815_750_784_402);
        assert_eq!(hashmod("hello", 3), 13_362_634_815_750_784_402 % 3);
    }

    #[test]
    fn shards_partition_the_functions() {
        let urns: Vec<FunctionUrn> = (0..300)
            .map(|i| {
                FunctionUrn::parse_full(&format!(
                    "urn:fss:r:0123456789abcdef0123456789abcdef:function:default:f{i}"
                ))
                .unwrap()
            })
            .collect();
        let owners: Vec<usize> = urns
            .iter()
            .map(|u| {
                (0..3)
                    .filter(|i| {
                        Shard {
                            index: *i,
                            count: 3,
                        }
                        .owns(u)
                    })
                    .count()
            })
            .collect();
        assert!(
            owners.iter().all(|n| *n == 1),
            "each function has exactly one shard"
        );
        let first = urns
            .iter()
            .filter(|u| Shard { index: 0, count: 3 }.owns(u))
            .count();
        assert!((60..140).contains(&first), "{first} of 300 in shard 0");
        assert!(urns.iter().all(|u| Shard::default().owns(u)));
    }

    #[test]
    fn ordinals_come_from_statefulset_names() {
        assert_eq!(ordinal_of("functiongraph-exporter-3"), Some(3));
        assert_eq!(ordinal_of("exporter-0\n"), Some(0));
        assert_eq!(ordinal_of("exporter"), None);
        assert_eq!(ordinal_of("exporter-abc"), None);
    }
}
