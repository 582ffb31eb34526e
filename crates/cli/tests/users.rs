//! `moldau storage format --add-scram` and `moldau users scram-set|scram-delete|describe`
//! (kafka-storage's and kafka-configs' SCRAM credentials): credentials formatted in are there
//! at the first start and committed once, set and deleted ones survive a restart, Kafka's
//! refusals come back as one error line, and a broker that is not the active controller
//! forwards the change.

mod common;

use common::cluster::{controller_id, wait_for, Cluster};
use common::{moldau, Server};
use serde_json::{json, Value};

/// `users describe -o json` as (user, [(mechanism, iterations)]).
fn describe(server: &Server, users: &[&str]) -> Value {
    let mut args = vec!["users", "describe", "-o", "json"];
    for user in users {
        args.extend(["--user", user]);
    }
    server.json(&args)
}

#[test]
fn formatted_and_altered_credentials_are_kept_once_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = format!("log.dirs={}", tmp.path().join("data").display());
    let cluster_id = moldau(&["storage", "random-uuid"])
        .stdout
        .trim()
        .to_string();
    let format = |scram: &[&str]| {
        let mut args = vec!["storage", "format", "-t", &cluster_id, "--override", &data];
        for s in scram {
            args.extend(["--add-scram", s]);
        }
        moldau(&args)
    };

    // Kafka's refusals, before anything is written.
    for (argument, message) in [
        (
            "SCRAM-SHA-1=[name=alice,password=x]",
            "The add-scram mechanism SCRAM-SHA-1 is not supported.",
        ),
        (
            "SCRAM-SHA-256=[password=x]",
            "You must supply 'name' to add-scram",
        ),
        (
            "SCRAM-SHA-256=[name=alice]",
            "You must supply one of 'password' or 'saltedpassword' to add-scram",
        ),
        (
            "SCRAM-SHA-256=[name=alice,password=x,iterations=100]",
            "The 'iterations' value must be >= 4096 for add-scram using SCRAM_SHA_256",
        ),
        (
            "SCRAM-SHA-256=[name=alice,password=x,colour=blue]",
            "Unknown SCRAM configurations: colour",
        ),
    ] {
        format(&["SCRAM-SHA-512=[name=ok,password=ok]", argument])
            .assert_one_line_error(1, message);
    }
    let info = moldau(&["storage", "info", "--override", &data]);
    assert!(info.stdout.contains("not formatted"), "{}", info.stdout);

    let formatted = format(&[
        "SCRAM-SHA-256=[name=alice,password=alice-secret]",
        "SCRAM-SHA-512=[name=alice,iterations=8192,salt=\"N3E=\",saltedpassword=\"YCE=\"]",
        "SCRAM-SHA-256=[name=admin,password=admin-secret]",
    ]);
    assert_eq!(formatted.code, Some(0), "{}", formatted.stderr);

    let server = Server::start_in(tmp.path(), &[]);
    assert_eq!(
        describe(&server, &[]),
        json!([
            {"user": "admin", "credentials": [{"mechanism": "SCRAM-SHA-256", "iterations": 4096}]},
            {"user": "alice", "credentials": [
                {"mechanism": "SCRAM-SHA-256", "iterations": 4096},
                {"mechanism": "SCRAM-SHA-512", "iterations": 8192},
            ]},
        ])
    );

    // kafka-configs' alterations.
    let out = server.ok(&[
        "users",
        "scram-set",
        "--user",
        "bob",
        "--mechanism",
        "SCRAM-SHA-512",
        "--password",
        "bob-secret",
        "--iterations",
        "10000",
    ]);
    assert_eq!(out.stdout.trim(), "Completed updating config for user bob.");
    server.ok(&[
        "users",
        "scram-delete",
        "--user",
        "admin",
        "--mechanism",
        "SCRAM-SHA-256",
    ]);
    let set = |user: &str, iterations: &str| {
        server.run(&[
            "users",
            "scram-set",
            "--user",
            user,
            "--mechanism",
            "SCRAM-SHA-256",
            "--password",
            "pw",
            "--iterations",
            iterations,
        ])
    };
    set("carol", "16385").assert_one_line_error(1, "Too many iterations");
    set("carol", "100").assert_one_line_error(
        1,
        "Iterations 100 is less than the minimum 4096 required for SCRAM-SHA-256",
    );
    set("", "4096").assert_one_line_error(1, "Username must not be empty");
    server
        .run(&[
            "users",
            "scram-delete",
            "--user",
            "carol",
            "--mechanism",
            "SCRAM-SHA-512",
        ])
        .assert_one_line_error(1, "Attempt to delete a user credential that does not exist");
    let unknown = server.run(&["users", "describe", "--user", "carol"]);
    assert_eq!(unknown.code, Some(1), "{}", unknown.stderr);
    assert!(
        unknown
            .stderr
            .contains("Attempt to describe a user credential that does not exist: carol"),
        "{}",
        unknown.stderr
    );
    let table = server.ok(&["users", "describe", "--user", "bob"]).stdout;
    assert!(
        table.contains("USER") && table.contains("bob") && table.contains("10000"),
        "{table}"
    );

    let expected = json!([
        {"user": "alice", "credentials": [
            {"mechanism": "SCRAM-SHA-256", "iterations": 4096},
            {"mechanism": "SCRAM-SHA-512", "iterations": 8192},
        ]},
        {"user": "bob", "credentials": [{"mechanism": "SCRAM-SHA-512", "iterations": 10000}]},
    ]);
    assert_eq!(describe(&server, &[]), expected);
    assert!(server.terminate().success());

    // Restarted: the formatted credentials are not committed again (admin stays deleted).
    let server = Server::start_in(tmp.path(), &[]);
    assert_eq!(describe(&server, &[]), expected);
    assert_eq!(
        describe(&server, &["bob"]),
        json!([{"user": "bob", "credentials": [{"mechanism": "SCRAM-SHA-512", "iterations": 10000}]}])
    );
    assert!(server.terminate().success());
}

#[test]
fn a_broker_forwards_alterations_to_the_active_controller() {
    let mut cluster = Cluster::new(3);
    cluster.start_all();
    let controller = wait_for("an active controller", &cluster, || {
        controller_id(cluster.server(1))
    });
    let other = (1..=3).find(|id| *id != controller).unwrap();
    cluster.server(other).ok(&[
        "users",
        "scram-set",
        "--user",
        "alice",
        "--mechanism",
        "SCRAM-SHA-256",
        "--password",
        "alice-secret",
    ]);
    // Every node's image gets it.
    for id in 1..=3 {
        wait_for("the credential on every node", &cluster, || {
            let described = describe(cluster.server(id), &[]);
            (described
                == json!([{"user": "alice", "credentials": [
                    {"mechanism": "SCRAM-SHA-256", "iterations": 4096}
                ]}]))
            .then_some(())
        });
    }
    cluster.server(other).ok(&[
        "users",
        "scram-delete",
        "--user",
        "alice",
        "--mechanism",
        "SCRAM-SHA-256",
    ]);
    wait_for("the deletion on the controller", &cluster, || {
        (describe(cluster.server(controller), &[]) == json!([])).then_some(())
    });
}
