//! PostHog as a wire protocol: events to capture v0 (`POST {host}/batch/`) or capture v1
//! (`POST {host}/i/v1/analytics/events`), feature flags from `POST {host}/flags/?v=2`.
//!
//! The events are the same [`EncodedEvent`]s every backend gets; PostHog's shape differs from
//! the "ids" one only in the first key (`event` instead of `name`), so a body is still a
//! sequence of copies. What each status means for the batch is the same for both capture
//! versions ([`classify`]); the Submitter acts on it as for any backend (backoff with
//! `Retry-After` as a floor, splitting on 400 and 413, pausing on a refusal). Capture v1 also
//! answers per event, which comes back as [`DeliveryOutcome::Partial`].

mod capture_v0;
mod capture_v1;
mod compression;
mod flags;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use url::Url;

use super::client::SharedClient;
use super::http::{HttpSettings, describe};
use super::retry_after::parse_retry_after;
use super::{DeliveryOutcome, TransportError, off_thread};
use crate::checkin::{Checkin, CheckinRequest};
use crate::error::BuildError;
use crate::event::EncodedEvent;

pub use compression::Compression;

/// Bodies smaller than this are built and compressed on the actor thread.
const INLINE_BODY_BYTES: usize = 64 * 1024;

/// Which capture API events go to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CaptureVersion {
    /// `POST {host}/batch/`: the key in the body, gzip only, one answer for the whole batch.
    #[default]
    V0,
    /// `POST {host}/i/v1/analytics/events`: the key in `Authorization`, request headers for
    /// attempts and clock skew, an answer per event.
    V1,
}

/// How to reach a PostHog project. Its `Debug` output shows the API key as `***`.
///
/// ```
/// use actix_telemetry::{CaptureVersion, Compression, PostHogSettings};
/// let settings = PostHogSettings::new("phc_project_key", "https://us.i.posthog.com")
///     .unwrap()
///     .capture(CaptureVersion::V1)
///     .compression(Compression::Zstd);
/// assert!(!format!("{settings:?}").contains("phc_project_key"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PostHogSettings {
    /// The project API key (`phc_…`), never a personal key.
    pub api_key: String,
    /// The ingestion host, such as `https://us.i.posthog.com` or a self-hosted URL; a path on
    /// it is kept as a prefix of PostHog's paths.
    pub host: Url,
    /// Which capture API events go to.
    pub capture: CaptureVersion,
    /// How capture bodies are compressed (capture v0 takes only gzip).
    pub compression: Compression,
    /// Marks the events as an import of past data (`historical_migration: true`).
    pub historical_migration: bool,
}

impl std::fmt::Debug for PostHogSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostHogSettings")
            .field("api_key", &"***")
            .field("host", &super::redacted(&self.host))
            .field("capture", &self.capture)
            .field("compression", &self.compression)
            .field("historical_migration", &self.historical_migration)
            .finish()
    }
}

