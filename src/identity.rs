//! Who the events are about: the ids every event carries, resolved once at build time from the
//! builder, the correlation data, the ids saved by earlier runs and fresh values.
//!
//! Ids handed down in the correlation data (a CI run, a parent process) describe this run
//! only: they win over saved ids, and are never saved. What is saved is the installation's own
//! identity (explicit, saved or generated ids, and changes the application makes at run time),
//! so the next run, with other correlation data or none, does not inherit them.

use std::collections::BTreeMap;

use crate::correlation::Correlation;
use crate::rng::new_id;
use crate::state::PersistedIdentity;

/// The ids and groups the Collator stamps on events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    /// Set by `Identify`; events use the anonymous id until then.
    pub distinct_id: Option<String>,
    pub anon_distinct_id: String,
    pub device_id: String,
    pub session_id: String,
    pub window_id: Option<String>,
    pub groups: BTreeMap<String, String>,
    /// The installation's own identity, without what the correlation data handed down: what
    /// is saved for the next run.
    own: PersistedIdentity,
    /// The application set the device id: `Reset` keeps it.
    device_pinned: bool,
}

/// Ids the application set explicitly on the builder.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExplicitIds {
    pub distinct_id: Option<String>,
    pub anon_distinct_id: Option<String>,
    pub device_id: Option<String>,
    pub groups: BTreeMap<String, String>,
}

impl Identity {
    /// Explicit ids win over correlation ids, which win over saved ids, which win over
    /// generated ones; `$session_id` and `$window_id` come from the correlation when it has
    /// them; groups are merged, saved < builder < correlation for the same group type. Only
    /// explicit, saved and generated ids and groups are kept for the next run.
    pub fn resolve(
        explicit: &ExplicitIds,
        saved: Option<&PersistedIdentity>,
        correlation: &Correlation,
    ) -> Identity {
        let saved = saved.cloned().unwrap_or_default();
        let mut own_groups = saved.groups;
        own_groups.extend(explicit.groups.clone());
        let own = PersistedIdentity {
            distinct_id: explicit.distinct_id.clone().or(saved.distinct_id),
            anon_distinct_id: Some(
                explicit
                    .anon_distinct_id
                    .clone()
                    .or(saved.anon_distinct_id)
                    .unwrap_or_else(new_id),
            ),
            device_id: Some(
                explicit
                    .device_id
                    .clone()
                    .or(saved.device_id)
                    .unwrap_or_else(new_device_id),
            ),
            groups: own_groups,
        };
        // Explicit ids are in `own` already: only the correlation's come before the rest of it.
        let this_run =
            |explicit: &Option<String>, handed_down: &Option<String>, own: &Option<String>| {
                explicit
                    .clone()
                    .or_else(|| handed_down.clone())
                    .or_else(|| own.clone())
            };
        let mut groups = own.groups.clone();
        groups.extend(correlation.groups.clone());
        Identity {
            distinct_id: this_run(
                &explicit.distinct_id,
                &correlation.distinct_id,
                &own.distinct_id,
            ),
            anon_distinct_id: this_run(
                &explicit.anon_distinct_id,
                &correlation.anon_distinct_id,
                &own.anon_distinct_id,
            )
            .unwrap_or_else(new_id),
            device_id: this_run(&explicit.device_id, &correlation.device_id, &own.device_id)
                .unwrap_or_else(new_device_id),
            session_id: correlation.session_id.clone().unwrap_or_else(new_id),
            window_id: correlation.window_id.clone(),
            groups,
            own,
            device_pinned: explicit.device_id.is_some(),
        }
    }

    /// What is saved across runs: the installation's own ids, never those the correlation
    /// data handed down.
    pub fn persisted(&self) -> PersistedIdentity {
        self.own.clone()
    }

    /// `Identify`: the person events are about from now on, in this run and the next.
    pub fn identify(&mut self, distinct_id: String) {
        self.own.distinct_id = Some(distinct_id.clone());
        self.distinct_id = Some(distinct_id);
    }

    /// `AddGroup`: a group every event carries from now on, in this run and the next.
    pub fn add_group(&mut self, group_type: String, group_key: String) {
        self.own
            .groups
            .insert(group_type.clone(), group_key.clone());
        self.groups.insert(group_type, group_key);
    }

    /// `Reset`: no distinct id, a new anonymous id, the groups of `start` (the identity the
    /// run began with), and a new device id unless the application set one. The session is
    /// the caller's to restart.
    pub fn reset(&mut self, start: &Identity) {
        self.distinct_id = None;
        self.anon_distinct_id = new_id();
        self.groups = start.groups.clone();
        self.own.distinct_id = None;
        self.own.anon_distinct_id = Some(self.anon_distinct_id.clone());
        self.own.groups = start.own.groups.clone();
        if !self.device_pinned {
            self.device_id = new_device_id();
            self.own.device_id = Some(self.device_id.clone());
        }
    }

    /// The id events are attributed to.
    pub fn effective_distinct_id(&self) -> &str {
        self.distinct_id
            .as_deref()
            .unwrap_or(&self.anon_distinct_id)
    }
}

