//! Randomness. [`Rng`] and [`UuidV7Source`] are cheap, for where no secret is at stake
//! (spreading load over SRV targets, the random bits of event UUIDs): seeded once from the
//! standard library's per-process random hash keys, so no system call is made per value.
//! [`secret_bytes`] is for a salt that must stay unguessable; [`new_id`] makes a fresh UUIDv7
//! as text.

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

/// A new UUIDv7 as text: an id, or a file name nobody can guess in advance.
pub(crate) fn new_id() -> String {
    Uuid::now_v7().to_string()
}

/// splitmix64.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn from_entropy() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x5eed);
        Rng(hasher.finish() | 1)
    }

    /// Seeded for reproducible tests.
    #[cfg(test)]
    pub fn seeded(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        // The top 53 bits fill an f64's mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `0..n` (`n > 0`).
    #[cfg(any(feature = "srv", test))]
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `N` bytes nobody can guess, for a salt kept secret (unlike [`Rng`], whose 64-bit state is
/// not meant to be): SipHash of a counter under the keys the standard library draws from the
/// operating system's random source for its hash maps, 128 bits of it.
pub(crate) fn secret_bytes<const N: usize>() -> [u8; N] {
    let keys = std::collections::hash_map::RandomState::new();
    let mut bytes = [0u8; N];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let word = keys.hash_one(i as u64).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    bytes
}

/// UUIDv7s: the millisecond timestamp, then a 12-bit counter that keeps ids made in the same
/// millisecond in order, then 62 random bits.
#[derive(Debug)]
pub(crate) struct UuidV7Source {
    rng: Rng,
    last_ms: u64,
    counter: u16,
}

impl UuidV7Source {
    pub fn new() -> Self {
        UuidV7Source {
            rng: Rng::from_entropy(),
            last_ms: 0,
            counter: 0,
        }
    }

    /// An id for something that happened at `at`.
    pub fn next(&mut self, at: SystemTime) -> Uuid {
        let ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let random = self.rng.next_u64();
        if ms == self.last_ms && self.counter < 0x0fff {
            self.counter += 1;
        } else {
            // A fresh millisecond starts the counter low (random, with room to count up).
            self.counter = (random >> 54) as u16 & 0x03ff;
            self.last_ms = self.last_ms.max(ms);
        }
        let mut bytes = [0u8; 10];
        bytes[..2].copy_from_slice(&self.counter.to_be_bytes());
        bytes[2..].copy_from_slice(&random.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_are_v7_ordered_within_a_millisecond_and_distinct() {
        let mut source = UuidV7Source::new();
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let ids: Vec<Uuid> = (0..2000).map(|_| source.next(at)).collect();
        for id in &ids {
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        }
        // The first 1000 share a millisecond and a counter that only counts up.
        for pair in ids[..1000].windows(2) {
            assert!(pair[0] < pair[1]);
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let later = source.next(at + Duration::from_millis(1));
        assert!(later > ids[999]);
    }
}
