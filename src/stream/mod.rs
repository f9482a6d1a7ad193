//! Configuration streamed over Server-Sent Events.
//!
//! The ConfigurationProxy owns one reader task. It connects with `POST <url>` (the check-in
//! request as body, so the server knows whom the flags are for, and `Accept:
//! text/event-stream`), parses events as they arrive and reports each to the ConfigurationProxy
//! as a [`StreamEvent`]. A dropped connection or an error status is retried after an
//! exponentially growing, jittered delay; 401 and 403 end the stream for good (the
//! ConfigurationProxy then goes back to polling check-ins). A connection that stays silent for
//! longer than the idle timeout is considered dead: servers send comment lines as heartbeats.

pub(crate) mod sse;
pub(crate) mod update;

use std::time::Duration;

use actix::prelude::*;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use url::Url;

use self::sse::SseParser;
use self::update::StreamUpdate;
use crate::actors::collator::Collator;
use crate::messages::{CheckinIdentity, StreamEvent};
use crate::retry_delay::{BackoffPolicy, RetryDelay};
use crate::supervision::{TaskPanics, caught};
use crate::transport::HttpSettings;

/// Where and how to stream configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSettings {
    /// The SSE endpoint.
    pub url: Url,
    /// A connection silent for this long is dropped and reopened.
    pub idle_timeout: Duration,
    /// Delays between reconnection attempts.
    pub backoff: BackoffPolicy,
}

impl StreamSettings {
    /// Streams from `url` with the default idle timeout (5 minutes) and reconnection delays
    /// (1 s doubling to 60 s, ±50 %).
    pub fn new(url: Url) -> Self {
        StreamSettings {
            url,
            idle_timeout: Duration::from_secs(300),
            backoff: BackoffPolicy {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                multiplier: 2.0,
                jitter: 0.5,
            },
        }
    }
}

/// Starts the reader task on the current runtime.
pub(crate) fn spawn_reader(
    settings: StreamSettings,
    http: HttpSettings,
    collator: Addr<Collator>,
    proxy: Recipient<StreamEvent>,
    panics: TaskPanics,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut delay = RetryDelay::new(&settings.backoff);
        // A panic in the reader (a bug) is caught and counted, and the reader starts over
        // after a pause: the ConfigurationProxy polls meanwhile, as for any disconnection.
        while let Err(panic) = caught(read_stream(
            settings.clone(),
            http.clone(),
            collator.clone(),
            proxy.clone(),
        ))
        .await
        {
            panics.record("the configuration stream reader", &panic);
            let wait = delay.next_delay();
            proxy.do_send(StreamEvent::Disconnected(format!(
                "the stream reader panicked; restarting it in {wait:?}"
            )));
            tokio::time::sleep(wait).await;
        }
    })
}

async fn read_stream(
    settings: StreamSettings,
    http: HttpSettings,
    collator: Addr<Collator>,
    proxy: Recipient<StreamEvent>,
) {
    // No total timeout: the response is meant to last; silence is bounded by `idle_timeout`.
    let client = match reqwest::Client::builder()
        // A redirect is a failed connect, retried with backoff, as for check-ins: following it
        // would turn the POST into a bodiless GET (and could leave https for http).
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(http.user_agent.clone())
        .connect_timeout(http.connect_timeout)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            proxy.do_send(StreamEvent::Disconnected(format!(
                "cannot build a client: {error}"
            )));
            return;
        }
    };
    let mut delay = RetryDelay::new(&settings.backoff);
    loop {
        let Ok(Some(identity)) = collator.send(CheckinIdentity).await else {
            return; // The runtime is stopping.
        };
        let body = serde_json::to_vec(&identity).unwrap_or_default();
        let request = client
            .post(settings.url.clone())
            .header(ACCEPT, "text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send();
        let reason = match tokio::time::timeout(http.request_timeout, request).await {
            Err(_) => "no response to the stream request".to_string(),
            Ok(Err(error)) => format!("stream request failed: {error}"),
            Ok(Ok(response)) if matches!(response.status().as_u16(), 401 | 403) => {
                proxy.do_send(StreamEvent::Refused(response.status().as_u16()));
                return;
            }
            Ok(Ok(response)) if !response.status().is_success() => {
                format!("stream answered HTTP {}", response.status())
            }
            Ok(Ok(mut response)) => {
                proxy.do_send(StreamEvent::Connected);
                let mut parser = SseParser::new(http.max_checkin_bytes);
                let mut invalid_lines = 0;
                let mut oversized_events = 0;
                loop {
                    let chunk =
                        match tokio::time::timeout(settings.idle_timeout, response.chunk()).await {
                            Err(_) => break "the stream went silent".to_string(),
                            Ok(Err(error)) => break format!("stream broke: {error}"),
                            Ok(Ok(None)) => break "the server closed the stream".to_string(),
                            Ok(Ok(Some(chunk))) => chunk,
                        };
                    let mut reconnect = false;
                    for event in parser.push(&chunk) {
                        match StreamUpdate::parse(&event) {
                            Ok(StreamUpdate::Reconnect) => reconnect = true,
                            Ok(update) => {
                                delay.reset();
                                proxy.do_send(StreamEvent::Update(update));
                            }
                            Err(error) => proxy.do_send(StreamEvent::Malformed(error.to_string())),
                        }
                    }
                    if parser.invalid_lines > invalid_lines {
                        invalid_lines = parser.invalid_lines;
                        proxy.do_send(StreamEvent::Malformed(
                            "a line that is not UTF-8 or longer than 1 MiB".into(),
                        ));
                    }
                    if parser.oversized_events > oversized_events {
                        oversized_events = parser.oversized_events;
                        proxy.do_send(StreamEvent::Malformed(format!(
                            "an event larger than the {}-byte limit (skipped)",
                            http.max_checkin_bytes
                        )));
                    }
                    if reconnect {
                        delay.reset();
                        break "the server asked to reconnect".to_string();
                    }
                }
            }
        };
        let wait = delay.next_delay();
        proxy.do_send(StreamEvent::Disconnected(format!(
            "{reason}; reconnecting in {wait:?}"
        )));
        tokio::time::sleep(wait).await;
    }
}
