//! `moldau acls add|list|remove` (kafka-acls) against a node with the StandardAuthorizer:
//! kafka-acls' output and shorthands, confirmation before a removal, usage errors, and the
//! broker's refusal once the cluster has ACLs the caller is not in.

mod common;

use common::Server;
use serde_json::Value;

const AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// `acls list -o json` as "TYPE:name:PATTERN principal host OPERATION PERMISSION" lines.
fn listed(server: &Server, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["acls", "list", "-o", "json"];
    args.extend_from_slice(extra);
    let resources: Value = server.json(&args);
    let mut lines = Vec::new();
    for r in resources.as_array().expect("an array") {
        for a in r["acls"].as_array().expect("acls") {
            lines.push(format!(
                "{}:{}:{} {} {} {} {}",
                r["resource_type"].as_str().unwrap(),
                r["name"].as_str().unwrap(),
                r["pattern_type"].as_str().unwrap(),
                a["principal"].as_str().unwrap(),
                a["host"].as_str().unwrap(),
                a["operation"].as_str().unwrap(),
                a["permission_type"].as_str().unwrap(),
            ));
        }
    }
    lines
}

#[test]
fn acls_are_added_listed_and_removed_like_kafka_acls() {
    let tmp = tempfile::tempdir().unwrap();
    // No super user: everyone may do what no ACL covers, until the cluster gets one (so
    // no --idempotent here: it adds one).
    let server = Server::start_in(
        tmp.path(),
        &[
            "--override",
            AUTHORIZER,
            "--override",
            "allow.everyone.if.no.acl.found=true",
        ],
    );
    let added = server.ok(&[
        "acls",
        "add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--operation",
        "describe",
        "--topic",
        "orders",
    ]);
    assert_eq!(
        added.stdout,
        "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, \
         patternType=LITERAL)`: \n \t(principal=User:alice, host=*, operation=READ, \
         permissionType=ALLOW)\n\t(principal=User:alice, host=*, operation=DESCRIBE, \
         permissionType=ALLOW) \n\n"
    );
    server.ok(&[
        "acls",
        "add",
        "--producer",
        "--topic",
        "out",
        "--transactional-id",
        "tx",
        "--allow-principal",
        "User:bob",
        "--resource-pattern-type",
        "prefixed",
    ]);
    server.ok(&[
        "acls",
        "add",
        "--consumer",
        "--topic",
        "orders",
        "--group",
        "readers",
        "--allow-principal",
        "User:carol",
        "--allow-host",
        "10.0.0.7",
    ]);
    assert_eq!(
        listed(&server, &[]),
        vec![
            "TOPIC:orders:LITERAL User:alice * READ ALLOW",
            "TOPIC:orders:LITERAL User:alice * DESCRIBE ALLOW",
            "TOPIC:orders:LITERAL User:carol 10.0.0.7 READ ALLOW",
            "TOPIC:orders:LITERAL User:carol 10.0.0.7 DESCRIBE ALLOW",
            "TOPIC:out:PREFIXED User:bob * WRITE ALLOW",
            "TOPIC:out:PREFIXED User:bob * CREATE ALLOW",
            "TOPIC:out:PREFIXED User:bob * DESCRIBE ALLOW",
            "GROUP:readers:LITERAL User:carol 10.0.0.7 READ ALLOW",
            "TRANSACTIONAL_ID:tx:PREFIXED User:bob * WRITE ALLOW",
            "TRANSACTIONAL_ID:tx:PREFIXED User:bob * DESCRIBE ALLOW",
        ]
    );
    // MATCH: everything that applies to topic "output" (the prefix "out").
    assert_eq!(
        listed(
            &server,
            &["--topic", "output", "--resource-pattern-type", "match"]
        ),
        vec![
            "TOPIC:out:PREFIXED User:bob * WRITE ALLOW",
            "TOPIC:out:PREFIXED User:bob * CREATE ALLOW",
            "TOPIC:out:PREFIXED User:bob * DESCRIBE ALLOW",
        ]
    );
    let text = server.ok(&[
        "acls",
        "list",
        "--topic",
        "orders",
        "--principal",
        "User:carol",
    ]);
    assert_eq!(
        text.stdout,
        "ACLs for principal `User:carol`\nCurrent ACLs for resource \
         `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`: \n \
         \t(principal=User:carol, host=10.0.0.7, operation=READ, permissionType=ALLOW)\n\
         \t(principal=User:carol, host=10.0.0.7, operation=DESCRIBE, permissionType=ALLOW) \n\n"
    );

    // One entry, without a question.
    server.ok(&[
        "acls",
        "remove",
        "--force",
        "--topic",
        "orders",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
    ]);
    // Everything of a resource, after a `y`; an `n` leaves it.
    let declined = server.run_with_input(&["acls", "remove", "--group", "readers"], "n\n");
    assert_eq!(declined.code, Some(0), "{}", declined.stderr);
    assert!(declined.stdout.starts_with(
        "Are you sure you want to delete all ACLs for resource filter \
         `ResourcePattern(resourceType=GROUP, name=readers, patternType=LITERAL)`? (y/n)"
    ));
    assert_eq!(listed(&server, &["--group", "readers"]).len(), 1);
    let confirmed = server.run_with_input(&["acls", "remove", "--group", "readers"], "y\n");
    assert_eq!(confirmed.code, Some(0), "{}", confirmed.stderr);
    assert!(listed(&server, &["--group", "readers"]).is_empty());
    assert_eq!(
        listed(&server, &["--topic", "orders"]),
        vec![
            "TOPIC:orders:LITERAL User:alice * DESCRIBE ALLOW",
            "TOPIC:orders:LITERAL User:carol 10.0.0.7 READ ALLOW",
            "TOPIC:orders:LITERAL User:carol 10.0.0.7 DESCRIBE ALLOW",
        ]
    );

    // Usage errors, before anything is sent.
    server
        .run(&["acls", "add", "--topic", "t"])
        .assert_one_line_error(
            2,
            "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs.",
        );
    server
        .run(&["acls", "add", "--allow-principal", "User:alice"])
        .assert_one_line_error(2, "You must provide at least one resource");
    server
        .run(&[
            "acls",
            "add",
            "--cluster",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
        ])
        .assert_one_line_error(2, "ResourceType CLUSTER only supports operations");
    server
        .run(&[
            "acls",
            "add",
            "--topic",
            "t",
            "--allow-principal",
            "User:alice",
            "--resource-pattern-type",
            "any",
        ])
        .assert_one_line_error(
            2,
            "A '--resource-pattern-type' value of 'ANY' is not valid when adding acls.",
        );
    server
        .run(&[
            "acls",
            "add",
            "--consumer",
            "--topic",
            "t",
            "--allow-principal",
            "User:a",
        ])
        .assert_one_line_error(
            2,
            "With --consumer you must specify a --topic and a --group",
        );

    // An ACL on the cluster for someone else: this client (User:ANONYMOUS) may no longer
    // manage ACLs.
    server.ok(&[
        "acls",
        "add",
        "--cluster",
        "--operation",
        "Alter",
        "--allow-principal",
        "User:admin",
    ]);
    server
        .run(&["acls", "list"])
        .assert_one_line_error(1, "is not authorized");
    let refused = server.run(&[
        "acls",
        "add",
        "--topic",
        "t",
        "--allow-principal",
        "User:alice",
    ]);
    refused.assert_last_line_error(1, "ClusterAuthorizationFailed");
}
