//! Supervision: a panic in any actor's handler brings the actor back and the pipeline keeps
//! delivering, without losing queued events; a stop rebuilds what the actor owns; a crash loop
//! exhausts the restart budget and the actor keeps running, reported as degraded.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use actix_telemetry::{
    ActorKind, Fault, Flush, GetStats, InjectFault, MAX_RESTARTS, Record, RefreshConfiguration,
    SetFact, Telemetry,
};
use serde_json::json;
use support::*;

const WAIT: Duration = Duration::from_secs(15);

async fn start(backend: &Backend) -> Telemetry {
    builder(&backend.url())
        // A fresh snapshot for every event, so the SystemSnapshotter gets messages too.
        .snapshot_max_age(Duration::ZERO)
        .build()
        .unwrap()
}

/// A runtime on a fresh backend with `fault` armed in `actor`.
async fn with_fault(actor: ActorKind, fault: Fault) -> (Backend, Telemetry) {
    let backend = Backend::start(Responder::with_checkin(json!({"options": {}}))).await;
    let telemetry = start(&backend).await;
    telemetry.recorder().do_send(InjectFault { actor, fault });
    (backend, telemetry)
}

/// Records events `range`, each tagged with its number.
fn record(telemetry: &Telemetry, range: std::ops::Range<u64>) {
    for i in range {
        telemetry
            .recorder()
            .do_send(Record::new("supervised").property("seq", i));
    }
}

