//! Helpers shared by the integration tests.

// The loopback backend, a crate of its own (tests/loopback), also reachable as `backend`.
#[allow(unused_imports)]
pub use loopback_backend as backend;

// Test files pick what they need; the rest of the re-exports are expected to go unused.
#[allow(unused_imports)]
pub use loopback_backend::*;

/// Installs a fmt subscriber filtered by `RUST_LOG` (warnings by default), writing through the
/// test harness so output shows up with the failing test. Safe to call from every test: only the
/// first call in a process installs anything.
#[allow(dead_code)]
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Fails only when a subscriber is already installed, which is the expected case after the
    // first test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A builder that ignores the machine's environment (so a `DETSYS_*` or `DO_NOT_TRACK`
/// variable cannot change what a test sees) and retries quickly.
#[allow(dead_code)]
pub fn builder(endpoint: &str) -> actix_telemetry::Builder {
    builder_with_env(endpoint, Vec::<(String, String)>::new())
}

/// Like [`builder`], with exactly these environment variables.
#[allow(dead_code)]
pub fn builder_with_env<K: Into<String>, V: Into<String>>(
    endpoint: &str,
    vars: impl IntoIterator<Item = (K, V)>,
) -> actix_telemetry::Builder {
    init_tracing();
    actix_telemetry::Builder::new()
        .endpoint(endpoint)
        .env(actix_telemetry::env::EnvSource::fixed(vars))
        // Parallel tests must not share a state directory.
        .state(actix_telemetry::StateLocation::Disabled)
        .backoff(actix_telemetry::BackoffPolicy {
            initial: std::time::Duration::from_millis(20),
            max: std::time::Duration::from_millis(100),
            multiplier: 2.0,
            jitter: 0.0,
        })
}

/// A loopback address nobody listens on: bound, read and released, so a connection to it is
/// refused at once (a backend that is down, not one that hangs).
#[allow(dead_code)]
pub fn closed_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// The `uuid` of every event, in order.
#[allow(dead_code)]
pub fn uuids(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["uuid"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A directory under the system temp dir, removed when dropped.
#[allow(dead_code)]
pub struct TempDir(pub std::path::PathBuf);

#[allow(dead_code)]
impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "actix-telemetry-{label}-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[allow(dead_code)]
pub mod dns;

#[allow(dead_code)]
pub mod sse;

/// A backend answering check-ins with `checkin`, and a runtime talking to it that has completed
/// its first check-in.
#[allow(dead_code)]
pub async fn started_with_checkin(
    checkin: serde_json::Value,
) -> (Backend, actix_telemetry::Telemetry) {
    let backend = Backend::start(Responder::with_checkin(checkin)).await;
    let telemetry = builder(&backend.url()).build().unwrap();
    wait_for_checkin(&telemetry).await;
    (backend, telemetry)
}

/// Waits (at most 10 s) for the runtime's first check-in of this run.
#[allow(dead_code)]
pub async fn wait_for_checkin(telemetry: &actix_telemetry::Telemetry) {
    telemetry
        .recorder()
        .send(actix_telemetry::WaitForCheckin {
            timeout: std::time::Duration::from_secs(10),
        })
        .await
        .expect("the Recorder answers")
        .expect("a check-in");
}

/// Polls `GetStats` until `done` holds, for at most `timeout`; the counters that satisfied it,
/// or a panic naming the last ones seen.
#[allow(dead_code)]
pub async fn stats_until(
    recorder: &actix::Addr<actix_telemetry::Recorder>,
    timeout: std::time::Duration,
    done: impl Fn(&actix_telemetry::Stats) -> bool,
) -> actix_telemetry::Stats {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let stats = recorder
            .send(actix_telemetry::GetStats)
            .await
            .expect("the Recorder answers");
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached within {timeout:?}: {stats:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Flushes (waiting at most `timeout`), checks that nothing is left pending, and returns the
/// counters once every answer the backend sent has been handled.
#[allow(dead_code)]
pub async fn settled_stats(
    telemetry: &actix_telemetry::Telemetry,
    timeout: std::time::Duration,
) -> actix_telemetry::Stats {
    let report = telemetry
        .recorder()
        .send(actix_telemetry::Flush::within(timeout))
        .await
        .expect("the Recorder answers");
    assert_eq!(report.pending, 0, "{report:?}");
    telemetry
        .recorder()
        .send(actix_telemetry::GetStats)
        .await
        .expect("the Recorder answers")
}

/// The first event called `name`, or a panic listing what there is.
#[allow(dead_code)]
pub fn by_name<'a>(events: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    events
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {events:?}"))
}
