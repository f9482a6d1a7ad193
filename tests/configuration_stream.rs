//! Configuration streamed over Server-Sent Events from a real SSE server on loopback: version
//! order, `put` replacing the set, reconnection, malformed frames, 401 falling back to polling,
//! and subscribers hearing only real changes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_telemetry::{
    BackoffPolicy, FeatureSet, GetFeatures, GetStats, Recorder, StreamSettings, SubscribeFeatures,
    Telemetry, WaitForCheckin,
};
use serde_json::json;
use support::sse::SseServer;
use support::*;

const WAIT: Duration = Duration::from_secs(10);

async fn start(sse: &SseServer, backend: &Backend) -> Telemetry {
    builder(&backend.url())
        .checkin_interval(Duration::from_millis(100))
        .stream(StreamSettings {
            url: sse.url(),
            idle_timeout: Duration::from_secs(10),
            backoff: BackoffPolicy {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
                multiplier: 2.0,
                jitter: 0.0,
            },
        })
        .build()
        .unwrap()
}

/// A runtime whose stream is connected and has set flag `x`.
async fn streaming_flag_x(backend: &Backend) -> (SseServer, Telemetry) {
    let sse = SseServer::start().await;
    let telemetry = start(&sse, backend).await;
    assert!(sse.wait_for_streams(1, WAIT).await);
    sse.send("put", &json!({"options": {"x": {"variant": 1}}}));
    flags_until(telemetry.recorder(), |f| f.flag("x").is_some()).await;
    (sse, telemetry)
}

