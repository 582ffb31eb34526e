//! A JSON tree as Jackson's `JsonNode` sees it: numbers keep their text (Kafka reads floats
//! as `BigDecimal`, so no precision is lost before a schema says what the number is), objects
//! keep their keys in order with a repeated key replacing the earlier value. A parser that
//! never panics (nesting is limited) and a compact writer (Jackson's default output).

use std::fmt::Write as _;

/// Deepest nesting read (Jackson allows 1000; this is serde_json's 128, which keeps the recursive
/// conversions well within a thread's stack).
pub(crate) const MAX_DEPTH: usize = 128;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum JsonNode {
    /// What `readTree` gives for empty input (Jackson's `MissingNode`).
    Missing,
    Null,
    Bool(bool),
    /// A number, as written (always valid JSON number text).
    Number(String),
    String(String),
    Array(Vec<JsonNode>),
    Object(Vec<(String, JsonNode)>),
}

impl JsonNode {
    /// Jackson's `getNodeType()` name, in messages.
    pub(crate) fn node_type(&self) -> &'static str {
        match self {
            JsonNode::Missing => "MISSING",
            JsonNode::Null => "NULL",
            JsonNode::Bool(_) => "BOOLEAN",
            JsonNode::Number(_) => "NUMBER",
            JsonNode::String(_) => "STRING",
            JsonNode::Array(_) => "ARRAY",
            JsonNode::Object(_) => "OBJECT",
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&JsonNode> {
        match self {
            JsonNode::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn is_null_or_missing(&self) -> bool {
        matches!(self, JsonNode::Null | JsonNode::Missing)
    }

    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            JsonNode::String(s) => Some(s),
            _ => None,
        }
    }

    /// Sets a key of an object, replacing an earlier value in place (`ObjectNode.set`).
    pub(crate) fn object_set(entries: &mut Vec<(String, JsonNode)>, key: String, value: JsonNode) {
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        }
    }

    /// The number's parts, if it is one.
    pub(crate) fn number(&self) -> Option<Num> {
        match self {
            JsonNode::Number(text) => Num::parse(text),
            _ => None,
        }
    }

    /// Jackson's `intValue()`: numbers truncated to their low 32 bits, anything else 0.
    pub(crate) fn int_value(&self) -> i32 {
        self.long_value() as i32
    }

    /// Jackson's `longValue()`: numbers truncated to their low 64 bits, anything else 0.
    pub(crate) fn long_value(&self) -> i64 {
        self.number().map(|n| n.low_bits()).unwrap_or(0)
    }

    /// Jackson's `doubleValue()`: anything but a number is 0.
    pub(crate) fn double_value(&self) -> f64 {
        match self {
            JsonNode::Number(text) => text.parse().unwrap_or(0.0),
            _ => 0.0,
        }
    }

    /// Jackson's `floatValue()`: anything but a number is 0 (rounded once, from the text).
    pub(crate) fn float_value(&self) -> f32 {
        match self {
            JsonNode::Number(text) => text.parse().unwrap_or(0.0),
            _ => 0.0,
        }
    }

    /// Jackson's `isInt()`: an integer literal that fits in 32 bits.
    pub(crate) fn is_int(&self) -> bool {
        matches!(self, JsonNode::Number(t) if Num::parse(t).is_some_and(|n| n.integral) && t.parse::<i32>().is_ok())
    }

    /// Jackson's `isIntegralNumber()`: a number literal without fraction or exponent.
    pub(crate) fn is_integral(&self) -> bool {
        self.number().is_some_and(|n| n.integral)
    }

