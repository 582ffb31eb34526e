//! Kafka's `sasl.jaas.config` value: one JAAS login module entry,
//! `<LoginModuleClass> <controlFlag> (<option>=<value>)* ;`.
//!
//! Kafka parses it with `java.io.StreamTokenizer` (its `JaasConfig`), and the quirks of that
//! tokenizer are the syntax users rely on, so this is a tokenizer with the same character
//! classes, quoting, escapes and comments, and the same parse on top:
//! - words are letters (and U+00A0.., any char above U+00FF), `-`, `_`, `$`, followed by those,
//!   digits and `.`: a class name or a bare option like `username=admin`;
//! - a token starting with a digit, `.` or `-` + digit is a number, which has no text: as a
//!   value it is "not specified", so numbers must be quoted (`iterations="8192"`);
//! - `"..."` or `'...'` quote anything; `\n \t \r \b \f \a \v`, octal `\0`..`\377` and
//!   `\<any>` (that char) are escapes; a quote also ends at a line end (as Kafka);
//! - `//` and a lone `/` start a comment to the end of the line, `/* ... */` a block comment.

use std::collections::BTreeMap;

/// Kafka's PLAIN login module (`PlainLoginModule`).
pub const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
/// Kafka's SCRAM login module (`ScramLoginModule`).
pub const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
/// Kafka's OAUTHBEARER login module (`OAuthBearerLoginModule`).
pub const OAUTHBEARER_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// A JAAS login module control flag (`LoginModuleControlFlag`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlFlag {
    Required,
    Requisite,
    Sufficient,
    Optional,
}

impl ControlFlag {
    /// The flag's name as JAAS writes it (lowercase).
    pub fn name(self) -> &'static str {
        match self {
            ControlFlag::Required => "required",
            ControlFlag::Requisite => "requisite",
            ControlFlag::Sufficient => "sufficient",
            ControlFlag::Optional => "optional",
        }
    }
}

impl std::fmt::Display for ControlFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The one login module entry of a `sasl.jaas.config` value.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasEntry {
    pub login_module: String,
    pub control_flag: ControlFlag,
    /// Options by name; a repeated option keeps its last value (as Kafka's map).
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for JaasEntry {
    // Option values are passwords (`password`, `user_<name>`): never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JaasEntry")
            .field("login_module", &self.login_module)
            .field("control_flag", &self.control_flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A client's own user name and password, from a login module's `username` and
/// `password` options.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for LoginCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginCredentials")
            .field("username", &self.username)
            .field("password", &"[hidden]")
            .finish()
    }
}

impl JaasEntry {
    /// An option's value.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }

    /// Refuses an entry whose login module is not `login_module` (for a mechanism that
    /// reads its own module's options, e.g. PLAIN's `user_<name>`).
    pub fn require_login_module(&self, login_module: &str) -> Result<(), JaasError> {
        if self.login_module == login_module {
            Ok(())
        } else {
            Err(JaasError::WrongLoginModule {
                expected: login_module.to_string(),
                found: self.login_module.clone(),
            })
        }
    }

    /// The client's credentials: the `username` and `password` options of an entry of
    /// `login_module`.
    pub fn client_credentials(&self, login_module: &str) -> Result<LoginCredentials, JaasError> {
        self.require_login_module(login_module)?;
        let get = |option: &'static str| {
            self.option(option)
                .map(str::to_string)
                .ok_or_else(|| JaasError::MissingOption {
                    login_module: self.login_module.clone(),
                    option,
                })
        };
        Ok(LoginCredentials {
            username: get("username")?,
            password: get("password")?,
        })
    }
}

