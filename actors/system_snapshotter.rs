//! The **SystemSnapshotter** actor: facts about the host.
//!
//! - Owns: the static facts (OS, version, target triple, cores, total memory, boot time,
//!   locale, timezone, CI, process name, hashed host name), gathered once, on the first request.
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
use crate::stats::Stats;

/// Reads host facts. See the module documentation.
#[derive(Debug)]
pub struct SystemSnapshotter {
    env: EnvSource,
    names: EnvNames,
    static_facts: Option<Arc<StaticFacts>>,
    restarts: u64,
}

impl SystemSnapshotter {
    pub(crate) fn new(env: EnvSource, names: EnvNames) -> Self {
        SystemSnapshotter {
            env,
            names,
            static_facts: None,
            restarts: 0,
        }
    }
}

impl Actor for SystemSnapshotter {
    type Context = Context<Self>;
}

impl Supervised for SystemSnapshotter {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.restarts += 1;
        tracing::warn!(restarts = self.restarts, "SystemSnapshotter restarted");
    }
}

impl Handler<TakeSnapshot> for SystemSnapshotter {
    type Result = ResponseActFuture<Self, Option<SystemSnapshot>>;

    fn handle(&mut self, _msg: TakeSnapshot, _ctx: &mut Context<Self>) -> Self::Result {
        let known = self.static_facts.clone();
        let env = self.env.clone();
        let names = self.names.clone();
        let read = tokio::task::spawn_blocking(move || {
            // The instant is taken before reading, so the snapshot is never younger than it
            // claims to be.
            let taken_at = Instant::now();
            let static_facts = known.unwrap_or_else(|| Arc::new(StaticFacts::gather(&env, &names)));
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
        MessageResult(Stats {
            restarts: self.restarts,
            ..Stats::default()
        })
    }
}
