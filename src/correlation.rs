//! The correlation document a parent process hands down in `{PREFIX}_CORRELATION`.
//!
//! A CI action (or any other wrapper) that reports its own telemetry passes its ids here, so the
//! events of the tools it runs join the same person, session and groups.
//!
//! Two shapes are accepted:
//!
//! - Current: `distinct_id`, `$anon_distinct_id`, `$session_id`, `$window_id` and `$device_id`
//!   (strings) and `$groups` (an object of group name → id); every other key is a property.
//! - Legacy, recognised by a `repository` key: `repository` → distinct id, `run` → session id,
//!   `run_differentiator` → window id, `workflow` → device id, and `groups` merged with
//!   `$groups`. An explicit `$` field (or `distinct_id`) wins over its legacy counterpart, and a
//!   `$groups` entry wins over a `groups` entry of the same name. The legacy keys are consumed;
//!   every other key is a property.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Correlation data handed down by a parent process (for example a CI action).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Correlation {
    /// The person the events belong to.
    pub distinct_id: Option<String>,
    /// The anonymous id used before the person was identified.
    pub anon_distinct_id: Option<String>,
    /// The session the events belong to.
    pub session_id: Option<String>,
    /// A subdivision of the session, e.g. one attempt of a CI run.
    pub window_id: Option<String>,
    /// The device (or, for CI, the workflow) the events come from.
    pub device_id: Option<String>,
    /// Group name → group id, e.g. `github_repository` → `GHR-…`.
    pub groups: BTreeMap<String, String>,
    /// Properties to add to every event.
    pub properties: Map<String, Value>,
}

/// Why a correlation document was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorrelationError {
    /// The text is not valid JSON.
    #[error("correlation data is not valid JSON")]
    NotJson(#[source] serde_json::Error),
    /// The text is JSON but not an object.
    #[error("correlation data must be a JSON object, found {found}")]
    NotObject {
        /// What kind of JSON value was found instead (`an array`, `a string`, …).
        found: &'static str,
    },
    /// A field the document gives a meaning to has a value of the wrong type.
    #[error("correlation field `{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field, e.g. `$session_id`, or `$groups.<name>` for one group's id.
        field: String,
        /// What the field must hold.
        expected: &'static str,
        /// What kind of JSON value it held.
        found: &'static str,
    },
}

impl Correlation {
    /// Parses a correlation document.
    ///
    /// Empty or whitespace-only text means the variable carries nothing and gives
    /// `Ok(Correlation::default())`, because launchers often set it to an empty value.
    ///
    /// Value rules:
    /// - An id field that is `null`, empty or whitespace-only is treated as absent: a blank id
    ///   would join unrelated events together. Any other non-string value is an error.
    /// - `$groups`/`groups` must be an object (or `null`, meaning none). A group id that is a
    ///   string is kept; a number is converted to its decimal text, since numeric ids (such as
    ///   a repository's numeric id) are common and unambiguous; `null` or a blank string drops
    ///   the group (before merging, so a null `$groups` entry leaves a legacy `groups` entry in
    ///   place); a boolean, array or object is an error.
    /// - Values of all other keys are kept as properties unchanged.
    ///
    /// # Errors
    ///
    /// [`CorrelationError::NotJson`] for text that is not JSON,
    /// [`CorrelationError::NotObject`] for JSON that is not an object, and
    /// [`CorrelationError::WrongType`] for a known field holding the wrong kind of value.
    pub fn parse(json: &str) -> Result<Correlation, CorrelationError> {
        if json.trim().is_empty() {
            return Ok(Correlation::default());
        }
        let value: Value = serde_json::from_str(json).map_err(CorrelationError::NotJson)?;
        let mut object = match value {
            Value::Object(object) => object,
            other => {
                return Err(CorrelationError::NotObject {
                    found: json_kind(&other),
                });
            }
        };

        // Checked before anything is taken out: the legacy marker is itself one of the keys
        // consumed below.
        let legacy = object.contains_key("repository");

        let mut correlation = Correlation {
            distinct_id: take_id(&mut object, "distinct_id")?,
            anon_distinct_id: take_id(&mut object, "$anon_distinct_id")?,
            session_id: take_id(&mut object, "$session_id")?,
            window_id: take_id(&mut object, "$window_id")?,
            device_id: take_id(&mut object, "$device_id")?,
            groups: BTreeMap::new(),
            properties: Map::new(),
        };
        let explicit_groups = take_groups(&mut object, "$groups")?;

        if legacy {
            let repository = take_id(&mut object, "repository")?;
            let run = take_id(&mut object, "run")?;
            let run_differentiator = take_id(&mut object, "run_differentiator")?;
            let workflow = take_id(&mut object, "workflow")?;
            let legacy_groups = take_groups(&mut object, "groups")?;

            correlation.distinct_id = correlation.distinct_id.or(repository);
            correlation.session_id = correlation.session_id.or(run);
            correlation.window_id = correlation.window_id.or(run_differentiator);
            correlation.device_id = correlation.device_id.or(workflow);
            correlation.groups = legacy_groups;
        }
        // Explicit groups go in last so they replace legacy entries of the same name.
        correlation.groups.extend(explicit_groups);
        correlation.properties = object;
        let refused = crate::json::retain_admissible(&mut correlation.properties);
        if refused > 0 {
            tracing::warn!(
                refused,
                "correlation properties nested deeper than {} levels are ignored",
                crate::json::MAX_VALUE_DEPTH
            );
        }
        Ok(correlation)
    }
}

