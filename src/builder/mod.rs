//! Configuring and starting the runtime: the [`Builder`], its setters by topic (where events
//! go, what they carry, how they queue, how the runtime talks to the backend), and
//! [`Builder::build`], which has [`Config::resolve`] resolve and check every setting at once
//! and then starts the actors.

mod backend;
mod destination;
mod enrichment;
mod queueing;

use crate::config::{Config, Enabled};
use crate::error::BuildError;
use crate::runtime::start;
use crate::settings::Settings;
use crate::telemetry::Telemetry;

/// Configures the runtime. Every setting has a default; [`Builder::build`] starts it.
///
/// ```no_run
/// # fn main() -> Result<(), actix_telemetry::BuildError> {
/// let telemetry = actix_telemetry::Builder::new()
///     .endpoint("file:///dev/stdout")
///     .component("billing")
///     .version("1.4.2")
///     .build()?;
/// telemetry.recorder().do_send(actix_telemetry::Record::new("invoice_sent"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    settings: Settings,
}

impl Builder {
    /// A builder with every default.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Starts the runtime on a private actix `System` on a thread of its own (also inside a
    /// running actix `System`, such as actix-web's, which may stop before the runtime has
    /// delivered what it holds). Returns at once: the first check-in happens in the background.
    ///
    /// Errors are about configuration only: an invalid endpoint, a file endpoint that cannot
    /// be opened, an invalid setting, two sinks sharing a spool directory. A malformed correlation
    /// document is not an error: it is logged, ignored, and reported by
    /// [`Telemetry::correlation_error`].
    pub fn build(self) -> Result<Telemetry, BuildError> {
        let Config {
            budget,
            user_flags,
            enabled,
        } = Config::resolve(self.settings)?;
        let Some(Enabled {
            endpoint,
            parts,
            correlation_error,
        }) = enabled
        else {
            return Ok(Telemetry::new(start(None, budget, user_flags)?, None, None));
        };
        let started = start(Some(parts), budget, user_flags)?;
        Ok(Telemetry::new(started, Some(endpoint), correlation_error))
    }
}
