//! `moldau transactions` as an operator runs it: librdkafka transactional producers leave
//! transactions hanging, the CLI finds them (list, describe, describe-producers) and
//! aborts them, and a read_committed consumer then reads past them. No timing is
//! asserted; deadlines only guard against hangs.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;

const HANG_GUARD: Duration = Duration::from_secs(90);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const TOPIC: &str = "payments";

fn start() -> Server {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start_in(
        tmp.path(),
        &["--override", "transaction.state.log.num.partitions=3"],
    );
    server._tmp = Some(tmp);
    server
}

/// A transactional producer whose transactions the coordinator does not time out during
/// the test, so that an unfinished one stays open until the CLI aborts it.
fn txn_producer(server: &Server, transactional_id: &str) -> BaseProducer {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", server.addr.to_string())
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", "600000")
        .create()
        .expect("transactional producer");
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    producer
}

fn send(producer: &BaseProducer, partition: i32, values: &[&str]) {
    for v in values {
        producer
            .send(
                BaseRecord::<(), str>::to(TOPIC)
                    .payload(*v)
                    .partition(partition),
            )
            .expect("enqueue");
    }
    producer.flush(CLIENT_TIMEOUT).expect("flush");
}

fn consumer(server: &Server, isolation: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", server.addr.to_string())
        .set("group.id", "txn-cli-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer")
}

/// The partition's high watermark as a consumer of this isolation level sees it: the
/// last stable offset for read_committed.
fn high_watermark(server: &Server, isolation: &str, partition: i32) -> i64 {
    consumer(server, isolation)
        .fetch_watermarks(TOPIC, partition, CLIENT_TIMEOUT)
        .expect("watermarks")
        .1
}

/// Reads a partition from the start as read_committed until `last` arrives.
fn read_committed_until(server: &Server, partition: i32, last: &str) -> Vec<String> {
    let consumer = consumer(server, "read_committed");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, partition, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + HANG_GUARD;
    let mut values = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "read_committed never saw {last:?} in partition {partition}; got {values:?}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consume");
            let value = String::from_utf8_lossy(message.payload().unwrap_or_default()).to_string();
            let done = value == last;
            values.push(value);
            if done {
                return values;
            }
        }
    }
}

fn find<'a>(items: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    items.as_array()?.iter().find(|i| i[key] == value)
}

