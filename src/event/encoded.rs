//! An event ready for the wire, and the batch body made of such events: each holds its own
//! head and properties as JSON text and refers to what it shares with other events; the rest
//! of the JSON is written around them when a batch is encoded.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use super::RecordedEvent;
use crate::json::push_json_string;
use crate::timestamp::{RFC3339_LEN, rfc3339, rfc3339_ms_bytes};

/// An event ready for the wire:
/// `{"name":…,"distinct_id":…,"uuid":…,"timestamp":…,"properties":{…}}`.
///
/// It keeps only what is its own in one allocation (the name and its own properties, as JSON
/// text) plus references to what it shares with other events (the distinct id, the shared
/// properties); the rest of the text is written when a batch is encoded. A burst of events
/// waiting in the Submitter's queue therefore costs a few dozen bytes each beyond their own
/// properties.
#[derive(Debug, Clone)]
pub(crate) struct EncodedEvent {
    pub uuid: Uuid,
    /// The name as a JSON string followed by the event's own members (without braces); or,
    /// for an event read back from the spool, the whole event.
    pub(super) text: Box<str>,
    pub(super) form: Form,
}

#[derive(Debug, Clone)]
pub(super) enum Form {
    /// Encoded by this run: the rest of the JSON is written around `text` when a batch is.
    Parts {
        /// Milliseconds since the Unix epoch.
        timestamp_ms: u64,
        /// Where the name ends in `text`.
        name_end: u32,
        /// The distinct id as a JSON string, shared by the events of one identity.
        distinct_id: Arc<str>,
        /// Shared properties, without braces; `None` when there are none.
        shared: Option<Arc<str>>,
    },
    /// Read back from the spool: `text` is the whole event, written out as it is.
    Whole,
}

const NAME_OPEN: &str = "{\"name\":";
/// PostHog's opening, in place of [`NAME_OPEN`].
const EVENT_OPEN: &str = "{\"event\":";
const DISTINCT_ID_OPEN: &str = ",\"distinct_id\":";
const UUID_OPEN: &str = ",\"uuid\":\"";
const TIMESTAMP_OPEN: &str = "\",\"timestamp\":\"";
const PROPERTIES_OPEN: &str = "\",\"properties\":{";
const CLOSE: &str = "}}";
/// Bytes of the text around the variable parts, the uuid and the timestamp included.
const FIXED_LEN: usize = NAME_OPEN.len()
    + DISTINCT_ID_OPEN.len()
    + UUID_OPEN.len()
    + uuid::fmt::Hyphenated::LENGTH
    + TIMESTAMP_OPEN.len()
    + RFC3339_LEN
    + PROPERTIES_OPEN.len()
    + CLOSE.len();

impl EncodedEvent {
    /// Encodes `event` with its own properties (`own`, the members of a JSON object, possibly
    /// filtered) beside the `shared` fragment made for them ([`SharedProperties::for_event`]);
    /// `distinct_id` is a JSON string ([`json_string`]).
    pub fn encode(
        event: &RecordedEvent,
        own: &str,
        shared: Arc<str>,
        distinct_id: &Arc<str>,
    ) -> Self {
        let mut text = String::with_capacity(event.name.len() + 2 + own.len());
        push_json_string(&mut text, &event.name);
        // An event name is at most a few hundred bytes: the offset always fits.
        let name_end = u32::try_from(text.len()).unwrap_or(u32::MAX);
        text.push_str(own);
        let timestamp_ms = event
            .timestamp
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        EncodedEvent {
            uuid: event.uuid,
            text: text.into_boxed_str(),
            form: Form::Parts {
                timestamp_ms,
                name_end,
                distinct_id: distinct_id.clone(),
                shared: (!shared.is_empty()).then_some(shared),
            },
        }
    }

    /// When the event happened, in milliseconds since the epoch (`None` if an event read back
    /// from the spool does not say).
    pub fn timestamp_ms(&self) -> Option<u64> {
        match &self.form {
            Form::Parts { timestamp_ms, .. } => Some(*timestamp_ms),
            // The first occurrence is the event's own: the name and the distinct id before it
            // are JSON strings, whose quotes are escaped.
            Form::Whole => {
                let at = self.text.find(TIMESTAMP_OPEN)? + TIMESTAMP_OPEN.len();
                crate::timestamp::parse_rfc3339_ms(self.text.as_bytes().get(at..)?)
            }
        }
    }

    /// Length of the event's JSON.
    pub fn encoded_len(&self) -> usize {
        match &self.form {
            Form::Whole => self.text.len(),
            Form::Parts {
                name_end,
                distinct_id,
                shared,
                ..
            } => {
                let shared = shared.as_deref().unwrap_or("");
                let own = &self.text[*name_end as usize..];
                FIXED_LEN
                    + self.text.len()
                    + distinct_id.len()
                    + shared.len()
                    + separator(shared, own).len()
            }
        }
    }

    /// Memory this event holds on its own (what it shares is counted once elsewhere).
    pub fn held_bytes(&self) -> usize {
        self.text.len() + std::mem::size_of::<Self>()
    }

