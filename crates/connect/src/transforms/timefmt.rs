//! Java `SimpleDateFormat` patterns in UTC, formatting (`TimestampRouter`,
//! `TimestampConverter`) and parsing (`TimestampConverter`).
//!
//! Supported letters: `y` (year; `yy` two digits), `M` (month; `MMM` / `MMMM` English
//! names), `d` (day of month), `D` (day of year), `E` (English day name; `EEEE` long),
//! `a` (`AM` / `PM`), `H` (hour 0-23), `h` (hour 1-12), `m` (minute), `s` (second), `S`
//! (millisecond), `Z` (`+0000`; parses `Z` or `±hhmm` / `±hh:mm`) and `X` (`Z`; parses
//! `Z`, `±hh`, `±hhmm` or `±hh:mm`). A letter repeated pads with zeros to that width. Text
//! in single quotes is literal (`''` is a quote); other non-letters are literal.
//!
//! Refused (a configuration error): the other letters (`G`, `Y`, `L`, `w`, `W`, `F`, `u`,
//! `k`, `K`, `z` and every letter Java does not know). Dates are proleptic Gregorian (Java
//! switches to the Julian calendar before 1582-10-15) and the time zone is always UTC.
//!
//! Parsing is lenient as Java's default: a field may overflow into the next (month 13 is
//! January of the next year), leading spaces before a number are skipped, a number takes
//! as many digits as there are unless another number follows directly (then at most the
//! letter count), and text after the pattern is ignored. A two-digit `yy` year is put in
//! the century starting 80 years before now, as Java does.

use crate::convert::days_from_civil;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Day names, Monday first.
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const SUPPORTED: &str = "yMdDEaHhmsSZX";
const JAVA_LETTERS: &str = "GyYMLwWDdFEuaHkKhmsSzZX";
const MS_PER_DAY: i64 = 86_400_000;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Literal(String),
    Field(char, usize),
}

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DateFormat(Vec<Token>);

/// Fields read by [`DateFormat::parse_millis`], with Java's defaults (1970-01-01T00:00Z).
struct Parsed {
    year: i64,
    month: i64,
    day: i64,
    day_of_year: Option<i64>,
    hour_of_day: Option<i64>,
    hour: i64,
    pm: bool,
    minute: i64,
    second: i64,
    milli: i64,
    offset_minutes: i64,
}

