//! The MySQL/MariaDB CDC source against a real MariaDB (binlog in ROW format) and, for the
//! schema history topic, the in-process broker. The task is driven directly: poll, check
//! the records, "commit" an offset and restart a new task from it.

// The shared helpers (tests/common) trip clippy::type_complexity; not this file's to change.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::databases::MariaDb;
use common::TestBroker;
use moldau_connect::config::Props;
use moldau_connect::connector::{
    ConnectError, Connector, NoOffsets, OffsetStorageReader, SourceRecord, SourceTask,
    StatusReporter, TaskContext,
};
use moldau_connect::connectors::mysql::source::Flavor;
use moldau_connect::connectors::mysql::{MySqlConnector, MySqlSourceTask, MARIADB_PLUGIN, PLUGIN};
use moldau_connect::data::{Struct, Value};
use moldau_connect::storage::OffsetMap;
use moldau_connect::transforms::TransformationChain;

/// Starts MariaDB with its own tmpdir, one server start at a time: a starting server (and
/// `mariadb-install-db`'s bootstrap) deletes the `#sql*` files it finds in its tmpdir, so
/// servers starting in parallel on a shared /tmp break each other's installation.
fn start_db() -> Option<(MariaDb, tempfile::TempDir)> {
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let arg = format!("--tmpdir={}", tmp.path().display());
    MariaDb::start_with(&[&arg]).map(|db| (db, tmp))
}

/// Bounds every test.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

struct FixedOffsets(HashMap<String, OffsetMap>);

impl OffsetStorageReader for FixedOffsets {
    fn offset(&self, partition: &OffsetMap) -> Option<OffsetMap> {
        self.0.get(&format!("{partition:?}")).cloned()
    }
}

fn committed(record: &SourceRecord) -> Arc<dyn OffsetStorageReader> {
    let mut m = HashMap::new();
    m.insert(
        format!("{:?}", record.source_partition),
        record.source_offset.clone(),
    );
    Arc::new(FixedOffsets(m))
}

fn props(db: &MariaDb, extra: &[(&str, &str)]) -> Props {
    let mut p: Props = [
        ("connector.class", PLUGIN.class),
        ("topic.prefix", "shop"),
        ("database.hostname", "127.0.0.1"),
        ("database.user", "root"),
        ("database.server.id", "5501"),
        ("database.include.list", "inv"),
        ("poll.interval.ms", "100"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    p.insert("database.port".into(), db.port.to_string());
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    p
}

async fn start_task(
    props: &Props,
    offsets: Arc<dyn OffsetStorageReader>,
    bootstrap: Option<String>,
) -> (MySqlSourceTask, StatusReporter) {
    start_task_as(Flavor::MySql, props, offsets, bootstrap).await
}

async fn start_task_as(
    flavor: Flavor,
    props: &Props,
    offsets: Arc<dyn OffsetStorageReader>,
    bootstrap: Option<String>,
) -> (MySqlSourceTask, StatusReporter) {
    let status = StatusReporter::default();
    let mut kafka = Props::new();
    kafka.insert(
        "bootstrap.servers".into(),
        bootstrap.unwrap_or_else(|| "127.0.0.1:1".into()),
    );
    let ctx = TaskContext {
        connector: "inventory".into(),
        task: 0,
        kafka_client_props: kafka,
        status: status.clone(),
        offsets,
    };
    let mut task = MySqlSourceTask::new(flavor);
    task.start(props, ctx).await.expect("task starts");
    (task, status)
}

/// Schema change events (topic `shop`) and heartbeats are checked by their own tests.
fn is_schema_change(r: &SourceRecord) -> bool {
    r.record.topic == "shop" || r.record.topic.starts_with("__debezium-heartbeat")
}

/// Waits for the first heartbeat: the task is streaming (needs `heartbeat.interval.ms`).
async fn wait_streaming(task: &mut MySqlSourceTask) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let batch = task.poll().await.expect("poll");
        if batch
            .iter()
            .any(|r| r.record.topic.starts_with("__debezium-heartbeat"))
        {
            return;
        }
    }
    panic!("no heartbeat within 30 s");
}

/// Polls until `count` records (schema change events left out) or the timeout.
async fn poll_n(task: &mut MySqlSourceTask, count: usize, timeout: Duration) -> Vec<SourceRecord> {
    let mut out = poll_n_all(task, count, timeout, false).await;
    out.retain(|r| !is_schema_change(r));
    out
}

async fn poll_n_all(
    task: &mut MySqlSourceTask,
    count: usize,
    timeout: Duration,
    with_schema_changes: bool,
) -> Vec<SourceRecord> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        let batch = task.poll().await.expect("poll");
        out.extend(
            batch
                .into_iter()
                .filter(|r| with_schema_changes || !is_schema_change(r)),
        );
    }
    out
}

