//! The size limit: what it removes is reported, and every event is accounted for.

use super::*;

#[test]
fn the_size_limit_reports_what_it_removed() {
    let dir = temp();
    let mut rng = Rng::seeded(3);
    let earlier_unacked = {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        spool.segment_raw_bytes = 1000;
        let refs: Vec<SpoolRef> = (0..20)
            .map(|_| spool.append(&noise(&mut rng, 200), &[]))
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
        .map(|_| spool.append(&noise(&mut rng, 200), &[]))
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
    // Files are deleted behind the writes to them.
    spool.catch_up();
    assert_eq!(files(&dir, ".log") + files(&dir, ".acks"), 0);
    let next = spool.append(b"after", &[]);
    assert!(next.segment > writing);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn spilled_segments_removed_unread_are_counted_lost() {
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    spool.segment_raw_bytes = 1000;
    let mut rng = Rng::seeded(5);
    spool.append(&noise(&mut rng, 200), &[]);
    spool.flush().unwrap();
    spool.spill();
    for _ in 0..12 {
        spool.append(&noise(&mut rng, 200), &[]);
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
        let at = spool.append(&noise(&mut rng, 100), &[]);
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
