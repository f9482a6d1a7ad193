//! The durable spool: every event a sink queues is written to disk before it is batched, and
//! forgotten only once the backend acknowledged it (or it was dropped for good), so delivery is
//! at-least-once across crashes, `kill -9` and restarts. It also keeps, in spill mode, events
//! that do not fit in memory, to be read back later in order.
//!
//! # Layout
//!
//! A spool directory holds a `lock` file (one process per directory) and numbered segments:
//! `seg-<n>.log`, a sequence of blocks, and `seg-<n>.acks`, its ack log. The directory and its
//! files are the process's alone ([`crate::files`]): created owner-only, never opened through
//! a symlink, and a directory another user owns or others may write to is refused. Each sink
//! has a directory of its own ([`SpoolDirs`]).
//!
//! Appended events wait in memory until [`Spool::flush`], which writes all of them as one
//! compressed block per segment (more if they exceed [`BLOCK_RAW_BYTES`]); the Submitter
//! flushes at the end of every turn of its mailbox. A segment is sealed once it holds
//! [`SEGMENT_RAW_BYTES`] of events (uncompressed, so that reading one back costs a bounded
//! amount of memory) and deleted with its ack log once all its events are done. Segment numbers
//! only grow.
//!
//! # Blocks
//!
//! See [`record`]: a checksummed header (magic, version, segment nonce, first sequence number,
//! event count, uncompressed and compressed lengths) and a zstd frame of the length-prefixed
//! events. Every event has a sequence number within its segment (the block's first plus its
//! index), and a [`SpoolRef`] names an event by segment and sequence number, never by position.
//!
//! # Acknowledgements
//!
//! See [`acks`]: one checksummed 12-byte entry per event that is done, naming its sequence
//! number. Each segment has a random nonce, written in every block header and mixed into every
//! ack entry's checksum. Three rules keep an ack log from ever acknowledging events it was not
//! written for:
//! - a new segment's number is above every number found on disk, `.log` or `.acks`, so a crash
//!   that left an ack log behind its deleted segment never hands it to a new segment;
//! - `open` deletes ack logs that have no segment (the crash above: a segment is deleted
//!   before its ack log);
//! - and should an ack log still meet a segment other than its own (a file restored or copied
//!   in), the nonce makes none of its entries match. The nonce is the rule that holds without
//!   assumptions about the directory; the other two keep stale files from lingering and
//!   growing.
//!
//! # What each fault costs
//!
//! - A damaged block body: that block's events, counted ([`Replay::corrupt`], the header's
//!   count); the next block is found from the header's length, or by its magic.
//! - A damaged block header: that block's events, counted once per damaged stretch (the count
//!   is unknown); the reader looks for the next magic.
//! - A segment cut short (a crash mid-write): the events of the last, incomplete block,
//!   counted.
//! - A damaged or torn ack entry: that entry, whose event may be delivered again. Nothing
//!   else shifts.
//! - A failed write: the events of the blocks that did not reach the file, listed in
//!   [`WriteFailure::lost`] and forgotten; the file is cut back to its last whole block (or,
//!   if that fails too, the segment is sealed and the next events start a new one), so later
//!   blocks are unharmed.
//! - A failed ack write: those events may be delivered again after a restart.
//!
//! # Why files of our own
//!
//! The access pattern is a queue (append, acknowledge, delete whole segments), which
//! append-only files serve with one sequential write per turn and no compaction; a corrupt
//! block costs only itself; and no crate with its own file format and lock semantics joins
//! the dependency tree.

pub(crate) mod acks;
mod dirs;
pub(crate) mod record;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use acks::Acks;
pub(crate) use dirs::{SinkSpool, SpoolDirs};
use record::{Found, Packer};

use crate::files::{open_private, private_options, read_private};
use crate::rng::Rng;

