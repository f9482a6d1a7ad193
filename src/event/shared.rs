//! Properties shared by many events (ids, library, host snapshot, facts, flags), serialized
//! once into a fragment that every event of the same set refers to.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::json::object_body;

/// Properties shared by many events, serialized once.
#[derive(Debug, Clone)]
pub(crate) struct SharedProperties {
    map: Map<String, Value>,
    fragment: Arc<str>,
}

impl SharedProperties {
    /// Serializes `map` (keys are unique by construction of a map).
    pub fn new(map: Map<String, Value>) -> Self {
        let fragment = Arc::from(object_body(&map));
        SharedProperties { map, fragment }
    }

    /// The properties, as a map.
    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// The fragment to use beside an event's own properties: the shared one, unless the event
    /// sets a key that is also shared, in which case the event's value wins and the key is left
    /// out of a copy made for this event alone, so the JSON never holds a key twice.
    pub fn for_event<'a>(&self, own_keys: impl Iterator<Item = &'a str> + Clone) -> Arc<str> {
        if !own_keys.clone().any(|k| self.map.contains_key(k)) {
            return self.fragment.clone();
        }
        let filtered: Map<String, Value> = self
            .map
            .iter()
            .filter(|(k, _)| !own_keys.clone().any(|o| o == k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Arc::from(object_body(&filtered))
    }
}
