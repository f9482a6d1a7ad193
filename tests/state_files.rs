//! The files of the state directory are the process's alone: created owner-only, never reached
//! through a symlink planted among them, and not used at all in a directory that someone else
//! owns or may write to.
#![cfg(unix)]

mod support;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

use actix_telemetry::{Flush, Record, ShutdownReport, Telemetry};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

/// A backend that takes check-ins but never answers a batch, so that a shutdown leaves the
/// events in the spool.
async fn hanging_backend() -> Backend {
    Backend::start(Responder::new(|req, _| match req.path_only() {
        EVENTS_BATCH => Reply::hang(),
        _ => Reply::ok(),
    }))
    .await
}

fn start(url: &str, state: &Path) -> Telemetry {
    builder(url).state_dir(state).build().unwrap()
}

/// Records `n` events and shuts down within a short deadline.
async fn record_and_shut_down(telemetry: Telemetry, n: u64) -> ShutdownReport {
    for i in 0..n {
        telemetry
            .recorder()
            .do_send(Record::new("kept").property("seq", i));
    }
    telemetry.shutdown(Duration::from_millis(400)).await
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Every directory and file under `dir`, `dir` included.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    let mut next = 0;
    while next < found.len() {
        let path = found[next].clone();
        next += 1;
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                found.push(entry.unwrap().path());
            }
        }
    }
    found
}

fn private_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_and_directory_is_owner_only() {
    let dir = TempDir::new("files-private");
    let state = dir.join("state");
    let backend = hanging_backend().await;
    let report = record_and_shut_down(start(&backend.url(), &state), 5).await;
    assert_eq!(report.flush.spooled, 5, "{report:?}");

    let found = walk(&state);
    let names: Vec<String> = found
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["identity.json", "host-salt", "lock"] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    assert!(names.iter().any(|n| n.ends_with(".log")), "{names:?}");
    for path in found {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_in_the_state_directory_is_never_followed() {
    let dir = TempDir::new("files-symlinks");
    let (state, outside) = (dir.join("state"), dir.join("outside"));
    let spool = state.join("spool").join("primary");
    private_dir(&spool);
    private_dir(&state.join("spool"));
    private_dir(&state);
    std::fs::create_dir_all(&outside).unwrap();

    // Where a save would write its temporary file, a link to a file of someone else's.
    let victim = outside.join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let pid = std::process::id();
    for name in ["identity.json", "checkin.json", "host-salt"] {
        symlink(&victim, state.join(format!(".{name}.{pid}.tmp"))).unwrap();
    }
    // A saved identity that is a link to a file someone else controls.
    let planted = outside.join("identity.json");
    let planted_text = r#"{"anon_distinct_id":"planted-anon","device_id":"planted-device","distinct_id":"planted-user","groups":{}}"#;
    std::fs::write(&planted, planted_text).unwrap();
    symlink(&planted, state.join("identity.json")).unwrap();
    // The salt, too.
    symlink(&victim, state.join("host-salt")).unwrap();
    // The spool's lock, pointing to where no file is yet.
    let lock_target = outside.join("made-through-the-lock");
    symlink(&lock_target, spool.join("lock")).unwrap();

    let backend = Backend::start(Responder::ok()).await;
    let telemetry = start(&backend.url(), &state);
    telemetry.recorder().do_send(Record::new("after-planting"));
    let flushed = telemetry
        .recorder()
        .send(Flush::within(WAIT))
        .await
        .unwrap();
    assert_eq!(flushed.delivered, 1, "{flushed:?}");
    let report = telemetry.shutdown(WAIT).await;

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), planted_text);
    assert!(!lock_target.exists(), "the lock was created through a link");
    let event = &backend.delivered_events()[0];
    assert_ne!(event["distinct_id"], "planted-user");
    assert_ne!(event["properties"]["$device_id"], "planted-device");
    // The sink ran without the spool it could not lock safely, and says so.
    assert_eq!(report.stats.spools_unavailable, 1, "{report:?}");
    // The identity was saved as a file of its own, replacing the link.
    assert!(
        !std::fs::symlink_metadata(state.join("identity.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// Runs once with `state` as the state directory, and checks that nothing was kept there.
async fn refused(state: &Path) {
    let before: Vec<_> = walk(state);
    let backend = hanging_backend().await;
    let report = record_and_shut_down(start(&backend.url(), state), 5).await;
    assert_eq!(report.flush.spooled, 0, "{report:?}");
    assert_eq!(report.stats.dropped.shutdown, 5, "{report:?}");
    assert_eq!(report.stats.spools_unavailable, 1, "{report:?}");
    assert_eq!(
        walk(state),
        before,
        "files were written to a refused directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_directory_owned_by_someone_else_is_refused() {
    let dir = TempDir::new("files-foreign");
    let state = dir.join("state");
    private_dir(&state);
    // Somebody else's identity: it must not be taken over either.
    std::fs::write(
        state.join("identity.json"),
        r#"{"anon_distinct_id":"theirs","device_id":"their-device","distinct_id":"them"}"#,
    )
    .unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    refused(&state).await;

    let backend = Backend::start(Responder::ok()).await;
    let telemetry = start(&backend.url(), &state);
    telemetry.recorder().do_send(Record::new("mine"));
    telemetry
        .recorder()
        .send(Flush::within(WAIT))
        .await
        .unwrap();
    telemetry.shutdown(WAIT).await;
    let event = &backend.delivered_events()[0];
    assert_ne!(event["properties"]["$device_id"], "their-device");
    assert_ne!(event["distinct_id"], "them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_directory_writable_by_others_is_refused() {
    let dir = TempDir::new("files-writable");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(&state).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_directory_writable_by_others_is_refused() {
    let dir = TempDir::new("files-writable-spool");
    let state = dir.join("state");
    let spool = state.join("spool").join("primary");
    private_dir(&spool);
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
    let backend = hanging_backend().await;
    let report = record_and_shut_down(start(&backend.url(), &state), 5).await;
    assert_eq!(report.flush.spooled, 0, "{report:?}");
    assert_eq!(report.stats.spools_unavailable, 1, "{report:?}");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
}