impl PostHogSettings {
    /// Capture v0, uncompressed, to `host` (`http(s)://…`) with `api_key`.
    pub fn new(api_key: impl Into<String>, host: &str) -> Result<Self, BuildError> {
        let api_key = api_key.into();
        let host_text = host.trim();
        let invalid = |reason: String| BuildError::InvalidEndpoint {
            endpoint: super::redacted_text(host_text),
            reason,
        };
        let lower = host_text.to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(invalid(
                "a PostHog host is an http:// or https:// URL".into(),
            ));
        }
        let host = Url::parse(host_text).map_err(|e| invalid(e.to_string()))?;
        if host.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host".into()));
        }
        let settings = PostHogSettings {
            api_key,
            host,
            capture: CaptureVersion::V0,
            compression: Compression::None,
            historical_migration: false,
        };
        Ok(settings)
    }

    /// Which capture API events go to.
    pub fn capture(mut self, capture: CaptureVersion) -> Self {
        self.capture = capture;
        self
    }

    /// How capture bodies are compressed.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Marks the events as an import of past data.
    pub fn historical_migration(mut self, on: bool) -> Self {
        self.historical_migration = on;
        self
    }

    /// Parses the endpoint form
    /// `posthog+https://host[/prefix]?api_key=…[&capture=v0|v1][&compression=none|gzip|deflate|br|zstd][&historical_migration=true]`.
    pub(crate) fn from_endpoint(text: &str) -> Result<Self, BuildError> {
        let invalid = |reason: &str| BuildError::InvalidEndpoint {
            endpoint: super::redacted_text(text),
            reason: reason.to_string(),
        };
        let inner = text
            .trim()
            .get("posthog+".len()..)
            .ok_or_else(|| invalid("not a posthog+ endpoint"))?;
        let mut url = Url::parse(inner).map_err(|e| invalid(&e.to_string()))?;
        let mut api_key = None;
        let mut capture = CaptureVersion::V0;
        let mut compression = Compression::None;
        let mut historical_migration = false;
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "api_key" | "token" => api_key = Some(value.into_owned()),
                "capture" => {
                    capture = match value.to_ascii_lowercase().as_str() {
                        "v0" | "0" => CaptureVersion::V0,
                        "v1" | "1" => CaptureVersion::V1,
                        _ => return Err(invalid("capture is v0 or v1")),
                    }
                }
                "compression" => {
                    compression = Compression::from_token(&value)
                        .ok_or_else(|| invalid("compression is none, gzip, deflate, br or zstd"))?;
                }
                "historical_migration" => {
                    historical_migration = match value.to_ascii_lowercase().as_str() {
                        "true" | "1" | "yes" => true,
                        "false" | "0" | "no" => false,
                        _ => return Err(invalid("historical_migration is true or false")),
                    }
                }
                _ => return Err(invalid(&format!("unknown parameter {name:?}"))),
            }
        }
        let Some(api_key) = api_key else {
            return Err(invalid("a posthog+ endpoint needs ?api_key=…"));
        };
        url.set_query(None);
        url.set_fragment(None);
        Ok(PostHogSettings::new(api_key, url.as_str())
            .map_err(|_| invalid("the host is not an http(s) URL with a host"))?
            .capture(capture)
            .compression(compression)
            .historical_migration(historical_migration))
    }

    /// The endpoint form [`Endpoint::parse`](super::Endpoint::parse) reads back.
    pub fn to_endpoint(&self) -> String {
        let mut url = self.host.clone();
        url.query_pairs_mut()
            .append_pair("api_key", &self.api_key)
            .append_pair(
                "capture",
                match self.capture {
                    CaptureVersion::V0 => "v0",
                    CaptureVersion::V1 => "v1",
                },
            )
            .append_pair("compression", self.compression.token().unwrap_or("none"));
        if self.historical_migration {
            url.query_pairs_mut()
                .append_pair("historical_migration", "true");
        }
        format!("posthog+{url}")
    }

    /// Checks what the URL alone cannot: a key, and an encoding the capture API takes.
    pub(crate) fn check(&self) -> Result<(), BuildError> {
        let invalid = |reason: &str| BuildError::InvalidEndpoint {
            endpoint: super::redacted(&self.host),
            reason: reason.to_string(),
        };
        let key = self.api_key.trim();
        if key.is_empty() {
            return Err(invalid("the PostHog API key is empty"));
        }
        if key.len() > 64 || !key.is_ascii() || key.contains('\0') {
            return Err(invalid("a PostHog API key is at most 64 ASCII characters"));
        }
        if key.starts_with("phx_") {
            return Err(invalid(
                "phx_ keys are personal API keys; capture takes the project key (phc_…)",
            ));
        }
        if self.capture == CaptureVersion::V0
            && !matches!(self.compression, Compression::None | Compression::Gzip)
        {
            return Err(invalid("capture v0 takes only gzip compression"));
        }
        Ok(())
    }

    /// `{host}{path}`, the host's own path kept as a prefix.
    fn url(&self, path: &str) -> Url {
        let mut url = self.host.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{prefix}{path}"));
        url.set_query(None);
        url
    }
}

/// The PostHog backend.
#[derive(Clone, Debug)]
pub(crate) struct PostHogBackend {
    client: SharedClient,
    http: HttpSettings,
    settings: Arc<PostHogSettings>,
    capture_url: Url,
    flags_url: Url,
    /// Capture v1 requests still to be answered for good, by their first event.
    requests: Arc<capture_v1::Requests>,
}

impl PostHogBackend {
    pub fn new(settings: &PostHogSettings, http: &HttpSettings) -> Result<Self, BuildError> {
        settings.check()?;
        let capture_url = match settings.capture {
            CaptureVersion::V0 => settings.url("/batch/"),
            CaptureVersion::V1 => settings.url("/i/v1/analytics/events"),
        };
        let mut flags_url = settings.url("/flags/");
        flags_url.set_query(Some("v=2"));
        Ok(PostHogBackend {
            client: SharedClient::new(http, None)?,
            http: http.clone(),
            settings: Arc::new(settings.clone()),
            capture_url,
            flags_url,
            requests: Arc::default(),
        })
    }

    /// The same backend with a fresh connection pool (for every clone, the configuration
    /// stream's too).
    pub fn rebuilt(&self) -> Self {
        self.client.rebuild();
        self.clone()
    }

    pub fn shared_client(&self) -> &SharedClient {
        &self.client
    }

    pub async fn deliver(&self, events: Arc<[EncodedEvent]>) -> DeliveryOutcome {
        if events.is_empty() {
            return DeliveryOutcome::Delivered;
        }
        match self.settings.capture {
            CaptureVersion::V0 => capture_v0::deliver(self, events).await,
            CaptureVersion::V1 => capture_v1::deliver(self, events).await,
        }
    }

    pub async fn check_in(&self, request: &CheckinRequest) -> Result<Checkin, TransportError> {
        flags::fetch(self, request).await
    }
}

