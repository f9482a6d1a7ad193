//! What each answer of the backend does to a batch: delivered, retried later, partly taken,
//! split to isolate a poison event, or refused for good.

use std::time::Duration;

use tokio::time::Instant;

use super::batch::{Batch, held_size};
use super::flushes::Resolution;
use super::health::SendKind;
use super::{InFlight, SinkCore};
use crate::stats::DropCounts;
use crate::transport::DeliveryOutcome;

impl SinkCore {
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
}
