//! Java `DateTimeFormatter` patterns (as ksqlDB users write them: `yyyy-MM-dd'T'HH:mm:ss.SSSX`)
//! compiled once into tokens, then used both to format and to parse.
//!
//! Supported letters: G y u D M L d Q E a h K k H m s S n A X x Z z O VV; `'literal'`, `''` and
//! optional sections `[...]`. Parsing is case-insensitive (ksqlDB parses `JAN` and `Jan` alike),
//! numeric fields follow Java's widths (`dd` is two digits, `d` one or more; adjacent numeric
//! fields such as `yyyyMMdd` reserve the widths of those that follow) and missing fields default
//! to 1970-01-01T00:00:00.

use std::fmt::Write;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use super::zone::Zone;

const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// Text printed and matched as is.
    Lit(String),
    /// A pattern letter repeated `n` times.
    Field(char, usize),
    /// An optional section.
    Opt(Vec<Tok>),
}

/// A compiled Java date/time pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    toks: Vec<Tok>,
}

/// The zone a value is formatted in.
#[derive(Debug, Clone)]
pub struct FmtZone {
    /// Offset from UTC in seconds.
    pub offset: i32,
    /// The short name (`PDT`, `UTC`, `+02:00`).
    pub abbreviation: String,
    /// The zone id (`America/Los_Angeles`, `+02:00`).
    pub id: String,
}

impl FmtZone {
    /// UTC.
    pub fn utc() -> FmtZone {
        FmtZone { offset: 0, abbreviation: "UTC".into(), id: "UTC".into() }
    }
}

/// The fields a parse found.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    year: Option<i64>,
    month: Option<u32>,
    day: Option<u32>,
    day_of_year: Option<u32>,
    hour: Option<u32>,
    hour12: Option<u32>,
    pm: Option<bool>,
    minute: Option<u32>,
    second: Option<u32>,
    nano: Option<u32>,
    milli_of_day: Option<u32>,
    bc: bool,
    lenient: bool,
    /// A zone found in the text.
    pub zone: Option<Zone>,
}

fn is_numeric(c: char) -> bool {
    matches!(c, 'y' | 'u' | 'D' | 'd' | 'h' | 'K' | 'k' | 'H' | 'm' | 's' | 'S' | 'n' | 'A' | 'Q')
}

fn known(c: char) -> bool {
    is_numeric(c) || matches!(c, 'G' | 'M' | 'L' | 'E' | 'a' | 'X' | 'x' | 'Z' | 'z' | 'O' | 'V')
}

