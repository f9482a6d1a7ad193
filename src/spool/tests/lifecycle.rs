//! Appending, acknowledging and reopening a spool; one process per directory; owner-only files.

use super::*;

#[test]
fn events_acknowledged_before_their_block_is_written_cost_no_disk() {
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let refs: Vec<SpoolRef> = (0..3).map(|i| spool.append(&text(i), &[])).collect();
    for at in &refs {
        spool.ack(*at);
    }
    spool.flush().unwrap();
    assert_eq!(
        files(&dir, ".log") + files(&dir, ".acks"),
        0,
        "a block all done was written"
    );
    assert_eq!((spool.live(), spool.bytes_on_disk()), (0, 0));
    // Partly done: the block is written, its done event as a 5-byte tombstone, and no ack
    // entry is needed for it.
    let refs: Vec<SpoolRef> = (3..6).map(|i| spool.append(&text(i), &[])).collect();
    spool.ack(refs[1]);
    spool.flush().unwrap();
    assert_eq!(spool.live(), 2);
    assert_eq!(files(&dir, ".acks"), 0, "an ack entry for a tombstone");
    drop(spool);
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let (records, corrupt) = read_all(&mut spool);
    assert_eq!(
        (payloads(&records), corrupt),
        (vec!["event-3".into(), "event-5".into()], 0)
    );
    assert_eq!(
        records[1].0, refs[2],
        "the sequence numbers stay as they were"
    );
    drop(spool);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unacked_events_come_back_and_acked_segments_go() {
    let dir = temp();
    {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        assert!(spool.read_back().is_none());
        let refs: Vec<SpoolRef> = (0..5).map(|i| spool.append(&text(i), &[])).collect();
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
    let at = spool.append(b"x", &[]);
    spool.append(b"y", &[]);
    spool.flush().unwrap();
    spool.ack(at);
    spool.flush().unwrap();
    for entry in fs::read_dir(&dir).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    fs::remove_dir_all(dir).unwrap();
}
