//! The Collator's `$feature_flag_called` events: one per distinct (user, flag, response), so a
//! flag read in a loop is recorded once.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::Collator;
use crate::event::RecordedEvent;
use crate::messages::FeatureFlagCalled;
use crate::properties::Properties;

/// How many (distinct id, flag, response) triples are remembered for de-duplicating
/// `$feature_flag_called`; past it the set starts over, so memory stays bounded.
const MAX_FLAG_CALLS_REMEMBERED: usize = 10_000;

/// The (distinct id, flag, response) triples `$feature_flag_called` was made for. Looked up by
/// reference: a repeat, which nearly every read of a flag in a request handler is, costs two
/// lookups and a comparison, and no allocation.
#[derive(Debug, Default)]
pub(super) struct FlagCallsSeen {
    /// Responses seen, by flag and then by distinct id (a flag has few responses).
    by_flag: HashMap<String, HashMap<String, Vec<Value>>>,
    len: usize,
}

impl FlagCallsSeen {
    /// Whether the triple is new, remembering it if so.
    fn first(&mut self, distinct_id: &str, flag: &str, response: &Value) -> bool {
        let seen = self
            .by_flag
            .get(flag)
            .and_then(|ids| ids.get(distinct_id))
            .is_some_and(|responses| responses.contains(response));
        if seen {
            return false;
        }
        if self.len >= MAX_FLAG_CALLS_REMEMBERED {
            self.clear();
        }
        self.len += 1;
        self.by_flag
            .entry(flag.to_string())
            .or_default()
            .entry(distinct_id.to_string())
            .or_default()
            .push(response.clone());
        true
    }

    /// Forgets every triple (a new identity reads flags afresh).
    pub(super) fn clear(&mut self) {
        self.by_flag.clear();
        self.len = 0;
    }
}

impl Collator {
    pub(super) fn flag_called(&mut self, call: FeatureFlagCalled) {
        let distinct_id = call
            .distinct_id
            .as_deref()
            .unwrap_or_else(|| self.identity.effective_distinct_id());
        if !self
            .flag_calls_seen
            .first(distinct_id, &call.flag, &call.response)
        {
            return;
        }
        // Only a read that makes an event is an accepted event (the Recorder does not count
        // flag reads: it cannot know which are repeats).
        self.flag_events += 1;
        let mut properties = Map::new();
        properties.insert("$feature_flag".into(), call.flag.into());
        properties.insert("$feature_flag_response".into(), call.response);
        if let Some(miss) = call.default_used {
            properties.insert("$feature_flag_default".into(), Value::Bool(true));
            properties.insert("$feature_flag_default_reason".into(), miss.as_str().into());
        }
        let mut properties = Properties::from_map(&properties);
        // A read for one user of a multi-user service is that user's event.
        if let Some(id) = &call.distinct_id {
            properties.set_owner(id);
        }
        self.emit(RecordedEvent::new(
            "$feature_flag_called".to_string(),
            properties,
            call.stamp.timestamp,
            call.stamp.uuid,
            call.stamp.received_at,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_first_of_a_triple_counts_until_the_set_starts_over() {
        let mut seen = FlagCallsSeen::default();
        assert!(seen.first("u1", "beta", &json!(true)));
        assert!(!seen.first("u1", "beta", &json!(true)));
        assert!(seen.first("u1", "beta", &json!(false)), "another response");
        assert!(seen.first("u2", "beta", &json!(true)), "another user");
        assert!(seen.first("u1", "gamma", &json!(true)), "another flag");
        // As JSON these differ ("1" and "1.0"), and so they do here.
        assert!(seen.first("u1", "n", &json!(1)));
        assert!(seen.first("u1", "n", &json!(1.0)));
        seen.clear();
        assert!(seen.first("u1", "beta", &json!(true)), "forgotten by clear");
        for i in 0..MAX_FLAG_CALLS_REMEMBERED {
            seen.first("u", &format!("f{i}"), &json!(true));
        }
        assert!(seen.len <= MAX_FLAG_CALLS_REMEMBERED);
        assert!(
            seen.first("u1", "beta", &json!(true)),
            "forgotten when the set started over"
        );
    }
}
