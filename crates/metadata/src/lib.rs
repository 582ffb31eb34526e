//! Cluster metadata in the KRaft model.
//!
//! Every change to the cluster (a topic, a partition, a config, a producer-id block, a
//! user's SCRAM credential, an ACL, a client quota) is a [`MetadataRecord`] appended to the
//! metadata log. Readers hold an immutable [`MetadataImage`]; a [`MetadataDelta`] collects
//! committed records and produces the next image. Nothing here does I/O: the controller
//! decides which records to write, the broker decides what to do when an image changes.

mod image;
mod records;

pub use image::{
    BrokerImage, ClientQuotaEntity, ClientQuotas, ConfigResource, ConfigResourceType,
    MetadataDelta, MetadataImage, PartitionImage, ReplayError, ScramCredentialData, TopicImage,
};
pub use records::{
    AclEntry, BrokerEndpoint, MetadataRecord, QuotaEntityComponent, RecordCodecError, SecretBytes,
};
pub use uuid::Uuid;

/// Producer ids are handed to brokers in blocks of this size (Kafka's ProducerIdsBlock size).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
