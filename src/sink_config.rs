//! Sinks beside the primary endpoint: a name, an endpoint, a property filter and a queue of
//! their own.

use crate::filter::PropertyFilter;
use crate::queue_config::SubmitterConfig;
use crate::transport::PostHogSettings;

/// Another destination for events, beside the primary endpoint: its own queue, batching,
/// retries and property filter, so a dead or slow sink never holds up the others.
///
/// ```
/// use actix_telemetry::{PropertyFilter, SinkConfig};
/// let audit = SinkConfig::new("audit-log", "file:///var/log/app/events.jsonl")
///     .filter(PropertyFilter::all().deny(["email", "host_name"]));
/// ```
#[derive(Clone)]
pub struct SinkConfig {
    /// A name for logs and [`GetSinkStats`](crate::GetSinkStats).
    pub name: String,
    /// `file:///…`, a path, `http(s)://…` or `posthog+http(s)://…?api_key=…`.
    pub endpoint: String,
    /// Which properties this sink receives.
    pub filter: PropertyFilter,
    /// Its queue, batching and retries.
    pub queue: SubmitterConfig,
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConfig")
            .field("name", &self.name)
            .field(
                "endpoint",
                &crate::transport::redacted_endpoint(&self.endpoint),
            )
            .field("filter", &self.filter)
            .field("queue", &self.queue)
            .finish()
    }
}

impl SinkConfig {
    /// A sink called `name` sending to PostHog, receiving every property, with the default
    /// queue.
    pub fn posthog(name: impl Into<String>, settings: &PostHogSettings) -> Self {
        SinkConfig::new(name, settings.to_endpoint())
    }

    /// A sink called `name` writing to `endpoint`, receiving every property, with the default
    /// queue.
    pub fn new(name: impl Into<String>, endpoint: impl Into<String>) -> Self {
        SinkConfig {
            name: name.into(),
            endpoint: endpoint.into(),
            filter: PropertyFilter::all(),
            queue: SubmitterConfig::default(),
        }
    }

    /// Which properties this sink receives.
    pub fn filter(mut self, filter: PropertyFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Its queue, batching and retries.
    pub fn queue(mut self, queue: SubmitterConfig) -> Self {
        self.queue = queue;
        self
    }
}
