//! The configuration stream's messages, and applying them strictly in version order.
//!
//! | event | data | effect |
//! |---|---|---|
//! | `put` | a check-in document; each flag may carry `"version"` | replaces every flag; flags absent from it are deleted |
//! | `patch` | `{"flag", "version", "variant", "payload"?}` | upserts one flag if `version` is newer than what is known of it |
//! | `delete` | `{"flag", "version"}` | removes one flag if `version` is newer; remembers the version (a tombstone) so an older `patch` cannot bring it back |
//! | `reconnect` | anything | drops and reopens the stream |

use std::collections::BTreeMap;

use serde_json::Value;

use crate::checkin::{Checkin, CheckinDocumentError, parse_checkin};
use crate::features::{FeatureSet, Flag};

use crate::transport::sse::SseEvent;

/// One understood stream message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StreamUpdate {
    Put {
        checkin: Checkin,
        versions: BTreeMap<String, u64>,
    },
    Patch {
        flag: String,
        version: u64,
        value: Flag,
    },
    Delete {
        flag: String,
        version: u64,
    },
    Reconnect,
}

/// Why a stream message was skipped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MalformedFrame {
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("{event} data is not JSON: {source}")]
    NotJson {
        event: &'static str,
        source: serde_json::Error,
    },
    #[error("{event} data lacks {field:?} or it has the wrong type")]
    Field {
        event: &'static str,
        field: &'static str,
    },
    #[error("put data is not a check-in document: {0}")]
    Put(#[from] CheckinDocumentError),
}

impl StreamUpdate {
    /// Reads one SSE event.
    pub fn parse(event: &SseEvent) -> Result<StreamUpdate, MalformedFrame> {
        match event.event.as_str() {
            "put" => {
                let checkin = parse_checkin(event.data.as_bytes())?;
                // Versions are read from the raw document: the parsed flags do not keep them.
                let versions = serde_json::from_str::<Value>(&event.data)
                    .ok()
                    .and_then(|doc| doc.get("options").and_then(Value::as_object).cloned())
                    .map(|options| {
                        options
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.get("version")?.as_u64()?)))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(StreamUpdate::Put { checkin, versions })
            }
            "patch" => {
                let doc = json("patch", &event.data)?;
                let payload = match doc.get("payload") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => {
                        return Err(MalformedFrame::Field {
                            event: "patch",
                            field: "payload",
                        });
                    }
                };
                if doc
                    .get("variant")
                    .is_some_and(|v| crate::checkin::check_variant(v).is_err())
                {
                    return Err(MalformedFrame::Field {
                        event: "patch",
                        field: "variant",
                    });
                }
                Ok(StreamUpdate::Patch {
                    flag: string(&doc, "patch", "flag")?,
                    version: number(&doc, "patch")?,
                    value: Flag {
                        variant: doc.get("variant").cloned().ok_or(MalformedFrame::Field {
                            event: "patch",
                            field: "variant",
                        })?,
                        payload,
                    },
                })
            }
            "delete" => {
                let doc = json("delete", &event.data)?;
                Ok(StreamUpdate::Delete {
                    flag: string(&doc, "delete", "flag")?,
                    version: number(&doc, "delete")?,
                })
            }
            "reconnect" => Ok(StreamUpdate::Reconnect),
            other => Err(MalformedFrame::UnknownEvent(other.to_string())),
        }
    }
}

fn json(event: &'static str, data: &str) -> Result<Value, MalformedFrame> {
    serde_json::from_str(data).map_err(|source| MalformedFrame::NotJson { event, source })
}

fn string(doc: &Value, event: &'static str, field: &'static str) -> Result<String, MalformedFrame> {
    doc.get(field)
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or(MalformedFrame::Field { event, field })
}

fn number(doc: &Value, event: &'static str) -> Result<u64, MalformedFrame> {
    doc.get("version")
        .and_then(Value::as_u64)
        .ok_or(MalformedFrame::Field {
            event,
            field: "version",
        })
}

/// Flags with the version each was last set or deleted at.
#[derive(Debug, Default, Clone)]
pub(crate) struct VersionedFlags {
    flags: BTreeMap<String, (Flag, u64)>,
    invalid: BTreeMap<String, String>,
    /// Deleted flags and the version they were deleted at.
    tombstones: BTreeMap<String, u64>,
}

impl VersionedFlags {
    fn known_version(&self, flag: &str) -> Option<u64> {
        let live = self.flags.get(flag).map(|(_, v)| *v);
        let dead = self.tombstones.get(flag).copied();
        live.max(dead)
    }

    /// A store holding `features` at version 0 (flags known before the stream started).
    pub fn from_features(features: &FeatureSet) -> Self {
        VersionedFlags {
            flags: features
                .flags()
                .iter()
                .map(|(k, f)| (k.clone(), (f.clone(), 0)))
                .collect(),
            invalid: features.invalid().clone(),
            tombstones: BTreeMap::new(),
        }
    }