impl Pattern {
    /// Compiles a Java pattern.
    pub fn compile(p: &str) -> Result<Pattern, String> {
        let chars: Vec<char> = p.chars().collect();
        let mut stack: Vec<Vec<Tok>> = vec![Vec::new()];
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let top = stack.last_mut().expect("pattern stack");
            if c.is_ascii_alphabetic() {
                let mut n = 1;
                while i + n < chars.len() && chars[i + n] == c {
                    n += 1;
                }
                if !known(c) {
                    return Err(format!("unknown pattern letter: {c}"));
                }
                top.push(Tok::Field(c, n));
                i += n;
            } else if c == '\'' {
                let mut lit = String::new();
                i += 1;
                if i < chars.len() && chars[i] == '\'' {
                    top.push(Tok::Lit("'".into()));
                    i += 1;
                    continue;
                }
                loop {
                    match chars.get(i) {
                        None => return Err(format!("pattern ends inside a quoted literal: {p}")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            lit.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&x) => {
                            lit.push(x);
                            i += 1;
                        }
                    }
                }
                top.push(Tok::Lit(lit));
            } else if c == '[' {
                stack.push(Vec::new());
                i += 1;
            } else if c == ']' {
                if stack.len() < 2 {
                    return Err(format!("unmatched ] in pattern {p}"));
                }
                let inner = stack.pop().expect("optional section");
                stack.last_mut().expect("pattern stack").push(Tok::Opt(inner));
                i += 1;
            } else if matches!(c, '#' | '{' | '}') {
                return Err(format!("reserved character {c} in pattern {p}"));
            } else {
                match top.last_mut() {
                    Some(Tok::Lit(s)) => s.push(c),
                    _ => top.push(Tok::Lit(c.to_string())),
                }
                i += 1;
            }
        }
        while stack.len() > 1 {
            let inner = stack.pop().expect("optional section");
            stack.last_mut().expect("pattern stack").push(Tok::Opt(inner));
        }
        Ok(Pattern { toks: stack.pop().expect("pattern stack") })
    }

    fn any(&self, f: &dyn Fn(char) -> bool) -> bool {
        fn walk(toks: &[Tok], f: &dyn Fn(char) -> bool) -> bool {
            toks.iter().any(|t| match t {
                Tok::Field(c, _) => f(*c),
                Tok::Opt(inner) => walk(inner, f),
                Tok::Lit(_) => false,
            })
        }
        walk(&self.toks, f)
    }

    /// True if the pattern prints or reads a time of day.
    pub fn has_time(&self) -> bool {
        self.any(&|c| matches!(c, 'a' | 'h' | 'K' | 'k' | 'H' | 'm' | 's' | 'S' | 'n' | 'A'))
    }

    /// True if the pattern prints or reads a date.
    pub fn has_date(&self) -> bool {
        self.any(&|c| matches!(c, 'G' | 'y' | 'u' | 'D' | 'M' | 'L' | 'd' | 'Q' | 'E'))
    }

    /// True if the pattern prints or reads a zone or offset.
    pub fn has_zone(&self) -> bool {
        self.any(&|c| matches!(c, 'X' | 'x' | 'Z' | 'z' | 'O' | 'V'))
    }

    /// Formats a local date-time observed in `zone`.
    pub fn format(&self, dt: &NaiveDateTime, zone: &FmtZone) -> Result<String, String> {
        let mut out = String::new();
        format_toks(&self.toks, dt, zone, &mut out)?;
        Ok(out)
    }

    /// Parses `s` completely, as `DateTimeFormatter` does.
    pub fn parse(&self, s: &str) -> Result<Parsed, String> {
        let chars: Vec<char> = s.chars().collect();
        let mut p = Parsed::default();
        let end = parse_toks(&self.toks, &chars, 0, &mut p, false)?;
        if end != chars.len() {
            return Err(format!("text '{s}' could not be parsed: unparsed text found at index {end}"));
        }
        Ok(p)
    }

    /// Parses a prefix of `s` as `SimpleDateFormat` does (ksqlDB's PARSE_DATE and PARSE_TIME):
    /// text after the pattern is ignored, numbers take any width unless another number follows
    /// directly, `S` counts milliseconds, and dates past a month's end roll over (see
    /// [`Parsed::lenient_date`]).
    pub fn parse_lenient(&self, s: &str) -> Result<Parsed, String> {
        let chars: Vec<char> = s.chars().collect();
        let mut p = Parsed { lenient: true, ..Parsed::default() };
        parse_toks(&self.toks, &chars, 0, &mut p, true)?;
        Ok(p)
    }
}

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        let _ = write!(out, "-{:0width$}", -v, width = width);
    } else {
        let _ = write!(out, "{v:0width$}");
    }
}

fn offset_text(out: &mut String, secs: i32, colon: bool, with_minutes: bool, z_for_zero: bool) {
    if secs == 0 && z_for_zero {
        out.push('Z');
        return;
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m) = (a / 3600, a / 60 % 60);
    let _ = write!(out, "{sign}{h:02}");
    if with_minutes || m != 0 {
        if colon {
            out.push(':');
        }
        let _ = write!(out, "{m:02}");
    }
}

