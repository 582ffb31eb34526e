//! The `moldau` binary as a user runs it: a real `moldau server` on a free port and
//! the command-line tools against it.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::*;

fn find<'a>(items: &'a Value, key: &str, name: &str) -> Option<&'a Value> {
    items.as_array()?.iter().find(|v| v[key] == name)
}

#[test]
fn topics_create_list_describe_alter_delete() {
    let server = Server::start();
    let out = server.ok(&[
        "topics",
        "create",
        "--topic",
        "orders",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=3600000",
    ]);
    assert_eq!(out.stdout.trim(), "Created topic orders.");

    let again = server.run(&["topics", "create", "--topic", "orders", "--partitions", "3"]);
    again.assert_one_line_error(1, "already exists");
    server.ok(&["topics", "create", "--topic", "orders", "--if-not-exists"]);

    let table = server.ok(&["topics", "list"]).stdout;
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["orders", "3", "1"]),
        "{table}"
    );
    let list = server.json(&["topics", "list", "--output", "json"]);
    let orders = find(&list, "topic", "orders").expect("orders listed");
    assert_eq!(orders["partition_count"], 3);
    assert_eq!(orders["replication_factor"], 1);

    let described = server.json(&["topics", "describe", "--topic", "orders", "-o", "json"]);
    let orders = &described[0];
    assert_eq!(orders["partition_count"], 3);
    assert_eq!(orders["configs"]["retention.ms"], "3600000");
    for (i, p) in orders["partitions"].as_array().unwrap().iter().enumerate() {
        assert_eq!(p["partition"], i);
        assert_eq!(p["leader"], 1);
        assert_eq!(p["replicas"], serde_json::json!([1]));
        assert_eq!(p["isr"], serde_json::json!([1]));
    }
    let text = server
        .ok(&["topics", "describe", "--topic", "orders"])
        .stdout;
    assert!(text.contains("PartitionCount: 3"), "{text}");
    assert!(text.contains("retention.ms=3600000"), "{text}");

    server.ok(&["topics", "alter", "--topic", "orders", "--partitions", "5"]);
    let described = server.json(&["topics", "describe", "--topic", "orders", "-o", "json"]);
    assert_eq!(described[0]["partition_count"], 5);
    server
        .run(&["topics", "alter", "--topic", "orders", "--partitions", "2"])
        .assert_one_line_error(1, "orders");

    server.ok(&[
        "topics",
        "alter",
        "--topic",
        "orders",
        "--config",
        "segment.bytes=1048576",
        "--delete-config",
        "retention.ms",
    ]);
    let described = server.json(&["topics", "describe", "--topic", "orders", "-o", "json"]);
    assert_eq!(
        described[0]["configs"],
        serde_json::json!({"segment.bytes": "1048576"})
    );

    let out = server.ok(&["topics", "delete", "--topic", "orders"]);
    assert_eq!(out.stdout.trim(), "Deleted topic orders.");
    let list = server.json(&["topics", "list", "-o", "json"]);
    assert!(find(&list, "topic", "orders").is_none(), "{list}");
    server
        .run(&["topics", "delete", "--topic", "orders"])
        .assert_one_line_error(1, "does not exist");
    server.ok(&["topics", "delete", "--topic", "orders", "--if-exists"]);
    server
        .run(&["topics", "describe", "--topic", "orders"])
        .assert_one_line_error(1, "does not exist");
}

