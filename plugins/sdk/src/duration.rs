//! Durations in adapter options, in the gateway's own grammar.
//!
//! A duration is written the way the gateway's configuration writes
//! `mutable_ttl` and its timeouts: a whole number of seconds (`"90"`), or
//! one or more spans of a number and a unit, optionally separated by
//! spaces (`"500ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"2h 15min"`, `"1d"`,
//! `"1.5h"`). Units: `ns`, `us`, `ms`, `s`/`sec`/`second(s)`,
//! `m`/`min`/`minute(s)`, `h`/`hr`/`hour(s)`, `d`/`day(s)`,
//! `w`/`week(s)`, `M`/`month(s)` (30.44 days) and `y`/`year(s)`
//! (365.25 days). Leading and trailing white space is ignored.
//!
//! Adapters read options with
//! [`RemoteInfo::option_secs`](crate::types::RemoteInfo::option_secs),
//! which gives whole seconds: a sub-second rest rounds up, so `"500ms"` is
//! 1 s and only `"0"` (or `"0s"`, ...) is zero.

use std::fmt;

/// Why a duration did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    /// What is wrong with it, e.g. `unknown time unit "x"`.
    pub reason: String,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration (see the [module docs](self)) into whole seconds,
/// rounding a sub-second rest up.
///
/// ```
/// use artgate_sdk::duration::parse_secs;
/// assert_eq!(parse_secs("90"), Ok(90));
/// assert_eq!(parse_secs("1h30m"), Ok(5400));
/// assert_eq!(parse_secs("500ms"), Ok(1));
/// assert!(parse_secs("soon").is_err());
/// ```
pub fn parse_secs(s: &str) -> Result<u64, DurationError> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| DurationError {
            reason: "the number is too large".into(),
        });
    }
    let d = humantime::parse_duration(s).map_err(|e| DurationError {
        reason: e.to_string(),
    })?;
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 {
        Ok(secs)
    } else {
        secs.checked_add(1).ok_or_else(|| DurationError {
            reason: "the duration is too long".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, secs) in [
            ("0", 0),
            ("0s", 0),
            ("1", 1),
            ("60", 60),
            ("30s", 30),
            ("5m", 300),
            ("2h", 7200),
            ("1d", 86400),
            ("1w", 604_800),
            ("500ms", 1),
            ("1m30s", 90),
            ("1h30m", 5400),
            ("2h 15min", 8100),
            (" 7 ", 7),
            // Spaces between a number and its unit, and fractions, are
            // the gateway config's grammar too.
            ("5 m", 300),
            ("1.5s", 2),
            ("1.5h", 5400),
        ] {
            assert_eq!(parse_secs(s), Ok(secs), "{s}");
        }
        for s in [
            "",
            "   ",
            "s",
            "5x",
            "-1",
            "soon",
            "1.s",
            "5 parsecs",
            "99999999999999999999",
            "99999999999999999999s",
        ] {
            assert!(parse_secs(s).is_err(), "{s}");
        }
        assert!(
            parse_secs("ten minutes")
                .unwrap_err()
                .to_string()
                .contains("expected number")
        );
    }
}
