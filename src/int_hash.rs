//! A hasher for integer keys the crate makes itself (sequence numbers, addresses of shared
//! fragments): one multiplication instead of the standard hasher's defence against chosen
//! keys, which such keys never need. Sequence numbers (`u64`) keep neighbours in neighbouring
//! buckets; addresses (`usize`), whose low bits are all alignment, are spread.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// See the module documentation.
#[derive(Default)]
pub(crate) struct IntHasher(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// The bits the table takes its tag from.
const TAG_BITS: u64 = 0xFE00_0000_0000_0000;

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u64(&mut self, key: u64) {
        // The table takes a bucket from the low bits and a tag from the top seven. The key
        // itself as the low bits keeps neighbours (sequence numbers given out in order and
        // mostly retired in order) in neighbouring buckets, so a large map costs a cache miss
        // per run of keys rather than per key; the tag comes from a multiplication, so that
        // the keys of one bucket group rarely share it.
        let key = self.0 ^ key;
        self.0 = key ^ (key.wrapping_mul(GOLDEN) & TAG_BITS);
    }

    fn write_usize(&mut self, key: usize) {
        // An address: its low bits are the allocation's alignment, the same for every key, so
        // it is mixed whole rather than used as the bucket.
        self.0 = (self.0 ^ key as u64).wrapping_mul(GOLDEN);
    }
}

/// A map from keys the crate makes itself; see the module documentation.
pub(crate) type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_keys_keep_their_low_bits_and_differ_in_their_tags() {
        let hash = |key: u64| {
            let mut hasher = IntHasher::default();
            hasher.write_u64(key);
            hasher.finish()
        };
        let tags: std::collections::HashSet<u64> = (1_000..1_128).map(|k| hash(k) >> 57).collect();
        assert!(tags.len() > 64, "{} tags", tags.len());
        assert!((1_000..1_128).all(|k| hash(k) & !TAG_BITS == k));
        let mut map: IntMap<u64, u64> = IntMap::default();
        for k in 0..10_000 {
            map.insert(k * 3, k);
        }
        assert!(
            (0..10_000).all(|k| map.get(&(k * 3)) == Some(&k) && !map.contains_key(&(k * 3 + 1)))
        );
    }
}
