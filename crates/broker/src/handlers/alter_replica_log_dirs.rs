//! AlterReplicaLogDirs (KIP-113): move replicas between the log directories of this broker.
//! Moldau has one log directory per broker (the one DescribeLogDirs reports), so a hosted
//! replica is always in the only directory it may be moved to, and nothing ever moves.
//!
//! Each partition is answered as Kafka's `ReplicaManager.alterReplicaLogDirs`, in its order:
//! INVALID_TOPIC_EXCEPTION when the topic is too long for Kafka's future-log directory
//! name; LOG_DIR_NOT_FOUND for a path that is not this broker's log directory (Kafka
//! compares the absolute paths of its configured dirs: a relative path is never one);
//! KAFKA_STORAGE_ERROR while the partition's log is offline; REPLICA_NOT_AVAILABLE for a
//! partition of the metadata that this broker does not host (Kafka's NOT_LEADER_OR_FOLLOWER,
//! kept as REPLICA_NOT_AVAILABLE for this API), UNKNOWN_TOPIC_OR_PARTITION for one that
//! does not exist; else NONE. A partition named more than once gets one answer, for the
//! last path naming it (Kafka reads the request into a map from partition to path).
//! Without ALTER on the cluster every partition is CLUSTER_AUTHORIZATION_FAILED.

use std::path::Path;

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::MetadataImage;
use moldau_security::acl::AclOperation;
use moldau_storage::TopicPartition;

use crate::api::RequestContext;
use crate::authorizer;
use crate::replica_manager::ReplicaManager;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = AlterReplicaLogDirsRequest::VERSIONS;

/// Kafka's limit on a log directory's name (KAFKA-4893: its future-log directory, named
/// `<topic>-<partition>.<32 hex digits>-future`, must fit).
const MAX_DIR_NAME_CHARS: usize = 255;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    // Kafka: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED for every partition.
    if !authorizer::allowed_cluster(state, ctx, AclOperation::Alter) {
        return AlterReplicaLogDirsResponse::default().with_results(denied(request));
    }
    let log_dir = state.replica_manager.log_manager().log_dir();
    let log_dir = std::path::absolute(log_dir).unwrap_or_else(|_| log_dir.to_path_buf());
    AlterReplicaLogDirsResponse::default().with_results(alter(
        &state.replica_manager,
        &log_dir,
        request,
    ))
}