#[test]
fn produce_with_keys_and_headers_then_consume_as_json() {
    let server = Server::start();
    server.ok(&["topics", "create", "--topic", "events", "--partitions", "3"]);
    let lines: Vec<String> = (0..30)
        .map(|i| format!("user-{}|payload {i}", i % 7))
        .collect();
    let input = lines.join("\n") + "\n";
    let out = server.ok_with_input(
        &[
            "produce",
            "--topic",
            "events",
            "--key-separator",
            "|",
            "--header",
            "source=test",
            "--header",
            "trace=a=b",
        ],
        &input,
    );
    assert!(out.stderr.contains("Produced 30 records"), "{}", out.stderr);

    let out = server.ok(&[
        "consume",
        "--topic",
        "events",
        "--from-beginning",
        "--format",
        "json",
        "--max-messages",
        "30",
        "--timeout-ms",
        "10000",
    ]);
    let records = out.json_lines();
    assert_eq!(records.len(), 30, "{}", out.stdout);
    let mut partition_of_key = std::collections::HashMap::new();
    let mut next_offset = std::collections::HashMap::new();
    let mut seen = Vec::new();
    for r in &records {
        assert_eq!(r["topic"], "events");
        assert_eq!(
            r["headers"],
            serde_json::json!([{"key": "source", "value": "test"}, {"key": "trace", "value": "a=b"}])
        );
        assert!(r["timestamp"].as_i64().unwrap() > 1_600_000_000_000, "{r}");
        let key = r["key"].as_str().unwrap().to_string();
        let partition = r["partition"].as_i64().unwrap();
        // Records with one key share a partition, and offsets count up from 0 in each.
        assert_eq!(
            *partition_of_key.entry(key.clone()).or_insert(partition),
            partition,
            "{r}"
        );
        let expected = next_offset.entry(partition).or_insert(0);
        assert_eq!(r["offset"].as_i64().unwrap(), *expected, "{r}");
        *expected += 1;
        seen.push(format!("{key}|{}", r["value"].as_str().unwrap()));
    }
    seen.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(seen, expected);

    // One partition, from an offset, as text with the key.
    let (&partition, &end) = next_offset.iter().max_by_key(|(_, n)| **n).unwrap();
    let partition = partition.to_string();
    let out = server.ok(&[
        "consume",
        "--topic",
        "events",
        "--partition",
        &partition,
        "--offset",
        "1",
        "--print-key",
        "--timeout-ms",
        "2000",
    ]);
    assert_eq!(out.stdout.lines().count() as i64, end - 1, "{}", out.stdout);
    assert!(out
        .stdout
        .lines()
        .all(|l| l.starts_with("user-") && l.contains("\tpayload ")));

    // To the end of every partition, then stop.
    let out = server.ok(&[
        "consume",
        "--topic",
        "events",
        "--from-beginning",
        "--exit-at-end",
    ]);
    assert_eq!(out.stdout.lines().count(), 30, "{}", out.stderr);

    // By timestamp: everything was written after 2020, nothing after 2100.
    let all = server.ok(&[
        "consume",
        "--topic",
        "events",
        "--timestamp",
        "2020-01-01T00:00:00Z",
        "--timeout-ms",
        "2000",
    ]);
    assert_eq!(all.stdout.lines().count(), 30, "{}", all.stderr);
    let none = server.ok(&[
        "consume",
        "--topic",
        "events",
        "--timestamp",
        "4102444800000",
        "--timeout-ms",
        "1000",
    ]);
    assert_eq!(none.stdout, "");
}

