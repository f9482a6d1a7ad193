//! The `$session_id`: a UUIDv7 that rotates after a period without events and after a maximum
//! length, as the mobile analytics SDKs do. A session id handed down in the correlation data
//! belongs to the parent (a CI run, say) and never rotates.

use std::time::Duration;

use tokio::time::Instant;

use crate::rng::new_id;

/// When sessions end.
///
/// ```
/// use std::time::Duration;
/// use actix_telemetry::{Builder, SessionPolicy};
/// let builder = Builder::new().session(SessionPolicy {
///     idle_timeout: Duration::from_secs(10 * 60),
///     ..SessionPolicy::default()
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session ends after this long without events.
    pub idle_timeout: Duration,
    /// A session ends after this long in all.
    pub max_length: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_timeout: Duration::from_secs(30 * 60),
            max_length: Duration::from_secs(24 * 60 * 60),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: String,
    policy: SessionPolicy,
    fixed: bool,
    started: Instant,
    last_event: Instant,
}

impl Session {
    /// A session with `id`; `fixed` ones (from correlation data) never rotate.
    pub fn new(id: String, fixed: bool, policy: SessionPolicy, now: Instant) -> Self {
        Session {
            id,
            policy,
            fixed,
            started: now,
            last_event: now,
        }
    }

    /// Notes an event at `at`; starts a new session first if the current one has ended.
    /// Returns whether it did.
    pub fn touch(&mut self, at: Instant) -> bool {
        let ended = !self.fixed
            && (at.saturating_duration_since(self.last_event) > self.policy.idle_timeout
                || at.saturating_duration_since(self.started) > self.policy.max_length);
        if ended {
            self.restart(at);
        }
        self.last_event = self.last_event.max(at);
        ended
    }

    /// Starts a new session now (after `Reset`).
    pub fn restart(&mut self, now: Instant) {
        self.id = new_id();
        self.fixed = false;
        self.started = now;
        self.last_event = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn rotates_after_inactivity() {
        let mut session =
            Session::new("s0".into(), false, SessionPolicy::default(), Instant::now());
        tokio::time::advance(29 * MIN).await;
        assert!(!session.touch(Instant::now()));
        assert_eq!(session.id, "s0");
        tokio::time::advance(30 * MIN + Duration::from_secs(1)).await;
        assert!(session.touch(Instant::now()));
        assert_ne!(session.id, "s0");
    }

    #[tokio::test(start_paused = true)]
    async fn rotates_after_the_maximum_length_even_when_busy() {
        let mut session =
            Session::new("s0".into(), false, SessionPolicy::default(), Instant::now());
        let mut rotations = 0;
        // An event every 10 minutes for 50 hours: sessions end at 24h10m and 48h20m.
        for _ in 0..(50 * 6) {
            tokio::time::advance(10 * MIN).await;
            if session.touch(Instant::now()) {
                rotations += 1;
            }
        }
        assert_eq!(rotations, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_correlation_session_stays_fixed_until_reset() {
        let mut session = Session::new(
            "ci-run".into(),
            true,
            SessionPolicy::default(),
            Instant::now(),
        );
        tokio::time::advance(48 * 60 * MIN).await;
        assert!(!session.touch(Instant::now()));
        assert_eq!(session.id, "ci-run");
        session.restart(Instant::now());
        assert_ne!(session.id, "ci-run");
    }
}
