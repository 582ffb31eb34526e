//! The source task: snapshot, then stream changes from the replication slot.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_postgres::Client;

use super::catalog::{self, pg_error, quote_ident, quote_literal, TableId};
use super::config::{PgConfig, PublicationMode, SnapshotMode};
use super::offset::{Position, SnapshotFilter, SnapshotProgress};
use super::pgoutput::{self, Lsn, Message, TupleValue, PG_EPOCH_OFFSET_US};
use super::types::{self, Column, UNAVAILABLE_VALUE};
use crate::config::Props;
use crate::connector::{ConnectError, SourceRecord, SourceTask, TaskContext};
use crate::connectors::debezium::{self, Op, SnapshotMarker, TableSchemas};
use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use crate::record::{ConnectRecord, Header};
use crate::storage::OffsetMap;

/// How often the slot's retained WAL is checked.
const WAL_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// The share of `max_slot_wal_keep_size` retained at which the task warns.
const WAL_WARN_RATIO: f64 = 0.8;

/// Debezium's `io.debezium.connector.postgresql.Source` schema.
pub fn source_schema() -> SchemaRef {
    let s = |optional| Schema::primitive(Type::String, optional);
    let i = |optional| Schema::primitive(Type::Int64, optional);
    SchemaBuilder::struct_builder()
        .name("io.debezium.connector.postgresql.Source")
        .field("version", s(false))
        .and_then(|b| b.field("connector", s(false)))
        .and_then(|b| b.field("name", s(false)))
        .and_then(|b| b.field("ts_ms", i(false)))
        .and_then(|b| b.field("snapshot", debezium::snapshot_field_schema()))
        .and_then(|b| b.field("db", s(false)))
        .and_then(|b| b.field("sequence", s(true)))
        .and_then(|b| b.field("ts_us", i(true)))
        .and_then(|b| b.field("ts_ns", i(true)))
        .and_then(|b| b.field("schema", s(false)))
        .and_then(|b| b.field("table", s(false)))
        .and_then(|b| b.field("txId", i(true)))
        .and_then(|b| b.field("lsn", i(true)))
        .and_then(|b| b.field("xmin", i(true)))
        .expect("static schema")
        .build()
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn data_err(e: crate::data::DataError) -> ConnectError {
    ConnectError::Fatal(format!("change event: {}", e.0))
}

/// A captured table's columns and event schemas.
#[derive(Clone, Debug)]
struct TableInfo {
    id: TableId,
    captured: bool,
    /// Every column, in the order pgoutput sends them.
    columns: Vec<Column>,
    /// Which of them are in the events (`column.include/exclude.list`).
    included: Vec<bool>,
    /// Primary key column indexes, in key order.
    key: Vec<usize>,
    schemas: Option<TableSchemas>,
    topic: String,
}

/// A column's raw value.
enum Raw<'a> {
    Null,
    Unchanged,
    Text(&'a str),
}

impl TableInfo {
    fn new(
        cfg: &PgConfig,
        id: TableId,
        columns: Vec<Column>,
        source: &SchemaRef,
    ) -> Result<TableInfo, ConnectError> {
        let captured = cfg.captures_table(&id.schema, &id.name);
        let included: Vec<bool> = columns
            .iter()
            .map(|c| cfg.captures_column(&id.schema, &id.name, &c.name))
            .collect();
        let mut key: Vec<usize> = (0..columns.len())
            .filter(|&i| columns[i].key_position.is_some() && included[i])
            .collect();
        key.sort_by_key(|&i| columns[i].key_position);
        let base = format!("{}.{}.{}", cfg.topic_prefix, id.schema, id.name);
        let schemas = if captured {
            let fields: Vec<(String, SchemaRef)> = columns
                .iter()
                .zip(&included)
                .filter(|(_, inc)| **inc)
                .map(|(c, _)| (c.name.clone(), types::column_schema(c, &cfg.modes)))
                .collect();
            let key_names: Vec<String> = key.iter().map(|&i| columns[i].name.clone()).collect();
            Some(debezium::table_schemas(&base, &fields, &key_names, source).map_err(data_err)?)
        } else {
            None
        };
        Ok(TableInfo {
            id,
            captured,
            columns,
            included,
            key,
            schemas,
            topic: base,
        })
    }

    /// A row struct from raw values in column order. `key_only`: the row came as the old
    /// key (REPLICA IDENTITY DEFAULT), so required columns it lacks get their type's zero.
    fn row(
        &self,
        values: &[Raw<'_>],
        key_only: bool,
        cfg: &PgConfig,
    ) -> Result<Struct, ConnectError> {
        let schemas = self.schemas.as_ref().ok_or_else(|| {
            ConnectError::Fatal(format!("table {} is not captured", self.id.qualified()))
        })?;
        let mut row = Struct::new(schemas.row.clone()).map_err(data_err)?;
        for (i, c) in self.columns.iter().enumerate() {
            if !self.included[i] {
                continue;
            }
            let Some(field) = schemas.row.field(&c.name) else {
                continue;
            };
            let value = match values.get(i).unwrap_or(&Raw::Null) {
                Raw::Text(t) => {
                    types::text_value(c, &field.schema, t, &cfg.modes).map_err(|e| {
                        ConnectError::Fatal(format!("table {}: {e}", self.id.qualified()))
                    })?
                }
                Raw::Unchanged => match field.schema.schema_type {
                    Type::String => Value::String(UNAVAILABLE_VALUE.into()),
                    Type::Bytes if field.schema.name.is_none() => {
                        Value::Bytes(UNAVAILABLE_VALUE.as_bytes().to_vec())
                    }
                    _ => Value::Null,
                },
                Raw::Null => Value::Null,
            };
            let value = if value.is_null() && !field.schema.optional {
                if !key_only && values.len() > i && matches!(values[i], Raw::Null) {
                    return Err(ConnectError::Fatal(format!(
                        "table {}: null in NOT NULL column {}",
                        self.id.qualified(),
                        c.name
                    )));
                }
                types::zero_value(&field.schema)
            } else {
                value
            };
            row.put(&c.name, value).map_err(data_err)?;
        }
        Ok(row)
    }
}

fn tuple_raw(t: &[TupleValue]) -> Vec<Raw<'_>> {
    t.iter()
        .map(|v| match v {
            TupleValue::Null => Raw::Null,
            TupleValue::UnchangedToast => Raw::Unchanged,
            TupleValue::Text(b) | TupleValue::Binary(b) => match std::str::from_utf8(b) {
                Ok(s) => Raw::Text(s),
                Err(_) => Raw::Null,
            },
        })
        .collect()
}

/// What the task is doing.
#[derive(Debug)]
enum Phase {
    /// Not decided yet (no session was set up).
    Starting,
    Snapshot(Box<SnapshotState>),
    Streaming,
    /// `initial_only`: the snapshot is done, nothing more to read.
    Done,
}

#[derive(Debug, Default)]
struct SnapshotState {
    /// Captured tables, in name order.
    tables: Vec<TableInfo>,
    /// The table being read.
    index: usize,
    /// The last key read in it (keyset pagination).
    after_key: Option<Vec<Option<String>>>,
    /// A table without a key is read through a cursor.
    cursor_open: bool,
    /// The snapshot's transaction is open on the session.
    open: bool,
    /// The previous record, held back until it is known whether it is the last one.
    held: Option<(SourceRecord, Position)>,
    /// Records emitted so far (the first is marked `first`).
    emitted: u64,
}

struct Session {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
    /// The temporary slot this session reads changes from (a copy of the connector's slot,
    /// consumed as read; the connector's own slot moves only on commit).
    cursor_slot: Option<String>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// The PostgreSQL source task.
pub struct PostgresSourceTask {
    cfg: Option<PgConfig>,
    ctx: Option<TaskContext>,
    source: SchemaRef,
    session: Option<Session>,
    phase: Phase,
    /// The position of the last record returned by `poll` (the stored offset at start).
    returned: Position,
    /// What the current session filters against (the position when it was set up).
    resume: Position,
    queue: VecDeque<(SourceRecord, Position)>,
    relations: HashMap<u32, TableInfo>,
    /// The transaction being decoded: (commit LSN, commit time µs since the epoch, xid,
    /// change messages so far, skip it entirely).
    tx: Option<(Lsn, i64, u32, i64, bool)>,
    last_commit_lsn: Option<Lsn>,
    last_heartbeat: Instant,
    last_wal_check: Option<Instant>,
    slot_busy_failures: u32,
}

impl Default for PostgresSourceTask {
    fn default() -> Self {
        PostgresSourceTask {
            cfg: None,
            ctx: None,
            source: source_schema(),
            session: None,
            phase: Phase::Starting,
            returned: Position::default(),
            resume: Position::default(),
            queue: VecDeque::new(),
            relations: HashMap::new(),
            tx: None,
            last_commit_lsn: None,
            last_heartbeat: Instant::now(),
            last_wal_check: None,
            slot_busy_failures: 0,
        }
    }
}

fn partition(prefix: &str) -> OffsetMap {
    vec![("server".to_string(), Value::String(prefix.to_string()))]
}

/// Connects with the session settings value parsing relies on.
pub async fn connect(
    cfg: &PgConfig,
) -> Result<(Client, tokio::task::JoinHandle<()>), ConnectError> {
    let (client, connection) = cfg
        .pg_config()
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| {
            pg_error(
                &format!("cannot connect to {}:{}", cfg.hostname, cfg.port),
                &e,
            )
        })?;
    let handle = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("PostgreSQL connection ended: {e}");
        }
    });
    client
        .batch_execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET bytea_output = 'hex'; \
             SET extra_float_digits = 3; SET standard_conforming_strings = on; \
             SET IntervalStyle = 'postgres'",
        )
        .await
        .map_err(|e| pg_error("session settings", &e))?;
    Ok((client, handle))
}

