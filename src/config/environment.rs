//! What the environment says about a runtime: whether the user opted out, which endpoint the
//! operator chose over the code's, which check-in file to read, and the correlation document a
//! parent process handed down.

use std::path::PathBuf;

use crate::correlation::{Correlation, CorrelationError};
use crate::env::{EnvNames, EnvSource};
use crate::error::BuildError;
use crate::settings::Settings;
use crate::transport::Endpoint;

/// Whether telemetry is off: by the builder, `{PREFIX}_IDS_TELEMETRY` or `DO_NOT_TRACK`.
pub(super) fn opted_out(settings: &Settings, names: &EnvNames) -> bool {
    let disabled_by_env = settings.env.get(&names.telemetry).is_some_and(|v| {
        let v = v.trim();
        ["0", "false", "off", "disabled", "no"]
            .iter()
            .any(|off| v.eq_ignore_ascii_case(off))
    });
    let do_not_track = settings.env.get("DO_NOT_TRACK").is_some_and(|v| {
        let v = v.trim();
        !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
    });
    settings.disabled || disabled_by_env || do_not_track
}

/// The primary endpoint: `{PREFIX}_IDS_TRANSPORT` when set, else the builder's endpoint, its
/// PostHog settings or its SRV settings, in that order.
pub(super) fn primary_endpoint(
    settings: &Settings,
    names: &EnvNames,
) -> Result<Endpoint, BuildError> {
    let text = settings
        .env
        .get(&names.transport)
        .filter(|v| !v.trim().is_empty())
        .or_else(|| settings.endpoint.clone().map(|text| text.0));
    if let Some(text) = text {
        return Endpoint::parse(&text);
    }
    if let Some(posthog) = &settings.posthog {
        return Ok(Endpoint::PostHog(posthog.clone()));
    }
    #[cfg(feature = "srv")]
    if let Some(srv) = &settings.srv {
        return Ok(Endpoint::Srv(srv.clone()));
    }
    // Nothing is sent anywhere nobody chose.
    Err(BuildError::NoEndpoint)
}

/// The check-in file named by `{PREFIX}_IDS_CHECKIN_FILE`, if any.
pub(super) fn checkin_file(env: &EnvSource, names: &EnvNames) -> Option<PathBuf> {
    env.get(&names.checkin_file)
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from)
}

/// The correlation document, and why it was ignored if it is malformed (logged here).
pub(super) fn correlation(
    env: &EnvSource,
    names: &EnvNames,
) -> (Correlation, Option<CorrelationError>) {
    match env.get(&names.correlation).map(|t| Correlation::parse(&t)) {
        None => (Correlation::default(), None),
        Some(Ok(c)) => (c, None),
        Some(Err(error)) => {
            tracing::warn!(variable = %names.correlation, %error, "ignoring malformed correlation data");
            (Correlation::default(), Some(error))
        }
    }
}
