//! Flushes waiting for their events: each covers the events queued before it began, counts how
//! they ended, and is answered once none of them is held any more (or at its deadline).

use tokio::sync::oneshot;

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
    report: FlushReport,
    drop_at_timeout: bool,
    reply: Option<oneshot::Sender<FlushReport>>,
}

/// A flush whose deadline passed, to be answered by the caller.
#[derive(Debug)]
pub(crate) struct Expired {
    pub upto: u64,
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
        drop_at_timeout: bool,
        reply: oneshot::Sender<FlushReport>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.push(PendingFlush {
            id,
            upto,
            report: FlushReport::default(),
            drop_at_timeout,
            reply: Some(reply),
        });
        id
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

    /// Answers the flushes none of whose events is held any more (`oldest`: the oldest
    /// sequence number still held).
    pub fn answer_completed(&mut self, oldest: Option<u64>) {
        self.pending.retain_mut(|flush| {
            let done = oldest.is_none_or(|o| o > flush.upto);
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
            report: flush.report,
            drop_at_timeout: flush.drop_at_timeout,
            reply: flush.reply,
        })
    }
}