/// A segment is sealed once this many bytes of events (uncompressed) were appended to it:
/// reading it back holds that much in memory.
pub(crate) const SEGMENT_RAW_BYTES: u64 = 4 * 1024 * 1024;
/// A flush holding more than this many bytes of events (uncompressed) for one segment writes
/// several blocks: a damaged block costs less, and no block nears [`record::MAX_RAW`].
pub(crate) const BLOCK_RAW_BYTES: usize = 1024 * 1024;

/// Where one spooled event lives: its segment and its sequence number there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SpoolRef {
    pub segment: u64,
    pub seq: u64,
}

/// A flush that did not write everything.
#[derive(Debug, thiserror::Error)]
#[error("{error} ({} events not spooled)", .lost.len())]
pub(crate) struct WriteFailure {
    /// The first error.
    pub error: io::Error,
    /// The events that did not reach the disk; the spool has forgotten them (spilled ones
    /// among them are gone).
    pub lost: Vec<SpoolRef>,
}

/// What [`Spool::enforce_limit`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Removed {
    /// Removed segments whose events the caller may hold in memory (no longer durable).
    pub segments: Vec<u64>,
    /// Spilled events of this run removed before they were read back: lost.
    pub unread_lost: u64,
    /// Events of an earlier run's segments removed before they were read back: lost.
    pub earlier_lost: u64,
}

/// The events of one segment, read back.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// Events not acknowledged, oldest first; live until acknowledged.
    pub records: Vec<(SpoolRef, Vec<u8>)>,
    /// Events lost to corruption.
    pub corrupt: u64,
}

#[derive(Debug)]
struct Segment {
    /// Binds the segment's blocks and ack entries; learnt from its blocks when an earlier run's
    /// segment is read back.
    nonce: Option<u64>,
    /// Still to be returned by [`Spool::read_back`]: an earlier run's segment, or a spilled
    /// one.
    unread: bool,
    /// Written by this run while spilling.
    spill: bool,
    /// Events on disk and not acknowledged (unknown, so 0, for an earlier run's segment not
    /// read back yet).
    live: u64,
    /// The next event's sequence number (past every one read, for an earlier run's segment).
    next_seq: u64,
    /// Bytes of events appended, uncompressed: decides when the segment is sealed.
    raw_bytes: u64,
    /// Length of the log up to its last whole block.
    log_len: u64,
    /// Length of the ack log up to its last whole entry.
    acks_len: u64,
    /// Open while this run writes blocks to the segment.
    file: Option<File>,
    /// Whether the log file exists.
    on_disk: bool,
    /// A failed write could not be undone (or the file not created): nothing more is
    /// written to it.
    broken: bool,
    /// Sequence numbers of events whose block failed to write.
    lost: Vec<Range<u64>>,
}

impl Segment {
    fn new(nonce: u64, spill: bool) -> Segment {
        Segment {
            nonce: Some(nonce),
            unread: spill,
            spill,
            live: 0,
            next_seq: 0,
            raw_bytes: 0,
            log_len: 0,
            acks_len: 0,
            file: None,
            on_disk: false,
            broken: false,
            lost: Vec::new(),
        }
    }

    fn earlier(log_len: u64, acks_len: u64) -> Segment {
        Segment {
            nonce: None,
            unread: true,
            on_disk: true,
            log_len,
            acks_len,
            ..Segment::new(0, false)
        }
    }

    fn bytes(&self) -> u64 {
        self.log_len + self.acks_len
    }
}

/// Events appended and not written yet: the body of one block.
#[derive(Debug)]
struct Pending {
    segment: u64,
    first_seq: u64,
    count: u32,
    raw: Vec<u8>,
    /// Of these events, the ones acknowledged already.
    acked: Vec<u64>,
}

impl Pending {
    fn seqs(&self) -> Range<u64> {
        self.first_seq..self.first_seq + u64::from(self.count)
    }

    fn unacked(&self) -> u64 {
        u64::from(self.count).saturating_sub(self.acked.len() as u64)
    }

