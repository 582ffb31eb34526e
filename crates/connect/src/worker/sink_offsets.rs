//! A sink connector's offsets (KIP-875) are its consumer group's committed offsets:
//! partitions `{"kafka_topic": .., "kafka_partition": ..}`, offsets `{"kafka_offset": ..}`.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Map, Value};

use crate::config::ConnectorConfig;
use crate::rest::{ConnectorOffset, ConnectorOffsets, ErrorMessage};

use super::{client_config, WorkerContext};

const TIMEOUT: Duration = Duration::from_secs(10);

fn group_consumer(
    ctx: &WorkerContext,
    c: &ConnectorConfig,
) -> Result<(BaseConsumer, String), ErrorMessage> {
    let props = ctx
        .consumer_props(&c.name, &c.consumer_overrides)
        .map_err(|e| ErrorMessage::new(400, e.to_string()))?;
    let group = props.get("group.id").cloned().unwrap_or_default();
    let consumer: BaseConsumer = client_config(&props)
        .create()
        .map_err(|e| ErrorMessage::new(500, format!("Failed to create consumer: {e}")))?;
    Ok((consumer, group))
}

fn internal(e: impl std::fmt::Display) -> ErrorMessage {
    ErrorMessage::new(500, e.to_string())
}

/// The committed offsets of the connector's group for its topics.
pub async fn read(
    ctx: &WorkerContext,
    c: &ConnectorConfig,
    active_topics: &[String],
) -> Result<ConnectorOffsets, ErrorMessage> {
    let (consumer, _) = group_consumer(ctx, c)?;
    let sink = c
        .sink
        .clone()
        .unwrap_or_else(|| crate::config::SinkSettings {
            topics: Vec::new(),
            topics_regex: None,
            dlq_topic_name: None,
            dlq_topic_replication_factor: 1,
            dlq_context_headers_enable: false,
        });
    let mut topics: Vec<String> = sink.topics.clone();
    topics.extend(active_topics.iter().cloned());
    tokio::task::spawn_blocking(move || {
        let metadata = consumer.fetch_metadata(None, TIMEOUT).map_err(internal)?;
        let regex = sink
            .topics_regex
            .as_deref()
            .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok());
        let mut tpl = TopicPartitionList::new();
        for t in metadata.topics() {
            let wanted = topics.iter().any(|n| n == t.name())
                || regex.as_ref().is_some_and(|r| r.is_match(t.name()));
            if wanted {
                for p in t.partitions() {
                    tpl.add_partition(t.name(), p.id());
                }
            }
        }
        let committed = consumer.committed_offsets(tpl, TIMEOUT).map_err(internal)?;
        let mut offsets = Vec::new();
        for e in committed.elements() {
            if let Offset::Offset(o) = e.offset() {
                let mut partition = Map::new();
                partition.insert("kafka_topic".into(), Value::String(e.topic().to_string()));
                partition.insert("kafka_partition".into(), Value::from(e.partition()));
                let mut offset = Map::new();
                offset.insert("kafka_offset".into(), Value::from(o));
                offsets.push(ConnectorOffset {
                    partition,
                    offset: Some(offset),
                });
            }
        }
        Ok(ConnectorOffsets { offsets })
    })
    .await
    .map_err(internal)?
}

/// Alters the group's offsets (`body`), or with `None` deletes the group and so every
/// offset (a reset).
pub async fn write(
    ctx: &WorkerContext,
    c: &ConnectorConfig,
    body: Option<&ConnectorOffsets>,
) -> Result<(), ErrorMessage> {
    let (consumer, group) = group_consumer(ctx, c)?;
    let Some(body) = body else {
        let admin: AdminClient<DefaultClientContext> =
            client_config(&ctx.admin_props(&c.admin_overrides).map_err(internal)?)
                .create()
                .map_err(internal)?;
        let results = admin
            .delete_groups(
                &[group.as_str()],
                &AdminOptions::new().request_timeout(Some(TIMEOUT)),
            )
            .await
            .map_err(internal)?;
        for r in results {
            match r {
                Ok(_) => {}
                // Nothing committed yet: nothing to reset.
                Err((_, rdkafka::types::RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((g, e)) => {
                    return Err(internal(format!(
                        "Failed to reset offsets of group {g}: {e}"
                    )))
                }
            }
        }
        return Ok(());
    };
    let mut tpl = TopicPartitionList::new();
    for o in &body.offsets {
        let topic = o.partition.get("kafka_topic").and_then(Value::as_str);
        let partition = o.partition.get("kafka_partition").and_then(Value::as_i64);
        let (Some(topic), Some(partition)) = (topic, partition) else {
            return Err(ErrorMessage::bad_request(
                "Sink connector partitions must contain 'kafka_topic' (a string) and \
                 'kafka_partition' (an integer)",
            ));
        };
        let Some(offset) = &o.offset else {
            return Err(ErrorMessage::bad_request(
                "Resetting single partitions of a sink connector is not supported by Moldau; \
                 reset all of its offsets with DELETE /connectors/{name}/offsets",
            ));
        };
        let Some(off) = offset
            .get("kafka_offset")
            .and_then(Value::as_i64)
            .filter(|o| *o >= 0)
        else {
            return Err(ErrorMessage::bad_request(
                "Sink connector offsets must contain 'kafka_offset', a non-negative integer",
            ));
        };
        tpl.add_partition_offset(topic, partition as i32, Offset::Offset(off))
            .map_err(internal)?;
    }
    tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
        .await
        .map_err(internal)?
        .map_err(|e| internal(format!("Failed to alter consumer group offsets: {e}")))
}
