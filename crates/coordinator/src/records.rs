//! The records of `__consumer_offsets`, in Kafka's exact on-disk schemas, so that Kafka's
//! own tools (and a Kafka broker) read what Moldau writes and the other way round.
//!
//! Key: an int16 key version, then the key struct. Value: an int16 value version, then the
//! value struct; a null value is a tombstone (compaction then drops the key).
//!
//! | key version | key              | value (written version)                      |
//! |-------------|------------------|----------------------------------------------|
//! | 0, 1        | OffsetCommitKey  | OffsetCommitValue v3 (v1 with an expiry)     |
//! | 2           | GroupMetadataKey | GroupMetadataValue v3                        |
//! | 3 .. 8      | ConsumerGroup*Key (KIP-848) | ConsumerGroup*Value v0 (flexible) |
//!
//! Versions 0-3 of the values are non-flexible; version 4 (flexible, compact encodings and
//! tagged fields) is read but never written, as Kafka 4.x does.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// One record to append to (or read from) a `__consumer_offsets` partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorRecord {
    pub key: Bytes,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKey {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
    /// KIP-848 consumer group records (Kafka 4.0 schemas).
    ConsumerGroupMetadata {
        group: String,
    },
    ConsumerGroupPartitionMetadata {
        group: String,
    },
    ConsumerGroupMemberMetadata {
        group: String,
        member: String,
    },
    ConsumerGroupTargetAssignmentMetadata {
        group: String,
    },
    ConsumerGroupTargetAssignmentMember {
        group: String,
        member: String,
    },
    ConsumerGroupCurrentMemberAssignment {
        group: String,
        member: String,
    },
    /// Records of other coordinators (KIP-848 consumer groups, share groups): not ours yet.
    Other(i16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// -1 unless the commit asked for its own retention (OffsetCommit v2-v4).
    pub expire_timestamp_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("undecodable __consumer_offsets record: {0}")]
pub struct RecordError(pub String);

const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

pub fn offset_commit_record(
    group: &str,
    topic: &str,
    partition: i32,
    value: &OffsetCommitValue,
) -> CoordinatorRecord {
    // Kafka writes version 1 only when the commit carries an expiry, else version 3.
    let version: i16 = if value.expire_timestamp_ms >= 0 { 1 } else { 3 };
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    buf.put_i64(value.offset);
    if version >= 3 {
        buf.put_i32(value.leader_epoch);
    }
    put_string(&mut buf, &value.metadata);
    buf.put_i64(value.commit_timestamp_ms);
    if version == 1 {
        buf.put_i64(value.expire_timestamp_ms);
    }
    CoordinatorRecord {
        key: offset_commit_key(group, topic, partition),
        value: Some(buf.freeze()),
    }
}

pub fn offset_commit_tombstone(group: &str, topic: &str, partition: i32) -> CoordinatorRecord {
    CoordinatorRecord {
        key: offset_commit_key(group, topic, partition),
        value: None,
    }
}

fn offset_commit_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
    put_string(&mut buf, group);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

pub fn group_metadata_record(group: &str, value: &GroupMetadataValue) -> CoordinatorRecord {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_METADATA_VALUE_VERSION);
    put_string(&mut buf, &value.protocol_type);
    buf.put_i32(value.generation);
    put_nullable_string(&mut buf, value.protocol.as_deref());
    put_nullable_string(&mut buf, value.leader.as_deref());
    buf.put_i64(value.current_state_timestamp_ms);
    buf.put_i32(value.members.len() as i32);
    for m in &value.members {
        put_string(&mut buf, &m.member_id);
        put_nullable_string(&mut buf, m.group_instance_id.as_deref());
        put_string(&mut buf, &m.client_id);
        put_string(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        buf.put_i32(m.subscription.len() as i32);
        buf.put_slice(&m.subscription);
        buf.put_i32(m.assignment.len() as i32);
        buf.put_slice(&m.assignment);
    }
    CoordinatorRecord {
        key: group_metadata_key(group),
        value: Some(buf.freeze()),
    }
}

pub fn group_metadata_tombstone(group: &str) -> CoordinatorRecord {
    CoordinatorRecord {
        key: group_metadata_key(group),
        value: None,
    }
}

fn group_metadata_key(group: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_METADATA_KEY_VERSION);
    put_string(&mut buf, group);
    buf.freeze()
}

