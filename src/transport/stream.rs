//! The configuration stream's connection: opening the Server-Sent Events request through the
//! primary backend's HTTP client (its connection pool, its resolver, rebuilt with it), and
//! reading the body as events, within the caps on one line and on one event.
//!
//! What the events mean, and when to reconnect, is the stream reader's business
//! (`src/stream/`).

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use url::Url;

use super::client::SharedClient;
use super::sse::{SseEvent, SseParser};
use super::{Backend, HttpSettings, redacted_error};
use crate::checkin::CheckinRequest;
use crate::error::BuildError;

/// The client's total request timeout would end the stream's body, which is meant to last; the
/// stream's request replaces it with this bound (silence is bounded by the idle timeout).
const STREAM_LIFETIME: Duration = crate::validate::MAX_SETTING_DURATION;

/// Opens configuration streams. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct StreamConnector {
    client: SharedClient,
}

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// 401 or 403: the server will not stream to this client.
    #[error("stream refused with HTTP {0}")]
    Refused(u16),
    /// Anything else (no answer, another status, a broken connection): worth another try.
    #[error("{0}")]
    Failed(String),
}

/// How a stream that was open ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamEnd {
    /// No byte, not even a heartbeat, for the idle timeout.
    #[error("the stream went silent")]
    Silent,
    /// The connection broke.
    #[error("stream broke: {0}")]
    Broken(String),
    /// The server ended the body.
    #[error("the server closed the stream")]
    Closed,
}

impl StreamConnector {
    /// Streams through `backend`'s client; a backend without one (the File backend) gets a
    /// client of its own, made with `http`.
    pub fn for_backend(backend: &Backend, http: &HttpSettings) -> Result<Self, BuildError> {
        let client = match backend {
            Backend::File(_) => SharedClient::new(http, None)?,
            Backend::Http(h) => h.shared_client().clone(),
            #[cfg(feature = "srv")]
            Backend::Srv(s) => s.shared_client().clone(),
            Backend::PostHog(p) => p.shared_client().clone(),
        };
        Ok(StreamConnector { client })
    }

    /// The largest event read; a larger one is skipped.
    pub fn max_event_bytes(&self) -> usize {
        self.client.settings().max_checkin_bytes
    }

    /// `POST url` with `request` as the body (so the server knows whom the flags are for),
    /// asking for `text/event-stream`. The answer must start within the request timeout.
    pub async fn open(&self, url: &Url, request: &CheckinRequest) -> Result<StreamBody, OpenError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| OpenError::Failed(format!("cannot encode the stream request: {e}")))?;
        let sent = self
            .client
            .post(url.clone())
            .header(ACCEPT, "text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .timeout(STREAM_LIFETIME)
            .body(body)
            .send();
        let response = tokio::time::timeout(self.client.settings().request_timeout, sent)
            .await
            .map_err(|_| OpenError::Failed("no response to the stream request".into()))?
            .map_err(|e| {
                OpenError::Failed(format!("stream request failed: {}", redacted_error(e)))
            })?;
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403) {
            return Err(OpenError::Refused(status.as_u16()));
        }
        if !status.is_success() {
            return Err(OpenError::Failed(format!("stream answered HTTP {status}")));
        }
        Ok(StreamBody {
            response,
            parser: SseParser::new(self.max_event_bytes()),
        })
    }
}

/// An open stream's body, read as events.
#[derive(Debug)]
pub(crate) struct StreamBody {
    response: reqwest::Response,
    parser: SseParser,
}

/// What one read of the body brought.
#[derive(Debug, Default)]
pub(crate) struct Arrivals {
    /// The events it completed.
    pub events: Vec<SseEvent>,
    /// Lines skipped since the last read: not UTF-8, or longer than the line cap.
    pub invalid_lines: u64,
    /// Events skipped since the last read: larger than the event cap.
    pub oversized_events: u64,
}

impl StreamBody {
    /// Waits at most `idle` for the next bytes and returns the events they complete.
    pub async fn next(&mut self, idle: Duration) -> Result<Arrivals, StreamEnd> {
        let chunk = match tokio::time::timeout(idle, self.response.chunk()).await {
            Err(_) => return Err(StreamEnd::Silent),
            Ok(Err(error)) => return Err(StreamEnd::Broken(redacted_error(error).to_string())),
            Ok(Ok(None)) => return Err(StreamEnd::Closed),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let (lines, events) = (self.parser.invalid_lines, self.parser.oversized_events);
        let completed = self.parser.push(&chunk);
        Ok(Arrivals {
            events: completed,
            invalid_lines: self.parser.invalid_lines - lines,
            oversized_events: self.parser.oversized_events - events,
        })
    }
}
