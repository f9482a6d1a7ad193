//! The HTTP transport end to end against a real loopback backend: the exact JSON on the wire,
//! flush and shutdown reports, retries, poison events, compression downgrade, opt-out.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use actix_telemetry::{Flush, GetStats, Identify, Record, SetFact, SetPersonProperties};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_and_checkins_have_the_exact_wire_shape() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .distinct_id("user-1")
        .anon_distinct_id("anon-1")
        .device_id("device-1")
        .group("org", "acme")
        .component("billing")
        .version("1.2.3")
        .fact("shared", "builder")
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(SetFact::new("region", "eu"));
    recorder.do_send(
        Record::new("invoice_sent")
            .property("amount", 12)
            .property("shared", "own"),
    );
    let report = recorder.send(Flush::new()).await.unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(report.dropped, 0);

    let batches = backend.requests_to(EVENTS_BATCH);
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.method, "POST");
    assert_eq!(batch.header("content-type"), Some("application/json"));
    assert_eq!(batch.header("content-encoding"), Some("zstd"));
    assert!(
        batch
            .header("user-agent")
            .unwrap()
            .starts_with("actix-telemetry/")
    );
    let body = batch.json();
    assert_eq!(
        keys(&body),
        BTreeSet::from(["sent_at".into(), "batch".into()])
    );
    assert!(body["sent_at"].as_str().unwrap().ends_with('Z'));
    let event = &body["batch"][0];
    assert_eq!(
        keys(event),
        ["distinct_id", "name", "properties", "timestamp", "uuid"]
            .map(String::from)
            .into()
    );
    assert_eq!(event["name"], "invoice_sent");
    assert_eq!(event["distinct_id"], "user-1");
    let uuid = uuid::Uuid::parse_str(event["uuid"].as_str().unwrap()).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
    let timestamp = event["timestamp"].as_str().unwrap();
    assert_eq!(timestamp.len(), "2026-01-01T00:00:00.000Z".len());

    let p = &event["properties"];
    assert_eq!(p["$lib"], "actix-telemetry");
    assert_eq!(p["$lib_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["$anon_distinct_id"], "anon-1");
    assert_eq!(p["$device_id"], "device-1");
    assert_eq!(p["$groups"], json!({"org": "acme"}));
    assert_eq!(p["component"], "billing");
    assert_eq!(p["version"], "1.2.3");
    assert_eq!(p["region"], "eu");
    assert_eq!(p["amount"], 12);
    // The event's own property wins over the builder fact, and the key appears once.
    assert_eq!(p["shared"], "own");
    let text = String::from_utf8(batch.body.clone()).unwrap();
    assert_eq!(text.matches("\"shared\":").count(), 1);
    assert_eq!(p["$active_feature_flags"], json!([]));
    assert!(uuid::Uuid::parse_str(p["$session_id"].as_str().unwrap()).is_ok());
    for snapshot_key in [
        "$os",
        "target_triple",
        "processor_count",
        "physical_memory_bytes",
        "is_ci",
        "stdin_is_terminal",
        "process_name",
        "host_name",
    ] {
        assert!(p.get(snapshot_key).is_some(), "missing {snapshot_key}");
    }
    assert!(p["host_name"].as_str().unwrap().starts_with("h-"));

    // The first check-in runs beside the batch: nothing orders the two requests.
    assert!(backend.wait_for_requests_to(CHECK_IN, 1, WAIT).await);
    let checkin = backend.requests_to(CHECK_IN)[0].json();
    assert_eq!(
        keys(&checkin),
        [
            "$anon_distinct_id",
            "distinct_id",
            "groups",
            "person_properties"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(checkin["$anon_distinct_id"], "anon-1");
    assert_eq!(checkin["distinct_id"], "user-1");
    assert_eq!(checkin["groups"], json!({"org": "acme"}));
    assert_eq!(checkin["person_properties"]["component"], "billing");
    assert!(checkin["person_properties"].get("$os").is_some());
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_set_and_alias_events() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .anon_distinct_id("anon-7")
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("before"));
    recorder.do_send(
        Identify::new("user-7")
            .set("plan", "pro")
            .set_once("first", "x"),
    );
    recorder.do_send(SetPersonProperties::new().set("seats", 3));
    recorder.do_send(actix_telemetry::Alias {
        alias: "old-id".into(),
    });
    recorder.do_send(Record::new("after"));
    assert_eq!(recorder.send(Flush::new()).await.unwrap().delivered, 5);

    let events = backend.delivered_events();
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["before", "$identify", "$set", "$create_alias", "after"]
    );
    assert_eq!(events[0]["distinct_id"], "anon-7");
    assert_eq!(events[1]["distinct_id"], "user-7");
    assert_eq!(events[1]["properties"]["$set"], json!({"plan": "pro"}));
    assert_eq!(events[1]["properties"]["$set_once"], json!({"first": "x"}));
    assert_eq!(events[1]["properties"]["$anon_distinct_id"], "anon-7");
    assert_eq!(events[2]["properties"]["$set"], json!({"seats": 3}));
    assert_eq!(events[3]["properties"]["alias"], "old-id");
    assert_eq!(events[4]["distinct_id"], "user-7");

    // The identity change is reflected in a later check-in, sent in the background.
    assert!(
        backend
            .wait_until(WAIT, |reqs| reqs.iter().any(|r| r.path_only() == CHECK_IN
                && r.json()["distinct_id"] == "user-7"
                && r.json()["person_properties"]["plan"] == "pro"))
            .await
    );
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_every_event_is_delivered() {
    let backend = Backend::start(Responder::events_script(vec![
        Reply::status(500),
        Reply::status(503),
        Reply::status(500).with_header("retry-after", "0"),
    ]))
    .await;
    let telemetry = builder(&backend.url())
        .max_batch_events(10)
        .max_in_flight(1)
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    for i in 0..35 {
        recorder.do_send(Record::new("work").property("i", i));
    }
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 35, "{report:?}");
    assert_eq!(report.pending, 0);

    let sent: BTreeSet<String> = backend
        .requests_to(EVENTS_BATCH)
        .iter()
        .flat_map(|r| uuids(r.json()["batch"].as_array().unwrap()))
        .collect();
    let delivered: Vec<String> = uuids(&backend.delivered_events());
    let delivered_set: BTreeSet<String> = delivered.iter().cloned().collect();
    assert_eq!(delivered.len(), 35, "each event acknowledged exactly once");
    assert_eq!(sent, delivered_set, "retries resend the same uuids");
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.retries, 3);
    assert_eq!(stats.delivered, 35);
    assert_eq!(stats.dropped.total(), 0);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_dropped_and_the_rest_delivered() {
    let backend = Backend::start(Responder::reject_containing("POISON".into())).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    for i in 0..20 {
        let name = if i == 13 { "POISON" } else { "fine" };
        recorder.do_send(Record::new(name).property("i", i));
    }
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 19, "{report:?}");
    assert_eq!(report.dropped, 1);
    let events = backend.delivered_events();
    assert_eq!(events.len(), 19);
    assert!(events.iter().all(|e| e["name"] == "fine"));
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.dropped.rejected, 1);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_batches_are_split() {
    // The backend takes at most 3 events a request, like a server with a small body limit.
    let backend = Backend::start(Responder::new(|req, _| match req.path_only() {
        EVENTS_BATCH if req.json()["batch"].as_array().map_or(0, Vec::len) > 3 => {
            Reply::status(413)
        }
        _ => Reply::ok(),
    }))
    .await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    for i in 0..10 {
        recorder.do_send(Record::new("e").property("i", i));
    }
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 10, "{report:?}");
    let mut got: Vec<i64> = backend
        .delivered_events()
        .iter()
        .map(|e| e["properties"]["i"].as_i64().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_415_downgrades_to_uncompressed() {
    let backend = Backend::start(Responder::new(|req, _| match req.path_only() {
        EVENTS_BATCH if req.header("content-encoding") == Some("zstd") => Reply::status(415),
        _ => Reply::ok(),
    }))
    .await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("one"));
    assert_eq!(
        recorder.send(Flush::within(WAIT)).await.unwrap().delivered,
        1
    );
    recorder.do_send(Record::new("two"));
    assert_eq!(
        recorder.send(Flush::within(WAIT)).await.unwrap().delivered,
        1
    );
    let batches = backend.requests_to(EVENTS_BATCH);
    let encodings: Vec<Option<&str>> = batches
        .iter()
        .map(|r| r.header("content-encoding"))
        .collect();
    // One refused zstd attempt, then identity for this batch and every later one.
    assert_eq!(encodings, [Some("zstd"), None, None]);
    assert_eq!(recorder.send(GetStats).await.unwrap().retries, 0);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_options_without_zstd_send_identity() {
    let backend = Backend::start(Responder::with_checkin(
        json!({"server_options": {"compression_algorithms": ["identity"]}, "options": {}}),
    ))
    .await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    recorder
        .send(actix_telemetry::WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();
    recorder.do_send(Record::new("plain"));
    assert_eq!(
        recorder.send(Flush::within(WAIT)).await.unwrap().delivered,
        1
    );
    let batch = &backend.requests_to(EVENTS_BATCH)[0];
    assert_eq!(batch.header("content-encoding"), None);
    assert_eq!(batch.raw_body, batch.body);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_everything_queued_within_its_deadline() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    for i in 0..2500 {
        recorder.do_send(Record::new("queued").property("i", i));
    }
    let started = std::time::Instant::now();
    let report = telemetry.shutdown(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(report.flush.delivered, 2500, "{report:?}");
    assert!(!report.timed_out);
    assert_eq!(report.stats.delivered, 2500);
    assert_eq!(report.stats.accepted, 2500);
    assert_eq!(backend.delivered_events().len(), 2500);
    // Recording after shutdown is refused quietly: the runtime has stopped.
    recorder.do_send(Record::new("late"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_at_its_deadline_when_the_backend_hangs() {
    let backend = Backend::start(Responder::new(|req, _| match req.path_only() {
        EVENTS_BATCH => Reply::hang(),
        _ => Reply::ok(),
    }))
    .await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    for _ in 0..10 {
        recorder.do_send(Record::new("stuck"));
    }
    let started = std::time::Instant::now();
    let report = telemetry.shutdown(Duration::from_millis(500)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(report.timed_out);
    assert_eq!(report.flush.pending, 10);
    assert_eq!(report.stats.dropped.shutdown, 10);
    assert_eq!(report.stats.queue_depth, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_telemetry_makes_no_request_at_all() {
    for vars in [
        vec![("DETSYS_IDS_TELEMETRY", "disabled")],
        vec![("DO_NOT_TRACK", "1")],
    ] {
        let backend = Backend::start(Responder::ok()).await;
        let telemetry = builder_with_env(&backend.url(), vars.clone())
            .build()
            .unwrap();
        assert!(!telemetry.is_enabled());
        let recorder = telemetry.recorder().clone();
        recorder.do_send(Record::new("ignored"));
        recorder.do_send(Identify::new("someone"));
        let flag: Option<bool> = recorder
            .send(actix_telemetry::GetVariant::new("any"))
            .await
            .unwrap();
        assert_eq!(flag, None);
        assert_eq!(
            recorder
                .send(actix_telemetry::WaitForCheckin {
                    timeout: Duration::from_secs(1)
                })
                .await
                .unwrap(),
            Err(actix_telemetry::WaitForCheckinError::Disabled)
        );
        let stats = recorder.send(GetStats).await.unwrap();
        assert_eq!(stats.accepted, 0);
        // The event and the `$identify`; a flag read makes an event only when it is not a
        // repeat, which only the pipeline would know, so it counts neither way.
        assert_eq!(stats.dropped.opt_out, 2, "{vars:?}: {stats:?}");
        let report = telemetry.shutdown(WAIT).await;
        assert_eq!(report.stats.delivered, 0);
        assert!(backend.requests().is_empty(), "{vars:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_invalid_events_are_counted_and_nothing_else_is_lost() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .max_event_bytes(4096)
        .max_queue_bytes(1 << 20)
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("small"));
    recorder.do_send(Record::new("huge").property("blob", "x".repeat(10_000)));
    recorder.do_send(Record::new(""));
    recorder.do_send(Record::new("n".repeat(201)));
    recorder.do_send(Record::new("small"));
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.delivered, 2);
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.dropped.too_large, 1);
    assert_eq!(stats.dropped.invalid, 2);
    assert_eq!(backend.delivered_events().len(), 2);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_backend_is_retried_then_counted() {
    // A port nobody listens on.
    let port = closed_addr().port();
    let telemetry = builder(&format!("http://127.0.0.1:{port}"))
        .max_attempts(Some(3))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("lost"));
    let report = recorder.send(Flush::within(WAIT)).await.unwrap();
    assert_eq!(report.dropped, 1, "{report:?}");
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.dropped.retries_exhausted, 1);
    assert_eq!(stats.retries, 3);
    assert!(stats.checkin_failures >= 1);
    telemetry.shutdown(WAIT).await;
}

/// A backend that answers `302 Location: /elsewhere` on `redirected` and 200 everywhere else,
/// with a check-in document carrying a flag on `/elsewhere` (so a followed check-in redirect
/// would show up as flags).
fn redirecting(redirected: &'static str) -> Responder {
    Responder::new(move |req, _| match req.path_only() {
        path if path == redirected => Reply::status(302).with_header("location", "/elsewhere"),
        "/elsewhere" => Reply::json(200, &json!({"options": {"redirected": {"variant": true}}})),
        CHECK_IN => Reply::json(200, &json!({"options": {}})),
        _ => Reply::ok(),
    })
}

fn gets(backend: &Backend) -> Vec<String> {
    backend
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_batch_is_retried_not_delivered() {
    let backend = Backend::start(redirecting(EVENTS_BATCH)).await;
    let telemetry = builder(&backend.url()).max_attempts(None).build().unwrap();
    let recorder = telemetry.recorder().clone();
    for i in 0..3 {
        recorder.do_send(Record::new("redirected").property("i", i));
    }
    let report = recorder
        .send(Flush::within(Duration::from_millis(500)))
        .await
        .unwrap();
    assert!(report.complete, "{report:?}");
    assert_eq!(report.delivered, 0, "{report:?}");
    assert_eq!(report.pending, 3, "{report:?}");
    assert!(backend.requests_to(EVENTS_BATCH).len() > 1);
    assert_eq!(
        gets(&backend),
        Vec::<String>::new(),
        "no redirect is followed"
    );
    let stats = recorder.send(GetStats).await.unwrap();
    assert!(stats.retries > 0, "{stats:?}");
    assert_eq!(stats.delivered, 0, "{stats:?}");
    telemetry.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_checkin_fails_and_applies_no_flags() {
    let backend = Backend::start(redirecting(CHECK_IN)).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    let waited = recorder
        .send(actix_telemetry::WaitForCheckin {
            timeout: Duration::from_millis(500),
        })
        .await
        .unwrap();
    assert!(
        waited.is_err(),
        "a redirected check-in succeeded: {waited:?}"
    );
    assert!(backend.wait_for_requests_to(CHECK_IN, 1, WAIT).await);
    let mut stats = recorder.send(GetStats).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while stats.checkin_failures == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = recorder.send(GetStats).await.unwrap();
    }
    assert!(stats.checkin_failures >= 1, "{stats:?}");
    assert_eq!(stats.checkins, 0, "{stats:?}");
    let features = recorder.send(actix_telemetry::GetFeatures).await.unwrap();
    assert!(features.is_empty(), "{features:?}");
    assert_eq!(
        gets(&backend),
        Vec::<String>::new(),
        "no redirect is followed"
    );
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_deadline_runs_from_when_the_flush_was_made() {
    let backend = Backend::start(Responder::new(|req, _| match req.path_only() {
        EVENTS_BATCH => Reply::hang(),
        _ => Reply::ok(),
    }))
    .await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    for _ in 0..3 {
        recorder.do_send(Record::new("stuck"));
    }
    let timeout = Duration::from_millis(800);
    let flush = Flush::within(timeout);
    tokio::time::sleep(timeout).await;
    // Its deadline has passed: it answers at once instead of waiting another `timeout`.
    let sent = std::time::Instant::now();
    let report = recorder.send(flush).await.unwrap();
    assert!(sent.elapsed() < timeout * 3 / 4, "{:?}", sent.elapsed());
    assert!(report.complete, "{report:?}");
    assert_eq!(report.pending, 3, "{report:?}");
    telemetry.shutdown(Duration::from_millis(100)).await;
}
