//! Kafka's `WorkerSourceTask`: poll the task, transform and convert each record, produce
//! it, and store a source offset only once Kafka acknowledged its record and every record
//! polled before it; then tell the task (`commit`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::ConnectorConfig;
use crate::connector::{ConnectError, SourceRecord, SourceTask, TaskContext};
use crate::errors::{
    log_message, source_dlq_record, Attempt, Decision, DlqRecord, ErrorHandler, ErrorInfo,
    ErrorPolicy, FailedSourceRecord, LoggedRecord, RawHeader, SplitMix64, Stage, TaskId,
};
use crate::storage::{OffsetMap, State, TargetState};
use crate::transforms::TransformationChain;

use super::offsets::{partition_id, OffsetSnapshot};
use super::{client_config, now_ms, trace_of, Converters, StatusCell, TaskSpec, WorkerContext};

/// A produced record whose source offset waits for its acknowledgement.
struct Pending {
    partition_id: String,
    partition: OffsetMap,
    offset: OffsetMap,
    /// `None`: nothing to wait for (filtered out, or tolerated).
    delivery: Option<DeliveryFuture>,
    /// For the dead letter queue and the log if the produce fails.
    failed: Option<FailedSourceRecord>,
}

struct Runner {
    ctx: Arc<WorkerContext>,
    spec: TaskSpec,
    task_id: TaskId,
    producer: FutureProducer,
    converters: Converters,
    chain: TransformationChain,
    handler: ErrorHandler<SplitMix64>,
    outstanding: VecDeque<Pending>,
    /// Offsets of acknowledged records not yet stored, by partition.
    committable: BTreeMap<String, (OffsetMap, OffsetMap)>,
    /// Exactly-once delivery (KIP-618), on a distributed worker with
    /// `exactly.once.source.support=enabled`.
    eos: Option<Eos>,
}

/// KIP-618: each batch of records and its source offsets go to Kafka in one transaction
/// of the task's transactional producer (`<group.id>-<connector>-<task>`; a restarted
/// task's `InitProducerId` fences the one it replaces).
struct Eos {
    /// `transaction.boundary=interval`: commit every this long; `None`: every poll.
    interval: Option<Duration>,
    next_commit: Instant,
    in_transaction: bool,
    offsets_topic: String,
    offsets_partitions: i32,
}

