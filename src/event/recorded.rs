//! An event as the Recorder accepted it: its name, its properties already serialized, and
//! who it is about when that is not the process.

use std::time::SystemTime;

use serde_json::{Map, Value};
use tokio::time::Instant;
use uuid::Uuid;

use crate::event_identity::EventIdentity;
use crate::properties::Properties;

/// An event as the Recorder accepted it, before enrichment.
///
/// Its properties are serialized at once: a backlog of events waiting in mailboxes then costs
/// a short string each instead of a map of JSON values, and the Collator writes them out as
/// they are.
#[derive(Debug)]
pub(crate) struct RecordedEvent {
    pub name: String,
    properties: Properties,
    pub timestamp: SystemTime,
    pub uuid: Uuid,
    /// When the Recorder accepted it: the system snapshot attached must not be older than the
    /// configured age relative to this instant.
    pub received_at: Instant,
    /// Who this event alone is about, when not the process's identity.
    pub identity: Option<Box<EventIdentity>>,
}

impl RecordedEvent {
    pub fn new(
        name: String,
        properties: Properties,
        timestamp: SystemTime,
        uuid: Uuid,
        received_at: Instant,
    ) -> Self {
        RecordedEvent {
            name,
            properties,
            timestamp,
            uuid,
            received_at,
            identity: None,
        }
    }

    /// The distinct id of the event's own user, if it has one.
    pub fn owner(&self) -> Option<&str> {
        self.properties.owner()
    }

    /// Moves the event's own identity into its properties (`$set`, `$set_once`, and `$groups`
    /// as `process_groups` with the event's groups over them). Its distinct id is in the
    /// properties already: the Recorder put it there.
    pub fn take_identity(&mut self, process_groups: &std::collections::BTreeMap<String, String>) {
        let Some(identity) = self.identity.take() else {
            return;
        };
        let identity = *identity;
        if !identity.groups.is_empty() {
            let mut groups = process_groups.clone();
            groups.extend(identity.groups);
            let groups: Map<String, Value> = groups
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            self.properties.insert("$groups", Value::Object(groups));
        }
        if !identity.set.is_empty() {
            self.properties.insert("$set", Value::Object(identity.set));
        }
        if !identity.set_once.is_empty() {
            self.properties
                .insert("$set_once", Value::Object(identity.set_once));
        }
    }

    /// The properties' members, without the braces.
    pub fn members(&self) -> &str {
        self.properties.members()
    }

    /// The properties themselves.
    pub fn own_properties(&self) -> &Properties {
        &self.properties
    }

    /// The properties as a map again (for a sink that filters them).
    pub fn properties(&self) -> Map<String, Value> {
        self.properties.to_map()
    }
}