#[test]
fn produce_under_each_compression_codec_and_acks() {
    let server = Server::start();
    server.ok(&["topics", "create", "--topic", "codecs", "--partitions", "1"]);
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for (i, codec) in codecs.iter().enumerate() {
        let acks = ["all", "1", "-1", "1", "all"][i];
        let input = format!("{codec} one\n{codec} two\n");
        server.ok_with_input(
            &[
                "produce",
                "--topic",
                "codecs",
                "--compression",
                codec,
                "--acks",
                acks,
                "--partition",
                "0",
            ],
            &input,
        );
    }
    let out = server.ok(&[
        "consume",
        "--topic",
        "codecs",
        "--from-beginning",
        "--max-messages",
        "10",
        "--timeout-ms",
        "10000",
    ]);
    let expected: Vec<String> = codecs
        .iter()
        .flat_map(|c| [format!("{c} one"), format!("{c} two")])
        .collect();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn configs_describe_and_alter_for_topic_and_broker() {
    let server = Server::start();
    server.ok(&["topics", "create", "--topic", "cfg", "--partitions", "1"]);
    server.ok(&[
        "configs",
        "alter",
        "--topic",
        "cfg",
        "--add-config",
        "retention.ms=60000,cleanup.policy=[compact,delete]",
    ]);
    let overrides = server.json(&["configs", "describe", "--topic", "cfg", "-o", "json"]);
    let retention = find(&overrides, "name", "retention.ms").expect("retention.ms override");
    assert_eq!(retention["value"], "60000");
    assert_eq!(retention["source"], "DYNAMIC_TOPIC_CONFIG");
    assert_eq!(retention["is_sensitive"], false);
    let policy = find(&overrides, "name", "cleanup.policy").expect("cleanup.policy override");
    assert_eq!(policy["value"], "compact,delete");

    server.ok(&[
        "configs",
        "alter",
        "--topic",
        "cfg",
        "--delete-config",
        "retention.ms",
    ]);
    let overrides = server.json(&["configs", "describe", "--topic", "cfg", "-o", "json"]);
    assert!(
        find(&overrides, "name", "retention.ms").is_none(),
        "{overrides}"
    );
    assert!(
        find(&overrides, "name", "cleanup.policy").is_some(),
        "{overrides}"
    );
    server
        .run(&[
            "configs",
            "alter",
            "--topic",
            "cfg",
            "--delete-config",
            "retention.ms",
        ])
        .assert_one_line_error(1, "retention.ms");

    let all = server.json(&[
        "configs", "describe", "--topic", "cfg", "--all", "-o", "json",
    ]);
    let segment = find(&all, "name", "segment.bytes").expect("segment.bytes listed with --all");
    assert_eq!(segment["value"], "1073741824");
    assert_eq!(segment["source"], "DEFAULT_CONFIG");
    let table = server
        .ok(&["configs", "describe", "--topic", "cfg", "--all"])
        .stdout;
    assert!(table.lines().next().unwrap().contains("SOURCE"), "{table}");

    let broker = server.json(&[
        "configs", "describe", "--broker", "1", "--all", "-o", "json",
    ]);
    let dirs = find(&broker, "name", "log.dirs").expect("log.dirs in broker configs");
    assert_eq!(dirs["value"], server.data_dir.display().to_string());
    server.ok(&[
        "configs",
        "alter",
        "--broker",
        "1",
        "--add-config",
        "log.retention.ms=7200000",
    ]);
    let broker = server.json(&["configs", "describe", "--broker", "1", "-o", "json"]);
    let retention = find(&broker, "name", "log.retention.ms").expect("broker override");
    assert_eq!(retention["value"], "7200000");
    assert_eq!(retention["source"], "DYNAMIC_BROKER_CONFIG");

    server
        .run(&["configs", "describe", "--topic", "missing"])
        .assert_one_line_error(1, "topic 'missing' does not exist");
    server
        .run(&["configs", "describe", "--broker", "7"])
        .assert_one_line_error(1, "broker 7 is not in the cluster (brokers: 1)");
}

#[test]
fn configs_alter_reports_the_brokers_refusal() {
    let server = Server::start();
    server.ok(&["topics", "create", "--topic", "cfg", "--partitions", "1"]);
    let args = [
        "configs",
        "alter",
        "--topic",
        "cfg",
        "--add-config",
        "retention.ms=soon",
    ];
    server.run(&args).assert_one_line_error(1, "retention.ms");
    let args = [
        "topics",
        "alter",
        "--topic",
        "cfg",
        "--config",
        "segment.bytes=-5",
    ];
    server.run(&args).assert_one_line_error(1, "segment.bytes");
    let args = [
        "configs",
        "alter",
        "--broker",
        "1",
        "--add-config",
        "log.dirs=/elsewhere",
    ];
    server.run(&args).assert_one_line_error(1, "log.dirs");
    let overrides = server.json(&["configs", "describe", "--topic", "cfg", "-o", "json"]);
    assert_eq!(overrides, serde_json::json!([]));
}

#[test]
fn perf_produce_and_consume_report_json() {
    let server = Server::start();
    server.ok(&["topics", "create", "--topic", "perf", "--partitions", "2"]);
    let produced = server.json(&[
        "perf",
        "produce",
        "--topic",
        "perf",
        "--num-records",
        "5000",
        "--record-size",
        "100",
        "--throughput",
        "-1",
        "--producer-props",
        "acks=1",
        "linger.ms=5",
        "--output",
        "json",
    ]);
    assert_eq!(produced["records"], 5000);
    assert_eq!(produced["failed"], 0);
    let latency = &produced["latency_ms"];
    for p in ["p50", "p95", "p99", "p999", "max"] {
        assert!(latency[p].as_f64().unwrap() > 0.0, "{produced}");
    }
    assert!(
        latency["p50"].as_f64() <= latency["p999"].as_f64(),
        "{produced}"
    );

    let text = server
        .ok(&[
            "perf",
            "produce",
            "--topic",
            "perf",
            "--num-records",
            "1000",
        ])
        .stdout;
    assert!(text.starts_with("1000 records sent, "), "{text}");
    assert!(text.contains("ms 99.9th"), "{text}");

    let consumed = server.json(&[
        "perf",
        "consume",
        "--topic",
        "perf",
        "--num-records",
        "6000",
        "--timeout-ms",
        "10000",
        "-o",
        "json",
    ]);
    assert_eq!(consumed["records"], 6000);
    assert!(consumed["mb"].as_f64().unwrap() > 0.5, "{consumed}");
    assert!(
        consumed["records_per_sec"].as_f64().unwrap() > 0.0,
        "{consumed}"
    );

    server
        .run(&[
            "perf",
            "consume",
            "--topic",
            "perf",
            "--num-records",
            "7000",
            "--timeout-ms",
            "1000",
        ])
        .assert_last_line_error(1, "consumed 6000 of 7000 records");
}

#[test]
fn perf_produce_in_transactions_is_read_committed() {
    let server = Server::start();
    server.ok(&[
        "topics",
        "create",
        "--topic",
        "perf-txn",
        "--partitions",
        "2",
    ]);
    // 2500 records in transactions of 1000: two full ones and a last partial one, all committed.
    let produced = server.json(&[
        "perf",
        "produce",
        "--topic",
        "perf-txn",
        "--num-records",
        "2500",
        "--transaction-size",
        "1000",
        "--transactional-id",
        "perf-txn-test",
        "-o",
        "json",
    ]);
    assert_eq!(produced["records"], 2500, "{produced}");
    assert_eq!(produced["failed"], 0, "{produced}");
    let consumed = server.json(&[
        "perf",
        "consume",
        "--topic",
        "perf-txn",
        "--num-records",
        "2500",
        "--timeout-ms",
        "10000",
        "--consumer-props",
        "isolation.level=read_committed",
        "-o",
        "json",
    ]);
    assert_eq!(consumed["records"], 2500, "{consumed}");
}

#[test]
fn server_reads_properties_and_overrides_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // A properties file, then an override on top of it.
    let properties = dir.path().join("server.properties");
    std::fs::write(&properties, "num.partitions=4\nno.such.key=1\n").unwrap();
    let properties = properties.display().to_string();
    let args = ["--config", &properties, "--override", "num.partitions=2"];
    let server = Server::start_in(dir.path(), &args);
    assert!(server.log().contains("no.such.key"), "{}", server.log());
    server.ok(&["topics", "create", "--topic", "durable"]);
    let described = server.json(&["topics", "describe", "--topic", "durable", "-o", "json"]);
    assert_eq!(
        described[0]["partition_count"], 2,
        "num.partitions from the override"
    );
    server.ok_with_input(&["produce", "--topic", "durable"], "kept\n");
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "exit after SIGTERM");

    let server = Server::start_in(dir.path(), &[]);
    let out = server.ok(&[
        "consume",
        "--topic",
        "durable",
        "--from-beginning",
        "--max-messages",
        "1",
        "--timeout-ms",
        "10000",
    ]);
    assert_eq!(out.stdout, "kept\n");
}

