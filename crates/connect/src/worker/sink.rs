//! Kafka's `WorkerSinkTask`: consume, convert and transform each record, give batches to
//! the task (`put`), and commit the consumer's offsets only after the task flushed them
//! (`flush`), so a crash redelivers what the task may not have written and never skips it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header as KafkaHeader, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, Timestamp, TopicPartitionList};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::connector::NoOffsets;
use crate::connector::{ConnectError, SinkTask, TaskContext};
use crate::errors::{
    log_message, sink_dlq_record, ConsumedRecord, Decision, ErrorHandler, ErrorInfo, ErrorPolicy,
    LoggedRecord, RawHeader, SplitMix64, Stage, TaskId, TimestampType,
};
use crate::record::{ConnectRecord, Header};
use crate::storage::{State, TargetState};
use crate::transforms::TransformationChain;

use super::{client_config, now_ms, trace_of, Converters, StatusCell, TaskSpec, WorkerContext};

/// Kafka's `consumer.max.poll.records` default: the most records given to one `put`.
const MAX_BATCH_RECORDS: usize = 500;

struct Runner {
    ctx: Arc<WorkerContext>,
    spec: TaskSpec,
    task_id: TaskId,
    consumer: Arc<StreamConsumer>,
    converters: Converters,
    chain: TransformationChain,
    handler: ErrorHandler<SplitMix64>,
    /// For the dead letter queue, made when first needed.
    dlq_producer: Option<FutureProducer>,
    /// The next offset to consume per partition, for records the task has been given (or
    /// that were skipped): committed after the task's next flush.
    consumed: BTreeMap<(String, i32), i64>,
    /// Offsets last committed.
    committed: BTreeMap<(String, i32), i64>,
}

/// Runs a sink task until the target state says stop (or it fails).
pub(super) async fn run(
    ctx: Arc<WorkerContext>,
    spec: TaskSpec,
    status: StatusCell,
    mut control: watch::Receiver<TargetState>,
) {
    let Some(new_task) = spec.plugin.new_sink_task else {
        status.fail(trace_of(
            "not a sink connector",
            &ConnectError::Fatal(spec.plugin.class.into()),
        ));
        return;
    };
    let mut runner = match Runner::new(ctx.clone(), spec.clone()) {
        Ok(r) => r,
        Err(e) => {
            status.fail(trace_of("Failed to start task", &e));
            return;
        }
    };
    let mut task = new_task();
    let task_ctx = TaskContext {
        connector: spec.id.connector.clone(),
        task: spec.id.task,
        kafka_client_props: ctx.kafka_props.clone(),
        status: status.reporter.clone(),
        offsets: Arc::new(NoOffsets),
    };
    if let Err(e) = task.start(&spec.task_props, task_ctx).await {
        status.fail(trace_of("Failed to start task", &e));
        return;
    }
    status.set(State::Running);
    let flush_interval = Duration::from_millis(ctx.config.offset_flush_interval_ms.max(1) as u64);
    let mut next_flush = Instant::now() + flush_interval;
    // Records consumed while paused wait here.
    let mut held: Vec<OwnedMessage> = Vec::new();
    let outcome: Result<(), ConnectError> = async {
        loop {
            let target = *control.borrow_and_update();
            match target {
                TargetState::Stopped => return Ok(()),
                TargetState::Paused => {
                    if status.get().state != State::Paused {
                        runner.flush_and_commit(task.as_mut(), false).await?;
                        status.set(State::Paused);
                    }
                    runner.pause_assignment();
                    // Keep polling (rebalances, liveness) while paused; hold anything.
                    tokio::select! {
                        _ = control.changed() => {}
                        m = tokio::time::timeout(Duration::from_millis(500), runner.consumer.recv()) => {
                            if let Ok(Ok(m)) = m {
                                held.push(m.detach());
                            }
                        }
                    }
                    if *control.borrow() == TargetState::Started {
                        runner.resume_assignment();
                        status.set(State::Running);
                    }
                    continue;
                }
                TargetState::Started => {}
            }
            let mut batch = std::mem::take(&mut held);
            batch.extend(runner.poll_batch().await?);
            if !batch.is_empty() {
                runner.deliver(task.as_mut(), batch, &mut control).await?;
            }
            if Instant::now() >= next_flush {
                runner.flush_and_commit(task.as_mut(), false).await?;
                next_flush = Instant::now() + flush_interval;
            }
        }
    }
    .await;
    match outcome {
        Ok(()) => {
            if let Err(e) = runner.flush_and_commit(task.as_mut(), true).await {
                tracing::error!(task = %runner.task_id, "final flush failed: {e}");
            }
            task.stop().await;
        }
        Err(e) => {
            tracing::error!(task = %runner.task_id, "task failed: {e}");
            task.stop().await;
            status.fail(trace_of(
                &format!(
                    "Task {} threw an uncaught and unrecoverable exception",
                    runner.task_id
                ),
                &e,
            ));
        }
    }
}

