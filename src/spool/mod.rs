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
//! Appended events wait in memory until [`Spool::flush`] (or [`Spool::flush_behind`]), which
//! hands all of them to the spool's writer as one block per segment (more if they exceed
//! [`BLOCK_RAW_BYTES`]); the Submitter flushes at the end of every turn of its mailbox. The
//! writer ([`writer`]) is a thread of its own that compresses blocks and does every file
//! operation in the order asked; `flush` waits for it, `flush_behind` does not, and a block's
//! events are live only once its outcome says it is in its log. A segment is sealed once it holds
//! [`SEGMENT_RAW_BYTES`] of events (uncompressed, so that reading one back costs a bounded
//! amount of memory) and deleted with its ack log once all its events are done. Segment numbers
//! only grow.
//!
//! # Blocks
//!
//! See [`record`]: a checksummed header (magic, version, segment nonce, first sequence number,
//! event count, uncompressed and compressed lengths) and a zstd frame of the body ([`body`]):
//! the events' records, then the fragments they share (written once per block). Every event has a sequence number within its segment (the block's first plus its
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
mod body;
mod crc;
mod dirs;
mod layout;
mod limit;
mod reading;
pub(crate) mod record;
mod segment;
mod writer;
mod writing;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub(crate) use body::{Layout, Record};
pub(crate) use dirs::{SinkSpool, SpoolDirs};
use layout::{acks_path, file_len, list, remove_file, segment_path};
use segment::{Pending, Segment};
use writer::{Job, Writer};
use writing::Flying;

use crate::files::{open_private, private_options};
use crate::rng::Rng;

/// A segment is sealed once this many bytes of events (uncompressed, each event's shared
/// fragments counted as its own) were appended to it: reading it back holds about that much in
/// memory.
pub(crate) const SEGMENT_RAW_BYTES: u64 = 4 * 1024 * 1024;
/// A flush holding more than this many bytes of events (uncompressed) for one segment writes
/// several blocks: a damaged block costs less, no block nears [`record::MAX_RAW`], and the
/// blocks waiting for the writer hold little memory (with blocks of 1 MiB waiting for it, the
/// peak of a spilling burst was 3 to 8 MiB higher).
pub(crate) const BLOCK_RAW_BYTES: usize = 256 * 1024;

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
    /// How many of them were spilled (on disk only, so gone): a spilled segment holds only
    /// spilled events.
    pub spilled: u64,
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
    pub records: Vec<(SpoolRef, Record)>,
    /// Events lost to corruption.
    pub corrupt: u64,
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
    /// Blocks not handed to the writer yet, in order.
    pending: Vec<Pending>,
    /// Blocks handed to the writer whose outcome has not come back, in order.
    in_flight: Flying,
    /// Failed writes not reported yet.
    failure: Option<WriteFailure>,
    /// The writer was last told to close every log but this one's.
    sealed_all_but: Option<u64>,
    /// Ack entries not written yet, per segment.
    pending_acks: BTreeMap<u64, Vec<u8>>,
    spilling: bool,
    /// Bytes on disk: logs and ack logs.
    total_bytes: u64,
    rng: Rng,
    /// Compresses and writes blocks, and does every other file operation, on its own thread.
    writer: Writer,
    /// Held for the spool's lifetime: one process per spool directory.
    _lock: File,
    /// Events whose records were removed to keep the spool under its size limit.
    pub overflowed: u64,
    /// Writes that failed (for example on a full disk).
    pub errors: u64,
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
            in_flight: Flying::new(),
            failure: None,
            sealed_all_but: None,
            pending_acks: BTreeMap::new(),
            spilling: false,
            rng: Rng::from_entropy(),
            writer: Writer::start(dir)?,
            _lock: lock,
            overflowed: 0,
            errors: 0,
        })
    }

    /// Bytes on disk: logs and ack logs.
    #[cfg(test)]
    pub fn bytes_on_disk(&self) -> u64 {
        self.total_bytes
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

    /// Whether a whole block's worth of events waits in memory to be written.
    pub fn holds_a_full_block(&self) -> bool {
        self.pending.iter().map(|b| b.body.len()).sum::<usize>() >= BLOCK_RAW_BYTES
    }

    fn remove_segment(&mut self, id: u64) {
        if let Some(segment) = self.segments.remove(&id) {
            self.total_bytes = self.total_bytes.saturating_sub(segment.bytes());
            // Behind the writes to it; the writer knows whether its blocks created the log.
            let job = Job::Remove {
                segment: id,
                log_on_disk: segment.on_disk,
            };
            let _ = self.writer.submit(job);
        }
        self.pending.retain(|b| b.segment != id);
        self.pending_acks.remove(&id);
        if self.writing == Some(id) {
            self.writing = None;
        }
    }
}
