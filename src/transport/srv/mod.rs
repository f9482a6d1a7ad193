//! HTTP targets discovered through DNS SRV records, tried in RFC 2782 order with per-target
//! health, failing over on connection errors, timeouts, 5xx and 429, and falling back to a fixed
//! URL when discovery fails or every target failed.

mod discovery;
mod health;
mod order;
mod resolver;
mod target_name;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use self::discovery::Discovery;
use self::health::Health;
use self::order::{Rng, rfc2782_order};
use self::resolver::{HostResolver, LazyResolver};
use super::client::SharedClient;
use super::http::{checkin_url, events_url};
use super::{DeliveryOutcome, HttpClient, HttpSettings, TransportError};
use crate::checkin::{Checkin, CheckinRequest};
use crate::error::BuildError;
use crate::event::EncodedEvent;
use crate::retry_delay::BackoffPolicy;

/// Where and how to discover the backends.
#[derive(Clone, Debug, PartialEq)]
pub struct SrvSettings {
    /// The SRV record to look up.
    pub record: String,
    /// Targets whose DNS name does not end with the labels of one of these are ignored, and so
    /// are targets with a label holding bytes other than letters, digits, `-` and `_`. An empty
    /// suffix allows every such name.
    pub allowed_suffixes: Vec<String>,
    /// Used when discovery fails or every target failed.
    pub fallback: Url,
    /// Scheme of the target URLs (`https`, or `http` for tests).
    pub scheme: String,
    /// The name server to ask (`None`: the system's configuration).
    pub name_server: Option<SocketAddr>,
    /// Time limit of one DNS lookup.
    pub lookup_timeout: Duration,
    /// How long a failed lookup is remembered before DNS is asked again.
    pub negative_ttl: Duration,
    /// How long a failed target rests before it is tried again, growing with each failure.
    pub target_backoff: BackoffPolicy,
}

impl SrvSettings {
    /// The reference deployment's SRV record (`_detsys_ids._tcp.install.determinate.systems.`),
    /// its allowed suffix and its fallback URL. Nothing uses it unless it is passed to
    /// [`Builder::srv`](crate::Builder::srv).
    pub fn determinate_systems() -> Self {
        SrvSettings::default()
    }
}

impl Default for SrvSettings {
    /// The same as [`SrvSettings::determinate_systems`].
    fn default() -> Self {
        SrvSettings {
            record: "_detsys_ids._tcp.install.determinate.systems.".into(),
            allowed_suffixes: vec!["install.determinate.systems".into()],
            fallback: Url::parse("https://install.determinate.systems")
                .unwrap_or_else(|_| unreachable!("a valid literal URL")),
            scheme: "https".into(),
            name_server: None,
            lookup_timeout: Duration::from_secs(1),
            negative_ttl: Duration::from_secs(30),
            target_backoff: BackoffPolicy {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(120),
                multiplier: 2.0,
                jitter: 0.2,
            },
        }
    }
}

/// The SRV backend. Clones share the client, the discovery cache and the target health.
#[derive(Clone, Debug)]
pub(crate) struct SrvBackend {
    client: HttpClient,
    resolver: Arc<LazyResolver>,
    discovery: Arc<Discovery>,
    health: Arc<Mutex<Health>>,
    rng: Arc<Mutex<Rng>>,
    scheme: String,
    fallback: Url,
}

/// Whether a delivery outcome sends the next attempt to another target.
fn delivery_fails_over(outcome: &DeliveryOutcome) -> bool {
    matches!(outcome, DeliveryOutcome::Retry { .. })
}

/// Whether a check-in error sends the next attempt to another target.
fn checkin_fails_over(error: &TransportError) -> bool {
    match error {
        TransportError::Http(_) => true,
        TransportError::Status(status) => matches!(status, 408 | 425 | 429 | 500..=599),
        _ => false,
    }
}

