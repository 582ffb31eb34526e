//! `moldau storage random-uuid|format|info`, as kafka-storage: a formatted node serves the
//! cluster id it was given (read back by librdkafka), a second format refuses, and a node
//! whose data belongs to another node id refuses to start, saying which.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{moldau, run, Server, BIN};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

#[test]
fn formatted_dirs_carry_their_cluster_id_into_the_running_node() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let meta = tmp.path().join("metadata");
    let dirs = [
        "--override".to_string(),
        format!("log.dirs={}", data.display()),
        "--override".to_string(),
        format!("metadata.log.dir={}", meta.display()),
    ];
    let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();

    let uuid = moldau(&["storage", "random-uuid"]);
    assert_eq!(uuid.code, Some(0), "{}", uuid.stderr);
    let cluster_id = uuid.stdout.trim().to_string();
    assert_eq!(cluster_id.len(), 22, "{cluster_id}");

    let info = moldau(&[&["storage", "info"], &dirs[..]].concat());
    assert_eq!(info.code, Some(1), "unformatted dirs: {}", info.stdout);
    assert!(info.stdout.contains("not formatted"), "{}", info.stdout);

    moldau(&["storage", "format", "--cluster-id", "nope"])
        .assert_one_line_error(1, "does not appear to be a valid UUID");
    let format = moldau(&[&["storage", "format", "-t", &cluster_id], &dirs[..]].concat());
    assert_eq!(format.code, Some(0), "{}", format.stderr);
    assert_eq!(
        format.stdout.matches("Formatting").count(),
        2,
        "{}",
        format.stdout
    );
    moldau(&[&["storage", "format", "-t", &cluster_id], &dirs[..]].concat())
        .assert_one_line_error(1, "is already formatted");
    let again = moldau(&[&["storage", "format", "-g", "-t", &cluster_id], &dirs[..]].concat());
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    let info = moldau(&[&["storage", "info"], &dirs[..]].concat());
    assert_eq!(info.code, Some(0), "{}", info.stderr);
    assert_eq!(
        info.stdout.matches(&cluster_id).count(),
        2,
        "{}",
        info.stdout
    );

    // The node serves the formatted cluster id (Metadata, read by librdkafka).
    let meta_dir = format!("metadata.log.dir={}", meta.display());
    let server = Server::start_in(tmp.path(), &["--override", &meta_dir]);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", server.addr.to_string())
        .set("group.id", "storage-format")
        .create()
        .unwrap();
    let served = consumer.client().fetch_cluster_id(Duration::from_secs(10));
    assert_eq!(served.as_deref(), Some(cluster_id.as_str()));
    drop(consumer);
    assert!(server.terminate().success());

    // The same data under another node id: refused, naming both ids.
    let mut cmd = Command::new(BIN);
    cmd.args(["server", "--override", "node.id=2", "--override"])
        .arg(format!(
            "listeners=PLAINTEXT://127.0.0.1:{}",
            common::free_port()
        ))
        .args(&dirs);
    let refused = run(cmd, "");
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("Stored node id 1") && refused.stderr.contains("node.id 2"),
        "{}",
        refused.stderr
    );
}

#[test]
fn an_unformatted_node_formats_itself_once() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(tmp.path(), &[]);
    assert!(server.terminate().success());
    let data = format!("log.dirs={}", tmp.path().join("data").display());
    let info = moldau(&["storage", "info", "--override", &data]);
    assert_eq!(info.code, Some(0), "{}", info.stderr);
    let first = info.stdout.clone();
    // A restart keeps the id it made.
    let server = Server::start_in(tmp.path(), &[]);
    assert!(server.terminate().success());
    let info = moldau(&["storage", "info", "--override", &data]);
    assert_eq!(info.stdout, first);
}
