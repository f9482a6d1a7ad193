//! The **Submitter** actor: the queue between enrichment and the wire.
//!
//! - Owns: every event between the Collator and the backend's acknowledgement — the queue, the
//!   batches waiting for a retry and the batches in flight — plus the retry delay and the
//!   flushes waiting for their events.
//! - Takes: `Enqueue` and `ForwardFlush` from the Collator, `ReportCounters`, and
//!   `BatchOutcome` (its own message: the Transport's answer to a batch, sent on by the task
//!   that awaited it).
//! - Sends: `DeliverBatch` to the Transport, and keeps each batch until its outcome arrives.
//!
//! Batches are cut by event count and body bytes, and by the flush interval for a partial one.
//! Memory is bounded by the number of events held and the bytes they hold; past either limit
//! the overflow policy drops (and counts) the oldest or the newest. Transient failures are
//! retried after an exponentially growing, jittered delay, never sooner than a `Retry-After`;
//! a batch answered 400 or 413 is split in halves until the poison event stands alone, and that
//! one is dropped and counted while the rest is delivered.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::event::EncodedEvent;
use crate::messages::{DeliverBatch, Enqueue, FlushRequest, ForwardFlush, ReportCounters};
use crate::retry_delay::{BackoffPolicy, RetryDelay};
use crate::spool::{Spool, SpoolRef};
use crate::stats::{DropCounts, FlushReport, Stats};
use crate::supervision::{ActorKind, Guard, Guarded, guarded};
use crate::transport::DeliveryOutcome;
use crate::turns::Turns;

/// What to drop when the queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Drop the oldest held events (whole retry batches first): recent data is usually worth
    /// more, and the oldest have already had their chances.
    #[default]
    DropOldest,
    /// Refuse the new event.
    DropNewest,
}

/// Batching, memory and retry settings.
#[derive(Clone, Debug)]
pub struct SubmitterConfig {
    /// Cut a batch at this many events.
    pub max_batch_events: usize,
    /// Cut a batch before its body would exceed this many bytes (uncompressed).
    pub max_batch_bytes: usize,
    /// Send a partial batch when its oldest event has waited this long.
    pub flush_interval: Duration,
    /// Hold at most this many events.
    pub max_queue_events: usize,
    /// Hold at most this many bytes of events.
    pub max_queue_bytes: usize,
    /// What to drop when a limit is reached.
    pub overflow: OverflowPolicy,
    /// Batches on the wire at once.
    pub max_in_flight: usize,
    /// Give up on a batch after this many failed attempts (`None`: keep it until overflow).
    pub max_attempts: Option<u32>,
    /// How retry delays grow.
    pub backoff: BackoffPolicy,
}

impl Default for SubmitterConfig {
    fn default() -> Self {
        SubmitterConfig {
            max_batch_events: 1000,
            max_batch_bytes: 4 * 1024 * 1024,
            flush_interval: Duration::from_secs(5),
            max_queue_events: 200_000,
            max_queue_bytes: 48 * 1024 * 1024,
            overflow: OverflowPolicy::DropOldest,
            max_in_flight: 4,
            max_attempts: Some(12),
            backoff: BackoffPolicy::default(),
        }
    }
}

/// Bytes of bookkeeping per held event on top of [`EncodedEvent::held_bytes`] (its sequence
/// number).
const SEQ_BYTES: usize = std::mem::size_of::<u64>();

#[derive(Debug)]
struct Queued {
    seq: u64,
    event: EncodedEvent,
}

/// Events sent together; the Submitter keeps it until the Transport answers.
#[derive(Debug)]
struct Batch {
    events: Arc<[EncodedEvent]>,
    /// Sequence numbers, parallel to `events`, for flush accounting.
    seqs: Vec<u64>,
    attempts: u32,
    held_bytes: usize,
}

impl Batch {
    fn new(events: Vec<EncodedEvent>, seqs: Vec<u64>, attempts: u32) -> Self {
        let held_bytes = events.iter().map(|e| e.held_bytes() + SEQ_BYTES).sum();
        Batch {
            events: events.into(),
            seqs,
            attempts,
            held_bytes,
        }
    }

    fn len(&self) -> usize {
        self.seqs.len()
    }

    fn min_seq(&self) -> Option<u64> {
        self.seqs.iter().copied().min()
    }