impl Runner {
    fn new(ctx: Arc<WorkerContext>, spec: TaskSpec) -> Result<Runner, ConnectError> {
        let c = &spec.connector;
        let converters = ctx
            .converters(c)
            .map_err(|e| ConnectError::Config(e.to_string()))?;
        let chain = TransformationChain::from_connector_config(&c.originals)
            .map_err(|e| ConnectError::Config(e.to_string()))?;
        let props = ctx
            .consumer_props(&c.name, &c.consumer_overrides)
            .map_err(|e| ConnectError::Config(e.to_string()))?;
        let consumer: StreamConsumer = client_config(&props)
            .create()
            .map_err(|e| ConnectError::Config(format!("Failed to create consumer: {e}")))?;
        let sink = c
            .sink
            .as_ref()
            .ok_or_else(|| ConnectError::Config("not a sink connector configuration".into()))?;
        match &sink.topics_regex {
            // librdkafka subscribes by regex when the name starts with `^`.
            Some(regex) => {
                let pattern = if regex.starts_with('^') {
                    regex.clone()
                } else {
                    format!("^{regex}")
                };
                consumer.subscribe(&[pattern.as_str()])
            }
            None => {
                let topics: Vec<&str> = sink.topics.iter().map(String::as_str).collect();
                consumer.subscribe(&topics)
            }
        }
        .map_err(|e| ConnectError::Config(format!("Failed to subscribe: {e}")))?;
        let seed = now_ms() as u64 ^ (spec.id.task as u64).wrapping_mul(0x9E37_79B9);
        Ok(Runner {
            task_id: TaskId {
                connector: spec.id.connector.clone(),
                task: spec.id.task,
            },
            handler: ErrorHandler::new(ErrorPolicy::from_connector_config(c), SplitMix64(seed)),
            ctx,
            spec,
            consumer: Arc::new(consumer),
            converters,
            chain,
            dlq_producer: None,
            consumed: BTreeMap::new(),
            committed: BTreeMap::new(),
        })
    }

    /// Up to [`MAX_BATCH_RECORDS`] records: waits up to half a second for the first.
    async fn poll_batch(&mut self) -> Result<Vec<OwnedMessage>, ConnectError> {
        let mut batch = Vec::new();
        match tokio::time::timeout(Duration::from_millis(500), self.consumer.recv()).await {
            Err(_) => return Ok(batch),
            Ok(Err(e)) => {
                tracing::warn!(task = %self.task_id, "consume: {e}");
                return Ok(batch);
            }
            Ok(Ok(m)) => batch.push(m.detach()),
        }
        while batch.len() < MAX_BATCH_RECORDS {
            match self.consumer.recv().now_or_never() {
                Some(Ok(m)) => batch.push(m.detach()),
                _ => break,
            }
        }
        Ok(batch)
    }

