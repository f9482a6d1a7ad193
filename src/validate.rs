//! Every setting checked in one place, when the runtime is built: a value that would panic,
//! hang or silently do nothing later (`Duration::MAX`, zero, inverted bounds, a size that
//! cannot hold one event) is a [`ConfigError`] naming the setting and the reason.

use std::time::Duration;

use crate::json::RefusedValue;
use crate::retry_delay::BackoffPolicy;

/// The longest duration any setting takes: long enough for any real schedule, short enough
/// that adding it to a clock reading cannot overflow.
pub const MAX_SETTING_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The smallest `max_event_bytes`: an event's envelope (ids, timestamps, library facts) alone
/// takes several hundred bytes.
pub const MIN_EVENT_BYTES: usize = 1024;

/// `timeout` from now, with `timeout` taken as at most [`MAX_SETTING_DURATION`]: a caller's
/// `Duration::MAX` means "as long as it takes", never an overflowing clock.
pub(crate) fn deadline_in(timeout: Duration) -> tokio::time::Instant {
    later(tokio::time::Instant::now(), timeout)
}

/// `by` after `instant`, or `instant` plus [`MAX_SETTING_DURATION`] if that is sooner.
pub(crate) fn later(instant: tokio::time::Instant, by: Duration) -> tokio::time::Instant {
    instant
        .checked_add(by.min(MAX_SETTING_DURATION))
        .unwrap_or(instant)
}

/// A setting that cannot work, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{setting}: {problem}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The setting, as the builder names it (`sink "audit": flush_interval`, `backoff.max`).
    pub setting: String,
    /// What is wrong with it.
    pub problem: ConfigProblem,
}

/// What is wrong with a setting.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// It must not be zero.
    #[error("must not be zero")]
    Zero,
    /// A duration longer than [`MAX_SETTING_DURATION`].
    #[error("{0:?} is longer than the {MAX_SETTING_DURATION:?} any setting may take")]
    TooLong(Duration),
    /// A number outside the range it must be in.
    #[error("{value} is outside {range}")]
    OutOfRange {
        /// The value given.
        value: f64,
        /// The range it must be in.
        range: &'static str,
    },
    /// It must be at least another setting (or a fixed minimum).
    #[error("{value} is less than {minimum} ({what})")]
    TooSmall {
        /// The value given.
        value: u64,
        /// The least it may be.
        minimum: u64,
        /// What the minimum is.
        what: &'static str,
    },
    /// A JSON value that cannot be sent.
    #[error("{0}")]
    Value(RefusedValue),
    /// Two sinks, or a sink and a setting, that cannot both hold.
    #[error("{0}")]
    Conflict(String),
}

impl ConfigError {
    /// `setting` has `problem`.
    pub fn new(setting: impl Into<String>, problem: ConfigProblem) -> Self {
        ConfigError {
            setting: setting.into(),
            problem,
        }
    }
}

/// Collects the checks of one build; the first failure is the answer.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    first: Option<ConfigError>,
}

impl Checks {
    /// The first failure, if any.
    pub fn finish(self) -> Result<(), ConfigError> {
        self.first.map_or(Ok(()), Err)
    }

    pub fn fail(&mut self, setting: impl Into<String>, problem: ConfigProblem) {
        if self.first.is_none() {
            self.first = Some(ConfigError::new(setting, problem));
        }
    }

    /// A duration that may be zero, at most [`MAX_SETTING_DURATION`].
    pub fn duration(&mut self, setting: &str, value: Duration) {
        if value > MAX_SETTING_DURATION {
            self.fail(setting, ConfigProblem::TooLong(value));
        }
    }

    /// A duration that is neither zero nor longer than [`MAX_SETTING_DURATION`].
    pub fn positive_duration(&mut self, setting: &str, value: Duration) {
        if value.is_zero() {
            self.fail(setting, ConfigProblem::Zero);
        }
        self.duration(setting, value);
    }

    /// A count or size of at least `minimum`.
    pub fn at_least(&mut self, setting: &str, value: u64, minimum: u64, what: &'static str) {
        if value < minimum {
            self.fail(
                setting,
                ConfigProblem::TooSmall {
                    value,
                    minimum,
                    what,
                },
            );
        }
    }

    /// A backoff whose delays are positive, bounded, growing and jittered within 0..=1.
    pub fn backoff(&mut self, setting: &str, policy: &BackoffPolicy) {
        self.positive_duration(&format!("{setting}.initial"), policy.initial);
        self.positive_duration(&format!("{setting}.max"), policy.max);
        if policy.max < policy.initial {
            self.fail(
                format!("{setting}.max"),
                ConfigProblem::Conflict(format!(
                    "{:?} is shorter than initial ({:?})",
                    policy.max, policy.initial
                )),
            );
        }
        self.range(
            &format!("{setting}.multiplier"),
            policy.multiplier,
            1.0,
            1000.0,
            "1..=1000",
        );
        self.range(
            &format!("{setting}.jitter"),
            policy.jitter,
            0.0,
            1.0,
            "0..=1",
        );
    }

    fn range(&mut self, setting: &str, value: f64, low: f64, high: f64, range: &'static str) {
        if !(low..=high).contains(&value) {
            self.fail(setting, ConfigProblem::OutOfRange { value, range });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_names_its_setting() {
        let mut checks = Checks::default();
        checks.positive_duration("flush_interval", Duration::from_secs(1));
        checks.backoff(
            "backoff",
            &BackoffPolicy {
                initial: Duration::from_secs(2),
                max: Duration::from_secs(1),
                multiplier: f64::NAN,
                jitter: 2.0,
            },
        );
        checks.duration("snapshot_max_age", Duration::MAX);
        let error = checks.finish().unwrap_err();
        assert_eq!(error.setting, "backoff.max");
        assert!(error.to_string().starts_with("backoff.max: "), "{error}");
    }
}
