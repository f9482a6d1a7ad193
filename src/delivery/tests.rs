//! Unit tests of a sink's delivery state, without actix.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::*;
use crate::queue_config::DEFAULT_REFUSED_RETRY;
use crate::retry_delay::BackoffPolicy;
use crate::timestamp::rfc3339;
use crate::transport::DeliveryOutcome;

fn event_at(i: u64, at: SystemTime) -> EncodedEvent {
    let json = format!(
        r#"{{"name":"e{i}","distinct_id":"d","uuid":"00000000-0000-7000-8000-{i:012}","timestamp":"{}","properties":{{}}}}"#,
        rfc3339(at)
    );
    EncodedEvent::from_json(json.into_bytes()).expect("UTF-8")
}

fn event(i: u64) -> EncodedEvent {
    event_at(i, SystemTime::now())
}

fn config() -> SubmitterConfig {
    SubmitterConfig {
        max_batch_events: 10,
        max_in_flight: 4,
        max_attempts: Some(3),
        backoff: BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.0,
        },
        ..SubmitterConfig::default()
    }
}

fn retry() -> DeliveryOutcome {
    DeliveryOutcome::Retry {
        after: None,
        reason: "test".into(),
    }
}

fn temp_spool(label: &str) -> (Spool, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "actix-telemetry-delivery-{label}-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    (Spool::open(&dir, 1 << 30).expect("a spool"), dir)
}

/// A sink's state with a spool of its own in a fresh directory (to remove afterwards).
fn spooled_core(label: &str, config: SubmitterConfig) -> (SinkCore, std::path::PathBuf) {
    let (spool, dir) = temp_spool(label);
    (SinkCore::new(config, Some(spool)), dir)
}

fn assert_balanced(core: &SinkCore) {
    let (taken, accounted) = core.balance();
    assert_eq!(taken, accounted, "{core:#?}");
}

#[test]
fn an_outage_pauses_then_probes_one_batch_at_a_time_then_resumes_at_full_speed() {
    let mut core = SinkCore::new(config(), None);
    for i in 0..100 {
        core.enqueue(event(i));
    }
    let t0 = Instant::now();
    let first: Vec<Outgoing> = std::iter::from_fn(|| core.next_batch(t0)).collect();
    assert_eq!(first.len(), 4, "full speed while healthy");
    for out in &first {
        core.on_outcome(out.id, retry(), t0);
    }
    // Four failures of batches that were in flight together: one pause, not four doublings.
    assert_eq!(core.resume_at(), Some(t0 + Duration::from_millis(100)));
    assert!(core.next_batch(t0).is_none());
    let t1 = t0 + Duration::from_millis(100);
    let probe = core.next_batch(t1).expect("a probe");
    assert!(core.next_batch(t1).is_none(), "one probe at a time");
    core.on_outcome(probe.id, DeliveryOutcome::Delivered, t1);
    let after: Vec<Outgoing> = std::iter::from_fn(|| core.next_batch(t1)).collect();
    assert_eq!(
        after.len(),
        4,
        "full speed at once after the probe answered"
    );
    assert_balanced(&core);
}

#[test]
fn a_partial_answer_delivers_drops_and_retries_only_what_it_names() {
    let mut core = SinkCore::new(config(), None);
    for i in 0..4 {
        core.enqueue(event(i));
    }
    let (tx, mut rx) = oneshot::channel();
    core.start_flush(None, false, tx);
    let t0 = Instant::now();
    let out = core.next_batch(t0).expect("a batch");
    let partial = DeliveryOutcome::Partial {
        retry: vec![2],
        dropped: vec![1],
        after: Some(Duration::from_secs(1)),
    };
    core.on_outcome(out.id, partial, t0);
    assert!(rx.try_recv().is_err(), "the retried event is still held");
    assert!(core.next_batch(t0).is_none(), "not before Retry-After");
    let t1 = core.resume_at().expect("a pause");
    assert!(t1 >= t0 + Duration::from_secs(1));
    let again = core.next_batch(t1).expect("the retried event");
    assert_eq!(again.events.len(), 1);
    assert_eq!(again.events[0].uuid, out.events[2].uuid);
    core.on_outcome(again.id, DeliveryOutcome::Delivered, t1);
    let report = rx.try_recv().expect("the flush is answered");
    assert_eq!((report.delivered, report.dropped), (3, 1));
    let stats = core.stats();
    assert_eq!(
        (stats.delivered, stats.dropped.rejected, stats.retries),
        (3, 1, 1)
    );
    assert_balanced(&core);
}

