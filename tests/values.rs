//! Values that enter from the caller or the backend cannot take the host down or vanish
//! silently: nesting is limited where a value enters (never a stack overflow, on any thread),
//! NaN and infinities are refused and counted instead of becoming `null`.

mod support;

use std::time::Duration;

use actix_telemetry::{
    Identify, MAX_VALUE_DEPTH, PropertyFilter, Record, SetFact, SetPersonProperties,
};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// An array nested `depth` levels deep, built without recursion.
fn nested(depth: usize) -> Value {
    let mut value = Value::Null;
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

fn record_plain(telemetry: &actix_telemetry::Telemetry, label: &str, n: usize) {
    for i in 0..n {
        telemetry
            .recorder()
            .do_send(Record::new(label).property("i", i as u64));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_nested_10_000_deep_are_refused_and_the_runtime_goes_on() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    record_plain(&telemetry, "before", 500);
    telemetry
        .recorder()
        .do_send(SetFact::new("deep_fact", nested(10_000)));
    telemetry
        .recorder()
        .do_send(Identify::new("user-1").set("deep_person", nested(10_000)));
    telemetry
        .recorder()
        .do_send(SetPersonProperties::new().set_once("deep_once", nested(10_000)));
    telemetry.recorder().do_send(
        Record::new("with_deep")
            .property("deep", nested(10_000))
            .property("kept", 1),
    );
    record_plain(&telemetry, "after", 500);
    let stats = settled_stats(&telemetry, WAIT).await;
    // 1,000 plain, `with_deep`, `$identify` and `$set`.
    assert_eq!(stats.delivered, 1003, "{stats:?}");
    assert_eq!(stats.invalid_values, 4, "{stats:?}");
    telemetry.shutdown(WAIT).await;
    let events = backend.delivered_events();
    let with_deep = events.iter().find(|e| e["name"] == "with_deep").unwrap();
    assert_eq!(with_deep["properties"]["kept"], 1);
    assert!(with_deep["properties"].get("deep").is_none());
    assert!(with_deep["properties"].get("deep_fact").is_none());
    let identify = events.iter().find(|e| e["name"] == "$identify").unwrap();
    assert!(identify["properties"]["$set"].get("deep_person").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_and_infinities_are_refused_and_counted_never_nulled() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    telemetry.recorder().do_send(
        Record::new("ratios")
            .property("nan", f64::NAN)
            .property("inf", f32::INFINITY)
            .property("list", vec![1.0, f64::NEG_INFINITY])
            .property("fine", 0.5),
    );
    telemetry
        .recorder()
        .do_send(SetFact::new("fact_nan", f64::NAN));
    telemetry.recorder().do_send(Record::new("later"));
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 2);
    assert_eq!(stats.invalid_values, 4, "{stats:?}");
    telemetry.shutdown(WAIT).await;
    let events = backend.delivered_events();
    let properties = &events.iter().find(|e| e["name"] == "ratios").unwrap()["properties"];
    for refused in ["nan", "inf", "list"] {
        assert!(properties.get(refused).is_none(), "{refused}: {properties}");
    }
    assert_eq!(properties["fine"], 0.5);
    let later = &events.iter().find(|e| e["name"] == "later").unwrap()["properties"];
    assert!(later.get("fact_nan").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_nested_past_the_limit_is_refused_at_record_time_and_filters_still_work() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url())
        .filter(PropertyFilter::all().deny(["secret"]))
        .build()
        .unwrap();
    telemetry.recorder().do_send(
        Record::new("mixed")
            .property("deep", nested(200))
            .property("at_limit", nested(MAX_VALUE_DEPTH))
            .property("secret", "s")
            .property("kept", "k"),
    );
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 1);
    assert_eq!(stats.invalid_values, 1);
    telemetry.shutdown(WAIT).await;
    let events = backend.delivered_events();
    let properties = &events[0]["properties"];
    assert_eq!(properties["kept"], "k");
    assert!(properties.get("secret").is_none());
    assert!(properties.get("deep").is_none());
    assert!(properties.get("at_limit").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_whose_variant_nests_too_deep_is_invalid_and_the_others_are_served() {
    let mut deep = json!(1);
    for _ in 0..120 {
        deep = json!([deep]);
    }
    let (backend, telemetry) = started_with_checkin(
        json!({"options": {"deep": {"variant": deep}, "ok": {"variant": true}}}),
    )
    .await;
    telemetry.recorder().do_send(Record::new("e"));
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 1);
    assert!(stats.invalid_flags >= 1, "{stats:?}");
    telemetry.shutdown(WAIT).await;
    let events = backend.delivered_events();
    assert_eq!(events[0]["properties"]["$feature/ok"], true);
    assert!(events[0]["properties"].get("$feature/deep").is_none());
}

#[test]
fn a_fact_the_builder_cannot_send_fails_the_build_naming_it() {
    let error = builder("file:///dev/null")
        .fact("load", f64::NAN)
        .build()
        .unwrap_err();
    match error {
        actix_telemetry::BuildError::InvalidConfig(error) => {
            assert_eq!(error.setting, "fact \"load\"");
        }
        other => panic!("{other:?}"),
    }
}
