//! Feature flags from check-ins: every check-in's flags reach events, subscribers hear only real
//! changes, `WaitForCheckin`, typed reads and `$feature_flag_called`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_telemetry::{
    Feature, Flush, GetFeature, GetPayload, GetStats, GetVariant, IsEnabled, Record,
    SubscribeFeatures, WaitForCheckin, WaitForCheckinError,
};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

fn flags_v(version: &str) -> Value {
    json!({"options": {
        "color": {"variant": version},
        "beta": {"variant": true},
        "str-flag": {"variant": "a", "payload": "{\"x\": 1}"},
        "bad-payload": {"variant": "on", "payload": "{broken"},
        "malformed": {"variant": "x", "payload": {"not": "a string"}}
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_checkins_reach_events_without_any_app_refresh() {
    // The first two check-ins serve v1, every later one v2.
    let backend = Backend::start(Responder::new(|req, index| match req.path_only() {
        CHECK_IN if index < 2 => Reply::json(200, &flags_v("v1")),
        CHECK_IN => Reply::json(200, &flags_v("v2")),
        _ => Reply::ok(),
    }))
    .await;
    let telemetry = builder(&backend.url())
        .checkin_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    recorder
        .send(WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();
    recorder.do_send(Record::new("early"));
    recorder.send(Flush::within(WAIT)).await.unwrap();
    assert!(backend.wait_for_requests_to(CHECK_IN, 3, WAIT).await);
    // Let the Collator take the third check-in's flags: a later read of the flags is ordered
    // after them in the Recorder, and the Collator sees them before the next event.
    let mut subscription = recorder.send(SubscribeFeatures).await.unwrap();
    while subscription.current().variant::<String>("color").as_deref() != Some("v2") {
        tokio::time::timeout(WAIT, subscription.changed())
            .await
            .unwrap();
    }
    recorder.do_send(Record::new("late"));
    recorder.send(Flush::within(WAIT)).await.unwrap();
    telemetry.shutdown(WAIT).await;

    let events = backend.delivered_events();
    let early = events.iter().find(|e| e["name"] == "early").unwrap();
    let late = events.iter().find(|e| e["name"] == "late").unwrap();
    assert_eq!(early["properties"]["$feature/color"], "v1");
    assert_eq!(late["properties"]["$feature/color"], "v2");
    assert_eq!(
        late["properties"]["$active_feature_flags"],
        json!(["bad-payload", "beta", "color", "str-flag"])
    );
    assert!(late["properties"].get("$feature/malformed").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_only_real_changes() {
    let backend = Backend::start(Responder::with_checkin(flags_v("same"))).await;
    let telemetry = builder(&backend.url())
        .checkin_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    let mut subscription = recorder.send(SubscribeFeatures).await.unwrap();
    let first = tokio::time::timeout(WAIT, subscription.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.variant::<String>("color").as_deref(), Some("same"));
    let seen = backend.requests_to(CHECK_IN).len();
    assert!(backend.wait_for_requests_to(CHECK_IN, seen + 4, WAIT).await);
    // Four more identical check-ins happened: none of them is a change.
    let stats = recorder.send(GetStats).await.unwrap();
    assert!(stats.checkins >= 4, "{stats:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), subscription.changed())
            .await
            .is_err(),
        "an identical check-in woke a subscriber"
    );
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_checkin_times_out_then_succeeds() {
    let healthy = Arc::new(AtomicUsize::new(0));
    let flag = healthy.clone();
    let backend = Backend::start(Responder::new(move |req, _| match req.path_only() {
        CHECK_IN if flag.load(Ordering::SeqCst) == 0 => Reply::status(503),
        CHECK_IN => Reply::json(200, &flags_v("ok")),
        _ => Reply::ok(),
    }))
    .await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    let timeout = Duration::from_millis(300);
    assert_eq!(
        recorder
            .send(WaitForCheckin { timeout })
            .await
            .unwrap()
            .unwrap_err(),
        WaitForCheckinError::Timeout(timeout)
    );
    // Flags are answered at once meanwhile, with nothing.
    let none: Option<String> = recorder.send(GetVariant::new("color")).await.unwrap();
    assert_eq!(none, None);
    healthy.store(1, Ordering::SeqCst);
    recorder.do_send(actix_telemetry::RefreshConfiguration);
    let flags = recorder
        .send(WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flags.variant::<String>("color").as_deref(), Some("ok"));
    let stats = recorder.send(GetStats).await.unwrap();
    assert!(stats.checkin_failures >= 1);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_reads_and_one_malformed_flag_among_valid_ones() {
    let (_backend, telemetry) = started_with_checkin(flags_v("v1")).await;
    let recorder = telemetry.recorder().clone();

    let beta: Option<bool> = recorder.send(GetVariant::new("beta")).await.unwrap();
    assert_eq!(beta, Some(true));
    assert!(recorder.send(IsEnabled::new("beta")).await.unwrap());
    assert!(!recorder.send(IsEnabled::new("missing")).await.unwrap());
    let payload: Option<Value> = recorder.send(GetPayload::new("str-flag")).await.unwrap();
    assert_eq!(payload, Some(json!({"x": 1})));
    // Variant and payload are parsed independently: a payload that is not a `u32` leaves the
    // variant readable.
    let feature: Option<Feature<String, u32>> =
        recorder.send(GetFeature::new("str-flag")).await.unwrap();
    assert_eq!(
        feature,
        Some(Feature {
            variant: "a".to_string(),
            payload: None
        })
    );
    let broken: Option<Feature<String, Value>> =
        recorder.send(GetFeature::new("bad-payload")).await.unwrap();
    assert_eq!(broken.map(|f| f.variant).as_deref(), Some("on"));
    let malformed: Option<String> = recorder.send(GetVariant::new("malformed")).await.unwrap();
    assert_eq!(malformed, None);
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.invalid_flags, 1);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_read_through_the_mailbox_is_sent_without_waiting_for_another_message() {
    let (backend, telemetry) = started_with_checkin(flags_v("v1")).await;
    let recorder = telemetry.recorder().clone();
    assert!(recorder.send(IsEnabled::new("beta")).await.unwrap());
    // Nothing else is sent: the evaluation still leaves with the next batch.
    let called = |events: &[Value]| events.iter().any(|e| e["name"] == "$feature_flag_called");
    let mut sent = false;
    while !sent {
        let next = backend.event_count() as usize + 1;
        if !backend.wait_for_events(next, WAIT).await {
            break;
        }
        sent = called(&backend.delivered_events());
    }
    assert!(sent, "the evaluation waited for a later message");
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_reads_record_deduplicated_evaluation_events() {
    let (backend, telemetry) = started_with_checkin(flags_v("v1")).await;
    let recorder = telemetry.recorder().clone();
    for _ in 0..3 {
        let _: Option<String> = recorder.send(GetVariant::new("color")).await.unwrap();
    }
    assert!(recorder.send(IsEnabled::new("beta")).await.unwrap());
    assert!(!recorder.send(IsEnabled::new("missing")).await.unwrap());
    recorder.send(Flush::within(WAIT)).await.unwrap();
    telemetry.shutdown(WAIT).await;

    let calls: Vec<(Value, Value)> = backend
        .delivered_events()
        .iter()
        .filter(|e| e["name"] == "$feature_flag_called")
        .map(|e| {
            (
                e["properties"]["$feature_flag"].clone(),
                e["properties"]["$feature_flag_response"].clone(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            (json!("color"), json!("v1")),
            (json!("beta"), json!(true)),
            (json!("missing"), Value::Null)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointer_flags_and_caller_defaults() {
    let doc = json!({"options": {
        "ptr": {"variant": "p", "payload": "\"mid\""},
        "mid": {"variant": "m", "payload": "\"target\""},
        "target": {"variant": "t", "payload": "{\"size\": 3}"},
        "loop-a": {"variant": "a", "payload": "\"loop-b\""},
        "loop-b": {"variant": "b", "payload": "\"loop-a\""},
        "broken": {"variant": "x", "payload": 7}
    }});
    let (backend, telemetry) = started_with_checkin(doc).await;
    let recorder = telemetry.recorder().clone();

    let plain: Option<String> = recorder.send(GetVariant::new("ptr")).await.unwrap();
    assert_eq!(plain.as_deref(), Some("p"));
    let followed: Option<String> = recorder
        .send(GetVariant::new("ptr").following_pointers())
        .await
        .unwrap();
    assert_eq!(followed.as_deref(), Some("t"));
    let payload: Option<Value> = recorder
        .send(GetPayload::new("ptr").following_pointers())
        .await
        .unwrap();
    assert_eq!(payload, Some(json!({"size": 3})));
    let looped: Option<String> = recorder
        .send(GetVariant::new("loop-a").following_pointers())
        .await
        .unwrap();
    assert_eq!(looped, None);

    let send_or = |name: &str, follow: bool| {
        let msg = actix_telemetry::GetVariantOr::new(name, "fallback".to_string());
        recorder.send(if follow {
            msg.following_pointers()
        } else {
            msg
        })
    };
    assert_eq!(send_or("ptr", true).await.unwrap(), "t");
    assert_eq!(send_or("missing", false).await.unwrap(), "fallback");
    assert_eq!(send_or("broken", false).await.unwrap(), "fallback");
    assert_eq!(send_or("loop-b", true).await.unwrap(), "fallback");
    let number: u32 = recorder
        .send(actix_telemetry::GetVariantOr::new("target", 42u32))
        .await
        .unwrap();
    assert_eq!(number, 42);
    let size: u32 = recorder
        .send(actix_telemetry::GetPayloadOr::new("nothing", 9u32))
        .await
        .unwrap();
    assert_eq!(size, 9);
    recorder.send(Flush::within(WAIT)).await.unwrap();
    telemetry.shutdown(WAIT).await;

    let calls: Vec<Value> = backend
        .delivered_events()
        .into_iter()
        .filter(|e| e["name"] == "$feature_flag_called")
        .map(|e| e["properties"].clone())
        .collect();
    let reason_of = |flag: &str, response: Value| {
        calls
            .iter()
            .find(|p| p["$feature_flag"] == flag && p["$feature_flag_response"] == response)
            .map(|p| {
                (
                    p["$feature_flag_default"].clone(),
                    p["$feature_flag_default_reason"].clone(),
                )
            })
    };
    assert_eq!(
        reason_of("missing", json!("fallback")),
        Some((json!(true), json!("missing")))
    );
    assert_eq!(
        reason_of("broken", json!("fallback")),
        Some((json!(true), json!("invalid")))
    );
    assert_eq!(
        reason_of("loop-b", json!("fallback")),
        Some((json!(true), json!("pointer_cycle")))
    );
    assert_eq!(
        reason_of("target", json!(42)),
        Some((json!(true), json!("wrong_type")))
    );
    assert_eq!(
        reason_of("nothing", Value::Null),
        Some((json!(true), json!("missing")))
    );
    // A read that found its flag says nothing about defaults.
    assert_eq!(
        reason_of("ptr", json!("t")),
        Some((Value::Null, Value::Null))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_identity_changes_makes_one_background_check_in() {
    let (backend, telemetry) = started_with_checkin(flags_v("v1")).await;
    let recorder = telemetry.recorder().clone();
    let before = backend.requests_to(CHECK_IN).len();

    recorder.do_send(actix_telemetry::Identify::new("burst-user").set("plan", "team"));
    recorder.do_send(actix_telemetry::AddGroup {
        group_type: "org".into(),
        group_key: "acme".into(),
    });
    recorder.do_send(actix_telemetry::SetPersonProperties::default());
    recorder.do_send(actix_telemetry::Alias {
        alias: "old".into(),
    });
    assert!(
        backend
            .wait_for_requests_to(CHECK_IN, before + 1, WAIT)
            .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let checkins = backend.requests_to(CHECK_IN);
    assert_eq!(
        checkins.len(),
        before + 1,
        "one check-in for the whole burst"
    );
    let last = checkins.last().unwrap().json();
    assert_eq!(last["distinct_id"], "burst-user");
    assert_eq!(last["groups"], json!({"org": "acme"}));
    assert_eq!(last["person_properties"]["plan"], "team");
    telemetry.shutdown(WAIT).await;
}
