//! Writes that fail (a torn write, a full disk, a segment that cannot be created) cost only
//! their own events.

use super::*;

#[test]
fn a_write_cut_short_loses_only_its_block_and_later_blocks_are_whole() {
    let dir = temp();
    {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        for i in 0..3 {
            spool.append(&text(i), &[]);
        }
        spool.flush().unwrap();
        let failed: Vec<SpoolRef> = (3..6).map(|i| spool.append(&text(i), &[])).collect();
        spool.inject(writer::Fault::TornWrites(1));
        let failure = spool.flush().unwrap_err();
        assert_eq!(failure.error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(failure.lost, failed);
        assert_eq!((spool.live(), spool.errors), (3, 1));
        // An acknowledgement of a lost event changes nothing.
        spool.ack(failed[0]);
        assert_eq!(spool.live(), 3);
        // The disk has room again.
        for i in 6..9 {
            spool.append(&text(i), &[]);
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
        let first = spool.append(&text(0), &[]);
        spool.flush().unwrap();
        // Every write fails with ENOSPC, and the file cannot be cut back.
        let full = OpenOptions::new().append(true).open("/dev/full").unwrap();
        spool.inject(writer::Fault::LogFile(first.segment, full));
        let failed: Vec<SpoolRef> = (1..3).map(|i| spool.append(&text(i), &[])).collect();
        let failure = spool.flush().unwrap_err();
        assert_eq!(failure.error.raw_os_error(), Some(28), "{failure}");
        assert_eq!(failure.lost, failed);
        assert_eq!((spool.live(), spool.errors), (1, 1));
        let later = spool.append(&text(3), &[]);
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
    let failed: Vec<SpoolRef> = (0..3).map(|i| spool.append(&text(i), &[])).collect();
    spool.ack(failed[1]);
    let failure = spool.flush().unwrap_err();
    assert_eq!(failure.lost, failed);
    assert_eq!((spool.live(), spool.errors), (0, 1));
    assert!(
        !spool.is_dirty(),
        "acks of events never written wait for nothing"
    );
    let later = spool.append(&text(3), &[]);
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