fn put_string(buf: &mut BytesMut, s: &str) {
    // Kafka strings are at most i16::MAX bytes; the coordinator bounds what it accepts.
    debug_assert!(s.len() <= i16::MAX as usize);
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

pub fn decode_key(key: &[u8]) -> Result<RecordKey, RecordError> {
    let mut r = Reader::new(key, false);
    let version = r.i16()?;
    Ok(match version {
        0 | 1 => RecordKey::OffsetCommit {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        },
        2 => RecordKey::GroupMetadata { group: r.string()? },
        3 => RecordKey::ConsumerGroupMetadata { group: r.string()? },
        4 => RecordKey::ConsumerGroupPartitionMetadata { group: r.string()? },
        5 => RecordKey::ConsumerGroupMemberMetadata {
            group: r.string()?,
            member: r.string()?,
        },
        6 => RecordKey::ConsumerGroupTargetAssignmentMetadata { group: r.string()? },
        7 => RecordKey::ConsumerGroupTargetAssignmentMember {
            group: r.string()?,
            member: r.string()?,
        },
        8 => RecordKey::ConsumerGroupCurrentMemberAssignment {
            group: r.string()?,
            member: r.string()?,
        },
        other => RecordKey::Other(other),
    })
}

pub fn decode_offset_commit_value(value: &[u8]) -> Result<OffsetCommitValue, RecordError> {
    let version = Reader::new(value, false).i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError(format!("OffsetCommitValue version {version}")));
    }
    let mut r = Reader::new(&value[2..], version >= 4);
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    let expire_timestamp_ms = if version == 1 { r.i64()? } else { -1 };
    r.tagged_fields()?;
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