#[test]
fn without_a_spool_attempts_are_bounded() {
    let mut core = SinkCore::new(config(), None);
    core.enqueue(event(1));
    core.release_partial();
    let mut now = Instant::now();
    for _ in 0..3 {
        now = core.resume_at().unwrap_or(now);
        let out = core.next_batch(now).expect("a batch");
        core.on_outcome(out.id, retry(), now);
    }
    assert_eq!(core.stats().dropped.retries_exhausted, 1);
    assert_balanced(&core);
}

#[test]
fn with_a_spool_transient_failures_are_retried_until_the_age_limit() {
    let (spool, dir) = temp_spool("age");
    let mut core = SinkCore::new(
        SubmitterConfig {
            max_event_age: Duration::from_secs(3600),
            ..config()
        },
        Some(spool),
    );
    core.enqueue(event(1));
    core.enqueue(event_at(2, SystemTime::now() - Duration::from_secs(7200)));
    core.release_partial();
    let mut now = Instant::now();
    for _ in 0..20 {
        now = core.resume_at().unwrap_or(now);
        let out = core.next_batch(now).expect("a batch");
        core.on_outcome(out.id, retry(), now);
    }
    let stats = core.stats();
    assert_eq!(stats.dropped.retries_exhausted, 0);
    assert_eq!(
        stats.dropped.expired, 1,
        "the old event outlived the age limit"
    );
    assert_eq!(stats.queue_depth, 1, "the young one is still held");
    assert_balanced(&core);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_refusal_pauses_a_spooled_sink_and_keeps_its_events() {
    let (spool, dir) = temp_spool("refused");
    let mut core = SinkCore::new(config(), Some(spool));
    for i in 0..5 {
        core.enqueue(event(i));
    }
    core.release_partial();
    let t0 = Instant::now();
    let out = core.next_batch(t0).expect("a batch");
    core.on_outcome(out.id, DeliveryOutcome::Refused { status: 401 }, t0);
    let stats = core.stats();
    assert_eq!(stats.sinks_paused, 1);
    assert_eq!(stats.dropped.total(), 0);
    assert_eq!(stats.queue_depth, 5);
    assert!(core.next_batch(t0 + Duration::from_secs(299)).is_none());
    let later = t0 + DEFAULT_REFUSED_RETRY;
    let probe = core
        .next_batch(later)
        .expect("a probe after the long interval");
    core.on_outcome(probe.id, DeliveryOutcome::Delivered, later);
    let stats = core.stats();
    assert_eq!((stats.delivered, stats.sinks_paused), (5, 0));
    assert_balanced(&core);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn without_a_spool_a_refusal_drops_the_batch() {
    let mut core = SinkCore::new(config(), None);
    core.enqueue(event(1));
    core.release_partial();
    let t0 = Instant::now();
    let out = core.next_batch(t0).expect("a batch");
    core.on_outcome(out.id, DeliveryOutcome::Refused { status: 403 }, t0);
    assert_eq!(core.stats().dropped.refused, 1);
    assert_balanced(&core);
}

#[test]
fn timestamps_of_read_back_events_are_seen() {
    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    assert_eq!(event_at(1, at).timestamp_ms(), Some(1_700_000_000_123));
}

/// One step of a random run.
#[derive(Clone, Debug)]
enum Step {
    Enqueue(u8),
    Release,
    Send,
    Answer { pick: u8, how: u8 },
    Restart,
    Flush,
    Expire,
    WriteSpool,
    Shutdown,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => any::<u8>().prop_map(Step::Enqueue),
        1 => Just(Step::Release),
        3 => Just(Step::Send),
        4 => (any::<u8>(), any::<u8>()).prop_map(|(pick, how)| Step::Answer { pick, how }),
        1 => Just(Step::Restart),
        1 => Just(Step::Flush),
        1 => Just(Step::Expire),
        1 => Just(Step::WriteSpool),
        1 => Just(Step::Shutdown),
    ]
}

fn outcome(how: u8) -> DeliveryOutcome {
    match how % 7 {
        0 | 1 => DeliveryOutcome::Delivered,
        2 => retry(),
        3 => DeliveryOutcome::Rejected { status: 400 },
        4 => DeliveryOutcome::TooLarge,
        // Indices past the end of a short batch are ignored.
        5 => DeliveryOutcome::Partial {
            retry: vec![usize::from(how / 7 % 4)],
            dropped: vec![usize::from(how / 28 % 4), 9],
            after: None,
        },
        _ => DeliveryOutcome::Refused { status: 401 },
    }
}

fn run(steps: &[Step], spool: Option<Spool>) {
    let mut core = SinkCore::new(
        SubmitterConfig {
            max_batch_events: 4,
            max_queue_events: 12,
            max_in_flight: 2,
            ..config()
        },
        spool,
    );
    let mut now = Instant::now();
    let mut flying: Vec<u64> = Vec::new();
    let mut flushes = Vec::new();
    let mut n = 0;
    for step in steps {
        match step {
            Step::Enqueue(k) => {
                for _ in 0..=(k % 8) {
                    n += 1;
                    core.enqueue(event(n));
                }
            }
            Step::Release => core.release_partial(),
            Step::Send => {
                now = core.resume_at().unwrap_or(now).max(now);
                flying.extend(std::iter::from_fn(|| core.next_batch(now)).map(|o| o.id));
            }
            Step::Answer { pick, how } if !flying.is_empty() => {
                let id = flying.swap_remove(usize::from(*pick) % flying.len());
                core.on_outcome(id, outcome(*how), now);
            }
            Step::Answer { .. } => {}
            Step::Restart => {
                core.restarted();
                flying.clear();
            }
            Step::Flush => {
                let (reply, answer) = oneshot::channel();
                flushes.push((core.start_flush(None, false, reply), answer));
            }
            Step::Expire => {
                if let Some((id, _)) = flushes.first() {
                    core.expire_flush(*id);
                }
            }
            Step::WriteSpool => core.write_spool(),
            Step::Shutdown => {
                let (reply, _answer) = oneshot::channel();
                let id = core.start_flush(None, true, reply);
                core.expire_flush(id);
                flying.clear();
            }
        }
        let (taken, accounted) = core.balance();
        prop_assert_eq_sync(taken, accounted, step);
        let stats = core.stats();
        assert_eq!(stats.queue_depth, core.held_events as u64);
    }
}

fn prop_assert_eq_sync(taken: u64, accounted: u64, step: &Step) {
    assert_eq!(taken, accounted, "unbalanced after {step:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_event_is_delivered_dropped_or_held(steps in prop::collection::vec(step(), 1..120)) {
        run(&steps, None);
    }

    #[test]
    fn every_event_is_delivered_dropped_held_or_on_disk(steps in prop::collection::vec(step(), 1..120)) {
        let (spool, dir) = temp_spool("prop");
        run(&steps, Some(spool));
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn events_beyond_memory_wait_on_disk_and_leave_in_order() {
    let (mut core, dir) = spooled_core(
        "order",
        SubmitterConfig {
            max_batch_events: 5,
            max_queue_events: 12,
            max_in_flight: 1,
            ..config()
        },
    );
    for i in 0..40 {
        core.enqueue(event(i));
        core.write_spool();
    }
    let stats = core.stats();
    assert_eq!((stats.queue_depth, stats.spool_disk_only), (12, 28));
    assert_eq!(stats.dropped.total(), 0);
    core.release_partial();
    let now = Instant::now();
    let mut names = Vec::new();
    while let Some(out) = core.next_batch(now) {
        for e in out.events.iter() {
            let mut json = Vec::new();
            e.write_to(&mut json);
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            names.push(v["name"].as_str().unwrap().to_string());
        }
        core.on_outcome(out.id, DeliveryOutcome::Delivered, now);
        core.write_spool();
        core.release_partial();
        assert_balanced(&core);
    }
    let expected: Vec<String> = (0..40).map(|i| format!("e{i}")).collect();
    assert_eq!(names, expected);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_backlog_comes_back_from_the_spool_a_quarter_of_the_queue_at_a_time() {
    let (mut core, dir) = spooled_core(
        "read-back-quarter",
        SubmitterConfig {
            max_queue_events: 40,
            ..config()
        },
    );
    for i in 0..200 {
        core.enqueue(event(i));
    }
    core.write_spool();
    assert_eq!(
        core.stats().queue_depth,
        40,
        "memory full, the rest on disk"
    );
    let t0 = Instant::now();
    let mut most_after_read_back = 0;
    let mut delivered = 0;
    while let Some(out) = core.next_batch(t0) {
        delivered += out.events.len();
        core.on_outcome(out.id, DeliveryOutcome::Delivered, t0);
        if delivered > 40 {
            most_after_read_back = most_after_read_back.max(core.stats().queue_depth);
        }
    }
    assert_eq!(delivered, 200);
    assert!(
        (1..=10).contains(&most_after_read_back),
        "{most_after_read_back} held from the backlog"
    );
    assert_balanced(&core);
    let _ = std::fs::remove_dir_all(dir);
}
