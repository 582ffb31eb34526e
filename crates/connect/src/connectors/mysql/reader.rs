//! The task's reader: decides between snapshot and streaming from the committed offset,
//! runs the snapshot and then follows the binlog, handing batches of records to the task
//! through a channel; a semaphore of `max.queue.size` permits bounds the records queued.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn, OptsBuilder, Params, Row, Value as MyValue};
use tokio::sync::mpsc;

use super::config::{MySqlConfig, SnapshotMode};
use super::history::{tables_at, History, TableChange};
use super::incremental::{
    dedup_key, parse_execute_snapshot, Incremental, IncrementalProgress, Window,
};
use super::schema::{data_err, db_error, list_tables, read_table, Captured, TableDef};
use super::schema_change::SchemaChangeSchemas;
use super::source::{
    position_le, BinlogOffset, SnapshotProgress, SourceInfo, FIRST_IN_DATA_COLLECTION,
    LAST_IN_DATA_COLLECTION,
};
use crate::connector::{ConnectError, OffsetStorageReader, SourceRecord, StatusReporter};
use crate::connectors::debezium::{self, Op, SnapshotMarker};
use crate::data::{SchemaRef, Struct, Value};
use crate::record::ConnectRecord;
use crate::storage::OffsetMap;

/// Records on their way to `poll`, holding their share of the queue (`max.queue.size`
/// records) until `poll` takes them.
pub type Batch = Result<(Vec<SourceRecord>, tokio::sync::OwnedSemaphorePermit), ConnectError>;

/// The binlog file and event time (seconds) of the last offset the worker committed: what
/// a restarted connector would need, so what the retention check watches.
pub type CommittedPosition = Arc<parking_lot::Mutex<Option<(String, i64)>>>;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Opens a connection within `timeout`.
pub async fn connect(cfg: &MySqlConfig, timeout: Duration) -> Result<Conn, ConnectError> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(cfg.hostname.clone())
        .tcp_port(cfg.port)
        .user(Some(cfg.user.clone()))
        .pass(cfg.password.clone())
        .prefer_socket(false);
    match tokio::time::timeout(timeout, Conn::new(opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(match e {
            mysql_async::Error::Server(_) => ConnectError::Fatal(format!(
                "Unable to connect to {}:{}: {e}",
                cfg.hostname, cfg.port
            )),
            _ => ConnectError::Retriable(format!(
                "Unable to connect to {}:{}: {e}",
                cfg.hostname, cfg.port
            )),
        }),
        Err(_) => Err(ConnectError::Retriable(format!(
            "Unable to connect to {}:{}: timed out after {} ms",
            cfg.hostname,
            cfg.port,
            timeout.as_millis()
        ))),
    }
}

/// The server settings CDC needs, as (variable, problem) pairs.
pub async fn binlog_problems(conn: &mut Conn) -> Result<Vec<(String, String)>, ConnectError> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = conn
        .query_first("SELECT @@global.log_bin, @@global.binlog_format, @@global.binlog_row_image")
        .await
        .map_err(db_error)?;
    let (log_bin, format, image) = row.unwrap_or_default();
    let mut out = Vec::new();
    let log_bin = log_bin.unwrap_or_default();
    if !(log_bin == "1" || log_bin.eq_ignore_ascii_case("ON")) {
        out.push((
            "log_bin".into(),
            "The MySQL server is not configured to use a binlog (log_bin is OFF), which is required for this connector to work properly. Enable the binary log and restart the server.".into(),
        ));
    }
    let format = format.unwrap_or_default();
    if !format.eq_ignore_ascii_case("ROW") {
        out.push((
            "binlog_format".into(),
            format!("The MySQL server is not configured to use a ROW binlog_format (it is {format}), which is required for this connector to work properly. Change the MySQL configuration to use a binlog_format=ROW and restart the connector."),
        ));
    }
    let image = image.unwrap_or_default();
    if !image.eq_ignore_ascii_case("FULL") {
        out.push((
            "binlog_row_image".into(),
            format!("The MySQL server is not configured to use a FULL binlog_row_image (it is {image}), which is required for this connector to work properly. Change the MySQL configuration to use a binlog_row_image=FULL and restart the connector."),
        ));
    }
    Ok(out)
}

async fn binary_logs(conn: &mut Conn) -> Result<Vec<String>, ConnectError> {
    let rows: Vec<Row> = conn.query("SHOW BINARY LOGS").await.map_err(db_error)?;
    Ok(rows
        .into_iter()
        .filter_map(|mut r| r.take::<String, _>(0))
        .collect())
}

async fn master_status(conn: &mut Conn) -> Result<(String, u64), ConnectError> {
    // MySQL 8.4 renamed SHOW MASTER STATUS.
    let row: Option<Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        Err(mysql_async::Error::Server(_)) => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(db_error)?,
        Err(e) => return Err(db_error(e)),
    };
    let mut row = row.ok_or_else(|| {
        ConnectError::Fatal(
            "SHOW MASTER STATUS returned nothing: is the binary log enabled?".into(),
        )
    })?;
    let file: Option<String> = row.take(0);
    let pos: Option<u64> = row.take(1);
    match (file, pos) {
        (Some(f), Some(p)) => Ok((f, p)),
        _ => Err(ConnectError::Fatal(
            "SHOW MASTER STATUS has no position".into(),
        )),
    }
}

fn gone_message(file: &str, pos: u64) -> String {
    format!(
        "The connector is trying to read binlog starting at {file}:{pos}, but this is no longer available on the server. Reconfigure the connector to use a snapshot when needed (snapshot.mode=when_needed)."
    )
}

/// A key's values encoded for the offset: a JSON array of tagged strings.
fn encode_key(values: &[MyValue]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|v| match v {
            MyValue::Int(i) => format!("i:{i}"),
            MyValue::UInt(u) => format!("u:{u}"),
            MyValue::Float(f) => format!("f:{f}"),
            MyValue::Double(d) => format!("f:{d}"),
            MyValue::Bytes(b) => format!(
                "b:{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
            MyValue::NULL => "n:".to_string(),
            other => format!("s:{}", other.as_sql(true).trim_matches('\'')),
        })
        .collect();
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
}

fn decode_key(text: &str) -> Option<Vec<MyValue>> {
    let items: Vec<String> = serde_json::from_str(text).ok()?;
    items
        .iter()
        .map(|s| {
            let (tag, v) = s.split_once(':')?;
            Some(match tag {
                "i" => MyValue::Int(v.parse().ok()?),
                "u" => MyValue::UInt(v.parse().ok()?),
                "f" => MyValue::Double(v.parse().ok()?),
                "b" => MyValue::Bytes(
                    (0..v.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(v.get(i..i + 2)?, 16).ok())
                        .collect::<Option<Vec<u8>>>()?,
                ),
                "n" => MyValue::NULL,
                _ => MyValue::Bytes(v.as_bytes().to_vec()),
            })
        })
        .collect()
}

fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// The statement kinds of binlog QUERY events that matter here.
#[derive(Debug, PartialEq)]
enum QueryKind {
    Begin,
    Commit,
    Ddl,
    Other,
}

fn classify(sql: &str) -> QueryKind {
    let mut s = sql.trim_start();
    // Leading comments (`/* ... */`, as MariaDB writes for some statements).
    while let Some(rest) = s.strip_prefix("/*") {
        s = rest
            .split_once("*/")
            .map(|(_, r)| r)
            .unwrap_or("")
            .trim_start();
    }
    let word: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    match word.as_str() {
        "BEGIN" => QueryKind::Begin,
        "COMMIT" => QueryKind::Commit,
        "ROLLBACK" if !s.to_ascii_uppercase().contains(" TO ") => QueryKind::Commit,
        "XA" => QueryKind::Other,
        // TRUNCATE changes no schema (Debezium's truncate events are skipped by default).
        "CREATE" | "ALTER" | "DROP" | "RENAME" => QueryKind::Ddl,
        _ => QueryKind::Other,
    }
}

