//! The part of every event the Collator builds once and reuses: the shared properties (ids,
//! library, snapshot, facts and feature facts, in their precedence) and the distinct id as
//! JSON, each made again only when what it is built from changed.

use std::sync::Arc;

use serde_json::{Map, json};

use super::Collator;
use crate::event::{SharedProperties, json_string};
use crate::{LIB_NAME, LIB_VERSION};

impl Collator {
    pub(super) fn shared(&mut self) -> &SharedProperties {
        let identity = &self.identity;
        let snapshot = &self.snapshot;
        let config = &self.config;
        let runtime_facts = &self.runtime_facts;
        let feature_properties = &self.feature_properties;
        self.shared.get_or_insert_with(|| {
            let mut map = Map::new();
            map.insert("$lib".into(), LIB_NAME.into());
            map.insert("$lib_version".into(), LIB_VERSION.into());
            map.insert(
                "$anon_distinct_id".into(),
                identity.anon_distinct_id.clone().into(),
            );
            map.insert("$device_id".into(), identity.device_id.clone().into());
            map.insert("$session_id".into(), identity.session_id.clone().into());
            if let Some(window) = &identity.window_id {
                map.insert("$window_id".into(), window.clone().into());
            }
            map.insert("$groups".into(), json!(identity.groups));
            if let Some(snapshot) = snapshot {
                snapshot.write_properties(&mut map);
            }
            for facts in [
                &config.builder_facts,
                &config.correlation_facts,
                runtime_facts,
            ] {
                map.extend(facts.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            map.extend(
                feature_properties
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            SharedProperties::new(map)
        })
    }

    /// Something the shared properties are built from changed.
    pub(super) fn invalidate_shared(&mut self) {
        self.shared = None;
        for lane in &mut self.lanes {
            lane.shared = None;
        }
    }

    /// The effective distinct id as a JSON string, made again only when it changed.
    pub(super) fn distinct_id_json(&mut self) -> Arc<str> {
        let current = self.identity.effective_distinct_id();
        match &self.distinct_id {
            Some((raw, json)) if raw == current => json.clone(),
            _ => {
                let json: Arc<str> = Arc::from(json_string(current));
                self.distinct_id = Some((current.to_string(), json.clone()));
                json
            }
        }
    }
}
