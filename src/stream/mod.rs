//! Configuration streamed over Server-Sent Events.
//!
//! The ConfigurationProxy owns one reader task. Before each connection it asks for the check-in
//! identity (so the server knows whom the flags are for), opens the stream through the
//! transport layer's [`StreamConnector`] (the primary backend's HTTP client), and reports every
//! event to the ConfigurationProxy as a [`StreamEvent`]. A dropped connection or an error
//! status is retried after an exponentially growing, jittered delay; 401 and 403 end the stream
//! for good (the ConfigurationProxy then goes back to polling check-ins). A connection that
//! stays silent for longer than the idle timeout is considered dead: servers send comment lines
//! as heartbeats.
//!
//! The reader knows the actors it talks to only by the messages it sends them.

pub(crate) mod update;

use std::time::Duration;

use actix::prelude::*;
use url::Url;

use self::update::StreamUpdate;
use crate::messages::CheckinIdentity;
use crate::retry_delay::{BackoffPolicy, RetryDelay};
use crate::supervision::{TaskPanics, caught};
use crate::transport::{Arrivals, OpenError, StreamBody, StreamConnector};

/// The stream reader task → ConfigurationProxy: what became of the stream. The stream's own
/// message, defined beside the loop that sends it.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub(crate) enum StreamEvent {
    Connected,
    Update(update::StreamUpdate),
    Malformed(String),
    Disconnected(String),
    /// 401 or 403: the reader has ended; go back to polling.
    Refused(u16),
}

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

/// A configured stream: where it is and how to connect to it.
#[derive(Clone, Debug)]
pub(crate) struct StreamSource {
    pub settings: StreamSettings,
    pub connector: StreamConnector,
}

/// The reader task's state: its source, and whom it asks and tells.
pub(crate) struct StreamReader {
    source: StreamSource,
    /// Asked before every connection: whom the flags are for (`None`: the runtime is stopping).
    identity: Recipient<CheckinIdentity>,
    /// Told everything the stream does.
    events: Recipient<StreamEvent>,
}

impl StreamReader {
    pub fn new(
        source: StreamSource,
        identity: Recipient<CheckinIdentity>,
        events: Recipient<StreamEvent>,
    ) -> Self {
        StreamReader {
            source,
            identity,
            events,
        }
    }

    /// Starts the reader task on the current runtime.
    pub fn spawn(self, panics: TaskPanics) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut delay = RetryDelay::new(&self.source.settings.backoff);
            // A panic in the reader (a bug) is caught and counted, and the reader starts over
            // after a pause: the ConfigurationProxy polls meanwhile, as for any disconnection.
            while let Err(panic) = caught(self.run()).await {
                panics.record("the configuration stream reader", &panic);
                let wait = delay.next_delay();
                self.tell(StreamEvent::Disconnected(format!(
                    "the stream reader panicked; restarting it in {wait:?}"
                )));
                tokio::time::sleep(wait).await;
            }
        })
    }

    /// Connects, reads and reconnects until the stream is refused or the runtime stops.
    async fn run(&self) {
        let mut delay = RetryDelay::new(&self.source.settings.backoff);
        loop {
            let Ok(Some(identity)) = self.identity.send(CheckinIdentity).await else {
                return; // The runtime is stopping.
            };
            let url = &self.source.settings.url;
            let reason = match self.source.connector.open(url, &identity).await {
                Err(OpenError::Refused(status)) => {
                    self.tell(StreamEvent::Refused(status));
                    return;
                }
                Err(OpenError::Failed(reason)) => reason,
                Ok(body) => {
                    self.tell(StreamEvent::Connected);
                    self.read(body, &mut delay).await
                }
            };
            let wait = delay.next_delay();
            self.tell(StreamEvent::Disconnected(format!(
                "{reason}; reconnecting in {wait:?}"
            )));
            tokio::time::sleep(wait).await;
        }
    }

    /// Reports what an open stream brings until it ends; returns why it ended.
    async fn read(&self, mut body: StreamBody, delay: &mut RetryDelay) -> String {
        loop {
            let arrivals = match body.next(self.source.settings.idle_timeout).await {
                Ok(arrivals) => arrivals,
                Err(end) => return end.to_string(),
            };
            if self.report(arrivals, delay) {
                delay.reset();
                return "the server asked to reconnect".to_string();
            }
        }
    }

    /// Tells the ConfigurationProxy about each event and each thing skipped; returns whether
    /// the server asked to reconnect. An applied update resets the reconnection delay: the
    /// stream works.
    fn report(&self, arrivals: Arrivals, delay: &mut RetryDelay) -> bool {
        let mut reconnect = false;
        for event in arrivals.events {
            match StreamUpdate::parse(&event) {
                Ok(StreamUpdate::Reconnect) => reconnect = true,
                Ok(update) => {
                    delay.reset();
                    self.tell(StreamEvent::Update(update));
                }
                Err(error) => self.tell(StreamEvent::Malformed(error.to_string())),
            }
        }
        if arrivals.invalid_lines > 0 {
            self.tell(StreamEvent::Malformed(
                "a line that is not UTF-8 or longer than 1 MiB".into(),
            ));
        }
        if arrivals.oversized_events > 0 {
            self.tell(StreamEvent::Malformed(format!(
                "an event larger than the {}-byte limit (skipped)",
                self.source.connector.max_event_bytes()
            )));
        }
        reconnect
    }

    fn tell(&self, event: StreamEvent) {
        self.events.do_send(event);
    }
}
