//! The common Connect setup, end to end, driven through the REST API as a user would: a
//! MariaDB table captured by the Debezium-configured MySQL source, flattened and reshaped
//! by transforms (ExtractNewRecordState, ExtractField$Key, InsertField), and kept in step in
//! PostgreSQL by the JDBC sink: inserts, updates, deletes and a schema change; then the
//! worker and the broker are killed (SIGKILL) mid-stream and restarted: no committed change
//! is lost and no row is duplicated. Bad requests (unknown class, missing option,
//! unreachable database) get Connect's answers and create nothing.

mod common;
// The same database servers as Connect's own tests (each test binary uses part of it).
#[allow(dead_code)]
#[path = "../../connect/tests/common/databases.rs"]
mod databases;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::connect::{call, Worker};
use common::{free_port, Server};
use databases::{MariaDb, Postgres};
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(90);

/// A standalone worker with these connector files; offsets in `dir`.
fn start_worker(dir: &Path, broker: &Server, connector_files: &[&Path]) -> Worker {
    let port = free_port();
    let props = dir.join("worker.properties");
    std::fs::write(
        &props,
        format!(
            "bootstrap.servers={}\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             key.converter.schemas.enable=true\nvalue.converter.schemas.enable=true\n\
             offset.storage.file.filename={}\noffset.flush.interval.ms=500\n\
             listeners=http://127.0.0.1:{port}\n",
            broker.addr,
            dir.join("connect.offsets").display()
        ),
    )
    .unwrap();
    Worker::spawn("standalone", &props, connector_files, port)
}

