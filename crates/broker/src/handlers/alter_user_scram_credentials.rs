//! AlterUserScramCredentials: set (upsert) and delete users' SCRAM credentials, on the
//! active controller (other nodes forward it), as Kafka 4.1's `ScramControlManager`.
//!
//! An upsertion carries the salted password, never the password: the controller derives
//! the stored and server keys from it (`ScramCredential::from_salted_password`) and writes
//! a `UserScramCredential` record; a deletion writes `RemoveUserScramCredential`. Each user
//! may be altered once per request: a second alteration of the same user (whatever the
//! mechanism, deletion or upsertion) fails that user with DUPLICATE_RESOURCE and none of its
//! alterations is made. Per user, Kafka's checks and messages: an empty name
//! UNACCEPTABLE_CREDENTIAL, an unknown mechanism UNSUPPORTED_SASL_MECHANISM, iterations
//! outside [4096, 16384] UNACCEPTABLE_CREDENTIAL, deleting a credential that does not
//! exist RESOURCE_NOT_FOUND. The records of every user that passed are committed together
//! as one batch. Results: the deletions made, the upsertions made, then the refusals, each
//! in the order the users were first named.

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::{Message, StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataImage, MetadataRecord};
use moldau_security::acl::AclOperation;
use moldau_security::scram::{ScramCredential, ScramMechanism};

use super::{authz, str_bytes};
use crate::api::RequestContext;
use crate::error::BrokerError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = AlterUserScramCredentialsRequest::VERSIONS;

type Refusal = (ResponseError, Option<String>);

const ALTERED_TWICE: &str = "A user credential cannot be altered twice in the same request";

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Kafka's controller asks ALTER on the cluster first
    // (ControllerApis.handleAlterUserScramCredentials).
    if let Err(message) = authz::authorize_cluster_unless_forwarded(state, ctx, AclOperation::Alter)
    {
        return error_response(
            &request,
            ResponseError::ClusterAuthorizationFailed,
            &message,
        );
    }
    if let Some(response) = super::forward_unless_controller(state, ctx, &request).await {
        return response;
    }
    let outcome = state
        .controller
        .write(|image| Ok::<_, BrokerError>(decide(image, &request)))
        .await;
    match outcome {
        Ok(results) => AlterUserScramCredentialsResponse::default().with_results(results),
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::error!("cannot alter SCRAM credentials: {e}");
            }
            error_response(&request, e.response_error(), &e.to_string())
        }
    }
}

/// Kafka's `getErrorResponse`: every user named, once, sorted, with the request's error.
fn error_response(
    request: &AlterUserScramCredentialsRequest,
    error: ResponseError,
    message: &str,
) -> AlterUserScramCredentialsResponse {
    let mut users: Vec<&StrBytes> = request
        .deletions
        .iter()
        .map(|d| &d.name)
        .chain(request.upsertions.iter().map(|u| &u.name))
        .collect();
    users.sort();
    users.dedup();
    let results = users
        .into_iter()
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(user.clone())
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(message)))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// What a user's alteration came to, in the order users are first named.
enum Decision<'a> {
    Delete(&'a StrBytes, i8),
    Upsert(&'a StrBytes, usize),
    Refused(&'a StrBytes, Refusal),
}

impl Decision<'_> {
    fn user(&self) -> &StrBytes {
        match self {
            Decision::Delete(user, _) | Decision::Upsert(user, _) | Decision::Refused(user, _) => {
                user
            }
        }
    }
}

/// Kafka's `ScramControlManager.alterCredentials` against the controller's image: the
/// records to commit and every user's result.
fn decide(
    image: &MetadataImage,
    request: &AlterUserScramCredentialsRequest,
) -> (Vec<MetadataRecord>, Vec<AlterUserScramCredentialsResult>) {
    let mut decisions: Vec<Decision> = Vec::new();
    let find = |decisions: &Vec<Decision>, user: &StrBytes| {
        decisions.iter().position(|d| d.user() == user)
    };
    for deletion in &request.deletions {
        let user = &deletion.name;
        match find(&decisions, user) {
            Some(i) => {
                if let Decision::Delete(..) = decisions[i] {
                    decisions[i] = Decision::Refused(user, duplicate());
                }
            }
            None => decisions.push(match validate_deletion(image, user, deletion.mechanism) {
                Ok(()) => Decision::Delete(user, deletion.mechanism),
                Err(refusal) => Decision::Refused(user, refusal),
            }),
        }
    }
    for (index, upsertion) in request.upsertions.iter().enumerate() {
        let user = &upsertion.name;
        match find(&decisions, user) {
            Some(i) => {
                if !matches!(decisions[i], Decision::Refused(..)) {
                    decisions[i] = Decision::Refused(user, duplicate());
                }
            }
            None => decisions.push(
                match validate_upsertion(user, upsertion.mechanism, upsertion.iterations) {
                    Ok(()) => Decision::Upsert(user, index),
                    Err(refusal) => Decision::Refused(user, refusal),
                },
            ),
        }
    }

    let mut records = Vec::new();
    let mut done = Vec::new();
    let mut refused: Vec<(&StrBytes, Refusal)> = Vec::new();
    for decision in &decisions {
        if let Decision::Delete(user, mechanism) = decision {
            records.push(MetadataRecord::RemoveUserScramCredential {
                name: user.to_string(),
                mechanism: *mechanism,
            });
            done.push(success(user));
        }
    }
    for decision in &decisions {
        match decision {
            Decision::Upsert(user, index) => match upsertion_record(&request.upsertions[*index]) {
                Ok(record) => {
                    records.push(record);
                    done.push(success(user));
                }
                Err(refusal) => refused.push((user, refusal)),
            },
            Decision::Refused(user, refusal) => refused.push((user, refusal.clone())),
            Decision::Delete(..) => {}
        }
    }
    // Refusals found while making records come after those found before, as in Kafka's
    // map of errors they join; keep the order users were named.
    let position = |user: &StrBytes| find(&decisions, user).unwrap_or(usize::MAX);
    refused.sort_by_key(|(user, _)| position(user));
    let results = done
        .into_iter()
        .chain(refused.into_iter().map(|(user, (error, message))| {
            AlterUserScramCredentialsResult::default()
                .with_user(user.clone())
                .with_error_code(error.code())
                .with_error_message(message.map(str_bytes))
        }))
        .collect();
    (records, results)
}

/// Kafka sets a null message on success (the field's default is empty).
fn success(user: &StrBytes) -> AlterUserScramCredentialsResult {
    AlterUserScramCredentialsResult::default()
        .with_user(user.clone())
        .with_error_message(None)
}

fn duplicate() -> Refusal {
    (ResponseError::DuplicateResource, Some(ALTERED_TWICE.into()))
}

/// Kafka's `validateScramUsernameAndMechanism`.
fn validate_user_and_mechanism(user: &str, mechanism: i8) -> Result<ScramMechanism, Refusal> {
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            Some("Username must not be empty".into()),
        ));
    }
    ScramMechanism::from_type_code(mechanism).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        Some("Unknown SCRAM mechanism".into()),
    ))
}

