//! The counters balance: at any quiet moment every accepted event is delivered, dropped (by
//! cause) or still held, whatever mix of records, flag reads, flushes, backend failures and
//! actor panics came before; repeated flag reads, which make no event, are not accepted events.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_telemetry::{ActorKind, Fault, Flush, GetStats, GetVariant, InjectFault, Record, Stats};
use proptest::prelude::*;
use serde_json::json;
use support::*;

const WAIT: Duration = Duration::from_secs(20);

#[derive(Clone, Debug)]
enum Op {
    Record(u8),
    ReadFlag(bool),
    Flush,
    Panic(usize),
    PanicLosingMessage(usize),
    Backend(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..60).prop_map(Op::Record),
        2 => any::<bool>().prop_map(Op::ReadFlag),
        1 => Just(Op::Flush),
        1 => (0..ActorKind::ALL.len()).prop_map(Op::Panic),
        1 => (0..ActorKind::ALL.len()).prop_map(Op::PanicLosingMessage),
        1 => any::<bool>().prop_map(Op::Backend),
    ]
}

fn balance(stats: &Stats) -> (u64, u64) {
    (
        stats.accepted + stats.recovered,
        stats.delivered + stats.dropped.total() + stats.queue_depth + stats.spool_disk_only,
    )
}

async fn run(ops: Vec<Op>) {
    let up = Arc::new(AtomicBool::new(true));
    let serving = up.clone();
    let checkin = json!({"options": {"beta": {"variant": "on"}, "gamma": {"variant": true}}});
    let backend = Backend::start(Responder::new(move |req, _| {
        match (req.path_only(), serving.load(Ordering::SeqCst)) {
            (CHECK_IN, _) => Reply::json(200, &checkin),
            (_, true) => Reply::ok(),
            (_, false) => Reply::status(503),
        }
    }))
    .await;
    let telemetry = builder(&backend.url())
        .max_batch_events(16)
        .max_queue_events(200)
        .max_attempts(Some(3))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    for op in ops {
        match op {
            Op::Record(n) => {
                for i in 0..n {
                    recorder.do_send(Record::new("mixed").property("i", i));
                }
            }
            Op::ReadFlag(beta) => {
                let name = if beta { "beta" } else { "gamma" };
                let _ = recorder
                    .send(GetVariant::<serde_json::Value>::new(name))
                    .await;
            }
            Op::Flush => {
                let _ = recorder
                    .send(Flush::within(Duration::from_millis(50)))
                    .await;
            }
            Op::Panic(actor) => recorder.do_send(InjectFault {
                actor: ActorKind::ALL[actor],
                fault: Fault::Panic,
            }),
            Op::PanicLosingMessage(actor) => recorder.do_send(InjectFault {
                actor: ActorKind::ALL[actor],
                fault: Fault::PanicLosingMessage,
            }),
            Op::Backend(serving) => up.store(serving, Ordering::SeqCst),
        }
    }
    up.store(true, Ordering::SeqCst);
    // A fault still armed takes the next message it meets, a flush or a counter request
    // included; its loss is reported (`complete: false`), so ask again until an answer is
    // whole. Each actor armed at most once, so a few rounds suffice.
    let mut report = None;
    for _ in 0..ActorKind::ALL.len() + 1 {
        let flush = recorder.send(Flush::within(WAIT)).await.unwrap();
        if flush.complete && flush.pending == 0 {
            report = Some(flush);
            break;
        }
    }
    assert!(report.is_some(), "no complete flush");
    let mut stats = recorder.send(GetStats).await.unwrap();
    for _ in 0..ActorKind::ALL.len() {
        stats = recorder.send(GetStats).await.unwrap();
    }
    let (taken, accounted) = balance(&stats);
    assert_eq!(taken, accounted, "{stats:?}");
    assert_eq!(stats.queue_depth, 0, "{stats:?}");
    telemetry.shutdown(Duration::from_secs(5)).await;
}

