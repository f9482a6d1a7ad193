//! Every setting of one runtime as the [`Builder`](crate::Builder) collects it, with its
//! default: plain data, read once by [`crate::config`] to resolve and check the configuration.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::admission::AdmissionPolicy;
use crate::env::EnvSource;
use crate::features::FeatureLimits;
use crate::filter::PropertyFilter;
use crate::identity::ExplicitIds;
use crate::json::RefusedValue;
use crate::queue_config::SubmitterConfig;
use crate::session::SessionPolicy;
use crate::sink_config::SinkConfig;
use crate::state::StateLocation;
use crate::stream::StreamSettings;
use crate::transport::PostHogSettings;
#[cfg(feature = "srv")]
use crate::transport::SrvSettings;
use crate::user_flags::UserFlagSettings;
use crate::{LIB_NAME, LIB_VERSION};

/// Events an [`EventSender`](crate::EventSender) may have sent that the runtime has not taken
/// in yet: a few hundred bytes each, so a few MiB in all, and about 30 ms of the runtime's pace
/// on this kind of machine.
const DEFAULT_MAX_PENDING_EVENTS: usize = 10_000;

/// An endpoint as given; its `Debug` output hides passwords and API keys in it.
#[derive(Clone)]
pub(crate) struct EndpointText(pub(crate) String);

impl std::fmt::Debug for EndpointText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::transport::redacted_endpoint(&self.0))
    }
}

/// The settings of one runtime; see the [`Builder`](crate::Builder) for each.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) endpoint: Option<EndpointText>,
    pub(crate) posthog: Option<PostHogSettings>,
    #[cfg(feature = "srv")]
    pub(crate) srv: Option<SrvSettings>,
    pub(crate) env: EnvSource,
    pub(crate) env_prefix: String,
    pub(crate) ids: ExplicitIds,
    pub(crate) facts: Map<String, Value>,
    pub(crate) submitter: SubmitterConfig,
    pub(crate) max_event_bytes: usize,
    pub(crate) snapshot_max_age: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) checkin_interval: Duration,
    pub(crate) checkins: bool,
    pub(crate) user_agent: String,
    pub(crate) max_checkin_bytes: usize,
    pub(crate) feature_limits: FeatureLimits,
    pub(crate) user_flags: UserFlagSettings,
    pub(crate) state: StateLocation,
    pub(crate) stream: Option<StreamSettings>,
    pub(crate) session: SessionPolicy,
    pub(crate) filter: PropertyFilter,
    pub(crate) sinks: Vec<SinkConfig>,
    pub(crate) spool: bool,
    pub(crate) spool_max_bytes: u64,
    pub(crate) max_pending_events: usize,
    pub(crate) admission: AdmissionPolicy,
    pub(crate) disabled: bool,
    /// A fact whose value was refused: reported by `build`.
    pub(crate) refused_fact: Option<(String, RefusedValue)>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
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
