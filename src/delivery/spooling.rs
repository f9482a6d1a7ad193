//! A sink's side of its durable spool: which held events have a record on disk, events kept on
//! disk only while memory is full (read back in order), what an earlier run left, and what
//! the spool could not keep.
//!
//! The spool itself ([`crate::spool`]) knows files and records; this knows events. Every event
//! it is told about ends in exactly one place: held in memory with a record (`spooled`),
//! on disk only (`disk_only`, spilled or read back and not yet in memory), or dropped and
//! counted (a write that failed, a size limit that removed it before it was read back).

use std::collections::{HashSet, VecDeque};

use crate::event::EncodedEvent;
use crate::int_hash::IntMap;
use crate::spool::{Spool, SpoolRef};
use crate::stats::Stats;

/// An event read back from the spool, on its way into memory.
#[derive(Debug)]
pub(crate) struct ReadBack {
    pub at: SpoolRef,
    pub event: EncodedEvent,
    /// Spilled by this run (as opposed to left by an earlier one).
    pub own: bool,
}

/// What a shutdown deadline left, from the spool's side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Abandoned {
    /// Held in memory, with a record on disk.
    pub held_spooled: u64,
    /// On disk only.
    pub disk_only: u64,
    /// Read back, not taken in, and on disk no more.
    pub lost: u64,
}

/// An event read back and not in memory yet.
#[derive(Debug)]
struct Buffered {
    at: SpoolRef,
    event: EncodedEvent,
    /// Spilled by this run.
    own: bool,
    /// Its record is still on disk (the size limit may have removed its segment since).
    durable: bool,
}

/// Disk-only events a write of the spool lost.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lost {
    /// The write failed (a full disk, EIO).
    pub failed: u64,
    /// The size limit removed them before they were read back.
    pub full: u64,
}

type BySeq<V> = IntMap<u64, V>;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Spooling {
    spool: Option<Spool>,
    /// The record of every held event that has one, by sequence number.
    spooled: BySeq<SpoolRef>,
    /// Read back, not in memory yet (at most one segment's worth).
    read_back: VecDeque<Buffered>,
    /// Segments below this id were left by an earlier run.
    first_own_segment: Option<u64>,
    /// Events on disk only: spilled, or read back and not in memory yet.
    disk_only: u64,
    /// Events spilled by this run so far.
    spilled_total: u64,
    /// Of those, how many came back into memory or were lost: spilled events come back in
    /// order, so the first `own_settled` spilled events are settled.
    own_settled: u64,
    /// Events of an earlier run taken into memory (or dropped as too old).
    recovered: u64,
    /// Corrupt records skipped when reading back.
    corrupt: u64,
    /// Events whose records did not reach the disk, over this run.
    unwritten: u64,
    /// While writes fail: `unwritten` when they started to. One warning when writes start
    /// failing and a total when they work again, not one line per mailbox turn.
    failing_since: Option<u64>,
    /// Reused for every event's JSON on its way into the spool.
    scratch: Vec<u8>,
}

impl Spooling {
    pub fn new(spool: Option<Spool>) -> Self {
        Spooling {
            first_own_segment: spool.as_ref().map(Spool::next_segment_id),
            spool,
            spooled: BySeq::default(),
            read_back: VecDeque::new(),
            disk_only: 0,
            spilled_total: 0,
            own_settled: 0,
            recovered: 0,
            corrupt: 0,
            unwritten: 0,
            failing_since: None,
            scratch: Vec::new(),
        }
    }

    pub fn is_on(&self) -> bool {
        self.spool.is_some()
    }

    /// Whether new events must go to disk only to keep their order behind spilled ones.
    pub fn must_spill(&self) -> bool {
        self.read_back.front().is_some_and(|b| b.own)
            || self.spool.as_ref().is_some_and(Spool::is_spilling)
    }

    /// Events spilled by this run so far.
    pub fn spilled_total(&self) -> u64 {
        self.spilled_total
    }

    /// How many of the events spilled by this run are settled (back in memory, or lost).
    pub fn own_settled(&self) -> u64 {
        self.own_settled
    }

