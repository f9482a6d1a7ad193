//! The spool's writer: a thread of its own that compresses blocks and does every file operation
//! on this run's segments (block writes, ack entries, deletions, syncs) in the order the
//! runtime's thread asked for them. The runtime's thread keeps the bookkeeping and learns how
//! each write went from the outcomes, in the same order; compressing and writing a burst's
//! blocks then costs it nothing, so with two CPUs the spool no longer slows the pipeline by
//! the time it takes.
//!
//! Jobs wait in a channel of [`QUEUE`] jobs: a disk slower than the events come waits the
//! runtime's thread at the next job, rather than growing memory. A writer that stopped (it
//! cannot panic on a file's contents, but the thread could fail to start or die) fails every
//! later block, so its events are counted as not spooled, never as written.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;

use super::acks;
use super::layout::{acks_path, create_log, remove_file, segment_path};
use super::record::Packer;
use super::segment::Pending;
use crate::files::{open_private, private_options};

/// Jobs the channel holds: two blocks of [`BLOCK_RAW_BYTES`](super::BLOCK_RAW_BYTES) at
/// most wait behind the one being written, so that what waits stays under a MiB.
const QUEUE: usize = 2;

/// The largest uncompressed body the writer keeps room for between blocks (a block is
/// [`BLOCK_RAW_BYTES`](super::BLOCK_RAW_BYTES) or a single larger event).
const RAW_KEPT: usize = 4 << 20;

/// One thing to do to the files.
pub(super) enum Job {
    /// Compress `block` and append it to its segment's log (created on the first block).
    Block { nonce: u64, block: Pending },
    /// Append ack entries to a segment's ack log. `log_on_disk`: the log existed before this
    /// run wrote to it (an earlier run's segment).
    Acks {
        segment: u64,
        log_on_disk: bool,
        good_len: u64,
        bytes: Vec<u8>,
    },
    /// Close every log but that of segment `keep`: they get no more blocks.
    Seal { keep: Option<u64> },
    /// Delete a segment's log, then its ack log. `log_on_disk`: as for [`Job::Acks`].
    Remove { segment: u64, log_on_disk: bool },
    /// Sync the open log to the device, on a thread of its own so that writes go on.
    Sync,
    /// Sync the open log to the device before the next job (at shutdown).
    SyncNow,
    /// Answered by [`Outcome::Barrier`] once every job before it is done.
    Barrier,
    /// Test hooks: writes that fail.
    #[cfg(test)]
    Fault(Fault),
}

/// Writes that fail on purpose, in tests.
#[cfg(test)]
pub(super) enum Fault {
    /// The next this many block writes write half their bytes and fail, as on a disk that
    /// fills up mid-write.
    TornWrites(usize),
    /// Segment `.0`'s log is this file from now on (for example `/dev/full`).
    LogFile(u64, File),
    /// The writer waits for a message (or the sender's end) before its next job: the jobs
    /// queued meanwhile stay in flight.
    Pause(Receiver<()>),
}

/// How a block went.
#[derive(Debug)]
pub(super) struct BlockOutcome {
    pub segment: u64,
    pub first_seq: u64,
    /// The log exists (this job or an earlier one created it).
    pub created: bool,
    /// The log's length up to its last whole block, after the job.
    pub log_len: u64,
    pub result: Result<(), BlockFailure>,
}

/// A block that did not reach its log.
#[derive(Debug)]
pub(super) struct BlockFailure {
    pub error: io::Error,
    /// The log could not be cut back (or not created): it gets no more blocks.
    pub broken: bool,
}

/// What the writer tells the runtime's thread, in the order of the jobs.
#[derive(Debug)]
pub(super) enum Outcome {
    Block(BlockOutcome),
    /// A segment's ack log is `Ok(length)` now, or could not be appended to.
    Acks {
        segment: u64,
        result: io::Result<u64>,
    },
    Barrier,
}

/// The writer's thread is gone: the job was not done.
#[derive(Debug)]
pub(super) struct Stopped;

