//! Admission at the caller: the memory the runtime holds stays bounded whatever the caller's
//! rate and number of threads.
//!
//! `recorder.do_send(Record)` ignores mailbox capacity (actix's `do_send` always queues), so a
//! caller recording faster than the runtime's thread takes events grows the Recorder's mailbox
//! without limit. [`EventSender`] counts the events it has sent that the Recorder has not taken
//! in yet, in an atomic the Recorder decrements as it handles them. Within the budget a record
//! costs that counter and a `do_send`. Beyond it, the [`AdmissionPolicy`] applies on the
//! caller's thread: wait (bounded) for the runtime to catch up, or drop and count at once.
//! Bounding the Recorder's mailbox is enough: the actors after it take turns on one thread,
//! each handling the same number of messages per turn, so their mailboxes stay a few hundred
//! messages deep, and the Submitter's queue has limits of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::Addr;

use crate::actors::recorder::Recorder;
use crate::control::RecorderCounters;
use crate::messages::{AdmittedRecord, Record};

/// What [`EventSender::record`] does when the budget of events not yet taken in is used up.
///
/// ```
/// use actix_telemetry::{AdmissionPolicy, Builder};
/// // A latency-critical service: never wait, count what is dropped.
/// let builder = Builder::new().admission(AdmissionPolicy::Drop);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionPolicy {
    /// Wait on the calling thread, at most this long, for the runtime to take events in (back
    /// pressure: a hot loop is slowed to the runtime's pace); drop and count the event if it
    /// has not by then.
    Wait(Duration),
    /// Drop the event at once and count it (`dropped.overflow`): recording never waits.
    Drop,
}

impl Default for AdmissionPolicy {
    fn default() -> Self {
        AdmissionPolicy::Wait(Duration::from_secs(1))
    }
}

/// The budget shared by every clone of an [`EventSender`] and the Recorder.
#[derive(Debug)]
pub(crate) struct Budget {
    pending: AtomicUsize,
    max: usize,
    policy: AdmissionPolicy,
}

impl Budget {
    pub fn new(max: usize, policy: AdmissionPolicy) -> Self {
        Budget {
            pending: AtomicUsize::new(0),
            max: max.max(1),
            policy,
        }
    }

    /// Takes one unit if there is room.
    fn try_take(&self) -> bool {
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// The Recorder took one admitted event in.
    pub fn release(&self) {
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Waits for room until `deadline`: spins briefly (room usually comes within
    /// microseconds), then sleeps in short steps.
    fn take_by(&self, deadline: Instant) -> bool {
        let mut spins = 0u32;
        loop {
            if self.try_take() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            if spins < 64 {
                spins += 1;
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}

/// Records events with bounded memory; clone it freely (clones share one budget). Get one from
/// [`Telemetry::events`](crate::Telemetry::events).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use actix_telemetry::{Builder, Record};
/// let telemetry = Builder::new().endpoint("file:///dev/stdout").build()?;
/// let events = telemetry.events();
/// events.record(Record::new("export_finished").property("rows", 1200));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct EventSender {
    recorder: Addr<Recorder>,
    budget: Arc<Budget>,
    counters: Arc<RecorderCounters>,
}

impl EventSender {
    pub(crate) fn new(
        recorder: Addr<Recorder>,
        budget: Arc<Budget>,
        counters: Arc<RecorderCounters>,
    ) -> Self {
        EventSender {
            recorder,
            budget,
            counters,
        }
    }

    /// Records `event`; false if it was dropped because the runtime is behind and the
    /// [`AdmissionPolicy`] says so (counted in `Stats::dropped.overflow`).
    pub fn record(&self, event: Record) -> bool {
        self.record_with(event, self.budget.policy)
    }

    /// Records `event` as [`record`](Self::record) does, under `policy` instead of the
    /// sender's (on the runtime's own thread waiting would only wait for itself).
    pub(crate) fn record_with(&self, event: Record, policy: AdmissionPolicy) -> bool {
        let admitted = self.budget.try_take()
            || match policy {
                AdmissionPolicy::Drop => false,
                AdmissionPolicy::Wait(limit) => {
                    let now = Instant::now();
                    // `build` bounds the wait; the fallback only keeps a clock from
                    // overflowing.
                    self.budget.take_by(now.checked_add(limit).unwrap_or(now))
                }
            };
        if admitted {
            self.recorder.do_send(AdmittedRecord(event));
        } else {
            // Taken in and dropped, so the counters balance.
            RecorderCounters::bump(&self.counters.accepted);
            if RecorderCounters::bump_first(&self.counters.overflow) {
                tracing::warn!(
                    target: "actix_telemetry::admission",
                    "the runtime is behind: recording drops events (counted in dropped.overflow)"
                );
            }
        }
        admitted
    }

    /// Events sent and not taken in by the runtime yet.
    pub fn pending(&self) -> usize {
        self.budget.pending.load(Ordering::Acquire)
    }
}
