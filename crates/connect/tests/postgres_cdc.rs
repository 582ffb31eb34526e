//! The PostgreSQL CDC source against a real PostgreSQL (`tests/common/databases.rs`):
//! tasks are driven directly; a restart is a fresh task given the last offset.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::databases::Postgres;
use moldau_connect::config::Props;
use moldau_connect::connector::{
    Connector, OffsetStorageReader, SourceRecord, SourceTask, StatusReporter, TaskContext,
};
use moldau_connect::connectors::postgres::task::PostgresSourceTask;
use moldau_connect::connectors::postgres::PostgresConnector;
use moldau_connect::data::Value;
use moldau_connect::storage::OffsetMap;

const TEST_TIMEOUT: Duration = Duration::from_secs(90);

struct Stored(Option<OffsetMap>);

impl OffsetStorageReader for Stored {
    fn offset(&self, partition: &OffsetMap) -> Option<OffsetMap> {
        assert_eq!(
            partition,
            &vec![("server".to_string(), Value::String("srv".into()))]
        );
        self.0.clone()
    }
}

fn props(pg: &Postgres, extra: &[(&str, &str)]) -> Props {
    let mut p: Props = [
        (
            "connector.class",
            "io.debezium.connector.postgresql.PostgresConnector",
        ),
        ("database.hostname", "127.0.0.1"),
        ("database.user", "postgres"),
        ("database.dbname", "postgres"),
        ("topic.prefix", "srv"),
        ("plugin.name", "pgoutput"),
        ("poll.interval.ms", "50"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    p.insert("database.port".into(), pg.port.to_string());
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    p
}

async fn start(props: &Props, offset: Option<OffsetMap>) -> (PostgresSourceTask, StatusReporter) {
    let status = StatusReporter::default();
    let mut task = PostgresSourceTask::default();
    let ctx = TaskContext {
        connector: "pg".into(),
        task: 0,
        kafka_client_props: Props::new(),
        status: status.clone(),
        offsets: Arc::new(Stored(offset)),
    };
    task.start(props, ctx).await.expect("task starts");
    (task, status)
}

/// Polls until `n` records (heartbeats excluded unless asked) arrived or `within` passed.
async fn poll_n(task: &mut PostgresSourceTask, n: usize, within: Duration) -> Vec<SourceRecord> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        let batch = task.poll().await.expect("poll");
        out.extend(
            batch
                .into_iter()
                .filter(|r| !r.record.topic.starts_with("__debezium-heartbeat")),
        );
    }
    out
}