/// The runtime's side of the writer.
pub(super) struct Writer {
    jobs: Option<SyncSender<Job>>,
    outcomes: Receiver<Outcome>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the writer of the spool in `dir`.
    pub(super) fn start(dir: &Path) -> io::Result<Writer> {
        let (jobs, inbox) = sync_channel(QUEUE);
        let (outbox, outcomes) = std::sync::mpsc::channel();
        let mut files = Files::new(dir.to_path_buf(), Packer::new()?);
        let thread = std::thread::Builder::new()
            .name("telemetry-spool".into())
            .spawn(move || {
                for job in inbox {
                    if let Some(outcome) = files.run(job)
                        && outbox.send(outcome).is_err()
                    {
                        break;
                    }
                }
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            outcomes,
            thread: Some(thread),
        })
    }

    /// Queues `job`; waits while [`QUEUE`] jobs are waiting. `Err` when the writer has
    /// stopped (the job is dropped).
    pub(super) fn submit(&self, job: Job) -> Result<(), Stopped> {
        match &self.jobs {
            Some(jobs) => jobs.send(job).map_err(|_| Stopped),
            None => Err(Stopped),
        }
    }

    /// The outcomes that arrived so far, without waiting.
    pub(super) fn arrived(&self) -> Vec<Outcome> {
        let mut arrived = Vec::new();
        loop {
            match self.outcomes.try_recv() {
                Ok(Outcome::Barrier) => {}
                Ok(outcome) => arrived.push(outcome),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return arrived,
            }
        }
    }

    /// Waits until every job queued so far is done; their outcomes not taken yet, in order.
    pub(super) fn barrier(&self) -> Vec<Outcome> {
        if self.submit(Job::Barrier).is_err() {
            return self.arrived();
        }
        let mut arrived = Vec::new();
        // Every outcome before the barrier's arrives before it; a writer that died on the
        // way ends the channel.
        while let Ok(outcome) = self.outcomes.recv() {
            match outcome {
                Outcome::Barrier => break,
                outcome => arrived.push(outcome),
            }
        }
        arrived
    }
}

impl Drop for Writer {
    /// What was queued is written before the spool is gone (so that a shutdown leaves it on
    /// disk for the next run).
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One segment's log, as the writer knows it.
#[derive(Debug, Default)]
struct Log {
    file: Option<File>,
    /// Up to its last whole block.
    len: u64,
    created: bool,
    broken: bool,
}

/// The writer thread's side: this run's open logs and their lengths.
struct Files {
    dir: PathBuf,
    packer: Packer,
    /// A block's uncompressed body, kept from one block to the next: the writer's own
    /// allocations stay the same few buffers however many blocks pass.
    raw: Vec<u8>,
    logs: HashMap<u64, Log>,
    acks_len: HashMap<u64, u64>,
    #[cfg(test)]
    torn_writes: usize,
}

impl Files {
    fn new(dir: PathBuf, packer: Packer) -> Files {
        Files {
            dir,
            packer,
            raw: Vec::new(),
            logs: HashMap::new(),
            acks_len: HashMap::new(),
            #[cfg(test)]
            torn_writes: 0,
        }
    }

    fn run(&mut self, job: Job) -> Option<Outcome> {
        match job {
            Job::Block { nonce, block } => Some(Outcome::Block(self.block(nonce, &block))),
            Job::Acks {
                segment,
                log_on_disk,
                good_len,
                bytes,
            } => self.acks(segment, log_on_disk, good_len, &bytes),
            Job::Seal { keep } => {
                for (id, log) in &mut self.logs {
                    if Some(*id) != keep {
                        log.file = None;
                    }
                }
                None
            }
            Job::Remove {
                segment,
                log_on_disk,
            } => {
                self.remove(segment, log_on_disk);
                None
            }
            Job::Sync => {
                self.sync_behind();
                None
            }
            Job::SyncNow => {
                for file in self.logs.values().filter_map(|log| log.file.as_ref()) {
                    if let Err(error) = file.sync_data() {
                        tracing::warn!(target: "actix_telemetry::spool", %error, "cannot sync the spool at shutdown");
                    }
                }
                None
            }
            Job::Barrier => Some(Outcome::Barrier),
            #[cfg(test)]
            Job::Fault(fault) => {
                self.fault(fault);
                None
            }
        }
    }

    fn acks(
        &mut self,
        segment: u64,
        log_on_disk: bool,
        good_len: u64,
        bytes: &[u8],
    ) -> Option<Outcome> {
        let created = self.logs.get(&segment).is_some_and(|l| l.created);
        if !(created || log_on_disk) {
            // Its events never reached the disk.
            return None;
        }
        let before = *self.acks_len.entry(segment).or_insert(good_len);
        let result = append_acks(&acks_path(&self.dir, segment), before, bytes);
        if let Ok(len) = result {
            self.acks_len.insert(segment, len);
        }
        Some(Outcome::Acks { segment, result })
    }

