//! How the runtime talks to its backend: HTTP timeouts and user agent, check-ins, flags for one
//! user, the configuration stream.

use std::time::Duration;

use super::Builder;
use crate::stream::StreamSettings;
use crate::user_flags::UserFlagSettings;

impl Builder {
    /// Time limit of one HTTP request (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// Time limit for connecting (default 3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// The HTTP `User-Agent` (default `actix-telemetry/<version>`).
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.settings.user_agent = agent.into();
        self
    }

    /// How often to check in for fresh configuration (default 5 minutes).
    pub fn checkin_interval(mut self, interval: Duration) -> Self {
        self.settings.checkin_interval = interval;
        self
    }

    /// Whether the runtime checks in for its process-wide flags (default: on). Off, it never
    /// asks the backend for them: not as it starts, not on the
    /// [`checkin_interval`](Builder::checkin_interval), not after an identity change or a
    /// [`RefreshConfiguration`](crate::RefreshConfiguration). The process-wide flags stay
    /// those saved by an earlier run, if any ([`WaitForCheckin`](crate::WaitForCheckin) waits
    /// out its timeout); flags for one user
    /// ([`FlagReader::for_user`](crate::FlagReader::for_user)) still come from the backend.
    /// For a service that reads only per-user flags, this saves a request per
    /// interval (with PostHog, a billed flag evaluation for the process's own identity).
    pub fn checkins(mut self, enabled: bool) -> Self {
        self.settings.checkins = enabled;
        self
    }

    /// The largest check-in document the runtime reads (default 1 MiB): the body of a check-in
    /// answer, the check-in file, one streamed update. A larger one fails that check-in with
    /// [`TransportError::BodyTooLarge`](crate::TransportError::BodyTooLarge) (or is skipped and
    /// counted in `Stats::stream_errors`); the last good flags stay in use.
    pub fn max_checkin_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_checkin_bytes = bytes;
        self
    }

    /// How long one user's flags are cached and how many users at most, for
    /// [`FlagReader::for_user`](crate::FlagReader::for_user) (default 60 s, 10,000 users).
    pub fn user_flags(mut self, settings: UserFlagSettings) -> Self {
        self.settings.user_flags = settings;
        self
    }

    /// Streams configuration from this Server-Sent Events endpoint (see
    /// `docs/configuration.md`): while it is connected it is the source of flags and periodic
    /// check-ins pause; 401 or 403 ends it and check-ins take over.
    pub fn stream(mut self, settings: StreamSettings) -> Self {
        self.settings.stream = Some(settings);
        self
    }
}