impl DateFormat {
    /// Compiles a pattern; the error is the message for the bad letter.
    pub(crate) fn parse(pattern: &str) -> Result<DateFormat, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        let mut literal = String::new();
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("Unterminated quote".to_string()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            literal.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            literal.push(c);
                            i += 1;
                        }
                    }
                }
            } else if c.is_ascii_alphabetic() {
                if !SUPPORTED.contains(c) {
                    let what = if JAVA_LETTERS.contains(c) {
                        "Unsupported"
                    } else {
                        "Illegal"
                    };
                    return Err(format!(
                        "{what} pattern character '{c}' (supported: y M d D E a H h m s S Z X)"
                    ));
                }
                let mut n = 1;
                while chars.get(i + n) == Some(&c) {
                    n += 1;
                }
                if c == 'X' && n > 3 {
                    return Err("invalid ISO 8601 format: length=".to_string() + &n.to_string());
                }
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(Token::Field(c, n));
                i += n;
            } else {
                literal.push(c);
                i += 1;
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(DateFormat(tokens))
    }

    /// Formats milliseconds since the epoch, in UTC.
    pub(crate) fn format(&self, millis: i64) -> String {
        let days = millis.div_euclid(MS_PER_DAY);
        let ms_of_day = millis.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let mut out = String::new();
        for token in &self.0 {
            match token {
                Token::Literal(s) => out.push_str(s),
                Token::Field(c, n) => {
                    let n = *n;
                    let number = match c {
                        'y' if n == 2 => year.rem_euclid(100),
                        'y' => year,
                        'M' if n >= 4 => {
                            out.push_str(MONTHS[(month - 1) as usize]);
                            continue;
                        }
                        'M' if n == 3 => {
                            out.push_str(&MONTHS[(month - 1) as usize][..3]);
                            continue;
                        }
                        'M' => month,
                        'd' => day,
                        'D' => days - days_from_civil(year, 1, 1) + 1,
                        'E' => {
                            // 1970-01-01 was a Thursday.
                            let name = DAYS[(days + 3).rem_euclid(7) as usize];
                            out.push_str(if n >= 4 { name } else { &name[..3] });
                            continue;
                        }
                        'a' => {
                            out.push_str(if ms_of_day < MS_PER_DAY / 2 {
                                "AM"
                            } else {
                                "PM"
                            });
                            continue;
                        }
                        'Z' => {
                            out.push_str("+0000");
                            continue;
                        }
                        'X' => {
                            out.push('Z');
                            continue;
                        }
                        'H' => ms_of_day / 3_600_000,
                        'h' => match ms_of_day / 3_600_000 % 12 {
                            0 => 12,
                            h => h,
                        },
                        'm' => ms_of_day / 60_000 % 60,
                        's' => ms_of_day / 1000 % 60,
                        _ => ms_of_day % 1000,
                    };
                    let width = if *c == 'y' && n == 2 { 2 } else { n };
                    out.push_str(&format!("{number:0width$}"));
                }
            }
        }
        out
    }

    /// Parses text as Java's lenient `SimpleDateFormat.parse(String)` in UTC: milliseconds
    /// since the epoch, or `None` when the text does not match.
    pub(crate) fn parse_millis(&self, text: &str) -> Option<i64> {
        let chars: Vec<char> = text.chars().collect();
        let mut pos = 0;
        let mut p = Parsed {
            year: 1970,
            month: 1,
            day: 1,
            day_of_year: None,
            hour_of_day: None,
            hour: 0,
            pm: false,
            minute: 0,
            second: 0,
            milli: 0,
            offset_minutes: 0,
        };
        for (i, token) in self.0.iter().enumerate() {
            match token {
                Token::Literal(lit) => {
                    for c in lit.chars() {
                        if chars.get(pos) != Some(&c) {
                            return None;
                        }
                        pos += 1;
                    }
                }
                Token::Field(c, n) => {
                    let abutting = matches!(
                        self.0.get(i + 1),
                        Some(Token::Field(next, m)) if is_numeric(*next, *m)
                    );
                    let limit = if abutting { *n } else { usize::MAX };
                    self.parse_field(*c, *n, limit, &chars, &mut pos, &mut p)?;
                }
            }
        }
        p.millis()
    }

    fn parse_field(
        &self,
        c: char,
        n: usize,
        limit: usize,
        chars: &[char],
        pos: &mut usize,
        p: &mut Parsed,
    ) -> Option<()> {
        if is_numeric(c, n) {
            while matches!(chars.get(*pos), Some(' ' | '\t')) {
                *pos += 1;
            }
            let start = *pos;
            let mut value: i64 = 0;
            while *pos - start < limit {
                match chars.get(*pos).and_then(|c| c.to_digit(10)) {
                    Some(d) => {
                        value = value.checked_mul(10)?.checked_add(i64::from(d))?;
                        *pos += 1;
                    }
                    None => break,
                }
            }
            if *pos == start {
                return None;
            }
            match c {
                'y' => {
                    p.year = if n <= 2 && *pos - start == 2 {
                        two_digit_year(value)
                    } else {
                        value
                    }
                }
                'M' => p.month = value,
                'd' => p.day = value,
                'D' => p.day_of_year = Some(value),
                'H' => p.hour_of_day = Some(value),
                'h' => p.hour = if value == 12 { 0 } else { value },
                'm' => p.minute = value,
                's' => p.second = value,
                _ => p.milli = value,
            }
            return Some(());
        }
        match c {
            'M' => {
                let i = match_name(chars, pos, &MONTHS)?;
                p.month = i as i64 + 1;
            }
            'E' => {
                match_name(chars, pos, &DAYS)?;
            }
            'a' => {
                let i = match_name(chars, pos, &["AM", "PM"])?;
                p.pm = i == 1;
            }
            _ => p.offset_minutes = parse_offset(chars, pos)?,
        }
        Some(())
    }
}

impl Parsed {
    fn millis(&self) -> Option<i64> {
        let months = self.year.checked_mul(12)?.checked_add(self.month - 1)?;
        let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
        if year.abs() > 100_000_000 {
            return None;
        }
        let days = match self.day_of_year {
            Some(d) => days_from_civil(year, 1, 1).checked_add(d - 1)?,
            None => days_from_civil(year, month as u32, 1).checked_add(self.day - 1)?,
        };
        let hour = match self.hour_of_day {
            Some(h) => h,
            None => self.hour + if self.pm { 12 } else { 0 },
        };
        let total = i128::from(days) * i128::from(MS_PER_DAY)
            + i128::from(hour) * 3_600_000
            + i128::from(self.minute) * 60_000
            + i128::from(self.second) * 1000
            + i128::from(self.milli)
            - i128::from(self.offset_minutes) * 60_000;
        i64::try_from(total).ok()
    }
}

