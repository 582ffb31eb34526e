//! SASL/PLAIN (RFC 4616) as Kafka's `PlainSaslServer` with its default
//! `PlainServerCallbackHandler`: the users and passwords are the `user_<name>="<password>"`
//! options of the listener's `PlainLoginModule` JAAS entry. Also the client side: the
//! token, and the client's own `username` / `password` options.
//!
//! [`SaslError`] is defined in [`crate::scram`] and re-exported here.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::jaas::{JaasEntry, JaasError, LoginCredentials, PLAIN_LOGIN_MODULE};
pub use crate::scram::SaslError;

/// The SASL mechanism name.
pub const PLAIN_MECHANISM: &str = "PLAIN";

/// The prefix of a user's option in the JAAS entry (Kafka's `JAAS_USER_PREFIX`).
pub const JAAS_USER_PREFIX: &str = "user_";

/// The users a broker accepts with PLAIN, from its `PlainLoginModule` JAAS entry.
///
/// Passwords are kept as SHA-256 digests: a check then compares two 32-byte values in
/// constant time, whatever the lengths of the passwords, and an unknown user is checked
/// against a digest too.
#[derive(Clone)]
pub struct PlainUsers {
    digests: BTreeMap<String, [u8; 32]>,
}

impl std::fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainUsers")
            .field("users", &self.digests.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PlainUsers {
    /// The `user_<name>` options of a `PlainLoginModule` entry. Refuses an entry of another
    /// login module (Kafka would find no users in it and refuse every client).
    pub fn from_jaas(entry: &JaasEntry) -> Result<PlainUsers, JaasError> {
        entry.require_login_module(PLAIN_LOGIN_MODULE)?;
        let digests = entry
            .options
            .iter()
            .filter_map(|(key, password)| {
                let user = key.strip_prefix(JAAS_USER_PREFIX)?;
                Some((user.to_string(), digest(password.as_bytes())))
            })
            .collect();
        Ok(PlainUsers { digests })
    }

    /// Users from (name, password) pairs (tests, tools).
    pub fn from_passwords<'a>(users: impl IntoIterator<Item = (&'a str, &'a str)>) -> PlainUsers {
        PlainUsers {
            digests: users
                .into_iter()
                .map(|(user, password)| (user.to_string(), digest(password.as_bytes())))
                .collect(),
        }
    }

    pub fn contains_user(&self, user: &str) -> bool {
        self.digests.contains_key(user)
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `password` is `user`'s. An unknown user goes through the same hash and
    /// comparison as a known one, and fails.
    fn check(&self, user: &str, password: &[u8]) -> bool {
        let given = digest(password);
        let (expected, known) = match self.digests.get(user) {
            Some(expected) => (expected, subtle::Choice::from(1)),
            None => (&UNKNOWN_USER_DIGEST, subtle::Choice::from(0)),
        };
        bool::from(given.ct_eq(expected) & known)
    }
}

/// Compared with when the user is unknown (the result is discarded).
const UNKNOWN_USER_DIGEST: [u8; 32] = [0; 32];

fn digest(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

/// Authenticates a PLAIN token `[authzid] NUL authcid NUL passwd` and returns the user
/// name (the authorization id), as Kafka's `PlainSaslServer` does:
/// - the token is read as UTF-8 (invalid bytes become U+FFFD, as Java's decoder does) and
///   must have exactly three parts;
/// - an empty user name or password is refused before any lookup;
/// - a wrong password or an unknown user: "Invalid username or password";
/// - then a non-empty authzid must be the user name.
pub fn authenticate(users: &PlainUsers, token: &[u8]) -> Result<String, SaslError> {
    // Kafka splits at most four times: the part count it reports is capped at 4.
    let parts: Vec<&[u8]> = token.splitn(4, |b| *b == 0).collect();
    if parts.len() != 3 {
        return Err(SaslError::InvalidPlainResponse {
            tokens: parts.len(),
        });
    }
    let authzid = String::from_utf8_lossy(parts[0]);
    let username = String::from_utf8_lossy(parts[1]);
    // Java compares the decoded password's chars, so decode it the same way.
    let password = String::from_utf8_lossy(parts[2]);
    if username.is_empty() {
        return Err(SaslError::UsernameNotSpecified);
    }
    if password.is_empty() {
        return Err(SaslError::PasswordNotSpecified);
    }
    if !users.check(&username, password.as_bytes()) {
        return Err(SaslError::InvalidUsernameOrPassword);
    }
    if !authzid.is_empty() && authzid != username {
        return Err(SaslError::AuthorizationIdMismatch);
    }
    Ok(username.into_owned())
}

/// The client's PLAIN token: `NUL username NUL password` (no authzid, as Kafka's client).
pub fn client_token(username: &str, password: &str) -> Vec<u8> {
    let mut token = Vec::with_capacity(username.len() + password.len() + 2);
    token.push(0);
    token.extend_from_slice(username.as_bytes());
    token.push(0);
    token.extend_from_slice(password.as_bytes());
    token
}

/// The client's own credentials: the `username` and `password` options of its
/// `PlainLoginModule` JAAS entry.
pub fn client_credentials(entry: &JaasEntry) -> Result<LoginCredentials, JaasError> {
    entry.client_credentials(PLAIN_LOGIN_MODULE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jaas::parse_jaas_config;

    const BROKER_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

    fn users() -> PlainUsers {
        PlainUsers::from_jaas(&parse_jaas_config(BROKER_JAAS).unwrap()).unwrap()
    }

    #[test]
    fn users_come_from_user_options() {
        let users = users();
        assert!(users.contains_user("admin"));
        assert!(users.contains_user("alice"));
        // `username` / `password` are the broker's own client credentials, not a user.
        assert!(!users.contains_user("name"));
        assert!(!format!("{users:?}").contains("secret"));
    }

    #[test]
    fn good_password() {
        let users = users();
        assert_eq!(
            authenticate(&users, &client_token("alice", "alice-secret")).unwrap(),
            "alice"
        );
        assert_eq!(
            authenticate(&users, b"admin\0admin\0admin-secret").unwrap(),
            "admin"
        );
    }

    #[test]
    fn bad_password_and_unknown_user_look_the_same() {
        let users = users();
        let wrong = authenticate(&users, &client_token("alice", "admin-secret")).unwrap_err();
        let unknown = authenticate(&users, &client_token("mallory", "alice-secret")).unwrap_err();
        assert_eq!(wrong, SaslError::InvalidUsernameOrPassword);
        assert_eq!(unknown, wrong);
        assert_eq!(
            wrong.to_string(),
            "Authentication failed: Invalid username or password"
        );
        // A prefix or extension of the password is wrong too.
        for password in ["alice-secre", "alice-secret ", "ALICE-SECRET"] {
            assert_eq!(
                authenticate(&users, &client_token("alice", password)),
                Err(SaslError::InvalidUsernameOrPassword)
            );
        }
    }

    #[test]
    fn authzid() {
        let users = users();
        assert_eq!(
            authenticate(&users, b"alice\0alice\0alice-secret").unwrap(),
            "alice"
        );
        let err = authenticate(&users, b"admin\0alice\0alice-secret").unwrap_err();
        assert_eq!(err, SaslError::AuthorizationIdMismatch);
        assert_eq!(
            err.to_string(),
            "Authentication failed: Client requested an authorization id that is different from username"
        );
        // The password is checked first: a wrong one does not reveal the authzid rule.
        assert_eq!(
            authenticate(&users, b"admin\0alice\0nope"),
            Err(SaslError::InvalidUsernameOrPassword)
        );
    }

    #[test]
    fn malformed_tokens() {
        let users = users();
        let cases: [(&[u8], SaslError); 8] = [
            (b"", SaslError::InvalidPlainResponse { tokens: 1 }),
            (b"alice", SaslError::InvalidPlainResponse { tokens: 1 }),
            (b"\0alice", SaslError::InvalidPlainResponse { tokens: 2 }),
            (
                b"\0alice\0pw\0",
                SaslError::InvalidPlainResponse { tokens: 4 },
            ),
            (
                b"\0a\0b\0c\0d\0e",
                SaslError::InvalidPlainResponse { tokens: 4 },
            ),
            (b"\0\0alice-secret", SaslError::UsernameNotSpecified),
            (b"\0alice\0", SaslError::PasswordNotSpecified),
            (b"\0\0", SaslError::UsernameNotSpecified),
        ];
        for (token, expected) in cases {
            assert_eq!(authenticate(&users, token), Err(expected), "{token:?}");
        }
        assert_eq!(
            SaslError::InvalidPlainResponse { tokens: 2 }.to_string(),
            "Invalid SASL/PLAIN response: expected 3 tokens, got 2"
        );
    }

    #[test]
    fn non_utf8_is_decoded_lossily_and_fails() {
        let users = users();
        assert_eq!(
            authenticate(&users, b"\0ali\xffce\0alice-secret"),
            Err(SaslError::InvalidUsernameOrPassword)
        );
        assert_eq!(
            authenticate(&users, b"\0alice\0alice-secret\xc3"),
            Err(SaslError::InvalidUsernameOrPassword)
        );
        // As Java: an invalid byte reads as U+FFFD, which a configured password may hold.
        let odd = PlainUsers::from_passwords([("bob", "p\u{fffd}w")]);
        assert_eq!(authenticate(&odd, b"\0bob\0p\xffw").unwrap(), "bob");
    }

    #[test]
    fn empty_configured_password_never_matches() {
        let users = PlainUsers::from_passwords([("bob", "")]);
        assert_eq!(
            authenticate(&users, b"\0bob\0"),
            Err(SaslError::PasswordNotSpecified)
        );
        assert_eq!(
            authenticate(&users, b"\0bob\0x"),
            Err(SaslError::InvalidUsernameOrPassword)
        );
    }

    #[test]
    fn other_login_module_is_refused() {
        let entry = parse_jaas_config(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required user_alice="x";"#,
        )
        .unwrap();
        assert!(matches!(
            PlainUsers::from_jaas(&entry),
            Err(JaasError::WrongLoginModule { .. })
        ));
    }

    #[test]
    fn client_side() {
        let entry = parse_jaas_config(BROKER_JAAS).unwrap();
        let creds = client_credentials(&entry).unwrap();
        assert_eq!(creds.username, "admin");
        assert_eq!(creds.password, "admin-secret");
        let token = client_token(&creds.username, &creds.password);
        assert_eq!(token, b"\0admin\0admin-secret");
        assert_eq!(authenticate(&users(), &token).unwrap(), "admin");
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(token in proptest::collection::vec(any::<u8>(), 0..64)) {
                let users = PlainUsers::from_passwords([("alice", "alice-secret")]);
                let _ = authenticate(&users, &token);
            }

            #[test]
            fn round_trip(user in "[^\0]{1,20}", password in "[^\0]{1,20}") {
                let users = PlainUsers::from_passwords([(user.as_str(), password.as_str())]);
                prop_assert_eq!(authenticate(&users, &client_token(&user, &password)).unwrap(), user);
            }
        }
    }
}
