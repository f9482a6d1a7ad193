//! Where configuration from the environment comes from.
//!
//! The runtime never calls `std::env::var` directly: it reads through an [`EnvSource`], so an
//! embedding application (or a test) can supply its own variables and change the prefix of the
//! reference names (`DETSYS_IDS_TRANSPORT`, `DETSYS_CORRELATION`, …) without touching the
//! process environment.

use std::collections::HashMap;
use std::sync::Arc;

/// A source of environment variables: the process environment or a fixed map.
///
/// ```
/// use actix_telemetry::{Builder, env::EnvSource};
/// // Exactly these variables; the process environment is ignored.
/// let builder = Builder::new().env(EnvSource::fixed([("DETSYS_IDS_TELEMETRY", "disabled")]));
/// ```
#[derive(Clone, Debug, Default)]
pub enum EnvSource {
    /// Read the process environment.
    #[default]
    Process,
    /// Read only these variables; the process environment is ignored.
    Fixed(Arc<HashMap<String, String>>),
}

impl EnvSource {
    /// A source that holds exactly these variables.
    pub fn fixed<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        EnvSource::Fixed(Arc::new(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// The value of `name`, if it is set and valid Unicode.
    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            EnvSource::Process => std::env::var(name).ok(),
            EnvSource::Fixed(vars) => vars.get(name).cloned(),
        }
    }

    /// Whether `name` is set to a non-empty value.
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty())
    }
}

/// The names of the variables the runtime reads, built from a prefix (`DETSYS` by default).
#[derive(Clone, Debug)]
pub struct EnvNames {
    /// `{PREFIX}_IDS_TELEMETRY`: `disabled` turns telemetry off.
    pub telemetry: String,
    /// `{PREFIX}_IDS_TRANSPORT`: the endpoint (`file:///…`, `http(s)://…`).
    pub transport: String,
    /// `{PREFIX}_IDS_CHECKIN_FILE`: a check-in document for the File transport.
    pub checkin_file: String,
    /// `{PREFIX}_IDS_IN_CI`: `1` forces `is_ci = true`.
    pub in_ci: String,
    /// `{PREFIX}_CORRELATION`: correlation JSON.
    pub correlation: String,
}

impl EnvNames {
    /// The names for `prefix`, e.g. `DETSYS` gives `DETSYS_IDS_TRANSPORT`.
    pub fn with_prefix(prefix: &str) -> Self {
        EnvNames {
            telemetry: format!("{prefix}_IDS_TELEMETRY"),
            transport: format!("{prefix}_IDS_TRANSPORT"),
            checkin_file: format!("{prefix}_IDS_CHECKIN_FILE"),
            in_ci: format!("{prefix}_IDS_IN_CI"),
            correlation: format!("{prefix}_CORRELATION"),
        }
    }
}

impl Default for EnvNames {
    fn default() -> Self {
        EnvNames::with_prefix("DETSYS")
    }
}
