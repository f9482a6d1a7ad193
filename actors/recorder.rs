//! The **Recorder** actor: the application's handle on the runtime.
//!
//! - Owns: the acceptance counters, the UUIDv7 context (ids stay ordered within a millisecond),
//!   the local copy of the flags (so reads never leave the actor), the flag subscriptions, and
//!   the number of check-ins seen in this run.
//! - Takes: every public message — `Record`, `SetFact`, `Identify`, `SetPersonProperties`,
//!   `Alias`, `AddGroup`, `Reset`, `Flush`, `Shutdown`, `GetVariant`, `GetPayload`,
//!   `GetFeature`, `IsEnabled`, `GetFeatures`, `WaitForCheckin`, `RefreshConfiguration`,
//!   `SubscribeFeatures`, `GetStats` — `CheckinCompleted` from the ConfigurationProxy, and
//!   `ReportCounters` (its own share, asked by its shutdown once the final flush has answered).
//! - Sends: `Enrich` (events and flag reads), `ChangeIdentity` and `ForwardFlush` to the
//!   Collator; `RefreshNow` to the ConfigurationProxy; `ReportCounters` to every actor.
//!
//! Recording is a validation, a timestamp and a UUIDv7; the events of one run of the admission
//! inbox then go to the Collator in one `Enrich`. It never waits on the network or another
//! actor; it leaves the inbox alone while a healthy sink is crowded (`src/pressure.rs`), for at
//! most 250 ms in a row. With telemetry disabled the Recorder is the only actor started; it
//! accepts every message and counts each event as dropped by opt-out.
//!
//! This file holds the actor, its acceptance of events, flushes and shutdown; its other
//! handlers sit beside it by topic: `recorder/inbound.rs` (events and changes of identity),
//! `recorder/flags.rs` (flag reads), `recorder/flag_set.rs` (the flag set as a whole) and
//! `recorder/counters.rs` (the counters).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

#[cfg(feature = "fault-injection")]
use crate::actor_kind::{ActorKind, ArmFault};
use crate::actors::pipeline::Pipeline;
use crate::admission::{Budget, LINGER};
use crate::control::{RecorderCounters, Tally};
use crate::event::RecordedEvent;
use crate::event_identity::MAX_DISTINCT_ID_BYTES;
use crate::features::FeatureSet;
use crate::messages::*;
use crate::pressure::{Crowding, HOLD_BACK_STEP, HoldBack};
use crate::rng::UuidV7Source;
use crate::stats::{FlushReport, ShutdownReport, Stats};
use crate::supervision::{SupervisedActor, SupervisionState, supervised};
use crate::turns::{MESSAGES_PER_TURN, Turns};

mod counters;
mod flag_set;
mod flags;
mod inbound;

/// How long the Recorder waits to look at its inbox again when an event was admitted but its
/// caller had not queued it yet.
const ADMITTED_NOT_YET_QUEUED: Duration = Duration::from_micros(50);

/// Longest accepted event name, in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = 200;

/// How long a shutdown waits for state files still being written.
const SAVE_GRACE: Duration = Duration::from_secs(2);

/// How long past a flush's deadline the Recorder still waits for its answer. The Submitter
/// answers at the deadline; an answer this much later is taken as lost (the Submitter was
/// restarted and its timer went with the old context, or the answer cannot get through), and
/// the report says it is incomplete rather than leave the caller waiting.
pub(crate) const LATE_ANSWER_GRACE: Duration = Duration::from_secs(1);

