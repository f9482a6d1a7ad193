//! Flushes waiting for their events: each covers the events queued before it began, counts how
//! they ended, and is answered once none of them is held any more (or at its deadline).

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::stats::FlushReport;

/// How events left a sink for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// The backend acknowledged them.
    Delivered,
    /// Dropped and counted by cause.
    Dropped,
}

#[derive(Debug)]
struct PendingFlush {
    id: u64,
    /// Covers the events with sequence numbers up to this one.
    upto: u64,
    /// And the events spilled to disk before it began: the first `spill_mark` of them.
    spill_mark: u64,
    deadline: Option<Instant>,
    report: FlushReport,
    drop_at_timeout: bool,
    reply: Option<oneshot::Sender<FlushReport>>,
}

/// A flush whose deadline passed, to be answered by the caller.
#[derive(Debug)]
pub(crate) struct Expired {
    pub upto: u64,
    pub spill_mark: u64,
    pub report: FlushReport,
    pub drop_at_timeout: bool,
    pub reply: Option<oneshot::Sender<FlushReport>>,
}

/// Every flush waiting in one sink.
#[derive(Debug, Default)]
pub(crate) struct Flushes {
    pending: Vec<PendingFlush>,
    next_id: u64,
}

impl Flushes {
    /// A flush of the events up to `upto`; its id, for [`expire`](Flushes::expire).
    pub fn add(
        &mut self,
        upto: u64,
        spill_mark: u64,
        deadline: Option<Instant>,
        drop_at_timeout: bool,
        reply: oneshot::Sender<FlushReport>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.push(PendingFlush {
            id,
            upto,
            spill_mark,
            deadline,
            report: FlushReport::answered(),
            drop_at_timeout,
            reply: Some(reply),
        });
        id
    }

    /// The deadlines of the flushes still waiting, by id.
    pub fn deadlines(&self) -> Vec<(u64, Instant)> {
        self.pending
            .iter()
            .filter_map(|f| f.deadline.map(|d| (f.id, d)))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Counts events that left for good in every flush that covers them.
    pub fn account(&mut self, seqs: &[u64], how: Resolution) {
        for flush in &mut self.pending {
            let covered = seqs.iter().filter(|s| **s <= flush.upto).count() as u64;
            match how {
                Resolution::Delivered => flush.report.delivered += covered,
                Resolution::Dropped => flush.report.dropped += covered,
            }
        }
    }

    /// A spilled event came back into memory as `seq`; it is the `settled`-th spilled event
    /// to settle. Every flush that began after it was spilled now waits for `seq`.
    pub fn spilled_came_back(&mut self, seq: u64, settled: u64) {
        for flush in &mut self.pending {
            if settled <= flush.spill_mark {
                flush.upto = flush.upto.max(seq);
            }
        }
    }

    /// Answers the flushes none of whose events is held any more (`oldest`: the oldest
    /// sequence number still held; `own_settled`: how many spilled events are settled).
    pub fn answer_completed(&mut self, oldest: Option<u64>, own_settled: u64) {
        self.pending.retain_mut(|flush| {
            let done = oldest.is_none_or(|o| o > flush.upto) && own_settled >= flush.spill_mark;
            if done && let Some(reply) = flush.reply.take() {
                let _ = reply.send(flush.report);
            }
            !done
        });
    }

    /// Takes flush `id` out, if it is still waiting.
    pub fn expire(&mut self, id: u64) -> Option<Expired> {
        let index = self.pending.iter().position(|f| f.id == id)?;
        let flush = self.pending.swap_remove(index);
        Some(Expired {
            upto: flush.upto,
            spill_mark: flush.spill_mark,
            report: flush.report,
            drop_at_timeout: flush.drop_at_timeout,
            reply: flush.reply,
        })
    }
}
