//! The **Submitter** actor: the queue between enrichment and the wire.
//!
//! - Owns: every event between the Collator and the backend's acknowledgement — the queue, the
//!   batches waiting for a retry and the batches in flight — plus the retry delay and the
//!   flushes waiting for their events.
//! - Takes: `Enqueue` and `ForwardFlush` from the Collator, `ReportCounters`, and
//!   `BatchOutcome` (the Transport's answer to a batch, sent on by the task that awaited it).
//! - Sends: `DeliverBatch` to the Transport, and keeps each batch until its outcome arrives.
//!
//! Batches are cut by event count and body bytes, and by the flush interval for a partial one.
//! Memory is bounded by the number of events held and the bytes they hold; past either limit
//! the overflow policy drops (and counts) the oldest or the newest. Transient failures are
//! retried after an exponentially growing, jittered delay, never sooner than a `Retry-After`;
//! a batch answered 400 or 413 is split in halves until the poison event stands alone, and that
//! one is dropped and counted while the rest is delivered.

use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use crate::delivery::{Outgoing, SinkCore};
use crate::messages::{
    BatchOutcome, DeliverBatch, Enqueue, FlushRequest, ForwardFlush, ReportCounters,
};
use crate::pressure::Crowding;
use crate::queue_config::SubmitterConfig;
use crate::spool::Spool;
use crate::supervision::{ActorKind, SupervisedActor, SupervisionState, caught, supervised};
use crate::transport::DeliveryOutcome;
use crate::turns::Turns;

/// Drives one sink's `SinkCore`: timers, the Transport, and the spool's device syncs.
#[derive(Debug)]
pub struct Submitter {
    core: SinkCore,
    /// A spool was configured and could not be used: reported in `Stats::spools_unavailable`.
    spool_unavailable: bool,
    transport: Recipient<DeliverBatch>,
    /// The pause timer is set for this instant (so it is set once per pause).
    wake_at: Option<Instant>,
    spool_write_scheduled: bool,
    supervision: SupervisionState,
    turns: Turns,
    /// Tells the Recorder when to hold the intake back (see `src/pressure.rs`).
    crowding: Crowding,
}

/// How long records wait in memory for others to share their block, unless a whole block is
/// buffered sooner: at a trickle of one event per turn, a block per event cost a compression
/// and a `write` each and compressed 1.2 times instead of nine. This is most of what a
/// `kill -9` can lose.
pub(crate) const SPOOL_COALESCE: Duration = Duration::from_millis(5);
/// How often acknowledgements reach the spool when no new event forces a write.
const SPOOL_ACK_INTERVAL: Duration = Duration::from_millis(100);
/// How often the spool is synced to the device.
const SPOOL_SYNC_INTERVAL: Duration = Duration::from_secs(1);

impl Submitter {
    pub(crate) fn new(
        config: SubmitterConfig,
        transport: Recipient<DeliverBatch>,
        spool: Option<Spool>,
        spool_unavailable: bool,
        crowding: Crowding,
    ) -> Self {
        Submitter {
            core: SinkCore::new(config, spool),
            spool_unavailable,
            transport,
            wake_at: None,
            spool_write_scheduled: false,
            supervision: SupervisionState::new(ActorKind::Submitter),
            turns: Turns::default(),
            crowding,
        }
    }

    /// Sends every batch the core lets go now, and sets a timer for when a paused sink may
    /// send again.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        while let Some(outgoing) = self.core.next_batch(now) {
            self.send(outgoing, ctx);
        }
        if let Some(at) = self.core.resume_at()
            && self.wake_at != Some(at)
        {
            self.wake_at = Some(at);
            ctx.run_later(at.saturating_duration_since(now), move |act, ctx| {
                if act.wake_at == Some(at) {
                    act.wake_at = None;
                }
                supervised(act, ctx, Self::pump);
            });
        }
        self.schedule_spool_write(ctx);
        self.crowding.set(self.core.crowded(self.crowding.get()));
    }

    fn send(&mut self, Outgoing { id, events }: Outgoing, ctx: &mut Context<Self>) {
        let request = self.transport.send(DeliverBatch { events });
        // The outcome comes back as a message, not as a future of this actor's context: actix
        // runs an actor's futures only once its mailbox is empty, so during a flood of
        // `Enqueue` the outcomes would wait behind it and nothing would leave the queue. As
        // messages they are handled in turn with the events.
        let submitter = ctx.address();
        let panics = self.supervision.tasks.clone();
        actix::spawn(async move {
            // Whatever happens, an outcome comes back: a batch without one would stay in
            // flight, and the flushes behind it would wait for ever.
            let outcome = match caught(request).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(error)) => DeliveryOutcome::Retry {
                    after: None,
                    reason: format!("transport unavailable: {error}"),
                },
                Err(panic) => {
                    panics.record("awaiting a delivery", &panic);
                    DeliveryOutcome::Retry {
                        after: None,
                        reason: format!("awaiting the delivery panicked: {panic}"),
                    }
                }
            };
            submitter.do_send(BatchOutcome { id, outcome });
        });
    }

    /// Hands spooled records to the operating system at the end of this turn of the mailbox,
    /// so every event of a burst goes out in one write.
    fn schedule_spool_write(&mut self, ctx: &mut Context<Self>) {
        if self.spool_write_scheduled || !self.core.spool_dirty() {
            return;
        }
        self.spool_write_scheduled = true;
        ctx.run_later(SPOOL_COALESCE, |act, ctx| {
            act.spool_write_scheduled = false;
            supervised(act, ctx, |act, _| act.core.write_spool());
        });
    }

    fn sync_spool(&mut self) {
        self.core.write_spool();
        self.core.sync_spool();
    }

    /// Answers flush `id` at `deadline`. The deadline was set by the application: the time
    /// the request spent in mailboxes on its way here already counts against it.
    fn expire_at(&mut self, id: u64, deadline: Instant, ctx: &mut Context<Self>) {
        let wait = deadline.saturating_duration_since(Instant::now());
        ctx.run_later(wait, move |act, ctx| {
            supervised(act, ctx, |act, _| act.core.expire_flush(id));
        });
    }

    fn start_flush(&mut self, request: FlushRequest, ctx: &mut Context<Self>) {
        let id = self
            .core
            .start_flush(request.deadline, request.drop_at_timeout, request.reply);
        match request.deadline {
            // Already due (a zero timeout): answered before anything more goes on the wire,
            // so a shutdown that gives no time drops what is held rather than sending it
            // while reporting it dropped.
            Some(deadline) if deadline <= Instant::now() => self.core.expire_flush(id),
            Some(deadline) => self.expire_at(id, deadline, ctx),
            None => {}
        }
        self.pump(ctx);
    }
}

