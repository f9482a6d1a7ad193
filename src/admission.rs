//! Admission at the caller: the memory the runtime holds stays bounded whatever the caller's
//! rate and number of threads.
//!
//! `recorder.do_send(Record)` ignores mailbox capacity (actix's `do_send` always queues), so a
//! caller recording faster than the runtime's thread takes events grows the Recorder's mailbox
//! without limit. [`EventSender`] counts the events it has handed over that the Recorder has not
//! taken in yet, in an atomic the Recorder decrements as it takes them. Within the budget a
//! record costs that counter and a push onto a queue (the inbox: a vector behind a lock held
//! only for the push, which the Recorder swaps for an empty one to take a whole run at once): no
//! actix envelope, no wake-up of the runtime's thread per event. Beyond it, the [`AdmissionPolicy`] applies on
//! the caller's thread: wait (bounded) for the runtime to catch up, or drop and count at once.
//!
//! Who wakes the Recorder: the caller whose event takes the count from zero sends it one
//! `DrainAdmitted` message; from then on the Recorder keeps the duty, sending itself another
//! after each run of events for as long as the count is not back to zero. So while events are
//! outstanding exactly one `DrainAdmitted` is in flight, and a burst costs one message per run
//! of events instead of one per event. When a run empties the inbox the Recorder may keep the
//! duty a few milliseconds longer ([`Budget::linger`]), marking the count so that callers wake
//! no one (the mark is a flag, not a unit: it takes no room from the events), so a steady
//! trickle wakes it once per [`LINGER`] rather than once per event.
//!
//! Bounding the Recorder's inbox is enough: the actors after it take turns on one thread, each
//! handling the same number of events per turn, so their mailboxes stay a few hundred events
//! deep, and the Submitter's queue has limits of its own (and holds the inbox back while it is
//! crowded, `src/pressure.rs`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::Recipient;

use crate::control::RecorderCounters;
use crate::messages::{
    AddGroup, Alias, DrainAdmitted, FlagEvaluated, GroupIdentify, Identify, Record, Reset, SetFact,
    SetPersonProperties,
};

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

/// The budget shared by every clone of an [`EventSender`] and the Recorder, and the inbox the
/// admitted events wait in.
#[derive(Debug)]
pub(crate) struct Budget {
    /// Events admitted and not taken in by the Recorder yet (may briefly read one more per
    /// caller refused at the limit, see [`Budget::try_take`]), with [`LINGERING`] set while
    /// the Recorder lingers: one atomic, so a caller sees both at once.
    pending: AtomicUsize,
    max: usize,
    policy: AdmissionPolicy,
    /// Where callers put admitted items, in order.
    inbox: Mutex<Vec<Inbound>>,
    /// What the Recorder took from the inbox and has not handled yet, and the emptied buffer
    /// it swaps for the inbox's next time (so neither side allocates once warmed up). Only
    /// the Recorder locks it.
    outbox: Mutex<Outbox>,
}

/// How long the Recorder keeps the duty to drain after the inbox emptied ([`Budget::linger`]):
/// the most an event recorded at a trickle waits in the inbox. Under `scripts/wrk_bench.sh`
/// (about 80,000 events/s, one per request) 4 ms cost the service about half a microsecond less
/// CPU per request than 1 ms did, and 10 ms no less than 4 (docs/performance.md).
pub(crate) const LINGER: Duration = Duration::from_millis(4);

/// The bit of [`Budget`]'s count that says the Recorder lingers: the top one, far above any
/// count of events.
const LINGERING: usize = 1 << (usize::BITS - 1);

/// The Recorder's side of the inbox.
#[derive(Debug, Default)]
struct Outbox {
    taken: VecDeque<Inbound>,
    spare: Vec<Inbound>,
}

