//! Where events go and configuration comes from: the File and HTTP backends, the
//! configuration stream's connection, and the outcome of a delivery as the Submitter needs to
//! know it.
//!
//! The Transport actor (`actors/transport.rs`) owns a `Backend` and does nothing else than
//! hand it batches and check-ins; everything about the wire lives here.

mod body;
mod client;
mod file;
mod http;
mod posthog;
mod retry_after;
#[cfg(feature = "srv")]
mod srv;
pub(crate) mod sse;
mod stream;
mod zstd_scratch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::checkin::{Checkin, CheckinDocumentError, CheckinRequest};
use crate::error::BuildError;
use crate::event::EncodedEvent;

pub use body::DEFAULT_MAX_CHECKIN_BYTES;
pub(crate) use file::FileBackend;
#[cfg(feature = "srv")]
pub(crate) use http::HttpClient;
pub(crate) use http::{HttpBackend, HttpSettings};
pub(crate) use posthog::PostHogBackend;
pub use posthog::{CaptureVersion, Compression, PostHogSettings};
#[cfg(feature = "srv")]
pub(crate) use srv::SrvBackend;
#[cfg(feature = "srv")]
pub use srv::SrvSettings;
pub(crate) use stream::{Arrivals, OpenError, StreamBody, StreamConnector};

/// Where the runtime sends events, parsed from the configured endpoint. Its `Debug` output
/// shows a URL's password as `***`.
#[derive(Clone, PartialEq)]
pub enum Endpoint {
    /// Append one JSON batch per line to this file (`/dev/stdout` works).
    File(PathBuf),
    /// An "ids" protocol backend; the path of the URL is replaced by `/check-in` and
    /// `/events/batch`.
    Http(Url),
    /// "ids" protocol backends discovered through a DNS SRV record (`Builder::srv`, feature
    /// `srv`).
    #[cfg(feature = "srv")]
    Srv(SrvSettings),
    /// PostHog's capture and flags APIs (`posthog+https://host?api_key=…`).
    PostHog(PostHogSettings),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::File(path) => f.debug_tuple("File").field(path).finish(),
            Endpoint::Http(url) => f.debug_tuple("Http").field(&redacted(url)).finish(),
            #[cfg(feature = "srv")]
            Endpoint::Srv(settings) => f.debug_tuple("Srv").field(settings).finish(),
            Endpoint::PostHog(settings) => f.debug_tuple("PostHog").field(settings).finish(),
        }
    }
}

/// `url` as text with its password, if any, replaced by `***`.
pub(crate) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Only fails for URLs that cannot have a password, which this one has.
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// An endpoint as given, fit to show: passwords and API keys in it replaced by `***`.
pub(crate) fn redacted_endpoint(text: &str) -> String {
    redacted_text(text)
}

/// `text` (an endpoint as given) with the password of a URL in it replaced by `***`: the
/// part between `scheme://user:` and `@`.
fn redacted_text(text: &str) -> String {
    redacted_keys(&redacted_password(text))
}

/// `text` with the value of every `api_key=` or `token=` query parameter replaced by `***`.
fn redacted_keys(text: &str) -> String {
    let Some(query_at) = text.find('?') else {
        return text.to_string();
    };
    let (head, query) = text.split_at(query_at + 1);
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name == "api_key" || name == "token" => format!("{name}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}{}", pairs.join("&"))
}

fn redacted_password(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_string();
    };
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    let authority = &text[start..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}***{}",
            &text[..start],
            &authority[..=colon],
            &text[start + at..]
        ),
        _ => text.to_string(),
    }
}

impl Endpoint {
    /// Logs a warning when events would cross a network in clear text: `http://` to a host
    /// other than loopback.
    pub(crate) fn warn_if_cleartext(&self) {
        let url = match self {
            Endpoint::Http(url) => url,
            Endpoint::PostHog(settings) => &settings.host,
            _ => return,
        };
        if url.scheme() == "http" && !is_loopback(url) {
            tracing::warn!(
                endpoint = %redacted(url),
                "events go to a non-loopback host over plain http; use https"
            );
        }
    }

    /// Parses `file:///…`, `http(s)://…`, `posthog+http(s)://…?api_key=…` (see
    /// [`PostHogSettings`]), or a plain path (taken as a file).
    pub fn parse(endpoint: &str) -> Result<Endpoint, BuildError> {
        let invalid = |reason: &str| BuildError::InvalidEndpoint {
            endpoint: redacted_text(endpoint),
            reason: reason.to_string(),
        };
        let trimmed = endpoint.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("posthog+") {
            return Ok(Endpoint::PostHog(PostHogSettings::from_endpoint(trimmed)?));
        }
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let url = Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid("the URL has no host"));
            }
            return Ok(Endpoint::Http(url));
        }
        if lower.starts_with("file:") {
            let url = Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
            let path = url
                .to_file_path()
                .map_err(|()| invalid("not a local file URL"))?;
            return Ok(Endpoint::File(path));
        }
        if trimmed.contains("://") {
            return Err(invalid(
                "unsupported scheme (use file://, http://, https:// or posthog+https://)",
            ));
        }
        Ok(Endpoint::File(PathBuf::from(trimmed)))
    }
}

