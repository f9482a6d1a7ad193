//! RFC 3339 timestamps in UTC with millisecond precision, as the wire format wants them.
//!
//! Written by hand rather than through a date crate: it runs once per event on the hot path, and
//! the conversion from days since the epoch to a civil date is a few integer operations.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ`. Times before 1970 are clamped to the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339(&mut out, t);
    out
}

/// Appends `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ` to `out` (no formatting machinery: this runs for
/// every event).
pub fn push_rfc3339(out: &mut String, t: SystemTime) {
    let buf = rfc3339_bytes(t);
    // Every byte is an ASCII digit or separator.
    out.push_str(std::str::from_utf8(&buf).unwrap_or("1970-01-01T00:00:00.000Z"));
}

/// Length of every timestamp this module writes.
pub const RFC3339_LEN: usize = 24;

/// `t` as the ASCII bytes `YYYY-MM-DDTHH:MM:SS.mmmZ` (years clamped to 0000..=9999, times before
/// 1970 written as the epoch).
pub fn rfc3339_bytes(t: SystemTime) -> [u8; RFC3339_LEN] {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339_from_ms(since.as_secs(), since.subsec_millis())
}

/// [`rfc3339_bytes`] of `ms` milliseconds since the Unix epoch, without going through a
/// `SystemTime` (an event's time is kept in milliseconds, and written once per event).
pub fn rfc3339_ms_bytes(ms: u64) -> [u8; RFC3339_LEN] {
    rfc3339_from_ms(ms / 1000, (ms % 1000) as u32)
}

fn rfc3339_from_ms(secs: u64, millis: u32) -> [u8; RFC3339_LEN] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let year = year.clamp(0, 9999) as u32;
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, (rem / 3600) as u32, 2);
    put(14, ((rem % 3600) / 60) as u32, 2);
    put(17, (rem % 60) as u32, 2);
    put(20, millis, 3);
    buf
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
///
/// Works in 400-year eras (146,097 days each) counted from 0000-03-01, so that the leap day is
/// the last day of the shifted year and needs no special case.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) in the proleptic Gregorian calendar to days since 1970-01-01: the
/// inverse of [`civil_from_days`], in the same shifted 400-year eras.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Milliseconds since the epoch of a timestamp this module wrote
/// (`YYYY-MM-DDTHH:MM:SS.mmmZ`); `None` for anything else.
pub fn parse_rfc3339_ms(text: &[u8]) -> Option<u64> {
    let bytes: &[u8; RFC3339_LEN] = text.get(..RFC3339_LEN)?.try_into().ok()?;
    let number = |at: usize, width: usize| -> Option<u32> {
        bytes[at..at + width].iter().try_fold(0u32, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ];
    if separators.iter().any(|(at, c)| bytes[*at] != *c) {
        return None;
    }
    let (month, day) = (number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(i64::from(number(0, 4)?), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let ms = u64::try_from(secs).ok()? * 1000 + u64::from(number(20, 3)?);
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parsing_undoes_formatting() {
        for (secs, millis) in [
            (0, 0),
            (951_782_400, 5),
            (1_700_000_000, 123),
            (4_107_542_399, 999),
        ] {
            let t = at(secs, millis);
            assert_eq!(
                parse_rfc3339_ms(rfc3339(t).as_bytes()),
                Some(secs * 1000 + millis)
            );
        }
        assert_eq!(parse_rfc3339_ms(b"2023-11-14 22:13:20.123Z"), None);
        assert_eq!(parse_rfc3339_ms(b"2023-13-14T22:13:20.123Z"), None);
        assert_eq!(parse_rfc3339_ms(b"2023-11-14T22:13:20"), None);
    }

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn milliseconds_format_as_the_instant_they_name() {
        for ms in [
            0,
            5,
            999,
            1_000,
            951_782_400_005,
            1_700_000_000_123,
            u64::MAX / 1_000,
        ] {
            let t = UNIX_EPOCH + std::time::Duration::from_millis(ms);
            assert_eq!(rfc3339_ms_bytes(ms), rfc3339_bytes(t), "{ms}");
        }
    }

    #[test]
    fn epoch() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn known_instants() {
        // 2000-02-29 is a leap day in a year divisible by 400.
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_700_000_000, 123)), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(at(4_107_542_399, 999)), "2100-02-28T23:59:59.999Z");
        assert_eq!(rfc3339(at(4_107_542_400, 0)), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn every_day_for_a_few_centuries_is_consecutive() {
        let mut previous = civil_from_days(-1);
        for d in 0..200_000 {
            let current = civil_from_days(d);
            assert!(
                current > previous,
                "day {d}: {current:?} after {previous:?}"
            );
            assert!((1..=12).contains(&current.1) && (1..=31).contains(&current.2));
            previous = current;
        }
    }
}
