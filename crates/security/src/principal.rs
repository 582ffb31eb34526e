//! How a connection's principal is named, as Kafka names it.
//!
//! - [`KafkaPrincipal`], `type:name` (`User:alice`), parsed with Kafka's
//!   `SecurityUtils.parseKafkaPrincipal` rules.
//! - [`distinguished_name`], a TLS client certificate's subject printed the way Java's
//!   `X500Principal.getName()` prints it (RFC 2253 form), since that string is what
//!   operators write `ssl.principal.mapping.rules` against.
//! - [`SslPrincipalMapper`], Kafka's `ssl.principal.mapping.rules`, with its rule grammar,
//!   its errors, and Java's regex and `replaceAll` semantics. The rules are Java regexes;
//!   they are translated to the `regex` crate's syntax, and a construct whose meaning would
//!   differ is refused when the rules are parsed (see `JavaRegex`), never guessed.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use x509_parser::asn1_rs::{Any, Class, Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

/// Errors of principal naming. Messages follow Kafka's where Kafka has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// Not `principalType:principalName` (Kafka's `SecurityUtils.parseKafkaPrincipal`).
    #[error("expected a string in format principalType:principalName but got {0}")]
    InvalidPrincipal(String),
    /// A rule that Kafka's rule grammar does not accept whole.
    #[error("Invalid rule: `{rule}`, unmatched substring: `{unmatched}`")]
    InvalidRule { rule: String, unmatched: String },
    /// The rule's pattern is not a valid Java regex (Kafka: `PatternSyntaxException`).
    #[error("Invalid rule pattern `{pattern}`: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    /// The rule's pattern uses a Java regex construct this translation does not mirror
    /// exactly; refused rather than matched differently from Kafka.
    #[error("Unsupported rule pattern `{pattern}`: {construct} is not supported")]
    UnsupportedPattern { pattern: String, construct: String },
    /// A rule matched but Java's `replaceAll` would throw (a bad `$` group reference or
    /// trailing `\` in the replacement, a group number beyond `int`); Kafka fails the
    /// authentication with that exception.
    #[error("Rule `{rule}` failed on `{name}`: {reason}")]
    RuleFailed {
        rule: String,
        name: String,
        reason: String,
    },
    /// No rule matched (Kafka's `NoMatchingRule`).
    #[error("No rules apply to {name}, rules [{rules}]")]
    NoMatchingRule { name: String, rules: String },
    /// The certificate (or its subject) could not be parsed.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
}

// ---------------------------------------------------------------------------------------
// KafkaPrincipal
// ---------------------------------------------------------------------------------------

/// A principal: its type (`User` for every built-in authentication) and name.
/// Kafka compares principals by these two fields only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    pub principal_type: String,
    pub name: String,
}

/// `User:ANONYMOUS`, the principal of an unauthenticated (PLAINTEXT, or SSL without
/// client auth) connection.
pub static ANONYMOUS: LazyLock<KafkaPrincipal> = LazyLock::new(KafkaPrincipal::anonymous);

impl KafkaPrincipal {
    /// Kafka's `KafkaPrincipal.USER_TYPE`.
    pub const USER_TYPE: &'static str = "User";
    /// The name of [`ANONYMOUS`].
    pub const ANONYMOUS_NAME: &'static str = "ANONYMOUS";

    pub fn new(principal_type: impl Into<String>, name: impl Into<String>) -> Self {
        KafkaPrincipal {
            principal_type: principal_type.into(),
            name: name.into(),
        }
    }

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Self {
        Self::new(Self::USER_TYPE, name)
    }

    /// `User:ANONYMOUS`.
    pub fn anonymous() -> Self {
        Self::user(Self::ANONYMOUS_NAME)
    }

    /// Kafka's `SecurityUtils.parseKafkaPrincipal`: split at the first `:`; the type and
    /// the name may each be empty, but the string must be non-empty and hold a colon.
    pub fn parse(s: &str) -> Result<Self, PrincipalError> {
        match s.split_once(':') {
            Some((principal_type, name)) if !s.is_empty() => Ok(Self::new(principal_type, name)),
            _ => Err(PrincipalError::InvalidPrincipal(s.to_owned())),
        }
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

impl FromStr for KafkaPrincipal {
    type Err = PrincipalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------------------
// The certificate subject as Java prints it
// ---------------------------------------------------------------------------------------

/// The subject of a DER certificate as Java's `X500Principal.getName()` (RFC 2253) prints
/// it on the JDK 17 Kafka runs on:
/// - RDNs in reverse DER order, joined by `,` (no spaces); the values of a multi-valued RDN
///   in DER order, joined by `+`;
/// - keywords only for Java's RFC 2253 set (CN, C, L, ST, O, OU, STREET, DC, UID); any
///   other attribute as its dotted OID with `#` and the lowercase hex of the value's DER;
/// - a value that is not a PrintableString, T61String, IA5String, GeneralString, BMPString
///   or UTF8String is also printed as `#hex`;
/// - a string value's bytes are decoded as UTF-8 whatever its type (as JDK 17 does, so a
///   BMPString prints as Java prints it, replacement characters included); `,=+<>#;"\`
///   get a `\` anywhere, NUL becomes `\00`, and leading or trailing spaces and CRs get a
///   `\`. Other characters, control characters included, are printed as they are.
pub fn distinguished_name(certificate_der: &[u8]) -> Result<String, PrincipalError> {
    let (_, cert) = X509Certificate::from_der(certificate_der)
        .map_err(|e| PrincipalError::InvalidCertificate(e.to_string()))?;
    rfc2253_name(cert.subject())
}

/// The RFC 2253 string of a DER `Name` (the `SEQUENCE OF RelativeDistinguishedName`).
pub fn distinguished_name_from_name_der(name_der: &[u8]) -> Result<String, PrincipalError> {
    let (_, name) = X509Name::from_der(name_der)
        .map_err(|e| PrincipalError::InvalidCertificate(e.to_string()))?;
    rfc2253_name(&name)
}

fn rfc2253_name(name: &X509Name<'_>) -> Result<String, PrincipalError> {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, ava) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = oid_string(ava.attr_type().as_bytes())?;
            match rfc2253_keyword(&oid) {
                Some(keyword) if is_java_der_string(ava.attr_value()) => {
                    out.push_str(keyword);
                    out.push('=');
                    push_rfc2253_value(&mut out, ava.attr_value().data);
                }
                keyword => {
                    out.push_str(keyword.unwrap_or(&oid));
                    out.push_str("=#");
                    let der = ava
                        .attr_value()
                        .to_der_vec()
                        .map_err(|e| PrincipalError::InvalidCertificate(e.to_string()))?;
                    for b in der {
                        out.push_str(&format!("{b:02x}"));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The dotted form of an OID's content bytes, as Java prints it. Decoded here because
/// the parser's own formatting splits the first two arcs wrongly when the second arc of
/// `2.x` is 48 or more (`2.999.3`). Arcs of any size (Java allows them).
fn oid_string(content: &[u8]) -> Result<String, PrincipalError> {
    let invalid = || PrincipalError::InvalidCertificate("invalid object identifier".to_owned());
    if content.is_empty() || content.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(invalid());
    }
    let mut arcs: Vec<String> = Vec::new();
    // Each subidentifier as decimal digits (little-endian base 10^9 limbs).
    let mut limbs: Vec<u64> = Vec::new();
    for &byte in content {
        if limbs.is_empty() && byte == 0x80 {
            // A leading 0x80 is not minimal DER; Java rejects it.
            return Err(invalid());
        }
        let mut carry = u64::from(byte & 0x7f);
        for limb in limbs.iter_mut() {
            let v = *limb * 128 + carry;
            *limb = v % 1_000_000_000;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push(carry % 1_000_000_000);
            carry /= 1_000_000_000;
        }
        if limbs.is_empty() {
            limbs.push(0);
        }
        if byte & 0x80 == 0 {
            let mut text = limbs.last().map_or("0".to_owned(), |l| l.to_string());
            for limb in limbs.iter().rev().skip(1) {
                text.push_str(&format!("{limb:09}"));
            }
            if arcs.is_empty() {
                // The first subidentifier holds the first two arcs: 40 * a + b, a <= 2.
                let small = if limbs.len() == 1 {
                    Some(limbs[0])
                } else {
                    None
                };
                match small {
                    Some(v) if v < 40 => arcs.extend(["0".to_owned(), v.to_string()]),
                    Some(v) if v < 80 => arcs.extend(["1".to_owned(), (v - 40).to_string()]),
                    _ => {
                        arcs.push("2".to_owned());
                        arcs.push(decimal_minus_80(&limbs));
                    }
                }
            } else {
                arcs.push(text);
            }
            limbs.clear();
        }
    }
    Ok(arcs.join("."))
}

/// `limbs - 80` in decimal, for a first subidentifier of at least 80.
fn decimal_minus_80(limbs: &[u64]) -> String {
    let mut limbs = limbs.to_vec();
    let mut borrow = 80u64;
    for limb in limbs.iter_mut() {
        if *limb >= borrow {
            *limb -= borrow;
            break;
        }
        *limb = *limb + 1_000_000_000 - borrow;
        borrow = 1;
    }
    while limbs.len() > 1 && limbs.last() == Some(&0) {
        limbs.pop();
    }
    let mut text = limbs.last().map_or("0".to_owned(), |l| l.to_string());
    for limb in limbs.iter().rev().skip(1) {
        text.push_str(&format!("{limb:09}"));
    }
    text
}

/// Java's UTF-8 decoding with replacement (JDK 17 `new String(bytes, UTF_8)`): like
/// `String::from_utf8_lossy` (one U+FFFD per maximal invalid subpart), except that Java
/// takes `ED A0..BF` (a surrogate's encoding) as one unit: one U+FFFD for the two bytes,
/// or for three when a continuation byte follows.
fn java_utf8_lossy(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let mut skip = e.error_len().unwrap_or(after.len());
                if after.first() == Some(&0xED)
                    && after.get(1).is_some_and(|b| (0xA0..=0xBF).contains(b))
                {
                    skip = if after.get(2).is_some_and(|b| (0x80..=0xBF).contains(b)) {
                        3
                    } else {
                        2
                    };
                }
                out.push('\u{FFFD}');
                rest = after.get(skip..).unwrap_or_default();
            }
        }
    }
    out
}

/// Java's keywords for RFC 2253 output; every other attribute is printed as its OID.
fn rfc2253_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The universal, primitive string types Java prints as text (its `isDerString`).
fn is_java_der_string(value: &Any<'_>) -> bool {
    value.header.class() == Class::Universal
        && !value.header.is_constructed()
        && matches!(
            value.header.tag(),
            Tag::PrintableString
                | Tag::T61String
                | Tag::Ia5String
                | Tag::GeneralString
                | Tag::BmpString
                | Tag::Utf8String
        )
}

fn push_rfc2253_value(out: &mut String, data: &[u8]) {
    // Java decodes the value bytes as UTF-8 (replacing malformed sequences), escapes the
    // special characters, then escapes the leading and trailing run of spaces and CRs.
    let text = java_utf8_lossy(data);
    let mut escaped: Vec<char> = Vec::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\0' => escaped.extend(['\\', '0', '0']),
            c => escaped.push(c),
        }
    }
    let is_blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = escaped.iter().take_while(|c| is_blank(c)).count();
    let trail_start = escaped.len() - escaped.iter().rev().take_while(|c| is_blank(c)).count();
    for (i, c) in escaped.iter().enumerate() {
        if i < lead || i >= trail_start {
            out.push('\\');
        }
        out.push(*c);
    }
}

// ---------------------------------------------------------------------------------------
// ssl.principal.mapping.rules
// ---------------------------------------------------------------------------------------

/// Java's `\s` (ASCII whitespace) and `.` (anything but a line terminator), spelled out
/// because the `regex` crate's `\s` and `.` mean something wider.
const J_WS: &str = r"[\t\n\x0B\x0C\r ]";
const J_DOT: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";

/// Kafka's rule grammar: `(DEFAULT)|RULE:(pattern)/(replacement)/([LU]?).*?|(.*?)`, where
/// pattern and replacement are runs of `\`-escaped characters or characters other than
/// `\` and `/`. Groups: 1 DEFAULT, 2 pattern, 3 replacement, 4 case flag.
fn rule_grammar() -> String {
    let esc = format!(r"(?:\\{J_DOT}|[^\\/])*");
    format!(r"(DEFAULT)|RULE:({esc})/({esc})/([LU]?){J_DOT}*?|{J_DOT}*?")
}

/// Kafka's splitter: `\s*(RULE_PATTERN)\s*(,\s*|$)`, applied with `find()` to the trimmed
/// rules. Java's `$` also matches before a final line terminator; after `trim()` only
/// U+0085, U+2028 or U+2029 can end the text, and consuming it here instead changes no
/// rule (the next `find()` in Java yields only an empty rule, which Kafka ignores).
static RULE_SPLITTER: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(
        r"{J_WS}*({}){J_WS}*(?:,{J_WS}*|\z|[\x{{85}}\x{{2028}}\x{{2029}}]\z)",
        rule_grammar()
    );
    Regex::new(&pattern).expect("the rule splitter is a valid regex")
});