impl Actor for Submitter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        supervised(self, ctx, Self::start);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.core.write_spool_now();
    }
}

impl Submitter {
    fn start(&mut self, ctx: &mut Context<Self>) {
        // What an earlier run spooled starts coming back (here, not in `new`: reading files
        // runs supervised).
        self.core.read_back();
        // Timers of a stopped context are gone: flushes still waiting get theirs again.
        for (id, deadline) in self.core.flush_deadlines() {
            self.expire_at(id, deadline, ctx);
        }
        // Timers do not survive a restart, so they are set here rather than in `new`.
        ctx.run_interval(self.core.flush_interval(), |act, ctx| {
            act.core.release_partial();
            supervised(act, ctx, Self::pump);
        });
        if self.core.has_spool() {
            ctx.run_interval(SPOOL_ACK_INTERVAL, |act, ctx| {
                supervised(act, ctx, |act, _| {
                    if act.core.spool_dirty() {
                        act.core.write_spool();
                    }
                });
            });
            ctx.run_interval(SPOOL_SYNC_INTERVAL, |act, ctx| {
                supervised(act, ctx, |act, _| act.sync_spool());
            });
        }
        self.pump(ctx);
    }
}

impl SupervisedActor for Submitter {
    fn supervision(&mut self) -> &mut SupervisionState {
        &mut self.supervision
    }
}

impl Supervised for Submitter {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.supervision.restarted();
        // Timers were futures of the stopped context: they are gone, and the pause they would
        // have ended is set again by the next pump.
        self.core.restarted();
        self.wake_at = None;
        self.spool_write_scheduled = false;
    }
}

impl Handler<BatchOutcome> for Submitter {
    type Result = ();

    fn handle(&mut self, msg: BatchOutcome, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, ctx| {
            act.core.on_outcome(msg.id, msg.outcome, Instant::now());
            act.pump(ctx);
        });
    }
}

impl Handler<Enqueue> for Submitter {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        let events = msg.0.len();
        // One at a time, as if each had come alone: a panic (or an armed fault) takes only the
        // event it struck.
        for event in msg.0 {
            let before = self.core.enqueued();
            if supervised(self, ctx, |act, _| act.core.enqueue(event)).is_none() {
                self.core.lost_to_panic(before);
            }
        }
        supervised(self, ctx, Self::pump);
        if self.turns.tick(ctx, events) && self.core.spool_holds_a_full_block() {
            // The write scheduled for the end of the turn runs only once the mailbox is empty
            // (actix runs an actor's futures then), which a flood never lets happen: without
            // this, what the spool buffered would grow with the flood, in memory. Waiting for
            // a whole block keeps blocks large, so a flood compresses as well as a backlog.
            supervised(self, ctx, |act, _| act.core.write_spool());
        }
    }
}

impl Handler<ForwardFlush> for Submitter {
    type Result = ();

    fn handle(&mut self, msg: ForwardFlush, ctx: &mut Context<Self>) {
        supervised(self, ctx, |act, ctx| act.start_flush(msg.0, ctx));
    }
}

impl Handler<ReportCounters> for Submitter {
    type Result = MessageResult<ReportCounters>;

    fn handle(&mut self, _msg: ReportCounters, _ctx: &mut Context<Self>) -> Self::Result {
        let mut stats = self.core.stats();
        stats.spools_unavailable = u64::from(self.spool_unavailable);
        stats.merge(&self.supervision.stats());
        MessageResult(stats)
    }
}

crate::supervision::arm_fault_handler!(Submitter);