    /// Keeps `event`, which memory has no room for, on disk only.
    pub fn spill(&mut self, event: &EncodedEvent) {
        let Some(spool) = &mut self.spool else {
            return;
        };
        spool.spill();
        append(spool, &mut self.scratch, event);
        self.disk_only += 1;
        self.spilled_total += 1;
    }

    /// Gives held event `seq` a record on disk.
    pub fn record(&mut self, seq: u64, event: &EncodedEvent) {
        if let Some(spool) = &mut self.spool {
            let at = append(spool, &mut self.scratch, event);
            self.spooled.insert(seq, at);
        }
    }

    /// The next event to take into memory from the spool, oldest first.
    pub fn next_read_back(&mut self) -> Option<ReadBack> {
        if self.read_back.is_empty() {
            self.fill_read_back();
        }
        let Buffered { at, event, own, .. } = self.read_back.pop_front()?;
        if own {
            self.settle_own(1);
        } else {
            self.recovered += 1;
        }
        Some(ReadBack { at, event, own })
    }

    fn fill_read_back(&mut self) {
        let Some(spool) = &mut self.spool else {
            return;
        };
        // Spilled events that came back unreadable: settled, as lost to corruption.
        let mut own_corrupt = 0;
        // Segments that hold nothing live are skipped; stop at the first that has something.
        while let Some(replay) = spool.read_back() {
            self.corrupt += replay.corrupt;
            for (at, record) in replay.records {
                let own = self
                    .first_own_segment
                    .is_some_and(|first| at.segment >= first);
                match EncodedEvent::from_spool(record) {
                    Some(event) => self.read_back.push_back(Buffered {
                        at,
                        event,
                        own,
                        durable: true,
                    }),
                    None => {
                        // Not an event any more: counted as corrupt, and so not disk-only.
                        self.corrupt += 1;
                        own_corrupt += u64::from(own);
                        spool.ack(at);
                    }
                }
            }
            if !self.read_back.is_empty() {
                break;
            }
        }
        self.settle_own(own_corrupt);
    }

    /// Read-back event `at` is now held in memory as `seq`.
    pub fn held_from_disk(&mut self, seq: u64, at: SpoolRef) {
        self.spooled.insert(seq, at);
    }

    /// Read-back event `at` was dropped before it reached memory.
    pub fn release_read_back(&mut self, at: SpoolRef) {
        if let Some(spool) = &mut self.spool {
            spool.ack(at);
        }
    }

    /// Held events that left for good: their records are done.
    pub fn release(&mut self, seqs: &[u64]) {
        let Some(spool) = &mut self.spool else {
            return;
        };
        for seq in seqs {
            if let Some(at) = self.spooled.remove(seq) {
                spool.ack(at);
            }
        }
    }

    /// Hands what is buffered to the spool's writer and keeps the spool within its size
    /// limit. Returns how many disk-only events were lost doing so (to be counted as
    /// dropped): to a failed write (reported once its outcome is back), and to the size
    /// limit. `wait`: waits for the writer, so that every outcome is in.
    pub fn write(&mut self, wait: bool) -> Lost {
        let Some(spool) = &mut self.spool else {
            return Lost::default();
        };
        let mut lost = Lost::default();
        let written = if wait {
            spool.flush()
        } else {
            spool.flush_behind()
        };
        match written {
            Ok(()) => {
                if let Some(failures) = self.failing_since.take() {
                    tracing::warn!(
                        target: "actix_telemetry::spool",
                        events_not_durable = self.unwritten - failures,
                        "spool writes work again"
                    );
                }
            }
            Err(failure) => {
                if self.failing_since.is_none() {
                    self.failing_since = Some(self.unwritten);
                    tracing::warn!(
                        target: "actix_telemetry::spool",
                        error = %failure.error,
                        "cannot write the spool; events stay in memory only, or are dropped when memory is full"
                    );
                }
                self.unwritten += failure.lost.len() as u64;
                let gone: HashSet<SpoolRef> = failure.lost.into_iter().collect();
                self.spooled.retain(|_, at| !gone.contains(at));
                lost.failed = failure.spilled;
            }
        }
        let removed = spool.enforce_limit();
        if !removed.segments.is_empty() {
            let gone: HashSet<u64> = removed.segments.into_iter().collect();
            self.spooled.retain(|_, at| !gone.contains(&at.segment));
            for entry in &mut self.read_back {
                entry.durable &= !gone.contains(&entry.at.segment);
            }
            tracing::debug!(target: "actix_telemetry::spool", "spool full: its oldest records are removed");
        }
        // Disk-only events of this run, and (taken in and lost at once, so the accounting
        // balances) an earlier run's events that were never read back.
        lost.full = removed.unread_lost + removed.earlier_lost;
        self.recovered += removed.earlier_lost;
        self.settle_own(lost.failed + removed.unread_lost);
        lost
    }

