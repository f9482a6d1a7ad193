//! The configuration of one runtime, resolved in one place: [`Config::resolve`] checks every
//! setting ([`rules`]), reads the environment ([`environment`]: the opt-out, the endpoint
//! override, the check-in file, the correlation document), opens the sinks and their spools
//! ([`sinks`]) and settles the identity, so that what the actors are started with is complete
//! and valid.

mod environment;
mod rules;
mod sinks;

use std::sync::Arc;

use crate::actors::collator::CollatorConfig;
use crate::admission::Budget;
use crate::correlation::{Correlation, CorrelationError};
use crate::env::EnvNames;
use crate::error::BuildError;
use crate::identity::Identity;
use crate::runtime::{PipelineParts, SinkParts};
use crate::settings::Settings;
use crate::state::{Saver, StateDir};
use crate::transport::{Endpoint, HttpSettings};
use crate::user_flags::UserFlagSettings;

use sinks::SpoolRoot;

/// A runtime's configuration, resolved and checked.
pub(crate) struct Config {
    /// How many events may wait for the runtime, and what happens past that.
    pub budget: Arc<Budget>,
    pub user_flags: UserFlagSettings,
    /// `None` when telemetry is off: only the Recorder runs, and it drops every event.
    pub enabled: Option<Enabled>,
}

/// What a runtime that is on is started with.
pub(crate) struct Enabled {
    pub endpoint: Endpoint,
    pub parts: PipelineParts,
    /// Why the correlation document was ignored, if it was malformed.
    pub correlation_error: Option<CorrelationError>,
}

impl Config {
    /// Resolves `settings` against the environment. The first setting that cannot work is the
    /// error ([`BuildError::InvalidConfig`], naming it), and is found before anything is read
    /// or opened.
    pub fn resolve(settings: Settings) -> Result<Config, BuildError> {
        rules::check(&settings)?;
        let budget = Arc::new(Budget::new(settings.max_pending_events, settings.admission));
        let user_flags = settings.user_flags;
        let names = EnvNames::with_prefix(&settings.env_prefix);
        let enabled = if environment::opted_out(&settings, &names) {
            None
        } else {
            Some(Enabled::resolve(settings, names)?)
        };
        Ok(Config {
            budget,
            user_flags,
            enabled,
        })
    }
}

impl Enabled {
    /// The endpoint, the sinks, the correlation and the identity of a runtime that is on.
    fn resolve(settings: Settings, names: EnvNames) -> Result<Enabled, BuildError> {
        let endpoint = environment::primary_endpoint(&settings, &names)?;
        endpoint.warn_if_cleartext();
        let checkin_file = environment::checkin_file(&settings.env, &names);
        let http = sinks::http_settings(&settings);
        let (state, refused) =
            StateDir::usable(&settings.state, &settings.env, &settings.env_prefix);
        let root = SpoolRoot {
            state: state.as_ref(),
            refused,
        };
        let sinks = sinks::open_sinks(&settings, &endpoint, checkin_file, &http, root)?;
        let (correlation, correlation_error) = environment::correlation(&settings.env, &names);
        let parts = pipeline_parts(settings, names, sinks, state, correlation, http);
        Ok(Enabled {
            endpoint,
            parts,
            correlation_error,
        })
    }
}

/// What the pipeline actors are built from: the identity settled from the builder's ids, the
/// ids saved by an earlier run and the correlation's, and the flags that run saved.
fn pipeline_parts(
    settings: Settings,
    names: EnvNames,
    sinks: Vec<SinkParts>,
    state: Option<StateDir>,
    correlation: Correlation,
    http: HttpSettings,
) -> PipelineParts {
    let saved_identity = state.as_ref().and_then(StateDir::load_identity);
    let stale_checkin = state.as_ref().and_then(StateDir::load_checkin);
    let identity = Identity::resolve(&settings.ids, saved_identity.as_ref(), &correlation);
    let session_fixed = correlation.session_id.is_some();
    let saver = state.map(Saver::new);
    PipelineParts {
        sinks,
        collator: CollatorConfig {
            identity,
            builder_facts: settings.facts,
            correlation_facts: correlation.properties,
            max_event_bytes: settings.max_event_bytes,
            feature_limits: settings.feature_limits,
            snapshot_max_age: settings.snapshot_max_age,
            saver: saver.clone(),
            session: settings.session,
            session_fixed,
        },
        checkin_interval: settings.checkin_interval,
        checkins: settings.checkins,
        stale_checkin,
        saver,
        stream: settings.stream.map(|s| (s, http)),
        env: settings.env,
        names,
    }
}
