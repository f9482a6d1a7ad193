//! What every event carries: the ids, groups and facts, the system snapshot, the session, the
//! flags it describes.

use std::time::Duration;

use super::Builder;
use crate::features::FeatureLimits;
use crate::json::{PropertyValue, checked};
use crate::session::SessionPolicy;

impl Builder {
    /// The user events are about (otherwise the correlation's, or anonymous).
    pub fn distinct_id(mut self, id: impl Into<String>) -> Self {
        self.settings.ids.distinct_id = Some(id.into());
        self
    }

    /// The anonymous id (otherwise the correlation's, or a new UUIDv7).
    pub fn anon_distinct_id(mut self, id: impl Into<String>) -> Self {
        self.settings.ids.anon_distinct_id = Some(id.into());
        self
    }

    /// The device id (otherwise the correlation's, or `DIDS-DEV-<uuidv7>`).
    pub fn device_id(mut self, id: impl Into<String>) -> Self {
        self.settings.ids.device_id = Some(id.into());
        self
    }

    /// A group every event carries in `$groups`.
    pub fn group(mut self, group_type: impl Into<String>, key: impl Into<String>) -> Self {
        self.settings
            .ids
            .groups
            .insert(group_type.into(), key.into());
        self
    }

    /// A fact: a property on every event. A NaN, an infinity or a value nested deeper than
    /// [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH) makes [`build`](Self::build) fail with a
    /// [`ConfigError`](crate::ConfigError) naming the fact.
    pub fn fact(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        let key = key.into();
        match checked(value) {
            Ok(value) => {
                self.settings.facts.insert(key, value);
            }
            Err(reason) => self.settings.refused_fact = Some((key, reason)),
        }
        self
    }

    /// The `component` property of every event: which part of the application sends it.
    pub fn component(self, component: impl Into<String>) -> Self {
        self.fact("component", component.into())
    }

    /// The `version` property of every event: the application's version.
    pub fn version(self, version: impl Into<String>) -> Self {
        self.fact("version", version.into())
    }

    /// No event carries a system snapshot older than this (default 1 s; zero reads the host
    /// after every event).
    pub fn snapshot_max_age(mut self, age: Duration) -> Self {
        self.settings.snapshot_max_age = age;
        self
    }

    /// When `$session_id` rotates (default: after 30 minutes without events or 24 hours in
    /// all). A session id from the correlation data never rotates.
    pub fn session(mut self, policy: SessionPolicy) -> Self {
        self.settings.session = policy;
        self
    }

    /// How many flags every event describes with `$feature/<name>` and
    /// `$active_feature_flags` (default: the first 100 by name, their variants within 64 KiB).
    pub fn feature_limits(mut self, limits: FeatureLimits) -> Self {
        self.settings.feature_limits = limits;
        self
    }
}
