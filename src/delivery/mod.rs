//! What one sink does with its events, as plain state the Submitter actor drives: the bounded
//! queue and its overflow policy, cutting batches, the outcome of each delivery, backoff per
//! outage, flushes, the durable spool, and the counters. Every method returns at once and says
//! what to do next ([`SinkCore::next_batch`], [`SinkCore::resume_at`]); timers, the wire and the
//! device sync stay in the actor, so all of this is tested without actix.
//!
//! Accounting: every event a sink takes in (`enqueued`, or `recovered` from an earlier run's
//! spool) is at any moment exactly one of delivered, dropped (by cause), held in memory, or on
//! disk only, waiting to be read back:
//! `enqueued + recovered = delivered + dropped.total() + held + disk_only`.
//!
//! The state is defined here; its steps live beside it by stage: [`intake`] (taking events
//! in), [`sending`] (cutting batches), [`outcomes`] (the backend's answers) and [`draining`]
//! (flushes and shutdown deadlines).

mod batch;
mod draining;
mod flushes;
pub(crate) mod health;
mod intake;
mod outcomes;
mod sending;
mod spooling;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::event::EncodedEvent;
use crate::pressure::Fill;
use crate::queue_config::SubmitterConfig;
use crate::spool::Spool;
use crate::stats::{DropCounts, Stats};

use batch::{Batch, Queued, held_size};
use flushes::{Flushes, Resolution};
use health::{HealthState, SendKind, SinkHealth};
use spooling::Spooling;

/// A batch to hand to the Transport; its answer comes back as [`SinkCore::on_outcome`].
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub id: u64,
    pub events: Arc<[EncodedEvent]>,
}

#[derive(Debug)]
struct InFlight {
    batch: Batch,
    kind: SendKind,
}

/// One sink's delivery state. See the module documentation.
#[derive(Debug)]
pub(crate) struct SinkCore {
    config: SubmitterConfig,
    queue: VecDeque<Queued>,
    /// Sum of `encoded_len` over `queue`: decides when a batch is full by bytes.
    queue_encoded_bytes: usize,
    retry: VecDeque<Batch>,
    in_flight: HashMap<u64, InFlight>,
    held_events: usize,
    held_bytes: usize,
    next_seq: u64,
    next_batch_id: u64,
    /// Events with a sequence number up to this one may leave in a partial batch.
    flush_through: u64,
    health: SinkHealth,
    flushes: Flushes,
    spooling: Spooling,
    enqueued: u64,
    delivered: u64,
    batches_delivered: u64,
    retries: u64,
    dropped: DropCounts,
}

impl SinkCore {
    pub fn new(config: SubmitterConfig, spool: Option<Spool>) -> Self {
        let health = SinkHealth::new(&config.backoff, config.refused_retry_interval);
        SinkCore {
            config,
            queue: VecDeque::new(),
            queue_encoded_bytes: 0,
            retry: VecDeque::new(),
            in_flight: HashMap::new(),
            held_events: 0,
            held_bytes: 0,
            next_seq: 1,
            next_batch_id: 0,
            flush_through: 0,
            health,
            flushes: Flushes::default(),
            spooling: Spooling::new(spool),
            enqueued: 0,
            delivered: 0,
            batches_delivered: 0,
            retries: 0,
            dropped: DropCounts::default(),
        }
    }

    /// How often a partial batch is sent.
    pub fn flush_interval(&self) -> Duration {
        self.config.flush_interval
    }

    /// Whether this sink keeps its events durable.
    /// Whether the intake should hold back for this sink to catch up (`was`: whether it
    /// was crowded until now); see `src/pressure.rs`.
    pub fn crowded(&self, was: bool) -> bool {
        let fill = Fill {
            events: self.held_events,
            max_events: self.config.max_queue_events,
            bytes: self.held_bytes,
            max_bytes: self.config.max_queue_bytes,
        };
        let healthy = self.health.state() == HealthState::Healthy;
        fill.crowded(healthy, self.spooling.must_spill(), was)
    }

    pub fn has_spool(&self) -> bool {
        self.spooling.is_on()
    }

    /// Events taken in so far.
    pub fn enqueued(&self) -> u64 {
        self.enqueued
    }