/// The application's handle on the runtime. See the module documentation.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::Record;
/// let recorder = telemetry.recorder().clone();
/// std::thread::spawn(move || recorder.do_send(Record::new("from_a_thread")));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Recorder {
    pipeline: Option<Pipeline>,
    uuids: UuidV7Source,
    features: Arc<FeatureSet>,
    /// Published to every [`FlagReader`](crate::FlagReader) too.
    features_tx: watch::Sender<Arc<FeatureSet>>,
    checkins_tx: watch::Sender<u64>,
    /// What it accepted and dropped, readable without a message (see `src/control.rs`).
    counters: Arc<RecorderCounters>,
    /// Events sent by [`EventSender`](crate::EventSender)s and not taken in yet.
    budget: Arc<Budget>,
    shutting_down: bool,
    supervision: SupervisionState,
    turns: Turns,
    /// Events accepted and not yet sent on: they go to the Collator together, one `Enrich` per
    /// run of the inbox instead of one per event, and always before anything else is sent to
    /// it and before a handler returns (see [`forward_events`](Self::forward_events)).
    outgoing: Vec<Collatable>,
    /// Each sink's crowding, and how long the inbox has been left alone for them (see
    /// `src/pressure.rs`).
    crowding: Vec<Crowding>,
    hold_back: HoldBack,
    /// When the run of the inbox under way began: the events it takes in share it as the time
    /// they were received, one clock read per run instead of one per event (a run is at most
    /// the inbox's bounded content, taken in within milliseconds).
    run_started: Option<Instant>,
}

impl Recorder {
    /// `features` are the flags to serve until the first check-in of this run (the last good
    /// ones from disk, or none); they do not count as a check-in for `WaitForCheckin`.
    pub(crate) fn new(
        pipeline: Option<Pipeline>,
        features_tx: watch::Sender<Arc<FeatureSet>>,
        counters: Arc<RecorderCounters>,
        budget: Arc<Budget>,
        supervision: SupervisionState,
    ) -> Self {
        let features = features_tx.borrow().clone();
        let crowding = pipeline
            .iter()
            .flat_map(|p| p.sinks.iter().map(|s| s.crowding.clone()))
            .collect();
        Recorder {
            pipeline,
            uuids: UuidV7Source::new(),
            features_tx,
            features,
            checkins_tx: watch::Sender::new(0),
            counters,
            budget,
            shutting_down: false,
            supervision,
            turns: Turns::default(),
            outgoing: Vec::new(),
            crowding,
            hold_back: HoldBack::default(),
            run_started: None,
        }
    }

    /// Sends the events accepted so far on to the Collator, in one message. Called before
    /// anything else is sent to the Collator (so it sees events and changes in the order they
    /// were accepted) and at the end of every handler that accepts events (so none waits for a
    /// later message).
    fn forward_events(&mut self) {
        if self.outgoing.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.outgoing);
        if let Some(pipeline) = &self.pipeline {
            pipeline.collator.do_send(Enrich(events));
        }
    }

    /// Whether this message may produce an event; counts it accepted, or counts the drop.
    fn accepting(&mut self) -> bool {
        if self.shutting_down {
            RecorderCounters::bump(&self.counters.shutdown);
            return false;
        }
        if self.pipeline.is_none() {
            RecorderCounters::bump(&self.counters.opt_out);
            return false;
        }
        RecorderCounters::bump(&self.counters.accepted);
        true
    }

    fn stamp(&mut self, timestamp: SystemTime) -> Stamp {
        Stamp {
            uuid: self.uuids.next(timestamp),
            timestamp,
            received_at: self.run_started.unwrap_or_else(Instant::now),
        }
    }

    /// A change that produces an event (`$identify`, `$set`, `$create_alias`): counted like one.
    fn change_with_event(&mut self, change: IdentityChange) {
        if self.accepting() {
            self.change(change, true);
        }
    }

    /// Sends a change to the Collator, and asks for a check-in that reflects it if `refresh`.
    fn change(&mut self, change: IdentityChange, refresh: bool) {
        self.forward_events();
        let stamp = self.stamp(SystemTime::now());
        let Some(pipeline) = &self.pipeline else {
            return;
        };
        pipeline.collator.do_send(ChangeIdentity { change, stamp });
        if refresh {
            pipeline.configuration.do_send(RefreshNow);
        }
    }

    fn flush(
        &mut self,
        deadline: Option<Instant>,
        drop_at_timeout: bool,
    ) -> oneshot::Receiver<FlushReport> {
        self.forward_events();
        let (reply, answer) = oneshot::channel();
        match &self.pipeline {
            Some(p) => p.collator.do_send(ForwardFlush(FlushRequest {
                deadline,
                drop_at_timeout,
                reply,
            })),
            None => {
                // No actor to wait for: nothing is queued when telemetry is off.
                let _ = reply.send(FlushReport::answered());
            }
        }
        answer
    }
}