fn wait_for(what: &str, logs: &dyn Fn() -> String, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; logs:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn source_config(mariadb: &MariaDb, broker: &Server) -> Value {
    json!({"name": "inventory-source", "config": {
        "connector.class": "io.debezium.connector.mysql.MySqlConnector",
        "tasks.max": "1",
        "database.hostname": "127.0.0.1",
        "database.port": mariadb.port.to_string(),
        "database.user": "root",
        "database.password": "",
        "database.server.id": "5400",
        "topic.prefix": "shop",
        "database.include.list": "inventory",
        "table.include.list": "inventory.customers",
        "snapshot.mode": "when_needed",
        "schema.history.internal.kafka.topic": "schema-changes.inventory",
        "schema.history.internal.kafka.bootstrap.servers": broker.addr.to_string(),
    }})
}

fn sink_config(pg: &Postgres) -> Value {
    json!({"name": "customers-sink", "config": {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": "shop.inventory.customers",
        "connection.url": format!("jdbc:postgresql://127.0.0.1:{}/postgres", pg.port),
        "connection.user": "postgres",
        "insert.mode": "upsert",
        "pk.mode": "record_key",
        "pk.fields": "id",
        "delete.enabled": "true",
        "auto.create": "true",
        "auto.evolve": "true",
        "table.name.format": "customers",
        "transforms": "unwrap,key,origin",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.unwrap.drop.tombstones": "false",
        "transforms.unwrap.delete.handling.mode": "drop",
        "transforms.key.type": "org.apache.kafka.connect.transforms.ExtractField$Key",
        "transforms.key.field": "id",
        "transforms.origin.type": "org.apache.kafka.connect.transforms.InsertField$Value",
        "transforms.origin.static.field": "origin",
        "transforms.origin.static.value": "mariadb",
    }})
}

/// `id,name,email` rows of a query result, sorted.
fn rows(text: &str) -> Vec<String> {
    let mut r: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r').replace('\t', "|"))
        .filter(|l| !l.is_empty())
        .collect();
    r.sort();
    r
}

fn mariadb_rows(m: &MariaDb) -> Vec<String> {
    // The mariadb client prints NULL where psql prints nothing.
    rows(&m.sql("SELECT id, name, IFNULL(email, '') FROM inventory.customers ORDER BY id"))
}

fn pg_rows(pg: &Postgres) -> Vec<String> {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-At",
            "-F",
            "|",
            "-d",
            "postgres",
        ])
        .arg("-p")
        .arg(pg.port.to_string())
        .arg("-c")
        .arg("SELECT id, name, email FROM customers ORDER BY id")
        .output()
        .expect("psql");
    if !out.status.success() {
        return Vec::new();
    }
    rows(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn mysql_changes_reach_postgres_through_transforms_and_survive_kills() {
    let Some(mariadb) = MariaDb::start() else {
        return;
    };
    let Some(pg) = Postgres::start() else { return };
    mariadb.sql(
        "CREATE DATABASE inventory; \
         CREATE TABLE inventory.customers (id INT PRIMARY KEY AUTO_INCREMENT, \
           name VARCHAR(64) NOT NULL, email VARCHAR(128)); \
         INSERT INTO inventory.customers (name, email) VALUES \
           ('Sally', 'sally@example.com'), ('George', 'gbailey@example.com'), ('Edward', 'ed@walker.com')",
    );
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    let broker_port = free_port();
    let listeners = format!("listeners=PLAINTEXT://127.0.0.1:{broker_port}");
    let mut broker = Server::start_in(&broker_dir, &["--override", &listeners]);
    let worker_dir = dir.path().join("worker");
    std::fs::create_dir_all(&worker_dir).unwrap();
    let mut worker = start_worker(&worker_dir, &broker, &[]);
    let connectors = format!("{}/connectors", worker.url());

    // Bad requests: Connect's answers, nothing created.
    let (status, e) = call("POST", &connectors, Some(json!({"name": "x", "config": {"connector.class": "io.debezium.connector.oracle.OracleConnector"}}))).unwrap();
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("io.debezium.connector.mysql.MySqlConnector"),
        "{e}"
    );
    let mut no_prefix = source_config(&mariadb, &broker);
    no_prefix["config"]
        .as_object_mut()
        .unwrap()
        .remove("topic.prefix");
    let (status, e) = call("POST", &connectors, Some(no_prefix)).unwrap();
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("topic.prefix"),
        "{e}"
    );
    let mut unreachable = source_config(&mariadb, &broker);
    unreachable["config"]["database.port"] = json!(free_port().to_string());
    let (status, e) = call("POST", &connectors, Some(unreachable.clone())).unwrap();
    assert_eq!(status, 400, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("Unable to connect"),
        "{e}"
    );
    // The validate endpoint says which key the error is about.
    let (status, infos) = call(
        "PUT",
        &format!(
            "{}/connector-plugins/MySqlConnector/config/validate",
            worker.url()
        ),
        Some(unreachable["config"].clone()),
    )
    .unwrap();
    assert_eq!(status, 200, "{infos}");
    let hostname = infos["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"]["name"] == "database.hostname")
        .expect("database.hostname in the answer");
    assert!(
        !hostname["value"]["errors"].as_array().unwrap().is_empty(),
        "{hostname}"
    );
    assert_eq!(call("GET", &connectors, None).unwrap().1, json!([]));

    // The pipeline: snapshot, then inserts, updates, deletes.
    let (status, e) = call("POST", &connectors, Some(source_config(&mariadb, &broker))).unwrap();
    assert_eq!(status, 201, "{e}");
    let (status, e) = call("POST", &connectors, Some(sink_config(&pg))).unwrap();
    assert_eq!(status, 201, "{e}");
    let worker_url = worker.url();
    let logs = || {
        format!(
            "{}\nstatus: {:?}\nmariadb: {:?}\npostgres: {:?}",
            worker_log_and(&worker_dir),
            call(
                "GET",
                &format!("{worker_url}/connectors?expand=status"),
                None
            ),
            mariadb_rows(&mariadb),
            pg_rows(&pg)
        )
    };
    wait_for("the snapshot in PostgreSQL", &logs, || {
        pg_rows(&pg) == mariadb_rows(&mariadb)
    });
    mariadb.sql(
        "INSERT INTO inventory.customers (name, email) VALUES ('Anne', 'annek@noanswer.org'), ('Bob', NULL); \
         UPDATE inventory.customers SET email = 'sally.t@example.com' WHERE name = 'Sally'; \
         DELETE FROM inventory.customers WHERE name = 'George'",
    );
    wait_for("streamed changes in PostgreSQL", &logs, || {
        pg_rows(&pg) == mariadb_rows(&mariadb)
    });
    let origin = pg.sql("postgres", "SELECT DISTINCT origin FROM customers");
    assert_eq!(origin.trim(), "mariadb", "InsertField's column");

    // A schema change: the new column reaches PostgreSQL (auto.evolve).
    mariadb.sql(
        "ALTER TABLE inventory.customers ADD COLUMN phone VARCHAR(20); \
         INSERT INTO inventory.customers (name, email, phone) VALUES ('Carol', 'carol@example.com', '555-0100')",
    );
    wait_for("the new column in PostgreSQL", &logs, || {
        pg.sql("postgres", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers' AND column_name = 'phone'")
            .trim()
            == "1"
            && pg_rows(&pg) == mariadb_rows(&mariadb)
    });
    assert_eq!(
        pg.sql(
            "postgres",
            "SELECT phone FROM customers WHERE name = 'Carol'"
        )
        .trim(),
        "555-0100"
    );

    // SIGKILL the worker while changes stream in; restart it with its connectors as files.
    let source_file = worker_dir.join("source.json");
    std::fs::write(&source_file, source_config(&mariadb, &broker).to_string()).unwrap();
    let sink_file = worker_dir.join("sink.json");
    std::fs::write(&sink_file, sink_config(&pg).to_string()).unwrap();
    let writer = spawn_writer(&mariadb, "w", 150);
    std::thread::sleep(Duration::from_millis(700));
    worker.child.kill().unwrap();
    worker.child.wait().unwrap();
    writer.join().unwrap();
    worker = start_worker(&worker_dir, &broker, &[&source_file, &sink_file]);
    let logs = || worker_log_and(&worker_dir);
    wait_for("every change after the worker was killed", &logs, || {
        pg_rows(&pg) == mariadb_rows(&mariadb)
    });

    // SIGKILL the broker mid-stream; restart it on the same data and port.
    let writer = spawn_writer(&mariadb, "b", 150);
    std::thread::sleep(Duration::from_millis(700));
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    writer.join().unwrap();
    broker = Server::start_in(&broker_dir, &["--override", &listeners]);
    wait_for("every change after the broker was killed", &logs, || {
        pg_rows(&pg) == mariadb_rows(&mariadb)
    });
    let counts = pg.sql(
        "postgres",
        "SELECT count(*), count(DISTINCT id) FROM customers",
    );
    let expected = mariadb.sql("SELECT count(*) FROM inventory.customers");
    assert_eq!(
        counts.trim(),
        format!("{}|{}", expected.trim(), expected.trim()),
        "no row lost or duplicated"
    );
    let (_, status) = call(
        "GET",
        &format!("{}/connectors/inventory-source/status", worker.url()),
        None,
    )
    .unwrap();
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    drop(worker);
    drop(broker);
}

fn worker_log_and(dir: &Path) -> String {
    let mut out = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with(".log") {
                out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    out.chars()
        .rev()
        .take(20_000)
        .collect::<String>()
        .chars()
        .rev()
        .collect()
}

/// Inserts `n` rows in small transactions, with updates of earlier ones, from a thread.
fn spawn_writer(m: &MariaDb, tag: &str, n: usize) -> std::thread::JoinHandle<()> {
    let port = m.port;
    let tag = tag.to_string();
    std::thread::spawn(move || {
        for i in 0..n {
            let sql = format!(
                "INSERT INTO inventory.customers (name, email) VALUES ('{tag}{i}', '{tag}{i}@example.com'); \
                 UPDATE inventory.customers SET email = CONCAT(email, '.x') WHERE name = '{tag}{}'",
                i / 2
            );
            let status = Command::new("mariadb")
                .args(["--no-defaults", "-h127.0.0.1", "-uroot"])
                .arg(format!("-P{port}"))
                .arg("-e")
                .arg(&sql)
                .status()
                .expect("mariadb client");
            assert!(status.success());
        }
    })
}
