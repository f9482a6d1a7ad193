//! Configuring and starting the runtime.

use std::time::Duration;

use actix::Addr;
use serde_json::{Map, Value};

use crate::actors::collator::{CollatorConfig, LIB_NAME, LIB_VERSION};
use crate::actors::recorder::LATE_ANSWER_GRACE;
use crate::actors::recorder::Recorder;
use crate::actors::submitter::{OverflowPolicy, SubmitterConfig};
use crate::admission::{AdmissionPolicy, Budget, EventSender};
use crate::control::Control;
use crate::correlation::{Correlation, CorrelationError};
use crate::env::{EnvNames, EnvSource};
use crate::error::BuildError;
use crate::features::FeatureLimits;
use crate::filter::PropertyFilter;
use crate::flag_reader::FlagReader;
use crate::identity::{ExplicitIds, Identity};
use crate::json::{PropertyValue, RefusedValue, checked};
use crate::messages::{Flush, Shutdown};
use crate::retry_delay::BackoffPolicy;
use crate::runtime::{PipelineParts, SinkParts, Started, start};
use crate::session::SessionPolicy;
use crate::spool::SpoolDirs;
use crate::state::{Saver, StateDir, StateLocation};
use crate::stats::{FlushReport, ShutdownReport, Stats};
use crate::stream::StreamSettings;
#[cfg(feature = "srv")]
use crate::transport::SrvSettings;
use crate::transport::{Backend, Endpoint, HttpSettings, PostHogSettings};
use crate::user_flags::UserFlagSettings;
use crate::validate::{Checks, ConfigError, ConfigProblem, MIN_EVENT_BYTES};

/// How long a shutdown started by dropping the [`Telemetry`] handle may take.
const DROP_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(2);

/// Another destination for events, beside the primary endpoint: its own queue, batching,
/// retries and property filter, so a dead or slow sink never holds up the others.
///
/// ```
/// use actix_telemetry::{PropertyFilter, SinkConfig};
/// let audit = SinkConfig::new("audit-log", "file:///var/log/app/events.jsonl")
///     .filter(PropertyFilter::all().deny(["email", "host_name"]));
/// ```
#[derive(Clone)]
pub struct SinkConfig {
    /// A name for logs and [`GetSinkStats`](crate::GetSinkStats).
    pub name: String,
    /// `file:///…`, a path, `http(s)://…` or `posthog+http(s)://…?api_key=…`.
    pub endpoint: String,
    /// Which properties this sink receives.
    pub filter: PropertyFilter,
    /// Its queue, batching and retries.
    pub queue: SubmitterConfig,
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConfig")
            .field("name", &self.name)
            .field(
                "endpoint",
                &crate::transport::redacted_endpoint(&self.endpoint),
            )
            .field("filter", &self.filter)
            .field("queue", &self.queue)
            .finish()
    }
}

impl SinkConfig {
    /// A sink called `name` sending to PostHog, receiving every property, with the default
    /// queue.
    pub fn posthog(name: impl Into<String>, settings: &PostHogSettings) -> Self {
        SinkConfig::new(name, settings.to_endpoint())
    }

    /// A sink called `name` writing to `endpoint`, receiving every property, with the default
    /// queue.
    pub fn new(name: impl Into<String>, endpoint: impl Into<String>) -> Self {
        SinkConfig {
            name: name.into(),
            endpoint: endpoint.into(),
            filter: PropertyFilter::all(),
            queue: SubmitterConfig::default(),
        }
    }