    /// Compact JSON text, as Jackson writes it.
    pub(crate) fn write(&self, out: &mut String) {
        match self {
            JsonNode::Missing | JsonNode::Null => out.push_str("null"),
            JsonNode::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            JsonNode::Number(text) => out.push_str(text),
            JsonNode::String(s) => write_string(s, out),
            JsonNode::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            JsonNode::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    pub(crate) fn to_json_string(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number's parts: sign, decimal digits (no leading zeros beyond one), and a
/// power-of-ten exponent, so that the value is `(-1)^negative * digits * 10^exponent`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Num {
    pub negative: bool,
    pub digits: String,
    pub exponent: i64,
    /// Written without fraction or exponent (Jackson's int/long/BigInteger nodes).
    pub integral: bool,
}

impl Num {
    pub(crate) fn parse(text: &str) -> Option<Num> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (int_part, frac) = match mantissa.find('.') {
            Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
            None => (mantissa, None),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty()
            || !all_digits(int_part)
            || !frac.is_none_or(|f| !f.is_empty() && all_digits(f))
        {
            return None;
        }
        let mut exponent: i64 = match exp {
            None => 0,
            Some(e) => {
                let body = e.strip_prefix(['+', '-']).unwrap_or(e);
                if body.is_empty() || !all_digits(body) {
                    return None;
                }
                // Huge exponents saturate (their values are out of any range anyway).
                let magnitude: i64 = body.parse().unwrap_or(i64::MAX / 4).min(i64::MAX / 4);
                if e.starts_with('-') {
                    -magnitude
                } else {
                    magnitude
                }
            }
        };
        let frac = frac.unwrap_or("");
        exponent -= frac.len() as i64;
        let mut digits: String = int_part.trim_start_matches('0').to_string();
        digits.push_str(frac);
        let digits = match digits.trim_start_matches('0') {
            "" => "0".to_string(),
            d => d.to_string(),
        };
        Some(Num {
            negative,
            digits,
            exponent,
            integral: exp.is_none() && frac.is_empty() && mantissa.find('.').is_none(),
        })
    }

    /// The low 64 bits of the integer part (`BigDecimal.longValue()` / `BigInteger.longValue()`).
    pub(crate) fn low_bits(&self) -> i64 {
        let mut value: u64 = 0;
        let kept = if self.exponent >= 0 {
            self.digits.len()
        } else {
            self.digits
                .len()
                .saturating_sub(self.exponent.unsigned_abs().min(usize::MAX as u64) as usize)
        };
        for b in self.digits.bytes().take(kept) {
            value = value.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        }
        if self.exponent > 0 && value != 0 {
            // 10^64 is a multiple of 2^64: more zeros leave nothing in the low bits.
            for _ in 0..self.exponent.min(64) {
                value = value.wrapping_mul(10);
            }
        }
        let value = value as i64;
        if self.negative {
            value.wrapping_neg()
        } else {
            value
        }
    }

    /// The value as an unscaled integer at `scale`, if exact and within an i128.
    pub(crate) fn unscaled_at(&self, scale: i32) -> Option<i128> {
        let shift = self.exponent.checked_add(i64::from(scale))?;
        let mut digits = self.digits.as_str();
        if shift < 0 {
            let drop = usize::try_from(shift.unsigned_abs()).ok()?;
            if drop > digits.len() {
                if digits.bytes().all(|b| b == b'0') {
                    return Some(0);
                }
                return None;
            }
            let (kept, dropped) = digits.split_at(digits.len() - drop);
            if !dropped.bytes().all(|b| b == b'0') {
                return None;
            }
            digits = if kept.is_empty() { "0" } else { kept };
        }
        let mut value: i128 = 0;
        for b in digits.bytes() {
            value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        if shift > 0 && value != 0 {
            for _ in 0..shift {
                value = value.checked_mul(10)?;
            }
        }
        Some(if self.negative { -value } else { value })
    }

    /// The scale the number was written with (`BigDecimal.scale()`).
    pub(crate) fn scale(&self) -> i64 {
        -self.exponent
    }
}

/// Why bytes are not JSON (the message names the position, as Jackson's does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError(pub String);

/// Reads one JSON value as Kafka's `JsonDeserializer` (Jackson's `readTree`, leading zeros
/// allowed in numbers) does: a UTF-8 BOM and
/// surrounding whitespace are skipped, empty input is [`JsonNode::Missing`] and anything
/// after the first value is ignored (`FAIL_ON_TRAILING_TOKENS` is off by default).
pub(crate) fn parse(bytes: &[u8]) -> Result<JsonNode, ParseError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut parser = Parser { bytes, pos: 0 };
    parser.skip_ws();
    if parser.pos == bytes.len() {
        return Ok(JsonNode::Missing);
    }
    parser.value(0)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> ParseError {
        ParseError(format!("{what} at byte {}", self.pos))
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn literal(&mut self, word: &[u8], node: JsonNode) -> Result<JsonNode, ParseError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(node)
        } else {
            Err(self.error("Unrecognized token"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<JsonNode, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("Document nesting depth exceeds the maximum allowed"));
        }
        self.skip_ws();
        match self.peek() {
            None => Err(self.error("Unexpected end-of-input")),
            Some(b'n') => self.literal(b"null", JsonNode::Null),
            Some(b't') => self.literal(b"true", JsonNode::Bool(true)),
            Some(b'f') => self.literal(b"false", JsonNode::Bool(false)),
            Some(b'"') => Ok(JsonNode::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(JsonNode::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(JsonNode::Array(items));
                        }
                        _ => return Err(self.error("Unexpected character: expected ',' or ']'")),
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(JsonNode::Object(entries));
                }
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.error(
                            "Unexpected character: expected double-quote to start field name",
                        ));
                    }
                    let key = self.string()?;
                    self.skip_ws();
                    if self.peek() != Some(b':') {
                        return Err(self.error("Unexpected character: expected ':'"));
                    }
                    self.pos += 1;
                    let value = self.value(depth + 1)?;
                    JsonNode::object_set(&mut entries, key, value);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(JsonNode::Object(entries));
                        }
                        _ => return Err(self.error("Unexpected character: expected ',' or '}'")),
                    }
                }
            }
            Some(_) => Err(self.error("Unexpected character")),
        }
    }

    fn number(&mut self) -> Result<JsonNode, ParseError> {
        let start = self.pos;
        let digits = |p: &mut Parser| {
            let from = p.pos;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos - from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let n = digits(self);
        if n == 0 {
            return Err(self.error("Unexpected character: expected digit"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(
                    self.error("Unexpected character: decimal point must be followed by a digit")
                );
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(
                    self.error("Unexpected character: exponent indicator not followed by a digit")
                );
            }
        }
        // Only ASCII was consumed.
        let text = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        Ok(JsonNode::Number(text))
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let hex = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.error("Unexpected character in Unicode escape"))?;
        self.pos += 4;
        Ok(hex)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1; // the opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("Unexpected end-of-input in a String value"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(
                            self.error("Unexpected end-of-input in character escape sequence")
                        );
                    };
                    self.pos += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let first = self.hex4()?;
                            if (0xD800..0xDC00).contains(&first)
                                && self.bytes[self.pos..].starts_with(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let second = self.hex4()?;
                                if (0xDC00..0xE000).contains(&second) {
                                    let code =
                                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                                    char::from_u32(code).unwrap_or('\u{FFFD}')
                                } else {
                                    self.pos = save;
                                    '\u{FFFD}'
                                }
                            } else {
                                // A lone surrogate has no UTF-8 form.
                                char::from_u32(first).unwrap_or('\u{FFFD}')
                            }
                        }
                        _ => return Err(self.error("Unrecognized character escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                b if b < 0x20 => {
                    return Err(
                        self.error("Illegal unquoted character: has to be escaped using backslash")
                    );
                }
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("Invalid UTF-8 in a String value"))
    }
}

