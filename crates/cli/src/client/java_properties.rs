//! A reader for Java `.properties` files as `java.util.Properties.load` reads them (what
//! Kafka's tools do with `--command-config`): `#` and `!` comments, `key=value`,
//! `key: value` or `key value`, a line ending in an odd number of backslashes continues
//! on the next one (its leading blanks dropped), and the escapes `\t \n \r \f \uXXXX` and
//! `\<char>` in keys and values. The last of a repeated key wins.
//!
//! Differences, on purpose: a line without a key (`=value`) and a malformed `\u` escape
//! are errors naming the line (Java takes the first as the key "" and throws on the
//! second); values lose trailing blanks (Kafka trims its config values anyway); the file
//! is read as UTF-8 when it is valid UTF-8, else as ISO-8859-1 (Java's only encoding here).

use std::collections::BTreeMap;

/// A line that cannot be read: its number (from 1) and why.
#[derive(Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// The file's bytes as text: UTF-8 if valid, else ISO-8859-1.
pub fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Whether a line ends in an odd number of backslashes (a continuation).
fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Parses the text of a properties file into keys and values.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, LineError> {
    // Natural lines end at \n, \r or \r\n.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    let mut properties = BTreeMap::new();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let first = lines[i].trim_start_matches(is_blank);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut current = first;
        loop {
            if continues(current) {
                logical.push_str(&current[..current.len() - 1]);
                match lines.get(i) {
                    Some(next) => {
                        current = next.trim_start_matches(is_blank);
                        i += 1;
                    }
                    None => break,
                }
            } else {
                logical.push_str(current);
                break;
            }
        }
        let (key, value) = entry(&logical).map_err(|message| LineError {
            line: number,
            message,
        })?;
        properties.insert(key, value);
    }
    Ok(properties)
}

/// One logical line: the key ends at the first unescaped `=`, `:` or blank; blanks and
/// at most one `=` or `:` separate it from the value.
fn entry(line: &str) -> Result<(String, String), String> {
    let chars: Vec<char> = line.chars().collect();
    let mut key_end = chars.len();
    let mut value_start = chars.len();
    let mut separator = false;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if !escaped && (c == '=' || c == ':') {
            key_end = i;
            value_start = i + 1;
            separator = true;
            break;
        }
        if !escaped && is_blank(c) {
            key_end = i;
            value_start = i + 1;
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    while let Some(&c) = chars.get(value_start) {
        if is_blank(c) {
            value_start += 1;
        } else if !separator && (c == '=' || c == ':') {
            separator = true;
            value_start += 1;
        } else {
            break;
        }
    }
    let key = unescape(&chars[..key_end])?;
    if key.is_empty() {
        return Err("no key before the value".to_string());
    }
    let value = unescape(&chars[value_start.min(chars.len())..])?;
    Ok((key, value.trim_end_matches(is_blank).to_string()))
}

fn unescape(chars: &[char]) -> Result<String, String> {
    let mut out = String::with_capacity(chars.len());
    let mut units: Vec<u16> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            flush_units(&mut units, &mut out)?;
            out.push(c);
            continue;
        }
        let Some(&next) = chars.get(i) else {
            break; // a lone backslash at the very end (Java drops it)
        };
        i += 1;
        if next == 'u' {
            let hex: String = chars
                .get(i..i + 4)
                .map(|h| h.iter().collect())
                .ok_or("malformed \\uxxxx escape (four hexadecimal digits expected)".to_string())?;
            let unit = u16::from_str_radix(&hex, 16)
                .map_err(|_| format!("malformed \\uxxxx escape: \\u{hex}"))?;
            units.push(unit);
            i += 4;
            continue;
        }
        flush_units(&mut units, &mut out)?;
        out.push(match next {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\x0c',
            other => other,
        });
    }
    flush_units(&mut units, &mut out)?;
    Ok(out)
}

/// `\u` escapes are UTF-16 units (a character beyond U+FFFF is a surrogate pair).
fn flush_units(units: &mut Vec<u16>, out: &mut String) -> Result<(), String> {
    if units.is_empty() {
        return Ok(());
    }
    let text = String::from_utf16(units)
        .map_err(|_| "malformed \\uxxxx escape: an unpaired surrogate".to_string())?;
    out.push_str(&text);
    units.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> BTreeMap<String, String> {
        parse(text).unwrap()
    }

    #[test]
    fn separators_comments_and_blanks() {
        let p = props(
            "# a comment\n! another\n\n  security.protocol=SASL_SSL\nsasl.mechanism : PLAIN\n\
             client.id   moldau \nssl.endpoint.identification.algorithm=\nlonely\n",
        );
        assert_eq!(p["security.protocol"], "SASL_SSL");
        assert_eq!(p["sasl.mechanism"], "PLAIN");
        assert_eq!(p["client.id"], "moldau");
        assert_eq!(p["ssl.endpoint.identification.algorithm"], "");
        assert_eq!(p["lonely"], "");
        assert_eq!(p.len(), 5);
    }

    #[test]
    fn continuation_lines_and_escapes() {
        let p = props(
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\\n    \
             required username=\"alice\" \\\n  password=\"a\\\\b\";\n\
             key\\=with\\:seps = v\\tw\\u00e9\\n\nwin=a\\\\\nnext=1\n# not = continued \\\nx=y\r\nz=\\uD83D\\uDE00",
        );
        assert_eq!(
            p["sasl.jaas.config"],
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"alice\" password=\"a\\b\";"
        );
        assert_eq!(p["key=with:seps"], "v\twé\n");
        // An even number of backslashes does not continue the line.
        assert_eq!(p["win"], "a\\");
        assert_eq!(p["next"], "1");
        assert_eq!(p["x"], "y");
        assert_eq!(p["z"], "😀");
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        assert_eq!(props("a=1\na=2\n")["a"], "2");
    }

    #[test]
    fn bad_lines_name_their_number() {
        assert_eq!(
            parse("a=1\n\n=value\n").unwrap_err(),
            LineError {
                line: 3,
                message: "no key before the value".into()
            }
        );
        let err = parse("a=1\nb=\\u12\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("malformed"), "{}", err.message);
        let err = parse("a=\\uZZZZ").unwrap_err();
        assert_eq!(err.line, 1);
        // A continued entry is reported at its first line.
        let err = parse("a=1\nb=x\\\n  \\uD800").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn latin1_when_not_utf8() {
        assert_eq!(decode(b"p=caf\xe9"), "p=café");
        assert_eq!(decode("p=café".as_bytes()), "p=café");
    }
}