    fn remove(&mut self, segment: u64, log_on_disk: bool) {
        let created = self.logs.remove(&segment).is_some_and(|l| l.created);
        self.acks_len.remove(&segment);
        if created || log_on_disk {
            // The log first: an ack log left by a crash in between is deleted at the next
            // open, and could acknowledge nothing anyway.
            remove_file(&segment_path(&self.dir, segment));
            remove_file(&acks_path(&self.dir, segment));
        }
    }

    /// Syncs the open logs on a thread of their own: the writes go on meanwhile.
    fn sync_behind(&self) {
        for file in self.open_logs() {
            let sync = move || {
                if let Err(error) = file.sync_data() {
                    tracing::warn!(target: "actix_telemetry::spool", %error, "cannot sync the spool");
                }
            };
            if let Err(error) = std::thread::Builder::new()
                .name("telemetry-fsync".into())
                .spawn(sync)
            {
                tracing::warn!(target: "actix_telemetry::spool", %error, "cannot sync the spool");
            }
        }
    }

    #[cfg(test)]
    fn fault(&mut self, fault: Fault) {
        match fault {
            Fault::TornWrites(n) => self.torn_writes = n,
            Fault::LogFile(segment, file) => {
                self.logs.entry(segment).or_default().file = Some(file)
            }
            Fault::Pause(gate) => {
                let _ = gate.recv();
            }
        }
    }

    fn open_logs(&self) -> Vec<File> {
        self.logs
            .values()
            .filter_map(|log| log.file.as_ref()?.try_clone().ok())
            .collect()
    }

    fn block(&mut self, nonce: u64, block: &Pending) -> BlockOutcome {
        let result = self.write_block(nonce, block);
        let log = self.logs.get(&block.segment);
        BlockOutcome {
            segment: block.segment,
            first_seq: block.first_seq,
            created: log.is_some_and(|l| l.created),
            log_len: log.map_or(0, |l| l.len),
            result,
        }
    }

    fn write_block(&mut self, nonce: u64, block: &Pending) -> Result<(), BlockFailure> {
        let fail = |error, broken| BlockFailure { error, broken };
        if self.logs.get(&block.segment).is_some_and(|l| l.broken) {
            let error =
                io::Error::other("an earlier write to this spool segment could not be undone");
            return Err(fail(error, true));
        }
        if self.raw.capacity() > RAW_KEPT {
            self.raw = Vec::new();
        }
        block.encode_body_into(&mut self.raw);
        let bytes = self
            .packer
            .encode_kept(nonce, block.first_seq, block.count, &self.raw)
            .map_err(|error| fail(error, false))?;
        let log = self.logs.entry(block.segment).or_default();
        let file = match &mut log.file {
            Some(file) => file,
            None => match create_log(&self.dir, block.segment) {
                Ok(file) => {
                    log.created = true;
                    log.file.insert(file)
                }
                Err(error) => {
                    log.broken = true;
                    return Err(fail(error, true));
                }
            },
        };
        #[cfg(test)]
        let torn = self.torn_writes > 0;
        #[cfg(test)]
        {
            self.torn_writes = self.torn_writes.saturating_sub(1);
        }
        #[cfg(not(test))]
        let torn = false;
        if let Err(error) = write(file, bytes, torn) {
            // Cut the file back so that the next block follows a whole one.
            if file.set_len(log.len).is_err() {
                log.broken = true;
                // What stays on disk counts against the size limit.
                log.len = file.metadata().map_or(log.len, |m| m.len()).max(log.len);
                log.file = None;
                return Err(fail(error, true));
            }
            return Err(fail(error, false));
        }
        log.len += bytes.len() as u64;
        Ok(())
    }
}

/// Writes `bytes`; `torn`: writes half of them and fails, as a disk that fills up mid-write.
fn write(file: &mut File, bytes: &[u8], torn: bool) -> io::Result<()> {
    if torn {
        file.write_all(&bytes[..bytes.len() / 2])?;
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "disk full (test)",
        ));
    }
    file.write_all(bytes)
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
