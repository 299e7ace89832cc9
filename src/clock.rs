//! Timestamps: microseconds since the Unix epoch in storage, RFC 3339 UTC on the wire.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// The last value `Timestamp::now` handed out, so that it never repeats or goes back.
static LAST_NOW: AtomicI64 = AtomicI64::new(0);

impl Timestamp {
    /// The current time, strictly later than any earlier call in this process, so
    /// that ordering by creation time is exact even within one microsecond.
    pub fn now() -> Timestamp {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let mut last = LAST_NOW.load(Ordering::Relaxed);
        loop {
            let next = wall.max(last + 1);
            match LAST_NOW.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Timestamp(next),
                Err(seen) => last = seen,
            }
        }
    }

    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub fn unix_millis(self) -> i64 {
        self.0.div_euclid(1_000)
    }

    pub fn plus(self, duration: Duration) -> Timestamp {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }

    pub fn minus(self, duration: Duration) -> Timestamp {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(micros))
    }

    /// Parses an RFC 3339 timestamp with any offset (`2026-02-04T18:32:11Z`,
    /// `2026-02-04T19:32:11.5+01:00`).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let micros = parsed.unix_timestamp_nanos() / 1_000;
        i64::try_from(micros).ok().map(Timestamp)
    }
}

impl Timestamp {
    /// RFC 3339 UTC to the second, as in `2026-02-04T18:32:11Z`, without the
    /// formatting machinery (list pages print three per item).
    pub fn to_rfc3339(self) -> [u8; 20] {
        let seconds = self.unix_seconds();
        let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        let year = year.clamp(0, 9999) as u32;
        let mut out = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, value: u32, width: usize| {
            let mut value = value;
            for i in (0..width).rev() {
                out[at + i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, year, 4);
        put(5, month, 2);
        put(8, day, 2);
        put(11, (of_day / 3600) as u32, 2);
        put(14, (of_day % 3600 / 60) as u32, 2);
        put(17, (of_day % 60) as u32, 2);
        out
    }
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    /// RFC 3339 UTC to the second, as in `2026-02-04T18:32:11Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_rfc3339();
        f.write_str(std::str::from_utf8(&text).unwrap_or("9999-12-31T23:59:59Z"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.to_rfc3339();
        serializer.serialize_str(std::str::from_utf8(&text).unwrap_or("9999-12-31T23:59:59Z"))
    }
}

/// Reads what `Serialize` wrote (stored responses are read back this way).
impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 timestamp: {text:?}")))
    }
}

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(Timestamp)
    }
}

/// Parses a duration such as `90d`, `24h`, `15m` or `0s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: s, m, h or d (e.g. 24h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 90d, 24h, 15m, 0s)"))?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit {unit:?} (use s, m, h or d)"
            ));
        }
    };
    number
        .checked_mul(seconds_per_unit)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long (at most 100 years)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc_seconds() {
        let t = Timestamp::parse_rfc3339("2026-02-04T18:32:11.750Z").unwrap();
        assert_eq!(t.to_string(), "2026-02-04T18:32:11Z");
        let t = Timestamp::parse_rfc3339("2026-02-04T19:32:11+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-02-04T18:32:11Z");
    }

    #[test]
    fn fast_formatting_matches_the_calendar() {
        for seconds in [
            0i64,
            951_782_400,
            1_709_164_800,
            1_770_229_931,
            4_102_444_799,
            253_402_300_799,
        ] {
            let t = Timestamp::from_micros(seconds * 1_000_000 + 999_999);
            let expected = OffsetDateTime::from_unix_timestamp(seconds)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(t.to_string(), expected, "{seconds}");
        }
    }

    #[test]
    fn rejects_non_rfc3339() {
        for text in ["2026-02-04", "yesterday", "2026-02-04 18:32:11", ""] {
            assert!(Timestamp::parse_rfc3339(text).is_none(), "{text}");
        }
    }

    #[test]
    fn now_is_strictly_increasing() {
        let a = Timestamp::now();
        let b = Timestamp::now();
        assert!(b > a);
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        for bad in ["", "10", "h", "5w", "-1h", "1.5h", "99999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
