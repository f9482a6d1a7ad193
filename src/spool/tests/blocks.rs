//! How events are cut into blocks and segments, and how well typical events compress.

use super::*;

#[test]
fn large_flushes_are_split_into_blocks_and_segments() {
    let dir = temp();
    let payload = vec![b'z'; 300 * 1024];
    let refs: Vec<SpoolRef> = {
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let refs = (0..20).map(|_| spool.append(&payload, &[])).collect();
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
            spool.append(&event, &[]);
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

#[test]
fn a_segment_is_sealed_by_what_its_events_hold_read_back_not_by_their_records() {
    let dir = temp();
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    spool.segment_raw_bytes = 100_000;
    // Records of 10 bytes sharing one fragment of 1,000: small on disk, but each event read
    // back is about a thousand bytes of JSON.
    let shared: std::sync::Arc<str> = "s".repeat(1_000).into();
    let refs: Vec<SpoolRef> = (0..1_000)
        .map(|_| spool.append(b"0123456789", &[&shared]))
        .collect();
    let per_segment = refs
        .iter()
        .filter(|at| at.segment == refs[0].segment)
        .count();
    assert!(per_segment <= 100, "{per_segment} events in one segment");
    spool.flush().unwrap();
    drop(spool);
    let mut spool = Spool::open(&dir, 1 << 30).unwrap();
    let mut back = 0;
    while let Some(replay) = spool.read_back() {
        assert!(replay.records.len() <= 100 && replay.corrupt == 0);
        for (_, record) in replay.records {
            assert_eq!(record.shared, std::slice::from_ref(&shared));
            back += 1;
        }
    }
    assert_eq!(back, 1_000);
    fs::remove_dir_all(dir).unwrap();
}
