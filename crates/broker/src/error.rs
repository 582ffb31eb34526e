//! Broker errors, and the one place where errors become Kafka error codes.

use moldau_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("config: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("metadata log: {0}")]
    MetadataLog(String),
    #[error("cannot bind listener {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The Kafka error code a client sees for a storage failure (variants map one-to-one).
pub fn storage_error_code(error: &StorageError) -> i16 {
    error.kafka_error_code()
}
