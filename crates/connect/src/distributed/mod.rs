//! Distributed mode: workers of one `group.id` share the connectors through Kafka's group
//! protocol (protocol type `connect`, incremental cooperative rebalancing), with configs,
//! offsets and statuses in Kafka topics.
//!
//! * [`protocol`]: the group protocol's metadata and assignments, Kafka's bytes.
//! * [`assignor`]: the leader's incremental cooperative assignment.
//! * [`config_state`]: the connector configs the config topic holds.
//! * [`kafka_log`]: an internal topic read by every worker; [`offsets`]: source offsets
//!   in the offsets topic.

pub mod assignor;
pub mod config_state;
pub mod herder;
pub mod kafka_log;
pub mod member;
pub mod offsets;
pub mod protocol;
