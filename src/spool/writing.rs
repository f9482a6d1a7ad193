//! Writing a spool: appending events, acknowledging them, and handing both to the spool's
//! writer ([`super::writer`]) as blocks and ack entries, with a failed write costing only its
//! own block. A block handed to the writer is in flight until its outcome comes back: its
//! events are live (counted in [`Spool::live`]) only once it is in its log.

use std::collections::VecDeque;
use std::ops::Range;

use std::sync::Arc;

use super::body::Body;
use super::segment::{Pending, Segment};
use super::writer::{BlockFailure, BlockOutcome, Job, Outcome};
use super::{BLOCK_RAW_BYTES, Spool, SpoolRef, WriteFailure, acks};

/// A block handed to the writer whose outcome has not come back.
#[derive(Debug)]
pub(super) struct InFlight {
    segment: u64,
    seqs: Range<u64>,
    /// Its events not acknowledged when it was handed over.
    unacked: u64,
    /// Of those, how many were acknowledged since (their ack entries follow the block).
    acked_since: u64,
    /// A failure is not reported to the caller (the block was written while its segment was
    /// read back, and its events came back from memory).
    quiet: bool,
}

impl InFlight {
    /// Its events that are live once it is written.
    pub(super) fn live(&self) -> u64 {
        self.unacked.saturating_sub(self.acked_since)
    }
}

