//! Counters the runtime reports: what was accepted, delivered, dropped (and why), retried.

/// Defines a struct of counters and, from the same list of fields, the function that adds one
/// to another (each field merged by [`Merge`]): a counter added to the list is added
/// everywhere, and none can be forgotten.
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident: $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $name {
            /// Adds every field of `other` to this one.
            fn merge_fields(&mut self, other: &$name) {
                $( Merge::merge(&mut self.$field, &other.$field); )*
            }

            /// The fields that are plain counts, added up.
            #[allow(dead_code)]
            fn sum_counts(&self) -> u64 {
                0 $( + Merge::count(&self.$field).unwrap_or(0) )*
            }
        }
    };
}

/// How one field of a set of counters is added to another.
trait Merge {
    fn merge(&mut self, other: &Self);
    /// The field as one count, when it is one.
    fn count(&self) -> Option<u64> {
        None
    }
}

impl Merge for u64 {
    fn merge(&mut self, other: &u64) {
        *self += *other;
    }

    fn count(&self) -> Option<u64> {
        Some(*self)
    }
}

impl Merge for DropCounts {
    fn merge(&mut self, other: &DropCounts) {
        self.add(other);
    }
}

impl Merge for crate::actor_kind::ActorSet {
    fn merge(&mut self, other: &Self) {
        *self = self.union(*other);
    }
}

counters! {
/// Events the runtime had to drop, by cause. Every drop is counted in exactly one field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DropCounts {
    /// Telemetry is disabled (`…_IDS_TELEMETRY=disabled` or `DO_NOT_TRACK`).
    pub opt_out: u64,
    /// The message was invalid (for example an empty event name).
    pub invalid: u64,
    /// The encoded event was larger than the configured maximum, or the backend answered 413
    /// for it alone.
    pub too_large: u64,
    /// The queue was full and the overflow policy dropped it.
    pub overflow: u64,
    /// The backend answered 400 for it alone (a poison event).
    pub rejected: u64,
    /// The backend refused the whole batch for good (401, 403, 404 and other final 4xx).
    pub refused: u64,
    /// Every allowed delivery attempt failed.
    pub retries_exhausted: u64,
    /// Still undelivered when a shutdown deadline passed and not spooled, or recorded after
    /// shutdown began.
    pub shutdown: u64,
    /// Older than the sink's `max_event_age` (with a spool) when it would have been retried or
    /// read back.
    pub expired: u64,
    /// Kept on disk only (memory was full) and the spool write failed (a full disk, EIO).
    pub spool_failed: u64,
    /// Kept on disk only and removed by the spool's size limit before it was read back.
    pub spool_full: u64,
    /// Lost with a message whose handler panicked.
    pub panic: u64,
}
}

impl DropCounts {
    /// All drops together.
    pub fn total(&self) -> u64 {
        self.sum_counts()
    }

    /// Adds every field of `other` to this one.
    pub fn add(&mut self, other: &DropCounts) {
        self.merge_fields(other);
    }
}

counters! {
/// A picture of the runtime's counters, answered to [`GetStats`](crate::GetStats).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// let stats = telemetry.stats().await;
/// println!("accepted {}, delivered {}, queued {}", stats.accepted, stats.delivered, stats.queue_depth);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events (including `$identify`, `$set`, `$create_alias`, `$feature_flag_called`) accepted
    /// by the Recorder.
    pub accepted: u64,
    /// Events the backend acknowledged.
    pub delivered: u64,
    /// Events dropped, by cause.
    pub dropped: DropCounts,
    /// Delivery attempts that failed and were scheduled again.
    pub retries: u64,
    /// Batches the backend acknowledged.
    pub batches_delivered: u64,
    /// Actor restarts by their supervisors.
    pub restarts: u64,
    /// Panics caught in actor handlers.
    pub panics: u64,
    /// Actors whose restart budget ran out: they keep running, without restarts.
    pub degraded: crate::actor_kind::ActorSet,
    /// DNS SRV lookups sent by discovery.
    pub dns_lookups: u64,
    /// SRV targets that discovery ignored: a label with bytes other than letters, digits, `-`
    /// and `_`, or a name not under an allowed suffix (counted at each lookup that answers them).
    pub srv_targets_rejected: u64,
    /// Events held by the Submitter (queued, waiting for a retry, or in flight).
    pub queue_depth: u64,
    /// Approximate memory held by those events, in bytes.
    pub queue_bytes: u64,
    /// Successful check-ins.
    pub checkins: u64,
    /// Failed check-ins (unreachable backend, bad status, malformed document).
    pub checkin_failures: u64,
    /// Flags in check-in documents that were malformed and are not served.
    pub invalid_flags: u64,
    /// Events in the spools, waiting for delivery (they survive a crash or restart); not
    /// counting the backlog of [`spool_backlog_bytes`](Stats::spool_backlog_bytes).
    pub spooled: u64,
    /// Bytes of spool segments an earlier run left that are not read back yet: they are read
    /// back, and their events counted in `spooled`, as the queue has room for them.
    pub spool_backlog_bytes: u64,
    /// Corrupt spool records skipped when reading the spools back.
    pub spool_corrupt: u64,
    /// Spool writes that failed (the events were kept in memory only).
    pub spool_errors: u64,
    /// Events whose spool records were removed to keep a spool within its size limit (still
    /// in memory, no longer durable).
    pub spool_overflow: u64,
    /// Of `spooled`, events on disk only: memory was full, so they wait on disk to be read
    /// back in order (they are not in `queue_depth`).
    pub spool_disk_only: u64,
    /// Events an earlier run left in the spool, taken in by this run (they are not in
    /// `accepted`).
    pub recovered: u64,
    /// Sinks running without the spool they were configured with: the state directory or the
    /// sink's spool directory was refused as unsafe (owned by another user, writable by its
    /// group or by others, a symbolic link where a spool file belongs), or the spool could not
    /// be opened (for example, another process holds its lock). The log says which and why.
    /// Their events are kept in memory only.
    pub spools_unavailable: u64,
    /// Sinks paused because their backend refused a whole batch (401, 403, 404); they keep
    /// their events and try again on a long interval.
    pub sinks_paused: u64,
    /// Sinks whose backend is failing right now (one probe at a time until it answers).
    pub sinks_failing: u64,
    /// Property, fact and person-property values refused where they entered (a NaN or an
    /// infinity, or nested deeper than [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH)); the event
    /// went on without them. Not a drop: no event was lost.
    pub invalid_values: u64,
    /// Configuration stream messages applied.
    pub stream_updates: u64,
    /// Configuration stream messages skipped as malformed.
    pub stream_errors: u64,
}
}

