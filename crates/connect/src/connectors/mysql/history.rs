//! Debezium's schema history topic: every DDL of the captured tables (the snapshot's
//! `CREATE TABLE`s and the binlog's DDL statements) as a JSON record with the binlog
//! position and the resulting table definitions (`tableChanges`), written with acks=all to
//! a single-partition topic, and read back at start so rows older than a later `ALTER` are
//! decoded with the columns they were written with.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{json, Value as Json};

use super::schema::TableDef;
use super::source::{position_le, BinlogOffset};
use crate::config::Props;
use crate::connector::ConnectError;
use crate::data::Value;

/// A change of one table in a history record.
#[derive(Clone, Debug, PartialEq)]
pub enum TableChange {
    /// CREATE or ALTER: the table's definition after the DDL.
    Define(&'static str, TableDef),
    Drop {
        db: String,
        table: String,
    },
}

/// A history record read back.
#[derive(Clone, Debug)]
pub struct HistoryRecord {
    pub file: String,
    pub pos: u64,
    pub changes: Vec<TableChange>,
}

pub struct History {
    topic: String,
    client: ClientConfig,
    producer: FutureProducer,
    server: String,
}

fn kafka_err(what: &str, e: impl std::fmt::Display) -> ConnectError {
    ConnectError::Retriable(format!("schema history topic: {what}: {e}"))
}

fn table_id(db: &str, table: &str) -> String {
    format!("\"{db}\".\"{table}\"")
}

impl History {
    /// Connects to the history topic (created with one partition when missing).
    pub async fn open(
        topic: &str,
        bootstrap: Option<&str>,
        worker_props: &Props,
        topic_prefix: &str,
    ) -> Result<History, ConnectError> {
        let mut client = ClientConfig::new();
        for (k, v) in worker_props {
            client.set(k, v);
        }
        if let Some(b) = bootstrap {
            client.set("bootstrap.servers", b);
        }
        let admin: AdminClient<DefaultClientContext> =
            client.create().map_err(|e| kafka_err("admin client", e))?;
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1))
            .set("cleanup.policy", "delete")
            .set("retention.ms", "-1");
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        match admin.create_topics([&new], &opts).await {
            Ok(results) => {
                for r in results {
                    if let Err((_, code)) = r {
                        if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                            return Err(kafka_err("create topic", code));
                        }
                    }
                }
            }
            Err(e) => return Err(kafka_err("create topic", e)),
        }
        let producer: FutureProducer = client
            .clone()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .create()
            .map_err(|e| kafka_err("producer", e))?;
        Ok(History {
            topic: topic.to_string(),
            client,
            producer,
            server: topic_prefix.to_string(),
        })
    }

    /// Writes one DDL and waits until Kafka acknowledged it (before the events after it).
    pub async fn record(
        &self,
        position: &BinlogOffset,
        db: &str,
        ddl: &str,
        changes: &[TableChange],
        now_ms: i64,
    ) -> Result<(), ConnectError> {
        let position: serde_json::Map<String, Json> = position
            .to_map()
            .into_iter()
            .map(|(k, v)| {
                let j = match v {
                    Value::String(s) => Json::String(s),
                    Value::Int64(n) => json!(n),
                    Value::Int32(n) => json!(n),
                    Value::Boolean(b) => json!(b),
                    _ => Json::Null,
                };
                (k, j)
            })
            .collect();
        let table_changes: Vec<Json> = changes
            .iter()
            .map(|c| match c {
                TableChange::Define(kind, def) => json!({
                    "type": kind,
                    "id": table_id(&def.db, &def.table),
                    "table": {
                        "defaultCharsetName": null,
                        "primaryKeyColumnNames": def.primary_key_column_names,
                        "columns": def.columns,
                        "attributes": [],
                    },
                    "comment": null,
                }),
                TableChange::Drop { db, table } => json!({
                    "type": "DROP",
                    "id": table_id(db, table),
                }),
            })
            .collect();
        let record = json!({
            "source": {"server": self.server},
            "position": position,
            "ts_ms": now_ms,
            "databaseName": db,
            "ddl": ddl,
            "tableChanges": table_changes,
        });
        let payload = record.to_string();
        self.producer
            .send(
                FutureRecord::<(), String>::to(&self.topic)
                    .partition(0)
                    .payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| kafka_err("write", e))?;
        Ok(())
    }

    /// Every record of the topic, in order.
    pub async fn read_all(&self) -> Result<Vec<HistoryRecord>, ConnectError> {
        let client = self.client.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || read_blocking(client, &topic))
            .await
            .map_err(|e| ConnectError::Fatal(format!("schema history reader: {e}")))?
    }
}

