//! Metadata records: the unit of change in the metadata log.
//!
//! Records are named after Kafka's KRaft metadata records and carry the same facts. They are
//! stored as JSON in the value of an ordinary Kafka record (key = record type), so the metadata
//! log is a normal partition log that `moldau` tools can dump and read.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::image::ConfigResourceType;

/// One advertised listener of a registered broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    /// The listener name, upper case (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A broker joined (or re-joined) the cluster. A new registration is fenced until the
    /// broker's first heartbeat finds it caught up (records of earlier versions, which
    /// lack the field, were single nodes: unfenced).
    RegisterBroker {
        broker_id: i32,
        broker_epoch: i64,
        host: String,
        port: u16,
        rack: Option<String>,
        #[serde(default)]
        fenced: bool,
        /// The process that registered: a restarted broker is a new incarnation and gets a
        /// new registration (and broker epoch) even with the same endpoint. Records of
        /// earlier versions lack it.
        #[serde(default)]
        incarnation_id: Option<Uuid>,
        /// Every listener the broker advertises to clients and peers (Kafka's
        /// RegisterBrokerRecord endpoints); `host`/`port` repeat the first. Records of
        /// earlier versions lack it: their one endpoint serves every listener name.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        listeners: Vec<BrokerEndpoint>,
    },
    /// A registered broker was fenced (missed heartbeats, controlled shutdown) or unfenced
    /// (caught up again), as Kafka's BrokerRegistrationChangeRecord. Applies only to the
    /// registration of `broker_epoch`.
    BrokerRegistrationChange {
        broker_id: i32,
        broker_epoch: i64,
        fenced: bool,
    },
    /// A broker's registration was removed (UnregisterBroker: a decommissioned broker).
    /// Applies only to the registration of `broker_epoch`.
    UnregisterBroker { broker_id: i32, broker_epoch: i64 },
    /// A topic was created. Its partitions follow as `Partition` records.
    Topic { name: String, topic_id: Uuid },
    /// A partition's full state (creation, growth by CreatePartitions, or a snapshot of
    /// one that may be reassigning: Kafka's PartitionRecord carries the adding and
    /// removing replicas too). Records of earlier versions have neither: empty.
    Partition {
        topic_id: Uuid,
        partition_id: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        adding_replicas: Vec<i32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removing_replicas: Vec<i32>,
        /// KIP-966: replicas that left the ISR while it was below `min.insync.replicas`
        /// and still hold everything below the high watermark (it could not advance), so
        /// they may lead when the ISR is empty. Records of earlier versions: empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        eligible_leader_replicas: Vec<i32>,
        /// KIP-966: the leader of the moment the ISR emptied (Kafka 4.1's last known
        /// leader), elected again when neither ISR nor ELR has anyone.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        last_known_elr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// A change of leader, ISR or replica assignment (Kafka's PartitionChangeRecord);
    /// fields left `None` are unchanged. Setting `leader` (even to the same broker) starts
    /// a new leader epoch; a change of `replicas` alone keeps it. Records of earlier
    /// versions carry no replica fields, and are written without them when unchanged.
    PartitionChange {
        topic_id: Uuid,
        partition_id: i32,
        leader: Option<i32>,
        isr: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replicas: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adding_replicas: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removing_replicas: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eligible_leader_replicas: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_known_elr: Option<Vec<i32>>,
    },
    /// A topic and all its partitions were deleted.
    RemoveTopic { topic_id: Uuid },
    /// A dynamic config was set (`value: Some`) or removed (`value: None`).
    Config {
        resource_type: ConfigResourceType,
        resource_name: String,
        name: String,
        value: Option<String>,
    },
    /// A block of producer ids `[next_producer_id - block, next_producer_id)` was handed out.
    ProducerIds {
        broker_id: i32,
        broker_epoch: i64,
        next_producer_id: i64,
    },
    /// A user's SCRAM credential for one mechanism was set (created or replaced), as
    /// Kafka's UserScramCredentialRecord: what a broker needs to authenticate the user,
    /// never the password. `mechanism` is Kafka's type code (1 SCRAM-SHA-256,
    /// 2 SCRAM-SHA-512); the bytes are written as base64.
    UserScramCredential {
        name: String,
        mechanism: i8,
        salt: SecretBytes,
        stored_key: SecretBytes,
        server_key: SecretBytes,
        iterations: i32,
    },
    /// A user's SCRAM credential for one mechanism was deleted (Kafka's
    /// RemoveUserScramCredentialRecord).
    RemoveUserScramCredential { name: String, mechanism: i8 },
    /// An ACL binding was created, as Kafka's AccessControlEntryRecord: codes are Kafka's
    /// (resource type, pattern type, operation, permission type).
    AccessControlEntry {
        id: Uuid,
        #[serde(flatten)]
        entry: AclEntry,
    },
    /// An ACL binding was deleted (Kafka's RemoveAccessControlEntryRecord).
    RemoveAccessControlEntry { id: Uuid },
    /// A client quota of an entity was set, or removed (`remove`: `value` is then
    /// ignored), as Kafka's ClientQuotaRecord. The entity is a list of (type, name)
    /// components: `user`, `client-id` or `ip`, a `None` name being the default entity of
    /// the type; `key` is the quota (`producer_byte_rate`, `consumer_byte_rate`,
    /// `request_percentage`, `controller_mutation_rate`, `connection_creation_rate`).
    /// `value` is always finite (JSON has no NaN or infinity; the controller refuses them).
    ClientQuota {
        entity: Vec<QuotaEntityComponent>,
        key: String,
        value: f64,
        #[serde(default)]
        remove: bool,
    },
}