/// Kafka's `validateDeletion`: the credential must exist.
fn validate_deletion(image: &MetadataImage, user: &str, mechanism: i8) -> Result<(), Refusal> {
    validate_user_and_mechanism(user, mechanism)?;
    if image.scram_credential(user, mechanism).is_none() {
        return Err((
            ResponseError::ResourceNotFound,
            Some("Attempt to delete a user credential that does not exist".into()),
        ));
    }
    Ok(())
}

/// Kafka's `validateUpsertion`: the mechanism's iteration bounds.
fn validate_upsertion(user: &str, mechanism: i8, iterations: i32) -> Result<(), Refusal> {
    let mechanism = validate_user_and_mechanism(user, mechanism)?;
    if iterations < mechanism.min_iterations() {
        return Err((
            ResponseError::UnacceptableCredential,
            Some("Too few iterations".into()),
        ));
    }
    if iterations > mechanism.max_iterations() {
        return Err((
            ResponseError::UnacceptableCredential,
            Some("Too many iterations".into()),
        ));
    }
    Ok(())
}

/// Kafka's `finishUpsertion`: the stored and server keys from the salted password. Java's
/// HMAC refuses an empty key, which Kafka answers UNKNOWN_SERVER_ERROR without a message.
fn upsertion_record(
    upsertion: &kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion,
) -> Result<MetadataRecord, Refusal> {
    let mechanism = ScramMechanism::from_type_code(upsertion.mechanism).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        Some("Unknown SCRAM mechanism".to_string()),
    ))?;
    if upsertion.salted_password.is_empty() {
        return Err((ResponseError::UnknownServerError, None));
    }
    let credential = ScramCredential::from_salted_password(
        mechanism,
        &upsertion.salted_password,
        &upsertion.salt,
        upsertion.iterations,
    );
    Ok(MetadataRecord::UserScramCredential {
        name: upsertion.name.to_string(),
        mechanism: mechanism.type_code(),
        salt: credential.salt.into(),
        stored_key: credential.stored_key.into(),
        server_key: credential.server_key.into(),
        iterations: credential.iterations,
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use moldau_metadata::MetadataDelta;

    use super::*;

    fn upsert(name: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
        ScramCredentialUpsertion::default()
            .with_name(str_bytes(name))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(Bytes::from_static(b"salt"))
            .with_salted_password(Bytes::from_static(b"salted"))
    }

    fn delete(name: &str, mechanism: i8) -> ScramCredentialDeletion {
        ScramCredentialDeletion::default()
            .with_name(str_bytes(name))
            .with_mechanism(mechanism)
    }

    fn run(
        image: &MetadataImage,
        deletions: Vec<ScramCredentialDeletion>,
        upsertions: Vec<ScramCredentialUpsertion>,
    ) -> (MetadataImage, Vec<String>) {
        let request = AlterUserScramCredentialsRequest::default()
            .with_deletions(deletions)
            .with_upsertions(upsertions);
        let (records, results) = decide(image, &request);
        let mut delta = MetadataDelta::new(image);
        for (i, record) in records.iter().enumerate() {
            delta.replay(image.offset + 1 + i as i64, record).unwrap();
        }
        let results = results
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r.user.as_str(),
                    r.error_code,
                    r.error_message.as_deref().unwrap_or("-")
                )
            })
            .collect();
        (delta.apply(), results)
    }

    #[test]
    fn upsertions_store_keys_derived_from_the_salted_password() {
        let (image, results) = run(
            &MetadataImage::empty(),
            vec![],
            vec![upsert("alice", 1, 4096), upsert("bob", 2, 16384)],
        );
        assert_eq!(results, vec!["alice 0 -", "bob 0 -"]);
        let alice = image.scram_credential("alice", 1).unwrap();
        let expected =
            ScramCredential::from_salted_password(ScramMechanism::Sha256, b"salted", b"salt", 4096);
        assert_eq!(alice.stored_key.as_slice(), expected.stored_key.as_slice());
        assert_eq!(alice.server_key.as_slice(), expected.server_key.as_slice());
        assert_eq!(
            (alice.salt.as_slice(), alice.iterations),
            (&b"salt"[..], 4096)
        );
        assert_eq!(image.scram_credential("bob", 2).unwrap().iterations, 16384);
    }

    #[test]
    fn refusals_carry_kafkas_codes_and_messages_and_leave_the_user_untouched() {
        let (image, _) = run(
            &MetadataImage::empty(),
            vec![],
            vec![upsert("alice", 1, 4096), upsert("dave", 1, 4096)],
        );
        let (after, results) = run(
            &image,
            vec![
                delete("alice", 1),
                delete("bob", 1),
                delete("", 1),
                delete("carol", 0),
                delete("dave", 2),
            ],
            vec![
                upsert("alice", 2, 4096),
                upsert("erin", 1, 4095),
                upsert("frank", 2, 16385),
                upsert("gina", 3, 4096),
                upsert("hal", 1, 8192),
            ],
        );
        assert_eq!(
            results,
            vec![
                "hal 0 -",
                "alice 92 A user credential cannot be altered twice in the same request",
                "bob 91 Attempt to delete a user credential that does not exist",
                " 93 Username must not be empty",
                "carol 33 Unknown SCRAM mechanism",
                "dave 91 Attempt to delete a user credential that does not exist",
                "erin 93 Too few iterations",
                "frank 93 Too many iterations",
                "gina 33 Unknown SCRAM mechanism",
            ]
        );
        // Alice's deletion was not made, nor her upsertion; Hal's was.
        assert!(after.scram_credential("alice", 1).is_some());
        assert!(after.scram_credential("alice", 2).is_none());
        assert!(after.scram_credential("hal", 1).is_some());
        assert_eq!(after.scram_users().count(), 3);
    }

    #[test]
    fn duplicates_follow_kafkas_bookkeeping() {
        let (image, _) = run(
            &MetadataImage::empty(),
            vec![],
            vec![upsert("alice", 1, 4096), upsert("alice2", 1, 4096)],
        );
        let (after, results) = run(
            &image,
            vec![
                delete("alice", 1),
                delete("alice", 2),
                delete("alice", 1),
                delete("bob", 1),
                delete("bob", 1),
                delete("alice2", 1),
            ],
            vec![
                upsert("carol", 1, 4096),
                upsert("carol", 2, 4096),
                // A user refused already keeps its first refusal.
                upsert("bob", 1, 4096),
            ],
        );
        assert_eq!(
            results,
            vec![
                "alice2 0 -",
                "alice 92 A user credential cannot be altered twice in the same request",
                "bob 91 Attempt to delete a user credential that does not exist",
                "carol 92 A user credential cannot be altered twice in the same request",
            ]
        );
        assert!(after.scram_credential("alice", 1).is_some());
        assert!(after.scram_credential("alice2", 1).is_none());
        assert!(after.scram_credentials_of("carol").is_none());
    }

    #[test]
    fn an_empty_salted_password_is_an_unknown_server_error() {
        let mut empty = upsert("alice", 1, 4096);
        empty.salted_password = Bytes::new();
        let (image, results) = run(
            &MetadataImage::empty(),
            vec![],
            vec![empty, upsert("bob", 1, 4096)],
        );
        assert_eq!(results, vec!["bob 0 -", "alice -1 -"]);
        assert!(image.scram_credential("alice", 1).is_none());
    }

    #[test]
    fn a_failed_write_answers_every_user_once_sorted() {
        let request = AlterUserScramCredentialsRequest::default()
            .with_deletions(vec![delete("zed", 1), delete("amy", 1)])
            .with_upsertions(vec![upsert("zed", 1, 4096), upsert("bob", 1, 4096)]);
        let response = error_response(&request, ResponseError::NotController, "no leader");
        let users: Vec<(&str, i16)> = response
            .results
            .iter()
            .map(|r| (r.user.as_str(), r.error_code))
            .collect();
        assert_eq!(users, vec![("amy", 41), ("bob", 41), ("zed", 41)]);
    }
}
