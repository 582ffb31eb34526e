//! The task's position in the source and its offset map (Debezium's offset keys plus what
//! this connector needs to resume exactly: a transaction's event count and the snapshot's
//! progress and visibility filter).

use crate::data::Value;
use crate::storage::OffsetMap;

use super::pgoutput::Lsn;

/// Which transactions the initial snapshot already contains: those visible in its
/// MVCC snapshot (`pg_current_snapshot()`), all of which committed before `lsn` (the WAL
/// position read inside the snapshot's transaction, after the snapshot was taken).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFilter {
    pub lsn: Lsn,
    pub xmin: u64,
    pub xmax: u64,
    pub xip: Vec<u64>,
}

impl SnapshotFilter {
    /// Parses `pg_snapshot`'s text `xmin:xmax:xip1,xip2`.
    pub fn parse(lsn: Lsn, text: &str) -> Option<SnapshotFilter> {
        let mut parts = text.trim().split(':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let xip = match parts.next() {
            None | Some("") => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?,
        };
        Some(SnapshotFilter {
            lsn,
            xmin,
            xmax,
            xip,
        })
    }

    pub fn text(&self) -> String {
        let xip: Vec<String> = self.xip.iter().map(u64::to_string).collect();
        format!("{}:{}:{}", self.xmin, self.xmax, xip.join(","))
    }

    /// Whether a transaction (its 32-bit xid, as pgoutput's Begin gives it) that committed
    /// at `commit_lsn` is already in the snapshot. Transaction ids compare modulo 2^32 as
    /// PostgreSQL compares them; the snapshot's are 64-bit with the epoch.
    pub fn contains(&self, xid: u32, commit_lsn: Lsn) -> bool {
        if commit_lsn >= self.lsn {
            return false;
        }
        let precedes_xmax = (xid.wrapping_sub(self.xmax as u32) as i32) < 0;
        precedes_xmax && !self.xip.iter().any(|x| *x as u32 == xid)
    }
}

/// Progress of a snapshot being taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotProgress {
    /// `schema.table` of the last row read (tables are read in name order).
    pub table: Option<String>,
    /// That row's primary key values (text), for keyset pagination; `None` for a table
    /// without a primary key (read again from its start on resume).
    pub key: Option<Vec<Option<String>>>,
}

/// Where the task is: the offset of the last record it returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Streaming: the commit LSN of the transaction of the last emitted change (or, after a
    /// heartbeat, the position up to which everything was read).
    pub lsn_commit: Option<Lsn>,
    /// The LSN of the last emitted change.
    pub lsn: Option<Lsn>,
    /// How many change messages of the `lsn_commit` transaction were emitted.
    pub event_seq: i64,
    pub tx_id: Option<i64>,
    pub ts_usec: Option<i64>,
    pub message_type: Option<&'static str>,
    /// A snapshot in progress.
    pub snapshot: Option<SnapshotProgress>,
    /// The last snapshot record was emitted (the snapshot completed).
    pub snapshot_completed: bool,
    pub filter: Option<SnapshotFilter>,
}

