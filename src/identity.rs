//! Who the events are about: the ids every event carries, resolved once at build time from the
//! builder, the correlation data and fresh values.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::correlation::Correlation;

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
    /// Explicit ids win over correlation ids, which win over generated ones; `$session_id`
    /// comes from the correlation when it has one; correlation groups are merged into the
    /// builder's (the correlation wins for the same group type).
    pub fn resolve(explicit: &ExplicitIds, correlation: &Correlation) -> Identity {
        let mut groups = explicit.groups.clone();
        groups.extend(correlation.groups.clone());
        Identity {
            distinct_id: explicit
                .distinct_id
                .clone()
                .or_else(|| correlation.distinct_id.clone()),
            anon_distinct_id: explicit
                .anon_distinct_id
                .clone()
                .or_else(|| correlation.anon_distinct_id.clone())
                .unwrap_or_else(new_id),
            device_id: explicit
                .device_id
                .clone()
                .or_else(|| correlation.device_id.clone())
                .unwrap_or_else(|| format!("DIDS-DEV-{}", new_id())),
            session_id: correlation.session_id.clone().unwrap_or_else(new_id),
            window_id: correlation.window_id.clone(),
            groups,
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
        let id = Identity::resolve(&explicit, &correlation);
        assert_eq!(id.distinct_id.as_deref(), Some("b-user"));
        assert_eq!(id.anon_distinct_id, "c-anon");
        assert_eq!(id.device_id, "c-dev");
        assert_eq!(id.session_id, "c-sess");
        assert_eq!(id.groups["org"], "c-org");
        assert_eq!(id.groups["team"], "b-team");
        assert_eq!(id.groups["repo"], "c-repo");
    }

    #[test]
    fn generated_when_nothing_given() {
        let id = Identity::resolve(&ExplicitIds::default(), &Correlation::default());
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