fn ids(items: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = items
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["transactional_id"].as_str().expect("id"))
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_hanging_transaction_is_found_and_aborted() {
    let server = start();
    server.ok(&["topics", "create", "-t", TOPIC, "--partitions", "2"]);
    // Three plain records first, so that the hanging transaction starts at offset 3.
    server.ok_with_input(&["produce", "-t", TOPIC, "-p", "0"], "p0\np1\np2\n");

    // Two transactions that never end: stuck-a on partition 0, stuck-b on partition 1
    // (after a second init_transactions, so its epoch is above 0).
    let stuck_a = txn_producer(&server, "stuck-a");
    stuck_a.begin_transaction().expect("begin a");
    send(&stuck_a, 0, &["a1", "a2"]);
    drop(txn_producer(&server, "stuck-b"));
    let stuck_b = txn_producer(&server, "stuck-b");
    stuck_b.begin_transaction().expect("begin b");
    send(&stuck_b, 1, &["b1", "b2"]);
    // A later transaction commits behind them on both partitions.
    let later = txn_producer(&server, "later");
    later.begin_transaction().expect("begin later");
    send(&later, 0, &["c1", "c2"]);
    send(&later, 1, &["d1"]);
    later.commit_transaction(CLIENT_TIMEOUT).expect("commit");

    // The hanging transaction holds the last stable offset at its first record.
    assert_eq!(high_watermark(&server, "read_committed", 0), 3);
    assert_eq!(high_watermark(&server, "read_committed", 1), 0);

    // list: every transactional id, with coordinator and state; filters go to the broker.
    let listed = server.json(&["transactions", "list", "-o", "json"]);
    assert_eq!(ids(&listed), ["later", "stuck-a", "stuck-b"], "{listed}");
    let a = find(&listed, "transactional_id", "stuck-a").unwrap();
    assert_eq!(a["transaction_state"], "Ongoing", "{listed}");
    assert_eq!(a["coordinator"], 1, "{listed}");
    let later_listed = find(&listed, "transactional_id", "later").unwrap();
    assert_eq!(
        later_listed["transaction_state"], "CompleteCommit",
        "{listed}"
    );
    let ongoing = server.json(&["transactions", "list", "--state", "ongoing", "-o", "json"]);
    assert_eq!(ids(&ongoing), ["stuck-a", "stuck-b"], "{ongoing}");
    let pid_later = later_listed["producer_id"].clone();
    let later_pid = pid_later.as_i64().unwrap().to_string();
    let by_pid = server.json(&[
        "transactions",
        "list",
        "--producer-id",
        &later_pid,
        "-o",
        "json",
    ]);
    assert_eq!(ids(&by_pid), ["later"], "{by_pid}");
    let none = server.json(&[
        "transactions",
        "list",
        "--state",
        "PrepareAbort",
        "--state",
        "Empty",
        "-o",
        "json",
    ]);
    assert_eq!(none, Value::Array(vec![]));
    let table = server.ok(&["transactions", "list"]).stdout;
    assert!(
        table.starts_with("TRANSACTIONAL-ID   COORDINATOR   PRODUCER-ID   TRANSACTION-STATE"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("stuck-a") && l.ends_with("Ongoing")),
        "{table}"
    );

    // describe: the coordinator's view, with the partition the transaction wrote to.
    let described = server.json(&[
        "transactions",
        "describe",
        "--transactional-id",
        "stuck-a",
        "-o",
        "json",
    ]);
    assert_eq!(described["coordinator_id"], 1, "{described}");
    assert_eq!(described["transactional_id"], "stuck-a", "{described}");
    assert_eq!(described["producer_id"], a["producer_id"], "{described}");
    assert_eq!(described["transaction_state"], "Ongoing", "{described}");
    assert_eq!(described["transaction_timeout_ms"], 600_000, "{described}");
    assert!(
        described["current_transaction_start_time_ms"]
            .as_i64()
            .unwrap()
            > 0,
        "{described}"
    );
    assert!(
        described["transaction_duration_ms"].as_i64().unwrap() >= 0,
        "{described}"
    );
    assert_eq!(
        described["topic_partitions"],
        serde_json::json!([{"topic": TOPIC, "partition": 0}]),
        "{described}"
    );
    let table = server
        .ok(&["transactions", "describe", "--transactional-id", "stuck-a"])
        .stdout;
    assert!(
        table.starts_with("COORDINATOR-ID   TRANSACTIONAL-ID"),
        "{table}"
    );
    assert!(
        table.contains("Ongoing") && table.contains("payments-0"),
        "{table}"
    );
    let completed = server.json(&[
        "transactions",
        "describe",
        "--transactional-id",
        "later",
        "-o",
        "json",
    ]);
    assert_eq!(
        completed["transaction_state"], "CompleteCommit",
        "{completed}"
    );

    // describe-producers: where each producer's open transaction starts.
    let producers = server.json(&[
        "transactions",
        "describe-producers",
        "--topic",
        TOPIC,
        "--partition",
        "0",
        "-o",
        "json",
    ]);
    let pid_a = a["producer_id"].clone();
    let producer_a = producers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["producer_id"] == pid_a)
        .unwrap_or_else(|| panic!("{producers}"));
    assert_eq!(
        producer_a["current_transaction_start_offset"], 3,
        "{producers}"
    );
    assert_eq!(producer_a["producer_epoch"], 0, "{producers}");
    let producer_later = producers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["producer_id"] == pid_later)
        .unwrap_or_else(|| panic!("{producers}"));
    assert_eq!(
        producer_later["current_transaction_start_offset"],
        Value::Null,
        "{producers}"
    );
    let table = server
        .ok(&["transactions", "describe-producers", "-t", TOPIC, "-p", "0"])
        .stdout;
    assert!(
        table.starts_with("PRODUCER-ID   PRODUCER-EPOCH   LATEST-COORDINATOR-EPOCH"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&pid_a.to_string()) && l.ends_with("   3")),
        "{table}"
    );

    // abort by start offset: no producer there is one clear line; the right one aborts.
    server
        .run(&[
            "transactions",
            "abort",
            "-t",
            TOPIC,
            "-p",
            "0",
            "--start-offset",
            "4",
        ])
        .assert_one_line_error(1, "no open transaction starts at offset 4 of payments-0");
    let out = server.ok(&[
        "transactions",
        "abort",
        "-t",
        TOPIC,
        "-p",
        "0",
        "--start-offset",
        "3",
    ]);
    assert!(
        out.stdout.starts_with(&format!(
            "Aborted the transaction of producer {pid_a} (epoch 0, coordinator epoch 0) \
             that started at offset 3 of payments-0."
        )),
        "{}",
        out.stdout
    );
    // The LSO moved to the end; the aborted records are hidden, the committed ones shown.
    assert_eq!(
        high_watermark(&server, "read_committed", 0),
        high_watermark(&server, "read_uncommitted", 0)
    );
    assert_eq!(
        read_committed_until(&server, 0, "c2"),
        ["p0", "p1", "p2", "c1", "c2"]
    );
    let producers = server.json(&[
        "transactions",
        "describe-producers",
        "-t",
        TOPIC,
        "-p",
        "0",
        "-o",
        "json",
    ]);
    assert!(
        producers
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["current_transaction_start_offset"].is_null()),
        "{producers}"
    );
    server
        .run(&[
            "transactions",
            "abort",
            "-t",
            TOPIC,
            "-p",
            "0",
            "--start-offset",
            "3",
        ])
        .assert_one_line_error(1, "no open transaction starts at offset 3");

    // abort by producer id and epochs, as describe-producers shows them.
    let producers = server.json(&[
        "transactions",
        "describe-producers",
        "-t",
        TOPIC,
        "-p",
        "1",
        "-o",
        "json",
    ]);
    let producer_b = producers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["current_transaction_start_offset"] == 0)
        .unwrap_or_else(|| panic!("{producers}"))
        .clone();
    let pid_b = producer_b["producer_id"].as_i64().unwrap().to_string();
    let epoch_b = producer_b["producer_epoch"].as_i64().unwrap();
    assert!(epoch_b >= 1, "{producers}");
    let coordinator_epoch_b = producer_b["latest_coordinator_epoch"]
        .as_i64()
        .unwrap_or(0)
        .to_string();
    // An epoch older than the producer's is refused by the leader: one line, exit 1.
    let stale_epoch = (epoch_b - 1).to_string();
    server
        .run(&[
            "transactions",
            "abort",
            "-t",
            TOPIC,
            "-p",
            "1",
            "--producer-id",
            &pid_b,
            "--producer-epoch",
            &stale_epoch,
            "--coordinator-epoch",
            &coordinator_epoch_b,
        ])
        .assert_one_line_error(1, "InvalidProducerEpoch");
    assert_eq!(high_watermark(&server, "read_committed", 1), 0);
    let aborted = server.json(&[
        "transactions",
        "abort",
        "-t",
        TOPIC,
        "-p",
        "1",
        "--producer-id",
        &pid_b,
        "--producer-epoch",
        &epoch_b.to_string(),
        "--coordinator-epoch",
        &coordinator_epoch_b,
        "-o",
        "json",
    ]);
    assert_eq!(aborted["result"], "aborted", "{aborted}");
    assert_eq!(aborted["start_offset"], Value::Null, "{aborted}");
    assert_eq!(aborted["partition"], 1, "{aborted}");
    assert_eq!(read_committed_until(&server, 1, "d1"), ["d1"]);
    assert_eq!(
        high_watermark(&server, "read_committed", 1),
        high_watermark(&server, "read_uncommitted", 1)
    );
    drop((stuck_a, stuck_b, later));
}

