//! Every message the actors exchange, in one place.
//!
//! The public messages are what an application sends to the [`Recorder`](crate::Recorder); the
//! crate-internal ones flow between the six actors. `docs/architecture.md` has the table of
//! sender, receiver and meaning for each.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::checkin::{Checkin, CheckinRequest};
use crate::error::WaitForCheckinError;
use crate::event::{EncodedEvent, RecordedEvent};
use crate::event_identity::EventIdentity;
use crate::features::{Feature, FeatureSet};
use crate::json::{PropertyValue, RefusedValue, checked, insert_checked};
use crate::properties::Properties;
use crate::snapshot::SystemSnapshot;
use crate::stats::{FlushReport, ShutdownReport, Stats};
use crate::transport::{DeliveryOutcome, TransportError};

// ───────────────────────────── public: application → Recorder ─────────────────────────────

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
    pub fn property(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
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

/// Delivers every event recorded before it. Resolves when each is delivered or dropped, or
/// when its deadline passes (the rest are then reported `pending` and stay queued).
///
/// The deadline is an instant, taken when the message is made ([`Flush::within`]): time spent
/// in mailboxes on the way counts against it.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use std::time::Duration;
/// use actix_telemetry::Flush;
/// let report = telemetry.recorder().send(Flush::within(Duration::from_secs(5))).await?;
/// println!("delivered {}, pending {}", report.delivered, report.pending);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, Message)]
#[rtype(result = "FlushReport")]
pub struct Flush {
    /// When to stop waiting (a [`tokio::time::Instant`]); `None` waits until every event is
    /// delivered or dropped.
    pub deadline: Option<Instant>,
}

impl Flush {
    /// Waits until every earlier event is delivered or dropped.
    pub fn new() -> Self {
        Flush { deadline: None }
    }

    /// Waits at most `timeout`, counted from now.
    pub fn within(timeout: Duration) -> Self {
        Flush::until(crate::validate::deadline_in(timeout))
    }

    /// Waits until `deadline` at most.
    pub fn until(deadline: Instant) -> Self {
        Flush {
            deadline: Some(deadline),
        }
    }
}

/// Stops accepting events, delivers what is queued until `deadline`, drops the rest (counted),
/// reports, and stops the runtime's actors.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use std::time::Duration;
/// use actix_telemetry::Shutdown;
/// let report = telemetry.recorder().send(Shutdown::within(Duration::from_secs(5))).await?;
/// println!("complete: {}", report.complete);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "ShutdownReport")]
pub struct Shutdown {
    /// When delivery must end (a [`tokio::time::Instant`]); [`Shutdown::within`] counts from
    /// when the message is made.
    pub deadline: Instant,
}

impl Shutdown {
    /// Delivers for at most `timeout`, counted from now.
    pub fn within(timeout: Duration) -> Self {
        Shutdown {
            deadline: crate::validate::deadline_in(timeout),
        }
    }
}

/// Reads a flag's variant as `T` and records a `$feature_flag_called` event.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GetVariant;
/// let theme: Option<String> = telemetry.recorder().send(GetVariant::new("theme")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Message)]
#[rtype(result = "Option<T>")]
pub struct GetVariant<T: DeserializeOwned + 'static> {
    /// The flag.
    pub name: String,
    /// Follow pointer flags (a payload naming another flag) to the flag they end on.
    pub follow_pointers: bool,
    _type: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> GetVariant<T> {
    /// Reads flag `name`.
    pub fn new(name: impl Into<String>) -> Self {
        GetVariant {
            name: name.into(),
            follow_pointers: false,
            _type: PhantomData,
        }
    }

    /// Reads the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.follow_pointers = true;
        self
    }
}

