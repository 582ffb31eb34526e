//! `moldau groups` as a user runs it: real librdkafka group members (classic and
//! KIP-848) consume a topic, and the CLI lists, describes, resets, rates and deletes.
//! No timing is asserted; deadlines only guard against hangs.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use serde_json::Value;

const HANG_GUARD: Duration = Duration::from_secs(90);
const PARTITIONS: i64 = 6;
const RECORDS: i64 = 60;

fn start() -> Server {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start_in(
        tmp.path(),
        &[
            "--override",
            "group.initial.rebalance.delay.ms=0",
            "--override",
            "offsets.topic.num.partitions=3",
        ],
    );
    server._tmp = Some(tmp);
    server
}

/// A topic of 6 partitions with 60 keyed records.
fn topic_with_records(server: &Server, topic: &str) {
    server.ok(&["topics", "create", "-t", topic, "--partitions", "6"]);
    let input: String = (0..RECORDS).map(|i| format!("key{i}:value{i}\n")).collect();
    server.ok_with_input(&["produce", "-t", topic, "--key-separator", ":"], &input);
}

/// A group member polling and committing in its own thread until stopped.
struct Member {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    fn start(server: &Server, group: &str, topic: &str, protocol: &str) -> Member {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", server.addr.to_string())
            .set("group.id", group)
            .set("client.id", format!("member-{protocol}"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        if protocol == "consumer" {
            config.set("group.protocol", "consumer");
        } else {
            config
                .set("session.timeout.ms", "10000")
                .set("heartbeat.interval.ms", "300");
        }
        let consumer: BaseConsumer = config.create().expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
                    let _ = consumer.commit_consumer_state(CommitMode::Sync);
                }
            }
            // Dropping the consumer leaves the group.
            consumer.unsubscribe();
            drop(consumer);
        });
        Member {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Describes the group until `done` holds for its JSON description.
fn wait_for(server: &Server, group: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let out = server.run(&["groups", "describe", "-g", group, "-o", "json"]);
        if out.code == Some(0) {
            let desc: Value = serde_json::from_str(&out.stdout).expect("describe JSON");
            if done(&desc) {
                return desc;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: last description {desc:#}"
            );
        } else {
            assert!(Instant::now() < deadline, "{what}: {}", out.stderr);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every member's partitions: disjoint and together the whole topic.
fn assignment_is_complete(desc: &Value, members: usize) -> bool {
    let Some(list) = desc["members"].as_array() else {
        return false;
    };
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for m in list {
        for p in m["assignment"].as_array().into_iter().flatten() {
            seen.insert(p["partition"].as_i64().unwrap());
            total += 1;
        }
    }
    list.len() == members && total == PARTITIONS as usize && seen.len() == total
}

fn total_committed(desc: &Value) -> i64 {
    desc["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["current_offset"].as_i64())
        .sum()
}

fn committed(desc: &Value, partition: i64) -> Option<i64> {
    desc["partitions"]
        .as_array()?
        .iter()
        .find(|p| p["partition"] == partition)?["current_offset"]
        .as_i64()
}

#[test]
fn classic_group_describe_reset_lag_and_delete() {
    let server = start();
    topic_with_records(&server, "orders");
    let members: Vec<Member> = (0..2)
        .map(|_| Member::start(&server, "billing", "orders", "classic"))
        .collect();
    let desc = wait_for(&server, "billing", "2 members own all, commit all", |d| {
        d["state"] == "Stable" && assignment_is_complete(d, 2) && total_committed(d) == RECORDS
    });
    assert_eq!(desc["type"], "classic");
    for p in desc["partitions"].as_array().unwrap() {
        assert_eq!(p["lag"], 0, "{p}");
        assert!(p["consumer_id"].is_string(), "{p}");
        assert_eq!(p["client_id"], "member-classic", "{p}");
    }
    let table = server.ok(&["groups", "describe", "-g", "billing"]).stdout;
    assert!(table.contains("state Stable, protocol classic"), "{table}");
    assert!(
        table.contains("CURRENT-OFFSET   LOG-END-OFFSET   LAG"),
        "{table}"
    );
    let list = server.json(&["groups", "list", "-o", "json"]);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "billing");
    assert_eq!(listed.unwrap()["type"], "classic", "{list}");
    let consumer_only = server.json(&["groups", "list", "--type", "consumer", "-o", "json"]);
    assert_eq!(consumer_only, Value::Array(vec![]));

    // While members are active: the CLI refuses, the broker would too.
    server
        .run(&[
            "groups",
            "reset-offsets",
            "-g",
            "billing",
            "--all-topics",
            "--to-earliest",
            "--execute",
        ])
        .assert_one_line_error(1, "active");
    server
        .run(&["groups", "delete", "-g", "billing"])
        .assert_one_line_error(1, "still has members");
    server
        .run(&["groups", "delete-offsets", "-g", "billing", "-t", "orders"])
        .assert_last_line_error(1, "subscribed");

    drop(members);
    wait_for(&server, "billing", "group empties", |d| {
        d["state"] == "Empty"
    });

    // A preview changes nothing.
    let preview = server.json(&[
        "groups",
        "reset-offsets",
        "-g",
        "billing",
        "--all-topics",
        "--to-earliest",
        "-o",
        "json",
    ]);
    assert_eq!(preview.as_array().unwrap().len(), PARTITIONS as usize);
    assert!(preview
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["new_offset"] == 0));
    let desc = server.json(&["groups", "describe", "-g", "billing", "-o", "json"]);
    assert_eq!(total_committed(&desc), RECORDS);

    server.ok(&[
        "groups",
        "reset-offsets",
        "-g",
        "billing",
        "--all-topics",
        "--to-earliest",
        "--execute",
    ]);
    let desc = server.json(&["groups", "describe", "-g", "billing", "-o", "json"]);
    assert_eq!(total_committed(&desc), 0);
    let lag: i64 = desc["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, RECORDS);

    // Shift one partition forward, clamped to its end; then by time.
    let end0 = desc["partitions"][0]["log_end_offset"].as_i64().unwrap();
    server.ok(&[
        "groups",
        "reset-offsets",
        "-g",
        "billing",
        "-t",
        "orders:0",
        "--shift-by",
        "1000",
        "--execute",
    ]);
    let desc = server.json(&["groups", "describe", "-g", "billing", "-o", "json"]);
    assert_eq!(committed(&desc, 0), Some(end0));
    server.ok(&[
        "groups",
        "reset-offsets",
        "-g",
        "billing",
        "-t",
        "orders:0",
        "--by-duration",
        "P1D",
        "--execute",
    ]);
    let desc = server.json(&["groups", "describe", "-g", "billing", "-o", "json"]);
    assert_eq!(committed(&desc, 0), Some(0));
    server.ok(&[
        "groups",
        "reset-offsets",
        "-g",
        "billing",
        "-t",
        "orders:0",
        "--to-datetime",
        "2999-01-01T00:00:00Z",
        "--execute",
    ]);
    let desc = server.json(&["groups", "describe", "-g", "billing", "-o", "json"]);
    assert_eq!(committed(&desc, 0), Some(end0));

    // Nobody consumes: partitions with lag have a committed offset that never moves.
    let lag = server.json(&[
        "groups",
        "lag",
        "-g",
        "billing",
        "--interval-ms",
        "100",
        "--samples",
        "3",
        "-o",
        "json",
    ]);
    assert_eq!(lag[0]["status"], "STALL", "{lag:#}");
    assert_eq!(lag[0]["total_lag"], RECORDS - end0, "{lag:#}");
    let lag = server.json(&[
        "groups",
        "lag",
        "-g",
        "billing",
        "--interval-ms",
        "100",
        "--samples",
        "3",
        "--stop-after-ms",
        "50",
        "-o",
        "json",
    ]);
    assert_eq!(lag[0]["status"], "STOP", "{lag:#}");
    let partition0 = &lag[0]["partitions"].as_array().unwrap()[0];
    assert_eq!(partition0["status"], "OK", "caught up: {lag:#}");

    server.ok(&[
        "groups",
        "delete-offsets",
        "-g",
        "billing",
        "-t",
        "orders:0",
    ]);
    let desc = server.json(&["groups", "describe", "-g", "billing", "-o", "json"]);
    assert_eq!(committed(&desc, 0), None);

    server.ok(&["groups", "delete", "-g", "billing"]);
    server
        .run(&["groups", "describe", "-g", "billing"])
        .assert_one_line_error(1, "does not exist");
}

#[test]
fn consumer_protocol_group_is_described_with_its_members() {
    let server = start();
    topic_with_records(&server, "events");
    let members: Vec<Member> = (0..3)
        .map(|_| Member::start(&server, "kip848", "events", "consumer"))
        .collect();
    // Complete is not enough: while the group reconciles, the first member may still own
    // everything (librdkafka reports that state as Unknown). Stable is the target reached.
    let desc = wait_for(&server, "kip848", "3 members own all, commit all", |d| {
        assignment_is_complete(d, 3) && total_committed(d) == RECORDS && d["state"] == "Stable"
    });
    assert_eq!(desc["type"], "consumer", "{desc:#}");
    assert_eq!(desc["state"], "Stable", "{desc:#}");
    let list = server.json(&["groups", "list", "--type", "consumer", "-o", "json"]);
    assert_eq!(list[0]["group"], "kip848", "{list}");
    server
        .run(&[
            "groups",
            "reset-offsets",
            "-g",
            "kip848",
            "-t",
            "events",
            "--to-latest",
            "--execute",
        ])
        .assert_one_line_error(1, "active");
    drop(members);
}

#[test]
fn bad_input_is_one_line_and_non_zero() {
    // Usage errors need no broker: clap answers with exit 2.
    let out = moldau(&["groups", "reset-offsets", "-g", "g", "--all-topics"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let out = moldau(&[
        "groups",
        "reset-offsets",
        "-g",
        "g",
        "--all-topics",
        "--by-duration",
        "1h",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("ISO-8601"), "{}", out.stderr);
    let out = moldau(&["groups", "delete-offsets", "-g", "g", "-t", "orders:x"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);

    let server = start();
    server
        .run(&["groups", "describe", "-g", "nobody"])
        .assert_one_line_error(1, "does not exist");
    server
        .run(&["groups", "delete", "-g", "nobody"])
        .assert_one_line_error(1, "does not exist");
    server
        .run(&[
            "groups",
            "reset-offsets",
            "-g",
            "nobody",
            "-t",
            "missing",
            "--to-earliest",
        ])
        .assert_one_line_error(1, "does not exist");
}
