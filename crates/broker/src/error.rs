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
    #[error("meta.properties: {0}")]
    MetaProperties(#[from] crate::meta_properties::MetaPropertiesError),
    /// One client operation would commit more than `MAX_RECORDS_PER_USER_OP` records.
    #[error("Unable to perform excessively large batch operation.")]
    TooManyRecords(usize),
    /// A metadata write reached a node that is not the active controller.
    #[error("this node is not the active controller (active controller: {leader_id:?})")]
    NotController { leader_id: Option<i32> },
    /// The quorum belongs to another cluster than this node's meta.properties.
    #[error("this node's cluster id {ours} differs from the cluster of {controller} (INCONSISTENT_CLUSTER_ID): format this node's directories with that cluster's id")]
    InconsistentClusterId { ours: String, controller: String },
    /// A request the controller refuses with this Kafka error.
    #[error("refused: {0:?}")]
    Refused(kafka_protocol::ResponseError),
    /// The quorum did not commit a metadata write in time (no majority reachable).
    #[error("the metadata quorum did not commit the change in time")]
    MetadataWriteTimeout,
}

/// The Kafka error code a client sees for a storage failure (variants map one-to-one).
pub fn storage_error_code(error: &StorageError) -> i16 {
    error.kafka_error_code()
}

impl BrokerError {
    /// Refusals a client caused (not worth an error in the log).
    pub fn is_client_refusal(&self) -> bool {
        matches!(
            self,
            BrokerError::TooManyRecords(_)
                | BrokerError::NotController { .. }
                | BrokerError::Refused(_)
        )
    }

    /// The Kafka error a client sees when a request fails with this error: a storage
    /// failure keeps its own code (an I/O error is KAFKA_STORAGE_ERROR, not UNKNOWN).
    pub fn response_error(&self) -> kafka_protocol::ResponseError {
        use kafka_protocol::ResponseError;
        match self {
            BrokerError::Storage(e) => ResponseError::try_from_code(storage_error_code(e))
                .unwrap_or(ResponseError::UnknownServerError),
            BrokerError::Io(_) => ResponseError::KafkaStorageError,
            BrokerError::TooManyRecords(_) => ResponseError::PolicyViolation,
            BrokerError::NotController { .. } => ResponseError::NotController,
            BrokerError::MetadataWriteTimeout => ResponseError::RequestTimedOut,
            BrokerError::Refused(error) => *error,
            _ => ResponseError::UnknownServerError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::ResponseError;

    #[test]
    fn io_failures_are_kafka_storage_errors() {
        let io = || std::io::Error::other("disk gone");
        let storage = BrokerError::Storage(StorageError::KafkaStorage(io()));
        assert_eq!(storage.response_error(), ResponseError::KafkaStorageError);
        assert_eq!(
            BrokerError::Io(io()).response_error(),
            ResponseError::KafkaStorageError
        );
        let corrupt = BrokerError::Storage(StorageError::CorruptMessage("crc".into()));
        assert_eq!(corrupt.response_error(), ResponseError::CorruptMessage);
        assert_eq!(
            BrokerError::TooManyRecords(10_001).response_error(),
            ResponseError::PolicyViolation
        );
        let metadata = BrokerError::MetadataLog("replay".into());
        assert_eq!(metadata.response_error(), ResponseError::UnknownServerError);
    }
}
