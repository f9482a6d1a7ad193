//! At-least-once across a crash: a child process records events with the backend down and is
//! killed with SIGKILL; a new run with the same state directory delivers every one of them.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::time::Duration;

use actix_telemetry::{GetStats, Record};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

const CHILD_SPEC: &str = "ACTIX_TELEMETRY_CRASH_CHILD";
const EVENTS: u64 = 5_000;
const WAIT: Duration = Duration::from_secs(30);

/// The child: records, waits until everything is spooled, says so, and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by events_recorded_before_sigkill_arrive_after_a_restart"]
async fn crash_child() {
    let spec = std::env::var(CHILD_SPEC).expect("started by the parent test");
    let (state, endpoint) = spec.split_once('|').unwrap();
    let telemetry = builder(endpoint)
        .state_dir(state)
        .max_attempts(None)
        .build()
        .unwrap();
    let recorder = telemetry.recorder().clone();
    for i in 0..EVENTS {
        recorder.do_send(Record::new("crash").property("seq", i));
    }
    loop {
        let stats = recorder.send(GetStats).await.unwrap();
        if stats.spooled >= EVENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("SPOOLED");
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_before_sigkill_arrive_after_a_restart() {
    let dir = TempDir::new("crash");
    let state = dir.join("state");
    let closed = closed_addr();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_SPEC, format!("{}|http://{closed}", state.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let spooled = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("SPOOLED") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(spooled, "the child never reported its events spooled");
    // SIGKILL: no shutdown, no flush, no destructors.
    child.kill().await.unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success());

    let backend = Backend::start(Responder::ok()).await;
    let telemetry = builder(&backend.url()).state_dir(&state).build().unwrap();
    assert!(
        backend.wait_for_events(EVENTS as usize, WAIT).await,
        "only {} of {EVENTS} events arrived",
        backend.delivered_events().len()
    );
    telemetry.shutdown(WAIT).await;

    let events = backend.delivered_events();
    let mut by_uuid: HashMap<String, u32> = HashMap::new();
    let mut seqs = BTreeSet::new();
    for event in &events {
        *by_uuid
            .entry(event["uuid"].as_str().unwrap().to_string())
            .or_default() += 1;
        seqs.insert(event["properties"]["seq"].as_u64().unwrap());
    }
    let duplicates = events.len() - by_uuid.len();
    println!(
        "crash: recorded {EVENTS}, received {} ({} distinct uuids), duplicates {duplicates}",
        events.len(),
        by_uuid.len()
    );
    assert_eq!(
        seqs,
        (0..EVENTS).collect(),
        "events recorded before the kill were lost"
    );
    assert_eq!(by_uuid.len() as u64, EVENTS);
}
