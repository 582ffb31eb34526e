//! The `source` block of the change events (Debezium's `io.debezium.connector.mysql.Source`)
//! and the connector's source offsets (Debezium's binlog offsets: `file`, `pos`, `event`,
//! `row`, `ts_sec`, `server_id`, `snapshot`), with the snapshot's progress.

use super::incremental::IncrementalProgress;
use crate::connectors::debezium::{snapshot_field_schema, SnapshotMarker};

/// Debezium's `snapshot` values beyond [`SnapshotMarker`]: the first and last row of each
/// table.
pub const FIRST_IN_DATA_COLLECTION: &str = "first_in_data_collection";
pub const LAST_IN_DATA_COLLECTION: &str = "last_in_data_collection";
use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use crate::storage::OffsetMap;

/// Which of Debezium's two binlog connectors the events look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    MySql,
    MariaDb,
}

impl Flavor {
    pub fn connector(self) -> &'static str {
        match self {
            Flavor::MySql => "mysql",
            Flavor::MariaDb => "mariadb",
        }
    }
}

/// The source-info schema (field order as Debezium's).
pub fn source_schema_for(flavor: Flavor) -> SchemaRef {
    let opt = |t| Schema::primitive(t, true);
    let req = |t| Schema::primitive(t, false);
    let name = format!("io.debezium.connector.{}.Source", flavor.connector());
    let fields: Vec<(&str, SchemaRef)> = vec![
        ("version", req(Type::String)),
        ("connector", req(Type::String)),
        ("name", req(Type::String)),
        ("ts_ms", req(Type::Int64)),
        ("snapshot", snapshot_field_schema()),
        ("db", req(Type::String)),
        ("sequence", opt(Type::String)),
        ("ts_us", opt(Type::Int64)),
        ("ts_ns", opt(Type::Int64)),
        ("table", opt(Type::String)),
        ("server_id", req(Type::Int64)),
        ("gtid", opt(Type::String)),
        ("file", req(Type::String)),
        ("pos", req(Type::Int64)),
        ("row", req(Type::Int32)),
        ("thread", opt(Type::Int64)),
        ("query", opt(Type::String)),
    ];
    let mut b = SchemaBuilder::struct_builder().name(name);
    for (n, s) in fields {
        b = b.field(n, s).expect("static schema");
    }
    b.build()
}

/// The MySQL flavour's schema (what [`super::schema::Captured`] builds envelopes with
/// unless told otherwise).
pub fn source_schema() -> SchemaRef {
    source_schema_for(Flavor::MySql)
}

/// The values of one event's source block.
#[derive(Clone, Debug, Default)]
pub struct SourceInfo {
    pub ts_ms: i64,
    /// The `snapshot` field (a [`SnapshotMarker`] name or one of the per-table markers);
    /// `None` is `false`.
    pub snapshot: Option<&'static str>,
    pub db: String,
    pub table: Option<String>,
    pub server_id: i64,
    /// The transaction's GTID.
    pub gtid: Option<String>,
    pub file: String,
    pub pos: i64,
    pub row: i32,
    pub thread: Option<i64>,
    pub query: Option<String>,
}

impl SourceInfo {
    pub fn to_struct(&self, schema: &SchemaRef, topic_prefix: &str) -> Struct {
        let connector = schema
            .name
            .as_deref()
            .and_then(|n| n.split('.').nth(3))
            .unwrap_or("mysql")
            .to_string();
        let mut s = Struct::new(schema.clone()).expect("a struct schema");
        // Every value below fits its field's schema by construction.
        let mut put = |k: &str, v: Value| {
            let _ = s.put(k, v);
        };
        put(
            "version",
            Value::String(env!("CARGO_PKG_VERSION").to_string()),
        );
        put("connector", Value::String(connector));
        put("name", Value::String(topic_prefix.to_string()));
        put("ts_ms", Value::Int64(self.ts_ms));
        put(
            "snapshot",
            Value::String(
                self.snapshot
                    .unwrap_or(SnapshotMarker::False.name())
                    .to_string(),
            ),
        );
        put("db", Value::String(self.db.clone()));
        put("ts_us", Value::Int64(self.ts_ms.saturating_mul(1000)));
        put("ts_ns", Value::Int64(self.ts_ms.saturating_mul(1_000_000)));
        if let Some(t) = &self.table {
            put("table", Value::String(t.clone()));
        }
        put("server_id", Value::Int64(self.server_id));
        if let Some(g) = &self.gtid {
            put("gtid", Value::String(g.clone()));
        }
        put("file", Value::String(self.file.clone()));
        put("pos", Value::Int64(self.pos));
        put("row", Value::Int32(self.row));
        if let Some(t) = self.thread {
            put("thread", Value::Int64(t));
        }
        if let Some(q) = &self.query {
            put("query", Value::String(q.clone()));
        }
        s
    }
}

/// Where an interrupted snapshot stopped: the table of the last emitted row and its key
/// (a JSON array of tagged values, as the reader encodes it); no key: redo that table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnapshotProgress {
    pub table: Option<String>,
    pub key: Option<String>,
}

/// A restart point in the binlog: the position of the transaction's start (or of the next
/// event between transactions), and how much of the transaction was already emitted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BinlogOffset {
    pub file: String,
    pub pos: u64,
    /// Row events of the transaction already emitted completely.
    pub events_to_skip: u64,
    /// Rows of the next row event already emitted.
    pub rows_to_skip: u64,
    pub ts_sec: i64,
    pub server_id: i64,
    /// MariaDB's GTID position of the restart point (`domain-server-seq` per domain).
    pub gtids: Option<String>,
    /// A snapshot in progress (the position is where streaming will start).
    pub snapshot: Option<SnapshotProgress>,
    /// A running incremental snapshot.
    pub incremental: Option<IncrementalProgress>,
}

