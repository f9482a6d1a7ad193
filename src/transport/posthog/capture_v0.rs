//! Capture v0: `POST {host}/batch/` with `{"api_key":…,"sent_at":…,"batch":[…]}`, gzip when
//! compression is on. The body is built anew for every attempt from the same events, so each
//! event's `uuid` and `timestamp` are identical on every attempt while `sent_at` (the server's
//! reference for clock skew) is the time of that attempt.

use std::sync::Arc;
use std::time::SystemTime;

use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};

use super::super::body::{MAX_EVENTS_RESPONSE_BYTES, read_capped};
use super::{PostHogBackend, build_body, classify, failed, retry_after};
use crate::event::EncodedEvent;
use crate::json::push_json_string;
use crate::timestamp::rfc3339_bytes;
use crate::transport::DeliveryOutcome;

/// The body of `POST /batch/`, uncompressed.
pub(super) fn encode(
    api_key: &str,
    historical_migration: bool,
    events: &[EncodedEvent],
    sent_at: SystemTime,
) -> Vec<u8> {
    let size: usize = events.iter().map(|e| e.encoded_len() + 2).sum();
    let mut out = Vec::with_capacity(size + api_key.len() + 96);
    let mut key = String::with_capacity(api_key.len() + 2);
    push_json_string(&mut key, api_key);
    out.extend_from_slice(b"{\"api_key\":");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b",\"sent_at\":\"");
    out.extend_from_slice(&rfc3339_bytes(sent_at));
    out.extend_from_slice(b"\",");
    super::write_batch(&mut out, historical_migration, events);
    out
}

pub(super) async fn deliver(
    backend: &PostHogBackend,
    events: Arc<[EncodedEvent]>,
) -> DeliveryOutcome {
    let settings = backend.settings.clone();
    let compression = settings.compression;
    let size: usize = events.iter().map(EncodedEvent::encoded_len).sum();
    let body = build_body(size, move || {
        let json = encode(
            &settings.api_key,
            settings.historical_migration,
            &events,
            SystemTime::now(),
        );
        compression
            .encode(json)
            .map_err(|e| format!("compressing the batch: {e}"))
    })
    .await;
    let body = match body {
        Ok(body) => body,
        Err(reason) => {
            return DeliveryOutcome::Retry {
                after: None,
                reason,
            };
        }
    };
    let mut request = backend
        .client
        .post(backend.capture_url.clone())
        .header(CONTENT_TYPE, "application/json");
    if let Some(token) = compression.token() {
        request = request.header(CONTENT_ENCODING, token);
    }
    let response = match request.body(body).send().await {
        Ok(response) => response,
        Err(error) => return failed(error),
    };
    let status = response.status();
    let after = retry_after(&response);
    // Read so the connection goes back to the pool; a 2xx whose body breaks off is no
    // delivery anyone can vouch for.
    if let Err(error) = read_capped(response, MAX_EVENTS_RESPONSE_BYTES).await
        && status.is_success()
    {
        return DeliveryOutcome::Retry {
            after,
            reason: format!("HTTP {status}, but {error}"),
        };
    }
    classify(status, after)
}