/// Why a `sasl.jaas.config` value was refused. Messages follow Kafka's where it has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JaasError {
    #[error("Login module not specified in JAAS config")]
    LoginModuleNotSpecified,
    /// The login module is not a word or a quoted string (or is an empty one).
    #[error("Login module class name not specified in JAAS config (found {found})")]
    InvalidLoginModule { found: String },
    #[error("Login module control flag not specified in JAAS config")]
    ControlFlagNotSpecified,
    /// The token after the class name is not a word or a quoted string.
    #[error("Login module control flag is not available in the JAAS config (found {found})")]
    ControlFlagNotAvailable { found: String },
    #[error("Invalid login module control flag '{flag}' in JAAS config")]
    InvalidControlFlag { flag: String },
    /// Where an option name should be there is something else (a number, a symbol).
    #[error("Option name expected in JAAS config, found {found}")]
    OptionNameExpected { found: String },
    /// No `=`, or a value that is not a word or a quoted string (numbers must be quoted).
    #[error("Value not specified for key '{key}' in JAAS config")]
    ValueNotSpecified { key: String },
    #[error("JAAS config entry not terminated by semi-colon")]
    NotTerminated,
    #[error("Unterminated quoted string in JAAS config (missing closing {quote})")]
    UnterminatedQuote { quote: char },
    #[error("JAAS config property contains {count} login modules, should be 1 module")]
    MultipleLoginModules { count: usize },
    #[error("JAAS config for {expected} expected, but the login module is {found}")]
    WrongLoginModule { expected: String, found: String },
    #[error("Option '{option}' not specified for {login_module} in JAAS config")]
    MissingOption {
        login_module: String,
        option: &'static str,
    },
}

/// Parses a `sasl.jaas.config` value: exactly one login module entry, as Kafka requires of
/// that property.
pub fn parse_jaas_config(text: &str) -> Result<JaasEntry, JaasError> {
    let mut entries = parse_entries(text)?;
    match entries.len() {
        0 => Err(JaasError::LoginModuleNotSpecified),
        1 => Ok(entries.remove(0)),
        count => Err(JaasError::MultipleLoginModules { count }),
    }
}

/// Every entry of a JAAS text (Kafka's `JaasConfig`), for callers that accept several.
fn parse_entries(text: &str) -> Result<Vec<JaasEntry>, JaasError> {
    let mut tokens = Tokenizer::new(text);
    let mut entries = Vec::new();
    loop {
        let first = tokens.next_token()?;
        if first == Token::Eof {
            return Ok(entries);
        }
        entries.push(parse_entry(&mut tokens, first)?);
    }
}

fn parse_entry(tokens: &mut Tokenizer<'_>, first: Token) -> Result<JaasEntry, JaasError> {
    let flag = match tokens.next_token()? {
        Token::Eof => return Err(JaasError::ControlFlagNotSpecified),
        token => match token.text() {
            Some(flag) => control_flag(flag)?,
            None => {
                return Err(JaasError::ControlFlagNotAvailable {
                    found: token.describe(),
                })
            }
        },
    };
    let mut options = BTreeMap::new();
    loop {
        let key_token = tokens.next_token()?;
        match key_token {
            Token::Eof => return Err(JaasError::NotTerminated),
            Token::Char(';') => break,
            _ => {}
        }
        let Some(key) = key_token.text().map(str::to_string) else {
            // Kafka would read a `null` key here; no login module has one, so refuse it.
            return Err(JaasError::OptionNameExpected {
                found: key_token.describe(),
            });
        };
        if tokens.next_token()? != Token::Char('=') {
            return Err(JaasError::ValueNotSpecified { key });
        }
        let value = match tokens.next_token()?.text() {
            Some(value) => value.to_string(),
            None => return Err(JaasError::ValueNotSpecified { key }),
        };
        options.insert(key, value);
    }
    // Kafka checks the class name last (`AppConfigurationEntry`'s constructor).
    let login_module = match first.text() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            return Err(JaasError::InvalidLoginModule {
                found: first.describe(),
            })
        }
    };
    Ok(JaasEntry {
        login_module,
        control_flag: flag,
        options,
    })
}

fn control_flag(flag: &str) -> Result<ControlFlag, JaasError> {
    // Java's `toUpperCase(Locale.ROOT)` is Unicode's full uppercase mapping, as Rust's.
    match flag.to_uppercase().as_str() {
        "REQUIRED" => Ok(ControlFlag::Required),
        "REQUISITE" => Ok(ControlFlag::Requisite),
        "SUFFICIENT" => Ok(ControlFlag::Sufficient),
        "OPTIONAL" => Ok(ControlFlag::Optional),
        _ => Err(JaasError::InvalidControlFlag {
            flag: flag.to_string(),
        }),
    }
}