/// Kafka's `RULE_PARSER.lookingAt()`: the grammar anchored at the start only.
static RULE_PARSER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"\A(?:{})", rule_grammar())).expect("the rule parser is a valid regex")
});

/// Kafka's `SslPrincipalMapper`: maps a certificate's distinguished name to a principal
/// name with the first rule that applies.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    /// The distinguished name unchanged.
    Default,
    Pattern {
        regex: JavaRegex,
        replacement: String,
        to_lower: bool,
        to_upper: bool,
    },
}

impl SslPrincipalMapper {
    /// Kafka's default `ssl.principal.mapping.rules`.
    pub const DEFAULT_RULES: &'static str = "DEFAULT";

    /// Parses `ssl.principal.mapping.rules` with Kafka's grammar: a comma-separated list
    /// of `DEFAULT` and `RULE:pattern/replacement/` with an optional `L` or `U`;
    /// whitespace around rules and empty rules are ignored; `\` escapes a `/` (or any
    /// character) inside the pattern and the replacement. An empty string gives no rules.
    pub fn parse(rules: &str) -> Result<Self, PrincipalError> {
        let text = java_trim(rules);
        let mut parsed = Vec::new();
        for rule in split_rules(text) {
            let Some(caps) = RULE_PARSER.captures(rule) else {
                // The grammar's last alternative matches the empty string, so this cannot
                // happen; Kafka's message for it is kept all the same.
                return Err(PrincipalError::InvalidRule {
                    rule: rule.to_owned(),
                    unmatched: rule.to_owned(),
                });
            };
            let end = caps.get(0).map_or(0, |m| m.end());
            if end != rule.len() {
                return Err(PrincipalError::InvalidRule {
                    rule: rule.to_owned(),
                    unmatched: rule[end..].to_owned(),
                });
            }
            if caps.get(1).is_some() {
                parsed.push(Rule::Default);
            } else if let Some(pattern) = caps.get(2) {
                let flag = caps.get(4).map_or("", |m| m.as_str());
                parsed.push(Rule::Pattern {
                    regex: JavaRegex::new(pattern.as_str())?,
                    replacement: caps.get(3).map_or("", |m| m.as_str()).to_owned(),
                    to_lower: flag == "L",
                    to_upper: flag == "U",
                });
            }
            // Anything else is an empty rule, which Kafka ignores.
        }
        Ok(SslPrincipalMapper { rules: parsed })
    }

    /// The principal name for `distinguished_name`: the result of the first rule that
    /// applies (`DEFAULT` always applies and returns the name unchanged).
    pub fn apply(&self, distinguished_name: &str) -> Result<String, PrincipalError> {
        for rule in &self.rules {
            if let Some(name) = rule.apply(distinguished_name)? {
                return Ok(name);
            }
        }
        Err(PrincipalError::NoMatchingRule {
            name: distinguished_name.to_owned(),
            rules: self.rules_list(),
        })
    }