/// Java's `Double.toString` (what Jackson writes for a double): plain between 10^-3 and
/// 10^7, otherwise `d.dddE±n`; the shortest digits that read back the same.
pub(crate) fn java_double(value: f64) -> String {
    java_float_text(value, format!("{value:?}"), format!("{value:e}"))
}

/// Java's `Float.toString`.
pub(crate) fn java_float(value: f32) -> String {
    java_float_text(f64::from(value), format!("{value:?}"), format!("{value:e}"))
}

fn java_float_text(value: f64, debug: String, sci: String) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        if debug.contains('e') {
            // Debug switched to exponent form; rebuild plain text from the exponent form.
            return plain_from_sci(&sci);
        }
        return debug;
    }
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exp}")
}

fn plain_from_sci(sci: &str) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let text = plain_decimal(&digits, exp - (digits.len() as i64 - 1));
    let text = if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    };
    if negative {
        format!("-{text}")
    } else {
        text
    }
}

/// `digits * 10^exponent` written without an exponent.
fn plain_decimal(digits: &str, exponent: i64) -> String {
    if exponent >= 0 {
        let mut s = digits.to_string();
        s.extend(std::iter::repeat_n('0', exponent as usize));
        s
    } else {
        let point = digits.len() as i64 + exponent;
        if point > 0 {
            let (a, b) = digits.split_at(point as usize);
            format!("{a}.{b}")
        } else {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        }
    }
}