/// A `StreamTokenizer` token, as `JaasConfig` sees it.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    Eof,
    Word(String),
    Quoted(String),
    /// A number has no `sval`: it is never a name or a value.
    Number,
    /// An ordinary character: `=`, `;`, or anything else outside the other classes.
    Char(char),
}

impl Token {
    /// The token's `sval`: words and quoted strings only.
    fn text(&self) -> Option<&str> {
        match self {
            Token::Word(s) | Token::Quoted(s) => Some(s),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Token::Eof => "the end of the text".to_string(),
            Token::Word(s) => format!("'{s}'"),
            Token::Quoted(_) => "an empty quoted string".to_string(),
            Token::Number => "a number (numbers must be quoted)".to_string(),
            Token::Char(c) => format!("'{}'", c.escape_debug()),
        }
    }
}

// `StreamTokenizer`'s character classes, for chars below U+0100 (above: word chars).
const CT_WHITESPACE: u8 = 1;
const CT_DIGIT: u8 = 2;
const CT_ALPHA: u8 = 4;
const CT_QUOTE: u8 = 8;
const CT_COMMENT: u8 = 16;

/// The syntax table `JaasConfig` sets up: the tokenizer's defaults (letters and
/// U+00A0..U+00FF are word chars, U+0000..space whitespace, `/` a comment char, `"` and `'`
/// quotes, digits `.` `-` numeric), plus `-`, `_`, `$` as word chars.
fn char_class(c: char) -> u8 {
    let Ok(b) = u8::try_from(u32::from(c)) else {
        return CT_ALPHA;
    };
    match b {
        0..=b' ' => CT_WHITESPACE,
        b'a'..=b'z' | b'A'..=b'Z' | 0xA0..=0xFF | b'_' | b'$' => CT_ALPHA,
        // `wordChars('-')` adds the word class to `-` and keeps it numeric.
        b'-' => CT_DIGIT | CT_ALPHA,
        b'0'..=b'9' | b'.' => CT_DIGIT,
        b'"' | b'\'' => CT_QUOTE,
        b'/' => CT_COMMENT,
        _ => 0,
    }
}

struct Tokenizer<'a> {
    chars: std::str::Chars<'a>,
    /// A char read ahead and not yet consumed (`peekc`); `None` means read the next one.
    peeked: Option<Option<char>>,
}

impl<'a> Tokenizer<'a> {
    fn new(text: &'a str) -> Self {
        Tokenizer {
            chars: text.chars(),
            peeked: None,
        }
    }

    fn read(&mut self) -> Option<char> {
        match self.peeked.take() {
            Some(c) => c,
            None => self.chars.next(),
        }
    }

    fn unread(&mut self, c: Option<char>) {
        self.peeked = Some(c);
    }

    /// The next token; comments are skipped in a loop (not by recursion, so that a long
    /// run of comments cannot exhaust the stack).
    fn next_token(&mut self) -> Result<Token, JaasError> {
        loop {
            let mut c = self.read();
            // Whitespace (line ends included: `eolIsSignificant` is off).
            while let Some(ch) = c {
                if char_class(ch) & CT_WHITESPACE == 0 {
                    break;
                }
                c = self.read();
            }
            let Some(ch) = c else {
                return Ok(Token::Eof);
            };
            let class = char_class(ch);

            if class & CT_DIGIT != 0 {
                return Ok(self.number(ch));
            }
            if class & CT_ALPHA != 0 {
                return Ok(self.word(ch));
            }
            if class & CT_QUOTE != 0 {
                return self.quoted(ch);
            }
            if ch == '/' {
                // `slashSlashComments` and `slashStarComments` are on, and `/` is still
                // the default comment char: `/*` opens a block, anything else after `/`
                // (including a second `/`) comments out the rest of the line. The char
                // after a lone `/` is dropped unchecked, even a line end, as the tokenizer does.
                if self.read() == Some('*') {
                    if !self.skip_block_comment() {
                        return Ok(Token::Eof);
                    }
                } else {
                    self.skip_line();
                }
                continue;
            }
            if class & CT_COMMENT != 0 {
                self.skip_line();
                continue;
            }
            return Ok(Token::Char(ch));
        }
    }