    /// An event being taken in went with a panic (`before`: [`enqueued`](Self::enqueued)
    /// before it): counted as taken in and lost, so the counters balance.
    pub fn lost_to_panic(&mut self, before: u64) {
        if self.enqueued == before {
            self.enqueued += 1;
        }
        self.dropped.panic += 1;
    }

    /// Accounts for events that left memory for good, and answers flushes they complete.
    fn forget(&mut self, seqs: &[u64], held_bytes: usize, how: Resolution) {
        self.settle(seqs, held_bytes, how);
        self.answer_completed_flushes();
    }

    /// [`forget`](Self::forget) without answering the flushes it completes.
    fn settle(&mut self, seqs: &[u64], held_bytes: usize, how: Resolution) {
        self.held_events -= seqs.len();
        self.held_bytes -= held_bytes;
        self.spooling.release(seqs);
        self.flushes.account(seqs, how);
    }

    /// Hands what the spool buffered to its writer (at the end of a mailbox turn), to be
    /// written behind.
    pub fn write_spool(&mut self) {
        self.write_spool_with(false);
    }

    /// Writes what the spool buffered and waits until it is with the operating system.
    pub fn write_spool_now(&mut self) {
        self.write_spool_with(true);
    }

    fn write_spool_with(&mut self, wait: bool) {
        let lost = self.spooling.write(wait);
        if lost.failed + lost.full > 0 {
            self.dropped.spool_failed += lost.failed;
            self.dropped.spool_full += lost.full;
            self.answer_completed_flushes();
        }
    }

    /// Whether the spool has a whole block of records buffered (worth writing at once).
    pub fn spool_holds_a_full_block(&self) -> bool {
        self.spooling.holds_a_full_block()
    }

    /// Whether the spool has buffered records or acknowledgements.
    pub fn spool_dirty(&self) -> bool {
        self.spooling.is_dirty()
    }

    /// Syncs the spool to the device, off the actor's thread.
    pub fn sync_spool(&mut self) {
        self.spooling.sync();
    }

    /// The actor restarted: answers of in-flight batches may never come, so those batches go
    /// back to the front of the line (delivered twice at worst, never lost).
    pub fn restarted(&mut self) {
        let flying: Vec<Batch> = self.in_flight.drain().map(|(_, f)| f.batch).collect();
        for batch in flying {
            self.retry.push_front(batch);
        }
        self.health.forget_probe();
        self.recount();
    }

    /// Recomputes the byte and event totals from what is held, in case a panic interrupted an
    /// update of them.
    fn recount(&mut self) {
        let batched = self
            .retry
            .iter()
            .chain(self.in_flight.values().map(|f| &f.batch));
        let (mut events, mut bytes) = (self.queue.len(), 0);
        for batch in batched {
            events += batch.len();
            bytes += batch.held_bytes;
        }
        bytes += self
            .queue
            .iter()
            .map(|q| held_size(&q.event))
            .sum::<usize>();
        self.held_events = events;
        self.held_bytes = bytes;
        self.queue_encoded_bytes = self.queue.iter().map(|q| q.event.encoded_len()).sum();
    }

    /// This sink's counters.
    pub fn stats(&mut self) -> Stats {
        // So that `spooled` counts every record the operating system has, and only those.
        self.write_spool_now();
        let spool = self.spooling.stats();
        Stats {
            delivered: self.delivered,
            dropped: self.dropped,
            retries: self.retries,
            batches_delivered: self.batches_delivered,
            queue_depth: self.held_events as u64,
            queue_bytes: self.held_bytes as u64,
            sinks_paused: u64::from(self.is_paused()),
            sinks_failing: u64::from(matches!(self.health.state(), HealthState::Failing { .. })),
            ..spool
        }
    }

    /// The balance of this sink's accounting (see the module documentation): (taken in,
    /// accounted for).
    #[cfg(test)]
    pub fn balance(&self) -> (u64, u64) {
        let taken = self.enqueued + self.spooling.recovered();
        let held = self.held_events as u64;
        (
            taken,
            self.delivered + self.dropped.total() + held + self.spooling.disk_only(),
        )
    }
}

#[cfg(test)]
mod tests;
