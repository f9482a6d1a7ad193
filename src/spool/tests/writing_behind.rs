//! Blocks written behind, on the writer's thread: what happens to events while their block is
//! in flight (acknowledged, read back, removed by the size limit, the spool dropped), and
//! failures that come back after the flush that handed the block over.

use std::sync::mpsc;

use super::*;
use crate::spool::writer::Fault;

/// Holds the writer before its next job until the returned sender sends or is dropped.
fn pause(spool: &Spool) -> mpsc::Sender<()> {
    let (resume, gate) = mpsc::channel();
    spool.inject(Fault::Pause(gate));
    resume
}

#[test]
fn events_acknowledged_while_their_block_is_in_flight_are_not_live_once_it_is_written() {
    let dir = temp();
    let refs = {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let resume = pause(&spool);
        let refs: Vec<SpoolRef> = (0..4).map(|i| spool.append(&text(i), &[])).collect();
        spool.flush_behind().unwrap();
        assert_eq!(spool.live(), 0, "live before the block is in its log");
        spool.ack(refs[1]);
        spool.ack(refs[2]);
        drop(resume);
        spool.flush().unwrap();
        assert_eq!(spool.live(), 2);
        refs
    };
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let (records, corrupt) = read_all(&mut spool);
    assert_eq!(
        (records, corrupt),
        (vec![(refs[0], text(0)), (refs[3], text(3))], 0),
        "the ack entries followed the block"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_failure_behind_is_reported_by_a_later_flush_with_its_spilled_events() {
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let held = spool.append(&text(0), &[]);
    spool.flush().unwrap();
    spool.inject(Fault::TornWrites(1));
    let resume = pause(&spool);
    spool.spill();
    let spilled: Vec<SpoolRef> = (1..4).map(|i| spool.append(&text(i), &[])).collect();
    spool.flush_behind().unwrap();
    resume.send(()).unwrap();
    let failure = spool.flush().unwrap_err();
    assert_eq!(failure.error.kind(), io::ErrorKind::StorageFull);
    assert_eq!((failure.lost, failure.spilled), (spilled, 3));
    assert_eq!((spool.live(), spool.errors), (1, 1));
    spool.flush().unwrap();
    let replay = spool.read_back().unwrap();
    assert!(
        replay.records.is_empty(),
        "the held event's segment is not read back"
    );
    assert!(
        spool.read_back().is_none(),
        "the spilled segment holds nothing"
    );
    assert_eq!(spool.live(), 1);
    spool.ack(held);
    spool.flush().unwrap();
    assert_eq!(spool.live(), 0);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_spilled_segment_read_back_while_its_blocks_are_in_flight_comes_back_whole() {
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    spool.spill();
    let resume = pause(&spool);
    let first: Vec<SpoolRef> = (0..3).map(|i| spool.append(&text(i), &[])).collect();
    spool.flush_behind().unwrap();
    let second: Vec<SpoolRef> = (3..5).map(|i| spool.append(&text(i), &[])).collect();
    drop(resume);
    let replay = spool.read_back().unwrap();
    let expected: Vec<(SpoolRef, Vec<u8>)> = first
        .iter()
        .chain(&second)
        .zip(0..)
        .map(|(at, i)| (*at, text(i)))
        .collect();
    assert_eq!((plain(replay.records), replay.corrupt), (expected, 0));
    assert_eq!(spool.live(), 5, "the block in memory was written too");
    assert!(!spool.is_spilling());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_size_limit_counts_events_in_flight_once() {
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    spool.segment_raw_bytes = 150;
    let mut rng = Rng::seeded(7);
    let written = spool.append(&noise(&mut rng, 100), &[]);
    spool.flush().unwrap();
    // A second block of the same segment is in flight when the limit removes the segment;
    // the next segment's first block waits in memory.
    let resume = pause(&spool);
    let flying = spool.append(&noise(&mut rng, 100), &[]);
    spool.flush_behind().unwrap();
    let next = spool.append(&noise(&mut rng, 100), &[]);
    assert_eq!(
        (flying.segment, next.segment),
        (written.segment, written.segment + 1)
    );
    spool.max_bytes = 1;
    let removed = spool.enforce_limit();
    assert_eq!(removed.segments, vec![written.segment]);
    assert_eq!(
        spool.overflowed, 2,
        "the event in flight went with its segment"
    );
    drop(resume);
    spool.flush().unwrap();
    assert_eq!(
        (spool.live(), spool.overflowed),
        (1, 2),
        "a block of a removed segment came back live"
    );
    spool.catch_up();
    assert_eq!(
        (files(&dir, ".log"), files(&dir, ".acks")),
        (1, 0),
        "the removed segment's log was written after its deletion"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dropping_the_spool_writes_what_was_handed_over() {
    let dir = temp();
    let refs = {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let resume = pause(&spool);
        let refs: Vec<SpoolRef> = (0..3).map(|i| spool.append(&text(i), &[])).collect();
        spool.flush_behind().unwrap();
        drop(resume);
        refs
    };
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let (records, _) = read_all(&mut spool);
    let expected: Vec<(SpoolRef, Vec<u8>)> =
        refs.iter().zip(0..).map(|(at, i)| (*at, text(i))).collect();
    assert_eq!(records, expected);
    fs::remove_dir_all(dir).unwrap();
}