/// The blocks in flight, oldest first.
pub(super) type Flying = VecDeque<InFlight>;

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
        let flying = self
            .in_flight
            .iter_mut()
            .find(|b| b.segment == at.segment && b.seqs.contains(&at.seq));
        match flying {
            // Not live yet; its ack entry is written after its block (the writer keeps the
            // order), and stays harmless should the block fail.
            Some(block) => block.acked_since += 1,
            None => segment.live = segment.live.saturating_sub(1),
        }
        if let Some(nonce) = segment.nonce {
            acks::push(
                nonce,
                at.seq,
                self.pending_acks.entry(at.segment).or_default(),
            );
        }
    }

    /// Writes appended events and acknowledgements to the operating system and waits for
    /// the writer. Events of a block that could not be written (in this flush or in one
    /// before whose failure was not reported yet) are listed in the error and forgotten; the
    /// spool carries on with the next flush.
    pub fn flush(&mut self) -> Result<(), WriteFailure> {
        self.hand_over();
        self.catch_up();
        self.take_failure()
    }

    /// As [`flush`](Spool::flush), without waiting: the blocks are written behind, and a
    /// failure is reported by the first flush after its outcome came back.
    pub fn flush_behind(&mut self) -> Result<(), WriteFailure> {
        self.hand_over();
        let outcomes = self.writer.arrived();
        self.settle(outcomes);
        self.take_failure()
    }

    /// The failed writes not reported yet.
    fn take_failure(&mut self) -> Result<(), WriteFailure> {
        self.failure.take().map_or(Ok(()), Err)
    }

    /// Waits for the writer and takes in how its jobs went.
    pub(super) fn catch_up(&mut self) {
        let outcomes = self.writer.barrier();
        self.settle(outcomes);
    }

    /// Hands the pending blocks and ack entries to the writer, and retires the segments that
    /// are done.
    fn hand_over(&mut self) {
        for block in std::mem::take(&mut self.pending) {
            self.hand_block(block, false);
        }
        self.retire_done();
        self.hand_acks();
        if self.sealed_all_but != self.writing {
            // Sealed segments get no more blocks: their logs are closed.
            self.sealed_all_but = self.writing;
            let _ = self.writer.submit(Job::Seal { keep: self.writing });
        }
    }

    /// Hands `block` to the writer. A block whose events were all acknowledged meanwhile is
    /// not written. `quiet`: see [`InFlight::quiet`].
    pub(super) fn hand_block(&mut self, block: Pending, quiet: bool) {
        let unacked = block.unacked();
        if unacked == 0 {
            return;
        }
        let Some(segment) = self.segments.get(&block.segment) else {
            return;
        };
        // Only an earlier run's segment has no nonce yet, and nothing is appended to one.
        let nonce = segment.nonce.unwrap_or_default();
        let log_len = segment.log_len;
        let (id, first_seq) = (block.segment, block.first_seq);
        self.in_flight.push_back(InFlight {
            segment: id,
            seqs: block.seqs(),
            unacked,
            acked_since: 0,
            quiet,
        });
        if self.writer.submit(Job::Block { nonce, block }).is_err() {
            let error = std::io::Error::other("the spool's writer stopped");
            self.settle_block(BlockOutcome {
                segment: id,
                first_seq,
                created: false,
                log_len,
                result: Err(BlockFailure {
                    error,
                    broken: true,
                }),
            });
        }
    }

    fn hand_acks(&mut self) {
        for (id, bytes) in std::mem::take(&mut self.pending_acks) {
            let Some(segment) = self.segments.get(&id) else {
                continue;
            };
            let job = Job::Acks {
                segment: id,
                log_on_disk: segment.on_disk,
                good_len: segment.acks_len,
                bytes,
            };
            if self.writer.submit(job).is_err() {
                self.errors += 1;
            }
        }
    }

    /// Takes in how the writer's jobs went, in order.
    pub(super) fn settle(&mut self, outcomes: Vec<Outcome>) {
        for outcome in outcomes {
            match outcome {
                Outcome::Block(block) => self.settle_block(block),
                Outcome::Acks { segment, result } => match result {
                    Ok(len) => {
                        if let Some(segment) = self.segments.get_mut(&segment) {
                            self.total_bytes =
                                (self.total_bytes + len).saturating_sub(segment.acks_len);
                            segment.acks_len = len;
                        }
                    }
                    Err(_) => self.errors += 1,
                },
                Outcome::Barrier => {}
            }
        }
    }

    /// A block is in its log, or failed: its events are live, or lost.
    fn settle_block(&mut self, outcome: BlockOutcome) {
        let at = self
            .in_flight
            .iter()
            .position(|b| b.segment == outcome.segment && b.seqs.start == outcome.first_seq);
        let Some(block) = at.and_then(|at| self.in_flight.remove(at)) else {
            return;
        };
        let Some(segment) = self.segments.get_mut(&block.segment) else {
            return; // Removed meanwhile (the size limit), and counted then.
        };
        segment.on_disk |= outcome.created;
        // What a write that could not be cut back left counts against the size limit too.
        self.total_bytes = (self.total_bytes + outcome.log_len).saturating_sub(segment.log_len);
        segment.log_len = outcome.log_len;
        let failure = match outcome.result {
            Ok(()) => {
                segment.live += block.live();
                return;
            }
            Err(failure) => failure,
        };
        segment.lost.push(block.seqs.clone());
        segment.broken |= failure.broken;
        self.errors += 1;
        if block.quiet {
            return;
        }
        let spilled = if segment.spill {
            block.seqs.end - block.seqs.start
        } else {
            0
        };
        let reported = self.failure.get_or_insert(WriteFailure {
            error: failure.error,
            lost: Vec::new(),
            spilled: 0,
        });
        reported.spilled += spilled;
        reported.lost.extend(block.seqs.map(|seq| SpoolRef {
            segment: block.segment,
            seq,
        }));
    }

    /// Deletes the segments whose events are all done and that will get no more.
    fn retire_done(&mut self) {
        let done: Vec<u64> = self
            .segments
            .iter()
            .filter(|(id, s)| s.live == 0 && !s.unread && self.writing != Some(**id))
            .map(|(id, _)| *id)
            .filter(|id| !self.pending.iter().any(|b| b.segment == *id))
            .filter(|id| !self.in_flight.iter().any(|b| b.segment == *id))
            .collect();
        for id in done {
            self.remove_segment(id);
        }
    }

    /// Events of segment `id` in blocks in flight that are live once written.
    pub(super) fn in_flight_live(&self, id: u64) -> u64 {
        self.in_flight
            .iter()
            .filter(|b| b.segment == id)
            .map(InFlight::live)
            .sum()
    }

    /// Syncs the log being written to the device, behind the writes handed over so far.
    pub fn sync(&mut self) {
        let _ = self.writer.submit(Job::Sync);
    }

    /// Writes everything and syncs it to the device before returning (at shutdown).
    pub fn sync_now(&mut self) -> Result<(), WriteFailure> {
        self.hand_over();
        let _ = self.writer.submit(Job::SyncNow);
        self.catch_up();
        self.take_failure()
    }

    /// Makes the writer fail writes, in tests.
    #[cfg(test)]
    pub(super) fn inject(&self, fault: super::writer::Fault) {
        assert!(self.writer.submit(Job::Fault(fault)).is_ok());
    }
}