/// Reads a flag's payload as `T` and records a `$feature_flag_called` event.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GetPayload;
/// let limits: Option<serde_json::Value> = telemetry.recorder().send(GetPayload::new("limits")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Message)]
#[rtype(result = "Option<T>")]
pub struct GetPayload<T: DeserializeOwned + 'static> {
    /// The flag.
    pub name: String,
    /// Follow pointer flags (a payload naming another flag) to the flag they end on.
    pub follow_pointers: bool,
    _type: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> GetPayload<T> {
    /// Reads flag `name`.
    pub fn new(name: impl Into<String>) -> Self {
        GetPayload {
            name: name.into(),
            follow_pointers: false,
            _type: PhantomData,
        }
    }

    /// Reads the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.follow_pointers = true;
        self
    }
}

/// Reads a flag's variant as `V` and its payload as `P`, independently (a payload that does not
/// parse leaves `payload` empty and the variant readable); records `$feature_flag_called`.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GetFeature;
/// let feature = telemetry
///     .recorder()
///     .send(GetFeature::<String, serde_json::Value>::new("checkout"))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Message)]
#[rtype(result = "Option<Feature<V, P>>")]
pub struct GetFeature<V: DeserializeOwned + 'static, P: DeserializeOwned + 'static> {
    /// The flag.
    pub name: String,
    /// Follow pointer flags (a payload naming another flag) to the flag they end on.
    pub follow_pointers: bool,
    _type: PhantomData<fn() -> (V, P)>,
}

impl<V: DeserializeOwned + 'static, P: DeserializeOwned + 'static> GetFeature<V, P> {
    /// Reads flag `name`.
    pub fn new(name: impl Into<String>) -> Self {
        GetFeature {
            name: name.into(),
            follow_pointers: false,
            _type: PhantomData,
        }
    }

    /// Reads the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.follow_pointers = true;
        self
    }
}

/// Whether a flag is present and on; records `$feature_flag_called`.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::IsEnabled;
/// let on: bool = telemetry.recorder().send(IsEnabled::new("new-dashboard")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Message)]
#[rtype(result = "bool")]
pub struct IsEnabled {
    /// The flag.
    pub name: String,
    /// Follow pointer flags (a payload naming another flag) to the flag they end on.
    pub follow_pointers: bool,
}

impl IsEnabled {
    /// Asks about flag `name`.
    pub fn new(name: impl Into<String>) -> Self {
        IsEnabled {
            name: name.into(),
            follow_pointers: false,
        }
    }

    /// Asks about the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.follow_pointers = true;
        self
    }
}

/// Reads a flag's variant as `T`, or answers `default` when the flag is missing, malformed, not
/// a `T`, or its pointer chain loops. The `$feature_flag_called` event then says the default was
/// used, and why.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GetVariantOr;
/// let page_size: u32 = telemetry.recorder().send(GetVariantOr::new("page-size", 50u32)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Message)]
#[rtype(result = "T")]
pub struct GetVariantOr<T: DeserializeOwned + Serialize + 'static> {
    /// The flag.
    pub name: String,
    /// The answer when the flag cannot be read.
    pub default: T,
    /// Follow pointer flags to the flag they end on.
    pub follow_pointers: bool,
}

impl<T: DeserializeOwned + Serialize + 'static> GetVariantOr<T> {
    /// Reads flag `name`, or `default`.
    pub fn new(name: impl Into<String>, default: T) -> Self {
        GetVariantOr {
            name: name.into(),
            default,
            follow_pointers: false,
        }
    }

    /// Reads the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.follow_pointers = true;
        self
    }
}

/// Reads a flag's payload as `T`, or answers `default` when the flag or its payload is missing,
/// malformed or not a `T`; the `$feature_flag_called` event then says the default was used.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use actix_telemetry::GetPayloadOr;
/// let banner: String = telemetry
///     .recorder()
///     .send(GetPayloadOr::new("banner", String::new()))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Message)]
#[rtype(result = "T")]
pub struct GetPayloadOr<T: DeserializeOwned + 'static> {
    /// The flag.
    pub name: String,
    /// The answer when the payload cannot be read.
    pub default: T,
    /// Follow pointer flags to the flag they end on.
    pub follow_pointers: bool,
}

