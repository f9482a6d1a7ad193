//! Draining one sink on request: starting a flush, answering the flushes that completed, and
//! at a deadline reporting what is still pending (for a shutdown, leaving it in the spool or
//! dropping it). The bookkeeping of each flush is [`Flushes`](super::flushes::Flushes).

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::SinkCore;
use super::batch::Batch;
use crate::stats::FlushReport;

impl SinkCore {
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

    pub(super) fn answer_completed_flushes(&mut self) {
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
        self.write_spool_now();
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
}