/// One component of a client quota entity (Kafka's ClientQuotaRecord `EntityData`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntityComponent {
    /// `user`, `client-id` or `ip`.
    pub entity_type: String,
    /// The user, client id or IP; `None` for the default entity of the type.
    pub entity_name: Option<String>,
}

/// One ACL binding, as stored: Kafka's wire codes and strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclEntry {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    /// `User:alice`, `User:*`.
    pub principal: String,
    /// A client address or `*`.
    pub host: String,
    pub operation: i8,
    pub permission_type: i8,
}

/// Bytes a record carries that are password equivalents (SCRAM salts and keys): kept out
/// of `Debug` output (as Kafka's `ScramCredentialValue.toString`), written to JSON as
/// standard base64 with padding.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(pub Vec<u8>);

impl SecretBytes {
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
}

impl From<&[u8]> for SecretBytes {
    fn from(bytes: &[u8]) -> Self {
        SecretBytes(bytes.to_vec())
    }
}

impl std::ops::Deref for SecretBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[hidden]")
    }
}

impl Serialize for SecretBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(SecretBytes)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid metadata record: {0}")]
pub struct RecordCodecError(#[from] serde_json::Error);

impl MetadataRecord {
    /// The record type, used as the Kafka record key so the log is easy to read.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetadataRecord::RegisterBroker { .. } => "RegisterBroker",
            MetadataRecord::BrokerRegistrationChange { .. } => "BrokerRegistrationChange",
            MetadataRecord::UnregisterBroker { .. } => "UnregisterBroker",
            MetadataRecord::Topic { .. } => "Topic",
            MetadataRecord::Partition { .. } => "Partition",
            MetadataRecord::PartitionChange { .. } => "PartitionChange",
            MetadataRecord::RemoveTopic { .. } => "RemoveTopic",
            MetadataRecord::Config { .. } => "Config",
            MetadataRecord::ProducerIds { .. } => "ProducerIds",
            MetadataRecord::UserScramCredential { .. } => "UserScramCredential",
            MetadataRecord::RemoveUserScramCredential { .. } => "RemoveUserScramCredential",
            MetadataRecord::AccessControlEntry { .. } => "AccessControlEntry",
            MetadataRecord::RemoveAccessControlEntry { .. } => "RemoveAccessControlEntry",
            MetadataRecord::ClientQuota { .. } => "ClientQuota",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serializing these plain data types cannot fail.
        serde_json::to_vec(self).expect("metadata record serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RecordCodecError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}
