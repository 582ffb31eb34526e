//! The sink task: writes the records of each `put` in `batch.size` chunks, making sure
//! their tables exist with their columns (`auto.create`, `auto.evolve`), each chunk in one
//! transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::Props;
use crate::connector::{ConnectError, SinkTask, TaskContext};
use crate::data::Schema;
use crate::record::ConnectRecord;

use super::config::{Dialect, InsertMode, JdbcSinkConfig};
use super::db::{Db, DbError, Op};
use super::dialect::{Sql, Statement};
use super::rows::{location, row_of, Row};

/// How long one connection attempt of a running task may take.
const TASK_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Confluent's `JdbcSinkTask`.
#[derive(Default)]
pub struct JdbcSinkTask {
    config: Option<JdbcSinkConfig>,
    db: Option<Db>,
    /// Records put and not yet written.
    buffer: Vec<ConnectRecord>,
    /// Known tables' columns (lower case), read once and kept current after DDL.
    tables: HashMap<String, HashSet<String>>,
    /// Transient failures left before the task fails (reset by a successful write).
    remaining_retries: u32,
}

impl JdbcSinkTask {
    fn config(&self) -> Result<&JdbcSinkConfig, ConnectError> {
        self.config
            .as_ref()
            .ok_or_else(|| ConnectError::Fatal("JDBC sink task used before start".into()))
    }

    /// A transient failure: forget the connection, and let the worker redeliver after
    /// `retry.backoff.ms` until `max.retries` is used up.
    async fn transient(&mut self, e: DbError) -> ConnectError {
        if let Some(db) = self.db.take() {
            db.close().await;
        }
        self.tables.clear();
        let (max_retries, backoff_ms) = match &self.config {
            Some(c) => (c.max_retries, c.retry_backoff_ms),
            None => (0, 0),
        };
        if self.remaining_retries == 0 {
            return ConnectError::Fatal(format!(
                "JDBC sink failed after {max_retries} retries: {}",
                e.message
            ));
        }
        self.remaining_retries -= 1;
        tracing::warn!(
            "JDBC sink: {} ({} retries left, next in {backoff_ms} ms)",
            e.message,
            self.remaining_retries
        );
        // Confluent asks the worker to wait this long (context.timeout); the task waits itself.
        tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
        ConnectError::Retriable(e.message)
    }

