//! DescribeUserScramCredentials: the mechanisms and iteration counts of users' SCRAM
//! credentials (never salts or keys), answered from this node's image as a Kafka 4.1
//! broker answers from its metadata cache (`ScramImage.describe`).
//!
//! No users (null or empty) describes every user that has a credential. A user named twice
//! is DUPLICATE_RESOURCE, a user without any credential RESOURCE_NOT_FOUND, each with
//! Kafka's message; the others get one entry per mechanism. Results come in the order the
//! users were first named (every user: by name), mechanisms by type code.

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::MetadataImage;
use moldau_security::acl::AclOperation;

use super::str_bytes;
use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeUserScramCredentialsRequest::VERSIONS;

const DUPLICATE_USER: &str =
    "Cannot describe SCRAM credentials for the same user twice in a single request: ";
const USER_NOT_FOUND: &str = "Attempt to describe a user credential that does not exist: ";

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    // Kafka: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED (no message) at
    // the top and for each user asked for (its `getErrorResponse` names none of them).
    if !authorizer::allowed_cluster(state, ctx, AclOperation::Describe) {
        let code = ResponseError::ClusterAuthorizationFailed.code();
        let results = request
            .users
            .iter()
            .flatten()
            .map(|_| {
                DescribeUserScramCredentialsResult::default()
                    .with_error_code(code)
                    .with_error_message(None)
            })
            .collect();
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(code)
            .with_error_message(None)
            .with_results(results);
    }
    let users: Option<Vec<String>> = request
        .users
        .map(|users| users.iter().map(|u| u.name.to_string()).collect());
    describe(&state.image(), users.as_deref())
}

/// The answer for `users` (`None` or empty: every user with a credential).
pub(crate) fn describe(
    image: &MetadataImage,
    users: Option<&[String]>,
) -> DescribeUserScramCredentialsResponse {
    // Each user once, in the order first named, with whether it was named again.
    let mut named: Vec<(String, bool)> = Vec::new();
    match users {
        Some(users) if !users.is_empty() => {
            for user in users {
                match named.iter_mut().find(|(name, _)| name == user) {
                    Some((_, duplicate)) => *duplicate = true,
                    None => named.push((user.clone(), false)),
                }
            }
        }
        _ => named.extend(
            image
                .scram_users()
                .map(|(user, _)| (user.to_string(), false)),
        ),
    }
    let results = named
        .into_iter()
        .map(|(user, duplicate)| {
            let result = DescribeUserScramCredentialsResult::default().with_user(str_bytes(&user));
            if duplicate {
                return result
                    .with_error_code(ResponseError::DuplicateResource.code())
                    .with_error_message(Some(str_bytes(format!("{DUPLICATE_USER}{user}"))));
            }
            match image.scram_credentials_of(&user) {
                Some(credentials) if !credentials.is_empty() => result.with_credential_infos(
                    credentials
                        .iter()
                        .map(|(mechanism, credential)| {
                            CredentialInfo::default()
                                .with_mechanism(*mechanism)
                                .with_iterations(credential.iterations)
                        })
                        .collect(),
                ),
                _ => result
                    .with_error_code(ResponseError::ResourceNotFound.code())
                    .with_error_message(Some(str_bytes(format!("{USER_NOT_FOUND}{user}")))),
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

#[cfg(test)]
mod tests {
    use moldau_metadata::{MetadataDelta, MetadataRecord};

    use super::*;

    fn image() -> MetadataImage {
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        for (offset, (name, mechanism, iterations)) in
            [("bob", 2, 8192), ("alice", 2, 4096), ("alice", 1, 5000)]
                .into_iter()
                .enumerate()
        {
            let record = MetadataRecord::UserScramCredential {
                name: name.into(),
                mechanism,
                salt: vec![1].into(),
                stored_key: vec![2].into(),
                server_key: vec![3].into(),
                iterations,
            };
            delta.replay(offset as i64, &record).unwrap();
        }
        delta.apply()
    }

    fn summary(response: &DescribeUserScramCredentialsResponse) -> Vec<String> {
        response
            .results
            .iter()
            .map(|r| {
                let infos: Vec<String> = r
                    .credential_infos
                    .iter()
                    .map(|i| format!("{}:{}", i.mechanism, i.iterations))
                    .collect();
                format!(
                    "{} {} {} [{}]",
                    r.user.as_str(),
                    r.error_code,
                    r.error_message.as_deref().unwrap_or("null"),
                    infos.join(",")
                )
            })
            .collect()
    }

    #[test]
    fn every_user_by_name_with_mechanisms_by_type_code() {
        let image = image();
        for users in [None, Some(&[][..])] {
            let response = describe(&image, users);
            assert_eq!(response.error_code, 0);
            assert_eq!(
                summary(&response),
                vec!["alice 0  [1:5000,2:4096]", "bob 0  [2:8192]"]
            );
        }
        assert!(describe(&MetadataImage::empty(), None).results.is_empty());
    }

    #[test]
    fn named_users_duplicates_and_unknown_users() {
        let users: Vec<String> = ["bob", "carol", "alice", "bob", "", "bob"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            summary(&describe(&image(), Some(&users))),
            vec![
                "bob 92 Cannot describe SCRAM credentials for the same user twice in a single request: bob []",
                "carol 91 Attempt to describe a user credential that does not exist: carol []",
                "alice 0  [1:5000,2:4096]",
                " 91 Attempt to describe a user credential that does not exist:  []",
            ]
        );
    }
}