#[test]
fn a_second_server_on_the_same_log_dir_refuses_to_start() {
    let server = Server::start();
    let listener = format!("listeners=PLAINTEXT://127.0.0.1:{}", free_port());
    let log_dirs = format!("log.dirs={}", server.data_dir.display());
    let out = moldau(&["server", "--override", &listener, "--override", &log_dirs]);
    out.assert_last_line_error(1, "is in use by another process");
    assert!(out.stderr.contains(".lock"), "{}", out.stderr);
    // The first broker is unharmed.
    server.ok(&["topics", "create", "--topic", "still-mine"]);
}

#[test]
fn errors_are_one_line_with_a_non_zero_exit() {
    // A bad flag value is a usage error (clap's exit code 2) naming the flag.
    let out = moldau(&["topics", "create", "--topic", "x", "--partitions", "many"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("--partitions"),
        "{}",
        out.stderr
    );
    let out = moldau(&["consume", "--topic", "x", "--timestamp", "yesterday"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let out = moldau(&["produce", "--topic", "bad topic"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);

    // A client property librdkafka rejects: one line naming it.
    moldau(&["topics", "list", "-X", "no.such.property=1"])
        .assert_one_line_error(1, "no.such.property=1");
    moldau(&[
        "perf",
        "produce",
        "--topic",
        "x",
        "--num-records",
        "1",
        "--producer-props",
        "batch.size=-5",
    ])
    .assert_one_line_error(1, "batch.size=-5");

    // Nobody listening: one line after at most the request timeout.
    // Port 1: privileged and unused, unlike a port that was free a moment ago.
    let bootstrap = "127.0.0.1:1";
    for args in [
        &["topics", "list"][..],
        &["topics", "create", "--topic", "x"][..],
        &["consume", "--topic", "x"][..],
        &["configs", "describe", "--broker", "1"][..],
        &["perf", "produce", "--topic", "x", "--num-records", "1"][..],
    ] {
        let started = Instant::now();
        let mut all = args.to_vec();
        all.extend([
            "--bootstrap-server",
            bootstrap,
            "--request-timeout-ms",
            "2000",
        ]);
        let out = moldau(&all);
        out.assert_one_line_error(1, bootstrap);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }

    // An invalid server config value: exit 2, naming key and value.
    let dir = tempfile::tempdir().unwrap();
    let data = format!("log.dirs={}", dir.path().display());
    let out = moldau(&[
        "server",
        "--override",
        "num.partitions=lots",
        "--override",
        &data,
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("num.partitions") && out.stderr.contains("lots"),
        "{}",
        out.stderr
    );
}

#[test]
fn consume_stops_cleanly_on_sigint() {
    let server = Server::start();
    server.ok(&["topics", "create", "--topic", "live", "--partitions", "1"]);
    server.ok_with_input(&["produce", "--topic", "live"], "first\n");
    let dir = tempfile::tempdir().unwrap();
    let stdout_path = dir.path().join("stdout");
    let mut child = Command::new(BIN)
        .args(["consume", "--topic", "live", "--from-beginning"])
        .env("MOLDAU_BOOTSTRAP_SERVER", server.addr.to_string())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + COMMAND_DEADLINE;
    while std::fs::read_to_string(&stdout_path).unwrap() != "first\n" {
        assert!(Instant::now() < deadline, "the record never came");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = signal_and_wait(&mut child, "-INT");
    let _ = child.kill();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{stderr}");
    assert_eq!(stderr.trim(), "Processed a total of 1 messages");
}

#[test]
fn errors_against_a_running_server() {
    let server = Server::start();
    server
        .run(&["consume", "--topic", "missing", "--timeout-ms", "1000"])
        .assert_one_line_error(1, "topic 'missing' does not exist");
    server.ok(&["topics", "create", "--topic", "t", "--partitions", "2"]);
    server
        .run(&[
            "consume",
            "--topic",
            "t",
            "--partition",
            "7",
            "--timeout-ms",
            "1000",
        ])
        .assert_one_line_error(1, "partition 7");
    // A line without the separator fails alone; the others are delivered.
    let out = server.run_with_input(
        &["produce", "--topic", "t", "--key-separator", ":"],
        "a:1\nno separator\nb:2\n",
    );
    out.assert_last_line_error(1, "1 of 3 records failed");
    assert!(
        out.stderr
            .contains("error: record at line 2: no key separator"),
        "{}",
        out.stderr
    );
    let out = server.ok(&[
        "consume",
        "--topic",
        "t",
        "--from-beginning",
        "--max-messages",
        "2",
        "--timeout-ms",
        "10000",
    ]);
    let mut values: Vec<&str> = out.stdout.lines().collect();
    values.sort();
    assert_eq!(values, ["1", "2"]);
}
