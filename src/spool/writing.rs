//! Writing a spool: appending events, acknowledging them, and flushing both to the operating
//! system as blocks and ack entries, with a failed write costing only its own block.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use super::body::Body;
use super::layout::{acks_path, create_log};
use super::segment::{Pending, Segment};
use super::{BLOCK_RAW_BYTES, Spool, SpoolRef, WriteFailure, acks};
use crate::files::{open_private, private_options};

/// Test hooks for writes that fail; nothing outside tests.
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// The next this many block writes write half their bytes and fail, as on a disk that
    /// fills up mid-write.
    #[cfg(test)]
    pub(super) torn_writes: usize,
}

impl Faults {
    pub(super) fn write(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        if self.torn_writes > 0 {
            self.torn_writes -= 1;
            file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "disk full (test)",
            ));
        }
        file.write_all(bytes)
    }
}

impl Spool {
    /// From now on, until every spilled segment is read back, appended events go to segments
    /// that [`read_back`](Spool::read_back) returns; the caller keeps them on disk only. The
    /// segment being written is sealed first: its events are the caller's, in memory.
    pub fn spill(&mut self) {
        if !self.spilling {
            self.seal_writing();
            self.spilling = true;
        }
    }

    /// Spools a record of `payload` referring to `shared` fragments (written once per block
    /// however many records refer to them); it reaches the operating system at the next
    /// [`flush`](Spool::flush).
    pub fn append(&mut self, payload: &[u8], shared: &[&Arc<str>]) -> SpoolRef {
        let at = self.next_ref();
        let fits = self.pending.last().is_some_and(|b| {
            b.segment == at.segment
                && b.body.len() + b.body.growth(payload, shared) <= BLOCK_RAW_BYTES
        });
        if !fits {
            self.pending.push(Pending {
                segment: at.segment,
                first_seq: at.seq,
                count: 0,
                body: Body::default(),
                acked: Vec::new(),
            });
        }
        if let Some(block) = self.pending.last_mut() {
            block.body.push(payload, shared);
            block.count += 1;
        }
        if let Some(segment) = self.segments.get_mut(&at.segment) {
            // What the event holds once read back, its shared fragments counted as its own:
            // a segment's worth of events read back costs a bounded amount of memory however
            // small their records are.
            let fragments: usize = shared.iter().map(|f| f.len()).sum();
            segment.raw_bytes += (payload.len() + fragments) as u64;
        }
        at
    }

