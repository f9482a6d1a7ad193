//! Opening the sinks of one runtime: the primary endpoint's backend and every other sink's,
//! each with its spool in the state directory.

use std::path::PathBuf;

use crate::error::BuildError;
use crate::runtime::SinkParts;
use crate::settings::Settings;
use crate::spool::SpoolDirs;
use crate::state::StateDir;
use crate::transport::{Backend, Endpoint, HttpSettings};

/// The HTTP settings every backend of the runtime shares.
pub(super) fn http_settings(settings: &Settings) -> HttpSettings {
    HttpSettings {
        request_timeout: settings.request_timeout,
        connect_timeout: settings.connect_timeout,
        user_agent: settings.user_agent.clone(),
        max_checkin_bytes: settings.max_checkin_bytes,
    }
}

/// Where the sinks' spools may live: the state directory, and whether it was refused.
pub(super) struct SpoolRoot<'a> {
    pub state: Option<&'a StateDir>,
    pub refused: bool,
}

/// The primary sink (named `primary`, the only one that checks in, reading `checkin_file` if
/// any) and then every other sink, in the order they were added.
pub(super) fn open_sinks(
    settings: &Settings,
    primary: &Endpoint,
    checkin_file: Option<PathBuf>,
    http: &HttpSettings,
    root: SpoolRoot<'_>,
) -> Result<Vec<SinkParts>, BuildError> {
    let mut spools = SpoolDirs::new(
        settings.spool,
        settings.spool_max_bytes,
        root.state,
        root.refused,
    );
    let mut sinks = vec![SinkParts {
        name: "primary".into(),
        backend: Backend::open(primary, checkin_file, http)?,
        queue: settings.submitter.clone(),
        filter: settings.filter.clone(),
        spool: spools.open("primary")?,
    }];
    for sink in &settings.sinks {
        sinks.push(SinkParts {
            name: sink.name.clone(),
            backend: Backend::open(&Endpoint::parse(&sink.endpoint)?, None, http)?,
            queue: sink.queue.clone(),
            filter: sink.filter.clone(),
            spool: spools.open(&sink.name)?,
        });
    }
    Ok(sinks)
}
