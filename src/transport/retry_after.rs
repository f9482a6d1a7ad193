//! The `Retry-After` header: a number of seconds or an HTTP date.

use std::time::{Duration, SystemTime};

/// The longest wait a `Retry-After` can impose: a backend (or a proxy in front of it) asking
/// for more is taken as asking for this much, so one answer cannot pause a sink for a century.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);

/// How long the backend asked us to wait, measured from `now`, at most [`MAX_RETRY_AFTER`].
/// Dates in the past mean "now"; anything unparsable is ignored (our own backoff still
/// applies).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let asked = if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        // Too many digits for a u64 is still "a very long time".
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let date = httpdate::parse_http_date(value).ok()?;
        date.duration_since(now).unwrap_or_default()
    };
    Some(asked.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("4000000000", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn any_header_value_parses_within_the_cap(value in ".{0,40}", secs in 0u64..u64::MAX) {
            let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            if let Some(wait) = parse_retry_after(&value, now) {
                proptest::prop_assert!(wait <= MAX_RETRY_AFTER);
            }
            let wait = parse_retry_after(&secs.to_string(), now);
            proptest::prop_assert_eq!(wait, Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER)));
        }
    }
}
