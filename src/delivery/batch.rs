//! Events as a sink holds them: queued one by one, or cut into a batch that waits for a retry
//! or is on the wire.

use std::sync::Arc;

use crate::event::EncodedEvent;

/// Bytes of bookkeeping per held event on top of [`EncodedEvent::held_bytes`] (its sequence
/// number).
pub(crate) const SEQ_BYTES: usize = std::mem::size_of::<u64>();

/// Memory one held event costs.
pub(crate) fn held_size(event: &EncodedEvent) -> usize {
    event.held_bytes() + SEQ_BYTES
}

/// Whether `event` happened before `oldest_ms` (milliseconds since the epoch).
pub(crate) fn too_old(event: &EncodedEvent, oldest_ms: u64) -> bool {
    event.timestamp_ms().is_some_and(|t| t < oldest_ms)
}

/// One queued event and its place in the sink's order.
#[derive(Debug)]
pub(crate) struct Queued {
    pub seq: u64,
    pub event: EncodedEvent,
}

/// Events sent together; kept until the backend's answer arrives.
#[derive(Debug)]
pub(crate) struct Batch {
    pub events: Arc<[EncodedEvent]>,
    /// Sequence numbers, parallel to `events`.
    pub seqs: Vec<u64>,
    /// Failed attempts so far.
    pub attempts: u32,
    pub held_bytes: usize,
}

impl Batch {
    pub fn new(events: Vec<EncodedEvent>, seqs: Vec<u64>, attempts: u32) -> Self {
        let held_bytes = events.iter().map(held_size).sum();
        Batch {
            events: events.into(),
            seqs,
            attempts,
            held_bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn min_seq(&self) -> Option<u64> {
        self.seqs.first().copied()
    }

    /// Two halves, for isolating a poison event.
    pub fn split(self) -> (Batch, Batch) {
        let mid = self.len() / 2;
        let (a, b) = self.events.split_at(mid);
        (
            Batch::new(a.to_vec(), self.seqs[..mid].to_vec(), self.attempts),
            Batch::new(b.to_vec(), self.seqs[mid..].to_vec(), self.attempts),
        )
    }

    /// The events of this batch recorded at or before `oldest_ms` (milliseconds since the
    /// epoch), which have outlived the configured age.
    pub fn expired(&self, oldest_ms: u64) -> Vec<usize> {
        self.events
            .iter()
            .enumerate()
            .filter(|(_, e)| too_old(e, oldest_ms))
            .map(|(i, _)| i)
            .collect()
    }

    /// This batch without the events at `indices` (ascending).
    pub fn without(self, indices: &[usize]) -> (Batch, Vec<u64>) {
        let mut keep_events = Vec::with_capacity(self.len() - indices.len());
        let mut keep_seqs = Vec::with_capacity(keep_events.capacity());
        let mut gone = Vec::with_capacity(indices.len());
        let mut skip = indices.iter().peekable();
        for (i, (event, seq)) in self.events.iter().zip(&self.seqs).enumerate() {
            if skip.peek() == Some(&&i) {
                skip.next();
                gone.push(*seq);
            } else {
                keep_events.push(event.clone());
                keep_seqs.push(*seq);
            }
        }
        (Batch::new(keep_events, keep_seqs, self.attempts), gone)
    }
}
