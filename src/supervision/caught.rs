//! Panics in futures: an actor's async bodies (a delivery, a check-in, a snapshot) and the
//! tasks it spawns run outside its handlers, where [`supervised`](super::supervised) cannot reach.
//! A panic there would end the actor's context (or the task) for good, silently, and leave
//! whatever waited for the answer stuck. [`caught`] turns such a panic into an `Err` with the
//! panic's message, which the caller counts ([`TaskPanics`]) and answers like a failure.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use super::ActorKind;

/// A future whose panics come out as `Err(message)`.
#[derive(Debug)]
pub(crate) struct Caught<F> {
    inner: Pin<Box<F>>,
}

/// Wraps `future` so that a panic while polling it becomes `Err(message)`.
pub(crate) fn caught<F: Future>(future: F) -> Caught<F> {
    Caught {
        inner: Box::pin(future),
    }
}

impl<F: Future> Future for Caught<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        // The future is dropped after a panic (it is never polled again), so no broken
        // invariant of it can be observed.
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

/// Counts the panics caught in an actor's futures and tasks; clones share the count, so a
/// task on another thread reports into its actor's [`Stats::panics`](crate::Stats).
#[derive(Clone, Debug)]
pub(crate) struct TaskPanics {
    actor: ActorKind,
    count: Arc<AtomicU64>,
}

impl TaskPanics {
    pub fn new(actor: ActorKind) -> Self {
        TaskPanics {
            actor,
            count: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Counts and logs a panic of `what` (for example "a delivery").
    pub fn record(&self, what: &str, message: &str) {
        self.count.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            target: "actix_telemetry::supervision",
            actor = %self.actor,
            panic = %message,
            "{what} panicked; it is answered as a failure and retried"
        );
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_inside_a_future_becomes_an_error() {
        let ok = caught(async { 7 }).await;
        assert_eq!(ok, Ok(7));
        let failed = caught(async {
            tokio::task::yield_now().await;
            panic!("boom in a future")
        })
        .await;
        let _: Result<(), String> = failed.clone();
        assert_eq!(failed, Err("boom in a future".to_string()));
    }
}
