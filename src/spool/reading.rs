//! Reading a spool back: the oldest segment still to be read, decoded block by block, without
//! the events acknowledged and counting those lost to corruption.

use super::acks::Acks;
use super::layout::{acks_path, segment_path};
use super::record::{self, Found};
use super::segment::Pending;
use super::{Record, Replay, Spool, SpoolRef};
use crate::files::read_private;

impl Spool {
    /// Reads back the oldest segment still to be read: first those an earlier run left, then
    /// spilled ones (the one being written is sealed for it). `None` when there is none left;
    /// then, or once the last spilled one is returned, spilling ends.
    pub fn read_back(&mut self) -> Option<Replay> {
        let next = self
            .segments
            .iter()
            .find(|(_, s)| s.unread)
            .map(|(id, _)| *id);
        let Some(id) = next else {
            self.spilling = false;
            return None;
        };
        let spilled = self.segments.get(&id).is_some_and(|s| s.spill);
        if self.writing == Some(id) {
            self.seal_writing();
        }
        // The log is read whole: the writer finishes it first.
        self.catch_up();
        let mut replay = self.read_segment(id);
        // Events of the segment still in memory: returned as they are, and written so they
        // stay durable until acknowledged (a failure costs only their durability).
        let (own, others): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|b| b.segment == id);
        self.pending = others;
        if !own.is_empty() {
            for block in own {
                replay.records.extend(block_records(&block));
                self.hand_block(block, true);
            }
            self.catch_up();
        }
        match self.segments.get_mut(&id) {
            Some(segment) if segment.live > 0 => segment.unread = false,
            Some(_) => self.remove_segment(id),
            None => {}
        }
        if spilled && !self.segments.values().any(|s| s.unread && s.spill) {
            self.spilling = false;
        }
        Some(replay)
    }

    /// The events on disk of segment `id` not acknowledged, which become its live ones.
    fn read_segment(&mut self, id: u64) -> Replay {
        if !self.segments.get(&id).is_some_and(|s| s.on_disk) {
            return Replay::default();
        }
        let bytes = match read_private(&segment_path(&self.dir, id)) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, segment = id, "cannot read a spool segment back");
                // Forgotten by this run, left on disk for the next.
                let Some(segment) = self.segments.remove(&id) else {
                    return Replay::default();
                };
                self.total_bytes = self.total_bytes.saturating_sub(segment.bytes());
                return Replay {
                    records: Vec::new(),
                    corrupt: segment.live,
                };
            }
        };
        let mut acked = Acks::default();
        acked.extend(&read_private(&acks_path(&self.dir, id)).unwrap_or_default());
        if let Some(pending) = self.pending_acks.get(&id) {
            acked.extend(pending);
        }
        let Some(segment) = self.segments.get_mut(&id) else {
            return Replay::default();
        };
        let replay = decode_segment(&bytes, &acked, &mut segment.nonce, id);
        segment.live = replay.records.len() as u64;
        let past_last = replay.records.last().map_or(0, |(at, _)| at.seq + 1);
        segment.next_seq = segment.next_seq.max(past_last);
        replay
    }
}

/// The events of a block still in memory that are not acknowledged.
fn block_records(block: &Pending) -> Vec<(SpoolRef, Record)> {
    let acked = block.acked_mask();
    block
        .refs()
        .zip(block.body.records())
        .zip(acked)
        .filter(|(_, acked)| !acked)
        .map(|(record, _)| record)
        .collect()
}

/// The events of a segment's file not acknowledged, and how many were lost to corruption.
/// The segment's nonce is that of its first intact block if not known yet; a block bound to
/// another nonce is not the segment's and counts as corrupt.
fn decode_segment(bytes: &[u8], acked: &Acks, nonce: &mut Option<u64>, id: u64) -> Replay {
    let mut replay = Replay::default();
    for found in record::walk(bytes) {
        let (header, body) = match found {
            Found::Block(header, body) => (header, body),
            Found::Damaged(header) => {
                replay.corrupt += u64::from(header.count);
                continue;
            }
            Found::Garbage => {
                replay.corrupt += 1;
                continue;
            }
        };
        let events = record::unpack(&header, body);
        let ours = *nonce.get_or_insert(header.nonce) == header.nonce;
        let Some(events) = events.filter(|_| ours) else {
            replay.corrupt += u64::from(header.count);
            continue;
        };
        for (seq, record) in (header.first_seq..).zip(events) {
            // A tombstone's event was done before its block was written.
            if let Some(record) = record
                && !acked.contains(header.nonce, seq)
            {
                replay.records.push((SpoolRef { segment: id, seq }, record));
            }
        }
    }
    replay
}
