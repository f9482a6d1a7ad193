//! The Collator's queue of work: everything that must keep its order with the events around it,
//! and which of it needs a fresh snapshot before it can go on.

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::checkin::CheckinRequest;
use crate::event::RecordedEvent;
use crate::messages::{ChangeIdentity, FeatureFlagCalled, FlushRequest, IdentityChange};

/// Work that waits its turn behind the events before it.
#[derive(Debug)]
pub(super) enum Work {
    Event(RecordedEvent),
    Change(ChangeIdentity),
    FlagCalled(FeatureFlagCalled),
    Flush(FlushRequest),
    /// Server-side targeting needs the host facts too, so a check-in waits for a snapshot.
    Checkin(oneshot::Sender<CheckinRequest>, Instant),
}

impl Work {
    /// When the Recorder took it, for work that becomes an event and so needs a snapshot.
    pub(super) fn needs_snapshot_since(&self) -> Option<Instant> {
        match self {
            Work::Event(e) => Some(e.received_at),
            Work::Change(c) => match c.change {
                IdentityChange::SetFact(_)
                | IdentityChange::AddGroup(_)
                | IdentityChange::Reset => None,
                _ => Some(c.stamp.received_at),
            },
            Work::FlagCalled(f) => Some(f.stamp.received_at),
            Work::Checkin(_, asked) => Some(*asked),
            Work::Flush(_) => None,
        }
    }
}