/// Whether `url`'s host is a loopback address or `localhost`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

/// What happened to a batch, as the Submitter acts on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DeliveryOutcome {
    /// Acknowledged: the events are delivered.
    Delivered,
    /// A transient failure (connection, timeout, 408, 429, 5xx, full disk): try again later,
    /// not before `after` if the backend said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// 400: something in the batch is malformed; split it to find the poison event.
    Rejected { status: u16 },
    /// 413: the batch is too large; split it.
    TooLarge,
    /// A final refusal of the whole batch (401, 403, 404, other 4xx): retrying cannot help.
    Refused { status: u16 },
    /// The backend answered for each event (PostHog capture v1): the events at `retry`
    /// (indices into the batch) go again, alone and not before `after`; those at `dropped` were
    /// refused for good and are counted; every other one is delivered.
    Partial {
        retry: Vec<usize>,
        dropped: Vec<usize>,
        after: Option<Duration>,
    },
}

/// Why a check-in failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request did not complete (connection, timeout, TLS).
    #[error("check-in request failed: {0}")]
    Http(#[source] reqwest::Error),
    /// The backend answered with a status other than 2xx.
    #[error("check-in answered with HTTP status {0}")]
    Status(u16),
    /// The document was malformed.
    #[error(transparent)]
    Document(#[from] CheckinDocumentError),
    /// The check-in file could not be read.
    #[error("cannot read check-in file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The answer's body was larger than its limit (`max_checkin_bytes` for a check-in, 64 KiB
    /// for the answer to a batch): it is not read further.
    #[error("the answer's body is larger than the {limit}-byte limit")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The check-in request could not be encoded.
    #[error("cannot encode the check-in request: {0}")]
    Encode(#[source] serde_json::Error),
    /// A blocking task was cancelled because the runtime is stopping.
    #[error("the transport is stopping")]
    Stopping,
    /// The check-in panicked (a bug); it was caught and counted in `Stats::panics`.
    #[error("the check-in panicked: {0}")]
    Panicked(String),
}

/// A configured backend. Cheap to clone: clones share the connection pool or the open file.
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    File(FileBackend),
    Http(HttpBackend),
    #[cfg(feature = "srv")]
    Srv(SrvBackend),
    PostHog(PostHogBackend),
}

impl Backend {
    /// Opens the endpoint. A file that cannot be opened is an error, never a fallback.
    pub fn open(
        endpoint: &Endpoint,
        checkin_file: Option<PathBuf>,
        http: &HttpSettings,
    ) -> Result<Backend, BuildError> {
        match endpoint {
            Endpoint::File(path) => Ok(Backend::File(FileBackend::open(
                path,
                checkin_file,
                http.max_checkin_bytes,
            )?)),
            Endpoint::Http(url) => Ok(Backend::Http(HttpBackend::new(url, http)?)),
            #[cfg(feature = "srv")]
            Endpoint::Srv(settings) => Ok(Backend::Srv(SrvBackend::new(settings, http)?)),
            Endpoint::PostHog(settings) => {
                Ok(Backend::PostHog(PostHogBackend::new(settings, http)?))
            }
        }
    }

    /// The backend with new connections (used when the Transport actor restarts). An HTTP
    /// client is rebuilt in place, for every clone and for the configuration stream that
    /// shares it. A backend that cannot be rebuilt keeps its current state.
    pub fn rebuilt(&self) -> Backend {
        match self {
            Backend::File(f) => Backend::File(f.reopened()),
            Backend::Http(h) => Backend::Http(h.rebuilt()),
            #[cfg(feature = "srv")]
            Backend::Srv(s) => Backend::Srv(s.rebuilt()),
            Backend::PostHog(p) => Backend::PostHog(p.rebuilt()),
        }
    }

    pub async fn deliver(&self, events: Arc<[EncodedEvent]>) -> DeliveryOutcome {
        match self {
            Backend::File(f) => f.deliver(events).await,
            Backend::Http(h) => h.deliver(events).await,
            #[cfg(feature = "srv")]
            Backend::Srv(s) => s.deliver(events).await,
            Backend::PostHog(p) => p.deliver(events).await,
        }
    }

    pub async fn check_in(&self, request: &CheckinRequest) -> Result<Checkin, TransportError> {
        match self {
            Backend::File(f) => f.check_in().await,
            Backend::Http(h) => h.check_in(request).await,
            #[cfg(feature = "srv")]
            Backend::Srv(s) => s.check_in(request).await,
            Backend::PostHog(p) => p.check_in(request).await,
        }
    }

    /// Whether the configuration source changed since the last check-in read it (the File
    /// backend's check-in document; other backends are asked on their schedule instead).
    pub async fn checkin_changed(&self) -> bool {
        match self {
            Backend::File(f) => f.checkin_changed().await,
            _ => false,
        }
    }

    /// Whether this backend talks to the network (and so can have a poisoned client).
    pub fn is_network(&self) -> bool {
        !matches!(self, Backend::File(_))
    }

    /// DNS lookups of SRV discovery so far (0 for other backends).
    pub fn srv_lookups(&self) -> u64 {
        match self {
            #[cfg(feature = "srv")]
            Backend::Srv(s) => s.lookups(),
            _ => 0,
        }
    }

    /// SRV targets that discovery ignored so far (0 for other backends).
    pub fn srv_rejected_targets(&self) -> u64 {
        match self {
            #[cfg(feature = "srv")]
            Backend::Srv(s) => s.rejected_targets(),
            _ => 0,
        }
    }
}

/// `error` with the password of its URL, if any, replaced by `***`: reqwest's errors name the
/// URL they were about, and they end up in logs and in [`TransportError::Http`].
pub(crate) fn redacted_error(mut error: reqwest::Error) -> reqwest::Error {
    if let Some(url) = error.url_mut()
        && url.password().is_some()
    {
        let _ = url.set_password(Some("***"));
    }
    error
}

/// A request that did not complete, as a [`TransportError`], its URL's password redacted.
pub(crate) fn http_error(error: reqwest::Error) -> TransportError {
    TransportError::Http(redacted_error(error))
}

/// Documents smaller than this are parsed on the actor thread (well under a millisecond);
/// larger ones, up to `max_checkin_bytes`, on the blocking pool, so that a large check-in never
/// holds up the thread that serves events and flag reads.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// Parses a check-in document with `parse`, off the actor thread when it is large.
async fn parse_document<T: Send + 'static>(
    bytes: Vec<u8>,
    parse: fn(&[u8]) -> Result<T, CheckinDocumentError>,
) -> Result<T, TransportError> {
    if bytes.len() < INLINE_PARSE_BYTES {
        return Ok(parse(&bytes)?);
    }
    Ok(off_thread(move || parse(&bytes)).await??)
}

