//! Outages and refusals: backoff per sink and per outage with one probe at a time, nothing given
//! up while a spool keeps the events, a refusing backend pauses its sink until it is fixed.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actix_telemetry::{Flush, GetStats, Record, Telemetry};
use support::*;

const WAIT: Duration = Duration::from_secs(20);
/// How long the failing backend takes to answer each request.
const ANSWER_DELAY: Duration = Duration::from_millis(60);

/// Answers event batches with `failure` while `down` is set, 200 otherwise.
fn flaky(down: Arc<AtomicBool>, failure: u16, delay: Duration) -> Responder {
    Responder::new(move |req, _| {
        if req.path_only() == EVENTS_BATCH && down.load(Ordering::SeqCst) {
            Reply::status(failure).delayed(delay)
        } else {
            Reply::ok()
        }
    })
}

fn record(telemetry: &Telemetry, n: u64) {
    for i in 0..n {
        telemetry
            .recorder()
            .do_send(Record::new("outage").property("seq", i));
    }
}

fn failed_batches(backend: &Backend) -> Vec<Recorded> {
    let mut failed: Vec<Recorded> = backend
        .requests_to(EVENTS_BATCH)
        .into_iter()
        .filter(|r| !r.is_success())
        .collect();
    failed.sort_by_key(|r| r.received_at);
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_backend_fails_one_probe_at_a_time_tests_it_and_recovery_is_at_full_speed() {
    let down = Arc::new(AtomicBool::new(true));
    let backend = Backend::start(flaky(down.clone(), 503, ANSWER_DELAY)).await;
    let telemetry = builder(&backend.url())
        .max_batch_events(10)
        .max_in_flight(4)
        .max_attempts(None)
        .build()
        .unwrap();
    record(&telemetry, 200);
    telemetry.recorder().do_send(Flush::new());
    assert!(
        backend
            .wait_until(WAIT, |all| all.iter().filter(|r| r.status == 503).count()
                >= 10)
            .await
    );
    down.store(false, Ordering::SeqCst);
    assert!(backend.wait_for_events(200, WAIT).await);

    // The first failures may overlap: they were on the wire together when the outage began.
    // After them, each probe waits for the previous one's answer.
    let failed = failed_batches(&backend);
    let probes = &failed[4.min(failed.len())..];
    for pair in probes.windows(2) {
        let gap = pair[1].received_at - pair[0].received_at;
        assert!(
            gap >= ANSWER_DELAY,
            "two probes overlapped ({gap:?} apart) while the backend was failing"
        );
    }
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 200);
    assert_eq!(stats.dropped.total(), 0);
    assert_eq!(stats.sinks_failing, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_spool_a_long_run_of_failures_gives_nothing_up() {
    let dir = TempDir::new("outage-spool");
    let failures = Arc::new(AtomicUsize::new(0));
    let counted = failures.clone();
    // More failures in a row than the default attempt limit without a spool (12).
    let backend = Backend::start(Responder::new(move |req, _| {
        if req.path_only() == EVENTS_BATCH && counted.fetch_add(1, Ordering::SeqCst) < 30 {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    }))
    .await;
    let telemetry = builder(&backend.url())
        .state_dir(dir.join("state"))
        // One batch, so that the failures in a row are all its own.
        .max_batch_events(50)
        .max_in_flight(1)
        .build()
        .unwrap();
    record(&telemetry, 50);
    telemetry.recorder().do_send(Flush::new());
    assert!(
        backend.wait_for_events(50, WAIT).await,
        "events were given up: {:?}",
        telemetry.recorder().send(GetStats).await.unwrap()
    );
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(
        (stats.delivered, stats.dropped.total()),
        (50, 0),
        "{stats:?}"
    );
    let delivered: std::collections::BTreeSet<String> =
        uuids(&backend.delivered_events()).into_iter().collect();
    assert_eq!(delivered.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_backend_pauses_a_spooled_sink_until_it_is_fixed() {
    let dir = TempDir::new("outage-refused");
    let refusing = Arc::new(AtomicBool::new(true));
    let backend = Backend::start(flaky(refusing.clone(), 401, Duration::ZERO)).await;
    let telemetry = builder(&backend.url())
        .state_dir(dir.join("state"))
        .refused_retry_interval(Duration::from_millis(300))
        .build()
        .unwrap();
    record(&telemetry, 30);
    telemetry.recorder().do_send(Flush::new());
    assert!(
        backend
            .wait_until(WAIT, |all| all.iter().filter(|r| r.status == 401).count()
                >= 2)
            .await
    );
    let stats = telemetry.recorder().send(GetStats).await.unwrap();
    assert_eq!(stats.sinks_paused, 1, "{stats:?}");
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    assert_eq!(stats.queue_depth, 30, "{stats:?}");

    // The key is fixed: the next probe finds out, and everything kept is delivered.
    refusing.store(false, Ordering::SeqCst);
    assert!(backend.wait_for_events(30, WAIT).await);
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!((stats.delivered, stats.sinks_paused), (30, 0), "{stats:?}");
    assert_eq!(stats.dropped.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_spool_an_outage_longer_than_memory_loses_nothing() {
    let dir = TempDir::new("outage-spill");
    let down = Arc::new(AtomicBool::new(true));
    let backend = Backend::start(flaky(down.clone(), 503, Duration::ZERO)).await;
    let telemetry = builder(&backend.url())
        .state_dir(dir.join("state"))
        // Memory holds 100 events: the rest of the outage waits on disk only.
        .max_queue_events(100)
        .max_batch_events(10)
        .build()
        .unwrap();
    record(&telemetry, 2_000);
    let recorder = telemetry.recorder().clone();
    let stats = stats_until(&recorder, WAIT, |s| {
        s.queue_depth + s.spool_disk_only >= 2_000
    })
    .await;
    assert!(stats.queue_depth <= 100, "{stats:?}");
    assert!(stats.spool_disk_only >= 1_900, "{stats:?}");
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");

    down.store(false, Ordering::SeqCst);
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(
        (stats.delivered, stats.dropped.total()),
        (2_000, 0),
        "{stats:?}"
    );
    let delivered: std::collections::BTreeSet<String> =
        uuids(&backend.delivered_events()).into_iter().collect();
    assert_eq!(delivered.len(), 2_000);
}