    fn refs(&self) -> impl Iterator<Item = SpoolRef> + '_ {
        self.seqs().map(|seq| SpoolRef {
            segment: self.segment,
            seq,
        })
    }
}

/// Test hooks for writes that fail; nothing outside tests.
#[derive(Debug, Default)]
struct Faults {
    /// The next this many block writes write half their bytes and fail, as on a disk that
    /// fills up mid-write.
    #[cfg(test)]
    torn_writes: usize,
}

impl Faults {
    fn write(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
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

/// One sink's spool. See the module documentation.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// [`SEGMENT_RAW_BYTES`]; smaller in tests.
    segment_raw_bytes: u64,
    segments: BTreeMap<u64, Segment>,
    /// The segment appends go to.
    writing: Option<u64>,
    next_id: u64,
    /// Blocks not written yet, in order.
    pending: Vec<Pending>,
    /// Ack entries not written yet, per segment.
    pending_acks: BTreeMap<u64, Vec<u8>>,
    spilling: bool,
    /// Bytes on disk: logs and ack logs.
    total_bytes: u64,
    rng: Rng,
    packer: Packer,
    faults: Faults,
    /// Held for the spool's lifetime: one process per spool directory.
    _lock: File,
    /// Events whose records were removed to keep the spool under its size limit.
    pub overflowed: u64,
    /// Writes that failed (for example on a full disk).
    pub errors: u64,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:020}.log"))
}

fn acks_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:020}.acks"))
}

/// The segment number and whether it is the log (not the ack log), from a file name.
fn parse_name(name: &str) -> Option<(u64, bool)> {
    let rest = name.strip_prefix("seg-")?;
    let (number, is_log) = match rest.strip_suffix(".log") {
        Some(number) => (number, true),
        None => (rest.strip_suffix(".acks")?, false),
    };
    Some((number.parse().ok()?, is_log))
}

fn file_len(path: &Path) -> u64 {
    fs::symlink_metadata(path).map_or(0, |m| m.len())
}