pub fn decode_group_metadata_value(value: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let version = Reader::new(value, false).i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError(format!("GroupMetadataValue version {version}")));
    }
    let mut r = Reader::new(&value[2..], version >= 4);
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.array_len()?;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        r.tagged_fields()?;
        members.push(MemberMetadata {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.tagged_fields()?;
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

/// A bounds-checked reader of Kafka's primitive types, classic or flexible (compact).
struct Reader<'a> {
    buf: &'a [u8],
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Self {
        Reader { buf, flexible }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.buf.len() < n {
            return Err(RecordError(format!(
                "needs {n} bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(self.take(1)?[0] as i8)
    }

    fn uuid(&mut self) -> Result<Uuid, RecordError> {
        Ok(Uuid::from_bytes(
            self.take(16)?.try_into().expect("16 bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError("varint too long".into()))
    }

    /// A length: classic i16/i32, or compact (uvarint of length + 1). `None` is null.
    fn len(&mut self, classic_i32: bool) -> Result<Option<usize>, RecordError> {
        if self.flexible {
            let n = self.uvarint()?;
            return Ok((n > 0).then(|| (n - 1) as usize));
        }
        let n = if classic_i32 {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        Ok((n >= 0).then_some(n as usize))
    }

    fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        match self.len(false)? {
            None => Ok(None),
            Some(n) => {
                let bytes = self.take(n)?;
                String::from_utf8(bytes.to_vec())
                    .map(Some)
                    .map_err(|_| RecordError("string is not UTF-8".into()))
            }
        }
    }

    fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?
            .ok_or_else(|| RecordError("null where a string is required".into()))
    }

    fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let n = self.len(true)?.unwrap_or(0);
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }

    fn array_len(&mut self) -> Result<usize, RecordError> {
        let n = self.len(true)?.unwrap_or(0);
        // Each member takes more than one byte: a count beyond the buffer is corrupt.
        if n > self.buf.len() {
            return Err(RecordError(format!(
                "array of {n} in {} bytes",
                self.buf.len()
            )));
        }
        Ok(n)
    }

    fn tagged_fields(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
}

// ---- KIP-848 consumer group records: flexible values (compact encodings, tagged fields) ----

/// A member's subscription (ConsumerGroupMemberMetadataValue v0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerMemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// Partitions by topic id, as the consumer group records list them.
pub type TopicPartitionList = Vec<(Uuid, Vec<i32>)>;

/// A member's reconciled assignment (ConsumerGroupCurrentMemberAssignmentValue v0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerCurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// 0 STABLE, 1 UNREVOKED_PARTITIONS, 2 UNRELEASED_PARTITIONS.
    pub state: i8,
    pub assigned: TopicPartitionList,
    pub revoking: TopicPartitionList,
}

fn key_of(version: i16, parts: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    for p in parts {
        put_string(&mut buf, p);
    }
    buf.freeze()
}

fn put_uvarint(buf: &mut BytesMut, mut n: u64) {
    while n >= 0x80 {
        buf.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    buf.put_u8(n as u8);
}

fn put_compact_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        None => put_uvarint(buf, 0),
        Some(s) => {
            put_uvarint(buf, s.len() as u64 + 1);
            buf.put_slice(s.as_bytes());
        }
    }
}

fn put_compact_len(buf: &mut BytesMut, n: usize) {
    put_uvarint(buf, n as u64 + 1);
}

fn put_topic_partitions(buf: &mut BytesMut, list: &TopicPartitionList) {
    put_compact_len(buf, list.len());
    for (topic, partitions) in list {
        buf.put_slice(topic.as_bytes());
        put_compact_len(buf, partitions.len());
        for p in partitions {
            buf.put_i32(*p);
        }
        put_uvarint(buf, 0);
    }
}

fn flexible_value(write: impl FnOnce(&mut BytesMut)) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    write(&mut buf);
    put_uvarint(&mut buf, 0);
    Some(buf.freeze())
}

pub fn consumer_group_metadata_record(group: &str, epoch: Option<i32>) -> CoordinatorRecord {
    CoordinatorRecord {
        key: key_of(3, &[group]),
        value: epoch.and_then(|e| flexible_value(|b| b.put_i32(e))),
    }
}

/// The subscribed topics' metadata: (id, name, partitions); `None` is a tombstone.
pub fn consumer_group_partition_metadata_record(
    group: &str,
    topics: Option<&[(Uuid, String, i32)]>,
) -> CoordinatorRecord {
    CoordinatorRecord {
        key: key_of(4, &[group]),
        value: topics.and_then(|topics| {
            flexible_value(|b| {
                put_compact_len(b, topics.len());
                for (id, name, partitions) in topics {
                    b.put_slice(id.as_bytes());
                    put_compact_string(b, Some(name));
                    b.put_i32(*partitions);
                    put_compact_len(b, 0);
                    put_uvarint(b, 0);
                }
            })
        }),
    }
}

pub fn consumer_member_metadata_record(
    group: &str,
    member: &str,
    value: Option<&ConsumerMemberMetadata>,
) -> CoordinatorRecord {
    CoordinatorRecord {
        key: key_of(5, &[group, member]),
        value: value.and_then(|m| {
            flexible_value(|b| {
                put_compact_string(b, m.instance_id.as_deref());
                put_compact_string(b, m.rack_id.as_deref());
                put_compact_string(b, Some(&m.client_id));
                put_compact_string(b, Some(&m.client_host));
                put_compact_len(b, m.subscribed_topic_names.len());
                for t in &m.subscribed_topic_names {
                    put_compact_string(b, Some(t));
                }
                put_compact_string(b, m.subscribed_topic_regex.as_deref());
                b.put_i32(m.rebalance_timeout_ms);
                put_compact_string(b, m.server_assignor.as_deref());
            })
        }),
    }
}

pub fn consumer_target_assignment_metadata_record(
    group: &str,
    epoch: Option<i32>,
) -> CoordinatorRecord {
    CoordinatorRecord {
        key: key_of(6, &[group]),
        value: epoch.and_then(|e| flexible_value(|b| b.put_i32(e))),
    }
}

pub fn consumer_target_assignment_member_record(
    group: &str,
    member: &str,
    partitions: Option<&TopicPartitionList>,
) -> CoordinatorRecord {
    CoordinatorRecord {
        key: key_of(7, &[group, member]),
        value: partitions.and_then(|p| flexible_value(|b| put_topic_partitions(b, p))),
    }
}

pub fn consumer_current_assignment_record(
    group: &str,
    member: &str,
    value: Option<&ConsumerCurrentAssignment>,
) -> CoordinatorRecord {
    CoordinatorRecord {
        key: key_of(8, &[group, member]),
        value: value.and_then(|v| {
            flexible_value(|b| {
                b.put_i32(v.member_epoch);
                b.put_i32(v.previous_member_epoch);
                b.put_i8(v.state);
                put_topic_partitions(b, &v.assigned);
                put_topic_partitions(b, &v.revoking);
            })
        }),
    }
}

fn flexible_reader(value: &[u8]) -> Result<Reader<'_>, RecordError> {
    let version = Reader::new(value, false).i16()?;
    if version != 0 {
        return Err(RecordError(format!(
            "consumer group value version {version}"
        )));
    }
    Ok(Reader::new(&value[2..], true))
}

/// ConsumerGroupMetadataValue or ConsumerGroupTargetAssignmentMetadataValue: one epoch.
pub fn decode_epoch_value(value: &[u8]) -> Result<i32, RecordError> {
    let mut r = flexible_reader(value)?;
    let epoch = r.i32()?;
    r.tagged_fields()?;
    Ok(epoch)
}

pub fn decode_partition_metadata_value(
    value: &[u8],
) -> Result<Vec<(Uuid, String, i32)>, RecordError> {
    let mut r = flexible_reader(value)?;
    let n = r.array_len()?;
    let mut topics = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let id = r.uuid()?;
        let name = r.string()?;
        let partitions = r.i32()?;
        let racks = r.array_len()?;
        for _ in 0..racks {
            r.i32()?;
            let names = r.array_len()?;
            for _ in 0..names {
                r.string()?;
            }
            r.tagged_fields()?;
        }
        r.tagged_fields()?;
        topics.push((id, name, partitions));
    }
    r.tagged_fields()?;
    Ok(topics)
}

pub fn decode_member_metadata_value(value: &[u8]) -> Result<ConsumerMemberMetadata, RecordError> {
    let mut r = flexible_reader(value)?;
    let instance_id = r.nullable_string()?;
    let rack_id = r.nullable_string()?;
    let client_id = r.string()?;
    let client_host = r.string()?;
    let n = r.array_len()?;
    let mut subscribed_topic_names = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        subscribed_topic_names.push(r.string()?);
    }
    let subscribed_topic_regex = r.nullable_string()?;
    let rebalance_timeout_ms = r.i32()?;
    let server_assignor = r.nullable_string()?;
    r.tagged_fields()?;
    Ok(ConsumerMemberMetadata {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex,
        rebalance_timeout_ms,
        server_assignor,
    })
}

fn read_topic_partitions(r: &mut Reader<'_>) -> Result<TopicPartitionList, RecordError> {
    let n = r.array_len()?;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let topic = r.uuid()?;
        let count = r.array_len()?;
        let mut partitions = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            partitions.push(r.i32()?);
        }
        r.tagged_fields()?;
        out.push((topic, partitions));
    }
    Ok(out)
}

