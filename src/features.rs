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
#[non_exhaustive]
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

/// How much of a flag set every event describes (see [`FeatureSet::event_properties`]): a
/// check-in with thousands of flags, or one huge variant, must not make every event too large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureLimits {
    /// At most this many flags get a `$feature/<name>` property (and a place in
    /// `$active_feature_flags`).
    pub max_flags: usize,
    /// Their variants take at most this many bytes of JSON together.
    pub max_bytes: usize,
}

impl Default for FeatureLimits {
    /// 100 flags in 64 KiB.
    fn default() -> Self {
        FeatureLimits {
            max_flags: 100,
            max_bytes: 64 * 1024,
        }
    }
}

/// Where a pointer chain ends, worked out once per flag set.
#[derive(Clone, Debug, PartialEq)]
enum Pointer {
    /// The chain from this flag ends on that one.
    EndsAt(String),
    /// The chain loops.
    Cycle,
}

/// The flags of one check-in. Malformed flags are kept apart in [`FeatureSet::invalid`] and
/// never served; the others are unaffected by them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeatureSet {
    flags: BTreeMap<String, Flag>,
    invalid: BTreeMap<String, String>,
    /// For each flag whose payload names another flag: where its chain ends. Resolved when the
    /// set is made, in one pass over the flags, so a read costs one lookup however long the
    /// chain.
    pointers: BTreeMap<String, Pointer>,
}

/// The flag `flag`'s payload points to, if it names a flag of `flags`.
fn pointee<'a>(flags: &'a BTreeMap<String, Flag>, flag: &Flag) -> Option<&'a str> {
    let target = serde_json::from_str::<String>(flag.payload.as_deref()?).ok()?;
    flags
        .get_key_value(target.as_str())
        .map(|(k, _)| k.as_str())
}

/// Resolves every pointer chain of `flags` in time linear in their number: each flag is
/// walked once, and every flag met on a walk gets the walk's answer.
fn resolve_pointers(flags: &BTreeMap<String, Flag>) -> BTreeMap<String, Pointer> {
    let mut resolved: BTreeMap<String, Pointer> = BTreeMap::new();
    let mut on_walk: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (start, flag) in flags {
        if resolved.contains_key(start) || pointee(flags, flag).is_none() {
            continue;
        }
        let mut path: Vec<&str> = vec![start.as_str()];
        on_walk.clear();
        on_walk.insert(start.as_str());
        let mut current = flag;
        let answer = loop {
            let Some(next) = pointee(flags, current) else {
                break Pointer::EndsAt(path.last().copied().unwrap_or_default().to_string());
            };
            if let Some(known) = resolved.get(next) {
                break known.clone();
            }
            if !on_walk.insert(next) {
                break Pointer::Cycle;
            }
            let Some(flag) = flags.get(next) else {
                break Pointer::EndsAt(path.last().copied().unwrap_or_default().to_string());
            };
            path.push(next);
            current = flag;
        };
        // The end of a chain is not a pointer itself; every other flag on it shares the answer.
        let end = match &answer {
            Pointer::EndsAt(end) => Some(end.clone()),
            Pointer::Cycle => None,
        };
        for name in path {
            if end.as_deref() != Some(name) {
                resolved.insert(name.to_string(), answer.clone());
            }
        }
    }
    resolved
}

impl FeatureSet {
    /// A set from valid flags and the reasons other flags were rejected.
    pub fn new(flags: BTreeMap<String, Flag>, invalid: BTreeMap<String, String>) -> Self {
        let pointers = resolve_pointers(&flags);
        FeatureSet {
            flags,
            invalid,
            pointers,
        }
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
        match self.pointers.get(name) {
            None => self.flags.get_key_value(name).map(|(k, f)| (k.as_str(), f)),
            Some(Pointer::EndsAt(end)) => {
                self.flags.get_key_value(end).map(|(k, f)| (k.as_str(), f))
            }
            Some(Pointer::Cycle) => {
                tracing::warn!(flag = name, "pointer flags form a cycle");
                None
            }
        }
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

    /// The event properties that describe these flags: `$feature/<name>` (the variant) and
    /// `$active_feature_flags` (the names of those that are on), for the first flags by name
    /// within `limits`; a flag whose variant does not fit in what is left of the byte budget
    /// is left out. The second value is how many flags were left out.
    pub fn event_properties(
        &self,
        limits: FeatureLimits,
    ) -> (serde_json::Map<String, Value>, usize) {
        let mut out = serde_json::Map::new();
        let mut active = Vec::new();
        let mut bytes = 0usize;
        let mut described = 0usize;
        for (name, flag) in &self.flags {
            if described == limits.max_flags {
                break;
            }
            let size = name.len() + flag.variant.to_string().len();
            if bytes + size > limits.max_bytes {
                continue;
            }
            bytes += size;
            described += 1;
            if flag.is_enabled() {
                active.push(Value::String(name.clone()));
            }
            out.insert(format!("$feature/{name}"), flag.variant.clone());
        }
        out.insert("$active_feature_flags".into(), Value::Array(active));
        (out, self.flags.len() - described)
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
        assert_eq!(s.resolve("mid").map(|(n, _)| n), Some("end"));
    }

    fn chain(n: usize, closed: bool) -> FeatureSet {
        let mut flags = BTreeMap::new();
        for i in 0..n {
            let next = if i + 1 < n || closed { (i + 1) % n } else { n };
            flags.insert(
                format!("f{i:06}"),
                Flag {
                    variant: json!(i),
                    payload: Some(format!("\"f{next:06}\"")),
                },
            );
        }
        FeatureSet::new(flags, BTreeMap::new())
    }

    #[test]
    fn long_pointer_chains_resolve_once_for_every_read() {
        // Reading every flag of a 50,000-flag chain: quadratic work would not finish here.
        let s = chain(50_000, false);
        for i in (0..50_000).step_by(7) {
            assert_eq!(
                s.resolve(&format!("f{i:06}")).map(|(n, _)| n),
                Some("f049999")
            );
        }
        let looped = chain(50_000, true);
        assert!(looped.resolve("f000123").is_none());
        assert!(looped.resolve("f049999").is_none());
    }

    #[test]
    fn events_describe_flags_within_the_limits() {
        let mut flags = BTreeMap::new();
        for i in 0..1000 {
            flags.insert(
                format!("f{i:04}"),
                Flag {
                    variant: json!(true),
                    payload: None,
                },
            );
        }
        flags.insert(
            "a-huge".into(),
            Flag {
                variant: json!("x".repeat(100_000)),
                payload: None,
            },
        );
        let s = FeatureSet::new(flags, BTreeMap::new());
        let limits = FeatureLimits {
            max_flags: 10,
            max_bytes: 1024,
        };
        let (p, left_out) = s.event_properties(limits);
        assert_eq!(p.len(), 11, "ten flags and the active list");
        assert!(p.get("$feature/a-huge").is_none(), "over the byte budget");
        assert_eq!(p["$active_feature_flags"].as_array().unwrap().len(), 10);
        assert_eq!(left_out, 991);
    }

    #[test]
    fn enabled_and_event_properties() {
        let s = set();
        assert!(s.is_enabled("str"));
        assert!(!s.is_enabled("off"));
        assert!(!s.is_enabled("missing"));
        let (p, left_out) = s.event_properties(FeatureLimits::default());
        assert_eq!(left_out, 0);
        assert_eq!(p["$active_feature_flags"], json!(["str"]));
        assert_eq!(p["$feature/off"], json!(false));
        assert_eq!(p["$feature/str"], json!("a"));
    }
}