impl<T: DeserializeOwned + 'static> GetPayloadOr<T> {
    /// Reads the payload of flag `name`, or `default`.
    pub fn new(name: impl Into<String>, default: T) -> Self {
        GetPayloadOr {
            name: name.into(),
            default,
            follow_pointers: false,
        }
    }

    /// Reads the flag a pointer chain starting at `name` ends on.
    pub fn following_pointers(mut self) -> Self {
        self.follow_pointers = true;
        self
    }
}

/// The whole current flag set, without recording an evaluation event.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// let flags = telemetry.recorder().send(actix_telemetry::GetFeatures).await?;
/// println!("{} flags", flags.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Arc<FeatureSet>")]
pub struct GetFeatures;

/// Waits until a check-in has succeeded in this run of the runtime (returns at once if one has).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use std::time::Duration;
/// use actix_telemetry::WaitForCheckin;
/// let answer = telemetry
///     .recorder()
///     .send(WaitForCheckin { timeout: Duration::from_secs(2) })
///     .await?;
/// if let Err(why) = answer {
///     eprintln!("serving the flags of an earlier run: {why}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Result<Arc<FeatureSet>, WaitForCheckinError>")]
pub struct WaitForCheckin {
    /// How long to wait at most.
    pub timeout: Duration,
}

/// Asks for a check-in now, in the background; returns at once.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// telemetry.recorder().do_send(actix_telemetry::RefreshConfiguration);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct RefreshConfiguration;

/// Subscribes to flag changes: the subscription wakes only when the flags really changed.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// let mut subscription = telemetry.recorder().send(actix_telemetry::SubscribeFeatures).await?;
/// while let Some(flags) = subscription.changed().await {
///     println!("flags changed: {} now", flags.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "FeatureSubscription")]
pub struct SubscribeFeatures;

/// The runtime's counters.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// let stats = telemetry.recorder().send(actix_telemetry::GetStats).await?;
/// println!("accepted {}, dropped {}", stats.accepted, stats.dropped.total());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Stats")]
pub struct GetStats;

/// The counters of each sink (its queue, deliveries and drops), by name, primary first.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// for (sink, stats) in telemetry.recorder().send(actix_telemetry::GetSinkStats).await? {
///     println!("{sink}: delivered {}", stats.delivered);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Vec<(String, Stats)>")]
pub struct GetSinkStats;

/// A stream of flag sets; each [`changed`](FeatureSubscription::changed) waits for a real
/// change. A slow reader never holds anything up: it sees the newest set.
#[derive(Debug, Clone)]
pub struct FeatureSubscription {
    rx: watch::Receiver<Arc<FeatureSet>>,
}

impl FeatureSubscription {
    pub(crate) fn new(rx: watch::Receiver<Arc<FeatureSet>>) -> Self {
        FeatureSubscription { rx }
    }

    /// Waits for the next change; `None` once the runtime has stopped.
    pub async fn changed(&mut self) -> Option<Arc<FeatureSet>> {
        self.rx.changed().await.ok()?;
        Some(self.rx.borrow_and_update().clone())
    }

    /// The current flags.
    pub fn current(&self) -> Arc<FeatureSet> {
        self.rx.borrow().clone()
    }
}

// ───────────────────────────── internal: between the actors ─────────────────────────────

/// The id and times the Recorder gives to everything that becomes an event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp {
    pub uuid: Uuid,
    pub timestamp: SystemTime,
    pub received_at: Instant,
}

/// [`EventSender`](crate::EventSender) → Recorder (and the Recorder to itself): events wait in
/// the admission inbox; take the next run of them (see `src/admission.rs`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct DrainAdmitted;

/// Recorder → Collator: an accepted event to enrich.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Enrich(pub RecordedEvent);

/// What changes the identity or facts held by the Collator.
#[derive(Debug, Clone)]
pub(crate) enum IdentityChange {
    SetFact(SetFact),
    Identify(Identify),
    SetPersonProperties(SetPersonProperties),
    Alias(Alias),
    AddGroup(AddGroup),
    Reset,
}

/// Recorder → Collator: apply a change, in order with the events around it; the stamp is for
/// the event the change produces (`$identify`, `$set`, `$create_alias`), if any.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ChangeIdentity {
    pub change: IdentityChange,
    pub stamp: Stamp,
}