fn read_blocking(
    mut client: ClientConfig,
    topic: &str,
) -> Result<Vec<HistoryRecord>, ConnectError> {
    let consumer: BaseConsumer = client
        .set(
            "group.id",
            format!("moldau-schema-history-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(|e| kafka_err("consumer", e))?;
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .map_err(|e| kafka_err("watermarks", e))?;
    let mut out = Vec::new();
    if high <= low {
        return Ok(out);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(low))
        .map_err(|e| kafka_err("assign", e))?;
    consumer.assign(&tpl).map_err(|e| kafka_err("assign", e))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut next = low;
    while next < high {
        if std::time::Instant::now() > deadline {
            return Err(kafka_err("read", "timed out reading the history topic"));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(e)) => return Err(kafka_err("read", e)),
            Some(Ok(m)) => {
                next = m.offset() + 1;
                if let Some(p) = m.payload() {
                    match parse_record(p) {
                        Some(r) => out.push(r),
                        None => tracing::warn!(
                            "skipping an unreadable schema history record at offset {}",
                            m.offset()
                        ),
                    }
                }
            }
        }
    }
    Ok(out)
}

fn parse_record(bytes: &[u8]) -> Option<HistoryRecord> {
    let j: Json = serde_json::from_slice(bytes).ok()?;
    let pos = j.get("position")?;
    let file = pos.get("file")?.as_str()?.to_string();
    let p = pos.get("pos")?.as_u64()?;
    let mut changes = Vec::new();
    for c in j
        .get("tableChanges")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let kind = c.get("type").and_then(Json::as_str).unwrap_or("");
        let id = c.get("id").and_then(Json::as_str).unwrap_or("");
        let parts: Vec<&str> = id.split("\".\"").map(|s| s.trim_matches('"')).collect();
        let [db, table] = parts.as_slice() else {
            continue;
        };
        match kind {
            "DROP" => changes.push(TableChange::Drop {
                db: db.to_string(),
                table: table.to_string(),
            }),
            _ => {
                let t = c.get("table")?;
                let def = TableDef {
                    db: db.to_string(),
                    table: table.to_string(),
                    columns: serde_json::from_value(t.get("columns")?.clone()).ok()?,
                    primary_key_column_names: serde_json::from_value(
                        t.get("primaryKeyColumnNames")?.clone(),
                    )
                    .ok()?,
                };
                changes.push(TableChange::Define(
                    if kind == "ALTER" { "ALTER" } else { "CREATE" },
                    def,
                ));
            }
        }
    }
    Some(HistoryRecord {
        file,
        pos: p,
        changes,
    })
}

/// The table definitions as of a binlog position: the history's changes up to it.
pub fn tables_at(
    records: &[HistoryRecord],
    file: &str,
    pos: u64,
) -> std::collections::HashMap<(String, String), TableDef> {
    let mut tables = std::collections::HashMap::new();
    for r in records {
        if !position_le(&r.file, r.pos, file, pos) {
            continue;
        }
        for c in &r.changes {
            match c {
                TableChange::Define(_, def) => {
                    tables.insert((def.db.clone(), def.table.clone()), def.clone());
                }
                TableChange::Drop { db, table } => {
                    tables.remove(&(db.clone(), table.clone()));
                }
            }
        }
    }
    tables
}
