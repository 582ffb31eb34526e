//! The JDBC sink against real databases: SQLite (a temporary file), PostgreSQL and MariaDB
//! (servers started in temporary directories by `common::databases`). Each database runs
//! the same scenarios, driving the connector and its task directly with Connect records.

// common is shared test support, formatted and linted on its own terms.
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::databases::{MariaDb, Postgres};
use moldau_connect::config::Props;
use moldau_connect::connector::{
    ConnectError, Connector, NoOffsets, SinkTask, StatusReporter, TaskContext,
};
use moldau_connect::connectors::jdbc::{JdbcSinkConnector, JdbcSinkTask, PLUGIN};
use moldau_connect::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use moldau_connect::record::ConnectRecord;

/// Reads rows back as text.
type Query = Box<dyn Fn(&str) -> Vec<Vec<String>>>;

/// A database under test: its JDBC URL and a way to read rows back (as text).
struct Target {
    name: &'static str,
    url: String,
    query: Query,
    /// Crashes the server (None for SQLite).
    kill: Option<Box<dyn Fn()>>,
}

impl Target {
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        (self.query)(sql)
    }
}

fn ctx() -> TaskContext {
    TaskContext {
        connector: "jdbc-sink".into(),
        task: 0,
        kafka_client_props: Props::new(),
        status: StatusReporter::default(),
        offsets: Arc::new(NoOffsets),
    }
}

fn props(url: &str, extra: &[(&str, &str)]) -> Props {
    let mut p = Props::new();
    p.insert("connection.url".into(), url.into());
    // Keep failures quick in tests.
    p.insert("connection.attempts".into(), "1".into());
    p.insert("connection.backoff.ms".into(), "100".into());
    p.insert("retry.backoff.ms".into(), "100".into());
    p.insert("max.retries".into(), "1".into());
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    p
}

async fn started(props: &Props) -> JdbcSinkTask {
    let mut task = JdbcSinkTask::default();
    task.start(props, ctx()).await.expect("task starts");
    task
}

fn person_v1() -> SchemaRef {
    SchemaBuilder::struct_builder()
        .name("person")
        .field("id", Schema::primitive(Type::Int64, false))
        .unwrap()
        .field("name", Schema::primitive(Type::String, true))
        .unwrap()
        .field("tiny", Schema::primitive(Type::Int8, true))
        .unwrap()
        .field("price", SchemaBuilder::decimal(2).optional().build())
        .unwrap()
        .field("born", SchemaBuilder::date().optional().build())
        .unwrap()
        .field("seen", SchemaBuilder::timestamp().optional().build())
        .unwrap()
        .field("ok", Schema::primitive(Type::Boolean, true))
        .unwrap()
        .field("payload", Schema::primitive(Type::Bytes, true))
        .unwrap()
        .build()
}

/// v1 and an optional `email`.
fn person_v2() -> SchemaRef {
    let mut b = SchemaBuilder::struct_builder().name("person");
    for f in &person_v1().fields {
        b = b.field(f.name.clone(), f.schema.clone()).unwrap();
    }
    b.field("email", Schema::primitive(Type::String, true))
        .unwrap()
        .build()
}

fn person(schema: &SchemaRef, id: i64, name: &str) -> Value {
    let mut s = Struct::new(schema.clone()).unwrap();
    s.put("id", Value::Int64(id)).unwrap();
    s.put("name", Value::String(name.into())).unwrap();
    s.put("tiny", Value::Int8(-3)).unwrap();
    s.put("price", Value::Decimal(1234)).unwrap();
    // 2024-01-02 and 2024-01-02T03:04:05.123Z.
    s.put("born", Value::Date(19724)).unwrap();
    s.put("seen", Value::Timestamp(1_704_164_645_123)).unwrap();
    s.put("ok", Value::Boolean(true)).unwrap();
    s.put("payload", Value::Bytes(vec![0, 1, 255])).unwrap();
    if schema.field("email").is_some() {
        s.put("email", Value::String(format!("{name}@example.com")))
            .unwrap();
    }
    Value::Struct(s)
}

