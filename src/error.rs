//! Errors the public API returns.

use std::path::PathBuf;

/// Why the runtime could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The endpoint is neither a `file://` URL, a path, nor an `http(s)://` URL.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An explicit file endpoint could not be opened for appending. The runtime never falls
    /// back to the network in that case.
    #[error("cannot open file endpoint {path}: {source}")]
    FileEndpoint {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// No endpoint and no SRV record is configured: the runtime never picks a destination
    /// on its own.
    #[error(
        "no endpoint configured: call Builder::endpoint (or set …_IDS_TRANSPORT) with a file:// \
         or http(s):// URL, Builder::posthog, or Builder::srv (feature `srv`, for example \
         SrvSettings::determinate_systems())"
    )]
    NoEndpoint,
    /// The HTTP client could not be created.
    #[error("cannot create the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// A setting is out of range or contradicts another; the error names it.
    #[error("invalid configuration: {0}")]
    InvalidConfig(#[from] crate::validate::ConfigError),
    /// Two sinks' names map to the same spool directory (`<state>/spool/<dir>`: characters
    /// other than ASCII letters, digits, `-` and `_` become `_`, and case is not told apart);
    /// rename one of them.
    #[error("sinks {first:?} and {second:?} would share the spool directory spool/{dir}")]
    SharedSpool {
        /// The sink named first (`primary` for the primary endpoint).
        first: String,
        /// The sink whose name clashes with it.
        second: String,
        /// The directory's name.
        dir: String,
    },
    /// The private actix system thread could not be started.
    #[error("cannot start the telemetry thread: {0}")]
    Runtime(String),
}

/// Why [`WaitForCheckin`](crate::WaitForCheckin) returned without a fresh check-in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitForCheckinError {
    /// No check-in succeeded within the timeout.
    #[error("no check-in completed within {0:?}")]
    Timeout(std::time::Duration),
    /// Telemetry is disabled, so no check-in will ever happen.
    #[error("telemetry is disabled")]
    Disabled,
    /// The runtime stopped while waiting.
    #[error("the telemetry runtime stopped")]
    Stopped,
}
