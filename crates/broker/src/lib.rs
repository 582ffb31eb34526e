//! moldau-broker: a Kafka broker (and, for now, its one-voter controller) on the storage crate.
//!
//! Request path: [`network`] reads a bounded, length-prefixed frame per request, [`api`]
//! decodes the header, checks the version against the handler's declared range and routes
//! to one handler per Kafka API under [`handlers`]; the response goes back in request order.
//! Metadata changes go through the [`controller`]; partition logs live in the
//! [`replica_manager`].

pub mod config;
mod error;

mod alter_partition_manager;
mod api;
mod authorizer;
mod broker_lifecycle;
mod controller;
mod descriptors;
mod dynamic_tls;
mod group_coordinator;
mod handlers;
mod inter_broker;
mod internal_log;
mod leader_state;
pub mod meta_properties;
pub mod net;
mod network;
pub mod placement;
mod quota_manager;
mod raft_transport;
mod replica_fetcher;
mod replica_manager;
mod replication_quota;
mod sasl;
mod server;
mod state;
mod supervisor;
mod topic_configs;
mod txn_coordinator;

/// The broker's request decoding, pure, for the fuzz target and hostile-input tests.
pub use api::{decode_request, DecodedRequest};
pub use config::{ConfigError, Endpoint, ServerConfig};
pub use descriptors::raise_nofile_limit;
pub use error::BrokerError;
pub use server::Broker;

/// Wall-clock milliseconds since the epoch, as Kafka timestamps are (the clock seam).
pub(crate) use moldau_storage::seams::now_ms;

/// Waits out what a slow disk under `log_dir` adds to an append: nothing in production
/// (the disk's own speed is in the write itself); the simulation's slow-disk fault.
pub(crate) async fn slow_disk(log_dir: &std::path::Path) {
    let delay = moldau_storage::seams::disk_delay(log_dir);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Runs blocking disk work off the async workers: on tokio's blocking pool, or inline
/// under the simulation, which drives every host from one thread.
pub(crate) async fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if moldau_storage::seams::simulated() {
        return Ok(f());
    }
    tokio::task::spawn_blocking(f).await
}
