//! The immutable metadata image and the delta that produces the next one.
//!
//! Invariants: an image is never mutated once published; every topic in `topics_by_name`
//! is in `topics_by_id` and vice versa; `offset` is the metadata log offset of the last
//! record the image reflects (-1 for the empty image).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::records::{AclEntry, BrokerEndpoint, MetadataRecord, QuotaEntityComponent, SecretBytes};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigResourceType {
    Topic,
    Broker,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigResource {
    pub resource_type: ConfigResourceType,
    /// Topic name, or broker id as a string ("" for the cluster-wide broker default).
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BrokerImage {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// A fenced broker leads nothing and gets no new replicas; clients are not told of it.
    pub fenced: bool,
    /// The process that registered (see `MetadataRecord::RegisterBroker`).
    pub incarnation_id: Option<Uuid>,
    /// Its advertised listeners; empty for a registration of earlier versions.
    pub listeners: Vec<BrokerEndpoint>,
}

impl BrokerImage {
    /// The broker's endpoint on listener `name` (case-insensitive), as Kafka answers each
    /// client with the endpoints of the listener it connected to. A registration of earlier
    /// versions had one endpoint, which serves any name.
    pub fn endpoint(&self, name: &str) -> Option<(&str, u16)> {
        if self.listeners.is_empty() {
            return Some((&self.host, self.port));
        }
        self.listeners
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
            .map(|l| (l.host.as_str(), l.port))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PartitionImage {
    /// Every replica; while a reassignment runs, the target's replicas first, then the
    /// ones it removes (Kafka's order).
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Replicas an ongoing reassignment adds (empty when none runs).
    pub adding_replicas: Vec<i32>,
    /// Replicas an ongoing reassignment removes (empty when none runs).
    pub removing_replicas: Vec<i32>,
    /// KIP-966's eligible leader replicas: they left the ISR while it was below
    /// `min.insync.replicas`, when the high watermark could not advance, so they hold
    /// every committed record and may lead once the ISR is empty.
    pub eligible_leader_replicas: Vec<i32>,
    /// KIP-966's last known ELR, as Kafka 4.1 keeps it: the leader of the moment the ISR
    /// emptied, which may lead again when neither ISR nor ELR has anyone.
    pub last_known_elr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

impl PartitionImage {
    /// A new partition (no reassignment).
    pub fn new(
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    ) -> Self {
        PartitionImage {
            replicas,
            isr,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
            leader,
            leader_epoch,
            partition_epoch,
        }
    }

    /// Whether a reassignment is in progress (Kafka's `isReassignmentInProgress`).
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The partition after a `PartitionChange` of these fields (Kafka's
    /// `PartitionRegistration.merge`): `None` keeps a field; a `leader` (even the same
    /// one) bumps the leader epoch; the partition epoch always goes up by one.
    pub fn merge(
        &self,
        leader: Option<i32>,
        isr: Option<&[i32]>,
        replicas: Option<&[i32]>,
        adding_replicas: Option<&[i32]>,
        removing_replicas: Option<&[i32]>,
    ) -> PartitionImage {
        self.merge_with_elr(
            leader,
            isr,
            replicas,
            adding_replicas,
            removing_replicas,
            None,
            None,
        )
    }

    /// [`Self::merge`] with KIP-966's eligible leader replicas and last known ELR.
    #[allow(clippy::too_many_arguments)]
    pub fn merge_with_elr(
        &self,
        leader: Option<i32>,
        isr: Option<&[i32]>,
        replicas: Option<&[i32]>,
        adding_replicas: Option<&[i32]>,
        removing_replicas: Option<&[i32]>,
        eligible_leader_replicas: Option<&[i32]>,
        last_known_elr: Option<&[i32]>,
    ) -> PartitionImage {
        let mut next = self.clone();
        if let Some(leader) = leader {
            next.leader = leader;
            next.leader_epoch += 1;
        }
        if let Some(isr) = isr {
            next.isr = isr.to_vec();
        }
        if let Some(replicas) = replicas {
            next.replicas = replicas.to_vec();
        }
        if let Some(adding) = adding_replicas {
            next.adding_replicas = adding.to_vec();
        }
        if let Some(removing) = removing_replicas {
            next.removing_replicas = removing.to_vec();
        }
        if let Some(elr) = eligible_leader_replicas {
            next.eligible_leader_replicas = elr.to_vec();
        }
        if let Some(last_known) = last_known_elr {
            next.last_known_elr = last_known.to_vec();
        }
        next.partition_epoch += 1;
        next
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
}

/// A user's SCRAM credential for one mechanism (Kafka's `ScramCredentialData`): what a
/// broker checks a SCRAM exchange against. `Debug` hides the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramCredentialData {
    pub salt: SecretBytes,
    pub stored_key: SecretBytes,
    pub server_key: SecretBytes,
    pub iterations: i32,
}

/// SCRAM credentials by user name, then by mechanism type code (Kafka's `ScramImage`).
type ScramCredentials = BTreeMap<String, BTreeMap<i8, ScramCredentialData>>;

/// A client quota entity (Kafka's `ClientQuotaEntity`): entity type (`user`, `client-id`,
/// `ip`) to name, `None` being the default entity of the type.
pub type ClientQuotaEntity = BTreeMap<String, Option<String>>;

/// Client quotas by entity, then by quota key (Kafka's `ClientQuotasImage`). An entity
/// with no quota left is not in the map.
pub type ClientQuotas = BTreeMap<ClientQuotaEntity, BTreeMap<String, f64>>;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetadataImage {
    pub offset: i64,
    pub brokers: BTreeMap<i32, BrokerImage>,
    topics_by_id: HashMap<Uuid, Arc<TopicImage>>,
    topics_by_name: HashMap<String, Uuid>,
    configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    /// The first producer id not yet handed out in any block.
    pub next_producer_id: i64,
    /// Shared between images until a SCRAM record changes it (a delta clones the image).
    scram: Arc<ScramCredentials>,
    /// ACL bindings by id; shared until an ACL record changes them (so a consumer can tell
    /// a change by pointer).
    acls: Arc<BTreeMap<Uuid, AclEntry>>,
    /// Client quotas; shared until a ClientQuota record changes them (a consumer tells a
    /// change by pointer, as with `acls`).
    client_quotas: Arc<ClientQuotas>,
}

impl MetadataImage {
    pub fn empty() -> Self {
        MetadataImage {
            offset: -1,
            ..Default::default()
        }
    }

    pub fn topic_by_name(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics_by_name
            .get(name)
            .and_then(|id| self.topics_by_id.get(id))
    }

    pub fn topic_by_id(&self, topic_id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topics_by_id.get(topic_id)
    }

    /// Brokers that may lead and take new replicas, by id.
    pub fn unfenced_broker_ids(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.broker_id)
            .collect()
    }

    /// Topics sorted by name, so listings are stable.
    pub fn topics(&self) -> Vec<&Arc<TopicImage>> {
        let mut topics: Vec<_> = self.topics_by_id.values().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Every ACL binding, by id (Kafka's `AclsImage`).
    pub fn acls(&self) -> &Arc<BTreeMap<Uuid, AclEntry>> {
        &self.acls
    }

    /// Every client quota, by entity (Kafka's `ClientQuotasImage`). The `Arc` is the same
    /// from image to image until a ClientQuota record changes the quotas, so a reader can
    /// notice a change by `Arc::ptr_eq`.
    pub fn client_quotas(&self) -> &Arc<ClientQuotas> {
        &self.client_quotas
    }

    /// The quotas set on one entity, by key; `None` when it has none.
    pub fn client_quotas_of(&self, entity: &ClientQuotaEntity) -> Option<&BTreeMap<String, f64>> {
        self.client_quotas.get(entity)
    }

    /// Dynamic configs set on a resource (topic overrides, or broker dynamic configs).
    pub fn configs(&self, resource: &ConfigResource) -> Option<&BTreeMap<String, String>> {
        self.configs.get(resource)
    }

    /// The SCRAM credential of `user` for the mechanism of Kafka type code `mechanism`
    /// (1 SCRAM-SHA-256, 2 SCRAM-SHA-512): what a broker authenticates the user against.
    pub fn scram_credential(&self, user: &str, mechanism: i8) -> Option<&ScramCredentialData> {
        self.scram.get(user)?.get(&mechanism)
    }

    /// The SCRAM credentials of `user` by mechanism type code; `None` when it has none.
    pub fn scram_credentials_of(&self, user: &str) -> Option<&BTreeMap<i8, ScramCredentialData>> {
        self.scram.get(user)
    }

    /// Every user with a SCRAM credential, by name, each with its credentials by mechanism
    /// type code.
    pub fn scram_users(&self) -> impl Iterator<Item = (&str, &BTreeMap<i8, ScramCredentialData>)> {
        self.scram
            .iter()
            .map(|(user, by_mechanism)| (user.as_str(), by_mechanism))
    }

    /// Records that rebuild this image when replayed onto the empty image (a metadata
    /// snapshot's content, as Kafka's snapshots are the records of the image). Ordered
    /// deterministically: brokers, topics by name each followed by its partitions, configs,
    /// SCRAM credentials by user and mechanism, ACLs, client quotas by entity and key, then
    /// the producer-id high mark. `offset` is not a record: the snapshot carries it.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        for broker in self.brokers.values() {
            records.push(MetadataRecord::RegisterBroker {
                broker_id: broker.broker_id,
                broker_epoch: broker.broker_epoch,
                host: broker.host.clone(),
                port: broker.port,
                rack: broker.rack.clone(),
                fenced: broker.fenced,
                incarnation_id: broker.incarnation_id,
                listeners: broker.listeners.clone(),
            });
        }
        for topic in self.topics() {
            records.push(MetadataRecord::Topic {
                name: topic.name.clone(),
                topic_id: topic.topic_id,
            });
            for (partition_id, partition) in &topic.partitions {
                records.push(MetadataRecord::Partition {
                    topic_id: topic.topic_id,
                    partition_id: *partition_id,
                    replicas: partition.replicas.clone(),
                    isr: partition.isr.clone(),
                    adding_replicas: partition.adding_replicas.clone(),
                    removing_replicas: partition.removing_replicas.clone(),
                    eligible_leader_replicas: partition.eligible_leader_replicas.clone(),
                    last_known_elr: partition.last_known_elr.clone(),
                    leader: partition.leader,
                    leader_epoch: partition.leader_epoch,
                    partition_epoch: partition.partition_epoch,
                });
            }
        }
        for (resource, configs) in &self.configs {
            for (name, value) in configs {
                records.push(MetadataRecord::Config {
                    resource_type: resource.resource_type,
                    resource_name: resource.name.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        for (user, by_mechanism) in self.scram.iter() {
            for (mechanism, credential) in by_mechanism {
                records.push(MetadataRecord::UserScramCredential {
                    name: user.clone(),
                    mechanism: *mechanism,
                    salt: credential.salt.clone(),
                    stored_key: credential.stored_key.clone(),
                    server_key: credential.server_key.clone(),
                    iterations: credential.iterations,
                });
            }
        }
        for (id, entry) in self.acls.iter() {
            records.push(MetadataRecord::AccessControlEntry {
                id: *id,
                entry: entry.clone(),
            });
        }
        for (entity, quotas) in self.client_quotas.iter() {
            for (key, value) in quotas {
                records.push(MetadataRecord::ClientQuota {
                    entity: entity
                        .iter()
                        .map(|(entity_type, entity_name)| QuotaEntityComponent {
                            entity_type: entity_type.clone(),
                            entity_name: entity_name.clone(),
                        })
                        .collect(),
                    key: key.clone(),
                    value: *value,
                    remove: false,
                });
            }
        }
        if self.next_producer_id > 0 {
            // Replay keeps the maximum, so the block's owner does not matter here.
            records.push(MetadataRecord::ProducerIds {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
            });
        }
        records
    }
}

/// Kafka's `ClientQuotaControlManager.replay`: a component type named twice keeps its
/// last name; removing a quota the entity does not have changes nothing (never an error);
/// an entity whose last quota goes is dropped. The shared map is copied only on a change.
fn replay_client_quota(
    image: &mut MetadataImage,
    components: &[QuotaEntityComponent],
    key: &str,
    value: f64,
    remove: bool,
) {
    let entity: ClientQuotaEntity = components
        .iter()
        .map(|c| (c.entity_type.clone(), c.entity_name.clone()))
        .collect();
    if remove {
        let Some(quotas) = image.client_quotas.get(&entity) else {
            return;
        };
        if !quotas.contains_key(key) {
            return;
        }
        let all = Arc::make_mut(&mut image.client_quotas);
        if let Some(quotas) = all.get_mut(&entity) {
            quotas.remove(key);
            if quotas.is_empty() {
                all.remove(&entity);
            }
        }
    } else {
        Arc::make_mut(&mut image.client_quotas)
            .entry(entity)
            .or_default()
            .insert(key.to_string(), value);
    }
}

/// Changes since a base image. `replay` each committed record in order, then `apply`.
pub struct MetadataDelta {
    next: MetadataImage,
    changed_topics: BTreeSet<Uuid>,
    deleted_topics: Vec<Arc<TopicImage>>,
    changed_configs: BTreeSet<ConfigResource>,
    /// A broker registered, or was fenced or unfenced.
    changed_brokers: bool,
    /// Users whose SCRAM credentials were set or removed.
    changed_scram_users: BTreeSet<String>,
}

/// A committed record that replay skipped: the image is unchanged by it (but for `offset`).
/// Replay never stops on one (a node must always start on its own log); the caller logs it.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("record at offset {offset} refers to unknown topic id {topic_id}")]
    UnknownTopic { offset: i64, topic_id: Uuid },
    #[error("record at offset {offset} refers to unknown partition {topic_id}:{partition_id}")]
    UnknownPartition {
        offset: i64,
        topic_id: Uuid,
        partition_id: i32,
    },
    #[error("record at offset {offset} refers to broker {broker_id} epoch {broker_epoch}, which is not registered")]
    UnknownBroker {
        offset: i64,
        broker_id: i32,
        broker_epoch: i64,
    },
    #[error("record at offset {offset} creates topic id {topic_id} as {name:?}, but that id is topic {existing:?}")]
    ConflictingTopicId {
        offset: i64,
        topic_id: Uuid,
        name: String,
        existing: String,
    },
    #[error("record at offset {offset} removes ACL {id}, which does not exist")]
    UnknownAcl { offset: i64, id: Uuid },
    #[error("record at offset {offset} removes the SCRAM credential of user {name:?} for mechanism {mechanism}, which does not exist")]
    UnknownScramCredential {
        offset: i64,
        name: String,
        mechanism: i8,
    },
}

impl MetadataDelta {
    pub fn new(base: &MetadataImage) -> Self {
        MetadataDelta {
            next: base.clone(),
            changed_topics: BTreeSet::new(),
            deleted_topics: Vec::new(),
            changed_configs: BTreeSet::new(),
            changed_brokers: false,
            changed_scram_users: BTreeSet::new(),
        }
    }

    /// The change from `old` to `new` as one delta, for an image that replaced another
    /// wholesale (a snapshot installed from the leader): topics of `new` that are not the
    /// same in `old` changed, topics of `old` whose id is gone deleted, every config
    /// resource of either changed, users whose SCRAM credentials differ changed.
    pub fn between(old: &MetadataImage, new: &MetadataImage) -> Self {
        let changed_topics = new
            .topics_by_id
            .iter()
            .filter(|(id, topic)| old.topics_by_id.get(id) != Some(topic))
            .map(|(id, _)| *id)
            .collect();
        let deleted_topics = old
            .topics_by_id
            .iter()
            .filter(|(id, _)| !new.topics_by_id.contains_key(id))
            .map(|(_, topic)| topic.clone())
            .collect();
        let changed_configs = old
            .configs
            .keys()
            .chain(new.configs.keys())
            .cloned()
            .collect();
        let changed_scram_users = old
            .scram
            .keys()
            .chain(new.scram.keys())
            .filter(|user| old.scram.get(*user) != new.scram.get(*user))
            .cloned()
            .collect();
        MetadataDelta {
            next: new.clone(),
            changed_topics,
            deleted_topics,
            changed_configs,
            changed_brokers: old.brokers != new.brokers,
            changed_scram_users,
        }
    }

    /// The image as it stands with the records replayed so far (for validating the next
    /// write against uncommitted-but-accepted records within one controller operation).
    pub fn current(&self) -> &MetadataImage {
        &self.next
    }

    pub fn changed_topics(&self) -> impl Iterator<Item = &Uuid> {
        self.changed_topics.iter()
    }

    pub fn deleted_topics(&self) -> &[Arc<TopicImage>] {
        &self.deleted_topics
    }

    pub fn changed_brokers(&self) -> bool {
        self.changed_brokers
    }

    pub fn changed_configs(&self) -> impl Iterator<Item = &ConfigResource> {
        self.changed_configs.iter()
    }

    /// Users whose SCRAM credentials were set or removed.
    pub fn changed_scram_users(&self) -> impl Iterator<Item = &str> {
        self.changed_scram_users.iter().map(String::as_str)
    }

    /// Applies one committed record. Deterministic and total: a record that refers to
    /// something unknown is skipped with an error (as a Kafka broker's loader does), a
    /// repeated `Topic` record of the same id is a no-op, and a `Topic` record whose name
    /// is taken by another id supersedes that topic (the latest record wins, as in Kafka's
    /// by-name map). Logs are named by topic name, so the superseded topic's partitions
    /// become the new topic's: it is dropped from the image, not deleted. A SCRAM
    /// credential record replaces the user's credential for its mechanism (whatever the
    /// type code: the controller writes only known ones); removing one that does not
    /// exist is skipped.
    pub fn replay(&mut self, offset: i64, record: &MetadataRecord) -> Result<(), ReplayError> {
        let image = &mut self.next;
        image.offset = offset;
        match record {
            MetadataRecord::RegisterBroker {
                broker_id,
                broker_epoch,
                host,
                port,
                rack,
                fenced,
                incarnation_id,
                listeners,
            } => {
                image.brokers.insert(
                    *broker_id,
                    BrokerImage {
                        broker_id: *broker_id,
                        broker_epoch: *broker_epoch,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                        fenced: *fenced,
                        incarnation_id: *incarnation_id,
                        listeners: listeners.clone(),
                    },
                );
                self.changed_brokers = true;
            }
            MetadataRecord::BrokerRegistrationChange {
                broker_id,
                broker_epoch,
                fenced,
            } => {
                let broker = image
                    .brokers
                    .get_mut(broker_id)
                    .filter(|b| b.broker_epoch == *broker_epoch)
                    .ok_or(ReplayError::UnknownBroker {
                        offset,
                        broker_id: *broker_id,
                        broker_epoch: *broker_epoch,
                    })?;
                broker.fenced = *fenced;
                self.changed_brokers = true;
            }
            MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            } => {
                if image
                    .brokers
                    .get(broker_id)
                    .is_none_or(|b| b.broker_epoch != *broker_epoch)
                {
                    return Err(ReplayError::UnknownBroker {
                        offset,
                        broker_id: *broker_id,
                        broker_epoch: *broker_epoch,
                    });
                }
                image.brokers.remove(broker_id);
                self.changed_brokers = true;
            }
            MetadataRecord::Topic { name, topic_id } => {
                if let Some(existing) = image.topics_by_id.get(topic_id) {
                    if existing.name == *name {
                        return Ok(());
                    }
                    return Err(ReplayError::ConflictingTopicId {
                        offset,
                        topic_id: *topic_id,
                        name: name.clone(),
                        existing: existing.name.clone(),
                    });
                }
                if let Some(old_id) = image.topics_by_name.insert(name.clone(), *topic_id) {
                    image.topics_by_id.remove(&old_id);
                    self.changed_topics.remove(&old_id);
                }
                image.topics_by_id.insert(
                    *topic_id,
                    Arc::new(TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: BTreeMap::new(),
                    }),
                );
                self.changed_topics.insert(*topic_id);
            }
            MetadataRecord::Partition {
                topic_id,
                partition_id,
                replicas,
                isr,
                adding_replicas,
                removing_replicas,
                eligible_leader_replicas,
                last_known_elr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                let topic = topic_mut(image, offset, topic_id)?;
                topic.partitions.insert(
                    *partition_id,
                    PartitionImage {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        adding_replicas: adding_replicas.clone(),
                        removing_replicas: removing_replicas.clone(),
                        eligible_leader_replicas: eligible_leader_replicas.clone(),
                        last_known_elr: last_known_elr.clone(),
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                    },
                );
                self.changed_topics.insert(*topic_id);
            }
            MetadataRecord::PartitionChange {
                topic_id,
                partition_id,
                leader,
                isr,
                replicas,
                adding_replicas,
                removing_replicas,
                eligible_leader_replicas,
                last_known_elr,
            } => {
                let topic = topic_mut(image, offset, topic_id)?;
                let partition = topic.partitions.get_mut(partition_id).ok_or(
                    ReplayError::UnknownPartition {
                        offset,
                        topic_id: *topic_id,
                        partition_id: *partition_id,
                    },
                )?;
                *partition = partition.merge_with_elr(
                    *leader,
                    isr.as_deref(),
                    replicas.as_deref(),
                    adding_replicas.as_deref(),
                    removing_replicas.as_deref(),
                    eligible_leader_replicas.as_deref(),
                    last_known_elr.as_deref(),
                );
                self.changed_topics.insert(*topic_id);
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                let topic =
                    image
                        .topics_by_id
                        .remove(topic_id)
                        .ok_or(ReplayError::UnknownTopic {
                            offset,
                            topic_id: *topic_id,
                        })?;
                image.topics_by_name.remove(&topic.name);
                image.configs.remove(&ConfigResource {
                    resource_type: ConfigResourceType::Topic,
                    name: topic.name.clone(),
                });
                self.changed_topics.remove(topic_id);
                self.deleted_topics.push(topic);
            }
            MetadataRecord::Config {
                resource_type,
                resource_name,
                name,
                value,
            } => {
                let resource = ConfigResource {
                    resource_type: *resource_type,
                    name: resource_name.clone(),
                };
                let configs = image.configs.entry(resource.clone()).or_default();
                match value {
                    Some(value) => {
                        configs.insert(name.clone(), value.clone());
                    }
                    None => {
                        configs.remove(name);
                    }
                }
                if configs.is_empty() {
                    image.configs.remove(&resource);
                }
                self.changed_configs.insert(resource);
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                image.next_producer_id = image.next_producer_id.max(*next_producer_id);
            }
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                salt,
                stored_key,
                server_key,
                iterations,
            } => {
                Arc::make_mut(&mut image.scram)
                    .entry(name.clone())
                    .or_default()
                    .insert(
                        *mechanism,
                        ScramCredentialData {
                            salt: salt.clone(),
                            stored_key: stored_key.clone(),
                            server_key: server_key.clone(),
                            iterations: *iterations,
                        },
                    );
                self.changed_scram_users.insert(name.clone());
            }
            MetadataRecord::AccessControlEntry { id, entry } => {
                // A repeated id replaces the binding (replay is idempotent).
                Arc::make_mut(&mut image.acls).insert(*id, entry.clone());
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                if !image.acls.contains_key(id) {
                    return Err(ReplayError::UnknownAcl { offset, id: *id });
                }
                Arc::make_mut(&mut image.acls).remove(id);
            }
            MetadataRecord::ClientQuota {
                entity,
                key,
                value,
                remove,
            } => replay_client_quota(image, entity, key, *value, *remove),
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                let unknown = || ReplayError::UnknownScramCredential {
                    offset,
                    name: name.clone(),
                    mechanism: *mechanism,
                };
                if image.scram_credential(name, *mechanism).is_none() {
                    return Err(unknown());
                }
                let scram = Arc::make_mut(&mut image.scram);
                let by_mechanism = scram.get_mut(name).ok_or_else(unknown)?;
                by_mechanism.remove(mechanism);
                if by_mechanism.is_empty() {
                    scram.remove(name);
                }
                self.changed_scram_users.insert(name.clone());
            }
        }
        Ok(())
    }

    pub fn apply(self) -> MetadataImage {
        self.next
    }
}

fn topic_mut<'a>(
    image: &'a mut MetadataImage,
    offset: i64,
    topic_id: &Uuid,
) -> Result<&'a mut TopicImage, ReplayError> {
    image
        .topics_by_id
        .get_mut(topic_id)
        .map(Arc::make_mut)
        .ok_or(ReplayError::UnknownTopic {
            offset,
            topic_id: *topic_id,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic_records(name: &str, partitions: i32) -> (Uuid, Vec<MetadataRecord>) {
        let topic_id = Uuid::new_v4();
        let mut records = vec![MetadataRecord::Topic {
            name: name.into(),
            topic_id,
        }];
        for partition_id in 0..partitions {
            records.push(MetadataRecord::Partition {
                topic_id,
                partition_id,
                replicas: vec![1],
                isr: vec![1],
                adding_replicas: vec![],
                removing_replicas: vec![],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                eligible_leader_replicas: Vec::new(),
                last_known_elr: Vec::new(),
            });
        }
        (topic_id, records)
    }

    fn replay_all(base: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut delta = MetadataDelta::new(base);
        for (i, record) in records.iter().enumerate() {
            delta
                .replay(base.offset + 1 + i as i64, record)
                .expect("replay");
        }
        delta.apply()
    }

    #[test]
    fn topic_creation_and_deletion() {
        let (topic_id, records) = topic_records("orders", 3);
        let image = replay_all(&MetadataImage::empty(), &records);
        assert_eq!(image.offset, 3);
        let topic = image.topic_by_name("orders").expect("topic");
        assert_eq!(topic.partitions.len(), 3);
        assert_eq!(image.topic_by_id(&topic_id).unwrap().name, "orders");

        let mut delta = MetadataDelta::new(&image);
        delta
            .replay(4, &MetadataRecord::RemoveTopic { topic_id })
            .unwrap();
        assert_eq!(delta.deleted_topics().len(), 1);
        let after = delta.apply();
        assert!(after.topic_by_name("orders").is_none());
        // The old image is untouched: readers holding it keep a consistent view.
        assert!(image.topic_by_name("orders").is_some());
    }

    #[test]
    fn partition_change_bumps_epochs() {
        let (topic_id, records) = topic_records("t", 1);
        let image = replay_all(&MetadataImage::empty(), &records);
        let image = replay_all(
            &image,
            &[MetadataRecord::PartitionChange {
                topic_id,
                partition_id: 0,
                leader: Some(2),
                isr: Some(vec![2]),
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
                eligible_leader_replicas: None,
                last_known_elr: None,
            }],
        );
        let p = &image.topic_by_id(&topic_id).unwrap().partitions[&0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 1));
        assert_eq!(p.isr, vec![2]);
    }

    #[test]
    fn configs_set_and_removed() {
        let set = MetadataRecord::Config {
            resource_type: ConfigResourceType::Topic,
            resource_name: "t".into(),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        };
        let image = replay_all(&MetadataImage::empty(), &[set]);
        let resource = ConfigResource {
            resource_type: ConfigResourceType::Topic,
            name: "t".into(),
        };
        assert_eq!(image.configs(&resource).unwrap()["retention.ms"], "1000");
        let unset = MetadataRecord::Config {
            resource_type: ConfigResourceType::Topic,
            resource_name: "t".into(),
            name: "retention.ms".into(),
            value: None,
        };
        let image = replay_all(&image, &[unset]);
        assert!(image.configs(&resource).is_none());
    }

    #[test]
    fn unknown_topic_is_an_error_not_a_panic() {
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        let err = delta
            .replay(
                0,
                &MetadataRecord::RemoveTopic {
                    topic_id: Uuid::new_v4(),
                },
            )
            .unwrap_err();
        assert!(matches!(err, ReplayError::UnknownTopic { .. }));
    }

    /// Logs written before replay was made total hold these; they must still load.
    #[test]
    fn duplicate_remove_topic_is_skipped() {
        let (topic_id, mut records) = topic_records("t", 2);
        let (_, other) = topic_records("u", 1);
        records.extend(other);
        let image = replay_all(&MetadataImage::empty(), &records);
        let mut delta = MetadataDelta::new(&image);
        let remove = MetadataRecord::RemoveTopic { topic_id };
        delta.replay(10, &remove).unwrap();
        let err = delta.replay(11, &remove).unwrap_err();
        assert!(matches!(err, ReplayError::UnknownTopic { offset: 11, .. }));
        assert_eq!(delta.deleted_topics().len(), 1);
        let after = delta.apply();
        assert_eq!(after.offset, 11);
        assert!(after.topic_by_name("t").is_none());
        assert_eq!(after.topic_by_name("u").unwrap().partitions.len(), 1);
    }

    #[test]
    fn a_second_topic_of_a_name_supersedes_the_first() {
        let (first_id, first) = topic_records("t", 2);
        let (second_id, second) = topic_records("t", 3);
        let records: Vec<_> = first.into_iter().chain(second).collect();
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        for (i, record) in records.iter().enumerate() {
            delta.replay(i as i64, record).unwrap();
        }
        // Not a deletion: the partitions' logs, named after the topic, now serve the second.
        assert!(delta.deleted_topics().is_empty());
        assert_eq!(delta.changed_topics().collect::<Vec<_>>(), vec![&second_id]);
        let image = delta.apply();
        assert_eq!(image.topics().len(), 1);
        let topic = image.topic_by_name("t").unwrap();
        assert_eq!((topic.topic_id, topic.partitions.len()), (second_id, 3));
        assert!(image.topic_by_id(&first_id).is_none());
        // A later record of the superseded id is skipped; one of the live id applies.
        let image = replay_all(
            &image,
            &[MetadataRecord::RemoveTopic {
                topic_id: second_id,
            }],
        );
        assert!(image.topics().is_empty());
    }

    #[test]
    fn a_repeated_topic_record_is_a_no_op() {
        let (topic_id, records) = topic_records("t", 2);
        let image = replay_all(&MetadataImage::empty(), &records);
        let repeat = MetadataRecord::Topic {
            name: "t".into(),
            topic_id,
        };
        let image = replay_all(&image, &[repeat]);
        assert_eq!(image.topic_by_name("t").unwrap().partitions.len(), 2);
        let mut delta = MetadataDelta::new(&image);
        let renamed = MetadataRecord::Topic {
            name: "v".into(),
            topic_id,
        };
        let err = delta.replay(9, &renamed).unwrap_err();
        assert!(matches!(err, ReplayError::ConflictingTopicId { .. }));
        assert!(delta.current().topic_by_name("v").is_none());
    }

    #[test]
    fn to_records_rebuilds_the_image() {
        let (topic_id, mut records) = topic_records("orders", 2);
        let (_, more) = topic_records("audit", 1);
        records.extend(more);
        records.push(MetadataRecord::PartitionChange {
            topic_id,
            partition_id: 1,
            leader: Some(2),
            isr: Some(vec![2]),
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
            eligible_leader_replicas: None,
            last_known_elr: None,
        });
        // Partition 0 is reassigning from [1] to [2, 3]: a snapshot keeps that.
        records.push(MetadataRecord::PartitionChange {
            topic_id,
            partition_id: 0,
            leader: None,
            isr: None,
            replicas: Some(vec![2, 3, 1]),
            adding_replicas: Some(vec![2, 3]),
            removing_replicas: Some(vec![1]),
            eligible_leader_replicas: None,
            last_known_elr: None,
        });
        records.push(MetadataRecord::RegisterBroker {
            broker_id: 1,
            broker_epoch: 7,
            host: "h".into(),
            port: 9092,
            rack: None,
            fenced: true,
            incarnation_id: Some(Uuid::from_u128(5)),
            listeners: vec![],
        });
        records.push(MetadataRecord::BrokerRegistrationChange {
            broker_id: 1,
            broker_epoch: 7,
            fenced: false,
        });
        records.push(MetadataRecord::Config {
            resource_type: ConfigResourceType::Topic,
            resource_name: "orders".into(),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        });
        records.push(MetadataRecord::ProducerIds {
            broker_id: 1,
            broker_epoch: 7,
            next_producer_id: 2000,
        });
        let image = replay_all(&MetadataImage::empty(), &records);
        let rebuilt = replay_all(&MetadataImage::empty(), &image.to_records());
        assert_eq!(rebuilt.to_records(), image.to_records());
        let partition = &rebuilt.topic_by_id(&topic_id).unwrap().partitions[&1];
        assert_eq!(
            (
                partition.leader,
                partition.leader_epoch,
                partition.partition_epoch
            ),
            (2, 1, 1)
        );
        let reassigning = &rebuilt.topic_by_id(&topic_id).unwrap().partitions[&0];
        assert_eq!(reassigning.replicas, vec![2, 3, 1]);
        assert_eq!(
            (&reassigning.adding_replicas, &reassigning.removing_replicas),
            (&vec![2, 3], &vec![1])
        );
        assert_eq!(rebuilt.next_producer_id, 2000);
        assert_eq!(rebuilt.brokers.len(), 1);
        assert_eq!(
            rebuilt.configs(&ConfigResource {
                resource_type: ConfigResourceType::Topic,
                name: "orders".into()
            }),
            image.configs(&ConfigResource {
                resource_type: ConfigResourceType::Topic,
                name: "orders".into()
            })
        );
    }

    fn change(
        topic_id: Uuid,
        leader: Option<i32>,
        isr: Option<Vec<i32>>,
        replicas: Option<Vec<i32>>,
        adding: Option<Vec<i32>>,
        removing: Option<Vec<i32>>,
    ) -> MetadataRecord {
        MetadataRecord::PartitionChange {
            topic_id,
            partition_id: 0,
            leader,
            isr,
            replicas,
            adding_replicas: adding,
            removing_replicas: removing,
            eligible_leader_replicas: None,
            last_known_elr: None,
        }
    }

    #[test]
    fn a_change_of_replicas_keeps_the_leader_epoch_unless_the_leader_is_set() {
        let (topic_id, records) = topic_records("t", 1);
        let image = replay_all(&MetadataImage::empty(), &records);
        // Start: the target [2, 3] first, then the replica it removes.
        let start = change(
            topic_id,
            None,
            None,
            Some(vec![2, 3, 1]),
            Some(vec![2, 3]),
            Some(vec![1]),
        );
        let image = replay_all(&image, &[start]);
        let p = &image.topic_by_id(&topic_id).unwrap().partitions[&0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 0, 1));
        assert!(p.is_reassigning());
        assert_eq!(p.replicas, vec![2, 3, 1]);
        // Completion with a new leader: the leader epoch goes up once.
        let complete = change(
            topic_id,
            Some(2),
            Some(vec![2, 3]),
            Some(vec![2, 3]),
            Some(vec![]),
            Some(vec![]),
        );
        let image = replay_all(&image, &[complete]);
        let p = &image.topic_by_id(&topic_id).unwrap().partitions[&0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 2));
        assert!(!p.is_reassigning());
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![2, 3], vec![2, 3])
        );
        // The same leader named again is a new epoch too (Kafka's bump on removal).
        let bump = change(topic_id, Some(2), None, Some(vec![2]), None, None);
        let image = replay_all(&image, &[bump]);
        let p = &image.topic_by_id(&topic_id).unwrap().partitions[&0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 2, 3));
        assert_eq!(p.isr, vec![2, 3]);
    }

    #[test]
    fn records_of_earlier_versions_replay_unchanged() {
        let topic_id = Uuid::from_u128(5);
        let old_partition = format!(
            r#"{{"type":"Partition","topic_id":"{topic_id}","partition_id":0,"replicas":[1,2],"isr":[1,2],"leader":1,"leader_epoch":3,"partition_epoch":4}}"#
        );
        let old_change = format!(
            r#"{{"type":"PartitionChange","topic_id":"{topic_id}","partition_id":0,"leader":null,"isr":[1]}}"#
        );
        let topic = MetadataRecord::Topic {
            name: "t".into(),
            topic_id,
        };
        let records = vec![
            topic,
            MetadataRecord::decode(old_partition.as_bytes()).unwrap(),
            MetadataRecord::decode(old_change.as_bytes()).unwrap(),
        ];
        let image = replay_all(&MetadataImage::empty(), &records);
        let p = &image.topic_by_id(&topic_id).unwrap().partitions[&0];
        assert_eq!(
            p,
            &PartitionImage {
                replicas: vec![1, 2],
                isr: vec![1],
                adding_replicas: vec![],
                removing_replicas: vec![],
                leader: 1,
                leader_epoch: 3,
                partition_epoch: 5,
                eligible_leader_replicas: Vec::new(),
                last_known_elr: Vec::new(),
            }
        );
        // Written back, a record without replica changes has no replica fields at all.
        let encoded = String::from_utf8(records[2].encode()).unwrap();
        assert!(!encoded.contains("replicas"), "{encoded}");
        let encoded = String::from_utf8(records[1].encode()).unwrap();
        assert!(!encoded.contains("adding_replicas"), "{encoded}");
        // A change of replicas round-trips with them.
        let start = change(topic_id, None, None, Some(vec![3, 1]), Some(vec![3]), None);
        assert_eq!(MetadataRecord::decode(&start.encode()).unwrap(), start);
    }

    #[test]
    fn records_round_trip_as_json() {
        let (_, records) = topic_records("t", 2);
        for record in records {
            assert_eq!(MetadataRecord::decode(&record.encode()).unwrap(), record);
        }
        assert!(MetadataRecord::decode(b"{\"type\":\"Nope\"}").is_err());
    }

    #[test]
    fn fencing_follows_the_registration_epoch_and_old_records_are_unfenced() {
        // A RegisterBroker written before fencing existed has no `fenced` field.
        let old = br#"{"type":"RegisterBroker","broker_id":1,"broker_epoch":3,"host":"h","port":9092,"rack":null}"#;
        let record = MetadataRecord::decode(old).unwrap();
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        delta.replay(3, &record).unwrap();
        assert!(!delta.current().brokers[&1].fenced);
        let change = |broker_epoch, fenced| MetadataRecord::BrokerRegistrationChange {
            broker_id: 1,
            broker_epoch,
            fenced,
        };
        delta.replay(4, &change(3, true)).unwrap();
        assert!(delta.current().brokers[&1].fenced);
        assert!(delta.changed_brokers());
        // A change for an older registration is skipped.
        assert!(matches!(
            delta.replay(5, &change(2, false)),
            Err(ReplayError::UnknownBroker { .. })
        ));
        delta
            .replay(
                6,
                &MetadataRecord::UnregisterBroker {
                    broker_id: 1,
                    broker_epoch: 3,
                },
            )
            .unwrap();
        let image = delta.apply();
        assert!(image.brokers.is_empty());
        assert!(image.unfenced_broker_ids().is_empty());
    }

    fn scram(name: &str, mechanism: i8, key: u8, iterations: i32) -> MetadataRecord {
        MetadataRecord::UserScramCredential {
            name: name.into(),
            mechanism,
            salt: vec![b's', key].into(),
            stored_key: vec![key; 32].into(),
            server_key: vec![key.wrapping_add(1); 32].into(),
            iterations,
        }
    }

    fn remove_scram(name: &str, mechanism: i8) -> MetadataRecord {
        MetadataRecord::RemoveUserScramCredential {
            name: name.into(),
            mechanism,
        }
    }

    #[test]
    fn scram_credentials_are_set_replaced_and_looked_up_by_user_and_mechanism() {
        let image = replay_all(
            &MetadataImage::empty(),
            &[
                scram("alice", 1, 1, 4096),
                scram("alice", 2, 2, 8192),
                scram("bob", 1, 3, 4096),
            ],
        );
        let alice = image.scram_credential("alice", 1).unwrap();
        assert_eq!(alice.iterations, 4096);
        assert_eq!(alice.stored_key.as_slice(), &[1; 32]);
        assert_eq!(alice.server_key.as_slice(), &[2; 32]);
        assert_eq!(alice.salt.as_slice(), b"s\x01");
        assert_eq!(image.scram_credential("alice", 2).unwrap().iterations, 8192);
        assert!(image.scram_credential("bob", 2).is_none());
        assert!(image.scram_credential("carol", 1).is_none());
        let users: Vec<(&str, Vec<i8>)> = image
            .scram_users()
            .map(|(user, by)| (user, by.keys().copied().collect()))
            .collect();
        assert_eq!(users, vec![("alice", vec![1, 2]), ("bob", vec![1])]);

        // A second record for the same user and mechanism replaces the first.
        let mut delta = MetadataDelta::new(&image);
        delta.replay(3, &scram("alice", 1, 9, 10000)).unwrap();
        assert_eq!(
            delta.changed_scram_users().collect::<Vec<_>>(),
            vec!["alice"]
        );
        let replaced = delta.apply();
        let alice = replaced.scram_credential("alice", 1).unwrap();
        assert_eq!(
            (alice.iterations, alice.stored_key.as_slice()),
            (10000, &[9u8; 32][..])
        );
        // The earlier image is untouched.
        assert_eq!(image.scram_credential("alice", 1).unwrap().iterations, 4096);
    }

    #[test]
    fn scram_credentials_are_removed_and_an_unknown_removal_is_skipped() {
        let image = replay_all(
            &MetadataImage::empty(),
            &[scram("alice", 1, 1, 4096), scram("alice", 2, 2, 4096)],
        );
        let mut delta = MetadataDelta::new(&image);
        delta.replay(2, &remove_scram("alice", 1)).unwrap();
        assert!(delta.current().scram_credential("alice", 1).is_none());
        assert!(delta.current().scram_credential("alice", 2).is_some());
        // Removing it again, or one never set, changes nothing (and does not stop replay).
        for (offset, record) in [(3, remove_scram("alice", 1)), (4, remove_scram("bob", 2))] {
            let err = delta.replay(offset, &record).unwrap_err();
            assert!(
                matches!(err, ReplayError::UnknownScramCredential { offset: o, .. } if o == offset),
                "{err}"
            );
        }
        delta.replay(5, &remove_scram("alice", 2)).unwrap();
        let after = delta.apply();
        assert_eq!(after.offset, 5);
        assert!(after.scram_credentials_of("alice").is_none());
        assert_eq!(after.scram_users().count(), 0);
        assert_eq!(after, {
            let mut empty = MetadataImage::empty();
            empty.offset = 5;
            empty
        });
        // The image the delta started from still has both.
        assert_eq!(image.scram_credentials_of("alice").unwrap().len(), 2);
    }

    #[test]
    fn scram_credentials_survive_a_snapshot() {
        let (_, mut records) = topic_records("t", 1);
        records.extend([
            scram("bob", 2, 5, 8192),
            scram("alice", 1, 1, 4096),
            scram("alice", 2, 2, 4096),
            remove_scram("alice", 2),
        ]);
        let image = replay_all(&MetadataImage::empty(), &records);
        let snapshot = image.to_records();
        let scram_records: Vec<_> = snapshot
            .iter()
            .filter(|r| matches!(r, MetadataRecord::UserScramCredential { .. }))
            .collect();
        assert_eq!(
            scram_records,
            vec![&scram("alice", 1, 1, 4096), &scram("bob", 2, 5, 8192)]
        );
        // Through JSON, as a snapshot is stored.
        let decoded: Vec<MetadataRecord> = snapshot
            .iter()
            .map(|r| MetadataRecord::decode(&r.encode()).unwrap())
            .collect();
        let mut rebuilt = replay_all(&MetadataImage::empty(), &decoded);
        rebuilt.offset = image.offset;
        assert_eq!(rebuilt, image);
        // A snapshot installed over another image reports the users whose credentials differ.
        let older = replay_all(&MetadataImage::empty(), &[scram("alice", 1, 7, 4096)]);
        let delta = MetadataDelta::between(&older, &rebuilt);
        assert_eq!(
            delta.changed_scram_users().collect::<Vec<_>>(),
            vec!["alice", "bob"]
        );
    }

    #[test]
    fn scram_records_are_json_with_base64_bytes_and_hide_them_from_debug() {
        let record = MetadataRecord::UserScramCredential {
            name: "alice".into(),
            mechanism: 2,
            salt: b"salt".to_vec().into(),
            stored_key: vec![0xff, 0x00, 0x10].into(),
            server_key: Vec::new().into(),
            iterations: 8192,
        };
        let json: serde_json::Value = serde_json::from_slice(&record.encode()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "UserScramCredential",
                "name": "alice",
                "mechanism": 2,
                "salt": "c2FsdA==",
                "stored_key": "/wAQ",
                "server_key": "",
                "iterations": 8192,
            })
        );
        assert_eq!(MetadataRecord::decode(&record.encode()).unwrap(), record);
        let remove = remove_scram("alice", 2);
        assert_eq!(MetadataRecord::decode(&remove.encode()).unwrap(), remove);
        assert_eq!(remove.type_name(), "RemoveUserScramCredential");
        let debug = format!("{record:?}");
        assert!(
            !debug.contains("255") && debug.contains("[hidden]"),
            "{debug}"
        );
        let bad = br#"{"type":"UserScramCredential","name":"a","mechanism":1,"salt":"!!","stored_key":"","server_key":"","iterations":4096}"#;
        assert!(MetadataRecord::decode(bad).is_err());
    }
}