proptest! {
    // Each case starts a runtime and a backend: a small budget keeps the suite quick.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn accepted_equals_delivered_plus_dropped_plus_held(ops in prop::collection::vec(op(), 1..25)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(ops));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_flag_reads_are_not_accepted_events() {
    let backend = Backend::start(Responder::with_checkin(
        json!({"options": {"beta": {"variant": "on"}}}),
    ))
    .await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    for _ in 0..100 {
        let _ = recorder
            .send(GetVariant::<String>::new("beta"))
            .await
            .unwrap();
    }
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.pending, 0);
    let stats = recorder.send(GetStats).await.unwrap();
    let (taken, accounted) = balance(&stats);
    assert_eq!(taken, accounted, "{stats:?}");
    // At most one evaluation event per distinct answer seen (before and after the check-in).
    assert!(stats.accepted <= 2, "{stats:?}");
}

/// Events recorded at once, faster than the runtime takes them.
const BURST: u64 = 300_000;

/// A runtime with a burst waiting in the Recorder's mailbox, and a `GetStats` queued behind it.
async fn behind_a_burst() -> (
    Backend,
    actix_telemetry::Telemetry,
    tokio::task::JoinHandle<Stats>,
) {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    for i in 0..BURST {
        recorder.do_send(Record::new("burst").property("i", i));
    }
    let in_order = tokio::spawn(async move { recorder.send(GetStats).await.unwrap() });
    (backend, telemetry, in_order)
}

/// Runs `scenario` on fresh bursts until it returns a result (it gives `None` when the
/// runtime took the whole burst in before the lane was even asked, which a machine loaded by
/// other work can make happen); at most [`BURST_TRIES`] times.
async fn behind_some_burst<T, F>(
    scenario: impl Fn(Backend, actix_telemetry::Telemetry, tokio::task::JoinHandle<Stats>) -> F,
) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    for _ in 0..BURST_TRIES {
        let (backend, telemetry, in_order) = behind_a_burst().await;
        if let Some(result) = scenario(backend, telemetry, in_order).await {
            return result;
        }
    }
    panic!("in {BURST_TRIES} bursts the lane never answered before the burst was taken in");
}

/// How many bursts [`behind_some_burst`] tries.
const BURST_TRIES: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_lane_does_not_wait_behind_a_burst() {
    let (_backend, telemetry, in_order, fast) =
        behind_some_burst(|backend, telemetry, in_order| async move {
            let fast = telemetry.stats().await;
            // Answered while the `GetStats` sent before it still waits behind the burst.
            (!in_order.is_finished() && fast.accepted < BURST)
                .then_some((backend, telemetry, in_order, fast))
        })
        .await;
    let recorder = telemetry.recorder().clone();
    assert!(fast.accepted < BURST, "{fast:?}");
    let ordered = in_order.await.unwrap();
    assert_eq!(ordered.accepted, BURST);
    // At a quiet moment both lanes agree.
    let report = recorder
        .send(Flush::within(Duration::from_secs(120)))
        .await
        .unwrap();
    assert_eq!(report.pending, 0);
    let (lane, message) = (
        telemetry.stats().await,
        recorder.send(GetStats).await.unwrap(),
    );
    assert_eq!(lane, message);
    assert_eq!(balance(&lane).0, balance(&lane).1, "{lane:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_through_the_telemetry_answers_by_its_deadline_during_a_burst() {
    let (_backend, telemetry, in_order, report) =
        behind_some_burst(|backend, telemetry, in_order| async move {
            let report = telemetry.flush(Duration::from_millis(50)).await;
            // It did not wait for the burst to come through the mailbox: what was sent before
            // it has not been answered yet.
            (!in_order.is_finished() && !report.complete)
                .then_some((backend, telemetry, in_order, report))
        })
        .await;
    assert!(!report.complete, "{report:?}");
    assert_eq!(in_order.await.unwrap().accepted, BURST);
    // Once the burst is in, a flush through the telemetry completes as any other (a generous
    // bound: delivering the whole burst on a loaded machine can take a while).
    let report = telemetry.flush(Duration::from_secs(120)).await;
    assert!(report.complete && report.pending == 0, "{report:?}");
}
