//! The settings of one sink's queue, as the application sets them: batching, memory bounds,
//! what to drop on overflow, and retries ([`SubmitterConfig`], [`OverflowPolicy`]). The
//! Submitter and the delivery state act on them; the builder and the rules check them.

use std::time::Duration;

use crate::retry_delay::BackoffPolicy;

/// The longest pause a refusing backend gets between probes by default.
pub(crate) const DEFAULT_REFUSED_RETRY: Duration = Duration::from_secs(300);

/// What to drop when the queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Drop the oldest held events (whole retry batches first): recent data is usually worth
    /// more, and the oldest have already had their chances.
    #[default]
    DropOldest,
    /// Refuse the new event.
    DropNewest,
}

/// Batching, memory and retry settings.
#[derive(Clone, Debug)]
pub struct SubmitterConfig {
    /// Cut a batch at this many events.
    pub max_batch_events: usize,
    /// Cut a batch before its body would exceed this many bytes (uncompressed).
    pub max_batch_bytes: usize,
    /// Send a partial batch when its oldest event has waited this long.
    pub flush_interval: Duration,
    /// Hold at most this many events.
    pub max_queue_events: usize,
    /// Hold at most this many bytes of events.
    pub max_queue_bytes: usize,
    /// What to drop when a limit is reached.
    pub overflow: OverflowPolicy,
    /// Batches on the wire at once.
    pub max_in_flight: usize,
    /// Without a spool, give up on a batch after this many failed attempts (`None`: keep it
    /// until overflow). With a spool, transient failures are retried until an event is older
    /// than `max_event_age`.
    pub max_attempts: Option<u32>,
    /// How the pause between probes of a failing backend grows.
    pub backoff: BackoffPolicy,
    /// With a spool, events older than this are dropped (counted as `expired`) instead of
    /// being retried again.
    pub max_event_age: Duration,
    /// With a spool, how long a sink whose backend refused a whole batch (401, 403, 404)
    /// pauses before it tries again; its events stay held and spooled meanwhile.
    pub refused_retry_interval: Duration,
}

impl Default for SubmitterConfig {
    fn default() -> Self {
        SubmitterConfig {
            max_batch_events: 1000,
            max_batch_bytes: 4 * 1024 * 1024,
            flush_interval: Duration::from_secs(5),
            max_queue_events: 100_000,
            max_queue_bytes: 24 * 1024 * 1024,
            overflow: OverflowPolicy::DropOldest,
            max_in_flight: 4,
            max_attempts: Some(12),
            backoff: BackoffPolicy::default(),
            max_event_age: Duration::from_secs(7 * 24 * 3600),
            refused_retry_interval: DEFAULT_REFUSED_RETRY,
        }
    }
}