#[cfg(test)]
mod acl_tests {
    use super::*;

    fn entry(name: &str) -> AclEntry {
        AclEntry {
            resource_type: 2,
            resource_name: name.to_string(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission_type: 3,
        }
    }

    #[test]
    fn acls_replay_remove_and_survive_a_snapshot() {
        let image = MetadataImage::empty();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut delta = MetadataDelta::new(&image);
        for (offset, record) in [
            MetadataRecord::AccessControlEntry {
                id: a,
                entry: entry("orders"),
            },
            MetadataRecord::AccessControlEntry {
                id: b,
                entry: entry("payments"),
            },
        ]
        .iter()
        .enumerate()
        {
            delta.replay(offset as i64, record).unwrap();
        }
        let image = delta.apply();
        assert_eq!(image.acls().len(), 2);
        // JSON round trip of the record, as the log stores it.
        let record = MetadataRecord::AccessControlEntry {
            id: a,
            entry: entry("orders"),
        };
        assert_eq!(MetadataRecord::decode(&record.encode()).unwrap(), record);
        // A snapshot carries them.
        let mut rebuilt = MetadataDelta::new(&MetadataImage::empty());
        for (i, r) in image.to_records().iter().enumerate() {
            rebuilt.replay(i as i64, r).unwrap();
        }
        assert_eq!(rebuilt.apply().acls(), image.acls());
        // Removal, and a removal of what is gone is a replay error (image unchanged).
        let mut delta = MetadataDelta::new(&image);
        delta
            .replay(10, &MetadataRecord::RemoveAccessControlEntry { id: a })
            .unwrap();
        let err = delta
            .replay(11, &MetadataRecord::RemoveAccessControlEntry { id: a })
            .unwrap_err();
        assert!(matches!(err, ReplayError::UnknownAcl { offset: 11, .. }));
        let image = delta.apply();
        assert_eq!(image.acls().keys().copied().collect::<Vec<_>>(), vec![b]);
    }
}

#[cfg(test)]
mod client_quota_tests {
    use super::*;

