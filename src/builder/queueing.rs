//! How events queue, batch and retry on their way to the primary endpoint, how large one
//! may be, and how many may wait for the runtime.

use std::time::Duration;

use super::Builder;
use crate::admission::AdmissionPolicy;
use crate::queue_config::OverflowPolicy;
use crate::retry_delay::BackoffPolicy;

impl Builder {
    /// How many events sent through [`Telemetry::events`](crate::Telemetry::events) may wait
    /// for the runtime at once (default 10,000); beyond it the [`AdmissionPolicy`] applies on
    /// the caller's thread.
    pub fn max_pending_events(mut self, n: usize) -> Self {
        self.settings.max_pending_events = n;
        self
    }

    /// What [`EventSender::record`](crate::EventSender::record) does when the runtime is that
    /// far behind (default: wait up to 1 s for it, then drop and count).
    pub fn admission(mut self, policy: AdmissionPolicy) -> Self {
        self.settings.admission = policy;
        self
    }

    /// Cut a batch at this many events (default 1000).
    pub fn max_batch_events(mut self, n: usize) -> Self {
        self.settings.submitter.max_batch_events = n;
        self
    }

    /// Cut a batch before its uncompressed body exceeds this many bytes (default 4 MiB).
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.settings.submitter.max_batch_bytes = n;
        self
    }

    /// Send a partial batch at least this often (default 5 s).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.settings.submitter.flush_interval = interval;
        self
    }

    /// Hold at most this many undelivered events (default 100,000).
    pub fn max_queue_events(mut self, n: usize) -> Self {
        self.settings.submitter.max_queue_events = n;
        self
    }

    /// Hold at most this many bytes of undelivered events (default 24 MiB).
    pub fn max_queue_bytes(mut self, n: usize) -> Self {
        self.settings.submitter.max_queue_bytes = n;
        self
    }

    /// What to drop when the queue is full (default: the oldest).
    pub fn overflow_policy(mut self, policy: OverflowPolicy) -> Self {
        self.settings.submitter.overflow = policy;
        self
    }

    /// Batches on the wire at once (default 4).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.settings.submitter.max_in_flight = n;
        self
    }

    /// Without a spool, give up on a batch after this many failed attempts; `None` keeps
    /// retrying until the queue overflows (default 12). A sink with a spool retries transient
    /// failures until an event is older than [`max_event_age`](Builder::max_event_age).
    pub fn max_attempts(mut self, n: Option<u32>) -> Self {
        self.settings.submitter.max_attempts = n;
        self
    }

    /// With a spool, how old an event may get while its backend fails before it is dropped
    /// (counted as `expired`; default 7 days).
    pub fn max_event_age(mut self, age: Duration) -> Self {
        self.settings.submitter.max_event_age = age;
        self
    }

    /// With a spool, how long a sink whose backend refused a whole batch (401, 403, 404)
    /// waits before it tries again, keeping its events (default 5 minutes).
    pub fn refused_retry_interval(mut self, interval: Duration) -> Self {
        self.settings.submitter.refused_retry_interval = interval;
        self
    }

    /// How the pause between probes of a failing backend grows (default 0.5 s doubling to
    /// 60 s, ±50 % jitter; never more than a quarter of the outage so far).
    pub fn backoff(mut self, policy: BackoffPolicy) -> Self {
        self.settings.submitter.backoff = policy;
        self
    }

    /// Drop (and count) events whose JSON is larger than this (default 900 KiB).
    pub fn max_event_bytes(mut self, n: usize) -> Self {
        self.settings.max_event_bytes = n;
        self
    }
}