/// Removes `field` and reads it as an id.
fn take_id(
    object: &mut Map<String, Value>,
    field: &str,
) -> Result<Option<String>, CorrelationError> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => Ok(non_blank(id)),
        Some(other) => Err(CorrelationError::WrongType {
            field: field.to_owned(),
            expected: "a string",
            found: json_kind(&other),
        }),
    }
}

/// Removes `field` and reads it as a map of group name → id.
fn take_groups(
    object: &mut Map<String, Value>,
    field: &str,
) -> Result<BTreeMap<String, String>, CorrelationError> {
    let groups = match object.remove(field) {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(groups)) => groups,
        Some(other) => {
            return Err(CorrelationError::WrongType {
                field: field.to_owned(),
                expected: "an object of group name to id",
                found: json_kind(&other),
            });
        }
    };
    let mut out = BTreeMap::new();
    for (name, id) in groups {
        let id = match id {
            Value::Null => None,
            Value::String(id) => non_blank(id),
            Value::Number(id) => Some(id.to_string()),
            other => {
                return Err(CorrelationError::WrongType {
                    field: format!("{field}.{name}"),
                    expected: "a string, a number or null",
                    found: json_kind(&other),
                });
            }
        };
        if let Some(id) = id {
            out.insert(name, id);
        }
    }
    Ok(out)
}

fn non_blank(id: String) -> Option<String> {
    (!id.trim().is_empty()).then_some(id)
}