    fn component(entity_type: &str, name: Option<&str>) -> QuotaEntityComponent {
        QuotaEntityComponent {
            entity_type: entity_type.into(),
            entity_name: name.map(str::to_string),
        }
    }

    fn quota(entity: &[(&str, Option<&str>)], key: &str, value: f64) -> MetadataRecord {
        MetadataRecord::ClientQuota {
            entity: entity.iter().map(|(t, n)| component(t, *n)).collect(),
            key: key.into(),
            value,
            remove: false,
        }
    }

    fn remove(entity: &[(&str, Option<&str>)], key: &str) -> MetadataRecord {
        MetadataRecord::ClientQuota {
            entity: entity.iter().map(|(t, n)| component(t, *n)).collect(),
            key: key.into(),
            value: 0.0,
            remove: true,
        }
    }

    fn entity(components: &[(&str, Option<&str>)]) -> ClientQuotaEntity {
        components
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect()
    }

    fn replay(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut delta = MetadataDelta::new(image);
        for (i, record) in records.iter().enumerate() {
            delta.replay(image.offset + 1 + i as i64, record).unwrap();
        }
        delta.apply()
    }

    #[test]
    fn quotas_are_set_replaced_and_removed_per_entity_and_key() {
        let alice_app = [("user", Some("alice")), ("client-id", Some("app"))];
        let default_user = [("user", None)];
        let image = replay(
            &MetadataImage::empty(),
            &[
                quota(&alice_app, "producer_byte_rate", 1024.0),
                quota(&alice_app, "consumer_byte_rate", 2048.0),
                quota(&default_user, "request_percentage", 50.0),
                // The component order of a record does not matter.
                quota(
                    &[("client-id", Some("app")), ("user", Some("alice"))],
                    "producer_byte_rate",
                    4096.0,
                ),
            ],
        );
        let of_alice = image.client_quotas_of(&entity(&alice_app)).unwrap();
        assert_eq!(of_alice.get("producer_byte_rate"), Some(&4096.0));
        assert_eq!(of_alice.get("consumer_byte_rate"), Some(&2048.0));
        assert_eq!(
            image.client_quotas_of(&entity(&default_user)),
            Some(&BTreeMap::from([("request_percentage".to_string(), 50.0)]))
        );
        // The default user is not the user named "" nor any named user.
        assert!(image
            .client_quotas_of(&entity(&[("user", Some(""))]))
            .is_none());
        assert!(image
            .client_quotas_of(&entity(&[("user", Some("alice"))]))
            .is_none());

        // Removing a key the entity lacks, or of an unknown entity, changes nothing and is
        // no replay error; removing the last key drops the entity.
        let after = replay(
            &image,
            &[
                remove(&alice_app, "request_percentage"),
                remove(&[("ip", Some("10.0.0.1"))], "connection_creation_rate"),
                remove(&default_user, "request_percentage"),
                remove(&alice_app, "producer_byte_rate"),
            ],
        );
        assert_eq!(after.client_quotas().len(), 1);
        assert_eq!(
            after.client_quotas_of(&entity(&alice_app)),
            Some(&BTreeMap::from([(
                "consumer_byte_rate".to_string(),
                2048.0
            )]))
        );
        // The earlier image is untouched.
        assert_eq!(image.client_quotas().len(), 2);
    }

