//! Delays between delivery attempts: exponential growth with jitter.
//!
//! This is the only module that touches the `backoff` crate, which is unmaintained upstream
//! (RUSTSEC-2025-0012). It is used purely as a delay calculator, never to drive a retry loop or
//! read a clock, so replacing it means rewriting [`RetryDelay::next_delay`] and nothing else.

use std::time::Duration;

use backoff::backoff::Backoff;

/// How retry delays grow.
///
/// ```
/// use std::time::Duration;
/// use actix_telemetry::{BackoffPolicy, Builder};
/// let builder = Builder::new().backoff(BackoffPolicy {
///     initial: Duration::from_secs(1),
///     ..BackoffPolicy::default()
/// });
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffPolicy {
    /// The first delay.
    pub initial: Duration,
    /// No delay is longer than this (before jitter).
    pub max: Duration,
    /// Each delay is this many times the previous one.
    pub multiplier: f64,
    /// Each delay is drawn uniformly from `d * (1 ± jitter)`; 0 disables jitter.
    pub jitter: f64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }
}

/// A sequence of growing delays; [`reset`](RetryDelay::reset) after a success.
#[derive(Debug)]
pub struct RetryDelay {
    inner: backoff::ExponentialBackoff,
    max: Duration,
    initial: Duration,
    jitter: f64,
}

impl RetryDelay {
    /// A fresh sequence for `policy`, which the configuration's backoff rule has checked
    /// (`Checks::backoff`: positive bounds, a multiplier in 1..=1000, a jitter in 0..=1), so it
    /// is taken as it is.
    pub fn new(policy: &BackoffPolicy) -> Self {
        let inner = backoff::ExponentialBackoff {
            current_interval: policy.initial,
            initial_interval: policy.initial,
            randomization_factor: policy.jitter,
            multiplier: policy.multiplier,
            max_interval: policy.max,
            // No give-up time: whether to give up is the caller's decision, counted per event.
            max_elapsed_time: None,
            ..backoff::ExponentialBackoff::default()
        };
        let max = policy.max.mul_f64(1.0 + policy.jitter);
        RetryDelay {
            inner,
            max,
            initial: policy.initial,
            jitter: policy.jitter,
        }
    }

    /// The first delay of the sequence (before jitter).
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The jitter factor, within 0..=1.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The next delay in the sequence.
    pub fn next_delay(&mut self) -> Duration {
        // With no elapsed-time limit the calculator always yields a value; fall back to the cap
        // rather than trusting that invariant of an external crate.
        self.inner.next_backoff().unwrap_or(self.max).min(self.max)
    }

    /// Starts the sequence again from the initial delay.
    pub fn reset(&mut self) {
        self.inner.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps_without_jitter() {
        let mut d = RetryDelay::new(&BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
            multiplier: 2.0,
            jitter: 0.0,
        });
        let got: Vec<u128> = (0..5).map(|_| d.next_delay().as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 500, 500]);
        d.reset();
        assert_eq!(d.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_in_bounds_and_varies() {
        let policy = BackoffPolicy {
            initial: Duration::from_millis(1000),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.5,
        };
        let firsts: Vec<Duration> = (0..64)
            .map(|_| RetryDelay::new(&policy).next_delay())
            .collect();
        for f in &firsts {
            assert!(*f >= Duration::from_millis(500) && *f <= Duration::from_millis(1500));
        }
        assert!(firsts.iter().any(|f| *f != firsts[0]), "no jitter at all");
    }
}
