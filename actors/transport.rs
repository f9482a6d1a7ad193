//! The **Transport** actor: writes batches and reads check-ins through one backend (File or
//! HTTP).
//!
//! - Owns: the [`Backend`](crate::transport::Backend) (HTTP client and its connection pool, or
//!   the open file) and nothing that must outlive it.
//! - Takes: `DeliverBatch` from the Submitter (answers a `DeliveryOutcome`), `FetchCheckin`
//!   from the ConfigurationProxy (answers the parsed check-in), `ReportCounters`.
//! - Sends: nothing; it only answers.
//!
//! Each request runs as its own future, so several batches and a check-in can be on the wire at
//! once. On a supervisor restart the backend is rebuilt (a new HTTP client, a reopened file):
//! the actor keeps no state a restart could lose.

use actix::prelude::*;

use crate::checkin::Checkin;
use crate::messages::{DeliverBatch, FetchCheckin, ReportCounters};
use crate::stats::Stats;
use crate::transport::{Backend, DeliveryOutcome, TransportError};

/// Delivers batches and fetches check-ins. See the module documentation.
#[derive(Debug)]
pub struct Transport {
    backend: Backend,
    restarts: u64,
}

impl Transport {
    pub(crate) fn new(backend: Backend) -> Self {
        Transport {
            backend,
            restarts: 0,
        }
    }
}

impl Actor for Transport {
    type Context = Context<Self>;
}

impl Supervised for Transport {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.restarts += 1;
        self.backend = self.backend.rebuilt();
        tracing::warn!(
            restarts = self.restarts,
            "Transport restarted; backend rebuilt"
        );
    }
}

impl Handler<DeliverBatch> for Transport {
    type Result = ResponseFuture<DeliveryOutcome>;

    fn handle(&mut self, msg: DeliverBatch, _ctx: &mut Context<Self>) -> Self::Result {
        let backend = self.backend.clone();
        Box::pin(async move { backend.deliver(msg.events).await })
    }
}

impl Handler<FetchCheckin> for Transport {
    type Result = ResponseFuture<Result<Checkin, TransportError>>;

    fn handle(&mut self, msg: FetchCheckin, _ctx: &mut Context<Self>) -> Self::Result {
        let backend = self.backend.clone();
        Box::pin(async move { backend.check_in(&msg.0).await })
    }
}

impl Handler<ReportCounters> for Transport {
    type Result = MessageResult<ReportCounters>;

    fn handle(&mut self, _msg: ReportCounters, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(Stats {
            restarts: self.restarts,
            ..Stats::default()
        })
    }
}
