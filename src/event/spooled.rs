//! An event's record in the spool, and the event read back from one: its own text, its
//! timestamp and uuid, with the distinct id and the shared properties referred to as
//! fragments that the spool writes once per block ([`crate::spool`]).

use std::sync::Arc;

use uuid::Uuid;

use super::encoded::{EncodedEvent, Form};
use crate::spool::{Layout, Record};

/// The first byte of an event's spool payload: the parts follow.
const SPOOL_PARTS: u8 = 1;
/// The first byte of an event's spool payload: its whole JSON follows.
const SPOOL_WHOLE: u8 = 0;

impl EncodedEvent {
    /// Hands `write` this event's spool record: a payload, made in `scratch`, and the shared
    /// fragments it refers to (which the spool writes once per block however many events
    /// refer to them).
    ///
    /// ```text
    /// payload: u8 form | form 1 (parts): u64 timestamp_ms | 16 bytes uuid | u32 name_end | text
    ///                  | form 0 (whole): the event's JSON
    /// fragments, form 1: the distinct id, then the shared properties if there are any
    /// ```
    pub fn with_spool_record<R>(
        &self,
        scratch: &mut Vec<u8>,
        write: impl FnOnce(&[u8], &[&Arc<str>]) -> R,
    ) -> R {
        scratch.clear();
        match &self.form {
            Form::Parts {
                timestamp_ms,
                name_end,
                distinct_id,
                shared,
            } => {
                scratch.push(SPOOL_PARTS);
                scratch.extend_from_slice(&timestamp_ms.to_le_bytes());
                scratch.extend_from_slice(self.uuid.as_bytes());
                scratch.extend_from_slice(&name_end.to_le_bytes());
                scratch.extend_from_slice(self.text.as_bytes());
                match shared {
                    Some(shared) => write(scratch, &[distinct_id, shared]),
                    None => write(scratch, &[distinct_id]),
                }
            }
            Form::Whole => {
                scratch.push(SPOOL_WHOLE);
                scratch.extend_from_slice(self.text.as_bytes());
                write(scratch, &[])
            }
        }
    }

    /// An event read back from the spool, exactly as it was written; `None` if its record does
    /// not hold one (text that is not UTF-8, a form or a layout it cannot have).
    pub fn from_spool(record: Record) -> Option<Self> {
        let Record {
            mut payload,
            shared,
            layout,
        } = record;
        if layout == Layout::WholeJson {
            return Self::from_json(payload);
        }
        match payload.first() {
            Some(&SPOOL_WHOLE) if shared.is_empty() => {
                payload.remove(0);
                Self::from_json(payload)
            }
            Some(&SPOOL_PARTS) => Self::from_parts(payload, shared),
            _ => None,
        }
    }

    /// `payload` is the whole payload, its form byte first.
    fn from_parts(mut payload: Vec<u8>, shared: Vec<Arc<str>>) -> Option<Self> {
        let (timestamp_ms, rest) = payload.get(1..)?.split_first_chunk::<8>()?;
        let (uuid, rest) = rest.split_first_chunk::<16>()?;
        let (name_end, _) = rest.split_first_chunk::<4>()?;
        let (timestamp_ms, uuid, name_end) = (
            u64::from_le_bytes(*timestamp_ms),
            Uuid::from_bytes(*uuid),
            u32::from_le_bytes(*name_end),
        );
        // The text stays in the record's own allocation.
        payload.drain(..1 + 8 + 16 + 4);
        let text = String::from_utf8(payload).ok()?;
        if !text.is_char_boundary(usize::try_from(name_end).ok()?) {
            return None;
        }
        let mut shared = shared.into_iter();
        let distinct_id = shared.next()?;
        let own_shared = shared.next();
        if shared.next().is_some() {
            return None;
        }
        Some(EncodedEvent {
            uuid,
            text: text.into_boxed_str(),
            form: Form::Parts {
                timestamp_ms,
                name_end,
                distinct_id,
                shared: own_shared,
            },
        })
    }