/// Whether a pattern letter is read as a number.
fn is_numeric(c: char, n: usize) -> bool {
    match c {
        'M' => n <= 2,
        'E' | 'a' | 'Z' | 'X' => false,
        _ => true,
    }
}

/// Java's two-digit year: in the century starting 80 years before now.
fn two_digit_year(value: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let start = civil_from_days(now.div_euclid(MS_PER_DAY)).0 - 80;
    let year = start / 100 * 100 + value;
    if year < start {
        year + 100
    } else {
        year
    }
}

/// The index of the longest name (or its three-letter short form) at `pos`, ignoring case.
fn match_name(chars: &[char], pos: &mut usize, names: &[&str]) -> Option<usize> {
    let rest: String = chars[(*pos).min(chars.len())..].iter().collect();
    let rest = rest.to_lowercase();
    let mut best: Option<(usize, usize)> = None;
    for (i, name) in names.iter().enumerate() {
        let name = name.to_lowercase();
        for candidate in [name.as_str(), name.get(..3).unwrap_or(&name)] {
            if rest.starts_with(candidate)
                && best.is_none_or(|(_, len)| candidate.chars().count() > len)
            {
                best = Some((i, candidate.chars().count()));
            }
        }
    }
    let (i, len) = best?;
    *pos += len;
    Some(i)
}

/// A zone offset in minutes: `Z`, `±hh`, `±hhmm` or `±hh:mm`.
fn parse_offset(chars: &[char], pos: &mut usize) -> Option<i64> {
    let sign = match chars.get(*pos)? {
        'Z' => {
            *pos += 1;
            return Some(0);
        }
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let digit = |i: usize| chars.get(i).and_then(|c| c.to_digit(10)).map(i64::from);
    let mut i = *pos + 1;
    let hours = digit(i)? * 10 + digit(i + 1)?;
    i += 2;
    if chars.get(i) == Some(&':') {
        i += 1;
    }
    let minutes = match (digit(i), digit(i + 1)) {
        (Some(a), Some(b)) => {
            i += 2;
            a * 10 + b
        }
        _ => {
            if chars.get(i - 1) == Some(&':') {
                return None;
            }
            0
        }
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    *pos = i;
    Some(sign * (hours * 60 + minutes))
}

/// (year, month 1-12, day 1-31) of days since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: &str) -> DateFormat {
        DateFormat::parse(p).unwrap()
    }

    #[test]
    fn formats_and_parses_back() {
        let ms = 1_700_000_000_123;
        for p in [
            "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
            "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
            "EEE, dd MMM yyyy hh:mm:ss.SSS a",
            "yyyyMMddHHmmssSSS",
            "yyyy-DDD HH:mm:ss.SSS",
        ] {
            let text = f(p).format(ms);
            assert_eq!(f(p).parse_millis(&text), Some(ms), "{p}: {text}");
        }
        assert_eq!(
            f("EEEE d MMMM yyyy h a").format(ms),
            "Tuesday 14 November 2023 10 PM"
        );
        assert_eq!(f("yyyy-MM-dd").parse_millis("1970-01-02"), Some(MS_PER_DAY));
        // Lenient: month 13, trailing text, spaces before numbers, offsets.
        assert_eq!(
            f("yyyy-MM-dd").parse_millis("1969-13-02trailing"),
            Some(MS_PER_DAY)
        );
        assert_eq!(f("yyyy-M-d").parse_millis("1970- 1- 2"), Some(MS_PER_DAY));
        assert_eq!(
            f("yyyy-MM-dd HH:mmXXX").parse_millis("1970-01-02 01:00+01:00"),
            Some(MS_PER_DAY)
        );
        assert_eq!(
            f("yyyy-MM-dd HH:mmZ").parse_millis("1970-01-01 23:00-0100"),
            Some(MS_PER_DAY)
        );
        assert_eq!(f("yyyy-MM-dd").parse_millis("1970/01/02"), None);
        assert_eq!(f("yyyy-MM-dd").parse_millis(""), None);
        assert_eq!(
            f("MMM yyyy").parse_millis("feb 1970"),
            Some(31 * MS_PER_DAY)
        );
        assert!(DateFormat::parse("yyyy-ww").unwrap_err().contains("'w'"));
        assert!(DateFormat::parse("yyyy-q").unwrap_err().contains("'q'"));
        assert!(DateFormat::parse("'open").is_err());
    }
}