    /// `n` spilled events left the disk-only state (read back, or lost).
    fn settle_own(&mut self, n: u64) {
        self.disk_only = self.disk_only.saturating_sub(n);
        self.own_settled = (self.own_settled + n).min(self.spilled_total);
    }

    pub fn holds_a_full_block(&self) -> bool {
        self.spool.as_ref().is_some_and(Spool::holds_a_full_block)
    }

    pub fn is_dirty(&self) -> bool {
        self.spool.as_ref().is_some_and(Spool::is_dirty)
    }

    /// Syncs the spool to the device, behind what was handed to its writer so far.
    pub fn sync(&mut self) {
        if let Some(spool) = &mut self.spool {
            spool.sync();
        }
    }

    /// Syncs the spool to the device now (at shutdown: the next run delivers from it). Called
    /// after [`write`](Self::write) waited, so nothing is left for it to write.
    pub fn sync_now(&mut self) {
        if let Some(spool) = &mut self.spool
            && let Err(failure) = spool.sync_now()
        {
            tracing::warn!(target: "actix_telemetry::spool", error = %failure.error, "cannot write the spool at shutdown");
        }
    }

    /// At a shutdown deadline, of the held events `seqs`: how many have a record on disk; how
    /// many more events are on disk only; how many read back but not taken in are on disk no
    /// more (their segment went to the size limit) and so are lost. Everything on disk stays
    /// there for the next run.
    pub fn abandon(&mut self, seqs: &[u64]) -> Abandoned {
        let held_spooled = seqs.iter().filter(|s| self.spooled.contains_key(s)).count() as u64;
        let count = |own: bool, durable: bool| {
            self.read_back
                .iter()
                .filter(|b| b.own == own && b.durable == durable)
                .count() as u64
        };
        let (own_gone, earlier_gone, earlier_kept) =
            (count(true, false), count(false, false), count(false, true));
        let abandoned = Abandoned {
            held_spooled,
            disk_only: self.disk_only.saturating_sub(own_gone) + earlier_kept,
            lost: own_gone + earlier_gone,
        };
        // Earlier-run events read back are taken in now, as spooled or lost, so the counts
        // balance.
        self.recovered += earlier_gone + earlier_kept;
        self.read_back.clear();
        self.spooled.clear();
        // What stays on disk is on disk only now; nothing spilled is waited for any more.
        self.disk_only = abandoned.held_spooled + abandoned.disk_only;
        self.own_settled = self.spilled_total;
        if self.spool.as_ref().is_some_and(Spool::has_unread) {
            tracing::info!(
                target: "actix_telemetry::spool",
                "events spooled by an earlier run and not read back yet stay for the next run"
            );
        }
        abandoned
    }

    #[cfg(test)]
    pub fn disk_only(&self) -> u64 {
        self.disk_only
    }

    #[cfg(test)]
    pub fn recovered(&self) -> u64 {
        self.recovered
    }

    /// The spool's counters, as a part of a sink's [`Stats`].
    pub fn stats(&self) -> Stats {
        let Some(spool) = &self.spool else {
            return Stats::default();
        };
        Stats {
            spooled: spool.live(),
            spool_disk_only: self.disk_only,
            recovered: self.recovered,
            spool_backlog_bytes: spool.unread_bytes(),
            spool_corrupt: self.corrupt,
            spool_errors: spool.errors,
            spool_overflow: spool.overflowed,
            ..Stats::default()
        }
    }
}

/// Spools `event`, its record made in `scratch` (no allocation per event).
fn append(spool: &mut Spool, scratch: &mut Vec<u8>, event: &EncodedEvent) -> SpoolRef {
    event.with_spool_record(scratch, |payload, shared| spool.append(payload, shared))
}
