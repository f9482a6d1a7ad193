//! An actix-web service embedding the runtime as README.md shows: one event per request,
//! recorded through the request's telemetry context (so it carries the user and session ids of
//! the `X-PostHog-Distinct-Id` and `X-PostHog-Session-Id` headers, when sent), and on
//! SIGINT or SIGTERM the server stops, the telemetry delivers what is queued within its
//! deadline, and the shutdown report is printed as one JSON line on stdout:
//! `shutdown-report {"complete":true,...}`.
//!
//! The listen address comes from `ACTIX_WEB_ADDR` (default `127.0.0.1:8080`); events go to
//! `DETSYS_IDS_TRANSPORT`, or are printed on stdout when it is unset.
//!
//! ```sh
//! cargo run --example actix_web
//! curl http://127.0.0.1:8080/   # then Ctrl-C
//! ```

use std::time::Duration;

use actix_telemetry::{Builder, Record, RequestTelemetry, ShutdownReport, TelemetryMiddleware};
use actix_web::{App, HttpRequest, HttpServer, web};
use serde_json::{Value, json};

/// How long the telemetry may take to deliver what is queued once the server has stopped.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

async fn index(request: HttpRequest, telemetry: RequestTelemetry) -> &'static str {
    telemetry.record(Record::new("page_viewed").property("path", request.path()));
    "hello\n"
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    init_tracing();
    let addr = std::env::var("ACTIX_WEB_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    // `DETSYS_IDS_TRANSPORT`, when set, wins over this endpoint.
    let telemetry = Builder::new()
        .endpoint("file:///dev/stdout")
        .component("actix-web-example")
        .version(env!("CARGO_PKG_VERSION"))
        .build()
        .map_err(std::io::Error::other)?;
    // The bounded path: memory stays within its budget however hard the service is hit.
    let middleware = TelemetryMiddleware::new(telemetry.events());
    // actix-web stops the server on SIGINT and SIGTERM (and then stops the actix `System`);
    // `run` returns once it has.
    HttpServer::new(move || {
        App::new()
            .wrap(middleware.clone())
            .route("/", web::get().to(index))
    })
    .bind(&addr)?
    .run()
    .await?;
    let report = telemetry.shutdown(SHUTDOWN_DEADLINE).await;
    println!("shutdown-report {}", report_json(&report));
    Ok(())
}

/// Warnings and errors on stderr (`RUST_LOG` changes the filter), so stdout holds only batches
/// and the report.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The report as JSON, written out here so the library's public types need no serde derives.
fn report_json(report: &ShutdownReport) -> Value {
    let (flush, stats) = (&report.flush, &report.stats);
    let dropped = &stats.dropped;
    json!({
        "complete": report.complete,
        "timed_out": report.timed_out,
        "flush": {
            "delivered": flush.delivered,
            "dropped": flush.dropped,
            "pending": flush.pending,
            "spooled": flush.spooled,
            "complete": flush.complete,
        },
        "stats": {
            "accepted": stats.accepted,
            "delivered": stats.delivered,
            "dropped": {
                "total": dropped.total(),
                "opt_out": dropped.opt_out,
                "invalid": dropped.invalid,
                "too_large": dropped.too_large,
                "overflow": dropped.overflow,
                "rejected": dropped.rejected,
                "refused": dropped.refused,
                "retries_exhausted": dropped.retries_exhausted,
                "shutdown": dropped.shutdown,
            },
            "retries": stats.retries,
            "queue_depth": stats.queue_depth,
            "spooled": stats.spooled,
        },
    })
}
