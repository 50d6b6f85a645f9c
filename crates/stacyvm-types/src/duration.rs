//! Go-compatible duration strings (`30m`, `1h30m`, `1.5s`, `250ms`).
//!
//! Every duration on the wire uses Go's `time.ParseDuration` syntax and `Duration.String()`
//! formatting (spec `rest-api.md` §1.3). [`GoDuration`] is a signed count of nanoseconds.

use std::fmt;
use std::time::Duration;

/// A signed duration in nanoseconds, parsed from and formatted as a Go duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub i64);

/// Why a duration string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    /// The text that failed to parse.
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

const NS: i64 = 1;
const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;

impl GoDuration {
    /// Zero duration.
    pub const ZERO: GoDuration = GoDuration(0);

    /// Builds a duration from whole seconds.
    pub const fn from_secs(secs: i64) -> Self {
        GoDuration(secs.saturating_mul(SEC))
    }

    /// Parses a Go duration string.
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        parse(s).map(GoDuration)
    }

    /// Nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// True when strictly positive.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// The std duration, or `None` when negative.
    pub fn to_std(self) -> Option<Duration> {
        u64::try_from(self.0).ok().map(Duration::from_nanos)
    }

    /// Converts a std duration, saturating at `i64::MAX` nanoseconds.
    pub fn from_std(d: Duration) -> Self {
        GoDuration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        GoDuration::from_std(d)
    }
}

/// Formats a std duration the way Go's `Duration.String()` does.
pub fn format_std(d: Duration) -> String {
    format(GoDuration::from_std(d).0)
}

fn err(input: &str, reason: &'static str) -> DurationError {
    DurationError { input: input.to_string(), reason }
}

fn unit_scale(unit: &str) -> Option<i64> {
    Some(match unit {
        "ns" => NS,
        "us" | "\u{b5}s" | "\u{3bc}s" => US,
        "ms" => MS,
        "s" => SEC,
        "m" => MIN,
        "h" => HOUR,
        _ => return None,
    })
}

/// Parses a Go duration string into signed nanoseconds.
fn parse(input: &str) -> Result<i64, DurationError> {
    let mut rest = input;
    let negative = if let Some(r) = rest.strip_prefix('-') {
        rest = r;
        true
    } else {
        if let Some(r) = rest.strip_prefix('+') {
            rest = r;
        }
        false
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err(input, "empty duration"));
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let frac_len = r.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &r[..frac_len];
            rest = &r[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err(input, "expected a number"));
        }
        let unit_len =
            rest.char_indices().find(|(_, c)| c.is_ascii_digit() || *c == '.').map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(err(input, "missing unit"));
        }
        let scale = unit_scale(unit).ok_or_else(|| err(input, "unknown unit"))? as i128;
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse::<i128>().map_err(|_| err(input, "number overflows"))?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(|| err(input, "overflow"))?;
        if !frac_part.is_empty() {
            // Fractions beyond nanosecond precision are truncated, as Go does.
            let mut frac_value: i128 = 0;
            let mut divisor: i128 = 1;
            for digit in frac_part.bytes().take(30) {
                frac_value = frac_value * 10 + i128::from(digit - b'0');
                divisor *= 10;
            }
            value += frac_value * scale / divisor;
        }
        total = total.checked_add(value).ok_or_else(|| err(input, "overflow"))?;
        if total > i64::MAX as i128 + 1 {
            return Err(err(input, "overflow"));
        }
    }
    let signed = if negative { -total } else { total };
    i64::try_from(signed).map_err(|_| err(input, "overflow"))
}

/// Formats signed nanoseconds exactly like Go's `Duration.String()`.
fn format(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}\u{b5}s", fraction(u, 1_000));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", fraction(u, 1_000_000));
    }
    let secs_total = u / 1_000_000_000;
    let sub = u % 1_000_000_000;
    let hours = secs_total / 3600;
    let minutes = (secs_total % 3600) / 60;
    let secs = secs_total % 60;
    let mut out = String::from(sign);
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&fraction(secs * 1_000_000_000 + sub, 1_000_000_000));
    out.push('s');
    out
}

/// `value / unit` with the remainder as a decimal fraction, trailing zeros trimmed.
fn fraction(value: u64, unit: u64) -> String {
    let whole = value / unit;
    let rem = value % unit;
    if rem == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_examples() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("0s", 0),
            ("30m", 30 * MIN),
            ("1h30m", HOUR + 30 * MIN),
            ("1.5s", 1_500 * MS),
            ("250ms", 250 * MS),
            ("1.5h", 90 * MIN),
            (".5s", 500 * MS),
            ("1.s", SEC),
            ("-2m", -2 * MIN),
            ("+3s", 3 * SEC),
            ("10us", 10 * US),
            ("10\u{b5}s", 10 * US),
            ("10\u{3bc}s", 10 * US),
            ("7ns", 7),
            ("1h1m1s1ms1us1ns", HOUR + MIN + SEC + MS + US + 1),
            ("2562047h47m16.854775807s", i64::MAX),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        for text in ["", "-", "1", "1d", "s", "1 s", " 1s", "1s ", "1.2.3s", "..s", "1hh", "9999999999999h"] {
            assert!(parse(text).is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (850, "850ns"),
            (1_500, "1.5\u{b5}s"),
            (127 * MS, "127ms"),
            (12_345_678, "12.345678ms"),
            (1_500 * MS, "1.5s"),
            (90 * SEC, "1m30s"),
            (30 * MIN, "30m0s"),
            (2 * HOUR, "2h0m0s"),
            (24 * HOUR, "24h0m0s"),
            (HOUR + SEC, "1h0m1s"),
            (-90 * SEC, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(format(*nanos), *want, "{nanos}");
        }
    }

    #[test]
    fn round_trips() {
        for nanos in [1, 999, 1_001, 59 * SEC + 1, 3 * HOUR + 7 * MIN + 250 * MS, -42 * MS] {
            assert_eq!(parse(&format(nanos)), Ok(nanos));
        }
    }
}
