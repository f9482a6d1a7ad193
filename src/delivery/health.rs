//! Whether a sink's backend is taking events, and when to try it again: backoff per sink and
//! per outage.
//!
//! While the backend answers, every batch may go at once (up to the in-flight limit). The
//! first failure starts an outage: sending pauses, then ONE probe batch at a time tests the
//! backend. Each failed probe doubles the pause (with jitter); failures of batches that were
//! already on the wire when the outage began do not, so the pause does not compound with the
//! number of batches in flight. The pause never exceeds a quarter of the outage so far (nor
//! the policy's maximum), which bounds the time from recovery to the first delivery by about a
//! quarter of the outage's length. Any success ends the outage and delivery resumes at full
//! speed at once.
//!
//! A whole-batch refusal (401, 403, 404) pauses the sink for a long interval instead: the
//! events stay held (and spooled), and a probe every [`refused_interval`](SinkHealth::new)
//! finds out whether a key or a proxy was fixed.

use std::time::Duration;

use tokio::time::Instant;

use crate::retry_delay::{BackoffPolicy, RetryDelay};
use crate::rng::Rng;

/// The state of one sink's backend as deliveries see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    /// Answering: batches go as fast as the in-flight limit allows.
    Healthy,
    /// Failing since `since`: one probe at a time, not before `resume_at`.
    Failing {
        /// When the outage began.
        since: Instant,
        /// No probe before this.
        resume_at: Instant,
        /// Whether a probe is on the wire.
        probing: bool,
    },
    /// Refused every batch with `status` (401, 403, 404): probe again at `resume_at`.
    Refused {
        /// The refusal.
        status: u16,
        /// When the next probe may go.
        resume_at: Instant,
        /// Whether a probe is on the wire.
        probing: bool,
    },
}

/// Backoff and probing for one sink. See the module documentation.
#[derive(Debug)]
pub struct SinkHealth {
    state: HealthState,
    delay: RetryDelay,
    refused_interval: Duration,
    rng: Rng,
}

/// How one batch left: as an ordinary batch or as the probe of an outage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendKind {
    /// Sent while the backend was healthy.
    Normal,
    /// The one batch testing a failing or refusing backend.
    Probe,
}

impl SinkHealth {
    /// A healthy sink whose probes back off as `policy` says, and which probes a refusing
    /// backend every `refused_interval`.
    pub fn new(policy: &BackoffPolicy, refused_interval: Duration) -> Self {
        SinkHealth {
            state: HealthState::Healthy,
            delay: RetryDelay::new(policy),
            refused_interval,
            rng: Rng::from_entropy(),
        }
    }

    /// The current state.
    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Whether a batch may go now, with `in_flight` on the wire out of `max_in_flight`.
    pub fn may_send(&self, now: Instant, in_flight: usize, max_in_flight: usize) -> bool {
        match self.state {
            HealthState::Healthy => in_flight < max_in_flight,
            HealthState::Failing {
                resume_at, probing, ..
            }
            | HealthState::Refused {
                resume_at, probing, ..
            } => !probing && now >= resume_at,
        }
    }

    /// Notes that a batch went out; says whether it is the probe.
    pub fn on_sent(&mut self) -> SendKind {
        match &mut self.state {
            HealthState::Healthy => SendKind::Normal,
            HealthState::Failing { probing, .. } | HealthState::Refused { probing, .. } => {
                *probing = true;
                SendKind::Probe
            }
        }
    }

    /// When a paused sink may send again (`None` while healthy or while a probe is out).
    pub fn resume_at(&self) -> Option<Instant> {
        match self.state {
            HealthState::Healthy => None,
            HealthState::Failing {
                resume_at, probing, ..
            }
            | HealthState::Refused {
                resume_at, probing, ..
            } => (!probing).then_some(resume_at),
        }
    }

    /// The backend took a batch: the outage (if any) is over.
    pub fn on_success(&mut self) {
        if self.state != HealthState::Healthy {
            tracing::info!(
                target: "actix_telemetry::delivery",
                "backend answering again; delivering at full speed"
            );
        }
        self.state = HealthState::Healthy;
        self.delay.reset();
    }

