//! Capture v1: `POST {host}/i/v1/analytics/events` with `{"created_at":…,"batch":[…]}`, the key
//! in `Authorization: Bearer`, and the request headers PostHog uses to tell attempts apart and
//! to correct clock skew. A 200 answers for each event: `retry` events go again (and only
//! they), `drop` events are counted, anything else is final.
//!
//! Attempts of one request share its `PostHog-Request-Id`; `PostHog-Attempt` counts them and
//! `PostHog-Request-Timestamp` is the moment of each. The Submitter owns the retries (backoff,
//! spool, shutdown), so the backend remembers each unfinished request by the uuid of its first
//! event, which a retried batch keeps: the whole batch again after a failed request, or the
//! batch of its `retry` events after a partial answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::Value;
use uuid::Uuid;

use super::super::body::{MAX_EVENTS_RESPONSE_BYTES, read_capped};
use super::{PostHogBackend, build_body, classify, failed, retry_after};
use crate::event::EncodedEvent;
use crate::timestamp::{rfc3339, rfc3339_bytes};
use crate::transport::DeliveryOutcome;

/// `PostHog-Sdk-Info`: the same library and version every event carries in `$lib` and
/// `$lib_version`, which the server takes from this header.
const SDK_INFO: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));
/// Unfinished requests remembered at most: past it the memory starts over, and a request
/// retried after that gets a new id (the server then sees a new request, nothing is lost).
const MAX_PENDING_REQUESTS: usize = 4096;
/// Bytes of the answer allowed per event of the batch, beyond the fixed cap: an entry is a
/// uuid, a result and a short detail tag.
const ANSWER_BYTES_PER_EVENT: usize = 160;

/// One request across its attempts.
#[derive(Clone, Copy, Debug)]
struct Pending {
    id: Uuid,
    attempt: u32,
    created_at: SystemTime,
}

/// Unfinished requests by the uuid of their first event.
#[derive(Debug, Default)]
pub(super) struct Requests(Mutex<HashMap<Uuid, Pending>>);

impl Requests {
    /// The request whose next attempt carries `first`, or a new one.
    fn take(&self, first: Uuid) -> Pending {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&first).unwrap_or_else(|| Pending {
            id: Uuid::now_v7(),
            attempt: 1,
            created_at: SystemTime::now(),
        })
    }

    /// `pending` goes again, its next batch starting with `first`.
    fn again(&self, first: Uuid, pending: Pending) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_PENDING_REQUESTS {
            map.clear();
        }
        map.insert(
            first,
            Pending {
                attempt: pending.attempt.saturating_add(1),
                ..pending
            },
        );
    }
}

/// The body of `POST /i/v1/analytics/events`, uncompressed.
pub(super) fn encode(
    historical_migration: bool,
    events: &[EncodedEvent],
    created_at: SystemTime,
) -> Vec<u8> {
    let size: usize = events.iter().map(|e| e.encoded_len() + 2).sum();
    let mut out = Vec::with_capacity(size + 96);
    out.extend_from_slice(b"{\"created_at\":\"");
    out.extend_from_slice(&rfc3339_bytes(created_at));
    out.extend_from_slice(b"\",");
    super::write_batch(&mut out, historical_migration, events);
    out
}

/// The indices of the events a 200 marked `retry` and `drop`. An answer that is not the
/// documented shape, or that leaves an event out, means delivered: only PostHog's word that an
/// event should go again sends it again.
pub(super) fn per_event(body: &[u8], events: &[EncodedEvent]) -> (Vec<usize>, Vec<usize>) {
    let (mut retry, mut dropped) = (Vec::new(), Vec::new());
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(body) else {
        return (retry, dropped);
    };
    let Some(Value::Object(results)) = answer.remove("results") else {
        return (retry, dropped);
    };
    let results: HashMap<String, &str> = results
        .iter()
        .filter_map(|(uuid, entry)| {
            let result = entry.get("result")?.as_str()?;
            Some((uuid.trim().to_ascii_lowercase(), result))
        })
        .collect();
    for (i, event) in events.iter().enumerate() {
        let key = event.uuid.hyphenated().to_string();
        match results.get(&key).copied() {
            Some("retry") => retry.push(i),
            Some("drop") => dropped.push(i),
            // ok, warning, and results this code does not know: final.
            _ => {}
        }
    }
    (retry, dropped)
}