    /// Where the next event goes: the segment being written, or a new one if there is none or
    /// it is full.
    fn next_ref(&mut self) -> SpoolRef {
        if let Some(id) = self.writing
            && let Some(segment) = self.segments.get_mut(&id)
            && segment.raw_bytes < self.segment_raw_bytes
            && !segment.broken
        {
            segment.next_seq += 1;
            return SpoolRef {
                segment: id,
                seq: segment.next_seq - 1,
            };
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut segment = Segment::new(self.rng.next_u64(), self.spilling);
        segment.next_seq = 1;
        self.segments.insert(id, segment);
        self.writing = Some(id);
        SpoolRef {
            segment: id,
            seq: 0,
        }
    }

    /// Appends go to a new segment from now on.
    pub(super) fn seal_writing(&mut self) {
        self.writing = None;
    }

    /// Marks an event done (delivered, or dropped for good). Each is acknowledged once.
    pub fn ack(&mut self, at: SpoolRef) {
        let Some(segment) = self.segments.get_mut(&at.segment) else {
            return; // Removed already (size limit, or every event done).
        };
        let lost = segment.lost.iter().any(|r| r.contains(&at.seq));
        if at.seq >= segment.next_seq || lost {
            return;
        }
        let pending = self
            .pending
            .iter_mut()
            .find(|b| b.segment == at.segment && b.seqs().contains(&at.seq));
        if let Some(block) = pending {
            // Written as a tombstone, or not at all: no ack entry is needed.
            block.acked.push(at.seq);
            return;
        }
        segment.live = segment.live.saturating_sub(1);
        if let Some(nonce) = segment.nonce {
            acks::push(
                nonce,
                at.seq,
                self.pending_acks.entry(at.segment).or_default(),
            );
        }
    }

    /// Writes appended events and acknowledgements to the operating system. Events of a
    /// block that could not be written are listed in the error and forgotten; the spool
    /// carries on with the next flush.
    pub fn flush(&mut self) -> Result<(), WriteFailure> {
        let mut failure: Option<WriteFailure> = None;
        for block in std::mem::take(&mut self.pending) {
            if let Err(error) = self.write_block(&block) {
                let failure = failure.get_or_insert(WriteFailure {
                    error,
                    lost: Vec::new(),
                });
                failure.lost.extend(block.refs());
            }
        }
        self.retire_done();
        self.write_acks();
        failure.map_or(Ok(()), Err)
    }

    /// Writes `block` to its segment, counting its events live or lost. A block whose events
    /// were all acknowledged meanwhile is not written.
    pub(super) fn write_block(&mut self, block: &Pending) -> io::Result<()> {
        if block.unacked() == 0 {
            return Ok(());
        }
        let written = self.try_write_block(block);
        if let Some(segment) = self.segments.get_mut(&block.segment) {
            match &written {
                Ok(()) => segment.live += block.unacked(),
                Err(_) => segment.lost.push(block.seqs()),
            }
        }
        if written.is_err() {
            self.errors += 1;
        }
        written
    }

    fn try_write_block(&mut self, block: &Pending) -> io::Result<()> {
        let segment = self
            .segments
            .get_mut(&block.segment)
            .ok_or_else(|| io::Error::other("the spool segment was removed"))?;
        if segment.broken {
            return Err(io::Error::other(
                "an earlier write to this spool segment could not be undone",
            ));
        }
        // Only an earlier run's segment has no nonce yet, and nothing is appended to one.
        let nonce = segment.nonce.unwrap_or_default();
        let bytes =
            self.packer
                .encode(nonce, block.first_seq, block.count, &block.encoded_body())?;
        let file = match &mut segment.file {
            Some(file) => file,
            None => match create_log(&self.dir, block.segment) {
                Ok(file) => {
                    segment.on_disk = true;
                    segment.file.insert(file)
                }
                Err(error) => {
                    segment.broken = true;
                    return Err(error);
                }
            },
        };
        if let Err(error) = self.faults.write(file, &bytes) {
            // Cut the file back so that the next block follows a whole one.
            if file.set_len(segment.log_len).is_err() {
                segment.broken = true;
                // What stays on disk counts against the size limit.
                let on_disk = file.metadata().map_or(segment.log_len, |m| m.len());
                self.total_bytes += on_disk.saturating_sub(segment.log_len);
                segment.log_len = segment.log_len.max(on_disk);
                segment.file = None;
            }
            return Err(error);
        }
        segment.log_len += bytes.len() as u64;
        self.total_bytes += bytes.len() as u64;
        Ok(())
    }

    fn write_acks(&mut self) {
        for (id, bytes) in std::mem::take(&mut self.pending_acks) {
            let Some(segment) = self.segments.get_mut(&id) else {
                continue;
            };
            if !segment.on_disk {
                continue; // Its events never reached the disk.
            }
            let before = segment.acks_len;
            match append_acks(&acks_path(&self.dir, id), before, &bytes) {
                Ok(len) => segment.acks_len = len,
                Err(_) => self.errors += 1,
            }
            self.total_bytes = (self.total_bytes + segment.acks_len).saturating_sub(before);
        }
    }

    /// Deletes the segments whose events are all done and that will get no more.
    fn retire_done(&mut self) {
        let done: Vec<u64> = self
            .segments
            .iter()
            .filter(|(id, s)| s.live == 0 && !s.unread && self.writing != Some(**id))
            .map(|(id, _)| *id)
            .filter(|id| !self.pending.iter().any(|b| b.segment == *id))
            .collect();
        for id in done {
            self.remove_segment(id);
        }
        // Sealed segments are written no more.
        for (id, segment) in &mut self.segments {
            if self.writing != Some(*id) {
                segment.file = None;
            }
        }
    }
}

/// Appends ack entries to the log at `path`, whole entries of which end at `good_len`;
/// returns its new length. A torn entry past `good_len` (a crash, a failed write) is cut off
/// first so that every entry starts at a multiple of [`acks::ENTRY`].
fn append_acks(path: &Path, good_len: u64, bytes: &[u8]) -> io::Result<u64> {
    let mut file = open_private(private_options().create(true).append(true), path)?;
    let found = file.metadata()?.len();
    let whole = found.min(good_len) - found.min(good_len) % acks::ENTRY;
    if found != whole {
        file.set_len(whole)?;
    }
    if let Err(error) = file.write_all(bytes) {
        let _ = file.set_len(whole);
        return Err(error);
    }
    Ok(whole + bytes.len() as u64)
}
