//! The **SystemSnapshotter** actor: facts about the host.
//!
//! - Owns: the static facts (OS, version, target triple, cores, total memory, boot time,
//!   locale, timezone, CI, process name, hashed host name), gathered once, on the first request;
//!   the salt the host name is hashed with when there is no state directory to keep one.
//! - Takes: `TakeSnapshot` from the Collator (answers a fresh [`SystemSnapshot`] with the
//!   volatile facts read now), `ReportCounters`.
//! - Sends: nothing; it only answers.
//!
//! Reading the host blocks (it reads `/proc`), so every read runs on tokio's blocking pool and
//! never on the actor thread that serves events. It is asked only when the Collator's snapshot
//! is older than the configured age, so an idle process reads nothing, and a disabled runtime
//! never starts this actor at all.

use std::sync::Arc;

use actix::prelude::*;
use tokio::time::Instant;

use crate::env::{EnvNames, EnvSource};
use crate::messages::{ReportCounters, TakeSnapshot};
use crate::snapshot::{StaticFacts, SystemSnapshot, VolatileFacts};
use crate::state::{HostSalt, StateDir};
use crate::supervision::{ActorKind, SupervisedActor, SupervisionState, supervised};

/// Reads host facts. See the module documentation.
#[derive(Debug)]
pub struct SystemSnapshotter {
    env: EnvSource,
    names: EnvNames,
    /// Where the installation's host salt is kept, if anywhere.
    state: Option<StateDir>,
    /// The salt of this run, for when none can be kept.
    run_salt: HostSalt,
    static_facts: Option<Arc<StaticFacts>>,
    supervision: SupervisionState,
}

impl SystemSnapshotter {
    pub(crate) fn new(env: EnvSource, names: EnvNames, state: Option<StateDir>) -> Self {
        SystemSnapshotter {
            env,
            names,
            state,
            run_salt: crate::rng::secret_bytes(),
            static_facts: None,
            supervision: SupervisionState::new(ActorKind::SystemSnapshotter),
        }
    }
}

impl Actor for SystemSnapshotter {
    type Context = Context<Self>;
}

impl SupervisedActor for SystemSnapshotter {
    fn supervision(&mut self) -> &mut SupervisionState {
        &mut self.supervision
    }
}

impl Supervised for SystemSnapshotter {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.supervision.restarted();
    }
}

impl Handler<TakeSnapshot> for SystemSnapshotter {
    type Result = ResponseActFuture<Self, Option<SystemSnapshot>>;

    fn handle(&mut self, _msg: TakeSnapshot, ctx: &mut Context<Self>) -> Self::Result {
        let inputs = supervised(self, ctx, |act, _| {
            // What the static facts are gathered with, the first time.
            let facts = act
                .static_facts
                .clone()
                .ok_or_else(|| (act.state.clone(), act.run_salt));
            (facts, act.env.clone(), act.names.clone())
        });
        let Some((facts, env, names)) = inputs else {
            return Box::pin(fut::ready(None));
        };
        let read = tokio::task::spawn_blocking(move || {
            // The instant is taken before reading, so the snapshot is never younger than it
            // claims to be.
            let taken_at = Instant::now();
            let static_facts = facts.unwrap_or_else(|(state, run_salt)| {
                let salt = state.as_ref().and_then(StateDir::host_salt);
                let salt = salt.unwrap_or(run_salt);
                Arc::new(StaticFacts::gather_salted(&env, &names, &salt))
            });
            SystemSnapshot {
                static_facts,
                volatile: VolatileFacts::gather(),
                taken_at,
            }
        });
        Box::pin(read.into_actor(self).map(|read, act, _ctx| match read {
            Ok(snapshot) => {
                act.static_facts = Some(snapshot.static_facts.clone());
                Some(snapshot)
            }
            Err(error) if error.is_panic() => {
                // A panic while reading the host surfaces here, off the actor thread.
                act.supervision
                    .tasks
                    .record("reading host facts", &error.to_string());
                None
            }
            Err(error) => {
                tracing::warn!(%error, "reading host facts failed");
                None
            }
        }))
    }
}

impl Handler<ReportCounters> for SystemSnapshotter {
    type Result = MessageResult<ReportCounters>;

    fn handle(&mut self, _msg: ReportCounters, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.supervision.stats())
    }
}

crate::supervision::arm_fault_handler!(SystemSnapshotter);
