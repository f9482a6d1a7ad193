//! Admission at the caller (`Telemetry::events`): however fast and from however many threads
//! the application records, the events waiting for the runtime stay within their budget; past
//! it the caller waits (bounded) or the event is dropped and counted, and the counters balance.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_telemetry::{AdmissionPolicy, Flush, Identify, Record};
use serde_json::{Value, json};
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

/// Records `BEFORE` events named "before", sends an `Identify` (through the sender itself, or
/// to the Recorder's mailbox), records one "after", flushes; the distinct ids that arrived for
/// each name.
async fn identities_around_an_identify(through_the_sender: bool) -> (Vec<Value>, Vec<Value>) {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .max_pending_events(10_000)
        .build()
        .unwrap();
    let (events, recorder) = (telemetry.events(), telemetry.recorder().clone());
    tokio::task::spawn_blocking(move || {
        for i in 0..BEFORE {
            assert!(events.record(Record::new("before").property("i", i)));
        }
        if through_the_sender {
            assert!(events.send(Identify::new("after-user")));
        } else {
            recorder.do_send(Identify::new("after-user"));
        }
        assert!(events.record(Record::new("after")));
    })
    .await
    .unwrap();
    let report = telemetry
        .recorder()
        .send(Flush::within(WAIT))
        .await
        .unwrap();
    assert_eq!(report.pending, 0, "{report:?}");
    let ids = |name: &str| {
        backend
            .delivered_events()
            .iter()
            .filter(|e| e["name"] == name)
            .map(|e| e["distinct_id"].clone())
            .collect::<Vec<_>>()
    };
    let seen = (ids("before"), ids("after"));
    telemetry.shutdown(WAIT).await;
    seen
}

/// More than the Recorder takes from its inbox in one turn, so that without catching up some
/// would be taken after the change.
const BEFORE: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identify_sent_through_the_sender_applies_to_later_events_only() {
    let (before, after) = identities_around_an_identify(true).await;
    assert_eq!(before.len(), BEFORE);
    let changed = before.iter().filter(|id| **id == "after-user").count();
    assert_eq!(
        changed, 0,
        "{changed} earlier events took the later identity"
    );
    assert_eq!(after, vec![json!("after-user")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identify_sent_to_the_mailbox_comes_after_every_event_recorded_before_it() {
    let (before, _) = identities_around_an_identify(false).await;
    assert_eq!(before.len(), BEFORE);
    let changed = before.iter().filter(|id| **id == "after-user").count();
    assert_eq!(
        changed, 0,
        "{changed} earlier events took the later identity"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_after_recording_from_many_threads_includes_every_event() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let events = telemetry.events();
    let (_, refused) = tokio::task::spawn_blocking(move || flood(&events, 4, 2_500))
        .await
        .unwrap();
    assert_eq!(refused, 0);
    // No wait before the flush: whatever was admitted must be in it.
    let report = telemetry
        .recorder()
        .send(actix_telemetry::Flush::within(WAIT))
        .await
        .unwrap();
    assert_eq!(report.pending, 0, "{report:?}");
    assert_eq!(backend.event_count(), 10_000);
    telemetry.shutdown(WAIT).await;
}

/// A backend that answers every batch with `batch()` and every check-in with no flags.
fn answering_batches_with(batch: fn() -> Reply) -> Responder {
    Responder::new(move |req, _| match req.path_only() {
        EVENTS_BATCH => batch(),
        _ => Reply::json(200, &json!({"options": {}})),
    })
}

/// Records `n` events from one thread through the sender; how many it refused.
async fn record_through(events: actix_telemetry::EventSender, n: usize) -> usize {
    tokio::task::spawn_blocking(move || {
        (0..n)
            .filter(|i| !events.record(Record::new("paced").property("i", *i)))
            .count()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_backend_slower_than_the_callers_holds_them_back_and_loses_nothing() {
    // Each batch is answered after a pause: the runtime could take events in far faster
    // than the sink delivers them, and its queue would overflow. (Holding back keeps a queue
    // within its limit when the limit is well above the events on their way to it: the
    // inbox's budget, plus a run of 256.)
    let backend = Backend::start(answering_batches_with(|| {
        Reply::ok().delayed(Duration::from_millis(2))
    }))
    .await;
    let telemetry = builder(&backend.url())
        .max_pending_events(50)
        .max_queue_events(1_000)
        .max_batch_events(10)
        .admission(AdmissionPolicy::Wait(WAIT))
        .build()
        .unwrap();
    let refused = record_through(telemetry.events(), 5_000).await;
    assert_eq!(refused, 0);
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    assert_eq!(
        (stats.accepted, stats.delivered),
        (5_000, 5_000),
        "{stats:?}"
    );
    assert_eq!(backend.delivered_events().len(), 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_held_back_only_briefly_by_a_backend_that_never_answers() {
    // Batches that hang look healthy: holding callers back until the sink has room would
    // keep them waiting for ever. Past the hold-back limit the sink's overflow policy drops.
    let backend = Backend::start(answering_batches_with(Reply::hang)).await;
    let telemetry = builder(&backend.url())
        .max_pending_events(50)
        .max_queue_events(100)
        .max_batch_events(10)
        .admission(AdmissionPolicy::Wait(Duration::from_secs(3600)))
        // Longer than the test: the hanging batches never turn into failures.
        .request_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let refused = tokio::time::timeout(WAIT, record_through(telemetry.events(), 1_000))
        .await
        .expect("the callers were held back for good");
    assert_eq!(refused, 0);
    // Answered once every event has reached the Submitter (the batches on the wire stay).
    let recorder = telemetry.recorder();
    let flush = recorder
        .send(Flush::within(Duration::from_millis(200)))
        .await
        .unwrap();
    assert!(flush.pending > 0, "{flush:?}");
    let stats = recorder.send(actix_telemetry::GetStats).await.unwrap();
    assert_eq!(stats.accepted, 1_000, "{stats:?}");
    assert!(stats.dropped.overflow > 0, "{stats:?}");
    assert_eq!(
        stats.accepted,
        stats.delivered + stats.dropped.total() + stats.queue_depth,
        "{stats:?}"
    );
}
