//! Where events go and where the runtime keeps its state: the endpoint (or PostHog, or SRV
//! discovery), more sinks, the spool and state directory, the environment read, the opt-out.

use super::Builder;
use crate::env::EnvSource;
use crate::filter::PropertyFilter;
use crate::settings::EndpointText;
use crate::sink_config::SinkConfig;
use crate::state::StateLocation;
use crate::transport::PostHogSettings;
#[cfg(feature = "srv")]
use crate::transport::SrvSettings;

impl Builder {
    /// Where events go: `file:///path` (or a plain path; `file:///dev/stdout` prints them) or
    /// `http(s)://host[:port]`. The `{PREFIX}_IDS_TRANSPORT` variable, when set, wins, so an
    /// operator can redirect telemetry without a rebuild. With neither, and no
    /// [`srv`](Builder::srv) settings, [`build`](Builder::build) fails with
    /// [`BuildError::NoEndpoint`](crate::BuildError::NoEndpoint): nothing is sent to a
    /// destination nobody chose.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.settings.endpoint = Some(EndpointText(endpoint.into()));
        self.settings.posthog = None;
        self
    }

    /// Send events to PostHog's capture API and take feature flags from its `/flags` API, in
    /// place of an [`endpoint`](Builder::endpoint) (the last of the two set wins; the
    /// `{PREFIX}_IDS_TRANSPORT` variable still wins over both). The endpoint form
    /// `posthog+https://host?api_key=…` does the same from text.
    pub fn posthog(mut self, settings: PostHogSettings) -> Self {
        self.settings.posthog = Some(settings);
        self.settings.endpoint = None;
        self
    }

    /// Discover backends through DNS SRV records when no endpoint is configured; the reference
    /// deployment's record, suffixes and fallback are [`SrvSettings::determinate_systems`].
    /// (Feature `srv`.)
    #[cfg(feature = "srv")]
    pub fn srv(mut self, settings: SrvSettings) -> Self {
        self.settings.srv = Some(settings);
        self
    }

    /// Reads environment variables from `env` instead of the process environment.
    pub fn env(mut self, env: EnvSource) -> Self {
        self.settings.env = env;
        self
    }

    /// The prefix of the variables read (`DETSYS` gives `DETSYS_IDS_TRANSPORT`,
    /// `DETSYS_CORRELATION`, …).
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.env_prefix = prefix.into();
        self
    }

    /// Which properties the primary endpoint receives (default: all).
    pub fn filter(mut self, filter: PropertyFilter) -> Self {
        self.settings.filter = filter;
        self
    }

    /// Delivers events to another sink too (a local file, the console, a second backend).
    pub fn sink(mut self, sink: SinkConfig) -> Self {
        self.settings.sinks.push(sink);
        self
    }

    /// Whether each sink keeps its undelivered events in a durable spool in the state
    /// directory (default: on, when there is a state directory). With it on, two sinks whose
    /// names map to one spool directory are refused by [`build`](Builder::build).
    pub fn spool(mut self, enabled: bool) -> Self {
        self.settings.spool = enabled;
        self
    }

    /// The most disk each sink's spool may use (default 128 MiB); past it the oldest spooled
    /// events stop being durable (they are still delivered if the process lives).
    pub fn spool_max_bytes(mut self, bytes: u64) -> Self {
        self.settings.spool_max_bytes = bytes;
        self
    }

    /// Where the last good check-in and the identity are kept across runs (default: the XDG
    /// state directory, `$XDG_STATE_HOME/actix-telemetry/<prefix>`; `StateLocation::Disabled`
    /// keeps nothing on disk).
    pub fn state(mut self, location: StateLocation) -> Self {
        self.settings.state = location;
        self
    }

    /// Keeps state in `dir`.
    pub fn state_dir(self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.state(StateLocation::At(dir.into()))
    }

    /// Turns telemetry off regardless of the environment.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.settings.disabled = disabled;
        self
    }
}
