//! `moldau users scram-set|scram-delete|describe`: users' SCRAM credentials, as
//! `kafka-configs --bootstrap-server … --entity-type users --entity-name alice --alter
//! --add-config 'SCRAM-SHA-256=[iterations=8192,password=alice-secret]'`,
//! `--delete-config 'SCRAM-SHA-256'` and `--describe` do (AlterUserScramCredentials,
//! DescribeUserScramCredentials; brokers forward the alteration to the active controller).
//!
//! As Kafka's admin client, the password never leaves this process: it is salted here
//! with a random salt (`ScramFormatter.secureRandomBytes`) and the given iterations, and
//! only the salted password is sent; the controller derives the keys it stores.

use anyhow::{anyhow, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use moldau_security::scram::{self, ScramMechanism};
use moldau_wire::{check, retrying, ClientSettings, WireError};
use serde::Serialize;

use crate::args::{ConnectArgs, OutputArgs, OutputFormat};
use crate::output::{print_json, print_table, table};
use crate::transactions::{connect, explain, run_wire};
use crate::Failure;

/// kafka-configs' default iteration count for a SCRAM credential.
const DEFAULT_ITERATIONS: i32 = 4096;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Set (create or replace) a user's SCRAM credential for one mechanism.
    ScramSet(ScramSetArgs),
    /// Delete a user's SCRAM credential for one mechanism.
    ScramDelete(ScramDeleteArgs),
    /// Show users' SCRAM credentials: mechanisms and iteration counts (never keys).
    Describe(DescribeArgs),
}

#[derive(Args)]
pub struct ScramSetArgs {
    /// The user name (the SASL/SCRAM login).
    #[arg(long)]
    user: String,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, value_parser = parse_mechanism)]
    mechanism: ScramMechanism,
    /// The password; it is salted here and never sent.
    #[arg(long)]
    password: String,
    /// PBKDF2 iterations (4096 to 16384).
    #[arg(long, default_value_t = DEFAULT_ITERATIONS, allow_negative_numbers = true)]
    iterations: i32,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct ScramDeleteArgs {
    /// The user name.
    #[arg(long)]
    user: String,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, value_parser = parse_mechanism)]
    mechanism: ScramMechanism,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct DescribeArgs {
    /// Only these users (repeatable; default: every user with a credential).
    #[arg(long = "user", value_name = "NAME")]
    users: Vec<String>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

fn parse_mechanism(name: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_mechanism_name(name)
        .ok_or_else(|| format!("'{name}' is not a SCRAM mechanism (SCRAM-SHA-256, SCRAM-SHA-512)"))
}

pub fn run(cmd: UsersCommand) -> Result<(), Failure> {
    match cmd {
        UsersCommand::ScramSet(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| scram_set(args, settings))
        }
        UsersCommand::ScramDelete(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| scram_delete(args, settings))
        }
        UsersCommand::Describe(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| describe(args, settings))
        }
    }
}

async fn scram_set(args: ScramSetArgs, settings: ClientSettings) -> anyhow::Result<()> {
    // Kafka's admin client and kafka-configs check these before sending anything.
    if args.user.is_empty() {
        bail!("UNACCEPTABLE_CREDENTIAL: Username must not be empty");
    }
    if args.password.is_empty() {
        bail!("UNACCEPTABLE_CREDENTIAL: Password must not be empty");
    }
    if args.iterations < args.mechanism.min_iterations() {
        bail!(
            "Iterations {} is less than the minimum {} required for {}",
            args.iterations,
            args.mechanism.min_iterations(),
            args.mechanism
        );
    }
    let salt = scram::random_salt();
    let salted = scram::salted_password(args.mechanism, &args.password, &salt, args.iterations);
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(args.user.clone()))
        .with_mechanism(args.mechanism.type_code())
        .with_iterations(args.iterations)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted));
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
    alter(&args.conn, settings, &args.user, request).await
}

