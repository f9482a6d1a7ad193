//! Finding the targets: the SRV lookup, bounded in time, its answer kept until its TTL, and a
//! failure kept for a short negative period so a broken DNS is not asked on every request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_resolver::proto::rr::RData;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::resolver::LazyResolver;
use super::target_name::AllowedSuffixes;

/// A positive answer is kept at least this long, even with a TTL of 0, so a burst of batches
/// does not become a burst of lookups.
const MIN_POSITIVE_TTL: Duration = Duration::from_secs(1);

/// One SRV target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SrvTarget {
    /// Host name: labels of letters, digits, `-` and `_`, lower case, without the trailing dot.
    pub host: String,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

/// Why no targets could be found.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum DiscoveryError {
    #[error("SRV lookup of {record} failed: {reason}")]
    Lookup { record: String, reason: String },
    #[error("SRV lookup of {record} timed out after {timeout:?}")]
    Timeout { record: String, timeout: Duration },
    #[error("SRV record {record} has no target that is a host name under an allowed suffix")]
    NoAllowedTargets { record: String },
}

#[derive(Debug)]
enum Cached {
    Nothing,
    Found {
        targets: Arc<Vec<SrvTarget>>,
        until: Instant,
    },
    Failed {
        error: DiscoveryError,
        until: Instant,
    },
}

/// The SRV record, the allowed suffixes, and what the last lookup found.
#[derive(Debug)]
pub(crate) struct Discovery {
    record: String,
    allowed_suffixes: AllowedSuffixes,
    negative_ttl: Duration,
    resolver: Arc<LazyResolver>,
    // An async lock: while one lookup runs, concurrent callers wait for its answer instead of
    // sending their own.
    cached: Mutex<Cached>,
    lookups: AtomicU64,
    rejected: AtomicU64,
}

impl Discovery {
    pub fn new(
        record: &str,
        allowed_suffixes: &[String],
        negative_ttl: Duration,
        resolver: Arc<LazyResolver>,
    ) -> Self {
        Discovery {
            record: record.to_string(),
            allowed_suffixes: AllowedSuffixes::new(allowed_suffixes),
            negative_ttl,
            resolver,
            cached: Mutex::new(Cached::Nothing),
            lookups: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Lookups sent so far.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Targets ignored so far because their name is not a host name under an allowed suffix
    /// (counted at each lookup that answers them).
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The current targets: cached, or looked up now.
    pub async fn targets(&self) -> Result<Arc<Vec<SrvTarget>>, DiscoveryError> {
        let mut cached = self.cached.lock().await;
        let now = Instant::now();
        match &*cached {
            Cached::Found { targets, until } if *until > now => return Ok(targets.clone()),
            Cached::Failed { error, until } if *until > now => return Err(error.clone()),
            _ => {}
        }
        let answer = self.lookup().await;
        let now = Instant::now();
        *cached = match &answer {
            Ok((targets, ttl)) => Cached::Found {
                targets: targets.clone(),
                until: now + (*ttl).max(MIN_POSITIVE_TTL),
            },
            Err(error) => {
                tracing::warn!(%error, retry_in = ?self.negative_ttl, "SRV discovery failed; using the fallback");
                Cached::Failed {
                    error: error.clone(),
                    until: now + self.negative_ttl,
                }
            }
        };
        answer.map(|(targets, _)| targets)
    }

    async fn lookup(&self) -> Result<(Arc<Vec<SrvTarget>>, Duration), DiscoveryError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let failed = |reason: String| DiscoveryError::Lookup {
            record: self.record.clone(),
            reason,
        };
        let resolver = self.resolver.get().map_err(failed)?;
        let timeout = self.resolver.timeout;
        let lookup = tokio::time::timeout(timeout, resolver.srv_lookup(self.record.as_str()))
            .await
            .map_err(|_| DiscoveryError::Timeout {
                record: self.record.clone(),
                timeout,
            })?
            .map_err(|e| failed(e.to_string()))?;
        let mut ttl = u32::MAX;
        let mut targets = Vec::new();
        for record in lookup.answers() {
            let RData::SRV(srv) = &record.data else {
                continue;
            };
            ttl = ttl.min(record.ttl);
            let host = match self.allowed_suffixes.host(&srv.target) {
                Ok(host) => host,
                Err(reason) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    // The name's escaped text form: safe to log, never used as a host.
                    tracing::warn!(target_name = %srv.target, %reason, record = %self.record, "ignoring SRV target");
                    continue;
                }
            };
            targets.push(SrvTarget {
                host,
                port: srv.port,
                priority: srv.priority,
                weight: srv.weight,
            });
        }
        if targets.is_empty() {
            return Err(DiscoveryError::NoAllowedTargets {
                record: self.record.clone(),
            });
        }
        Ok((Arc::new(targets), Duration::from_secs(u64::from(ttl))))
    }
}
