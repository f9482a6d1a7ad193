//! A hasher for integer keys the crate makes itself (sequence numbers, addresses of shared
//! fragments): one multiplication instead of the standard hasher's defence against chosen
//! keys, which such keys never need.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplies by the golden ratio's 64-bit constant; see the module documentation.
#[derive(Default)]
pub(crate) struct IntHasher(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

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
        // The top bits pick the bucket group and the control byte: spread them.
        self.0 = (self.0 ^ key).wrapping_mul(GOLDEN);
    }

    fn write_usize(&mut self, key: usize) {
        self.write_u64(key as u64);
    }
}

/// A map from keys the crate makes itself; see the module documentation.
pub(crate) type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;
