//! The Collator's part in who events are about: applying changes of identity and facts in
//! order with the events, the `$identify`, `$set` and `$create_alias` events they make, the
//! saved identity, and who a check-in asks as.

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::Collator;
use crate::checkin::CheckinRequest;
use crate::event::RecordedEvent;
use crate::messages::{ChangeIdentity, IdentityChange, Stamp};
use crate::properties::Properties;

impl Collator {
    /// Applies a change of identity or facts, in its turn behind the events before it.
    pub(super) fn apply(&mut self, ChangeIdentity { change, stamp }: ChangeIdentity) {
        match change {
            IdentityChange::SetFact(fact) => {
                self.runtime_facts.insert(fact.key, fact.value);
                self.invalidate_shared();
            }
            IdentityChange::Identify(identify) => {
                self.identity.identify(identify.distinct_id);
                self.save_identity();
                self.person_properties
                    .extend(identify.set.iter().map(|(k, v)| (k.clone(), v.clone())));
                let properties = person_update(identify.set, identify.set_once);
                self.record_identity_event("$identify", properties, stamp);
            }
            IdentityChange::SetPersonProperties(update) => {
                self.person_properties
                    .extend(update.set.iter().map(|(k, v)| (k.clone(), v.clone())));
                let properties = person_update(update.set, update.set_once);
                self.record_identity_event("$set", properties, stamp);
            }
            IdentityChange::Alias(alias) => {
                let mut properties = Map::new();
                properties.insert("alias".into(), alias.alias.into());
                self.record_identity_event("$create_alias", properties, stamp);
            }
            IdentityChange::AddGroup(group) => {
                self.identity.add_group(group.group_type, group.group_key);
                self.invalidate_shared();
            }
            IdentityChange::Reset => {
                self.identity.reset(&self.config.identity);
                self.session.restart(Instant::now());
                self.identity.session_id = self.session.id.clone();
                self.person_properties.clear();
                self.flag_calls_seen.clear();
                self.invalidate_shared();
                self.save_identity();
            }
        }
    }

    /// Records the event a change of identity makes (`$identify`, `$set`, `$create_alias`),
    /// with the id and times the Recorder stamped the change with.
    fn record_identity_event(&mut self, name: &str, properties: Map<String, Value>, stamp: Stamp) {
        self.emit(RecordedEvent::new(
            name.to_string(),
            Properties::from_map(&properties),
            stamp.timestamp,
            stamp.uuid,
            stamp.received_at,
        ));
    }

    pub(super) fn save_identity(&self) {
        if let Some(saver) = &self.config.saver {
            saver.save_identity(&self.identity.persisted());
        }
    }

    pub(super) fn checkin_request(&mut self) -> CheckinRequest {
        // Server-side targeting sees what events see (minus the feature facts, which the
        // check-in is about to replace) plus the person properties set so far.
        let mut person_properties: Map<String, Value> = self
            .shared()
            .map()
            .iter()
            .filter(|(k, _)| !k.starts_with("$feature/") && *k != "$active_feature_flags")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        person_properties.extend(self.person_properties.clone());
        // Check-ins (and the stream's request) go to the primary sink's backend: what its
        // filter keeps from events, it keeps from them too.
        if let Some(primary) = self.lanes.first()
            && !primary.filter.is_all()
        {
            person_properties = primary.filter.apply(&person_properties);
        }
        CheckinRequest {
            anon_distinct_id: self.identity.anon_distinct_id.clone(),
            distinct_id: self.identity.effective_distinct_id().to_string(),
            groups: self.identity.groups.clone(),
            person_properties,
        }
    }
}

/// The properties of a `$identify` or `$set` event.
fn person_update(set: Map<String, Value>, set_once: Map<String, Value>) -> Map<String, Value> {
    let mut properties = Map::new();
    properties.insert("$set".into(), Value::Object(set));
    properties.insert("$set_once".into(), Value::Object(set_once));
    properties
}
