//! DescribeLogDirs: the one log directory, its partitions (size, offset lag, never a future
//! replica) and, from v4, the total and usable bytes of its file system.
//! Without DESCRIBE on the cluster: no directories and CLUSTER_AUTHORIZATION_FAILED.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_security::acl::AclOperation;
use moldau_storage::TopicPartition;

use super::{str_bytes, topic_name};
use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeLogDirsRequest::VERSIONS;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // Kafka: DESCRIBE on the cluster, else no directories and CLUSTER_AUTHORIZATION_FAILED
    // (the top-level error of v3 and later).
    if !authorizer::allowed_cluster(state, ctx, AclOperation::Describe) {
        return DescribeLogDirsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let wanted: Option<BTreeSet<TopicPartition>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(t.topic.to_string(), *p))
            })
            .collect()
    });
    let log_manager = state.replica_manager.log_manager();
    let dir = log_manager.log_dir();
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut result =
        DescribeLogDirsResult::default().with_log_dir(str_bytes(dir.display().to_string()));
    match file_system_space(&dir) {
        Ok((total_bytes, usable_bytes)) => {
            result.total_bytes = total_bytes;
            result.usable_bytes = usable_bytes;
        }
        Err(e) => {
            tracing::warn!("cannot describe log dir {}: {e}", dir.display());
            result.error_code = ResponseError::KafkaStorageError.code();
            return DescribeLogDirsResponse::default().with_results(vec![result]);
        }
    }
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    // The hosted partitions: every partition log, but not the metadata quorum's log.
    for (tp, partition) in state.replica_manager.partitions() {
        if wanted.as_ref().is_some_and(|w| !w.contains(&tp)) {
            continue;
        }
        let log = &partition.log;
        let offset_lag = (log.high_watermark() - log.log_end_offset()).max(0);
        topics.entry(tp.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(tp.partition)
                .with_partition_size(log.size_bytes().min(i64::MAX as u64) as i64)
                .with_offset_lag(offset_lag)
                .with_is_future_key(false),
        );
    }
    result.topics = topics
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(topic_name(&name))
                .with_partitions(partitions)
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// (total, usable) bytes of the file system holding `dir`, as Java's `FileStore` reports
/// them (usable: the blocks available to unprivileged users).
fn file_system_space(dir: &Path) -> std::io::Result<(i64, i64)> {
    let stats = rustix::fs::statvfs(dir)?;
    let block = stats.f_frsize;
    let clamp = |blocks: u64| blocks.saturating_mul(block).min(i64::MAX as u64) as i64;
    Ok((clamp(stats.f_blocks), clamp(stats.f_bavail)))
}
