//! The messages about the flag set as a whole: reading all of it, waiting for a check-in,
//! asking for one, and subscribing to changes ([`FeatureSubscription`]).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;

use crate::error::WaitForCheckinError;
use crate::features::FeatureSet;

/// The whole current flag set, without recording an evaluation event.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// let flags = telemetry.recorder().send(actix_telemetry::GetFeatures).await?;
/// println!("{} flags", flags.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Arc<FeatureSet>")]
pub struct GetFeatures;

/// Waits until a check-in has succeeded in this run of the runtime (returns at once if one has).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// use std::time::Duration;
/// use actix_telemetry::WaitForCheckin;
/// let answer = telemetry
///     .recorder()
///     .send(WaitForCheckin { timeout: Duration::from_secs(2) })
///     .await?;
/// if let Err(why) = answer {
///     eprintln!("serving the flags of an earlier run: {why}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "Result<Arc<FeatureSet>, WaitForCheckinError>")]
pub struct WaitForCheckin {
    /// How long to wait at most.
    pub timeout: Duration,
}

/// Asks for a check-in now, in the background; returns at once.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// telemetry.recorder().do_send(actix_telemetry::RefreshConfiguration);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "()")]
pub struct RefreshConfiguration;

/// Subscribes to flag changes: the subscription wakes only when the flags really changed.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let telemetry = actix_telemetry::Builder::new().endpoint("file:///dev/stdout").build()?;
/// let mut subscription = telemetry.recorder().send(actix_telemetry::SubscribeFeatures).await?;
/// while let Some(flags) = subscription.changed().await {
///     println!("flags changed: {} now", flags.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Message)]
#[rtype(result = "FeatureSubscription")]
pub struct SubscribeFeatures;

/// A stream of flag sets; each [`changed`](FeatureSubscription::changed) waits for a real
/// change. A slow reader never holds anything up: it sees the newest set.
#[derive(Debug, Clone)]
pub struct FeatureSubscription {
    rx: watch::Receiver<Arc<FeatureSet>>,
}

impl FeatureSubscription {
    pub(crate) fn new(rx: watch::Receiver<Arc<FeatureSet>>) -> Self {
        FeatureSubscription { rx }
    }

    /// Waits for the next change; `None` once the runtime has stopped.
    pub async fn changed(&mut self) -> Option<Arc<FeatureSet>> {
        self.rx.changed().await.ok()?;
        Some(self.rx.borrow_and_update().clone())
    }

    /// The current flags.
    pub fn current(&self) -> Arc<FeatureSet> {
        self.rx.borrow().clone()
    }
}