impl PostgresSourceTask {
    fn cfg(&self) -> Result<&PgConfig, ConnectError> {
        self.cfg
            .as_ref()
            .ok_or_else(|| ConnectError::Fatal("the task was not started".into()))
    }

    fn client(&self) -> Result<&Client, ConnectError> {
        self.session
            .as_ref()
            .map(|s| &s.client)
            .ok_or_else(|| ConnectError::Retriable("not connected".into()))
    }

    fn record(
        &self,
        topic: String,
        key_schema: Option<SchemaRef>,
        key: Value,
        value_schema: Option<SchemaRef>,
        value: Value,
        offset: OffsetMap,
    ) -> Result<SourceRecord, ConnectError> {
        let cfg = self.cfg()?;
        Ok(SourceRecord {
            source_partition: partition(&cfg.topic_prefix),
            source_offset: offset,
            record: ConnectRecord {
                topic,
                partition: None,
                key_schema,
                key,
                value_schema,
                value,
                timestamp: None,
                headers: Vec::new(),
                kafka_offset: None,
            },
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn source_struct(
        &self,
        table: &TableId,
        marker: SnapshotMarker,
        ts_us: i64,
        tx_id: Option<i64>,
        lsn: Option<Lsn>,
        sequence: Option<String>,
    ) -> Result<Struct, ConnectError> {
        let cfg = self.cfg()?;
        let mut s = Struct::new(self.source.clone()).map_err(data_err)?;
        let mut put = |k: &str, v: Value| s.put(k, v).map_err(data_err);
        put("version", Value::String(env!("CARGO_PKG_VERSION").into()))?;
        put("connector", Value::String("postgresql".into()))?;
        put("name", Value::String(cfg.topic_prefix.clone()))?;
        put("ts_ms", Value::Int64(ts_us.div_euclid(1000)))?;
        put("snapshot", Value::String(marker.name().into()))?;
        put("db", Value::String(cfg.dbname.clone()))?;
        if let Some(seq) = sequence {
            put("sequence", Value::String(seq))?;
        }
        put("ts_us", Value::Int64(ts_us))?;
        put("ts_ns", Value::Int64(ts_us.saturating_mul(1000)))?;
        put("schema", Value::String(table.schema.clone()))?;
        put("table", Value::String(table.name.clone()))?;
        if let Some(t) = tx_id {
            put("txId", Value::Int64(t))?;
        }
        if let Some(l) = lsn {
            put("lsn", Value::Int64(l.0 as i64))?;
        }
        Ok(s)
    }

    /// A change event (and its tombstone after a delete).
    #[allow(clippy::too_many_arguments)]
    fn change_records(
        &self,
        table: &TableInfo,
        op: Op,
        before: Option<Struct>,
        after: Option<Struct>,
        source: Struct,
        offset: &OffsetMap,
        out: &mut Vec<SourceRecord>,
    ) -> Result<(), ConnectError> {
        let cfg = self.cfg()?;
        let Some(schemas) = &table.schemas else {
            return Ok(());
        };
        let key = match (&after, &before) {
            (Some(row), _) | (None, Some(row)) => {
                debezium::key_of(schemas, row).map_err(data_err)?
            }
            _ => None,
        };
        let key_value = key.map(Value::Struct).unwrap_or(Value::Null);
        let value =
            debezium::envelope(schemas, op, before, after, source, now_us()).map_err(data_err)?;
        out.push(self.record(
            table.topic.clone(),
            schemas.key.clone(),
            key_value.clone(),
            Some(schemas.envelope.clone()),
            Value::Struct(value),
            offset.clone(),
        )?);
        if op == Op::Delete && cfg.tombstones_on_delete {
            out.push(self.record(
                table.topic.clone(),
                schemas.key.clone(),
                key_value,
                None,
                Value::Null,
                offset.clone(),
            )?);
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Setup.

    async fn ensure_session(&mut self) -> Result<(), ConnectError> {
        if self.session.is_some() {
            return Ok(());
        }
        let cfg = self.cfg()?.clone();
        let (client, connection) = connect(&cfg).await?;
        self.session = Some(Session {
            client,
            connection,
            cursor_slot: None,
        });
        self.queue.clear();
        self.relations.clear();
        self.tx = None;
        self.resume = self.returned.clone();
        match self.setup(&cfg).await {
            Ok(()) => {
                self.slot_busy_failures = 0;
                Ok(())
            }
            Err(e) => {
                self.session = None;
                if let Phase::Snapshot(s) = &mut self.phase {
                    s.open = false;
                }
                if e.is_retriable() && e.to_string().contains("55006") {
                    self.slot_busy_failures += 1;
                    if self.slot_busy_failures > cfg.slot_max_retries {
                        return Err(ConnectError::Fatal(format!(
                            "replication slot {} still in use after {} attempts: {e}",
                            cfg.slot_name, self.slot_busy_failures
                        )));
                    }
                }
                Err(e)
            }
        }
    }

    async fn setup(&mut self, cfg: &PgConfig) -> Result<(), ConnectError> {
        let client = self.client()?;
        let wal_level = catalog::scalar(client, "SHOW wal_level")
            .await
            .map_err(|e| pg_error("SHOW wal_level", &e))?;
        if wal_level.as_deref() != Some("logical") {
            return Err(ConnectError::Fatal(format!(
                "PostgreSQL's wal_level must be logical for change data capture, it is {}",
                wal_level.unwrap_or_default()
            )));
        }
        self.ensure_publication(cfg).await?;
        let slot_state = self.slot_state(cfg).await?;
        let has_history = self.returned.snapshot_completed
            || self.returned.lsn_commit.is_some()
            || self.returned.snapshot.is_some();
        let mut resnapshot = false;
        match slot_state.as_deref() {
            // initial_only never streams: a slot would only hold WAL back.
            _ if cfg.snapshot_mode == SnapshotMode::InitialOnly => {}
            Some("lost") | None if has_history => {
                let why = if slot_state.is_none() {
                    "does not exist"
                } else {
                    "was lost (the WAL it needed was removed: max_slot_wal_keep_size)"
                };
                if cfg.snapshot_mode != SnapshotMode::WhenNeeded {
                    return Err(ConnectError::Fatal(format!(
                        "replication slot {} {why}: changes since the last committed offset cannot be read; \
                         delete the connector's offsets to take a new snapshot, or use snapshot.mode=when_needed",
                        cfg.slot_name
                    )));
                }
                tracing::warn!(
                    "replication slot {} {why}: taking a new snapshot (snapshot.mode=when_needed)",
                    cfg.slot_name
                );
                if slot_state.is_some() {
                    let sql = format!(
                        "SELECT pg_drop_replication_slot({})",
                        quote_literal(&cfg.slot_name)
                    );
                    self.client()?
                        .simple_query(&sql)
                        .await
                        .map_err(|e| pg_error("drop lost slot", &e))?;
                }
                self.create_slot(cfg).await?;
                self.returned = Position::default();
                self.resume = Position::default();
                self.phase = Phase::Starting;
                resnapshot = true;
            }
            None => self.create_slot(cfg).await?,
            _ => {}
        }
        if matches!(self.phase, Phase::Starting) {
            let p = &self.returned;
            let snapshot = if resnapshot {
                true
            } else {
                match cfg.snapshot_mode {
                    SnapshotMode::NoData => false,
                    _ if p.snapshot.is_some() => true,
                    SnapshotMode::Always => true,
                    _ => !p.snapshot_completed,
                }
            };
            self.phase = if snapshot {
                Phase::Snapshot(Box::default())
            } else if cfg.snapshot_mode == SnapshotMode::InitialOnly {
                Phase::Done
            } else {
                Phase::Streaming
            };
        }
        match &self.phase {
            Phase::Snapshot(_) => self.open_snapshot(cfg).await,
            Phase::Streaming => self.open_cursor(cfg).await,
            _ => Ok(()),
        }
    }

    async fn slot_state(&self, cfg: &PgConfig) -> Result<Option<String>, ConnectError> {
        let sql = format!(
            "SELECT COALESCE(wal_status, 'reserved'), plugin FROM pg_catalog.pg_replication_slots WHERE slot_name = {}",
            quote_literal(&cfg.slot_name)
        );
        let rows = catalog::rows(self.client()?, &sql)
            .await
            .map_err(|e| pg_error("read replication slot", &e))?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let plugin = row.get(1).cloned().flatten().unwrap_or_default();
        if plugin != "pgoutput" {
            return Err(ConnectError::Fatal(format!(
                "replication slot {} uses the {plugin} plugin, not pgoutput: drop it or choose another slot.name",
                cfg.slot_name
            )));
        }
        Ok(row.into_iter().next().flatten())
    }

    async fn create_slot(&self, cfg: &PgConfig) -> Result<(), ConnectError> {
        let sql = format!(
            "SELECT pg_create_logical_replication_slot({}, 'pgoutput')",
            quote_literal(&cfg.slot_name)
        );
        self.client()?
            .simple_query(&sql)
            .await
            .map_err(|e| pg_error(&format!("create replication slot {}", cfg.slot_name), &e))?;
        tracing::info!("created replication slot {} (pgoutput)", cfg.slot_name);
        Ok(())
    }

    async fn ensure_publication(&self, cfg: &PgConfig) -> Result<(), ConnectError> {
        let client = self.client()?;
        let name = &cfg.publication_name;
        let exists = catalog::scalar(
            client,
            &format!(
                "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = {}",
                quote_literal(name)
            ),
        )
        .await
        .map_err(|e| pg_error("read publication", &e))?
        .is_some();
        let err = |e: tokio_postgres::Error| pg_error(&format!("publication {name}"), &e);
        match cfg.publication_mode {
            PublicationMode::Disabled if !exists => Err(ConnectError::Fatal(format!(
                "publication {name} does not exist and publication.autocreate.mode=disabled: create it (CREATE PUBLICATION {name} FOR ...)"
            ))),
            PublicationMode::Disabled => Ok(()),
            PublicationMode::AllTables if exists => Ok(()),
            PublicationMode::AllTables => {
                client
                    .simple_query(&format!("CREATE PUBLICATION {} FOR ALL TABLES", quote_ident(name)))
                    .await
                    .map_err(err)?;
                Ok(())
            }
            PublicationMode::Filtered => {
                let tables: Vec<String> = catalog::tables(client)
                    .await
                    .map_err(err)?
                    .into_iter()
                    .filter(|t| cfg.captures_table(&t.schema, &t.name))
                    .map(|t| t.sql())
                    .collect();
                if tables.is_empty() && !exists {
                    client
                        .simple_query(&format!("CREATE PUBLICATION {}", quote_ident(name)))
                        .await
                        .map_err(err)?;
                } else if !exists {
                    client
                        .simple_query(&format!("CREATE PUBLICATION {} FOR TABLE {}", quote_ident(name), tables.join(", ")))
                        .await
                        .map_err(err)?;
                } else if !tables.is_empty() {
                    client
                        .simple_query(&format!("ALTER PUBLICATION {} SET TABLE {}", quote_ident(name), tables.join(", ")))
                        .await
                        .map_err(err)?;
                }
                Ok(())
            }
        }
    }

    /// Copies the connector's slot into a temporary one this session consumes.
    async fn open_cursor(&mut self, cfg: &PgConfig) -> Result<(), ConnectError> {
        let session = self
            .session
            .as_mut()
            .ok_or_else(|| ConnectError::Retriable("not connected".into()))?;
        if session.cursor_slot.is_some() {
            return Ok(());
        }
        // Slot names: at most 63 of [a-z0-9_].
        let prefix: String = cfg.slot_name.chars().take(22).collect();
        let cursor = format!("{prefix}_moldau_{}", uuid::Uuid::new_v4().simple());
        let sql = format!(
            "SELECT pg_copy_logical_replication_slot({}, {}, true)",
            quote_literal(&cfg.slot_name),
            quote_literal(&cursor)
        );
        session
            .client
            .simple_query(&sql)
            .await
            .map_err(|e| pg_error(&format!("copy replication slot {}", cfg.slot_name), &e))?;
        session.cursor_slot = Some(cursor);
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Snapshot.

    async fn open_snapshot(&mut self, cfg: &PgConfig) -> Result<(), ConnectError> {
        let client = self.client()?;
        let err = |e: tokio_postgres::Error| pg_error("snapshot", &e);
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(err)?;
        // The first statement takes the transaction's snapshot; the WAL insert position is
        // read after it, so every transaction the snapshot sees has its commit record
        // before that position (also with asynchronous commit, whose commit record may be
        // visible before it is written: hence the insert, not the write, position).
        let row = catalog::rows(
            client,
            "SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text",
        )
        .await
        .map_err(err)?
        .into_iter()
        .next()
        .unwrap_or_default();
        let snap = row.first().cloned().flatten().unwrap_or_default();
        let lsn = row.get(1).cloned().flatten().and_then(|l| Lsn::parse(&l));
        let filter = lsn
            .and_then(|l| SnapshotFilter::parse(l, &snap))
            .ok_or_else(|| {
                ConnectError::Fatal(format!("cannot read the snapshot's position ({snap:?})"))
            })?;
        let all = catalog::tables(client).await.map_err(err)?;
        let mut tables = Vec::new();
        for t in all
            .into_iter()
            .filter(|t| cfg.captures_table(&t.schema, &t.name))
        {
            let cols = catalog::columns(client, t.oid).await.map_err(err)?;
            tables.push(TableInfo::new(cfg, t, cols, &self.source)?);
        }
        // Resuming: keep the first snapshot's filter (changes committed while the snapshot
        // was interrupted are then streamed as well: at least once, never lost).
        let progress = self.returned.snapshot.clone();
        if progress.is_none() || self.returned.filter.is_none() {
            self.returned.filter = Some(filter);
        }
        let (index, after_key) = match progress.as_ref().and_then(|p| p.table.clone()) {
            Some(done) => match tables.iter().position(|t| t.id.qualified() >= done) {
                Some(i) if tables[i].id.qualified() == done => {
                    let key = progress.and_then(|p| p.key);
                    if key.is_none() || tables[i].key.is_empty() {
                        // A keyless table is read again from its start.
                        (i, None)
                    } else {
                        (i, key)
                    }
                }
                Some(i) => (i, None),
                None => (tables.len(), None),
            },
            None => (0, None),
        };
        tracing::info!(
            "snapshot of {} tables (from table {index}) at {}",
            tables.len(),
            self.returned
                .filter
                .as_ref()
                .map(|f| f.lsn.to_string())
                .unwrap_or_default()
        );
        if let Phase::Snapshot(s) = &mut self.phase {
            let emitted = s.emitted;
            **s = SnapshotState {
                tables,
                index,
                after_key,
                open: true,
                emitted,
                ..SnapshotState::default()
            };
        }
        Ok(())
    }

    /// Reads the next chunk of the snapshot.
    async fn snapshot_chunk(&mut self) -> Result<Vec<SourceRecord>, ConnectError> {
        let cfg = self.cfg()?.clone();
        let Phase::Snapshot(mut state) = std::mem::replace(&mut self.phase, Phase::Starting) else {
            return Ok(Vec::new());
        };
        let result = self.snapshot_chunk_of(&cfg, &mut state).await;
        let finished = state.index >= state.tables.len();
        let held = if finished { state.held.take() } else { None };
        self.phase = Phase::Snapshot(state);
        let mut out = result?;
        if finished {
            if let Phase::Snapshot(s) = &self.phase {
                if s.cursor_open || s.open {
                    self.client()?
                        .batch_execute("COMMIT")
                        .await
                        .map_err(|e| pg_error("snapshot commit", &e))?;
                }
            }
            // The held record is the last: it carries the completed snapshot's offset.
            if let Some((mut rec, pos)) = held {
                set_marker(&mut rec, SnapshotMarker::Last);
                let mut last = pos;
                last.snapshot = Some(last.snapshot.unwrap_or_default());
                rec.source_offset = last.to_offset(true);
                out.push(rec);
            }
            self.returned.snapshot = None;
            self.returned.snapshot_completed = true;
            tracing::info!("snapshot completed");
            self.phase = if cfg.snapshot_mode == SnapshotMode::InitialOnly {
                Phase::Done
            } else {
                self.resume = self.returned.clone();
                self.open_cursor(&cfg).await?;
                Phase::Streaming
            };
        }
        Ok(out)
    }

    async fn snapshot_chunk_of(
        &mut self,
        cfg: &PgConfig,
        s: &mut SnapshotState,
    ) -> Result<Vec<SourceRecord>, ConnectError> {
        let mut out = Vec::new();
        let limit = cfg.snapshot_fetch_size.min(cfg.max_batch_size).max(1);
        while out.len() < limit && s.index < s.tables.len() {
            let table = s.tables[s.index].clone();
            let cols: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
            let client = self.client()?;
            let err = |e: tokio_postgres::Error| {
                pg_error(&format!("snapshot of {}", table.id.qualified()), &e)
            };
            let rows = if table.key.is_empty() {
                if !s.cursor_open {
                    let sql = format!(
                        "DECLARE moldau_snapshot NO SCROLL CURSOR FOR SELECT {} FROM {}",
                        cols.join(", "),
                        table.id.sql()
                    );
                    client.batch_execute(&sql).await.map_err(err)?;
                    s.cursor_open = true;
                }
                catalog::rows(
                    client,
                    &format!("FETCH {} FROM moldau_snapshot", limit - out.len()),
                )
                .await
                .map_err(err)?
            } else {
                let key_cols: Vec<String> = table
                    .key
                    .iter()
                    .map(|&i| quote_ident(&table.columns[i].name))
                    .collect();
                let condition = match &s.after_key {
                    Some(k) if k.len() == table.key.len() => {
                        let literals: Vec<String> = table
                            .key
                            .iter()
                            .zip(k)
                            .map(|(&i, v)| match v {
                                Some(v) => {
                                    format!("{}::{}", quote_literal(v), table.columns[i].sql_type)
                                }
                                None => "NULL".into(),
                            })
                            .collect();
                        format!(
                            " WHERE ({}) > ({})",
                            key_cols.join(", "),
                            literals.join(", ")
                        )
                    }
                    _ => String::new(),
                };
                let sql = format!(
                    "SELECT {} FROM {}{condition} ORDER BY {} LIMIT {}",
                    cols.join(", "),
                    table.id.sql(),
                    key_cols.join(", "),
                    limit - out.len()
                );
                catalog::rows(client, &sql).await.map_err(err)?
            };
            let wanted = limit - out.len();
            let table_done = rows.len() < wanted;
            for row in rows.iter().take(wanted) {
                let raw: Vec<Raw<'_>> = row
                    .iter()
                    .map(|v| v.as_deref().map(Raw::Text).unwrap_or(Raw::Null))
                    .collect();
                let after = table.row(&raw, false, cfg)?;
                let key_text: Vec<Option<String>> = table
                    .key
                    .iter()
                    .map(|&i| row.get(i).cloned().flatten())
                    .collect();
                let ts = now_us();
                let source = self.source_struct(
                    &table.id,
                    SnapshotMarker::True,
                    ts,
                    None,
                    self.returned.filter.as_ref().map(|f| f.lsn),
                    None,
                )?;
                let mut pos = self.returned.clone();
                pos.snapshot = Some(SnapshotProgress {
                    table: Some(table.id.qualified()),
                    key: (!table.key.is_empty()).then(|| key_text.clone()),
                });
                pos.ts_usec = Some(ts);
                let mut recs = Vec::new();
                self.change_records(
                    &table,
                    Op::Read,
                    None,
                    Some(after),
                    source,
                    &pos.to_offset(false),
                    &mut recs,
                )?;
                let first_in_table = s.after_key.is_none();
                for mut rec in recs {
                    if s.emitted == 0 {
                        set_marker(&mut rec, SnapshotMarker::First);
                    } else if first_in_table {
                        set_marker_name(&mut rec, "first_in_data_collection");
                    }
                    s.emitted += 1;
                    if let Some((prev, _)) = s.held.replace((rec, pos.clone())) {
                        out.push(prev);
                    }
                }
                s.after_key = Some(key_text);
            }
            if table_done {
                if s.cursor_open {
                    client
                        .batch_execute("CLOSE moldau_snapshot")
                        .await
                        .map_err(err)?;
                    s.cursor_open = false;
                }
                // The held record is the last of its table.
                if let Some((rec, _)) = &mut s.held {
                    if rec.record.topic == table.topic
                        && s.index + 1 < s.tables.len()
                        && marker_of(rec).as_deref() != Some("first")
                    {
                        set_marker_name(rec, "last_in_data_collection");
                    }
                }
                s.index += 1;
                s.after_key = None;
            }
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------
    // Streaming.

    /// Reads the next changes from the cursor slot into the queue. Returns how many
    /// messages were read.
    async fn fetch_changes(&mut self) -> Result<usize, ConnectError> {
        let cfg = self.cfg()?.clone();
        let session = self
            .session
            .as_ref()
            .ok_or_else(|| ConnectError::Retriable("not connected".into()))?;
        let Some(cursor) = session.cursor_slot.clone() else {
            return Ok(0);
        };
        let limit = i32::try_from(cfg.max_batch_size).unwrap_or(i32::MAX);
        let rows = session
            .client
            .query(
                "SELECT lsn::text, data FROM pg_logical_slot_get_binary_changes($1, NULL, $2, \
                 'proto_version', '1', 'publication_names', $3)",
                // An identifier list: quoted, as the publication was created.
                &[&cursor, &limit, &quote_ident(&cfg.publication_name)],
            )
            .await
            .map_err(|e| pg_error("read changes", &e))?;
        let n = rows.len();
        for row in rows {
            // A column of an unexpected type is a bug here, not a transient failure.
            let column =
                |e: tokio_postgres::Error| ConnectError::Fatal(format!("read changes: {e}"));
            let lsn: String = row.try_get(0).map_err(column)?;
            let data: Vec<u8> = row.try_get(1).map_err(column)?;
            let lsn = Lsn::parse(&lsn).unwrap_or_default();
            let msg = pgoutput::decode(&data)
                .map_err(|e| ConnectError::Fatal(format!("at LSN {lsn}: {e}")))?;
            self.handle_message(&cfg, lsn, msg).await?;
        }
        Ok(n)
    }

    async fn handle_message(
        &mut self,
        cfg: &PgConfig,
        lsn: Lsn,
        msg: Message,
    ) -> Result<(), ConnectError> {
        match msg {
            Message::Begin {
                final_lsn,
                commit_time_pg_us,
                xid,
            } => {
                let in_snapshot = self
                    .resume
                    .filter
                    .as_ref()
                    .is_some_and(|f| f.contains(xid, final_lsn));
                // Whole transactions before the resume position were emitted before.
                let before_resume = self.resume.lsn_commit.is_some_and(|c| final_lsn < c);
                let skip = in_snapshot || before_resume;
                self.tx = Some((
                    final_lsn,
                    commit_time_pg_us.saturating_add(PG_EPOCH_OFFSET_US),
                    xid,
                    0,
                    skip,
                ));
            }
            Message::Commit { commit_lsn, .. } => {
                self.tx = None;
                self.last_commit_lsn = Some(commit_lsn);
            }
            Message::Origin { .. } | Message::Type { .. } => {}
            Message::Relation {
                oid,
                namespace,
                name,
                columns,
                ..
            } => {
                let client = self.client()?;
                let cols = catalog::relation_columns(client, oid, &columns)
                    .await
                    .map_err(|e| pg_error("read table columns", &e))?;
                let id = TableId {
                    oid,
                    schema: namespace,
                    name,
                };
                let info = TableInfo::new(cfg, id, cols, &self.source)?;
                self.relations.insert(oid, info);
            }
            Message::Insert { relation, new } => {
                self.change(cfg, lsn, relation, "INSERT", &[&new], |t, cfg| {
                    if cfg.skip_creates {
                        return Ok(None);
                    }
                    Ok(Some(vec![(
                        Op::Create,
                        None,
                        Some(t.row(&tuple_raw(&new), false, cfg)?),
                    )]))
                })?;
            }
            Message::Update { relation, old, new } => {
                let mut full: Vec<&[TupleValue]> = vec![&new];
                if let Some((b'O', tuple)) = &old {
                    full.push(tuple);
                }
                self.change(cfg, lsn, relation, "UPDATE", &full, |t, cfg| {
                    if cfg.skip_updates {
                        return Ok(None);
                    }
                    let after = t.row(&tuple_raw(&new), false, cfg)?;
                    let before = match &old {
                        Some((kind, tuple)) => {
                            Some(t.row(&tuple_raw(tuple), *kind == b'K', cfg)?)
                        }
                        None => None,
                    };
                    // A changed primary key: a delete of the old key and a create, as
                    // Debezium emits it.
                    if let (Some(b), Some(schemas)) = (&before, &t.schemas) {
                        let old_key = debezium::key_of(schemas, b).map_err(data_err)?;
                        let new_key = debezium::key_of(schemas, &after).map_err(data_err)?;
                        if old_key.is_some() && old_key != new_key {
                            return Ok(Some(vec![
                                (Op::Delete, before, None),
                                (Op::Create, None, Some(after)),
                            ]));
                        }
                    }
                    Ok(Some(vec![(Op::Update, before, Some(after))]))
                })?;
            }
            Message::Delete {
                relation,
                old_kind,
                old,
            } => {
                let full: Vec<&[TupleValue]> = if old_kind == b'O' { vec![&old] } else { vec![] };
                self.change(cfg, lsn, relation, "DELETE", &full, |t, cfg| {
                    if cfg.skip_deletes {
                        return Ok(None);
                    }
                    let before = t.row(&tuple_raw(&old), old_kind == b'K', cfg)?;
                    Ok(Some(vec![(Op::Delete, Some(before), None)]))
                })?;
            }
            Message::Truncate { relations, .. } => {
                // One message, counted once; an event per captured table.
                let Some(relation) = relations.first().copied() else {
                    return Ok(());
                };
                let rest = relations.clone();
                self.change(cfg, lsn, relation, "TRUNCATE", &[], |_, _| Ok(None))?;
                if cfg.skip_truncates {
                    return Ok(());
                }
                let Some((commit_lsn, _, _, seq, skip)) = self.tx else {
                    return Ok(());
                };
                if skip || self.resume.already_emitted(commit_lsn, seq) {
                    return Ok(());
                }
                for oid in rest {
                    if let Some(t) = self.relations.get(&oid).cloned() {
                        if t.captured {
                            self.emit(&t, lsn, "TRUNCATE", vec![(Op::Truncate, None, None)])?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts a change message of the current transaction and, unless it was already
    /// emitted or its table is not captured, queues its events.
    #[allow(clippy::type_complexity)]
    fn change(
        &mut self,
        cfg: &PgConfig,
        lsn: Lsn,
        relation: u32,
        kind: &'static str,
        full_rows: &[&[TupleValue]],
        events: impl FnOnce(
            &TableInfo,
            &PgConfig,
        )
            -> Result<Option<Vec<(Op, Option<Struct>, Option<Struct>)>>, ConnectError>,
    ) -> Result<(), ConnectError> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(ConnectError::Fatal(format!(
                "a change at LSN {lsn} outside a transaction"
            )));
        };
        tx.3 += 1;
        let (commit_lsn, _, _, seq, skip) = *tx;
        if skip || self.resume.already_emitted(commit_lsn, seq) {
            return Ok(());
        }
        let Some(table) = self.relations.get(&relation).cloned() else {
            return Err(ConnectError::Fatal(format!(
                "a change at LSN {lsn} of relation {relation} without its Relation message"
            )));
        };
        // A change not emitted (table not captured, operation skipped) still counted
        // above: the next emitted change's `event_seq` includes it.
        if !table.captured || kind == "TRUNCATE" {
            return Ok(());
        }
        let table = self.relax_nullability(cfg, relation, table, full_rows)?;
        match events(&table, cfg)? {
            Some(evs) => self.emit(&table, lsn, kind, evs),
            None => Ok(()),
        }
    }

    /// A null in a column the catalog now says is NOT NULL: the change predates a
    /// `SET NOT NULL` (backfill, then constrain). The column becomes optional in this
    /// table's schemas rather than the task failing or inventing a value.
    fn relax_nullability(
        &mut self,
        cfg: &PgConfig,
        relation: u32,
        table: TableInfo,
        full_rows: &[&[TupleValue]],
    ) -> Result<TableInfo, ConnectError> {
        let mut columns = table.columns.clone();
        let mut relaxed = false;
        for (i, c) in columns.iter_mut().enumerate() {
            let null_here = full_rows
                .iter()
                .any(|row| matches!(row.get(i), Some(TupleValue::Null)));
            if !c.nullable && null_here {
                tracing::warn!(
                    "{}: a change has null in NOT NULL column {}; the column is optional in its schema from now on",
                    table.id.qualified(),
                    c.name
                );
                c.nullable = true;
                relaxed = true;
            }
        }
        if !relaxed {
            return Ok(table);
        }
        let info = TableInfo::new(cfg, table.id.clone(), columns, &self.source)?;
        self.relations.insert(relation, info.clone());
        Ok(info)
    }

    fn tx_position(&self, lsn: Lsn, kind: &'static str) -> Position {
        let mut p = self
            .queue
            .back()
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| self.returned.clone());
        if let Some((commit_lsn, ts, xid, seq, _)) = self.tx {
            p.lsn_commit = Some(commit_lsn);
            p.lsn = Some(lsn);
            p.event_seq = seq;
            p.tx_id = Some(i64::from(xid));
            p.ts_usec = Some(ts);
            p.message_type = Some(kind);
            p.snapshot = None;
            p.snapshot_completed = true;
            // Past the snapshot's position its filter has nothing left to filter.
            if p.filter.as_ref().is_some_and(|f| commit_lsn >= f.lsn) {
                p.filter = None;
            }
        }
        p
    }

    fn emit(
        &mut self,
        table: &TableInfo,
        lsn: Lsn,
        kind: &'static str,
        events: Vec<(Op, Option<Struct>, Option<Struct>)>,
    ) -> Result<(), ConnectError> {
        let Some((_, ts, xid, _, _)) = self.tx else {
            return Ok(());
        };
        let pos = self.tx_position(lsn, kind);
        let offset = pos.to_offset(false);
        let sequence = format!(
            "[{},\"{}\"]",
            self.last_commit_lsn
                .map(|l| format!("\"{}\"", l.0))
                .unwrap_or_else(|| "null".into()),
            lsn.0
        );
        // A primary key change (a delete and a create from one update): as Debezium, each
        // names the other key in a header.
        let key_change = match (kind, events.as_slice(), &table.schemas) {
            ("UPDATE", [(Op::Delete, Some(old), _), (Op::Create, _, Some(new))], Some(schemas)) => {
                let old_key = debezium::key_of(schemas, old).map_err(data_err)?;
                let new_key = debezium::key_of(schemas, new).map_err(data_err)?;
                Some((schemas.key.clone(), old_key, new_key))
            }
            _ => None,
        };
        let mut out = Vec::new();
        for (op, before, after) in events {
            let first_of_event = out.len();
            let source = self.source_struct(
                &table.id,
                SnapshotMarker::False,
                ts,
                Some(i64::from(xid)),
                Some(lsn),
                Some(sequence.clone()),
            )?;
            if op == Op::Truncate {
                let Some(schemas) = &table.schemas else {
                    continue;
                };
                let value = debezium::envelope(schemas, op, None, None, source, now_us())
                    .map_err(data_err)?;
                out.push(self.record(
                    table.topic.clone(),
                    None,
                    Value::Null,
                    Some(schemas.envelope.clone()),
                    Value::Struct(value),
                    offset.clone(),
                )?);
            } else {
                self.change_records(table, op, before, after, source, &offset, &mut out)?;
            }
            if let Some((schema, old_key, new_key)) = &key_change {
                let (name, key) = match op {
                    Op::Delete => ("__debezium.newkey", new_key),
                    _ => ("__debezium.oldkey", old_key),
                };
                for r in &mut out[first_of_event..] {
                    r.record.headers.push(Header {
                        key: name.to_string(),
                        schema: schema.clone(),
                        value: key.clone().map(Value::Struct).unwrap_or(Value::Null),
                    });
                }
            }
        }
        for r in out {
            self.queue.push_back((r, pos.clone()));
        }
        Ok(())
    }

    async fn cursor_position(&self) -> Result<Option<Lsn>, ConnectError> {
        let Some(cursor) = self.session.as_ref().and_then(|s| s.cursor_slot.clone()) else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT confirmed_flush_lsn::text FROM pg_catalog.pg_replication_slots WHERE slot_name = {}",
            quote_literal(&cursor)
        );
        Ok(catalog::scalar(self.client()?, &sql)
            .await
            .map_err(|e| pg_error("read cursor slot", &e))?
            .and_then(|l| Lsn::parse(&l)))
    }

    /// A heartbeat when due: runs `heartbeat.action.query` and returns the heartbeat
    /// record, whose offset is the position up to which everything was read.
    async fn heartbeat(&mut self) -> Result<Option<SourceRecord>, ConnectError> {
        let cfg = self.cfg()?.clone();
        if cfg.heartbeat_interval_ms == 0
            || self.last_heartbeat.elapsed() < Duration::from_millis(cfg.heartbeat_interval_ms)
            || !self.queue.is_empty()
            || self.tx.is_some()
        {
            return Ok(None);
        }
        self.last_heartbeat = Instant::now();
        if let Some(q) = &cfg.heartbeat_action_query {
            self.client()?
                .batch_execute(q)
                .await
                .map_err(|e| pg_error("heartbeat.action.query", &e))?;
        }
        let mut pos = self.returned.clone();
        if matches!(self.phase, Phase::Streaming) {
            if let Some(c) = self.cursor_position().await? {
                if pos.lsn_commit.is_none_or(|l| c > l) {
                    pos.lsn_commit = Some(c);
                    pos.lsn = Some(c);
                    pos.event_seq = 0;
                    pos.message_type = None;
                    pos.snapshot_completed = true;
                    if pos.filter.as_ref().is_some_and(|f| c >= f.lsn) {
                        pos.filter = None;
                    }
                }
            }
        }
        let (key, value) =
            debezium::heartbeat(&cfg.topic_prefix, now_us() / 1000).map_err(data_err)?;
        let rec = self.record(
            debezium::heartbeat_topic(&cfg.heartbeat_topic_prefix, &cfg.topic_prefix),
            Some(debezium::heartbeat_key_schema()),
            Value::Struct(key),
            Some(debezium::heartbeat_value_schema()),
            Value::Struct(value),
            pos.to_offset(false),
        )?;
        self.returned = pos.clone();
        self.resume = pos;
        Ok(Some(rec))
    }

    /// Warns when the slot's retained WAL nears `max_slot_wal_keep_size`; fails (or, with
    /// `when_needed`, re-snapshots) when the slot was lost.
    async fn check_wal(&mut self) -> Result<(), ConnectError> {
        if self
            .last_wal_check
            .is_some_and(|t| t.elapsed() < WAL_CHECK_INTERVAL)
        {
            return Ok(());
        }
        self.last_wal_check = Some(Instant::now());
        let cfg = self.cfg()?.clone();
        let sql = format!(
            "SELECT COALESCE(wal_status, ''), (pg_current_wal_lsn() - restart_lsn)::bigint, \
               (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'max_slot_wal_keep_size') \
             FROM pg_catalog.pg_replication_slots WHERE slot_name = {}",
            quote_literal(&cfg.slot_name)
        );
        let rows = catalog::rows(self.client()?, &sql)
            .await
            .map_err(|e| pg_error("check replication slot", &e))?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(());
        };
        let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let status = get(0);
        let retained_bytes: i64 = get(1).parse().unwrap_or(0);
        let max_mb: i64 = get(2).parse().unwrap_or(-1);
        let ctx = self
            .ctx
            .as_ref()
            .map(|c| c.status.clone())
            .unwrap_or_default();
        if status == "lost" {
            if cfg.snapshot_mode == SnapshotMode::WhenNeeded {
                // The next poll sets up again, finds the slot lost and re-snapshots.
                self.session = None;
                return Err(ConnectError::Retriable(format!(
                    "replication slot {} was lost",
                    cfg.slot_name
                )));
            }
            return Err(ConnectError::Fatal(format!(
                "replication slot {} was lost: PostgreSQL removed WAL it still needed (max_slot_wal_keep_size = {max_mb} MB); \
                 changes since the last committed offset cannot be read. Delete the connector's offsets to take a new snapshot, or use snapshot.mode=when_needed",
                cfg.slot_name
            )));
        }
        let near = max_mb > 0
            && retained_bytes as f64 >= WAL_WARN_RATIO * (max_mb as f64) * 1024.0 * 1024.0;
        if near || status == "extended" || status == "unreserved" {
            ctx.set_warning(Some(format!(
                "replication slot {} retains {} MB of WAL (wal_status {status}, max_slot_wal_keep_size {max_mb} MB): \
                 PostgreSQL may remove WAL the connector still needs; commit offsets more often or raise max_slot_wal_keep_size",
                cfg.slot_name,
                retained_bytes / (1024 * 1024)
            )));
        } else {
            ctx.set_warning(None);
        }
        Ok(())
    }

    async fn poll_inner(&mut self) -> Result<Vec<SourceRecord>, ConnectError> {
        self.ensure_session().await?;
        self.check_wal().await?;
        let cfg = self.cfg()?.clone();
        let mut out = Vec::new();
        match self.phase {
            Phase::Snapshot(_) => {
                out = self.snapshot_chunk().await?;
                if let Some(r) = out.last() {
                    self.returned = Position::from_offset(&r.source_offset);
                }
                return Ok(out);
            }
            Phase::Done | Phase::Starting => {
                tokio::time::sleep(Duration::from_millis(cfg.poll_interval_ms.min(1000))).await;
                return Ok(out);
            }
            Phase::Streaming => {}
        }
        if self.queue.is_empty() {
            let n = self.fetch_changes().await?;
            if n == 0 && self.queue.is_empty() {
                if let Some(h) = self.heartbeat().await? {
                    return Ok(vec![h]);
                }
                tokio::time::sleep(Duration::from_millis(cfg.poll_interval_ms.min(1000))).await;
                return Ok(out);
            }
        }
        while out.len() < cfg.max_batch_size {
            let Some((rec, pos)) = self.queue.pop_front() else {
                break;
            };
            self.returned = pos;
            out.push(rec);
        }
        if out.is_empty() {
            if let Some(h) = self.heartbeat().await? {
                out.push(h);
            }
        }
        Ok(out)
    }
}

fn marker_of(rec: &SourceRecord) -> Option<String> {
    match rec
        .record
        .value
        .get("source")
        .and_then(|s| s.get("snapshot"))
    {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn set_marker(rec: &mut SourceRecord, marker: SnapshotMarker) {
    set_marker_name(rec, marker.name());
}

fn set_marker_name(rec: &mut SourceRecord, marker: &str) {
    if let Value::Struct(env) = &mut rec.record.value {
        if let Some(Value::Struct(mut source)) = env.get("source").cloned() {
            if source.put("snapshot", Value::String(marker.into())).is_ok() {
                let _ = env.put("source", Value::Struct(source));
            }
        }
    }
}

#[async_trait]
impl SourceTask for PostgresSourceTask {
    async fn start(&mut self, props: &Props, ctx: TaskContext) -> Result<(), ConnectError> {
        let cfg = PgConfig::parse(props)?;
        if let Some(offset) = ctx.offsets.offset(&partition(&cfg.topic_prefix)) {
            self.returned = Position::from_offset(&offset);
            tracing::info!("resuming from offset {offset:?}");
        }
        self.cfg = Some(cfg);
        self.ctx = Some(ctx);
        self.phase = Phase::Starting;
        self.last_heartbeat = Instant::now();
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectError> {
        match self.poll_inner().await {
            Ok(r) => Ok(r),
            Err(e) => {
                if e.is_retriable() {
                    // Set up again from the last returned record on the next poll.
                    self.session = None;
                }
                Err(e)
            }
        }
    }

    /// The offsets of the records returned so far are stored: the connector's slot may
    /// release the WAL before the last returned transaction's commit.
    async fn commit(&mut self) -> Result<(), ConnectError> {
        let Some(target) = self.returned.lsn_commit else {
            return Ok(());
        };
        if !matches!(self.phase, Phase::Streaming) {
            return Ok(());
        }
        let Ok(cfg) = self.cfg() else { return Ok(()) };
        let slot = cfg.slot_name.clone();
        let Ok(client) = self.client() else {
            return Ok(());
        };
        let sql = format!(
            "SELECT pg_replication_slot_advance(slot_name, {lsn}::pg_lsn) FROM pg_catalog.pg_replication_slots \
             WHERE slot_name = {slot} AND confirmed_flush_lsn < {lsn}::pg_lsn",
            lsn = quote_literal(&target.to_string()),
            slot = quote_literal(&slot)
        );
        client
            .simple_query(&sql)
            .await
            .map_err(|e| pg_error(&format!("advance replication slot {slot}"), &e))?;
        Ok(())
    }

    async fn stop(&mut self) {
        let drop_slot = self
            .cfg
            .as_ref()
            .filter(|c| c.slot_drop_on_stop)
            .map(|c| c.slot_name.clone());
        if let (Some(slot), Some(session)) = (drop_slot, self.session.take()) {
            // The cursor slot goes with the session; the connector's slot only on request.
            if let Some(cursor) = &session.cursor_slot {
                let _ = session
                    .client
                    .simple_query(&format!(
                        "SELECT pg_drop_replication_slot({})",
                        quote_literal(cursor)
                    ))
                    .await;
            }
            let _ = session.client.batch_execute("ROLLBACK").await;
            if let Err(e) = session
                .client
                .simple_query(&format!(
                    "SELECT pg_drop_replication_slot({})",
                    quote_literal(&slot)
                ))
                .await
            {
                tracing::warn!("cannot drop replication slot {slot}: {e}");
            }
        }
        self.session = None;
    }
}

/// The task for the plugin table.
pub fn new_task() -> Box<dyn SourceTask> {
    Box::new(PostgresSourceTask::default())
}