fn format_toks(toks: &[Tok], dt: &NaiveDateTime, zone: &FmtZone, out: &mut String) -> Result<(), String> {
    for t in toks {
        match t {
            Tok::Lit(s) => out.push_str(s),
            Tok::Opt(inner) => format_toks(inner, dt, zone, out)?,
            Tok::Field(c, n) => {
                let n = *n;
                match c {
                    'G' => out.push_str(if dt.year() > 0 { "AD" } else { "BC" }),
                    'y' | 'u' => {
                        let y = if *c == 'y' && dt.year() <= 0 { 1 - dt.year() as i64 } else { dt.year() as i64 };
                        if n == 2 {
                            pad(out, y.rem_euclid(100), 2);
                        } else {
                            pad(out, y, n);
                        }
                    }
                    'D' => pad(out, dt.ordinal() as i64, n),
                    'M' | 'L' => match n {
                        1 | 2 => pad(out, dt.month() as i64, n),
                        3 => out.push_str(&MONTHS[dt.month0() as usize][..3]),
                        4 => out.push_str(MONTHS[dt.month0() as usize]),
                        _ => out.push_str(&MONTHS[dt.month0() as usize][..1]),
                    },
                    'd' => pad(out, dt.day() as i64, n),
                    'Q' => pad(out, (dt.month0() / 3 + 1) as i64, n),
                    'E' => {
                        let d = DAYS[dt.weekday().num_days_from_monday() as usize];
                        out.push_str(if n >= 4 { d } else { &d[..3] });
                    }
                    'a' => out.push_str(if dt.hour() < 12 { "AM" } else { "PM" }),
                    'h' => pad(out, ((dt.hour() + 11) % 12 + 1) as i64, n),
                    'K' => pad(out, (dt.hour() % 12) as i64, n),
                    'k' => pad(out, if dt.hour() == 0 { 24 } else { dt.hour() as i64 }, n),
                    'H' => pad(out, dt.hour() as i64, n),
                    'm' => pad(out, dt.minute() as i64, n),
                    's' => pad(out, dt.second() as i64, n),
                    'S' => {
                        let nanos = format!("{:09}", dt.nanosecond() % 1_000_000_000);
                        out.push_str(&nanos[..n.min(9)]);
                        for _ in 9..n {
                            out.push('0');
                        }
                    }
                    'n' => pad(out, (dt.nanosecond() % 1_000_000_000) as i64, n),
                    'A' => pad(out, (dt.num_seconds_from_midnight() as i64) * 1000 + (dt.nanosecond() / 1_000_000) as i64, n),
                    'X' => offset_text(out, zone.offset, n >= 3, n >= 2, true),
                    'x' => offset_text(out, zone.offset, n >= 3, n >= 2, false),
                    'Z' => match n {
                        1..=3 => offset_text(out, zone.offset, false, true, false),
                        4 => {
                            out.push_str("GMT");
                            if zone.offset != 0 {
                                offset_text(out, zone.offset, true, true, false);
                            }
                        }
                        _ => offset_text(out, zone.offset, true, true, true),
                    },
                    'O' => {
                        out.push_str("GMT");
                        if zone.offset != 0 {
                            let a = zone.offset.unsigned_abs();
                            let _ = write!(out, "{}{}", if zone.offset < 0 { '-' } else { '+' }, a / 3600);
                            if !(a / 60).is_multiple_of(60) || n == 4 {
                                let _ = write!(out, ":{:02}", a / 60 % 60);
                            }
                        }
                    }
                    'z' => out.push_str(&zone.abbreviation),
                    'V' => out.push_str(&zone.id),
                    other => return Err(format!("unsupported pattern letter {other}")),
                }
            }
        }
    }
    Ok(())
}

/// `SimpleDateFormat`'s two-digit year: within 80 years before and 20 after now.
fn two_digit_year(v: i64) -> i64 {
    let now = chrono::Utc::now().year() as i64;
    let start = now - 80;
    let y = start - start.rem_euclid(100) + v;
    if y < start {
        y + 100
    } else {
        y
    }
}

/// The width of a numeric field when parsing: (min digits, max digits).
fn widths(c: char, n: usize) -> (usize, usize) {
    match (c, n) {
        ('y' | 'u', 2) => (2, 2),
        ('y' | 'u', 1) => (1, 10),
        ('y' | 'u', n) => (n, 10.max(n)),
        ('S', n) => (n, n),
        ('n' | 'A', n) => (n, 10.max(n)),
        (_, 1) => (1, 10),
        (_, n) => (n, n),
    }
}