fn delivered_seqs(backend: &Backend) -> BTreeSet<u64> {
    backend
        .delivered_events()
        .iter()
        .filter(|e| e["name"] == "supervised")
        .filter_map(|e| e["properties"]["seq"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_each_actor_is_survived_and_nothing_queued_is_lost() {
    for actor in ActorKind::ALL {
        let backend = Backend::start(Responder::with_checkin(json!({"options": {}}))).await;
        let telemetry = start(&backend).await;
        let recorder = telemetry.recorder().clone();
        record(&telemetry, 0..50);
        recorder.do_send(InjectFault {
            actor,
            fault: Fault::Panic,
        });
        // Messages for every actor: events (Recorder, Collator, SystemSnapshotter, Submitter),
        // a check-in (ConfigurationProxy), and a flush that sends a batch (Transport).
        record(&telemetry, 50..100);
        recorder.do_send(RefreshConfiguration);
        let report = recorder.send(Flush::within(WAIT)).await.unwrap();
        record(&telemetry, 100..150);
        recorder.send(Flush::within(WAIT)).await.unwrap();

        assert_eq!(
            delivered_seqs(&backend),
            (0..150).collect(),
            "{actor}: {report:?}"
        );
        let stats = recorder.send(GetStats).await.unwrap();
        assert_eq!(stats.panics, 1, "{actor}: {stats:?}");
        assert_eq!(stats.restarts, 1, "{actor}: {stats:?}");
        assert!(stats.degraded.is_empty());
        let report = telemetry.shutdown(WAIT).await;
        assert_eq!(report.stats.dropped.total(), 0, "{actor}: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_transport_is_rebuilt_and_its_batches_retried() {
    let (backend, telemetry) = with_fault(ActorKind::Transport, Fault::Stop).await;
    let recorder = telemetry.recorder().clone();
    record(&telemetry, 0..100);
    recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(delivered_seqs(&backend), (0..100).collect());
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.restarts, 1, "{stats:?}");
    assert_eq!(stats.panics, 0);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_exhausts_the_budget_and_the_actor_runs_degraded() {
    let backend = Backend::start(Responder::with_checkin(json!({"options": {}}))).await;
    let telemetry = start(&backend).await;
    let recorder = telemetry.recorder().clone();
    let loops = MAX_RESTARTS as u64 + 3;
    for i in 0..loops {
        recorder.do_send(InjectFault {
            actor: ActorKind::Collator,
            fault: Fault::Panic,
        });
        record(&telemetry, i..i + 1);
    }
    recorder.send(Flush::within(WAIT)).await.unwrap();
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.panics, loops);
    assert_eq!(stats.restarts, MAX_RESTARTS as u64, "{stats:?}");
    assert!(stats.degraded.contains(ActorKind::Collator));
    assert_eq!(stats.degraded.iter().count(), 1);
    // Still delivering, every event.
    record(&telemetry, loops..loops + 10);
    recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(delivered_seqs(&backend), (0..loops + 10).collect());
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_delivery_is_caught_counted_and_the_batch_retried() {
    let (backend, telemetry) = with_fault(ActorKind::Transport, Fault::PanicInTask).await;
    let recorder = telemetry.recorder().clone();
    record(&telemetry, 0..20);
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!((report.delivered, report.pending), (20, 0), "{report:?}");
    record(&telemetry, 20..40);
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(
        report.delivered, 20,
        "the Transport stopped working: {report:?}"
    );
    assert_eq!(delivered_seqs(&backend), (0..40).collect());
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.panics, 1, "{stats:?}");
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_check_in_leaves_later_check_ins_working() {
    let backend = Backend::start(Responder::with_checkin(
        json!({"options": {"beta": {"variant": true}}}),
    ))
    .await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    // Wait for the check-in at start, then make the next one panic inside its future.
    assert!(backend.wait_for_requests_to(CHECK_IN, 1, WAIT).await);
    recorder.do_send(InjectFault {
        actor: ActorKind::ConfigurationProxy,
        fault: Fault::PanicInTask,
    });
    recorder.do_send(RefreshConfiguration);
    let stats = stats_until(&recorder, WAIT, |s| s.panics > 0).await;
    let checkins_before = stats.checkins;
    // A check-in stuck "running" would swallow this one.
    recorder.do_send(RefreshConfiguration);
    let stats = stats_until(&recorder, WAIT, |s| s.checkins > checkins_before).await;
    assert_eq!((stats.panics, stats.restarts), (1, 0), "{stats:?}");
}

/// A backend that never answers a batch (check-ins are answered).
fn hanging_batches() -> Responder {
    Responder::new(|req, _| match req.path_only() {
        EVENTS_BATCH => Reply::hang(),
        _ => Reply::json(200, &json!({"options": {}})),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_whose_answer_is_lost_says_it_is_incomplete() {
    const SHORT: Duration = Duration::from_millis(200);
    for actor in [ActorKind::Collator, ActorKind::Submitter] {
        let backend = Backend::start(hanging_batches()).await;
        let telemetry = builder(&backend.url())
            .flush_interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        let recorder = telemetry.recorder().clone();
        record(&telemetry, 0..3);
        // Answered: the events are in the Submitter, their batch on the wire.
        let first = recorder.send(Flush::within(SHORT)).await.unwrap();
        assert_eq!(first.pending, 3, "{actor}: {first:?}");
        // Nothing else is on its way to the actor: the next flush is the message the panic loses.
        recorder.do_send(InjectFault {
            actor,
            fault: Fault::PanicLosingMessage,
        });
        let lost = recorder.send(Flush::within(SHORT)).await.unwrap();
        assert!(
            !lost.complete,
            "{actor}: a lost answer reported as {lost:?}"
        );
        // The restarted actor answers the next flush.
        let next = recorder.send(Flush::within(SHORT)).await.unwrap();
        assert!(next.complete, "{actor}: {next:?}");
        assert_eq!(next.pending, 3, "{actor}: {next:?}");
        let report = telemetry.shutdown(SHORT).await;
        assert!(report.complete, "{actor}: {report:?}");
        assert_eq!(report.stats.panics, 1, "{actor}: {report:?}");
        assert_eq!(report.stats.dropped.shutdown, 3, "{actor}: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_answers_by_its_deadline_when_the_submitter_restarts_while_it_waits() {
    let backend = Backend::start(hanging_batches()).await;
    let telemetry = builder(&backend.url())
        .flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    record(&telemetry, 0..3);
    let flush = tokio::spawn({
        let recorder = recorder.clone();
        async move { recorder.send(Flush::within(Duration::from_secs(1))).await }
    });
    // The partial batch leaves only for the flush: once it is on the wire the flush is waiting
    // in the Submitter, with its expiry timer set.
    assert!(backend.wait_for_requests_to(EVENTS_BATCH, 1, WAIT).await);
    recorder.do_send(InjectFault {
        actor: ActorKind::Submitter,
        fault: Fault::Stop,
    });
    // Reaches the Submitter after the fault: it stops, and its timers go with the old context.
    record(&telemetry, 3..4);
    let report = tokio::time::timeout(WAIT, flush)
        .await
        .expect("the flush answered by its deadline")
        .unwrap()
        .unwrap();
    // The restarted Submitter sets the flush's timer again, so the flush is answered by the
    // Submitter itself at its deadline, with the events still pending.
    assert!(report.complete, "{report:?}");
    assert_eq!((report.delivered, report.pending), (0, 3), "{report:?}");
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.restarts, 1, "{stats:?}");
    telemetry.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_restarted_by_a_shutdown_still_reports_what_was_delivered() {
    let backend = Backend::start(Responder::with_checkin(json!({"options": {}}))).await;
    let telemetry = start(&backend).await;
    let recorder = telemetry.recorder().clone();
    record(&telemetry, 0..20);
    // The Shutdown is the Recorder's next message.
    recorder.do_send(InjectFault {
        actor: ActorKind::Recorder,
        fault: Fault::Panic,
    });
    let report = telemetry.shutdown(WAIT).await;
    assert_eq!(report.flush.delivered, 20, "{report:?}");
    assert_eq!(report.stats.delivered, 20, "{report:?}");
    assert_eq!(report.stats.accepted, 20, "{report:?}");
    assert_eq!(report.stats.panics, 1, "{report:?}");
    assert!(report.complete, "{report:?}");
    assert_eq!(delivered_seqs(&backend), (0..20).collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_after_the_recorder_restarts_while_it_lingers_still_arrive() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let (events, recorder) = (telemetry.events(), telemetry.recorder().clone());
    // Taken in at once; the Recorder then lingers for a millisecond, on a timer of its context.
    assert!(events.record(Record::new("before")));
    recorder.do_send(InjectFault {
        actor: ActorKind::Recorder,
        fault: Fault::Panic,
    });
    // The message the fault strikes: the restart drops the old context and its timers.
    recorder.do_send(SetFact::new("region", "eu"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while telemetry.stats().await.restarts == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no restart");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Nothing but the sender from here: no mailbox message takes the inbox in on its behalf.
    assert!(events.record(Record::new("after")));
    assert!(
        backend.wait_for_events(2, WAIT).await,
        "an event recorded after the restart stayed in the inbox"
    );
}
