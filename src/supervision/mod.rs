//! Keeping the actors alive.
//!
//! The actix `Supervisor` restarts an actor that stops itself, keeping its struct and mailbox,
//! but a panic in a handler kills the actor for good and loses its mailbox. So every handler
//! (and every continuation of an actor future) runs inside [`supervised`]: a panic is caught,
//! counted, and turned into `ctx.stop()`, which the supervisor answers with a restart. The
//! message that panicked is the only thing lost; the queued ones are handled after the restart.
//!
//! A restart budget stops a crash loop: past [`MAX_RESTARTS`] panic restarts within
//! [`RESTART_WINDOW`], the actor is no longer restarted. It keeps serving messages (a panic
//! then costs only the message that caused it), is reported as degraded in
//! [`Stats::degraded`](crate::Stats), and an error is logged once.

mod caught;

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

pub(crate) use caught::{TaskPanics, caught};
// The actors and the faults to inject are named where every module can reach them without
// depending on supervision.
#[cfg(feature = "fault-injection")]
pub use crate::actor_kind::Fault;
pub use crate::actor_kind::{ActorKind, ActorSet};

/// Panic restarts allowed within [`RESTART_WINDOW`] before an actor is degraded.
pub const MAX_RESTARTS: usize = 10;
/// The window of the restart budget.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// An actor's restart and panic counts, readable from another thread (for counters that must
/// not wait behind the actor's mailbox).
#[derive(Debug, Default)]
pub(crate) struct SupervisionCounters {
    restarts: AtomicU64,
    panics: AtomicU64,
    degraded: AtomicBool,
}

/// A reader of one actor's [`SupervisionCounters`].
#[derive(Clone, Debug)]
pub(crate) struct SupervisionStats {
    actor: ActorKind,
    counters: Arc<SupervisionCounters>,
    tasks: TaskPanics,
}

impl SupervisionStats {
    /// The counters the supervision state contributes to [`Stats`](crate::Stats).
    pub fn stats(&self) -> crate::Stats {
        let mut degraded = ActorSet::default();
        if self.counters.degraded.load(Ordering::Relaxed) {
            degraded.insert(self.actor);
        }
        crate::Stats {
            restarts: self.counters.restarts.load(Ordering::Relaxed),
            panics: self.counters.panics.load(Ordering::Relaxed) + self.tasks.count(),
            degraded,
            ..crate::Stats::default()
        }
    }
}

/// Supervision state every actor carries.
#[derive(Debug)]
pub(crate) struct SupervisionState {
    pub actor: ActorKind,
    counters: Arc<SupervisionCounters>,
    pub degraded: bool,
    recent: VecDeque<Instant>,
    /// Panics caught in this actor's futures and tasks.
    pub tasks: TaskPanics,
    #[cfg(feature = "fault-injection")]
    pub armed: Option<Fault>,
    #[cfg(feature = "fault-injection")]
    task_fault: bool,
}

impl SupervisionState {
    pub fn new(actor: ActorKind) -> Self {
        SupervisionState {
            actor,
            counters: Arc::default(),
            degraded: false,
            recent: VecDeque::new(),
            tasks: TaskPanics::new(actor),
            #[cfg(feature = "fault-injection")]
            armed: None,
            #[cfg(feature = "fault-injection")]
            task_fault: false,
        }
    }

