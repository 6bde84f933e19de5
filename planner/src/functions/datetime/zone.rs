//! Time zones as Java's `ZoneId.of` reads them: `UTC`, `Z`, offsets (`+02:00`, `+0200`, `-5`,
//! `GMT+2`), and IANA region ids (`America/Los_Angeles`, from chrono-tz). Parsing a zone name out
//! of text (pattern letter `z`) also accepts the common abbreviations (`PST`, `CEST`, ...).

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::{OffsetName, Tz};

use super::pattern::FmtZone;

/// A time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    /// A fixed offset in seconds, with the id it was written as.
    Fixed(i32, String),
    /// An IANA region.
    Region(Tz),
}

/// Abbreviations (as printed by pattern letter `z`) and the region they stand for.
const ABBREVIATIONS: [(&str, &str); 26] = [
    ("PST", "America/Los_Angeles"),
    ("PDT", "America/Los_Angeles"),
    ("PT", "America/Los_Angeles"),
    ("MST", "America/Denver"),
    ("MDT", "America/Denver"),
    ("CST", "America/Chicago"),
    ("CDT", "America/Chicago"),
    ("EST", "America/New_York"),
    ("EDT", "America/New_York"),
    ("AKST", "America/Anchorage"),
    ("AKDT", "America/Anchorage"),
    ("HST", "Pacific/Honolulu"),
    ("BST", "Europe/London"),
    ("WET", "Europe/Lisbon"),
    ("WEST", "Europe/Lisbon"),
    ("CET", "Europe/Paris"),
    ("CEST", "Europe/Paris"),
    ("EET", "Europe/Athens"),
    ("EEST", "Europe/Athens"),
    ("MSK", "Europe/Moscow"),
    ("IST", "Asia/Kolkata"),
    ("CST8", "Asia/Shanghai"),
    ("JST", "Asia/Tokyo"),
    ("KST", "Asia/Seoul"),
    ("AEST", "Australia/Sydney"),
    ("AEDT", "Australia/Sydney"),
];

/// Seconds of an offset written after its sign: `h`, `hh`, `hhmm`, `hh:mm`, `hhmmss`, `hh:mm:ss`.
fn offset_digits(s: &str) -> Option<i32> {
    let parts: Vec<&str> = if s.contains(':') {
        s.split(':').collect()
    } else {
        match s.len() {
            1 | 2 => vec![s],
            4 => vec![&s[..2], &s[2..]],
            6 => vec![&s[..2], &s[2..4], &s[4..]],
            _ => return None,
        }
    };
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    if parts.len() > 1 && parts[0].len() != 2 {
        return None;
    }
    let n: Vec<i32> = parts.iter().map(|p| p.parse().unwrap_or(99)).collect();
    let (h, m, sec) = (n[0], *n.get(1).unwrap_or(&0), *n.get(2).unwrap_or(&0));
    if h > 18 || m > 59 || sec > 59 {
        return None;
    }
    Some(h * 3600 + m * 60 + sec)
}

/// A signed offset: `+02:00`, `-0500`, `+3`.
fn signed_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.chars().next()? {
        '+' => (1, &s[1..]),
        '-' => (-1, &s[1..]),
        _ => return None,
    };
    offset_digits(rest).map(|v| sign * v)
}

/// The canonical id of a fixed offset (`+02:00`, `Z` for zero).
fn offset_id(secs: i32) -> String {
    if secs == 0 {
        return "Z".into();
    }
    let a = secs.unsigned_abs();
    let mut id = format!("{}{:02}:{:02}", if secs < 0 { '-' } else { '+' }, a / 3600, a / 60 % 60);
    if !a.is_multiple_of(60) {
        id.push_str(&format!(":{:02}", a % 60));
    }
    id
}

impl Zone {
    /// UTC.
    pub fn utc() -> Zone {
        Zone::Fixed(0, "UTC".into())
    }