    /// Which properties this sink receives.
    pub fn filter(mut self, filter: PropertyFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Its queue, batching and retries.
    pub fn queue(mut self, queue: SubmitterConfig) -> Self {
        self.queue = queue;
        self
    }
}

/// An endpoint as given; its `Debug` output hides passwords and API keys in it.
#[derive(Clone)]
struct EndpointText(String);

impl std::fmt::Debug for EndpointText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::transport::redacted_endpoint(&self.0))
    }
}

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
#[derive(Clone, Debug)]
pub struct Builder {
    endpoint: Option<EndpointText>,
    posthog: Option<PostHogSettings>,
    #[cfg(feature = "srv")]
    srv: Option<SrvSettings>,
    env: EnvSource,
    env_prefix: String,
    ids: ExplicitIds,
    facts: Map<String, Value>,
    submitter: SubmitterConfig,
    max_event_bytes: usize,
    snapshot_max_age: Duration,
    request_timeout: Duration,
    connect_timeout: Duration,
    checkin_interval: Duration,
    checkins: bool,
    user_agent: String,
    max_checkin_bytes: usize,
    feature_limits: FeatureLimits,
    user_flags: UserFlagSettings,
    state: StateLocation,
    stream: Option<StreamSettings>,
    session: SessionPolicy,
    filter: PropertyFilter,
    sinks: Vec<SinkConfig>,
    spool: bool,
    spool_max_bytes: u64,
    max_pending_events: usize,
    admission: AdmissionPolicy,
    disabled: bool,
    /// A fact whose value was refused: reported by `build`.
    refused_fact: Option<(String, RefusedValue)>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            endpoint: None,
            posthog: None,
            #[cfg(feature = "srv")]
            srv: None,
            env: EnvSource::Process,
            env_prefix: "DETSYS".into(),
            ids: ExplicitIds::default(),
            facts: Map::new(),
            submitter: SubmitterConfig::default(),
            // Ingestion services refuse single events near 1 MB; stay clear of that.
            max_event_bytes: 900 * 1024,
            snapshot_max_age: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            checkin_interval: Duration::from_secs(300),
            checkins: true,
            user_agent: format!("{LIB_NAME}/{LIB_VERSION}"),
            max_checkin_bytes: crate::transport::DEFAULT_MAX_CHECKIN_BYTES,
            feature_limits: FeatureLimits::default(),
            user_flags: UserFlagSettings::default(),
            state: StateLocation::Default,
            stream: None,
            session: SessionPolicy::default(),
            filter: PropertyFilter::all(),
            sinks: Vec::new(),
            spool: true,
            spool_max_bytes: 128 * 1024 * 1024,
            max_pending_events: DEFAULT_MAX_PENDING_EVENTS,
            admission: AdmissionPolicy::default(),
            disabled: false,
            refused_fact: None,
        }
    }
}

/// Events an [`EventSender`] may have sent that the runtime has not taken in yet: a few hundred
/// bytes each, so a few MiB in all, and about 30 ms of the runtime's pace on this kind of
/// machine.
const DEFAULT_MAX_PENDING_EVENTS: usize = 10_000;

impl Builder {
    /// How many events sent through [`Telemetry::events`] may wait for the runtime at once
    /// (default 10,000); beyond it the [`AdmissionPolicy`] applies on the caller's thread.
    pub fn max_pending_events(mut self, n: usize) -> Self {
        self.max_pending_events = n;
        self
    }

    /// What [`EventSender::record`] does when the runtime is that far behind (default: wait up
    /// to 1 s for it, then drop and count).
    pub fn admission(mut self, policy: AdmissionPolicy) -> Self {
        self.admission = policy;
        self
    }

    fn budget(&self) -> std::sync::Arc<Budget> {
        std::sync::Arc::new(Budget::new(self.max_pending_events, self.admission))
    }