/// Waits for the answer to a flush sent with `deadline`. An answer that was lost (its sender
/// dropped by an actor that restarted or stopped) or that is more than [`LATE_ANSWER_GRACE`]
/// late is an incomplete report, never a zeroed success. `None`: the flush was never sent.
async fn flush_answer(
    answer: Option<oneshot::Receiver<FlushReport>>,
    deadline: Option<Instant>,
) -> FlushReport {
    let Some(answer) = answer else {
        return FlushReport::lost();
    };
    let answered = match deadline {
        Some(deadline) => {
            tokio::time::timeout_at(crate::validate::later(deadline, LATE_ANSWER_GRACE), answer)
                .await
        }
        None => Ok(answer.await),
    };
    match answered {
        Ok(Ok(report)) => report,
        Ok(Err(_)) => {
            tracing::warn!("a flush's answer was lost: an actor on its way restarted or stopped");
            FlushReport::lost()
        }
        Err(_) => {
            tracing::warn!(grace = ?LATE_ANSWER_GRACE, "no answer to a flush by its deadline");
            FlushReport::lost()
        }
    }
}

impl Recorder {
    fn record(&mut self, msg: Record) {
        if msg.name.is_empty() || msg.name.len() > MAX_EVENT_NAME_BYTES {
            tracing::warn!(
                name_bytes = msg.name.len(),
                "dropping an event with an empty or over-long name"
            );
            RecorderCounters::bump(&self.counters.invalid);
            return;
        }
        let mut msg = msg;
        if let Some(identity) = &mut msg.identity {
            // An identity put in the public field directly: its id joins the properties' one.
            if let Some(id) = identity.distinct_id.take() {
                msg.properties.set_owner(&id);
            }
            self.counters.refused_values(identity.refused);
        }
        if msg
            .properties
            .owner()
            .is_some_and(|id| id.is_empty() || id.len() > MAX_DISTINCT_ID_BYTES)
        {
            tracing::warn!(
                name = %msg.name,
                "dropping an event whose own distinct id is empty or longer than 200 bytes"
            );
            RecorderCounters::bump(&self.counters.invalid);
            return;
        }
        self.counters.refused_values(msg.properties.refused());
        if !self.accepting() {
            return;
        }
        let stamp = self.stamp(msg.timestamp);
        let mut event = RecordedEvent::new(
            msg.name,
            msg.properties,
            msg.timestamp,
            stamp.uuid,
            stamp.received_at,
        );
        event.identity = msg.identity;
        self.collate(Collatable::Event(event));
    }

    /// Adds `item` to the run on its way to the Collator.
    fn collate(&mut self, item: Collatable) {
        self.outgoing.push(item);
        if self.outgoing.len() >= MESSAGES_PER_TURN {
            self.forward_events();
        }
    }
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl SupervisedActor for Recorder {
    fn supervision(&mut self) -> &mut SupervisionState {
        &mut self.supervision
    }
}

impl Supervised for Recorder {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.supervision.restarted();
        // A run cut short by a panic must not lend its start to later events.
        self.run_started = None;
        // The timers of the drain (a linger, a hold-back, a look for a late push) went with
        // the old context: whatever is outstanding would otherwise wait for ever, as no caller
        // wakes a Recorder that still has the duty to drain.
        if self.budget.has_outstanding() {
            ctx.address().do_send(DrainAdmitted);
        }
    }
}

impl Handler<DrainAdmitted> for Recorder {
    type Result = ();

