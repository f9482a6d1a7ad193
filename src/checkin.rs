//! The check-in exchange of the "ids" protocol: what the runtime tells the backend about itself,
//! and the configuration document it gets back.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::features::{FeatureSet, Flag};

/// The body of `POST /check-in`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CheckinRequest {
    /// The anonymous id of this installation.
    #[serde(rename = "$anon_distinct_id")]
    pub anon_distinct_id: String,
    /// The identified user, or the anonymous id when nobody was identified.
    pub distinct_id: String,
    /// Group type → group key.
    pub groups: BTreeMap<String, String>,
    /// Snapshot, facts and `$set` person properties, for server-side targeting.
    pub person_properties: Map<String, Value>,
}

/// Options the server sets for this client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Whether event bodies may be compressed with zstd.
    pub zstd: bool,
}

impl Default for ServerOptions {
    /// With no `server_options`, zstd is allowed.
    fn default() -> Self {
        ServerOptions { zstd: true }
    }
}

/// A parsed check-in document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkin {
    /// Server options.
    pub server_options: ServerOptions,
    /// The feature flags.
    pub features: FeatureSet,
}

impl Checkin {
    /// The check-in as a document [`parse_checkin`] reads back (malformed flags, which were
    /// never served, are left out).
    pub fn to_document(&self) -> Vec<u8> {
        let options: Map<String, Value> = self
            .features
            .flags()
            .iter()
            .map(|(name, flag)| {
                let mut entry = Map::new();
                entry.insert("variant".into(), flag.variant.clone());
                if let Some(payload) = &flag.payload {
                    entry.insert("payload".into(), Value::String(payload.clone()));
                }
                (name.clone(), Value::Object(entry))
            })
            .collect();
        let algorithms: Vec<&str> = if self.server_options.zstd {
            vec!["zstd", "identity"]
        } else {
            vec!["identity"]
        };
        serde_json::json!({
            "server_options": {"compression_algorithms": algorithms},
            "options": options,
        })
        .to_string()
        .into_bytes()
    }
}

/// Why a check-in document was not accepted as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckinDocumentError {
    /// The document is not JSON.
    #[error("check-in document is not JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The document is JSON but not an object.
    #[error("check-in document is not a JSON object")]
    NotAnObject,
    /// The required `options` object is missing or not an object.
    #[error("check-in document has no \"options\" object")]
    MissingOptions,
    /// A PostHog `/flags` answer has neither a `flags` nor a `featureFlags` object.
    #[error("flags answer has neither a \"flags\" nor a \"featureFlags\" object")]
    MissingFlags,
}

/// Parses a check-in document. Only a document that is not an object with an `options` object
/// is an error; a malformed flag is set aside in [`FeatureSet::invalid`] and the rest served.
///
/// ```
/// let checkin = actix_telemetry::parse_checkin(br#"{"options": {"beta": {"variant": true}}}"#)?;
/// assert!(checkin.features.is_enabled("beta"));
/// # Ok::<(), actix_telemetry::CheckinDocumentError>(())
/// ```
pub fn parse_checkin(bytes: &[u8]) -> Result<Checkin, CheckinDocumentError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(CheckinDocumentError::Json)?;
    let Value::Object(mut doc) = doc else {
        return Err(CheckinDocumentError::NotAnObject);
    };
    let Some(Value::Object(options)) = doc.remove("options") else {
        return Err(CheckinDocumentError::MissingOptions);
    };
    let server_options = doc
        .get("server_options")
        .map(parse_server_options)
        .unwrap_or_default();

    let mut flags = BTreeMap::new();
    let mut invalid = BTreeMap::new();
    for (name, value) in options {
        match parse_flag(value) {
            Ok(flag) => {
                flags.insert(name, flag);
            }
            Err(reason) => {
                tracing::warn!(flag = %name, %reason, "ignoring malformed feature flag");
                invalid.insert(name, reason);
            }
        }
    }
    Ok(Checkin {
        server_options,
        features: FeatureSet::new(flags, invalid),
    })
}