impl SrvBackend {
    pub fn new(settings: &SrvSettings, http: &HttpSettings) -> Result<Self, BuildError> {
        if settings.scheme != "http" && settings.scheme != "https" {
            return Err(BuildError::InvalidConfig(
                crate::validate::ConfigError::new(
                    "srv.scheme",
                    crate::validate::ConfigProblem::Conflict(format!(
                        "must be http or https, not {:?}",
                        settings.scheme
                    )),
                ),
            ));
        }
        let resolver = Arc::new(LazyResolver::new(
            settings.name_server,
            settings.lookup_timeout,
        ));
        let client = HttpClient::new(http, Some(Arc::new(HostResolver(resolver.clone()))))?;
        Ok(SrvBackend {
            client,
            discovery: Arc::new(Discovery::new(
                &settings.record,
                &settings.allowed_suffixes,
                settings.negative_ttl,
                resolver.clone(),
            )),
            resolver,
            health: Arc::new(Mutex::new(Health::new(settings.target_backoff.clone()))),
            rng: Arc::new(Mutex::new(Rng::from_entropy())),
            scheme: settings.scheme.clone(),
            fallback: settings.fallback.clone(),
        })
    }

    /// A new HTTP client and resolver; the discovery cache and target health are kept.
    pub fn rebuilt(&self) -> Self {
        self.resolver.reset();
        SrvBackend {
            client: self.client.rebuilt(),
            ..self.clone()
        }
    }

    /// The client every target is reached with, resolving host names through discovery's
    /// resolver.
    pub fn shared_client(&self) -> &SharedClient {
        self.client.shared()
    }

    /// DNS lookups sent so far.
    pub fn lookups(&self) -> u64 {
        self.discovery.lookups()
    }

    /// SRV targets ignored so far: not a host name, or not under an allowed suffix.
    pub fn rejected_targets(&self) -> u64 {
        self.discovery.rejected()
    }

    /// Whether `base` may be tried now: the fallback always; a target unless a concurrent
    /// request saw it fail since the plan was made.
    fn still_available(&self, base: &Url) -> bool {
        *base == self.fallback || self.health().available(base, Instant::now())
    }

    /// The base URLs to try, best first, ending with the fallback.
    async fn plan(&self) -> Vec<Url> {
        let targets = self.discovery.targets().await.unwrap_or_default();
        let ordered = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            rfc2782_order(&targets, &mut rng)
        };
        let urls: Vec<Url> = ordered
            .iter()
            .filter_map(|t| Url::parse(&format!("{}://{}:{}", self.scheme, t.host, t.port)).ok())
            .collect();
        let mut plan = self.health().plan(urls, Instant::now());
        plan.push(self.fallback.clone());
        plan
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn deliver(&self, events: Arc<[EncodedEvent]>) -> DeliveryOutcome {
        let mut last = None;
        for base in self.plan().await {
            if !self.still_available(&base) {
                continue;
            }
            let outcome = self
                .client
                .deliver_to(&events_url(&base), events.clone())
                .await;
            if !delivery_fails_over(&outcome) {
                if outcome == DeliveryOutcome::Delivered {
                    self.health().succeeded(&base);
                }
                return outcome;
            }
            tracing::warn!(target_url = %base, ?outcome, "target failed; trying the next");
            self.health().failed(&base, Instant::now());
            last = Some(outcome);
        }
        last.unwrap_or(DeliveryOutcome::Retry {
            after: None,
            reason: "no target to try".into(),
        })
    }

    pub async fn check_in(&self, request: &CheckinRequest) -> Result<Checkin, TransportError> {
        let mut last = None;
        for base in self.plan().await {
            if !self.still_available(&base) {
                continue;
            }
            match self.client.check_in_to(&checkin_url(&base), request).await {
                Ok(checkin) => {
                    self.health().succeeded(&base);
                    return Ok(checkin);
                }
                Err(error) if checkin_fails_over(&error) => {
                    tracing::warn!(target_url = %base, %error, "check-in target failed; trying the next");
                    self.health().failed(&base, Instant::now());
                    last = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or(TransportError::Stopping))
    }
}
