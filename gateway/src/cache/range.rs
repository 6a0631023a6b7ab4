//! `Range: bytes=...` for responses served from the store (single ranges:
//! `a-b`, `a-`, `-n`). Multi-range requests are answered with the whole
//! body, which RFC 9110 allows.

/// The result of evaluating a `Range` header against a body length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// No (usable) range: send everything with 200.
    Full,
    /// Send bytes `start..end` (end exclusive) with 206.
    Partial {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// Not satisfiable: 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Evaluate `header` (the raw `Range` value) for a body of `len` bytes.
pub fn parse(header: Option<&str>, len: u64) -> RangeSpec {
    let Some(h) = header else {
        return RangeSpec::Full;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if a.is_empty() {
        // Suffix: the last n bytes.
        if !digits(b) {
            return RangeSpec::Full;
        }
        let Ok(n) = b.parse::<u64>() else {
            return RangeSpec::Full;
        };
        if n == 0 || len == 0 {
            return RangeSpec::Unsatisfiable;
        }
        return RangeSpec::Partial {
            start: len.saturating_sub(n),
            end: len,
        };
    }
    if !digits(a) || !(b.is_empty() || digits(b)) {
        return RangeSpec::Full;
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeSpec::Full;
    };
    let end = if b.is_empty() {
        len
    } else {
        match b.parse::<u64>() {
            Ok(last) if last >= start => last.saturating_add(1).min(len),
            Ok(_) => return RangeSpec::Full,
            Err(_) => len,
        }
    };
    if start >= len {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Partial { start, end }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse(None, 10), RangeSpec::Full);
        assert_eq!(
            parse(Some("bytes=0-3"), 10),
            RangeSpec::Partial { start: 0, end: 4 }
        );
        assert_eq!(
            parse(Some("bytes=5-"), 10),
            RangeSpec::Partial { start: 5, end: 10 }
        );
        assert_eq!(
            parse(Some("bytes=-3"), 10),
            RangeSpec::Partial { start: 7, end: 10 }
        );
        assert_eq!(
            parse(Some("bytes=-30"), 10),
            RangeSpec::Partial { start: 0, end: 10 }
        );
        assert_eq!(
            parse(Some("bytes=8-100"), 10),
            RangeSpec::Partial { start: 8, end: 10 }
        );
        assert_eq!(parse(Some("bytes=10-"), 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse(Some("bytes=4-2"), 10), RangeSpec::Full);
        assert_eq!(parse(Some("bytes=0-1,4-5"), 10), RangeSpec::Full);
        assert_eq!(parse(Some("items=0-1"), 10), RangeSpec::Full);
        assert_eq!(parse(Some("bytes=+1-2"), 10), RangeSpec::Full);
        assert_eq!(
            parse(Some("bytes=99999999999999999999999-"), 10),
            RangeSpec::Full
        );
    }

    /// RFC 9110 §14.1.2 for one well-formed range, written out.
    fn model(first: Option<u64>, last: Option<u64>, len: u64) -> RangeSpec {
        match (first, last) {
            (None, Some(0)) => RangeSpec::Unsatisfiable,
            (None, Some(_)) if len == 0 => RangeSpec::Unsatisfiable,
            (None, Some(n)) => RangeSpec::Partial {
                start: len - n.min(len),
                end: len,
            },
            (Some(a), _) if a >= len => RangeSpec::Unsatisfiable,
            (Some(a), None) => RangeSpec::Partial { start: a, end: len },
            (Some(a), Some(b)) => RangeSpec::Partial {
                start: a,
                end: (b + 1).min(len),
            },
            (None, None) => RangeSpec::Full,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        #[test]
        fn single_ranges_follow_the_rfc(
            a in 0u64..2000,
            span in 0u64..2000,
            n in 0u64..3000,
            len in 0u64..2000,
            form in 0u8..3,
            ws in proptest::sample::select(vec!["", " ", "  "]),
        ) {
            let b = a + span;
            let (h, want) = match form {
                0 => (format!("bytes={ws}{a}{ws}-{ws}{b}{ws}"), model(Some(a), Some(b), len)),
                1 => (format!("{ws}bytes={a}-{ws}"), model(Some(a), None, len)),
                _ => (format!("bytes=-{n}"), model(None, Some(n), len)),
            };
            proptest::prop_assert_eq!(parse(Some(&h), len), want, "{:?} len {}", h, len);
        }

        #[test]
        fn reversed_and_multiple_ranges_are_ignored(a in 1u64..1000, d in 1u64..1000, len in 0u64..3000) {
            let reversed = format!("bytes={}-{}", a + d, a);
            proptest::prop_assert_eq!(parse(Some(&reversed), len), RangeSpec::Full);
            let multi = format!("bytes=0-{a},{}-", a + d);
            proptest::prop_assert_eq!(parse(Some(&multi), len), RangeSpec::Full);
        }

        #[test]
        fn huge_numbers_never_overflow(a in proptest::prelude::any::<u64>(), b in proptest::prelude::any::<u64>(), len in proptest::prelude::any::<u64>()) {
            for h in [format!("bytes={a}-{b}"), format!("bytes={a}-"), format!("bytes=-{b}"), format!("bytes={a}{b}{a}-")] {
                if let RangeSpec::Partial { start, end } = parse(Some(&h), len) {
                    proptest::prop_assert!(start < end && end <= len);
                }
            }
        }

        #[test]
        fn never_out_of_bounds(h in ".{0,40}", len in 0u64..1_000_000) {
            if let RangeSpec::Partial { start, end } = parse(Some(&h), len) {
                proptest::prop_assert!(start < end && end <= len);
            }
        }
    }
}
