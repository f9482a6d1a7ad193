//! Feature flags as served by a check-in: each flag has a variant (any JSON value) and an
//! optional payload (a string holding JSON). Variant and payload are read independently, so a
//! payload that does not parse never hides the variant.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// One flag as the backend sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct Flag {
    /// The variant: `true`/`false`, a string, or any other JSON value.
    pub variant: Value,
    /// The payload, still as the JSON text the backend sent.
    pub payload: Option<String>,
}

impl Flag {
    /// Whether the flag counts as on: `false`, `null` and `""` are off, anything else is on.
    pub fn is_enabled(&self) -> bool {
        match &self.variant {
            Value::Bool(b) => *b,
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            _ => true,
        }
    }
}

/// A flag's variant and payload, each parsed into the caller's type.
#[derive(Clone, Debug, PartialEq)]
pub struct Feature<V, P> {
    /// The variant.
    pub variant: V,
    /// The payload, or `None` when the flag has none or it did not parse as `P`.
    pub payload: Option<P>,
}

/// Why a read fell back to the caller's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// No such flag.
    Missing,
    /// The flag was malformed in the check-in document.
    Invalid,
    /// The flag's value is not of the requested type.
    WrongType,
    /// Following pointer flags ran into a cycle.
    PointerCycle,
}

impl Miss {
    /// The reason as it appears in `$feature_flag_called` events.
    pub fn as_str(&self) -> &'static str {
        match self {
            Miss::Missing => "missing",
            Miss::Invalid => "invalid",
            Miss::WrongType => "wrong_type",
            Miss::PointerCycle => "pointer_cycle",
        }
    }
}

/// The flags of one check-in. Malformed flags are kept apart in [`FeatureSet::invalid`] and
/// never served; the others are unaffected by them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeatureSet {
    flags: BTreeMap<String, Flag>,
    invalid: BTreeMap<String, String>,
}

impl FeatureSet {
    /// A set from valid flags and the reasons other flags were rejected.
    pub fn new(flags: BTreeMap<String, Flag>, invalid: BTreeMap<String, String>) -> Self {
        FeatureSet { flags, invalid }
    }