impl BinlogOffset {
    pub fn to_map(&self) -> OffsetMap {
        let mut m: OffsetMap = Vec::new();
        if self.server_id != 0 {
            m.push(("server_id".into(), Value::Int64(self.server_id)));
        }
        if let Some(g) = &self.gtids {
            m.push(("gtids".into(), Value::String(g.clone())));
        }
        m.push(("file".into(), Value::String(self.file.clone())));
        m.push(("pos".into(), Value::Int64(self.pos as i64)));
        if self.events_to_skip != 0 {
            m.push(("event".into(), Value::Int64(self.events_to_skip as i64)));
        }
        if self.rows_to_skip != 0 {
            m.push(("row".into(), Value::Int32(self.rows_to_skip as i32)));
        }
        m.push(("ts_sec".into(), Value::Int64(self.ts_sec)));
        if let Some(i) = &self.incremental {
            m.push((
                "incremental_snapshot_collections".into(),
                Value::String(serde_json::to_string(&i.tables).unwrap_or_default()),
            ));
            if let Some(k) = &i.last_key {
                m.push((
                    "incremental_snapshot_primary_key".into(),
                    Value::String(k.clone()),
                ));
            }
            if let Some(k) = &i.max_key {
                m.push((
                    "incremental_snapshot_maximum_key".into(),
                    Value::String(k.clone()),
                ));
            }
        }
        if let Some(p) = &self.snapshot {
            m.push(("snapshot".into(), Value::Boolean(true)));
            if let Some(t) = &p.table {
                m.push(("snapshot_table".into(), Value::String(t.clone())));
            }
            if let Some(k) = &p.key {
                m.push(("snapshot_key".into(), Value::String(k.clone())));
            }
        }
        m
    }

    /// Reads an offset; `None` when it has no binlog position.
    pub fn from_map(m: &OffsetMap) -> Option<BinlogOffset> {
        let get = |k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        let num = |k: &str| match get(k) {
            Some(Value::Int64(n)) => Some(*n),
            Some(Value::Int32(n)) => Some(*n as i64),
            Some(Value::Int16(n)) => Some(*n as i64),
            Some(Value::Int8(n)) => Some(*n as i64),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let text = |k: &str| match get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let file = text("file")?;
        let in_snapshot = match get("snapshot") {
            Some(Value::Boolean(b)) => *b,
            Some(Value::String(s)) => !s.eq_ignore_ascii_case("false"),
            _ => false,
        } && !matches!(get("snapshot_completed"), Some(Value::Boolean(true)));
        Some(BinlogOffset {
            file,
            pos: num("pos")?.max(0) as u64,
            events_to_skip: num("event").unwrap_or(0).max(0) as u64,
            rows_to_skip: num("row").unwrap_or(0).max(0) as u64,
            ts_sec: num("ts_sec").unwrap_or(0),
            server_id: num("server_id").unwrap_or(0),
            gtids: text("gtids"),
            incremental: text("incremental_snapshot_collections")
                .and_then(|c| serde_json::from_str::<Vec<String>>(&c).ok())
                .filter(|t| !t.is_empty())
                .map(|tables| IncrementalProgress {
                    tables,
                    last_key: text("incremental_snapshot_primary_key"),
                    max_key: text("incremental_snapshot_maximum_key"),
                }),
            snapshot: in_snapshot.then(|| SnapshotProgress {
                table: text("snapshot_table"),
                key: text("snapshot_key"),
            }),
        })
    }
}

/// Orders binlog positions: files by their numeric suffix, then the position.
pub fn position_le(a_file: &str, a_pos: u64, b_file: &str, b_pos: u64) -> bool {
    let seq = |f: &str| {
        f.rsplit('.')
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (seq(a_file), a_pos) <= (seq(b_file), b_pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip() {
        let o = BinlogOffset {
            file: "binlog.000003".into(),
            pos: 1234,
            events_to_skip: 2,
            rows_to_skip: 5,
            ts_sec: 1_700_000_000,
            server_id: 1,
            gtids: Some("0-1-7".into()),
            incremental: Some(IncrementalProgress {
                tables: vec!["inv.t".into()],
                last_key: Some("[\"i:3\"]".into()),
                max_key: Some("[\"i:9\"]".into()),
            }),
            snapshot: Some(SnapshotProgress {
                table: Some("inv.t".into()),
                key: Some("[1]".into()),
            }),
        };
        assert_eq!(BinlogOffset::from_map(&o.to_map()), Some(o));
        assert!(position_le("binlog.000002", 999, "binlog.000010", 4));
        assert!(!position_le("binlog.000010", 4, "binlog.000002", 999));
    }

    #[test]
    fn the_source_block_has_debeziums_fields() {
        let s = source_schema();
        let names: Vec<&str> = s.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "version",
                "connector",
                "name",
                "ts_ms",
                "snapshot",
                "db",
                "sequence",
                "ts_us",
                "ts_ns",
                "table",
                "server_id",
                "gtid",
                "file",
                "pos",
                "row",
                "thread",
                "query"
            ]
        );
        let info = SourceInfo {
            db: "inv".into(),
            file: "f".into(),
            ..Default::default()
        };
        let st = info.to_struct(&s, "shop");
        st.validate().unwrap();
        assert_eq!(st.get("connector"), Some(&Value::String("mysql".into())));
        let m = info.to_struct(&source_schema_for(Flavor::MariaDb), "shop");
        assert_eq!(m.get("connector"), Some(&Value::String("mariadb".into())));
    }
}
