//! Spill mode: events kept on disk only come back in order, also after a restart.

use super::*;

#[test]
fn spilled_events_are_read_back_in_order_and_the_others_are_not() {
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    spool.segment_raw_bytes = 64;
    // Held in memory by the caller.
    let in_memory: Vec<SpoolRef> = (0..3).map(|i| spool.append(&text(i), &[])).collect();
    spool.flush().unwrap();
    assert!(!spool.is_spilling());
    spool.spill();
    assert!(spool.is_spilling());
    let mut spilled = Vec::new();
    for i in 100..130 {
        spilled.push((spool.append(&text(i), &[]), text(i)));
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
        back.extend(plain(replay.records));
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
    let after = spool.append(&text(200), &[]);
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
        spool.append(&text(0), &[]);
        spool.flush().unwrap();
    }
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    spool.spill();
    let spilled = spool.append(&text(1), &[]);
    // An earlier run's segment first; spilling goes on meanwhile.
    let first = spool.read_back().unwrap();
    assert_eq!(payloads(&plain(first.records)), ["event-0"]);
    assert!(spool.is_spilling());
    // A write that fails as the segment is read back: its events still come back, but only
    // from memory, not live.
    spool.inject(writer::Fault::TornWrites(1));
    let second = spool.read_back().unwrap();
    assert_eq!(plain(second.records), [(spilled, text(1))]);
    assert!(!spool.is_spilling());
    assert_eq!((spool.live(), spool.errors), (1, 1));
    fs::remove_dir_all(dir).unwrap();
}