    /// Converts and transforms a batch, then puts it, retrying a retriable failure with
    /// backoff until it succeeds or the task is told to stop.
    async fn deliver(
        &mut self,
        task: &mut dyn SinkTask,
        batch: Vec<OwnedMessage>,
        control: &mut watch::Receiver<TargetState>,
    ) -> Result<(), ConnectError> {
        let mut records = Vec::with_capacity(batch.len());
        let mut positions = Vec::with_capacity(batch.len());
        for m in &batch {
            positions.push(((m.topic().to_string(), m.partition()), m.offset() + 1));
            self.spec.note_topic(m.topic());
            if let Some(r) = self.convert(m).await? {
                records.push(r);
            }
        }
        let mut backoff_ms = 300u64;
        loop {
            match task.put(records.clone()).await {
                Ok(()) => break,
                Err(e) if e.is_retriable() => {
                    tracing::warn!(task = %self.task_id, "put failed, redelivering in {backoff_ms} ms: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {}
                        _ = control.changed() => {
                            if *control.borrow() == TargetState::Stopped {
                                return Err(ConnectError::Fatal(format!(
                                    "stopped while retrying a failed put: {e}"
                                )));
                            }
                        }
                    }
                    backoff_ms = (backoff_ms * 2).min(10_000);
                }
                Err(e) => return Err(e),
            }
        }
        for (tp, next) in positions {
            self.consumed.insert(tp, next);
        }
        Ok(())
    }

    /// One consumed record as the task sees it; `None` when a transform dropped it or it
    /// failed and the error policy tolerates that (reported to the log and the DLQ).
    async fn convert(&mut self, m: &OwnedMessage) -> Result<Option<ConnectRecord>, ConnectError> {
        let topic = m.topic();
        let mut attempt = self.handler.begin();
        let mut stage = Stage::KeyConverter;
        let mut failure: Option<String> = None;
        let mut result: Option<ConnectRecord> = None;
        let converted = (|| {
            let (key_schema, key) = self.converters.key.to_connect_data(topic, m.key())?;
            stage = Stage::ValueConverter;
            let (value_schema, value) =
                self.converters.value.to_connect_data(topic, m.payload())?;
            stage = Stage::HeaderConverter;
            let mut headers = Vec::new();
            if let Some(hs) = m.headers() {
                for h in hs.iter() {
                    let (schema, value) = self
                        .converters
                        .header
                        .to_connect_header(topic, h.key, h.value)?;
                    headers.push(Header {
                        key: h.key.to_string(),
                        schema,
                        value,
                    });
                }
            }
            Ok::<_, crate::convert::ConvertError>(ConnectRecord {
                topic: topic.to_string(),
                partition: Some(m.partition()),
                key_schema,
                key,
                value_schema,
                value,
                timestamp: m.timestamp().to_millis(),
                headers,
                kafka_offset: Some(m.offset()),
            })
        })();
        match converted {
            Ok(r) => {
                stage = Stage::Transformation;
                match self.chain.apply(r) {
                    Ok(r) => result = r,
                    Err(e) => failure = Some(e.to_string()),
                }
            }
            Err(e) => failure = Some(e.to_string()),
        }
        let Some(message) = failure else {
            return Ok(result);
        };
        let class = match stage {
            Stage::Transformation => "TransformationChain",
            _ => "Converter",
        };
        let info = ErrorInfo::new(
            "org.apache.kafka.connect.errors.DataException",
            message.clone(),
        );
        let decision = self
            .handler
            .on_failure(&mut attempt, stage, class, info, false, now_ms());
        let consumed = consumed_record(m);
        let policy = self.handler.policy().clone();
        if let Some(line) = log_message(
            &policy,
            &self.task_id,
            &attempt,
            LoggedRecord::Consumed(&consumed),
        ) {
            tracing::error!("{line}");
        }
        if let Some(dlq) = sink_dlq_record(&policy, &self.task_id, &consumed, &attempt) {
            self.produce_dlq(dlq).await?;
        }
        match decision {
            Decision::Fail(reason) => Err(ConnectError::Fatal(format!(
                "{}: {message}",
                reason.message()
            ))),
            _ => Ok(None),
        }
    }

