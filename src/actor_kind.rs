//! The names of the six actors, sets of them, and the faults a test may inject into one: a
//! leaf that the counters ([`crate::stats`]) and supervision both name, without either
//! depending on the other.

use std::fmt;

/// One of the six actors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// The Recorder.
    Recorder,
    /// The Collator.
    Collator,
    /// The SystemSnapshotter.
    SystemSnapshotter,
    /// The Submitter.
    Submitter,
    /// The Transport.
    Transport,
    /// The ConfigurationProxy.
    ConfigurationProxy,
}

impl ActorKind {
    /// All six, in pipeline order.
    pub const ALL: [ActorKind; 6] = [
        ActorKind::Recorder,
        ActorKind::Collator,
        ActorKind::SystemSnapshotter,
        ActorKind::Submitter,
        ActorKind::Transport,
        ActorKind::ConfigurationProxy,
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A set of actors (for reporting which are degraded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActorSet(u8);

impl ActorSet {
    /// Whether `actor` is in the set.
    pub fn contains(&self, actor: ActorKind) -> bool {
        self.0 & actor.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Adds `actor`.
    pub fn insert(&mut self, actor: ActorKind) {
        self.0 |= actor.bit();
    }

    /// Every actor in both sets.
    pub fn union(self, other: ActorSet) -> ActorSet {
        ActorSet(self.0 | other.0)
    }

    /// The actors in the set.
    pub fn iter(&self) -> impl Iterator<Item = ActorKind> + '_ {
        ActorKind::ALL.into_iter().filter(|a| self.contains(*a))
    }
}

/// A fault to inject into an actor, to test supervision (feature `fault-injection`).
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Panic when the next message arrives (the message itself is still handled afterwards).
    Panic,
    /// Stop itself when the next message arrives, as on a poisoned client: the supervisor
    /// restarts it and it rebuilds what it owns.
    Stop,
    /// Panic inside the next future or task the actor starts (a delivery, a check-in, a
    /// snapshot, a flush's aggregation), outside any handler.
    PanicInTask,
    /// Panic while handling the next message, as a bug in a handler would: the actor is
    /// restarted and that message is lost, with any answer it was to carry.
    PanicLosingMessage,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_sets() {
        let mut set = ActorSet::default();
        assert!(set.is_empty());
        set.insert(ActorKind::Transport);
        let both = set.union({
            let mut s = ActorSet::default();
            s.insert(ActorKind::Recorder);
            s
        });
        assert_eq!(
            both.iter().collect::<Vec<_>>(),
            [ActorKind::Recorder, ActorKind::Transport]
        );
        assert!(!set.contains(ActorKind::Recorder));
    }
}

/// Recorder → any actor: arm a fault for the next message (beside [`Fault`], so that the
/// handler every actor gets from `supervision` names no other module).
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, actix::Message)]
#[rtype(result = "()")]
pub(crate) struct ArmFault(pub Fault);