/// The kind of a JSON value, for error messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use serde_json::json;

    use super::*;

    fn groups(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn wire_example() {
        let c = Correlation::parse(
            r#"{"$anon_distinct_id":"github_x","correlation_source":"github-actions","github_repository_hash":"GHR-x","$session_id":"GHWJA-x","$groups":{"github_repository":"GHR-x","github_organization":"GHO-x"},"is_ci":true}"#,
        )
        .unwrap();
        assert_eq!(c.distinct_id, None);
        assert_eq!(c.anon_distinct_id.as_deref(), Some("github_x"));
        assert_eq!(c.session_id.as_deref(), Some("GHWJA-x"));
        assert_eq!(c.window_id, None);
        assert_eq!(c.device_id, None);
        assert_eq!(
            c.groups,
            groups(&[
                ("github_repository", "GHR-x"),
                ("github_organization", "GHO-x")
            ])
        );
        let expected: Map<String, Value> = json!({
            "correlation_source": "github-actions",
            "github_repository_hash": "GHR-x",
            "is_ci": true,
        })
        .as_object()
        .unwrap()
        .clone();
        assert_eq!(c.properties, expected);
    }

    #[test]
    fn current_shape_all_ids() {
        let c = Correlation::parse(
            r#"{"distinct_id":"d","$anon_distinct_id":"a","$session_id":"s","$window_id":"w","$device_id":"dev"}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            Correlation {
                distinct_id: Some("d".into()),
                anon_distinct_id: Some("a".into()),
                session_id: Some("s".into()),
                window_id: Some("w".into()),
                device_id: Some("dev".into()),
                ..Correlation::default()
            }
        );
    }

    #[test]
    fn legacy_keys_are_properties_in_current_shape() {
        let c = Correlation::parse(r#"{"run":"r","groups":{"g":"x"}}"#).unwrap();
        assert_eq!(c.session_id, None);
        assert!(c.groups.is_empty());
        assert_eq!(c.properties["run"], json!("r"));
        assert_eq!(c.properties["groups"], json!({"g": "x"}));
    }

    #[test]
    fn legacy_shape_maps_fields() {
        let c = Correlation::parse(
            r#"{"repository":"repo","run":"run-1","run_differentiator":"attempt-2","workflow":"wf","groups":{"org":"o","none":null},"job":"build"}"#,
        )
        .unwrap();
        assert_eq!(c.distinct_id.as_deref(), Some("repo"));
        assert_eq!(c.session_id.as_deref(), Some("run-1"));
        assert_eq!(c.window_id.as_deref(), Some("attempt-2"));
        assert_eq!(c.device_id.as_deref(), Some("wf"));
        assert_eq!(c.groups, groups(&[("org", "o")]));
        let keys: Vec<&str> = c.properties.keys().map(String::as_str).collect();
        assert_eq!(keys, ["job"]);
    }

    #[test]
    fn legacy_shape_explicit_fields_win() {
        let c = Correlation::parse(
            r#"{"repository":"repo","distinct_id":"person","run":"run-1","$session_id":"sess","run_differentiator":"attempt","$window_id":"win","workflow":"wf","$device_id":"dev","groups":{"org":"legacy-org","team":"t"},"$groups":{"org":"new-org","repo":"r"},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(c.distinct_id.as_deref(), Some("person"));
        assert_eq!(c.session_id.as_deref(), Some("sess"));
        assert_eq!(c.window_id.as_deref(), Some("win"));
        assert_eq!(c.device_id.as_deref(), Some("dev"));
        assert_eq!(
            c.groups,
            groups(&[("org", "new-org"), ("repo", "r"), ("team", "t")])
        );
        let keys: Vec<&str> = c.properties.keys().map(String::as_str).collect();
        assert_eq!(keys, ["extra"]);
    }

    #[test]
    fn legacy_shape_falls_back_when_explicit_is_blank_or_null() {
        let c = Correlation::parse(r#"{"repository":"repo","run":"run-1","$session_id":null}"#)
            .unwrap();
        assert_eq!(c.session_id.as_deref(), Some("run-1"));
        let c = Correlation::parse(r#"{"repository":"repo","run":"run-1","$session_id":"  "}"#)
            .unwrap();
        assert_eq!(c.session_id.as_deref(), Some("run-1"));
    }

    #[test]
    fn null_groups_are_dropped() {
        let c = Correlation::parse(r#"{"$groups":{"a":"1","b":null,"c":""}}"#).unwrap();
        assert_eq!(c.groups, groups(&[("a", "1")]));
        // A null explicit entry removes nothing from the legacy groups.
        let c = Correlation::parse(r#"{"repository":"r","groups":{"a":"x"},"$groups":{"a":null}}"#)
            .unwrap();
        assert_eq!(c.groups, groups(&[("a", "x")]));
        let c = Correlation::parse(r#"{"$groups":null}"#).unwrap();
        assert!(c.groups.is_empty());
    }

    #[test]
    fn numeric_group_ids_become_strings() {
        let c = Correlation::parse(r#"{"$groups":{"repo":12345,"ratio":1.5}}"#).unwrap();
        assert_eq!(c.groups, groups(&[("repo", "12345"), ("ratio", "1.5")]));
    }

    #[test]
    fn empty_input_is_not_set() {
        assert_eq!(Correlation::parse("").unwrap(), Correlation::default());
        assert_eq!(Correlation::parse(" \n\t").unwrap(), Correlation::default());
        assert_eq!(Correlation::parse("{}").unwrap(), Correlation::default());
    }

    #[test]
    fn malformed_json_is_an_error() {
        let err = Correlation::parse(r#"{"$session_id": "#).unwrap_err();
        assert!(matches!(err, CorrelationError::NotJson(_)), "{err:?}");
        assert!(err.source().is_some());
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[test]
    fn non_object_is_an_error() {
        for (input, kind) in [
            ("[1, 2]", "an array"),
            (r#""text""#, "a string"),
            ("42", "a number"),
            ("null", "null"),
        ] {
            let err = Correlation::parse(input).unwrap_err();
            assert!(
                matches!(err, CorrelationError::NotObject { found } if found == kind),
                "{input}: {err:?}"
            );
            assert!(err.to_string().contains("JSON object"), "{err}");
        }
    }

    #[test]
    fn wrong_type_names_the_field() {
        let cases = [
            (r#"{"$session_id": 5}"#, "$session_id"),
            (r#"{"distinct_id": true}"#, "distinct_id"),
            (r#"{"$groups": []}"#, "$groups"),
            (r#"{"$groups": {"org": {"id": 1}}}"#, "$groups.org"),
            (r#"{"$groups": {"org": false}}"#, "$groups.org"),
            (r#"{"repository": ["r"]}"#, "repository"),
            (r#"{"repository": "r", "groups": "g"}"#, "groups"),
            (r#"{"repository": "r", "run": 7}"#, "run"),
        ];
        for (input, field) in cases {
            let err = Correlation::parse(input).unwrap_err();
            match &err {
                CorrelationError::WrongType { field: named, .. } => {
                    assert_eq!(named, field, "{input}");
                }
                other => panic!("{input}: expected WrongType, got {other:?}"),
            }
            assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_parses_or_fails_cleanly(text in ".{0,200}", key in "[a-z_]{1,12}", value in ".{0,20}") {
            let _ = Correlation::parse(&text);
            let doc = serde_json::json!({ key: value, "nested": {"a": [1, {"b": value.clone()}]} });
            proptest::prop_assert!(Correlation::parse(&doc.to_string()).is_ok());
        }
    }
}