/// The batch's body, encoded (off the actor thread when it is large) and compressed as the
/// settings say.
async fn compressed_body(
    backend: &PostHogBackend,
    events: &Arc<[EncodedEvent]>,
    created_at: SystemTime,
) -> Result<Vec<u8>, String> {
    let settings = backend.settings.clone();
    let size: usize = events.iter().map(EncodedEvent::encoded_len).sum();
    let events = events.clone();
    build_body(size, move || {
        let json = encode(settings.historical_migration, &events, created_at);
        settings
            .compression
            .encode(json)
            .map_err(|e| format!("compressing the batch: {e}"))
    })
    .await
}

/// The request of one attempt, without its body: the headers name the request and the attempt,
/// so the server can tell a retry from a new batch.
fn request(backend: &PostHogBackend, pending: &Pending) -> reqwest::RequestBuilder {
    let request = backend
        .client
        .post(backend.capture_url.clone())
        .header(
            AUTHORIZATION,
            format!("Bearer {}", backend.settings.api_key.trim()),
        )
        .header(CONTENT_TYPE, "application/json")
        .header("PostHog-Sdk-Info", SDK_INFO)
        .header("PostHog-Attempt", pending.attempt.to_string())
        .header("PostHog-Request-Id", pending.id.hyphenated().to_string())
        .header("PostHog-Request-Timestamp", rfc3339(SystemTime::now()));
    match backend.settings.compression.token() {
        Some(token) => request.header(CONTENT_ENCODING, token),
        None => request,
    }
}

pub(super) async fn deliver(
    backend: &PostHogBackend,
    events: Arc<[EncodedEvent]>,
) -> DeliveryOutcome {
    let Some(first) = events.first().map(|e| e.uuid) else {
        return DeliveryOutcome::Delivered;
    };
    let pending = backend.requests.take(first);
    let body = match compressed_body(backend, &events, pending.created_at).await {
        Ok(body) => body,
        Err(reason) => {
            backend.requests.again(
                first,
                Pending {
                    attempt: pending.attempt - 1,
                    ..pending
                },
            );
            return DeliveryOutcome::Retry {
                after: None,
                reason,
            };
        }
    };
    let response = match request(backend, &pending).body(body).send().await {
        Ok(response) => response,
        Err(error) => {
            backend.requests.again(first, pending);
            return failed(error);
        }
    };
    let status = response.status();
    let after = retry_after(&response);
    let limit = MAX_EVENTS_RESPONSE_BYTES.saturating_add(ANSWER_BYTES_PER_EVENT * events.len());
    let answer = read_capped(response, limit).await;
    if !status.is_success() {
        let outcome = classify(status, after);
        if matches!(outcome, DeliveryOutcome::Retry { .. }) {
            backend.requests.again(first, pending);
        }
        return outcome;
    }
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            backend.requests.again(first, pending);
            return DeliveryOutcome::Retry {
                after,
                reason: format!("HTTP {status}, but {error}"),
            };
        }
    };
    let (retry, dropped) = per_event(&answer, &events);
    if let Some(&next) = retry.first() {
        backend.requests.again(events[next].uuid, pending);
    }
    if retry.is_empty() && dropped.is_empty() {
        DeliveryOutcome::Delivered
    } else {
        DeliveryOutcome::Partial {
            retry,
            dropped,
            after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_keep_their_id_across_attempts() {
        let requests = Requests::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let first = requests.take(a);
        assert_eq!(first.attempt, 1);
        requests.again(b, first);
        let second = requests.take(b);
        assert_eq!((second.id, second.attempt), (first.id, 2));
        assert_ne!(requests.take(b).id, first.id);
    }

    #[test]
    fn garbage_answers_mean_delivered() {
        for body in [&b"not json"[..], b"[]", b"{\"results\": 3}", b"{}"] {
            assert_eq!(per_event(body, &[]), (vec![], vec![]));
        }
    }
}