    /// A number: an optional `-`, digits and at most one `.`. A `-` not followed by a digit
    /// or `.` is the ordinary char `-`.
    fn number(&mut self, first: char) -> Token {
        let mut c = Some(first);
        if first == '-' {
            c = self.read();
            if !matches!(c, Some('.' | '0'..='9')) {
                self.unread(c);
                return Token::Char('-');
            }
        }
        let mut seen_dot = false;
        loop {
            match c {
                Some('.') if !seen_dot => seen_dot = true,
                Some('0'..='9') => {}
                _ => break,
            }
            c = self.read();
        }
        self.unread(c);
        Token::Number
    }

    fn word(&mut self, first: char) -> Token {
        let mut word = String::new();
        word.push(first);
        loop {
            let c = self.read();
            match c {
                Some(ch) if char_class(ch) & (CT_ALPHA | CT_DIGIT) != 0 => word.push(ch),
                _ => {
                    self.unread(c);
                    return Token::Word(word);
                }
            }
        }
    }

    fn quoted(&mut self, quote: char) -> Result<Token, JaasError> {
        let mut text = String::new();
        let mut d = self.read();
        loop {
            let ch = match d {
                // The tokenizer ends a quoted string at the end of the text without
                // complaint; Kafka then fails on whatever is missing after it. Say what
                // is wrong instead.
                None => return Err(JaasError::UnterminatedQuote { quote }),
                Some(ch) if ch == quote => break,
                // A line end closes the string (and stays in the input, as whitespace).
                Some('\n' | '\r') => {
                    self.unread(d);
                    return Ok(Token::Quoted(text));
                }
                Some(ch) => ch,
            };
            if ch != '\\' {
                text.push(ch);
                d = self.read();
                continue;
            }
            let escaped = self.read();
            match escaped {
                Some(first @ '0'..='7') => {
                    // Octal: up to three digits, the third only if the first is 0..3
                    // (so at most \377).
                    let mut value = first as u32 - '0' as u32;
                    d = self.read();
                    if let Some(c2 @ '0'..='7') = d {
                        value = value * 8 + (c2 as u32 - '0' as u32);
                        d = self.read();
                        if let Some(c3 @ '0'..='7') = d {
                            if first <= '3' {
                                value = value * 8 + (c3 as u32 - '0' as u32);
                                d = self.read();
                            }
                        }
                    }
                    // At most 0o377: always a char.
                    text.extend(char::from_u32(value));
                }
                Some(other) => {
                    text.push(match other {
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'v' => '\u{b}',
                        // `\"`, `\\`, and any other char stand for themselves.
                        c => c,
                    });
                    d = self.read();
                }
                None => return Err(JaasError::UnterminatedQuote { quote }),
            }
        }
        Ok(Token::Quoted(text))
    }

    /// Skips to the end of the line; the line end is left to be read as whitespace.
    fn skip_line(&mut self) {
        loop {
            let c = self.read();
            match c {
                None => return,
                Some('\n' | '\r') => {
                    self.unread(c);
                    return;
                }
                Some(_) => {}
            }
        }
    }

