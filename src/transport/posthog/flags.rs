//! Remote feature flags: `POST {host}/flags/?v=2`, mapped into the [`Checkin`] every backend
//! hands the runtime, so the ConfigurationProxy serves PostHog's flags as process-wide flags.
//!
//! The request carries the check-in's distinct id, groups and person properties and no
//! `Authorization` (the project key is in the body). The answer is read in the v2 shape
//! (`flags`, with `metadata.payload`) or in the legacy one (`featureFlags`,
//! `featureFlagPayloads`); a malformed flag is set aside on its own, as in an "ids" check-in.
//! A 502 or 504 is retried once, shortly after.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};

use super::super::body::{MAX_EVENTS_RESPONSE_BYTES, read_capped};
use super::PostHogBackend;
use crate::checkin::{Checkin, CheckinDocumentError, CheckinRequest, ServerOptions, check_variant};
use crate::features::{FeatureSet, Flag};
use crate::transport::TransportError;

/// The pause before the one retry of a 502 or 504.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The body of `POST /flags/?v=2`.
pub(super) fn request_body(api_key: &str, request: &CheckinRequest) -> Value {
    json!({
        "token": api_key.trim(),
        "distinct_id": request.distinct_id,
        "groups": request.groups,
        "person_properties": request.person_properties,
        "group_properties": {},
        "geoip_disable": false,
    })
}

pub(super) async fn fetch(
    backend: &PostHogBackend,
    request: &CheckinRequest,
) -> Result<Checkin, TransportError> {
    let body = serde_json::to_vec(&request_body(&backend.settings.api_key, request))
        .map_err(TransportError::Encode)?;
    let mut retried = false;
    loop {
        let response = backend
            .client
            .post(backend.flags_url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
            .map_err(crate::transport::http_error)?;
        let status = response.status();
        if status.is_success() {
            let bytes = read_capped(response, backend.http.max_checkin_bytes).await?;
            return super::super::parse_document(bytes, parse_flags).await;
        }
        let _ = read_capped(response, MAX_EVENTS_RESPONSE_BYTES).await;
        if !retried
            && matches!(
                status,
                StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
            )
        {
            retried = true;
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        }
        return Err(TransportError::Status(status.as_u16()));
    }
}

/// Reads a `/flags` answer in the v2 or the legacy shape.
pub fn parse_flags(bytes: &[u8]) -> Result<Checkin, CheckinDocumentError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(CheckinDocumentError::Json)?;
    let Value::Object(mut doc) = doc else {
        return Err(CheckinDocumentError::NotAnObject);
    };
    if doc.get("errorsWhileComputingFlags") == Some(&Value::Bool(true)) {
        tracing::warn!("PostHog reported errors while computing flags; serving what it sent");
    }
    let quota_limited = match doc.get("quotaLimited") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Array(names)) => names.iter().any(|n| n.as_str() == Some("feature_flags")),
        _ => false,
    };
    if quota_limited {
        tracing::warn!("the PostHog project is over its feature flag quota");
    }
    let mut flags = BTreeMap::new();
    let mut invalid = BTreeMap::new();
    let mut put = |name: String, parsed: Result<Flag, String>| match parsed {
        Ok(flag) => {
            flags.insert(name, flag);
        }
        Err(reason) => {
            tracing::warn!(flag = %name, %reason, "ignoring malformed feature flag");
            invalid.insert(name, reason);
        }
    };
    match (doc.remove("flags"), doc.remove("featureFlags")) {
        (Some(Value::Object(v2)), _) => {
            for (name, entry) in v2 {
                put(name, v2_flag(entry));
            }
        }
        (_, Some(Value::Object(legacy))) => {
            let mut payloads = match doc.remove("featureFlagPayloads") {
                Some(Value::Object(payloads)) => payloads,
                _ => Map::new(),
            };
            for (name, value) in legacy {
                let payload = payloads.remove(&name);
                put(name, legacy_flag(value, payload));
            }
        }
        _ => return Err(CheckinDocumentError::MissingFlags),
    }
    Ok(Checkin {
        // PostHog says nothing about zstd on /flags; the PostHog backend's compression is
        // its own setting.
        server_options: ServerOptions { zstd: false },
        features: FeatureSet::new(flags, invalid),
    })
}

