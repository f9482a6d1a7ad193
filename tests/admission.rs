//! Admission at the caller (`Telemetry::events`): however fast and from however many threads
//! the application records, the events waiting for the runtime stay within their budget; past
//! it the caller waits (bounded) or the event is dropped and counted, and the counters balance.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_telemetry::{AdmissionPolicy, Record};
use support::*;

const WAIT: Duration = Duration::from_secs(30);
const BUDGET: usize = 200;

/// Records `per_thread` events from each of `threads` threads at once, watching how many wait
/// for the runtime; the largest number seen, and how many were refused.
fn flood(
    events: &actix_telemetry::EventSender,
    threads: usize,
    per_thread: usize,
) -> (usize, usize) {
    let most = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (events, most, refused) = (events.clone(), most.clone(), refused.clone());
            scope.spawn(move || {
                for i in 0..per_thread {
                    if !events.record(Record::new("flood").property("t", t).property("i", i)) {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    most.fetch_max(events.pending(), Ordering::Relaxed);
                }
            });
        }
    });
    (
        most.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_callers_stay_within_the_budget_and_lose_nothing() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .max_pending_events(BUDGET)
        .admission(AdmissionPolicy::Wait(WAIT))
        .build()
        .unwrap();
    let events = telemetry.events();
    let (most, refused) = tokio::task::spawn_blocking(move || flood(&events, 4, 5_000))
        .await
        .unwrap();
    assert!(
        most <= BUDGET,
        "{most} events waited, the budget is {BUDGET}"
    );
    assert_eq!(refused, 0);
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(
        (stats.accepted, stats.delivered),
        (20_000, 20_000),
        "{stats:?}"
    );
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_drop_policy_the_excess_is_dropped_and_counted() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .max_pending_events(BUDGET)
        .admission(AdmissionPolicy::Drop)
        .build()
        .unwrap();
    let events = telemetry.events();
    let (most, refused) = tokio::task::spawn_blocking(move || flood(&events, 4, 20_000))
        .await
        .unwrap();
    assert!(
        most <= BUDGET,
        "{most} events waited, the budget is {BUDGET}"
    );
    assert!(refused > 0, "four threads never outran the runtime");
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.accepted, 80_000, "{stats:?}");
    assert_eq!(stats.dropped.overflow, refused as u64, "{stats:?}");
    assert_eq!(
        stats.accepted,
        stats.delivered + stats.dropped.total(),
        "{stats:?}"
    );
}
