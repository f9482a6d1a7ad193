//! What damage to files an earlier run left costs: a damaged or cut segment, damaged or torn ack
//! entries, arbitrary bytes, an ack log that is not its segment's.

use super::*;

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
                .map(|i| spool.append(&text(i), &[]))
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
        let refs: Vec<SpoolRef> = (0..4).map(|i| spool.append(&text(i), &[])).collect();
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
        let refs: Vec<SpoolRef> = (10..14).map(|i| spool.append(&text(i), &[])).collect();
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