const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a source task until the target state says stop (or it fails); the status cell
/// shows where it is.
pub(super) async fn run(
    ctx: Arc<WorkerContext>,
    spec: TaskSpec,
    status: StatusCell,
    mut control: watch::Receiver<TargetState>,
) {
    let Some(new_task) = spec.plugin.new_source_task else {
        status.fail(trace_of(
            "not a source connector",
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
    if let Err(e) = runner.init_transactions().await {
        status.fail(trace_of(
            "Failed to initialize the task's transactional producer",
            &e,
        ));
        return;
    }
    let mut task = new_task();
    // Offsets other workers wrote (a task moved here) are read before resuming.
    if let Err(e) = ctx.offsets.refresh().await {
        status.fail(trace_of(
            "Failed to read source offsets",
            &ConnectError::Retriable(e.to_string()),
        ));
        return;
    }
    let task_ctx = TaskContext {
        connector: spec.id.connector.clone(),
        task: spec.id.task,
        kafka_client_props: ctx.kafka_props.clone(),
        status: status.reporter.clone(),
        offsets: Arc::new(OffsetSnapshot::of(&ctx.offsets, &spec.id.connector)),
    };
    if let Err(e) = task.start(&spec.task_props, task_ctx).await {
        status.fail(trace_of("Failed to start task", &e));
        return;
    }
    status.set(State::Running);
    let flush_interval = Duration::from_millis(ctx.config.offset_flush_interval_ms.max(1) as u64);
    let mut next_flush = Instant::now() + flush_interval;
    let outcome: Result<(), ConnectError> = async {
        loop {
            let target = *control.borrow_and_update();
            match target {
                TargetState::Stopped => return Ok(()),
                TargetState::Paused => {
                    runner.flush(task.as_mut()).await?;
                    status.set(State::Paused);
                    if control.changed().await.is_err() {
                        return Ok(());
                    }
                    if *control.borrow() == TargetState::Started {
                        status.set(State::Running);
                    }
                    continue;
                }
                TargetState::Started => {}
            }
            match task.poll().await {
                Ok(records) => {
                    for r in records {
                        runner.send(r).await?;
                    }
                }
                Err(e) if e.is_retriable() => {
                    tracing::warn!(task = %runner.task_id, "poll failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
            runner.advance().await?;
            if runner.eos.is_some() {
                if runner.transaction_due() {
                    runner.commit_transaction(task.as_mut()).await?;
                }
            } else if Instant::now() >= next_flush {
                runner.flush(task.as_mut()).await?;
                next_flush = Instant::now() + flush_interval;
            }
        }
    }
    .await;
    match outcome {
        Ok(()) => {
            if let Err(e) = runner.flush(task.as_mut()).await {
                tracing::error!(task = %runner.task_id, "final offset flush failed: {e}");
            }
            task.stop().await;
        }
        Err(e) => {
            tracing::error!(task = %runner.task_id, "task failed: {e}");
            if runner.eos.is_some() {
                runner.abort_transaction().await;
            } else {
                // Offsets of what Kafka already has are still worth keeping.
                let _ = runner.flush_acknowledged(task.as_mut()).await;
            }
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
        let c: &ConnectorConfig = &spec.connector;
        let converters = ctx
            .converters(c)
            .map_err(|e| ConnectError::Config(e.to_string()))?;
        let chain = TransformationChain::from_connector_config(&c.originals)
            .map_err(|e| ConnectError::Config(e.to_string()))?;
        let eos = exactly_once(&ctx, &spec)?;
        let mut producer_props = ctx
            .producer_props(&c.producer_overrides)
            .map_err(|e| ConnectError::Config(e.to_string()))?;
        if eos.is_some() {
            let group = ctx
                .config
                .distributed
                .as_ref()
                .map(|d| d.group_id.clone())
                .unwrap_or_default();
            producer_props.insert(
                "transactional.id".into(),
                format!("{group}-{}-{}", spec.id.connector, spec.id.task),
            );
            // A transactional producer bounds each record by the transaction's timeout.
            producer_props.insert(
                "transaction.timeout.ms".into(),
                TRANSACTION_TIMEOUT.as_millis().to_string(),
            );
            producer_props.insert(
                "message.timeout.ms".into(),
                TRANSACTION_TIMEOUT.as_millis().to_string(),
            );
        }
        let producer: FutureProducer = client_config(&producer_props)
            .create()
            .map_err(|e| ConnectError::Config(format!("Failed to create producer: {e}")))?;
        let seed = now_ms() as u64 ^ (spec.id.task as u64).wrapping_mul(0x9E37_79B9);
        Ok(Runner {
            task_id: TaskId {
                connector: spec.id.connector.clone(),
                task: spec.id.task,
            },
            handler: ErrorHandler::new(ErrorPolicy::from_connector_config(c), SplitMix64(seed)),
            ctx,
            spec,
            producer,
            converters,
            chain,
            outstanding: VecDeque::new(),
            committable: BTreeMap::new(),
            eos,
        })
    }

    /// Transforms, converts and produces one record (or reports it, as the error policy
    /// says); its offset joins the queue either way.
    async fn send(&mut self, source: SourceRecord) -> Result<(), ConnectError> {
        self.begin_transaction()?;
        let pending = |delivery, failed| Pending {
            partition_id: partition_id(&source.source_partition),
            partition: source.source_partition.clone(),
            offset: source.source_offset.clone(),
            delivery,
            failed,
        };
        let mut attempt = self.handler.begin();
        // Rendered only for a failure (formatting every record costs the worker dearly).
        let described = || format!("{:?}", source.record);
        attempt.start(Stage::Transformation, "TransformationChain", now_ms());
        let record = match self.chain.apply(source.record.clone()) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.outstanding.push_back(pending(None, None));
                return Ok(());
            }
            Err(e) => {
                let info = ErrorInfo::new(
                    "org.apache.kafka.connect.errors.DataException",
                    e.to_string(),
                );
                let failed = self.rendered_failure(&source);
                self.tolerate_or_fail(
                    &mut attempt,
                    Stage::Transformation,
                    "TransformationChain",
                    info,
                    &failed,
                    &described(),
                )
                .await?;
                self.outstanding.push_back(pending(None, None));
                return Ok(());
            }
        };
        let topic = record.topic.clone();
        let conv = &self.converters;
        let key = conv
            .key
            .from_connect_data(&topic, record.key_schema.as_ref(), &record.key)
            .map_err(|e| (Stage::KeyConverter, e.to_string()));
        let value = key.and_then(|k| {
            conv.value
                .from_connect_data(&topic, record.value_schema.as_ref(), &record.value)
                .map(|v| (k, v))
                .map_err(|e| (Stage::ValueConverter, e.to_string()))
        });
        let converted = value.and_then(|(k, v)| {
            let mut headers = Vec::new();
            for h in &record.headers {
                let bytes = conv
                    .header
                    .from_connect_header(&topic, &h.key, h.schema.as_ref(), &h.value)
                    .map_err(|e| (Stage::HeaderConverter, e.to_string()))?;
                headers.push(RawHeader {
                    key: h.key.clone(),
                    value: bytes,
                });
            }
            Ok((k, v, headers))
        });
        let (key, value, headers) = match converted {
            Ok(c) => c,
            Err((stage, message)) => {
                let info = ErrorInfo::new("org.apache.kafka.connect.errors.DataException", message);
                let failed = self.rendered_failure(&source);
                self.tolerate_or_fail(
                    &mut attempt,
                    stage,
                    "Converter",
                    info,
                    &failed,
                    &described(),
                )
                .await?;
                self.outstanding.push_back(pending(None, None));
                return Ok(());
            }
        };
        self.spec.note_topic(&topic);
        // Kept for a failed produce only when it is reported somewhere.
        let policy = self.handler.policy();
        let failed = (policy.dlq.is_some() || policy.log_enable)
            .then(|| failed_record(&source, key.clone(), value.clone()));
        let delivery = self
            .produce(
                &topic,
                record.partition,
                record.timestamp,
                key,
                value,
                &headers,
            )
            .await;
        self.outstanding.push_back(pending(Some(delivery), failed));
        Ok(())
    }

    /// A failed record for the dead letter queue: the record as the task returned it,
    /// converted with the connector's converters where they can (else without key/value).
    fn rendered_failure(&self, source: &SourceRecord) -> FailedSourceRecord {
        let r = &source.record;
        let key = self
            .converters
            .key
            .from_connect_data(&r.topic, r.key_schema.as_ref(), &r.key)
            .ok()
            .flatten();
        let value = self
            .converters
            .value
            .from_connect_data(&r.topic, r.value_schema.as_ref(), &r.value)
            .ok()
            .flatten();
        failed_record(source, key, value)
    }

    /// Enqueues a record, waiting while the producer's queue is full.
    async fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        timestamp: Option<i64>,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: &[RawHeader],
    ) -> DeliveryFuture {
        loop {
            let mut kafka_headers = OwnedHeaders::new();
            for h in headers {
                kafka_headers = kafka_headers.insert(KafkaHeader {
                    key: &h.key,
                    value: h.value.as_deref(),
                });
            }
            let mut fr: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(topic).headers(kafka_headers);
            if let Some(k) = &key {
                fr = fr.key(k.as_slice());
            }
            if let Some(v) = &value {
                fr = fr.payload(v.as_slice());
            }
            if let Some(p) = partition {
                fr = fr.partition(p);
            }
            if let Some(t) = timestamp {
                fr = fr.timestamp(t);
            }
            match self.producer.send_result(fr) {
                Ok(d) => return d,
                Err((e, _)) => {
                    // Queue full: wait for deliveries to drain (Kafka's producer blocks).
                    tracing::debug!(task = %self.task_id, "producer queue: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// The error policy's decision on a failed record: reported (log, dead letter queue)
    /// and skipped, or the task fails.
    async fn tolerate_or_fail(
        &mut self,
        attempt: &mut Attempt,
        stage: Stage,
        class: &str,
        error: ErrorInfo,
        failed: &FailedSourceRecord,
        described: &str,
    ) -> Result<(), ConnectError> {
        let message = error.to_string();
        let decision = self
            .handler
            .on_failure(attempt, stage, class, error, false, now_ms());
        self.report(attempt, failed, described).await;
        match decision {
            Decision::Tolerate | Decision::Retry { .. } => Ok(()),
            Decision::Fail(reason) => Err(ConnectError::Fatal(format!(
                "{}: {message}",
                reason.message()
            ))),
        }
    }

    async fn report(&self, attempt: &Attempt, failed: &FailedSourceRecord, described: &str) {
        let policy = self.handler.policy();
        if let Some(line) = log_message(
            policy,
            &self.task_id,
            attempt,
            LoggedRecord::Source(described),
        ) {
            tracing::error!("{line}");
        }
        if let Some(dlq) = source_dlq_record(policy, &self.task_id, failed, attempt) {
            self.produce_dlq(dlq).await;
        }
    }

    async fn produce_dlq(&self, dlq: DlqRecord) {
        let delivery = self
            .produce(
                &dlq.topic,
                None,
                dlq.timestamp,
                dlq.key,
                dlq.value,
                &dlq.headers,
            )
            .await;
        if let Ok(Err((e, _))) = delivery.await {
            tracing::error!(task = %self.task_id, "could not write to the dead letter queue {}: {e}", dlq.topic);
        }
    }

    /// Moves acknowledged records from the queue's front into the committable offsets.
    async fn advance(&mut self) -> Result<(), ConnectError> {
        while let Some(front) = self.outstanding.front_mut() {
            if let Some(d) = &mut front.delivery {
                match d.now_or_never() {
                    None => break,
                    Some(Ok(Ok(_))) => {}
                    Some(Ok(Err((e, _)))) => {
                        let failed = front.failed.take();
                        self.on_produce_failure(e.to_string(), failed).await?;
                    }
                    Some(Err(_)) => {
                        return Err(ConnectError::Fatal("the producer was closed".into()))
                    }
                }
            }
            let done = self.outstanding.pop_front().expect("front exists");
            self.committable
                .insert(done.partition_id, (done.partition, done.offset));
        }
        Ok(())
    }

    async fn on_produce_failure(
        &mut self,
        error: String,
        failed: Option<FailedSourceRecord>,
    ) -> Result<(), ConnectError> {
        let mut attempt = self.handler.begin();
        let info = ErrorInfo::new("org.apache.kafka.common.KafkaException", error.clone());
        let decision =
            self.handler
                .execute_failed(&mut attempt, Stage::KafkaProduce, "KafkaProducer", info);
        if let Some(f) = &failed {
            self.report(&attempt, f, &format!("{f:?}")).await;
        }
        match decision {
            Decision::Fail(_) => Err(ConnectError::Fatal(format!(
                "Unrecoverable exception from producer send callback: {error}"
            ))),
            _ => Ok(()),
        }
    }

    /// Waits (bounded by `offset.flush.timeout.ms`) for outstanding records, then stores
    /// the offsets of the acknowledged ones.
    async fn flush(&mut self, task: &mut dyn SourceTask) -> Result<(), ConnectError> {
        if self.eos.is_some() {
            return self.commit_transaction(task).await;
        }
        let timeout = Duration::from_millis(self.ctx.config.offset_flush_timeout_ms.max(1) as u64);
        let deadline = Instant::now() + timeout;
        while !self.outstanding.is_empty() && Instant::now() < deadline {
            self.advance().await?;
            if self.outstanding.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !self.outstanding.is_empty() {
            tracing::error!(
                task = %self.task_id,
                "Failed to flush, timed out while waiting for producer to flush outstanding {} messages",
                self.outstanding.len()
            );
        }
        self.flush_acknowledged(task).await
    }

    async fn init_transactions(&self) -> Result<(), ConnectError> {
        if self.eos.is_none() {
            return Ok(());
        }
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.init_transactions(TRANSACTION_TIMEOUT))
            .await
            .map_err(|e| ConnectError::Fatal(e.to_string()))?
            .map_err(|e| ConnectError::Fatal(format!("InitProducerId: {e}")))
    }

    fn begin_transaction(&mut self) -> Result<(), ConnectError> {
        let Some(eos) = self.eos.as_mut() else {
            return Ok(());
        };
        if !eos.in_transaction {
            self.producer
                .begin_transaction()
                .map_err(|e| ConnectError::Fatal(format!("begin transaction: {e}")))?;
            eos.in_transaction = true;
            if let Some(i) = eos.interval {
                eos.next_commit = Instant::now() + i;
            }
        }
        Ok(())
    }

    fn transaction_due(&self) -> bool {
        match &self.eos {
            Some(e) if e.in_transaction => e.interval.is_none() || Instant::now() >= e.next_commit,
            _ => false,
        }
    }

    /// Writes the offsets of every record of the open transaction into it and commits; then
    /// the offsets are the store's and the task hears `commit`. A failed commit is aborted
    /// and fails the task (its records were never visible to read_committed consumers).
    async fn commit_transaction(&mut self, task: &mut dyn SourceTask) -> Result<(), ConnectError> {
        let Some(eos) = self.eos.as_ref() else {
            return Ok(());
        };
        if !eos.in_transaction {
            return Ok(());
        }
        let (topic, partitions) = (eos.offsets_topic.clone(), eos.offsets_partitions);
        let mut latest: BTreeMap<String, (OffsetMap, OffsetMap)> =
            std::mem::take(&mut self.committable);
        for p in &self.outstanding {
            latest.insert(
                p.partition_id.clone(),
                (p.partition.clone(), p.offset.clone()),
            );
        }
        let bad = |e: crate::storage::StorageError| ConnectError::Fatal(e.to_string());
        let mut deliveries = Vec::new();
        for (partition, offset) in latest.values() {
            let key =
                crate::storage::OffsetKey::new(self.spec.id.connector.clone(), partition.clone());
            let key_bytes = key.encode().map_err(bad)?;
            let value = crate::storage::encode_offset_value(Some(offset)).map_err(bad)?;
            let p = key.topic_partition(partitions).map_err(bad)?;
            deliveries.push(
                self.produce(&topic, Some(p), None, Some(key_bytes), value, &[])
                    .await,
            );
        }
        let producer = self.producer.clone();
        let committed =
            tokio::task::spawn_blocking(move || producer.commit_transaction(TRANSACTION_TIMEOUT))
                .await
                .map_err(|e| ConnectError::Fatal(e.to_string()))?;
        if let Err(e) = committed {
            self.abort_transaction().await;
            return Err(ConnectError::Fatal(format!(
                "Failed to commit the transaction: {e}"
            )));
        }
        // Committed: every record of it is in Kafka.
        while let Some(front) = self.outstanding.pop_front() {
            if let Some(d) = front.delivery {
                if let Ok(Err((e, _))) = d.await {
                    return Err(ConnectError::Fatal(format!(
                        "a record of a committed transaction failed: {e}"
                    )));
                }
            }
        }
        for d in deliveries {
            let _ = d.await;
        }
        let entries: Vec<(OffsetMap, Option<OffsetMap>)> =
            latest.into_values().map(|(p, o)| (p, Some(o))).collect();
        self.ctx
            .offsets
            .note_committed(&self.spec.id.connector, &entries);
        if let Some(eos) = self.eos.as_mut() {
            eos.in_transaction = false;
        }
        if let Err(e) = task.commit().await {
            tracing::warn!(task = %self.task_id, "commit failed: {e}");
        }
        Ok(())
    }

    async fn abort_transaction(&mut self) {
        let open = self.eos.as_ref().is_some_and(|e| e.in_transaction);
        if !open {
            return;
        }
        let producer = self.producer.clone();
        let aborted =
            tokio::task::spawn_blocking(move || producer.abort_transaction(TRANSACTION_TIMEOUT))
                .await;
        if !matches!(aborted, Ok(Ok(()))) {
            tracing::warn!(task = %self.task_id, "aborting the transaction failed: {aborted:?}");
        }
        self.outstanding.clear();
        self.committable.clear();
        if let Some(eos) = self.eos.as_mut() {
            eos.in_transaction = false;
        }
    }

    /// Stores the offsets of acknowledged records; the task hears `commit` only when every
    /// record it returned is acknowledged and stored (a CDC task then lets its database
    /// free the log up to there, so nothing unacknowledged may be behind that point).
    async fn flush_acknowledged(&mut self, task: &mut dyn SourceTask) -> Result<(), ConnectError> {
        if self.committable.is_empty() {
            return Ok(());
        }
        let entries: Vec<(OffsetMap, Option<OffsetMap>)> = self
            .committable
            .values()
            .map(|(p, o)| (p.clone(), Some(o.clone())))
            .collect();
        match self
            .ctx
            .offsets
            .write(&self.spec.id.connector, entries)
            .await
        {
            Ok(()) => {
                self.committable.clear();
                if !self.outstanding.is_empty() {
                    return Ok(());
                }
                if let Err(e) = task.commit().await {
                    tracing::warn!(task = %self.task_id, "commit failed: {e}");
                }
                Ok(())
            }
            Err(e) => {
                // Kept for the next flush; the records are in Kafka already.
                tracing::error!(task = %self.task_id, "Failed to commit offsets: {e}");
                Ok(())
            }
        }
    }
}

/// Whether (and how) this task delivers exactly once: the worker's
/// `exactly.once.source.support`, the connector's `exactly.once.support` and
/// `transaction.boundary`.
fn exactly_once(ctx: &WorkerContext, spec: &TaskSpec) -> Result<Option<Eos>, ConnectError> {
    let originals = &spec.connector.originals;
    let enabled = ctx.config.distributed.as_ref().is_some_and(|d| {
        d.exactly_once_source_support == crate::config::ExactlyOnceSourceSupport::Enabled
    });
    let required = originals
        .get("exactly.once.support")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("required"));
    if !enabled {
        if required {
            return Err(ConnectError::Config(
                "exactly.once.support=required, but exactly-once source support is not enabled on \
                 this worker (exactly.once.source.support=enabled, distributed mode)"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let interval = match originals
        .get("transaction.boundary")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("poll") => None,
        Some("interval") => {
            let ms = originals
                .get("transaction.boundary.interval.ms")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(ctx.config.offset_flush_interval_ms.max(1) as u64);
            Some(Duration::from_millis(ms))
        }
        Some(other) => {
            return Err(ConnectError::Config(format!(
                "transaction.boundary={other} is not supported by Moldau's built-in connectors \
                 (poll or interval)"
            )))
        }
    };
    let (offsets_topic, offsets_partitions) = ctx.offsets.topic().ok_or_else(|| {
        ConnectError::Config("exactly-once delivery needs the offsets topic".into())
    })?;
    Ok(Some(Eos {
        interval,
        next_commit: Instant::now(),
        in_transaction: false,
        offsets_topic,
        offsets_partitions,
    }))
}

fn failed_record(
    source: &SourceRecord,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
) -> FailedSourceRecord {
    FailedSourceRecord {
        topic: source.record.topic.clone(),
        source_partition: offset_json(&source.source_partition),
        source_offset: offset_json(&source.source_offset),
        timestamp: source.record.timestamp,
        key,
        value,
        headers: Vec::new(),
    }
}

/// A source partition or offset as compact JSON (the DLQ's context headers).
fn offset_json(map: &OffsetMap) -> serde_json::Value {
    serde_json::Value::Object(super::herder::offset_map_to_json(map))
}

impl Drop for Runner {
    fn drop(&mut self) {
        // Records still queued are not acknowledged; their offsets were not stored.
        let _ = self.producer.flush(Duration::from_millis(0));
    }
}