    /// Two halves, for isolating a poison event.
    fn split(self) -> (Batch, Batch) {
        let mid = self.len() / 2;
        let (a, b) = self.events.split_at(mid);
        (
            Batch::new(a.to_vec(), self.seqs[..mid].to_vec(), self.attempts),
            Batch::new(b.to_vec(), self.seqs[mid..].to_vec(), self.attempts),
        )
    }
}

#[derive(Debug)]
struct PendingFlush {
    id: u64,
    /// Covers the events with sequence numbers up to this one.
    upto: u64,
    report: FlushReport,
    drop_at_timeout: bool,
    reply: Option<tokio::sync::oneshot::Sender<FlushReport>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    Delivered,
    Dropped,
}

/// Queues, batches and retries events. See the module documentation.
#[derive(Debug)]
pub struct Submitter {
    config: SubmitterConfig,
    transport: Recipient<DeliverBatch>,
    queue: VecDeque<Queued>,
    /// Sum of `encoded_len` over `queue`: decides when a batch is full by bytes.
    queue_encoded_bytes: usize,
    retry: VecDeque<Batch>,
    in_flight: HashMap<u64, Batch>,
    held_events: usize,
    held_bytes: usize,
    next_seq: u64,
    next_batch_id: u64,
    /// Events with a sequence number up to this one may leave in a partial batch.
    flush_through: u64,
    paused: bool,
    delay: RetryDelay,
    flushes: Vec<PendingFlush>,
    next_flush_id: u64,
    delivered: u64,
    batches_delivered: u64,
    retries: u64,
    dropped: DropCounts,
    guard: Guard,
    turns: Turns,
    /// Where queued events are kept durable, if anywhere.
    spool: Option<Spool>,
    /// The spool record of every held event that has one, by sequence number.
    spooled: HashMap<u64, SpoolRef>,
    spool_flush_scheduled: bool,
    spool_corrupt: u64,
    /// Records of an earlier run read back from the spool and not queued yet (at most one
    /// segment's worth).
    read_back: VecDeque<(SpoolRef, EncodedEvent)>,
}

/// How often acknowledgements reach the spool when no new event forces a write.
const SPOOL_ACK_INTERVAL: Duration = Duration::from_millis(100);
/// How often the spool is synced to the device.
const SPOOL_SYNC_INTERVAL: Duration = Duration::from_secs(1);

impl Submitter {
    pub(crate) fn new(
        config: SubmitterConfig,
        transport: Recipient<DeliverBatch>,
        spool: Option<Spool>,
    ) -> Self {
        let delay = RetryDelay::new(&config.backoff);
        let mut submitter = Submitter {
            config,
            transport,
            queue: VecDeque::new(),
            queue_encoded_bytes: 0,
            retry: VecDeque::new(),
            in_flight: HashMap::new(),
            held_events: 0,
            held_bytes: 0,
            next_seq: 1,
            next_batch_id: 0,
            flush_through: 0,
            paused: false,
            delay,
            flushes: Vec::new(),
            next_flush_id: 0,
            delivered: 0,
            batches_delivered: 0,
            retries: 0,
            dropped: DropCounts::default(),
            guard: Guard::new(ActorKind::Submitter),
            turns: Turns::default(),
            spool,
            spooled: HashMap::new(),
            spool_flush_scheduled: false,
            spool_corrupt: 0,
            read_back: VecDeque::new(),
        };
        submitter.read_back_spool();
        submitter
    }

    /// Queues events an earlier run left in the spool, to be sent at once, as far as they fit
    /// in half the queue's limits: the other half stays free for new events, and nothing is
    /// dropped to make room for the backlog. Called again whenever events leave the queue.
    fn read_back_spool(&mut self) {
        let mut queued = 0;
        loop {
            if self.read_back.is_empty() {
                let Some(replay) = self.spool.as_mut().and_then(Spool::read_back) else {
                    break;
                };
                self.spool_corrupt += replay.corrupt;
                for (at, json) in replay.records {
                    match EncodedEvent::from_spool(json) {
                        Some(event) => self.read_back.push_back((at, event)),
                        None => {
                            self.spool_corrupt += 1;
                            if let Some(spool) = &mut self.spool {
                                spool.ack(at);
                            }
                        }
                    }
                }
                continue;
            }
            let Some((_, event)) = self.read_back.front() else {
                break;
            };
            let size = event.held_bytes() + SEQ_BYTES;
            let room = self.held_events < self.config.max_queue_events / 2
                && self.held_bytes + size <= self.config.max_queue_bytes / 2;
            // An event larger than half the queue still goes, alone.
            if !room && self.held_events > 0 {
                break;
            }
            let Some((at, event)) = self.read_back.pop_front() else {
                break;
            };
            if let Some(seq) = self.admit(event) {
                self.spooled.insert(seq, at);
                queued += 1;
            } else if let Some(spool) = &mut self.spool {
                spool.ack(at);
            }
        }
        if queued > 0 {
            tracing::debug!(
                events = queued,
                "delivering events spooled by an earlier run"
            );
            self.flush_through = self.next_seq - 1;
        }
    }

