//! What the spool knows of one segment (its nonce, its events still live, its files' lengths,
//! whether writes to it failed) and of the events appended to one and not written yet.

use std::ops::Range;

use super::SpoolRef;
use super::body::Body;

/// One segment, as this run knows it.
#[derive(Debug)]
pub(super) struct Segment {
    /// Binds the segment's blocks and ack entries; learnt from its blocks when an earlier run's
    /// segment is read back.
    pub(super) nonce: Option<u64>,
    /// Still to be returned by [`Spool::read_back`](super::Spool::read_back): an earlier
    /// run's segment, or a spilled one.
    pub(super) unread: bool,
    /// Written by this run while spilling.
    pub(super) spill: bool,
    /// Events on disk and not acknowledged (unknown, so 0, for an earlier run's segment not
    /// read back yet).
    pub(super) live: u64,
    /// The next event's sequence number (past every one read, for an earlier run's segment).
    pub(super) next_seq: u64,
    /// Bytes of events appended, uncompressed, each with its shared fragments: decides when the
    /// segment is sealed.
    pub(super) raw_bytes: u64,
    /// Length of the log up to its last whole block.
    pub(super) log_len: u64,
    /// Length of the ack log up to its last whole entry.
    pub(super) acks_len: u64,
    /// Whether the log file exists (as far as the writer's outcomes said).
    pub(super) on_disk: bool,
    /// A failed write could not be undone (or the file not created): nothing more is
    /// written to it.
    pub(super) broken: bool,
    /// Sequence numbers of events whose block failed to write.
    pub(super) lost: Vec<Range<u64>>,
}

impl Segment {
    pub(super) fn new(nonce: u64, spill: bool) -> Segment {
        Segment {
            nonce: Some(nonce),
            unread: spill,
            spill,
            live: 0,
            next_seq: 0,
            raw_bytes: 0,
            log_len: 0,
            acks_len: 0,
            on_disk: false,
            broken: false,
            lost: Vec::new(),
        }
    }

    pub(super) fn earlier(log_len: u64, acks_len: u64) -> Segment {
        Segment {
            nonce: None,
            unread: true,
            on_disk: true,
            log_len,
            acks_len,
            ..Segment::new(0, false)
        }
    }

    pub(super) fn bytes(&self) -> u64 {
        self.log_len + self.acks_len
    }
}

/// Events appended and not written yet: the body of one block.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) segment: u64,
    pub(super) first_seq: u64,
    pub(super) count: u32,
    pub(super) body: Body,
    /// Of these events, the ones acknowledged already.
    pub(super) acked: Vec<u64>,
}

impl Pending {
    pub(super) fn seqs(&self) -> Range<u64> {
        self.first_seq..self.first_seq + u64::from(self.count)
    }

    pub(super) fn unacked(&self) -> u64 {
        u64::from(self.count).saturating_sub(self.acked.len() as u64)
    }

    /// Whether each event, by its index in the block, is acknowledged already.
    pub(super) fn acked_mask(&self) -> Vec<bool> {
        let mut mask = vec![false; self.count as usize];
        for seq in &self.acked {
            if let Some(done) = seq
                .checked_sub(self.first_seq)
                .and_then(|i| mask.get_mut(usize::try_from(i).ok()?))
            {
                *done = true;
            }
        }
        mask
    }

    /// The block's body as it is written, into `out`: its acknowledged events as tombstones.
    pub(super) fn encode_body_into(&self, out: &mut Vec<u8>) {
        let mask = self.acked_mask();
        self.body
            .encode_into(|i| mask.get(i).copied().unwrap_or(false), out);
    }

    pub(super) fn refs(&self) -> impl Iterator<Item = SpoolRef> + '_ {
        self.seqs().map(|seq| SpoolRef {
            segment: self.segment,
            seq,
        })
    }
}
