//! The node under a small open-files limit (`prlimit --nofile=1024:1024` on the
//! `moldau` process): CreateTopics and CreatePartitions that would not fit are
//! refused before anything is committed, what fits is created, and the node restarts
//! with its partitions and records after SIGTERM and after kill -9.

mod common;

use std::path::Path;

use common::*;

const NOFILE: u32 = 1024;
const FITS: usize = 300;

/// `moldau server` on `dir` under `prlimit --nofile=NOFILE:NOFILE`.
fn start_limited(dir: &Path) -> Server {
    let limit = format!("--nofile={NOFILE}:{NOFILE}");
    Server::start_wrapped(dir, &["prlimit", &limit], &[])
}

fn partition_count(server: &Server, topic: &str) -> Option<u64> {
    let list = server.json(&["topics", "list", "-o", "json"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == topic)
        .map(|t| t["partition_count"].as_u64().unwrap())
}

fn consume_all(server: &Server, topic: &str, count: usize) -> Vec<String> {
    let mut values = server.consume_values(topic, count);
    values.sort();
    values
}

#[test]
fn partitions_beyond_the_open_files_limit_are_refused_and_the_rest_survive_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_limited(tmp.path());
    assert!(
        server
            .log()
            .contains(&format!("soft {NOFILE} raised to {NOFILE} (hard {NOFILE})")),
        "the limit is logged:\n{}",
        server.log()
    );

    // Far more than 1024 descriptors: refused, nothing committed, the node serves on.
    let refused = server.run(&[
        "topics",
        "create",
        "--topic",
        "huge",
        "--partitions",
        "2000",
    ]);
    refused.assert_one_line_error(1, "PolicyViolation");
    assert_eq!(partition_count(&server, "huge"), None);

    let fits = FITS.to_string();
    server.ok(&["topics", "create", "--topic", "many", "--partitions", &fits]);
    assert_eq!(partition_count(&server, "many"), Some(FITS as u64));
    // Growing past the limit is refused too (CreatePartitions), the topic unchanged.
    server
        .run(&["topics", "alter", "--topic", "many", "--partitions", "1500"])
        .assert_one_line_error(1, "PolicyViolation");
    assert_eq!(partition_count(&server, "many"), Some(FITS as u64));

    let records: Vec<String> = (0..200).map(|i| format!("k{i}|v{i:03}")).collect();
    let out = server.ok_with_input(
        &["produce", "--topic", "many", "--key-separator", "|"],
        &(records.join("\n") + "\n"),
    );
    assert!(
        out.stderr.contains("Produced 200 records"),
        "{}",
        out.stderr
    );
    let mut expected: Vec<String> = (0..200).map(|i| format!("v{i:03}")).collect();
    expected.sort();
    assert_eq!(consume_all(&server, "many", 200), expected);

    let status = server.terminate();
    assert!(status.success(), "clean exit after SIGTERM: {status}");
    let mut server = start_limited(tmp.path());
    assert_eq!(partition_count(&server, "many"), Some(FITS as u64));
    assert_eq!(partition_count(&server, "huge"), None);
    assert_eq!(consume_all(&server, "many", 200), expected);

    signal_and_wait(&mut server.child, "-KILL").expect("killed");
    let server = start_limited(tmp.path());
    assert_eq!(partition_count(&server, "many"), Some(FITS as u64));
    assert_eq!(consume_all(&server, "many", 200), expected);
    server.terminate();
}