    /// An event read back as its whole JSON; `None` if it is not UTF-8.
    pub fn from_json(json: Vec<u8>) -> Option<Self> {
        let text = String::from_utf8(json).ok()?;
        // The uuid is only used in logs: a cheap look instead of parsing the whole event.
        let uuid = text
            .find("\"uuid\":\"")
            .and_then(|at| text.get(at + 8..at + 44))
            .and_then(|u| Uuid::parse_str(u).ok())
            .unwrap_or_default();
        Some(EncodedEvent {
            uuid,
            text: text.into_boxed_str(),
            form: Form::Whole,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SharedProperties;
    use crate::event::encoded::tests::{encode, event, shared};
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::{Map, Value, json};

    use crate::event::{RecordedEvent, json_string};
    use crate::files::temp_path;
    use crate::properties::Properties;
    use crate::rng::Rng;
    use crate::spool::Spool;

    /// `event`'s spool record, as the spool reads it back.
    fn spooled(event: &EncodedEvent) -> Record {
        event.with_spool_record(&mut Vec::new(), |payload, shared| Record {
            payload: payload.to_vec(),
            shared: shared.iter().map(|f| Arc::clone(f)).collect(),
            layout: Layout::Compact,
        })
    }

    fn both_shapes(event: &EncodedEvent) -> (Vec<u8>, Vec<u8>) {
        let (mut ids, mut posthog) = (Vec::new(), Vec::new());
        event.write_to(&mut ids);
        event.write_posthog_to(&mut posthog);
        (ids, posthog)
    }

    #[test]
    fn spooled_events_are_written_back_unchanged() {
        let empty = SharedProperties::new(Map::new());
        for (props, sh) in [
            (json!({"k": 1, "é": "ü"}), &shared()),
            (json!({"k": 1}), &empty),
            (json!({}), &empty),
        ] {
            let ev = event(props);
            let original = encode(&ev, sh);
            let record = spooled(&original);
            // The shared text is referred to, not copied.
            assert!(record.payload.len() < ev.members().len() + 64);
            let back = EncodedEvent::from_spool(record).unwrap();
            assert_eq!(both_shapes(&back), both_shapes(&original));
            assert_eq!(back.encoded_len(), original.encoded_len());
            assert_eq!(back.uuid, ev.uuid);
            assert_eq!(back.timestamp_ms(), original.timestamp_ms());
            // An event read back whole is spooled whole, and comes back the same again.
            let mut json = Vec::new();
            original.write_to(&mut json);
            let whole = EncodedEvent::from_spool(Record {
                payload: json,
                shared: Vec::new(),
                layout: Layout::WholeJson,
            })
            .unwrap();
            assert_eq!(both_shapes(&whole), both_shapes(&original));
            let again = EncodedEvent::from_spool(spooled(&whole)).unwrap();
            assert_eq!(both_shapes(&again), both_shapes(&original));
        }
    }

    #[test]
    fn records_that_hold_no_event_are_refused() {
        let original = encode(&event(json!({"é": 1})), &shared());
        let good = spooled(&original);
        let with = |change: &dyn Fn(&mut Record)| {
            let mut record = good.clone();
            change(&mut record);
            EncodedEvent::from_spool(record)
        };
        assert!(with(&|_| ()).is_some());
        assert!(with(&|r| r.payload[0] = 7).is_none(), "an unknown form");
        assert!(with(&|r| r.payload.truncate(20)).is_none(), "cut short");
        assert!(with(&|r| r.shared.clear()).is_none(), "no distinct id");
        assert!(
            with(&|r| r.shared.push(Arc::from("x"))).is_none(),
            "a fragment too many"
        );
        assert!(with(&|r| r.payload.push(0xff)).is_none(), "not UTF-8");
        // The name's end inside a character.
        let accent = good.payload.len() - 4;
        assert!(
            with(&|r| r.payload[25..29].copy_from_slice(&(accent as u32 - 29).to_le_bytes()))
                .is_none()
        );
        assert!(with(&|r| r.payload.clear()).is_none(), "empty");
        let not_utf8 = Record {
            payload: vec![0xff, 0xfe],
            shared: Vec::new(),
            layout: Layout::WholeJson,
        };
        assert!(EncodedEvent::from_spool(not_utf8).is_none());
    }

    /// What the Collator shares between the events of one process: library, host and facts.
    fn process_properties() -> SharedProperties {
        let map: Map<String, Value> = json!({
            "$lib": "actix-telemetry", "$lib_version": "0.1.0", "$os": "Linux",
            "$os_version": "6.8.0-45-generic", "$locale": "en-US", "$timezone": "Europe/Berlin",
            "$device_id": "0197a3c4-5d6e-7f80-9123-456789abcdef", "arch": "x86_64",
            "hostname": "web-3.eu-west-1.internal", "cpu_count": 2, "cpu_brand": "AMD EPYC 7B13",
            "memory_total_bytes": 25_769_803_776u64, "kernel": "6.8.0-45-generic",
            "distribution": "debian", "distribution_version": "13", "service": "checkout",
            "deployment": "production", "region": "eu-west-1", "build": "2026.11.30-4f2a9c1",
            "rustc": "1.95.0", "is_ci": false, "container": "docker", "nix": false,
            "$groups": {"company": "acme"}, "$feature/new-checkout": true,
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        SharedProperties::new(map)
    }

    const STATUSES: [u16; 4] = [200, 201, 404, 500];
    const NAMES: [&str; 3] = ["request_completed", "order_placed", "login"];

    /// `n` events of 50 users with their own properties, as the Collator encodes them.
    fn pipeline_events(n: u64, rng: &mut Rng) -> Vec<EncodedEvent> {
        let shared = process_properties();
        let users: Vec<Arc<str>> = (0..50)
            .map(|u| Arc::from(json_string(&format!("user-{u:04}"))))
            .collect();
        (0..n)
            .map(|i| {
                let own = json!({
                    "route": format!("/api/v1/orders/{}", rng.below(1_000_000)),
                    "status": STATUSES[rng.below(4) as usize],
                    "duration_ms": rng.below(2000),
                    "$session_id": Uuid::from_u64_pair(rng.next_u64(), i).to_string(),
                    "seq": i,
                });
                let event = RecordedEvent::new(
                    NAMES[rng.below(3) as usize].into(),
                    Properties::from_map(own.as_object().unwrap_or(&Map::new())),
                    UNIX_EPOCH + Duration::from_millis(1_764_000_000_000 + i * 7),
                    Uuid::now_v7(),
                    tokio::time::Instant::now(),
                );
                let user = &users[rng.below(50) as usize];
                EncodedEvent::encode(
                    &event,
                    event.members(),
                    shared.for_properties(event.own_properties()),
                    user,
                )
            })
            .collect()
    }

    fn json_of(event: &EncodedEvent) -> Vec<u8> {
        let mut out = Vec::new();
        event.write_to(&mut out);
        out
    }

    #[test]
    fn pipeline_events_come_back_byte_for_byte_sharing_their_fragments() {
        let mut rng = Rng::seeded(5);
        let events = pipeline_events(4_096, &mut rng);
        let dir = temp_path("spooled");
        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let mut scratch = Vec::new();
        let mut records = 0;
        for (i, event) in events.iter().enumerate() {
            records += event.with_spool_record(&mut scratch, |payload, shared| {
                spool.append(payload, shared);
                // The record: length, payload, reference count and references.
                4 + payload.len() + 1 + 4 * shared.len()
            });
            if (i + 1) % 256 == 0 {
                spool.flush().unwrap();
            }
        }
        spool.flush().unwrap();
        let json: usize = events.iter().map(|e| json_of(e).len()).sum();
        let on_disk = spool.bytes_on_disk() as usize;
        println!(
            "{:.0} bytes of JSON an event, a record of {:.0}, {:.1} on disk at 256 events a block: {:.1}x",
            json as f64 / 4_096.0,
            records as f64 / 4_096.0,
            on_disk as f64 / 4_096.0,
            json as f64 / on_disk as f64
        );
        drop(spool);

        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let mut back = Vec::new();
        while let Some(replay) = spool.read_back() {
            assert_eq!(replay.corrupt, 0);
            for (_, record) in replay.records {
                back.push(EncodedEvent::from_spool(record).expect("an event"));
            }
        }
        assert_eq!(back.len(), events.len());
        for (back, event) in back.iter().zip(&events) {
            assert_eq!(json_of(back), json_of(event));
        }
        // Events read back from one block share its fragments again, rather than each
        // holding a copy.
        let held: usize = back[..256].iter().map(EncodedEvent::held_bytes).sum();
        let whole: usize = events[..256].iter().map(|e| json_of(e).len()).sum();
        assert!(held * 3 < whole, "{held} bytes held for {whole} of JSON");
        // The shared properties alone are most of an event's JSON: written once a block, they
        // leave the spool far less to keep.
        assert!(
            on_disk * 10 < json,
            "{on_disk} bytes on disk for {json} of JSON"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