/// A flag of the v2 shape: `{"enabled": bool, "variant": string|null, "metadata": {"payload"}}`.
fn v2_flag(entry: Value) -> Result<Flag, String> {
    let Value::Object(mut fields) = entry else {
        return Err("flag is not an object".into());
    };
    if fields.get("failed") == Some(&Value::Bool(true)) {
        return Err("PostHog failed to evaluate it".into());
    }
    let enabled = match fields.get("enabled") {
        Some(Value::Bool(b)) => *b,
        _ => return Err("flag has no boolean \"enabled\"".into()),
    };
    let variant = match fields.remove("variant") {
        None | Some(Value::Null) => Value::Bool(enabled),
        Some(Value::String(v)) if enabled => Value::String(v),
        Some(Value::String(_)) => Value::Bool(false),
        Some(_) => return Err("\"variant\" is neither a string nor null".into()),
    };
    let payload = match fields.remove("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut metadata)) => metadata.remove("payload"),
        Some(_) => return Err("\"metadata\" is not an object".into()),
    };
    Ok(Flag {
        variant,
        payload: payload_text(payload)?,
    })
}

/// A flag of the legacy shape: `featureFlags[name]` (a bool or a variant string) and
/// `featureFlagPayloads[name]`.
fn legacy_flag(value: Value, payload: Option<Value>) -> Result<Flag, String> {
    match value {
        Value::Bool(_) | Value::String(_) => Ok(Flag {
            variant: value,
            payload: payload_text(payload)?,
        }),
        _ => Err("the flag's value is neither a boolean nor a string".into()),
    }
}

/// A payload as the JSON text a [`Flag`] holds. PostHog sends a payload as JSON text in a
/// string, or as the JSON value itself; a string that is not JSON is taken as a string value.
fn payload_text(payload: Option<Value>) -> Result<Option<String>, String> {
    let value = match payload {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(value) => value,
            Err(_) => Value::String(text),
        },
        Some(value) => value,
    };
    check_variant(&value).map_err(|reason| reason.replace("variant", "payload"))?;
    Ok(Some(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_variants_payloads_and_a_bad_flag() {
        let c = parse_flags(
            br#"{"flags": {
                "on": {"key": "on", "enabled": true, "variant": null, "metadata": {"payload": null}},
                "off": {"key": "off", "enabled": false, "variant": null},
                "multi": {"key": "multi", "enabled": true, "variant": "b",
                          "metadata": {"id": 1, "payload": "{\"x\": 1}"}},
                "object": {"enabled": true, "metadata": {"payload": {"y": [2]}}},
                "text": {"enabled": true, "metadata": {"payload": "plain words"}},
                "failed": {"enabled": false, "failed": true},
                "broken": {"enabled": "yes"},
                "worse": 7},
              "errorsWhileComputingFlags": false, "requestId": "r"}"#,
        )
        .unwrap();
        let f = &c.features;
        assert_eq!(f.variant::<bool>("on"), Some(true));
        assert_eq!(f.variant::<bool>("off"), Some(false));
        assert_eq!(f.variant::<String>("multi").as_deref(), Some("b"));
        assert_eq!(f.payload::<Value>("multi"), Some(json!({"x": 1})));
        assert_eq!(f.payload::<Value>("object"), Some(json!({"y": [2]})));
        assert_eq!(f.payload::<String>("text").as_deref(), Some("plain words"));
        assert_eq!(f.len(), 5);
        assert_eq!(f.invalid().len(), 3);
    }

    #[test]
    fn legacy_shape() {
        let c = parse_flags(
            br#"{"featureFlags": {"a": "variant-a", "b": true, "c": 3},
                 "featureFlagPayloads": {"a": "[1, 2]"}}"#,
        )
        .unwrap();
        assert_eq!(
            c.features.variant::<String>("a").as_deref(),
            Some("variant-a")
        );
        assert_eq!(c.features.payload::<Vec<u8>>("a"), Some(vec![1, 2]));
        assert_eq!(c.features.variant::<bool>("b"), Some(true));
        assert_eq!(c.features.invalid().len(), 1);
        assert!(matches!(
            parse_flags(b"{}"),
            Err(CheckinDocumentError::MissingFlags)
        ));
    }
}
