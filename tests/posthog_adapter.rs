//! The compliance harness adapter (`examples/posthog_adapter`) driven over HTTP as PostHog's
//! SDK test harness drives it, in-process, against a loopback server playing PostHog's capture
//! and flags endpoints: `/health`, `/init`, `/capture`, `/flush`, `/get_feature_flag`,
//! `/state` and `/reset`, and what each puts on the wire.

mod support;

#[path = "../examples/posthog_adapter/server.rs"]
mod server;

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use actix_telemetry::{CaptureVersion, Compression};
use serde_json::{Value, json};
use server::{Adapter, AdapterConfig, AdapterConfigError, parse_rfc3339};
use support::*;

const KEY: &str = "phc_test_key";
const WAIT: Duration = Duration::from_secs(15);

/// Capture answered as PostHog's defaults; `/flags/` with one flag in the legacy shape (as
/// the harness's mock answers).
fn mock_posthog() -> Responder {
    Responder::new(|req, _| match req.path_only() {
        POSTHOG_FLAGS => Reply::json(
            200,
            &json!({"featureFlags": {"my-flag": "variant-a", "on-flag": true}}),
        ),
        POSTHOG_BATCH => Reply::json(200, &json!({"status": 1})),
        _ => Reply::json(200, &json!({})),
    })
}

/// The adapter served on an ephemeral loopback port.
async fn start_adapter(config: AdapterConfig) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = Adapter::new(config).serve(listener).await;
    });
    (addr, task)
}

/// One adapter call as the harness makes it; the status and the JSON answer, whose
/// content type must be JSON.
async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}{path}");
    let request = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(body.to_string()),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/json", "{method} {path}");
    let bytes = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn ok(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, answer) = call(addr, method, path, body).await;
    assert_eq!(status, 200, "{method} {path}: {answer}");
    answer
}