/// Waits until the flags satisfy `pred`.
async fn flags_until(
    recorder: &Addr<Recorder>,
    pred: impl Fn(&FeatureSet) -> bool,
) -> Arc<FeatureSet> {
    tokio::time::timeout(WAIT, async {
        loop {
            let flags = recorder.send(GetFeatures).await.unwrap();
            if pred(&flags) {
                return flags;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("flags never reached the expected state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_apply_in_version_order_and_put_replaces_the_set() {
    let backend = Backend::start(Responder::with_checkin(
        json!({"options": {"polled": {"variant": true}}}),
    ))
    .await;
    let sse = SseServer::start().await;
    let telemetry = start(&sse, &backend).await;
    let recorder = telemetry.recorder().clone();
    assert!(sse.wait_for_streams(1, WAIT).await);
    // The stream request says whom the flags are for.
    assert!(sse.request_bodies()[0].get("$anon_distinct_id").is_some());

    sse.send(
        "put",
        &json!({"options": {"f": {"variant": "v1", "version": 1}, "a": {"variant": 1}}}),
    );
    let flags = recorder
        .send(WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flags.variant::<String>("f").as_deref(), Some("v1"));

    // Out of order: the delete (v2) arrives before an older patch (v1), which must not undo it.
    sse.send("delete", &json!({"flag": "f", "version": 2}));
    sse.send(
        "patch",
        &json!({"flag": "f", "version": 1, "variant": "zombie"}),
    );
    sse.send(
        "patch",
        &json!({"flag": "marker", "version": 1, "variant": true}),
    );
    let flags = flags_until(&recorder, |f| f.flag("marker").is_some()).await;
    assert!(
        flags.flag("f").is_none(),
        "an older patch resurrected a deleted flag"
    );

    // A put replaces the whole set.
    sse.send(
        "put",
        &json!({"options": {"b": {"variant": 2}, "c": {"variant": 3}}}),
    );
    let flags = flags_until(&recorder, |f| f.flag("c").is_some()).await;
    let names: Vec<&String> = flags.flags().keys().collect();
    assert_eq!(names, ["b", "c"]);

    // While the stream is live it is the only source: no check-in was polled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(backend.requests_to(CHECK_IN).is_empty());
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.stream_updates, 4, "{stats:?}");
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_drop_and_on_request() {
    let backend = Backend::start(Responder::with_checkin(json!({"options": {}}))).await;
    let (sse, telemetry) = streaming_flag_x(&backend).await;
    let recorder = telemetry.recorder().clone();

    sse.drop_stream();
    assert!(
        sse.wait_for_streams(2, WAIT).await,
        "no reconnection after the server dropped the stream"
    );
    sse.send("put", &json!({"options": {"y": {"variant": 2}}}));
    flags_until(&recorder, |f| {
        f.flag("y").is_some() && f.flag("x").is_none()
    })
    .await;

    sse.send("reconnect", &json!({}));
    assert!(
        sse.wait_for_streams(3, WAIT).await,
        "no reconnection after a reconnect message"
    );
    sse.send("patch", &json!({"flag": "z", "version": 1, "variant": 3}));
    flags_until(&recorder, |f| f.flag("z").is_some()).await;
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_is_skipped_without_killing_the_stream() {
    let backend = Backend::start(Responder::with_checkin(json!({"options": {}}))).await;
    let sse = SseServer::start().await;
    let telemetry = start(&sse, &backend).await;
    let recorder = telemetry.recorder().clone();
    assert!(sse.wait_for_streams(1, WAIT).await);
    sse.send_raw("event: patch\ndata: {this is not json\n\n");
    sse.send_raw("event: patch\ndata: {\"flag\": \"no-version\", \"variant\": 1}\n\n");
    sse.send_raw("event: mystery\ndata: {}\n\n");
    sse.send(
        "patch",
        &json!({"flag": "good", "version": 1, "variant": "yes"}),
    );
    let flags = flags_until(&recorder, |f| f.flag("good").is_some()).await;
    assert_eq!(flags.len(), 1);
    let stats = recorder.send(GetStats).await.unwrap();
    assert_eq!(stats.stream_errors, 3, "{stats:?}");
    assert_eq!(sse.attempts(), 1, "the stream was reopened");
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_stops_streaming_and_check_ins_take_over() {
    let backend = Backend::start(Responder::with_checkin(
        json!({"options": {"polled": {"variant": "p"}}}),
    ))
    .await;
    let sse = SseServer::start().await;
    sse.refuse_with(Some(401));
    let telemetry = start(&sse, &backend).await;
    let recorder = telemetry.recorder().clone();
    let flags = recorder
        .send(WaitForCheckin { timeout: WAIT })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flags.variant::<String>("polled").as_deref(), Some("p"));
    // Polling goes on (every 100 ms here) and the stream is not tried again.
    assert!(backend.wait_for_requests_to(CHECK_IN, 3, WAIT).await);
    assert_eq!(sse.attempts(), 1);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_only_real_changes_from_the_stream() {
    let backend = Backend::start(Responder::with_checkin(json!({"options": {}}))).await;
    let sse = SseServer::start().await;
    let telemetry = start(&sse, &backend).await;
    let recorder = telemetry.recorder().clone();
    let mut subscription = recorder.send(SubscribeFeatures).await.unwrap();
    assert!(sse.wait_for_streams(1, WAIT).await);
    sse.send(
        "put",
        &json!({"options": {"x": {"variant": 1, "version": 1}}}),
    );
    let first = tokio::time::timeout(WAIT, subscription.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.variant::<u32>("x"), Some(1));
    // A newer version with the same value is applied but changes nothing a reader sees.
    sse.send("patch", &json!({"flag": "x", "version": 2, "variant": 1}));
    sse.send(
        "put",
        &json!({"options": {"x": {"variant": 1, "version": 3}}}),
    );
    sse.send(
        "patch",
        &json!({"flag": "marker", "version": 1, "variant": true}),
    );
    let next = tokio::time::timeout(WAIT, subscription.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(
        next.flag("marker").is_some(),
        "a change without a difference was announced"
    );
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_in_polled_while_the_stream_was_down_does_not_undo_the_stream() {
    // Check-ins answer slowly with a document the stream has since replaced.
    const SLOW: Duration = Duration::from_millis(400);
    let backend = Backend::start(Responder::new(|req, _| match req.path_only() {
        CHECK_IN => {
            Reply::json(200, &json!({"options": {"polled": {"variant": "old"}}})).delayed(SLOW)
        }
        _ => Reply::ok(),
    }))
    .await;
    let (sse, telemetry) = streaming_flag_x(&backend).await;
    let recorder = telemetry.recorder().clone();

    // The stream goes down and stays down until a polled check-in is under way.
    sse.refuse_with(Some(503));
    sse.drop_stream();
    let polled = tokio::time::timeout(WAIT, async {
        while backend.requests_to(CHECK_IN).is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        polled.is_ok(),
        "no check-in was polled while the stream was down"
    );
    sse.refuse_with(None);
    assert!(sse.wait_for_streams(2, WAIT).await);
    sse.send("put", &json!({"options": {"y": {"variant": 2}}}));
    flags_until(&recorder, |f| f.flag("y").is_some()).await;

    // The polled answer arrives now, older than what the stream said.
    tokio::time::sleep(SLOW + Duration::from_millis(200)).await;
    let flags = recorder.send(GetFeatures).await.unwrap();
    assert!(flags.flag("y").is_some(), "the stream's flags were undone");
    assert!(
        flags.flag("polled").is_none(),
        "a stale poll replaced the stream"
    );
    telemetry.shutdown(WAIT).await;
}
