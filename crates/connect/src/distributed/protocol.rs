//! Kafka Connect's group protocol (protocol type `connect`), byte for byte as Kafka's
//! `ConnectProtocol` (`default`, eager, v0) and `IncrementalCooperativeConnectProtocol`
//! (`compatible` v1, `sessioned` v2) write it, so Moldau workers and Kafka's tools read each
//! other's metadata and assignments.
//!
//! Types are Kafka's `protocol.types`: INT16/INT32/INT64 big-endian, STRING an INT16
//! length and UTF-8, NULLABLE_BYTES an INT32 length (-1 null), arrays an INT32 count (-1
//! null). A connector's assignment lists its task numbers, `-1` standing for the connector
//! instance itself.

use std::collections::BTreeMap;

use crate::rest::ConnectorTaskId;

/// The task number that stands for the connector instance.
pub const CONNECTOR_TASK: i32 = -1;

/// Kafka's `ConnectProtocolCompatibility`, by preference of the worker's `connect.protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Compatibility {
    Eager,
    Compatible,
    Sessioned,
}

impl Compatibility {
    pub fn protocol(self) -> &'static str {
        match self {
            Compatibility::Eager => "default",
            Compatibility::Compatible => "compatible",
            Compatibility::Sessioned => "sessioned",
        }
    }

    pub fn version(self) -> i16 {
        match self {
            Compatibility::Eager => 0,
            Compatibility::Compatible => 1,
            Compatibility::Sessioned => 2,
        }
    }

    pub fn from_protocol(name: &str) -> Option<Compatibility> {
        match name {
            "default" => Some(Compatibility::Eager),
            "compatible" => Some(Compatibility::Compatible),
            "sessioned" => Some(Compatibility::Sessioned),
            _ => None,
        }
    }
}

/// A malformed or unsupported metadata or assignment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Connect protocol: {0}")]
pub struct ProtocolError(pub String);

/// What a worker tells the group when it joins (Kafka's `ExtendedWorkerState`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerState {
    /// The worker's REST URL.
    pub url: String,
    /// The last config topic offset it has read.
    pub config_offset: i64,
    /// What it runs now (incremental protocols only).
    pub assignment: Option<Assignment>,
}

/// An assignment (Kafka's `ConnectAssignment`): what a worker runs, and (incremental) what
/// it must stop first and how long lost work is held back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    /// 0, or 1 (`CONFIG_MISMATCH`: read the config topic to the end and rejoin).
    pub error: i16,
    pub leader: String,
    pub leader_url: String,
    pub config_offset: i64,
    pub connectors: Vec<String>,
    pub tasks: Vec<ConnectorTaskId>,
    pub revoked_connectors: Vec<String>,
    pub revoked_tasks: Vec<ConnectorTaskId>,
    /// Milliseconds until the leader reassigns work of departed workers.
    pub delay_ms: i32,
}

pub const NO_ERROR: i16 = 0;
pub const CONFIG_MISMATCH: i16 = 1;

// ---------------------------------------------------------------------------------------
// Writing and reading Kafka's types.

struct Writer(Vec<u8>);