    /// Whether the next future this actor starts must panic (feature `fault-injection`);
    /// always false otherwise.
    pub fn take_task_fault(&mut self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            if let Some(Fault::PanicInTask) = self.armed {
                self.armed = None;
                return true;
            }
            std::mem::take(&mut self.task_fault)
        }
        #[cfg(not(feature = "fault-injection"))]
        false
    }

    /// Counts a restart (called from `Supervised::restarting`).
    pub fn restarted(&mut self) {
        let restarts = self.counters.restarts.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(actor = %self.actor, restarts, "actor restarted by its supervisor");
    }

    /// A reader of this state's counters, for another thread.
    pub fn shared(&self) -> SupervisionStats {
        SupervisionStats {
            actor: self.actor,
            counters: self.counters.clone(),
            tasks: self.tasks.clone(),
        }
    }

    /// The counters this state contributes to [`Stats`](crate::Stats).
    pub fn stats(&self) -> crate::Stats {
        self.shared().stats()
    }

    /// Whether the budget allows one more panic restart now.
    fn allow_restart(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= MAX_RESTARTS {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

/// An actor with a [`SupervisionState`].
pub(crate) trait SupervisedActor: Actor<Context = Context<Self>> + Supervised {
    fn supervision(&mut self) -> &mut SupervisionState;
}

/// Runs `f` (a handler body), catching a panic and turning it into a supervised restart.
/// `None` when `f` panicked.
pub(crate) fn supervised<A: SupervisedActor, R>(
    act: &mut A,
    ctx: &mut Context<A>,
    f: impl FnOnce(&mut A, &mut Context<A>) -> R,
) -> Option<R> {
    #[cfg(feature = "fault-injection")]
    if let Some(fault) = act.supervision().armed.take()
        && inject(act, ctx, fault) == Handled::Lost
    {
        return None;
    }
    match catch_unwind(AssertUnwindSafe(|| f(act, ctx))) {
        Ok(result) => Some(result),
        Err(payload) => {
            after_panic(act, ctx, payload.as_ref());
            None
        }
    }
}

/// What becomes of the message an injected fault struck.
#[cfg(feature = "fault-injection")]
#[derive(PartialEq, Eq)]
enum Handled {
    /// It is handled after the fault.
    Still,
    /// It is lost, as when its handler panics.
    Lost,
}

#[cfg(feature = "fault-injection")]
fn inject<A: SupervisedActor>(act: &mut A, ctx: &mut Context<A>, fault: Fault) -> Handled {
    let actor = act.supervision().actor;
    match fault {
        Fault::Panic | Fault::PanicLosingMessage => {
            let Err(payload) = catch_unwind(|| panic!("fault injected into {actor}"));
            after_panic(act, ctx, payload.as_ref());
        }
        Fault::Stop => {
            tracing::warn!(%actor, "injected stop");
            ctx.stop();
        }
        Fault::PanicInTask => act.supervision().task_fault = true,
    }
    if fault == Fault::PanicLosingMessage {
        Handled::Lost
    } else {
        Handled::Still
    }
}

fn after_panic<A: SupervisedActor>(
    act: &mut A,
    ctx: &mut Context<A>,
    payload: &(dyn std::any::Any + Send),
) {
    let message = caught::panic_message(payload);
    let supervision = act.supervision();
    supervision.counters.panics.fetch_add(1, Ordering::Relaxed);
    if supervision.allow_restart(Instant::now()) {
        tracing::error!(actor = %supervision.actor, panic = %message, "actor panicked; restarting it");
        ctx.stop();
    } else if !supervision.degraded {
        supervision.degraded = true;
        supervision.counters.degraded.store(true, Ordering::Relaxed);
        tracing::error!(
            actor = %supervision.actor,
            panic = %message,
            max_restarts = MAX_RESTARTS,
            window = ?RESTART_WINDOW,
            "actor keeps panicking; restart budget exhausted, it now runs degraded without restarts"
        );
    }
}

/// Implements the `ArmFault` handler (feature `fault-injection`) for an actor with a `supervision`
/// field.
macro_rules! arm_fault_handler {
    ($actor:ty) => {
        #[cfg(feature = "fault-injection")]
        impl actix::Handler<crate::actor_kind::ArmFault> for $actor {
            type Result = ();

            fn handle(
                &mut self,
                msg: crate::actor_kind::ArmFault,
                _ctx: &mut actix::Context<Self>,
            ) {
                self.supervision.armed = Some(msg.0);
            }
        }
    };
}
pub(crate) use arm_fault_handler;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refills_after_the_window() {
        let mut supervision = SupervisionState::new(ActorKind::Collator);
        let t0 = Instant::now();
        for _ in 0..MAX_RESTARTS {
            assert!(supervision.allow_restart(t0));
        }
        assert!(!supervision.allow_restart(t0));
        assert!(supervision.allow_restart(t0 + RESTART_WINDOW + Duration::from_millis(1)));
    }
}