/// Builds a body on the actor thread when small, on the blocking pool when large.
async fn build_body(
    size: usize,
    make: impl FnOnce() -> Result<Vec<u8>, String> + Send + 'static,
) -> Result<Vec<u8>, String> {
    if size < INLINE_BODY_BYTES {
        make()
    } else {
        off_thread(make).await.map_err(|e| e.to_string())?
    }
}

/// The `Retry-After` of `response`, if it has one that parses.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// A request that did not complete: retried later.
fn failed(error: reqwest::Error) -> DeliveryOutcome {
    DeliveryOutcome::Retry {
        after: None,
        reason: describe(error),
    }
}

/// What a status means for a whole capture batch: 2xx delivered; 408, 429 and 5xx retried (with
/// `Retry-After` as a floor); 400 and 413 split until the offending event stands alone and is
/// dropped; every other 4xx (401, 402, 403, 404, 415, …) a refusal that retrying cannot fix.
fn classify(status: StatusCode, retry_after: Option<Duration>) -> DeliveryOutcome {
    match status.as_u16() {
        200..=299 => DeliveryOutcome::Delivered,
        400 => DeliveryOutcome::Rejected { status: 400 },
        413 => DeliveryOutcome::TooLarge,
        408 | 429 | 500..=599 => DeliveryOutcome::Retry {
            after: retry_after,
            reason: format!("HTTP {status}"),
        },
        // Redirects are not followed: the events did not arrive.
        100..=199 | 300..=399 => DeliveryOutcome::Retry {
            after: retry_after,
            reason: format!("unexpected HTTP {status}"),
        },
        code => DeliveryOutcome::Refused { status: code },
    }
}

/// Appends the end of a capture body, shared by v0 and v1: the `historical_migration` flag if
/// asked, then `"batch":[…]}` with every event in PostHog's shape.
fn write_batch(out: &mut Vec<u8>, historical_migration: bool, events: &[EncodedEvent]) {
    if historical_migration {
        out.extend_from_slice(b"\"historical_migration\":true,");
    }
    out.extend_from_slice(b"\"batch\":[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        event.write_posthog_to(out);
    }
    out.extend_from_slice(b"]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let c = |s: u16| classify(StatusCode::from_u16(s).unwrap(), None);
        assert_eq!(c(200), DeliveryOutcome::Delivered);
        assert_eq!(c(400), DeliveryOutcome::Rejected { status: 400 });
        assert_eq!(c(413), DeliveryOutcome::TooLarge);
        for retried in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(c(retried), DeliveryOutcome::Retry { .. }),
                "{retried}"
            );
        }
        for refused in [401, 402, 403, 404, 415, 422] {
            assert_eq!(c(refused), DeliveryOutcome::Refused { status: refused });
        }
    }

    #[test]
    fn endpoint_form_round_trips_and_hides_the_key() {
        let s = PostHogSettings::from_endpoint(
            "posthog+https://ph.example.com/ingest?api_key=phc_k&capture=v1&compression=br&historical_migration=true",
        )
        .unwrap();
        assert_eq!(s.api_key, "phc_k");
        assert_eq!(s.capture, CaptureVersion::V1);
        assert_eq!(s.compression, Compression::Brotli);
        assert!(s.historical_migration);
        assert_eq!(
            s.url("/batch/").as_str(),
            "https://ph.example.com/ingest/batch/"
        );
        assert_eq!(PostHogSettings::from_endpoint(&s.to_endpoint()).unwrap(), s);
        assert!(!format!("{s:?}").contains("phc_k"));
        let plain = PostHogSettings::new("phc_k", "https://us.i.posthog.com").unwrap();
        assert_eq!(
            plain.url("/flags/").as_str(),
            "https://us.i.posthog.com/flags/"
        );
        for bad in [
            "posthog+https://h",
            "posthog+https://h?api_key=k&capture=v9",
            "posthog+https://h?api_key=k&compression=lz4",
            "posthog+ftp://h?api_key=k",
            "posthog+https://h?api_key=k&colour=red",
        ] {
            assert!(PostHogSettings::from_endpoint(bad).is_err(), "{bad}");
        }
        let error =
            PostHogSettings::from_endpoint("posthog+https://h?api_key=phc_secret&capture=x")
                .unwrap_err()
                .to_string();
        assert!(!error.contains("phc_secret"), "{error}");
    }

    #[test]
    fn checks() {
        let s = |key: &str| PostHogSettings::new(key, "https://h").unwrap();
        assert!(s("phc_k").check().is_ok());
        assert!(s(" ").check().is_err());
        assert!(s("phx_personal").check().is_err());
        assert!(s(&"k".repeat(65)).check().is_err());
        assert!(s("phc_k").compression(Compression::Zstd).check().is_err());
        assert!(
            s("phc_k")
                .capture(CaptureVersion::V1)
                .compression(Compression::Zstd)
                .check()
                .is_ok()
        );
    }
}