pub fn decode_target_assignment_member_value(
    value: &[u8],
) -> Result<TopicPartitionList, RecordError> {
    let mut r = flexible_reader(value)?;
    let out = read_topic_partitions(&mut r)?;
    r.tagged_fields()?;
    Ok(out)
}

pub fn decode_current_assignment_value(
    value: &[u8],
) -> Result<ConsumerCurrentAssignment, RecordError> {
    let mut r = flexible_reader(value)?;
    let member_epoch = r.i32()?;
    let previous_member_epoch = r.i32()?;
    let state = r.i8()?;
    let assigned = read_topic_partitions(&mut r)?;
    let revoking = read_topic_partitions(&mut r)?;
    r.tagged_fields()?;
    Ok(ConsumerCurrentAssignment {
        member_epoch,
        previous_member_epoch,
        state,
        assigned,
        revoking,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_commit_round_trips_and_matches_kafka_layout() {
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp_ms: 1000,
            expire_timestamp_ms: -1,
        };
        let record = offset_commit_record("g", "t", 7, &value);
        // key: version 1, "g", "t", partition 7
        assert_eq!(
            &record.key[..],
            &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7][..]
        );
        let bytes = record.value.unwrap();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(decode_offset_commit_value(&bytes).unwrap(), value);
        assert_eq!(
            decode_key(&record.key).unwrap(),
            RecordKey::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 7
            }
        );
    }

    #[test]
    fn expiring_commit_uses_version_1() {
        let value = OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 5,
            expire_timestamp_ms: 10,
        };
        let bytes = offset_commit_record("g", "t", 0, &value).value.unwrap();
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(decode_offset_commit_value(&bytes).unwrap(), value);
    }

    #[test]
    fn group_metadata_round_trips() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp_ms: 99,
            members: vec![MemberMetadata {
                member_id: "m-1".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let record = group_metadata_record("grp", &value);
        assert_eq!(&record.key[..], &[0, 2, 0, 3, b'g', b'r', b'p'][..]);
        assert_eq!(
            decode_group_metadata_value(record.value.as_ref().unwrap()).unwrap(),
            value
        );
    }

    #[test]
    fn truncated_values_are_errors_not_panics() {
        let record = group_metadata_record(
            "g",
            &GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation: 1,
                protocol: None,
                leader: None,
                current_state_timestamp_ms: -1,
                members: vec![],
            },
        );
        let bytes = record.value.unwrap();
        for cut in 0..bytes.len() {
            assert!(decode_group_metadata_value(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn consumer_group_records_round_trip() {
        let member = ConsumerMemberMetadata {
            instance_id: None,
            rack_id: Some("r1".into()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: None,
            rebalance_timeout_ms: 300_000,
            server_assignor: Some("uniform".into()),
        };
        let record = consumer_member_metadata_record("g", "m", Some(&member));
        assert_eq!(
            decode_key(&record.key).unwrap(),
            RecordKey::ConsumerGroupMemberMetadata {
                group: "g".into(),
                member: "m".into()
            }
        );
        assert_eq!(
            decode_member_metadata_value(&record.value.unwrap()).unwrap(),
            member
        );
        let current = ConsumerCurrentAssignment {
            member_epoch: 5,
            previous_member_epoch: 4,
            state: 1,
            assigned: vec![(Uuid::from_u128(9), vec![0, 2])],
            revoking: vec![(Uuid::from_u128(9), vec![1])],
        };
        let record = consumer_current_assignment_record("g", "m", Some(&current));
        assert_eq!(
            decode_current_assignment_value(&record.value.unwrap()).unwrap(),
            current
        );
        let topics = vec![(Uuid::from_u128(9), "t".to_string(), 6)];
        let record = consumer_group_partition_metadata_record("g", Some(&topics));
        assert_eq!(
            decode_partition_metadata_value(&record.value.unwrap()).unwrap(),
            topics
        );
        let record = consumer_group_metadata_record("g", Some(7));
        assert_eq!(&record.key[..2], &[0, 3]);
        assert_eq!(decode_epoch_value(&record.value.unwrap()).unwrap(), 7);
        assert!(consumer_group_metadata_record("g", None).value.is_none());
    }
}