    /// Queues `event` if the overflow policy lets it in; its sequence number if it did.
    fn admit(&mut self, event: EncodedEvent) -> Option<u64> {
        let size = event.held_bytes() + SEQ_BYTES;
        if !self.make_room(size) {
            self.dropped.overflow += 1;
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.held_events += 1;
        self.held_bytes += size;
        self.queue_encoded_bytes += event.encoded_len();
        self.queue.push_back(Queued { seq, event });
        Some(seq)
    }

    /// Writes `event` to the spool, if there is one.
    fn spool_event(&mut self, seq: u64, ctx: &mut Context<Self>) {
        let Some(spool) = &mut self.spool else {
            return;
        };
        let Some(queued) = self.queue.back() else {
            return;
        };
        let mut json = Vec::with_capacity(queued.event.encoded_len());
        queued.event.write_to(&mut json);
        if let Some(at) = spool.append(&json) {
            self.spooled.insert(seq, at);
        }
        let lost = spool.enforce_limit();
        if lost > 0 {
            tracing::warn!(
                events = lost,
                "spool full: the oldest spooled events are in memory only now"
            );
        }
        self.schedule_spool_flush(ctx);
    }

    /// Hands spooled records to the operating system at the end of this turn of the mailbox,
    /// so every event of a burst goes out in one write.
    fn schedule_spool_flush(&mut self, ctx: &mut Context<Self>) {
        if self.spool_flush_scheduled {
            return;
        }
        self.spool_flush_scheduled = true;
        ctx.run_later(Duration::ZERO, |act, _ctx| {
            act.spool_flush_scheduled = false;
            act.flush_spool();
        });
    }

    fn flush_spool(&mut self) {
        if let Some(spool) = &mut self.spool
            && let Err(error) = spool.flush()
        {
            tracing::warn!(%error, "cannot write the spool; events stay in memory");
        }
    }

    fn sync_spool(&mut self) {
        self.flush_spool();
        if let Some(file) = self.spool.as_ref().and_then(Spool::sync_handle) {
            tokio::task::spawn_blocking(move || {
                if let Err(error) = file.sync_data() {
                    tracing::warn!(%error, "cannot sync the spool");
                }
            });
        }
    }

    fn enqueue(&mut self, event: EncodedEvent, ctx: &mut Context<Self>) {
        let Some(seq) = self.admit(event) else {
            return;
        };
        self.spool_event(seq, ctx);
        self.pump(ctx);
    }

    /// Frees room for one more event of `size` bytes under the overflow policy; false if the
    /// new event must be dropped instead.
    fn make_room(&mut self, size: usize) -> bool {
        let fits = |s: &Self| {
            s.held_events < s.config.max_queue_events
                && s.held_bytes + size <= s.config.max_queue_bytes
        };
        if fits(self) {
            return true;
        }
        if self.config.overflow == OverflowPolicy::DropNewest {
            return false;
        }
        while !fits(self) {
            // Oldest first: batches waiting for a retry hold the oldest events. They go whole,
            // so an outage does not rebuild a batch for every new event.
            if let Some(batch) = self.retry.pop_front() {
                self.dropped.overflow += batch.len() as u64;
                self.forget(&batch.seqs, batch.held_bytes, Resolution::Dropped);
            } else if let Some(old) = self.queue.pop_front() {
                self.queue_encoded_bytes -= old.event.encoded_len();
                self.dropped.overflow += 1;
                self.forget(
                    &[old.seq],
                    old.event.held_bytes() + SEQ_BYTES,
                    Resolution::Dropped,
                );
            } else {
                // Everything held is on the wire; it cannot be taken back.
                return false;
            }
        }
        true
    }

    /// Sends batches while the Transport may take more.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while !self.paused && self.in_flight.len() < self.config.max_in_flight {
            let Some(batch) = self.retry.pop_front().or_else(|| self.cut_batch()) else {
                break;
            };
            self.send(batch, ctx);
        }
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

