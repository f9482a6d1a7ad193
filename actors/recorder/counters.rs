//! The counters at the Recorder: its own share, and the gathering of every actor's for
//! `GetStats` and of each sink's for `GetSinkStats`, answered in order with the mailbox.

use actix::prelude::*;

use super::Recorder;
use crate::actors::pipeline::{Pipeline, SinkActors};
use crate::control::{Control, Tally};
use crate::messages::*;
use crate::stats::Stats;

impl Recorder {
    /// This actor's own share of the counters.
    pub(super) fn own_counters(&self) -> Stats {
        self.counters.stats(&self.supervision.shared())
    }
}

/// The counters of one sink's Submitter and Transport.
async fn sink_stats(sink: &SinkActors) -> Stats {
    let mut tally = Tally::new(Stats::default());
    tally.sink(&sink.counter_sources()).await;
    tally.stats
}

impl Handler<GetStats> for Recorder {
    type Result = ResponseFuture<Stats>;

    fn handle(&mut self, _msg: GetStats, ctx: &mut Context<Self>) -> Self::Result {
        self.catch_up(ctx);
        // The same gathering as `Telemetry::stats`, answered in order with the mailbox.
        let control = Control {
            counters: self.counters.clone(),
            supervision: self.supervision.shared(),
            others: self.pipeline.as_ref().map(Pipeline::counter_sources),
        };
        Box::pin(async move { control.stats().await })
    }
}

impl Handler<ReportCounters> for Recorder {
    type Result = MessageResult<ReportCounters>;

    fn handle(&mut self, _msg: ReportCounters, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.own_counters())
    }
}

impl Handler<GetSinkStats> for Recorder {
    type Result = ResponseFuture<Vec<(String, Stats)>>;

    fn handle(&mut self, _msg: GetSinkStats, ctx: &mut Context<Self>) -> Self::Result {
        self.catch_up(ctx);
        let sinks = self
            .pipeline
            .as_ref()
            .map(|p| p.sinks.clone())
            .unwrap_or_default();
        Box::pin(async move {
            let mut all = Vec::with_capacity(sinks.len());
            for sink in &sinks {
                all.push((sink.name.clone(), sink_stats(sink).await));
            }
            all
        })
    }
}
