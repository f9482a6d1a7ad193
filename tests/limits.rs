//! Every input is bounded: check-in answers and files, answers to batches, streamed events and
//! the flags a check-in brings, each against a real loopback server or a real file.

mod support;

use std::time::Duration;

use actix_telemetry::{
    BackoffPolicy, FeatureLimits, GetFeatures, GetStats, Record, StreamSettings, WaitForCheckin,
};
use serde_json::{Value, json};
use support::sse::SseServer;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);

/// A valid check-in document with `n` flags, each with a 40-byte variant.
fn many_flags(n: usize) -> Value {
    let options: serde_json::Map<String, Value> = (0..n)
        .map(|i| (format!("flag-{i:07}"), json!({"variant": "v".repeat(40)})))
        .collect();
    json!({ "options": options })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkin_answer_over_the_cap_fails_and_events_still_flow() {
    // About 2.5 MiB of valid flags: over the 1 MiB default.
    let big = many_flags(40_000);
    let backend = Backend::start(Responder::with_checkin(big)).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    let stats = stats_until(telemetry.recorder(), WAIT, |s| s.checkin_failures >= 1).await;
    assert_eq!(stats.checkins, 0, "{stats:?}");
    assert!(
        telemetry
            .recorder()
            .send(GetFeatures)
            .await
            .unwrap()
            .is_empty()
    );
    telemetry.recorder().do_send(Record::new("after"));
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 1);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkin_cap_is_configurable() {
    let doc = many_flags(100); // about 6 KiB
    let backend = Backend::start(Responder::with_checkin(doc)).await;
    let small = builder(&backend.url())
        .max_checkin_bytes(4 * 1024)
        .build()
        .unwrap();
    stats_until(small.recorder(), WAIT, |s| s.checkin_failures >= 1).await;
    small.shutdown(WAIT).await;
    let roomy = builder(&backend.url())
        .max_checkin_bytes(64 * 1024)
        .build()
        .unwrap();
    wait_for_checkin(&roomy).await;
    assert_eq!(roomy.recorder().send(GetFeatures).await.unwrap().len(), 100);
    roomy.shutdown(WAIT).await;
}

/// A server that answers every request with a chunked 200 whose body trickles one byte every
/// 20 ms and never ends.
async fn trickling_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                // The request (headers and a small body) arrives in the first reads.
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), socket.read(&mut buf)).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            transfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    if socket.write_all(b"1\r\n \r\n").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_forever_ends_with_the_request_timeout() {
    let addr = trickling_server().await;
    let telemetry = builder(&format!("http://{addr}"))
        .request_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let answer = telemetry
        .recorder()
        .send(WaitForCheckin {
            timeout: Duration::from_secs(3),
        })
        .await
        .unwrap();
    assert!(answer.is_err(), "{answer:?}");
    let stats = stats_until(telemetry.recorder(), WAIT, |s| s.checkin_failures >= 1).await;
    assert_eq!(stats.checkins, 0);
    drop(telemetry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_whose_body_is_over_64_kib_is_not_a_delivery() {
    let backend = Backend::start(Responder::new(|req, index| match req.path_only() {
        CHECK_IN => Reply::json(200, &json!({"options": {}})),
        _ if index == 0 => Reply::status(200).with_body(vec![b' '; 100 * 1024]),
        _ => Reply::ok(),
    }))
    .await;
    let telemetry = builder(&backend.url()).build().unwrap();
    telemetry.recorder().do_send(Record::new("once"));
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 1, "{stats:?}");
    assert_eq!(
        stats.retries, 1,
        "the oversized answer is retried: {stats:?}"
    );
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkin_file_that_is_a_device_or_a_fifo_is_refused_and_checkins_go_on() {
    let dir = TempDir::new("limits-checkin-file");
    let out = dir.join("events.jsonl");
    let fifo = dir.join("checkin.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for source in [std::path::PathBuf::from("/dev/zero"), fifo] {
        let telemetry = builder_with_env(
            out.to_str().unwrap(),
            [("DETSYS_IDS_CHECKIN_FILE", source.to_str().unwrap())],
        )
        .checkin_interval(Duration::from_millis(50))
        .build()
        .unwrap();
        // Not wedged: check-in after check-in fails, quickly.
        let stats = stats_until(telemetry.recorder(), WAIT, |s| s.checkin_failures >= 3).await;
        assert_eq!(stats.checkins, 0, "{source:?}: {stats:?}");
        telemetry.shutdown(WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkin_file_over_the_cap_is_refused() {
    let dir = TempDir::new("limits-checkin-big");
    let doc = dir.join("checkin.json");
    std::fs::write(&doc, many_flags(100).to_string()).unwrap();
    let telemetry = builder_with_env(
        dir.join("events.jsonl").to_str().unwrap(),
        [("DETSYS_IDS_CHECKIN_FILE", doc.to_str().unwrap())],
    )
    .max_checkin_bytes(1024)
    .build()
    .unwrap();
    let stats = stats_until(telemetry.recorder(), WAIT, |s| s.checkin_failures >= 1).await;
    assert_eq!(stats.checkins, 0);
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_event_over_the_cap_is_skipped_and_the_stream_goes_on() {
    let backend = Backend::start(Responder::with_checkin(json!({"options": {}}))).await;
    let sse = SseServer::start().await;
    let telemetry = builder(&backend.url())
        .max_checkin_bytes(64 * 1024)
        .stream(StreamSettings {
            url: sse.url(),
            idle_timeout: WAIT,
            backoff: BackoffPolicy {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
                multiplier: 2.0,
                jitter: 0.0,
            },
        })
        .build()
        .unwrap();
    assert!(sse.wait_for_streams(1, WAIT).await);
    // A valid `put` of about 1 MiB spread over `data:` lines (JSON allows the newlines that
    // join them), then a small `patch`.
    sse.send_raw("event: put\ndata: {\"options\": {\n");
    for i in 0..20_000 {
        sse.send_raw(&format!(
            "data: \"f{i:05}\": {{\"variant\": \"{}\"}},\n",
            "v".repeat(20)
        ));
    }
    sse.send_raw("data: \"last\": {\"variant\": true}}}\n\n");
    sse.send(
        "patch",
        &json!({"flag": "after", "version": 1, "variant": true}),
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let flags = loop {
        let flags = telemetry.recorder().send(GetFeatures).await.unwrap();
        if flags.flag("after").is_some() {
            break flags;
        }
        assert!(tokio::time::Instant::now() < deadline, "the stream stopped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        flags.flag("last").is_none(),
        "the oversized put was applied"
    );
    let stats = telemetry.recorder().send(GetStats).await.unwrap();
    assert!(stats.stream_errors >= 1, "{stats:?}");
    assert_eq!(sse.attempts(), 1, "the same connection went on");
    telemetry.shutdown(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkin_with_many_flags_does_not_make_events_too_large() {
    // 10,000 flags (about 650 KB of document): every event describing all of them would be
    // as large as the document.
    let (backend, telemetry) = started_with_checkin(many_flags(10_000)).await;
    telemetry.recorder().do_send(Record::new("small"));
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 1, "{stats:?}");
    telemetry.shutdown(WAIT).await;
    let events = backend.delivered_events();
    let properties = events[0]["properties"].as_object().unwrap();
    let described = properties
        .keys()
        .filter(|k| k.starts_with("$feature/"))
        .count();
    assert_eq!(described, FeatureLimits::default().max_flags);
    assert_eq!(
        properties["$active_feature_flags"]
            .as_array()
            .unwrap()
            .len(),
        FeatureLimits::default().max_flags
    );
    assert!(events[0].to_string().len() < 20 * 1024);
}