/// A flag read on the caller's thread by a [`FlagReader`](crate::FlagReader), for the Recorder
/// to stamp and pass on as `$feature_flag_called`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct FlagEvaluated {
    pub flag: String,
    pub response: Value,
    pub default_used: Option<crate::features::Miss>,
    /// The user the flags were read for; `None`: the process's identity.
    pub distinct_id: Option<String>,
}

/// Recorder → Collator: a flag was read; becomes a `$feature_flag_called` event.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct FeatureFlagCalled {
    pub flag: String,
    pub response: Value,
    /// Set when the caller's default was answered, with the reason.
    pub default_used: Option<crate::features::Miss>,
    /// The user the flags were read for; `None`: the process's identity.
    pub distinct_id: Option<String>,
    pub stamp: Stamp,
}

/// A flush travelling Recorder → Collator → Submitter behind the events it covers.
#[derive(Debug)]
pub(crate) struct FlushRequest {
    /// When the flush stops waiting (taken when the application made it).
    pub deadline: Option<Instant>,
    /// At the timeout, drop what is left (a shutdown) instead of leaving it queued.
    pub drop_at_timeout: bool,
    pub reply: oneshot::Sender<FlushReport>,
}

/// Recorder → Collator and Collator → Submitter: a flush, in order with the events.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ForwardFlush(pub FlushRequest);

/// Collator → SystemSnapshotter: take a snapshot now.
#[derive(Debug, Message)]
#[rtype(result = "Option<SystemSnapshot>")]
pub(crate) struct TakeSnapshot;

/// Collator → Submitter: an enriched, encoded event to queue.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Enqueue(pub EncodedEvent);

/// Submitter → Transport: deliver this batch; the Submitter keeps it until the outcome.
#[derive(Debug, Message)]
#[rtype(result = "DeliveryOutcome")]
pub(crate) struct DeliverBatch {
    pub events: Arc<[EncodedEvent]>,
}

/// ConfigurationProxy → Collator: who to check in as.
#[derive(Debug, Message)]
#[rtype(result = "Option<CheckinRequest>")]
pub(crate) struct CheckinIdentity;

/// ConfigurationProxy → Transport: check in.
#[derive(Debug, Message)]
#[rtype(result = "Result<Checkin, TransportError>")]
pub(crate) struct FetchCheckin(pub CheckinRequest);

/// ConfigurationProxy → Transport: has the configuration source changed since the last
/// check-in (an edited check-in file)?
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub(crate) struct CheckinSourceChanged;

/// ConfigurationProxy → Collator, after every successful check-in: the flags events carry.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct FeatureFacts(pub Arc<FeatureSet>);

/// ConfigurationProxy → Recorder, after every successful check-in.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct CheckinCompleted {
    pub features: Arc<FeatureSet>,
    /// Whether the flags differ from the previous ones (including flags loaded from disk).
    pub changed: bool,
}

/// Builder → ConfigurationProxy: where to report check-ins (the Recorder starts after it).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ConnectRecorder(pub Recipient<CheckinCompleted>);

/// Recorder → ConfigurationProxy: check in now (coalesced with one already running).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct RefreshNow;

/// The configuration stream's reader task → ConfigurationProxy.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) enum StreamEvent {
    Connected,
    Update(crate::stream::update::StreamUpdate),
    Malformed(String),
    Disconnected(String),
    /// 401 or 403: the reader has ended; go back to polling.
    Refused(u16),
}

/// Recorder → every other actor: its share of the counters.
#[derive(Debug, Message)]
#[rtype(result = "Stats")]
pub(crate) struct ReportCounters;

/// Makes `actor` panic or stop on its next message, to test supervision.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct InjectFault {
    /// The actor to hit.
    pub actor: crate::supervision::ActorKind,
    /// What happens to it.
    pub fault: crate::supervision::Fault,
}

/// Recorder → any actor: arm a fault for the next message.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct ArmFault(pub crate::supervision::Fault);
