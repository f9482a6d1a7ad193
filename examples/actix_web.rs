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
//! `ACTIX_WEB_TELEMETRY` chooses how much telemetry the service does, so its cost can be
//! measured (`scripts/wrk_bench.sh`): `record` (the default) is the above; `off` is the same
//! route and answer with no telemetry at all (no runtime, no middleware, no report); `flag`
//! also reads flag `loud-greeting` per request on the handler's thread
//! ([`Telemetry::flags`](actix_telemetry::Telemetry::flags)) and answers `HELLO` when it is on.
//!
//! ```sh
//! cargo run --example actix_web
//! curl http://127.0.0.1:8080/   # then Ctrl-C
//! ```

use std::time::Duration;

use actix_telemetry::{
    Builder, FlagReader, Record, RequestTelemetry, ShutdownReport, TelemetryMiddleware,
};
use actix_web::{App, HttpRequest, HttpServer, web};
use serde_json::{Value, json};

/// How long the telemetry may take to deliver what is queued once the server has stopped.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// The flag the `flag` mode reads on every request.
const GREETING_FLAG: &str = "loud-greeting";

/// How much telemetry the service does (`ACTIX_WEB_TELEMETRY`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Record,
    Flag,
}

impl Mode {
    fn from_env() -> std::io::Result<Mode> {
        match std::env::var("ACTIX_WEB_TELEMETRY").as_deref() {
            Err(_) | Ok("record") => Ok(Mode::Record),
            Ok("off") => Ok(Mode::Off),
            Ok("flag") => Ok(Mode::Flag),
            Ok(other) => Err(std::io::Error::other(format!(
                "ACTIX_WEB_TELEMETRY={other:?}: expected off, record or flag"
            ))),
        }
    }
}

async fn hello() -> &'static str {
    "hello\n"
}

async fn index(request: HttpRequest, telemetry: RequestTelemetry) -> &'static str {
    telemetry.record(Record::new("page_viewed").property("path", request.path()));
    "hello\n"
}

async fn index_with_flag(
    request: HttpRequest,
    telemetry: RequestTelemetry,
    flags: web::Data<FlagReader>,
) -> &'static str {
    telemetry.record(Record::new("page_viewed").property("path", request.path()));
    if flags.is_enabled(GREETING_FLAG) {
        "HELLO\n"
    } else {
        "hello\n"
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    init_tracing();
    let addr = std::env::var("ACTIX_WEB_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    match Mode::from_env()? {
        Mode::Off => serve_without_telemetry(&addr).await,
        mode => serve(&addr, mode == Mode::Flag).await,
    }
}

/// The same route and answer with no telemetry: the baseline its cost is measured against.
async fn serve_without_telemetry(addr: &str) -> std::io::Result<()> {
    HttpServer::new(|| App::new().route("/", web::get().to(hello)))
        .bind(addr)?
        .run()
        .await
}

async fn serve(addr: &str, read_flag: bool) -> std::io::Result<()> {
    // `DETSYS_IDS_TRANSPORT`, when set, wins over this endpoint.
    let telemetry = Builder::new()
        .endpoint("file:///dev/stdout")
        .component("actix-web-example")
        .version(env!("CARGO_PKG_VERSION"))
        .build()
        .map_err(std::io::Error::other)?;
    // The bounded path: memory stays within its budget however hard the service is hit.
    let middleware = TelemetryMiddleware::new(telemetry.events());
    let flags = web::Data::new(telemetry.flags());
    // actix-web stops the server on SIGINT and SIGTERM (and then stops the actix `System`);
    // `run` returns once it has.
    HttpServer::new(move || {
        let app = App::new().wrap(middleware.clone());
        if read_flag {
            app.app_data(flags.clone())
                .route("/", web::get().to(index_with_flag))
        } else {
            app.route("/", web::get().to(index))
        }
    })
    .bind(addr)?
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