fn int(map: &OffsetMap, k: &str) -> Option<i64> {
    map.iter().find(|(n, _)| n == k).and_then(|(_, v)| match v {
        Value::Int64(i) => Some(*i),
        Value::Int32(i) => Some(i64::from(*i)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

fn text(map: &OffsetMap, k: &str) -> Option<String> {
    map.iter().find(|(n, _)| n == k).and_then(|(_, v)| match v {
        Value::String(s) => Some(s.clone()),
        _ => None,
    })
}

fn boolean(map: &OffsetMap, k: &str) -> bool {
    map.iter()
        .any(|(n, v)| n == k && matches!(v, Value::Boolean(true)))
}

impl Position {
    pub fn to_offset(&self, last_snapshot_record: bool) -> OffsetMap {
        let mut m: OffsetMap = Vec::new();
        let lsn = |l: Lsn| Value::Int64(l.0 as i64);
        if let Some(l) = self.lsn {
            m.push(("lsn_proc".into(), lsn(l)));
        }
        if let Some(t) = self.message_type {
            m.push(("messageType".into(), Value::String(t.into())));
        }
        if let Some(l) = self.lsn_commit {
            m.push(("lsn_commit".into(), lsn(l)));
        }
        if let Some(l) = self.lsn.or(self.filter.as_ref().map(|f| f.lsn)) {
            m.push(("lsn".into(), lsn(l)));
        }
        if let Some(t) = self.tx_id {
            m.push(("txId".into(), Value::Int64(t)));
        }
        if let Some(t) = self.ts_usec {
            m.push(("ts_usec".into(), Value::Int64(t)));
        }
        if self.lsn_commit.is_some() {
            m.push(("event_seq".into(), Value::Int64(self.event_seq)));
        }
        if let Some(p) = &self.snapshot {
            m.push(("snapshot".into(), Value::Boolean(true)));
            m.push((
                "last_snapshot_record".into(),
                Value::Boolean(last_snapshot_record),
            ));
            if let Some(t) = &p.table {
                m.push(("snapshot_table".into(), Value::String(t.clone())));
            }
            if let Some(k) = &p.key {
                let json = serde_json::to_string(k).unwrap_or_default();
                m.push(("snapshot_key".into(), Value::String(json)));
            }
        } else if self.snapshot_completed {
            m.push(("snapshot_completed".into(), Value::Boolean(true)));
        }
        if let Some(f) = &self.filter {
            m.push(("snapshot_lsn".into(), lsn(f.lsn)));
            m.push(("snapshot_txids".into(), Value::String(f.text())));
        }
        m
    }

    pub fn from_offset(map: &OffsetMap) -> Position {
        let lsn = |k: &str| int(map, k).map(|v| Lsn(v as u64));
        let filter = match (lsn("snapshot_lsn"), text(map, "snapshot_txids")) {
            (Some(l), Some(t)) => SnapshotFilter::parse(l, &t),
            _ => None,
        };
        let last = boolean(map, "last_snapshot_record");
        let in_snapshot = boolean(map, "snapshot") && !last;
        let message_type = text(map, "messageType").and_then(|t| match t.as_str() {
            "INSERT" => Some("INSERT"),
            "UPDATE" => Some("UPDATE"),
            "DELETE" => Some("DELETE"),
            "TRUNCATE" => Some("TRUNCATE"),
            _ => None,
        });
        Position {
            lsn_commit: lsn("lsn_commit"),
            lsn: lsn("lsn_proc").or_else(|| lsn("lsn_commit").and(lsn("lsn"))),
            event_seq: int(map, "event_seq").unwrap_or(i64::MAX),
            tx_id: int(map, "txId"),
            ts_usec: int(map, "ts_usec"),
            message_type,
            snapshot: in_snapshot.then(|| SnapshotProgress {
                table: text(map, "snapshot_table"),
                key: text(map, "snapshot_key").and_then(|k| serde_json::from_str(&k).ok()),
            }),
            snapshot_completed: last
                || boolean(map, "snapshot_completed")
                || lsn("lsn_commit").is_some(),
            filter,
        }
    }

    /// Whether the change `seq` (1-based) of the transaction committing at `commit_lsn`
    /// was already emitted by the time of this position.
    pub fn already_emitted(&self, commit_lsn: Lsn, seq: i64) -> bool {
        match self.lsn_commit {
            Some(c) if commit_lsn < c => true,
            Some(c) if commit_lsn == c => seq <= self.event_seq,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip() {
        let p = Position {
            lsn_commit: Some(Lsn(100)),
            lsn: Some(Lsn(90)),
            event_seq: 3,
            tx_id: Some(7),
            ts_usec: Some(5),
            message_type: Some("UPDATE"),
            snapshot: None,
            snapshot_completed: true,
            filter: SnapshotFilter::parse(Lsn(50), "10:20:12,15"),
        };
        assert_eq!(Position::from_offset(&p.to_offset(false)), p);
        let s = Position {
            snapshot: Some(SnapshotProgress {
                table: Some("public.a".into()),
                key: Some(vec![Some("4".into()), None]),
            }),
            filter: SnapshotFilter::parse(Lsn(50), "10:20:"),
            event_seq: i64::MAX,
            ..Position::default()
        };
        assert_eq!(Position::from_offset(&s.to_offset(false)), s);
        let done = Position::from_offset(&s.to_offset(true));
        assert!(done.snapshot.is_none() && done.snapshot_completed);
    }

    #[test]
    fn the_snapshot_filter_knows_what_it_saw() {
        let f = SnapshotFilter::parse(Lsn(1000), "10:20:12,15").unwrap();
        assert!(f.contains(5, Lsn(10)));
        assert!(f.contains(13, Lsn(10)));
        assert!(!f.contains(12, Lsn(10)), "in progress at the snapshot");
        assert!(!f.contains(20, Lsn(10)), "started after the snapshot");
        assert!(
            !f.contains(5, Lsn(1000)),
            "committed after the snapshot's LSN"
        );
        let p = Position {
            lsn_commit: Some(Lsn(100)),
            event_seq: 2,
            ..Position::default()
        };
        assert!(p.already_emitted(Lsn(99), 50));
        assert!(p.already_emitted(Lsn(100), 2));
        assert!(!p.already_emitted(Lsn(100), 3));
        assert!(!p.already_emitted(Lsn(101), 1));
    }
}
