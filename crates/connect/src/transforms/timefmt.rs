//! Java `SimpleDateFormat` patterns, formatting in UTC, for `TimestampRouter`.
//!
//! Supported letters: `y` (year; `yy` two digits), `M` (month; `MMM` / `MMMM` English
//! names), `d` (day of month), `H` (hour 0-23), `m` (minute), `s` (second), `S`
//! (millisecond); a letter repeated pads with zeros to that width. Text in single quotes is
//! literal (`''` is a quote); other non-letters are literal. Other pattern letters are a
//! configuration error.

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

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Literal(String),
    Field(char, usize),
}

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DateFormat(Vec<Token>);

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
                if !"yMdHmsS".contains(c) {
                    return Err(format!(
                        "Illegal or unsupported pattern character '{c}' (supported: y M d H m s S)"
                    ));
                }
                let mut n = 1;
                while chars.get(i + n) == Some(&c) {
                    n += 1;
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
        let days = millis.div_euclid(86_400_000);
        let ms_of_day = millis.rem_euclid(86_400_000);
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
                        'H' => ms_of_day / 3_600_000,
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