/// A new device id: `DIDS-DEV-` and a UUIDv7.
fn new_device_id() -> String {
    format!("DIDS-DEV-{}", new_id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn precedence() {
        let correlation = Correlation::parse(
            r#"{"distinct_id":"c-user","$anon_distinct_id":"c-anon","$session_id":"c-sess",
                "$device_id":"c-dev","$groups":{"org":"c-org","repo":"c-repo"}}"#,
        )
        .unwrap();
        let explicit = ExplicitIds {
            distinct_id: Some("b-user".into()),
            anon_distinct_id: None,
            device_id: None,
            groups: BTreeMap::from([
                ("org".into(), "b-org".into()),
                ("team".into(), "b-team".into()),
            ]),
        };
        let id = Identity::resolve(&explicit, None, &correlation);
        assert_eq!(id.distinct_id.as_deref(), Some("b-user"));
        assert_eq!(id.anon_distinct_id, "c-anon");
        assert_eq!(id.device_id, "c-dev");
        assert_eq!(id.session_id, "c-sess");
        assert_eq!(id.groups["org"], "c-org");
        assert_eq!(id.groups["team"], "b-team");
        assert_eq!(id.groups["repo"], "c-repo");
    }

    #[test]
    fn correlation_ids_win_over_saved_ones_and_are_never_kept() {
        let correlation = Correlation::parse(
            r#"{"distinct_id":"c-user","$anon_distinct_id":"c-anon","$device_id":"c-dev",
                "$groups":{"org":"c-org"}}"#,
        )
        .unwrap();
        let saved = PersistedIdentity {
            anon_distinct_id: Some("s-anon".into()),
            device_id: Some("s-dev".into()),
            distinct_id: Some("s-user".into()),
            groups: BTreeMap::from([("org".into(), "s-org".into()), ("x".into(), "s-x".into())]),
        };
        let explicit = ExplicitIds {
            device_id: Some("b-dev".into()),
            ..ExplicitIds::default()
        };
        let id = Identity::resolve(&explicit, Some(&saved), &correlation);
        assert_eq!(id.distinct_id.as_deref(), Some("c-user"));
        assert_eq!(id.anon_distinct_id, "c-anon");
        assert_eq!(id.device_id, "b-dev");
        assert_eq!(id.groups["org"], "c-org");
        assert_eq!(id.groups["x"], "s-x");
        let kept = id.persisted();
        assert_eq!(kept.distinct_id.as_deref(), Some("s-user"));
        assert_eq!(kept.anon_distinct_id.as_deref(), Some("s-anon"));
        assert_eq!(kept.device_id.as_deref(), Some("b-dev"));
        assert_eq!(kept.groups["org"], "s-org");
    }

    #[test]
    fn changes_at_run_time_are_kept() {
        let correlation =
            Correlation::parse(r#"{"distinct_id":"c-user","$groups":{"org":"c-org"}}"#).unwrap();
        let mut id = Identity::resolve(&ExplicitIds::default(), None, &correlation);
        let start = id.clone();
        assert_eq!(id.persisted().distinct_id, None);
        id.identify("me".into());
        id.add_group("org".into(), "mine".into());
        assert_eq!(id.effective_distinct_id(), "me");
        let kept = id.persisted();
        assert_eq!(kept.distinct_id.as_deref(), Some("me"));
        assert_eq!(kept.groups["org"], "mine");
        id.reset(&start);
        assert_eq!(id.distinct_id, None);
        assert_eq!(id.groups["org"], "c-org");
        assert_ne!(id.anon_distinct_id, start.anon_distinct_id);
        assert_ne!(id.device_id, start.device_id);
        let kept = id.persisted();
        assert_eq!(kept.distinct_id, None);
        assert!(kept.groups.is_empty());
        assert_eq!(kept.device_id.as_deref(), Some(id.device_id.as_str()));
        assert_eq!(
            kept.anon_distinct_id.as_deref(),
            Some(id.anon_distinct_id.as_str())
        );
    }

    #[test]
    fn reset_keeps_a_device_id_the_application_set() {
        let explicit = ExplicitIds {
            device_id: Some("pinned".into()),
            ..ExplicitIds::default()
        };
        let mut id = Identity::resolve(&explicit, None, &Correlation::default());
        let start = id.clone();
        id.reset(&start);
        assert_eq!(id.device_id, "pinned");
        assert_eq!(id.persisted().device_id.as_deref(), Some("pinned"));
    }

    #[test]
    fn generated_when_nothing_given() {
        let id = Identity::resolve(&ExplicitIds::default(), None, &Correlation::default());
        assert_eq!(id.distinct_id, None);
        assert_eq!(id.effective_distinct_id(), id.anon_distinct_id);
        assert!(id.device_id.starts_with("DIDS-DEV-"));
        assert_ne!(id.session_id, id.anon_distinct_id);
        assert_eq!(
            Uuid::parse_str(&id.session_id).unwrap().get_version_num(),
            7
        );
    }
}
