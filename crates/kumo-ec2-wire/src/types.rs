//! Scalar types of the wire that Rust lacks: timestamps and blobs.

use std::time::{SystemTime, UNIX_EPOCH};

/// An instant, in milliseconds since the Unix epoch: EC2 shows milliseconds. Stored (in a
/// launch template's data) as that number.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct DateTime(pub i64);

/// Binary data: base64 on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl DateTime {
    pub fn now() -> DateTime {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        DateTime(d.as_millis() as i64)
    }

    /// `2026-11-27T01:02:03.000Z`, as EC2 writes timestamps.
    pub fn to_iso8601(self) -> String {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// Parses ISO 8601 as clients send it: `YYYY-MM-DDTHH:MM:SS`, 0–9 fractional digits, and
    /// `Z` or a `±HH:MM` offset (none means UTC).
    pub fn parse(s: &str) -> Option<DateTime> {
        let b = s.as_bytes();
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let t = s.get(r)?;
            if !t.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return None;
        }
        let mut i = 19;
        let mut ms = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &s[start..i];
            if digits.is_empty() || digits.len() > 9 {
                return None;
            }
            let padded = format!("{digits:0<3}");
            ms = padded[..3].parse().ok()?;
        }
        let offset = match &s[i..] {
            "" | "Z" | "z" => 0,
            tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) => {
                let t = tz.as_bytes();
                if t[3] != b':' {
                    return None;
                }
                let oh: i64 = tz[1..3].parse().ok()?;
                let om: i64 = tz[4..6].parse().ok()?;
                let sign = if t[0] == b'-' { -1 } else { 1 };
                sign * (oh * 3600 + om * 60)
            }
            _ => return None,
        };
        let days = days_from_civil(y, mo, d);
        let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
        Some(DateTime(secs * 1000 + ms))
    }
}

// Howard Hinnant's civil calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_ec2() {
        assert_eq!(DateTime(0).to_iso8601(), "1970-01-01T00:00:00.000Z");
        let t = DateTime::parse("2026-11-27T01:02:03.5Z").unwrap();
        assert_eq!(t.to_iso8601(), "2026-11-27T01:02:03.500Z");
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let a = DateTime::parse("2026-11-27T03:02:03.123456789+02:00").unwrap();
        assert_eq!(a.to_iso8601(), "2026-11-27T01:02:03.123Z");
        assert!(DateTime::parse("2026-13-01T00:00:00Z").is_none());
        assert!(DateTime::parse("yesterday").is_none());
    }

    #[test]
    fn round_trips_days() {
        for days in [-1000, 0, 59, 60, 365, 11_000, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