    fn send(&mut self, batch: Batch, ctx: &mut Context<Self>) {
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        let request = self.transport.send(DeliverBatch {
            events: batch.events.clone(),
        });
        self.in_flight.insert(id, batch);
        // The outcome comes back as a message, not as a future of this actor's context: actix
        // runs an actor's futures only once its mailbox is empty, so during a flood of
        // `Enqueue` the outcomes would wait behind it and nothing would leave the queue. As
        // messages they are handled in turn with the events.
        let submitter = ctx.address();
        actix::spawn(async move {
            let outcome = request
                .await
                .unwrap_or_else(|error| DeliveryOutcome::Retry {
                    after: None,
                    reason: format!("transport unavailable: {error}"),
                });
            submitter.do_send(BatchOutcome { id, outcome });
        });
    }

    fn on_outcome(&mut self, id: u64, outcome: DeliveryOutcome, ctx: &mut Context<Self>) {
        // Unknown ids belong to batches a shutdown already gave up on, or that a restart put
        // back in line.
        let Some(mut batch) = self.in_flight.remove(&id) else {
            return;
        };
        match outcome {
            DeliveryOutcome::Delivered => {
                self.delay.reset();
                self.delivered += batch.len() as u64;
                self.batches_delivered += 1;
                self.forget(&batch.seqs, batch.held_bytes, Resolution::Delivered);
            }
            DeliveryOutcome::Retry { after, reason } => {
                batch.attempts += 1;
                self.retries += 1;
                if self
                    .config
                    .max_attempts
                    .is_some_and(|max| batch.attempts >= max)
                {
                    tracing::error!(events = batch.len(), attempts = batch.attempts, %reason, "giving up on a batch");
                    self.dropped.retries_exhausted += batch.len() as u64;
                    self.forget(&batch.seqs, batch.held_bytes, Resolution::Dropped);
                } else {
                    let wait = self.delay.next_delay().max(after.unwrap_or_default());
                    tracing::warn!(events = batch.len(), attempt = batch.attempts, ?wait, %reason, "delivery failed; will retry");
                    self.retry.push_front(batch);
                    self.pause(wait, ctx);
                }
            }
            DeliveryOutcome::Rejected { status } => {
                self.isolate(batch, status, |d| &mut d.rejected);
            }
            DeliveryOutcome::TooLarge => {
                self.isolate(batch, 413, |d| &mut d.too_large);
            }
            DeliveryOutcome::Refused { status } => {
                tracing::error!(
                    events = batch.len(),
                    status,
                    "backend refused a batch; dropping it"
                );
                self.dropped.refused += batch.len() as u64;
                self.forget(&batch.seqs, batch.held_bytes, Resolution::Dropped);
            }
        }
        self.read_back_spool();
        self.pump(ctx);
    }

    /// Splits a batch the backend would not take, until the offending event stands alone.
    fn isolate(&mut self, batch: Batch, status: u16, counter: fn(&mut DropCounts) -> &mut u64) {
        if batch.len() <= 1 {
            tracing::error!(uuid = ?batch.events.first().map(|e| e.uuid), status, "backend rejected an event; dropping it");
            *counter(&mut self.dropped) += batch.len() as u64;
            self.forget(&batch.seqs, batch.held_bytes, Resolution::Dropped);
            return;
        }
        let (first, second) = batch.split();
        self.retry.push_front(second);
        self.retry.push_front(first);
    }

    fn pause(&mut self, wait: Duration, ctx: &mut Context<Self>) {
        if self.paused {
            return;
        }
        self.paused = true;
        ctx.run_later(wait, |act, ctx| {
            act.paused = false;
            guarded(act, ctx, Self::pump);
        });
    }

