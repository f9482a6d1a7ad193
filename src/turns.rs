//! Taking turns on the telemetry thread.
//!
//! All six actors share one thread, and actix handles an actor's whole mailbox before the
//! thread runs anything else: during a flood of events the Recorder would pass the whole burst
//! on before the Collator saw any of it, and the Collator before the Submitter, so the
//! Submitter's queue would fill with the entire burst before a single batch left. An actor on
//! the event path therefore steps aside after a run of messages: it waits on a future that is
//! ready at its next poll, which ends the mailbox loop and puts the actor at the back of the
//! thread's run queue. The stages then work as a pipeline, each a few hundred events behind
//! the one before.

use actix::prelude::*;

/// Messages an actor handles in a row before it lets the others run.
pub(crate) const MESSAGES_PER_TURN: usize = 256;

/// Counts an actor's messages and steps aside after every [`MESSAGES_PER_TURN`] of them.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    handled: usize,
}

impl Turns {
    /// Call once per message handled, with the number of events it carried (a run of events
    /// counts as that many messages, so a turn holds as much work whether they came one by one
    /// or together); true when the actor steps aside now, which ends its turn (work deferred to
    /// the end of a turn is due).
    pub fn tick<A>(&mut self, ctx: &mut Context<A>, events: usize) -> bool
    where
        A: Actor<Context = Context<A>>,
    {
        self.handled += events.max(1);
        if self.handled < MESSAGES_PER_TURN {
            return false;
        }
        self.handled = 0;
        ctx.wait(fut::wrap_future(tokio::task::yield_now()));
        true
    }
}
