//! The runtime embedded three ways: inside a running actix `System` (as in actix-web), from a
//! plain tokio program, and from synchronous code; and what a shutdown reports when the
//! application's system has stopped first, or the runtime is already gone.

mod support;

use std::time::Duration;

use actix_telemetry::{Flush, Record};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn inside_an_actix_system_on_a_system_of_its_own() {
    let dir = TempDir::new("embed-actix");
    let out = dir.join("events.jsonl");
    let system = actix::System::new();
    let delivered = system.block_on(async {
        let telemetry = builder(out.to_str().unwrap()).build().unwrap();
        let recorder = telemetry.recorder().clone();
        recorder.do_send(Record::new("from-actix"));
        let report = recorder.send(Flush::within(WAIT)).await.unwrap();
        telemetry.shutdown(WAIT).await;
        report.delivered
    });
    assert_eq!(delivered, 1);
    // The application's system outlives the runtime's shutdown.
    let still_running = system.block_on(async {
        actix::clock::sleep(Duration::from_millis(10)).await;
        actix::System::try_current().is_some()
    });
    assert!(still_running);
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("from-actix")
    );
}

#[test]
fn from_synchronous_code_with_any_runtime_for_awaiting() {
    let dir = TempDir::new("embed-sync");
    let out = dir.join("events.jsonl");
    let telemetry = builder(out.to_str().unwrap()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    std::thread::spawn(move || recorder.do_send(Record::new("from-a-thread")))
        .join()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        telemetry
            .recorder()
            .send(Flush::within(WAIT))
            .await
            .unwrap();
        telemetry.shutdown(WAIT).await
    });
    assert_eq!(report.stats.delivered, 1);
}

#[test]
fn dropping_the_handle_shuts_down_and_delivers() {
    let dir = TempDir::new("embed-drop");
    let out = dir.join("events.jsonl");
    let telemetry = builder(out.to_str().unwrap())
        .flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    telemetry
        .recorder()
        .do_send(Record::new("delivered-on-drop"));
    drop(telemetry);
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        if std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("delivered-on-drop")
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the event was not delivered after the handle was dropped");
}

#[test]
fn stopping_the_application_system_leaves_the_runtime_to_its_shutdown() {
    let dir = TempDir::new("embed-system-stopped");
    let out = dir.join("events.jsonl");
    let system = actix::System::new();
    let report = system.block_on(async {
        let telemetry = builder(out.to_str().unwrap())
            .flush_interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        for i in 0..10 {
            telemetry
                .recorder()
                .do_send(Record::new("queued").property("i", i));
        }
        // What actix-web does on SIGINT or SIGTERM once its server has stopped, before the
        // application gets to shut the telemetry down.
        actix::System::current().stop();
        actix::clock::sleep(Duration::from_millis(50)).await;
        telemetry.shutdown(WAIT).await
    });
    assert!(report.complete, "{report:?}");
    assert_eq!(report.flush.delivered, 10, "{report:?}");
    assert_eq!(report.stats.delivered, 10, "{report:?}");
    assert_eq!(report.stats.accepted, 10, "{report:?}");
    let written = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(written.matches("\"queued\"").count(), 10, "{written}");
}

#[test]
fn a_shutdown_nobody_answers_says_it_is_incomplete() {
    let dir = TempDir::new("embed-gone");
    let out = dir.join("events.jsonl");
    let telemetry = builder(out.to_str().unwrap()).build().unwrap();
    let recorder = telemetry.recorder().clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (first, second) = runtime.block_on(async {
        recorder.do_send(Record::new("before"));
        // Sent directly, it stops the runtime before the handle's own shutdown.
        let first = recorder
            .send(actix_telemetry::Shutdown::within(WAIT))
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + WAIT;
        while recorder.connected() {
            assert!(
                std::time::Instant::now() < deadline,
                "the runtime did not stop"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (first, telemetry.shutdown(WAIT).await)
    });
    assert!(first.complete, "{first:?}");
    assert_eq!(first.stats.delivered, 1, "{first:?}");
    assert!(!second.complete, "{second:?}");
    assert_eq!(second.stats.delivered, 0, "nothing is known: {second:?}");
}
