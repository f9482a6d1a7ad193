//! The **Transport** actor: writes batches and reads check-ins through one backend (File, HTTP
//! or SRV-discovered HTTP).
//!
//! - Owns: the `Backend` (HTTP client and its connection pool, the
//!   resolver, the discovery cache and target health, or the open file), and a count of
//!   consecutive failures.
//! - Takes: `DeliverBatch` from the Submitter (answers a `DeliveryOutcome`), `FetchCheckin`
//!   from the ConfigurationProxy (answers the parsed check-in), `CheckinSourceChanged` from the
//!   ConfigurationProxy (answers whether the check-in file was edited), `ReportCounters`.
//! - Sends: nothing; it only answers.
//!
//! Each request runs as its own future, so several batches and a check-in can be on the wire at
//! once. After [`REBUILD_AFTER_FAILURES`] consecutive failed requests the client or resolver
//! may be what is broken (a poisoned connection pool, a stale resolver configuration): the
//! actor stops itself and its supervisor restarts it, and `restarting` rebuilds the backend
//! (the HTTP client in place, so the configuration stream, which shares it, reconnects through
//! the new one).
//! Requests in flight at that moment answer "retry" to their senders, so nothing is lost.

use actix::prelude::*;

use crate::checkin::Checkin;
use crate::messages::{CheckinSourceChanged, DeliverBatch, FetchCheckin, ReportCounters};
use crate::stats::Stats;
use crate::supervision::{ActorKind, SupervisedActor, SupervisionState, caught, supervised};
use crate::transport::{Backend, DeliveryOutcome, TransportError};

/// Consecutive failed network requests after which the backend is rebuilt.
pub const REBUILD_AFTER_FAILURES: u32 = 16;

/// Delivers batches and fetches check-ins. See the module documentation.
#[derive(Debug)]
pub struct Transport {
    backend: Backend,
    consecutive_failures: u32,
    supervision: SupervisionState,
}

impl Transport {
    pub(crate) fn new(backend: Backend) -> Self {
        Transport {
            backend,
            consecutive_failures: 0,
            supervision: SupervisionState::new(ActorKind::Transport),
        }
    }

    fn observe(&mut self, succeeded: bool, ctx: &mut Context<Self>) {
        if succeeded {
            self.consecutive_failures = 0;
            return;
        }
        self.consecutive_failures += 1;
        if self.backend.is_network() && self.consecutive_failures >= REBUILD_AFTER_FAILURES {
            tracing::warn!(
                failures = self.consecutive_failures,
                "many consecutive failures; restarting the Transport to rebuild its client and resolver"
            );
            self.consecutive_failures = 0;
            ctx.stop();
        }
    }
}

impl Actor for Transport {
    type Context = Context<Self>;
}

impl SupervisedActor for Transport {
    fn supervision(&mut self) -> &mut SupervisionState {
        &mut self.supervision
    }
}

impl Supervised for Transport {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.supervision.restarted();
        self.backend = self.backend.rebuilt();
    }
}

impl Handler<DeliverBatch> for Transport {
    type Result = ResponseActFuture<Self, DeliveryOutcome>;

    fn handle(&mut self, msg: DeliverBatch, ctx: &mut Context<Self>) -> Self::Result {
        let Some(backend) = supervised(self, ctx, |act, _| act.backend.clone()) else {
            return Box::pin(fut::ready(DeliveryOutcome::Retry {
                after: None,
                reason: "the transport is restarting".into(),
            }));
        };
        let fault = self.supervision.take_task_fault();
        Box::pin(
            caught(async move {
                if fault {
                    panic!("fault injected into a delivery");
                }
                backend.deliver(msg.events).await
            })
            .into_actor(self)
            .map(|outcome, act, ctx| {
                let outcome = outcome.unwrap_or_else(|panic| {
                    act.supervision.tasks.record("a delivery", &panic);
                    DeliveryOutcome::Retry {
                        after: None,
                        reason: format!("the delivery panicked: {panic}"),
                    }
                });
                let ok = !matches!(outcome, DeliveryOutcome::Retry { .. });
                supervised(act, ctx, |act, ctx| act.observe(ok, ctx));
                outcome
            }),
        )
    }
}

impl Handler<FetchCheckin> for Transport {
    type Result = ResponseActFuture<Self, Result<Checkin, TransportError>>;

    fn handle(&mut self, msg: FetchCheckin, ctx: &mut Context<Self>) -> Self::Result {
        let Some(backend) = supervised(self, ctx, |act, _| act.backend.clone()) else {
            return Box::pin(fut::ready(Err(TransportError::Stopping)));
        };
        let fault = self.supervision.take_task_fault();
        Box::pin(
            caught(async move {
                if fault {
                    panic!("fault injected into a check-in");
                }
                backend.check_in(&msg.0).await
            })
            .into_actor(self)
            .map(|result, act, ctx| {
                let result = result.unwrap_or_else(|panic| {
                    act.supervision.tasks.record("a check-in", &panic);
                    Err(TransportError::Panicked(panic))
                });
                let ok = !matches!(result, Err(TransportError::Http(_)));
                supervised(act, ctx, |act, ctx| act.observe(ok, ctx));
                result
            }),
        )
    }
}

impl Handler<CheckinSourceChanged> for Transport {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, _msg: CheckinSourceChanged, ctx: &mut Context<Self>) -> Self::Result {
        let backend = supervised(self, ctx, |act, _| act.backend.clone());
        let tasks = self.supervision.tasks.clone();
        Box::pin(async move {
            let Some(backend) = backend else {
                return false;
            };
            caught(backend.checkin_changed())
                .await
                .unwrap_or_else(|panic| {
                    tasks.record("a look at the check-in source", &panic);
                    false
                })
        })
    }
}

impl Handler<ReportCounters> for Transport {
    type Result = MessageResult<ReportCounters>;

    fn handle(&mut self, _msg: ReportCounters, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(Stats {
            dns_lookups: self.backend.srv_lookups(),
            srv_targets_rejected: self.backend.srv_rejected_targets(),
            ..self.supervision.stats()
        })
    }
}

crate::supervision::arm_fault_handler!(Transport);