fn op(r: &SourceRecord) -> Option<String> {
    match r.record.value.get("op") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn field(r: &SourceRecord, row: &str, name: &str) -> Option<Value> {
    r.record.value.get(row).and_then(|v| v.get(name)).cloned()
}

fn source(r: &SourceRecord, name: &str) -> Option<Value> {
    r.record
        .value
        .get("source")
        .and_then(|v| v.get(name))
        .cloned()
}

fn id_of(r: &SourceRecord) -> i32 {
    match r.record.key.get("id") {
        Some(Value::Int32(i)) => *i,
        other => panic!("no id key: {other:?} in {r:?}"),
    }
}

fn slot_flush(pg: &Postgres, slot: &str) -> String {
    pg.sql(
        "postgres",
        &format!("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"),
    )
    .trim()
    .to_string()
}

/// Waits until the server accepts sessions: `Postgres::start` returns once the port
/// listens, which can be before recovery finished ("the database system is starting up").
async fn ready(pg: &Postgres) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio_postgres::connect(&pg.conn_str("postgres"), tokio_postgres::NoTls).await {
            Ok(_) => return,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "PostgreSQL did not become ready: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

macro_rules! bounded {
    ($body:expr) => {
        tokio::time::timeout(TEST_TIMEOUT, $body)
            .await
            .expect("the test finishes in time")
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_streamed_insert_update_delete_with_tombstone() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql(
            "postgres",
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, note varchar(20)); \
             INSERT INTO items VALUES (1, 'one', NULL), (2, 'two', 'x')",
        );
        let p = props(&pg, &[]);
        let (mut task, _) = start(&p, None).await;
        let snap = poll_n(&mut task, 2, Duration::from_secs(20)).await;
        assert_eq!(snap.len(), 2, "{snap:?}");
        assert!(snap.iter().all(|r| op(r).as_deref() == Some("r")));
        assert_eq!(snap[0].record.topic, "srv.public.items");
        assert_eq!(
            source(&snap[0], "snapshot"),
            Some(Value::String("first".into()))
        );
        assert_eq!(
            source(&snap[1], "snapshot"),
            Some(Value::String("last".into()))
        );
        assert_eq!(
            source(&snap[1], "connector"),
            Some(Value::String("postgresql".into()))
        );
        assert_eq!(
            source(&snap[1], "db"),
            Some(Value::String("postgres".into()))
        );
        assert_eq!(
            source(&snap[1], "schema"),
            Some(Value::String("public".into()))
        );
        assert_eq!(
            snap[0].record.key_schema.as_ref().unwrap().name.as_deref(),
            Some("srv.public.items.Key")
        );
        assert_eq!(
            snap[0]
                .record
                .value_schema
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("srv.public.items.Envelope")
        );
        assert_eq!(
            snap[1]
                .source_offset
                .iter()
                .find(|(k, _)| k == "last_snapshot_record")
                .map(|(_, v)| v.clone()),
            Some(Value::Boolean(true))
        );

        pg.sql(
            "postgres",
            "INSERT INTO items VALUES (3, 'three', NULL); \
             UPDATE items SET name = 'uno' WHERE id = 1; DELETE FROM items WHERE id = 2",
        );
        let ev = poll_n(&mut task, 4, Duration::from_secs(20)).await;
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert_eq!(op(&ev[0]).as_deref(), Some("c"));
        assert_eq!(
            field(&ev[0], "after", "name"),
            Some(Value::String("three".into()))
        );
        assert_eq!(
            source(&ev[0], "snapshot"),
            Some(Value::String("false".into()))
        );
        assert!(matches!(source(&ev[0], "lsn"), Some(Value::Int64(l)) if l > 0));
        assert!(matches!(source(&ev[0], "txId"), Some(Value::Int64(_))));
        assert_eq!(op(&ev[1]).as_deref(), Some("u"));
        assert_eq!(
            ev[1].record.value.get("before"),
            Some(&Value::Null),
            "DEFAULT identity"
        );
        assert_eq!(
            field(&ev[1], "after", "name"),
            Some(Value::String("uno".into()))
        );
        assert_eq!(op(&ev[2]).as_deref(), Some("d"));
        assert_eq!(field(&ev[2], "before", "id"), Some(Value::Int32(2)));
        assert_eq!(id_of(&ev[2]), 2);
        assert_eq!(ev[3].record.value, Value::Null, "tombstone");
        assert_eq!(id_of(&ev[3]), 2);

        // REPLICA IDENTITY FULL: the whole old row.
        pg.sql(
            "postgres",
            "ALTER TABLE items REPLICA IDENTITY FULL; UPDATE items SET note = 'n' WHERE id = 3",
        );
        let ev = poll_n(&mut task, 1, Duration::from_secs(20)).await;
        assert_eq!(op(&ev[0]).as_deref(), Some("u"));
        assert_eq!(
            field(&ev[0], "before", "name"),
            Some(Value::String("three".into()))
        );
        assert_eq!(
            field(&ev[0], "after", "note"),
            Some(Value::String("n".into()))
        );
        // A changed primary key: delete (+ tombstone) and create.
        pg.sql("postgres", "UPDATE items SET id = 30 WHERE id = 3");
        let ev = poll_n(&mut task, 3, Duration::from_secs(20)).await;
        let ops: Vec<_> = ev.iter().map(op).collect();
        assert_eq!(ops, vec![Some("d".into()), None, Some("c".into())]);
        let header = |r: &SourceRecord, name: &str| {
            r.record
                .last_header(name)
                .and_then(|h| h.value.get("id").cloned())
        };
        assert_eq!(header(&ev[0], "__debezium.newkey"), Some(Value::Int32(30)));
        assert_eq!(header(&ev[2], "__debezium.oldkey"), Some(Value::Int32(3)));
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_without_commit_rereads_and_the_offset_filters_duplicates() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql("postgres", "CREATE TABLE t (id int PRIMARY KEY, v text)");
        let p = props(&pg, &[("snapshot.mode", "no_data")]);
        let (mut task, _) = start(&p, None).await;
        assert!(poll_n(&mut task, 1, Duration::from_millis(300))
            .await
            .is_empty());
        pg.sql("postgres", "INSERT INTO t VALUES (1, 'a')");
        pg.sql("postgres", "INSERT INTO t VALUES (2, 'b')");
        // COPY writes rows 3..7 as one multi-insert WAL record: five changes of one
        // transaction at one LSN, which the offset tells apart by their count.
        pg.sql("postgres", "COPY t (id) FROM PROGRAM 'seq 3 7'");
        pg.sql("postgres", "INSERT INTO t VALUES (8, 'c')");
        let all = poll_n(&mut task, 8, Duration::from_secs(20)).await;
        let ids: Vec<i32> = all.iter().map(id_of).collect();
        assert_eq!(ids, (1..=8).collect::<Vec<_>>());
        assert_eq!(source(&all[2], "lsn"), source(&all[4], "lsn"), "one LSN");
        task.stop().await; // no commit: the slot did not move

        // A crash after the 4th record (in the middle of the multi-row transaction).
        let offset = all[3].source_offset.clone();
        let (mut task, _) = start(&p, Some(offset)).await;
        let again = poll_n(&mut task, 4, Duration::from_secs(20)).await;
        let ids: Vec<i32> = again.iter().map(id_of).collect();
        assert_eq!(ids, vec![5, 6, 7, 8], "resumed exactly after the offset");
        assert!(poll_n(&mut task, 1, Duration::from_millis(500))
            .await
            .is_empty());
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_commit_continues_and_the_slot_advances() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql("postgres", "CREATE TABLE t (id int PRIMARY KEY)");
        let p = props(&pg, &[("snapshot.mode", "no_data")]);
        let (mut task, _) = start(&p, None).await;
        poll_n(&mut task, 1, Duration::from_millis(300)).await;
        let before = slot_flush(&pg, "debezium");
        pg.sql(
            "postgres",
            "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)",
        );
        pg.sql("postgres", "INSERT INTO t VALUES (3)");
        let got = poll_n(&mut task, 3, Duration::from_secs(20)).await;
        assert_eq!(got.len(), 3);
        task.commit().await.expect("commit");
        let after = slot_flush(&pg, "debezium");
        assert_ne!(before, after, "the slot advanced on commit");
        let offset = got[2].source_offset.clone();
        task.stop().await;

        pg.sql("postgres", "INSERT INTO t VALUES (4)");
        let (mut task, _) = start(&p, Some(offset)).await;
        let got = poll_n(&mut task, 1, Duration::from_secs(20)).await;
        assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), vec![4]);
        assert!(poll_n(&mut task, 1, Duration::from_millis(500))
            .await
            .is_empty());
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_snapshot_resumes_after_the_last_row() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql(
            "postgres",
            "CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY); \
             CREATE TABLE c (x int); \
             INSERT INTO a SELECT g, 'v' FROM generate_series(1, 25) g; \
             INSERT INTO b SELECT g FROM generate_series(1, 25) g; \
             INSERT INTO c SELECT g FROM generate_series(1, 5) g",
        );
        let p = props(
            &pg,
            &[("snapshot.fetch.size", "10"), ("max.batch.size", "10")],
        );
        let (mut task, _) = start(&p, None).await;
        let first = poll_n(&mut task, 15, Duration::from_secs(20)).await;
        assert!(first.len() >= 15 && first.len() <= 20, "{}", first.len());
        assert!(first.iter().all(|r| op(r).as_deref() == Some("r")));
        let offset = first.last().unwrap().source_offset.clone();
        task.stop().await;
        // A change while the connector is down, to a row the snapshot already read.
        pg.sql("postgres", "UPDATE a SET v = 'changed' WHERE id = 1");

        let (mut task, _) = start(&p, Some(offset)).await;
        let rest = poll_n(&mut task, 55 - first.len(), Duration::from_secs(20)).await;
        let reads: Vec<&SourceRecord> = rest
            .iter()
            .filter(|r| op(r).as_deref() == Some("r"))
            .collect();
        assert_eq!(
            reads.len(),
            55 - first.len(),
            "no snapshot row read twice or missed"
        );
        let mut seen: Vec<(String, String)> = first
            .iter()
            .chain(reads.iter().copied())
            .map(|r| {
                (
                    r.record.topic.clone(),
                    format!("{:?}", r.record.value.get("after")),
                )
            })
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 55);
        assert_eq!(
            source(reads.last().unwrap(), "snapshot"),
            Some(Value::String("last".into()))
        );
        // The change made while down streams after the snapshot (never lost).
        let upd = poll_n(&mut task, 1, Duration::from_secs(20)).await;
        assert_eq!(op(&upd[0]).as_deref(), Some("u"));
        assert_eq!(
            field(&upd[0], "after", "v"),
            Some(Value::String("changed".into()))
        );
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_during_the_snapshot_are_neither_lost_nor_duplicated() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql(
            "postgres",
            "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT g FROM generate_series(1, 30) g",
        );
        let p = props(
            &pg,
            &[("snapshot.fetch.size", "10"), ("max.batch.size", "10")],
        );
        let (mut task, _) = start(&p, None).await;
        let mut got = poll_n(&mut task, 5, Duration::from_secs(20)).await;
        // The snapshot transaction is open: these commit after its snapshot.
        pg.sql(
            "postgres",
            "INSERT INTO t VALUES (100); DELETE FROM t WHERE id = 30",
        );
        got.extend(poll_n(&mut task, 30 - got.len() + 3, Duration::from_secs(20)).await);
        let reads = got.iter().filter(|r| op(r).as_deref() == Some("r")).count();
        assert_eq!(reads, 30, "the snapshot saw the table as of its start");
        let ops: Vec<_> = got
            .iter()
            .filter(|r| op(r).as_deref() != Some("r"))
            .map(|r| (op(r), id_of(r)))
            .collect();
        assert_eq!(
            ops,
            vec![(Some("c".into()), 100), (Some("d".into()), 30), (None, 30)]
        );
        assert!(poll_n(&mut task, 1, Duration::from_millis(500))
            .await
            .is_empty());
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_column_shows_in_later_events() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql("postgres", "CREATE TABLE t (id int PRIMARY KEY)");
        let p = props(&pg, &[("snapshot.mode", "no_data")]);
        let (mut task, _) = start(&p, None).await;
        // The first poll creates the slot: no_data streams from then on.
        assert!(poll_n(&mut task, 1, Duration::from_millis(200))
            .await
            .is_empty());
        pg.sql("postgres", "INSERT INTO t VALUES (1)");
        let a = poll_n(&mut task, 1, Duration::from_secs(20)).await;
        assert_eq!(field(&a[0], "after", "extra"), None);
        pg.sql(
            "postgres",
            "ALTER TABLE t ADD COLUMN extra text; INSERT INTO t VALUES (2, 'new')",
        );
        let b = poll_n(&mut task, 1, Duration::from_secs(20)).await;
        assert_eq!(
            field(&b[0], "after", "extra"),
            Some(Value::String("new".into()))
        );
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_dropped_after_the_change_keeps_values_in_place() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql(
            "postgres",
            "CREATE TABLE t (id int PRIMARY KEY, gone text, name text)",
        );
        let p = props(&pg, &[("snapshot.mode", "no_data")]);
        let (mut task, _) = start(&p, None).await;
        assert!(poll_n(&mut task, 1, Duration::from_millis(200))
            .await
            .is_empty());
        // Both are decoded after the DROP: the first with the table as it was.
        pg.sql("postgres", "INSERT INTO t VALUES (1, 'g', 'n')");
        pg.sql(
            "postgres",
            "ALTER TABLE t DROP COLUMN gone; INSERT INTO t VALUES (2, 'm')",
        );
        let ev = poll_n(&mut task, 2, Duration::from_secs(20)).await;
        assert_eq!(
            field(&ev[0], "after", "name"),
            Some(Value::String("n".into()))
        );
        assert_eq!(
            field(&ev[0], "after", "gone"),
            Some(Value::String("g".into()))
        );
        assert_eq!(
            field(&ev[1], "after", "name"),
            Some(Value::String("m".into()))
        );
        assert_eq!(field(&ev[1], "after", "gone"), None);
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_and_column_filters() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql(
            "postgres",
            "CREATE TABLE keep1 (id int PRIMARY KEY, secret text, name text); \
             CREATE TABLE skip1 (id int PRIMARY KEY); \
             INSERT INTO keep1 VALUES (1, 's', 'n'); INSERT INTO skip1 VALUES (1)",
        );
        let p = props(
            &pg,
            &[
                ("table.include.list", "public\\.keep.*"),
                ("column.exclude.list", "public\\.keep1\\.secret"),
                ("publication.autocreate.mode", "filtered"),
            ],
        );
        let (mut task, _) = start(&p, None).await;
        let snap = poll_n(&mut task, 2, Duration::from_secs(5)).await;
        assert_eq!(snap.len(), 1, "{snap:?}");
        assert_eq!(snap[0].record.topic, "srv.public.keep1");
        assert_eq!(field(&snap[0], "after", "secret"), None, "excluded column");
        assert_eq!(
            field(&snap[0], "after", "name"),
            Some(Value::String("n".into()))
        );
        pg.sql(
            "postgres",
            "INSERT INTO skip1 VALUES (2); INSERT INTO keep1 VALUES (2, 's2', 'n2')",
        );
        let ev = poll_n(&mut task, 2, Duration::from_secs(5)).await;
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].record.topic, "srv.public.keep1");
        assert_eq!(field(&ev[0], "after", "secret"), None);
        let tables = pg.sql(
            "postgres",
            "SELECT tablename FROM pg_publication_tables WHERE pubname = 'dbz_publication'",
        );
        assert_eq!(tables.trim(), "keep1", "the filtered publication");
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_map_as_debezium_and_snapshot_equals_stream() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        let ddl = "CREATE TYPE mood AS ENUM ('sad', 'happy'); \
            CREATE TABLE ty (id int PRIMARY KEY, b bool, s int2, i int4, l int8, f4 float4, \
              f8 float8, n numeric(10,2), vn numeric, t text, vc varchar(5), c char(3), \
              by bytea, d date, ts timestamp, ts3 timestamp(3), tz timestamptz, tm time, \
              u uuid, j json, jb jsonb, m mood, arr int[], iv interval, tags text[])";
        let row = "(ID, true, -2, 7, 9000000000, 1.5, 2.25, 12345.67, -1.5, 'text', 'vc', 'ab', \
            '\\x00ff', '2024-02-29', '2024-02-29 12:34:56.123456', '2024-02-29 12:34:56.789', \
            '2024-02-29 12:34:56.5+02', '01:02:03.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', \
            '{\"a\": 1}', '{\"b\": 2}', 'happy', '{1,2}', '1 day 01:00:00.5', ARRAY['a b', NULL, 'c,\"d'])";
        pg.sql("postgres", ddl);
        pg.sql(
            "postgres",
            &format!("INSERT INTO ty VALUES {}", row.replace("ID", "1")),
        );
        let p = props(&pg, &[]);
        let (mut task, _) = start(&p, None).await;
        let snap = poll_n(&mut task, 1, Duration::from_secs(20)).await;
        pg.sql(
            "postgres",
            &format!("INSERT INTO ty VALUES {}", row.replace("ID", "2")),
        );
        let streamed = poll_n(&mut task, 1, Duration::from_secs(20)).await;
        let (a, b) = (&snap[0], &streamed[0]);
        let f = |r: &SourceRecord, n: &str| field(r, "after", n).unwrap_or(Value::Null);
        for name in [
            "b", "s", "i", "l", "f4", "f8", "n", "vn", "t", "vc", "c", "by", "d", "ts", "ts3",
            "tz", "tm", "u", "j", "jb", "m", "arr", "iv", "tags",
        ] {
            assert_eq!(
                f(a, name),
                f(b, name),
                "snapshot and stream agree on {name}"
            );
        }
        assert_eq!(f(a, "b"), Value::Boolean(true));
        assert_eq!(f(a, "s"), Value::Int16(-2));
        assert_eq!(f(a, "l"), Value::Int64(9_000_000_000));
        assert_eq!(f(a, "f4"), Value::Float32(1.5));
        assert_eq!(f(a, "n"), Value::Decimal(1_234_567));
        assert_eq!(f(a, "c"), Value::String("ab ".into()));
        assert_eq!(f(a, "by"), Value::Bytes(vec![0, 255]));
        assert_eq!(f(a, "d"), Value::Int32(19782));
        assert_eq!(f(a, "ts"), Value::Int64(1_709_210_096_123_456));
        assert_eq!(f(a, "ts3"), Value::Int64(1_709_210_096_789));
        assert_eq!(f(a, "tz"), Value::String("2024-02-29T10:34:56.5Z".into()));
        assert_eq!(f(a, "tm"), Value::Int64(3_723_500_000));
        assert_eq!(f(a, "m"), Value::String("happy".into()));
        assert_eq!(
            f(a, "arr"),
            Value::Array(vec![Value::Int32(1), Value::Int32(2)])
        );
        assert_eq!(
            f(a, "tags"),
            Value::Array(vec![
                Value::String("a b".into()),
                Value::Null,
                Value::String("c,\"d".into())
            ])
        );
        assert_eq!(f(a, "iv"), Value::Int64(90_000_500_000));
        let schema = a.record.value_schema.as_ref().unwrap();
        let after = &schema.field("after").unwrap().schema;
        let name_of = |n: &str| after.field(n).unwrap().schema.name.clone();
        assert_eq!(
            name_of("ts").as_deref(),
            Some("io.debezium.time.MicroTimestamp")
        );
        assert_eq!(
            name_of("ts3").as_deref(),
            Some("io.debezium.time.Timestamp")
        );
        assert_eq!(
            name_of("tz").as_deref(),
            Some("io.debezium.time.ZonedTimestamp")
        );
        assert_eq!(name_of("d").as_deref(), Some("io.debezium.time.Date"));
        assert_eq!(name_of("tm").as_deref(), Some("io.debezium.time.MicroTime"));
        assert_eq!(name_of("u").as_deref(), Some("io.debezium.data.Uuid"));
        assert_eq!(name_of("jb").as_deref(), Some("io.debezium.data.Json"));
        assert_eq!(
            name_of("vn").as_deref(),
            Some("io.debezium.data.VariableScaleDecimal")
        );
        assert_eq!(name_of("m").as_deref(), Some("io.debezium.data.Enum"));
        assert_eq!(
            name_of("n").as_deref(),
            Some("org.apache.kafka.connect.data.Decimal")
        );
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_run_the_action_query_and_move_the_slot_of_an_idle_database() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql(
            "postgres",
            "CREATE TABLE hb (id serial PRIMARY KEY, at timestamptz); CREATE TABLE other (id int PRIMARY KEY)",
        );
        let p = props(
            &pg,
            &[
                ("snapshot.mode", "no_data"),
                ("heartbeat.interval.ms", "200"),
                (
                    "heartbeat.action.query",
                    "INSERT INTO hb (at) VALUES (now())",
                ),
                ("table.include.list", "public\\.other"),
            ],
        );
        let (mut task, _) = start(&p, None).await;
        let flush_before = slot_flush(&pg, "debezium");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut beats = Vec::new();
        while beats.len() < 3 && Instant::now() < deadline {
            beats.extend(
                task.poll()
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|r| r.record.topic == "__debezium-heartbeat.srv"),
            );
        }
        assert!(beats.len() >= 3, "heartbeats: {}", beats.len());
        assert_eq!(
            beats[0].record.key.get("serverName"),
            Some(&Value::String("srv".into()))
        );
        let n: i64 = pg
            .sql("postgres", "SELECT count(*) FROM hb")
            .trim()
            .parse()
            .unwrap();
        assert!(n >= 2, "the action query ran {n} times");
        task.commit().await.unwrap();
        assert_ne!(
            slot_flush(&pg, "debezium"),
            flush_before,
            "the idle slot advanced"
        );
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_retaining_too_much_wal_warns() {
    let Some(pg) = Postgres::start_with(&[("max_slot_wal_keep_size", "2MB")]) else {
        return;
    };
    bounded!(async {
        ready(&pg).await;
        pg.sql("postgres", "CREATE TABLE big (id int PRIMARY KEY, v text)");
        let p = props(
            &pg,
            &[
                ("snapshot.mode", "no_data"),
                ("table.include.list", "public\\.nothing"),
            ],
        );
        let (mut task, status) = start(&p, None).await;
        poll_n(&mut task, 1, Duration::from_millis(200)).await;
        assert_eq!(status.warning(), None);
        task.stop().await;
        // WAL the slot retains (nothing commits its offsets).
        pg.sql(
            "postgres",
            "INSERT INTO big SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 3000) g",
        );
        let (mut task, status) = start(&p, None).await;
        poll_n(&mut task, 1, Duration::from_millis(200)).await;
        let w = status.warning().expect("a warning");
        assert!(w.contains("max_slot_wal_keep_size"), "{w}");
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_reports_an_unreachable_server_and_wal_level() {
    let Some(pg) = Postgres::start_with(&[("wal_level", "replica")]) else {
        return;
    };
    bounded!(async {
        ready(&pg).await;
        let connector = PostgresConnector::default();
        let errors = connector.validate(&props(&pg, &[])).await;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "database.hostname");
        assert!(
            errors[0].1.contains("wal_level must be logical"),
            "{errors:?}"
        );

        let mut unreachable = props(&pg, &[]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        unreachable.insert("database.port".into(), port.to_string());
        let started = Instant::now();
        let errors = connector.validate(&unreachable).await;
        assert!(started.elapsed() < Duration::from_secs(7));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "database.hostname");
        assert!(errors[0].1.contains("cannot connect"), "{errors:?}");

        let errors = connector
            .validate(&props(&pg, &[("snapshot.select.statement.overrides", "x")]))
            .await;
        assert_eq!(errors[0].0, "snapshot.select.statement.overrides");

        // A task refuses to run on it too.
        let (mut task, _) = start(&props(&pg, &[]), None).await;
        let e = task.poll().await.unwrap_err();
        assert!(e.to_string().contains("wal_level"), "{e}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_events_when_not_skipped() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql(
            "postgres",
            "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY)",
        );
        let p = props(
            &pg,
            &[("snapshot.mode", "no_data"), ("skipped.operations", "none")],
        );
        let (mut task, _) = start(&p, None).await;
        assert!(poll_n(&mut task, 1, Duration::from_millis(200))
            .await
            .is_empty());
        pg.sql(
            "postgres",
            "INSERT INTO t VALUES (1); TRUNCATE t, u; INSERT INTO u VALUES (1)",
        );
        let ev = poll_n(&mut task, 4, Duration::from_secs(20)).await;
        let got: Vec<_> = ev.iter().map(|r| (op(r), r.record.topic.clone())).collect();
        assert_eq!(
            got,
            vec![
                (Some("c".into()), "srv.public.t".into()),
                (Some("t".into()), "srv.public.t".into()),
                (Some("t".into()), "srv.public.u".into()),
                (Some("c".into()), "srv.public.u".into()),
            ]
        );
        assert_eq!(ev[1].record.key, Value::Null);
        task.stop().await;

        // By default (Debezium: skipped.operations=t) truncates are not emitted.
        let p = props(&pg, &[("snapshot.mode", "no_data"), ("slot.name", "other")]);
        let (mut task, _) = start(&p, None).await;
        assert!(poll_n(&mut task, 1, Duration::from_millis(200))
            .await
            .is_empty());
        pg.sql("postgres", "TRUNCATE t; INSERT INTO t VALUES (5)");
        let ev = poll_n(&mut task, 2, Duration::from_secs(3)).await;
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(op(&ev[0]).as_deref(), Some("c"));
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_slot_fails_clearly_or_resnapshots_when_needed() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql(
            "postgres",
            "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)",
        );
        let p = props(&pg, &[]);
        let (mut task, _) = start(&p, None).await;
        let snap = poll_n(&mut task, 1, Duration::from_secs(20)).await;
        let offset = snap[0].source_offset.clone();
        task.stop().await;
        pg.sql("postgres", "SELECT pg_drop_replication_slot('debezium')");

        let (mut task, _) = start(&p, Some(offset.clone())).await;
        let e = task.poll().await.unwrap_err();
        assert!(!e.is_retriable());
        assert!(
            e.to_string()
                .contains("replication slot debezium does not exist"),
            "{e}"
        );
        task.stop().await;

        let p = props(&pg, &[("snapshot.mode", "when_needed")]);
        let (mut task, _) = start(&p, Some(offset)).await;
        let again = poll_n(&mut task, 1, Duration::from_secs(20)).await;
        assert_eq!(op(&again[0]).as_deref(), Some("r"), "a new snapshot");
        pg.sql("postgres", "INSERT INTO t VALUES (2)");
        let ev = poll_n(&mut task, 1, Duration::from_secs(20)).await;
        assert_eq!(id_of(&ev[0]), 2);
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_in_the_middle_of_a_transaction_loses_nothing() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql("postgres", "CREATE TABLE t (id int PRIMARY KEY)");
        let p = props(
            &pg,
            &[("snapshot.mode", "no_data"), ("max.batch.size", "3")],
        );
        let (mut task, _) = start(&p, None).await;
        assert!(poll_n(&mut task, 1, Duration::from_millis(200))
            .await
            .is_empty());
        pg.sql("postgres", "INSERT INTO t VALUES (1)");
        pg.sql(
            "postgres",
            "INSERT INTO t SELECT g FROM generate_series(2, 9) g",
        );
        // Batches of at most 3: the last one returned ends inside the big transaction;
        // the slot moves to that transaction's commit LSN, decoded again after a restart.
        let first = poll_n(&mut task, 3, Duration::from_secs(20)).await;
        let last = id_of(first.last().unwrap());
        assert!(first.len() <= 4 && last < 9, "{}", first.len());
        assert_eq!(
            first.iter().map(id_of).collect::<Vec<_>>(),
            (1..=last).collect::<Vec<_>>()
        );
        task.commit().await.unwrap();
        let offset = first.last().unwrap().source_offset.clone();
        let commit_lsn = offset
            .iter()
            .find_map(|(k, v)| match (k.as_str(), v) {
                ("lsn_commit", Value::Int64(l)) => Some(*l as u64),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            slot_flush(&pg, "debezium"),
            format!("{:X}/{:X}", commit_lsn >> 32, commit_lsn & 0xFFFF_FFFF),
            "the slot stands at the partly emitted transaction's commit"
        );
        task.stop().await;
        let (mut task, _) = start(&p, Some(offset)).await;
        let rest = poll_n(&mut task, (9 - last) as usize, Duration::from_secs(20)).await;
        assert_eq!(
            rest.iter().map(id_of).collect::<Vec<_>>(),
            (last + 1..=9).collect::<Vec<_>>()
        );
        assert!(poll_n(&mut task, 1, Duration::from_millis(300))
            .await
            .is_empty());
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_slot_fails_with_a_clear_message() {
    let Some(pg) = Postgres::start_with(&[
        ("max_slot_wal_keep_size", "1MB"),
        ("min_wal_size", "32MB"),
        ("max_wal_size", "64MB"),
    ]) else {
        return;
    };
    bounded!(async {
        ready(&pg).await;
        pg.sql("postgres", "CREATE TABLE big (id int PRIMARY KEY, v text)");
        let p = props(&pg, &[("snapshot.mode", "no_data")]);
        let (mut task, _) = start(&p, None).await;
        assert!(poll_n(&mut task, 1, Duration::from_millis(200))
            .await
            .is_empty());
        let offset = vec![
            ("lsn_commit".to_string(), Value::Int64(1)),
            ("lsn".to_string(), Value::Int64(1)),
        ];
        task.stop().await;
        for i in 0..4 {
            pg.sql(
                "postgres",
                &format!(
                    "INSERT INTO big SELECT g + {i} * 100000, repeat(md5(g::text), 30) FROM generate_series(1, 2000) g; \
                     SELECT pg_switch_wal()"
                ),
            );
        }
        pg.sql("postgres", "CHECKPOINT");
        let status = pg.sql(
            "postgres",
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'debezium'",
        );
        if status.trim() != "lost" {
            eprintln!("SKIPPED: the slot was not lost here ({})", status.trim());
            return;
        }
        let (mut task, _) = start(&p, Some(offset)).await;
        let e = task.poll().await.unwrap_err();
        assert!(!e.is_retriable());
        assert!(e.to_string().contains("was lost"), "{e}");
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_only_snapshots_without_a_slot_and_slot_drop_on_stop_drops_it() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql(
            "postgres",
            "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)",
        );
        let p = props(&pg, &[("snapshot.mode", "initial_only")]);
        let (mut task, _) = start(&p, None).await;
        let snap = poll_n(&mut task, 2, Duration::from_secs(20)).await;
        assert_eq!(snap.iter().map(id_of).collect::<Vec<_>>(), vec![1, 2]);
        pg.sql("postgres", "INSERT INTO t VALUES (3)");
        assert!(poll_n(&mut task, 1, Duration::from_millis(300))
            .await
            .is_empty());
        assert_eq!(
            pg.sql("postgres", "SELECT count(*) FROM pg_replication_slots")
                .trim(),
            "0"
        );
        task.stop().await;

        let p = props(&pg, &[("slot.drop.on.stop", "true")]);
        let (mut task, _) = start(&p, None).await;
        assert_eq!(poll_n(&mut task, 3, Duration::from_secs(20)).await.len(), 3);
        assert_eq!(
            pg.sql(
                "postgres",
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'debezium'"
            )
            .trim(),
            "1"
        );
        task.stop().await;
        assert_eq!(
            pg.sql("postgres", "SELECT count(*) FROM pg_replication_slots")
                .trim(),
            "0"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_written_before_set_not_null_streams_as_null() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql("postgres", "CREATE TABLE t (id int PRIMARY KEY, v text)");
        let p = props(
            &pg,
            &[
                ("snapshot.mode", "no_data"),
                ("publication.name", "Mixed Case"),
            ],
        );
        let (mut task, _) = start(&p, None).await;
        assert!(poll_n(&mut task, 1, Duration::from_millis(200))
            .await
            .is_empty());
        pg.sql("postgres", "INSERT INTO t VALUES (1, NULL)");
        pg.sql(
            "postgres",
            "UPDATE t SET v = 'x'; ALTER TABLE t ALTER COLUMN v SET NOT NULL",
        );
        let ev = poll_n(&mut task, 2, Duration::from_secs(20)).await;
        assert_eq!(field(&ev[0], "after", "v"), Some(Value::Null));
        assert_eq!(field(&ev[1], "after", "v"), Some(Value::String("x".into())));
        task.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_retriable_and_resumes_without_duplicates() {
    let Some(pg) = Postgres::start() else { return };
    bounded!(async {
        ready(&pg).await;
        pg.sql(
            "postgres",
            "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT g FROM generate_series(1, 5) g",
        );
        let p = props(
            &pg,
            &[("snapshot.fetch.size", "2"), ("max.batch.size", "2")],
        );
        let (mut task, _) = start(&p, None).await;
        let mut got = task.poll().await.unwrap();
        let kill = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                    WHERE application_name = 'moldau-connect-postgres'";
        // In the middle of the snapshot, then while streaming.
        pg.sql("postgres", kill);
        let mut errors = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut killed_streaming = false;
        while Instant::now() < deadline && got.len() < 8 {
            match task.poll().await {
                Ok(batch) => got.extend(batch),
                Err(e) => {
                    assert!(e.is_retriable(), "{e}");
                    errors += 1;
                }
            }
            if got.len() >= 5 && !killed_streaming {
                pg.sql("postgres", "INSERT INTO t VALUES (6)");
                let _ = poll_n(&mut task, 0, Duration::ZERO).await;
                got.extend(task.poll().await.unwrap_or_default());
                pg.sql("postgres", kill);
                pg.sql(
                    "postgres",
                    "INSERT INTO t VALUES (7); INSERT INTO t VALUES (8)",
                );
                killed_streaming = true;
            }
        }
        assert!(errors >= 1, "the kills were noticed");
        let ids: Vec<i32> = got
            .iter()
            .filter(|r| r.record.value != Value::Null)
            .map(id_of)
            .collect();
        assert_eq!(ids, (1..=8).collect::<Vec<_>>());
        task.stop().await;
    });
}
