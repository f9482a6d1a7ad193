//! Checks that the loopback backend used by the other integration tests records and answers
//! the way they rely on.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Backend, Reply, Responder};

const WAIT: Duration = Duration::from_secs(5);

fn client() -> reqwest::Client {
    // A proxy from the environment would otherwise see loopback traffic meant for the backend.
    reqwest::Client::builder()
        .no_proxy()
        // The tests look at the answer the backend gave, not at where it pointed.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build HTTP client")
}

fn batch(uuids: &[&str]) -> Vec<u8> {
    let events: Vec<_> = uuids
        .iter()
        .map(|uuid| json!({"name": "test", "distinct_id": "d", "uuid": uuid, "properties": {}}))
        .collect();
    serde_json::to_vec(&json!({"sent_at": "2025-01-01T00:00:00Z", "batch": events}))
        .expect("serialize batch")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_statuses_are_answered_in_order_and_recorded() {
    support::init_tracing();
    let backend = Backend::start(Responder::events_script(vec![
        Reply::status(503),
        Reply::status(429).with_header("retry-after", "1"),
    ]))
    .await;
    let client = client();
    let url = format!("{}/events/batch", backend.url());

    let mut answers = Vec::new();
    for uuid in ["a", "b", "c"] {
        let response = client
            .post(&url)
            .body(batch(&[uuid]))
            .send()
            .await
            .expect("post batch");
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("ascii header").to_owned());
        answers.push((response.status().as_u16(), retry_after));
    }
    let checkin = client
        .post(format!("{}/check-in", backend.url()))
        .body("{}")
        .send()
        .await
        .expect("post check-in");
    assert_eq!(checkin.status().as_u16(), 200);
    assert_eq!(
        checkin.bytes().await.expect("check-in body").as_ref(),
        br#"{"options":{}}"#
    );

    assert_eq!(
        answers,
        vec![(503, None), (429, Some("1".to_owned())), (200, None)]
    );
    let recorded = backend.requests_to("/events/batch");
    let statuses: Vec<u16> = recorded.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 429, 200]);
    assert!(recorded.iter().all(|r| r.method == "POST"));
    assert_eq!(backend.requests().len(), 4);
    // Only the answered-2xx batch counts as delivered.
    let uuids: Vec<_> = backend
        .delivered_events()
        .iter()
        .map(|e| e["uuid"].clone())
        .collect();
    assert_eq!(uuids, vec![json!("c")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_bodies_are_decoded_and_kept_raw() {
    support::init_tracing();
    let backend = Backend::start(Responder::ok()).await;
    let plain = batch(&["z1", "z2"]);
    let compressed = zstd::encode_all(plain.as_slice(), 3).expect("compress");
    let url = format!("{}/events/batch", backend.url());

    let good = client()
        .post(&url)
        .header("content-encoding", "zstd")
        .body(compressed.clone())
        .send()
        .await
        .expect("post compressed batch");
    let bad = client()
        .post(&url)
        .header("content-encoding", "zstd")
        .body(b"not zstd at all".to_vec())
        .send()
        .await
        .expect("post broken batch");

    assert_eq!(good.status().as_u16(), 200);
    assert_eq!(bad.status().as_u16(), 400);
    let recorded = backend.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].header("Content-Encoding"), Some("zstd"));
    assert_eq!(recorded[0].raw_body, compressed);
    assert_eq!(recorded[0].body, plain);
    assert_eq!(recorded[0].json()["batch"][1]["uuid"], "z2");
    assert_eq!(recorded[1].status, 400);
    assert_eq!(recorded[1].body, b"not zstd at all");
    assert_eq!(backend.event_count(), 2);
    assert_eq!(backend.body_bytes(), (compressed.len() + 15) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_events_sees_a_batch_post() {
    support::init_tracing();
    let backend = Backend::start(Responder::with_checkin(
        json!({"options": {"f": {"variant": true}}}),
    ))
    .await;
    let url = format!("{}/events/batch", backend.url());

    // Not there yet: the wait must give up at its timeout.
    assert!(!backend.wait_for_events(1, Duration::from_millis(50)).await);

    let poster = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client()
            .post(url)
            .body(batch(&["e1", "e2", "e3"]))
            .send()
            .await
            .expect("post batch")
            .status()
            .as_u16()
    });
    assert!(backend.wait_for_events(3, WAIT).await);
    assert_eq!(poster.await.expect("poster task"), 200);

    let events = backend.delivered_events();
    let uuids: Vec<_> = events
        .iter()
        .map(|e| e["uuid"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(uuids, ["e1", "e2", "e3"]);
    assert_eq!(events[0]["name"], "test");
    assert_eq!(backend.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_reply_is_recorded_before_it_is_sent() {
    support::init_tracing();
    let delay = Duration::from_millis(400);
    let backend = Backend::start(Responder::events_script(vec![Reply::ok().delayed(delay)])).await;
    let url = format!("{}/events/batch", backend.url());

    let started = tokio::time::Instant::now();
    let poster = tokio::spawn(async move {
        let response = client()
            .post(url)
            .body(batch(&["slow"]))
            .send()
            .await
            .expect("post batch");
        (response.status().as_u16(), tokio::time::Instant::now())
    });
    assert!(
        backend
            .wait_until(WAIT, |all| all.iter().any(|r| r.path == "/events/batch"))
            .await
    );
    let seen_at = tokio::time::Instant::now();
    assert!(!poster.is_finished(), "the answer must still be pending");

    let (status, answered_at) = poster.await.expect("poster task");
    assert_eq!(status, 200);
    assert!(seen_at < answered_at);
    assert!(answered_at - started >= delay);
    let recorded = backend.requests_to("/events/batch");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].status, 200);
    assert!(answered_at - recorded[0].received_at >= delay);
}
