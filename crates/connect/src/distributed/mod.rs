//! Distributed mode: workers of one `group.id` share the connectors through Kafka's group
//! protocol (protocol type `connect`, incremental cooperative rebalancing), with configs,
//! offsets and statuses in Kafka topics.
//!
//! * [`protocol`]: the group protocol's metadata and assignments, Kafka's bytes.
//! * [`assignor`]: the leader's incremental cooperative assignment.

pub mod assignor;
pub mod protocol;