    /// The zone `ZoneId.of(s)` gives, if any.
    pub fn of(s: &str) -> Option<Zone> {
        let s = s.trim();
        if s == "Z" {
            return Some(Zone::Fixed(0, "Z".into()));
        }
        if s.starts_with(['+', '-']) {
            return signed_offset(s).map(|o| Zone::Fixed(o, offset_id(o)));
        }
        for prefix in ["UTC", "GMT", "UT"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                if rest.is_empty() {
                    return Some(Zone::Fixed(0, prefix.into()));
                }
                if rest.starts_with(['+', '-']) {
                    return signed_offset(rest).map(|o| Zone::Fixed(o, format!("{prefix}{}", offset_id(o))));
                }
            }
        }
        s.parse::<Tz>().ok().map(Zone::Region)
    }

    /// A zone name (region id, abbreviation or offset form) at the start of `s`, and its length.
    pub fn parse_name_prefix(s: &[char]) -> Option<(Zone, usize)> {
        let run = s.iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-' | ':' | '~' | '.')).count();
        (1..=run).rev().find_map(|len| {
            let text: String = s[..len].iter().collect();
            let upper = text.to_ascii_uppercase();
            if let Some((_, region)) = ABBREVIATIONS.iter().find(|(a, _)| *a == upper) {
                return region.parse::<Tz>().ok().map(|tz| (Zone::Region(tz), len));
            }
            Zone::of(&text).map(|z| (z, len))
        })
    }

    /// An offset at the start of `s` (`Z` too when `allow_z`, and `GMT`/`UTC` prefixes).
    pub fn parse_offset_prefix(s: &[char], allow_z: bool) -> Option<(Zone, usize)> {
        let mut i = 0;
        if s.len() >= 3 {
            let head: String = s[..3].iter().collect::<String>().to_ascii_uppercase();
            if head == "GMT" || head == "UTC" {
                i = 3;
            }
        }
        if allow_z && i == 0 && s.first().is_some_and(|c| *c == 'Z' || *c == 'z') {
            return Some((Zone::Fixed(0, "Z".into()), 1));
        }
        let sign = match s.get(i) {
            Some('+') => 1,
            Some('-') => -1,
            _ if i > 0 => return Some((Zone::Fixed(0, "Z".into()), i)),
            _ => return None,
        };
        let run = s[i + 1..].iter().take_while(|c| c.is_ascii_digit() || **c == ':').count().min(8);
        (1..=run).rev().find_map(|len| {
            let text: String = s[i + 1..i + 1 + len].iter().collect();
            offset_digits(&text).map(|o| (Zone::Fixed(sign * o, offset_id(sign * o)), i + 1 + len))
        })
    }

    /// The offset and names of this zone at the UTC instant `ms`.
    pub fn at_utc(&self, ms: i64) -> Option<(NaiveDateTime, FmtZone)> {
        let utc = DateTime::from_timestamp_millis(ms)?.naive_utc();
        Some(match self {
            Zone::Fixed(o, id) => {
                let local = utc + chrono::Duration::seconds(*o as i64);
                (local, FmtZone { offset: *o, abbreviation: id.clone(), id: id.clone() })
            }
            Zone::Region(tz) => {
                let dt = tz.from_utc_datetime(&utc);
                let off = dt.offset();
                let secs = off.fix().local_minus_utc();
                let abbreviation = off.abbreviation().map(str::to_string).unwrap_or_else(|| offset_id(secs));
                (dt.naive_local(), FmtZone { offset: secs, abbreviation, id: tz.name().to_string() })
            }
        })
    }

    /// The UTC instant (ms) of the local date-time `dt` in this zone: the earlier one in an
    /// overlap, shifted forward by the gap in a gap (as Java does).
    pub fn local_to_utc(&self, dt: &NaiveDateTime) -> Option<i64> {
        match self {
            Zone::Fixed(o, _) => Some(dt.and_utc().timestamp_millis() - *o as i64 * 1000),
            Zone::Region(tz) => match tz.from_local_datetime(dt) {
                LocalResult::Single(x) => Some(x.timestamp_millis()),
                LocalResult::Ambiguous(a, _) => Some(a.timestamp_millis()),
                LocalResult::None => {
                    // In a gap: take the offset before the gap.
                    let before = tz.offset_from_utc_datetime(&(*dt - chrono::Duration::hours(3))).fix().local_minus_utc();
                    Some(dt.and_utc().timestamp_millis() - before as i64 * 1000)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids() {
        assert_eq!(Zone::of("+0200"), Some(Zone::Fixed(7200, "+02:00".into())));
        assert_eq!(Zone::of("-05:30"), Some(Zone::Fixed(-19800, "-05:30".into())));
        assert_eq!(Zone::of("GMT+2").map(|z| matches!(z, Zone::Fixed(7200, _))), Some(true));
        assert!(matches!(Zone::of("America/Los_Angeles"), Some(Zone::Region(_))));
        assert_eq!(Zone::of("Mars/Olympus"), None);
        let chars: Vec<char> = "PST rest".chars().collect();
        assert!(matches!(Zone::parse_name_prefix(&chars), Some((Zone::Region(_), 3))));
        let chars: Vec<char> = "+0000".chars().collect();
        assert_eq!(Zone::parse_offset_prefix(&chars, true), Some((Zone::Fixed(0, "Z".into()), 5)));
    }

    #[test]
    fn dst_aware_conversions() {
        let la = Zone::of("America/Los_Angeles").unwrap();
        let (local, z) = la.at_utc(1526075913000).unwrap();
        assert_eq!(local.to_string(), "2018-05-11 14:58:33");
        assert_eq!(z.abbreviation, "PDT");
        assert_eq!(la.local_to_utc(&local), Some(1526075913000));
    }
}
