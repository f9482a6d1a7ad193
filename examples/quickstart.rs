//! Records a few events, reads a flag, flushes and shuts down.
//!
//! With no configuration the batches are printed as JSON lines on stdout (the File transport);
//! `DETSYS_IDS_TRANSPORT=http://host:port` sends them to that backend instead, and
//! `DETSYS_IDS_CHECKIN_FILE=flags.json` supplies flags to the File transport.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use actix_telemetry::{
    Builder, Flush, Identify, PropertyFilter, Record, SetFact, SinkConfig, WaitForCheckin,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Personal data never leaves: the filter drops `email` from everything sent.
    let filter = PropertyFilter::all().deny(["email"]);
    let mut builder = Builder::new()
        .endpoint("file:///dev/stdout")
        .filter(filter.clone())
        .component("quickstart")
        .version(env!("CARGO_PKG_VERSION"));
    // When events go to a server, print exactly what it is sent as well.
    if std::env::var("DETSYS_IDS_TRANSPORT")
        .is_ok_and(|t| !t.is_empty() && !t.ends_with("/dev/stdout"))
    {
        builder = builder.sink(SinkConfig::new("console", "file:///dev/stdout").filter(filter));
    }
    let telemetry = builder.build()?;
    let recorder = telemetry.recorder().clone();

    // Flags come from the first check-in; with the File transport that is the check-in file.
    if let Err(error) = recorder
        .send(WaitForCheckin {
            timeout: Duration::from_secs(2),
        })
        .await?
    {
        eprintln!("no configuration yet: {error}");
    }

    recorder.do_send(SetFact::new("region", "eu-west"));
    recorder.do_send(Identify::new("user-42").set("plan", "pro"));
    // Events go through the bounded path: if the runtime falls behind, recording waits (a
    // bounded time) instead of growing memory.
    let events = telemetry.events();
    events.record(
        Record::new("app_started")
            .property("cold_start", true)
            .property("email", "not-sent@example.com"),
    );
    // Read on this thread from the runtime's copy of the flags, no round trip.
    let variant: Option<String> = telemetry.flags().variant("new-dashboard");
    events.record(
        Record::new("dashboard_opened")
            .property("variant", variant.as_deref().unwrap_or("control")),
    );

    let flushed = recorder
        .send(Flush::within(Duration::from_secs(10)))
        .await?;
    let report = telemetry.shutdown(Duration::from_secs(5)).await;
    eprintln!(
        "delivered {} events in this flush, {} in all; dropped {}",
        flushed.delivered,
        report.stats.delivered,
        report.stats.dropped.total()
    );
    Ok(())
}
