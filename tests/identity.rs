//! What could tie events to a machine or a person beyond what the application chose: the
//! host name's hash is salted per installation, and `Reset` starts a new device id too.

mod support;

use std::path::Path;
use std::time::Duration;

use actix_telemetry::{Flush, Record, Reset, StateLocation};
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

async fn host_name(state: StateLocation) -> String {
    let events = run(|b| b.state(state), &["one"]).await;
    events[0]["properties"]["host_name"]
        .as_str()
        .expect("a host_name")
        .to_string()
}

/// What the host name hashed to without a salt.
fn unsalted(name: &str) -> String {
    let hash = format!("actix-telemetry/host:{name}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("h-{hash:016x}")
}

fn dir(path: &Path) -> StateLocation {
    StateLocation::At(path.to_path_buf())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_name_hash_is_stable_for_one_installation_and_useless_elsewhere() {
    let temp = TempDir::new("identity-host");
    let (mine, other) = (temp.join("mine"), temp.join("other"));
    let first = host_name(dir(&mine)).await;
    assert!(first.starts_with("h-") && first.len() == 18, "{first}");
    assert_eq!(host_name(dir(&mine)).await, first, "not stable across runs");
    assert_ne!(host_name(dir(&other)).await, first, "the same elsewhere");
    if let Some(name) = sysinfo::System::host_name() {
        assert_ne!(first, unsalted(name.trim()), "a dictionary reverses it");
    }
    // With nowhere to keep a salt, each run has its own.
    assert_ne!(
        host_name(StateLocation::Disabled).await,
        host_name(StateLocation::Disabled).await
    );
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
