//! Flag reads on the caller's thread (`Telemetry::flags`): answered from the local copy of the
//! flags, kept current by check-ins, and still recorded as de-duplicated `$feature_flag_called`
//! events.

mod support;

use std::time::Duration;

use actix_telemetry::{GetStats, Identify, Record, RefreshConfiguration};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

fn evaluations(backend: &Backend) -> Vec<(String, Value, Value)> {
    backend
        .delivered_events()
        .into_iter()
        .filter(|e| e["name"] == "$feature_flag_called")
        .map(|e| {
            let p = &e["properties"];
            (
                p["$feature_flag"].as_str().unwrap_or_default().to_string(),
                p["$feature_flag_response"].clone(),
                e["distinct_id"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_locally_and_record_each_answer_once_per_identity() {
    let (backend, telemetry) = started_with_checkin(json!({"options": {
        "color": {"variant": "blue", "payload": "{\"hex\": \"#00f\"}"},
        "beta": {"variant": true},
        "ptr": {"variant": "x", "payload": "\"color\""},
    }}))
    .await;
    let flags = telemetry.flags();
    for _ in 0..100 {
        assert_eq!(flags.variant::<String>("color").as_deref(), Some("blue"));
        assert!(flags.is_enabled("beta"));
    }
    assert_eq!(
        flags.payload::<Value>("color"),
        Some(json!({"hex": "#00f"}))
    );
    assert_eq!(flags.variant_or("missing", 7u32), 7);
    assert_eq!(
        flags
            .following_pointers()
            .variant::<String>("ptr")
            .as_deref(),
        Some("blue")
    );
    // A new identity: the same reads are events again, for that user. Sent through the
    // bounded path, which flag reads share, so the read after it is handled after it.
    assert!(telemetry.events().send(Identify::new("user-2")));
    assert!(flags.is_enabled("beta"));
    settled_stats(&telemetry, WAIT).await;

    let mut seen = evaluations(&backend);
    seen.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    let beta: Vec<_> = seen.iter().filter(|(f, _, _)| f == "beta").collect();
    assert_eq!(beta.len(), 2, "once per identity: {seen:?}");
    assert_eq!(beta.iter().filter(|(_, _, id)| id == "user-2").count(), 1);
    assert_eq!(seen.iter().filter(|(f, _, _)| f == "color").count(), 1);
    assert_eq!(
        seen.iter()
            .filter(|(f, r, _)| f == "missing" && *r == json!(7))
            .count(),
        1,
        "{seen:?}"
    );
    let stats = telemetry.recorder().send(GetStats).await.unwrap();
    assert_eq!(
        stats.accepted,
        stats.delivered + stats.dropped.total() + stats.queue_depth,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_check_in_reaches_the_reader() {
    let flip = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = flip.clone();
    let backend = Backend::start(Responder::new(move |req, _| match req.path_only() {
        CHECK_IN => {
            let on = seen.load(std::sync::atomic::Ordering::SeqCst);
            Reply::json(200, &json!({"options": {"beta": {"variant": on}}}))
        }
        _ => Reply::ok(),
    }))
    .await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let flags = telemetry.flags();
    wait_for_checkin(&telemetry).await;
    assert!(!flags.is_enabled("beta"));
    flip.store(true, std::sync::atomic::Ordering::SeqCst);
    telemetry.recorder().do_send(RefreshConfiguration);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !flags.features().is_enabled("beta") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new flags never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(flags.is_enabled("beta"));
    telemetry.recorder().do_send(Record::new("after"));
    settled_stats(&telemetry, WAIT).await;
}
