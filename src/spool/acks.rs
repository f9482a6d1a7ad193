//! A segment's ack log: one 12-byte entry per event that is done,
//! `sequence number (u64) | crc32(segment nonce ‖ sequence number) (u32)`, little-endian.
//!
//! Each entry stands alone: a damaged one is ignored (its event may be delivered again), a
//! torn last entry costs only itself, and no entry can shift another. The nonce in the
//! checksum binds an entry to the segment it was written for: an ack log that meets a segment
//! other than its own acknowledges nothing there.

use std::collections::HashSet;

use super::crc::crc32;

/// Bytes per entry.
pub(crate) const ENTRY: u64 = 12;

fn check(nonce: u64, seq: u64) -> u32 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&nonce.to_le_bytes());
    bytes[8..].copy_from_slice(&seq.to_le_bytes());
    crc32(&bytes)
}

/// Appends the entry for event `seq` of the segment bound by `nonce`.
pub(crate) fn push(nonce: u64, seq: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&check(nonce, seq).to_le_bytes());
}

/// The entries of an ack log as found, checked against a segment only when asked about one
/// of its events (the nonce of an earlier run's segment is known once its blocks are read).
#[derive(Debug, Default)]
pub(crate) struct Acks(HashSet<(u64, u32)>);

impl Acks {
    /// Adds the whole entries of `bytes`; a torn last one is left out.
    pub fn extend(&mut self, bytes: &[u8]) {
        for entry in bytes.chunks_exact(ENTRY as usize) {
            let (seq, crc) = entry.split_at(8);
            if let (Ok(seq), Ok(crc)) = (seq.try_into(), crc.try_into()) {
                self.0
                    .insert((u64::from_le_bytes(seq), u32::from_le_bytes(crc)));
            }
        }
    }

    /// Whether event `seq` of the segment bound by `nonce` is done.
    pub fn contains(&self, nonce: u64, seq: u64) -> bool {
        self.0.contains(&(seq, check(nonce, seq)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_hold_for_their_own_segment_only() {
        let mut bytes = Vec::new();
        push(11, 3, &mut bytes);
        push(11, 9, &mut bytes);
        let mut acks = Acks::default();
        acks.extend(&bytes);
        assert!(acks.contains(11, 3) && acks.contains(11, 9));
        assert!(!acks.contains(11, 4));
        assert!(!acks.contains(12, 3), "an entry of another segment");
    }

    #[test]
    fn a_damaged_or_torn_entry_costs_only_itself() {
        let mut bytes = Vec::new();
        for seq in 0..3 {
            push(5, seq, &mut bytes);
        }
        bytes[ENTRY as usize + 2] ^= 0x10;
        bytes.truncate(bytes.len() - 1);
        let mut acks = Acks::default();
        acks.extend(&bytes);
        assert!(acks.contains(5, 0));
        assert!(!acks.contains(5, 1) && !acks.contains(5, 2));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes around real entries: no panic, and the real entries still count.
        #[test]
        fn any_bytes_around_real_entries(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
            nonce in proptest::prelude::any::<u64>(),
            seq in proptest::prelude::any::<u64>(),
        ) {
            let mut log = Vec::new();
            push(nonce, seq, &mut log);
            let mut acks = Acks::default();
            acks.extend(&log);
            acks.extend(&noise);
            proptest::prop_assert!(acks.contains(nonce, seq));
        }
    }
}
