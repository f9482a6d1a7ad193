//! Who the events are about: the ids every event carries, resolved once at build time from the
//! builder, the correlation data and fresh values.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::correlation::Correlation;
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
    /// Explicit ids win over saved ids, which win over correlation ids, which win over
    /// generated ones; `$session_id` comes from the correlation when it has one; groups are
    /// merged, saved < builder < correlation for the same group type.
    pub fn resolve(
        explicit: &ExplicitIds,
        saved: Option<&PersistedIdentity>,
        correlation: &Correlation,
    ) -> Identity {
        let saved = saved.cloned().unwrap_or_default();
        let mut groups = saved.groups;
        groups.extend(explicit.groups.clone());
        groups.extend(correlation.groups.clone());
        Identity {
            distinct_id: explicit
                .distinct_id
                .clone()
                .or(saved.distinct_id)
                .or_else(|| correlation.distinct_id.clone()),
            anon_distinct_id: explicit
                .anon_distinct_id
                .clone()
                .or(saved.anon_distinct_id)
                .or_else(|| correlation.anon_distinct_id.clone())
                .unwrap_or_else(new_id),
            device_id: explicit
                .device_id
                .clone()
                .or(saved.device_id)
                .or_else(|| correlation.device_id.clone())
                .unwrap_or_else(|| format!("DIDS-DEV-{}", new_id())),
            session_id: correlation.session_id.clone().unwrap_or_else(new_id),
            window_id: correlation.window_id.clone(),
            groups,
        }
    }

    /// What is saved across runs.
    pub fn persisted(&self) -> PersistedIdentity {
        PersistedIdentity {
            anon_distinct_id: Some(self.anon_distinct_id.clone()),
            device_id: Some(self.device_id.clone()),
            distinct_id: self.distinct_id.clone(),
            groups: self.groups.clone(),
        }
    }

    /// The id events are attributed to.
    pub fn effective_distinct_id(&self) -> &str {
        self.distinct_id
            .as_deref()
            .unwrap_or(&self.anon_distinct_id)
    }
}

/// A new UUIDv7 as text.
pub(crate) fn new_id() -> String {
    Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn saved_ids_sit_between_explicit_and_correlation() {
        let correlation =
            Correlation::parse(r#"{"distinct_id":"c-user","$anon_distinct_id":"c-anon"}"#).unwrap();
        let saved = PersistedIdentity {
            anon_distinct_id: Some("s-anon".into()),
            device_id: Some("s-dev".into()),
            distinct_id: Some("s-user".into()),
            groups: BTreeMap::from([("org".into(), "s-org".into())]),
        };
        let explicit = ExplicitIds {
            device_id: Some("b-dev".into()),
            ..ExplicitIds::default()
        };
        let id = Identity::resolve(&explicit, Some(&saved), &correlation);
        assert_eq!(id.distinct_id.as_deref(), Some("s-user"));
        assert_eq!(id.anon_distinct_id, "s-anon");
        assert_eq!(id.device_id, "b-dev");
        assert_eq!(id.groups["org"], "s-org");
        assert_eq!(id.persisted().device_id.as_deref(), Some("b-dev"));
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