fn remove_file(path: &Path) {
    if let Err(error) = fs::remove_file(path)
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), %error, "cannot delete a spool file");
    }
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir`. The segments an earlier run left are
    /// only listed here; [`read_back`](Spool::read_back) reads them.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        crate::files::ensure_private_dir(dir)?;
        let lock = open_private(
            private_options().create(true).truncate(false).write(true),
            &dir.join("lock"),
        )?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("spool {} is in use by another process", dir.display()),
            )
        })?;
        let (logs, ack_logs) = list(dir)?;
        for orphan in ack_logs.difference(&logs) {
            remove_file(&acks_path(dir, *orphan));
        }
        let next_id = logs.iter().chain(&ack_logs).max().map_or(1, |max| max + 1);
        let segments: BTreeMap<u64, Segment> = logs
            .iter()
            .map(|id| {
                let (log, acks) = (segment_path(dir, *id), acks_path(dir, *id));
                (*id, Segment::earlier(file_len(&log), file_len(&acks)))
            })
            .collect();
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_raw_bytes: SEGMENT_RAW_BYTES,
            total_bytes: segments.values().map(Segment::bytes).sum(),
            segments,
            writing: None,
            next_id,
            pending: Vec::new(),
            pending_acks: BTreeMap::new(),
            spilling: false,
            rng: Rng::from_entropy(),
            packer: Packer::new()?,
            faults: Faults::default(),
            _lock: lock,
            overflowed: 0,
            errors: 0,
        })
    }

    /// Bytes on disk of the segments still to be read back.
    pub fn unread_bytes(&self) -> u64 {
        self.segments
            .values()
            .filter(|s| s.unread)
            .map(Segment::bytes)
            .sum()
    }

    /// Whether segments are still to be read back (an earlier run's, or spilled ones).
    pub fn has_unread(&self) -> bool {
        self.segments.values().any(|s| s.unread)
    }

    /// Whether spilled events are still to be read back, or appends are spilled.
    pub fn is_spilling(&self) -> bool {
        self.spilling
    }

    /// The number the next new segment takes: segments below it were left by an earlier run.
    pub fn next_segment_id(&self) -> u64 {
        self.next_id
    }

    /// Events on disk and not acknowledged (not counting an earlier run's segments that are
    /// not read back yet, nor events not flushed yet).
    pub fn live(&self) -> u64 {
        self.segments.values().map(|s| s.live).sum()
    }

    /// Whether anything waits for [`flush`](Spool::flush).
    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty() || !self.pending_acks.is_empty()
    }

    /// A handle to sync the segment being written to the device (off the actor thread).
    pub fn sync_handle(&self) -> Option<File> {
        let segment = self.segments.get(&self.writing?)?;
        segment.file.as_ref()?.try_clone().ok()
    }

    /// From now on, until every spilled segment is read back, appended events go to segments
    /// that [`read_back`](Spool::read_back) returns; the caller keeps them on disk only. The
    /// segment being written is sealed first: its events are the caller's, in memory.
    pub fn spill(&mut self) {
        if !self.spilling {
            self.seal_writing();
            self.spilling = true;
        }
    }

    /// Spools `payload`; it reaches the operating system at the next [`flush`](Spool::flush).
    pub fn append(&mut self, payload: &[u8]) -> SpoolRef {
        let len = record::LENGTH_PREFIX + payload.len();
        let at = self.next_ref(len as u64);
        let fits = self
            .pending
            .last()
            .is_some_and(|b| b.segment == at.segment && b.raw.len() + len <= BLOCK_RAW_BYTES);
        if !fits {
            self.pending.push(Pending {
                segment: at.segment,
                first_seq: at.seq,
                count: 0,
                raw: Vec::with_capacity(len),
                acked: Vec::new(),
            });
        }
        if let Some(block) = self.pending.last_mut() {
            record::push_event(payload, &mut block.raw);
            block.count += 1;
        }
        at
    }

    /// Where the next event of `len` bytes goes: the segment being written, or a new one if
    /// there is none or it is full.
    fn next_ref(&mut self, len: u64) -> SpoolRef {
        if let Some(id) = self.writing
            && let Some(segment) = self.segments.get_mut(&id)
            && segment.raw_bytes < self.segment_raw_bytes
            && !segment.broken
        {
            segment.raw_bytes += len;
            segment.next_seq += 1;
            return SpoolRef {
                segment: id,
                seq: segment.next_seq - 1,
            };
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut segment = Segment::new(self.rng.next_u64(), self.spilling);
        segment.raw_bytes = len;
        segment.next_seq = 1;
        self.segments.insert(id, segment);
        self.writing = Some(id);
        SpoolRef {
            segment: id,
            seq: 0,
        }
    }

    /// Appends go to a new segment from now on.
    fn seal_writing(&mut self) {
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
        match pending {
            Some(block) => block.acked.push(at.seq),
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

    /// Writes `block` to its segment, counting its events live or lost.
    fn write_block(&mut self, block: &Pending) -> io::Result<()> {
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
        let bytes = self
            .packer
            .encode(nonce, block.first_seq, block.count, &block.raw)?;
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
        let mut replay = self.read_segment(id);
        // Events of the segment still in memory: returned as they are, and written so they
        // stay durable until acknowledged.
        let (own, others) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|b| b.segment == id);
        self.pending = others;
        for block in own {
            let _ = self.write_block(&block);
            replay.records.extend(block_records(&block));
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

    /// Removes the oldest segments until the spool fits its size limit. The segment being
    /// written goes only if it alone is over the limit.
    pub fn enforce_limit(&mut self) -> Removed {
        let mut removed = Removed::default();
        while self.total_bytes > self.max_bytes {
            let oldest = self
                .segments
                .keys()
                .copied()
                .find(|id| Some(*id) != self.writing);
            let Some(oldest) = oldest else {
                if self.writing.is_none() {
                    break;
                }
                self.seal_writing();
                continue;
            };
            let earlier = self
                .segments
                .get(&oldest)
                .is_some_and(|s| s.unread && s.nonce.is_none());
            let (events, unread) = self.events_held(oldest);
            if earlier {
                removed.earlier_lost += events;
            } else if unread {
                removed.unread_lost += events;
            } else {
                removed.segments.push(oldest);
            }
            self.overflowed += events;
            self.remove_segment(oldest);
        }
        removed
    }

    /// How many events not acknowledged segment `id` holds, and whether it is unread.
    fn events_held(&self, id: u64) -> (u64, bool) {
        let Some(segment) = self.segments.get(&id) else {
            return (0, false);
        };
        if segment.unread && segment.nonce.is_none() {
            return (self.count_earlier(id), true);
        }
        let pending: u64 = self
            .pending
            .iter()
            .filter(|b| b.segment == id)
            .map(Pending::unacked)
            .sum();
        (segment.live + pending, segment.unread)
    }

    /// The events not acknowledged in an earlier run's segment, from its block headers (so a
    /// block that is damaged counts too: it is removed unread either way).
    fn count_earlier(&self, id: u64) -> u64 {
        let bytes = read_private(&segment_path(&self.dir, id)).unwrap_or_default();
        let mut acked = Acks::default();
        acked.extend(&read_private(&acks_path(&self.dir, id)).unwrap_or_default());
        let mut nonce = None;
        let mut events = 0;
        for found in record::walk(&bytes) {
            let (Found::Block(header, _) | Found::Damaged(header)) = found else {
                continue;
            };
            let nonce = *nonce.get_or_insert(header.nonce);
            let seqs = header.first_seq..header.first_seq + u64::from(header.count);
            events += seqs.filter(|seq| !acked.contains(nonce, *seq)).count() as u64;
        }
        events
    }

    fn remove_segment(&mut self, id: u64) {
        if let Some(segment) = self.segments.remove(&id) {
            self.total_bytes = self.total_bytes.saturating_sub(segment.bytes());
            if segment.on_disk {
                // The log first: an ack log left by a crash in between is deleted at the next
                // open, and could acknowledge nothing anyway.
                remove_file(&segment_path(&self.dir, id));
                remove_file(&acks_path(&self.dir, id));
            }
        }
        self.pending.retain(|b| b.segment != id);
        self.pending_acks.remove(&id);
        if self.writing == Some(id) {
            self.writing = None;
        }
    }
}

/// The segment numbers of the logs and of the ack logs in `dir`.
fn list(dir: &Path) -> io::Result<(BTreeSet<u64>, BTreeSet<u64>)> {
    let (mut logs, mut ack_logs) = (BTreeSet::new(), BTreeSet::new());
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        match parse_name(&entry.file_name().to_string_lossy()) {
            Some((id, true)) => logs.insert(id),
            Some((id, false)) => ack_logs.insert(id),
            None => false,
        };
    }
    Ok((logs, ack_logs))
}

fn create_log(dir: &Path, id: u64) -> io::Result<File> {
    private_options()
        .create_new(true)
        .append(true)
        .open(segment_path(dir, id))
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

/// The events of a block still in memory that are not acknowledged.
fn block_records(block: &Pending) -> Vec<(SpoolRef, Vec<u8>)> {
    let mut records = Vec::new();
    let mut raw = block.raw.as_slice();
    for at in block.refs() {
        let Some((len, rest)) = raw.split_first_chunk::<4>() else {
            break;
        };
        let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
        let (payload, rest) = rest.split_at(len);
        raw = rest;
        if !block.acked.contains(&at.seq) {
            records.push((at, payload.to_vec()));
        }
    }
    records
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
        for (seq, payload) in (header.first_seq..).zip(events) {
            if !acked.contains(header.nonce, seq) {
                replay
                    .records
                    .push((SpoolRef { segment: id, seq }, payload));
            }
        }
    }
    replay
}