/// A variant goes into every event's `$feature/<name>`: it must not nest deeper than any other
/// property value.
pub(crate) fn check_variant(variant: &Value) -> Result<(), String> {
    if crate::json::nests_deeper_than(variant, crate::json::MAX_VALUE_DEPTH) {
        return Err(format!(
            "variant nested deeper than {} levels",
            crate::json::MAX_VALUE_DEPTH
        ));
    }
    Ok(())
}

fn parse_flag(value: Value) -> Result<Flag, String> {
    let Value::Object(mut fields) = value else {
        return Err("flag is not an object".into());
    };
    let Some(variant) = fields.remove("variant") else {
        return Err("flag has no \"variant\"".into());
    };
    check_variant(&variant)?;
    let payload = match fields.remove("payload") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(format!(
                "payload must be a string holding JSON, found {}",
                json_kind(&other)
            ));
        }
    };
    Ok(Flag { variant, payload })
}

fn parse_server_options(value: &Value) -> ServerOptions {
    match value.get("compression_algorithms") {
        None => ServerOptions::default(),
        Some(Value::Array(names)) => ServerOptions {
            zstd: names.iter().any(|n| n.as_str() == Some("zstd")),
        },
        Some(other) => {
            tracing::warn!(
                found = json_kind(other),
                "server_options.compression_algorithms is not an array; sending uncompressed"
            );
            ServerOptions { zstd: false }
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
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
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_reference_document() {
        let doc = br#"{"server_options": {"compression_algorithms": ["zstd", "identity"]},
            "options": {"bool-flag": {"variant": true},
                        "str-flag": {"variant": "a", "payload": "{\"x\": 1}"},
                        "ptr-flag": {"variant": "a", "payload": "\"str-flag\""}},
            "unknown": 1}"#;
        let c = parse_checkin(doc).unwrap();
        assert!(c.server_options.zstd);
        assert_eq!(c.features.len(), 3);
        assert_eq!(c.features.variant::<bool>("bool-flag"), Some(true));
        assert_eq!(
            c.features.payload::<Value>("str-flag"),
            Some(json!({"x": 1}))
        );
        assert_eq!(
            c.features.payload::<String>("ptr-flag").as_deref(),
            Some("str-flag")
        );
    }

    #[test]
    fn compression_rules() {
        let none = parse_checkin(br#"{"options": {}}"#).unwrap();
        assert!(none.server_options.zstd);
        let empty =
            parse_checkin(br#"{"server_options": {"compression_algorithms": []}, "options": {}}"#)
                .unwrap();
        assert!(!empty.server_options.zstd);
        let unknown = parse_checkin(
            br#"{"server_options": {"compression_algorithms": ["br", "zstd"]}, "options": {}}"#,
        )
        .unwrap();
        assert!(unknown.server_options.zstd);
    }

    #[test]
    fn one_bad_flag_spoils_nothing_else() {
        let c = parse_checkin(
            br#"{"options": {"good": {"variant": "x"}, "bad": {"variant": 1, "payload": {"no": "string"}},
                 "worse": 7, "novariant": {"payload": "1"}}}"#,
        )
        .unwrap();
        assert_eq!(c.features.len(), 1);
        assert_eq!(c.features.variant::<String>("good").as_deref(), Some("x"));
        assert_eq!(c.features.invalid().len(), 3);
        assert!(c.features.invalid()["bad"].contains("payload"));
    }

    #[test]
    fn malformed_documents_are_clear_errors() {
        assert!(matches!(
            parse_checkin(b"{not json"),
            Err(CheckinDocumentError::Json(_))
        ));
        assert!(matches!(
            parse_checkin(b"[1]"),
            Err(CheckinDocumentError::NotAnObject)
        ));
        assert!(matches!(
            parse_checkin(br#"{"options": []}"#),
            Err(CheckinDocumentError::MissingOptions)
        ));
    }

    /// Arbitrary JSON values, a few levels deep.
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    "(variant|payload|options|zstd|[a-z]{1,4})",
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_bytes_or_document_shape_parses_or_fails_cleanly(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            options in json_value(),
        ) {
            let _ = parse_checkin(&bytes);
            let doc = serde_json::json!({"options": options});
            if let Ok(checkin) = parse_checkin(doc.to_string().as_bytes()) {
                // Whatever was served can be written back and read again.
                let again = parse_checkin(&checkin.to_document());
                proptest::prop_assert!(again.is_ok());
            }
        }
    }
}
