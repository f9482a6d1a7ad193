//! The PostHog backend end to end against a real loopback server that records every request:
//! the exact capture v0 and v1 bodies and headers, each compression decoded with its real codec,
//! the retry contract per status, 413 splitting, per-event results of capture v1, `/flags`, and
//! a PostHog sink beside a file sink.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use actix_telemetry::{
    CaptureVersion, Compression, Flush, GetStats, PostHogSettings, Record, SinkConfig,
};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(15);
const KEY: &str = "phc_test_key";

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn settings(backend: &Backend) -> PostHogSettings {
    PostHogSettings::new(KEY, &backend.url()).unwrap()
}

/// A runtime sending to PostHog with `settings`, ignoring the machine's environment.
fn posthog(settings: PostHogSettings) -> actix_telemetry::Builder {
    builder("file:///dev/null").posthog(settings)
}

/// `/flags/` answers no flags; capture requests get `script[n]`, later ones 200.
fn script(script: Vec<Reply>) -> Responder {
    Responder::new(move |req, index| match req.path_only() {
        POSTHOG_FLAGS => Reply::json(200, &json!({"flags": {}})),
        _ => script
            .get(index)
            .cloned()
            .unwrap_or_else(|| Reply::json(200, &json!({"status": 1}))),
    })
}

/// Whether `t` is canonical UTC with milliseconds: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn canonical_utc(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn text(r: &Recorded) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

fn capture_requests(backend: &Backend) -> Vec<Recorded> {
    backend
        .requests()
        .into_iter()
        .filter(|r| r.path_only() != POSTHOG_FLAGS)
        .collect()
}

fn batch_uuids(r: &Recorded) -> Vec<String> {
    uuids(r.json()["batch"].as_array().unwrap())
}