/// Runs CPU- or disk-bound work on tokio's blocking pool so the actor thread keeps serving.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TransportError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| TransportError::Stopping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("file:///dev/stdout").unwrap(),
            Endpoint::File("/dev/stdout".into())
        );
        assert_eq!(
            Endpoint::parse("/tmp/events.jsonl").unwrap(),
            Endpoint::File("/tmp/events.jsonl".into())
        );
        assert!(matches!(
            Endpoint::parse("http://127.0.0.1:8080/x").unwrap(),
            Endpoint::Http(_)
        ));
        assert!(Endpoint::parse("").is_err());
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http://").is_err());
    }

    #[test]
    fn passwords_never_show() {
        let endpoint = Endpoint::parse("https://user:hunter2@example.com/x").unwrap();
        let shown = format!("{endpoint:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("user:***@"),
            "{shown}"
        );
        let error = Endpoint::parse("https://user:hunter2@/x")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert_eq!(
            redacted_text("http://a:b:c@h:1/p?q=@"),
            "http://a:***@h:1/p?q=@"
        );
        assert_eq!(redacted_text("http://h/p"), "http://h/p");
        assert_eq!(
            redacted_text("posthog+https://h/?capture=v1&api_key=phc_s&token=t"),
            "posthog+https://h/?capture=v1&api_key=***&token=***"
        );
        assert!(is_loopback(&Url::parse("http://127.0.0.1:1").unwrap()));
        assert!(is_loopback(&Url::parse("http://localhost:1").unwrap()));
        assert!(!is_loopback(&Url::parse("http://example.com").unwrap()));
    }

    #[tokio::test]
    async fn request_errors_never_show_a_password() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let error = reqwest::Client::new()
            .get(format!("http://user:hunter2@{closed}/x"))
            .send()
            .await
            .unwrap_err();
        assert!(error.to_string().contains("hunter2") || error.url().is_some());
        let shown = http_error(error).to_string();
        let source = format!(
            "{:?}",
            std::error::Error::source(&http_error_again(closed).await)
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!source.contains("hunter2"), "{source}");
    }

    async fn http_error_again(closed: std::net::SocketAddr) -> TransportError {
        let error = reqwest::Client::new()
            .get(format!("http://user:hunter2@{closed}/x"))
            .send()
            .await
            .unwrap_err();
        http_error(error)
    }
}
