//! The message that records an event: [`Record`], with its builder of properties and of who the
//! event alone is about.

use std::time::SystemTime;

use actix::prelude::*;

use crate::event_identity::EventIdentity;
use crate::json::{PropertyValue, insert_checked};
use crate::properties::Properties;

/// Records an event. Never waits on the network; send it with `do_send`.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::Record;
/// telemetry.events().record(
///     Record::new("report_exported").property("rows", 1200).distinct_id("user-42"),
/// );
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct Record {
    /// The event name (not empty, at most 200 bytes).
    pub name: String,
    /// The event's own properties; they win over every enriched property of the same name.
    pub properties: Properties,
    /// When it happened; [`Record::new`] takes the current time.
    pub timestamp: SystemTime,
    /// Who this event alone is about (a request's user); `None`: the process's identity.
    /// Boxed so that an event without one stays small while it waits in a mailbox.
    pub identity: Option<Box<EventIdentity>>,
}

impl Record {
    /// An event called `name`, happening now, with no properties of its own.
    pub fn new(name: impl Into<String>) -> Self {
        Record {
            name: name.into(),
            properties: Properties::new(),
            timestamp: SystemTime::now(),
            identity: None,
        }
    }

    /// Attributes this event alone to user `distinct_id` (the process's identity is unchanged).
    /// The id is kept in the allocation that holds the event's properties: an event with its
    /// own user costs no more allocations than one without.
    pub fn distinct_id(mut self, distinct_id: impl AsRef<str>) -> Self {
        self.properties.set_owner(distinct_id.as_ref());
        if let Some(identity) = &mut self.identity {
            identity.distinct_id = None;
        }
        self
    }

    /// Puts this event alone in group `group_type` = `key` (beside the process's groups).
    pub fn group(mut self, group_type: impl Into<String>, key: impl Into<String>) -> Self {
        self.identity_mut()
            .groups
            .insert(group_type.into(), key.into());
        self
    }

    /// Sets a person property with this event (`$set`).
    pub fn set(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        let identity = self.identity_mut();
        insert_checked(&mut identity.set, &mut identity.refused, key, value);
        self
    }

    /// Sets a person property with this event if not set yet (`$set_once`).
    pub fn set_once(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        let identity = self.identity_mut();
        insert_checked(&mut identity.set_once, &mut identity.refused, key, value);
        self
    }

    /// Replaces who this event is about.
    pub fn identity(mut self, mut identity: EventIdentity) -> Self {
        if let Some(id) = identity.distinct_id.take() {
            self.properties.set_owner(&id);
        }
        self.identity = Some(Box::new(identity));
        self
    }

    /// The event's own distinct id, if it has one ([`distinct_id`](Self::distinct_id), or an
    /// [`EventIdentity`]'s).
    pub fn own_distinct_id(&self) -> Option<&str> {
        self.properties.owner().or_else(|| {
            self.identity
                .as_ref()
                .and_then(|identity| identity.distinct_id.as_deref())
        })
    }

    fn identity_mut(&mut self) -> &mut EventIdentity {
        self.identity.get_or_insert_with(Box::default)
    }

    /// Adds one property (replacing an earlier one of the same name). A NaN, an infinity or a
    /// value nested deeper than [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH) is refused and
    /// counted in `Stats::invalid_values` (see [`Properties::insert`]).
    pub fn property(mut self, key: impl AsRef<str>, value: impl PropertyValue) -> Self {
        self.properties.insert(key, value);
        self
    }

    /// Replaces the properties (the event's own distinct id, if set, stays).
    pub fn properties(mut self, properties: impl Into<Properties>) -> Self {
        let mut properties = properties.into();
        if let Some(owner) = self.properties.owner() {
            properties.set_owner(owner);
        }
        self.properties = properties;
        self
    }

    /// Sets when the event happened.
    pub fn at(mut self, timestamp: SystemTime) -> Self {
        self.timestamp = timestamp;
        self
    }
}