fn record(topic: &str, offset: i64, id: i64, value: Option<(&SchemaRef, &str)>) -> ConnectRecord {
    ConnectRecord {
        topic: topic.into(),
        partition: Some(0),
        key_schema: Some(Schema::primitive(Type::Int64, false)),
        key: Value::Int64(id),
        value_schema: value.map(|(s, _)| s.clone()),
        value: value.map_or(Value::Null, |(s, name)| person(s, id, name)),
        timestamp: None,
        headers: Vec::new(),
        kafka_offset: Some(offset),
    }
}

async fn write(task: &mut JdbcSinkTask, records: Vec<ConnectRecord>) -> Result<(), ConnectError> {
    task.put(records).await?;
    task.flush(&[]).await
}

fn fatal(result: Result<(), ConnectError>) -> String {
    match result {
        Err(ConnectError::Fatal(m)) => m,
        other => panic!("expected a fatal error, got {other:?}"),
    }
}

/// `id,name` rows of a table, ordered by id.
fn names(t: &Target, table: &str) -> Vec<(String, String)> {
    t.rows(&format!("SELECT id, name FROM {table} ORDER BY id"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

fn pairs(items: &[(i64, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(i, n)| (i.to_string(), n.to_string()))
        .collect()
}

async fn insert_with_auto_create(t: &Target) {
    let p = props(
        &t.url,
        &[
            ("auto.create", "true"),
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
        ],
    );
    let mut task = started(&p).await;
    let v1 = person_v1();
    write(
        &mut task,
        vec![
            record("t_insert", 0, 2, Some((&v1, "bea"))),
            record("t_insert", 1, 1, Some((&v1, "ann"))),
        ],
    )
    .await
    .expect("insert");
    assert_eq!(
        names(t, "t_insert"),
        pairs(&[(1, "ann"), (2, "bea")]),
        "{}",
        t.name
    );
    let row = &t.rows("SELECT tiny, price, born, seen FROM t_insert WHERE id = 1")[0];
    assert_eq!(row[0], "-3", "{}", t.name);
    assert_eq!(row[1], "12.34", "{}", t.name);
    assert_eq!(row[2], "2024-01-02", "{}", t.name);
    assert_eq!(row[3], "2024-01-02 03:04:05.123", "{}", t.name);
    // Inserting an existing key again is an error in insert mode (no silent overwrite).
    let err = fatal(
        write(
            &mut task,
            vec![record("t_insert", 2, 1, Some((&v1, "again")))],
        )
        .await,
    );
    assert!(
        err.contains("topic='t_insert',partition=0,offset=2"),
        "{}: {err}",
        t.name
    );
    task.stop().await;
}

async fn upsert_is_idempotent(t: &Target) {
    let p = props(
        &t.url,
        &[
            ("auto.create", "true"),
            ("insert.mode", "upsert"),
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
            ("batch.size", "2"),
        ],
    );
    let mut task = started(&p).await;
    let v1 = person_v1();
    let batch = vec![
        record("t_upsert", 0, 1, Some((&v1, "first"))),
        record("t_upsert", 1, 2, Some((&v1, "other"))),
        record("t_upsert", 2, 1, Some((&v1, "last"))),
    ];
    write(&mut task, batch.clone()).await.expect("upsert");
    assert_eq!(
        names(t, "t_upsert"),
        pairs(&[(1, "last"), (2, "other")]),
        "{}",
        t.name
    );
    // The worker redelivers the whole batch (say, after a crash before the offset commit).
    write(&mut task, batch).await.expect("redelivery");
    assert_eq!(
        names(t, "t_upsert"),
        pairs(&[(1, "last"), (2, "other")]),
        "{}",
        t.name
    );
    task.stop().await;
}

async fn update_mode_changes_existing_rows_only(t: &Target) {
    let create = props(
        &t.url,
        &[
            ("auto.create", "true"),
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
        ],
    );
    let v1 = person_v1();
    let mut task = started(&create).await;
    write(
        &mut task,
        vec![record("t_update", 0, 1, Some((&v1, "old")))],
    )
    .await
    .expect("insert");
    task.stop().await;
    let update = props(
        &t.url,
        &[
            ("insert.mode", "update"),
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
        ],
    );
    let mut task = started(&update).await;
    write(
        &mut task,
        vec![
            record("t_update", 1, 1, Some((&v1, "new"))),
            record("t_update", 2, 3, Some((&v1, "absent"))),
        ],
    )
    .await
    .expect("update");
    assert_eq!(names(t, "t_update"), pairs(&[(1, "new")]), "{}", t.name);
    task.stop().await;
}

async fn tombstones_delete_by_key(t: &Target) {
    let p = props(
        &t.url,
        &[
            ("auto.create", "true"),
            ("insert.mode", "upsert"),
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
            ("delete.enabled", "true"),
        ],
    );
    let v1 = person_v1();
    let mut task = started(&p).await;
    write(
        &mut task,
        vec![
            record("t_delete", 0, 1, Some((&v1, "gone"))),
            record("t_delete", 1, 2, Some((&v1, "kept"))),
            record("t_delete", 2, 1, None),
        ],
    )
    .await
    .expect("upserts and a delete");
    assert_eq!(names(t, "t_delete"), pairs(&[(2, "kept")]), "{}", t.name);
    task.stop().await;

    // Without delete.enabled a tombstone is an error, as in Confluent.
    let p = props(&t.url, &[("pk.mode", "record_key"), ("pk.fields", "id")]);
    let mut task = started(&p).await;
    let err = fatal(write(&mut task, vec![record("t_delete", 3, 2, None)]).await);
    assert!(
        err.contains("null value") && err.contains("offset=3"),
        "{err}"
    );
}

async fn auto_evolve_adds_optional_columns(t: &Target) {
    let p = props(
        &t.url,
        &[
            ("auto.create", "true"),
            ("auto.evolve", "true"),
            ("insert.mode", "upsert"),
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
        ],
    );
    let (v1, v2) = (person_v1(), person_v2());
    let mut task = started(&p).await;
    write(
        &mut task,
        vec![record("t_evolve", 0, 1, Some((&v1, "before")))],
    )
    .await
    .expect("v1");
    write(
        &mut task,
        vec![record("t_evolve", 1, 2, Some((&v2, "after")))],
    )
    .await
    .expect("v2 adds email");
    let rows = t.rows("SELECT id, email FROM t_evolve ORDER BY id");
    assert_eq!(
        rows[1],
        vec!["2".to_string(), "after@example.com".to_string()],
        "{}",
        t.name
    );
    assert!(
        rows[0][1].is_empty() || rows[0][1] == "NULL",
        "{}: {:?}",
        t.name,
        rows[0]
    );

    // A required field without a default cannot be added to existing rows.
    let v3 = SchemaBuilder::struct_builder()
        .field("id", Schema::primitive(Type::Int64, false))
        .unwrap()
        .field("must", Schema::primitive(Type::Int32, false))
        .unwrap()
        .build();
    let mut s = Struct::new(v3.clone()).unwrap();
    s.put("id", Value::Int64(3)).unwrap();
    s.put("must", Value::Int32(1)).unwrap();
    let mut r = record("t_evolve", 2, 3, None);
    r.value_schema = Some(v3);
    r.value = Value::Struct(s);
    let err = fatal(write(&mut task, vec![r]).await);
    assert!(
        err.contains("must") && err.contains("not optional") && err.contains("offset=2"),
        "{err}"
    );

    // Without auto.evolve the missing column is an error naming it.
    let p = props(
        &t.url,
        &[
            ("insert.mode", "upsert"),
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
        ],
    );
    let mut task = started(&p).await;
    let mut v4 = SchemaBuilder::struct_builder();
    for f in &person_v2().fields {
        v4 = v4.field(f.name.clone(), f.schema.clone()).unwrap();
    }
    let v4 = v4
        .field("phone", Schema::primitive(Type::String, true))
        .unwrap()
        .build();
    let err = fatal(write(&mut task, vec![record("t_evolve", 3, 4, Some((&v4, "x")))]).await);
    assert!(
        err.contains("phone") && err.contains("auto-evolution is disabled"),
        "{err}"
    );
}

async fn kafka_coordinates_as_key(t: &Target) {
    let p = props(
        &t.url,
        &[
            ("auto.create", "true"),
            ("insert.mode", "upsert"),
            ("pk.mode", "kafka"),
        ],
    );
    let v1 = person_v1();
    let mut task = started(&p).await;
    let batch = vec![
        record("t_kafka", 10, 1, Some((&v1, "ten"))),
        record("t_kafka", 11, 1, Some((&v1, "eleven"))),
    ];
    write(&mut task, batch.clone()).await.expect("kafka keys");
    write(&mut task, batch).await.expect("redelivery");
    let rows = t.rows(
        "SELECT __connect_topic, __connect_partition, __connect_offset, name FROM t_kafka \
         ORDER BY __connect_offset",
    );
    assert_eq!(
        rows,
        vec![
            vec!["t_kafka".to_string(), "0".into(), "10".into(), "ten".into()],
            vec![
                "t_kafka".to_string(),
                "0".into(),
                "11".into(),
                "eleven".into()
            ],
        ],
        "{}",
        t.name
    );
}

async fn record_value_keys_unquoted_names_and_table_format(t: &Target) {
    let p = props(
        &t.url,
        &[
            ("auto.create", "true"),
            ("auto.evolve", "true"),
            ("insert.mode", "upsert"),
            ("pk.mode", "record_value"),
            ("pk.fields", "id"),
            ("quote.sql.identifiers", "never"),
            ("table.name.format", "sink_${topic}"),
        ],
    );
    let (v1, v2) = (person_v1(), person_v2());
    let mut task = started(&p).await;
    write(&mut task, vec![record("T_Mixed", 0, 1, Some((&v1, "one")))])
        .await
        .expect("created unquoted");
    task.stop().await;
    // A new task reads the table back (PostgreSQL folded the unquoted name to lower case).
    let mut task = started(&p).await;
    write(
        &mut task,
        vec![
            record("T_Mixed", 1, 1, Some((&v2, "uno"))),
            record("T_Mixed", 2, 2, Some((&v2, "two"))),
        ],
    )
    .await
    .expect("evolved and upserted");
    assert_eq!(
        names(t, "sink_T_Mixed"),
        pairs(&[(1, "uno"), (2, "two")]),
        "{}",
        t.name
    );
}

async fn timestamps_follow_db_timezone(t: &Target) {
    let p = props(
        &t.url,
        &[
            ("auto.create", "true"),
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
            ("db.timezone", "+02:00"),
        ],
    );
    let v1 = person_v1();
    let mut task = started(&p).await;
    write(&mut task, vec![record("t_tz", 0, 1, Some((&v1, "tz")))])
        .await
        .expect("insert");
    // 03:04:05.123 UTC is 05:04:05.123 at +02:00; dates have no zone.
    let row = &t.rows("SELECT seen, born FROM t_tz")[0];
    assert_eq!(row[0], "2024-01-02 05:04:05.123", "{}", t.name);
    assert_eq!(row[1], "2024-01-02", "{}", t.name);
}

async fn bad_records_fail_naming_them(t: &Target) {
    let p = props(&t.url, &[("auto.create", "true")]);
    let mut task = started(&p).await;
    let mut r = ConnectRecord::new(
        "t_bad",
        Some(Schema::primitive(Type::String, false)),
        Value::String("not a struct".into()),
    );
    r.partition = Some(4);
    r.kafka_offset = Some(7);
    let err = fatal(write(&mut task, vec![r]).await);
    assert!(err.contains("topic='t_bad',partition=4,offset=7"), "{err}");
    assert!(err.contains("non-Struct"), "{err}");

    // A value that does not fit an existing column (text into an integer column).
    let p = props(&t.url, &[("pk.mode", "record_key"), ("pk.fields", "id")]);
    let mut task = started(&p).await;
    let wrong = SchemaBuilder::struct_builder()
        .field("id", Schema::primitive(Type::Int64, false))
        .unwrap()
        .field("tiny", Schema::primitive(Type::String, false))
        .unwrap()
        .build();
    let mut s = Struct::new(wrong.clone()).unwrap();
    s.put("id", Value::Int64(9)).unwrap();
    s.put("tiny", Value::String("many".into())).unwrap();
    let mut r = record("t_insert", 42, 9, None);
    r.value_schema = Some(wrong);
    r.value = Value::Struct(s);
    match write(&mut task, vec![r]).await {
        // SQLite's columns take any value (type affinity); the others refuse.
        Ok(()) => assert_eq!(t.name, "sqlite"),
        Err(e) => {
            let m = fatal(Err(e));
            assert!(m.contains("offset=42"), "{}: {m}", t.name);
        }
    }
}

async fn lost_database_is_retriable_then_fatal(t: &Target) {
    let Some(kill) = &t.kill else { return };
    let p = props(
        &t.url,
        &[
            ("insert.mode", "upsert"),
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
        ],
    );
    let v1 = person_v1();
    let mut task = started(&p).await;
    write(
        &mut task,
        vec![record("t_upsert", 20, 5, Some((&v1, "before crash")))],
    )
    .await
    .expect("connected");
    kill();
    let batch = vec![record("t_upsert", 21, 5, Some((&v1, "after crash")))];
    // max.retries=1: one retriable failure for the worker to redeliver, then the task fails.
    // (A PostgreSQL backend may serve a moment longer than its killed postmaster.)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match write(&mut task, batch.clone()).await {
            Err(ConnectError::Retriable(m)) => {
                eprintln!("{}: retriable: {m}", t.name);
                break;
            }
            Ok(()) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("{}: expected a retriable error, got {other:?}", t.name),
        }
    }
    let err = fatal(write(&mut task, batch).await);
    assert!(err.contains("after 1 retries"), "{}: {err}", t.name);
}

async fn run_all(t: &Target) {
    let started = Instant::now();
    insert_with_auto_create(t).await;
    upsert_is_idempotent(t).await;
    update_mode_changes_existing_rows_only(t).await;
    tombstones_delete_by_key(t).await;
    auto_evolve_adds_optional_columns(t).await;
    kafka_coordinates_as_key(t).await;
    record_value_keys_unquoted_names_and_table_format(t).await;
    timestamps_follow_db_timezone(t).await;
    bad_records_fail_naming_them(t).await;
    lost_database_is_retriable_then_fatal(t).await;
    eprintln!("{}: all scenarios in {:?}", t.name, started.elapsed());
}

async fn bounded(t: &Target) {
    common::init_tracing();
    // A server listening may still be starting up: wait until it takes connections.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let errors = JdbcSinkConnector::default()
            .validate(&props(&t.url, &[]))
            .await;
        if errors.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{}: {errors:?}", t.name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::timeout(Duration::from_secs(180), run_all(t))
        .await
        .expect("scenarios finish within 3 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sink() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sink.db");
    let query_path = path.clone();
    let target = Target {
        name: "sqlite",
        url: format!("jdbc:sqlite:{}", path.display()),
        query: Box::new(move |sql| {
            use rusqlite::types::ValueRef;
            let conn = rusqlite::Connection::open(&query_path).unwrap();
            let mut stmt = conn.prepare(sql).unwrap();
            let n = stmt.column_count();
            stmt.query_map([], |row| {
                Ok((0..n)
                    .map(|i| match row.get_ref(i).unwrap() {
                        ValueRef::Null => String::new(),
                        ValueRef::Integer(v) => v.to_string(),
                        ValueRef::Real(v) => v.to_string(),
                        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                        ValueRef::Blob(b) => format!("{b:?}"),
                    })
                    .collect())
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        }),
        kill: None,
    };
    bounded(&target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sink() {
    let Some(db) = Postgres::start() else { return };
    let url = format!(
        "jdbc:postgresql://127.0.0.1:{}/postgres?user=postgres",
        db.port
    );
    let db = Arc::new(Mutex::new(db));
    let killer = db.clone();
    let target = Target {
        name: "postgres",
        url,
        query: Box::new(move |sql| {
            db.lock()
                .unwrap()
                .sql("postgres", sql)
                .lines()
                .map(|l| l.split('|').map(str::to_string).collect())
                .collect()
        }),
        kill: Some(Box::new(move || killer.lock().unwrap().kill())),
    };
    bounded(&target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_sink() {
    let Some(db) = MariaDb::start() else { return };
    db.sql("CREATE DATABASE sink");
    let url = format!("jdbc:mariadb://127.0.0.1:{}/sink?user=root", db.port);
    let db = Arc::new(Mutex::new(db));
    let killer = db.clone();
    let target = Target {
        name: "mariadb",
        url,
        query: Box::new(move |sql| {
            db.lock()
                .unwrap()
                .sql(&format!("USE sink; {sql}"))
                .lines()
                .map(|l| l.split('\t').map(str::to_string).collect())
                .collect()
        }),
        kill: Some(Box::new(move || killer.lock().unwrap().kill())),
    };
    bounded(&target).await;
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn validate_reports_unreachable_databases_and_bad_combinations() {
    assert_eq!(PLUGIN.class, "io.confluent.connect.jdbc.JdbcSinkConnector");
    assert!(PLUGIN.new_sink_task.is_some());
    let connector = JdbcSinkConnector::default();
    let port = closed_port();
    for url in [
        format!("jdbc:postgresql://127.0.0.1:{port}/db?user=u"),
        format!("jdbc:mysql://127.0.0.1:{port}/db?user=u"),
        "jdbc:sqlite:/nonexistent-dir/for/sure/x.db".to_string(),
    ] {
        let started = Instant::now();
        let errors = connector.validate(&props(&url, &[])).await;
        assert!(started.elapsed() < Duration::from_secs(7), "bounded: {url}");
        assert!(
            errors
                .iter()
                .any(|(k, m)| k == "connection.url" && m.contains("Could not connect")),
            "{url}: {errors:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("jdbc:sqlite:{}", dir.path().join("ok.db").display());
    assert!(connector.validate(&props(&url, &[])).await.is_empty());
    let errors = connector
        .validate(&props(
            &url,
            &[("delete.enabled", "true"), ("pk.mode", "record_value")],
        ))
        .await;
    assert!(
        errors
            .iter()
            .any(|(k, m)| k == "delete.enabled" && m.contains("record_key")),
        "{errors:?}"
    );
    let errors = connector
        .validate(&props(&url, &[("insert.mode", "upsert")]))
        .await;
    assert!(errors.iter().any(|(k, _)| k == "pk.mode"), "{errors:?}");
}

#[tokio::test]
async fn connector_gives_each_task_the_configuration() {
    let mut connector = JdbcSinkConnector::default();
    let p = props("jdbc:sqlite:/tmp/x.db", &[]);
    let ctx = moldau_connect::connector::ConnectorContext {
        name: "jdbc".into(),
        kafka_client_props: Props::new(),
        status: StatusReporter::default(),
        offsets: Arc::new(NoOffsets),
    };
    connector.start(&p, ctx.clone()).await.unwrap();
    assert_eq!(connector.task_configs(3).await.unwrap(), vec![p.clone(); 3]);
    let bad = props("postgres://x", &[]);
    assert!(matches!(
        JdbcSinkConnector::default().start(&bad, ctx).await,
        Err(ConnectError::Config(_))
    ));
}
