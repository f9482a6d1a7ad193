//! The handle of a running runtime: its Recorder, flag reader and event sender, flushes,
//! counters and shutdown.

use std::time::Duration;

use actix::Addr;

use crate::actors::recorder::{LATE_ANSWER_GRACE, Recorder};
use crate::admission::EventSender;
use crate::control::Control;
use crate::correlation::CorrelationError;
use crate::flag_reader::FlagReader;
use crate::messages::{Flush, Shutdown};
use crate::runtime::Started;
use crate::stats::{FlushReport, ShutdownReport, Stats};
use crate::transport::Endpoint;

/// How long a shutdown started by dropping the [`Telemetry`] handle may take.
const DROP_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(2);

/// A running runtime. Send messages to [`recorder`](Telemetry::recorder); call
/// [`shutdown`](Telemetry::shutdown) before exiting. Dropping it starts a best-effort shutdown
/// (a short deadline, nothing awaited).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use std::time::Duration;
/// use actix_telemetry::Record;
/// telemetry.events().record(Record::new("job_finished"));
/// let report = telemetry.shutdown(Duration::from_secs(5)).await;
/// println!("delivered {}", report.stats.delivered);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Telemetry {
    recorder: Addr<Recorder>,
    flags: FlagReader,
    control: Control,
    events: EventSender,
    endpoint: Option<Endpoint>,
    correlation_error: Option<CorrelationError>,
    shut_down: bool,
}

impl Telemetry {
    pub(crate) fn new(
        started: Started,
        endpoint: Option<Endpoint>,
        correlation_error: Option<CorrelationError>,
    ) -> Self {
        Telemetry {
            recorder: started.recorder,
            flags: started.flags,
            control: started.control,
            events: started.events,
            endpoint,
            correlation_error,
            shut_down: false,
        }
    }

    /// The Recorder: clone it freely and send it messages from any thread or runtime.
    pub fn recorder(&self) -> &Addr<Recorder> {
        &self.recorder
    }

    /// Records events with bounded memory (see [`EventSender`]): the way to record from code
    /// that may record faster than the runtime delivers. `recorder().do_send(Record)` still
    /// works and never waits, but what it sends while the runtime is behind piles up in the
    /// Recorder's mailbox without a limit.
    pub fn events(&self) -> EventSender {
        self.events.clone()
    }

    /// Reads flags on the calling thread from the runtime's local copy, with no round trip to
    /// the runtime's thread (still recording `$feature_flag_called`); clone it into request
    /// handlers.
    pub fn flags(&self) -> FlagReader {
        self.flags.clone()
    }

    /// Flushes with `timeout`, answered by the deadline (plus a grace of one second) even while
    /// a burst waits in the Recorder's mailbox: `send(Flush)` is answered only once the flush
    /// has come through the mailbox, behind everything recorded before it. A flush that could
    /// not answer in time is reported with `complete: false` (the events it covers are still
    /// being delivered).
    pub async fn flush(&self, timeout: Duration) -> FlushReport {
        let deadline = crate::validate::deadline_in(timeout);
        let answered = tokio::time::timeout_at(
            crate::validate::later(deadline, LATE_ANSWER_GRACE),
            self.recorder.send(Flush::until(deadline)),
        )
        .await;
        match answered {
            Ok(Ok(report)) => report,
            Ok(Err(error)) => {
                tracing::warn!(%error, "the runtime did not answer a flush");
                FlushReport::lost()
            }
            Err(_) => FlushReport::lost(),
        }
    }

    /// Every actor's counters, without waiting behind the events in the Recorder's mailbox
    /// (unlike `send(GetStats)`, which answers in order with them): within milliseconds even
    /// while a burst is being absorbed. A snapshot of now, so events still in the Recorder's
    /// mailbox are not counted anywhere yet.
    pub async fn stats(&self) -> Stats {
        self.control.stats().await
    }

    /// Whether telemetry is on (it is off when disabled by the builder or the environment).
    pub fn is_enabled(&self) -> bool {
        self.endpoint.is_some()
    }

    /// Where events go; `None` when telemetry is off.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// Why the correlation document was ignored, if it was malformed.
    pub fn correlation_error(&self) -> Option<&CorrelationError> {
        self.correlation_error.as_ref()
    }

    /// Stops accepting events, delivers what is queued within `deadline` (counted from this
    /// call), drops and counts the rest, and stops the actors. Works from any runtime, also
    /// after the application's actix `System` has stopped (as actix-web stops it on SIGINT
    /// and SIGTERM). A deadline that has passed by the time a sink sees it (`Duration::ZERO`)
    /// starts no more requests: what the sink holds is dropped (or left in its spool) at
    /// once, not sent.
    ///
    /// [`ShutdownReport::complete`] says whether every actor answered. If the Recorder does not
    /// answer (the runtime had already stopped), the report is incomplete and holds the
    /// counters that can still be read, if any.
    pub async fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        self.shut_down = true;
        match self.recorder.send(Shutdown::within(deadline)).await {
            Ok(report) => report,
            Err(error) => {
                tracing::warn!(%error, "the runtime did not answer the shutdown");
                // What can still be read: the Recorder's counters need no answer from it, and
                // actors that are gone give nothing.
                let stats = self.control.stats().await;
                ShutdownReport::new(FlushReport::lost(), stats, false)
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if !self.shut_down {
            self.recorder
                .do_send(Shutdown::within(DROP_SHUTDOWN_DEADLINE));
        }
    }
}
