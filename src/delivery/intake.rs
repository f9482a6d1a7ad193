//! Taking events in: the bounded queue and its overflow policy, spilling to the spool when
//! memory is full, and bringing spilled events back while there is room.

use std::time::{SystemTime, UNIX_EPOCH};

use super::SinkCore;
use super::batch::{Queued, held_size, too_old};
use super::flushes::Resolution;
use crate::event::EncodedEvent;
use crate::queue_config::OverflowPolicy;

impl SinkCore {
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

    /// Moves events back from the spool into memory while three quarters of the queue's
    /// limits are free: a few batches' worth keeps the backend busy, so more would only cost
    /// memory. The rest stays for new events, and nothing is dropped to make room.
    pub fn read_back(&mut self) {
        let oldest_ms = self.oldest_allowed_ms();
        loop {
            let room = self.held_events < self.config.max_queue_events / 4
                && self.held_bytes < self.config.max_queue_bytes / 4;
            // An event larger than a quarter of the queue still goes, alone.
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
    pub(super) fn oldest_allowed_ms(&self) -> Option<u64> {
        if !self.spooling.is_on() {
            return None;
        }
        let cutoff = SystemTime::now().checked_sub(self.config.max_event_age)?;
        let ms = cutoff.duration_since(UNIX_EPOCH).ok()?.as_millis();
        u64::try_from(ms).ok()
    }
}