    /// Number of (non-empty) rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn rules_list(&self) -> String {
        self.rules
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for SslPrincipalMapper {
    fn default() -> Self {
        SslPrincipalMapper {
            rules: vec![Rule::Default],
        }
    }
}

impl FromStr for SslPrincipalMapper {
    type Err = PrincipalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SslPrincipalMapper {
    /// Kafka's `toString`: `SslPrincipalMapper(rules = [RULE:p/r/L, DEFAULT])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SslPrincipalMapper(rules = [{}])", self.rules_list())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Default => f.write_str("DEFAULT"),
            Rule::Pattern {
                regex,
                replacement,
                to_lower,
                to_upper,
            } => {
                write!(f, "RULE:{}/{}", regex.source, replacement)?;
                if *to_lower {
                    f.write_str("/L")
                } else if *to_upper {
                    f.write_str("/U")
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl Rule {
    fn apply(&self, dn: &str) -> Result<Option<String>, PrincipalError> {
        let Rule::Pattern {
            regex,
            replacement,
            to_lower,
            to_upper,
        } = self
        else {
            return Ok(Some(dn.to_owned()));
        };
        let failed = |reason: String| PrincipalError::RuleFailed {
            rule: self.to_string(),
            name: dn.to_owned(),
            reason,
        };
        if regex.uses_dollar && dn.ends_with(is_java_line_terminator) {
            // Java's `$` also matches before a final line terminator, which the translated
            // pattern cannot express: refuse rather than answer differently from Kafka.
            return Err(failed(
                "`$` before a final line terminator is not supported".to_owned(),
            ));
        }
        if !regex.full.is_match(dn) {
            return Ok(None);
        }
        let replacement =
            escape_literal_back_references(replacement, regex.group_count).map_err(failed)?;
        let mut result = regex.replace_all(dn, &replacement).map_err(failed)?;
        // Java's String.toLowerCase / toUpperCase(Locale.ENGLISH): full Unicode mappings.
        if *to_lower {
            result = result.to_lowercase();
        } else if *to_upper {
            result = result.to_uppercase();
        }
        Ok(Some(result))
    }
}

/// Java's `String.trim()`: strips every character up to U+0020 from both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn is_java_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Kafka's `splitRules`: group 1 of each `find()` of the splitter, Java's `find()` loop
/// (after an empty match the next search starts one character later).
fn split_rules(text: &str) -> Vec<&str> {
    let mut rules = Vec::new();
    let mut at = 0;
    while at <= text.len() {
        let Some(caps) = RULE_SPLITTER.captures_at(text, at) else {
            break;
        };
        let Some(whole) = caps.get(0) else { break };
        rules.push(caps.get(1).map_or("", |m| m.as_str()));
        at = if whole.is_empty() {
            next_char_end(text, whole.end())
        } else {
            whole.end()
        };
    }
    rules
}

/// The position after the character at `at`, or past the end (`len + 1`) at the end.
fn next_char_end(text: &str, at: usize) -> usize {
    text[at..]
        .chars()
        .next()
        .map_or(text.len() + 1, |c| at + c.len_utf8())
}

/// Kafka's `escapeLiteralBackReferences` (taken by Kafka from Apache NiFi): a `$n` whose
/// group does not exist (after dropping trailing digits while `n` exceeds the group count)
/// gets a `\` so that `replaceAll` prints it literally. Kept exact, quirk included: the
/// insert positions come from the original string, so after the first insertion later
/// ones land one character early per earlier insertion. Java indexes UTF-16 units.
fn escape_literal_back_references(unescaped: &str, groups: usize) -> Result<String, String> {
    if groups == 0 {
        return Ok(unescaped.to_owned());
    }
    let original: Vec<u16> = unescaped.encode_utf16().collect();
    let is_digit = |u: u16| (u16::from(b'0')..=u16::from(b'9')).contains(&u);
    let mut value = original.clone();
    let mut i = 0;
    while i < original.len() {
        if original[i] != u16::from(b'$') || !original.get(i + 1).is_some_and(|&u| is_digit(u)) {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < original.len() && is_digit(original[end]) {
            end += 1;
        }
        i = end;
        let digits = String::from_utf16_lossy(&original[start..end]);
        if digits.starts_with('0') {
            continue;
        }
        // Java's Integer.parseInt, and its NumberFormatException.
        let mut index: i64 = digits
            .parse::<i32>()
            .map_err(|_| format!("For input string: \"{digits}\""))?
            .into();
        let groups = i64::try_from(groups).unwrap_or(i64::MAX);
        while index > groups && index >= 10 {
            index /= 10;
        }
        if index > groups {
            let at = (start - 1).min(value.len());
            value.insert(at, u16::from(b'\\'));
        }
    }
    Ok(String::from_utf16_lossy(&value))
}

// ---------------------------------------------------------------------------------------
// Java regexes on the regex crate
// ---------------------------------------------------------------------------------------

/// A Java regex translated to the `regex` crate, with Java's `matches()` and `replaceAll`.
///
/// The translation makes Java's defaults explicit: `.` excludes Java's line terminators,
/// `\d \s \w \h \v` (and their negations) are Java's ASCII classes, POSIX `\p{Lower}` etc.
/// are ASCII, `(?i)` folds ASCII letters only, every literal is escaped. Refused as
/// unsupported, because the `regex` crate cannot express Java's meaning or means
/// something else by the same syntax:
/// - back references (`\1`, `\k<name>`), lookahead/lookbehind, atomic groups `(?>…)`,
///   possessive quantifiers (`*+`), a quantifier on a quantifier (`a{1}{2}`) or on an anchor;
/// - `\b \B` (Java's word boundary uses Unicode letters and changed between JDKs),
///   `\G \Z \R \X \N{…}`, a stray `\E`;
/// - inline flags other than `i` and `s`: `d m u x U` (UNIX_LINES, MULTILINE,
///   UNICODE_CASE, COMMENTS, UNICODE_CHARACTER_CLASS);
/// - `\p{…}` other than Unicode general categories (`L`, `Lu`, `IsL`, …) and Java's POSIX
///   ASCII classes, and any `\p` under `(?i)`; a lone UTF-16 surrogate escape;
/// - `&&` in a class with nothing on one side (Java gives such classes odd meanings).
///
/// Java's `$` (without MULTILINE) also matches before a line terminator that ends the
/// input; the translation matches only at the end, so a rule using `$` fails with an
/// error on a name that ends in a line terminator (see `Rule::apply`).
/// General categories follow the `regex` crate's Unicode version, not the JDK's.
#[derive(Debug, Clone)]
struct JavaRegex {
    /// The pattern as written (Kafka prints it back in errors).
    source: String,
    /// Java's `find()`.
    find: Regex,
    /// `\A(?:…)\z`: Java's `matches()` (the whole input, with backtracking into it).
    full: Regex,
    group_count: usize,
    group_names: HashMap<String, usize>,
    uses_dollar: bool,
}

/// Why a pattern is refused.
enum RegexIssue {
    /// Java would reject it too.
    Syntax(String),
    /// Java accepts it, but the translation cannot mirror it exactly.
    Unsupported(String),
}

impl JavaRegex {
    fn new(source: &str) -> Result<Self, PrincipalError> {
        let translated = Translator::new(source).run().map_err(|issue| match issue {
            RegexIssue::Syntax(reason) => PrincipalError::InvalidPattern {
                pattern: source.to_owned(),
                reason,
            },
            RegexIssue::Unsupported(construct) => PrincipalError::UnsupportedPattern {
                pattern: source.to_owned(),
                construct,
            },
        })?;
        let compile = |p: &str| {
            Regex::new(p).map_err(|e| PrincipalError::InvalidPattern {
                pattern: source.to_owned(),
                reason: e.to_string(),
            })
        };
        // The unwrapped pattern compiles first, so it is balanced and wrapping it cannot
        // change its meaning.
        let find = compile(&translated.pattern)?;
        let full = compile(&format!(r"\A(?:{})\z", translated.pattern))?;
        let group_count = find.captures_len().saturating_sub(1);
        let group_names = find
            .capture_names()
            .enumerate()
            .filter_map(|(i, name)| name.map(|n| (n.to_owned(), i)))
            .collect();
        Ok(JavaRegex {
            source: source.to_owned(),
            find,
            full,
            group_count,
            group_names,
            uses_dollar: translated.uses_dollar,
        })
    }

    /// Java's `Matcher.replaceAll(replacement)`: every `find()` match (after an empty
    /// match the search resumes one character later) replaced by the expanded template.
    fn replace_all(&self, text: &str, replacement: &str) -> Result<String, String> {
        let template: Vec<char> = replacement.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut at = 0;
        while at <= text.len() {
            let Some(caps) = self.find.captures_at(text, at) else {
                break;
            };
            let Some(whole) = caps.get(0) else { break };
            out.push_str(&text[copied..whole.start()]);
            self.expand(&template, &caps, &mut out)?;
            copied = whole.end();
            at = if whole.is_empty() {
                next_char_end(text, whole.end())
            } else {
                whole.end()
            };
        }
        out.push_str(&text[copied.min(text.len())..]);
        Ok(out)
    }

    /// Java's `appendReplacement` template: `\x` is `x`, `$n` takes as many digits as name
    /// an existing group, `${name}` a named group; a group that did not take part adds
    /// nothing. Errors carry Java's exception messages.
    fn expand(
        &self,
        template: &[char],
        caps: &Captures<'_>,
        out: &mut String,
    ) -> Result<(), String> {
        let mut i = 0;
        while i < template.len() {
            match template[i] {
                '\\' => {
                    i += 1;
                    let c = template
                        .get(i)
                        .ok_or_else(|| "character to be escaped is missing".to_owned())?;
                    out.push(*c);
                    i += 1;
                }
                '$' => {
                    i += 1;
                    let c = *template.get(i).ok_or_else(|| {
                        "Illegal group reference: group index is missing".to_owned()
                    })?;
                    let group = if c == '{' {
                        i += 1;
                        let start = i;
                        while i < template.len() && template[i].is_ascii_alphanumeric() {
                            i += 1;
                        }
                        let name: String = template[start..i].iter().collect();
                        if name.is_empty() {
                            return Err("named capturing group has 0 length name".to_owned());
                        }
                        if template.get(i) != Some(&'}') {
                            return Err("named capturing group is missing trailing '}'".to_owned());
                        }
                        i += 1;
                        *self
                            .group_names
                            .get(&name)
                            .ok_or_else(|| format!("No group with name {{{name}}}"))?
                    } else {
                        let mut group = c
                            .to_digit(10)
                            .ok_or_else(|| "Illegal group reference".to_owned())?
                            as usize;
                        i += 1;
                        while let Some(d) = template.get(i).and_then(|c| c.to_digit(10)) {
                            let longer = group.saturating_mul(10).saturating_add(d as usize);
                            if longer > self.group_count {
                                break;
                            }
                            group = longer;
                            i += 1;
                        }
                        if group > self.group_count {
                            return Err(format!("No group {group}"));
                        }
                        group
                    };
                    if let Some(m) = caps.get(group) {
                        out.push_str(m.as_str());
                    }
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Ok(())
    }
}

struct Translated {
    pattern: String,
    uses_dollar: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    case_insensitive: bool,
    dot_all: bool,
}

/// What the last emitted item was, for quantifier checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Start of pattern, group or alternative: a quantifier here is Java's "Dangling
    /// meta character".
    Nothing,
    Atom,
    Quantified,
    Anchor,
}

enum Escape {
    Char(char),
    /// Class items (`regex` crate syntax, no brackets), negated or not.
    Class {
        body: String,
        negated: bool,
    },
    /// `\Q…\E`.
    Quoted(Vec<char>),
    Anchor(&'static str),
}

/// Nested `[…]` depth limit, so a hostile rule cannot exhaust the stack.
const MAX_CLASS_DEPTH: usize = 32;

struct Translator {
    chars: Vec<char>,
    pos: usize,
    out: String,
    flags: Flags,
    /// Flags to restore when each open group closes (Java restores them too).
    groups: Vec<Flags>,
    last: Last,
    uses_dollar: bool,
}

fn syntax<T>(msg: impl Into<String>) -> Result<T, RegexIssue> {
    Err(RegexIssue::Syntax(msg.into()))
}

fn unsupported<T>(msg: impl Into<String>) -> Result<T, RegexIssue> {
    Err(RegexIssue::Unsupported(msg.into()))
}

fn hex_escape(c: char) -> String {
    format!(r"\x{{{:X}}}", c as u32)
}

impl Translator {
    fn new(source: &str) -> Self {
        Translator {
            chars: source.chars().collect(),
            pos: 0,
            out: String::with_capacity(source.len() * 2),
            flags: Flags::default(),
            groups: Vec::new(),
            last: Last::Nothing,
            uses_dollar: false,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn run(mut self) -> Result<Translated, RegexIssue> {
        while let Some(c) = self.next() {
            match c {
                '\\' => match self.escape(false)? {
                    Escape::Char(ch) => self.literal(ch),
                    Escape::Class { body, negated } => {
                        let neg = if negated { "^" } else { "" };
                        self.out.push_str(&format!("[{neg}{body}]"));
                        self.last = Last::Atom;
                    }
                    Escape::Quoted(chars) => {
                        for ch in chars {
                            self.literal(ch);
                        }
                    }
                    Escape::Anchor(anchor) => {
                        self.out.push_str(anchor);
                        self.last = Last::Anchor;
                    }
                },
                '[' => {
                    let class = self.class(0)?;
                    self.out.push_str(&class);
                    self.last = Last::Atom;
                }
                '.' => {
                    self.out
                        .push_str(if self.flags.dot_all { "(?s:.)" } else { J_DOT });
                    self.last = Last::Atom;
                }
                '^' => {
                    self.out.push('^');
                    self.last = Last::Anchor;
                }
                '$' => {
                    self.out.push('$');
                    self.uses_dollar = true;
                    self.last = Last::Anchor;
                }
                '|' => {
                    self.out.push('|');
                    self.last = Last::Nothing;
                }
                '(' => self.open_group()?,
                ')' => {
                    let Some(saved) = self.groups.pop() else {
                        return syntax("Unmatched closing ')'");
                    };
                    self.flags = saved;
                    self.out.push(')');
                    self.last = Last::Atom;
                }
                '*' | '+' | '?' => self.quantifier(c.to_string())?,
                '{' => {
                    let counted = self.counted()?;
                    self.quantifier(counted)?;
                }
                c => self.literal(c),
            }
        }
        if !self.groups.is_empty() {
            return syntax("Unclosed group");
        }
        Ok(Translated {
            pattern: self.out,
            uses_dollar: self.uses_dollar,
        })
    }

    fn literal(&mut self, c: char) {
        if self.flags.case_insensitive && c.is_ascii_alphabetic() {
            // Java's CASE_INSENSITIVE without UNICODE_CASE folds ASCII letters only.
            self.out.push_str(&format!(
                "[{}{}]",
                c.to_ascii_lowercase(),
                c.to_ascii_uppercase()
            ));
        } else if c.is_ascii_alphanumeric() {
            self.out.push(c);
        } else {
            self.out.push_str(&hex_escape(c));
        }
        self.last = Last::Atom;
    }

    fn quantifier(&mut self, quantifier: String) -> Result<(), RegexIssue> {
        match self.last {
            Last::Nothing => return syntax("Dangling meta character"),
            // Java rejects `a**` but accepts `a{1}{2}` with a meaning of its own.
            Last::Quantified if !quantifier.starts_with('{') => {
                return syntax("Dangling meta character")
            }
            Last::Quantified => return unsupported("a quantifier applied to a quantifier"),
            Last::Anchor => return unsupported("a quantifier applied to an anchor"),
            Last::Atom => {}
        }
        self.out.push_str(&quantifier);
        match self.peek() {
            Some('?') => {
                self.pos += 1;
                self.out.push('?');
            }
            Some('+') => return unsupported("a possessive quantifier"),
            _ => {}
        }
        self.last = Last::Quantified;
        Ok(())
    }

    /// `{n}`, `{n,}` or `{n,m}` (after the `{`), as Java accepts them.
    fn counted(&mut self) -> Result<String, RegexIssue> {
        let number = |t: &mut Self| -> Option<u32> {
            let start = t.pos;
            while t.peek().is_some_and(|c| c.is_ascii_digit()) {
                t.pos += 1;
            }
            let digits: String = t.chars[start..t.pos].iter().collect();
            digits.parse().ok()
        };
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return syntax("Illegal repetition");
        }
        let Some(min) = number(self) else {
            return syntax("Illegal repetition range");
        };
        let mut text = format!("{{{min}");
        if self.peek() == Some(',') {
            self.pos += 1;
            text.push(',');
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                match number(self) {
                    Some(max) if max >= min => text.push_str(&max.to_string()),
                    _ => return syntax("Illegal repetition range"),
                }
            }
        }
        if self.next() != Some('}') {
            return syntax("Unclosed counted closure");
        }
        text.push('}');
        Ok(text)
    }

    fn open_group(&mut self) -> Result<(), RegexIssue> {
        if self.peek() != Some('?') {
            self.out.push('(');
            self.groups.push(self.flags);
            self.last = Last::Nothing;
            return Ok(());
        }
        self.pos += 1;
        match self.peek() {
            Some('=') | Some('!') => return unsupported("lookahead"),
            Some('>') => return unsupported("an atomic group"),
            Some('<') => {
                self.pos += 1;
                if matches!(self.peek(), Some('=') | Some('!')) {
                    return unsupported("lookbehind");
                }
                let mut name = String::new();
                loop {
                    match self.next() {
                        Some('>') => break,
                        Some(c) if c.is_ascii_alphanumeric() => name.push(c),
                        _ => return syntax("named capturing group is missing trailing '>'"),
                    }
                }
                if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    return syntax("capturing group name does not start with a Latin letter");
                }
                self.out.push_str(&format!("(?<{name}>"));
                self.groups.push(self.flags);
                self.last = Last::Nothing;
                return Ok(());
            }
            _ => {}
        }
        // Inline flags: `(?idmsuxU-idmsuxU)` or `(?flags:…)`.
        let mut on = true;
        let mut flags = self.flags;
        loop {
            match self.next() {
                Some('i') => flags.case_insensitive = on,
                Some('s') => flags.dot_all = on,
                Some(f @ ('d' | 'm' | 'u' | 'x' | 'U')) => {
                    // Turning off a flag that is never on changes nothing.
                    if on {
                        return unsupported(format!("the inline flag `{f}`"));
                    }
                }
                Some('-') => on = false,
                Some(')') => {
                    self.flags = flags;
                    self.last = Last::Nothing;
                    return Ok(());
                }
                Some(':') => {
                    self.out.push_str("(?:");
                    self.groups.push(self.flags);
                    self.flags = flags;
                    self.last = Last::Nothing;
                    return Ok(());
                }
                Some(_) => return syntax("Unknown inline modifier"),
                None => return syntax("Unclosed group"),
            }
        }
    }

    /// A character class, after its `[`; returns it in `regex` crate syntax.
    fn class(&mut self, depth: usize) -> Result<String, RegexIssue> {
        if depth >= MAX_CLASS_DEPTH {
            return unsupported("character classes nested this deeply");
        }
        let mut out = String::from("[");
        if self.peek() == Some('^') {
            self.pos += 1;
            out.push('^');
        }
        let mut first = true;
        let mut operand = false;
        loop {
            let Some(c) = self.next() else {
                return syntax("Unclosed character class");
            };
            match c {
                // Java takes a `]` right after `[` or `[^` as a literal.
                ']' if !first => break,
                '[' => {
                    let nested = self.class(depth + 1)?;
                    out.push_str(&nested);
                }
                '&' if self.peek() == Some('&') => {
                    self.pos += 1;
                    if !operand || matches!(self.peek(), Some(']') | Some('&') | None) {
                        return unsupported("`&&` without a class on both sides");
                    }
                    out.push_str("&&");
                    first = false;
                    operand = false;
                    continue;
                }
                '\\' => match self.escape(true)? {
                    Escape::Char(ch) => self.class_char_or_range(ch, &mut out)?,
                    Escape::Class { body, negated } => {
                        if negated {
                            out.push_str(&format!("[^{body}]"));
                        } else {
                            out.push_str(&body);
                        }
                    }
                    Escape::Quoted(chars) => {
                        for ch in chars {
                            self.class_char(ch, &mut out);
                        }
                    }
                    Escape::Anchor(_) => return syntax("Illegal/unsupported escape sequence"),
                },
                c => self.class_char_or_range(c, &mut out)?,
            }
            first = false;
            operand = true;
        }
        out.push(']');
        Ok(out)
    }

    fn class_char(&self, c: char, out: &mut String) {
        out.push_str(&hex_escape(c));
        if self.flags.case_insensitive && c.is_ascii_alphabetic() {
            let other = if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            out.push_str(&hex_escape(other));
        }
    }

    fn class_char_or_range(&mut self, start: char, out: &mut String) -> Result<(), RegexIssue> {
        if self.peek() != Some('-') {
            self.class_char(start, out);
            return Ok(());
        }
        let end = match self.peek_at(1) {
            // `[a-]` and `[a-[b]]`: the `-` is a literal.
            None | Some(']') | Some('[') => {
                self.class_char(start, out);
                return Ok(());
            }
            Some('&') if self.peek_at(2) == Some('&') => {
                return unsupported("a range ending in `&&`");
            }
            Some('\\') => {
                self.pos += 2;
                match self.escape(true)? {
                    Escape::Char(end) => end,
                    Escape::Quoted(chars) => {
                        // Java expands `\Q…\E` before parsing: the first character ends the
                        // range, the rest are literals.
                        let Some((&end, rest)) = chars.split_first() else {
                            return unsupported("a range ending in an empty `\\Q\\E`");
                        };
                        self.class_range(start, end, out)?;
                        for &ch in rest {
                            self.class_char(ch, out);
                        }
                        return Ok(());
                    }
                    _ => return syntax("Illegal character range"),
                }
            }
            Some(end) => {
                self.pos += 2;
                end
            }
        };
        self.class_range(start, end, out)
    }

    fn class_range(&self, lo: char, hi: char, out: &mut String) -> Result<(), RegexIssue> {
        if hi < lo {
            return syntax("Illegal character range");
        }
        out.push_str(&format!("{}-{}", hex_escape(lo), hex_escape(hi)));
        if self.flags.case_insensitive {
            // Add the other case of the ASCII letters the range covers.
            for (from, to) in [('a', 'z'), ('A', 'Z')] {
                let (a, b) = (lo.max(from), hi.min(to));
                if a <= b {
                    let swap = |c: char| {
                        if c.is_ascii_lowercase() {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    };
                    out.push_str(&format!("{}-{}", hex_escape(swap(a)), hex_escape(swap(b))));
                }
            }
        }
        Ok(())
    }

    /// An escape, after its `\`.
    fn escape(&mut self, in_class: bool) -> Result<Escape, RegexIssue> {
        let Some(c) = self.next() else {
            return syntax("Unexpected internal error: pattern ends with `\\`");
        };
        let class = |body: &str, negated: bool| Escape::Class {
            body: body.to_owned(),
            negated,
        };
        Ok(match c {
            '0' => Escape::Char(self.octal()?),
            '1'..='9' if in_class => return syntax("Illegal/unsupported escape sequence"),
            '1'..='9' => return unsupported("a back reference"),
            't' => Escape::Char('\t'),
            'n' => Escape::Char('\n'),
            'r' => Escape::Char('\r'),
            'f' => Escape::Char('\u{0C}'),
            'a' => Escape::Char('\u{07}'),
            'e' => Escape::Char('\u{1B}'),
            'c' => {
                let Some(x) = self.next() else {
                    return syntax("Illegal control escape sequence");
                };
                match char::from_u32(x as u32 ^ 64) {
                    Some(ch) => Escape::Char(ch),
                    None => return unsupported("a control escape of this character"),
                }
            }
            'x' => Escape::Char(self.hex_x()?),
            'u' => Escape::Char(self.hex_u()?),
            'd' => class("0-9", false),
            'D' => class("0-9", true),
            'w' => class("a-zA-Z_0-9", false),
            'W' => class("a-zA-Z_0-9", true),
            's' => class(r"\t\n\x0B\x0C\r\x20", false),
            'S' => class(r"\t\n\x0B\x0C\r\x20", true),
            'h' | 'H' => class(
                r"\x20\t\xA0\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}",
                c == 'H',
            ),
            'v' | 'V' => class(r"\n\x0B\x0C\r\x{85}\x{2028}\x{2029}", c == 'V'),
            'p' | 'P' => {
                if self.flags.case_insensitive {
                    return unsupported("`\\p` under the inline flag `i`");
                }
                let body = self.property()?;
                class(&body, c == 'P')
            }
            'Q' => {
                let mut quoted = Vec::new();
                while let Some(ch) = self.next() {
                    if ch == '\\' && self.peek() == Some('E') {
                        self.pos += 1;
                        break;
                    }
                    quoted.push(ch);
                }
                Escape::Quoted(quoted)
            }
            'A' if !in_class => Escape::Anchor(r"\A"),
            'z' if !in_class => Escape::Anchor(r"\z"),
            'b' | 'B' | 'G' | 'Z' | 'R' | 'X' | 'N' | 'k' | 'E' => {
                return unsupported(format!("`\\{c}`"))
            }
            c if c.is_ascii_alphabetic() => return syntax("Illegal/unsupported escape sequence"),
            c => Escape::Char(c),
        })
    }

    /// Java's `\0n`, `\0nn`, `\0mnn` (m at most 3), after the `\0`.
    fn octal(&mut self) -> Result<char, RegexIssue> {
        let digit = |c: Option<char>| c.and_then(|c| c.to_digit(8));
        let Some(first) = digit(self.peek()) else {
            return syntax("Illegal octal escape sequence");
        };
        self.pos += 1;
        let mut value = first;
        if let Some(second) = digit(self.peek()) {
            self.pos += 1;
            value = value * 8 + second;
            if first <= 3 {
                if let Some(third) = digit(self.peek()) {
                    self.pos += 1;
                    value = value * 8 + third;
                }
            }
        }
        char::from_u32(value).map_or_else(|| syntax("Illegal octal escape sequence"), Ok)
    }

    fn hex_digits(&mut self, count: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            let d = self.peek()?.to_digit(16)?;
            self.pos += 1;
            value = value * 16 + d;
        }
        Some(value)
    }

    /// `\xhh` or `\x{h…h}`, after the `\x`.
    fn hex_x(&mut self) -> Result<char, RegexIssue> {
        let code = if self.peek() == Some('{') {
            self.pos += 1;
            let mut value = 0u32;
            let mut any = false;
            while let Some(d) = self.peek().and_then(|c| c.to_digit(16)) {
                self.pos += 1;
                any = true;
                value = value.saturating_mul(16).saturating_add(d);
            }
            if !any || self.next() != Some('}') {
                return syntax("Unclosed hexadecimal escape sequence");
            }
            value
        } else {
            match self.hex_digits(2) {
                Some(v) => v,
                None => return syntax("Illegal hexadecimal escape sequence"),
            }
        };
        if code > 0x10FFFF {
            return syntax("Hexadecimal codepoint is too big");
        }
        char::from_u32(code).map_or_else(|| unsupported("a surrogate code point"), Ok)
    }

    /// `\uhhhh`, after the `\u`; a surrogate pair written as two escapes is one character.
    fn hex_u(&mut self) -> Result<char, RegexIssue> {
        let Some(unit) = self.hex_digits(4) else {
            return syntax("Illegal Unicode escape sequence");
        };
        if (0xD800..0xDC00).contains(&unit)
            && self.peek() == Some('\\')
            && self.peek_at(1) == Some('u')
        {
            let save = self.pos;
            self.pos += 2;
            if let Some(low) = self.hex_digits(4).filter(|l| (0xDC00..0xE000).contains(l)) {
                let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                if let Some(c) = char::from_u32(code) {
                    return Ok(c);
                }
            }
            self.pos = save;
        }
        char::from_u32(unit).map_or_else(|| unsupported("a lone surrogate escape"), Ok)
    }

    /// `\pX` or `\p{Name}`, after the `p`: class items for the property.
    fn property(&mut self) -> Result<String, RegexIssue> {
        let name: String = if self.peek() == Some('{') {
            self.pos += 1;
            let mut name = String::new();
            loop {
                match self.next() {
                    Some('}') => break,
                    Some(c) => name.push(c),
                    None => return syntax("Unclosed character family"),
                }
            }
            name
        } else {
            match self.next() {
                Some(c) => c.to_string(),
                None => return syntax("Illegal character family"),
            }
        };
        // Java's POSIX classes are ASCII-only.
        let posix = match name.as_str() {
            "Lower" => Some("a-z"),
            "Upper" => Some("A-Z"),
            "ASCII" => Some(r"\x00-\x7F"),
            "Alpha" => Some("a-zA-Z"),
            "Digit" => Some("0-9"),
            "Alnum" => Some("a-zA-Z0-9"),
            "Punct" => Some(r"\x21-\x2F\x3A-\x40\x5B-\x60\x7B-\x7E"),
            "Graph" => Some(r"\x21-\x7E"),
            "Print" => Some(r"\x20-\x7E"),
            "Blank" => Some(r"\x20\t"),
            "Cntrl" => Some(r"\x00-\x1F\x7F"),
            "XDigit" => Some("0-9a-fA-F"),
            "Space" => Some(r"\t\n\x0B\x0C\r\x20"),
            _ => None,
        };
        if let Some(items) = posix {
            return Ok(items.to_owned());
        }
        const CATEGORIES: [&str; 37] = [
            "L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P",
            "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl",
            "Zp", "C", "Cc", "Cf", "Co", "Cn", "LC",
        ];
        let category = name.strip_prefix("Is").unwrap_or(&name);
        if CATEGORIES.contains(&category) && category != "LC" {
            return Ok(format!(r"\p{{{category}}}"));
        }
        unsupported(format!("the character property `{name}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_parse_and_display() {
        let p = KafkaPrincipal::parse("User:alice").unwrap();
        assert_eq!(p, KafkaPrincipal::user("alice"));
        assert_eq!(p.to_string(), "User:alice");
        // Split at the first colon only; empty parts are allowed, as in Kafka.
        assert_eq!(
            KafkaPrincipal::parse("User:CN=a:b").unwrap(),
            KafkaPrincipal::new("User", "CN=a:b")
        );
        assert_eq!(
            KafkaPrincipal::parse("User:").unwrap(),
            KafkaPrincipal::new("User", "")
        );
        assert_eq!(
            KafkaPrincipal::parse(":x").unwrap(),
            KafkaPrincipal::new("", "x")
        );
        for bad in ["", "alice"] {
            let err = KafkaPrincipal::parse(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("expected a string in format principalType:principalName but got {bad}")
            );
        }
        assert_eq!(ANONYMOUS.to_string(), "User:ANONYMOUS");
        assert_eq!(
            "Group:g".parse::<KafkaPrincipal>().unwrap().principal_type,
            "Group"
        );
    }

    fn rules(s: &str) -> String {
        SslPrincipalMapper::parse(s).unwrap().to_string()
    }

    #[test]
    fn valid_rules() {
        for r in [
            "DEFAULT",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
            "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
            "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
            "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
        ] {
            SslPrincipalMapper::parse(r).unwrap_or_else(|e| panic!("{r}: {e}"));
        }
    }

    #[test]
    fn invalid_rules() {
        for r in [
            "default",
            "DEFAUL",
            "DEFAULT/L",
            "DEFAULT/U",
            "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
            "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
        ] {
            assert!(SslPrincipalMapper::parse(r).is_err(), "{r}");
        }
        assert_eq!(
            SslPrincipalMapper::parse("DEFAULT/L")
                .unwrap_err()
                .to_string(),
            "Invalid rule: `DEFAULT/L`, unmatched substring: `/L`"
        );
        assert_eq!(
            SslPrincipalMapper::parse("RULE:a/b/LU").unwrap_err(),
            PrincipalError::InvalidRule {
                rule: "RULE:a/b/LU".into(),
                unmatched: "U".into()
            }
        );
        assert!(matches!(
            SslPrincipalMapper::parse("RULE:(a/b/"),
            Err(PrincipalError::InvalidPattern { .. })
        ));
    }

    #[test]
    fn kafka_mapping_examples() {
        let mapper = SslPrincipalMapper::parse(
            &[
                "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
                "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
                "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
                "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
                "DEFAULT",
            ]
            .join(", "),
        )
        .unwrap();
        let name = |dn: &str| mapper.apply(dn).unwrap();
        assert_eq!(name("CN=Duke,OU=ServiceUsers,O=Org,C=US"), "duke");
        assert_eq!(
            name("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US"),
            "duke@sme"
        );
        assert_eq!(name("cn=duke,ou=sme,dc=mycp,dc=com"), "DUKE@SME");
        assert_eq!(name("cN=duke,OU=JavaSoft,O=Sun Microsystems"), "DUKE");
        assert_eq!(
            name("OU=JavaSoft,O=Sun Microsystems,C=US"),
            "OU=JavaSoft,O=Sun Microsystems,C=US"
        );
    }

    #[test]
    fn comma_with_whitespace() {
        let mapper =
            SslPrincipalMapper::parse(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT").unwrap();
        assert_eq!(
            mapper
                .apply(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz")
                .unwrap(),
            r"Tkac\, Adam"
        );
    }

    #[test]
    fn rules_splitting() {
        let cases = [
            ("[]", ""),
            ("[DEFAULT]", "DEFAULT"),
            ("[RULE:/]", "RULE://"),
            ("[RULE:/.*]", "RULE:/.*/"),
            ("[RULE:/.*/L]", "RULE:/.*/L"),
            ("[RULE:/, DEFAULT]", "RULE://,DEFAULT"),
            ("[RULE:/, DEFAULT]", "  RULE:// ,  DEFAULT  "),
            (
                "[RULE:   /     , DEFAULT]",
                "  RULE:   /     / ,  DEFAULT  ",
            ),
            (
                "[RULE:  /     /U, DEFAULT]",
                "  RULE:  /     /U   ,DEFAULT  ",
            ),
            (
                "[RULE:([A-Z]*)/$1/U, RULE:([a-z]+)/$1, DEFAULT]",
                "  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  ",
            ),
            ("[]", ",   , , ,      , , ,   "),
            ("[RULE:/, DEFAULT]", ",,RULE://,,,DEFAULT,,"),
            (
                "[RULE: /   , DEFAULT]",
                ",  , RULE: /   /    ,,,   DEFAULT, ,   ",
            ),
            (
                "[RULE:   /  /U, DEFAULT]",
                "     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,",
            ),
            (r"[RULE:\/\\\(\)\n\t/\/\/]", r"RULE:\/\\\(\)\n\t/\/\//"),
            (
                r"[RULE:\**\/+/*/L, RULE:\/*\**/**]",
                r"RULE:\**\/+/*/L,RULE:\/*\**/**/",
            ),
            (
                r"[RULE:,RULE:,/,RULE:,\//U, RULE:,/RULE:,, RULE:,RULE:,/L,RULE:,/L, RULE:, DEFAULT, /DEFAULT, DEFAULT]",
                r"RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT",
            ),
        ];
        for (expected, input) in cases {
            assert_eq!(
                rules(input),
                format!("SslPrincipalMapper(rules = {expected})"),
                "{input:?}"
            );
        }
    }

    #[test]
    fn no_matching_rule() {
        let mapper = SslPrincipalMapper::parse("RULE:^CN=(.*)$/$1/L").unwrap();
        assert_eq!(
            mapper.apply("OU=x").unwrap_err().to_string(),
            "No rules apply to OU=x, rules [RULE:^CN=(.*)$/$1/L]"
        );
        let empty = SslPrincipalMapper::parse("").unwrap();
        assert!(empty.is_empty());
        assert!(matches!(
            empty.apply("CN=a"),
            Err(PrincipalError::NoMatchingRule { .. })
        ));
        assert_eq!(SslPrincipalMapper::default().apply("CN=a").unwrap(), "CN=a");
    }

    #[test]
    fn java_replace_all_semantics() {
        let apply = |rules: &str, dn: &str| SslPrincipalMapper::parse(rules).unwrap().apply(dn);
        // replaceAll replaces every find() match, including Java's empty match at the end.
        assert_eq!(apply("RULE:(.*)/<$1>/", "abc").unwrap(), "<abc><>");
        // find() picks the leftmost-first match, which may be shorter than matches().
        assert_eq!(apply("RULE:a|ab/X/", "ab").unwrap(), "Xb");
        // A reference to a missing group is literal (escapeLiteralBackReferences) ...
        assert_eq!(apply("RULE:CN=(.*)/$1@$2/", "CN=a").unwrap(), "a@$2");
        // ... digits are dropped while the number exceeds the group count ...
        assert_eq!(apply("RULE:CN=(.*)/$12/", "CN=a").unwrap(), "a2");
        // ... `$0` is the whole match, and `\` escapes in the replacement.
        assert_eq!(apply(r"RULE:CN=(.*)/[$0]\$1/", "CN=a").unwrap(), "[CN=a]$1");
        // Kafka's quirk: the second inserted `\` lands one character early, so `$6` stays
        // a group reference and Java's replaceAll throws.
        assert_eq!(
            escape_literal_back_references("$5$6", 1).unwrap(),
            r"\$\5$6"
        );
        let err = apply("RULE:CN=(.*)/$5$6/", "CN=a").unwrap_err();
        assert!(err.to_string().contains("No group 6"), "{err}");
        // Without groups the replacement is used as is, so `$1` is an error.
        assert!(apply("RULE:CN=a/$1/", "CN=a").is_err());
        assert_eq!(apply(r"RULE:CN=a/x\\/", "CN=a").unwrap(), r"x\");
        assert!(apply(r"RULE:CN=(a)/x$/", "CN=a").is_err());
        assert!(apply("RULE:CN=(a)/$99999999999/", "CN=a").is_err());
        // Named groups.
        assert_eq!(
            apply("RULE:CN=(?<n>[a-z]+)/${n}!/", "CN=ab").unwrap(),
            "ab!"
        );
        assert!(apply("RULE:CN=(?<n>[a-z]+)/${m}/", "CN=ab").is_err());
        // A group that did not take part adds nothing.
        assert_eq!(apply("RULE:(x)?CN=(.*)/$1$2/", "CN=a").unwrap(), "a");
    }

    #[test]
    fn java_regex_translation() {
        let matches = |pattern: &str, text: &str| {
            JavaRegex::new(pattern)
                .unwrap_or_else(|e| panic!("{pattern}: {e}"))
                .full
                .is_match(text)
        };
        // Java's `.` excludes all its line terminators; `(?s)` includes them.
        assert!(!matches("a.", "a\r"));
        assert!(!matches("a.", "a\u{2028}"));
        assert!(matches("(?s)a.", "a\r"));
        // ASCII `\w`, `\d`, `\s` and ASCII-only case folding, as Java's defaults.
        assert!(!matches(r"\w", "é"));
        assert!(!matches(r"\d", "٣"));
        assert!(!matches(r"\s", "\u{A0}"));
        assert!(matches("(?i)cn=x", "CN=X"));
        assert!(!matches("(?i)k", "\u{212A}"));
        assert!(!matches("(?i)é", "É"));
        assert!(matches("(?i)[a-c]", "B"));
        assert!(!matches("(?i)[^a]", "A"));
        assert!(matches("(a(?i)b)B", "aBB"));
        assert!(!matches("(a(?i)b)b", "aBB"));
        assert!(matches("(?i:a)A", "aA"));
        // Java's class syntax.
        assert!(matches("[]a]", "]"));
        assert!(matches("[^]a]", "b"));
        assert!(matches("[a-]", "-"));
        assert!(matches(r"[\d-z]", "-"));
        assert!(matches("[a-c[x-z]]", "y"));
        assert!(!matches("[a-z&&[^x]]", "x"));
        assert!(matches("[[:alpha:]]", ":"));
        assert!(!matches("[[:alpha:]]", "b"));
        assert!(matches(r"[\Q]\E]", "]"));
        assert!(matches(r"\Qa.b", "a.b"));
        assert!(!matches(r"\Qa.b", "axb"));
        assert!(matches(r"\<", "<"));
        assert!(matches(r"\0101\x41\u0041\x{41}\cA", "AAAA\u{1}"));
        assert!(matches(r"\uD83D\uDE00", "😀"));
        assert!(matches(r"\p{Lower}\p{Lu}\pL\p{IsL}", "aBcd"));
        assert!(matches(r"\h\v", " \n"));
        assert!(matches("a{2}b{1,}c{1,2}", "aabbbcc"));
        assert!(matches("a{1,1}", "a"));
        assert!(matches("a*?b+?c??", "ab"));
        assert!(matches("a}b]", "a}b]"));
        assert!(matches(r"\^\$\.\|\?\*\+\(\)\[\{\\\/", r"^$.|?*+()[{\/"));
    }

    #[test]
    fn java_regex_refusals() {
        let unsupported = |p: &str| {
            matches!(
                JavaRegex::new(p),
                Err(PrincipalError::UnsupportedPattern { .. })
            )
        };
        let invalid = |p: &str| {
            matches!(
                JavaRegex::new(p),
                Err(PrincipalError::InvalidPattern { .. })
            )
        };
        for p in [
            r"(a)\1",
            "(?=a)",
            "(?!a)",
            "(?<=a)b",
            "(?<!a)b",
            "(?>a)",
            "a*+",
            "a++",
            "a?+",
            "a{1}{2}",
            r"\bx",
            r"\Bx",
            r"\Gx",
            r"x\Z",
            r"\R",
            r"\X",
            r"\k<n>",
            "(?m)a",
            "(?x)a",
            "(?u)a",
            "(?U)a",
            "(?d)a",
            r"\p{javaLowerCase}",
            r"\p{InGreek}",
            r"(?i)\p{Lu}",
            "[&&a]",
            "[a&&]",
            "[a&&&b]",
            r"\uD83D",
            "^*",
        ] {
            assert!(unsupported(p), "{p}");
        }
        for p in [
            "a{,3}", "a**", "a{foo}", "a{2,1}", "[b-a]", "a?*", "[a-\\d]", "[[]", "*a", "a{0x}",
            "a{1,2", "(?<_n>a)", r"\08", r"\y", "(a", "a)", "[a", r"a\", "(?c)a",
        ] {
            assert!(invalid(p), "{p}");
        }
        // Deep nesting is refused, not a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(JavaRegex::new(&deep).is_err());
        // Turning off a flag that is never on is harmless.
        assert!(JavaRegex::new("(?-mx)a").is_ok());
    }

    #[test]
    fn dollar_before_a_final_line_terminator_is_refused() {
        let mapper = SslPrincipalMapper::parse("RULE:^CN=(.*)$/$1/,DEFAULT").unwrap();
        assert_eq!(mapper.apply("CN=a").unwrap(), "a");
        assert!(matches!(
            mapper.apply("CN=a\n"),
            Err(PrincipalError::RuleFailed { .. })
        ));
        // Without `$` a trailing newline is ordinary.
        let mapper = SslPrincipalMapper::parse("RULE:(?s)^CN=(.*)/$1/").unwrap();
        assert_eq!(mapper.apply("CN=a\n").unwrap(), "a\n");
    }

    #[test]
    fn case_mapping_is_full_unicode() {
        let mapper = SslPrincipalMapper::parse("RULE:CN=(.*)/$1/U").unwrap();
        assert_eq!(mapper.apply("CN=straße").unwrap(), "STRASSE");
    }

    /// A self-signed certificate (ring backend) with the subject's attributes in DER order.
    fn rcgen_cert(subject: Vec<(rcgen::DnType, rcgen::DnValue)>) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        for (ty, value) in subject {
            dn.push(ty, value);
        }
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    // Expected strings below are what Java 17's X509Certificate
    // .getSubjectX500Principal().getName() printed for the same subjects.

    #[test]
    fn certificate_subject_as_java_prints_it() {
        use rcgen::string::PrintableString;
        use rcgen::{DnType, DnValue};
        let der = rcgen_cert(vec![
            (
                DnType::CountryName,
                DnValue::PrintableString(PrintableString::try_from("US").unwrap()),
            ),
            (DnType::StateOrProvinceName, "California".into()),
            (DnType::LocalityName, "San Francisco".into()),
            (DnType::OrganizationName, "Acme, Inc.".into()),
            (DnType::OrganizationalUnitName, "Eng+Ops".into()),
            (DnType::CommonName, "alice".into()),
        ]);
        assert_eq!(
            distinguished_name(&der).unwrap(),
            r"CN=alice,OU=Eng\+Ops,O=Acme\, Inc.,L=San Francisco,ST=California,C=US"
        );
        // The default rule and a typical mapping rule on it.
        let mapper = SslPrincipalMapper::parse("RULE:^CN=([^,]+),OU=.*$/$1/L,DEFAULT").unwrap();
        assert_eq!(
            mapper.apply(&distinguished_name(&der).unwrap()).unwrap(),
            "alice"
        );
    }

    #[test]
    fn certificate_subject_escapes_and_string_types() {
        use rcgen::string::{BmpString, Ia5String, UniversalString};
        use rcgen::{DnType, DnValue};
        let der = rcgen_cert(vec![
            (
                DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
                DnValue::Ia5String(Ia5String::try_from("example").unwrap()),
            ),
            (
                DnType::LocalityName,
                DnValue::UniversalString(UniversalString::try_from("Wien").unwrap()),
            ),
            (
                DnType::OrganizationName,
                DnValue::BmpString(BmpString::try_from("Café").unwrap()),
            ),
            (
                DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                DnValue::Ia5String(Ia5String::try_from("ops@example.com").unwrap()),
            ),
            (DnType::CommonName, " #a;b=c<d>e\\\"f\0g  ".into()),
        ]);
        // A BMPString's bytes are decoded as UTF-8 (JDK 17), a UniversalString is hex.
        assert_eq!(
            distinguished_name(&der).unwrap(),
            "CN=\\ \\#a\\;b\\=c\\<d\\>e\\\\\\\"f\\00g\\ \\ ,\
             1.2.840.113549.1.9.1=#160f6f7073406578616d706c652e636f6d,\
             O=\\00C\\00a\\00f\\00\u{fffd},L=#1c100000005700000069000000650000006e,DC=example"
        );
    }

    /// Certificate made by `openssl req -utf8 -multivalue-rdn -subj
    /// "/C=DE/ST=Bayern/L=München/O=Moldau, GmbH/OU=Platform/OU=Ops+CN=broker-1.example.com/emailAddress=ops@example.com"`.
    const OPENSSL_CERT: &str = "
MIICpDCCAkugAwIBAgIUWXlu0ro0Q3k/SfvNrAQ/fkCIl0UwCgYIKoZIzj0EAwIw
gaYxCzAJBgNVBAYTAkRFMQ8wDQYDVQQIDAZCYXllcm4xETAPBgNVBAcMCE3DvG5j
aGVuMRUwEwYDVQQKDAxNb2xkYXUsIEdtYkgxETAPBgNVBAsMCFBsYXRmb3JtMSkw
CgYDVQQLDANPcHMwGwYDVQQDDBRicm9rZXItMS5leGFtcGxlLmNvbTEeMBwGCSqG
SIb3DQEJARYPb3BzQGV4YW1wbGUuY29tMCAXDTI2MTIwNzA0MjcxMVoYDzIxMjYx
MTEzMDQyNzExWjCBpjELMAkGA1UEBhMCREUxDzANBgNVBAgMBkJheWVybjERMA8G
A1UEBwwITcO8bmNoZW4xFTATBgNVBAoMDE1vbGRhdSwgR21iSDERMA8GA1UECwwI
UGxhdGZvcm0xKTAKBgNVBAsMA09wczAbBgNVBAMMFGJyb2tlci0xLmV4YW1wbGUu
Y29tMR4wHAYJKoZIhvcNAQkBFg9vcHNAZXhhbXBsZS5jb20wWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAQ+fJMi5fdDMaL1iNyoGjxo0WyLjy5lGWoYG0xMMdRCMxXy
9VrAudydvp7WKrbdtu6VNPdSrBLcl3MuBDKquKjAo1MwUTAdBgNVHQ4EFgQUgS2P
thoFL/9aEEqPvij04QE5o00wHwYDVR0jBBgwFoAUgS2PthoFL/9aEEqPvij04QE5
o00wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiASTITnetSEX83y
w8cmZJ+iZgqjm+I4G3/N+/KNbWaQYAIgJhXo8Y4g6ODy6HswI0vUco96OtNraCc9
+U/zftTvpro=";

    #[test]
    fn openssl_certificate_subject() {
        use base64::Engine;
        let b64: String = OPENSSL_CERT.split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(
            distinguished_name(&der).unwrap(),
            "1.2.840.113549.1.9.1=#160f6f7073406578616d706c652e636f6d,\
             OU=Ops+CN=broker-1.example.com,OU=Platform,O=Moldau\\, GmbH,L=M\u{fc}nchen,ST=Bayern,C=DE"
        );
    }

    /// DER `Name`s (hex) and what Java 17's `new X500Principal(der).getName()` printed.
    #[test]
    fn name_der_vectors_from_java() {
        let vectors = [
            ("3058310b3009060355040613024652310c300a06035504080c03494446310e300c06035504070c055061726973310d300b060355040a0c0441636d65310c300a060355040b0c03656e67310e300c06035504030c05616c696365", "CN=alice,OU=eng,O=Acme,L=Paris,ST=IDF,C=FR"),
            ("301e311c301a06035504030c13612c622b633d643c653e663b6722685c69236a", "CN=a\\,b\\+c\\=d\\<e\\>f\\;g\\\"h\\\\i\\#j"),
            ("30123110300e06035504030c0720206120622020", "CN=\\ \\ a b\\ \\ "),
            ("300c310a300806035504030c0120", "CN=\\ "),
            ("300e310c300a06035504030c030d610d", "CN=\\\u{d}a\\\u{d}"),
            ("300e310c300a06035504030c03610062", "CN=a\\00b"),
            ("300f310d300b06035504030c04610a620a", "CN=a\u{a}b\u{a}"),
            ("300e310c300a06035504030c03096109", "CN=\u{9}a\u{9}"),
            ("30143112301006035504030c09c3a9e282acf09f9880", "CN=\u{e9}\u{20ac}\u{1f600}"),
            ("300f310d300b06035504031e0400e920ac", "CN=\\00\u{fffd} \u{fffd}"),
            ("300f310d300b06035504031404636166e9", "CN=caf\u{fffd}"),
            ("3011310f300d060355040316067840795f7a2a", "CN=x@y_z*"),
            ("30133111300f06035504031c080000006100000062", "CN=#1c080000006100000062"),
            ("300e310c300a06035504031b0367656e", "CN=gen"),
            ("300e310c300a06035504031a03766973", "CN=#1a03766973"),
            ("300e310c300a06035504031203313233", "CN=#1203313233"),
            ("300c310a30080603550403020105", "CN=#020105"),
            ("30223114301206092a864886f70d01090116056140622e63310a300806035504030c0178", "CN=x,1.2.840.113549.1.9.1=#16056140622e63"),
            ("305831133011060a0992268993f22c6401191603636f6d31173015060a0992268993f22c64011916076578616d706c653112301006035504090c0931204d61696e20537431143012060a0992268993f22c6401010c046a646f65", "UID=jdoe,STREET=1 Main St,DC=example,DC=com"),
            ("301e310d300b0603550405130431323334310d300b060355040c0c04626f7373", "2.5.4.12=#0c04626f7373,2.5.4.5=#130431323334"),
            ("302c310d300b060355040a0c0441636d65311b300806035504030c0161300f060a0992268993f22c6401010c0162", "CN=a+UID=b,O=Acme"),
            ("302631243008060355040b0c017a300806035504030c0179300e06092a864886f70d010901160171", "OU=z+CN=y+1.2.840.113549.1.9.1=#160171"),
            ("3000", ""),
            ("300b3109300706035504030c00", "CN="),
            ("300f310d300b06035504030c0461e280a8", "CN=a\u{2028}"),
            ("300e310c300a06035504030c0361ff62", "CN=a\u{fffd}b"),
            ("300f310d300b06035504031e04d83dde00", "CN=\u{fffd}\\=\u{fffd}\\00"),
            ("30123110300e06092b06010401868d1f010c0176", "1.3.6.1.4.1.99999.1=#0c0176"),
            ("300c310a300806038837030c0176", "2.999.3=#0c0176"),
            ("300f310d300b06035504030c046101627f", "CN=a\u{1}b\u{7f}"),
            ("300e310c300a060355040330030c0178", "CN=#30030c0178"),
            ("301a311830160603550403130f612762286329643a653f662f673d68", "CN=a'b(c)d:e?f/g\\=h"),
            ("300f310d300b06035504030c04eda08078", "CN=\u{fffd}x"),
            ("300f310d300b06035504030c04e0808078", "CN=\u{fffd}\u{fffd}\u{fffd}x"),
            ("3010310e300c06035504030c0561f09f9841", "CN=a\u{fffd}A"),
            ("300c310a300806035504038c0178", "CN=#8c0178"),
            ("300e310c300a06035504032c030c0178", "CN=#2c030c0178"),
            ("30123110300e06035504030c07200d2061200d20", "CN=\\ \\\u{d}\\ a\\ \\\u{d}\\ "),
            ("300d310b300906035504030c020020", "CN=\\00\\ "),
        ];
        for (hex, expected) in vectors {
            let der: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(
                distinguished_name_from_name_der(&der).unwrap(),
                expected,
                "{hex}"
            );
        }
    }

    #[test]
    fn bad_certificates_are_errors() {
        assert!(matches!(
            distinguished_name(b"not a certificate"),
            Err(PrincipalError::InvalidCertificate(_))
        ));
        assert!(distinguished_name(&[]).is_err());
        assert!(distinguished_name_from_name_der(&[0x30, 0x03, 0x31, 0x01]).is_err());
        assert!(oid_string(&[0x2a, 0x86]).is_err());
        assert_eq!(oid_string(&[0x88, 0x37, 0x03]).unwrap(), "2.999.3");
        assert_eq!(
            oid_string(&[0x9d, 0x8d, 0xa5, 0x94, 0xa0, 0x55]).unwrap(),
            "2.1000000000005"
        );
        assert_eq!(
            oid_string(&[0x2a, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
                .unwrap(),
            "1.2.2361183241434822606849"
        );
    }
}
