//! The one validation pass: every setting's rule, checked before anything starts, so that a
//! value that would panic, hang or silently do nothing later is a [`ConfigError`] naming the
//! setting.

use crate::admission::AdmissionPolicy;
use crate::queue_config::SubmitterConfig;
use crate::settings::Settings;
use crate::validate::{Checks, ConfigError, ConfigProblem, MIN_EVENT_BYTES};

/// Every setting, checked once: the first that cannot work is the error.
pub(super) fn check(settings: &Settings) -> Result<(), ConfigError> {
    let mut checks = Checks::default();
    if let Some((key, reason)) = &settings.refused_fact {
        checks.fail(format!("fact {key:?}"), ConfigProblem::Value(*reason));
    }
    checks.at_least(
        "max_event_bytes",
        settings.max_event_bytes as u64,
        MIN_EVENT_BYTES as u64,
        "the envelope of one event",
    );
    check_queue(
        &mut checks,
        "",
        &settings.submitter,
        settings.max_event_bytes,
    );
    for sink in &settings.sinks {
        let scope = format!("sink {:?}: ", sink.name);
        check_queue(&mut checks, &scope, &sink.queue, settings.max_event_bytes);
    }
    checks.positive_duration("checkin_interval", settings.checkin_interval);
    checks.positive_duration("user_flags.ttl", settings.user_flags.ttl);
    checks.at_least(
        "user_flags.max_users",
        settings.user_flags.max_users as u64,
        1,
        "one user",
    );
    checks.duration("snapshot_max_age", settings.snapshot_max_age);
    checks.positive_duration("request_timeout", settings.request_timeout);
    checks.positive_duration("connect_timeout", settings.connect_timeout);
    checks.at_least(
        "max_pending_events",
        settings.max_pending_events as u64,
        1,
        "one event",
    );
    checks.at_least(
        "max_checkin_bytes",
        settings.max_checkin_bytes as u64,
        2,
        "an empty JSON object",
    );
    if let AdmissionPolicy::Wait(wait) = settings.admission {
        checks.duration("admission", wait);
    }
    checks.positive_duration("session.idle_timeout", settings.session.idle_timeout);
    checks.positive_duration("session.max_length", settings.session.max_length);
    if let Some(stream) = &settings.stream {
        checks.positive_duration("stream.idle_timeout", stream.idle_timeout);
        checks.backoff("stream.backoff", &stream.backoff);
    }
    #[cfg(feature = "srv")]
    if let Some(srv) = &settings.srv {
        checks.positive_duration("srv.lookup_timeout", srv.lookup_timeout);
        checks.duration("srv.negative_ttl", srv.negative_ttl);
        checks.backoff("srv.target_backoff", &srv.target_backoff);
    }
    checks.finish()
}

/// The checks of one sink's queue (`scope` names the sink, empty for the primary one).
fn check_queue(checks: &mut Checks, scope: &str, s: &SubmitterConfig, max_event_bytes: usize) {
    let name = |field: &str| format!("{scope}{field}");
    checks.at_least(
        &name("max_batch_events"),
        s.max_batch_events as u64,
        1,
        "one event",
    );
    checks.at_least(
        &name("max_in_flight"),
        s.max_in_flight as u64,
        1,
        "one batch",
    );
    checks.at_least(
        &name("max_queue_events"),
        s.max_queue_events as u64,
        s.max_batch_events as u64,
        "max_batch_events",
    );
    checks.at_least(
        &name("max_queue_bytes"),
        s.max_queue_bytes as u64,
        max_event_bytes as u64,
        "max_event_bytes",
    );
    checks.at_least(
        &name("max_batch_bytes"),
        s.max_batch_bytes as u64,
        max_event_bytes as u64,
        "max_event_bytes",
    );
    checks.positive_duration(&name("flush_interval"), s.flush_interval);
    if let Some(attempts) = s.max_attempts {
        checks.at_least(&name("max_attempts"), u64::from(attempts), 1, "one attempt");
    }
    checks.positive_duration(&name("max_event_age"), s.max_event_age);
    checks.positive_duration(&name("refused_retry_interval"), s.refused_retry_interval);
    checks.backoff(&name("backoff"), &s.backoff);
}