fn digits_run(s: &[char], i: usize) -> usize {
    s[i..].iter().take_while(|c| c.is_ascii_digit()).count()
}

fn match_text(s: &[char], i: usize, words: &[&str]) -> Option<(usize, usize)> {
    // The longest word that matches wins (so "May" does not cut "Mayday" short).
    let mut best: Option<(usize, usize)> = None;
    for (k, w) in words.iter().enumerate() {
        let len = w.chars().count();
        if i + len <= s.len() && s[i..i + len].iter().zip(w.chars()).all(|(a, b)| a.eq_ignore_ascii_case(&b)) && best.is_none_or(|(_, l)| len > l) {
            best = Some((k, len));
        }
    }
    best
}

fn parse_toks(toks: &[Tok], s: &[char], mut i: usize, p: &mut Parsed, lenient: bool) -> Result<usize, String> {
    for (k, t) in toks.iter().enumerate() {
        match t {
            Tok::Lit(l) => {
                for c in l.chars() {
                    match s.get(i) {
                        Some(x) if x.to_lowercase().eq(c.to_lowercase()) => i += 1,
                        _ => return Err(format!("expected '{l}' at index {i}")),
                    }
                }
            }
            Tok::Opt(inner) => {
                let mut trial = p.clone();
                if let Ok(j) = parse_toks(inner, s, i, &mut trial, lenient) {
                    *p = trial;
                    i = j;
                }
            }
            Tok::Field(c, n) if is_numeric(*c) => {
                let (min, mut max) = if lenient { (1, 10) } else { widths(*c, *n) };
                // Adjacent numeric fields: leave the digits the following fixed-width ones need.
                let reserved: usize = toks[k + 1..]
                    .iter()
                    .map_while(|t| match t {
                        Tok::Field(c2, n2) if is_numeric(*c2) => Some(widths(*c2, *n2).0),
                        Tok::Field('M' | 'L', n2) if *n2 <= 2 => Some(*n2),
                        _ => None,
                    })
                    .sum();
                let run = digits_run(s, i);
                if reserved > 0 {
                    max = if lenient { *n } else { max.min(run.saturating_sub(reserved)).max(min) };
                }
                let take = run.min(max);
                if take < min {
                    return Err(format!("expected {min} digits at index {i}"));
                }
                let text: String = s[i..i + take].iter().collect();
                let v: i64 = text.parse().map_err(|_| format!("bad number {text}"))?;
                i += take;
                let small = |v: i64| u32::try_from(v).map_err(|_| format!("value {v} out of range"));
                match c {
                    'y' | 'u' if *n == 2 && lenient && take == 2 => p.year = Some(two_digit_year(v)),
                    'y' | 'u' => p.year = Some(if *n == 2 && !lenient { 2000 + v } else { v }),
                    'D' => p.day_of_year = Some(small(v)?),
                    'd' => p.day = Some(small(v)?),
                    'Q' => {}
                    'h' | 'K' => p.hour12 = Some(small(v)? % 12),
                    'k' => p.hour = Some(small(v)? % 24),
                    'H' => p.hour = Some(small(v)?),
                    'm' => p.minute = Some(small(v)?),
                    's' => p.second = Some(small(v)?),
                    'S' if lenient => p.nano = Some(small(v * 1_000_000)?),
                    'S' => p.nano = Some(small(v * 10i64.pow(9u32.saturating_sub(take as u32)))?),
                    'n' => p.nano = Some(small(v)?),
                    'A' => p.milli_of_day = Some(small(v)?),
                    _ => {}
                }
            }
            Tok::Field(c, n) => match c {
                'M' | 'L' if *n <= 2 => {
                    let adjacent = matches!(toks.get(k + 1), Some(Tok::Field(c2, _)) if is_numeric(*c2));
                    let (min, max) = if adjacent { (*n, *n) } else if *n == 1 || lenient { (1, 2) } else { (2, 2) };
                    let take = digits_run(s, i).min(max);
                    if take < min {
                        return Err(format!("expected a month at index {i}"));
                    }
                    let text: String = s[i..i + take].iter().collect();
                    p.month = Some(text.parse().map_err(|_| "bad month".to_string())?);
                    i += take;
                }
                'M' | 'L' => {
                    let full = match_text(s, i, &MONTHS);
                    let short: Vec<&str> = MONTHS.iter().map(|m| &m[..3]).collect();
                    let (m, len) = full.or_else(|| match_text(s, i, &short)).ok_or_else(|| format!("expected a month name at index {i}"))?;
                    p.month = Some(m as u32 + 1);
                    i += len;
                }
                'E' => {
                    let short: Vec<&str> = DAYS.iter().map(|d| &d[..3]).collect();
                    let (_, len) = match_text(s, i, &DAYS).or_else(|| match_text(s, i, &short)).ok_or_else(|| format!("expected a day name at index {i}"))?;
                    i += len;
                }
                'a' => {
                    let (k, len) = match_text(s, i, &["AM", "PM"]).ok_or_else(|| format!("expected AM or PM at index {i}"))?;
                    p.pm = Some(k == 1);
                    i += len;
                }
                'G' => {
                    let (k, len) = match_text(s, i, &["AD", "BC"]).ok_or_else(|| format!("expected an era at index {i}"))?;
                    p.bc = k == 1;
                    i += len;
                }
                'X' | 'x' | 'Z' | 'O' => {
                    let (z, len) = Zone::parse_offset_prefix(&s[i..], *c == 'X').ok_or_else(|| format!("expected an offset at index {i}"))?;
                    p.zone = Some(z);
                    i += len;
                }
                'z' | 'V' => {
                    let (z, len) = Zone::parse_name_prefix(&s[i..]).ok_or_else(|| format!("expected a time zone at index {i}"))?;
                    p.zone = Some(z);
                    i += len;
                }
                other => return Err(format!("unsupported pattern letter {other}")),
            },
        }
    }
    Ok(i)
}

