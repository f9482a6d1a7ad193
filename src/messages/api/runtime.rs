//! The messages about the runtime itself rather than an event: delivering what is queued
//! ([`Flush`]), stopping ([`Shutdown`]), reading the counters, and injecting faults in tests.

use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use crate::stats::{FlushReport, ShutdownReport, Stats};

/// Delivers every event recorded before it. Resolves when each is delivered or dropped, or
/// when its deadline passes (the rest are then reported `pending` and stay queued).
///
/// The deadline is an instant, taken when the message is made ([`Flush::within`]): time spent
/// in mailboxes on the way counts against it.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use std::time::Duration;
/// use actix_telemetry::Flush;
/// let report = telemetry.recorder().send(Flush::within(Duration::from_secs(5))).await?;
/// println!("delivered {}, pending {}", report.delivered, report.pending);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, Message)]
#[rtype(result = "FlushReport")]
pub struct Flush {
    /// When to stop waiting (a [`tokio::time::Instant`]); `None` waits until every event is
    /// delivered or dropped.
    pub deadline: Option<Instant>,
}

impl Flush {
    /// Waits until every earlier event is delivered or dropped.
    pub fn new() -> Self {
        Flush { deadline: None }
    }

    /// Waits at most `timeout`, counted from now.
    pub fn within(timeout: Duration) -> Self {
        Flush::until(crate::validate::deadline_in(timeout))
    }

    /// Waits until `deadline` at most.
    pub fn until(deadline: Instant) -> Self {
        Flush {
            deadline: Some(deadline),
        }
    }
}

/// Stops accepting events, delivers what is queued until `deadline`, drops the rest (counted),
/// reports, and stops the runtime's actors.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use std::time::Duration;
/// use actix_telemetry::Shutdown;
/// let report = telemetry.recorder().send(Shutdown::within(Duration::from_secs(5))).await?;
/// println!("complete: {}", report.complete);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "ShutdownReport")]
pub struct Shutdown {
    /// When delivery must end (a [`tokio::time::Instant`]); [`Shutdown::within`] counts from
    /// when the message is made.
    pub deadline: Instant,
}

impl Shutdown {
    /// Delivers for at most `timeout`, counted from now.
    pub fn within(timeout: Duration) -> Self {
        Shutdown {
            deadline: crate::validate::deadline_in(timeout),
        }
    }
}

/// The runtime's counters.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// let stats = telemetry.recorder().send(actix_telemetry::GetStats).await?;
/// println!("accepted {}, dropped {}", stats.accepted, stats.dropped.total());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Stats")]
pub struct GetStats;

/// The counters of each sink (its queue, deliveries and drops), by name, primary first.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// for (sink, stats) in telemetry.recorder().send(actix_telemetry::GetSinkStats).await? {
///     println!("{sink}: delivered {}", stats.delivered);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Vec<(String, Stats)>")]
pub struct GetSinkStats;

/// Makes `actor` panic or stop on its next message, to test supervision.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct InjectFault {
    /// The actor to hit.
    pub actor: crate::actor_kind::ActorKind,
    /// What happens to it.
    pub fault: crate::actor_kind::Fault,
}