    /// A batch failed transiently (`after`: the backend's `Retry-After`, a floor for the
    /// pause). Returns the pause that follows, if this failure changed it.
    pub fn on_failure(
        &mut self,
        kind: SendKind,
        after: Option<Duration>,
        now: Instant,
    ) -> Option<Duration> {
        let since = match self.state {
            HealthState::Healthy => now,
            HealthState::Failing { since, .. } => {
                if kind != SendKind::Probe {
                    // A batch already on the wire when the outage began: it tells nothing new.
                    return None;
                }
                since
            }
            // A transient failure of a refused sink's probe: an outage now, not a refusal.
            HealthState::Refused { .. } => now,
        };
        // Jittered downwards only, so the bound holds and many clients do not probe in step.
        let age_cap = ((now - since) / 4)
            .mul_f64(1.0 - self.delay.jitter() / 2.0 * self.rng.unit())
            .max(self.delay.initial());
        let wait = self
            .delay
            .next_delay()
            .min(age_cap)
            .max(after.unwrap_or_default());
        self.state = HealthState::Failing {
            since,
            resume_at: now + wait,
            probing: false,
        };
        Some(wait)
    }

    /// The backend refused a whole batch for good (401, 403, 404): pause for the long interval.
    pub fn on_refused(&mut self, status: u16, now: Instant) -> Duration {
        self.delay.reset();
        self.state = HealthState::Refused {
            status,
            resume_at: now + self.refused_interval,
            probing: false,
        };
        self.refused_interval
    }

    /// A batch's answer will never come (the actor restarted): a probe on the wire is void.
    pub fn forget_probe(&mut self) {
        if let HealthState::Failing { probing, .. } | HealthState::Refused { probing, .. } =
            &mut self.state
        {
            *probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.0,
        }
    }

    #[test]
    fn batches_in_flight_when_an_outage_starts_do_not_compound_the_pause() {
        let t0 = Instant::now();
        let mut h = SinkHealth::new(&policy(), Duration::from_secs(300));
        let kinds: Vec<SendKind> = (0..4).map(|_| h.on_sent()).collect();
        assert!(kinds.iter().all(|k| *k == SendKind::Normal));
        assert_eq!(
            h.on_failure(SendKind::Normal, None, t0),
            Some(Duration::from_millis(500))
        );
        for _ in 0..3 {
            assert_eq!(h.on_failure(SendKind::Normal, None, t0), None);
        }
        assert_eq!(h.resume_at(), Some(t0 + Duration::from_millis(500)));
        assert!(!h.may_send(t0, 0, 4));
        let t1 = t0 + Duration::from_millis(500);
        assert!(h.may_send(t1, 0, 4));
        assert_eq!(h.on_sent(), SendKind::Probe);
        // One probe at a time.
        assert!(!h.may_send(t1, 1, 4));
    }

    #[test]
    fn failed_probes_double_the_pause_within_a_quarter_of_the_outage() {
        let t0 = Instant::now();
        let mut h = SinkHealth::new(&policy(), Duration::from_secs(300));
        h.on_sent();
        let mut now = t0;
        let mut waits = vec![h.on_failure(SendKind::Normal, None, now).unwrap()];
        for _ in 0..8 {
            now += *waits.last().unwrap();
            assert!(h.may_send(now, 0, 4));
            assert_eq!(h.on_sent(), SendKind::Probe);
            waits.push(h.on_failure(SendKind::Probe, None, now).unwrap());
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        // Doubling is held back to a quarter of the outage's age: the backend is probed at
        // least every (age / 4), so a recovery is noticed within a quarter of the outage.
        assert_eq!(ms[..3], [500, 500, 500]);
        for pair in ms.windows(2) {
            assert!(pair[1] <= pair[0] * 2);
        }
        let age = (now - t0).as_millis();
        assert!(*ms.last().unwrap() <= age / 4 + 1, "{ms:?} after {age} ms");
    }

    #[test]
    fn success_ends_the_outage_at_once() {
        let t0 = Instant::now();
        let mut h = SinkHealth::new(&policy(), Duration::from_secs(300));
        h.on_sent();
        h.on_failure(SendKind::Normal, None, t0);
        let t1 = t0 + Duration::from_secs(1);
        h.on_sent();
        h.on_success();
        assert_eq!(h.state(), HealthState::Healthy);
        assert!(h.may_send(t1, 3, 4));
        // The next outage starts from the initial delay again.
        assert_eq!(
            h.on_failure(SendKind::Normal, None, t1),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_refusal_pauses_long() {
        let t0 = Instant::now();
        let mut h = SinkHealth::new(&policy(), Duration::from_secs(300));
        assert_eq!(
            h.on_failure(SendKind::Normal, Some(Duration::from_secs(7)), t0),
            Some(Duration::from_secs(7))
        );
        assert_eq!(h.on_refused(401, t0), Duration::from_secs(300));
        assert!(!h.may_send(t0 + Duration::from_secs(299), 0, 4));
        assert!(h.may_send(t0 + Duration::from_secs(300), 0, 4));
        assert_eq!(h.on_sent(), SendKind::Probe);
        h.forget_probe();
        assert!(h.may_send(t0 + Duration::from_secs(300), 0, 4));
    }
}