fn batch_timestamps(r: &Recorded) -> Vec<String> {
    r.json()["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap().to_string())
        .collect()
}

async fn stats(telemetry: &actix_telemetry::Telemetry) -> actix_telemetry::Stats {
    telemetry.recorder().send(GetStats).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_v0_body_and_headers_are_exact() {
    let backend = Backend::start(script(vec![])).await;
    let telemetry = posthog(settings(&backend))
        .distinct_id("user-1")
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("invoice_sent").property("amount", 12));
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    telemetry.shutdown(WAIT).await;

    let batches = backend.requests_to(POSTHOG_BATCH);
    assert_eq!(batches.len(), 1);
    let r = &batches[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/batch/");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("authorization"), None);
    let body = r.json();
    assert_eq!(
        keys(&body),
        ["api_key", "batch", "sent_at"].map(String::from).into()
    );
    let event = &body["batch"][0];
    assert_eq!(
        keys(event),
        ["distinct_id", "event", "properties", "timestamp", "uuid"]
            .map(String::from)
            .into()
    );
    let (sent_at, uuid, timestamp) = (
        body["sent_at"].as_str().unwrap(),
        event["uuid"].as_str().unwrap(),
        event["timestamp"].as_str().unwrap(),
    );
    assert!(canonical_utc(sent_at) && canonical_utc(timestamp), "{body}");
    uuid::Uuid::parse_str(uuid).unwrap();
    // Byte for byte around the properties the host snapshot fills in.
    let wire = text(r);
    let head = format!(
        r#"{{"api_key":"{KEY}","sent_at":"{sent_at}","batch":[{{"event":"invoice_sent","distinct_id":"user-1","uuid":"{uuid}","timestamp":"{timestamp}","properties":{{"#
    );
    assert!(wire.starts_with(&head), "{wire}");
    assert!(wire.ends_with(r#","amount":12}}]}"#), "{wire}");
    assert_eq!(event["properties"]["$lib"], "actix-telemetry");
    assert_eq!(
        event["properties"]["$lib_version"],
        env!("CARGO_PKG_VERSION")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_v0_gzip_and_historical_migration() {
    let backend = Backend::start(script(vec![])).await;
    let telemetry = posthog(
        settings(&backend)
            .compression(Compression::Gzip)
            .historical_migration(true),
    )
    .build()
    .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("imported").property("k", "v"));
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    telemetry.shutdown(WAIT).await;

    let r = &backend.requests_to(POSTHOG_BATCH)[0];
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(&r.raw_body[..2], &[0x1f, 0x8b], "a gzip member");
    let decoded = decode("gzip", &r.raw_body).unwrap();
    assert_eq!(decoded, r.body);
    let wire = text(r);
    assert!(
        wire.starts_with(&format!(r#"{{"api_key":"{KEY}","sent_at":""#)),
        "{wire}"
    );
    assert!(
        wire.contains(r#"Z","historical_migration":true,"batch":[{"event":"imported","#),
        "{wire}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_v1_body_and_headers_are_exact() {
    let backend = Backend::start(script(vec![])).await;
    let telemetry = posthog(settings(&backend).capture(CaptureVersion::V1))
        .distinct_id("user-1")
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("invoice_sent").property("amount", 12));
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    telemetry.shutdown(WAIT).await;

    assert!(backend.requests_to(POSTHOG_BATCH).is_empty());
    let batches = backend.requests_to(POSTHOG_V1);
    assert_eq!(batches.len(), 1);
    let r = &batches[0];
    assert_eq!(r.path, "/i/v1/analytics/events");
    assert_eq!(r.header("authorization"), Some(&*format!("Bearer {KEY}")));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(
        r.header("posthog-sdk-info"),
        Some(&*format!("actix-telemetry/{}", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(r.header("posthog-attempt"), Some("1"));
    uuid::Uuid::parse_str(r.header("posthog-request-id").unwrap()).unwrap();
    assert!(canonical_utc(
        r.header("posthog-request-timestamp").unwrap()
    ));
    assert!(!r.header("user-agent").unwrap().is_empty());
    let body = r.json();
    assert_eq!(
        keys(&body),
        ["batch", "created_at"].map(String::from).into()
    );
    let event = &body["batch"][0];
    let (created_at, uuid, timestamp) = (
        body["created_at"].as_str().unwrap(),
        event["uuid"].as_str().unwrap(),
        event["timestamp"].as_str().unwrap(),
    );
    assert!(canonical_utc(created_at) && canonical_utc(timestamp));
    let wire = text(r);
    let head = format!(
        r#"{{"created_at":"{created_at}","batch":[{{"event":"invoice_sent","distinct_id":"user-1","uuid":"{uuid}","timestamp":"{timestamp}","properties":{{"#
    );
    assert!(wire.starts_with(&head), "{wire}");
    assert!(wire.ends_with(r#","amount":12}}]}"#), "{wire}");
    assert!(event["properties"].get("distinct_id").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_v1_compresses_with_each_encoding() {
    for (compression, token) in [
        (Compression::Gzip, "gzip"),
        (Compression::Deflate, "deflate"),
        (Compression::Brotli, "br"),
        (Compression::Zstd, "zstd"),
    ] {
        let backend = Backend::start(script(vec![])).await;
        let telemetry = posthog(
            settings(&backend)
                .capture(CaptureVersion::V1)
                .compression(compression)
                .historical_migration(true),
        )
        .build()
        .unwrap();
        let recorder = telemetry.recorder().clone();
        for i in 0..20 {
            recorder.do_send(Record::new("compressed").property("i", i));
        }
        let report = recorder.send(Flush::within(WAIT)).await.unwrap();
        assert_eq!(report.delivered, 20, "{token}: {report:?}");
        telemetry.shutdown(WAIT).await;
        let requests = backend.requests_to(POSTHOG_V1);
        let r = &requests[0];
        assert_eq!(r.header("content-encoding"), Some(token));
        assert!(
            r.raw_body.len() < r.body.len() / 2,
            "{token} did not shrink the body"
        );
        // The test server undid the encoding with the codec's own crate.
        assert_eq!(decode(token, &r.raw_body).unwrap(), r.body);
        let body = r.json();
        assert_eq!(body["historical_migration"], true);
        let total: usize = requests
            .iter()
            .map(|r| r.json()["batch"].as_array().unwrap().len())
            .sum();
        assert_eq!(total, 20, "{token}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_statuses_are_retried_with_the_same_events_and_a_fresh_sent_at() {
    for status in [408, 429, 500, 502, 503, 504] {
        let backend = Backend::start(script(vec![Reply::status(status)])).await;
        let telemetry = posthog(settings(&backend)).build().unwrap();
        let recorder = telemetry.recorder().clone();
        recorder.do_send(Record::new("a"));
        recorder.do_send(Record::new("b"));
        let report = recorder.send(Flush::within(WAIT)).await.unwrap();
        assert_eq!(report.delivered, 2, "{status}: {report:?}");
        let stats = stats(&telemetry).await;
        assert_eq!(stats.retries, 1, "{status}");
        telemetry.shutdown(WAIT).await;
        let requests = capture_requests(&backend);
        assert_eq!(requests.len(), 2, "{status}");
        assert_eq!(batch_uuids(&requests[0]), batch_uuids(&requests[1]));
        assert_eq!(
            batch_timestamps(&requests[0]),
            batch_timestamps(&requests[1])
        );
        assert_ne!(
            requests[0].json()["sent_at"],
            requests[1].json()["sent_at"],
            "{status}: sent_at is the time of each attempt"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_a_floor() {
    let backend = Backend::start(script(vec![
        Reply::status(429).with_header("retry-after", "1"),
    ]))
    .await;
    let telemetry = posthog(settings(&backend)).build().unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("a"));
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    telemetry.shutdown(WAIT).await;
    let requests = capture_requests(&backend);
    assert_eq!(requests.len(), 2);
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_statuses_are_never_retried() {
    for status in [400, 401, 403, 413] {
        let backend = Backend::start(script(vec![Reply::status(status)])).await;
        let telemetry = posthog(settings(&backend)).build().unwrap();
        let recorder = telemetry.recorder().clone();
        recorder.do_send(Record::new("lonely"));
        let report = recorder.send(Flush::within(WAIT)).await.unwrap();
        assert_eq!((report.delivered, report.dropped), (0, 1), "{status}");
        // Time for a retry that must not come.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stats = stats(&telemetry).await;
        telemetry.shutdown(WAIT).await;
        assert_eq!(capture_requests(&backend).len(), 1, "{status} was retried");
        let d = stats.dropped;
        let counted = match status {
            400 => d.rejected,
            413 => d.too_large,
            _ => d.refused,
        };
        assert_eq!(counted, 1, "{status}: {d:?}");
        assert_eq!(stats.retries, 0, "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_splits_the_batch_until_the_oversized_event_stands_alone() {
    let backend = Backend::start(Responder::new(|req, _| match req.path_only() {
        POSTHOG_FLAGS => Reply::json(200, &json!({"flags": {}})),
        _ if req.body_contains(b"\"oversized\"") => Reply::status(413),
        _ => Reply::json(200, &json!({"status": 1})),
    }))
    .await;
    let telemetry = posthog(settings(&backend)).build().unwrap();
    let recorder = telemetry.recorder().clone();
    for name in ["a", "b", "oversized", "c"] {
        recorder.do_send(Record::new(name));
    }
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!((report.delivered, report.dropped), (3, 1), "{report:?}");
    let stats = stats(&telemetry).await;
    telemetry.shutdown(WAIT).await;
    assert_eq!(stats.dropped.too_large, 1);
    let mut sizes: Vec<usize> = capture_requests(&backend)
        .iter()
        .map(|r| r.json()["batch"].as_array().unwrap().len())
        .collect();
    sizes.sort_unstable();
    // 4 refused; halves of 2 (one refused, one taken); the refused half's two singles.
    assert_eq!(sizes, [1, 1, 2, 2, 4], "{sizes:?}");
    let names: BTreeSet<String> = backend
        .delivered_events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a", "b", "c"].map(String::from).into());
}

/// A capture v1 answer giving the events of the first request `results` in order; 200 with
/// every event `ok` afterwards.
fn v1_results(results: &'static [&'static str], retry_after: Option<&'static str>) -> Responder {
    Responder::new(move |req, index| match req.path_only() {
        POSTHOG_FLAGS => Reply::json(200, &json!({"flags": {}})),
        _ => {
            let body = req.json();
            let events = body["batch"].as_array().cloned().unwrap_or_default();
            let answer: serde_json::Map<String, Value> = events
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let result = if index == 0 { results[i] } else { "ok" };
                    (
                        e["uuid"].as_str().unwrap().to_string(),
                        json!({"result": result}),
                    )
                })
                .collect();
            let reply = Reply::json(200, &json!({"results": answer}));
            match retry_after {
                Some(after) if index == 0 => reply.with_header("retry-after", after),
                _ => reply,
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_v1_resends_only_the_events_marked_retry() {
    let backend = Backend::start(v1_results(&["ok", "drop", "retry", "warning"], Some("1"))).await;
    let telemetry = posthog(settings(&backend).capture(CaptureVersion::V1))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    for name in ["ok", "dropped", "again", "warned"] {
        recorder.do_send(Record::new(name));
    }
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!((report.delivered, report.dropped), (3, 1), "{report:?}");
    let stats = stats(&telemetry).await;
    telemetry.shutdown(WAIT).await;
    assert_eq!(stats.dropped.rejected, 1, "{:?}", stats.dropped);
    assert_eq!(stats.delivered, 3);

    let requests = capture_requests(&backend);
    assert_eq!(requests.len(), 2);
    let (first, second) = (&requests[0], &requests[1]);
    assert_eq!(batch_uuids(second), [batch_uuids(first)[2].clone()]);
    assert_eq!(
        batch_timestamps(second),
        [batch_timestamps(first)[2].clone()]
    );
    assert_eq!(second.json()["batch"][0]["event"], "again");
    assert_eq!(
        first.header("posthog-request-id"),
        second.header("posthog-request-id")
    );
    assert_eq!(first.header("posthog-attempt"), Some("1"));
    assert_eq!(second.header("posthog-attempt"), Some("2"));
    assert_ne!(
        first.header("posthog-request-timestamp"),
        second.header("posthog-request-timestamp")
    );
    let gap = second.received_at - first.received_at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_v1_terminal_results_are_never_resent() {
    let backend = Backend::start(v1_results(
        &["ok", "drop", "limited", "unknown_future_result"],
        None,
    ))
    .await;
    let telemetry = posthog(settings(&backend).capture(CaptureVersion::V1))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    for i in 0..4 {
        recorder.do_send(Record::new("e").property("i", i));
    }
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!((report.delivered, report.dropped), (3, 1), "{report:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    telemetry.shutdown(WAIT).await;
    assert_eq!(capture_requests(&backend).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_v1_whole_request_retries_keep_the_request_id() {
    let backend = Backend::start(script(vec![Reply::status(503), Reply::status(500)])).await;
    let telemetry = posthog(settings(&backend).capture(CaptureVersion::V1))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("a"));
    recorder.do_send(Record::new("b"));
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");
    recorder.do_send(Record::new("next"));
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    telemetry.shutdown(WAIT).await;
    let requests = capture_requests(&backend);
    assert_eq!(requests.len(), 4);
    let attempts: Vec<&str> = requests
        .iter()
        .map(|r| r.header("posthog-attempt").unwrap())
        .collect();
    assert_eq!(attempts, ["1", "2", "3", "1"]);
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r.header("posthog-request-id").unwrap())
        .collect();
    assert!(ids[0] == ids[1] && ids[1] == ids[2], "{ids:?}");
    assert_ne!(ids[2], ids[3], "a new batch is a new request");
    assert_eq!(batch_uuids(&requests[0]), batch_uuids(&requests[2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_are_fetched_with_the_identity_and_served_per_flag() {
    let backend = Backend::start(Responder::new(|req, _| match req.path_only() {
        POSTHOG_FLAGS => Reply::json(
            200,
            &json!({"flags": {
                "beta": {"key": "beta", "enabled": true, "variant": null,
                         "reason": {"code": "condition_match"}, "metadata": {"id": 1, "payload": null}},
                "layout": {"key": "layout", "enabled": true, "variant": "wide",
                           "metadata": {"id": 2, "payload": "{\"columns\": 3}"}},
                "off": {"key": "off", "enabled": false, "variant": null},
                "broken": {"key": "broken", "enabled": "maybe"}},
              "errorsWhileComputingFlags": false, "requestId": "r-1"}),
        ),
        _ => Reply::json(200, &json!({"status": 1})),
    }))
    .await;
    let telemetry = posthog(settings(&backend))
        .distinct_id("user-7")
        .group("company", "acme")
        .fact("plan", "enterprise")
        .build()
        .unwrap();
    wait_for_checkin(&telemetry).await;
    let flags = telemetry.flags();
    assert_eq!(flags.variant::<bool>("beta"), Some(true));
    assert_eq!(flags.variant::<String>("layout").as_deref(), Some("wide"));
    assert_eq!(
        flags.payload::<Value>("layout"),
        Some(json!({"columns": 3}))
    );
    assert_eq!(flags.variant::<bool>("off"), Some(false));
    assert_eq!(flags.variant::<Value>("broken"), None);
    assert!(flags.features().invalid().contains_key("broken"));

    // Events carry the served flags, as with any backend.
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("after_flags"));
    recorder.send(Flush::within(WAIT)).await.unwrap();
    telemetry.shutdown(WAIT).await;

    let requests = backend.requests_to(POSTHOG_FLAGS);
    let r = &requests[0];
    assert_eq!(r.path, "/flags/?v=2");
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["token"], KEY);
    assert_eq!(body["distinct_id"], "user-7");
    assert_eq!(body["groups"], json!({"company": "acme"}));
    assert_eq!(body["group_properties"], json!({}));
    assert_eq!(body["geoip_disable"], false);
    assert_eq!(body["person_properties"]["plan"], "enterprise");
    let event = &backend.delivered_events()[0];
    assert_eq!(event["properties"]["$feature/layout"], "wide");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_retry_once_on_502_and_504_and_read_the_legacy_shape() {
    for status in [502, 504] {
        let backend = Backend::start(Responder::new(move |req, index| {
            match (req.path_only(), index) {
                (POSTHOG_FLAGS, 0) => Reply::json(status, &json!({"error": "Server error"})),
                (POSTHOG_FLAGS, _) => Reply::json(
                    200,
                    &json!({"featureFlags": {"signup-aa-test": "variant-a"},
                            "featureFlagPayloads": {"signup-aa-test": "[1, 2]"},
                            "errorsWhileComputingFlags": false}),
                ),
                _ => Reply::json(200, &json!({"status": 1})),
            }
        }))
        .await;
        let telemetry = posthog(settings(&backend)).build().unwrap();
        wait_for_checkin(&telemetry).await;
        let flags = telemetry.flags();
        assert_eq!(
            flags.variant::<String>("signup-aa-test").as_deref(),
            Some("variant-a"),
            "{status}"
        );
        assert_eq!(flags.payload::<Vec<u8>>("signup-aa-test"), Some(vec![1, 2]));
        telemetry.shutdown(WAIT).await;
        assert_eq!(backend.requests_to(POSTHOG_FLAGS).len(), 2, "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_checkins_only_per_user_reads_ask_for_flags() {
    let backend = Backend::start(Responder::new(|req, _| match req.path_only() {
        POSTHOG_FLAGS => Reply::json(200, &json!({"featureFlags": {"beta": "on"}})),
        _ => Reply::json(200, &json!({"status": 1})),
    }))
    .await;
    let telemetry = posthog(settings(&backend))
        .checkins(false)
        .checkin_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(actix_telemetry::Identify::new("user-1"));
    recorder.do_send(actix_telemetry::RefreshConfiguration);
    recorder.do_send(Record::new("plain"));
    recorder.send(Flush::within(WAIT)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(backend.requests_to(POSTHOG_FLAGS).is_empty());
    assert_eq!(telemetry.flags().variant::<String>("beta"), None);

    let user = actix_telemetry::FlagUser::new("user-2");
    let read = telemetry.flags().for_user(user).timeout(WAIT);
    assert_eq!(read.variant::<String>("beta").await.as_deref(), Some("on"));
    let asked = backend.requests_to(POSTHOG_FLAGS);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].json()["distinct_id"], "user-2");
    assert_eq!(telemetry.stats().await.checkins, 0);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_sink_beside_a_file_sink() {
    let backend = Backend::start(script(vec![])).await;
    let dir = TempDir::new("posthog-sink");
    let file = dir.join("events.jsonl");
    let telemetry = builder(&format!("file://{}", file.display()))
        .sink(SinkConfig::posthog(
            "posthog",
            &settings(&backend).compression(Compression::Gzip),
        ))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("both").property("n", 1));
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 2, "one per sink: {report:?}");
    telemetry.shutdown(WAIT).await;

    let line = std::fs::read_to_string(&file).unwrap();
    let written: Value = serde_json::from_str(line.trim()).unwrap();
    let on_file = &written["batch"][0];
    let posted = &backend.delivered_events()[0];
    assert_eq!(on_file["name"], "both");
    assert_eq!(posted["event"], "both");
    assert!(posted.get("name").is_none());
    assert_eq!(on_file["uuid"], posted["uuid"]);
    assert_eq!(on_file["timestamp"], posted["timestamp"]);
    let request = &backend.requests_to(POSTHOG_BATCH)[0];
    assert_eq!(request.header("content-encoding"), Some("gzip"));
}

#[test]
fn endpoint_form_and_redaction() {
    let endpoint = actix_telemetry::Endpoint::parse(
        "posthog+https://eu.i.posthog.com?api_key=phc_secret&capture=v1&compression=zstd",
    )
    .unwrap();
    let shown = format!("{endpoint:?}");
    assert!(
        !shown.contains("phc_secret") && shown.contains("V1"),
        "{shown}"
    );
    let sink = SinkConfig::posthog(
        "ph",
        &PostHogSettings::new("phc_secret", "https://eu.i.posthog.com").unwrap(),
    );
    assert!(!format!("{sink:?}").contains("phc_secret"));
    let builder = actix_telemetry::Builder::new()
        .endpoint("posthog+https://h?api_key=phc_secret")
        .sink(sink);
    assert!(!format!("{builder:?}").contains("phc_secret"));
    let error = actix_telemetry::Endpoint::parse("posthog+https://h?api_key=phc_secret&capture=v7")
        .unwrap_err()
        .to_string();
    assert!(!error.contains("phc_secret"), "{error}");
    // Capture v0 takes gzip only.
    assert!(
        actix_telemetry::Builder::new()
            .posthog(
                PostHogSettings::new("phc_k", "http://127.0.0.1:9")
                    .unwrap()
                    .compression(Compression::Brotli)
            )
            .state(actix_telemetry::StateLocation::Disabled)
            .build()
            .is_err()
    );
}