    /// A builder with every default.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Where events go: `file:///path` (or a plain path; `file:///dev/stdout` prints them) or
    /// `http(s)://host[:port]`. The `{PREFIX}_IDS_TRANSPORT` variable, when set, wins, so an
    /// operator can redirect telemetry without a rebuild. With neither, and no
    /// [`srv`](Builder::srv) settings, [`build`](Builder::build) fails with
    /// [`BuildError::NoEndpoint`]: nothing is sent to a destination nobody chose.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(EndpointText(endpoint.into()));
        self.posthog = None;
        self
    }

    /// Send events to PostHog's capture API and take feature flags from its `/flags` API, in
    /// place of an [`endpoint`](Builder::endpoint) (the last of the two set wins; the
    /// `{PREFIX}_IDS_TRANSPORT` variable still wins over both). The endpoint form
    /// `posthog+https://host?api_key=…` does the same from text.
    pub fn posthog(mut self, settings: PostHogSettings) -> Self {
        self.posthog = Some(settings);
        self.endpoint = None;
        self
    }

    /// Discover backends through DNS SRV records when no endpoint is configured; the reference
    /// deployment's record, suffixes and fallback are [`SrvSettings::determinate_systems`].
    /// (Feature `srv`.)
    #[cfg(feature = "srv")]
    pub fn srv(mut self, settings: SrvSettings) -> Self {
        self.srv = Some(settings);
        self
    }

    /// Reads environment variables from `env` instead of the process environment.
    pub fn env(mut self, env: EnvSource) -> Self {
        self.env = env;
        self
    }

    /// The prefix of the variables read (`DETSYS` gives `DETSYS_IDS_TRANSPORT`,
    /// `DETSYS_CORRELATION`, …).
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = prefix.into();
        self
    }

    /// The user events are about (otherwise the correlation's, or anonymous).
    pub fn distinct_id(mut self, id: impl Into<String>) -> Self {
        self.ids.distinct_id = Some(id.into());
        self
    }

    /// The anonymous id (otherwise the correlation's, or a new UUIDv7).
    pub fn anon_distinct_id(mut self, id: impl Into<String>) -> Self {
        self.ids.anon_distinct_id = Some(id.into());
        self
    }

    /// The device id (otherwise the correlation's, or `DIDS-DEV-<uuidv7>`).
    pub fn device_id(mut self, id: impl Into<String>) -> Self {
        self.ids.device_id = Some(id.into());
        self
    }

    /// A group every event carries in `$groups`.
    pub fn group(mut self, group_type: impl Into<String>, key: impl Into<String>) -> Self {
        self.ids.groups.insert(group_type.into(), key.into());
        self
    }

    /// A fact: a property on every event. A NaN, an infinity or a value nested deeper than
    /// [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH) makes [`build`](Self::build) fail with a
    /// [`ConfigError`] naming the fact.
    pub fn fact(mut self, key: impl Into<String>, value: impl PropertyValue) -> Self {
        let key = key.into();
        match checked(value) {
            Ok(value) => {
                self.facts.insert(key, value);
            }
            Err(reason) => self.refused_fact = Some((key, reason)),
        }
        self
    }

    /// The `component` property of every event: which part of the application sends it.
    pub fn component(self, component: impl Into<String>) -> Self {
        self.fact("component", component.into())
    }

    /// The `version` property of every event: the application's version.
    pub fn version(self, version: impl Into<String>) -> Self {
        self.fact("version", version.into())
    }

    /// Cut a batch at this many events (default 1000).
    pub fn max_batch_events(mut self, n: usize) -> Self {
        self.submitter.max_batch_events = n;
        self
    }

    /// Cut a batch before its uncompressed body exceeds this many bytes (default 4 MiB).
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.submitter.max_batch_bytes = n;
        self
    }

    /// Send a partial batch at least this often (default 5 s).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.submitter.flush_interval = interval;
        self
    }

    /// Hold at most this many undelivered events (default 200,000).
    pub fn max_queue_events(mut self, n: usize) -> Self {
        self.submitter.max_queue_events = n;
        self
    }

    /// Hold at most this many bytes of undelivered events (default 48 MiB).
    pub fn max_queue_bytes(mut self, n: usize) -> Self {
        self.submitter.max_queue_bytes = n;
        self
    }

    /// What to drop when the queue is full (default: the oldest).
    pub fn overflow_policy(mut self, policy: OverflowPolicy) -> Self {
        self.submitter.overflow = policy;
        self
    }

    /// Batches on the wire at once (default 4).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.submitter.max_in_flight = n;
        self
    }

    /// Without a spool, give up on a batch after this many failed attempts; `None` keeps
    /// retrying until the queue overflows (default 12). A sink with a spool retries transient
    /// failures until an event is older than [`max_event_age`](Builder::max_event_age).
    pub fn max_attempts(mut self, n: Option<u32>) -> Self {
        self.submitter.max_attempts = n;
        self
    }

    /// With a spool, how old an event may get while its backend fails before it is dropped
    /// (counted as `expired`; default 7 days).
    pub fn max_event_age(mut self, age: Duration) -> Self {
        self.submitter.max_event_age = age;
        self
    }

    /// With a spool, how long a sink whose backend refused a whole batch (401, 403, 404)
    /// waits before it tries again, keeping its events (default 5 minutes).
    pub fn refused_retry_interval(mut self, interval: Duration) -> Self {
        self.submitter.refused_retry_interval = interval;
        self
    }

    /// How the pause between probes of a failing backend grows (default 0.5 s doubling to
    /// 60 s, ±50 % jitter; never more than a quarter of the outage so far).
    pub fn backoff(mut self, policy: BackoffPolicy) -> Self {
        self.submitter.backoff = policy;
        self
    }

    /// Drop (and count) events whose JSON is larger than this (default 900 KiB).
    pub fn max_event_bytes(mut self, n: usize) -> Self {
        self.max_event_bytes = n;
        self
    }

    /// No event carries a system snapshot older than this (default 1 s; zero reads the host
    /// after every event).
    pub fn snapshot_max_age(mut self, age: Duration) -> Self {
        self.snapshot_max_age = age;
        self
    }

    /// Time limit of one HTTP request (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Time limit for connecting (default 3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How often to check in for fresh configuration (default 5 minutes).
    pub fn checkin_interval(mut self, interval: Duration) -> Self {
        self.checkin_interval = interval;
        self
    }

    /// Whether the runtime checks in for its process-wide flags (default: on). Off, it never
    /// asks the backend for them: not as it starts, not on the
    /// [`checkin_interval`](Builder::checkin_interval), not after an identity change or a
    /// [`RefreshConfiguration`](crate::RefreshConfiguration). The process-wide flags stay
    /// those saved by an earlier run, if any ([`WaitForCheckin`](crate::WaitForCheckin) waits
    /// out its timeout); flags for one user ([`FlagReader::for_user`]) still come from the
    /// backend. For a service that reads only per-user flags, this saves a request per
    /// interval (with PostHog, a billed flag evaluation for the process's own identity).
    pub fn checkins(mut self, enabled: bool) -> Self {
        self.checkins = enabled;
        self
    }

    /// The largest check-in document the runtime reads (default 1 MiB): the body of a check-in
    /// answer, the check-in file, one streamed update. A larger one fails that check-in with
    /// [`TransportError::BodyTooLarge`](crate::TransportError::BodyTooLarge) (or is skipped and
    /// counted in `Stats::stream_errors`); the last good flags stay in use.
    pub fn max_checkin_bytes(mut self, bytes: usize) -> Self {
        self.max_checkin_bytes = bytes;
        self
    }

    /// How many flags every event describes with `$feature/<name>` and
    /// `$active_feature_flags` (default: the first 100 by name, their variants within 64 KiB).
    pub fn feature_limits(mut self, limits: FeatureLimits) -> Self {
        self.feature_limits = limits;
        self
    }

    /// How long one user's flags are cached and how many users at most, for
    /// [`FlagReader::for_user`] (default 60 s, 10,000 users).
    pub fn user_flags(mut self, settings: UserFlagSettings) -> Self {
        self.user_flags = settings;
        self
    }

    /// The HTTP `User-Agent` (default `actix-telemetry/<version>`).
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }

    /// Where the last good check-in and the identity are kept across runs (default: the XDG
    /// state directory, `$XDG_STATE_HOME/actix-telemetry/<prefix>`; `StateLocation::Disabled`
    /// keeps nothing on disk).
    pub fn state(mut self, location: StateLocation) -> Self {
        self.state = location;
        self
    }

    /// Keeps state in `dir`.
    pub fn state_dir(self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.state(StateLocation::At(dir.into()))
    }

    /// Streams configuration from this Server-Sent Events endpoint (see
    /// `docs/configuration.md`): while it is connected it is the source of flags and periodic
    /// check-ins pause; 401 or 403 ends it and check-ins take over.
    pub fn stream(self, settings: StreamSettings) -> Self {
        Builder {
            stream: Some(settings),
            ..self
        }
    }

    /// When `$session_id` rotates (default: after 30 minutes without events or 24 hours in
    /// all). A session id from the correlation data never rotates.
    pub fn session(mut self, policy: SessionPolicy) -> Self {
        self.session = policy;
        self
    }

    /// Which properties the primary endpoint receives (default: all).
    pub fn filter(mut self, filter: PropertyFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Whether each sink keeps its undelivered events in a durable spool in the state
    /// directory (default: on, when there is a state directory). With it on, two sinks whose
    /// names map to one spool directory are refused by [`build`](Builder::build).
    pub fn spool(mut self, enabled: bool) -> Self {
        self.spool = enabled;
        self
    }

    /// The most disk each sink's spool may use (default 128 MiB); past it the oldest spooled
    /// events stop being durable (they are still delivered if the process lives).
    pub fn spool_max_bytes(mut self, bytes: u64) -> Self {
        self.spool_max_bytes = bytes;
        self
    }

    /// Delivers events to another sink too (a local file, the console, a second backend).
    pub fn sink(mut self, sink: SinkConfig) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Turns telemetry off regardless of the environment.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Every setting, checked once: the first that cannot work is the error.
    fn validate(&self) -> Result<(), ConfigError> {
        let mut checks = Checks::default();
        if let Some((key, reason)) = &self.refused_fact {
            checks.fail(format!("fact {key:?}"), ConfigProblem::Value(*reason));
        }
        checks.at_least(
            "max_event_bytes",
            self.max_event_bytes as u64,
            MIN_EVENT_BYTES as u64,
            "the envelope of one event",
        );
        check_queue(&mut checks, "", &self.submitter, self.max_event_bytes);
        for sink in &self.sinks {
            let scope = format!("sink {:?}: ", sink.name);
            check_queue(&mut checks, &scope, &sink.queue, self.max_event_bytes);
        }
        checks.positive_duration("checkin_interval", self.checkin_interval);
        checks.positive_duration("user_flags.ttl", self.user_flags.ttl);
        checks.at_least(
            "user_flags.max_users",
            self.user_flags.max_users as u64,
            1,
            "one user",
        );
        checks.duration("snapshot_max_age", self.snapshot_max_age);
        checks.positive_duration("request_timeout", self.request_timeout);
        checks.positive_duration("connect_timeout", self.connect_timeout);
        checks.at_least(
            "max_pending_events",
            self.max_pending_events as u64,
            1,
            "one event",
        );
        checks.at_least(
            "max_checkin_bytes",
            self.max_checkin_bytes as u64,
            2,
            "an empty JSON object",
        );
        if let AdmissionPolicy::Wait(wait) = self.admission {
            checks.duration("admission", wait);
        }
        checks.positive_duration("session.idle_timeout", self.session.idle_timeout);
        checks.positive_duration("session.max_length", self.session.max_length);
        if let Some(stream) = &self.stream {
            checks.positive_duration("stream.idle_timeout", stream.idle_timeout);
            checks.backoff("stream.backoff", &stream.backoff);
        }
        #[cfg(feature = "srv")]
        if let Some(srv) = &self.srv {
            checks.positive_duration("srv.lookup_timeout", srv.lookup_timeout);
            checks.duration("srv.negative_ttl", srv.negative_ttl);
            checks.backoff("srv.target_backoff", &srv.target_backoff);
        }
        checks.finish()
    }

    fn opted_out(&self, names: &EnvNames) -> bool {
        let disabled_by_env = self.env.get(&names.telemetry).is_some_and(|v| {
            let v = v.trim();
            ["0", "false", "off", "disabled", "no"]
                .iter()
                .any(|off| v.eq_ignore_ascii_case(off))
        });
        let do_not_track = self.env.get("DO_NOT_TRACK").is_some_and(|v| {
            let v = v.trim();
            !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
        });
        self.disabled || disabled_by_env || do_not_track
    }

    /// Starts the runtime on a private actix `System` on a thread of its own (also inside a
    /// running actix `System`, such as actix-web's, which may stop before the runtime has
    /// delivered what it holds). Returns at once: the first check-in happens in the background.
    ///
    /// Errors are about configuration only: an invalid endpoint, a file endpoint that cannot
    /// be opened, an invalid setting, two sinks sharing a spool directory. A malformed correlation document is not an error: it is
    /// logged, ignored, and reported by [`Telemetry::correlation_error`].
    pub fn build(self) -> Result<Telemetry, BuildError> {
        let budget = self.budget();
        self.validate()?;
        let names = EnvNames::with_prefix(&self.env_prefix);
        if self.opted_out(&names) {
            return Ok(Telemetry::new(
                start(None, budget, self.user_flags)?,
                None,
                None,
            ));
        }

        let endpoint = match self
            .env
            .get(&names.transport)
            .filter(|v| !v.trim().is_empty())
            .or_else(|| self.endpoint.clone().map(|text| text.0))
        {
            Some(text) => Endpoint::parse(&text)?,
            None if self.posthog.is_some() => {
                Endpoint::PostHog(self.posthog.clone().ok_or(BuildError::NoEndpoint)?)
            }
            #[cfg(feature = "srv")]
            None if self.srv.is_some() => {
                Endpoint::Srv(self.srv.clone().ok_or(BuildError::NoEndpoint)?)
            }
            // Nothing is sent anywhere nobody chose.
            None => return Err(BuildError::NoEndpoint),
        };
        endpoint.warn_if_cleartext();
        let checkin_file = self
            .env
            .get(&names.checkin_file)
            .filter(|v| !v.trim().is_empty())
            .map(std::path::PathBuf::from);
        let http = HttpSettings {
            request_timeout: self.request_timeout,
            connect_timeout: self.connect_timeout,
            user_agent: self.user_agent.clone(),
            max_checkin_bytes: self.max_checkin_bytes,
        };
        let (state, state_refused) = StateDir::usable(&self.state, &self.env, &self.env_prefix);
        let mut spools = SpoolDirs::new(
            self.spool,
            self.spool_max_bytes,
            state.as_ref(),
            state_refused,
        );
        let mut sinks = vec![SinkParts {
            name: "primary".into(),
            backend: Backend::open(&endpoint, checkin_file, &http)?,
            queue: self.submitter.clone(),
            filter: self.filter.clone(),
            spool: spools.open("primary")?,
        }];
        for sink in &self.sinks {
            sinks.push(SinkParts {
                name: sink.name.clone(),
                backend: Backend::open(&Endpoint::parse(&sink.endpoint)?, None, &http)?,
                queue: sink.queue.clone(),
                filter: sink.filter.clone(),
                spool: spools.open(&sink.name)?,
            });
        }

        let (correlation, correlation_error) = match self
            .env
            .get(&names.correlation)
            .map(|t| Correlation::parse(&t))
        {
            None => (Correlation::default(), None),
            Some(Ok(c)) => (c, None),
            Some(Err(error)) => {
                tracing::warn!(variable = %names.correlation, %error, "ignoring malformed correlation data");
                (Correlation::default(), Some(error))
            }
        };
        let saved_identity = state.as_ref().and_then(StateDir::load_identity);
        let stale_checkin = state.as_ref().and_then(StateDir::load_checkin);
        let identity = Identity::resolve(&self.ids, saved_identity.as_ref(), &correlation);
        let session_fixed = correlation.session_id.is_some();
        let saver = state.map(Saver::new);
        let parts = PipelineParts {
            sinks,
            collator: CollatorConfig {
                identity,
                builder_facts: self.facts,
                correlation_facts: correlation.properties,
                max_event_bytes: self.max_event_bytes,
                feature_limits: self.feature_limits,
                snapshot_max_age: self.snapshot_max_age,
                saver: saver.clone(),
                session: self.session,
                session_fixed,
            },
            checkin_interval: self.checkin_interval,
            checkins: self.checkins,
            stale_checkin,
            saver,
            stream: self.stream.map(|s| (s, http.clone())),
            env: self.env,
            names,
        };
        Ok(Telemetry::new(
            start(Some(parts), budget, self.user_flags)?,
            Some(endpoint),
            correlation_error,
        ))
    }
}

