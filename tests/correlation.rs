//! `DETSYS_CORRELATION` in both shapes, end to end: ids, groups and properties on the wire, and
//! a malformed document reported without stopping the pipeline.

mod support;

use std::time::Duration;

use actix_telemetry::{Flush, Record};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

async fn first_event(
    vars: Vec<(&str, &str)>,
    configure: fn(actix_telemetry::Builder) -> actix_telemetry::Builder,
) -> (Value, Option<String>) {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = configure(builder_with_env(&backend.url(), vars))
        .build()
        .unwrap();
    let error = telemetry.correlation_error().map(|e| e.to_string());
    let recorder = telemetry.recorder().clone();
    recorder.do_send(Record::new("correlated").property("mine", 1));
    assert_eq!(
        recorder.send(Flush::within(WAIT)).await.unwrap().delivered,
        1
    );
    telemetry.shutdown(WAIT).await;
    (backend.delivered_events().remove(0), error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_shape() {
    let doc = r#"{"$anon_distinct_id":"github_x","correlation_source":"github-actions","github_repository_hash":"GHR-x","$session_id":"GHWJA-x","$groups":{"github_repository":"GHR-x","github_organization":"GHO-x"},"is_ci":true}"#;
    let (event, error) = first_event(vec![("DETSYS_CORRELATION", doc)], |b| {
        b.group("team", "core")
    })
    .await;
    assert_eq!(error, None);
    let p = &event["properties"];
    assert_eq!(
        event["distinct_id"], "github_x",
        "anonymous until identified"
    );
    assert_eq!(p["$anon_distinct_id"], "github_x");
    assert_eq!(p["$session_id"], "GHWJA-x");
    assert_eq!(
        p["$groups"],
        json!({"github_repository": "GHR-x", "github_organization": "GHO-x", "team": "core"})
    );
    assert_eq!(p["correlation_source"], "github-actions");
    assert_eq!(p["github_repository_hash"], "GHR-x");
    // The correlation's `is_ci` is a fact: it wins over the host snapshot's.
    assert_eq!(p["is_ci"], true);
    assert_eq!(p["mine"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_shape() {
    let doc = r#"{"repository":"GHR-legacy","run":"RUN-1","run_differentiator":"WIN-1","workflow":"WF-1","groups":{"github_organization":"GHO-l","gone":null},"$groups":{"github_repository":"GHR-legacy"},"extra":"yes"}"#;
    let (event, error) = first_event(vec![("DETSYS_CORRELATION", doc)], |b| b).await;
    assert_eq!(error, None);
    let p = &event["properties"];
    assert_eq!(event["distinct_id"], "GHR-legacy");
    assert_eq!(p["$session_id"], "RUN-1");
    assert_eq!(p["$window_id"], "WIN-1");
    assert_eq!(p["$device_id"], "WF-1");
    assert_eq!(
        p["$groups"],
        json!({"github_organization": "GHO-l", "github_repository": "GHR-legacy"})
    );
    assert_eq!(p["extra"], "yes");
    for consumed in [
        "repository",
        "run",
        "run_differentiator",
        "workflow",
        "groups",
    ] {
        assert!(
            p.get(consumed).is_none(),
            "{consumed} leaked into properties"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_builder_ids_win_over_the_correlation() {
    let doc =
        r#"{"distinct_id":"corr-user","$device_id":"corr-dev","$anon_distinct_id":"corr-anon"}"#;
    let (event, _) = first_event(vec![("DETSYS_CORRELATION", doc)], |b| {
        b.distinct_id("app-user").device_id("app-dev")
    })
    .await;
    assert_eq!(event["distinct_id"], "app-user");
    assert_eq!(event["properties"]["$device_id"], "app-dev");
    assert_eq!(event["properties"]["$anon_distinct_id"], "corr-anon");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_document_is_reported_and_events_still_flow() {
    for doc in ["{not json", "[1, 2]", r#"{"$session_id": 5}"#] {
        let (event, error) = first_event(vec![("DETSYS_CORRELATION", doc)], |b| b).await;
        let error = error.unwrap_or_else(|| panic!("{doc} was accepted"));
        assert!(error.contains("correlation"), "{error}");
        assert_eq!(event["name"], "correlated");
        assert!(event["properties"]["$session_id"].as_str().unwrap().len() >= 32);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_rotate_after_inactivity_unless_the_correlation_fixed_them() {
    let policy = actix_telemetry::SessionPolicy {
        idle_timeout: Duration::from_millis(150),
        max_length: Duration::from_secs(3600),
    };
    for (vars, fixed) in [
        (vec![], false),
        (
            vec![("DETSYS_CORRELATION", r#"{"$session_id":"ci-run-7"}"#)],
            true,
        ),
    ] {
        let backend = Backend::start(Responder::ok()).await;
        let telemetry = builder_with_env(&backend.url(), vars)
            .session(policy)
            .build()
            .unwrap();
        let recorder = telemetry.recorder().clone();
        recorder.do_send(Record::new("one"));
        recorder.do_send(Record::new("two"));
        recorder.send(Flush::within(WAIT)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        recorder.do_send(Record::new("three"));
        recorder.send(Flush::within(WAIT)).await.unwrap();
        telemetry.shutdown(WAIT).await;
        let sessions: Vec<Value> = backend
            .delivered_events()
            .iter()
            .map(|e| e["properties"]["$session_id"].clone())
            .collect();
        assert_eq!(sessions[0], sessions[1]);
        if fixed {
            assert_eq!(sessions[2], "ci-run-7");
            assert_eq!(sessions[0], "ci-run-7");
        } else {
            assert_ne!(
                sessions[1], sessions[2],
                "no new session after the idle timeout"
            );
        }
    }
}
