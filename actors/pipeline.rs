//! How the started actors are wired together: the addresses the Recorder (and the counters'
//! fast lane) reach the others by ([`Pipeline`], one [`SinkActors`] per sink), and each sink as
//! the Collator sees it ([`Lane`]). `src/runtime.rs` builds them when it starts the actors.

use actix::prelude::*;

use crate::actors::collator::Collator;
use crate::actors::configuration_proxy::ConfigurationProxy;
use crate::actors::submitter::Submitter;
use crate::actors::system_snapshotter::SystemSnapshotter;
use crate::actors::transport::Transport;
use crate::control::CounterSources;
use crate::event::{EncodedEvent, SharedProperties};
use crate::filter::PropertyFilter;
use crate::messages::{Enqueue, ReportCounters};
use crate::pressure::Crowding;
use crate::state::Saver;

/// The Submitter and Transport of one sink.
#[derive(Clone, Debug)]
pub(crate) struct SinkActors {
    pub name: String,
    pub submitter: Addr<Submitter>,
    pub transport: Addr<Transport>,
    /// Set by the Submitter while the intake should hold back for it.
    pub crowding: Crowding,
}

/// The addresses of the other actors.
#[derive(Clone, Debug)]
pub(crate) struct Pipeline {
    pub collator: Addr<Collator>,
    /// The primary sink first.
    pub sinks: Vec<SinkActors>,
    pub configuration: Addr<ConfigurationProxy>,
    pub snapshotter: Addr<SystemSnapshotter>,
    /// Writes identity and flags to the state directory, if there is one.
    pub saver: Option<Saver>,
}

/// One sink as the Collator sees it: what it may receive, and where its events go.
#[derive(Debug)]
pub(crate) struct Lane {
    pub filter: PropertyFilter,
    pub submitter: Addr<Submitter>,
    /// The shared properties that pass the filter (`None` when they must be rebuilt).
    pub shared: Option<SharedProperties>,
    /// Events encoded for this sink and not sent yet: they go to its Submitter together.
    pub outgoing: Vec<EncodedEvent>,
}

impl Lane {
    pub fn new(filter: PropertyFilter, submitter: Addr<Submitter>) -> Self {
        Lane {
            filter,
            submitter,
            shared: None,
            outgoing: Vec::new(),
        }
    }

    /// Sends the events encoded so far to the Submitter, in one message.
    pub fn forward(&mut self) {
        if !self.outgoing.is_empty() {
            self.submitter
                .do_send(Enqueue(std::mem::take(&mut self.outgoing)));
        }
    }
}

impl SinkActors {
    /// The sink's two actors, as the counters' lane asks them.
    pub fn counter_sources(&self) -> [Recipient<ReportCounters>; 2] {
        [
            self.submitter.clone().recipient(),
            self.transport.clone().recipient(),
        ]
    }
}

impl Pipeline {
    /// Every actor after the Recorder, as the counters' lane asks them.
    pub fn counter_sources(&self) -> CounterSources {
        CounterSources {
            shared: vec![
                self.collator.clone().recipient(),
                self.configuration.clone().recipient(),
                self.snapshotter.clone().recipient(),
            ],
            sinks: self.sinks.iter().map(SinkActors::counter_sources).collect(),
        }
    }
}