    /// Applies `update`; returns whether anything was applied.
    pub fn apply(&mut self, update: StreamUpdate) -> bool {
        match update {
            StreamUpdate::Put { checkin, versions } => {
                let incoming = checkin.features.flags().clone();
                for (name, (_, version)) in &self.flags {
                    if !incoming.contains_key(name) {
                        let tomb = self.tombstones.entry(name.clone()).or_insert(0);
                        *tomb = (*tomb).max(*version);
                    }
                }
                self.flags = incoming
                    .into_iter()
                    .map(|(name, flag)| {
                        let version = versions.get(&name).copied().unwrap_or(0);
                        self.tombstones.remove(&name);
                        (name, (flag, version))
                    })
                    .collect();
                self.invalid = checkin.features.invalid().clone();
                true
            }
            StreamUpdate::Patch {
                flag,
                version,
                value,
            } => {
                if self
                    .known_version(&flag)
                    .is_some_and(|known| version <= known)
                {
                    tracing::debug!(%flag, version, "ignoring a stale patch");
                    return false;
                }
                self.tombstones.remove(&flag);
                self.invalid.remove(&flag);
                self.flags.insert(flag, (value, version));
                true
            }
            StreamUpdate::Delete { flag, version } => {
                if self
                    .known_version(&flag)
                    .is_some_and(|known| version <= known)
                {
                    tracing::debug!(%flag, version, "ignoring a stale delete");
                    return false;
                }
                self.flags.remove(&flag);
                self.tombstones.insert(flag, version);
                true
            }
            StreamUpdate::Reconnect => false,
        }
    }

    /// The flags as a set.
    pub fn features(&self) -> FeatureSet {
        FeatureSet::new(
            self.flags
                .iter()
                .map(|(k, (flag, _))| (k.clone(), flag.clone()))
                .collect(),
            self.invalid.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sse(event: &str, data: Value) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.to_string(),
        }
    }

    fn apply(store: &mut VersionedFlags, event: &str, data: Value) -> bool {
        store.apply(StreamUpdate::parse(&sse(event, data)).unwrap())
    }

    #[test]
    fn delete_then_older_patch_leaves_the_flag_absent() {
        let mut store = VersionedFlags::default();
        apply(
            &mut store,
            "put",
            json!({"options": {"f": {"variant": "a", "version": 1}}}),
        );
        assert!(apply(
            &mut store,
            "delete",
            json!({"flag": "f", "version": 2})
        ));
        assert!(!apply(
            &mut store,
            "patch",
            json!({"flag": "f", "version": 1, "variant": "b"})
        ));
        assert!(store.features().flag("f").is_none());
        assert!(apply(
            &mut store,
            "patch",
            json!({"flag": "f", "version": 3, "variant": "c"})
        ));
        assert_eq!(
            store.features().variant::<String>("f").as_deref(),
            Some("c")
        );
    }

    #[test]
    fn put_replaces_the_set_and_tombstones_the_rest() {
        let mut store = VersionedFlags::default();
        apply(
            &mut store,
            "put",
            json!({"options": {"a": {"variant": 1, "version": 5}, "b": {"variant": 2}}}),
        );
        apply(
            &mut store,
            "put",
            json!({"options": {"b": {"variant": 3}, "c": {"variant": 4}}}),
        );
        let features = store.features();
        let names: Vec<&String> = features.flags().keys().collect();
        assert_eq!(names, ["b", "c"]);
        // `a` was removed at version 5: a patch at 4 is older.
        assert!(!apply(
            &mut store,
            "patch",
            json!({"flag": "a", "version": 4, "variant": 9})
        ));
        assert!(apply(
            &mut store,
            "patch",
            json!({"flag": "a", "version": 6, "variant": 9})
        ));
    }

    #[test]
    fn same_or_older_patch_is_ignored() {
        let mut store = VersionedFlags::default();
        assert!(apply(
            &mut store,
            "patch",
            json!({"flag": "x", "version": 2, "variant": true})
        ));
        assert!(!apply(
            &mut store,
            "patch",
            json!({"flag": "x", "version": 2, "variant": false})
        ));
        assert_eq!(store.features().variant::<bool>("x"), Some(true));
    }

    #[test]
    fn malformed_frames_are_errors() {
        let bad = [
            sse("patch", json!({"flag": "x", "variant": 1})),
            sse("patch", json!({"flag": "x", "version": 1})),
            sse(
                "patch",
                json!({"flag": "x", "version": 1, "variant": 1, "payload": 3}),
            ),
            sse("delete", json!({"version": 1})),
            sse("put", json!({"no": "options"})),
            sse("bogus", json!({})),
            SseEvent {
                event: "patch".into(),
                data: "{not json".into(),
            },
        ];
        for event in bad {
            assert!(StreamUpdate::parse(&event).is_err(), "{event:?}");
        }
        assert_eq!(
            StreamUpdate::parse(&sse("reconnect", json!(null))).unwrap(),
            StreamUpdate::Reconnect
        );
    }
}