/// Kafka's `getErrorResponse` for a refused request: each directory's topics in request
/// order, every partition CLUSTER_AUTHORIZATION_FAILED.
fn denied(request: AlterReplicaLogDirsRequest) -> Vec<AlterReplicaLogDirTopicResult> {
    let code = ResponseError::ClusterAuthorizationFailed.code();
    request
        .dirs
        .into_iter()
        .flat_map(|dir| dir.topics)
        .map(|topic| {
            AlterReplicaLogDirTopicResult::default()
                .with_topic_name(topic.name)
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|p| {
                            AlterReplicaLogDirPartitionResult::default()
                                .with_partition_index(*p)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// Every partition's answer, topics by name and partitions by index.
fn alter(
    replica_manager: &ReplicaManager,
    log_dir: &Path,
    request: AlterReplicaLogDirsRequest,
) -> Vec<AlterReplicaLogDirTopicResult> {
    let image = replica_manager.published_image();
    let mut results = Vec::new();
    // One key, refilled for each lookup.
    let mut tp = TopicPartition::new(String::new(), 0);
    for dir in request.dirs {
        let here = is_log_dir(dir.path.as_str(), log_dir);
        for topic in dir.topics {
            if topic.partitions.is_empty() {
                continue;
            }
            tp.topic.clear();
            tp.topic.push_str(topic.name.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|&partition| {
                    tp.partition = partition;
                    let error = partition_error(replica_manager, image.as_deref(), &tp, here);
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(partition)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(topic.name)
                    .with_partitions(partitions),
            );
        }
    }
    one_per_partition(results)
}

/// Whether `path` names this broker's log directory (absolute, spelled as `log_dir` up to
/// repeated separators, `.` components and a trailing separator; `..` is not resolved,
/// as Kafka does not).
fn is_log_dir(path: &str, log_dir: &Path) -> bool {
    let path = Path::new(path);
    path.is_absolute() && path == log_dir
}

/// Kafka's checks for moving one partition to this broker's only log directory (`here`)
/// or to another path.
fn partition_error(
    replica_manager: &ReplicaManager,
    image: Option<&MetadataImage>,
    tp: &TopicPartition,
    here: bool,
) -> Option<ResponseError> {
    if future_dir_name_chars(tp) > MAX_DIR_NAME_CHARS {
        return Some(ResponseError::InvalidTopicException);
    }
    if !here {
        return Some(ResponseError::LogDirNotFound);
    }
    match replica_manager.partition(tp) {
        Some(partition) if partition.log.is_offline() => Some(ResponseError::KafkaStorageError),
        // Already in the requested (the only) directory: nothing to move.
        Some(_) => None,
        None => Some(match replica_manager.missing_partition_error(tp) {
            ResponseError::KafkaStorageError => ResponseError::KafkaStorageError,
            _ if in_metadata(image, tp) => ResponseError::ReplicaNotAvailable,
            _ => ResponseError::UnknownTopicOrPartition,
        }),
    }
}

fn in_metadata(image: Option<&MetadataImage>, tp: &TopicPartition) -> bool {
    image
        .and_then(|image| image.topic_by_name(&tp.topic))
        .is_some_and(|topic| topic.partitions.contains_key(&tp.partition))
}

/// The length, in Java chars, of Kafka's future-log directory name for `tp`:
/// `<topic>-<partition>.<32 hex digits>-future`.
fn future_dir_name_chars(tp: &TopicPartition) -> usize {
    let partition = tp.partition;
    let digits = partition.unsigned_abs().checked_ilog10().unwrap_or(0) as usize + 1;
    let sign = usize::from(partition < 0);
    tp.topic.encode_utf16().count() + 1 + sign + digits + 1 + 32 + "-future".len()
}

/// One result per partition, topics and partitions in order; a partition named more than
/// once keeps the result for the last path naming it. Rearranges the response in place
/// (the sorts' scratch space is bounded by it).
fn one_per_partition(
    mut results: Vec<AlterReplicaLogDirTopicResult>,
) -> Vec<AlterReplicaLogDirTopicResult> {
    // Stable: the entries of one topic stay in request order.
    results.sort_by(|a, b| a.topic_name.cmp(&b.topic_name));
    results.dedup_by(|later, earlier| {
        let same = later.topic_name == earlier.topic_name;
        if same {
            earlier.partitions.append(&mut later.partitions);
        }
        same
    });
    for topic in &mut results {
        // Last named first, kept first by the stable sort, and kept by the dedup.
        topic.partitions.reverse();
        topic.partitions.sort_by_key(|p| p.partition_index);
        topic.partitions.dedup_by_key(|p| p.partition_index);
    }
    results
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kafka_protocol::messages::alter_replica_log_dirs_request::{
        AlterReplicaLogDir, AlterReplicaLogDirTopic,
    };
    use kafka_protocol::protocol::StrBytes;
    use moldau_metadata::{MetadataDelta, MetadataRecord, Uuid};
    use moldau_storage::{LogConfig, LogManager, LogManagerConfig};

    use super::*;
    use crate::config::ReplicationConfig;
    use crate::controller::MetadataPublisher;
    use crate::handlers::topic_name;

    /// Node 1's replica manager on `dir`, with topic "t" of partitions 0 (on node 1) and
    /// 1 (on node 2) and topic "c" of partition 0 on node 1 published.
    fn node(dir: &Path) -> (Arc<LogManager>, ReplicaManager) {
        let log_manager =
            LogManager::open(LogManagerConfig::new(dir), LogConfig::default()).expect("open logs");
        let replica_manager = ReplicaManager::new(
            1,
            log_manager.clone(),
            LogConfig::default(),
            ReplicationConfig::default(),
        );
        let mut records: Vec<MetadataRecord> = (1..=2)
            .map(|id| MetadataRecord::RegisterBroker {
                broker_id: id,
                broker_epoch: id as i64,
                host: "h".into(),
                port: 1,
                rack: None,
                fenced: false,
                incarnation_id: None,
                listeners: vec![],
            })
            .collect();
        for (name, id, placement) in [("t", 1u128, vec![1, 2]), ("c", 2, vec![1])] {
            let topic_id = Uuid::from_u128(id);
            records.push(MetadataRecord::Topic {
                name: name.into(),
                topic_id,
            });
            for (partition_id, node) in placement.into_iter().enumerate() {
                records.push(MetadataRecord::Partition {
                    topic_id,
                    partition_id: partition_id as i32,
                    replicas: vec![node],
                    isr: vec![node],
                    adding_replicas: vec![],
                    removing_replicas: vec![],
                    leader: node,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    eligible_leader_replicas: Vec::new(),
                    last_known_elr: Vec::new(),
                });
            }
        }
        let base = MetadataImage::empty();
        let mut delta = MetadataDelta::new(&base);
        for (offset, record) in records.iter().enumerate() {
            delta.replay(offset as i64, record).unwrap();
        }
        let image = Arc::new(delta.current().clone());
        replica_manager.publish(&delta, &image);
        (log_manager, replica_manager)
    }

    /// A topic's name and partitions in a request.
    type Partitions<'a> = (&'a str, &'a [i32]);

    /// A request of (path, topics) entries.
    fn request(dirs: &[(&str, &[Partitions])]) -> AlterReplicaLogDirsRequest {
        AlterReplicaLogDirsRequest::default().with_dirs(
            dirs.iter()
                .map(|(path, topics)| {
                    AlterReplicaLogDir::default()
                        .with_path(StrBytes::from_string(path.to_string()))
                        .with_topics(
                            topics
                                .iter()
                                .map(|(name, partitions)| {
                                    AlterReplicaLogDirTopic::default()
                                        .with_name(topic_name(name))
                                        .with_partitions(partitions.to_vec())
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    }

    /// (topic, partition, error code) of every result, in response order.
    fn answers(results: &[AlterReplicaLogDirTopicResult]) -> Vec<(String, i32, i16)> {
        results
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic_name.to_string(), p.partition_index, p.error_code))
            })
            .collect()
    }

    fn code(error: ResponseError) -> i16 {
        error.code()
    }

    #[test]
    fn a_hosted_partition_is_already_in_the_only_log_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let (log_manager, rm) = node(tmp.path());
        let dir = std::path::absolute(tmp.path()).unwrap();
        let here = dir.to_str().unwrap();
        let results = alter(&rm, &dir, request(&[(here, &[("t", &[0])])]));
        assert_eq!(answers(&results), vec![("t".into(), 0, 0)]);
        // Other spellings of the same absolute path are the same dir.
        let trailing = format!("{here}/");
        let dotted = format!("{here}/./");
        for path in [trailing.as_str(), dotted.as_str()] {
            let results = alter(&rm, &dir, request(&[(path, &[("t", &[0])])]));
            assert_eq!(answers(&results), vec![("t".into(), 0, 0)], "{path}");
        }
        // Nothing moved: the log is where it was, with nothing beside it.
        assert!(tmp.path().join("t-0").is_dir());
        let future = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with("-future"));
        assert!(!future);
        log_manager.shutdown().unwrap();
    }

    #[test]
    fn another_path_is_not_found_and_a_missing_replica_is_not_available() {
        let tmp = tempfile::tempdir().unwrap();
        let (log_manager, rm) = node(tmp.path());
        let dir = std::path::absolute(tmp.path()).unwrap();
        let here = dir.to_str().unwrap();
        let relative = dir.file_name().unwrap().to_str().unwrap().to_string();
        let parent_and_back = format!("{here}/../{relative}");
        let request = request(&[
            ("/no/such/dir", &[("t", &[0])]),
            (relative.as_str(), &[("c", &[0])]),
            (parent_and_back.as_str(), &[("u", &[0])]),
            (here, &[("t", &[1, 7]), ("gone", &[0])]),
        ]);
        let results = alter(&rm, &dir, request);
        assert_eq!(
            answers(&results),
            vec![
                // Not this broker's dir: a relative path, and `..` is not resolved.
                ("c".into(), 0, code(ResponseError::LogDirNotFound)),
                (
                    "gone".into(),
                    0,
                    code(ResponseError::UnknownTopicOrPartition)
                ),
                // Partition 1 is on node 2 only; partition 7 does not exist.
                ("t".into(), 0, code(ResponseError::LogDirNotFound)),
                ("t".into(), 1, code(ResponseError::ReplicaNotAvailable)),
                ("t".into(), 7, code(ResponseError::UnknownTopicOrPartition)),
                ("u".into(), 0, code(ResponseError::LogDirNotFound)),
            ]
        );
        log_manager.shutdown().unwrap();
    }

    #[test]
    fn a_partition_named_twice_gets_the_answer_for_its_last_path() {
        let tmp = tempfile::tempdir().unwrap();
        let (log_manager, rm) = node(tmp.path());
        let dir = std::path::absolute(tmp.path()).unwrap();
        let here = dir.to_str().unwrap();
        let results = alter(
            &rm,
            &dir,
            request(&[
                (here, &[("t", &[0, 0]), ("c", &[0])]),
                ("/elsewhere", &[("c", &[0]), ("t", &[])]),
                (here, &[("t", &[0])]),
            ]),
        );
        assert_eq!(
            answers(&results),
            vec![
                ("c".into(), 0, code(ResponseError::LogDirNotFound)),
                ("t".into(), 0, 0),
            ]
        );
        // An empty request gets an empty answer.
        assert!(alter(&rm, &dir, request(&[])).is_empty());
        log_manager.shutdown().unwrap();
    }

    #[test]
    fn an_offline_partition_is_a_storage_error() {
        let tmp = tempfile::tempdir().unwrap();
        // A regular file where the log of c-0 must go: it cannot be created, so the
        // partition is offline.
        std::fs::write(tmp.path().join("c-0"), b"in the way").unwrap();
        let (log_manager, rm) = node(tmp.path());
        let dir = std::path::absolute(tmp.path()).unwrap();
        let here = dir.to_str().unwrap();
        let results = alter(&rm, &dir, request(&[(here, &[("c", &[0])])]));
        assert_eq!(
            answers(&results),
            vec![("c".into(), 0, code(ResponseError::KafkaStorageError))]
        );
        log_manager.shutdown().unwrap();
    }

    #[test]
    fn a_topic_too_long_for_a_future_dir_is_invalid() {
        // 255 = topic + "-0." + 32 + "-future": 213 characters fit, 214 do not.
        let fits = TopicPartition::new("x".repeat(213), 0);
        assert_eq!(future_dir_name_chars(&fits), 255);
        assert_eq!(
            future_dir_name_chars(&TopicPartition::new("x".repeat(200), -12)),
            200 + "--12.".len() + 32 + 7
        );
        let tmp = tempfile::tempdir().unwrap();
        let (log_manager, rm) = node(tmp.path());
        let dir = std::path::absolute(tmp.path()).unwrap();
        let long = "x".repeat(214);
        let results = alter(
            &rm,
            &dir,
            request(&[("/no/such/dir", &[(long.as_str(), &[0])])]),
        );
        assert_eq!(
            answers(&results),
            vec![(long, 0, code(ResponseError::InvalidTopicException))]
        );
        log_manager.shutdown().unwrap();
    }
}
