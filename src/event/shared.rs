//! Properties shared by many events (ids, library, host snapshot, facts, flags), serialized
//! once into a fragment that every event of the same set refers to.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::json::object_body;
use crate::properties::{Properties, name_hash};

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
        Self::slot_at(name_hash(name) >> (64 - FILTER_BITS))
    }

    fn slot_at(index: u64) -> (usize, u64) {
        ((index >> 6) as usize, 1 << (index & 63))
    }

    fn may_hold(&self, name: &str) -> bool {
        let (word, bit) = Self::slot(name);
        self.0[word] & bit != 0
    }

    /// [`may_hold`](Self::may_hold) for the name whose [`name_hash`] has these top 16 bits.
    fn may_hold_tag(&self, tag: u16) -> bool {
        let (word, bit) = Self::slot_at(u64::from(tag >> (16 - FILTER_BITS)));
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

    /// [`for_event`](Self::for_event) for an event's own `properties`: the filter is asked
    /// with the tags of their names they keep, so the names are read back from the text only
    /// in the rare event that one may be shared (or that there are too many to be tagged).
    pub fn for_properties(&self, properties: &Properties) -> Arc<str> {
        if let Some(tags) = properties.name_tags()
            && !tags.iter().any(|&tag| self.keys.may_hold_tag(tag))
        {
            return self.fragment.clone();
        }
        self.for_event(properties.keys())
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

    /// Shared properties `s0` to `s{n-1}`.
    fn numbered(n: usize) -> SharedProperties {
        SharedProperties::new((0..n).map(|i| (format!("s{i}"), json!(i))).collect())
    }

    #[test]
    fn the_tags_of_an_event_s_names_give_the_fragment_its_names_would() {
        let shared = numbered(40);
        // Own names drawn from the shared keys and others, a few to more than can be tagged,
        // one of them escaped in some events.
        let pool: Vec<String> = (0..40)
            .map(|i| format!("s{i}"))
            .chain((0..40).map(|i| format!("own{i}")))
            .chain(["quote\"d".to_string(), "s".to_string(), String::new()])
            .collect();
        let mut rng = crate::rng::Rng::seeded(0x2545_f491_4f6c_dd1d);
        let mut next = |n: usize| rng.below(n as u64) as usize;
        let mut shared_hits = 0;
        for _ in 0..2_000 {
            let mut properties = Properties::new();
            for _ in 0..next(12) {
                properties.insert(&pool[next(pool.len())], 1);
            }
            let by_tags = shared.for_properties(&properties);
            let by_names = shared.for_event(properties.keys());
            assert_eq!(by_tags, by_names, "{}", properties.members());
            shared_hits += usize::from(!Arc::ptr_eq(&by_tags, &shared.fragment));
        }
        assert!(shared_hits > 100, "{shared_hits} events set a shared key");
    }

    #[test]
    fn an_own_key_that_is_shared_is_left_out_of_the_fragment_whatever_the_filter() {
        let shared = numbered(500);
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
