//! Panics as events (opt-in): a panic hook that records an `$exception` event and flushes it
//! within a short deadline, then runs the hook that was installed before it.
//!
//! The hook can run on any thread, the runtime's own included, and must neither block for
//! long nor panic itself (a panic inside a panic hook aborts the process). So:
//!
//! - it records through the bounded [`EventSender`]; on the runtime's threads it never waits
//!   for room (only the runtime could make it);
//! - off the runtime's threads it waits for the flush on the calling thread, at most the
//!   deadline, polling the answer with a waker that unparks the thread (no async runtime is
//!   needed, and none is entered); on the runtime's threads it skips the flush, since the
//!   thread it would wait for is its own;
//! - the event says what panicked and where, never the values of arguments or locals: the
//!   type (`panic`), the message (cut to [`MAX_PANIC_MESSAGE_BYTES`]), the file, line and column, and
//!   the thread's name.

use crate::text::truncated;
use std::future::Future;
use std::panic::PanicHookInfo;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use actix::Addr;
use serde_json::json;

use crate::actors::recorder::Recorder;
use crate::admission::{AdmissionPolicy, EventSender};
use crate::messages::{Flush, Record};
use crate::telemetry::Telemetry;

/// The event a panic becomes.
pub const EXCEPTION_EVENT: &str = "$exception";

/// The longest panic message an `$exception` event carries (the rest is cut off).
pub const MAX_PANIC_MESSAGE_BYTES: usize = 1024;

/// The names of the threads the runtime runs on (see `src/runtime.rs`).
const RUNTIME_THREADS: [&str; 2] = ["actix-telemetry", "actix-telemetry-blocking"];

/// A panic hook recording each panic as an [`EXCEPTION_EVENT`]: `$exception_type` (`panic`),
/// `$exception_message`, `$exception_location` (`file:line:column`), `$exception_list` (the
/// same in PostHog's shape, one frame) and `thread`; no argument values. Off unless installed.
///
/// ```no_run
/// # fn main() -> Result<(), actix_telemetry::BuildError> {
/// use std::time::Duration;
/// use actix_telemetry::{Builder, PanicHook};
///
/// let telemetry = Builder::new().endpoint("https://telemetry.example.com").build()?;
/// PanicHook::new()
///     .flush_within(Duration::from_secs(1))
///     .install(&telemetry);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PanicHook {
    flush_within: Duration,
}

impl Default for PanicHook {
    fn default() -> Self {
        PanicHook {
            flush_within: Duration::from_secs(2),
        }
    }
}

impl PanicHook {
    /// A hook flushing within 2 seconds.
    pub fn new() -> Self {
        PanicHook::default()
    }

    /// How long the panicking thread may wait for the event's delivery before the previous
    /// hook runs (and, for a panic that ends the process, before it ends).
    pub fn flush_within(mut self, deadline: Duration) -> Self {
        self.flush_within = deadline;
        self
    }

    /// Installs the hook for `telemetry`, in front of the hook installed now (which still
    /// runs after it, for every panic). Installing twice records each panic twice.
    pub fn install(self, telemetry: &Telemetry) {
        let events = telemetry.events();
        let recorder = telemetry.recorder().clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            self.report(&events, &recorder, info);
            previous(info);
        }));
    }

    fn report(&self, events: &EventSender, recorder: &Addr<Recorder>, info: &PanicHookInfo<'_>) {
        let thread = std::thread::current();
        let on_runtime = thread
            .name()
            .is_some_and(|name| RUNTIME_THREADS.contains(&name));
        let record = exception(info, thread.name().unwrap_or("unnamed"));
        if on_runtime {
            events.record_with(record, AdmissionPolicy::Drop);
            return;
        }
        if events.record(record) {
            let deadline = Instant::now().checked_add(self.flush_within);
            let flush = recorder.send(Flush::within(self.flush_within));
            if let Some(deadline) = deadline {
                let _ = wait_until(flush, deadline);
            }
        }
    }
}

/// The `$exception` event of a panic.
fn exception(info: &PanicHookInfo<'_>, thread: &str) -> Record {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload");
    let message = truncated(message, MAX_PANIC_MESSAGE_BYTES);
    let mut record = Record::new(EXCEPTION_EVENT)
        .property("$exception_type", "panic")
        .property("$exception_message", message)
        .property("$exception_level", "fatal")
        .property("thread", thread);
    let mut frame = serde_json::Map::new();
    if let Some(location) = info.location() {
        record = record.property(
            "$exception_location",
            format!(
                "{}:{}:{}",
                location.file(),
                location.line(),
                location.column()
            ),
        );
        frame.insert("filename".into(), location.file().into());
        frame.insert("lineno".into(), location.line().into());
        frame.insert("colno".into(), location.column().into());
        frame.insert("platform".into(), "rust".into());
    }
    let mut entry = json!({
        "type": "panic",
        "value": message,
        "mechanism": {"type": "panic", "handled": false, "synthetic": false},
    });
    if !frame.is_empty()
        && let Some(entry) = entry.as_object_mut()
    {
        entry.insert(
            "stacktrace".into(),
            json!({"type": "raw", "frames": [frame]}),
        );
    }
    record.property("$exception_list", json!([entry]))
}

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it is ready or `deadline` passes, parking between
/// wake-ups; `None` at the deadline.
fn wait_until<F: Future>(future: F, deadline: Instant) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        std::thread::park_timeout(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_bounded() {
        let started = Instant::now();
        let never = std::future::pending::<()>();
        assert!(wait_until(never, started + Duration::from_millis(30)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(wait_until(async { 7 }, started), Some(7));
    }
}