    /// Skips a `/* ... */` comment whose `/*` was read; false if the text ends inside it.
    /// As the tokenizer does, the char right after a line end is taken without being
    /// checked for the closing `/` (it still counts as the `*` before one).
    fn skip_block_comment(&mut self) -> bool {
        let mut prev: Option<char> = None;
        loop {
            let mut c = self.read();
            if c == Some('/') && prev == Some('*') {
                return true;
            }
            match c {
                Some('\r') => {
                    c = self.read();
                    if c == Some('\n') {
                        c = self.read();
                    }
                }
                Some('\n') => c = self.read(),
                _ => {}
            }
            if c.is_none() {
                return false;
            }
            prev = c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(entry: &JaasEntry) -> Vec<(&str, &str)> {
        entry
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn plain_broker_example() {
        let entry = parse_jaas_config(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#,
        )
        .unwrap();
        assert_eq!(entry.login_module, PLAIN_LOGIN_MODULE);
        assert_eq!(entry.control_flag, ControlFlag::Required);
        assert_eq!(
            opts(&entry),
            vec![
                ("password", "admin-secret"),
                ("user_admin", "admin-secret"),
                ("user_alice", "alice-secret"),
                ("username", "admin"),
            ]
        );
    }

    #[test]
    fn scram_example_with_line_breaks_and_tokenauth() {
        let entry = parse_jaas_config(
            "org.apache.kafka.common.security.scram.ScramLoginModule required\n    username=\"alice\"\n    password=\"alice-secret\"\n    tokenauth=\"true\";",
        )
        .unwrap();
        assert_eq!(entry.login_module, SCRAM_LOGIN_MODULE);
        assert_eq!(
            opts(&entry),
            vec![
                ("password", "alice-secret"),
                ("tokenauth", "true"),
                ("username", "alice"),
            ]
        );
        let creds = entry.client_credentials(SCRAM_LOGIN_MODULE).unwrap();
        assert_eq!(creds.username, "alice");
        assert_eq!(creds.password, "alice-secret");
        assert!(!format!("{creds:?}").contains("alice-secret"));
    }

    #[test]
    fn oauthbearer_unsecured_example() {
        let entry = parse_jaas_config(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin";"#,
        )
        .unwrap();
        assert_eq!(entry.login_module, OAUTHBEARER_LOGIN_MODULE);
        assert_eq!(
            opts(&entry),
            vec![("unsecuredLoginStringClaim_sub", "admin")]
        );
    }

    #[test]
    fn unquoted_words_flags_and_single_quotes() {
        let entry = parse_jaas_config("a.B$c-d_e SUFFICIENT k=v-1.x other='x y' $k=\u{e9}t\u{e9};")
            .unwrap();
        assert_eq!(entry.login_module, "a.B$c-d_e");
        assert_eq!(entry.control_flag, ControlFlag::Sufficient);
        assert_eq!(
            opts(&entry),
            vec![("$k", "\u{e9}t\u{e9}"), ("k", "v-1.x"), ("other", "x y")]
        );
        for (flag, expected) in [
            ("required", ControlFlag::Required),
            ("Requisite", ControlFlag::Requisite),
            ("optional", ControlFlag::Optional),
            ("\"required\"", ControlFlag::Required),
        ] {
            let entry = parse_jaas_config(&format!("M {flag};")).unwrap();
            assert_eq!(entry.control_flag, expected);
            assert!(entry.options.is_empty());
        }
    }

    #[test]
    fn escapes_in_quoted_values() {
        let entry = parse_jaas_config(
            r#"M required a="x\"y" b="back\\slash" c="tab\there" d="\101\60\0" e="\q" f='it\'s' g="/* not a comment */" h="";"#,
        )
        .unwrap();
        assert_eq!(
            opts(&entry),
            vec![
                ("a", "x\"y"),
                ("b", "back\\slash"),
                ("c", "tab\there"),
                ("d", "A0\0"),
                ("e", "q"),
                ("f", "it's"),
                ("g", "/* not a comment */"),
                ("h", ""),
            ]
        );
        // \477 is \47 then '7' (three octal digits only when the first is 0..3).
        let entry = parse_jaas_config(r#"M required a="\477";"#).unwrap();
        assert_eq!(entry.option("a"), Some("'7"));
    }

    #[test]
    fn comments_are_skipped() {
        let entry = parse_jaas_config(
            "/* leading */ M required // the flag\n a=\"1\" /* multi\n line */ b=\"2\"; // trailing",
        )
        .unwrap();
        assert_eq!(opts(&entry), vec![("a", "1"), ("b", "2")]);
        // A lone `/` comments out the rest of the line, as Kafka's tokenizer does.
        assert_eq!(
            parse_jaas_config("M required k=/etc/passwd;"),
            Err(JaasError::ValueNotSpecified { key: "k".into() })
        );
    }

    #[test]
    fn repeated_option_keeps_the_last() {
        let entry = parse_jaas_config(r#"M required a="1" a="2";"#).unwrap();
        assert_eq!(entry.option("a"), Some("2"));
    }

    #[test]
    fn malformed() {
        use JaasError::*;
        let cases: Vec<(&str, JaasError)> = vec![
            ("", LoginModuleNotSpecified),
            ("  // only a comment", LoginModuleNotSpecified),
            (
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin""#,
                NotTerminated,
            ),
            ("M", ControlFlagNotSpecified),
            (
                "M 1;",
                ControlFlagNotAvailable {
                    found: "a number (numbers must be quoted)".into(),
                },
            ),
            (
                "M mandatory;",
                InvalidControlFlag {
                    flag: "mandatory".into(),
                },
            ),
            ("M required a;", ValueNotSpecified { key: "a".into() }),
            ("M required a=;", ValueNotSpecified { key: "a".into() }),
            ("M required a=", ValueNotSpecified { key: "a".into() }),
            ("M required a=8192;", ValueNotSpecified { key: "a".into() }),
            (
                "M required =x;",
                OptionNameExpected {
                    found: "'='".into(),
                },
            ),
            (
                "; required;",
                InvalidLoginModule {
                    found: "';'".into(),
                },
            ),
            (
                "\"\" required;",
                InvalidLoginModule {
                    found: "an empty quoted string".into(),
                },
            ),
            (
                r#"M required a="unterminated;"#,
                UnterminatedQuote { quote: '"' },
            ),
            (r#"M required a="x\"#, UnterminatedQuote { quote: '"' }),
            (
                r#"A required a="1"; B optional b="2";"#,
                MultipleLoginModules { count: 2 },
            ),
            ("M required /* unterminated comment ;", NotTerminated),
            // The line end right after a lone `/` does not end its comment.
            ("M required /\n a=\"1\";", NotTerminated),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_jaas_config(text), Err(expected), "{text:?}");
        }
        assert_eq!(
            parse_jaas_config("M required a=\"1\" b=\"2\"")
                .unwrap_err()
                .to_string(),
            "JAAS config entry not terminated by semi-colon"
        );
    }

    #[test]
    fn quote_ends_at_line_end_as_kafka() {
        let entry = parse_jaas_config("M required a=\"x\n;").unwrap();
        assert_eq!(entry.option("a"), Some("x"));
    }

    #[test]
    fn wrong_module_and_missing_credentials() {
        let entry = parse_jaas_config(r#"M required username="u";"#).unwrap();
        assert!(matches!(
            entry.client_credentials(PLAIN_LOGIN_MODULE),
            Err(JaasError::WrongLoginModule { .. })
        ));
        let entry =
            parse_jaas_config(&format!("{PLAIN_LOGIN_MODULE} required username=\"u\";")).unwrap();
        let err = entry.client_credentials(PLAIN_LOGIN_MODULE).unwrap_err();
        assert_eq!(
            err,
            JaasError::MissingOption {
                login_module: PLAIN_LOGIN_MODULE.into(),
                option: "password"
            }
        );
        assert!(!format!("{entry:?}").contains("\"u\""));
    }

    #[test]
    fn many_comments_do_not_overflow_the_stack() {
        let text = "/**/".repeat(100_000) + "M required;";
        assert!(parse_jaas_config(&text).is_ok());
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(text in any::<String>()) {
                let _ = parse_jaas_config(&text);
            }

            #[test]
            fn never_panics_on_jaas_like_text(text in "[a-zA-Z0-9 =;\"'\\\\/*.\\-_$\n]{0,60}") {
                let _ = parse_jaas_config(&text);
            }

            #[test]
            fn quoted_values_round_trip(value in "[^\"\\\\\n\r]{0,40}", key in "[a-z_][a-zA-Z0-9_]{0,10}") {
                let text = format!("M required {key}=\"{value}\";");
                let entry = parse_jaas_config(&text).unwrap();
                prop_assert_eq!(entry.option(&key), Some(value.as_str()));
            }
        }
    }
}