/// Polls for `wait` and answers everything that came.
async fn poll_for(task: &mut MySqlSourceTask, wait: Duration) -> Vec<SourceRecord> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        out.extend(task.poll().await.expect("poll"));
    }
    out.retain(|r| !is_schema_change(r));
    out
}

fn value(r: &SourceRecord) -> &Struct {
    match &r.record.value {
        Value::Struct(s) => s,
        other => panic!("not a struct value: {other:?}"),
    }
}

fn op(r: &SourceRecord) -> String {
    match &r.record.value {
        Value::Null => "tombstone".into(),
        _ => match value(r).get("op") {
            Some(Value::String(s)) => s.clone(),
            other => panic!("op: {other:?}"),
        },
    }
}

fn row<'a>(r: &'a SourceRecord, which: &str) -> &'a Struct {
    match value(r).get(which) {
        Some(Value::Struct(s)) => s,
        other => panic!("{which}: {other:?}"),
    }
}

fn source_field(r: &SourceRecord, f: &str) -> Value {
    match value(r).get("source") {
        Some(Value::Struct(s)) => s.get(f).cloned().unwrap_or(Value::Null),
        other => panic!("source: {other:?}"),
    }
}

fn id_of(r: &SourceRecord) -> i32 {
    let s = match &r.record.value {
        Value::Null => match &r.record.key {
            Value::Struct(k) => k.clone(),
            other => panic!("key {other:?}"),
        },
        _ => {
            if op(r) == "d" {
                row(r, "before").clone()
            } else {
                row(r, "after").clone()
            }
        }
    };
    match s.get("id") {
        Some(Value::Int32(i)) => *i,
        other => panic!("id: {other:?}"),
    }
}

fn setup_customers(db: &MariaDb, rows: usize) {
    db.sql(
        "CREATE DATABASE inv; CREATE TABLE inv.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, secret VARCHAR(16))",
    );
    for i in 1..=rows {
        db.sql(&format!(
            "INSERT INTO inv.customers VALUES ({i}, 'name{i}', 's{i}')"
        ));
    }
}