async fn scram_delete(args: ScramDeleteArgs, settings: ClientSettings) -> anyhow::Result<()> {
    if args.user.is_empty() {
        bail!("UNACCEPTABLE_CREDENTIAL: Username must not be empty");
    }
    let deletion = ScramCredentialDeletion::default()
        .with_name(StrBytes::from_string(args.user.clone()))
        .with_mechanism(args.mechanism.type_code());
    let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]);
    alter(&args.conn, settings, &args.user, request).await
}

/// Sends one user's alteration to a broker (which forwards it to the active controller),
/// retrying while no controller is available.
async fn alter(
    conn: &ConnectArgs,
    settings: ClientSettings,
    user: &str,
    request: AlterUserScramCredentialsRequest,
) -> anyhow::Result<()> {
    let timeout = settings.timeout;
    let mut cluster = connect(conn, settings).await?;
    let result = retrying(timeout, async || {
        let response: AlterUserScramCredentialsResponse =
            cluster.bootstrap().send(&request).await?;
        let result = response
            .results
            .iter()
            .find(|r| r.user.as_str() == user)
            .ok_or_else(|| WireError::Kafka {
                error: ResponseError::UnknownServerError,
                message: Some(format!("the answer does not mention user '{user}'")),
            })?;
        check(result.error_code, result.error_message.as_ref())
    })
    .await;
    let action = format!("cannot alter the SCRAM credentials of user '{user}'");
    result.map_err(|e| explain(conn, &action, e))?;
    say!("Completed updating config for user {user}.");
    Ok(())
}

/// One user's credentials, as `users describe -o json` prints them.
#[derive(Serialize)]
struct UserCredentials {
    user: String,
    credentials: Vec<Credential>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Credential {
    mechanism: String,
    iterations: i32,
}

async fn describe(args: DescribeArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let mut cluster = connect(conn, settings).await?;
    let users = (!args.users.is_empty()).then(|| {
        args.users
            .iter()
            .map(|u| UserName::default().with_name(StrBytes::from_string(u.clone())))
            .collect()
    });
    let request = DescribeUserScramCredentialsRequest::default().with_users(users);
    let response = cluster
        .bootstrap()
        .send(&request)
        .await
        .map_err(|e| explain(conn, "cannot describe SCRAM credentials", e))?;
    check(response.error_code, response.error_message.as_ref())
        .map_err(|e| anyhow!("cannot describe SCRAM credentials: {e}"))?;
    let report: Vec<UserCredentials> = response
        .results
        .iter()
        .map(|r| UserCredentials {
            user: r.user.to_string(),
            credentials: r
                .credential_infos
                .iter()
                .map(|info| Credential {
                    mechanism: ScramMechanism::from_type_code(info.mechanism)
                        .map_or_else(|| "UNKNOWN".to_string(), |m| m.to_string()),
                    iterations: info.iterations,
                })
                .collect(),
            error: check(r.error_code, r.error_message.as_ref())
                .err()
                .map(|e| e.to_string()),
        })
        .collect();
    if args.output.output == OutputFormat::Json {
        print_json(&report)?;
    } else {
        let mut t = table(["USER", "MECHANISM", "ITERATIONS"]);
        for user in report.iter().filter(|u| u.error.is_none()) {
            for credential in &user.credentials {
                t.add_row([
                    user.user.clone(),
                    credential.mechanism.clone(),
                    credential.iterations.to_string(),
                ]);
            }
        }
        print_table(&t);
    }
    let failed: Vec<String> = report
        .iter()
        .filter_map(|u| Some(format!("user '{}': {}", u.user, u.error.as_ref()?)))
        .collect();
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_are_kafkas_names() {
        assert_eq!(parse_mechanism("SCRAM-SHA-256"), Ok(ScramMechanism::Sha256));
        assert_eq!(parse_mechanism("SCRAM-SHA-512"), Ok(ScramMechanism::Sha512));
        assert!(parse_mechanism("scram-sha-256").is_err());
        assert!(parse_mechanism("PLAIN").is_err());
    }
}
