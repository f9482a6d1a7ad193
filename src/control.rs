//! Reading the runtime's counters without waiting behind a burst.
//!
//! `GetStats` travels through the Recorder's mailbox, so while the application records faster
//! than the runtime's thread takes events, it waits behind every event recorded before it.
//! [`Telemetry::stats`](crate::Telemetry::stats) takes another lane: the Recorder's own
//! counters are atomics it updates as it goes (read here directly), and every other actor is
//! asked with `ReportCounters` straight to its own mailbox, which taking turns keeps short.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::{MailboxError, Recipient};

use crate::messages::ReportCounters;
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
    /// The other actors, asked for their shares; `None` with telemetry disabled.
    pub others: Option<CounterSources>,
}

/// Who to ask for their share of the counters besides the Recorder: recipients, so that this
/// module names no actor.
#[derive(Clone, Debug, Default)]
pub(crate) struct CounterSources {
    /// The actors that belong to no sink.
    pub shared: Vec<Recipient<ReportCounters>>,
    /// Each sink's Submitter and Transport, the primary sink first.
    pub sinks: Vec<[Recipient<ReportCounters>; 2]>,
}

impl Control {
    /// Every actor's counters, the Recorder's read directly.
    pub async fn stats(&self) -> Stats {
        let mut tally = Tally::new(self.counters.stats(&self.supervision));
        tally.others(self.others.as_ref()).await;
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

    /// Adds the share of every actor of `sources`. Every request is sent before any answer is
    /// awaited (`Recipient::send` queues the message when it is called), so the actors answer
    /// concurrently, each from its own mailbox.
    pub async fn others(&mut self, sources: Option<&CounterSources>) {
        let Some(sources) = sources else {
            return;
        };
        let asked: Vec<_> = sources
            .shared
            .iter()
            .chain(sources.sinks.iter().flatten())
            .map(|actor| actor.send(ReportCounters))
            .collect();
        for answer in asked {
            self.take(answer.await);
        }
    }

    /// Adds the share of one sink's Submitter and Transport.
    pub async fn sink(&mut self, sink: &[Recipient<ReportCounters>; 2]) {
        for actor in sink {
            self.take(actor.send(ReportCounters).await);
        }
    }
}