/// The events of a capture request, its body decoded by its `Content-Encoding`.
fn body_of(r: &Recorded) -> Value {
    let encoding = r.header("content-encoding").unwrap_or("identity");
    let bytes = decode(encoding, &r.raw_body).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn capture_requests(backend: &Backend) -> Vec<Recorded> {
    backend
        .requests()
        .into_iter()
        .filter(|r| r.path_only() != POSTHOG_FLAGS)
        .collect()
}

#[tokio::test]
async fn health_declares_one_capture_version_and_one_encoding() {
    let (addr, _task) = start_adapter(AdapterConfig::default()).await;
    let health = ok(addr, "GET", "/health", None).await;
    for key in ["sdk_name", "sdk_version", "adapter_version"] {
        assert!(health[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
    }
    assert_eq!(health["sdk_name"], "actix-telemetry");
    assert_eq!(health["supports_parallel"], false);
    assert_eq!(
        health["capabilities"],
        json!(["capture_v0", "encoding_gzip"])
    );

    let v1 = AdapterConfig::from_env(|name| match name {
        "POSTHOG_ADAPTER_CAPTURE" => Some("v1".into()),
        "POSTHOG_ADAPTER_ENCODING" => Some("zstd".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(v1.capture, CaptureVersion::V1);
    assert_eq!(v1.encoding, Compression::Zstd);
    assert_eq!(v1.capabilities(), ["capture_v1", "encoding_zstd"]);
    assert_eq!(
        AdapterConfig::from_env(|_| None).unwrap(),
        AdapterConfig::default()
    );
    let refused = |capture: &str, encoding: &str| {
        let (capture, encoding) = (capture.to_string(), encoding.to_string());
        AdapterConfig::from_env(move |name| match name {
            "POSTHOG_ADAPTER_CAPTURE" => Some(capture.clone()),
            "POSTHOG_ADAPTER_ENCODING" => Some(encoding.clone()),
            _ => None,
        })
        .unwrap_err()
    };
    assert!(matches!(
        refused("v2", "gzip"),
        AdapterConfigError::Capture(_)
    ));
    assert!(matches!(
        refused("v1", "lz4"),
        AdapterConfigError::Encoding(_)
    ));
    assert!(matches!(
        refused("v1", "none"),
        AdapterConfigError::Encoding(_)
    ));
    assert!(matches!(
        refused("v0", "br"),
        AdapterConfigError::EncodingNotForV0(_)
    ));
}

#[tokio::test]
async fn a_harness_test_through_every_endpoint_on_capture_v0() {
    init_tracing();
    let backend = Backend::start(mock_posthog()).await;
    let (addr, _task) = start_adapter(AdapterConfig::default()).await;

    // The harness resets before every test, also before any /init.
    assert_eq!(ok(addr, "POST", "/reset", None).await["success"], true);
    let init = json!({"api_key": KEY, "host": backend.url(), "flush_at": 100, "max_retries": 3});
    assert_eq!(ok(addr, "POST", "/init", Some(init)).await["success"], true);

    let mut uuids = Vec::new();
    for i in 0..3 {
        let answer = ok(
            addr,
            "POST",
            "/capture",
            Some(json!({
                "distinct_id": "test_user_123",
                "event": "test_event",
                "properties": {"index": i, "plan": "pro", "paid": true,
                               "looks_like_time": "2024-01-02T08:34:05+05:30"},
                "timestamp": if i == 0 { json!("2024-01-02T08:34:05+05:30") } else { Value::Null },
            })),
        )
        .await;
        assert_eq!(answer["success"], true);
        uuids.push(answer["uuid"].as_str().unwrap().to_string());
    }
    uuids.dedup();
    assert_eq!(uuids.len(), 3, "a uuid per capture");

    let flushed = ok(addr, "POST", "/flush", None).await;
    assert_eq!(flushed["success"], true);
    assert_eq!(flushed["events_flushed"], 3, "{flushed}");
    assert!(
        backend.requests_to(POSTHOG_FLAGS).is_empty(),
        "no /flags request on init or capture"
    );

    let captures = capture_requests(&backend);
    assert_eq!(captures.len(), 1, "three events in one batch");
    let request = &captures[0];
    assert_eq!(request.path_only(), POSTHOG_BATCH);
    assert!(request.header("content-encoding").is_none());
    let body = body_of(request);
    assert_eq!(body["api_key"], KEY);
    let batch = body["batch"].as_array().unwrap();
    assert_eq!(batch.len(), 3);
    for (i, event) in batch.iter().enumerate() {
        assert_eq!(event["event"], "test_event");
        assert_eq!(event["distinct_id"], "test_user_123");
        assert!(event["properties"].get("distinct_id").is_none());
        assert!(event["uuid"].as_str().is_some_and(|u| u.len() == 36));
        assert_eq!(event["properties"]["index"], i);
        assert_eq!(event["properties"]["plan"], "pro");
        assert_eq!(event["properties"]["paid"], true);
        assert_eq!(event["properties"]["$lib"], "actix-telemetry");
        assert_eq!(
            event["properties"]["looks_like_time"],
            "2024-01-02T08:34:05+05:30"
        );
    }
    assert_eq!(batch[0]["timestamp"], "2024-01-02T03:04:05.000Z");

    // A remote flag read: the value PostHog sent, one /flags request naming the user, and
    // one `$feature_flag_called` event.
    let flags_before = 0;
    let flag = ok(
        addr,
        "POST",
        "/get_feature_flag",
        Some(json!({"key": "my-flag", "distinct_id": "flag_user",
                    "person_properties": {"email": "a@example.com"},
                    "groups": {"company": "acme"}, "force_remote": true})),
    )
    .await;
    assert_eq!(flag, json!({"success": true, "value": "variant-a"}));
    let flags = backend.requests_to(POSTHOG_FLAGS);
    assert_eq!(flags.len(), flags_before + 1);
    let asked = flags.last().unwrap();
    assert!(asked.path.contains("v=2"), "{}", asked.path);
    assert!(asked.header("authorization").is_none());
    let asked = body_of(asked);
    assert_eq!(asked["token"], KEY);
    assert_eq!(asked["distinct_id"], "flag_user");
    assert_eq!(asked["person_properties"]["email"], "a@example.com");
    assert_eq!(asked["groups"], json!({"company": "acme"}));
    // No cache between two reads: the harness expects each to ask PostHog.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let flag = ok(
        addr,
        "POST",
        "/get_feature_flag",
        Some(json!({"key": "on-flag", "distinct_id": "flag_user", "force_remote": true})),
    )
    .await;
    assert_eq!(flag["value"], true);
    assert_eq!(
        backend.requests_to(POSTHOG_FLAGS).len(),
        flags_before + 2,
        "two reads, two requests"
    );
    let missing = ok(
        addr,
        "POST",
        "/get_feature_flag",
        Some(json!({"key": "no-such-flag", "distinct_id": "flag_user"})),
    )
    .await;
    assert_eq!(missing, json!({"success": true, "value": null}));

    ok(addr, "POST", "/flush", None).await;
    let called: Vec<Value> = capture_requests(&backend)
        .iter()
        .flat_map(|r| body_of(r)["batch"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["event"] == "$feature_flag_called")
        .collect();
    let my_flag: Vec<&Value> = called
        .iter()
        .filter(|e| e["properties"]["$feature_flag"] == "my-flag")
        .collect();
    assert_eq!(my_flag.len(), 1, "{called:?}");
    assert_eq!(my_flag[0]["distinct_id"], "flag_user");
    assert_eq!(
        my_flag[0]["properties"]["$feature_flag_response"],
        "variant-a"
    );

    let state = ok(addr, "GET", "/state", None).await;
    for key in [
        "pending_events",
        "total_events_captured",
        "total_events_sent",
        "total_retries",
    ] {
        assert!(state[key].is_u64(), "{key}: {state}");
    }
    assert_eq!(state["total_events_captured"], 3);
    assert_eq!(state["pending_events"], 0);
    assert!(state["total_events_sent"].as_u64().unwrap() >= 3, "{state}");
    assert!(state["requests_made"].is_array());

    // /reset discards what is queued: nothing reaches the mock afterwards.
    let sent_before = capture_requests(&backend).len();
    let capture =
        json!({"distinct_id": "u", "event": "never_sent", "properties": null, "timestamp": null});
    ok(addr, "POST", "/capture", Some(capture)).await;
    assert_eq!(ok(addr, "POST", "/reset", None).await["success"], true);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(capture_requests(&backend).len(), sent_before);
    assert_eq!(
        ok(addr, "GET", "/state", None).await["total_events_captured"],
        0
    );
    // And a flush with nothing captured sends nothing.
    let init = json!({"api_key": KEY, "host": backend.url()});
    ok(addr, "POST", "/init", Some(init)).await;
    assert_eq!(ok(addr, "POST", "/flush", None).await["events_flushed"], 0);
    assert_eq!(capture_requests(&backend).len(), sent_before);
    ok(addr, "POST", "/reset", None).await;
}

#[tokio::test]
async fn capture_v1_with_the_chosen_encoding_flush_at_retries_and_options() {
    init_tracing();
    let backend = Backend::start(Responder::new(|req, index| match req.path_only() {
        POSTHOG_FLAGS => Reply::json(200, &json!({"flags": {}})),
        // The first batch meets a 503 with Retry-After, as the harness's mock sends it.
        POSTHOG_V1 if index == 0 => Reply::status(503).with_header("retry-after", "1"),
        _ => Reply::json(200, &json!({})),
    }))
    .await;
    let config = AdapterConfig {
        capture: CaptureVersion::V1,
        encoding: Compression::Zstd,
    };
    let (addr, _task) = start_adapter(config).await;
    ok(addr, "POST", "/reset", None).await;
    let init = json!({"api_key": KEY, "host": backend.url(), "flush_at": 2, "max_retries": 3,
                      "enable_compression": true, "disable_geoip": true,
                      "historical_migration": true});
    ok(addr, "POST", "/init", Some(init)).await;
    for i in 0..2 {
        let capture = json!({"distinct_id": "v1_user", "event": format!("e{i}"),
                             "properties": {"$set": {"name": "Ada"}}, "timestamp": null});
        ok(addr, "POST", "/capture", Some(capture)).await;
    }
    // flush_at sends without a /flush; the 503 is retried after its Retry-After.
    assert!(
        backend
            .wait_until(WAIT, |r| r
                .iter()
                .filter(|r| r.path_only() == POSTHOG_V1)
                .count()
                >= 2)
            .await
    );
    let flushed = ok(addr, "POST", "/flush", None).await;
    assert_eq!(flushed["success"], true);
    let captures = capture_requests(&backend);
    assert_eq!(captures.len(), 2, "the batch and its one retry");
    let (first, retry) = (&captures[0], &captures[1]);
    assert!(retry.received_at - first.received_at >= Duration::from_millis(900));
    for (attempt, request) in [(1, first), (2, retry)] {
        assert_eq!(request.path_only(), POSTHOG_V1);
        assert_eq!(request.header("content-encoding"), Some("zstd"));
        assert_eq!(request.header("authorization"), Some("Bearer phc_test_key"));
        assert_eq!(
            request.header("posthog-attempt"),
            Some(attempt.to_string().as_str())
        );
    }
    assert_eq!(
        first.header("posthog-request-id"),
        retry.header("posthog-request-id")
    );
    let (a, b) = (body_of(first), body_of(retry));
    assert_eq!(a["batch"], b["batch"], "the same events on the retry");
    assert_eq!(a["historical_migration"], true);
    assert!(a.get("api_key").is_none());
    let batch = a["batch"].as_array().unwrap();
    assert_eq!(batch.len(), 2);
    for event in batch {
        assert_eq!(event["distinct_id"], "v1_user");
        assert_eq!(event["properties"]["$geoip_disable"], true);
        assert_eq!(event["properties"]["$set"], json!({"name": "Ada"}));
    }
    let state = ok(addr, "GET", "/state", None).await;
    assert_eq!(state["total_events_sent"], 2, "{state}");
    assert!(state["total_retries"].as_u64().unwrap() >= 1, "{state}");
    ok(addr, "POST", "/reset", None).await;
}

#[tokio::test]
async fn bad_calls_are_answered_in_json_and_the_adapter_keeps_serving() {
    let (addr, _task) = start_adapter(AdapterConfig::default()).await;
    for (method, path, body) in [
        (
            "POST",
            "/capture",
            Some(json!({"distinct_id": "u", "event": "e"})),
        ),
        (
            "POST",
            "/get_feature_flag",
            Some(json!({"key": "k", "distinct_id": "u"})),
        ),
        ("POST", "/init", Some(json!({"api_key": KEY}))),
        (
            "POST",
            "/init",
            Some(json!({"api_key": KEY, "host": "ftp://nowhere"})),
        ),
        (
            "POST",
            "/init",
            Some(json!({"api_key": KEY, "host": "http://127.0.0.1:1", "flush_at": "x"})),
        ),
        ("POST", "/capture", Some(json!(["not", "an", "object"]))),
        ("GET", "/no-such-endpoint", None),
    ] {
        let (status, answer) = call(addr, method, path, body).await;
        assert!((400..500).contains(&status), "{method} {path}: {status}");
        assert_eq!(answer["success"], false);
        assert!(answer["error"].is_string());
    }
    // A timestamp that is not RFC 3339 is refused, not guessed.
    let backend = Backend::start(mock_posthog()).await;
    ok(
        addr,
        "POST",
        "/init",
        Some(json!({"api_key": KEY, "host": backend.url()})),
    )
    .await;
    let (status, _) = call(
        addr,
        "POST",
        "/capture",
        Some(
            json!({"distinct_id": "u", "event": "e", "properties": null, "timestamp": "yesterday"}),
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        ok(addr, "GET", "/health", None).await["sdk_name"],
        "actix-telemetry"
    );
    ok(addr, "POST", "/reset", None).await;
}

#[test]
fn rfc3339_timestamps_with_offsets() {
    let secs =
        |t: &str| parse_rfc3339(t).map(|at| at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64());
    assert_eq!(secs("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(secs("2024-01-02T03:04:05Z"), Some(1_704_164_645.0));
    assert_eq!(secs("2024-01-02T08:34:05+05:30"), Some(1_704_164_645.0));
    assert_eq!(secs("2024-01-01T22:04:05-05:00"), Some(1_704_164_645.0));
    assert_eq!(secs("2024-01-02T03:04:05.250Z"), Some(1_704_164_645.25));
    assert_eq!(secs("2024-02-29T00:00:00Z"), Some(1_709_164_800.0));
    for bad in [
        "",
        "2024-01-02",
        "2024-01-02T03:04:05",
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-02T03:04:05+0530",
        "2024-01-02T03:04:05.Z",
        "1969-12-31T23:59:59Z",
        "2024-01-02T03:04:05Zjunk",
    ] {
        assert_eq!(secs(bad), None, "{bad}");
    }
}