    async fn produce_dlq(&mut self, dlq: crate::errors::DlqRecord) -> Result<(), ConnectError> {
        if self.dlq_producer.is_none() {
            let c = &self.spec.connector;
            let props = self
                .ctx
                .producer_props(&c.producer_overrides)
                .map_err(|e| ConnectError::Fatal(format!("dead letter queue producer: {e}")))?;
            let producer: FutureProducer = client_config(&props)
                .create()
                .map_err(|e| ConnectError::Fatal(format!("dead letter queue producer: {e}")))?;
            self.dlq_producer = Some(producer);
        }
        let producer = self.dlq_producer.as_ref().expect("made above");
        let mut headers = OwnedHeaders::new();
        for h in &dlq.headers {
            headers = headers.insert(KafkaHeader {
                key: &h.key,
                value: h.value.as_deref(),
            });
        }
        let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&dlq.topic).headers(headers);
        if let Some(k) = &dlq.key {
            fr = fr.key(k.as_slice());
        }
        if let Some(v) = &dlq.value {
            fr = fr.payload(v.as_slice());
        }
        if let Some(t) = dlq.timestamp {
            fr = fr.timestamp(t);
        }
        // Kafka's reporter waits for the DLQ write before going on.
        match producer.send(fr, Duration::from_secs(30)).await {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(ConnectError::Fatal(format!(
                "Could not produce message to dead letter queue. topic={}: {e}",
                dlq.topic
            ))),
        }
    }

    /// Tells the task to flush, then commits the offsets it has been given (`sync` waits
    /// for the commit; otherwise it is sent in the background).
    async fn flush_and_commit(
        &mut self,
        task: &mut dyn SinkTask,
        sync: bool,
    ) -> Result<(), ConnectError> {
        if self.consumed.is_empty() || self.consumed == self.committed {
            return Ok(());
        }
        let offsets: Vec<(String, i32, i64)> = self
            .consumed
            .iter()
            .map(|((t, p), o)| (t.clone(), *p, *o))
            .collect();
        match task.flush(&offsets).await {
            Ok(()) => {}
            Err(e) if e.is_retriable() => {
                // Not committed: tried again at the next flush.
                tracing::warn!(task = %self.task_id, "flush failed, offsets not committed: {e}");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in &offsets {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
        }
        let consumer = self.consumer.clone();
        let mode = if sync {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        let committed = tokio::task::spawn_blocking(move || consumer.commit(&tpl, mode))
            .await
            .map_err(|e| ConnectError::Fatal(e.to_string()))?;
        match committed {
            Ok(()) => self.committed = self.consumed.clone(),
            Err(e) => tracing::warn!(task = %self.task_id, "Commit of offsets failed: {e}"),
        }
        Ok(())
    }

    fn pause_assignment(&self) {
        if let Ok(a) = self.consumer.assignment() {
            let _ = self.consumer.pause(&a);
        }
    }

    fn resume_assignment(&self) {
        if let Ok(a) = self.consumer.assignment() {
            let _ = self.consumer.resume(&a);
        }
    }
}

fn consumed_record(m: &OwnedMessage) -> ConsumedRecord {
    let (timestamp, timestamp_type) = match m.timestamp() {
        Timestamp::NotAvailable => (None, TimestampType::NoTimestampType),
        Timestamp::CreateTime(t) => (Some(t), TimestampType::CreateTime),
        Timestamp::LogAppendTime(t) => (Some(t), TimestampType::LogAppendTime),
    };
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| RawHeader {
                    key: h.key.to_string(),
                    value: h.value.map(<[u8]>::to_vec),
                })
                .collect()
        })
        .unwrap_or_default();
    ConsumedRecord {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp,
        timestamp_type,
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
    }
}