/// Java's `BigDecimal.toString()` of `unscaled * 10^-scale`: plain unless the scale is
/// negative or the number is smaller than 10^-6, then scientific (`1.23E+5`).
pub(crate) fn big_decimal_string(unscaled: i128, scale: i32) -> String {
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let adjusted = -i64::from(scale) + (digits.len() as i64 - 1);
    let body = if scale >= 0 && adjusted >= -6 {
        plain_decimal(&digits, -i64::from(scale))
    } else {
        let (first, rest) = digits.split_at(1);
        let mut s = first.to_string();
        if !rest.is_empty() {
            s.push('.');
            s.push_str(rest);
        }
        s.push('E');
        if adjusted >= 0 {
            s.push('+');
        }
        s.push_str(&adjusted.to_string());
        s
    };
    if negative {
        format!("-{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_jackson_style() {
        let node =
            parse(br#" {"a": [1, -2.50, 3e2, true, null], "b": "x\"\u00e9\n", "a": {}} trailing"#)
                .unwrap();
        assert_eq!(node.to_json_string(), r#"{"a":{},"b":"x\"é\n"}"#);
        assert_eq!(parse(b"").unwrap(), JsonNode::Missing);
        // Kafka enables ALLOW_LEADING_ZEROS_FOR_NUMBERS.
        assert_eq!(parse(b"007").unwrap().int_value(), 7);
        assert_eq!(
            parse(b"\xEF\xBB\xBF 1").unwrap(),
            JsonNode::Number("1".into())
        );
        for bad in [
            &b"{"[..],
            b"[1,]",
            b"\"abc",
            b"{\"a\" 1}",
            b"nul",
            b"\"\xff\"",
            b"-",
            b"1.",
            b"'a'",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(MAX_DEPTH + 5);
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn numbers_behave_as_jacksons() {
        let n = |t: &str| JsonNode::Number(t.into());
        assert_eq!(n("4294967297").int_value(), 1);
        assert_eq!(n("-12.9").long_value(), -12);
        assert_eq!(n("1e2").long_value(), 100);
        assert_eq!(n("1e400").long_value(), 0);
        assert_eq!(n("18446744073709551617").long_value(), 1);
        assert!(n("2147483647").is_int() && !n("2147483648").is_int() && !n("1.0").is_int());
        assert!(n("2147483648").is_integral() && !n("1e2").is_integral());
        assert_eq!(Num::parse("12.30").unwrap().unscaled_at(2), Some(1230));
        assert_eq!(Num::parse("1.234").unwrap().unscaled_at(2), None);
        assert_eq!(Num::parse("-1e2").unwrap().unscaled_at(1), Some(-1000));
        assert_eq!(Num::parse("12.30").unwrap().scale(), 2);
    }

    #[test]
    fn java_number_text() {
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(1.5e-5), "1.5E-5");
        assert_eq!(java_double(-123.25), "-123.25");
        assert_eq!(java_float(1.1), "1.1");
        assert_eq!(big_decimal_string(156, 2), "1.56");
        assert_eq!(big_decimal_string(-5, 3), "-0.005");
        assert_eq!(big_decimal_string(12, -3), "1.2E+4");
        assert_eq!(big_decimal_string(1, 8), "1E-8");
        assert_eq!(big_decimal_string(0, 2), "0.00");
    }
}
