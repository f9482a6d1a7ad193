//! Many users in one process: each event can carry its own distinct id, groups and person
//! properties without touching the process's identity; groups are described with
//! `GroupIdentify`.

mod support;

use std::time::Duration;

use actix_telemetry::{EventIdentity, GroupIdentify, Record};
use serde_json::json;
use support::*;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_carries_its_own_identity_and_the_process_keeps_its_own() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .distinct_id("the-service")
        .group("region", "eu")
        .build()
        .unwrap();
    let recorder = telemetry.recorder();
    for i in 0..50 {
        recorder.do_send(Record::new(format!("u1-{i}")).distinct_id("user-1"));
        recorder.do_send(
            Record::new(format!("u2-{i}"))
                .distinct_id("user-2")
                .group("company", "acme")
                .set("plan", "pro")
                .set_once("first_seen", "2026-12-01"),
        );
        recorder.do_send(Record::new(format!("process-{i}")));
    }
    recorder.do_send(
        Record::new("whole").identity(EventIdentity::user("user-3").group("region", "us")),
    );
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 151, "{stats:?}");
    telemetry.shutdown(WAIT).await;

    let events = backend.delivered_events();
    for i in 0..50 {
        let u1 = by_name(&events, &format!("u1-{i}"));
        assert_eq!(u1["distinct_id"], "user-1");
        assert_eq!(u1["properties"]["$groups"], json!({"region": "eu"}));
        assert!(u1["properties"].get("$set").is_none());
        let u2 = by_name(&events, &format!("u2-{i}"));
        assert_eq!(u2["distinct_id"], "user-2");
        assert_eq!(
            u2["properties"]["$groups"],
            json!({"company": "acme", "region": "eu"})
        );
        assert_eq!(u2["properties"]["$set"], json!({"plan": "pro"}));
        assert_eq!(
            u2["properties"]["$set_once"],
            json!({"first_seen": "2026-12-01"})
        );
        let process = by_name(&events, &format!("process-{i}"));
        assert_eq!(process["distinct_id"], "the-service");
        assert!(process["properties"].get("$set").is_none());
    }
    let whole = by_name(&events, "whole");
    assert_eq!(whole["distinct_id"], "user-3");
    assert_eq!(whole["properties"]["$groups"], json!({"region": "us"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_overlong_distinct_id_is_invalid() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    telemetry
        .recorder()
        .do_send(Record::new("empty").distinct_id(""));
    telemetry
        .recorder()
        .do_send(Record::new("long").distinct_id("x".repeat(201)));
    telemetry
        .recorder()
        .do_send(Record::new("fine").distinct_id("x".repeat(200)));
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 1);
    assert_eq!(stats.dropped.invalid, 2);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_identify_describes_a_group() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .distinct_id("the-service")
        .build()
        .unwrap();
    telemetry.recorder().do_send(
        GroupIdentify::new("company", "acme")
            .set("name", "Acme Inc.")
            .set("seats", 12),
    );
    telemetry.recorder().do_send(Record::new("after"));
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 2);
    telemetry.shutdown(WAIT).await;
    let events = backend.delivered_events();
    let group = by_name(&events, "$groupidentify");
    assert_eq!(group["distinct_id"], "$company_acme");
    assert_eq!(group["properties"]["$group_type"], "company");
    assert_eq!(group["properties"]["$group_key"], "acme");
    assert_eq!(
        group["properties"]["$group_set"],
        json!({"name": "Acme Inc.", "seats": 12})
    );
    assert_eq!(by_name(&events, "after")["distinct_id"], "the-service");
}
