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

mod batch;
mod flushes;
pub(crate) mod health;
mod spooling;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::actors::submitter::{OverflowPolicy, SubmitterConfig};
use crate::event::EncodedEvent;
use crate::spool::Spool;
use crate::stats::{DropCounts, FlushReport, Stats};
use crate::transport::DeliveryOutcome;

use batch::{Batch, Queued, held_size, too_old};
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

    /// Takes a new event in.
    pub fn enqueue(&mut self, event: EncodedEvent) {
        self.enqueued += 1;
        if self.spooling.must_spill() || (self.spooling.is_on() && !self.fits(held_size(&event))) {
            // Memory is full (or earlier spilled events are still to come back, and order
            // matters): with a spool the event goes to disk only and is read back later.
            self.spooling.spill(&event);
            return;
        }
        let Some(seq) = self.admit(event) else {
            return;
        };
        if let Some(queued) = self.queue.back() {
            self.spooling.record(seq, &queued.event);
        }
    }

    fn fits(&self, size: usize) -> bool {
        self.held_events < self.config.max_queue_events
            && self.held_bytes + size <= self.config.max_queue_bytes
    }

    /// Queues `event` if the overflow policy lets it in; its sequence number if it did.
    fn admit(&mut self, event: EncodedEvent) -> Option<u64> {
        let size = held_size(&event);
        if !self.make_room(size) {
            self.dropped.overflow += 1;
            return None;
        }
        Some(self.push(event))
    }

    /// Puts `event` at the back of the queue; its sequence number.
    fn push(&mut self, event: EncodedEvent) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.held_events += 1;
        self.held_bytes += held_size(&event);
        self.queue_encoded_bytes += event.encoded_len();
        self.queue.push_back(Queued { seq, event });
        seq
    }

    /// Frees room for one more event of `size` bytes under the overflow policy; false if the
    /// new event must be dropped instead.
    fn make_room(&mut self, size: usize) -> bool {
        if self.fits(size) {
            return true;
        }
        if self.config.overflow == OverflowPolicy::DropNewest {
            return false;
        }
        while !self.fits(size) {
            // Oldest first: batches waiting for a retry hold the oldest events. They go whole,
            // so an outage does not rebuild a batch for every new event.
            if let Some(batch) = self.retry.pop_front() {
                self.dropped.overflow += batch.len() as u64;
                self.forget(&batch.seqs, batch.held_bytes, Resolution::Dropped);
            } else if let Some(old) = self.queue.pop_front() {
                self.queue_encoded_bytes -= old.event.encoded_len();
                self.dropped.overflow += 1;
                self.forget(&[old.seq], held_size(&old.event), Resolution::Dropped);
            } else {
                // Everything held is on the wire; it cannot be taken back.
                return false;
            }
        }
        true
    }

    /// Moves events back from the spool into memory while half the queue's limits are free:
    /// the other half stays for new events, and nothing is dropped to make room.
    pub fn read_back(&mut self) {
        let oldest_ms = self.oldest_allowed_ms();
        loop {
            let room = self.held_events < self.config.max_queue_events / 2
                && self.held_bytes < self.config.max_queue_bytes / 2;
            // An event larger than half the queue still goes, alone.
            if !room && self.held_events > 0 {
                break;
            }
            let Some(event) = self.spooling.next_read_back() else {
                break;
            };
            if oldest_ms.is_some_and(|o| too_old(&event.event, o)) {
                self.dropped.expired += 1;
                self.spooling.release_read_back(event.at);
                continue;
            }
            let seq = self.push(event.event);
            self.spooling.held_from_disk(seq, event.at);
            if event.own {
                self.flushes
                    .spilled_came_back(seq, self.spooling.own_settled());
            }
            // Read-back events go at once: they have waited long enough.
            self.flush_through = seq;
        }
    }

    /// Milliseconds since the epoch before which an event is too old to deliver.
    fn oldest_allowed_ms(&self) -> Option<u64> {
        if !self.spooling.is_on() {
            return None;
        }
        let cutoff = SystemTime::now().checked_sub(self.config.max_event_age)?;
        let ms = cutoff.duration_since(UNIX_EPOCH).ok()?.as_millis();
        u64::try_from(ms).ok()
    }

    /// Lets every event queued so far leave in a partial batch (the flush interval passed).
    pub fn release_partial(&mut self) {
        self.flush_through = self.flush_through.max(self.next_seq - 1);
    }

    /// The next batch to send, if the backend's health and the in-flight limit allow one now.
    pub fn next_batch(&mut self, now: Instant) -> Option<Outgoing> {
        if !self
            .health
            .may_send(now, self.in_flight.len(), self.config.max_in_flight)
        {
            return None;
        }
        let batch = self.retry.pop_front().or_else(|| self.cut_batch())?;
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        let kind = self.health.on_sent();
        let events = batch.events.clone();
        self.in_flight.insert(id, InFlight { batch, kind });
        Some(Outgoing { id, events })
    }

    fn cut_batch(&mut self) -> Option<Batch> {
        let front = self.queue.front()?;
        let full = self.queue.len() >= self.config.max_batch_events
            || self.queue_encoded_bytes >= self.config.max_batch_bytes;
        if !full && front.seq > self.flush_through {
            return None;
        }
        let mut events = Vec::new();
        let mut seqs = Vec::new();
        let mut bytes = 0;
        while let Some(next) = self.queue.front() {
            let len = next.event.encoded_len() + 1;
            if !events.is_empty()
                && (events.len() >= self.config.max_batch_events
                    || bytes + len > self.config.max_batch_bytes)
            {
                break;
            }
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            bytes += len;
            self.queue_encoded_bytes -= q.event.encoded_len();
            seqs.push(q.seq);
            events.push(q.event);
        }
        Some(Batch::new(events, seqs, 0))
    }

    /// When a paused sink may send again.
    pub fn resume_at(&self) -> Option<Instant> {
        self.health.resume_at()
    }

    /// Whether the backend refused this sink's batches and it is paused.
    pub fn is_paused(&self) -> bool {
        matches!(self.health.state(), HealthState::Refused { .. })
    }

    /// The backend's answer for batch `id`.
    pub fn on_outcome(&mut self, id: u64, outcome: DeliveryOutcome, now: Instant) {
        // Unknown ids belong to batches a shutdown already gave up on, or that a restart put
        // back in line.
        let Some(InFlight { batch, kind }) = self.in_flight.remove(&id) else {
            return;
        };
        match outcome {
            DeliveryOutcome::Delivered => {
                self.health.on_success();
                self.delivered += batch.len() as u64;
                self.batches_delivered += 1;
                self.forget(&batch.seqs, batch.held_bytes, Resolution::Delivered);
            }
            DeliveryOutcome::Retry { after, reason } => {
                self.retry_later(batch, kind, after, &reason, now);
            }
            DeliveryOutcome::Partial {
                retry,
                dropped,
                after,
            } => self.partial(batch, kind, &retry, &dropped, after, now),
            DeliveryOutcome::Rejected { status } => {
                self.health.on_success();
                self.isolate(batch, status, |d| &mut d.rejected);
            }
            DeliveryOutcome::TooLarge => {
                self.health.on_success();
                self.isolate(batch, 413, |d| &mut d.too_large);
            }
            DeliveryOutcome::Refused { status } => self.refused(batch, status, now),
        }
        self.read_back();
    }

    /// A failed batch waits for its next attempt, or is given up on once it had them all.
    fn retry_later(
        &mut self,
        mut batch: Batch,
        kind: SendKind,
        after: Option<Duration>,
        reason: &str,
        now: Instant,
    ) {
        batch.attempts += 1;
        self.retries += 1;
        let wait = self.health.on_failure(kind, after, now);
        if !self.spooling.is_on()
            && self
                .config
                .max_attempts
                .is_some_and(|max| batch.attempts >= max)
        {
            tracing::error!(target: "actix_telemetry::delivery", events = batch.len(), attempts = batch.attempts, %reason, "giving up on a batch");
            self.dropped.retries_exhausted += batch.len() as u64;
            self.forget(&batch.seqs, batch.held_bytes, Resolution::Dropped);
        } else {
            if let Some(wait) = wait {
                tracing::warn!(target: "actix_telemetry::delivery", events = batch.len(), attempt = batch.attempts, ?wait, %reason, "delivery failed; will retry");
            }
            self.requeue(batch);
        }
    }

    /// An answer per event: the delivered and the dropped ones leave, the ones to retry stay
    /// together as a smaller batch. Indices out of range are ignored.
    fn partial(
        &mut self,
        batch: Batch,
        kind: SendKind,
        retry: &[usize],
        dropped: &[usize],
        after: Option<Duration>,
        now: Instant,
    ) {
        #[derive(Clone, Copy, PartialEq)]
        enum Fate {
            Delivered,
            Dropped,
            Retry,
        }
        let mut fates = vec![Fate::Delivered; batch.len()];
        for &i in dropped {
            if let Some(fate) = fates.get_mut(i) {
                *fate = Fate::Dropped;
            }
        }
        for &i in retry {
            if let Some(fate) = fates.get_mut(i) {
                *fate = Fate::Retry;
            }
        }
        let (mut delivered, mut delivered_bytes) = (Vec::new(), 0);
        let (mut gone, mut gone_bytes) = (Vec::new(), 0);
        let mut settled = Vec::new();
        for (i, (event, seq)) in batch.events.iter().zip(&batch.seqs).enumerate() {
            match fates[i] {
                Fate::Retry => continue,
                Fate::Delivered => {
                    delivered.push(*seq);
                    delivered_bytes += held_size(event);
                }
                Fate::Dropped => {
                    gone.push(*seq);
                    gone_bytes += held_size(event);
                }
            }
            settled.push(i);
        }
        if !gone.is_empty() {
            tracing::error!(target: "actix_telemetry::delivery", events = gone.len(), "backend dropped events of a batch; counted as rejected");
        }
        let (rest, _) = batch.without(&settled);
        self.delivered += delivered.len() as u64;
        self.dropped.rejected += gone.len() as u64;
        if rest.len() == 0 {
            self.batches_delivered += 1;
        }
        // Both settled before any flush is answered, so a flush sees them together.
        self.settle(&delivered, delivered_bytes, Resolution::Delivered);
        self.settle(&gone, gone_bytes, Resolution::Dropped);
        if rest.len() == 0 {
            self.health.on_success();
        } else {
            let reason = "the backend asked for some events again";
            self.retry_later(rest, kind, after, reason, now);
        }
        self.answer_completed_flushes();
    }

    /// A whole batch refused for good: with a spool the sink pauses and keeps everything
    /// (fixing a key or a proxy recovers the data); without one the batch is dropped.
    fn refused(&mut self, batch: Batch, status: u16, now: Instant) {
        if self.spooling.is_on() {
            let wait = self.health.on_refused(status, now);
            tracing::error!(target: "actix_telemetry::delivery", status, ?wait, "backend refused a batch; pausing this sink, its events stay spooled");
            self.requeue(batch);
            return;
        }
        tracing::error!(
            target: "actix_telemetry::delivery",
            events = batch.len(),
            status,
            "backend refused a batch; dropping it"
        );
        self.dropped.refused += batch.len() as u64;
        self.forget(&batch.seqs, batch.held_bytes, Resolution::Dropped);
    }

    /// Puts a failed batch back at the front of the line, without its events that outlived
    /// the configured age.
    fn requeue(&mut self, batch: Batch) {
        let batch = match self.oldest_allowed_ms() {
            Some(oldest) => {
                let old = batch.expired(oldest);
                if old.is_empty() {
                    batch
                } else {
                    let bytes = batch.held_bytes;
                    let (kept, gone) = batch.without(&old);
                    self.dropped.expired += gone.len() as u64;
                    self.forget(&gone, bytes - kept.held_bytes, Resolution::Dropped);
                    kept
                }
            }
            None => batch,
        };
        if batch.len() > 0 {
            self.retry.push_front(batch);
        }
    }

    /// Splits a batch the backend would not take, until the offending event stands alone.
    fn isolate(&mut self, batch: Batch, status: u16, counter: fn(&mut DropCounts) -> &mut u64) {
        if batch.len() <= 1 {
            tracing::error!(target: "actix_telemetry::delivery", uuid = ?batch.events.first().map(|e| e.uuid), status, "backend rejected an event; dropping it");
            *counter(&mut self.dropped) += batch.len() as u64;
            self.forget(&batch.seqs, batch.held_bytes, Resolution::Dropped);
            return;
        }
        let (first, second) = batch.split();
        self.retry.push_front(second);
        self.retry.push_front(first);
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

    fn oldest_held(&self) -> Option<u64> {
        let queued = self.queue.front().map(|q| q.seq);
        let waiting = self.retry.iter().filter_map(Batch::min_seq).min();
        let flying = self
            .in_flight
            .values()
            .filter_map(|f| f.batch.min_seq())
            .min();
        [queued, waiting, flying].into_iter().flatten().min()
    }

    fn answer_completed_flushes(&mut self) {
        if !self.flushes.is_empty() {
            let oldest = self.oldest_held();
            self.flushes
                .answer_completed(oldest, self.spooling.own_settled());
        }
    }

    fn held_up_to(&self, upto: u64) -> u64 {
        let queued = self.queue.iter().take_while(|q| q.seq <= upto).count();
        let batched = self
            .retry
            .iter()
            .chain(self.in_flight.values().map(|f| &f.batch))
            .map(|b| b.seqs.iter().filter(|s| **s <= upto).count())
            .sum::<usize>();
        (queued + batched) as u64
    }

    /// A flush of every event taken in so far; its id for [`expire_flush`](Self::expire_flush).
    pub fn start_flush(
        &mut self,
        deadline: Option<Instant>,
        drop_at_timeout: bool,
        reply: oneshot::Sender<FlushReport>,
    ) -> u64 {
        // Events on disk only are part of what the flush waits for: bring them in first.
        self.read_back();
        let upto = self.next_seq - 1;
        self.flush_through = self.flush_through.max(upto);
        let spill_mark = self.spooling.spilled_total();
        let id = self
            .flushes
            .add(upto, spill_mark, deadline, drop_at_timeout, reply);
        self.answer_completed_flushes();
        id
    }

    /// The deadlines of the flushes still waiting (to set their timers again after a
    /// restart).
    pub fn flush_deadlines(&self) -> Vec<(u64, Instant)> {
        self.flushes.deadlines()
    }

    /// Flush `id` reached its deadline: answered with what is still pending (and, for a
    /// shutdown, with everything still held abandoned to the spool or dropped).
    pub fn expire_flush(&mut self, id: u64) {
        let Some(mut flush) = self.flushes.expire(id) else {
            return;
        };
        flush.report.pending = self.held_up_to(flush.upto)
            + flush.spill_mark.saturating_sub(self.spooling.own_settled());
        if flush.drop_at_timeout {
            let (spooled, dropped) = self.abandon_everything();
            flush.report.spooled = spooled;
            flush.report.pending = spooled + dropped;
        }
        if let Some(reply) = flush.reply.take() {
            let _ = reply.send(flush.report);
        }
        // Abandoning may have completed other flushes.
        self.answer_completed_flushes();
    }

    /// At a shutdown deadline: what is still held stays in the spool, or is dropped and
    /// counted when it is not on disk. Returns (spooled, dropped).
    fn abandon_everything(&mut self) -> (u64, u64) {
        let mut seqs: Vec<u64> = self.queue.iter().map(|q| q.seq).collect();
        for batch in self
            .retry
            .drain(..)
            .chain(self.in_flight.drain().map(|(_, f)| f.batch))
        {
            seqs.extend(batch.seqs);
        }
        self.queue.clear();
        self.queue_encoded_bytes = 0;
        self.held_events = 0;
        self.held_bytes = 0;
        // Write what is pending first, so that "spooled" counts only what is on disk.
        self.write_spool();
        let left = self.spooling.abandon(&seqs);
        let dropped = seqs.len() as u64 - left.held_spooled + left.lost;
        self.dropped.shutdown += dropped;
        self.spooling.sync_now();
        let spooled = left.held_spooled + left.disk_only;
        if spooled + dropped > 0 {
            tracing::warn!(
                target: "actix_telemetry::delivery",
                spooled,
                dropped,
                "shutdown deadline passed with events undelivered"
            );
        }
        (spooled, dropped)
    }

    /// Hands what the spool buffered to the operating system (at the end of a mailbox turn).
    pub fn write_spool(&mut self) {
        let lost = self.spooling.write();
        if lost.failed + lost.full > 0 {
            self.dropped.spool_failed += lost.failed;
            self.dropped.spool_full += lost.full;
            self.answer_completed_flushes();
        }
    }

    /// Whether the spool has buffered records or acknowledgements.
    pub fn spool_dirty(&self) -> bool {
        self.spooling.is_dirty()
    }

    /// A handle to sync the spool to the device (off the actor thread).
    pub fn spool_sync_handle(&self) -> Option<std::fs::File> {
        self.spooling.sync_handle()
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
        // So that `spooled` counts only records the operating system already has.
        self.write_spool();
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

/// The longest pause a refusing backend gets between probes by default.
pub(crate) const DEFAULT_REFUSED_RETRY: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests;