    /// The flag called `name`, if it is present and valid.
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.get(name)
    }

    /// Every valid flag, by name.
    pub fn flags(&self) -> &BTreeMap<String, Flag> {
        &self.flags
    }

    /// Flags that were malformed, with the reason.
    pub fn invalid(&self) -> &BTreeMap<String, String> {
        &self.invalid
    }

    /// Number of valid flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether there is no valid flag.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The variant of `name` as `T`; `None` if absent or not a `T`.
    pub fn variant<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let flag = self.flags.get(name)?;
        match T::deserialize(&flag.variant) {
            Ok(v) => Some(v),
            Err(error) => {
                tracing::debug!(flag = name, %error, "feature variant does not have the requested type");
                None
            }
        }
    }

    /// The payload of `name` parsed as `T`; `None` if absent, missing a payload, or not a `T`.
    pub fn payload<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let text = self.flags.get(name)?.payload.as_deref()?;
        match serde_json::from_str(text) {
            Ok(v) => Some(v),
            Err(error) => {
                tracing::debug!(flag = name, %error, "feature payload does not parse as the requested type");
                None
            }
        }
    }

    /// Variant and payload of `name`, parsed independently of each other.
    pub fn feature<V: DeserializeOwned, P: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Option<Feature<V, P>> {
        Some(Feature {
            variant: self.variant(name)?,
            payload: self.payload(name),
        })
    }

    /// The flag a pointer chain starting at `name` ends on: while a flag's payload is a JSON
    /// string naming another flag of this set, follow it. `None` if `name` is absent, invalid,
    /// or the chain loops.
    pub fn resolve(&self, name: &str) -> Option<(&str, &Flag)> {
        let (mut current, mut flag) = self.flags.get_key_value(name)?;
        let mut seen = vec![current.as_str()];
        while let Some(next) = flag
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<String>(p).ok())
            .and_then(|target| self.flags.get_key_value(target.as_str()))
        {
            if seen.contains(&next.0.as_str()) {
                tracing::warn!(flag = name, chain = ?seen, "pointer flags form a cycle");
                return None;
            }
            seen.push(next.0.as_str());
            (current, flag) = next;
        }
        Some((current.as_str(), flag))
    }

    /// The name to read for `name`: itself, or where its pointer chain ends when `follow`.
    /// `None` when following hits a cycle.
    pub fn target<'a>(&'a self, name: &'a str, follow: bool) -> Option<&'a str> {
        if follow {
            self.resolve(name).map(|(target, _)| target)
        } else {
            Some(name)
        }
    }

    /// Why reading `name` as a `T` variant would fall back to a default, or `None` if it would
    /// not.
    pub fn variant_miss<T: DeserializeOwned>(&self, name: &str) -> Option<Miss> {
        if self.invalid.contains_key(name) {
            return Some(Miss::Invalid);
        }
        let flag = self.flags.get(name)?;
        match T::deserialize(&flag.variant) {
            Ok(_) => None,
            Err(_) => Some(Miss::WrongType),
        }
    }

    /// Whether `name` is present and on (see [`Flag::is_enabled`]).
    pub fn is_enabled(&self, name: &str) -> bool {
        self.flags.get(name).is_some_and(Flag::is_enabled)
    }

    /// The event properties that describe these flags: `$active_feature_flags` (names of the
    /// flags that are on) and `$feature/<name>` (the variant) for every flag.
    pub fn event_properties(&self) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        let active: Vec<Value> = self
            .flags
            .iter()
            .filter(|(_, f)| f.is_enabled())
            .map(|(n, _)| Value::String(n.clone()))
            .collect();
        out.insert("$active_feature_flags".into(), Value::Array(active));
        for (name, flag) in &self.flags {
            out.insert(format!("$feature/{name}"), flag.variant.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> FeatureSet {
        let mut flags = BTreeMap::new();
        flags.insert(
            "str".to_string(),
            Flag {
                variant: json!("a"),
                payload: Some("{\"x\": 1}".into()),
            },
        );
        flags.insert(
            "off".to_string(),
            Flag {
                variant: json!(false),
                payload: None,
            },
        );
        FeatureSet::new(flags, BTreeMap::new())
    }

    #[test]
    fn variant_and_payload_are_independent() {
        let s = set();
        assert_eq!(s.variant::<String>("str").as_deref(), Some("a"));
        // The payload is an object: asking for it as a string fails, the variant still reads.
        assert_eq!(s.payload::<String>("str"), None);
        let f = s.feature::<String, String>("str").unwrap();
        assert_eq!(f.variant, "a");
        assert_eq!(f.payload, None);
        assert_eq!(s.payload::<Value>("str"), Some(json!({"x": 1})));
        assert_eq!(s.variant::<bool>("str"), None);
    }

    #[test]
    fn pointers_are_followed_and_cycles_detected() {
        let mut flags = BTreeMap::new();
        let mut add = |name: &str, variant: Value, payload: Option<&str>| {
            flags.insert(
                name.to_string(),
                Flag {
                    variant,
                    payload: payload.map(String::from),
                },
            );
        };
        add("ptr", json!("p"), Some("\"mid\""));
        add("mid", json!("m"), Some("\"end\""));
        add("end", json!("e"), Some("{\"x\": 1}"));
        add("dangling", json!("d"), Some("\"nowhere\""));
        add("loop-a", json!("a"), Some("\"loop-b\""));
        add("loop-b", json!("b"), Some("\"loop-a\""));
        add("self", json!("s"), Some("\"self\""));
        let s = FeatureSet::new(flags, BTreeMap::new());
        assert_eq!(s.resolve("ptr").map(|(n, _)| n), Some("end"));
        assert_eq!(s.resolve("end").map(|(n, _)| n), Some("end"));
        // A payload naming no flag is an ordinary payload.
        assert_eq!(s.resolve("dangling").map(|(n, _)| n), Some("dangling"));
        assert_eq!(s.resolve("loop-a"), None);
        assert_eq!(s.resolve("self"), None);
        assert_eq!(s.resolve("missing"), None);
        assert_eq!(s.target("ptr", false), Some("ptr"));
    }

    #[test]
    fn enabled_and_event_properties() {
        let s = set();
        assert!(s.is_enabled("str"));
        assert!(!s.is_enabled("off"));
        assert!(!s.is_enabled("missing"));
        let p = s.event_properties();
        assert_eq!(p["$active_feature_flags"], json!(["str"]));
        assert_eq!(p["$feature/off"], json!(false));
        assert_eq!(p["$feature/str"], json!("a"));
    }
}