    /// Accounts for events that left the Submitter for good, and answers flushes they
    /// complete.
    fn forget(&mut self, seqs: &[u64], held_bytes: usize, how: Resolution) {
        self.held_events -= seqs.len();
        self.held_bytes -= held_bytes;
        if let Some(spool) = &mut self.spool {
            for seq in seqs {
                if let Some(at) = self.spooled.remove(seq) {
                    spool.ack(at);
                }
            }
        }
        for flush in &mut self.flushes {
            let covered = seqs.iter().filter(|s| **s <= flush.upto).count() as u64;
            match how {
                Resolution::Delivered => flush.report.delivered += covered,
                Resolution::Dropped => flush.report.dropped += covered,
            }
        }
        self.answer_completed_flushes();
    }

    fn oldest_held(&self) -> Option<u64> {
        let queued = self.queue.front().map(|q| q.seq);
        let waiting = self.retry.iter().filter_map(Batch::min_seq).min();
        let flying = self.in_flight.values().filter_map(Batch::min_seq).min();
        [queued, waiting, flying].into_iter().flatten().min()
    }

    fn answer_completed_flushes(&mut self) {
        if self.flushes.is_empty() {
            return;
        }
        let oldest = self.oldest_held();
        self.flushes.retain_mut(|flush| {
            let done = oldest.is_none_or(|o| o > flush.upto);
            if done && let Some(reply) = flush.reply.take() {
                let _ = reply.send(flush.report);
            }
            !done
        });
    }

    fn held_up_to(&self, upto: u64) -> u64 {
        let queued = self.queue.iter().take_while(|q| q.seq <= upto).count();
        let batched = self
            .retry
            .iter()
            .chain(self.in_flight.values())
            .map(|b| b.seqs.iter().filter(|s| **s <= upto).count())
            .sum::<usize>();
        (queued + batched) as u64
    }

    fn start_flush(&mut self, request: FlushRequest, ctx: &mut Context<Self>) {
        let upto = self.next_seq - 1;
        let id = self.next_flush_id;
        self.next_flush_id += 1;
        self.flush_through = self.flush_through.max(upto);
        if let Some(deadline) = request.deadline {
            // The deadline was set by the application: the time the request spent in mailboxes
            // on its way here already counts against it.
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            ctx.run_later(wait, move |act, ctx| {
                guarded(act, ctx, |act, ctx| act.expire_flush(id, ctx));
            });
        }
        self.flushes.push(PendingFlush {
            id,
            upto,
            report: FlushReport::answered(),
            drop_at_timeout: request.drop_at_timeout,
            reply: Some(request.reply),
        });
        self.answer_completed_flushes();
        self.pump(ctx);
    }

    fn expire_flush(&mut self, id: u64, _ctx: &mut Context<Self>) {
        let Some(index) = self.flushes.iter().position(|f| f.id == id) else {
            return;
        };
        let mut flush = self.flushes.swap_remove(index);
        flush.report.pending = self.held_up_to(flush.upto);
        if flush.drop_at_timeout {
            flush.report.spooled = self.abandon_everything();
        }
        if let Some(reply) = flush.reply.take() {
            let _ = reply.send(flush.report);
        }
        // Abandoning may have completed other flushes.
        self.answer_completed_flushes();
    }

    /// Recomputes the byte and event totals from what is held, in case a panic interrupted an
    /// update of them.
    fn recount(&mut self) {
        let batched = self.retry.iter().chain(self.in_flight.values());
        let (mut events, mut bytes) = (self.queue.len(), 0);
        for batch in batched {
            events += batch.len();
            bytes += batch.held_bytes;
        }
        bytes += self
            .queue
            .iter()
            .map(|q| q.event.held_bytes() + SEQ_BYTES)
            .sum::<usize>();
        self.held_events = events;
        self.held_bytes = bytes;
        self.queue_encoded_bytes = self.queue.iter().map(|q| q.event.encoded_len()).sum();
    }

