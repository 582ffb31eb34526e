//! Incremental snapshots (Debezium's `execute-snapshot` signal, DBLog's watermarks): while
//! streaming, a table is read in primary-key chunks; each chunk's SELECT is bracketed by
//! an open and a close marker row written to the signal table, and a streamed change of a
//! row between the two markers in the binlog drops that row from the chunk (the change is
//! newer). At the close marker the rest of the chunk is emitted as `op: r` with
//! `snapshot: incremental`. Progress (tables, last key, maximum key) travels in every
//! offset, so a restarted task carries on with the chunk after the last emitted row.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use super::schema::Captured;
use crate::data::Struct;

/// A chunk in flight: read, waiting for its close marker in the binlog.
#[derive(Debug)]
pub struct Window {
    /// The chunk's id; the markers' ids are `<id>-open` and `<id>-close`.
    pub id: String,
    pub open_seen: bool,
    pub cap: Arc<Captured>,
    /// (dedup key, row, encoded key) in key order.
    pub rows: Vec<(String, Struct, String)>,
    /// Dedup keys of rows changed between the markers.
    pub removed: HashSet<String>,
    /// The chunk was shorter than the chunk size: the table is done after it.
    pub last_chunk: bool,
}

/// A running incremental snapshot.
#[derive(Debug, Default)]
pub struct Incremental {
    /// `db.table`s still to read; the first is being read.
    pub tables: VecDeque<String>,
    /// The encoded key of the last row emitted from the current table.
    pub last_key: Option<String>,
    /// The current table's largest key when its snapshot began.
    pub max_key: Option<String>,
    pub window: Option<Window>,
}

/// What an offset carries of a running incremental snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncrementalProgress {
    pub tables: Vec<String>,
    pub last_key: Option<String>,
    pub max_key: Option<String>,
}

impl Incremental {
    pub fn progress(&self) -> IncrementalProgress {
        IncrementalProgress {
            tables: self.tables.iter().cloned().collect(),
            last_key: self.last_key.clone(),
            max_key: self.max_key.clone(),
        }
    }

    pub fn resume(p: &IncrementalProgress) -> Incremental {
        Incremental {
            tables: p.tables.iter().cloned().collect(),
            last_key: p.last_key.clone(),
            max_key: p.max_key.clone(),
            window: None,
        }
    }

    /// Moves on to the next table.
    pub fn table_done(&mut self) {
        self.tables.pop_front();
        self.last_key = None;
        self.max_key = None;
    }
}

/// The dedup identity of a row: its key struct's rendering (snapshot and binlog values of
/// a key convert to equal Connect values).
pub fn dedup_key(key: &Option<Struct>) -> String {
    format!("{key:?}")
}

/// The collections of an `execute-snapshot` signal's data, and whether it asks for an
/// incremental snapshot (the default).
pub fn parse_execute_snapshot(data: &str) -> Result<Vec<String>, String> {
    let j: serde_json::Value =
        serde_json::from_str(data).map_err(|e| format!("unreadable signal data {data:?}: {e}"))?;
    let kind = j
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("incremental");
    if !kind.eq_ignore_ascii_case("incremental") {
        return Err(format!(
            "snapshot type {kind} is not supported (only incremental)"
        ));
    }
    let collections = j
        .get("data-collections")
        .and_then(|c| c.as_array())
        .ok_or_else(|| format!("signal data {data:?} has no data-collections"))?;
    Ok(collections
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_snapshot_signals_name_their_tables() {
        assert_eq!(
            parse_execute_snapshot(
                r#"{"data-collections": ["inv.a", "inv.b"], "type": "INCREMENTAL"}"#
            ),
            Ok(vec!["inv.a".to_string(), "inv.b".to_string()])
        );
        assert!(
            parse_execute_snapshot(r#"{"data-collections": ["inv.a"], "type": "blocking"}"#)
                .is_err()
        );
        assert!(parse_execute_snapshot("nope").is_err());
    }
}
