//! The HTTP backend of the "ids" protocol: `POST /check-in` and `POST /events/batch`, zstd when
//! the server allows it, downgrade to identity on 415.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use url::Url;

use super::body::{MAX_EVENTS_RESPONSE_BYTES, read_capped};
use super::client::SharedClient;
use super::retry_after::parse_retry_after;
use super::zstd_scratch;
use super::{DeliveryOutcome, TransportError, off_thread, parse_document};
use crate::checkin::{Checkin, CheckinRequest, parse_checkin};
use crate::error::BuildError;
use crate::event::{EncodedEvent, encode_batch, encode_batch_into};

/// Bodies smaller than this are built and compressed on the actor thread: handing them to the
/// blocking pool would cost more than the work.
const INLINE_BODY_BYTES: usize = 64 * 1024;

/// Settings of the HTTP client.
#[derive(Clone, Debug)]
pub(crate) struct HttpSettings {
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub user_agent: String,
    /// The largest check-in document read (the answer's body).
    pub max_checkin_bytes: usize,
}

/// An HTTP client for the "ids" protocol that can talk to any base URL: the plain HTTP backend
/// uses one, SRV discovery uses one for all its targets.
#[derive(Clone, Debug)]
pub(crate) struct HttpClient {
    client: SharedClient,
    // Learned from check-ins and 415 answers; shared by clones serving concurrent batches.
    zstd: Arc<AtomicBool>,
}

/// The `/check-in` URL on `base` (its own path and query are replaced).
pub(crate) fn checkin_url(base: &Url) -> Url {
    with_path(base, "/check-in")
}

/// The `/events/batch` URL on `base`.
pub(crate) fn events_url(base: &Url) -> Url {
    with_path(base, "/events/batch")
}

fn with_path(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(path);
    url.set_query(None);
    url
}

pub(crate) fn build_client(
    settings: &HttpSettings,
    resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        // Delivered means a 2xx to the request that carried the events: a followed redirect
        // would turn the POST into a bodiless GET whose 200 says nothing about them (and could
        // leave https for http). A 3xx is answered to the caller as it is.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(settings.user_agent.clone())
        .timeout(settings.request_timeout)
        .connect_timeout(settings.connect_timeout);
    if let Some(resolver) = resolver {
        builder = builder.dns_resolver(resolver);
    }
    builder.build()
}

impl HttpClient {
    /// A client resolving host names with `resolver` (the system's when `None`).
    pub fn new(
        settings: &HttpSettings,
        resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
    ) -> Result<Self, BuildError> {
        Ok(HttpClient {
            client: SharedClient::new(settings, resolver)?,
            zstd: Arc::new(AtomicBool::new(true)),
        })
    }

    /// The same client with a new connection pool (for every clone, the configuration
    /// stream's too) and what was learned about compression.
    pub fn rebuilt(&self) -> Self {
        self.client.rebuild();
        HttpClient {
            client: self.client.clone(),
            zstd: Arc::new(AtomicBool::new(self.zstd.load(Ordering::Relaxed))),
        }
    }

    /// The underlying client, for the configuration stream.
    pub fn shared(&self) -> &SharedClient {
        &self.client
    }

    /// Posts a batch to `url` (an `/events/batch` URL).
    pub async fn deliver_to(&self, url: &Url, events: Arc<[EncodedEvent]>) -> DeliveryOutcome {
        loop {
            let compress = self.zstd.load(Ordering::Relaxed);
            let body = match build_body(events.clone(), compress).await {
                Ok(body) => body,
                Err(reason) => {
                    return DeliveryOutcome::Retry {
                        after: None,
                        reason,
                    };
                }
            };
            let mut request = self
                .client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json");
            if compress {
                request = request.header(CONTENT_ENCODING, "zstd");
            }
            let response = match request.body(body).send().await {
                Ok(response) => response,
                Err(error) => {
                    return DeliveryOutcome::Retry {
                        after: None,
                        reason: describe(error),
                    };
                }
            };
            let status = response.status();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            // Read the body (within its cap) so the connection goes back to the pool. A 2xx
            // whose body does not arrive whole is not a delivery anyone can vouch for.
            if let Err(error) = read_capped(response, MAX_EVENTS_RESPONSE_BYTES).await
                && status.is_success()
            {
                return DeliveryOutcome::Retry {
                    after: retry_after,
                    reason: format!("HTTP {status}, but {error}"),
                };
            }
            if status == StatusCode::UNSUPPORTED_MEDIA_TYPE && compress {
                tracing::info!("backend refused zstd (415); sending uncompressed from now on");
                self.zstd.store(false, Ordering::Relaxed);
                continue;
            }
            return classify(status, retry_after);
        }
    }

