//! Every setting is checked when the runtime is built: a value that would panic, hang or do
//! nothing later is a typed error naming the setting, and deadlines as long as `Duration::MAX`
//! are answered, never an overflowing clock.

mod support;

use std::time::Duration;

use actix_telemetry::{
    AdmissionPolicy, BackoffPolicy, BuildError, Builder, ConfigProblem, Flush, Record, SinkConfig,
    StreamSettings, SubmitterConfig,
};
use support::*;

/// The setting `build` names, or a panic if it succeeds or fails otherwise.
fn refused_setting(builder: Builder) -> (String, ConfigProblem) {
    match builder.build() {
        Err(BuildError::InvalidConfig(error)) => (error.setting, error.problem),
        Err(other) => panic!("not a configuration error: {other}"),
        Ok(_) => panic!("built"),
    }
}

fn base() -> Builder {
    builder("file:///dev/null")
}

#[test]
fn durations_that_would_overflow_a_clock_are_refused() {
    let (setting, problem) = refused_setting(base().snapshot_max_age(Duration::MAX));
    assert_eq!(setting, "snapshot_max_age");
    assert!(matches!(problem, ConfigProblem::TooLong(_)));
    let (setting, _) = refused_setting(base().checkin_interval(Duration::MAX));
    assert_eq!(setting, "checkin_interval");
    let (setting, _) = refused_setting(base().max_event_age(Duration::MAX));
    assert_eq!(setting, "max_event_age");
    let (setting, _) = refused_setting(base().admission(AdmissionPolicy::Wait(Duration::MAX)));
    assert_eq!(setting, "admission");
}

#[test]
fn backoff_bounds_must_be_positive_ordered_and_jitter_within_0_and_1() {
    let good = BackoffPolicy::default();
    let cases = [
        (
            BackoffPolicy {
                max: Duration::MAX,
                ..good.clone()
            },
            "backoff.max",
        ),
        (
            BackoffPolicy {
                initial: Duration::ZERO,
                ..good.clone()
            },
            "backoff.initial",
        ),
        (
            BackoffPolicy {
                initial: Duration::from_secs(10),
                max: Duration::from_secs(1),
                ..good.clone()
            },
            "backoff.max",
        ),
        (
            BackoffPolicy {
                jitter: 1.5,
                ..good.clone()
            },
            "backoff.jitter",
        ),
        (
            BackoffPolicy {
                jitter: f64::NAN,
                ..good.clone()
            },
            "backoff.jitter",
        ),
        (
            BackoffPolicy {
                multiplier: 0.5,
                ..good.clone()
            },
            "backoff.multiplier",
        ),
    ];
    for (policy, expected) in cases {
        let (setting, _) = refused_setting(base().backoff(policy.clone()));
        assert_eq!(setting, expected, "{policy:?}");
    }
    let stream = StreamSettings {
        backoff: BackoffPolicy {
            jitter: -0.1,
            ..good
        },
        ..StreamSettings::new("http://127.0.0.1:1/stream".parse().unwrap())
    };
    assert_eq!(
        refused_setting(base().stream(stream)).0,
        "stream.backoff.jitter"
    );
}

#[test]
fn zero_timeouts_and_sizes_that_cannot_hold_one_event_are_refused() {
    assert_eq!(
        refused_setting(base().request_timeout(Duration::ZERO)).0,
        "request_timeout"
    );
    assert_eq!(
        refused_setting(base().connect_timeout(Duration::ZERO)).0,
        "connect_timeout"
    );
    assert_eq!(
        refused_setting(base().max_event_bytes(10)).0,
        "max_event_bytes"
    );
    assert_eq!(
        refused_setting(base().max_batch_bytes(2048)).0,
        "max_batch_bytes"
    );
    assert_eq!(
        refused_setting(base().max_checkin_bytes(0)).0,
        "max_checkin_bytes"
    );
    let sink = SinkConfig::new("audit", "file:///dev/null").queue(SubmitterConfig {
        flush_interval: Duration::ZERO,
        ..SubmitterConfig::default()
    });
    let (setting, problem) = refused_setting(base().sink(sink));
    assert_eq!(setting, "sink \"audit\": flush_interval");
    assert_eq!(problem, ConfigProblem::Zero);
    let message = base().max_event_bytes(10).build().unwrap_err().to_string();
    assert!(message.contains("max_event_bytes"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_and_shutdowns_with_duration_max_are_answered() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    telemetry.recorder().do_send(Record::new("e"));
    let report = telemetry
        .recorder()
        .send(Flush::within(Duration::MAX))
        .await
        .unwrap();
    assert!(report.complete);
    assert_eq!(report.delivered, 1);
    let report = telemetry.flush(Duration::MAX).await;
    assert!(report.complete);
    let report = telemetry.shutdown(Duration::MAX).await;
    assert!(report.complete, "{report:?}");
}
