//! Which event properties a sink may see: an allow-list, a deny-list, and the identity fields a
//! backend needs, which always pass.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Properties every sink receives whatever its lists say: without them a backend cannot tell
/// events apart or attribute them.
pub const ALWAYS_PASS: [&str; 7] = [
    "$lib",
    "$lib_version",
    "$anon_distinct_id",
    "$device_id",
    "$session_id",
    "$window_id",
    "$groups",
];

/// The properties that carry person properties, filtered member by member.
const PERSON_SET: &str = "$set";
const PERSON_SET_ONCE: &str = "$set_once";

/// An allow-list and a deny-list of property names.
///
/// ```
/// use actix_telemetry::PropertyFilter;
/// let filter = PropertyFilter::all().deny(["email"]);
/// assert!(!filter.passes("email"));
/// assert!(filter.passes("$session_id"), "identity fields always pass");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PropertyFilter {
    allow: Option<BTreeSet<String>>,
    deny: BTreeSet<String>,
}

impl PropertyFilter {
    /// Lets every property through.
    pub fn all() -> Self {
        PropertyFilter::default()
    }

    /// Lets through only these properties (and [`ALWAYS_PASS`]).
    pub fn allow<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.allow
            .get_or_insert_with(BTreeSet::new)
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Never lets these properties through (except [`ALWAYS_PASS`]); wins over the allow-list.
    pub fn deny<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.deny.extend(names.into_iter().map(Into::into));
        self
    }

    /// Whether every property passes.
    pub fn is_all(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }

    /// Whether the property `name` passes.
    pub fn passes(&self, name: &str) -> bool {
        ALWAYS_PASS.contains(&name)
            || (self.allow.as_ref().is_none_or(|a| a.contains(name)) && !self.deny.contains(name))
    }

    /// The properties of `map` that pass. Person properties nested in `$set` and
    /// `$set_once` pass by the same lists: `deny(["email"])` removes `$set.email` too.
    pub fn apply(&self, map: &Map<String, Value>) -> Map<String, Value> {
        map.iter()
            .filter(|(k, _)| self.passes(k))
            .map(|(k, v)| {
                let value = match (k.as_str(), v) {
                    (PERSON_SET | PERSON_SET_ONCE, Value::Object(person)) => {
                        Value::Object(self.apply_flat(person))
                    }
                    _ => v.clone(),
                };
                (k.clone(), value)
            })
            .collect()
    }

    fn apply_flat(&self, map: &Map<String, Value>) -> Map<String, Value> {
        map.iter()
            .filter(|(k, _)| self.passes(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_and_identity_fields() {
        let props = json!({"$session_id": "s", "email": "a@b", "plan": "pro", "path": "/x"});
        let props = props.as_object().unwrap();
        let allow = PropertyFilter::all()
            .allow(["plan", "email"])
            .deny(["email", "$session_id"]);
        let kept: Vec<String> = allow.apply(props).keys().cloned().collect();
        assert_eq!(kept, ["$session_id", "plan"]);
        let deny = PropertyFilter::all().deny(["email"]);
        assert_eq!(deny.apply(props).len(), 3);
        assert!(PropertyFilter::all().is_all());
        let person = json!({"$set": {"email": "a@b", "plan": "pro"}, "$set_once": {"email": "x"}});
        let kept = deny.apply(person.as_object().unwrap());
        assert_eq!(
            Value::Object(kept),
            json!({"$set": {"plan": "pro"}, "$set_once": {}})
        );
        assert!(!deny.is_all());
    }
}
