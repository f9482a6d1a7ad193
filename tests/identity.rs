//! What could tie events to a machine or a person beyond what the application chose: `Reset`
//! starts a new device id too.

mod support;

use std::time::Duration;

use actix_telemetry::{Flush, Record, Reset};
use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(10);

/// The events of one run with `configure` applied, recording `names` with a `Reset` between
/// each.
async fn run(
    configure: impl FnOnce(actix_telemetry::Builder) -> actix_telemetry::Builder,
    names: &[&str],
) -> Vec<Value> {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = configure(builder(&backend.url())).build().unwrap();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            telemetry.recorder().do_send(Reset);
        }
        telemetry.recorder().do_send(Record::new(*name));
    }
    telemetry
        .recorder()
        .send(Flush::within(WAIT))
        .await
        .unwrap();
    telemetry.shutdown(WAIT).await;
    let events = backend.delivered_events();
    names
        .iter()
        .map(|name| {
            events
                .iter()
                .find(|e| e["name"] == *name)
                .cloned()
                .unwrap_or_else(|| panic!("no {name} event"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_starts_a_new_device_id_unless_the_application_set_one() {
    let temp = TempDir::new("identity-reset");
    let state = temp.join("state");
    let events = run(|b| b.state_dir(&state), &["before", "after"]).await;
    let device = |e: &Value| e["properties"]["$device_id"].as_str().unwrap().to_string();
    let (before, after) = (device(&events[0]), device(&events[1]));
    assert_ne!(before, after, "Reset kept the device id");
    assert!(after.starts_with("DIDS-DEV-"), "{after}");
    // The next run is the device as it was after the reset.
    let next = run(|b| b.state_dir(&state), &["next"]).await;
    assert_eq!(device(&next[0]), after);

    let pinned = run(|b| b.device_id("fleet-7"), &["before", "after"]).await;
    assert_eq!(device(&pinned[0]), "fleet-7");
    assert_eq!(device(&pinned[1]), "fleet-7");
}
