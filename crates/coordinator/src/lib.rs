//! moldau-coordinator: Kafka's group coordinator as a state machine: classic groups
//! (JoinGroup/SyncGroup) and KIP-848 consumer groups (ConsumerGroupHeartbeat, server-side
//! uniform and range assignors).
//!
//! Groups and committed offsets live in `__consumer_offsets` as records in Kafka's own
//! schemas ([`records`]). Each partition of that topic is one [`GroupShard`]: pure state
//! that replays the partition's records at load and, for each request, returns the records
//! to append and the answers to send once they are appended ([`Effects`]). Time comes in as
//! `now_ms`; timers are deadlines the runtime asks for ([`GroupShard::next_deadline_ms`])
//! and fires ([`GroupShard::tick`]).
//!
//! Invariant: no I/O, no clock, no randomness (the runtime passes fresh member-id suffixes),
//! so every behaviour is testable without sockets or disks.

mod consumer;
mod consumer_protocol;
mod group;
pub mod lag;
pub mod records;
mod shard;
pub mod txn;

pub use consumer::{TopicInfo, Topics, ASSIGNORS};
pub use group::{GroupState, Waiter};
pub use lag::{evaluate_partition, LagObservation, LagRules, LagStatus};
pub use records::CoordinatorRecord;
pub use shard::{Effects, FetchedOffset, GroupShard, ListedGroup, RequestInfo};

/// The internal topic of groups and offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka's group settings (broker keys `group.*` and `offsets.*`), with Kafka 4.x defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupConfig {
    /// group.min.session.timeout.ms
    pub min_session_timeout_ms: i32,
    /// group.max.session.timeout.ms
    pub max_session_timeout_ms: i32,
    /// group.initial.rebalance.delay.ms
    pub initial_rebalance_delay_ms: i32,
    /// group.max.size
    pub max_size: i32,
    /// How long a new member may wait for its first JoinGroup answer (Kafka: 5 minutes).
    pub new_member_join_timeout_ms: i64,
    /// offsets.retention.minutes, in ms.
    pub offsets_retention_ms: i64,
    /// offsets.retention.check.interval.ms
    pub offsets_retention_check_interval_ms: i64,
    /// offset.metadata.max.bytes
    pub offset_metadata_max_bytes: usize,
    /// group.consumer.session.timeout.ms (KIP-848 groups)
    pub consumer_session_timeout_ms: i32,
    /// group.consumer.heartbeat.interval.ms (KIP-848 groups)
    pub consumer_heartbeat_interval_ms: i32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: i32::MAX,
            new_member_join_timeout_ms: 300_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
        }
    }
}

/// The `__consumer_offsets` partition of a group, as Kafka computes it:
/// `abs(groupId.hashCode()) % partitions` with Java's `String.hashCode` over UTF-16 units.
pub fn partition_for(group_id: &str, num_partitions: i32) -> i32 {
    assert!(
        num_partitions > 0,
        "offsets.topic.num.partitions must be positive"
    );
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    // Kafka's Utils.abs maps i32::MIN to 0.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % num_partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_java_string_hash_code() {
        // "my-group".hashCode() == -1_906_497_762 in Java; 1906497762 % 50 == 12.
        assert_eq!(partition_for("my-group", 50), 12);
        // "console-consumer-1".hashCode() == 35_782_224.
        assert_eq!(partition_for("console-consumer-1", 50), 24);
        // "".hashCode() == 0.
        assert_eq!(partition_for("", 50), 0);
        // Non-BMP characters hash as two UTF-16 units.
        let p = partition_for("grüppe-😀", 50);
        assert!((0..50).contains(&p));
    }
}