    /// Appends the event's JSON to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_with(NAME_OPEN, out);
    }

    /// Appends the event's JSON to `out` in PostHog's shape, which differs only in its first
    /// key: `{"event":…,"distinct_id":…,…}`. An event read back from the spool is written with
    /// its `{"name":` opening replaced.
    pub fn write_posthog_to(&self, out: &mut Vec<u8>) {
        if let Form::Whole = self.form
            && let Some(rest) = self.text.strip_prefix(NAME_OPEN)
        {
            out.extend_from_slice(EVENT_OPEN.as_bytes());
            out.extend_from_slice(rest.as_bytes());
            return;
        }
        self.write_with(EVENT_OPEN, out);
    }

    fn write_with(&self, open: &str, out: &mut Vec<u8>) {
        let Form::Parts {
            timestamp_ms,
            name_end,
            distinct_id,
            shared,
        } = &self.form
        else {
            out.extend_from_slice(self.text.as_bytes());
            return;
        };
        let (name, own) = self.text.split_at(*name_end as usize);
        let shared = shared.as_deref().unwrap_or("");
        out.extend_from_slice(open.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(DISTINCT_ID_OPEN.as_bytes());
        out.extend_from_slice(distinct_id.as_bytes());
        out.extend_from_slice(UUID_OPEN.as_bytes());
        out.extend_from_slice(
            self.uuid
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
        out.extend_from_slice(TIMESTAMP_OPEN.as_bytes());
        out.extend_from_slice(&rfc3339_ms_bytes(*timestamp_ms));
        out.extend_from_slice(PROPERTIES_OPEN.as_bytes());
        out.extend_from_slice(shared.as_bytes());
        out.extend_from_slice(separator(shared, own).as_bytes());
        out.extend_from_slice(own.as_bytes());
        out.extend_from_slice(CLOSE.as_bytes());
    }
}

/// What goes between the shared and the own members of one object.
fn separator(shared: &str, own: &str) -> &'static str {
    if shared.is_empty() || own.is_empty() {
        ""
    } else {
        ","
    }
}

/// The body of `POST /events/batch` (and one line of the File transport, without the newline):
/// `{"sent_at":"…","batch":[…]}`.
pub(crate) fn encode_batch(events: &[EncodedEvent], sent_at: SystemTime) -> Vec<u8> {
    let mut out = Vec::new();
    encode_batch_into(events, sent_at, &mut out);
    out
}

/// [`encode_batch`] appended to `out`, reserving room for all of it at once.
pub(crate) fn encode_batch_into(events: &[EncodedEvent], sent_at: SystemTime, out: &mut Vec<u8>) {
    let size: usize = events.iter().map(|e| e.encoded_len() + 1).sum();
    out.reserve(size + 64);
    out.extend_from_slice(b"{\"sent_at\":\"");
    out.extend_from_slice(rfc3339(sent_at).as_bytes());
    out.extend_from_slice(b"\",\"batch\":[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        event.write_to(out);
    }
    out.extend_from_slice(b"]}");
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::event::SharedProperties;
    use crate::json::json_string;
    use crate::properties::Properties;
    use crate::spool::{Layout, Record};
    use serde_json::{Map, Value, json};
    use std::time::Duration;
    use tokio::time::Instant;

    pub(crate) fn event(props: Value) -> RecordedEvent {
        RecordedEvent::new(
            "he said \"hi\"\n".into(),
            Properties::from_map(&props.as_object().cloned().unwrap_or_default()),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            Uuid::nil(),
            Instant::now(),
        )
    }

    pub(crate) fn encode(ev: &RecordedEvent, shared: &SharedProperties) -> EncodedEvent {
        let user = Arc::from(json_string("user"));
        EncodedEvent::encode(
            ev,
            ev.members(),
            shared.for_properties(ev.own_properties()),
            &user,
        )
    }

    pub(crate) fn shared() -> SharedProperties {
        SharedProperties::new(
            json!({"$lib": "actix-telemetry", "k": "shared", "n": 1})
                .as_object()
                .cloned()
                .unwrap(),
        )
    }

    #[test]
    fn own_properties_win_and_keys_are_unique() {
        let ev = event(json!({"k": "own", "x": [1]}));
        let e = encode(&ev, &shared());
        let mut out = Vec::new();
        e.write_to(&mut out);
        assert_eq!(out.len(), e.encoded_len());
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("\"k\":").count(), 1, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["properties"],
            json!({"$lib": "actix-telemetry", "k": "own", "n": 1, "x": [1]})
        );
        assert_eq!(v["name"], "he said \"hi\"\n");
        assert_eq!(v["distinct_id"], "user");
        assert_eq!(
            ev.properties(),
            *json!({"k": "own", "x": [1]}).as_object().unwrap()
        );
        assert_eq!(v["uuid"], "00000000-0000-0000-0000-000000000000");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn posthog_shape_differs_only_in_the_first_key() {
        let ev = event(json!({"k": 1}));
        let e = encode(&ev, &shared());
        let (mut ids, mut posthog) = (Vec::new(), Vec::new());
        e.write_to(&mut ids);
        e.write_posthog_to(&mut posthog);
        assert_eq!(&posthog[..9], b"{\"event\":");
        assert_eq!(&posthog[9..], &ids[8..]);
        let whole = Record {
            payload: ids,
            shared: Vec::new(),
            layout: Layout::WholeJson,
        };
        let back = EncodedEvent::from_spool(whole).unwrap();
        let mut again = Vec::new();
        back.write_posthog_to(&mut again);
        assert_eq!(again, posthog);
    }

    #[test]
    fn empty_sides_make_valid_json() {
        let empty = SharedProperties::new(Map::new());
        for (props, sh) in [
            (json!({}), &empty),
            (json!({"a": 1}), &empty),
            (json!({}), &shared()),
        ] {
            let ev = event(props);
            let e = encode(&ev, sh);
            let body = encode_batch(&[e.clone(), e], UNIX_EPOCH);
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["sent_at"], "1970-01-01T00:00:00.000Z");
            assert_eq!(v["batch"].as_array().unwrap().len(), 2);
        }
    }
}
