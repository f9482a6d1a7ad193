//! The messages that change who later events are about and what they carry: facts, the user,
//! person and group properties, aliases, groups, and forgetting it all ([`Reset`]).

use actix::prelude::*;
use serde_json::{Map, Value};

use super::record::Record;
use crate::json::{PropertyValue, RefusedValue, checked, insert_checked};

/// Sets a fact: a property added to every later event (it wins over builder and correlation
/// facts of the same name).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::SetFact;
/// telemetry.recorder().do_send(SetFact::new("region", "eu-west-1"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct SetFact {
    /// Property name.
    pub key: String,
    /// Property value.
    pub value: Value,
    /// Why [`SetFact::new`] refused the value, if it did.
    refused: Option<RefusedValue>,
}

impl SetFact {
    /// Sets `key` to `value` on every later event. A NaN, an infinity or a value nested deeper
    /// than [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH) is refused: the fact is not set, and
    /// the refusal is counted in `Stats::invalid_values`.
    pub fn new(key: impl Into<String>, value: impl PropertyValue) -> Self {
        let (value, refused) = match checked(value) {
            Ok(value) => (value, None),
            Err(reason) => (Value::Null, Some(reason)),
        };
        SetFact {
            key: key.into(),
            value,
            refused,
        }
    }

    /// Why the value was refused, if it was.
    pub fn refused(&self) -> Option<RefusedValue> {
        self.refused
    }
}

/// Identifies the user: later events carry `distinct_id`, and an `$identify` event is sent with
/// `$set` and `$set_once`.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::Identify;
/// telemetry.recorder().do_send(Identify::new("user-42").set("plan", "pro"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct Identify {
    /// The user's id.
    pub distinct_id: String,
    /// Person properties to set.
    pub set: Map<String, Value>,
    /// Person properties to set only if not set yet.
    pub set_once: Map<String, Value>,
    /// Values refused by [`set`](Self::set) and [`set_once`](Self::set_once).
    refused: u32,
}

impl Identify {
    /// Identifies as `distinct_id`.
    pub fn new(distinct_id: impl Into<String>) -> Self {
        Identify {
            distinct_id: distinct_id.into(),
            set: Map::new(),
            set_once: Map::new(),
            refused: 0,
        }
    }

    /// Adds a `$set` person property (a NaN, an infinity or a value nested too deep is refused
    /// and counted in `Stats::invalid_values`).
    pub fn set(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        insert_checked(&mut self.set, &mut self.refused, key, value);
        self
    }

    /// Adds a `$set_once` person property (refused as by [`set`](Self::set)).
    pub fn set_once(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        insert_checked(&mut self.set_once, &mut self.refused, key, value);
        self
    }

    /// How many values were refused.
    pub fn refused(&self) -> u32 {
        self.refused
    }
}

/// Sets person properties: sends a `$set` event.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::SetPersonProperties;
/// telemetry
///     .recorder()
///     .do_send(SetPersonProperties::new().set("plan", "team").set_once("first_seen", "2026-12-01"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, Message)]
#[rtype(result = "()")]
pub struct SetPersonProperties {
    /// Person properties to set.
    pub set: Map<String, Value>,
    /// Person properties to set only if not set yet.
    pub set_once: Map<String, Value>,
    /// Values refused by [`set`](Self::set) and [`set_once`](Self::set_once).
    refused: u32,
}

impl SetPersonProperties {
    /// No properties yet.
    pub fn new() -> Self {
        SetPersonProperties::default()
    }

    /// Adds a `$set` person property (refused as by [`Identify::set`]).
    pub fn set(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        insert_checked(&mut self.set, &mut self.refused, key, value);
        self
    }

    /// Adds a `$set_once` person property (refused as by [`Identify::set`]).
    pub fn set_once(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        insert_checked(&mut self.set_once, &mut self.refused, key, value);
        self
    }

    /// How many values were refused.
    pub fn refused(&self) -> u32 {
        self.refused
    }
}

/// Describes a group: sends a `$groupidentify` event with `$group_type`, `$group_key` and
/// `$group_set` (the group's properties). It is attributed to the group itself
/// (`$<type>_<key>`), as PostHog expects, and changes nothing of the process's identity.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GroupIdentify;
/// telemetry
///     .recorder()
///     .do_send(GroupIdentify::new("company", "acme").set("seats", 12));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct GroupIdentify {
    /// The kind of group (for example `organization`).
    pub group_type: String,
    /// The group's id.
    pub group_key: String,
    /// The group's properties.
    pub set: Map<String, Value>,
    refused: u32,
}

impl GroupIdentify {
    /// Describes group `group_type` = `group_key`.
    pub fn new(group_type: impl Into<String>, group_key: impl Into<String>) -> Self {
        GroupIdentify {
            group_type: group_type.into(),
            group_key: group_key.into(),
            set: Map::new(),
            refused: 0,
        }
    }

    /// Adds a group property (refused as by [`Identify::set`]).
    pub fn set(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        insert_checked(&mut self.set, &mut self.refused, key, value);
        self
    }

    /// The event it sends.
    pub(crate) fn into_record(mut self) -> (Record, u32) {
        let refused = self
            .refused
            .saturating_add(crate::json::retain_admissible(&mut self.set));
        let record = Record::new("$groupidentify")
            .property("$group_type", self.group_type.as_str())
            .property("$group_key", self.group_key.as_str())
            .property("$group_set", Value::Object(self.set))
            .distinct_id(format!("${}_{}", self.group_type, self.group_key));
        (record, refused)
    }
}

/// Links another id to the current user: sends a `$create_alias` event.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::Alias;
/// telemetry.recorder().do_send(Alias { alias: "old-id-7".into() });
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct Alias {
    /// The other id.
    pub alias: String,
}

/// Adds the user to a group; later events carry it in `$groups`.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::AddGroup;
/// telemetry.recorder().do_send(AddGroup {
///     group_type: "company".into(),
///     group_key: "acme".into(),
/// });
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct AddGroup {
    /// The kind of group (for example `organization`).
    pub group_type: String,
    /// The group's id.
    pub group_key: String,
}

/// Forgets the user: clears the distinct id, groups and person properties, and starts a new
/// anonymous id, device id and session. A device id set with
/// [`Builder::device_id`](crate::Builder::device_id) stays, and so do the facts.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// telemetry.recorder().do_send(actix_telemetry::Reset);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct Reset;
