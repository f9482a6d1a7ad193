//! The durable spool: every event a sink queues is written to disk before it is batched, and
//! forgotten only once the backend acknowledged it (or it was dropped for good), so delivery is
//! at-least-once across crashes, `kill -9` and restarts.
//!
//! Layout: numbered segment files (`seg-<n>.log`) of checksummed records (see [`record`]), each
//! with an ack log (`seg-<n>.acks`, the little-endian `u32` indices of its records that are
//! done). A segment whose records are all done is deleted. A spool left by an earlier run is
//! read back one segment at a time, as the Submitter's queue has room for it, so a large
//! backlog neither delays the start nor has to fit in memory at once; a corrupt record is
//! skipped and counted. Records reach the operating
//! system at the end of each turn of the Submitter's mailbox (so they survive the process being
//! killed) and are synced to the device every second (so they survive power loss).
//!
//! Why files of our own and not an embedded database: the access pattern is a queue (append,
//! acknowledge, delete whole segments), which append-only files serve with one sequential write
//! per batch of events and no compaction; a corrupt record costs only itself; and no crate with
//! its own file format and lock semantics joins the dependency tree.

pub(crate) mod record;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

/// Where one spooled event lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SpoolRef {
    pub segment: u64,
    index: u32,
}

#[derive(Debug)]
struct Segment {
    records: u32,
    /// Records not yet acknowledged; unknown (0) until an earlier run's segment is read back.
    live: u32,
    bytes: u64,
}

/// A segment an earlier run left, not read back yet.
#[derive(Debug)]
struct Unread {
    id: u64,
    /// Indices of its records that are done.
    acked: HashSet<u32>,
}

/// Records of one segment of an earlier run, read back.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// Live records, oldest first.
    pub records: Vec<(SpoolRef, Vec<u8>)>,
    /// Corrupt stretches skipped.
    pub corrupt: u64,
}

/// One sink's spool. See the module documentation.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segments: BTreeMap<u64, Segment>,
    current: Option<(u64, File)>,
    /// Records not yet handed to the operating system.
    pending: Vec<u8>,
    /// Ack indices not yet written, per segment.
    pending_acks: BTreeMap<u64, Vec<u8>>,
    /// Segments of earlier runs still to be read back, oldest first.
    unread: VecDeque<Unread>,
    total_bytes: u64,
    /// Held for the spool's lifetime: one process per spool directory.
    _lock: File,
    /// Events whose records were removed to keep the spool under its size limit (they are
    /// still in memory, but no longer durable).
    pub overflowed: u64,
    /// Writes that failed (for example a full disk); those events are kept in memory only.
    pub errors: u64,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:020}.log"))
}

fn acks_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:020}.acks"))
}