impl Writer {
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn string(&mut self, s: &str) -> Result<(), ProtocolError> {
        let len = i16::try_from(s.len())
            .map_err(|_| ProtocolError(format!("string of {} bytes is too long", s.len())))?;
        self.i16(len);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
    fn nullable_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.i32(-1),
            Some(b) => {
                self.i32(b.len() as i32);
                self.0.extend_from_slice(b);
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ProtocolError> {
        if self.0.len() < n {
            return Err(ProtocolError("truncated".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn i16(&mut self) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, ProtocolError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, ProtocolError> {
        let len = self.i16()?;
        if len < 0 {
            return Err(ProtocolError("null string".into()));
        }
        let b = self.take(len as usize)?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtocolError("string is not UTF-8".into()))
    }
    fn nullable_bytes(&mut self) -> Result<Option<Vec<u8>>, ProtocolError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(len as usize)?.to_vec()))
    }
    /// An array's count: `None` for null; bounded by the bytes left (each element takes at
    /// least `min_element_bytes`), so a hostile count cannot make us allocate.
    fn count(&mut self, min_element_bytes: usize) -> Result<Option<usize>, ProtocolError> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        let n = n as usize;
        if n.saturating_mul(min_element_bytes) > self.0.len() {
            return Err(ProtocolError("array longer than the data".into()));
        }
        Ok(Some(n))
    }
    fn at_end(&self) -> bool {
        self.0.is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// Metadata.

/// A worker's JoinGroup metadata for one protocol.
pub fn encode_metadata(
    state: &WorkerState,
    protocol: Compatibility,
) -> Result<Vec<u8>, ProtocolError> {
    let mut w = Writer(Vec::new());
    w.i16(protocol.version());
    w.string(&state.url)?;
    w.i64(state.config_offset);
    if protocol != Compatibility::Eager {
        let allocation = match &state.assignment {
            Some(a) if !a.is_empty() => Some(encode_assignment(a, protocol)?),
            _ => None,
        };
        w.nullable_bytes(allocation.as_deref());
    }
    Ok(w.0)
}

/// The metadata of each of the protocols a worker offers, most preferred first (Kafka's
/// `metadataRequest`): `sessioned` also offers `compatible` and `default`... as
/// `connect.protocol` allows.
pub fn join_protocols(
    state: &WorkerState,
    preferred: Compatibility,
) -> Result<Vec<(Compatibility, Vec<u8>)>, ProtocolError> {
    let mut out = Vec::new();
    for p in [
        Compatibility::Sessioned,
        Compatibility::Compatible,
        Compatibility::Eager,
    ] {
        if p <= preferred {
            out.push((p, encode_metadata(state, p)?));
        }
    }
    Ok(out)
}

/// Reads a member's metadata (any version; later fields ignored, as Kafka tolerates).
pub fn decode_metadata(bytes: &[u8]) -> Result<WorkerState, ProtocolError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if version < 0 {
        return Err(ProtocolError(format!(
            "Unsupported subscription version: {version}"
        )));
    }
    let url = r.string()?;
    let config_offset = r.i64()?;
    let assignment = if version >= 1 && !r.at_end() {
        match r.nullable_bytes()? {
            Some(b) => Some(decode_assignment(&b)?),
            None => None,
        }
    } else {
        None
    };
    Ok(WorkerState {
        url,
        config_offset,
        assignment,
    })
}

// ---------------------------------------------------------------------------------------
// Assignments.

impl Assignment {
    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty()
            && self.tasks.is_empty()
            && self.revoked_connectors.is_empty()
            && self.revoked_tasks.is_empty()
    }
}

/// Connectors and tasks grouped by connector, `-1` for the connector itself (Kafka's
/// `asMap`), connectors in first-seen order.
fn grouped(connectors: &[String], tasks: &[ConnectorTaskId]) -> Vec<(String, Vec<i32>)> {
    let mut order: Vec<String> = Vec::new();
    let mut map: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let mut add = |c: &str, t: i32| {
        if !map.contains_key(c) {
            order.push(c.to_string());
        }
        map.entry(c.to_string()).or_default().push(t);
    };
    for c in connectors {
        add(c, CONNECTOR_TASK);
    }
    for t in tasks {
        add(&t.connector, t.task);
    }
    order
        .into_iter()
        .map(|c| {
            let tasks = map.remove(&c).unwrap_or_default();
            (c, tasks)
        })
        .collect()
}

fn write_connector_assignments(
    w: &mut Writer,
    groups: &[(String, Vec<i32>)],
) -> Result<(), ProtocolError> {
    w.i32(groups.len() as i32);
    for (c, tasks) in groups {
        w.string(c)?;
        w.i32(tasks.len() as i32);
        for t in tasks {
            w.i32(*t);
        }
    }
    Ok(())
}

fn read_connector_assignments(
    r: &mut Reader<'_>,
) -> Result<(Vec<String>, Vec<ConnectorTaskId>), ProtocolError> {
    let mut connectors = Vec::new();
    let mut tasks = Vec::new();
    // A connector assignment is at least a string length and an array count.
    if let Some(n) = r.count(6)? {
        for _ in 0..n {
            let connector = r.string()?;
            if let Some(m) = r.count(4)? {
                for _ in 0..m {
                    let t = r.i32()?;
                    if t == CONNECTOR_TASK {
                        connectors.push(connector.clone());
                    } else {
                        tasks.push(ConnectorTaskId::new(connector.clone(), t));
                    }
                }
            }
        }
    }
    Ok((connectors, tasks))
}

/// An assignment as the leader sends it in SyncGroup (and as a member embeds its current
/// one in its metadata).
pub fn encode_assignment(
    a: &Assignment,
    protocol: Compatibility,
) -> Result<Vec<u8>, ProtocolError> {
    let mut w = Writer(Vec::new());
    w.i16(protocol.version());
    w.i16(a.error);
    w.string(&a.leader)?;
    w.string(&a.leader_url)?;
    w.i64(a.config_offset);
    write_connector_assignments(&mut w, &grouped(&a.connectors, &a.tasks))?;
    if protocol != Compatibility::Eager {
        write_connector_assignments(&mut w, &grouped(&a.revoked_connectors, &a.revoked_tasks))?;
        w.i32(a.delay_ms);
    }
    Ok(w.0)
}

/// Reads an assignment of any version.
pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment, ProtocolError> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if version < 0 {
        return Err(ProtocolError(format!(
            "Unsupported subscription version: {version}"
        )));
    }
    let error = r.i16()?;
    let leader = r.string()?;
    let leader_url = r.string()?;
    let config_offset = r.i64()?;
    let (connectors, tasks) = read_connector_assignments(&mut r)?;
    let mut a = Assignment {
        error,
        leader,
        leader_url,
        config_offset,
        connectors,
        tasks,
        ..Assignment::default()
    };
    if version >= 1 && !r.at_end() {
        let (rc, rt) = read_connector_assignments(&mut r)?;
        a.revoked_connectors = rc;
        a.revoked_tasks = rt;
        if !r.at_end() {
            a.delay_ms = r.i32()?;
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eager_metadata_is_kafkas_bytes() {
        let state = WorkerState {
            url: "http://a:8083/".into(),
            config_offset: 5,
            assignment: None,
        };
        let bytes = encode_metadata(&state, Compatibility::Eager).unwrap();
        let mut expected = vec![0, 0, 0, 14];
        expected.extend_from_slice(b"http://a:8083/");
        expected.extend_from_slice(&5i64.to_be_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(decode_metadata(&bytes).unwrap(), state);
    }

    #[test]
    fn assignments_round_trip_in_every_version() {
        let a = Assignment {
            error: 0,
            leader: "w1".into(),
            leader_url: "http://w1:8083/".into(),
            config_offset: 42,
            connectors: vec!["c".into()],
            tasks: vec![ConnectorTaskId::new("c", 0), ConnectorTaskId::new("d", 2)],
            revoked_connectors: vec!["e".into()],
            revoked_tasks: vec![ConnectorTaskId::new("e", 1)],
            delay_ms: 300,
        };
        let sessioned = encode_assignment(&a, Compatibility::Sessioned).unwrap();
        assert_eq!(&sessioned[..2], &[0, 2]);
        assert_eq!(decode_assignment(&sessioned).unwrap(), a);
        let eager =
            decode_assignment(&encode_assignment(&a, Compatibility::Eager).unwrap()).unwrap();
        assert_eq!(eager.tasks, a.tasks);
        assert!(eager.revoked_tasks.is_empty() && eager.delay_ms == 0);
        // The worker's metadata embeds its assignment.
        let state = WorkerState {
            url: "u".into(),
            config_offset: 1,
            assignment: Some(a.clone()),
        };
        let m = encode_metadata(&state, Compatibility::Compatible).unwrap();
        assert_eq!(decode_metadata(&m).unwrap(), state);
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        assert!(decode_assignment(&[]).is_err());
        assert!(decode_assignment(&[
            0, 1, 0, 0, 0, 1, b'x', 0, 1, b'y', 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff
        ])
        .is_err());
        for len in 0..40 {
            let a = Assignment {
                leader: "w".into(),
                tasks: vec![ConnectorTaskId::new("c", 1)],
                ..Assignment::default()
            };
            let b = encode_assignment(&a, Compatibility::Sessioned).unwrap();
            let _ = decode_assignment(&b[..len.min(b.len())]);
        }
    }
}
