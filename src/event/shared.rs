//! Properties shared by many events (ids, library, host snapshot, facts, flags), serialized
//! once into a fragment that every event of the same set refers to.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::json::object_body;
use crate::properties::name_hash;

/// Properties shared by many events, serialized once.
#[derive(Debug, Clone)]
pub(crate) struct SharedProperties {
    map: Map<String, Value>,
    fragment: Arc<str>,
    /// Which names may be among the keys: an event's own name that misses it is not shared,
    /// and is not looked up in the map.
    keys: KeyFilter,
}

/// Bits of [`name_hash`] that index the filter: 4,096 bits for a few dozen keys, so that
/// nearly every name that is not a key misses.
const FILTER_BITS: u32 = 12;

#[derive(Debug, Clone)]
struct KeyFilter(Box<[u64; 1 << (FILTER_BITS - 6)]>);

impl KeyFilter {
    fn of<'a>(keys: impl Iterator<Item = &'a String>) -> Self {
        let mut words = Box::new([0u64; 1 << (FILTER_BITS - 6)]);
        for key in keys {
            let (word, bit) = Self::slot(key);
            words[word] |= bit;
        }
        KeyFilter(words)
    }

    fn slot(name: &str) -> (usize, u64) {
        let index = name_hash(name) >> (64 - FILTER_BITS);
        ((index >> 6) as usize, 1 << (index & 63))
    }

    fn may_hold(&self, name: &str) -> bool {
        let (word, bit) = Self::slot(name);
        self.0[word] & bit != 0
    }
}

impl SharedProperties {
    /// Serializes `map` (keys are unique by construction of a map).
    pub fn new(map: Map<String, Value>) -> Self {
        let fragment = Arc::from(object_body(&map));
        let keys = KeyFilter::of(map.keys());
        SharedProperties {
            map,
            fragment,
            keys,
        }
    }

    /// The properties, as a map.
    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// The fragment to use beside an event's own properties: the shared one, unless the event
    /// sets a key that is also shared, in which case the event's value wins and the key is left
    /// out of a copy made for this event alone, so the JSON never holds a key twice.
    pub fn for_event<'a>(&self, own_keys: impl Iterator<Item = &'a str> + Clone) -> Arc<str> {
        if !own_keys
            .clone()
            .any(|k| self.keys.may_hold(k) && self.map.contains_key(k))
        {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_own_key_that_is_shared_is_left_out_of_the_fragment_whatever_the_filter() {
        let mut map = Map::new();
        for i in 0..500 {
            map.insert(format!("s{i}"), json!(i));
        }
        let shared = SharedProperties::new(map);
        assert_eq!(
            &*shared.for_event(["own", "other"].into_iter()),
            &*shared.fragment
        );
        for i in (0..500).step_by(13) {
            let key = format!("s{i}");
            let fragment = shared.for_event([key.as_str()].into_iter());
            let object: Value = serde_json::from_str(&format!("{{{fragment}}}")).unwrap();
            assert_eq!(object.as_object().map(Map::len), Some(499), "{key}");
            assert!(object.get(&key).is_none(), "{key}");
        }
    }
}