fn segment_id(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// A write that failed, and the records it lost.
#[derive(Debug)]
pub(crate) struct WriteFailure {
    pub error: std::io::Error,
    pub lost: Vec<SpoolRef>,
}

/// What keeping the size limit removed.
#[derive(Debug, Default)]
pub(crate) struct Removed {
    pub segments: Vec<u64>,
    pub unread_lost: u64,
}

impl Spool {
    pub fn next_segment_id(&self) -> u64 {
        self.segments.keys().next_back().map_or(1, |last| last + 1)
    }

    pub fn spill(&mut self) {}

    pub fn is_spilling(&self) -> bool {
        false
    }

    /// Opens (creating it if needed) the spool in `dir`. The segments an earlier run left are
    /// only listed here; [`read_back`](Spool::read_back) reads them.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        crate::state::create_private_dir(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        lock.try_lock().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("spool {} is in use by another process", dir.display()),
            )
        })?;
        let mut ids: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| segment_id(&e.file_name().to_string_lossy()))
            .collect();
        ids.sort_unstable();
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segments: BTreeMap::new(),
            current: None,
            pending: Vec::new(),
            pending_acks: BTreeMap::new(),
            unread: VecDeque::new(),
            total_bytes: 0,
            _lock: lock,
            overflowed: 0,
            errors: 0,
        };
        for id in ids {
            let bytes = fs::metadata(segment_path(dir, id))?.len();
            let acked = fs::read(acks_path(dir, id))
                .unwrap_or_default()
                .chunks_exact(4)
                .filter_map(|c| c.try_into().ok().map(u32::from_le_bytes))
                .collect();
            spool.total_bytes += bytes;
            spool.segments.insert(
                id,
                Segment {
                    records: u32::MAX, // closed: nothing is appended to an old segment
                    live: 0,
                    bytes,
                },
            );
            spool.unread.push_back(Unread { id, acked });
        }
        Ok(spool)
    }

    /// Bytes of the segments of an earlier run still to be read back.
    pub fn unread_bytes(&self) -> u64 {
        self.unread
            .iter()
            .filter_map(|u| self.segments.get(&u.id))
            .map(|s| s.bytes)
            .sum()
    }

    /// Whether segments of an earlier run are still to be read back.
    pub fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }

    /// Reads back the oldest segment an earlier run left: its live records, to be queued
    /// again. `None` when there is none left. A segment that cannot be read is skipped (and
    /// kept on disk for a later run).
    pub fn read_back(&mut self) -> Option<Replay> {
        let Unread { id, acked } = self.unread.pop_front()?;
        let bytes = match fs::read(segment_path(&self.dir, id)) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, segment = id, "cannot read a spool segment back");
                // Forgotten by this run, left on disk for the next.
                if let Some(segment) = self.segments.remove(&id) {
                    self.total_bytes = self.total_bytes.saturating_sub(segment.bytes);
                }
                return Some(Replay::default());
            }
        };
        let decoded = record::decode(&bytes);
        let mut replay = Replay {
            records: Vec::with_capacity(decoded.records.len()),
            corrupt: decoded.corrupt,
        };
        for (index, payload) in decoded.records.into_iter().enumerate() {
            let index = index as u32;
            if !acked.contains(&index) {
                replay
                    .records
                    .push((SpoolRef { segment: id, index }, payload));
            }
        }
        match self.segments.get_mut(&id) {
            Some(segment) if !replay.records.is_empty() => {
                segment.live = replay.records.len() as u32;
            }
            // Nothing left to deliver, or removed for the size limit meanwhile.
            Some(_) => self.remove_segment(id),
            None => replay.records.clear(),
        }
        Some(replay)
    }

    /// Events whose records are live.
    pub fn live(&self) -> u64 {
        self.segments.values().map(|s| u64::from(s.live)).sum()
    }

    /// Spools `payload`; it reaches the operating system at the next [`flush`](Spool::flush).
    pub fn append(&mut self, payload: &[u8]) -> SpoolRef {
        self.append_opt(payload).unwrap_or(SpoolRef {
            segment: u64::MAX,
            index: 0,
        })
    }

    fn append_opt(&mut self, payload: &[u8]) -> Option<SpoolRef> {
        let needs_new = match &self.current {
            None => true,
            Some((id, _)) => self
                .segments
                .get(id)
                .is_none_or(|s| s.bytes >= SEGMENT_BYTES),
        };
        if needs_new && !self.start_segment() {
            return None;
        }
        let (id, _) = self.current.as_ref()?;
        let id = *id;
        let segment = self.segments.get_mut(&id)?;
        let before = self.pending.len();
        record::encode(payload, &mut self.pending);
        let written = (self.pending.len() - before) as u64;
        let index = segment.records;
        segment.records += 1;
        segment.live += 1;
        segment.bytes += written;
        self.total_bytes += written;
        Some(SpoolRef { segment: id, index })
    }

    fn start_segment(&mut self) -> bool {
        if let Err(error) = self.flush_io() {
            tracing::warn!(%error, "cannot write the spool");
        }
        let id = self.segments.keys().next_back().map_or(1, |last| last + 1);
        let opened = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(segment_path(&self.dir, id));
        match opened {
            Ok(file) => {
                // The previous segment is closed; if everything in it is done, it goes now.
                if let Some((previous, _)) = self.current.take()
                    && self.segments.get(&previous).is_some_and(|s| s.live == 0)
                {
                    self.remove_segment(previous);
                }
                self.segments.insert(
                    id,
                    Segment {
                        records: 0,
                        live: 0,
                        bytes: 0,
                    },
                );
                self.current = Some((id, file));
                true
            }
            Err(error) => {
                self.errors += 1;
                tracing::warn!(%error, dir = %self.dir.display(), "cannot start a spool segment");
                false
            }
        }
    }

    /// Marks an event done (delivered or dropped for good).
    pub fn ack(&mut self, at: SpoolRef) {
        let is_current = self
            .current
            .as_ref()
            .is_some_and(|(id, _)| *id == at.segment);
        let Some(segment) = self.segments.get_mut(&at.segment) else {
            return; // Removed already (overflow).
        };
        segment.live = segment.live.saturating_sub(1);
        if segment.live == 0 && !is_current {
            self.remove_segment(at.segment);
        } else {
            self.pending_acks
                .entry(at.segment)
                .or_default()
                .extend_from_slice(&at.index.to_le_bytes());
        }
    }

    /// Hands buffered records and acks to the operating system.
    pub fn flush(&mut self) -> Result<(), WriteFailure> {
        self.flush_io().map_err(|error| WriteFailure {
            error,
            lost: Vec::new(),
        })
    }

    fn flush_io(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            if let Some((_, file)) = &mut self.current {
                let written = file.write_all(&self.pending);
                self.pending.clear();
                if let Err(error) = written {
                    self.errors += 1;
                    return Err(error);
                }
            } else {
                self.pending.clear();
            }
        }
        for (id, bytes) in std::mem::take(&mut self.pending_acks) {
            let appended = OpenOptions::new()
                .create(true)
                .append(true)
                .open(acks_path(&self.dir, id))
                .and_then(|mut f| f.write_all(&bytes));
            if let Err(error) = appended {
                // Not fatal: those events may be delivered again after a restart.
                tracing::warn!(%error, "cannot record spool acknowledgements");
            }
        }
        Ok(())
    }

    /// Whether anything waits for [`flush`](Spool::flush).
    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty() || !self.pending_acks.is_empty()
    }

    /// A handle to sync the current segment to the device (off the actor thread).
    pub fn sync_handle(&self) -> Option<File> {
        self.current.as_ref().and_then(|(_, f)| f.try_clone().ok())
    }

    /// Removes the oldest segments until the spool fits its size limit; returns how many live
    /// records that cost.
    pub fn enforce_limit(&mut self) -> Removed {
        let mut removed = Removed::default();
        let mut lost = 0;
        while self.total_bytes > self.max_bytes {
            let current = self.current.as_ref().map(|(id, _)| *id);
            let Some(oldest) = self
                .segments
                .keys()
                .copied()
                .find(|id| Some(*id) != current)
            else {
                // Only the segment being written is left: close it so it can go next time.
                if !self.start_segment() {
                    break;
                }
                continue;
            };
            if self.unread.front().is_some_and(|u| u.id == oldest) {
                // Read it to count what it held: every drop is counted.
                lost += self
                    .read_back()
                    .map_or(0, |replay| replay.records.len() as u64);
            } else {
                lost += u64::from(self.segments.get(&oldest).map_or(0, |s| s.live));
            }
            self.remove_segment(oldest);
            removed.segments.push(oldest);
        }
        self.overflowed += lost;
        removed
    }

    fn remove_segment(&mut self, id: u64) {
        if let Some(segment) = self.segments.remove(&id) {
            self.total_bytes = self.total_bytes.saturating_sub(segment.bytes);
        }
        self.pending_acks.remove(&id);
        self.delete_files(id);
    }

    fn delete_files(&self, id: u64) {
        for path in [segment_path(&self.dir, id), acks_path(&self.dir, id)] {
            if let Err(error) = fs::remove_file(&path)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %path.display(), %error, "cannot delete a spool file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything an earlier run left, read back segment by segment.
    fn read_all(spool: &mut Spool) -> Vec<(SpoolRef, Vec<u8>)> {
        std::iter::from_fn(|| spool.read_back())
            .flat_map(|r| r.records)
            .collect()
    }

    fn temp() -> PathBuf {
        std::env::temp_dir().join(format!(
            "actix-telemetry-spool-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7()
        ))
    }

    #[test]
    fn unacked_records_come_back_and_acked_segments_go() {
        let dir = temp();
        {
            let mut spool = Spool::open(&dir, 1 << 30).unwrap();
            assert!(read_all(&mut spool).is_empty());
            let refs: Vec<SpoolRef> = (0..5)
                .map(|i| spool.append(format!("event-{i}").as_bytes()))
                .collect();
            spool.ack(refs[1]);
            spool.ack(refs[3]);
            spool.flush().unwrap();
            assert_eq!(spool.live(), 3);
        }
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        assert!(spool.has_unread());
        let records = read_all(&mut spool);
        assert!(!spool.has_unread());
        let payloads: Vec<String> = records
            .iter()
            .map(|(_, p)| String::from_utf8(p.clone()).unwrap())
            .collect();
        assert_eq!(payloads, ["event-0", "event-2", "event-4"]);
        for (at, _) in &records {
            spool.ack(*at);
        }
        spool.flush().unwrap();
        drop(spool);
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        assert!(read_all(&mut spool).is_empty());
        let logs = fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".log")
            })
            .count();
        assert_eq!(logs, 0, "a fully acknowledged segment was left behind");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn one_process_per_spool() {
        let dir = temp();
        let _first = Spool::open(&dir, 1 << 30).unwrap();
        let second = Spool::open(&dir, 1 << 30);
        assert!(second.is_err());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_size_limit_removes_the_oldest_segments() {
        let dir = temp();
        let mut spool = Spool::open(&dir, 6 * 1024 * 1024).unwrap();
        let payload = vec![b'x'; 1024];
        for _ in 0..8 * 1024 {
            spool.append(&payload);
            spool.enforce_limit();
        }
        spool.flush().unwrap();
        assert!(spool.total_bytes <= 6 * 1024 * 1024);
        assert!(spool.overflowed > 0);
        assert_eq!(spool.live() + spool.overflowed, 8 * 1024);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn segments_of_an_earlier_run_are_read_back_one_at_a_time_and_count_when_cut() {
        let dir = temp();
        let payload = vec![b'y'; 1024];
        {
            let mut spool = Spool::open(&dir, 1 << 30).unwrap();
            for _ in 0..3 * 4096 {
                spool.append(&payload);
            }
            spool.flush().unwrap();
        }
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let first = spool.read_back().unwrap();
        assert!(!first.records.is_empty() && first.records.len() < 3 * 4096);
        assert!(spool.has_unread());
        // Past the size limit, the unread segments go, and what they held is counted.
        spool.max_bytes = 0;
        spool.enforce_limit();
        assert!(!spool.has_unread());
        // The segment read back is in memory and counted as no longer durable; the unread
        // ones are counted as they go.
        assert_eq!(
            spool.overflowed,
            3 * 4096,
            "every record removed is counted"
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