/// The checks of one sink's queue (`scope` names the sink, empty for the primary one).
fn check_queue(checks: &mut Checks, scope: &str, s: &SubmitterConfig, max_event_bytes: usize) {
    let name = |field: &str| format!("{scope}{field}");
    checks.at_least(
        &name("max_batch_events"),
        s.max_batch_events as u64,
        1,
        "one event",
    );
    checks.at_least(
        &name("max_in_flight"),
        s.max_in_flight as u64,
        1,
        "one batch",
    );
    checks.at_least(
        &name("max_queue_events"),
        s.max_queue_events as u64,
        s.max_batch_events as u64,
        "max_batch_events",
    );
    checks.at_least(
        &name("max_queue_bytes"),
        s.max_queue_bytes as u64,
        max_event_bytes as u64,
        "max_event_bytes",
    );
    checks.at_least(
        &name("max_batch_bytes"),
        s.max_batch_bytes as u64,
        max_event_bytes as u64,
        "max_event_bytes",
    );
    checks.positive_duration(&name("flush_interval"), s.flush_interval);
    if let Some(attempts) = s.max_attempts {
        checks.at_least(&name("max_attempts"), u64::from(attempts), 1, "one attempt");
    }
    checks.positive_duration(&name("max_event_age"), s.max_event_age);
    checks.positive_duration(&name("refused_retry_interval"), s.refused_retry_interval);
    checks.backoff(&name("backoff"), &s.backoff);
}

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
    fn new(
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