    #[test]
    fn quotas_are_shared_between_images_until_a_quota_record_changes_them() {
        let image = replay(
            &MetadataImage::empty(),
            &[quota(&[("client-id", None)], "producer_byte_rate", 10.0)],
        );
        let (topic_id, name) = (Uuid::from_u128(9), "t".to_string());
        let next = replay(&image, &[MetadataRecord::Topic { name, topic_id }]);
        assert!(Arc::ptr_eq(image.client_quotas(), next.client_quotas()));
        // A removal of nothing does not copy the map either.
        let same = replay(&next, &[remove(&[("user", None)], "producer_byte_rate")]);
        assert!(Arc::ptr_eq(image.client_quotas(), same.client_quotas()));
        let changed = replay(
            &next,
            &[quota(&[("client-id", None)], "producer_byte_rate", 20.0)],
        );
        assert!(!Arc::ptr_eq(image.client_quotas(), changed.client_quotas()));
    }

    #[test]
    fn quotas_survive_a_snapshot_and_round_trip_as_json() {
        let records = [
            quota(&[("ip", None)], "connection_creation_rate", 5.0),
            quota(
                &[("user", Some("bob")), ("client-id", None)],
                "consumer_byte_rate",
                1.5e6,
            ),
            quota(&[("client-id", Some("c"))], "controller_mutation_rate", 0.5),
        ];
        for record in &records {
            assert_eq!(&MetadataRecord::decode(&record.encode()).unwrap(), record);
        }
        let json: serde_json::Value = serde_json::from_slice(&records[1].encode()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "ClientQuota",
                "entity": [
                    {"entity_type": "user", "entity_name": "bob"},
                    {"entity_type": "client-id", "entity_name": null},
                ],
                "key": "consumer_byte_rate",
                "value": 1.5e6,
                "remove": false,
            })
        );
        // `remove` may be left out (false).
        let short = br#"{"type":"ClientQuota","entity":[{"entity_type":"user","entity_name":null}],"key":"request_percentage","value":10.0}"#;
        assert!(matches!(
            MetadataRecord::decode(short).unwrap(),
            MetadataRecord::ClientQuota { remove: false, .. }
        ));

        let image = replay(&MetadataImage::empty(), &records);
        let snapshot: Vec<MetadataRecord> = image
            .to_records()
            .iter()
            .map(|r| MetadataRecord::decode(&r.encode()).unwrap())
            .collect();
        assert_eq!(
            snapshot
                .iter()
                .filter(|r| matches!(r, MetadataRecord::ClientQuota { .. }))
                .count(),
            3
        );
        let mut rebuilt = replay(&MetadataImage::empty(), &snapshot);
        rebuilt.offset = image.offset;
        assert_eq!(rebuilt, image);
    }
}
