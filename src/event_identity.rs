//! Who one event is about, when that is not the process's identity: a service serving many
//! users records each request's events for that request's user, without relabelling anything
//! else the process records.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::json::{PropertyValue, insert_checked};

/// The longest distinct id an event may carry (PostHog truncates longer ones).
pub const MAX_DISTINCT_ID_BYTES: usize = 200;

/// The identity of one event: its distinct id, the groups it belongs to and person properties
/// to set with it. Unset parts fall back to the process's identity (its distinct id, its
/// groups); the process's identity itself never changes.
///
/// ```
/// use actix_telemetry::{EventIdentity, Record};
/// let identity = EventIdentity::user("user-42").group("company", "acme").set("plan", "pro");
/// let event = Record::new("invoice_paid").identity(identity);
/// assert!(event.identity.is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct EventIdentity {
    /// The user this event is about; `None`: the process's distinct id.
    pub distinct_id: Option<String>,
    /// Group type → key, added to (and winning over) the process's groups in `$groups`.
    pub groups: BTreeMap<String, String>,
    /// Person properties to set with this event (`$set`).
    pub set: Map<String, Value>,
    /// Person properties to set with this event if not set yet (`$set_once`).
    pub set_once: Map<String, Value>,
    /// Values refused on the way in.
    pub(crate) refused: u32,
}

impl EventIdentity {
    /// An identity for user `distinct_id`.
    pub fn user(distinct_id: impl Into<String>) -> Self {
        EventIdentity {
            distinct_id: Some(distinct_id.into()),
            ..EventIdentity::default()
        }
    }

    /// Adds group `group_type` = `key`.
    pub fn group(mut self, group_type: impl Into<String>, key: impl Into<String>) -> Self {
        self.groups.insert(group_type.into(), key.into());
        self
    }

    /// Adds a `$set` person property (refused as by [`Identify::set`](crate::Identify::set)).
    pub fn set(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        insert_checked(&mut self.set, &mut self.refused, key, value);
        self
    }

    /// Adds a `$set_once` person property (refused as by [`Identify::set`](crate::Identify::set)).
    pub fn set_once(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        insert_checked(&mut self.set_once, &mut self.refused, key, value);
        self
    }
}
