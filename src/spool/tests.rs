use std::collections::BTreeSet;
use std::fs::OpenOptions;

use super::*;

/// A fresh directory of its own.
fn temp() -> PathBuf {
    std::env::temp_dir().join(format!(
        "actix-telemetry-spool-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ))
}

/// Everything still to be read back, segment by segment.
fn read_all(spool: &mut Spool) -> (Vec<(SpoolRef, Vec<u8>)>, u64) {
    let mut records = Vec::new();
    let mut corrupt = 0;
    while let Some(replay) = spool.read_back() {
        records.extend(replay.records);
        corrupt += replay.corrupt;
    }
    (records, corrupt)
}

fn payloads(records: &[(SpoolRef, Vec<u8>)]) -> Vec<String> {
    records
        .iter()
        .map(|(_, p)| String::from_utf8(p.clone()).unwrap())
        .collect()
}

fn files(dir: &Path, suffix: &str) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count()
}

/// An event as the Submitter spools it: the JSON of one analytics event, ~450 bytes, with
/// what differs between events (uuid, time, ids, numbers) as random as it is in practice.
fn event_json(i: u64, rng: &mut Rng) -> Vec<u8> {
    const NAMES: [&str; 5] = [
        "page_viewed",
        "order_placed",
        "request_completed",
        "$feature_flag_called",
        "login",
    ];
    const ROUTES: [&str; 4] = ["/api/v1/orders", "/api/v1/cart", "/health", "/login"];
    let user = rng.below(50);
    let session = uuid::Uuid::from_u64_pair(0x0197_0000_0000_7000 | user, rng.below(4));
    format!(
        concat!(
            r#"{{"name":"{name}","distinct_id":"user-{user:04}","uuid":"{uuid}","#,
            r#""timestamp":"2025-06-03T12:{min:02}:{sec:02}.{ms:03}Z","properties":{{"#,
            r#""$lib":"actix-telemetry","$lib_version":"0.1.0","$os":"Linux","#,
            r#""$os_version":"6.8.0-45-generic","$locale":"en-US","$timezone":"Europe/Berlin","#,
            r#""$session_id":"{session}","host":"web-{host}.eu-west-1.internal","#,
            r#""service":"checkout","route":"{route}/{order}","status":{status},"#,
            r#""duration_ms":{duration},"bytes":{bytes},"seq":{i}}}}}"#
        ),
        name = NAMES[rng.below(5) as usize],
        uuid = uuid::Uuid::now_v7(),
        min = (i / 60_000) % 60,
        sec = (i / 1000) % 60,
        ms = rng.below(1000),
        host = rng.below(8),
        route = ROUTES[rng.below(4) as usize],
        order = rng.below(1_000_000),
        status = [200, 200, 201, 404, 500][rng.below(5) as usize],
        duration = rng.below(2000),
        bytes = rng.below(100_000),
        user = user,
        session = session,
        i = i,
    )
    .into_bytes()
}

fn text(i: u64) -> Vec<u8> {
    format!("event-{i}").into_bytes()
}

/// Bytes that do not compress: sizes on disk are predictable.
fn noise(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn unacked_events_come_back_and_acked_segments_go() {
    let dir = temp();
    {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        assert!(spool.read_back().is_none());
        let refs: Vec<SpoolRef> = (0..5).map(|i| spool.append(&text(i))).collect();
        assert_eq!(spool.live(), 0, "nothing is on disk before a flush");
        spool.ack(refs[1]); // acknowledged before it was written
        spool.flush().unwrap();
        spool.ack(refs[3]);
        spool.flush().unwrap();
        assert_eq!(spool.live(), 3);
    }
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    assert!(spool.has_unread());
    let (records, corrupt) = read_all(&mut spool);
    assert!(!spool.has_unread());
    assert_eq!(
        (payloads(&records), corrupt),
        (
            vec!["event-0".into(), "event-2".into(), "event-4".into()],
            0
        )
    );
    assert_eq!(spool.live(), 3);
    for (at, _) in &records {
        spool.ack(*at);
    }
    spool.flush().unwrap();
    assert_eq!(spool.live(), 0);
    drop(spool);
    assert_eq!(
        files(&dir, ".log") + files(&dir, ".acks"),
        0,
        "a segment all done was left"
    );
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    assert!(read_all(&mut spool).0.is_empty());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn one_process_per_spool() {
    let dir = temp();
    let _first = Spool::open(&dir, 1 << 30).unwrap();
    assert!(Spool::open(&dir, 1 << 30).is_err());
    fs::remove_dir_all(dir).unwrap();
}

#[cfg(unix)]
#[test]
fn files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let at = spool.append(b"x");
    spool.append(b"y");
    spool.flush().unwrap();
    spool.ack(at);
    spool.flush().unwrap();
    for entry in fs::read_dir(&dir).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    fs::remove_dir_all(dir).unwrap();
}

/// One block of the [`Fixture`]: where it starts and ends in the log, its events and whether
/// each is unacknowledged.
struct FixtureBlock {
    start: usize,
    end: usize,
    events: Vec<(String, bool)>,
}

/// A spool left by an earlier run: three blocks of three or four events, one event of each
/// acknowledged, the ack log written.
struct Fixture {
    log: Vec<u8>,
    acks: Vec<u8>,
    blocks: Vec<FixtureBlock>,
    /// Payloads of the acknowledged events, in ack log order.
    acked: Vec<String>,
}

impl Fixture {
    fn build() -> Fixture {
        let dir = temp();
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let mut blocks = Vec::new();
        let mut acked = Vec::new();
        let mut start = 0;
        let mut next = 0;
        for (size, ack) in [(4, 1), (3, 2), (4, 0)] {
            let refs: Vec<SpoolRef> = (next..next + size)
                .map(|i| spool.append(&text(i)))
                .collect();
            spool.flush().unwrap();
            spool.ack(refs[ack]);
            acked.push(format!("event-{}", next + ack as u64));
            let end = spool.segments[&refs[0].segment].log_len as usize;
            let events = (0..size)
                .map(|k| (format!("event-{}", next + k), k != ack as u64))
                .collect();
            blocks.push(FixtureBlock { start, end, events });
            start = end;
            next += size;
        }
        spool.flush().unwrap();
        drop(spool);
        let log = fs::read(segment_path(&dir, 1)).unwrap();
        let acks = fs::read(acks_path(&dir, 1)).unwrap();
        fs::remove_dir_all(dir).unwrap();
        assert_eq!(log.len(), start);
        assert_eq!(acks.len(), 3 * acks::ENTRY as usize);
        Fixture {
            log,
            acks,
            blocks,
            acked,
        }
    }

    fn unacked(&self, keep: impl Fn(usize, usize) -> bool) -> BTreeSet<String> {
        self.blocks
            .iter()
            .filter(|b| keep(b.start, b.end))
            .flat_map(|b| b.events.iter().filter(|(_, live)| *live))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// What a spool made of `log` and `acks` gives back.
    fn read(&self, dir: &Path, log: &[u8], acks: &[u8]) -> (BTreeSet<String>, u64) {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).unwrap();
        fs::write(segment_path(dir, 1), log).unwrap();
        fs::write(acks_path(dir, 1), acks).unwrap();
        let mut spool = Spool::open(dir, 1 << 30).unwrap();
        let (records, corrupt) = read_all(&mut spool);
        let set: BTreeSet<String> = payloads(&records).into_iter().collect();
        assert_eq!(set.len(), records.len(), "an event came back twice");
        (set, corrupt)
    }

    /// The block holding byte `at`: its index, and how many events damage there costs.
    fn damage_at(&self, at: usize) -> (usize, u64) {
        let (k, block) = self
            .blocks
            .iter()
            .enumerate()
            .find(|(_, b)| (b.start..b.end).contains(&at))
            .unwrap();
        let cost = if at - block.start < record::HEADER {
            1
        } else {
            block.events.len() as u64
        };
        (k, cost)
    }
}

#[test]
fn any_damaged_byte_of_a_segment_costs_exactly_its_block() {
    let fixture = Fixture::build();
    let dir = temp();
    for at in 0..fixture.log.len() {
        let mut log = fixture.log.clone();
        log[at] ^= 0x5a;
        let (damaged, cost) = fixture.damage_at(at);
        let expected = fixture.unacked(|start, _| start != fixture.blocks[damaged].start);
        assert_eq!(
            fixture.read(&dir, &log, &fixture.acks),
            (expected, cost),
            "byte {at} flipped"
        );
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_segment_cut_anywhere_keeps_exactly_the_blocks_before_the_cut() {
    let fixture = Fixture::build();
    let dir = temp();
    for cut in 0..=fixture.log.len() {
        let expected = fixture.unacked(|_, end| end <= cut);
        let boundary = cut == fixture.log.len() || fixture.blocks.iter().any(|b| b.start == cut);
        let cost = if boundary {
            0
        } else {
            fixture.damage_at(cut).1
        };
        let read = fixture.read(&dir, &fixture.log[..cut], &fixture.acks);
        assert_eq!(read, (expected, cost), "cut at {cut}");
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_damaged_ack_entry_brings_back_only_its_own_event() {
    let fixture = Fixture::build();
    let all_unacked = fixture.unacked(|_, _| true);
    let dir = temp();
    let entry = acks::ENTRY as usize;
    for at in 0..fixture.acks.len() {
        let mut acks = fixture.acks.clone();
        acks[at] ^= 0x01;
        let mut expected = all_unacked.clone();
        expected.insert(fixture.acked[at / entry].clone());
        assert_eq!(
            fixture.read(&dir, &fixture.log, &acks),
            (expected, 0),
            "ack byte {at} flipped"
        );
    }
    for cut in 0..=fixture.acks.len() {
        let mut expected = all_unacked.clone();
        // Whole entries before the cut hold; the rest come back.
        expected.extend(fixture.acked.iter().skip(cut / entry).cloned());
        let read = fixture.read(&dir, &fixture.log, &fixture.acks[..cut]);
        assert_eq!(read, (expected, 0), "ack log cut at {cut}");
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_torn_ack_entry_is_cut_off_before_new_entries_follow_it() {
    let fixture = Fixture::build();
    let dir = temp();
    fs::create_dir_all(&dir).unwrap();
    fs::write(segment_path(&dir, 1), &fixture.log).unwrap();
    // The third entry torn by a crash.
    fs::write(acks_path(&dir, 1), &fixture.acks[..fixture.acks.len() - 5]).unwrap();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let (records, _) = read_all(&mut spool);
    assert!(payloads(&records).contains(&fixture.acked[2]));
    let (first, _) = records[0].clone();
    spool.ack(first);
    spool.flush().unwrap();
    drop(spool);
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let (again, _) = read_all(&mut spool);
    assert_eq!(
        again.len(),
        records.len() - 1,
        "the new entry was read at its place"
    );
    assert!(!again.iter().any(|(at, _)| *at == first));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn arbitrary_segment_files_never_panic() {
    let mut rng = Rng::seeded(7);
    let fixture = Fixture::build();
    let dir = temp();
    for round in 0..200 {
        let mut log = if round % 2 == 0 {
            fixture.log.clone()
        } else {
            let len = rng.below(400) as usize;
            noise(&mut rng, len)
        };
        for _ in 0..rng.below(6) {
            if !log.is_empty() {
                let at = rng.below(log.len() as u64) as usize;
                log[at] = rng.next_u64() as u8;
            }
        }
        let len = rng.below(40) as usize;
        let acks = noise(&mut rng, len);
        let (set, _) = fixture.read(&dir, &log, &acks);
        assert!(set.len() <= 11);
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_stale_ack_log_never_applies_to_a_newer_segment() {
    let dir = temp();
    let stale = {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let refs: Vec<SpoolRef> = (0..4).map(|i| spool.append(&text(i))).collect();
        spool.flush().unwrap();
        for at in &refs[..3] {
            spool.ack(*at);
        }
        spool.flush().unwrap();
        fs::read(acks_path(&dir, 1)).unwrap()
    };
    // A crash between deleting the segment and deleting its ack log.
    fs::remove_file(segment_path(&dir, 1)).unwrap();
    let appended: Vec<String> = {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        assert!(
            !acks_path(&dir, 1).exists(),
            "the orphan ack log is deleted"
        );
        let refs: Vec<SpoolRef> = (10..14).map(|i| spool.append(&text(i))).collect();
        spool.flush().unwrap();
        assert!(
            refs.iter().all(|at| at.segment > 1),
            "segment 1's number came back"
        );
        (10..14).map(|i| format!("event-{i}")).collect()
    };
    // Even an ack log of another segment under this one's name acknowledges nothing there.
    let logs: Vec<u64> = list(&dir).unwrap().0.into_iter().collect();
    assert_eq!(logs.len(), 1);
    fs::write(acks_path(&dir, logs[0]), &stale).unwrap();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let (records, corrupt) = read_all(&mut spool);
    assert_eq!((payloads(&records), corrupt), (appended, 0));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_write_cut_short_loses_only_its_block_and_later_blocks_are_whole() {
    let dir = temp();
    {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        for i in 0..3 {
            spool.append(&text(i));
        }
        spool.flush().unwrap();
        let failed: Vec<SpoolRef> = (3..6).map(|i| spool.append(&text(i))).collect();
        spool.faults.torn_writes = 1;
        let failure = spool.flush().unwrap_err();
        assert_eq!(failure.error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(failure.lost, failed);
        assert_eq!((spool.live(), spool.errors), (3, 1));
        // An acknowledgement of a lost event changes nothing.
        spool.ack(failed[0]);
        assert_eq!(spool.live(), 3);
        // The disk has room again.
        for i in 6..9 {
            spool.append(&text(i));
        }
        spool.flush().unwrap();
        assert_eq!(spool.live(), 6);
    }
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let (records, corrupt) = read_all(&mut spool);
    let expected: Vec<String> = [0, 1, 2, 6, 7, 8]
        .iter()
        .map(|i| format!("event-{i}"))
        .collect();
    assert_eq!(
        (payloads(&records), corrupt),
        (expected, 0),
        "the file was cut back"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_that_cannot_be_cut_back_moves_on_to_a_new_segment() {
    let dir = temp();
    {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let first = spool.append(&text(0));
        spool.flush().unwrap();
        // Every write fails with ENOSPC, and the file cannot be cut back.
        let full = OpenOptions::new().append(true).open("/dev/full").unwrap();
        spool.segments.get_mut(&first.segment).unwrap().file = Some(full);
        let failed: Vec<SpoolRef> = (1..3).map(|i| spool.append(&text(i))).collect();
        let failure = spool.flush().unwrap_err();
        assert_eq!(failure.error.raw_os_error(), Some(28), "{failure}");
        assert_eq!(failure.lost, failed);
        assert_eq!((spool.live(), spool.errors), (1, 1));
        let later = spool.append(&text(3));
        assert_ne!(
            later.segment, first.segment,
            "still writing to the broken segment"
        );
        spool.flush().unwrap();
        assert_eq!(spool.live(), 2);
    }
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let (records, corrupt) = read_all(&mut spool);
    assert_eq!(
        (payloads(&records), corrupt),
        (vec!["event-0".into(), "event-3".into()], 0)
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_segment_that_cannot_be_created_fails_its_events_and_the_next_one_works() {
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    // Something in the way of the next segment's file.
    let blocker = segment_path(&dir, spool.next_id);
    fs::create_dir(&blocker).unwrap();
    let failed: Vec<SpoolRef> = (0..3).map(|i| spool.append(&text(i))).collect();
    spool.ack(failed[1]);
    let failure = spool.flush().unwrap_err();
    assert_eq!(failure.lost, failed);
    assert_eq!((spool.live(), spool.errors), (0, 1));
    assert!(
        !spool.is_dirty(),
        "acks of events never written wait for nothing"
    );
    let later = spool.append(&text(3));
    spool.flush().unwrap();
    assert_eq!(spool.live(), 1);
    drop(spool);
    assert!(
        blocker.is_dir(),
        "what was in the way is not the spool's to delete"
    );
    fs::remove_dir(&blocker).unwrap();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let (records, _) = read_all(&mut spool);
    assert_eq!(records, [(later, text(3))]);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn spilled_events_are_read_back_in_order_and_the_others_are_not() {
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    spool.segment_raw_bytes = 64;
    // Held in memory by the caller.
    let in_memory: Vec<SpoolRef> = (0..3).map(|i| spool.append(&text(i))).collect();
    spool.flush().unwrap();
    assert!(!spool.is_spilling());
    spool.spill();
    assert!(spool.is_spilling());
    let mut spilled = Vec::new();
    for i in 100..130 {
        spilled.push((spool.append(&text(i)), text(i)));
        if i % 7 == 0 {
            spool.flush().unwrap();
        }
    }
    assert!(spool.is_dirty(), "the last events are not flushed yet");
    let segments: BTreeSet<u64> = spilled.iter().map(|(at, _)| at.segment).collect();
    assert!(segments.len() >= 3, "{segments:?}");
    assert!(!segments.contains(&in_memory[0].segment));
    let mut back = Vec::new();
    let mut returned = 0;
    while spool.is_spilling() {
        let replay = spool.read_back().unwrap();
        assert_eq!(replay.corrupt, 0);
        assert!(
            replay
                .records
                .iter()
                .all(|(at, _)| at.segment == replay.records[0].0.segment)
        );
        back.extend(replay.records);
        returned += 1;
    }
    assert_eq!(back, spilled, "exactly the spilled events, in order");
    assert_eq!(returned, segments.len());
    assert!(spool.read_back().is_none());
    assert!(!spool.has_unread() && !spool.is_dirty());
    assert_eq!(
        spool.live(),
        33,
        "read back, they are live until acknowledged"
    );
    // Spilling ended: new events are the caller's again.
    let after = spool.append(&text(200));
    assert!(after.segment > *segments.last().unwrap());
    spool.flush().unwrap();
    assert!(spool.read_back().is_none());
    for (at, _) in &back {
        spool.ack(*at);
    }
    spool.flush().unwrap();
    assert_eq!(
        files(&dir, ".log"),
        2,
        "spilled segments all done are deleted"
    );
    for at in in_memory.into_iter().chain([after]) {
        spool.ack(at);
    }
    spool.flush().unwrap();
    assert_eq!(spool.live(), 0);
    assert_eq!(
        files(&dir, ".log"),
        1,
        "only the segment being written stays"
    );
    drop(spool);
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    assert!(read_all(&mut spool).0.is_empty());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn spilled_events_survive_a_restart_and_come_back_after_the_earlier_runs() {
    let dir = temp();
    {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        spool.append(&text(0));
        spool.flush().unwrap();
    }
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    spool.spill();
    let spilled = spool.append(&text(1));
    // An earlier run's segment first; spilling goes on meanwhile.
    let first = spool.read_back().unwrap();
    assert_eq!(payloads(&first.records), ["event-0"]);
    assert!(spool.is_spilling());
    // A write that fails as the segment is read back: its events still come back, but only
    // from memory, not live.
    spool.faults.torn_writes = 1;
    let second = spool.read_back().unwrap();
    assert_eq!(second.records, [(spilled, text(1))]);
    assert!(!spool.is_spilling());
    assert_eq!((spool.live(), spool.errors), (1, 1));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_size_limit_reports_what_it_removed() {
    let dir = temp();
    let mut rng = Rng::seeded(3);
    let earlier_unacked = {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        spool.segment_raw_bytes = 1000;
        let refs: Vec<SpoolRef> = (0..20)
            .map(|_| spool.append(&noise(&mut rng, 200)))
            .collect();
        spool.flush().unwrap();
        spool.ack(refs[0]);
        spool.ack(refs[1]);
        spool.flush().unwrap();
        let segments: BTreeSet<u64> = refs.iter().map(|at| at.segment).collect();
        assert_eq!(segments.len(), 4);
        18
    };
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    spool.segment_raw_bytes = 1000;
    let earlier_bytes = spool.total_bytes;
    let mine: Vec<SpoolRef> = (0..10)
        .map(|_| spool.append(&noise(&mut rng, 200)))
        .collect();
    spool.flush().unwrap();
    spool.ack(mine[9]);
    spool.flush().unwrap();
    assert_eq!(spool.live(), 9);
    let (oldest_mine, writing) = (mine[0].segment, mine[9].segment);
    assert_ne!(oldest_mine, writing);
    // Room for everything but the earlier run's segments and the oldest of this run's.
    let oldest_bytes = spool.segments[&oldest_mine].bytes();
    spool.max_bytes = spool.total_bytes - earlier_bytes - oldest_bytes;
    let removed = spool.enforce_limit();
    let in_oldest = mine.iter().filter(|at| at.segment == oldest_mine).count() as u64;
    assert_eq!(
        removed,
        Removed {
            segments: vec![oldest_mine],
            unread_lost: 0,
            earlier_lost: earlier_unacked
        }
    );
    assert_eq!(spool.overflowed, earlier_unacked + in_oldest);
    assert_eq!(spool.live() + in_oldest, 9);
    assert!(!spool.has_unread());
    // The segment being written goes only when it alone is over the limit.
    spool.max_bytes = 0;
    let removed = spool.enforce_limit();
    assert_eq!(*removed.segments.last().unwrap(), writing);
    assert_eq!(
        (removed.unread_lost, spool.live(), spool.total_bytes),
        (0, 0, 0)
    );
    assert_eq!(spool.overflowed, earlier_unacked + 9);
    assert_eq!(files(&dir, ".log") + files(&dir, ".acks"), 0);
    let next = spool.append(b"after");
    assert!(next.segment > writing);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn spilled_segments_removed_unread_are_counted_lost() {
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    spool.segment_raw_bytes = 1000;
    let mut rng = Rng::seeded(5);
    spool.append(&noise(&mut rng, 200));
    spool.flush().unwrap();
    spool.spill();
    for _ in 0..12 {
        spool.append(&noise(&mut rng, 200));
    }
    spool.flush().unwrap();
    spool.max_bytes = 0;
    let removed = spool.enforce_limit();
    assert_eq!(removed.segments.len(), 1, "the caller's own segment");
    assert_eq!(removed.unread_lost, 12);
    assert_eq!((spool.overflowed, spool.live()), (13, 0));
    assert!(spool.read_back().is_none());
    assert!(!spool.is_spilling());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_size_limit_holds_and_every_event_is_accounted_for() {
    let dir = temp();
    let max = 64 * 1024;
    let mut spool = Spool::open(&dir, max).unwrap();
    spool.segment_raw_bytes = 8 * 1024;
    let mut rng = Rng::seeded(9);
    let mut acked = 0;
    for i in 0..2_000u64 {
        let at = spool.append(&noise(&mut rng, 100));
        if i % 5 == 0 {
            spool.ack(at);
            acked += 1;
        }
        if i % 10 == 9 {
            spool.flush().unwrap();
            spool.enforce_limit();
            assert!(spool.total_bytes <= max, "{} bytes", spool.total_bytes);
        }
    }
    assert!(spool.overflowed > 0);
    assert_eq!(spool.live() + spool.overflowed + acked, 2_000);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn large_flushes_are_split_into_blocks_and_segments() {
    let dir = temp();
    let payload = vec![b'z'; 300 * 1024];
    let refs: Vec<SpoolRef> = {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let refs = (0..20).map(|_| spool.append(&payload)).collect();
        let blocks = spool.pending.len();
        spool.flush().unwrap();
        assert!(blocks >= 6, "{blocks} blocks");
        refs
    };
    let segments: BTreeSet<u64> = refs.iter().map(|at| at.segment).collect();
    assert!(segments.len() >= 2, "{segments:?}");
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let (records, corrupt) = read_all(&mut spool);
    assert_eq!(corrupt, 0);
    assert_eq!(records.iter().map(|(at, _)| *at).collect::<Vec<_>>(), refs);
    assert!(records.iter().all(|(_, p)| *p == payload));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn typical_events_compress_at_least_fourfold() {
    let mut rng = Rng::seeded(11);
    let mut ratios = Vec::new();
    for per_block in [1, 16, 64, 256] {
        let dir = temp();
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let mut raw = 0;
        for i in 0..2_048u64 {
            let event = event_json(i, &mut rng);
            raw += event.len();
            spool.append(&event);
            if (i + 1) % per_block == 0 {
                spool.flush().unwrap();
            }
        }
        spool.flush().unwrap();
        let ratio = raw as f64 / spool.total_bytes as f64;
        println!(
            "{per_block:>3} events per block: {:.0} bytes per event as JSON, {:.1} on disk, ratio {ratio:.2}",
            raw as f64 / 2_048.0,
            spool.total_bytes as f64 / 2_048.0,
        );
        ratios.push(ratio);
        drop(spool);
        fs::remove_dir_all(dir).unwrap();
    }
    assert!(ratios[3] >= 4.0, "{ratios:?}");
}