/// The tables a DDL statement names, as (db, table); the statement's default database
/// qualifies unqualified names.
fn ddl_tables(sql: &str, default_db: &str) -> Vec<(String, String)> {
    static NAME: &str =
        r"(`(?:[^`]|``)+`|[A-Za-z0-9_$]+)(?:\s*\.\s*(`(?:[^`]|``)+`|[A-Za-z0-9_$]+))?";
    let re = regex::Regex::new(&format!(
        r"(?i)\b(?:TABLES?|TO)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?{NAME}((?:\s*,\s*{NAME})*)"
    ));
    let Ok(re) = re else {
        return Vec::new();
    };
    let one = regex::Regex::new(NAME).ok();
    let unq = |s: &str| s.trim_matches('`').replace("``", "`");
    let mut out = Vec::new();
    for c in re.captures_iter(sql) {
        let (a, b) = (c.get(1).map(|m| m.as_str()), c.get(2).map(|m| m.as_str()));
        let name = match (a, b) {
            (Some(db), Some(t)) => (unq(db), unq(t)),
            (Some(t), None) => (default_db.to_string(), unq(t)),
            _ => continue,
        };
        if !out.contains(&name) {
            out.push(name);
        }
        // DROP TABLE a, b / RENAME TABLE a TO b, c TO d: the list after the first name.
        if let (Some(rest), Some(one)) = (c.get(3), &one) {
            for m in one.captures_iter(rest.as_str()) {
                let name = match (m.get(1), m.get(2)) {
                    (Some(db), Some(t)) => (unq(db.as_str()), unq(t.as_str())),
                    (Some(t), None) => (default_db.to_string(), unq(t.as_str())),
                    _ => continue,
                };
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
    }
    out
}

/// Where the stream is, and the restart point of what was emitted.
#[derive(Debug, Default)]
struct StreamState {
    /// The binlog file being read.
    file: String,
    /// The end of the last event read (the start of the next one).
    last_end: u64,
    in_trx: bool,
    /// Where the current transaction (or the next event, between transactions) starts.
    restart_pos: u64,
    /// Row events of the current transaction handled completely.
    events_done: u64,
    /// From the offset resumed: what of the first transaction was emitted already.
    skip_events: u64,
    skip_rows: u64,
    ts_sec: i64,
    thread: Option<i64>,
    /// Binlog table ids of captured tables.
    table_ids: HashMap<u64, (String, String)>,
    /// MariaDB: the last committed GTID per replication domain (the restart point's
    /// GTID position), and the current transaction's (domain, GTID).
    gtid_state: std::collections::BTreeMap<u32, String>,
    current_gtid: Option<(Option<u32>, String)>,
    /// A running incremental snapshot, and the binlog table id of the signal table.
    incremental: Option<Incremental>,
    signal_table_id: Option<u64>,
}

impl StreamState {
    fn begin(&mut self) {
        if !self.in_trx {
            self.in_trx = true;
            self.restart_pos = self.last_end;
            self.events_done = 0;
        }
    }

    fn commit(&mut self, end: u64) {
        if let Some((Some(domain), gtid)) = self.current_gtid.take() {
            self.gtid_state.insert(domain, gtid);
        }
        self.current_gtid = None;
        // The thread of the statement that began the transaction is the transaction's.
        self.thread = None;
        self.in_trx = false;
        self.events_done = 0;
        self.skip_events = 0;
        self.skip_rows = 0;
        if end != 0 {
            self.restart_pos = end;
        }
    }

    fn offset(&self, server_id: i64) -> BinlogOffset {
        BinlogOffset {
            file: self.file.clone(),
            pos: self.restart_pos,
            events_to_skip: if self.in_trx { self.events_done } else { 0 },
            rows_to_skip: 0,
            ts_sec: self.ts_sec,
            server_id,
            gtids: self.gtids(),
            snapshot: None,
            incremental: self.incremental_progress(),
        }
    }

    fn incremental_progress(&self) -> Option<IncrementalProgress> {
        self.incremental.as_ref().map(Incremental::progress)
    }

    fn gtids(&self) -> Option<String> {
        (!self.gtid_state.is_empty()).then(|| {
            self.gtid_state
                .values()
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// A MariaDB GTID event starts a new event group (any group still open ended).
    fn mariadb_gtid(&mut self, start: u64, server_id: u32, body: &[u8]) {
        let (Some(seq), Some(domain)) = (
            body.get(0..8).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            body.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok()),
        ) else {
            return;
        };
        let (seq, domain) = (u64::from_le_bytes(seq), u32::from_le_bytes(domain));
        if self.in_trx {
            self.commit(start);
        }
        self.begin();
        self.current_gtid = Some((Some(domain), format!("{domain}-{server_id}-{seq}")));
    }
}

/// What a reader shares with its task.
pub struct TaskLinks {
    pub tx: mpsc::Sender<Batch>,
    /// Permits for `max.queue.size` records between the reader and `poll`.
    pub queue: Arc<tokio::sync::Semaphore>,
    pub status: StatusReporter,
    /// The offsets to resume from.
    pub offsets: Arc<dyn OffsetStorageReader>,
    /// The worker's Kafka client settings (for the schema history topic).
    pub kafka_client_props: crate::config::Props,
    pub committed: CommittedPosition,
}

/// Reads the database for one task: snapshot, then the binlog.
pub struct Reader {
    cfg: MySqlConfig,
    source_schema: SchemaRef,
    partition: OffsetMap,
    tx: mpsc::Sender<Batch>,
    /// Permits for `max.queue.size` records between the reader and `poll`.
    queue: Arc<tokio::sync::Semaphore>,
    status: StatusReporter,
    offsets: Arc<dyn OffsetStorageReader>,
    kafka_client_props: crate::config::Props,
    history: Option<History>,
    tables: HashMap<(String, String), Arc<Captured>>,
    /// Definitions as of the resumed position (from the schema history).
    history_defs: HashMap<(String, String), TableDef>,
    admin: Option<Conn>,
    /// The position of the newest schema history record read at start.
    history_last: Option<(String, u64)>,
    db_server_id: i64,
    committed: CommittedPosition,
    schema_changes: Option<SchemaChangeSchemas>,
}

/// The reader stopped because the task is stopping (the channel closed): an internal
/// marker, never shown (the task is gone).
const STOPPED: &str = "stopped";

impl Reader {
    pub fn new(cfg: MySqlConfig, source_schema: SchemaRef, links: TaskLinks) -> Reader {
        let TaskLinks {
            tx,
            queue,
            status,
            offsets,
            kafka_client_props,
            committed,
        } = links;
        let partition = vec![(
            "server".to_string(),
            Value::String(cfg.topic_prefix.clone()),
        )];
        let connector = source_schema
            .name
            .as_deref()
            .and_then(|n| n.split('.').nth(3))
            .unwrap_or("mysql")
            .to_string();
        let schema_changes = if cfg.include_schema_changes {
            SchemaChangeSchemas::new(&connector, &source_schema).ok()
        } else {
            None
        };
        Reader {
            cfg,
            source_schema,
            partition,
            tx,
            queue,
            status,
            offsets,
            kafka_client_props,
            history: None,
            tables: HashMap::new(),
            history_defs: HashMap::new(),
            admin: None,
            history_last: None,
            db_server_id: 0,
            committed,
            schema_changes,
        }
    }

    /// Runs until an error (sent to the task) or the task stops.
    pub async fn run(mut self) {
        match self.run_inner().await {
            Ok(()) => {}
            Err(ConnectError::Fatal(m)) if m == STOPPED => {}
            Err(e) => {
                let _ = self.tx.send(Err(e)).await;
            }
        }
    }

    async fn send(&self, records: Vec<SourceRecord>) -> Result<(), ConnectError> {
        if records.is_empty() {
            return Ok(());
        }
        let stopped = || ConnectError::Fatal(STOPPED.into());
        let wanted = records.len().min(self.cfg.max_queue_size).max(1);
        let permit = self
            .queue
            .clone()
            .acquire_many_owned(u32::try_from(wanted).unwrap_or(u32::MAX))
            .await
            .map_err(|_| stopped())?;
        self.tx
            .send(Ok((records, permit)))
            .await
            .map_err(|_| stopped())
    }

    async fn admin(&mut self) -> Result<&mut Conn, ConnectError> {
        if self.admin.is_none() {
            let mut c = connect(&self.cfg, self.cfg.connect_timeout()).await?;
            c.query_drop("SET SESSION time_zone = '+00:00'")
                .await
                .map_err(db_error)?;
            self.admin = Some(c);
        }
        self.admin
            .as_mut()
            .ok_or_else(|| ConnectError::Retriable("no connection".into()))
    }

    fn capture(&self, def: TableDef) -> Result<Arc<Captured>, ConnectError> {
        Captured::new(
            def,
            &self.cfg.topic_prefix,
            &self.cfg.filters,
            &self.cfg.modes,
            &self.source_schema,
        )
        .map(Arc::new)
    }

    async fn run_inner(&mut self) -> Result<(), ConnectError> {
        let offset = self
            .offsets
            .offset(&self.partition)
            .and_then(|m| BinlogOffset::from_map(&m));
        if let Some(o) = &offset {
            let mut c = self.committed.lock();
            if c.is_none() {
                *c = Some((o.file.clone(), o.ts_sec));
            }
        }
        let problems = {
            let admin = self.admin().await?;
            binlog_problems(admin).await?
        };
        if let Some((_, m)) = problems.into_iter().next() {
            return Err(ConnectError::Fatal(m));
        }
        let server_id: Option<i64> = self
            .admin()
            .await?
            .query_first("SELECT @@server_id")
            .await
            .map_err(db_error)?;
        self.db_server_id = server_id.unwrap_or(0);
        let mut history_records = Vec::new();
        if let Some(topic) = self.cfg.history_topic.clone() {
            let h = History::open(
                &topic,
                self.cfg.history_bootstrap.as_deref(),
                &self.kafka_client_props,
                &self.cfg.topic_prefix,
            )
            .await?;
            history_records = h.read_all().await?;
            self.history_last = history_records
                .iter()
                .map(|r| (r.file.clone(), r.pos))
                .reduce(|a, b| {
                    if position_le(&a.0, a.1, &b.0, b.1) {
                        b
                    } else {
                        a
                    }
                });
            self.history = Some(h);
        }
        let mode = self.cfg.snapshot_mode;
        // `always` snapshots at every start, whatever was committed.
        let offset = offset.filter(|_| mode != SnapshotMode::Always);
        let start = match offset {
            Some(o) if mode == SnapshotMode::Recovery => {
                // The history is lost or damaged: record the tables as they are now at
                // the offset's position, then stream on from it.
                let at = BinlogOffset {
                    snapshot: None,
                    events_to_skip: 0,
                    rows_to_skip: 0,
                    ..o.clone()
                };
                self.record_schema(&at).await?;
                BinlogOffset { snapshot: None, ..o }
            }
            None if mode == SnapshotMode::Recovery => {
                return Err(ConnectError::Fatal(
                    "snapshot.mode=recovery needs a committed offset to recover the schema history at; use initial for a new connector".into(),
                ))
            }
            None if mode == SnapshotMode::Never => {
                let (file, pos) = master_status(self.admin().await?).await?;
                let start = BinlogOffset {
                    file,
                    pos,
                    ts_sec: now_ms() / 1000,
                    server_id: self.db_server_id,
                    ..Default::default()
                };
                self.record_schema(&start).await?;
                start
            }
            None => self.snapshot(None).await?,
            Some(o) if o.snapshot.is_some() && mode != SnapshotMode::Never => {
                self.snapshot(Some(o)).await?
            }
            Some(o) => {
                let logs = binary_logs(self.admin().await?).await?;
                if !logs.contains(&o.file) {
                    if mode == SnapshotMode::WhenNeeded {
                        tracing::warn!(
                            "{}; snapshot.mode=when_needed: taking a new snapshot",
                            gone_message(&o.file, o.pos)
                        );
                        self.snapshot(None).await?
                    } else {
                        return Err(ConnectError::Fatal(gone_message(&o.file, o.pos)));
                    }
                } else {
                    self.history_defs = tables_at(&history_records, &o.file, o.pos);
                    BinlogOffset {
                        snapshot: None,
                        ..o
                    }
                }
            }
        };
        if mode == SnapshotMode::InitialOnly {
            // Nothing to stream: stay idle until stopped.
            std::future::pending::<()>().await;
        }
        self.stream(start).await
    }

    /// Writes the captured tables' current definitions to the history (no data).
    async fn record_schema(&mut self, at: &BinlogOffset) -> Result<(), ConnectError> {
        let filters = self.cfg.filters.clone();
        let names = list_tables(self.admin().await?, &filters).await?;
        for (db, t) in names {
            let Some(def) = read_table(self.admin().await?, &db, &t).await? else {
                continue;
            };
            let ddl = self.show_create(&db, &t).await.unwrap_or_default();
            let info = SourceInfo {
                ts_ms: now_ms(),
                snapshot: Some(SnapshotMarker::True.name()),
                db: db.clone(),
                table: Some(t.clone()),
                file: at.file.clone(),
                pos: at.pos as i64,
                ..Default::default()
            };
            let changes = [TableChange::Define("CREATE", def.clone())];
            if let Some(r) = self
                .schema_change(at, info, &db, &ddl, &changes, false)
                .await?
            {
                self.send(vec![r]).await?;
            }
            let cap = self.capture(def)?;
            self.tables.insert((db, t), cap);
        }
        Ok(())
    }

    async fn show_create(&mut self, db: &str, t: &str) -> Result<String, ConnectError> {
        let sql = format!("SHOW CREATE TABLE {}.{}", quote(db), quote(t));
        let row: Option<(String, String)> = self
            .admin()
            .await?
            .query_first(sql)
            .await
            .map_err(db_error)?;
        Ok(row.map(|(_, ddl)| ddl).unwrap_or_default())
    }

    /// Records a DDL: to the schema history topic (acknowledged before anything after it
    /// is emitted) and, with `include.schema.changes`, as a schema change event.
    async fn schema_change(
        &self,
        at: &BinlogOffset,
        info: SourceInfo,
        db: &str,
        ddl: &str,
        changes: &[TableChange],
        from_binlog: bool,
    ) -> Result<Option<SourceRecord>, ConnectError> {
        let now = now_ms();
        // A binlog DDL replayed after a restart is in the history already.
        let recorded = from_binlog
            && self
                .history_last
                .as_ref()
                .is_some_and(|(f, p)| position_le(&at.file, at.pos, f, *p));
        if let (Some(h), false) = (&self.history, recorded) {
            h.record(at, db, ddl, changes, now).await?;
        }
        let Some(schemas) = &self.schema_changes else {
            return Ok(None);
        };
        let source = info.to_struct(&self.source_schema, &self.cfg.topic_prefix);
        let (key, value) = schemas
            .event(source, db, ddl, changes, now)
            .map_err(data_err)?;
        Ok(Some(SourceRecord {
            source_partition: self.partition.clone(),
            source_offset: at.to_map(),
            record: ConnectRecord {
                topic: self.cfg.topic_prefix.clone(),
                partition: Some(0),
                key_schema: Some(schemas.key.clone()),
                key: Value::Struct(key),
                value_schema: Some(schemas.value.clone()),
                value: Value::Struct(value),
                timestamp: Some(now),
                headers: Vec::new(),
                kafka_offset: None,
            },
        }))
    }

    // -----------------------------------------------------------------------------------
    // Snapshot

    /// Takes (or resumes) the snapshot; answers where streaming starts.
    async fn snapshot(
        &mut self,
        resume: Option<BinlogOffset>,
    ) -> Result<BinlogOffset, ConnectError> {
        let mut conn = connect(&self.cfg, self.cfg.connect_timeout()).await?;
        for s in [
            "SET SESSION time_zone = '+00:00'",
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        ] {
            conn.query_drop(s).await.map_err(db_error)?;
        }
        // The tables' definitions must be those at the snapshot's binlog position: read
        // them before and after taking the position, and retry when a DDL came between.
        let mut attempts = 0;
        let (file, pos, defs) = loop {
            let before = captured_defs(&mut conn, &self.cfg.filters).await?;
            let (file, pos) = consistent_snapshot(&mut conn).await?;
            let after = captured_defs(&mut conn, &self.cfg.filters).await?;
            if before == after {
                break (file, pos, after);
            }
            attempts += 1;
            if attempts >= 5 {
                return Err(ConnectError::Retriable(
                    "the captured tables' definitions kept changing while the snapshot started"
                        .into(),
                ));
            }
            conn.query_drop("ROLLBACK").await.map_err(db_error)?;
        };
        // A resumed snapshot reads the remaining rows in a new transaction, but streaming
        // still starts at the first snapshot's position: changes in between are emitted
        // again rather than lost.
        let start = match &resume {
            Some(o) => BinlogOffset {
                snapshot: None,
                events_to_skip: 0,
                rows_to_skip: 0,
                ..o.clone()
            },
            None => BinlogOffset {
                file,
                pos,
                ts_sec: now_ms() / 1000,
                server_id: self.db_server_id,
                ..Default::default()
            },
        };
        let progress = resume.and_then(|o| o.snapshot).unwrap_or_default();
        let resume_index = progress.table.as_ref().and_then(|pt| {
            defs.iter()
                .position(|d| &format!("{}.{}", d.db, d.table) == pt)
        });
        let mut captured = Vec::new();
        for def in defs {
            let (db, t) = (&def.db.clone(), &def.table.clone());
            if resume_index.is_none() || progress.table.is_none() {
                let ddl = self.show_create(db, t).await.unwrap_or_default();
                let at = BinlogOffset {
                    snapshot: Some(SnapshotProgress::default()),
                    ..start.clone()
                };
                let info = SourceInfo {
                    ts_ms: now_ms(),
                    snapshot: Some(SnapshotMarker::True.name()),
                    db: db.clone(),
                    table: Some(t.clone()),
                    file: start.file.clone(),
                    pos: start.pos as i64,
                    ..Default::default()
                };
                let changes = [TableChange::Define("CREATE", def.clone())];
                if let Some(r) = self
                    .schema_change(&at, info, db, &ddl, &changes, false)
                    .await?
                {
                    self.send(vec![r]).await?;
                }
            }
            let cap = self.capture(def)?;
            self.tables.insert((db.clone(), t.clone()), cap.clone());
            captured.push(cap);
        }
        // One row is held back until the next shows whether it ends its table or the
        // snapshot (Debezium's first/last markers): (table, row, key, first of its table).
        let mut pending: Option<(Arc<Captured>, Struct, Option<String>, bool)> = None;
        let mut emitted_any = false;
        let fetch = self.cfg.snapshot_fetch_size;
        for (i, cap) in captured.iter().enumerate() {
            if let Some(ri) = resume_index {
                if i < ri {
                    continue;
                }
            }
            let resuming_here = resume_index == Some(i);
            let pk_idx: Vec<usize> = cap
                .def
                .primary_key_column_names
                .iter()
                .filter_map(|k| cap.def.columns.iter().position(|c| &c.name == k))
                .collect();
            let cols: Vec<String> = cap.def.columns.iter().map(|c| quote(&c.name)).collect();
            let from = format!("{}.{}", quote(&cap.def.db), quote(&cap.def.table));
            let mut last_key: Option<Vec<MyValue>> = if resuming_here {
                progress.key.as_deref().and_then(decode_key)
            } else {
                None
            };
            let mut row_offset: u64 = 0;
            let mut first_in_table = true;
            loop {
                let (sql, params) = if pk_idx.is_empty() {
                    // No key to page by: offsets within the one consistent transaction.
                    (
                        format!(
                            "SELECT {} FROM {from} LIMIT {fetch} OFFSET {row_offset}",
                            cols.join(", ")
                        ),
                        Vec::new(),
                    )
                } else {
                    let keys: Vec<String> = pk_idx.iter().map(|i| cols[*i].clone()).collect();
                    let (cond, params) = match &last_key {
                        None => (String::new(), Vec::new()),
                        Some(k) => keyset_condition(&keys, k),
                    };
                    (
                        format!(
                            "SELECT {} FROM {from}{cond} ORDER BY {} LIMIT {fetch}",
                            cols.join(", "),
                            keys.join(", ")
                        ),
                        params,
                    )
                };
                let params = if params.is_empty() {
                    Params::Empty
                } else {
                    Params::Positional(params)
                };
                let rows: Vec<Row> = conn.exec(sql, params).await.map_err(db_error)?;
                let n = rows.len();
                let mut batch = Vec::with_capacity(n);
                for row in rows {
                    let values = row.unwrap();
                    let key_values: Vec<MyValue> =
                        pk_idx.iter().map(|i| values[*i].clone()).collect();
                    let key_text = (!pk_idx.is_empty()).then(|| encode_key(&key_values));
                    let s = cap.row(values, &self.cfg.modes, false)?;
                    if let Some((pc, ps, pk, pfirst)) = pending.take() {
                        let marker = if !emitted_any {
                            SnapshotMarker::First.name()
                        } else if pfirst {
                            FIRST_IN_DATA_COLLECTION
                        } else if !Arc::ptr_eq(&pc, cap) {
                            LAST_IN_DATA_COLLECTION
                        } else {
                            SnapshotMarker::True.name()
                        };
                        batch.push(self.read_record(&pc, ps, pk, &start, marker)?);
                        emitted_any = true;
                    }
                    pending = Some((cap.clone(), s, key_text, first_in_table));
                    first_in_table = false;
                    if !pk_idx.is_empty() {
                        last_key = Some(key_values);
                    }
                }
                self.send(batch).await?;
                row_offset += n as u64;
                if n < fetch {
                    break;
                }
            }
        }
        conn.query_drop("COMMIT").await.map_err(db_error)?;
        let _ = conn.disconnect().await;
        if let Some((pc, ps, pk, _)) = pending.take() {
            let r = self.read_record(&pc, ps, pk, &start, SnapshotMarker::Last.name())?;
            self.send(vec![r]).await?;
        }
        Ok(start)
    }

    /// A snapshot row's record (`op: r`). Its offset records the snapshot's progress; the
    /// last one's is the streaming start (the snapshot is complete).
    fn read_record(
        &self,
        cap: &Captured,
        row: Struct,
        key_text: Option<String>,
        start: &BinlogOffset,
        marker: &'static str,
    ) -> Result<SourceRecord, ConnectError> {
        let now = now_ms();
        let offset = if marker == SnapshotMarker::Last.name() {
            BinlogOffset {
                ts_sec: now / 1000,
                ..start.clone()
            }
        } else {
            BinlogOffset {
                ts_sec: now / 1000,
                snapshot: Some(SnapshotProgress {
                    table: Some(format!("{}.{}", cap.def.db, cap.def.table)),
                    key: key_text,
                }),
                ..start.clone()
            }
        };
        let info = SourceInfo {
            ts_ms: now,
            snapshot: Some(marker),
            db: cap.def.db.clone(),
            table: Some(cap.def.table.clone()),
            server_id: 0,
            file: start.file.clone(),
            pos: start.pos as i64,
            row: 0,
            thread: None,
            query: None,
            gtid: None,
        };
        let mut out =
            self.change_records(cap, Op::Read, None, Some(row), info, offset, now * 1000)?;
        out.pop()
            .ok_or_else(|| ConnectError::Fatal("no snapshot record".into()))
    }

    /// A change event's record, and its tombstone after a delete.
    #[allow(clippy::too_many_arguments)]
    fn change_records(
        &self,
        cap: &Captured,
        op: Op,
        before: Option<Struct>,
        after: Option<Struct>,
        info: SourceInfo,
        offset: BinlogOffset,
        now_us: i64,
    ) -> Result<Vec<SourceRecord>, ConnectError> {
        let key_row = after.as_ref().or(before.as_ref());
        let key = match key_row {
            Some(r) => debezium::key_of(&cap.schemas, r).map_err(data_err)?,
            None => None,
        };
        let source = info.to_struct(&self.source_schema, &self.cfg.topic_prefix);
        let value = debezium::envelope(&cap.schemas, op, before, after, source, now_us)
            .map_err(data_err)?;
        let key_value = key.map(Value::Struct).unwrap_or(Value::Null);
        let offset_map = offset.to_map();
        let record = ConnectRecord {
            topic: cap.topic.clone(),
            partition: None,
            key_schema: cap.schemas.key.clone(),
            key: key_value.clone(),
            value_schema: Some(cap.schemas.envelope.clone()),
            value: Value::Struct(value),
            timestamp: Some(now_us / 1000),
            headers: Vec::new(),
            kafka_offset: None,
        };
        let mut out = vec![SourceRecord {
            source_partition: self.partition.clone(),
            source_offset: offset_map.clone(),
            record,
        }];
        if op == Op::Delete && self.cfg.tombstones_on_delete {
            out.push(SourceRecord {
                source_partition: self.partition.clone(),
                source_offset: offset_map,
                record: ConnectRecord {
                    topic: cap.topic.clone(),
                    partition: None,
                    key_schema: cap.schemas.key.clone(),
                    key: key_value,
                    value_schema: None,
                    value: Value::Null,
                    timestamp: Some(now_us / 1000),
                    headers: Vec::new(),
                    kafka_offset: None,
                },
            });
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------
    // Streaming

    async fn stream(&mut self, start: BinlogOffset) -> Result<(), ConnectError> {
        let mut conn = connect(&self.cfg, self.cfg.connect_timeout()).await?;
        // MariaDB sends its GTID events (rather than a plain BEGIN) to a replica that
        // announces GTID capability (4); MySQL ignores the variable.
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .await
            .map_err(db_error)?;
        let gtid_pos: Option<Option<String>> = self
            .admin()
            .await?
            .exec_first(
                "SELECT BINLOG_GTID_POS(?, ?)",
                (start.file.clone(), start.pos),
            )
            .await
            .ok();
        let request = BinlogStreamRequest::new(self.cfg.server_id)
            .with_filename(start.file.as_bytes())
            .with_pos(start.pos);
        let mut stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| stream_error(e, &start))?;
        let mut st = StreamState {
            file: start.file.clone(),
            last_end: start.pos,
            restart_pos: start.pos,
            skip_events: start.events_to_skip,
            skip_rows: start.rows_to_skip,
            ts_sec: start.ts_sec,
            ..Default::default()
        };
        // The GTID position at the start: the server's answer, else the offset's.
        let gtids = gtid_pos
            .flatten()
            .filter(|g| !g.is_empty())
            .or(start.gtids.clone());
        for g in gtids.iter().flat_map(|g| g.split(',')) {
            if let Some(domain) = g.trim().split('-').next().and_then(|d| d.parse().ok()) {
                st.gtid_state.insert(domain, g.trim().to_string());
            }
        }
        let heartbeat_ms = self.cfg.heartbeat_interval_ms;
        if let Some(p) = &start.incremental {
            st.incremental = Some(Incremental::resume(p));
            self.next_chunk(&mut st).await?;
        }
        let mut heartbeat = tokio::time::interval(Duration::from_millis(if heartbeat_ms == 0 {
            3_600_000
        } else {
            heartbeat_ms
        }));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut retention = tokio::time::interval(Duration::from_secs(30));
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = stream.next() => {
                    let event = match event {
                        None => return Err(ConnectError::Retriable("the binlog stream ended".into())),
                        Some(Err(e)) => return Err(stream_error(e, &st.offset(self.db_server_id))),
                        Some(Ok(event)) => event,
                    };
                    let records = self.handle_event(&mut st, &stream, event).await?;
                    self.send(records).await?;
                }
                _ = heartbeat.tick(), if heartbeat_ms > 0 => {
                    let r = self.heartbeat_record(&st)?;
                    self.send(vec![r]).await?;
                }
                _ = retention.tick() => {
                    self.check_retention(&st).await;
                }
            }
        }
    }

    fn heartbeat_record(&self, st: &StreamState) -> Result<SourceRecord, ConnectError> {
        let (key, value) =
            debezium::heartbeat(&self.cfg.topic_prefix, now_ms()).map_err(data_err)?;
        Ok(SourceRecord {
            source_partition: self.partition.clone(),
            source_offset: st.offset(self.db_server_id).to_map(),
            record: ConnectRecord {
                topic: debezium::heartbeat_topic(
                    &self.cfg.heartbeat_prefix,
                    &self.cfg.topic_prefix,
                ),
                partition: None,
                key_schema: Some(key.schema().clone()),
                key: Value::Struct(key),
                value_schema: Some(value.schema().clone()),
                value: Value::Struct(value),
                timestamp: Some(now_ms()),
                headers: Vec::new(),
                kafka_offset: None,
            },
        })
    }

    /// Warns when the binlog file of the committed offset is the oldest one the server
    /// keeps (the next purge removes it), when its age nears `binlog_expire_logs_seconds`,
    /// or when it is gone.
    async fn check_retention(&mut self, st: &StreamState) {
        let (file, ts_sec) = self
            .committed
            .lock()
            .clone()
            .unwrap_or_else(|| (st.file.clone(), st.ts_sec));
        let checked = match self.admin().await {
            Ok(c) => match binary_logs(c).await {
                Ok(logs) => {
                    let expire: Option<i64> = c
                        .query_first("SELECT @@global.binlog_expire_logs_seconds")
                        .await
                        .ok()
                        .flatten();
                    Ok((logs, expire.unwrap_or(0)))
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let Ok((logs, expire_seconds)) = checked else {
            self.admin = None;
            return;
        };
        let age_seconds = now_ms() / 1000 - ts_sec;
        let warning = if !logs.contains(&file) {
            Some(gone_message(&file, 0))
        } else if logs.len() > 1 && logs.first() == Some(&file) {
            Some(format!(
                "The binlog file {file} holding the connector's committed offset is the oldest one the server keeps: the next purge (binlog_expire_logs_seconds, PURGE BINARY LOGS) removes it and a restarted connector could not resume"
            ))
        } else if expire_seconds > 0 && ts_sec > 0 && age_seconds * 10 > expire_seconds * 8 {
            Some(format!(
                "The connector's committed offset in {file} is {age_seconds} s old, close to binlog_expire_logs_seconds={expire_seconds}: the server may purge it before the connector commits a newer one"
            ))
        } else {
            None
        };
        self.status.set_warning(warning);
    }

    async fn handle_event(
        &mut self,
        st: &mut StreamState,
        stream: &mysql_async::BinlogStream,
        event: mysql_async::binlog::events::Event,
    ) -> Result<Vec<SourceRecord>, ConnectError> {
        let header = event.header();
        let end = header.log_pos() as u64;
        let start_pos = end.saturating_sub(header.event_size() as u64);
        if header.timestamp() != 0 {
            st.ts_sec = header.timestamp() as i64;
        }
        let data = event.read_data().map_err(|e| {
            ConnectError::Fatal(format!(
                "unreadable binlog event at {}:{start_pos}: {e}",
                st.file
            ))
        })?;
        let mut out = Vec::new();
        match data {
            Some(EventData::RotateEvent(r)) => {
                st.file = rotate_file_name(r.name_raw(), end == 0, &st.file);
                st.last_end = r.position();
                if !st.in_trx {
                    st.restart_pos = r.position();
                }
                return Ok(out);
            }
            Some(EventData::QueryEvent(q)) => {
                let sql = q.query().to_string();
                st.thread = Some(q.thread_id() as i64);
                match classify(&sql) {
                    QueryKind::Begin => st.begin(),
                    QueryKind::Commit => st.commit(end),
                    QueryKind::Ddl => {
                        let db = q.schema().to_string();
                        st.commit(end);
                        out.extend(self.handle_ddl(st, &db, &sql, end).await?);
                    }
                    QueryKind::Other => {}
                }
            }
            Some(EventData::XidEvent(_)) => st.commit(end),
            Some(EventData::GtidEvent(g)) => {
                // MySQL: the transaction's GTID for the source block.
                let sid: String = g.sid().iter().map(|b| format!("{b:02x}")).collect();
                let uuid = format!(
                    "{}-{}-{}-{}-{}:{}",
                    &sid[0..8],
                    &sid[8..12],
                    &sid[12..16],
                    &sid[16..20],
                    &sid[20..32],
                    g.gno()
                );
                st.current_gtid = Some((None, uuid));
            }
            None if header.event_type_raw() == MARIADB_GTID_EVENT => {
                st.mariadb_gtid(start_pos, header.server_id(), event.data());
            }
            Some(EventData::TableMapEvent(tme)) => {
                let db = tme.database_name().to_string();
                let table = tme.table_name().to_string();
                if self.cfg.signal_data_collection.as_deref() == Some(&format!("{db}.{table}")) {
                    st.signal_table_id = Some(tme.table_id());
                }
                if self.cfg.filters.table(&db, &table) {
                    self.ensure_table(&db, &table, tme.columns_count() as usize)
                        .await?;
                    st.table_ids.insert(tme.table_id(), (db, table));
                } else {
                    st.table_ids.remove(&tme.table_id());
                }
            }
            Some(EventData::RowsEvent(rows)) => {
                st.begin();
                let event_index = st.events_done;
                st.events_done += 1;
                if event_index < st.skip_events {
                    return Ok(out);
                }
                let skip_rows = if event_index == st.skip_events {
                    st.skip_rows
                } else {
                    0
                };
                let is_signal = st.signal_table_id == Some(rows.table_id());
                let captured = st
                    .table_ids
                    .get(&rows.table_id())
                    .cloned()
                    .and_then(|name| self.tables.get(&name).cloned().map(|c| (name, c)));
                if !is_signal && captured.is_none() {
                    return Ok(out);
                }
                let tme = stream.get_tme(rows.table_id()).ok_or_else(|| {
                    ConnectError::Fatal(format!("no table map for table id {}", rows.table_id()))
                })?;
                let op = match &rows {
                    RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => {
                        Op::Create
                    }
                    RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => {
                        Op::Delete
                    }
                    _ => Op::Update,
                };
                let where_ = format!("{}.{}", tme.database_name(), tme.table_name());
                let decoded: Vec<_> =
                    rows.rows(tme).collect::<Result<Vec<_>, _>>().map_err(|e| {
                        ConnectError::Fatal(format!(
                            "unreadable rows of {where_} at {}:{start_pos}: {e}",
                            st.file
                        ))
                    })?;
                let raw_values = |r: Option<mysql_async::binlog::row::BinlogRow>| -> Result<Option<Vec<MyValue>>, ConnectError> {
                    let Some(r) = r else { return Ok(None) };
                    r.unwrap()
                        .into_iter()
                        .map(MyValue::try_from)
                        .collect::<Result<Vec<_>, _>>()
                        .map(Some)
                        .map_err(|e| ConnectError::Fatal(format!("{where_}: {e}")))
                };
                let now_us = now_ms() * 1000;
                let mut signals = Vec::new();
                for (i, (before, after)) in decoded.into_iter().enumerate() {
                    if (i as u64) < skip_rows {
                        continue;
                    }
                    let before = raw_values(before)?;
                    let after = raw_values(after)?;
                    let offset = BinlogOffset {
                        file: st.file.clone(),
                        pos: st.restart_pos,
                        events_to_skip: event_index,
                        rows_to_skip: i as u64 + 1,
                        ts_sec: st.ts_sec,
                        server_id: self.db_server_id,
                        gtids: st.gtids(),
                        snapshot: None,
                        incremental: st.incremental_progress(),
                    };
                    if is_signal && op == Op::Create {
                        if let Some(values) = &after {
                            signals.push((values.clone(), offset.clone()));
                        }
                    }
                    let Some((name, cap)) = &captured else {
                        continue;
                    };
                    let before = before
                        .map(|v| cap.row(v, &self.cfg.modes, true))
                        .transpose()?;
                    let after = after
                        .map(|v| cap.row(v, &self.cfg.modes, true))
                        .transpose()?;
                    // A change inside an incremental snapshot's window is newer than
                    // the chunk's copy of that row: the chunk drops it.
                    if let Some(w) = st.incremental.as_mut().and_then(|inc| inc.window.as_mut()) {
                        if w.open_seen && w.cap.topic == cap.topic {
                            for r in before.iter().chain(after.iter()) {
                                let key = debezium::key_of(&cap.schemas, r).map_err(data_err)?;
                                w.removed.insert(dedup_key(&key));
                            }
                        }
                    }
                    let info = SourceInfo {
                        ts_ms: st.ts_sec * 1000,
                        snapshot: None,
                        db: name.0.clone(),
                        table: Some(name.1.clone()),
                        server_id: header.server_id() as i64,
                        gtid: st.current_gtid.as_ref().map(|(_, g)| g.clone()),
                        file: st.file.clone(),
                        pos: start_pos as i64,
                        row: i as i32,
                        thread: st.thread,
                        query: None,
                    };
                    out.extend(self.change_records(cap, op, before, after, info, offset, now_us)?);
                }
                for (values, offset) in signals {
                    out.extend(self.handle_signal(st, &values, offset).await?);
                }
            }
            _ => {}
        }
        if end != 0 {
            st.last_end = end;
            if !st.in_trx {
                st.restart_pos = end;
            }
        }
        Ok(out)
    }

    /// A row inserted into the signal table: `execute-snapshot` starts an incremental
    /// snapshot, `stop-snapshot` ends it; the connector's own window markers open and
    /// close a chunk (whose remaining rows are then emitted).
    async fn handle_signal(
        &mut self,
        st: &mut StreamState,
        values: &[MyValue],
        offset: BinlogOffset,
    ) -> Result<Vec<SourceRecord>, ConnectError> {
        let text = |i: usize| match values.get(i) {
            Some(MyValue::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(MyValue::NULL) | None => String::new(),
            Some(other) => other.as_sql(true).trim_matches('\'').to_string(),
        };
        let (id, kind, data) = (text(0), text(1), text(2));
        let mut out = Vec::new();
        match kind.as_str() {
            "execute-snapshot" => {
                let tables = match parse_execute_snapshot(&data) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!("signal {id}: {e}");
                        return Ok(out);
                    }
                };
                let inc = st.incremental.get_or_insert_with(Incremental::default);
                for t in tables {
                    let captured = t
                        .split_once('.')
                        .is_some_and(|(d, n)| self.cfg.filters.table(d, n));
                    if captured && !inc.tables.contains(&t) {
                        inc.tables.push_back(t);
                    } else if !captured {
                        tracing::warn!("signal {id}: {t} is not a captured table");
                    }
                }
                self.next_chunk(st).await?;
            }
            "stop-snapshot" => st.incremental = None,
            "snapshot-window-open" => {
                if let Some(w) = st.incremental.as_mut().and_then(|i| i.window.as_mut()) {
                    if id == format!("{}-open", w.id) {
                        w.open_seen = true;
                    }
                }
            }
            "snapshot-window-close" => {
                let Some(inc) = st.incremental.as_mut() else {
                    return Ok(out);
                };
                let closes = inc
                    .window
                    .as_ref()
                    .is_some_and(|w| id == format!("{}-close", w.id));
                if !closes {
                    return Ok(out);
                }
                let Some(w) = inc.window.take() else {
                    return Ok(out);
                };
                let now = now_ms();
                let kept: Vec<&(String, Struct, String)> = w
                    .rows
                    .iter()
                    .filter(|(k, _, _)| !w.removed.contains(k))
                    .collect();
                let n = kept.len();
                for (i, (_, row, key)) in kept.into_iter().enumerate() {
                    inc.last_key = Some(key.clone());
                    let mut progress = inc.progress();
                    if i + 1 == n && w.last_chunk {
                        progress.tables.remove(0);
                        progress.last_key = None;
                        progress.max_key = None;
                    }
                    let offset = BinlogOffset {
                        incremental: (!progress.tables.is_empty()).then_some(progress),
                        ..offset.clone()
                    };
                    let info = SourceInfo {
                        ts_ms: now,
                        snapshot: Some(SnapshotMarker::Incremental.name()),
                        db: w.cap.def.db.clone(),
                        table: Some(w.cap.def.table.clone()),
                        server_id: self.db_server_id,
                        file: offset.file.clone(),
                        pos: offset.pos as i64,
                        ..Default::default()
                    };
                    out.extend(self.change_records(
                        &w.cap,
                        Op::Read,
                        None,
                        Some(row.clone()),
                        info,
                        offset,
                        now * 1000,
                    )?);
                }
                if let Some(last) = w.rows.last() {
                    inc.last_key = Some(last.2.clone());
                }
                if w.last_chunk {
                    inc.table_done();
                }
                self.next_chunk(st).await?;
            }
            _ => {}
        }
        Ok(out)
    }

    /// Reads the next chunk of the running incremental snapshot between its two window
    /// markers (or moves past tables that are gone, keyless or empty).
    async fn next_chunk(&mut self, st: &mut StreamState) -> Result<(), ConnectError> {
        let Some(signal) = self.cfg.signal_data_collection.clone() else {
            st.incremental = None;
            return Ok(());
        };
        let signal_table = match signal.split_once('.') {
            Some((d, t)) => format!("{}.{}", quote(d), quote(t)),
            None => quote(&signal),
        };
        loop {
            let Some(inc) = st.incremental.as_mut() else {
                return Ok(());
            };
            if inc.window.is_some() {
                return Ok(());
            }
            let Some(table) = inc.tables.front().cloned() else {
                st.incremental = None;
                return Ok(());
            };
            let Some((db, t)) = table
                .split_once('.')
                .map(|(d, t)| (d.to_string(), t.to_string()))
            else {
                inc.table_done();
                continue;
            };
            let cap = match self.tables.get(&(db.clone(), t.clone())).cloned() {
                Some(c) => c,
                None => match read_table(self.admin().await?, &db, &t).await? {
                    Some(def) => {
                        let c = self.capture(def)?;
                        self.tables.insert((db.clone(), t.clone()), c.clone());
                        c
                    }
                    None => {
                        tracing::warn!("incremental snapshot: {table} does not exist");
                        if let Some(inc) = st.incremental.as_mut() {
                            inc.table_done();
                        }
                        continue;
                    }
                },
            };
            let pk_idx: Vec<usize> = cap
                .def
                .primary_key_column_names
                .iter()
                .filter_map(|k| cap.def.columns.iter().position(|c| &c.name == k))
                .collect();
            if pk_idx.is_empty() {
                tracing::warn!("incremental snapshot: {table} has no primary key; skipped");
                if let Some(inc) = st.incremental.as_mut() {
                    inc.table_done();
                }
                continue;
            }
            let cols: Vec<String> = cap.def.columns.iter().map(|c| quote(&c.name)).collect();
            let keys: Vec<String> = pk_idx.iter().map(|i| cols[*i].clone()).collect();
            let from = format!("{}.{}", quote(&db), quote(&t));
            let (last_key, max_key) = {
                let inc = st
                    .incremental
                    .as_ref()
                    .map(Incremental::progress)
                    .unwrap_or_default();
                (inc.last_key, inc.max_key)
            };
            let max = match max_key.as_deref().and_then(decode_key) {
                Some(m) => m,
                None => {
                    let desc: Vec<String> = keys.iter().map(|k| format!("{k} DESC")).collect();
                    let sql = format!(
                        "SELECT {} FROM {from} ORDER BY {} LIMIT 1",
                        keys.join(", "),
                        desc.join(", ")
                    );
                    let row: Option<Row> = self
                        .admin()
                        .await?
                        .query_first(sql)
                        .await
                        .map_err(db_error)?;
                    let Some(row) = row else {
                        if let Some(inc) = st.incremental.as_mut() {
                            inc.table_done();
                        }
                        continue;
                    };
                    let m = row.unwrap();
                    if let Some(inc) = st.incremental.as_mut() {
                        inc.max_key = Some(encode_key(&m));
                    }
                    m
                }
            };
            let id = uuid::Uuid::new_v4().to_string();
            let chunk = self.cfg.incremental_chunk_size;
            let mut conds = Vec::new();
            let mut params = Vec::new();
            if let Some(last) = last_key.as_deref().and_then(decode_key) {
                let (c, p) = keyset_after(&keys, &last);
                conds.push(c);
                params.extend(p);
            }
            let (c, p) = keyset_after(&keys, &max);
            conds.push(format!("NOT ({c})"));
            params.extend(p);
            let sql = format!(
                "SELECT {} FROM {from} WHERE {} ORDER BY {} LIMIT {chunk}",
                cols.join(", "),
                conds.join(" AND "),
                keys.join(", ")
            );
            let insert = format!("INSERT INTO {signal_table} VALUES (?, ?, ?)");
            let conn = self.admin().await?;
            conn.exec_drop(
                insert.as_str(),
                (
                    format!("{id}-open"),
                    "snapshot-window-open",
                    format!("{{\"openWindowTimestamp\": {}}}", now_ms()),
                ),
            )
            .await
            .map_err(db_error)?;
            let rows: Vec<Row> = conn
                .exec(sql, Params::Positional(params))
                .await
                .map_err(db_error)?;
            conn.exec_drop(
                insert.as_str(),
                (
                    format!("{id}-close"),
                    "snapshot-window-close",
                    format!("{{\"closeWindowTimestamp\": {}}}", now_ms()),
                ),
            )
            .await
            .map_err(db_error)?;
            let last_chunk = rows.len() < chunk;
            let mut chunk_rows = Vec::with_capacity(rows.len());
            for row in rows {
                let values = row.unwrap();
                let key_values: Vec<MyValue> = pk_idx.iter().map(|i| values[*i].clone()).collect();
                let s = cap.row(values, &self.cfg.modes, false)?;
                let key = debezium::key_of(&cap.schemas, &s).map_err(data_err)?;
                chunk_rows.push((dedup_key(&key), s, encode_key(&key_values)));
            }
            if let Some(inc) = st.incremental.as_mut() {
                inc.window = Some(Window {
                    id,
                    open_seen: false,
                    cap,
                    rows: chunk_rows,
                    removed: Default::default(),
                    last_chunk,
                });
            }
            return Ok(());
        }
    }

    /// Makes sure a captured table's definition matches a table map's column count:
    /// from the history as of the resumed position, else from `information_schema`.
    async fn ensure_table(
        &mut self,
        db: &str,
        table: &str,
        columns: usize,
    ) -> Result<(), ConnectError> {
        let key = (db.to_string(), table.to_string());
        if let Some(c) = self.tables.get(&key) {
            if c.def.columns.len() == columns {
                return Ok(());
            }
        }
        if let Some(def) = self.history_defs.remove(&key) {
            if def.columns.len() == columns {
                let cap = self.capture(def)?;
                self.tables.insert(key, cap);
                return Ok(());
            }
        }
        let def = read_table(self.admin().await?, db, table).await?;
        match def {
            Some(def) if def.columns.len() == columns => {
                let cap = self.capture(def)?;
                self.tables.insert(key, cap);
                Ok(())
            }
            _ => Err(ConnectError::Fatal(format!(
                "the binlog's rows of {db}.{table} have {columns} columns but its known definition differs (a schema change the connector has not seen; is the schema history topic complete?)"
            ))),
        }
    }

    async fn handle_ddl(
        &mut self,
        st: &mut StreamState,
        default_db: &str,
        sql: &str,
        end: u64,
    ) -> Result<Option<SourceRecord>, ConnectError> {
        let kind = if classify(sql) == QueryKind::Ddl
            && sql.trim_start().to_ascii_uppercase().starts_with("ALTER")
        {
            "ALTER"
        } else {
            "CREATE"
        };
        let names: Vec<(String, String)> = ddl_tables(sql, default_db)
            .into_iter()
            .filter(|(d, t)| self.cfg.filters.table(d, t))
            .collect();
        let mut changes = Vec::new();
        for (db, t) in &names {
            match read_table(self.admin().await?, db, t).await? {
                Some(def) => {
                    changes.push(TableChange::Define(kind, def.clone()));
                    let cap = self.capture(def)?;
                    self.tables.insert((db.clone(), t.clone()), cap);
                }
                None => {
                    changes.push(TableChange::Drop {
                        db: db.clone(),
                        table: t.clone(),
                    });
                    self.tables.remove(&(db.clone(), t.clone()));
                }
            }
            self.history_defs.remove(&(db.clone(), t.clone()));
        }
        st.table_ids.retain(|_, n| !names.contains(n));
        let database_level = names.is_empty() && self.cfg.filters.database(default_db);
        if !changes.is_empty() || database_level {
            let at = BinlogOffset {
                file: st.file.clone(),
                pos: end,
                ts_sec: st.ts_sec,
                server_id: self.db_server_id,
                ..Default::default()
            };
            let info = SourceInfo {
                ts_ms: st.ts_sec * 1000,
                db: default_db.to_string(),
                table: names.first().map(|(_, t)| t.clone()),
                server_id: self.db_server_id,
                file: st.file.clone(),
                pos: end as i64,
                thread: st.thread,
                ..Default::default()
            };
            return self
                .schema_change(&at, info, default_db, sql, &changes, true)
                .await;
        }
        Ok(None)
    }
}

/// The definitions of the captured tables.
async fn captured_defs(
    conn: &mut Conn,
    filters: &super::config::Filters,
) -> Result<Vec<TableDef>, ConnectError> {
    let mut defs = Vec::new();
    for (db, t) in list_tables(conn, filters).await? {
        if let Some(def) = read_table(conn, &db, &t).await? {
            defs.push(def);
        }
    }
    Ok(defs)
}

/// `(k1, k2) > (v1, v2)` spelled out so the server can range-scan the primary key.
fn keyset_condition(keys: &[String], values: &[MyValue]) -> (String, Vec<MyValue>) {
    let (cond, params) = keyset_after(keys, values);
    (format!(" WHERE {cond}"), params)
}

/// The rows after `values` in key order, as a condition and its parameters.
fn keyset_after(keys: &[String], values: &[MyValue]) -> (String, Vec<MyValue>) {
    let mut ors = Vec::new();
    let mut params = Vec::new();
    for i in 0..keys.len().min(values.len()) {
        let mut ands = Vec::new();
        for j in 0..i {
            ands.push(format!("{} = ?", keys[j]));
            params.push(values[j].clone());
        }
        ands.push(format!("{} > ?", keys[i]));
        params.push(values[i].clone());
        ors.push(format!("({})", ands.join(" AND ")));
    }
    (ors.join(" OR "), params)
}

/// Opens the snapshot's transaction and answers the binlog position it sees: MariaDB
/// reports it for a consistent snapshot without any lock; otherwise a brief global read
/// lock holds the position still while the transaction starts.
async fn consistent_snapshot(conn: &mut Conn) -> Result<(String, u64), ConnectError> {
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .map_err(db_error)?;
    let status: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(db_error)?;
    let get = |n: &str| {
        status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    if let (Some(file), Some(pos)) = (get("binlog_snapshot_file"), get("binlog_snapshot_position"))
    {
        if !file.is_empty() {
            if let Ok(pos) = pos.parse() {
                return Ok((file, pos));
            }
        }
    }
    conn.query_drop("ROLLBACK").await.map_err(db_error)?;
    conn.query_drop("FLUSH TABLES WITH READ LOCK").await.map_err(|e| {
        ConnectError::Fatal(format!(
            "The snapshot needs FLUSH TABLES WITH READ LOCK (the RELOAD privilege) to read a consistent binlog position: {e}"
        ))
    })?;
    let pos = master_status(conn).await;
    let started = conn
        .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await
        .map_err(db_error);
    conn.query_drop("UNLOCK TABLES").await.map_err(db_error)?;
    started?;
    pos
}

/// The file a rotate event names. The server's first (artificial) rotate event comes
/// before the format description that says whether events end in a checksum, so the
/// driver may leave the 4 checksum bytes on the name: cut them off.
/// MariaDB's GTID event type (sent once the replica announces GTID capability).
const MARIADB_GTID_EVENT: u8 = 162;

fn rotate_file_name(raw: &[u8], artificial: bool, current: &str) -> String {
    if artificial && !current.is_empty() && raw.starts_with(current.as_bytes()) {
        return current.to_string();
    }
    let printable = |b: &[u8]| b.iter().all(|c| c.is_ascii_graphic());
    let name = if !printable(raw) && raw.len() > 4 && printable(&raw[..raw.len() - 4]) {
        &raw[..raw.len() - 4]
    } else {
        raw
    };
    String::from_utf8_lossy(name).into_owned()
}

fn stream_error(e: mysql_async::Error, at: &BinlogOffset) -> ConnectError {
    match &e {
        // ER_MASTER_FATAL_ERROR_READING_BINLOG: the file is gone (purged).
        mysql_async::Error::Server(s) if s.code == 1236 => ConnectError::Fatal(format!(
            "{} ({})",
            gone_message(&at.file, at.pos),
            s.message
        )),
        _ => db_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_statements_name_their_tables() {
        assert_eq!(
            ddl_tables("ALTER TABLE customers ADD COLUMN x INT", "inv"),
            vec![("inv".to_string(), "customers".to_string())]
        );
        assert_eq!(
            ddl_tables("CREATE TABLE IF NOT EXISTS `other`.`t 1` (a int)", "inv"),
            vec![("other".to_string(), "t 1".to_string())]
        );
        assert_eq!(
            ddl_tables("DROP TABLE a, b.c", "inv"),
            vec![("inv".into(), "a".into()), ("b".into(), "c".into())]
        );
        assert_eq!(
            ddl_tables("RENAME TABLE a TO b", "inv"),
            vec![("inv".into(), "a".into()), ("inv".into(), "b".into())]
        );
        assert_eq!(classify("/* x */ ALTER TABLE t"), QueryKind::Ddl);
        assert_eq!(classify("BEGIN"), QueryKind::Begin);
        assert_eq!(classify("ROLLBACK TO SAVEPOINT a"), QueryKind::Other);
    }

    #[test]
    fn snapshot_keys_round_trip() {
        let k = vec![
            MyValue::Int(-3),
            MyValue::UInt(u64::MAX),
            MyValue::Bytes(b"a'b".to_vec()),
        ];
        assert_eq!(decode_key(&encode_key(&k)), Some(k));
        let (cond, params) = keyset_condition(
            &["`a`".into(), "`b`".into()],
            &[MyValue::Int(1), MyValue::Int(2)],
        );
        assert_eq!(cond, " WHERE (`a` > ?) OR (`a` = ? AND `b` > ?)");
        assert_eq!(params.len(), 3);
    }
}
