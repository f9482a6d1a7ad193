//! Holding the intake back while a sink catches up.
//!
//! The runtime's thread takes events in faster than a healthy backend may acknowledge them, and
//! a sink's queue that fills up drops events (or spills them to disk) although nothing is
//! wrong. So each Submitter says when it is crowded: healthy, and holding half of either of
//! its limits (or spilling). While one is, the Recorder leaves events in the
//! admission inbox; its callers then wait, or drop at the door, as their
//! [`AdmissionPolicy`](crate::AdmissionPolicy) says, and the sink delivers what it holds.
//!
//! Holding back never lasts longer than [`MAX_HOLD_BACK`] in a row: a backend that takes
//! batches without ever answering looks healthy, and callers must not wait on it for ever.
//! After that the Recorder takes events in again and the sink's own overflow policy applies,
//! as it does during an outage (a failing sink is never crowded: holding back would only move
//! its drops to the callers).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The longest the Recorder holds events back in a row: shorter than the default one-second
/// wait of a caller, so a caller with the default policy does not drop an event because of it.
pub(crate) const MAX_HOLD_BACK: Duration = Duration::from_millis(250);

/// How often the Recorder looks again while holding back.
pub(crate) const HOLD_BACK_STEP: Duration = Duration::from_millis(1);

/// Whether a sink is crowded: set by its Submitter, read by the Recorder.
#[derive(Clone, Debug, Default)]
pub(crate) struct Crowding(Arc<AtomicBool>);

impl Crowding {
    pub fn set(&self, crowded: bool) {
        self.0.store(crowded, Ordering::Relaxed);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a sink holds against its limits, to decide whether it is crowded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fill {
    pub events: usize,
    pub max_events: usize,
    pub bytes: usize,
    pub max_bytes: usize,
}

impl Fill {
    /// Crowded from half of either limit until both are below a quarter (so the flag does not
    /// flap at every event), and only while the sink is healthy. Half a queue is tens of
    /// batches with the defaults, so the backend never waits for the intake, and the other half
    /// takes what is on its way when the flag goes up (the inbox's budget, a run of 256).
    pub fn crowded(self, healthy: bool, spilling: bool, was: bool) -> bool {
        if !healthy {
            return false;
        }
        let over = |held: usize, max: usize, quarters: usize| {
            held.saturating_mul(4) >= max.saturating_mul(quarters)
        };
        let high = over(self.events, self.max_events, 2) || over(self.bytes, self.max_bytes, 2);
        let low = !over(self.events, self.max_events, 1) && !over(self.bytes, self.max_bytes, 1);
        spilling || high || (was && !low)
    }
}

/// The Recorder's side: whether to leave the inbox alone for now.
#[derive(Debug, Default)]
pub(crate) struct HoldBack {
    since: Option<Instant>,
}

impl HoldBack {
    /// True while some sink is crowded, for at most [`MAX_HOLD_BACK`] in a row.
    pub fn now(&mut self, sinks: &[Crowding]) -> bool {
        if !sinks.iter().any(Crowding::get) {
            self.since = None;
            return false;
        }
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        now.duration_since(since) < MAX_HOLD_BACK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(events: usize) -> Fill {
        Fill {
            events,
            max_events: 100,
            bytes: 0,
            max_bytes: 1_000,
        }
    }

    #[test]
    fn crowded_from_half_until_below_a_quarter_and_only_while_healthy() {
        assert!(!fill(49).crowded(true, false, false));
        assert!(fill(50).crowded(true, false, false));
        assert!(fill(30).crowded(true, false, true));
        assert!(!fill(24).crowded(true, false, true));
        assert!(!fill(100).crowded(false, true, true));
        assert!(fill(0).crowded(true, true, false));
        let bytes = Fill {
            bytes: 500,
            ..fill(0)
        };
        assert!(bytes.crowded(true, false, false));
    }

    #[tokio::test(start_paused = true)]
    async fn holding_back_ends_after_its_limit_and_starts_again_once_the_sink_was_clear() {
        let crowding = [Crowding::default()];
        let mut hold = HoldBack::default();
        assert!(!hold.now(&crowding));
        crowding[0].set(true);
        assert!(hold.now(&crowding));
        tokio::time::advance(MAX_HOLD_BACK - Duration::from_millis(1)).await;
        assert!(hold.now(&crowding));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!hold.now(&crowding), "held back longer than the limit");
        crowding[0].set(false);
        assert!(!hold.now(&crowding));
        crowding[0].set(true);
        assert!(hold.now(&crowding));
    }
}
