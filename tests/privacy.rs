//! Nothing leaves the process that a filter denies: not in events' nested person properties,
//! not in check-in requests.

mod support;

use std::time::Duration;

use actix_telemetry::{Identify, PropertyFilter, Record, RefreshConfiguration};
use serde_json::json;
use support::*;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_name_is_removed_from_set_and_set_once_and_from_checkins() {
    let backend = Backend::start(Responder::with_checkin(json!({"options": {}}))).await;
    let telemetry = builder(&backend.url())
        .filter(PropertyFilter::all().deny(["email"]))
        .fact("email", "fact@example.com")
        .build()
        .unwrap();
    wait_for_checkin(&telemetry).await;
    telemetry.recorder().do_send(
        Identify::new("user-1")
            .set("email", "set@example.com")
            .set("plan", "pro")
            .set_once("email", "once@example.com"),
    );
    telemetry.recorder().do_send(Record::new("after"));
    telemetry.recorder().do_send(RefreshConfiguration);
    assert!(backend.wait_for_requests_to(CHECK_IN, 2, WAIT).await);
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 2);
    telemetry.shutdown(WAIT).await;

    for request in backend.requests() {
        assert!(
            !request.body_contains(b"example.com"),
            "{} carried a denied value: {}",
            request.path_only(),
            request.json()
        );
    }
    let events = backend.delivered_events();
    let identify = events.iter().find(|e| e["name"] == "$identify").unwrap();
    assert_eq!(identify["properties"]["$set"], json!({"plan": "pro"}));
    let checkins = backend.requests_to(CHECK_IN);
    let last = checkins.last().unwrap().json();
    assert_eq!(last["distinct_id"], "user-1");
    assert_eq!(last["person_properties"]["plan"], "pro");
}