/// What happened to the events that were queued when a flush began.
///
/// `complete` says whether the numbers are the whole answer: it is false when an actor on the
/// flush's way (the Collator, a sink's Submitter, the Recorder itself) could not answer — it
/// was restarted after a panic lost the flush, its thread had stopped, or its answer had not
/// come a short grace period after the deadline. The counters are then only what is known
/// (nothing, for a lost answer): an incomplete report with zeros does not mean that nothing was
/// left. The default report is such an incomplete, empty one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushReport {
    /// Acknowledged by the backend.
    pub delivered: u64,
    /// Dropped (counted by cause in [`Stats::dropped`]).
    pub dropped: u64,
    /// Neither yet when the flush gave up waiting (its timeout passed).
    pub pending: u64,
    /// Of the `pending` ones at a shutdown deadline: kept in the spool for the next run (the
    /// rest were dropped and counted in `Stats::dropped.shutdown`).
    pub spooled: u64,
    /// Whether every actor the flush went through answered: only then are the counters above
    /// the whole truth.
    pub complete: bool,
}

impl FlushReport {
    /// The answer of an actor that accounted for every event of the flush (so far none).
    pub(crate) fn answered() -> Self {
        FlushReport {
            complete: true,
            ..FlushReport::default()
        }
    }

    /// What is known when an answer was lost or late: nothing.
    pub(crate) fn lost() -> Self {
        FlushReport::default()
    }

    /// Adds another sink's answer to this one: complete only if both are.
    pub(crate) fn add(&mut self, other: &FlushReport) {
        self.delivered += other.delivered;
        self.dropped += other.dropped;
        self.pending += other.pending;
        self.spooled += other.spooled;
        self.complete &= other.complete;
    }
}

/// What a shutdown achieved.
///
/// `complete` is true only when every actor answered, the final flush
/// ([`FlushReport::complete`]) and the counters alike. When it is false the report holds what
/// could still be learnt: the counters of the actors that answered (all zeros when the
/// runtime was already gone), and `flush` as far as it is known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// The final flush of everything still queued. Of the events `pending` at the deadline,
    /// `spooled` stay in the spool for the next run; the rest were dropped and are counted in
    /// `stats.dropped.shutdown`.
    pub flush: FlushReport,
    /// Whether the deadline passed before every event was delivered or dropped.
    pub timed_out: bool,
    /// The counters at the end.
    pub stats: Stats,
    /// Whether every actor answered, so that `flush` and `stats` are the whole truth.
    pub complete: bool,
}

impl ShutdownReport {
    /// A report built from the final flush and the counters gathered after it.
    pub(crate) fn new(flush: FlushReport, stats: Stats, all_counted: bool) -> Self {
        ShutdownReport {
            flush,
            timed_out: flush.pending > 0,
            stats,
            complete: flush.complete && all_counted,
        }
    }
}

impl Stats {
    /// Adds `other`'s counters to these (each actor reports its own share).
    pub(crate) fn merge(&mut self, other: &Stats) {
        self.merge_fields(other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_and_total_from_their_one_list() {
        let one = DropCounts {
            opt_out: 1,
            panic: 2,
            spool_full: 3,
            ..DropCounts::default()
        };
        let mut sum = one;
        sum.add(&one);
        assert_eq!(sum.total(), 12);
        assert_eq!((sum.opt_out, sum.panic, sum.spool_full), (2, 4, 6));
        let mut stats = Stats {
            accepted: 5,
            dropped: one,
            invalid_values: 1,
            ..Stats::default()
        };
        stats.merge(&stats.clone());
        assert_eq!(stats.accepted, 10);
        assert_eq!(stats.invalid_values, 2);
        assert_eq!(stats.dropped.total(), 12);
    }
}