macro_rules! bounded {
    ($body:expr) => {
        tokio::time::timeout(TEST_TIMEOUT, $body)
            .await
            .expect("the test finished in time")
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_insert_update_delete_with_tombstone() {
    let Some((db, _tmp)) = start_db() else { return };
    bounded!(async {
        setup_customers(&db, 3);
        db.sql(
            "CREATE TABLE inv.orders (id INT PRIMARY KEY); INSERT INTO inv.orders VALUES (7), (8)",
        );
        let p = props(&db, &[]);
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        let snap = poll_n(&mut task, 5, Duration::from_secs(30)).await;
        assert_eq!(snap.len(), 5);
        assert!(snap.iter().all(|r| op(r) == "r"));
        assert_eq!(snap.iter().map(id_of).collect::<Vec<_>>(), [1, 2, 3, 7, 8]);
        let markers: Vec<Value> = snap.iter().map(|r| source_field(r, "snapshot")).collect();
        let expected: Vec<Value> = [
            "first",
            "true",
            "last_in_data_collection",
            "first_in_data_collection",
            "last",
        ]
        .iter()
        .map(|m| Value::String(m.to_string()))
        .collect();
        assert_eq!(markers, expected);
        assert_eq!(snap[3].record.topic, "shop.inv.orders");
        assert_eq!(snap[0].record.topic, "shop.inv.customers");
        assert_eq!(
            snap[0].record.key_schema.as_ref().unwrap().name.as_deref(),
            Some("shop.inv.customers.Key")
        );
        assert_eq!(
            source_field(&snap[0], "connector"),
            Value::String("mysql".into())
        );
        assert_eq!(source_field(&snap[0], "db"), Value::String("inv".into()));
        assert_eq!(
            source_field(&snap[0], "table"),
            Value::String("customers".into())
        );
        // The last snapshot record's offset is the streaming start (snapshot complete).
        assert!(!snap[4].source_offset.iter().any(|(k, _)| k == "snapshot"));
        assert!(snap[1].source_offset.iter().any(|(k, _)| k == "snapshot"));

        db.sql("INSERT INTO inv.customers VALUES (4, 'dora', NULL); UPDATE inv.customers SET name = 'ann' WHERE id = 1; DELETE FROM inv.customers WHERE id = 2");
        let ch = poll_n(&mut task, 4, Duration::from_secs(30)).await;
        assert_eq!(
            ch.iter().map(op).collect::<Vec<_>>(),
            ["c", "u", "d", "tombstone"]
        );
        assert_eq!(
            row(&ch[0], "after").get("name"),
            Some(&Value::String("dora".into()))
        );
        assert_eq!(
            row(&ch[1], "before").get("name"),
            Some(&Value::String("name1".into()))
        );
        assert_eq!(
            row(&ch[1], "after").get("name"),
            Some(&Value::String("ann".into()))
        );
        assert_eq!(id_of(&ch[2]), 2);
        assert_eq!(ch[3].record.key, ch[2].record.key);
        // What consumers do with the events: Debezium's ExtractNewRecordState.
        let unwrap: Props = [
            ("transforms", "unwrap"),
            (
                "transforms.unwrap.type",
                "io.debezium.transforms.ExtractNewRecordState",
            ),
            ("transforms.unwrap.add.fields", "op,source.table"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let chain = TransformationChain::from_connector_config(&unwrap).unwrap();
        let flat = chain
            .apply(ch[1].record.clone())
            .unwrap()
            .expect("an update passes");
        let Value::Struct(flat) = flat.value else {
            panic!("a struct")
        };
        assert_eq!(flat.get("name"), Some(&Value::String("ann".into())));
        assert_eq!(flat.get("__op"), Some(&Value::String("u".into())));
        assert_eq!(
            flat.get("__source_table"),
            Some(&Value::String("customers".into()))
        );
        assert_eq!(
            chain.apply(ch[3].record.clone()).unwrap(),
            None,
            "tombstones dropped"
        );
        assert_eq!(
            source_field(&ch[0], "snapshot"),
            Value::String("false".into())
        );
        assert!(
            matches!(source_field(&ch[0], "file"), Value::String(f) if f.starts_with("binlog."))
        );
        assert_eq!(source_field(&ch[0], "server_id"), Value::Int64(1));
        // MariaDB's GTID of the transaction, and the GTID position in the offset.
        assert!(
            matches!(source_field(&ch[0], "gtid"), Value::String(g) if g.starts_with("0-1-")),
            "{:?}",
            source_field(&ch[0], "gtid")
        );
        assert!(
            ch[0].source_offset.iter().any(
                |(k, v)| k == "gtids" && matches!(v, Value::String(g) if g.starts_with("0-1-"))
            ),
            "{:?}",
            ch[0].source_offset
        );
        assert_ne!(source_field(&ch[0], "gtid"), source_field(&ch[1], "gtid"));
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_transaction_resumes_without_loss_or_duplicates() {
    let Some((db, _tmp)) = start_db() else { return };
    bounded!(async {
        setup_customers(&db, 1);
        let p = props(&db, &[]);
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        assert_eq!(poll_n(&mut task, 1, Duration::from_secs(30)).await.len(), 1);
        // One transaction of two statements (two row events of 3 and 2 rows).
        db.sql(
            "BEGIN; INSERT INTO inv.customers VALUES (10,'a',NULL),(11,'b',NULL),(12,'c',NULL); \
             INSERT INTO inv.customers VALUES (13,'d',NULL),(14,'e',NULL); COMMIT",
        );
        db.sql("INSERT INTO inv.customers VALUES (15, 'f', NULL)");
        let first = poll_n(&mut task, 6, Duration::from_secs(30)).await;
        assert_eq!(
            first.iter().map(id_of).collect::<Vec<_>>(),
            [10, 11, 12, 13, 14, 15]
        );
        task.stop().await;

        // Committed up to each record in turn: the restarted task emits exactly the rest.
        for k in [0usize, 2, 3, 4, 5] {
            let (mut again, _) = start_task(&p, committed(&first[k]), None).await;
            let expected: Vec<i32> = first[k + 1..].iter().map(id_of).collect();
            let got = if expected.is_empty() {
                poll_for(&mut again, Duration::from_secs(2)).await
            } else {
                let mut got = poll_n(&mut again, expected.len(), Duration::from_secs(30)).await;
                got.extend(poll_for(&mut again, Duration::from_millis(500)).await);
                got
            };
            assert_eq!(
                got.iter().map(id_of).collect::<Vec<_>>(),
                expected,
                "after record {k}"
            );
            again.stop().await;
        }
        // And new changes still arrive after a restart.
        let (mut again, _) = start_task(&p, committed(&first[5]), None).await;
        db.sql("INSERT INTO inv.customers VALUES (16, 'g', NULL)");
        let got = poll_n(&mut again, 1, Duration::from_secs(30)).await;
        assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), [16]);
        again.stop().await;

        // snapshot.mode=always: a snapshot at every start, offsets or not.
        let always = props(&db, &[("snapshot.mode", "always")]);
        let (mut again, _) = start_task(&always, committed(&got[0]), None).await;
        let snap = poll_n(&mut again, 8, Duration::from_secs(30)).await;
        assert_eq!(
            snap.iter().map(|r| (op(r), id_of(r))).collect::<Vec<_>>(),
            [1, 10, 11, 12, 13, 14, 15, 16].map(|i| ("r".to_string(), i))
        );
        again.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_snapshot_resumes_where_it_stopped() {
    let Some((db, _tmp)) = start_db() else { return };
    bounded!(async {
        setup_customers(&db, 10);
        let p = props(&db, &[("snapshot.fetch.size", "3")]);
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        let part = poll_n(&mut task, 4, Duration::from_secs(30)).await;
        task.stop().await;
        assert!(part.len() >= 4);
        assert_eq!(
            part[..4].iter().map(id_of).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        // A change made while the connector was down is not lost.
        db.sql("INSERT INTO inv.customers VALUES (11, 'late', NULL)");

        let (mut again, _) = start_task(&p, committed(&part[3]), None).await;
        let rest = poll_n(&mut again, 7, Duration::from_secs(30)).await;
        let ids: Vec<i32> = rest.iter().map(id_of).collect();
        assert_eq!(
            ids,
            [5, 6, 7, 8, 9, 10, 11],
            "the rest of the snapshot, then nothing twice"
        );
        assert!(rest.iter().all(|r| op(r) == "r"));
        assert_eq!(
            source_field(&rest[6], "snapshot"),
            Value::String("last".into())
        );
        // The insert made during the outage is also streamed (at-least-once: the stream
        // starts at the first snapshot's position).
        let streamed = poll_n(&mut again, 1, Duration::from_secs(30)).await;
        assert_eq!(
            streamed
                .iter()
                .map(|r| (op(r), id_of(r)))
                .collect::<Vec<_>>(),
            [("c".to_string(), 11)]
        );
        again.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_are_recorded_and_applied() {
    let Some((db, _tmp)) = start_db() else { return };
    let broker = TestBroker::start().await;
    bounded!(async {
        setup_customers(&db, 1);
        let p = props(
            &db,
            &[
                ("schema.history.internal.kafka.topic", "history.shop"),
                (
                    "schema.history.internal.kafka.bootstrap.servers",
                    &broker.bootstrap(),
                ),
            ],
        );
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        let first = poll_n_all(&mut task, 2, Duration::from_secs(30), true).await;
        assert_eq!(first.len(), 2);
        // The snapshot's CREATE TABLE as a schema change event, then the row.
        assert_eq!(first[0].record.topic, "shop");
        let sc = value(&first[0]);
        assert_eq!(
            sc.schema().name.as_deref(),
            Some("io.debezium.connector.mysql.SchemaChangeValue")
        );
        assert_eq!(sc.get("databaseName"), Some(&Value::String("inv".into())));
        assert!(matches!(sc.get("ddl"), Some(Value::String(d)) if d.starts_with("CREATE TABLE")));
        assert!(
            matches!(&first[0].record.key, Value::Struct(k) if k.get("databaseName") == Some(&Value::String("inv".into())))
        );
        let snap = [first[1].clone()];
        assert_eq!(op(&snap[0]), "r");
        db.sql("INSERT INTO inv.customers VALUES (2, 'before', NULL)");
        db.sql("ALTER TABLE inv.customers ADD COLUMN email VARCHAR(64)");
        db.sql("INSERT INTO inv.customers VALUES (3, 'after', NULL, 'c@x.org')");
        let all = poll_n_all(&mut task, 3, Duration::from_secs(30), true).await;
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].record.topic, "shop");
        let alter = value(&all[1]);
        assert!(
            matches!(alter.get("ddl"), Some(Value::String(d)) if d.contains("ADD COLUMN email"))
        );
        let Some(Value::Array(changes)) = alter.get("tableChanges") else {
            panic!("tableChanges")
        };
        let Value::Struct(change) = &changes[0] else {
            panic!("a change")
        };
        assert_eq!(change.get("type"), Some(&Value::String("ALTER".into())));
        let Some(Value::Struct(table)) = change.get("table") else {
            panic!("table")
        };
        let Some(Value::Array(columns)) = table.get("columns") else {
            panic!("columns")
        };
        assert_eq!(columns.len(), 4);
        let ch: Vec<SourceRecord> = all.into_iter().filter(|r| !is_schema_change(r)).collect();
        assert_eq!(ch.len(), 2);
        assert!(row(&ch[0], "after").schema().field("email").is_none());
        assert_eq!(
            row(&ch[1], "after").get("email"),
            Some(&Value::String("c@x.org".into()))
        );
        task.stop().await;

        let history = broker.read_topic("history.shop", 2, Duration::from_secs(20));
        let texts: Vec<serde_json::Value> = history
            .iter()
            .map(|(_, v)| serde_json::from_slice(v.as_ref().unwrap()).unwrap())
            .collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0]["ddl"]
            .as_str()
            .unwrap()
            .starts_with("CREATE TABLE"));
        assert_eq!(texts[0]["databaseName"], "inv");
        assert_eq!(texts[0]["tableChanges"][0]["type"], "CREATE");
        assert_eq!(texts[0]["source"]["server"], "shop");
        assert!(texts[1]["ddl"]
            .as_str()
            .unwrap()
            .contains("ADD COLUMN email"));
        assert_eq!(texts[1]["tableChanges"][0]["type"], "ALTER");
        assert_eq!(texts[1]["tableChanges"][0]["id"], "\"inv\".\"customers\"");

        // Restarted before the ALTER: the older row is decoded with the columns it was
        // written with (from the history), the newer one with the new column.
        let (mut again, _) = start_task(&p, committed(&snap[0]), Some(broker.bootstrap())).await;
        let replay = poll_n(&mut again, 2, Duration::from_secs(30)).await;
        assert_eq!(replay.iter().map(id_of).collect::<Vec<_>>(), [2, 3]);
        assert!(row(&replay[0], "after").schema().field("email").is_none());
        assert_eq!(
            row(&replay[1], "after").get("email"),
            Some(&Value::String("c@x.org".into()))
        );
        again.stop().await;
        // The replayed ALTER is in the history already: not written twice.
        let history = broker.read_topic("history.shop", 3, Duration::from_secs(10));
        assert_eq!(history.len(), 2);

        // snapshot.mode=recovery rewrites the history from the tables as they are now.
        let mut recovery = p.clone();
        recovery.insert("snapshot.mode".into(), "recovery".into());
        let (mut again, _) =
            start_task(&recovery, committed(&replay[1]), Some(broker.bootstrap())).await;
        db.sql("INSERT INTO inv.customers VALUES (4, 'later', NULL, 'd@x.org')");
        let got = poll_n(&mut again, 1, Duration::from_secs(30)).await;
        assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), [4]);
        again.stop().await;
        let history = broker.read_topic("history.shop", 3, Duration::from_secs(20));
        assert_eq!(history.len(), 3);
        let last: serde_json::Value =
            serde_json::from_slice(history[2].1.as_ref().unwrap()).unwrap();
        assert!(last["ddl"].as_str().unwrap().contains("`email`"), "{last}");
    });
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_and_column_filters() {
    let Some((db, _tmp)) = start_db() else { return };
    bounded!(async {
        setup_customers(&db, 1);
        db.sql("CREATE TABLE inv.orders (id INT PRIMARY KEY); INSERT INTO inv.orders VALUES (1)");
        db.sql("ALTER TABLE inv.customers ADD COLUMN status VARCHAR(8) NOT NULL DEFAULT 'new', ADD COLUMN qty INT DEFAULT 5");
        let p = props(
            &db,
            &[
                ("table.include.list", "inv\\.cust.*"),
                ("column.exclude.list", "inv.customers.secret"),
            ],
        );
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        let snap = poll_n(&mut task, 1, Duration::from_secs(30)).await;
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].record.topic, "shop.inv.customers");
        assert!(row(&snap[0], "after").schema().field("secret").is_none());
        assert!(row(&snap[0], "after").schema().field("name").is_some());
        // Literal column defaults are the fields' defaults, as in Debezium.
        let schema = row(&snap[0], "after").schema().clone();
        assert_eq!(
            schema.field("status").unwrap().schema.default,
            Some(Value::String("new".into()))
        );
        assert_eq!(
            schema.field("qty").unwrap().schema.default,
            Some(Value::Int32(5))
        );
        db.sql("INSERT INTO inv.orders VALUES (2); INSERT INTO inv.customers VALUES (2, 'b', 'hidden', 'old', 1)");
        let mut ch = poll_n(&mut task, 1, Duration::from_secs(30)).await;
        ch.extend(poll_for(&mut task, Duration::from_millis(500)).await);
        assert_eq!(ch.len(), 1, "only the customers change");
        assert_eq!(ch[0].record.topic, "shop.inv.customers");
        assert!(row(&ch[0], "after").schema().field("secret").is_none());
        task.stop().await;

        // initial_only: the snapshot and nothing after it; a table without a primary key
        // has null keys.
        db.sql("CREATE TABLE inv.nopk (a INT); INSERT INTO inv.nopk VALUES (1), (2)");
        let p = props(
            &db,
            &[
                ("table.include.list", "inv.nopk"),
                ("snapshot.mode", "initial_only"),
            ],
        );
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        let snap = poll_n(&mut task, 2, Duration::from_secs(30)).await;
        assert_eq!(snap.len(), 2);
        assert!(snap
            .iter()
            .all(|r| r.record.key == Value::Null && r.record.key_schema.is_none()));
        db.sql("INSERT INTO inv.nopk VALUES (3)");
        assert!(poll_for(&mut task, Duration::from_secs(1)).await.is_empty());
        task.stop().await;

        // The MariaDB connector class: the same events, named after MariaDB.
        let (mut task, _) = start_task_as(Flavor::MariaDb, &p, Arc::new(NoOffsets), None).await;
        let snap = poll_n(&mut task, 1, Duration::from_secs(30)).await;
        assert_eq!(
            source_field(&snap[0], "connector"),
            Value::String("mariadb".into())
        );
        let Some(Value::Struct(src)) = value(&snap[0]).get("source") else {
            panic!("source")
        };
        assert_eq!(
            src.schema().name.as_deref(),
            Some("io.debezium.connector.mariadb.Source")
        );
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_types_round_trip_alike_in_snapshot_and_binlog() {
    let Some((db, _tmp)) = start_db() else { return };
    bounded!(async {
        db.sql(
            "CREATE DATABASE inv; CREATE TABLE inv.types (id INT PRIMARY KEY, \
             d DECIMAL(10,2), dt DATETIME, dt6 DATETIME(6), ts TIMESTAMP(3) NULL, b BLOB, \
             j JSON, e ENUM('red','green'), s SET('a','b','c'), u INT UNSIGNED, \
             bu BIGINT UNSIGNED, tu TINYINT UNSIGNED, dd DATE, t TIME(3), y YEAR, \
             b1 BIT(1), b10 BIT(10), f FLOAT, db DOUBLE, bin BINARY(4), \
             lat VARCHAR(8) CHARACTER SET latin1)",
        );
        let values = "(-12345678.91, '2024-02-29 13:14:15', '2024-02-29 13:14:15.123456', \
             '2024-02-29 13:14:15.500', x'00ff10', '{\"k\": [1, 2]}', 'green', 'a,c', 4294967295, \
             18446744073709551615, 255, '1969-12-31', '-01:02:03.250', 2024, b'1', b'1000000001', \
             1.5, 2.25, x'0102', x'E980')";
        db.sql(&format!(
            "SET time_zone = '+00:00'; INSERT INTO inv.types VALUES (1, {})",
            &values[1..values.len() - 1]
        ));
        let p = props(&db, &[]);
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        let snap = poll_n(&mut task, 1, Duration::from_secs(30)).await;
        db.sql(&format!(
            "SET time_zone = '+00:00'; INSERT INTO inv.types VALUES (2, {})",
            &values[1..values.len() - 1]
        ));
        let streamed = poll_n(&mut task, 1, Duration::from_secs(30)).await;
        task.stop().await;
        let a = row(&snap[0], "after");
        let b = row(&streamed[0], "after");
        let expect: Vec<(&str, Value)> = vec![
            ("d", Value::Decimal(-1234567891)),
            ("dt", Value::Int64(1_709_212_455_000)),
            ("dt6", Value::Int64(1_709_212_455_123_456)),
            ("ts", Value::String("2024-02-29T13:14:15.500Z".into())),
            ("b", Value::Bytes(vec![0, 255, 16])),
            ("e", Value::String("green".into())),
            ("s", Value::String("a,c".into())),
            ("u", Value::Int64(4_294_967_295)),
            ("bu", Value::Int64(-1)),
            ("tu", Value::Int16(255)),
            ("dd", Value::Int32(-1)),
            ("t", Value::Int64(-3_723_250_000)),
            ("y", Value::Int32(2024)),
            ("b1", Value::Boolean(true)),
            ("b10", Value::Bytes(vec![0x01, 0x02])),
            ("f", Value::Float32(1.5)),
            ("db", Value::Float64(2.25)),
            ("bin", Value::Bytes(vec![1, 2, 0, 0])),
            ("lat", Value::String("\u{e9}\u{20ac}".into())),
        ];
        for (field, want) in &expect {
            assert_eq!(a.get(field), Some(want), "snapshot {field}");
            assert_eq!(b.get(field), Some(want), "binlog {field}");
        }
        for r in [a, b] {
            let Some(Value::String(j)) = r.get("j") else {
                panic!("json {:?}", r.get("j"))
            };
            let parsed: serde_json::Value = serde_json::from_str(j).unwrap();
            assert_eq!(parsed, serde_json::json!({"k": [1, 2]}));
        }
        let schema = a.schema();
        let name = |f: &str| schema.field(f).unwrap().schema.name.clone();
        assert_eq!(name("j").as_deref(), Some("io.debezium.data.Json"));
        assert_eq!(name("e").as_deref(), Some("io.debezium.data.Enum"));
        assert_eq!(
            name("ts").as_deref(),
            Some("io.debezium.time.ZonedTimestamp")
        );
        assert_eq!(name("dt").as_deref(), Some("io.debezium.time.Timestamp"));
        assert_eq!(
            name("dt6").as_deref(),
            Some("io.debezium.time.MicroTimestamp")
        );
        assert_eq!(name("t").as_deref(), Some("io.debezium.time.MicroTime"));
        assert_eq!(name("dd").as_deref(), Some("io.debezium.time.Date"));
        assert_eq!(name("y").as_deref(), Some("io.debezium.time.Year"));
        assert_eq!(
            schema
                .field("d")
                .unwrap()
                .schema
                .parameters
                .get("connect.decimal.precision")
                .map(String::as_str),
            Some("10")
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_carry_the_binlog_offset_and_a_purged_position_fails_or_resnapshots() {
    let Some((db, _tmp)) = start_db() else { return };
    bounded!(async {
        setup_customers(&db, 1);
        let p = props(&db, &[("heartbeat.interval.ms", "200")]);
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline
            && !got
                .iter()
                .any(|r: &SourceRecord| r.record.topic.starts_with("__debezium-heartbeat"))
        {
            got.extend(task.poll().await.expect("poll"));
        }
        task.stop().await;
        let hb: Vec<&SourceRecord> = got
            .iter()
            .filter(|r| r.record.topic == "__debezium-heartbeat.shop")
            .collect();
        assert!(!hb.is_empty(), "heartbeats: {got:?}");
        assert!(hb[0]
            .source_offset
            .iter()
            .any(|(k, v)| k == "file" && matches!(v, Value::String(_))));
        assert!(
            matches!(&hb[0].record.key, Value::Struct(k) if k.get("serverName") == Some(&Value::String("shop".into())))
        );

        // An offset in a binlog file the server no longer has.
        let mut gone = got[0].clone();
        gone.source_offset = vec![
            ("file".into(), Value::String("binlog.999999".into())),
            ("pos".into(), Value::Int64(4)),
        ];
        let (mut task, _) = start_task(&p, committed(&gone), None).await;
        let err = loop {
            match task.poll().await {
                Err(e) => break e,
                Ok(_) => continue,
            }
        };
        assert!(
            matches!(&err, ConnectError::Fatal(m) if m.contains("binlog.999999") && m.contains("no longer available")),
            "{err}"
        );
        task.stop().await;
        let p = props(&db, &[("snapshot.mode", "when_needed")]);
        let (mut task, _) = start_task(&p, committed(&gone), None).await;
        let snap = poll_n(&mut task, 1, Duration::from_secs(30)).await;
        assert_eq!(snap.iter().map(op).collect::<Vec<_>>(), ["r"]);
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reports_unreachable_servers_and_wrong_binlog_settings() {
    let Some((db, _tmp)) = start_db() else { return };
    bounded!(async {
        let connector = MySqlConnector::default();
        assert!(connector.validate(&props(&db, &[])).await.is_empty());
        assert_eq!(
            MARIADB_PLUGIN.class,
            "io.debezium.connector.mariadb.MariaDbConnector"
        );

        let mut unreachable = props(&db, &[]);
        unreachable.insert("database.port".into(), "1".into());
        let started = Instant::now();
        let errors = connector.validate(&unreachable).await;
        assert!(started.elapsed() < Duration::from_secs(7));
        assert!(
            errors
                .iter()
                .any(|(k, m)| k == "database.hostname" && m.contains("127.0.0.1:1")),
            "{errors:?}"
        );

        let errors = connector
            .validate(&props(&db, &[("message.key.columns", "inv.t:a")]))
            .await;
        assert!(
            errors.iter().any(|(k, _)| k == "message.key.columns"),
            "{errors:?}"
        );

        db.sql("SET GLOBAL binlog_format = 'STATEMENT'");
        let errors = connector.validate(&props(&db, &[])).await;
        assert!(
            errors
                .iter()
                .any(|(k, m)| k == "database.hostname" && m.contains("binlog_format")),
            "{errors:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_binlog_connection_is_reopened_without_loss_or_duplicates() {
    let Some((db, _tmp)) = start_db() else { return };
    bounded!(async {
        setup_customers(&db, 1);
        let p = props(&db, &[]);
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        assert_eq!(poll_n(&mut task, 1, Duration::from_secs(30)).await.len(), 1);
        db.sql("INSERT INTO inv.customers VALUES (2, 'b', NULL)");
        let got = poll_n(&mut task, 1, Duration::from_secs(30)).await;
        assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), [2]);
        // The server drops the replication connection.
        let ids = db
            .sql("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'");
        assert!(!ids.trim().is_empty(), "a binlog dump thread");
        for id in ids.split_whitespace() {
            db.sql(&format!("KILL {id}"));
        }
        db.sql("INSERT INTO inv.customers VALUES (3, 'c', NULL)");
        let mut got = poll_n(&mut task, 1, Duration::from_secs(30)).await;
        db.sql("INSERT INTO inv.customers VALUES (4, 'd', NULL)");
        got.extend(poll_n(&mut task, 1, Duration::from_secs(30)).await);
        got.extend(poll_for(&mut task, Duration::from_millis(500)).await);
        assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), [3, 4]);
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_position_in_the_oldest_binlog_file_warns() {
    let Some((db, _tmp)) = start_db() else { return };
    bounded!(async {
        setup_customers(&db, 1);
        let p = props(&db, &[]);
        let (mut task, status) = start_task(&p, Arc::new(NoOffsets), None).await;
        let snap = poll_n(&mut task, 1, Duration::from_secs(30)).await;
        assert_eq!(snap.len(), 1);
        task.stop().await;
        assert_eq!(status.warning(), None);
        db.sql("FLUSH BINARY LOGS");
        let (mut task, status) = start_task(&p, committed(&snap[0]), None).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while status.warning().is_none() && Instant::now() < deadline {
            task.poll().await.expect("poll");
        }
        let w = status.warning().expect("a retention warning");
        assert!(w.contains("binlog.000001") && w.contains("oldest"), "{w}");
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execute_snapshot_signal_runs_an_incremental_snapshot() {
    let Some((db, _tmp)) = start_db() else { return };
    bounded!(async {
        setup_customers(&db, 10);
        db.sql(
            "CREATE TABLE inv.dbz_signal (id VARCHAR(64) PRIMARY KEY, type VARCHAR(32) NOT NULL, data VARCHAR(2048) NULL)",
        );
        let p = props(
            &db,
            &[
                ("snapshot.mode", "no_data"),
                ("signal.data.collection", "inv.dbz_signal"),
                ("incremental.snapshot.chunk.size", "3"),
                ("table.exclude.list", "inv.dbz_signal"),
                ("heartbeat.interval.ms", "100"),
            ],
        );
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        wait_streaming(&mut task).await;
        db.sql(
            "INSERT INTO inv.dbz_signal VALUES ('sig-1', 'execute-snapshot', '{\"data-collections\": [\"inv.customers\"], \"type\": \"incremental\"}')",
        );
        // Changes while the snapshot runs: the latest state of every row wins.
        db.sql("UPDATE inv.customers SET name = 'changed' WHERE id IN (2, 9)");
        db.sql("DELETE FROM inv.customers WHERE id = 10");
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            got.extend(
                task.poll()
                    .await
                    .expect("poll")
                    .into_iter()
                    .filter(|r| !is_schema_change(r)),
            );
            let reads = got.iter().filter(|r| op(r) == "r").count();
            let changes = got.iter().filter(|r| op(r) != "r").count();
            if reads >= 9 && changes >= 4 {
                break;
            }
        }
        got.extend(poll_for(&mut task, Duration::from_millis(500)).await);
        task.stop().await;
        assert!(got.iter().all(|r| r.record.topic == "shop.inv.customers"));
        let reads: Vec<&SourceRecord> = got.iter().filter(|r| op(r) == "r").collect();
        assert!(reads
            .iter()
            .all(|r| source_field(r, "snapshot") == Value::String("incremental".into())));
        // Every row exactly once at most, and the last event of each id is its final state.
        let mut read_ids: Vec<i32> = reads.iter().map(|r| id_of(r)).collect();
        read_ids.sort();
        let before = read_ids.len();
        read_ids.dedup();
        assert_eq!(before, read_ids.len(), "no row read twice: {read_ids:?}");
        let mut last: HashMap<i32, Option<String>> = HashMap::new();
        for r in &got {
            let state = match op(r).as_str() {
                "d" | "tombstone" => None,
                _ => match row(r, "after").get("name") {
                    Some(Value::String(n)) => Some(n.clone()),
                    other => panic!("name {other:?}"),
                },
            };
            last.insert(id_of(r), state);
        }
        for id in 1..=9 {
            let want = if id == 2 || id == 9 {
                "changed".to_string()
            } else {
                format!("name{id}")
            };
            assert_eq!(last.get(&id), Some(&Some(want)), "id {id}");
        }
        assert_eq!(last.get(&10), Some(&None), "id 10 was deleted");

        // Interrupted mid-table: a restart from the last committed read carries on with
        // the rows after it.
        db.sql("CREATE TABLE inv.items (id INT PRIMARY KEY, name VARCHAR(8))");
        for i in 1..=7 {
            db.sql(&format!("INSERT INTO inv.items VALUES ({i}, 'i{i}')"));
        }
        let (mut task, _) = start_task(&p, Arc::new(NoOffsets), None).await;
        wait_streaming(&mut task).await;
        db.sql(
            "INSERT INTO inv.dbz_signal VALUES ('sig-2', 'execute-snapshot', '{\"data-collections\": [\"inv.items\"]}')",
        );
        let reads = poll_n(&mut task, 7, Duration::from_secs(30)).await;
        task.stop().await;
        assert_eq!(
            reads.iter().map(id_of).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7]
        );
        let (mut again, _) = start_task(&p, committed(&reads[3]), None).await;
        let mut rest = poll_n(&mut again, 3, Duration::from_secs(30)).await;
        rest.extend(poll_for(&mut again, Duration::from_millis(500)).await);
        again.stop().await;
        assert_eq!(rest.iter().map(id_of).collect::<Vec<_>>(), [5, 6, 7]);
        assert!(rest.iter().all(|r| op(r) == "r"));
        // After the last row the offset no longer carries the snapshot.
        assert!(!reads[6]
            .source_offset
            .iter()
            .any(|(k, _)| k.starts_with("incremental_snapshot")));
        assert!(reads[3]
            .source_offset
            .iter()
            .any(|(k, _)| k == "incremental_snapshot_primary_key"));
    });
}
