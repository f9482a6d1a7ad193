//! Last-known-good state across a restart of the runtime: stale flags are served at once, the
//! identity is kept, `WaitForCheckin` still waits for a fresh check-in, and fresh flags replace
//! the stale ones.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_telemetry::{
    Flush, GetVariant, Identify, Record, RefreshConfiguration, StateLocation, WaitForCheckin,
    WaitForCheckinError,
};
use serde_json::json;
use support::*;

const WAIT: Duration = Duration::from_secs(10);

fn flags(color: &str) -> serde_json::Value {
    json!({"options": {"color": {"variant": color}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_flags_and_identity_survive_a_restart() {
    let dir = TempDir::new("persistence");
    let state = dir.join("state");

    // First run: a check-in with "v1", and an identified user.
    let first = Backend::start(Responder::with_checkin(flags("v1"))).await;
    let telemetry = builder(&first.url()).state_dir(&state).build().unwrap();
    let recorder = telemetry.recorder().clone();
    recorder
        .send(WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();
    recorder.do_send(Identify::new("user-9"));
    recorder.do_send(Record::new("first-run"));
    recorder.send(Flush::within(WAIT)).await.unwrap();
    telemetry.shutdown(WAIT).await;
    let first_run = first
        .delivered_events()
        .into_iter()
        .find(|e| e["name"] == "first-run")
        .unwrap();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["checkin.json", "identity.json"] {
            let mode = std::fs::metadata(state.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    // Second run: the backend cannot check in yet.
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let second = Backend::start(Responder::new(move |req, _| match req.path_only() {
        CHECK_IN if !flag.load(Ordering::SeqCst) => Reply::status(503),
        CHECK_IN => Reply::json(200, &flags("v2")),
        _ => Reply::ok(),
    }))
    .await;
    let telemetry = builder(&second.url()).state_dir(&state).build().unwrap();
    let recorder = telemetry.recorder().clone();
    // Served at once, from disk.
    let stale: Option<String> = recorder.send(GetVariant::new("color")).await.unwrap();
    assert_eq!(stale.as_deref(), Some("v1"));
    let timeout = Duration::from_millis(300);
    assert_eq!(
        recorder
            .send(WaitForCheckin { timeout })
            .await
            .unwrap()
            .unwrap_err(),
        WaitForCheckinError::Timeout(timeout)
    );
    recorder.do_send(Record::new("second-run"));
    recorder.send(Flush::within(WAIT)).await.unwrap();

    healthy.store(true, Ordering::SeqCst);
    recorder.do_send(RefreshConfiguration);
    let fresh = recorder
        .send(WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.variant::<String>("color").as_deref(), Some("v2"));
    recorder.do_send(Record::new("refreshed"));
    recorder.send(Flush::within(WAIT)).await.unwrap();
    telemetry.shutdown(WAIT).await;

    let events = second.delivered_events();
    let second_run = events.iter().find(|e| e["name"] == "second-run").unwrap();
    assert_eq!(second_run["distinct_id"], "user-9");
    assert_eq!(
        second_run["properties"]["$anon_distinct_id"],
        first_run["properties"]["$anon_distinct_id"]
    );
    assert_eq!(
        second_run["properties"]["$device_id"],
        first_run["properties"]["$device_id"]
    );
    assert_eq!(second_run["properties"]["$feature/color"], "v1");
    let refreshed = events.iter().find(|e| e["name"] == "refreshed").unwrap();
    assert_eq!(refreshed["properties"]["$feature/color"], "v2");
    // A new run is a new session.
    assert_ne!(
        second_run["properties"]["$session_id"],
        first_run["properties"]["$session_id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_state_directory_keeps_nothing() {
    let dir = TempDir::new("no-state");
    let backend = Backend::start(Responder::with_checkin(flags("v1"))).await;
    let telemetry = builder(&backend.url())
        .state(StateLocation::Disabled)
        .env(actix_telemetry::env::EnvSource::fixed([(
            "HOME",
            dir.0.to_str().unwrap(),
        )]))
        .build()
        .unwrap();
    telemetry
        .recorder()
        .send(WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();
    telemetry.shutdown(WAIT).await;
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
}

/// One run on a shared machine, with `correlation` handed down, recording one event.
async fn correlated_run(state: &std::path::Path, correlation: Option<&str>) -> serde_json::Value {
    let backend = Backend::start(Responder::ok()).await;
    let vars: Vec<(&str, &str)> = correlation
        .map(|doc| ("DETSYS_CORRELATION", doc))
        .into_iter()
        .collect();
    let telemetry = builder_with_env(&backend.url(), vars)
        .state_dir(state)
        .build()
        .unwrap();
    telemetry.recorder().do_send(Record::new("run"));
    telemetry
        .recorder()
        .send(Flush::within(WAIT))
        .await
        .unwrap();
    telemetry.shutdown(WAIT).await;
    backend.delivered_events().remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_handed_down_apply_to_their_run_only() {
    let dir = TempDir::new("persistence-correlation");
    let state = dir.join("state");
    let own = correlated_run(&state, None).await;

    // A CI runner runs repository A's job, then repository B's, on the same machine.
    let repo_a = r#"{"distinct_id":"GHR-A","$anon_distinct_id":"anon-A","$device_id":"WF-A","$groups":{"github_repository":"GHR-A"}}"#;
    let repo_b =
        r#"{"distinct_id":"GHR-B","$device_id":"WF-B","$groups":{"github_repository":"GHR-B"}}"#;
    let a = correlated_run(&state, Some(repo_a)).await;
    assert_eq!(a["distinct_id"], "GHR-A");
    assert_eq!(a["properties"]["$device_id"], "WF-A");
    let b = correlated_run(&state, Some(repo_b)).await;
    assert_eq!(b["distinct_id"], "GHR-B");
    assert_eq!(b["properties"]["$device_id"], "WF-B");
    assert_eq!(b["properties"]["$groups"]["github_repository"], "GHR-B");
    assert_ne!(b["properties"]["$anon_distinct_id"], "anon-A");

    // Nothing of either job was kept: the machine's own ids are.
    let saved = std::fs::read_to_string(state.join("identity.json")).unwrap();
    for handed_down in ["GHR-A", "GHR-B", "anon-A", "WF-A", "WF-B"] {
        assert!(!saved.contains(handed_down), "{handed_down} kept: {saved}");
    }
    let after = correlated_run(&state, None).await;
    for id in ["$device_id", "$anon_distinct_id"] {
        assert_eq!(after["properties"][id], own["properties"][id], "{id}");
    }
    assert_eq!(after["properties"]["$groups"], json!({}));
}
