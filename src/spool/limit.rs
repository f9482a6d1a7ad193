//! The spool's size limit: the oldest segments go first, and what each removal cost (events
//! the caller still holds, spilled events never read back, an earlier run's events) is told
//! apart.

use super::acks::Acks;
use super::layout::{acks_path, segment_path};
use super::record::{self, Found};
use super::segment::Pending;
use super::{Removed, Spool};
use crate::files::read_private;

impl Spool {
    /// Removes the oldest segments until the spool fits its size limit. The segment being
    /// written goes only if it alone is over the limit.
    pub fn enforce_limit(&mut self) -> Removed {
        let mut removed = Removed::default();
        while self.total_bytes > self.max_bytes {
            let oldest = self
                .segments
                .keys()
                .copied()
                .find(|id| Some(*id) != self.writing);
            let Some(oldest) = oldest else {
                if self.writing.is_none() {
                    break;
                }
                self.seal_writing();
                continue;
            };
            let earlier = self
                .segments
                .get(&oldest)
                .is_some_and(|s| s.unread && s.nonce.is_none());
            let (events, unread) = self.events_held(oldest);
            if earlier {
                removed.earlier_lost += events;
            } else if unread {
                removed.unread_lost += events;
            } else {
                removed.segments.push(oldest);
            }
            self.overflowed += events;
            self.remove_segment(oldest);
        }
        removed
    }

    /// How many events not acknowledged segment `id` holds, and whether it is unread.
    fn events_held(&self, id: u64) -> (u64, bool) {
        let Some(segment) = self.segments.get(&id) else {
            return (0, false);
        };
        if segment.unread && segment.nonce.is_none() {
            return (self.count_earlier(id), true);
        }
        let pending: u64 = self
            .pending
            .iter()
            .filter(|b| b.segment == id)
            .map(Pending::unacked)
            .sum();
        let flying: u64 = self.in_flight_live(id);
        (segment.live + pending + flying, segment.unread)
    }

    /// The events not acknowledged in an earlier run's segment, from its block headers (so a
    /// block that is damaged counts too: it is removed unread either way).
    fn count_earlier(&self, id: u64) -> u64 {
        let bytes = read_private(&segment_path(&self.dir, id)).unwrap_or_default();
        let mut acked = Acks::default();
        acked.extend(&read_private(&acks_path(&self.dir, id)).unwrap_or_default());
        let mut nonce = None;
        let mut events = 0;
        for found in record::walk(&bytes) {
            let (Found::Block(header, _) | Found::Damaged(header)) = found else {
                continue;
            };
            let nonce = *nonce.get_or_insert(header.nonce);
            let seqs = header.first_seq..header.first_seq + u64::from(header.count);
            events += seqs.filter(|seq| !acked.contains(nonce, *seq)).count() as u64;
        }
        events
    }
}
