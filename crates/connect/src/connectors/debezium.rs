//! What Debezium's connectors share, so that Moldau's MySQL and PostgreSQL change events
//! look like Debezium's to whoever reads them (ExtractNewRecordState, sinks, consumers):
//! the change-event envelope, its key, the transaction block, heartbeats and topic names.

use regex::Regex;

use crate::connector::ConnectError;
use crate::data::{DataError, Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};

/// Debezium's `*.include.list` / `*.exclude.list` of one kind of name (database, schema,
/// table, column): regular expressions matching the whole name; an include list, when
/// given, decides alone, else the exclude list.
#[derive(Clone, Debug, Default)]
pub struct NameFilter {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl NameFilter {
    /// From the two keys' values (name, patterns); `case_insensitive` as MySQL's names.
    pub fn new(
        include: (&str, &[String]),
        exclude: (&str, &[String]),
        case_insensitive: bool,
    ) -> Result<NameFilter, ConnectError> {
        let flags = if case_insensitive { "(?i)" } else { "" };
        let compile = |(key, patterns): (&str, &[String])| -> Result<Vec<Regex>, ConnectError> {
            patterns
                .iter()
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .map(|p| {
                    Regex::new(&format!("{flags}^(?:{p})$")).map_err(|e| {
                        ConnectError::Config(format!(
                            "Invalid value {p} for configuration {key}: {e}"
                        ))
                    })
                })
                .collect()
        };
        Ok(NameFilter {
            include: compile(include)?,
            exclude: compile(exclude)?,
        })
    }

    /// Whether a name is captured.
    pub fn matches(&self, name: &str) -> bool {
        if !self.include.is_empty() {
            return self.include.iter().any(|r| r.is_match(name));
        }
        !self.exclude.iter().any(|r| r.is_match(name))
    }
}

/// Debezium's `Envelope.Operation` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A row read by a snapshot.
    Read,
    Create,
    Update,
    Delete,
    Truncate,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Read => "r",
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Truncate => "t",
        }
    }
}

/// The optional `transaction` block of an envelope (Debezium's `event.block`).
pub fn transaction_block_schema() -> SchemaRef {
    SchemaBuilder::struct_builder()
        .name("event.block")
        .version(1)
        .optional()
        .field("id", Schema::primitive(Type::String, false))
        .and_then(|b| b.field("total_order", Schema::primitive(Type::Int64, false)))
        .and_then(|b| {
            b.field(
                "data_collection_order",
                Schema::primitive(Type::Int64, false),
            )
        })
        .expect("static schema")
        .build()
}

/// The schemas of one table's change events.
#[derive(Clone, Debug)]
pub struct TableSchemas {
    /// `<base>.Key`: the primary key columns; `None` for a table without a key (its events
    /// have a null key).
    pub key: Option<SchemaRef>,
    /// `<base>.Value`: every captured column; optional, as `before` and `after` are.
    pub row: SchemaRef,
    /// `<base>.Envelope`.
    pub envelope: SchemaRef,
}

/// Builds a table's schemas from its columns (name, schema) and which of them are the key.
/// `base` is `<topic.prefix>.<database or schema>.<table>`; `source` is the connector's
/// source-info schema.
pub fn table_schemas(
    base: &str,
    columns: &[(String, SchemaRef)],
    key_columns: &[String],
    source: &SchemaRef,
) -> Result<TableSchemas, DataError> {
    let key = if key_columns.is_empty() {
        None
    } else {
        let mut b = SchemaBuilder::struct_builder().name(format!("{base}.Key"));
        for k in key_columns {
            let (name, schema) = columns
                .iter()
                .find(|(n, _)| n == k)
                .ok_or_else(|| DataError(format!("key column {k} is not a column of {base}")))?;
            b = b.field(name, schema.clone())?;
        }
        Some(b.build())
    };
    let mut row = SchemaBuilder::struct_builder()
        .name(format!("{base}.Value"))
        .optional();
    for (name, schema) in columns {
        row = row.field(name, schema.clone())?;
    }
    let row = row.build();
    let envelope = SchemaBuilder::struct_builder()
        .name(format!("{base}.Envelope"))
        .version(2)
        .field("before", row.clone())?
        .field("after", row.clone())?
        .field("source", source.clone())?
        .field("transaction", transaction_block_schema())?
        .field("op", Schema::primitive(Type::String, false))?
        .field("ts_ms", Schema::primitive(Type::Int64, true))?
        .field("ts_us", Schema::primitive(Type::Int64, true))?
        .field("ts_ns", Schema::primitive(Type::Int64, true))?
        .build();
    Ok(TableSchemas { key, row, envelope })
}

/// A change event's value: `before`/`after` rows (structs of [`TableSchemas::row`]), the
/// source info, the operation and when the connector processed it (`now_us`, microseconds
/// since the epoch; Debezium's `ts_ms`/`ts_us`/`ts_ns`).
pub fn envelope(
    schemas: &TableSchemas,
    op: Op,
    before: Option<Struct>,
    after: Option<Struct>,
    source: Struct,
    now_us: i64,
) -> Result<Struct, DataError> {
    let mut s = Struct::new(schemas.envelope.clone())?;
    if let Some(b) = before {
        s.put("before", Value::Struct(b))?;
    }
    if let Some(a) = after {
        s.put("after", Value::Struct(a))?;
    }
    s.put("source", Value::Struct(source))?;
    s.put("op", Value::String(op.code().to_string()))?;
    s.put("ts_ms", Value::Int64(now_us / 1000))?;
    s.put("ts_us", Value::Int64(now_us))?;
    s.put("ts_ns", Value::Int64(now_us.saturating_mul(1000)))?;
    Ok(s)
}

