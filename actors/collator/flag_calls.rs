//! The Collator's `$feature_flag_called` events: one per distinct (user, flag, response), so a
//! flag read in a loop is recorded once.

use serde_json::{Map, Value};

use super::Collator;
use crate::event::RecordedEvent;
use crate::messages::FeatureFlagCalled;
use crate::properties::Properties;

/// How many (distinct id, flag, response) triples are remembered for de-duplicating
/// `$feature_flag_called`; past it the set starts over, so memory stays bounded.
const MAX_FLAG_CALLS_REMEMBERED: usize = 10_000;

impl Collator {
    pub(super) fn flag_called(&mut self, call: FeatureFlagCalled) {
        let key = (
            call.distinct_id
                .clone()
                .unwrap_or_else(|| self.identity.effective_distinct_id().to_string()),
            call.flag.clone(),
            call.response.to_string(),
        );
        if self.flag_calls_seen.contains(&key) {
            return;
        }
        if self.flag_calls_seen.len() >= MAX_FLAG_CALLS_REMEMBERED {
            self.flag_calls_seen.clear();
        }
        self.flag_calls_seen.insert(key);
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
