//! The actix-web example (`examples/actix_web.rs`, the README's embedding pattern) as a real
//! process: 1,000 requests, then SIGINT or SIGTERM; every recorded event reaches the backend
//! within the shutdown deadline and the printed report tells the true numbers.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use tokio::process::{Child, Command};

const REQUESTS: usize = 1_000;
/// Requests on the wire at once.
const CLIENTS: usize = 8;
/// How long the service may take to start listening, and to exit after the signal.
const WAIT: Duration = Duration::from_secs(10);

/// `target/<profile>/examples/actix_web`, beside this test's own binary in `deps/`.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile_dir.join("examples").join("actix_web");
    assert!(
        binary.is_file(),
        "{} is missing: build it with `cargo build --examples --all-features` \
         (a plain `cargo test` builds it too)",
        binary.display()
    );
    binary
}

/// Starts the example on `addr`, sending its telemetry to `backend`, with a state directory
/// (and so a spool) of its own.
fn start_service(addr: SocketAddr, backend: &Backend, state: &TempDir) -> Child {
    Command::new(example_binary())
        .env("ACTIX_WEB_ADDR", addr.to_string())
        .env("DETSYS_IDS_TRANSPORT", backend.url())
        .env("XDG_STATE_HOME", &state.0)
        .env_remove("DETSYS_IDS_TELEMETRY")
        .env_remove("DO_NOT_TRACK")
        .env_remove("DETSYS_CORRELATION")
        .env_remove("DETSYS_IDS_CHECKIN_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the actix_web example")
}

async fn wait_until_listening(addr: SocketAddr, child: &mut Child) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the service exited before listening: {status}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service is not listening on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `REQUESTS` GETs of `/`, `CLIENTS` at a time; every one must be answered 200.
async fn send_requests(addr: SocketAddr) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("an HTTP client");
    let url = format!("http://{addr}/");
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CLIENTS {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            for _ in (worker..REQUESTS).step_by(CLIENTS) {
                let response = client.get(&url).send().await.expect("a request");
                assert_eq!(response.status(), 200);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a request task");
    }
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("the service is running").to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}: {status}");
}

/// The JSON of the `shutdown-report ` line of the service's stdout.
fn shutdown_report(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("shutdown-report "))
        .unwrap_or_else(|| panic!("no shutdown report in the output:\n{text}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Serves 1,000 requests, sends `signal_name`, and checks what reached the backend and what the
/// service reported.
async fn every_event_delivered_after(signal_name: &str) {
    init_tracing();
    let backend = Backend::start(Responder::with_checkin(json!({"options": {}}))).await;
    let state = TempDir::new("actix-web");
    let addr = closed_addr();
    let mut child = start_service(addr, &backend, &state);
    wait_until_listening(addr, &mut child).await;
    send_requests(addr).await;
    signal(&child, signal_name);
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the service did not exit within {WAIT:?} of SIG{signal_name}"))
        .expect("the service's output");
    assert!(output.status.success(), "exit status {}", output.status);

    let events: Vec<Value> = backend
        .delivered_events()
        .into_iter()
        .filter(|e| e["name"] == "page_viewed")
        .collect();
    let distinct: HashSet<String> = uuids(&events).into_iter().collect();
    assert_eq!(events.len(), REQUESTS, "events delivered");
    assert_eq!(distinct.len(), REQUESTS, "distinct uuids delivered");
    assert!(events.iter().all(|e| e["properties"]["path"] == "/"));

    let report = shutdown_report(&output.stdout);
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(report["stats"]["delivered"], REQUESTS, "{report}");
    assert_eq!(report["stats"]["accepted"], REQUESTS, "{report}");
    assert_eq!(report["stats"]["dropped"]["total"], 0, "{report}");
    assert_eq!(report["flush"]["pending"], 0, "{report}");
    assert_eq!(report["timed_out"], false, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_delivers_every_event_and_reports_it() {
    every_event_delivered_after("INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_delivers_every_event_and_reports_it() {
    every_event_delivered_after("TERM").await;
}