/// A lock whose holder panicked still guards intact data here: the inbox and outbox are only
/// pushed to and popped from, never left half-changed.
fn unpoisoned<T>(lock: std::sync::LockResult<MutexGuard<'_, T>>) -> MutexGuard<'_, T> {
    lock.unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What waits in the inbox: an event, or a change that events are ordered with.
#[derive(Debug)]
pub(crate) enum Inbound {
    Record(Record),
    GroupIdentify(Box<GroupIdentify>),
    SetFact(Box<SetFact>),
    Identify(Box<Identify>),
    SetPersonProperties(Box<SetPersonProperties>),
    Alias(Box<Alias>),
    AddGroup(Box<AddGroup>),
    Reset,
    /// A flag read by a [`FlagReader`](crate::FlagReader): not an event yet (most reads repeat
    /// an earlier one and make none), never waited for ([`EventSender::offer_flag_read`]).
    /// Inline, not boxed: no larger than a `Record`, and a box would be one more allocation
    /// on the reader's thread freed on the runtime's, for every read.
    FlagEvaluated(FlagEvaluated),
}

// What keeps the read unboxed from growing every `Inbound` the inbox holds.
const _: () = assert!(std::mem::size_of::<FlagEvaluated>() <= std::mem::size_of::<Record>());

pub(crate) mod sealed {
    /// What makes a message [`Admissible`](super::Admissible); not implementable outside.
    pub trait Sealed {
        #[allow(private_interfaces)]
        fn into_inbound(self) -> super::Inbound;
    }
}

/// A message an [`EventSender`] can send: an event ([`Record`], [`GroupIdentify`]) or a change
/// of the identity or facts that later events carry ([`Identify`], [`SetPersonProperties`],
/// [`Alias`], [`AddGroup`], [`SetFact`], [`Reset`]). Sent through the same sender, they are
/// handled in the order they were sent.
pub trait Admissible: sealed::Sealed {}

macro_rules! admissible {
    ($($message:ident => $inbound:expr),* $(,)?) => {$(
        impl Admissible for $message {}
        // `Inbound` is the crate's own: the trait is sealed, so nobody outside can call this.
        #[allow(private_interfaces)]
        impl sealed::Sealed for $message {
            fn into_inbound(self) -> Inbound {
                #[allow(clippy::redundant_closure_call)]
                ($inbound)(self)
            }
        }
    )*};
}

admissible! {
    Record => Inbound::Record,
    GroupIdentify => |m| Inbound::GroupIdentify(Box::new(m)),
    SetFact => |m| Inbound::SetFact(Box::new(m)),
    Identify => |m| Inbound::Identify(Box::new(m)),
    SetPersonProperties => |m| Inbound::SetPersonProperties(Box::new(m)),
    Alias => |m| Inbound::Alias(Box::new(m)),
    AddGroup => |m| Inbound::AddGroup(Box::new(m)),
    Reset => |_| Inbound::Reset,
}

impl Inbound {
    /// Whether the Recorder counts it as an event (accepted, then delivered or dropped).
    fn is_event(&self) -> bool {
        matches!(
            self,
            Inbound::Record(_)
                | Inbound::GroupIdentify(_)
                | Inbound::Identify(_)
                | Inbound::SetPersonProperties(_)
                | Inbound::Alias(_)
        )
    }
}

/// What a caller's admission decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admitted {
    /// In the budget; the Recorder already has a `DrainAdmitted` on its way.
    Queued,
    /// In the budget, and the first outstanding event: the caller wakes the Recorder.
    First,
}

impl Budget {
    pub fn new(max: usize, policy: AdmissionPolicy) -> Self {
        Budget {
            pending: AtomicUsize::new(0),
            // At least 1: `Config::resolve` refuses `max_pending_events(0)`. Far below the
            // lingering flag, so no count of events reaches it.
            max: max.min(LINGERING >> 1),
            policy,
            inbox: Mutex::new(Vec::new()),
            outbox: Mutex::new(Outbox::default()),
        }
    }

    /// After a run that emptied the inbox, the Recorder keeps the duty to drain a little longer
    /// by marking the count: callers who come meanwhile find the mark and wake no one, and the
    /// Recorder looks again after [`LINGER`]. At a steady trickle (a request handler recording
    /// one event each) this turns one wake-up of the runtime's thread and one pass through the
    /// actors per event into one per [`LINGER`]. False if a caller was first in the meantime:
    /// its `DrainAdmitted` is on its way.
    pub fn linger(&self) -> bool {
        self.pending
            .compare_exchange(0, LINGERING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Takes one unit if there is room. An increment and, when refused, its undo: cheaper under
    /// contention than a compare-and-swap loop, and an over-count of a refused caller only
    /// lasts until its undo (it can delay a drain's end, never skip a wake-up). The caller
    /// that takes the count from zero wakes the Recorder, unless it lingers.
    fn try_take(&self) -> Option<Admitted> {
        let before = self.pending.fetch_add(1, Ordering::AcqRel);
        if before & !LINGERING < self.max {
            Some(if before == 0 {
                Admitted::First
            } else {
                Admitted::Queued
            })
        } else {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }

    /// Waits for room until `deadline`: spins briefly (room usually comes within
    /// microseconds), then sleeps in short steps.
    fn take_by(&self, deadline: Instant) -> Option<Admitted> {
        let mut spins = 0u32;
        loop {
            if let Some(admitted) = self.try_take() {
                return Some(admitted);
            }
            if Instant::now() >= deadline {
                return None;
            }
            if spins < 64 {
                spins += 1;
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// The Recorder takes up to `limit` admitted events, in the order they were admitted on
    /// each thread, handing each to `take`; returns how many it took. The units are returned
    /// to the budget by [`Budget::release`].
    pub fn take_admitted(&self, limit: usize, mut take: impl FnMut(Inbound)) -> usize {
        let mut outbox = unpoisoned(self.outbox.lock());
        let mut taken = 0;
        while taken < limit {
            let item = match outbox.taken.pop_front() {
                Some(item) => item,
                None => {
                    // Everything taken so far is handled: swap the spare (empty) buffer for
                    // the inbox's, holding the callers' lock only for the swap.
                    let mut queued = std::mem::take(&mut outbox.spare);
                    std::mem::swap(&mut *unpoisoned(self.inbox.lock()), &mut queued);
                    if queued.is_empty() {
                        outbox.spare = queued;
                        break;
                    }
                    let handled = std::mem::replace(&mut outbox.taken, VecDeque::from(queued));
                    outbox.spare = Vec::from(handled);
                    continue;
                }
            };
            taken += 1;
            take(item);
        }
        taken
    }

    /// Whether any admitted item is not taken in yet (in the inbox, in the Recorder's hands, or
    /// admitted by a caller about to push it): one atomic read, so a message of the mailbox
    /// pays nothing to catch up when there is nothing to catch up with.
    pub fn has_outstanding(&self) -> bool {
        self.pending.load(Ordering::Acquire) > 0
    }

    /// The Recorder took `taken` events in (a linger goes on); true while anything is still
    /// outstanding (admitted, maybe not in the inbox yet), so the Recorder keeps the duty to
    /// drain.
    pub fn release(&self, taken: usize) -> bool {
        if taken == 0 {
            return self.has_outstanding();
        }
        self.update(|n| (n & LINGERING) | (n & !LINGERING).saturating_sub(taken)) != 0
    }

    /// [`release`](Self::release) by the look that ends a linger; true while events are still
    /// outstanding.
    pub fn release_ending_linger(&self, taken: usize) -> bool {
        self.update(|n| (n & !LINGERING).saturating_sub(taken)) != 0
    }

    /// Applies `change` to the count atomically; returns the new value.
    fn update(&self, change: impl Fn(usize) -> usize) -> usize {
        let before = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(change(n)))
            .unwrap_or(0);
        change(before)
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
    /// The Recorder, woken for the first event outstanding.
    recorder: Recipient<DrainAdmitted>,
    budget: Arc<Budget>,
    counters: Arc<RecorderCounters>,
}

impl EventSender {
    pub(crate) fn new(
        recorder: Recipient<DrainAdmitted>,
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

    /// Sends `message` through the same bounded path as [`record`](Self::record), in order
    /// with the events of this sender: an [`Identify`] sent here applies to every event
    /// recorded here after it, and to none before it. False if it was dropped under the
    /// [`AdmissionPolicy`] (an event is then counted in `Stats::dropped.overflow`; a change
    /// that is not an event is only logged).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use actix_telemetry::{Builder, Identify, Record};
    /// let telemetry = Builder::new().endpoint("file:///dev/stdout").build()?;
    /// let events = telemetry.events();
    /// events.send(Identify::new("user-42"));
    /// events.send(Record::new("logged_in"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn send(&self, message: impl Admissible) -> bool {
        self.admit(sealed::Sealed::into_inbound(message), self.budget.policy)
    }

    /// Records `event` as [`record`](Self::record) does, under `policy` instead of the
    /// sender's (on the runtime's own thread waiting would only wait for itself).
    pub(crate) fn record_with(&self, event: Record, policy: AdmissionPolicy) -> bool {
        self.admit(Inbound::Record(event), policy)
    }

    fn admit(&self, item: Inbound, policy: AdmissionPolicy) -> bool {
        let admitted = self.budget.try_take().or_else(|| match policy {
            AdmissionPolicy::Drop => None,
            AdmissionPolicy::Wait(limit) => {
                let now = Instant::now();
                // `build` bounds the wait; the fallback only keeps a clock from overflowing.
                self.budget.take_by(now.checked_add(limit).unwrap_or(now))
            }
        });
        let Some(admitted) = admitted else {
            if !item.is_event() {
                tracing::warn!(
                    target: "actix_telemetry::admission",
                    "the runtime is behind: a change of identity or facts was dropped"
                );
                return false;
            }
            // Taken in and dropped, so the counters balance.
            RecorderCounters::bump(&self.counters.accepted);
            if RecorderCounters::bump_first(&self.counters.overflow) {
                tracing::warn!(
                    target: "actix_telemetry::admission",
                    "the runtime is behind: recording drops events (counted in dropped.overflow)"
                );
            }
            return false;
        };
        self.push(item, admitted);
        true
    }

    fn push(&self, item: Inbound, admitted: Admitted) {
        unpoisoned(self.budget.inbox.lock()).push(item);
        if admitted == Admitted::First {
            self.recorder.do_send(DrainAdmitted);
        }
    }

    /// Hands a flag read over through the inbox if the budget has room at once (a read never
    /// waits); gives it back otherwise, for the Recorder's mailbox. Through the inbox it costs
    /// a push instead of an actix envelope and, at a trickle, a wake-up of the runtime's
    /// thread per read.
    pub(crate) fn offer_flag_read(&self, read: FlagEvaluated) -> Result<(), FlagEvaluated> {
        match self.budget.try_take() {
            Some(admitted) => {
                self.push(Inbound::FlagEvaluated(read), admitted);
                Ok(())
            }
            None => Err(read),
        }
    }

    /// Events sent and not taken in by the runtime yet.
    pub fn pending(&self) -> usize {
        // Without the lingering flag and the passing over-count of callers refused at the limit.
        (self.budget.pending.load(Ordering::Acquire) & !LINGERING).min(self.budget.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lingering_recorder_leaves_the_whole_budget_to_events() {
        let budget = Budget::new(1, AdmissionPolicy::Drop);
        assert!(budget.linger(), "idle: the Recorder lingers");
        assert_eq!(budget.try_take(), Some(Admitted::Queued), "no one to wake");
        assert_eq!(budget.try_take(), None, "the budget of one event is used");
        // The Recorder takes the event in and ends the linger.
        assert!(!budget.release_ending_linger(1));
        assert_eq!(budget.try_take(), Some(Admitted::First));
        assert_eq!(
            budget.try_take(),
            None,
            "no longer lingering: no extra room"
        );
    }
}