    fn handle(&mut self, _msg: DrainAdmitted, ctx: &mut Context<Self>) {
        if self.hold_back.now(&self.crowding) {
            // A sink is catching up: the events wait in the inbox, and their callers at the
            // door, rather than fill its queue.
            ctx.notify_later(DrainAdmitted, HOLD_BACK_STEP);
            return;
        }
        let budget = self.budget.clone();
        let taken = self.take_run(MESSAGES_PER_TURN, ctx);
        self.forward_events();
        // Out of the inbox: room for the next ones, whatever becomes of these events; and the
        // end of a linger, if this is the look after it.
        if budget.release_ending_linger(taken) {
            if taken == 0 {
                // Admitted by a caller who has not pushed yet (it was preempted in between):
                // look again shortly instead of spinning on the runtime's thread.
                ctx.notify_later(DrainAdmitted, ADMITTED_NOT_YET_QUEUED);
            } else {
                // Behind the messages already waiting, so flushes and reads get their turn.
                ctx.address().do_send(DrainAdmitted);
            }
        } else if taken > 0 && budget.linger() {
            // Events came in since the last look: more are likely soon. A look that finds
            // nothing ends the linger, so an idle runtime does not wake.
            ctx.notify_later(DrainAdmitted, LINGER);
        }
    }
}

impl Handler<Flush> for Recorder {
    type Result = ResponseFuture<FlushReport>;

    fn handle(&mut self, msg: Flush, ctx: &mut Context<Self>) -> Self::Result {
        self.catch_up(ctx);
        let answer = supervised(self, ctx, |act, _| act.flush(msg.deadline, false));
        Box::pin(flush_answer(answer, msg.deadline))
    }
}

impl Handler<Shutdown> for Recorder {
    type Result = ResponseFuture<ShutdownReport>;

    fn handle(&mut self, msg: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        self.catch_up(ctx);
        let answer = supervised(self, ctx, |act, _| {
            act.shutting_down = true;
            act.flush(Some(msg.deadline), true)
        });
        let (recorder, pipeline) = (ctx.address(), self.pipeline.clone());
        // A future of its own rather than of this actor's context: a restart of the Recorder
        // drops its context's futures, and the answer with them.
        Box::pin(async move {
            let flush = flush_answer(answer, Some(msg.deadline)).await;
            // Read after the flush, so that events refused meanwhile are counted.
            let mut tally = Tally::new(Stats::default());
            tally.take(recorder.send(ReportCounters).await);
            let saver = pipeline.as_ref().and_then(|p| p.saver.clone());
            tally
                .others(pipeline.as_ref().map(Pipeline::counter_sources).as_ref())
                .await;
            // The identity and flags of this run reach the disk before the runtime goes (their
            // writes are quick; the bound only guards against a hung disk).
            if let Some(saver) = saver {
                let _ = tokio::time::timeout(SAVE_GRACE, saver.settled()).await;
            }
            // A request only: the system stops after this answer has gone out.
            if let Some(system) = System::try_current() {
                system.stop();
            }
            ShutdownReport::new(flush, tally.stats, tally.complete)
        })
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<InjectFault> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: InjectFault, _ctx: &mut Context<Self>) {
        // Armed after the events accepted before it, as the faults' tests expect.
        self.forward_events();
        let arm = ArmFault(msg.fault);
        match (msg.actor, &self.pipeline) {
            (ActorKind::Recorder, _) => self.supervision.armed = Some(msg.fault),
            (_, None) => tracing::warn!(actor = %msg.actor, "telemetry is disabled; no such actor"),
            (ActorKind::Collator, Some(p)) => p.collator.do_send(arm),
            (ActorKind::SystemSnapshotter, Some(p)) => p.snapshotter.do_send(arm),
            (ActorKind::Submitter, Some(p)) => {
                p.sinks.iter().for_each(|s| s.submitter.do_send(arm))
            }
            (ActorKind::Transport, Some(p)) => {
                p.sinks.iter().for_each(|s| s.transport.do_send(arm))
            }
            (ActorKind::ConfigurationProxy, Some(p)) => p.configuration.do_send(arm),
        }
    }
}
