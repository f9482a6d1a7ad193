//! Per-target health: a target that failed is not tried again before its own exponentially
//! growing delay has passed; a success clears it and makes it the preferred target.

use std::collections::HashMap;

use tokio::time::Instant;
use url::Url;

use crate::retry_delay::{BackoffPolicy, RetryDelay};

#[derive(Debug)]
struct Failing {
    delay: RetryDelay,
    retry_at: Instant,
}

/// Health of the SRV targets, keyed by base URL.
#[derive(Debug)]
pub(crate) struct Health {
    policy: BackoffPolicy,
    failing: HashMap<Url, Failing>,
    last_good: Option<Url>,
}

impl Health {
    pub fn new(policy: BackoffPolicy) -> Self {
        Health {
            policy,
            failing: HashMap::new(),
            last_good: None,
        }
    }

    /// The targets to try now, in order: the last good one first (if it is still a target and
    /// not backed off), then the others in the given order, leaving out those backed off.
    /// Targets no longer in `ordered` are forgotten.
    pub fn plan(&mut self, ordered: Vec<Url>, now: Instant) -> Vec<Url> {
        self.failing.retain(|url, _| ordered.contains(url));
        if self
            .last_good
            .as_ref()
            .is_some_and(|u| !ordered.contains(u))
        {
            self.last_good = None;
        }
        let available = |url: &Url| self.available(url, now);
        let mut plan: Vec<Url> = Vec::with_capacity(ordered.len());
        if let Some(good) = &self.last_good
            && available(good)
        {
            plan.push(good.clone());
        }
        for url in ordered {
            if available(&url) && !plan.contains(&url) {
                plan.push(url);
            }
        }
        plan
    }

    /// Whether `url` may be tried now (it is not resting after a failure).
    pub fn available(&self, url: &Url, now: Instant) -> bool {
        self.failing.get(url).is_none_or(|f| f.retry_at <= now)
    }

    /// Records a failure: the target rests for its next delay.
    pub fn failed(&mut self, url: &Url, now: Instant) {
        let policy = &self.policy;
        let failing = self.failing.entry(url.clone()).or_insert_with(|| Failing {
            delay: RetryDelay::new(policy),
            retry_at: now,
        });
        failing.retry_at = now + failing.delay.next_delay();
        if self.last_good.as_ref() == Some(url) {
            self.last_good = None;
        }
    }

    /// Records a success: the target is healthy and preferred.
    pub fn succeeded(&mut self, url: &Url) {
        self.failing.remove(url);
        self.last_good = Some(url.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn failed_targets_rest_and_the_last_good_leads() {
        let policy = BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            multiplier: 2.0,
            jitter: 0.0,
        };
        let mut health = Health::new(policy);
        let (a, b, c) = (url("http://a:1"), url("http://b:1"), url("http://c:1"));
        let all = vec![a.clone(), b.clone(), c.clone()];
        let t0 = Instant::now();
        assert_eq!(health.plan(all.clone(), t0), all);

        health.failed(&a, t0);
        health.succeeded(&c);
        assert_eq!(health.plan(all.clone(), t0), vec![c.clone(), b.clone()]);
        // After its first delay, `a` is back (behind the preferred one).
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            health.plan(all.clone(), t1),
            vec![c.clone(), a.clone(), b.clone()]
        );
        // A second failure doubles its rest.
        health.failed(&a, t1);
        assert!(
            !health
                .plan(all.clone(), t1 + Duration::from_millis(1999))
                .contains(&a)
        );
        assert!(
            health
                .plan(all.clone(), t1 + Duration::from_secs(2))
                .contains(&a)
        );
        // A target that leaves the record set is forgotten, preferred or not.
        assert_eq!(
            health.plan(vec![a.clone(), b.clone()], t1 + Duration::from_secs(9)),
            vec![a, b]
        );
    }
}
