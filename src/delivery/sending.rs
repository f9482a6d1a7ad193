//! Sending: cutting the next batch by count, bytes and the flush mark, when the backend's
//! health and the in-flight limit allow one.

use tokio::time::Instant;

use super::batch::Batch;
use super::health::HealthState;
use super::{InFlight, Outgoing, SinkCore};

impl SinkCore {
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
}