/// The key struct of a row: the key columns' values taken from the row.
pub fn key_of(schemas: &TableSchemas, row: &Struct) -> Result<Option<Struct>, DataError> {
    let Some(key_schema) = &schemas.key else {
        return Ok(None);
    };
    let mut key = Struct::new(key_schema.clone())?;
    for f in &key_schema.fields {
        let v = row.get(&f.name).cloned().unwrap_or(Value::Null);
        key.put(&f.name, v)?;
    }
    Ok(Some(key))
}

/// Debezium's default heartbeat topic: `topic.heartbeat.prefix` (default
/// `__debezium-heartbeat`) `.` `topic.prefix`.
pub fn heartbeat_topic(heartbeat_prefix: &str, topic_prefix: &str) -> String {
    format!("{heartbeat_prefix}.{topic_prefix}")
}

/// A heartbeat's key schema (`io.debezium.connector.common.ServerNameKey`).
pub fn heartbeat_key_schema() -> SchemaRef {
    SchemaBuilder::struct_builder()
        .name("io.debezium.connector.common.ServerNameKey")
        .field("serverName", Schema::primitive(Type::String, false))
        .expect("static schema")
        .build()
}

/// A heartbeat's value schema (`io.debezium.connector.common.Heartbeat`).
pub fn heartbeat_value_schema() -> SchemaRef {
    SchemaBuilder::struct_builder()
        .name("io.debezium.connector.common.Heartbeat")
        .field("ts_ms", Schema::primitive(Type::Int64, false))
        .expect("static schema")
        .build()
}

/// A heartbeat's key and value.
pub fn heartbeat(topic_prefix: &str, now_ms: i64) -> Result<(Struct, Struct), DataError> {
    let key = Struct::new(heartbeat_key_schema())?
        .with("serverName", Value::String(topic_prefix.to_string()))?;
    let value = Struct::new(heartbeat_value_schema())?.with("ts_ms", Value::Int64(now_ms))?;
    Ok((key, value))
}

/// Debezium's `snapshot` source field: `true` for snapshot rows (`last` for the last one),
/// `false` while streaming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMarker {
    True,
    First,
    Last,
    Incremental,
    False,
}

impl SnapshotMarker {
    pub fn name(self) -> &'static str {
        match self {
            SnapshotMarker::True => "true",
            SnapshotMarker::First => "first",
            SnapshotMarker::Last => "last",
            SnapshotMarker::Incremental => "incremental",
            SnapshotMarker::False => "false",
        }
    }
}

/// The schema of Debezium's `source.snapshot` field (an enum as an optional string with a
/// default of `false`).
pub fn snapshot_field_schema() -> SchemaRef {
    SchemaBuilder::new(Type::String)
        .optional()
        .name("io.debezium.data.Enum")
        .version(1)
        .parameter(
            "allowed",
            "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental",
        )
        .default_value(Value::String("false".into()))
        .expect("a string default")
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> SchemaRef {
        SchemaBuilder::struct_builder()
            .name("io.debezium.connector.mysql.Source")
            .field("db", Schema::primitive(Type::String, false))
            .unwrap()
            .build()
    }

    #[test]
    fn an_update_event_has_before_after_source_and_op() {
        let cols = vec![
            ("id".to_string(), Schema::primitive(Type::Int32, false)),
            ("name".to_string(), Schema::primitive(Type::String, true)),
        ];
        let s = table_schemas("shop.inv.customers", &cols, &["id".into()], &source()).unwrap();
        assert_eq!(
            s.envelope.name.as_deref(),
            Some("shop.inv.customers.Envelope")
        );
        assert_eq!(
            s.key.as_ref().unwrap().name.as_deref(),
            Some("shop.inv.customers.Key")
        );
        let row = |n: &str| {
            Struct::new(s.row.clone())
                .unwrap()
                .with("id", Value::Int32(7))
                .unwrap()
                .with("name", Value::String(n.into()))
                .unwrap()
        };
        let src = Struct::new(source())
            .unwrap()
            .with("db", Value::String("inv".into()))
            .unwrap();
        let e = envelope(
            &s,
            Op::Update,
            Some(row("a")),
            Some(row("b")),
            src,
            1_700_000_000_123_456,
        )
        .unwrap();
        assert_eq!(e.get("op"), Some(&Value::String("u".into())));
        assert_eq!(e.get("ts_ms"), Some(&Value::Int64(1_700_000_000_123)));
        let key = key_of(&s, &row("b")).unwrap().unwrap();
        assert_eq!(key.get("id"), Some(&Value::Int32(7)));
    }

    #[test]
    fn a_key_column_must_exist() {
        let cols = vec![("id".to_string(), Schema::primitive(Type::Int32, false))];
        assert!(table_schemas("a.b.c", &cols, &["nope".into()], &source()).is_err());
    }
}
