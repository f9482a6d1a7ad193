//! `TelemetryLayer` (feature `tracing-layer`): tracing events at or above a level become
//! telemetry events carrying their fields and their spans' fields; the runtime's own logs never
//! come back as events.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_telemetry::{
    AdmissionPolicy, Builder, PropertyFilter, Record, StateLocation, TelemetryLayer, env::EnvSource,
};
use serde_json::json;
use support::*;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const WAIT: Duration = Duration::from_secs(10);

/// A builder ignoring the machine's environment, without the fmt subscriber the shared helper
/// installs: this binary installs a global subscriber of its own.
fn quiet_builder(endpoint: &str) -> Builder {
    Builder::new()
        .endpoint(endpoint)
        .env(EnvSource::fixed(Vec::<(String, String)>::new()))
        .state(StateLocation::Disabled)
        .backoff(actix_telemetry::BackoffPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
            multiplier: 2.0,
            jitter: 0.0,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_events_become_events_with_their_span_fields() {
    let backend = Backend::start(Responder::ok()).await;
    let telemetry = quiet_builder(&backend.url()).build().unwrap();
    let layer = TelemetryLayer::new(telemetry.events())
        .min_level(Level::INFO)
        .span_fields(PropertyFilter::all().deny(["password"]));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!(
            "request",
            tenant = "acme",
            password = "hunter2",
            user = tracing::field::Empty
        );
        let _request = request.enter();
        request.record("user", "u-1");
        let query = tracing::info_span!("query", table = "orders", tenant = "inner");
        let _query = query.enter();
        tracing::warn!(
            event = "quota_exceeded",
            used = 120u64,
            ratio = 1.5,
            "over quota"
        );
        tracing::info!(rows = 3, "query finished");
        tracing::debug!(event = "too_verbose");
        tracing::trace!("even more verbose");
    });
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        tracing::error!(event = "not_layered");
    });
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 2, "{stats:?}");
    telemetry.shutdown(WAIT).await;

    let events = backend.delivered_events();
    let quota = &by_name(&events, "quota_exceeded")["properties"];
    assert_eq!(quota["tenant"], "inner", "the inner span's field wins");
    assert_eq!(
        quota["user"], "u-1",
        "a field recorded after the span began"
    );
    assert_eq!(quota["table"], "orders");
    assert!(quota.get("password").is_none(), "{quota}");
    assert_eq!(quota["used"], 120);
    assert_eq!(quota["ratio"], 1.5);
    assert_eq!(quota["message"], "over quota");
    assert_eq!(quota["level"], "WARN");
    assert_eq!(quota["target"], "tracing_layer");
    let rows = &by_name(&events, "query finished")["properties"];
    assert_eq!(rows["rows"], 3);
    assert_eq!(rows["level"], "INFO");
    assert!(
        rows.get("message").is_none(),
        "the message is the name: {rows}"
    );
}

/// Counts the events on the runtime's threads and those of this crate's targets that reach the
/// subscriber, to show the runtime did log while the layer ignored it.
#[derive(Default)]
struct Seen {
    on_runtime_threads: AtomicUsize,
    own_targets_elsewhere: AtomicUsize,
}

struct Counting(Arc<Seen>);

impl<S: Subscriber> Layer<S> for Counting {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let on_runtime = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("actix-telemetry"));
        if on_runtime {
            self.0.on_runtime_threads.fetch_add(1, Ordering::Relaxed);
        } else if event.metadata().target().starts_with("actix_telemetry") {
            self.0.own_targets_elsewhere.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The layer (every level, through an `EventSender` that drops when behind) and a counting
/// layer, installed once for the whole process, so the runtime's threads log into them.
fn global_layer(events: actix_telemetry::EventSender) -> Arc<Seen> {
    static SEEN: OnceLock<Arc<Seen>> = OnceLock::new();
    SEEN.get_or_init(|| {
        let seen = Arc::new(Seen::default());
        let subscriber = tracing_subscriber::registry()
            .with(TelemetryLayer::new(events).min_level(Level::TRACE))
            .with(Counting(seen.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        seen
    })
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtimes_own_logs_never_come_back_as_events() {
    // Two failed deliveries: the runtime logs its retries on its own thread.
    let backend = Backend::start(Responder::events_script(vec![
        Reply::status(500),
        Reply::status(503),
    ]))
    .await;
    let telemetry = quiet_builder(&backend.url())
        .max_pending_events(1)
        .admission(AdmissionPolicy::Drop)
        .build()
        .unwrap();
    let seen = global_layer(telemetry.events());

    let events = telemetry.events();
    std::thread::Builder::new()
        .name("app".into())
        .spawn(move || {
            tracing::info!(event = "app_started", port = 8080);
        })
        .unwrap()
        .join()
        .unwrap();
    let stats = settled_stats(&telemetry, WAIT).await;
    assert_eq!(stats.delivered, 1, "{stats:?}");

    // A burst past the budget: the admission's overflow warning is logged on the caller's
    // thread under this crate's target.
    std::thread::Builder::new()
        .name("app".into())
        .spawn(move || {
            for i in 0..2_000 {
                events.record(Record::new(format!("burst-{i}")));
            }
        })
        .unwrap()
        .join()
        .unwrap();
    let stats = settled_stats(&telemetry, WAIT).await;
    assert!(stats.dropped.overflow > 0, "{stats:?}");

    // A dependency's log on a runtime thread (a thread of that name here) is ignored too, and
    // the application's next event is recorded.
    std::thread::Builder::new()
        .name("actix-telemetry".into())
        .spawn(|| tracing::warn!(target: "hyper_util::client", "connection closed"))
        .unwrap()
        .join()
        .unwrap();
    std::thread::Builder::new()
        .name("app".into())
        .spawn(|| tracing::info!(event = "app_finished"))
        .unwrap()
        .join()
        .unwrap();
    settled_stats(&telemetry, WAIT).await;
    telemetry.shutdown(WAIT).await;

    let delivered = backend.delivered_events();
    let names: Vec<&str> = delivered
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("app_") || n.starts_with("burst-")),
        "only the application's events: {names:?}"
    );
    assert_eq!(names.iter().filter(|n| **n == "app_started").count(), 1);
    assert_eq!(names.iter().filter(|n| **n == "app_finished").count(), 1);
    assert_eq!(
        by_name(&delivered, "app_started")["properties"]["port"],
        json!(8080)
    );
    assert!(seen.on_runtime_threads.load(Ordering::Relaxed) > 1);
    assert!(seen.own_targets_elsewhere.load(Ordering::Relaxed) > 0);
}