impl Parsed {
    /// The date, defaulting to 1970-01-01 for missing fields; a day past the month's end is
    /// moved to its last day (Java's SMART resolver), or rolls over after a lenient parse.
    pub fn date(&self) -> Option<NaiveDate> {
        let year = self.year.unwrap_or(1970);
        let year = i32::try_from(if self.bc { 1 - year } else { year }).ok()?;
        let month = self.month.unwrap_or(1);
        let day = self.day.unwrap_or(1);
        if self.lenient {
            return Self::lenient_date(year, month, self.day_of_year.unwrap_or(day));
        }
        if let Some(doy) = self.day_of_year {
            return NaiveDate::from_yo_opt(year, doy);
        }
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        (0..4).find_map(|back| NaiveDate::from_ymd_opt(year, month, day.saturating_sub(back)))
    }

    /// `SimpleDateFormat`'s lenient date: months past 12 and days past the month's end roll over.
    pub fn lenient_date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
        let first = NaiveDate::from_ymd_opt(year, 1, 1)?.checked_add_months(chrono::Months::new(month.checked_sub(1)?))?;
        first.checked_add_days(chrono::Days::new(day.checked_sub(1)? as u64))
    }

    /// The time of day, defaulting to midnight for missing fields.
    pub fn time(&self) -> Option<NaiveTime> {
        if let Some(ms) = self.milli_of_day {
            return NaiveTime::from_num_seconds_from_midnight_opt(ms / 1000, ms % 1000 * 1_000_000);
        }
        let hour = match (self.hour, self.hour12, self.pm) {
            (Some(h), _, _) => h,
            (None, Some(h), pm) => h + if pm == Some(true) { 12 } else { 0 },
            (None, None, Some(true)) => 12,
            (None, None, _) => 0,
        };
        NaiveTime::from_hms_nano_opt(hour, self.minute.unwrap_or(0), self.second.unwrap_or(0), self.nano.unwrap_or(0))
    }

    /// The local date-time.
    pub fn datetime(&self) -> Option<NaiveDateTime> {
        Some(NaiveDateTime::new(self.date()?, self.time()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(p: &str, dt: &str) -> String {
        let dt = NaiveDateTime::parse_from_str(dt, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        Pattern::compile(p).unwrap().format(&dt, &FmtZone::utc()).unwrap()
    }

    fn parse(p: &str, s: &str) -> Option<NaiveDateTime> {
        Pattern::compile(p).unwrap().parse(s).ok()?.datetime()
    }

    #[test]
    fn formats_java_patterns() {
        assert_eq!(fmt("yyyy-MM-dd'T'HH:mm:ss.SSS", "2018-05-11 21:58:33.5"), "2018-05-11T21:58:33.500");
        assert_eq!(fmt("dd-MMM-yyyy", "2022-01-01 00:00:00"), "01-Jan-2022");
        assert_eq!(fmt("dd-MM-yyyy'Sophia'", "1969-12-31 00:00:00"), "31-12-1969Sophia");
        assert_eq!(fmt("hh:mm a EEE EEEE MMMM yy", "2020-02-03 13:04:00"), "01:04 PM Mon Monday February 20");
        assert_eq!(fmt("HHmmss'AAAAA'", "1970-01-01 00:20:34"), "002034AAAAA");
        assert_eq!(fmt("yyyy-MM-dd'T'HH:mm:ssXXX", "2020-01-01 00:00:00"), "2020-01-01T00:00:00Z");
        assert_eq!(fmt("''yy''", "2020-01-01 00:00:00"), "'20'");
    }

    #[test]
    fn parses_java_patterns() {
        let d = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        assert_eq!(parse("yyyy-MM-dd'Lit'", "2018-05-11Lit"), Some(d("2018-05-11 00:00:00")));
        assert_eq!(parse("dd-MMM-yyyy", "01-JAN-2022"), Some(d("2022-01-01 00:00:00")));
        assert_eq!(parse("MMM-yyyy", "jan-2022"), Some(d("2022-01-01 00:00:00")));
        assert_eq!(parse("yyyyMMdd", "20210305"), Some(d("2021-03-05 00:00:00")));
        assert_eq!(parse("hh:mm:ss a", "01:00:00 Pm"), Some(d("1970-01-01 13:00:00")));
        assert_eq!(parse("HH/mm/ss", "11/05/19"), Some(d("1970-01-01 11:05:19")));
        assert_eq!(parse("yyyy-MM-dd'T'HH:mm:ss.S", "2019-08-27T13:31:09.2"), Some(d("2019-08-27 13:31:09.2")));
        assert_eq!(parse("yyyy-MM-dd[ HH:mm]", "2019-08-27"), Some(d("2019-08-27 00:00:00")));
        assert_eq!(parse("yyyy-MM-dd[ HH:mm]", "2019-08-27 10:11"), Some(d("2019-08-27 10:11:00")));
        assert_eq!(parse("yyyy-MM-dd", "2021-02-30"), Some(d("2021-02-28 00:00:00")));
        assert_eq!(parse("yyyy-MM-dd", "2004"), None);
        assert_eq!(parse("yyyy-MM-dd", "2004-01-01x"), None);
        assert_eq!(parse("dd", "5"), None);
        assert!(Pattern::compile("yyyy-bb").is_err());
        let lenient = |p: &str, s: &str| Pattern::compile(p).unwrap().parse_lenient(s).ok()?.datetime();
        assert_eq!(lenient("yyyy-MM-dd", "2003-12-24-01-01"), Some(d("2003-12-24 00:00:00")));
        assert_eq!(lenient("yyyy-MM-dd", "2004"), None);
        assert_eq!(lenient("yyyy-MM-dd", "2021-02-30"), Some(d("2021-03-02 00:00:00")));
        assert_eq!(lenient("yyyyMMdd", "20210305"), Some(d("2021-03-05 00:00:00")));
        assert_eq!(lenient("dd/MM/yyyy", "1/5/2019"), Some(d("2019-05-01 00:00:00")));
    }
}
