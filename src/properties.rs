//! An event's own properties, kept as compact JSON text from the moment they are set.
//!
//! A recorded event can wait in a mailbox behind a burst of others; as a map of JSON values it
//! would cost several hundred bytes even with one property (a B-tree node), as text it costs
//! what it says. The text is also exactly what goes on the wire, so it is written once.

use serde_json::{Map, Value};

use crate::event::push_json_string;

/// Properties of one event: unique names, JSON values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    /// `"a":1,"b":"x"` (the members of a JSON object, without braces).
    members: String,
    keys: Vec<Box<str>>,
}

impl Properties {
    /// No properties.
    pub fn new() -> Self {
        Properties::default()
    }

    /// Sets `key` to `value`, replacing an earlier value of the same name.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        if self.keys.iter().any(|k| **k == *key) {
            // Rare: rebuild rather than edit text in place.
            let mut map = self.to_map();
            map.insert(key, value);
            *self = Properties::from_map(&map);
            return;
        }
        if !self.members.is_empty() {
            self.members.push(',');
        }
        push_json_string(&mut self.members, &key);
        self.members.push(':');
        // `Value`'s Display is its compact JSON text.
        self.members.push_str(&value.to_string());
        self.keys.push(key.into_boxed_str());
    }

    /// The properties of `map`.
    pub fn from_map(map: &Map<String, Value>) -> Self {
        let object = serde_json::to_string(map).unwrap_or_else(|_| "{}".into());
        let members = object
            .strip_prefix('{')
            .and_then(|o| o.strip_suffix('}'))
            .unwrap_or("")
            .to_string();
        Properties {
            members,
            keys: map.keys().map(|k| Box::from(k.as_str())).collect(),
        }
    }

    /// The properties as a map.
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(&format!("{{{}}}", self.members)).unwrap_or_default()
    }

    /// Their names, in the order they were set.
    pub fn keys(&self) -> impl Iterator<Item = &str> + Clone {
        self.keys.iter().map(|k| &**k)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The JSON members, `"a":1,"b":"x"`.
    pub(crate) fn members(&self) -> &str {
        &self.members
    }
}

impl From<Map<String, Value>> for Properties {
    fn from(map: Map<String, Value>) -> Self {
        Properties::from_map(&map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_map_agree_and_names_stay_unique() {
        let mut p = Properties::new();
        p.insert("a", 1);
        p.insert("quote\"d", json!({"x": [1, "y"]}));
        p.insert("a", "again");
        let map = p.to_map();
        assert_eq!(
            map,
            *json!({"a": "again", "quote\"d": {"x": [1, "y"]}})
                .as_object()
                .unwrap()
        );
        assert_eq!(p.len(), 2);
        let object: Value = serde_json::from_str(&format!("{{{}}}", p.members())).unwrap();
        assert_eq!(object, Value::Object(map.clone()));
        assert_eq!(Properties::from_map(&map).to_map(), map);
        assert!(Properties::new().members().is_empty());
    }
}
