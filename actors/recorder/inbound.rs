//! What reaches the Recorder through an [`EventSender`](crate::EventSender)'s inbox or its
//! mailbox alike: events and the changes of identity and facts that events are ordered with.
//!
//! Each message is handled the same way whichever way it came. Through the mailbox, the events
//! still in the inbox are taken in first, so that every event recorded before the message is
//! handled before it; through the inbox ([`EventSender::send`](crate::EventSender::send)), the
//! order is exactly the order of sending.

use actix::prelude::*;
use tokio::time::Instant;

use super::Recorder;
use crate::admission::Inbound;
use crate::admission::sealed::Sealed;
use crate::control::RecorderCounters;
use crate::json::{MAX_VALUE_DEPTH, dispose, nests_deeper_than, retain_admissible};
use crate::messages::*;
use crate::supervision::supervised;

impl Recorder {
    /// Handles one message of the inbox or the mailbox.
    pub(super) fn take_inbound(&mut self, item: Inbound, ctx: &mut Context<Self>) {
        match item {
            Inbound::Record(record) => self.take_record(record, ctx),
            Inbound::GroupIdentify(msg) => {
                let (record, refused) = msg.into_record();
                self.counters.refused_values(refused);
                self.take_record(record, ctx);
            }
            Inbound::SetFact(msg) => {
                let msg = *msg;
                supervised(self, ctx, |act, _| act.set_fact(msg));
            }
            Inbound::Identify(msg) => {
                let mut msg = *msg;
                supervised(self, ctx, |act, _| {
                    act.refuse_person_values(msg.refused(), &mut msg.set, &mut msg.set_once);
                    act.change_with_event(IdentityChange::Identify(msg))
                });
            }
            Inbound::SetPersonProperties(msg) => {
                let mut msg = *msg;
                supervised(self, ctx, |act, _| {
                    act.refuse_person_values(msg.refused(), &mut msg.set, &mut msg.set_once);
                    act.change_with_event(IdentityChange::SetPersonProperties(msg))
                });
            }
            Inbound::Alias(msg) => {
                let msg = *msg;
                supervised(self, ctx, |act, _| {
                    act.change_with_event(IdentityChange::Alias(msg))
                });
            }
            // Not an event: counted neither as accepted nor as dropped.
            Inbound::AddGroup(msg) => {
                let msg = *msg;
                supervised(self, ctx, |act, _| {
                    act.change(IdentityChange::AddGroup(msg), true)
                });
            }
            Inbound::Reset => {
                supervised(self, ctx, |act, _| act.change(IdentityChange::Reset, true));
            }
            Inbound::FlagEvaluated(msg) => {
                supervised(self, ctx, |act, _| {
                    act.flag_read(msg.flag, msg.response, msg.default_used, msg.distinct_id)
                });
            }
        }
    }

    /// Counts the person properties refused on the way in and those `$set` and `$set_once`
    /// hold that may not enter (public fields, changed after the builder checked them), and
    /// removes the latter.
    fn refuse_person_values(
        &mut self,
        refused: u32,
        set: &mut serde_json::Map<String, serde_json::Value>,
        set_once: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        let refused = refused
            .saturating_add(retain_admissible(set))
            .saturating_add(retain_admissible(set_once));
        self.counters.refused_values(refused);
    }

    fn set_fact(&mut self, msg: SetFact) {
        // `value` is a public field: whatever `SetFact::new` checked may have been replaced
        // since.
        if msg.refused().is_some() || nests_deeper_than(&msg.value, MAX_VALUE_DEPTH) {
            self.counters.refused_values(1);
            tracing::warn!(fact = %msg.key, "refusing a fact whose value is not valid JSON or nested too deep");
            dispose(msg.value);
            return;
        }
        self.change(IdentityChange::SetFact(msg), false)
    }

    /// Takes in every event admitted so far, before a message of the mailbox that must come
    /// after them (a flush, a change of identity, a read of the counters): an event recorded
    /// through an [`EventSender`](crate::EventSender) before such a message is sent is handled
    /// before it. (Events recorded just after it may be taken in before it too: send changes
    /// of identity through the same `EventSender` when the order both ways matters.)
    pub(super) fn catch_up(&mut self, ctx: &mut Context<Self>) {
        if !self.budget.has_outstanding() {
            return;
        }
        let budget = self.budget.clone();
        let taken = self.take_run(usize::MAX, ctx);
        self.forward_events();
        // A `DrainAdmitted` is still on its way if events are outstanding; it finds the rest.
        budget.release(taken);
    }

    /// Takes in up to `limit` admitted items, in order; returns how many.
    pub(super) fn take_run(&mut self, limit: usize, ctx: &mut Context<Self>) -> usize {
        let budget = self.budget.clone();
        self.run_started = Some(Instant::now());
        let taken = budget.take_admitted(limit, |item| self.take_inbound(item, ctx));
        self.run_started = None;
        taken
    }

    pub(super) fn take_record(&mut self, msg: Record, ctx: &mut Context<Self>) {
        let before = self.counters.accepted();
        if supervised(self, ctx, |act, _| act.record(msg)).is_none() {
            // The event went with the panic: counted as taken in and lost, so the counters
            // still balance.
            if self.counters.accepted() == before {
                RecorderCounters::bump(&self.counters.accepted);
            }
            RecorderCounters::bump(&self.counters.panic);
        }
        self.turns.tick(ctx, 1);
    }
}

/// A message of the mailbox that is also one of the inbox's.
macro_rules! through_the_mailbox {
    ($($message:ident),* $(,)?) => {$(
        impl Handler<$message> for Recorder {
            type Result = ();

            fn handle(&mut self, msg: $message, ctx: &mut Context<Self>) {
                self.catch_up(ctx);
                self.take_inbound(msg.into_inbound(), ctx);
                self.forward_events();
            }
        }
    )*};
}

through_the_mailbox!(
    Record,
    SetFact,
    Identify,
    SetPersonProperties,
    GroupIdentify,
    Alias,
    AddGroup,
    Reset
);