    /// Posts a check-in to `url` (a `/check-in` URL).
    pub async fn check_in_to(
        &self,
        url: &Url,
        request: &CheckinRequest,
    ) -> Result<Checkin, TransportError> {
        let body = serde_json::to_vec(request).map_err(TransportError::Encode)?;
        let response = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(crate::transport::http_error)?;
        let status = response.status();
        if !status.is_success() {
            let _ = read_capped(response, MAX_EVENTS_RESPONSE_BYTES).await;
            return Err(TransportError::Status(status.as_u16()));
        }
        let bytes = read_capped(response, self.client.settings().max_checkin_bytes).await?;
        let checkin = parse_document(bytes, parse_checkin).await?;
        self.zstd
            .store(checkin.server_options.zstd, Ordering::Relaxed);
        Ok(checkin)
    }
}

/// The HTTP backend: one base URL.
#[derive(Clone, Debug)]
pub(crate) struct HttpBackend {
    client: HttpClient,
    checkin_url: Url,
    events_url: Url,
}

impl HttpBackend {
    pub fn new(base: &Url, settings: &HttpSettings) -> Result<Self, BuildError> {
        Ok(HttpBackend {
            client: HttpClient::new(settings, None)?,
            checkin_url: checkin_url(base),
            events_url: events_url(base),
        })
    }

    pub fn rebuilt(&self) -> Self {
        HttpBackend {
            client: self.client.rebuilt(),
            ..self.clone()
        }
    }

    pub fn shared_client(&self) -> &SharedClient {
        self.client.shared()
    }

    pub async fn deliver(&self, events: Arc<[EncodedEvent]>) -> DeliveryOutcome {
        self.client.deliver_to(&self.events_url, events).await
    }

    pub async fn check_in(&self, request: &CheckinRequest) -> Result<Checkin, TransportError> {
        self.client.check_in_to(&self.checkin_url, request).await
    }
}

async fn build_body(events: Arc<[EncodedEvent]>, compress: bool) -> Result<Vec<u8>, String> {
    let size: usize = events.iter().map(EncodedEvent::encoded_len).sum();
    let make = move || {
        let sent_at = SystemTime::now();
        if compress {
            zstd_scratch::compress_with(zstd_scratch::BODY_LEVEL, |json| {
                encode_batch_into(&events, sent_at, json)
            })
            .map_err(|e| format!("zstd: {e}"))
        } else {
            Ok(encode_batch(&events, sent_at))
        }
    };
    if size < INLINE_BODY_BYTES {
        make()
    } else {
        off_thread(make).await.map_err(|e| e.to_string())?
    }
}

fn classify(status: StatusCode, retry_after: Option<Duration>) -> DeliveryOutcome {
    match status.as_u16() {
        200..=299 => DeliveryOutcome::Delivered,
        400 | 422 => DeliveryOutcome::Rejected {
            status: status.as_u16(),
        },
        413 => DeliveryOutcome::TooLarge,
        408 | 425 | 429 | 500..=599 => DeliveryOutcome::Retry {
            after: retry_after,
            reason: format!("HTTP {status}"),
        },
        // Redirects are never followed (see `build_client`), so a 3xx means the events did not
        // arrive; like a stray 1xx it is a transient failure, retried with backoff.
        100..=199 | 300..=399 => DeliveryOutcome::Retry {
            after: retry_after,
            reason: format!("unexpected HTTP {status}"),
        },
        code => DeliveryOutcome::Refused { status: code },
    }
}

pub(crate) fn describe(error: reqwest::Error) -> String {
    let error = &super::redacted_error(error);
    if error.is_timeout() {
        format!("timed out: {error}")
    } else if error.is_connect() {
        format!("cannot connect: {error}")
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        let c = |s: u16| classify(StatusCode::from_u16(s).unwrap(), None);
        assert_eq!(c(204), DeliveryOutcome::Delivered);
        assert_eq!(c(400), DeliveryOutcome::Rejected { status: 400 });
        assert_eq!(c(413), DeliveryOutcome::TooLarge);
        assert!(matches!(c(429), DeliveryOutcome::Retry { .. }));
        assert!(matches!(c(503), DeliveryOutcome::Retry { .. }));
        assert_eq!(c(401), DeliveryOutcome::Refused { status: 401 });
        assert_eq!(c(404), DeliveryOutcome::Refused { status: 404 });
        assert!(matches!(c(302), DeliveryOutcome::Retry { .. }));
        assert!(matches!(c(308), DeliveryOutcome::Retry { .. }));
    }

    #[test]
    fn paths_replace_the_endpoint_path() {
        let base = Url::parse("http://h:1/some/path?q=1").unwrap();
        assert_eq!(
            with_path(&base, "/check-in").as_str(),
            "http://h:1/check-in"
        );
    }
}
