//! Reading the runtime's counters without waiting behind a burst.
//!
//! `GetStats` travels through the Recorder's mailbox, so while the application records faster
//! than the runtime's thread takes events, it waits behind every event recorded before it.
//! [`Telemetry::stats`](crate::Telemetry::stats) takes another lane: the Recorder's own
//! counters are atomics it updates as it goes (read here directly), and every other actor is
//! asked with `ReportCounters` straight to its own mailbox, which taking turns keeps short.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::MailboxError;

use crate::messages::ReportCounters;
use crate::pipeline::{Pipeline, SinkActors};
use crate::stats::{DropCounts, Stats};
use crate::supervision::SupervisionStats;

/// What the Recorder accepted and dropped. Only the Recorder writes them.
#[derive(Debug, Default)]
pub(crate) struct RecorderCounters {
    pub accepted: AtomicU64,
    pub opt_out: AtomicU64,
    pub invalid: AtomicU64,
    pub shutdown: AtomicU64,
    pub panic: AtomicU64,
    /// Dropped at the caller because the runtime was behind ([`crate::EventSender`]).
    pub overflow: AtomicU64,
    /// Property, fact and person-property values refused where they entered.
    pub invalid_values: AtomicU64,
}

impl RecorderCounters {
    /// Counts one more.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one more; true if it was the first.
    pub fn bump_first(counter: &AtomicU64) -> bool {
        counter.fetch_add(1, Ordering::Relaxed) == 0
    }

    /// Counts `n` more refused values.
    pub fn refused_values(&self, n: u32) {
        if n > 0 {
            self.invalid_values
                .fetch_add(u64::from(n), Ordering::Relaxed);
        }
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// These counters, with its supervision state's, as the Recorder's share of [`Stats`].
    pub fn stats(&self, supervision: &SupervisionStats) -> Stats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            accepted: read(&self.accepted),
            invalid_values: read(&self.invalid_values),
            dropped: DropCounts {
                opt_out: read(&self.opt_out),
                invalid: read(&self.invalid),
                shutdown: read(&self.shutdown),
                panic: read(&self.panic),
                overflow: read(&self.overflow),
                ..DropCounts::default()
            },
            ..supervision.stats()
        }
    }
}

/// The counters' fast lane, held by [`Telemetry`](crate::Telemetry).
#[derive(Clone, Debug)]
pub(crate) struct Control {
    pub counters: Arc<RecorderCounters>,
    pub supervision: SupervisionStats,
    pub pipeline: Option<Pipeline>,
}

impl Control {
    /// Every actor's counters, the Recorder's read directly.
    pub async fn stats(&self) -> Stats {
        let mut tally = Tally::new(self.counters.stats(&self.supervision));
        tally.pipeline(self.pipeline.clone()).await;
        tally.stats
    }
}

/// Counters gathered from several actors, and whether each of them answered.
pub(crate) struct Tally {
    pub stats: Stats,
    pub complete: bool,
}

impl Tally {
    pub fn new(own: Stats) -> Self {
        Tally {
            stats: own,
            complete: true,
        }
    }

    pub fn take(&mut self, part: Result<Stats, MailboxError>) {
        match part {
            Ok(part) => self.stats.merge(&part),
            Err(_) => self.complete = false,
        }
    }

    /// Adds the share of every actor of `pipeline`. Every request is sent before any answer
    /// is awaited (`Addr::send` queues the message when it is called), so the actors answer
    /// concurrently, each from its own mailbox.
    pub async fn pipeline(&mut self, pipeline: Option<Pipeline>) {
        let Some(p) = pipeline else {
            return;
        };
        let collator = p.collator.send(ReportCounters);
        let configuration = p.configuration.send(ReportCounters);
        let snapshotter = p.snapshotter.send(ReportCounters);
        let mut sinks = Vec::with_capacity(p.sinks.len());
        for sink in &p.sinks {
            sinks.push((
                sink.submitter.send(ReportCounters),
                sink.transport.send(ReportCounters),
            ));
        }
        self.take(collator.await);
        self.take(configuration.await);
        self.take(snapshotter.await);
        for (submitter, transport) in sinks {
            self.take(submitter.await);
            self.take(transport.await);
        }
    }

    pub async fn sink(&mut self, sink: &SinkActors) {
        self.take(sink.submitter.send(ReportCounters).await);
        self.take(sink.transport.send(ReportCounters).await);
    }
}
