//! The time of day in UTC, for documents that carry timestamps (npm's
//! `time` map, Maven's `lastUpdated`), without a date library.
//!
//! ```
//! use artgate_sdk::time::Utc;
//! let t = Utc::from_unix(1_796_638_500);
//! assert_eq!((t.year, t.month, t.day), (2026, 12, 7));
//! assert_eq!((t.hour, t.minute, t.second), (10, 15, 0));
//! ```

/// A moment in UTC, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Utc {
    /// The year (1970 and later).
    pub year: i64,
    /// The month, 1 to 12.
    pub month: u32,
    /// The day of the month, 1 to 31.
    pub day: u32,
    /// The hour, 0 to 23.
    pub hour: u32,
    /// The minute, 0 to 59.
    pub minute: u32,
    /// The second, 0 to 59.
    pub second: u32,
}

impl Utc {
    /// The moment `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: u64) -> Utc {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        Utc {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// Now, by the host's clock; `None` if the clock is before 1970.
    pub fn now() -> Option<Utc> {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| Utc::from_unix(d.as_secs()))
    }

    /// RFC 3339 with milliseconds, as npm writes it:
    /// `2026-12-07T10:15:00.000Z`.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// Digits only, as Maven writes `lastUpdated`: `20261207101500`.
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Utc;

    #[test]
    fn known_moments() {
        assert_eq!(Utc::from_unix(0).rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Utc::from_unix(1_700_000_000).rfc3339(),
            "2023-11-14T22:13:20.000Z"
        );
        // A leap day and the turn of a century that is a leap year.
        assert_eq!(Utc::from_unix(951_782_400).compact(), "20000229000000");
        assert_eq!(
            Utc::from_unix(1_709_251_199).rfc3339(),
            "2024-02-29T23:59:59.000Z"
        );
        assert_eq!(Utc::from_unix(1_796_638_500).compact(), "20261207101500");
    }

    #[test]
    fn now_is_after_2020() {
        assert!(Utc::now().is_some_and(|t| t.year >= 2020));
    }
}