    /// At a shutdown deadline: what is still held stays in the spool, or is dropped and
    /// counted when it has no spool record. Returns how many stay spooled.
    fn abandon_everything(&mut self) -> u64 {
        let mut seqs: Vec<u64> = self.queue.iter().map(|q| q.seq).collect();
        for batch in self
            .retry
            .drain(..)
            .chain(self.in_flight.drain().map(|(_, b)| b))
        {
            seqs.extend(batch.seqs);
        }
        self.queue.clear();
        self.queue_encoded_bytes = 0;
        self.held_events = 0;
        self.held_bytes = 0;
        let spooled_held = seqs.iter().filter(|s| self.spooled.contains_key(s)).count() as u64;
        let dropped = seqs.len() as u64 - spooled_held;
        // Read back but not queued yet: still in the spool, untouched.
        let spooled = spooled_held + self.read_back.len() as u64;
        self.read_back.clear();
        self.spooled.clear();
        self.dropped.shutdown += dropped;
        if let Some(spool) = &mut self.spool {
            if spool.has_unread() {
                tracing::info!(
                    "events an earlier run spooled, not read back yet, stay for the next run"
                );
            }
            // The next run delivers these: make sure they are on the device.
            if let Err(error) = spool.flush() {
                tracing::warn!(%error, "cannot write the spool at shutdown");
            }
            if let Some(file) = spool.sync_handle()
                && let Err(error) = file.sync_data()
            {
                tracing::warn!(%error, "cannot sync the spool at shutdown");
            }
        }
        if spooled + dropped > 0 {
            tracing::warn!(
                spooled,
                dropped,
                "shutdown deadline passed with events undelivered"
            );
        }
        spooled
    }
}

impl Actor for Submitter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Timers do not survive a restart, so they are set here rather than in `new`.
        ctx.run_interval(self.config.flush_interval, |act, ctx| {
            act.flush_through = act.flush_through.max(act.next_seq - 1);
            guarded(act, ctx, Self::pump);
        });
        if self.spool.is_some() {
            ctx.run_interval(SPOOL_ACK_INTERVAL, |act, _ctx| {
                if act.spool.as_ref().is_some_and(Spool::is_dirty) {
                    act.flush_spool();
                }
            });
            ctx.run_interval(SPOOL_SYNC_INTERVAL, |act, _ctx| act.sync_spool());
        }
        self.pump(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.flush_spool();
    }
}

impl Guarded for Submitter {
    fn guard(&mut self) -> &mut Guard {
        &mut self.guard
    }
}

impl Supervised for Submitter {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.guard.restarted();
        // Timers were futures of the stopped context: they are gone, and the pause they would
        // have ended ends now. In-flight batches go back to the front of the line rather than
        // wait for outcomes a panic may have come between (a batch may be delivered twice,
        // never lost); a late outcome for one of them is ignored.
        let flying: Vec<Batch> = self.in_flight.drain().map(|(_, b)| b).collect();
        for batch in flying {
            self.retry.push_front(batch);
        }
        self.paused = false;
        self.spool_flush_scheduled = false;
        self.recount();
    }
}

/// The Transport's answer for the batch sent as `id`.
#[derive(Message)]
#[rtype(result = "()")]
struct BatchOutcome {
    id: u64,
    outcome: DeliveryOutcome,
}

impl Handler<BatchOutcome> for Submitter {
    type Result = ();

    fn handle(&mut self, msg: BatchOutcome, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, ctx| {
            act.on_outcome(msg.id, msg.outcome, ctx)
        });
    }
}

impl Handler<Enqueue> for Submitter {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, ctx| act.enqueue(msg.0, ctx));
        self.turns.tick(ctx);
    }
}

impl Handler<ForwardFlush> for Submitter {
    type Result = ();

    fn handle(&mut self, msg: ForwardFlush, ctx: &mut Context<Self>) {
        guarded(self, ctx, |act, ctx| act.start_flush(msg.0, ctx));
    }
}

impl Handler<ReportCounters> for Submitter {
    type Result = MessageResult<ReportCounters>;

    fn handle(&mut self, _msg: ReportCounters, _ctx: &mut Context<Self>) -> Self::Result {
        // So that `spooled` counts only records the operating system already has.
        self.flush_spool();
        MessageResult(Stats {
            delivered: self.delivered,
            dropped: self.dropped,
            retries: self.retries,
            batches_delivered: self.batches_delivered,
            queue_depth: self.held_events as u64,
            queue_bytes: self.held_bytes as u64,
            spooled: self.spool.as_ref().map_or(0, Spool::live),
            spool_backlog_bytes: self.spool.as_ref().map_or(0, Spool::unread_bytes),
            spool_corrupt: self.spool_corrupt,
            spool_errors: self.spool.as_ref().map_or(0, |s| s.errors),
            spool_overflow: self.spool.as_ref().map_or(0, |s| s.overflowed),
            ..self.guard.stats()
        })
    }
}

crate::supervision::arm_fault_handler!(Submitter);