    async fn connect(&mut self) -> Result<(), DbError> {
        if self.db.is_some() {
            return Ok(());
        }
        let config = self.config.as_ref().ok_or_else(|| DbError {
            message: "not started".into(),
            transient: false,
        })?;
        let mut last = None;
        for attempt in 1..=config.connection_attempts {
            match Db::connect(&config.url, TASK_CONNECT_TIMEOUT).await {
                Ok(db) => {
                    self.db = Some(db);
                    return Ok(());
                }
                Err(e) => {
                    tracing::info!(
                        "JDBC sink: connection attempt {attempt}/{} failed: {}",
                        config.connection_attempts,
                        e.message
                    );
                    last = Some(e);
                    if attempt < config.connection_attempts {
                        tokio::time::sleep(Duration::from_millis(config.connection_backoff_ms))
                            .await;
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| DbError {
            message: "no connection attempt made".into(),
            transient: true,
        }))
    }

    /// Writes one batch: all of it committed, or an error.
    async fn write(&mut self, records: &[ConnectRecord]) -> Result<(), ConnectError> {
        let config = self.config()?.clone();
        let rows: Vec<Row> = records
            .iter()
            .map(|r| row_of(&config, r).map_err(ConnectError::Fatal))
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.connect().await {
            return Err(self.transient(e).await);
        }
        let sql = Sql {
            dialect: config.url.dialect,
            quote: config.quote_identifiers,
        };
        match self.ensure_tables(&config, sql, &rows, records).await {
            Ok(()) => {}
            Err(TableError::Db(e)) if e.transient => return Err(self.transient(e).await),
            Err(TableError::Db(e)) => return Err(ConnectError::Fatal(e.message)),
            Err(TableError::Fatal(m)) => return Err(ConnectError::Fatal(m)),
        }
        let mut ops = Vec::with_capacity(rows.len());
        let mut statements: HashMap<String, Arc<String>> = HashMap::new();
        for (row, record) in rows.iter().zip(records) {
            let kind = match (row.delete, config.insert_mode) {
                (true, _) => Statement::Delete,
                (false, InsertMode::Insert) => Statement::Insert,
                (false, InsertMode::Upsert) => Statement::Upsert,
                (false, InsertMode::Update) => Statement::Update,
            };
            if kind != Statement::Insert && row.keys.is_empty() {
                return Err(ConnectError::Fatal(format!(
                    "Write to table '{}' in {:?} mode requires key field names to be known, check \
                     the primary key configuration (record at {})",
                    row.table,
                    kind,
                    location(record)
                )));
            }
            let Some((text, order)) = sql.statement(row, kind).map_err(|m| {
                ConnectError::Fatal(format!("{m} (record at {})", location(record)))
            })?
            else {
                continue;
            };
            let text = statements
                .entry(text.clone())
                .or_insert_with(|| Arc::new(text))
                .clone();
            let cells: Vec<_> = row.keys.iter().chain(row.values.iter()).collect();
            ops.push(Op {
                sql: text,
                params: order
                    .into_iter()
                    .map(|i| (cells[i].schema.clone(), cells[i].value.clone()))
                    .collect(),
                location: location(record),
            });
        }
        let db = self
            .db
            .as_mut()
            .ok_or_else(|| ConnectError::Retriable("no connection".into()))?;
        match db.write(ops.clone(), config.db_timezone).await {
            Ok(()) => {
                self.remaining_retries = config.max_retries;
                Ok(())
            }
            Err((e, _)) if e.transient => Err(self.transient(e).await),
            Err((e, Some(i))) => Err(ConnectError::Fatal(format!(
                "Failed to write record at {} with `{}`: {}",
                ops[i].location, ops[i].sql, e.message
            ))),
            Err((e, None)) => Err(ConnectError::Fatal(format!(
                "Failed to commit a batch of {} records starting at {}: {}",
                ops.len(),
                ops.first().map(|o| o.location.as_str()).unwrap_or("-"),
                e.message
            ))),
        }
    }

    /// Creates missing tables and adds missing columns as configured.
    async fn ensure_tables(
        &mut self,
        config: &JdbcSinkConfig,
        sql: Sql,
        rows: &[Row],
        records: &[ConnectRecord],
    ) -> Result<(), TableError> {
        // Per table, in first-seen order: its columns (name, schema, is key) and the first
        // record writing it (named in errors).
        let mut tables: Vec<(String, Vec<ColumnSpec>, String)> = Vec::new();
        for (row, record) in rows.iter().zip(records) {
            let i = match tables.iter().position(|(t, _, _)| *t == row.table) {
                Some(i) => i,
                None => {
                    tables.push((row.table.clone(), Vec::new(), location(record)));
                    tables.len() - 1
                }
            };
            let columns = &mut tables[i].1;
            let cells = row
                .keys
                .iter()
                .map(|c| (c, true))
                .chain(row.values.iter().map(|c| (c, false)));
            for (cell, is_key) in cells {
                if !columns
                    .iter()
                    .any(|(n, _, _)| n.eq_ignore_ascii_case(&cell.name))
                {
                    columns.push((cell.name.clone(), (*cell.schema).clone(), is_key));
                }
            }
        }
        let fold_lower = !config.quote_identifiers && config.url.dialect == Dialect::Postgres;
        for (table, columns, first) in tables {
            let known = match self.tables.get(&table) {
                Some(k) => Some(k.clone()),
                None => self.read_columns(&table, fold_lower).await?,
            };
            let Some(existing) = known else {
                if !config.auto_create {
                    return Err(TableError::Fatal(format!(
                        "Table '{table}' is missing and auto-creation is disabled (record at {first})"
                    )));
                }
                let ddl = sql
                    .create_table(&table, &columns)
                    .map_err(|m| TableError::Fatal(format!("{m} (record at {first})")))?;
                tracing::info!("JDBC sink: creating table: {ddl}");
                if let Err(e) = self.db_mut()?.execute_ddl(&ddl).await {
                    // Another task may have created it meanwhile.
                    if self.read_columns(&table, fold_lower).await?.is_none() {
                        return Err(TableError::Db(DbError {
                            message: format!(
                                "Could not create table '{table}' (record at {first}): {}",
                                e.message
                            ),
                            transient: e.transient,
                        }));
                    }
                }
                self.read_columns(&table, fold_lower).await?;
                continue;
            };
            let missing: Vec<&ColumnSpec> = columns
                .iter()
                .filter(|(n, _, _)| !existing.contains(&n.to_lowercase()))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let names = missing
                .iter()
                .map(|(n, _, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if !config.auto_evolve {
                return Err(TableError::Fatal(format!(
                    "Table '{table}' is missing fields ({names}) and auto-evolution is disabled \
                     (record at {first})"
                )));
            }
            for (name, schema, is_key) in missing {
                if *is_key {
                    return Err(TableError::Fatal(format!(
                        "Cannot ALTER TABLE '{table}' to add missing key field '{name}': primary \
                         keys cannot be evolved (record at {first})"
                    )));
                }
                if !schema.optional && schema.default.is_none() {
                    return Err(TableError::Fatal(format!(
                        "Cannot ALTER TABLE '{table}' to add missing field '{name}', as the field \
                         is not optional and does not have a default value (record at {first})"
                    )));
                }
                let ddl = sql
                    .add_column(&table, name, schema)
                    .map_err(|m| TableError::Fatal(format!("{m} (record at {first})")))?;
                tracing::info!("JDBC sink: evolving table: {ddl}");
                if let Err(e) = self.db_mut()?.execute_ddl(&ddl).await {
                    let now = self.read_columns(&table, fold_lower).await?;
                    if !now.is_some_and(|c| c.contains(&name.to_lowercase())) {
                        return Err(TableError::Db(DbError {
                            message: format!("Could not add column '{name}' to '{table}' (record at {first}): {}", e.message),
                            transient: e.transient,
                        }));
                    }
                }
            }
            self.read_columns(&table, fold_lower).await?;
        }
        Ok(())
    }

    fn db_mut(&mut self) -> Result<&mut Db, TableError> {
        self.db.as_mut().ok_or_else(|| {
            TableError::Db(DbError {
                message: "no connection".into(),
                transient: true,
            })
        })
    }

    /// Reads (and caches) a table's columns.
    async fn read_columns(
        &mut self,
        table: &str,
        fold_lower: bool,
    ) -> Result<Option<HashSet<String>>, TableError> {
        let columns = self
            .db_mut()?
            .columns(table, fold_lower)
            .await
            .map_err(TableError::Db)?;
        let set = columns.map(|c| {
            c.into_iter()
                .map(|n| n.to_lowercase())
                .collect::<HashSet<_>>()
        });
        match &set {
            Some(s) => {
                self.tables.insert(table.to_string(), s.clone());
            }
            None => {
                self.tables.remove(table);
            }
        }
        Ok(set)
    }

    /// Writes out the buffer in `batch.size` chunks, keeping what was not written.
    async fn write_buffer(&mut self, all: bool) -> Result<(), ConnectError> {
        let batch_size = self.config()?.batch_size;
        while !self.buffer.is_empty() && (all || self.buffer.len() >= batch_size) {
            let n = batch_size.min(self.buffer.len());
            let chunk: Vec<ConnectRecord> = self.buffer[..n].to_vec();
            self.write(&chunk).await?;
            self.buffer.drain(..n);
        }
        Ok(())
    }
}

/// A column a batch needs: name, schema, whether it is part of the primary key.
type ColumnSpec = (String, Schema, bool);

enum TableError {
    Db(DbError),
    Fatal(String),
}

#[async_trait]
impl SinkTask for JdbcSinkTask {
    async fn start(&mut self, props: &Props, _ctx: TaskContext) -> Result<(), ConnectError> {
        let config = JdbcSinkConfig::parse(props)?;
        self.remaining_retries = config.max_retries;
        self.config = Some(config);
        Ok(())
    }

    /// Writes every record given, in `batch.size` chunks, before returning (as Confluent's
    /// sink writes each `put`): a row is in the database as soon as the worker consumed it,
    /// not at the worker's next offset flush.
    async fn put(&mut self, records: Vec<ConnectRecord>) -> Result<(), ConnectError> {
        self.buffer.extend(records);
        if let Err(e) = self.write_buffer(true).await {
            // The worker gives these records again after a retriable error; chunks already
            // written are written again (idempotent in upsert mode), the failed one was
            // rolled back.
            self.buffer.clear();
            return Err(e);
        }
        Ok(())
    }

    async fn flush(&mut self, _offsets: &[(String, i32, i64)]) -> Result<(), ConnectError> {
        self.write_buffer(true).await
    }

    async fn stop(&mut self) {
        if let Some(db) = self.db.take() {
            db.close().await;
        }
    }
}