#[test]
fn errors_are_one_clear_line() {
    let server = start();
    server.ok(&["topics", "create", "-t", TOPIC, "--partitions", "1"]);
    server
        .run(&["transactions", "describe", "--transactional-id", "nobody"])
        .assert_one_line_error(1, "transactional id 'nobody' does not exist");
    server
        .run(&[
            "transactions",
            "describe-producers",
            "-t",
            "missing",
            "-p",
            "0",
        ])
        .assert_one_line_error(1, "topic 'missing' does not exist");
    server
        .run(&["transactions", "describe-producers", "-t", TOPIC, "-p", "7"])
        .assert_one_line_error(1, "topic 'payments' has no partition 7");
    server
        .run(&[
            "transactions",
            "abort",
            "-t",
            TOPIC,
            "-p",
            "0",
            "--start-offset",
            "0",
        ])
        .assert_one_line_error(1, "no open transaction starts at offset 0 of payments-0");
    // Nothing is in any state yet: an empty list, not an error.
    assert_eq!(
        server.json(&["transactions", "list", "-o", "json"]),
        Value::Array(vec![])
    );

    // Bad usage: clap's exit code 2, naming the problem.
    for (args, needle) in [
        (
            &["transactions", "abort", "-t", TOPIC, "-p", "0"][..],
            "--start-offset",
        ),
        (
            &[
                "transactions",
                "abort",
                "-t",
                TOPIC,
                "-p",
                "0",
                "--start-offset",
                "1",
                "--producer-id",
                "1",
            ][..],
            "cannot be used with",
        ),
        (
            &[
                "transactions",
                "abort",
                "-t",
                TOPIC,
                "-p",
                "0",
                "--producer-id",
                "1",
            ][..],
            "--producer-epoch",
        ),
        (
            &["transactions", "list", "--state", "Running"][..],
            "unknown transaction state 'Running'",
        ),
        (
            &[
                "transactions",
                "describe-producers",
                "-t",
                TOPIC,
                "-p",
                "-1",
            ][..],
            "'-1'",
        ),
        (&["transactions", "describe"][..], "--transactional-id"),
    ] {
        let out = server.run(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: ") && out.stderr.contains(needle),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Most librdkafka properties mean nothing to a command that does not use librdkafka;
    // the security ones do (TLS to a PLAINTEXT listener fails its handshake).
    server
        .run(&["transactions", "list", "-X", "acks=all"])
        .assert_one_line_error(2, "-X acks is not supported");
    server
        .run(&["transactions", "list", "-X", "security.protocol=SSL"])
        .assert_one_line_error(1, "TLS handshake with");
    server.ok(&["transactions", "list", "-X", "client.id=ops"]);
}

#[test]
fn an_unreachable_or_silent_cluster_fails_within_the_timeout() {
    // Port 1: privileged and unused.
    let started = Instant::now();
    moldau(&[
        "transactions",
        "list",
        "--bootstrap-server",
        "127.0.0.1:1",
        "--request-timeout-ms",
        "2000",
    ])
    .assert_one_line_error(1, "is a broker running at 127.0.0.1:1?");
    assert!(started.elapsed() < Duration::from_secs(20));

    // A peer that accepts and never answers: the round trip times out.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let started = Instant::now();
    moldau(&[
        "transactions",
        "describe",
        "--transactional-id",
        "x",
        "--bootstrap-server",
        &addr,
        "--request-timeout-ms",
        "500",
    ])
    .assert_one_line_error(1, "within 500 ms");
    assert!(started.elapsed() < Duration::from_secs(20));
    drop(silent);
}
