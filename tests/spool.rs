//! The durable spool: events left at a shutdown deadline are delivered by the next run; a
//! corrupt block is skipped and its events counted while the others are delivered.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use actix_telemetry::{Flush, GetStats, Record, Telemetry};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

fn start(url: &str, state: &std::path::Path) -> Telemetry {
    builder(url).state_dir(state).build().unwrap()
}

fn record(telemetry: &Telemetry, range: std::ops::Range<u64>) {
    for i in range {
        telemetry
            .recorder()
            .do_send(Record::new("spooled").property("seq", i));
    }
}

fn seqs(backend: &Backend) -> BTreeSet<u64> {
    backend
        .delivered_events()
        .iter()
        .filter_map(|e| e["properties"]["seq"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_deadline_leaves_events_spooled_for_the_next_run() {
    let dir = TempDir::new("spool-shutdown");
    let state = dir.join("state");
    let hanging = Backend::start(Responder::new(|req, _| match req.path_only() {
        EVENTS_BATCH => Reply::hang(),
        _ => Reply::ok(),
    }))
    .await;
    let telemetry = start(&hanging.url(), &state);
    record(&telemetry, 0..40);
    let started = Instant::now();
    let report = telemetry.shutdown(Duration::from_millis(400)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    assert!(report.timed_out);
    assert_eq!(report.flush.pending, 40, "{report:?}");
    assert_eq!(report.flush.spooled, 40, "{report:?}");
    assert_eq!(report.stats.dropped.total(), 0, "{report:?}");

    let healthy = Backend::start(Responder::ok()).await;
    let telemetry = start(&healthy.url(), &state);
    assert!(
        healthy.wait_for_events(40, WAIT).await,
        "the spooled events were not delivered"
    );
    assert_eq!(seqs(&healthy), (0..40).collect());
    // Delivered means forgotten: nothing is left to deliver a third time.
    let stats = tokio::time::timeout(WAIT, async {
        loop {
            let stats = telemetry.recorder().send(GetStats).await.unwrap();
            if stats.spooled == 0 {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(stats.delivered, 40);
    telemetry.shutdown(WAIT).await;

    let third = Backend::start(Responder::ok()).await;
    let telemetry = start(&third.url(), &state);
    telemetry
        .recorder()
        .send(Flush::within(WAIT))
        .await
        .unwrap();
    telemetry.shutdown(WAIT).await;
    assert!(third.delivered_events().is_empty());
}

/// Waits until the sink reports `n` events spooled (asking for stats also writes the spool,
/// so each wave of events ends a block).
async fn wait_spooled(telemetry: &Telemetry, n: u64) {
    tokio::time::timeout(WAIT, async {
        while telemetry.recorder().send(GetStats).await.unwrap().spooled < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
}

/// The blocks of a segment file: where each starts, its first event's number, its count.
/// (Layout: see `src/spool/record.rs`.)
fn blocks(bytes: &[u8]) -> Vec<(usize, u64, u64)> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        assert_eq!(&bytes[at..at + 4], b"SPZB");
        let first = u64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap());
        found.push((at, first, u64::from(u32_at(at + 24))));
        at += 44 + u32_at(at + 32) as usize;
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_block_is_skipped_and_counted() {
    let dir = TempDir::new("spool-corrupt");
    let state = dir.join("state");
    let closed = closed_addr();
    let telemetry = start(&format!("http://{closed}"), &state);
    for wave in 0..3 {
        record(&telemetry, wave * 5..wave * 5 + 5);
        wait_spooled(&telemetry, wave * 5 + 5).await;
    }
    let report = telemetry.shutdown(Duration::from_millis(200)).await;
    assert_eq!(report.flush.spooled, 15, "{report:?}");

    // Damage the compressed events of the second block on disk.
    let spool = state.join("spool").join("primary");
    let segment = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let found = blocks(&bytes);
    assert!(found.len() >= 3, "{found:?}");
    let (at, first, count) = found[1];
    bytes[at + 44 + 3] ^= 0x55;
    std::fs::write(&segment, bytes).unwrap();

    let healthy = Backend::start(Responder::ok()).await;
    let telemetry = start(&healthy.url(), &state);
    let expected: BTreeSet<u64> = (0..15)
        .filter(|i| !(first..first + count).contains(i))
        .collect();
    assert!(healthy.wait_for_events(expected.len(), WAIT).await);
    let stats = telemetry.recorder().send(GetStats).await.unwrap();
    assert_eq!(stats.spool_corrupt, count);
    telemetry.shutdown(WAIT).await;
    assert_eq!(seqs(&healthy), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_the_queue_is_read_back_as_room_frees_and_all_delivered() {
    let dir = TempDir::new("spool-backlog");
    let state = dir.join("state");
    let closed = closed_addr();
    // Over two segments' worth, so the backlog is read back in several steps.
    const EVENTS: u64 = 12_000;
    let padding = "p".repeat(600);
    // Retried without end: on a busy machine the first batch could otherwise use up its
    // attempts before the deadline, and be dropped rather than spooled.
    let telemetry = builder(&format!("http://{closed}"))
        .state_dir(&state)
        .max_attempts(None)
        .build()
        .unwrap();
    for i in 0..EVENTS {
        telemetry.recorder().do_send(
            Record::new("spooled")
                .property("seq", i)
                .property("padding", padding.as_str()),
        );
    }
    let report = telemetry.shutdown(Duration::from_millis(500)).await;
    assert_eq!(report.flush.spooled, EVENTS, "{report:?}");

    // The next run may hold only 1,000 events in memory: the old code queued the whole
    // backlog at start and dropped nine tenths of it to the overflow policy.
    let healthy = Backend::start(Responder::ok()).await;
    let telemetry = builder(&healthy.url())
        .state_dir(&state)
        .max_queue_events(1_000)
        .build()
        .unwrap();
    let stats = telemetry.recorder().send(GetStats).await.unwrap();
    assert!(
        stats.queue_depth <= 1_000,
        "the backlog was queued at once: {stats:?}"
    );
    assert!(
        healthy.wait_for_events(EVENTS as usize, WAIT).await,
        "only {} of {EVENTS} arrived",
        seqs(&healthy).len()
    );
    assert_eq!(seqs(&healthy), (0..EVENTS).collect());
    let stats = telemetry.recorder().send(GetStats).await.unwrap();
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    assert_eq!(stats.spool_backlog_bytes, 0, "{stats:?}");
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sinks_whose_names_map_to_one_spool_directory_are_a_build_error() {
    use actix_telemetry::{BuildError, SinkConfig};
    let dir = TempDir::new("spool-shared");
    let state = dir.join("state");
    let backend = Backend::start(Responder::ok()).await;
    let clash = |a: &str, b: &str| {
        builder(&backend.url())
            .state_dir(&state)
            .sink(SinkConfig::new(a, backend.url()))
            .sink(SinkConfig::new(b, backend.url()))
            .build()
    };
    for (a, b) in [
        ("audit log", "audit_log"),
        ("audit", "audit"),
        ("Audit", "audit"),
        ("primary", "other"),
    ] {
        let Err(error) = clash(a, b) else {
            panic!("{a:?} and {b:?} share a spool directory");
        };
        let text = error.to_string();
        assert!(
            matches!(error, BuildError::SharedSpool { .. }),
            "{a:?}, {b:?}: {text}"
        );
        let second = if a == "primary" { a } else { b };
        assert!(text.contains(second), "{text}");
    }
    // Without a spool nothing is shared.
    let telemetry = builder(&backend.url())
        .state_dir(&state)
        .spool(false)
        .sink(SinkConfig::new("audit log", backend.url()))
        .sink(SinkConfig::new("audit_log", backend.url()))
        .build()
        .unwrap();
    telemetry.shutdown(WAIT).await;
}
