//! Kafka Connect's error handling (Kafka's `org.apache.kafka.connect.runtime.errors`) as
//! pure logic: the worker runs the operations, sleeps and produces; this module decides.
//!
//! * [`ErrorPolicy`]: a connector's `errors.*` keys.
//! * [`ErrorHandler`] and [`Attempt`]: Kafka's `RetryWithToleranceOperator` and
//!   `ProcessingContext`. A failure gets a [`Decision`]: retry after a delay (exponential from
//!   300 ms, bounded by `errors.retry.delay.max.ms`, random below that bound once the
//!   exponential passes it, and the total by `errors.retry.timeout`), tolerate (skip the
//!   record) or fail the task. The clock is the `now_ms` the caller passes, the randomness a
//!   [`Jitter`]; nothing sleeps here.
//! * [`sink_dlq_record`] / [`source_dlq_record`]: the dead-letter-queue record, with
//!   Kafka's `__connect.errors.*` context headers byte for byte.
//! * [`log_message`]: the line Kafka's `LogReporter` logs.
//! * [`RestartPolicy`] and [`RestartTracker`]: automatic restarts of failed tasks (not in
//!   Kafka).
//!
//! # Beyond Kafka
//!
//! **Dead letter queue for sources.** Kafka has a DLQ only for sinks. Here a source
//! connector may set the same keys (`errors.deadletterqueue.topic.name`,
//! `errors.deadletterqueue.context.headers.enable`; they reach [`ErrorPolicy`] through the
//! connector's originals) and a record a source task produced that failed conversion,
//! transformation or the produce goes there ([`source_dlq_record`]). Its context headers
//! have Kafka's names; where a sink record has the consumed record's coordinates they
//! carry the source record's:
//!
//! | header | sink (Kafka) | source (here) |
//! |---|---|---|
//! | `__connect.errors.topic` | consumed topic | the topic the record was for |
//! | `__connect.errors.partition` | partition, decimal | the source partition, JSON |
//! | `__connect.errors.offset` | offset, decimal | the source offset, JSON |
//!
//! The source partition and offset are compact JSON objects (so a reader tells them from a
//! sink's decimal numbers by the leading `{`); the other headers are as for sinks.
//!
//! **Automatic restarts.** Kafka leaves a failed task failed until someone restarts it.
//! With `errors.restart.enable=true` a failed task is restarted after a backoff. The keys,
//! set in the worker's config as defaults and in a connector's config to override them:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `errors.restart.enable` | `false` | restart failed tasks automatically |
//! | `errors.restart.initial.backoff.ms` | `1000` | delay before the first restart |
//! | `errors.restart.max.backoff.ms` | `300000` | the longest delay |
//! | `errors.restart.backoff.multiplier` | `2.0` | each consecutive restart's delay grows by |
//! | `errors.restart.reset.after.ms` | `600000` | a task running this long is healthy again: the next failure starts from the initial backoff |

use std::fmt;

use crate::config::{ConfigError, ConnectorConfig, ConnectorType, Props, ToleranceType};

/// Kafka's `RetryWithToleranceOperator.RETRIES_DELAY_MIN_MS`: the first retry's delay.
pub const RETRIES_DELAY_MIN_MS: i64 = 300;

/// The prefix of the dead letter queue's context headers.
pub const HEADER_PREFIX: &str = "__connect.errors.";
pub const ERROR_HEADER_ORIG_TOPIC: &str = "__connect.errors.topic";
pub const ERROR_HEADER_ORIG_PARTITION: &str = "__connect.errors.partition";
pub const ERROR_HEADER_ORIG_OFFSET: &str = "__connect.errors.offset";
pub const ERROR_HEADER_CONNECTOR_NAME: &str = "__connect.errors.connector.name";
pub const ERROR_HEADER_TASK_ID: &str = "__connect.errors.task.id";
pub const ERROR_HEADER_STAGE: &str = "__connect.errors.stage";
pub const ERROR_HEADER_EXECUTING_CLASS: &str = "__connect.errors.class.name";
pub const ERROR_HEADER_EXCEPTION: &str = "__connect.errors.exception.class.name";
pub const ERROR_HEADER_EXCEPTION_MESSAGE: &str = "__connect.errors.exception.message";
pub const ERROR_HEADER_EXCEPTION_STACK_TRACE: &str = "__connect.errors.exception.stacktrace";

// ---------------------------------------------------------------------------------------
// Stages, errors, policy.

/// Kafka's `Stage`: where in the pipeline an operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// `SourceTask.poll()`.
    TaskPoll,
    /// `SinkTask.put()`.
    TaskPut,
    /// A transformation (or its predicate).
    Transformation,
    KeyConverter,
    ValueConverter,
    HeaderConverter,
    /// Producing to Kafka.
    KafkaProduce,
    /// Consuming from Kafka.
    KafkaConsume,
}

impl Stage {
    /// Kafka's enum constant name, as in the log line and the `stage` header.
    pub fn name(self) -> &'static str {
        match self {
            Stage::TaskPoll => "TASK_POLL",
            Stage::TaskPut => "TASK_PUT",
            Stage::Transformation => "TRANSFORMATION",
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::HeaderConverter => "HEADER_CONVERTER",
            Stage::KafkaProduce => "KAFKA_PRODUCE",
            Stage::KafkaConsume => "KAFKA_CONSUME",
        }
    }

    /// Kafka's `TOLERABLE_EXCEPTIONS`: converters and transformations tolerate any error
    /// (with `errors.tolerance=all`); the other stages only retriable ones, which the retry
    /// loop handles before tolerance is asked.
    pub fn tolerates_any_error(self) -> bool {
        matches!(
            self,
            Stage::Transformation
                | Stage::KeyConverter
                | Stage::ValueConverter
                | Stage::HeaderConverter
        )
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failure, as Kafka reports a `Throwable`: its (Java) class name, message and cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    /// E.g. `org.apache.kafka.connect.errors.DataException`.
    pub class_name: String,
    pub message: Option<String>,
    pub cause: Option<Box<ErrorInfo>>,
}

impl ErrorInfo {
    pub fn new(class_name: impl Into<String>, message: impl Into<String>) -> ErrorInfo {
        ErrorInfo {
            class_name: class_name.into(),
            message: Some(message.into()),
            cause: None,
        }
    }

    pub fn with_cause(mut self, cause: ErrorInfo) -> ErrorInfo {
        self.cause = Some(Box::new(cause));
        self
    }

    /// `Throwable.printStackTrace` without frames (there are no Java frames here): the
    /// error's `toString()` (`class: message`, or the class alone without a message) and a
    /// `Caused by: ` line per cause, each line ending in `\n`.
    pub fn stack_trace(&self) -> String {
        let mut out = String::new();
        let mut e = Some(self);
        let mut first = true;
        while let Some(err) = e {
            if !first {
                out.push_str("Caused by: ");
            }
            first = false;
            out.push_str(&err.to_string());
            out.push('\n');
            e = err.cause.as_deref();
        }
        out
    }
}

impl fmt::Display for ErrorInfo {
    /// Java's `Throwable.toString()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: {}", self.class_name, m),
            None => f.write_str(&self.class_name),
        }
    }
}

/// Kafka's `ConnectorTaskId`; displays as `connector-task`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskId {
    pub connector: String,
    pub task: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.connector, self.task)
    }
}

/// The dead letter queue's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DlqSettings {
    /// Trimmed, never empty.
    pub topic: String,
    /// `errors.deadletterqueue.context.headers.enable`.
    pub context_headers: bool,
}

/// A connector's error handling settings (the `errors.*` keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorPolicy {
    /// `errors.retry.timeout`: how long an operation may be retried in total; `0` (the
    /// default) never retries, `-1` retries forever.
    pub retry_timeout_ms: i64,
    /// `errors.retry.delay.max.ms` (default 60000).
    pub retry_delay_max_ms: i64,
    /// `errors.tolerance`.
    pub tolerance: ToleranceType,
    /// `errors.log.enable`.
    pub log_enable: bool,
    /// `errors.log.include.messages`.
    pub log_include_messages: bool,
    /// `errors.deadletterqueue.*`; `None` without a topic.
    pub dlq: Option<DlqSettings>,
}

impl Default for ErrorPolicy {
    /// Kafka's defaults: no retries, no tolerance, no log, no DLQ.
    fn default() -> Self {
        ErrorPolicy {
            retry_timeout_ms: 0,
            retry_delay_max_ms: 60_000,
            tolerance: ToleranceType::None,
            log_enable: false,
            log_include_messages: false,
            dlq: None,
        }
    }
}

impl ErrorPolicy {
    /// From a validated connector config. A source connector's DLQ keys (not Kafka's) come
    /// from its originals; a malformed `context.headers.enable` there counts as `false`.
    pub fn from_connector_config(c: &ConnectorConfig) -> ErrorPolicy {
        let dlq = match (c.connector_type, &c.sink) {
            (ConnectorType::Sink, Some(s)) => s.dlq_topic_name.as_ref().map(|t| DlqSettings {
                topic: t.trim().to_string(),
                context_headers: s.dlq_context_headers_enable,
            }),
            _ => c
                .originals
                .get("errors.deadletterqueue.topic.name")
                .map(|t| DlqSettings {
                    topic: t.trim().to_string(),
                    context_headers: c
                        .originals
                        .get("errors.deadletterqueue.context.headers.enable")
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
                }),
        }
        .filter(|d| !d.topic.is_empty());
        ErrorPolicy {
            retry_timeout_ms: c.errors_retry_timeout,
            retry_delay_max_ms: c.errors_retry_delay_max_ms,
            tolerance: c.errors_tolerance,
            log_enable: c.errors_log_enable,
            log_include_messages: c.errors_log_include_messages,
            dlq,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Retry and tolerance.

/// A source of randomness for the backoff: `below(bound)` is uniform in `0..bound`
/// (`bound > 0`), as Java's `ThreadLocalRandom.nextLong(bound)`.
pub trait Jitter {
    fn below(&mut self, bound: i64) -> i64;
}

impl<F: FnMut(i64) -> i64> Jitter for F {
    fn below(&mut self, bound: i64) -> i64 {
        self(bound)
    }
}

/// A small seeded generator (SplitMix64) for [`Jitter`]: seed it from the clock.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl Jitter for SplitMix64 {
    fn below(&mut self, bound: i64) -> i64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if bound <= 0 {
            0
        } else {
            (z % bound as u64) as i64
        }
    }
}

/// Why a failure stops the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// A non-retriable error in a stage that tolerates none (Kafka: "Unhandled exception
    /// in error handler").
    Unhandled,
    /// `errors.tolerance=none` and a failure (Kafka: "Tolerance exceeded in error handler").
    ToleranceExceeded,
}

impl FailReason {
    /// The message of the `ConnectException` Kafka throws.
    pub fn message(self) -> &'static str {
        match self {
            FailReason::Unhandled => "Unhandled exception in error handler",
            FailReason::ToleranceExceeded => "Tolerance exceeded in error handler",
        }
    }
}

/// What to do about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run the operation again after this many milliseconds (maybe 0).
    Retry { after_ms: i64 },
    /// Skip the record: report it (log, DLQ) and go on.
    Tolerate,
    /// Report the record and fail the task.
    Fail(FailReason),
}

/// Kafka's `ProcessingContext`: one record's way through the stages, and the retry state of
/// its current operation. Start one per record with [`ErrorHandler::begin`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    stage: Option<Stage>,
    executing_class: String,
    /// Attempts of the current operation.
    attempt: u32,
    /// When the current operation began.
    started_ms: i64,
    error: Option<ErrorInfo>,
}

impl Attempt {
    /// Kafka's `currentContext`: the worker is about to run `stage` with
    /// `executing_class` (e.g. the converter's class name) at `now_ms`. Starts the
    /// operation's retry clock.
    pub fn start(&mut self, stage: Stage, executing_class: &str, now_ms: i64) {
        self.stage = Some(stage);
        self.executing_class = executing_class.to_string();
        self.attempt = 0;
        self.started_ms = now_ms;
    }

    /// The stage last started or failed.
    pub fn stage(&self) -> Option<Stage> {
        self.stage
    }

    pub fn executing_class(&self) -> &str {
        &self.executing_class
    }

    /// Attempts of the current operation so far (failures reported).
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The error the record failed with; Kafka's worker runs no further stage of a failed
    /// record (callers check this between stages).
    pub fn error(&self) -> Option<&ErrorInfo> {
        self.error.as_ref()
    }

    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// Kafka's `RetryWithToleranceOperator` for one task: counts failures (tolerance `none`
/// allows none) and decides each failure.
#[derive(Debug)]
pub struct ErrorHandler<J> {
    policy: ErrorPolicy,
    jitter: J,
    total_failures: u64,
    stopping: bool,
}

impl<J: Jitter> ErrorHandler<J> {
    pub fn new(policy: ErrorPolicy, jitter: J) -> Self {
        ErrorHandler {
            policy,
            jitter,
            total_failures: 0,
            stopping: false,
        }
    }

    pub fn policy(&self) -> &ErrorPolicy {
        &self.policy
    }

    /// A new record's context.
    pub fn begin(&self) -> Attempt {
        Attempt {
            stage: None,
            executing_class: String::new(),
            attempt: 0,
            started_ms: 0,
            error: None,
        }
    }

    /// The operation `attempt` last [started](Attempt::start) failed in `stage` at
    /// `now_ms` (if `stage` or `executing_class` differ from the started one, the
    /// operation is taken to have started now). On [`Decision::Tolerate`] and
    /// [`Decision::Fail`] the record is failed and to be reported ([`sink_dlq_record`],
    /// [`log_message`]).
    ///
    /// As Kafka: a retriable error is retried while `now_ms` is before the operation's
    /// start plus `errors.retry.timeout` (never with `0`, forever with `-1`) and the
    /// handler is not [stopping](Self::trigger_stop). Once it may not, the record is
    /// skipped ([`Decision::Tolerate`]) *whatever `errors.tolerance` says* (Kafka's
    /// `execAndRetry` gives up quietly); tolerance `none` then fails the next failure. A
    /// non-retriable error in a converter or transformation is tolerated with `all`; in any
    /// other stage, or with `none`, it fails the task.
    pub fn on_failure(
        &mut self,
        attempt: &mut Attempt,
        stage: Stage,
        executing_class: &str,
        error: ErrorInfo,
        retriable: bool,
        now_ms: i64,
    ) -> Decision {
        if attempt.stage != Some(stage) || attempt.executing_class != executing_class {
            attempt.start(stage, executing_class, now_ms);
        }
        attempt.attempt += 1;
        if retriable {
            let deadline = if self.policy.retry_timeout_ms >= 0 {
                attempt
                    .started_ms
                    .saturating_add(self.policy.retry_timeout_ms)
            } else {
                i64::MAX
            };
            if now_ms < deadline && !self.stopping {
                let after_ms = self.backoff(attempt.attempt, deadline, now_ms);
                return Decision::Retry { after_ms };
            }
            attempt.error = Some(error);
            self.total_failures += 1;
            return Decision::Tolerate;
        }
        attempt.error = Some(error);
        self.total_failures += 1;
        if !stage.tolerates_any_error() {
            Decision::Fail(FailReason::Unhandled)
        } else if !self.within_tolerance_limits() {
            Decision::Fail(FailReason::ToleranceExceeded)
        } else {
            Decision::Tolerate
        }
    }

    /// Kafka's `executeFailed`: an operation outside the retry loop failed (a sink task's
    /// errant record reporter, a source's failed produce with tolerance `all`): the record
    /// is failed and reported; the task fails unless tolerance is `all`.
    pub fn execute_failed(
        &mut self,
        attempt: &mut Attempt,
        stage: Stage,
        executing_class: &str,
        error: ErrorInfo,
    ) -> Decision {
        self.total_failures += 1;
        attempt.stage = Some(stage);
        attempt.executing_class = executing_class.to_string();
        attempt.error = Some(error);
        if self.within_tolerance_limits() {
            Decision::Tolerate
        } else {
            Decision::Fail(FailReason::ToleranceExceeded)
        }
    }

    /// Kafka's `withinToleranceLimits`: `all`, or `none` before any failure.
    pub fn within_tolerance_limits(&self) -> bool {
        match self.policy.tolerance {
            ToleranceType::All => true,
            ToleranceType::None => self.total_failures == 0,
        }
    }

    /// Failures so far (retries not counted).
    pub fn total_failures(&self) -> u64 {
        self.total_failures
    }

    /// Kafka's `triggerStop`: no more retries; an operation failing from now on gives up
    /// ([`Decision::Tolerate`], the record failed). A worker sleeping a retry's backoff
    /// cuts it short and, as Kafka, does not run the operation again: it calls
    /// [`on_failure`](Self::on_failure) once more with the last error, which gives up.
    pub fn trigger_stop(&mut self) {
        self.stopping = true;
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Kafka's `backoff`: `300 << (attempt - 1)`, or once that passes
    /// `errors.retry.delay.max.ms` a random delay below it, and never past the deadline.
    fn backoff(&mut self, attempt: u32, deadline: i64, now_ms: i64) -> i64 {
        let max = self.policy.retry_delay_max_ms;
        let exponential = attempt
            .checked_sub(1)
            .filter(|&n| n < 54)
            .map(|n| RETRIES_DELAY_MIN_MS << n);
        let mut delay = match exponential {
            Some(d) if d <= max => d,
            _ if max > 0 => self.jitter.below(max).clamp(0, max - 1),
            _ => 0,
        };
        if now_ms.saturating_add(delay) > deadline {
            delay = (deadline - now_ms).max(0);
        }
        delay
    }
}

// ---------------------------------------------------------------------------------------
// Dead letter queue.

/// A raw record header; `None` is a null value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawHeader {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl RawHeader {
    fn text(key: &str, value: Option<&str>) -> RawHeader {
        RawHeader {
            key: key.to_string(),
            value: value.map(|v| v.as_bytes().to_vec()),
        }
    }
}

/// Kafka's `TimestampType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    NoTimestampType,
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's `toString`.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::NoTimestampType => "NoTimestampType",
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// A record as consumed from Kafka, before conversion (a sink's original record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// `None`: Kafka's `NO_TIMESTAMP`.
    pub timestamp: Option<i64>,
    pub timestamp_type: TimestampType,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<RawHeader>,
}

/// A source record that failed, with what the worker has of it in bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedSourceRecord {
    /// The topic the record was for.
    pub topic: String,
    /// The source partition and offset (maps, as the task gave them).
    pub source_partition: serde_json::Value,
    pub source_offset: serde_json::Value,
    pub timestamp: Option<i64>,
    /// The key and value bytes when the converters produced them (a failed produce), or as
    /// the worker chose to render them (e.g. schemaless JSON); `None` otherwise.
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Converted headers, when there are.
    pub headers: Vec<RawHeader>,
}

/// The record to produce to the dead letter queue (to the partition the producer chooses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DlqRecord {
    pub topic: String,
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// The original's headers, then the context headers.
    pub headers: Vec<RawHeader>,
}

/// The context headers after the original's coordinates (Kafka's
/// `populateContextHeaders`): values are UTF-8 text, the task id in decimal; a null
/// message is a null header value.
fn context_headers(
    headers: &mut Vec<RawHeader>,
    task: &TaskId,
    stage: Stage,
    executing_class: &str,
    error: Option<&ErrorInfo>,
) {
    headers.push(RawHeader::text(
        ERROR_HEADER_CONNECTOR_NAME,
        Some(&task.connector),
    ));
    headers.push(RawHeader::text(
        ERROR_HEADER_TASK_ID,
        Some(&task.task.to_string()),
    ));
    headers.push(RawHeader::text(ERROR_HEADER_STAGE, Some(stage.name())));
    headers.push(RawHeader::text(
        ERROR_HEADER_EXECUTING_CLASS,
        Some(executing_class),
    ));
    if let Some(e) = error {
        headers.push(RawHeader::text(ERROR_HEADER_EXCEPTION, Some(&e.class_name)));
        headers.push(RawHeader::text(
            ERROR_HEADER_EXCEPTION_MESSAGE,
            e.message.as_deref(),
        ));
        headers.push(RawHeader::text(
            ERROR_HEADER_EXCEPTION_STACK_TRACE,
            Some(&e.stack_trace()),
        ));
    }
}

/// Kafka's `DeadLetterQueueReporter.report` for a failed sink record: the original's key,
/// value, timestamp and headers to the DLQ topic, with the context headers if enabled.
/// `None` without a DLQ.
pub fn sink_dlq_record(
    policy: &ErrorPolicy,
    task: &TaskId,
    original: &ConsumedRecord,
    attempt: &Attempt,
) -> Option<DlqRecord> {
    let dlq = policy.dlq.as_ref()?;
    let mut headers = original.headers.clone();
    if dlq.context_headers {
        headers.push(RawHeader::text(
            ERROR_HEADER_ORIG_TOPIC,
            Some(&original.topic),
        ));
        headers.push(RawHeader::text(
            ERROR_HEADER_ORIG_PARTITION,
            Some(&original.partition.to_string()),
        ));
        headers.push(RawHeader::text(
            ERROR_HEADER_ORIG_OFFSET,
            Some(&original.offset.to_string()),
        ));
        push_attempt_headers(&mut headers, task, attempt);
    }
    Some(DlqRecord {
        topic: dlq.topic.clone(),
        timestamp: original.timestamp,
        key: original.key.clone(),
        value: original.value.clone(),
        headers,
    })
}

/// The DLQ record for a failed source record (not in Kafka; see the module docs): as for
/// a sink, with the record's topic and its source partition and offset (compact JSON) in
/// the `topic`, `partition` and `offset` headers.
pub fn source_dlq_record(
    policy: &ErrorPolicy,
    task: &TaskId,
    original: &FailedSourceRecord,
    attempt: &Attempt,
) -> Option<DlqRecord> {
    let dlq = policy.dlq.as_ref()?;
    let mut headers = original.headers.clone();
    if dlq.context_headers {
        headers.push(RawHeader::text(
            ERROR_HEADER_ORIG_TOPIC,
            Some(&original.topic),
        ));
        headers.push(RawHeader::text(
            ERROR_HEADER_ORIG_PARTITION,
            Some(&original.source_partition.to_string()),
        ));
        headers.push(RawHeader::text(
            ERROR_HEADER_ORIG_OFFSET,
            Some(&original.source_offset.to_string()),
        ));
        push_attempt_headers(&mut headers, task, attempt);
    }
    Some(DlqRecord {
        topic: dlq.topic.clone(),
        timestamp: original.timestamp,
        key: original.key.clone(),
        value: original.value.clone(),
        headers,
    })
}

fn push_attempt_headers(headers: &mut Vec<RawHeader>, task: &TaskId, attempt: &Attempt) {
    // A context that never started a stage: Kafka would fail on `stage().name()`; here the
    // stage header is left out.
    if let Some(stage) = attempt.stage {
        context_headers(
            headers,
            task,
            stage,
            &attempt.executing_class,
            attempt.error.as_ref(),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Log.

/// What the log line says about the failed record.
#[derive(Clone, Copy, Debug)]
pub enum LoggedRecord<'a> {
    /// A sink's consumed record.
    Consumed(&'a ConsumedRecord),
    /// A source record, as the worker renders it (Kafka: `SourceRecord.toString()`).
    Source(&'a str),
}

/// Kafka's `LogReporter.message`: the line logged (at ERROR, with the error's stack trace)
/// for a failed record; `None` unless `errors.log.enable` and the record failed.
pub fn log_message(
    policy: &ErrorPolicy,
    task: &TaskId,
    attempt: &Attempt,
    record: LoggedRecord<'_>,
) -> Option<String> {
    if !policy.log_enable || !attempt.failed() {
        return None;
    }
    let mut s = format!(
        "Error encountered in task {task}. Executing stage '{}' with class '{}'",
        attempt.stage.map_or("null", Stage::name),
        if attempt.executing_class.is_empty() {
            "null"
        } else {
            &attempt.executing_class
        }
    );
    if policy.log_include_messages {
        match record {
            LoggedRecord::Consumed(r) => {
                s.push_str(&format!(
                    ", where consumed record is {{topic='{}', partition={}, offset={}",
                    r.topic, r.partition, r.offset
                ));
                if r.timestamp_type != TimestampType::NoTimestampType {
                    s.push_str(&format!(
                        ", timestamp={}, timestampType={}",
                        r.timestamp.unwrap_or(-1),
                        r.timestamp_type.name()
                    ));
                }
                s.push('}');
            }
            LoggedRecord::Source(r) => {
                s.push_str(", where source record is = ");
                s.push_str(r);
            }
        }
    }
    s.push('.');
    Some(s)
}

// ---------------------------------------------------------------------------------------
// Automatic restarts.

pub const RESTART_ENABLE: &str = "errors.restart.enable";
pub const RESTART_INITIAL_BACKOFF_MS: &str = "errors.restart.initial.backoff.ms";
pub const RESTART_MAX_BACKOFF_MS: &str = "errors.restart.max.backoff.ms";
pub const RESTART_BACKOFF_MULTIPLIER: &str = "errors.restart.backoff.multiplier";
pub const RESTART_RESET_AFTER_MS: &str = "errors.restart.reset.after.ms";

/// The automatic restart settings (see the module docs for the keys).
#[derive(Clone, Debug, PartialEq)]
pub struct RestartPolicy {
    pub enable: bool,
    pub initial_backoff_ms: i64,
    pub max_backoff_ms: i64,
    pub multiplier: f64,
    pub reset_after_ms: i64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            enable: false,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
            multiplier: 2.0,
            reset_after_ms: 600_000,
        }
    }
}

impl RestartPolicy {
    /// The worker's keys, overridden by the connector's.
    pub fn from_props(worker: &Props, connector: &Props) -> Result<RestartPolicy, ConfigError> {
        let get = |k: &str| connector.get(k).or_else(|| worker.get(k));
        let invalid = |k: &str, v: &str, m: &str| ConfigError::Invalid {
            key: k.to_string(),
            value: v.to_string(),
            message: m.to_string(),
        };
        let long = |k: &str, default: i64| -> Result<i64, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(n) if n >= 0 => Ok(n),
                    Ok(_) => Err(invalid(k, v, "Value must be at least 0")),
                    Err(_) => Err(invalid(k, v, "Not a number of type LONG")),
                },
            }
        };
        let d = RestartPolicy::default();
        let enable = match get(RESTART_ENABLE).map(|v| v.trim()) {
            None => d.enable,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(invalid(
                    RESTART_ENABLE,
                    v,
                    "Expected value to be either true or false",
                ))
            }
        };
        let multiplier = match get(RESTART_BACKOFF_MULTIPLIER) {
            None => d.multiplier,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(m) if m.is_finite() && m >= 1.0 => m,
                Ok(_) => {
                    return Err(invalid(
                        RESTART_BACKOFF_MULTIPLIER,
                        v,
                        "Value must be at least 1.0",
                    ))
                }
                Err(_) => {
                    return Err(invalid(
                        RESTART_BACKOFF_MULTIPLIER,
                        v,
                        "Not a number of type DOUBLE",
                    ))
                }
            },
        };
        let initial_backoff_ms = long(RESTART_INITIAL_BACKOFF_MS, d.initial_backoff_ms)?;
        let max_backoff_ms = long(RESTART_MAX_BACKOFF_MS, d.max_backoff_ms)?;
        if max_backoff_ms < initial_backoff_ms {
            return Err(ConfigError::Message(format!(
                "{RESTART_MAX_BACKOFF_MS} ({max_backoff_ms}) must not be less than \
                 {RESTART_INITIAL_BACKOFF_MS} ({initial_backoff_ms})"
            )));
        }
        Ok(RestartPolicy {
            enable,
            initial_backoff_ms,
            max_backoff_ms,
            multiplier,
            reset_after_ms: long(RESTART_RESET_AFTER_MS, d.reset_after_ms)?,
        })
    }

    /// The delay before the restart after `consecutive` earlier ones:
    /// `initial * multiplier^consecutive`, at most `max`.
    pub fn backoff_ms(&self, consecutive: u32) -> i64 {
        let d =
            self.initial_backoff_ms as f64 * self.multiplier.powi(consecutive.min(1_000) as i32);
        if d.is_finite() && d < self.max_backoff_ms as f64 {
            d as i64
        } else {
            self.max_backoff_ms
        }
    }
}

/// A task's state for restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartState {
    /// Running since this time.
    Running { since_ms: i64 },
    /// Failed; restart at this time.
    Scheduled { at_ms: i64 },
    /// Failed, and stays so (restarts disabled).
    Failed,
}

/// One task's automatic restarts: tell it when the task starts and fails, ask it when to
/// restart.
#[derive(Clone, Debug)]
pub struct RestartTracker {
    policy: RestartPolicy,
    state: RestartState,
    /// Restarts since the task was last healthy.
    consecutive: u32,
    /// Automatic restarts in all.
    restarts: u64,
    last_error: Option<String>,
}

impl RestartTracker {
    pub fn new(policy: RestartPolicy, now_ms: i64) -> Self {
        RestartTracker {
            policy,
            state: RestartState::Running { since_ms: now_ms },
            consecutive: 0,
            restarts: 0,
            last_error: None,
        }
    }

    /// The task failed with `error` (its trace, as `/status` shows it). Returns when to
    /// restart it, `None` when it stays failed.
    pub fn on_failure(&mut self, error: impl Into<String>, now_ms: i64) -> Option<i64> {
        if let RestartState::Running { since_ms } = self.state {
            if now_ms.saturating_sub(since_ms) >= self.policy.reset_after_ms {
                self.consecutive = 0;
            }
        }
        self.last_error = Some(error.into());
        if !self.policy.enable {
            self.state = RestartState::Failed;
            return None;
        }
        let at_ms = now_ms.saturating_add(self.policy.backoff_ms(self.consecutive));
        self.state = RestartState::Scheduled { at_ms };
        Some(at_ms)
    }

    /// Whether a scheduled restart is due.
    pub fn due(&self, now_ms: i64) -> bool {
        matches!(self.state, RestartState::Scheduled { at_ms } if now_ms >= at_ms)
    }

    /// The worker restarted the task automatically.
    pub fn on_restarted(&mut self, now_ms: i64) {
        self.consecutive = self.consecutive.saturating_add(1);
        self.restarts += 1;
        self.state = RestartState::Running { since_ms: now_ms };
    }

    /// Someone restarted the task (REST): the backoff starts over.
    pub fn on_manual_restart(&mut self, now_ms: i64) {
        self.consecutive = 0;
        self.state = RestartState::Running { since_ms: now_ms };
    }

    pub fn state(&self) -> RestartState {
        self.state
    }

    /// Automatic restarts so far, for `/status`.
    pub fn restart_count(&self) -> u64 {
        self.restarts
    }

    /// The last failure's trace, for `/status`.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OverridePolicy;

    fn policy(timeout: i64, max: i64, tolerance: ToleranceType) -> ErrorPolicy {
        ErrorPolicy {
            retry_timeout_ms: timeout,
            retry_delay_max_ms: max,
            tolerance,
            ..ErrorPolicy::default()
        }
    }

    fn err(msg: &str) -> ErrorInfo {
        ErrorInfo::new("org.apache.kafka.connect.errors.RetriableException", msg)
    }

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Fails a retriable operation at `now` until the handler stops retrying; the delays.
    fn schedule(h: &mut ErrorHandler<impl Jitter>, start: i64) -> (Vec<i64>, Decision) {
        let mut a = h.begin();
        a.start(Stage::TaskPoll, "C", start);
        let mut now = start;
        let mut delays = Vec::new();
        loop {
            match h.on_failure(&mut a, Stage::TaskPoll, "C", err("x"), true, now) {
                Decision::Retry { after_ms } => {
                    delays.push(after_ms);
                    now += after_ms;
                }
                d => return (delays, d),
            }
        }
    }

    #[test]
    fn errors_policy_from_config() {
        let sink = ConnectorConfig::parse(
            &props(&[
                ("name", "s"),
                ("connector.class", "FileStreamSink"),
                ("topics", "t"),
                ("errors.retry.timeout", "-1"),
                ("errors.tolerance", "all"),
                ("errors.log.enable", "true"),
                ("errors.deadletterqueue.topic.name", " dlq "),
                ("errors.deadletterqueue.context.headers.enable", "true"),
            ]),
            ConnectorType::Sink,
            OverridePolicy::All,
        )
        .unwrap();
        let p = ErrorPolicy::from_connector_config(&sink);
        assert_eq!(p.retry_timeout_ms, -1);
        assert_eq!(p.retry_delay_max_ms, 60_000);
        assert_eq!(p.tolerance, ToleranceType::All);
        assert!(p.log_enable && !p.log_include_messages);
        assert_eq!(
            p.dlq,
            Some(DlqSettings {
                topic: "dlq".into(),
                context_headers: true
            })
        );
        let source = ConnectorConfig::parse(
            &props(&[
                ("name", "s"),
                ("connector.class", "FileStreamSource"),
                ("errors.deadletterqueue.topic.name", "sdlq"),
            ]),
            ConnectorType::Source,
            OverridePolicy::All,
        )
        .unwrap();
        let p = ErrorPolicy::from_connector_config(&source);
        assert_eq!(p.retry_timeout_ms, 0);
        assert_eq!(p.tolerance, ToleranceType::None);
        assert_eq!(
            p.dlq,
            Some(DlqSettings {
                topic: "sdlq".into(),
                context_headers: false
            })
        );
    }

    #[test]
    fn errors_retry_schedule_exponential_then_jitter() {
        let mut h = ErrorHandler::new(policy(-1, 5_000, ToleranceType::None), |bound: i64| {
            bound / 2
        });
        let mut a = h.begin();
        a.start(Stage::KafkaProduce, "P", 0);
        let delays: Vec<i64> = (0..8)
            .map(
                |_| match h.on_failure(&mut a, Stage::KafkaProduce, "P", err("x"), true, 0) {
                    Decision::Retry { after_ms } => after_ms,
                    d => panic!("{d:?}"),
                },
            )
            .collect();
        // 300, 600, 1200, 2400, 4800, then 9600 > 5000: random below 5000.
        assert_eq!(delays, [300, 600, 1200, 2400, 4800, 2500, 2500, 2500]);
        assert_eq!(a.attempts(), 8);
        assert!(!a.failed());
        // Many attempts don't overflow.
        for _ in 0..100 {
            let d = h.on_failure(&mut a, Stage::KafkaProduce, "P", err("x"), true, 0);
            assert_eq!(d, Decision::Retry { after_ms: 2500 });
        }
    }

    #[test]
    fn errors_retry_bounded_by_timeout() {
        // Default timeout 0: no retry, the record is skipped.
        let mut h = ErrorHandler::new(policy(0, 60_000, ToleranceType::None), SplitMix64(1));
        let (delays, d) = schedule(&mut h, 1_000);
        assert!(delays.is_empty());
        assert_eq!(d, Decision::Tolerate);
        assert_eq!(h.total_failures(), 1);
        assert!(!h.within_tolerance_limits());

        // 2000 ms: 300, 600, then 1100 remain (1200 cut to the deadline), then give up.
        let mut h = ErrorHandler::new(policy(2_000, 60_000, ToleranceType::All), SplitMix64(1));
        let (delays, d) = schedule(&mut h, 10);
        assert_eq!(delays, [300, 600, 1_100]);
        assert_eq!(d, Decision::Tolerate);
    }

    #[test]
    fn errors_random_delays_stay_below_max() {
        let mut h = ErrorHandler::new(policy(-1, 1_000, ToleranceType::None), SplitMix64(42));
        let mut a = h.begin();
        a.start(Stage::TaskPoll, "C", 0);
        for i in 0..200 {
            match h.on_failure(&mut a, Stage::TaskPoll, "C", err("x"), true, 0) {
                Decision::Retry { after_ms } if i >= 2 => assert!((0..1_000).contains(&after_ms)),
                Decision::Retry { .. } => {}
                d => panic!("{d:?}"),
            }
        }
    }

    #[test]
    fn errors_stop_ends_retries() {
        let mut h = ErrorHandler::new(policy(-1, 60_000, ToleranceType::None), SplitMix64(1));
        let mut a = h.begin();
        a.start(Stage::TaskPoll, "C", 0);
        assert!(matches!(
            h.on_failure(&mut a, Stage::TaskPoll, "C", err("x"), true, 0),
            Decision::Retry { .. }
        ));
        h.trigger_stop();
        assert_eq!(
            h.on_failure(&mut a, Stage::TaskPoll, "C", err("x"), true, 300),
            Decision::Tolerate
        );
        assert!(a.failed());
    }

    #[test]
    fn errors_tolerance_none_vs_all() {
        let data = || ErrorInfo::new("org.apache.kafka.connect.errors.DataException", "bad");
        // none: a converter error fails the task.
        let mut h = ErrorHandler::new(policy(0, 60_000, ToleranceType::None), SplitMix64(1));
        let mut a = h.begin();
        a.start(Stage::ValueConverter, "J", 0);
        assert_eq!(
            h.on_failure(&mut a, Stage::ValueConverter, "J", data(), false, 0),
            Decision::Fail(FailReason::ToleranceExceeded)
        );
        assert_eq!(a.error(), Some(&data()));
        // all: converters and transformations are skipped, every time.
        let mut h = ErrorHandler::new(policy(0, 60_000, ToleranceType::All), SplitMix64(1));
        for stage in [
            Stage::KeyConverter,
            Stage::ValueConverter,
            Stage::HeaderConverter,
            Stage::Transformation,
        ] {
            let mut a = h.begin();
            assert_eq!(
                h.on_failure(&mut a, stage, "J", data(), false, 0),
                Decision::Tolerate
            );
            assert_eq!(a.stage(), Some(stage));
        }
        assert_eq!(h.total_failures(), 4);
        // ... but not other stages.
        for stage in [
            Stage::TaskPoll,
            Stage::TaskPut,
            Stage::KafkaProduce,
            Stage::KafkaConsume,
        ] {
            let mut a = h.begin();
            let d = h.on_failure(&mut a, stage, "T", data(), false, 0);
            assert_eq!(d, Decision::Fail(FailReason::Unhandled));
            assert_eq!(
                FailReason::Unhandled.message(),
                "Unhandled exception in error handler"
            );
        }
        // executeFailed.
        let mut a = h.begin();
        assert_eq!(
            h.execute_failed(&mut a, Stage::KafkaProduce, "W", data()),
            Decision::Tolerate
        );
        let mut h = ErrorHandler::new(ErrorPolicy::default(), SplitMix64(1));
        let mut a = h.begin();
        assert_eq!(
            h.execute_failed(&mut a, Stage::TaskPut, "S", data()),
            Decision::Fail(FailReason::ToleranceExceeded)
        );
    }

    fn dlq_policy(headers: bool) -> ErrorPolicy {
        ErrorPolicy {
            dlq: Some(DlqSettings {
                topic: "dlq".into(),
                context_headers: headers,
            }),
            log_enable: true,
            ..ErrorPolicy::default()
        }
    }

    fn consumed() -> ConsumedRecord {
        ConsumedRecord {
            topic: "orders".into(),
            partition: 3,
            offset: 1234,
            timestamp: Some(1_700_000_000_000),
            timestamp_type: TimestampType::CreateTime,
            key: Some(b"k".to_vec()),
            value: Some(b"{not json".to_vec()),
            headers: vec![RawHeader {
                key: "h".into(),
                value: None,
            }],
        }
    }

    fn failed_attempt(stage: Stage, class: &str, e: ErrorInfo) -> Attempt {
        let mut h = ErrorHandler::new(policy(0, 60_000, ToleranceType::All), SplitMix64(1));
        let mut a = h.begin();
        a.start(stage, class, 0);
        h.on_failure(&mut a, stage, class, e, false, 0);
        a
    }

    fn hdr(k: &str, v: &str) -> RawHeader {
        RawHeader {
            key: k.into(),
            value: Some(v.as_bytes().to_vec()),
        }
    }

    #[test]
    fn errors_sink_dlq_headers_byte_exact() {
        let task = TaskId {
            connector: "jdbc-sink".into(),
            task: 7,
        };
        let e = ErrorInfo::new(
            "org.apache.kafka.connect.errors.DataException",
            "Converting byte[] to Kafka Connect data failed",
        )
        .with_cause(ErrorInfo {
            class_name: "org.apache.kafka.common.errors.SerializationException".into(),
            message: None,
            cause: None,
        });
        let a = failed_attempt(
            Stage::ValueConverter,
            "org.apache.kafka.connect.json.JsonConverter",
            e,
        );
        let r = sink_dlq_record(&dlq_policy(true), &task, &consumed(), &a).unwrap();
        assert_eq!(r.topic, "dlq");
        assert_eq!(r.timestamp, Some(1_700_000_000_000));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"{not json"[..]));
        assert_eq!(
            r.headers,
            vec![
                RawHeader {
                    key: "h".into(),
                    value: None
                },
                hdr("__connect.errors.topic", "orders"),
                hdr("__connect.errors.partition", "3"),
                hdr("__connect.errors.offset", "1234"),
                hdr("__connect.errors.connector.name", "jdbc-sink"),
                hdr("__connect.errors.task.id", "7"),
                hdr("__connect.errors.stage", "VALUE_CONVERTER"),
                hdr(
                    "__connect.errors.class.name",
                    "org.apache.kafka.connect.json.JsonConverter"
                ),
                hdr(
                    "__connect.errors.exception.class.name",
                    "org.apache.kafka.connect.errors.DataException"
                ),
                hdr(
                    "__connect.errors.exception.message",
                    "Converting byte[] to Kafka Connect data failed"
                ),
                hdr(
                    "__connect.errors.exception.stacktrace",
                    "org.apache.kafka.connect.errors.DataException: Converting byte[] to Kafka \
                     Connect data failed\nCaused by: \
                     org.apache.kafka.common.errors.SerializationException\n"
                ),
            ]
        );
        // Without context headers: the original's headers only; without a DLQ: nothing.
        let r = sink_dlq_record(&dlq_policy(false), &task, &consumed(), &a).unwrap();
        assert_eq!(r.headers.len(), 1);
        assert_eq!(
            sink_dlq_record(&ErrorPolicy::default(), &task, &consumed(), &a),
            None
        );
        // A null message is a null header.
        let a = failed_attempt(
            Stage::Transformation,
            "T",
            ErrorInfo {
                class_name: "java.lang.NullPointerException".into(),
                message: None,
                cause: None,
            },
        );
        let r = sink_dlq_record(&dlq_policy(true), &task, &consumed(), &a).unwrap();
        let m = r
            .headers
            .iter()
            .find(|h| h.key == ERROR_HEADER_EXCEPTION_MESSAGE)
            .unwrap();
        assert_eq!(m.value, None);
    }

    #[test]
    fn errors_source_dlq_headers() {
        let task = TaskId {
            connector: "pg".into(),
            task: 0,
        };
        let rec = FailedSourceRecord {
            topic: "db.public.users".into(),
            source_partition: serde_json::json!({"server": "db"}),
            source_offset: serde_json::json!({"lsn": 42, "txId": 7}),
            timestamp: None,
            key: None,
            value: Some(b"v".to_vec()),
            headers: Vec::new(),
        };
        let a = failed_attempt(
            Stage::KafkaProduce,
            "org.apache.kafka.connect.runtime.WorkerSourceTask",
            ErrorInfo::new(
                "org.apache.kafka.common.errors.RecordTooLargeException",
                "too large",
            ),
        );
        let r = source_dlq_record(&dlq_policy(true), &task, &rec, &a).unwrap();
        assert_eq!(r.timestamp, None);
        assert_eq!(r.key, None);
        assert_eq!(
            r.headers[..6],
            [
                hdr("__connect.errors.topic", "db.public.users"),
                hdr("__connect.errors.partition", r#"{"server":"db"}"#),
                hdr("__connect.errors.offset", r#"{"lsn":42,"txId":7}"#),
                hdr("__connect.errors.connector.name", "pg"),
                hdr("__connect.errors.task.id", "0"),
                hdr("__connect.errors.stage", "KAFKA_PRODUCE"),
            ]
        );
        assert_eq!(r.headers.len(), 10);
    }

    #[test]
    fn errors_log_line() {
        let task = TaskId {
            connector: "sink".into(),
            task: 2,
        };
        let a = failed_attempt(
            Stage::KeyConverter,
            "org.apache.kafka.connect.json.JsonConverter",
            err("x"),
        );
        let mut p = dlq_policy(false);
        assert_eq!(
            log_message(&p, &task, &a, LoggedRecord::Consumed(&consumed())).unwrap(),
            "Error encountered in task sink-2. Executing stage 'KEY_CONVERTER' with class \
             'org.apache.kafka.connect.json.JsonConverter'."
        );
        p.log_include_messages = true;
        assert_eq!(
            log_message(&p, &task, &a, LoggedRecord::Consumed(&consumed())).unwrap(),
            "Error encountered in task sink-2. Executing stage 'KEY_CONVERTER' with class \
             'org.apache.kafka.connect.json.JsonConverter', where consumed record is \
             {topic='orders', partition=3, offset=1234, timestamp=1700000000000, \
             timestampType=CreateTime}."
        );
        let mut c = consumed();
        c.timestamp = None;
        c.timestamp_type = TimestampType::NoTimestampType;
        assert_eq!(
            log_message(&p, &task, &a, LoggedRecord::Consumed(&c)).unwrap(),
            "Error encountered in task sink-2. Executing stage 'KEY_CONVERTER' with class \
             'org.apache.kafka.connect.json.JsonConverter', where consumed record is \
             {topic='orders', partition=3, offset=1234}."
        );
        assert_eq!(
            log_message(&p, &task, &a, LoggedRecord::Source("SourceRecord{...}")).unwrap(),
            "Error encountered in task sink-2. Executing stage 'KEY_CONVERTER' with class \
             'org.apache.kafka.connect.json.JsonConverter', where source record is = \
             SourceRecord{...}."
        );
        // Disabled, or nothing failed: no line.
        p.log_enable = false;
        assert_eq!(log_message(&p, &task, &a, LoggedRecord::Source("")), None);
        let h = ErrorHandler::new(ErrorPolicy::default(), SplitMix64(0));
        assert_eq!(
            log_message(
                &dlq_policy(false),
                &task,
                &h.begin(),
                LoggedRecord::Source("")
            ),
            None
        );
    }

    #[test]
    fn errors_restart_policy_config() {
        assert_eq!(
            RestartPolicy::from_props(&Props::new(), &Props::new()).unwrap(),
            RestartPolicy::default()
        );
        let p = RestartPolicy::from_props(
            &props(&[
                (RESTART_ENABLE, "true"),
                (RESTART_INITIAL_BACKOFF_MS, "500"),
                (RESTART_MAX_BACKOFF_MS, "4000"),
            ]),
            &props(&[
                (RESTART_INITIAL_BACKOFF_MS, "1000"),
                (RESTART_BACKOFF_MULTIPLIER, "3"),
            ]),
        )
        .unwrap();
        assert!(p.enable);
        assert_eq!(p.initial_backoff_ms, 1000);
        assert_eq!(p.max_backoff_ms, 4000);
        assert_eq!(p.multiplier, 3.0);
        assert_eq!(
            RestartPolicy::from_props(&Props::new(), &props(&[(RESTART_ENABLE, "yes")]))
                .unwrap_err()
                .to_string(),
            "Invalid value yes for configuration errors.restart.enable: Expected value to be \
             either true or false"
        );
        assert!(RestartPolicy::from_props(
            &props(&[(RESTART_MAX_BACKOFF_MS, "10")]),
            &Props::new()
        )
        .is_err());
        assert!(RestartPolicy::from_props(
            &props(&[(RESTART_BACKOFF_MULTIPLIER, "0.5")]),
            &Props::new()
        )
        .is_err());
    }

    #[test]
    fn errors_restart_backoff_and_reset() {
        let policy = RestartPolicy {
            enable: true,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 5_000,
            multiplier: 2.0,
            reset_after_ms: 60_000,
        };
        let mut t = RestartTracker::new(policy, 0);
        let mut now = 0;
        let mut delays = Vec::new();
        for i in 0..5 {
            now += 10;
            let at = t.on_failure(format!("boom {i}"), now).unwrap();
            delays.push(at - now);
            assert!(!t.due(at - 1));
            assert!(t.due(at));
            now = at;
            t.on_restarted(now);
        }
        assert_eq!(delays, [1_000, 2_000, 4_000, 5_000, 5_000]);
        assert_eq!(t.restart_count(), 5);
        assert_eq!(t.last_error(), Some("boom 4"));
        // Healthy for the reset period: back to the initial backoff.
        now += 60_000;
        assert_eq!(t.on_failure("late", now), Some(now + 1_000));
        // A manual restart starts over too.
        t.on_restarted(now + 1_000);
        t.on_failure("again", now + 1_010);
        t.on_manual_restart(now + 5_000);
        assert_eq!(t.on_failure("x", now + 5_010), Some(now + 6_010));
        assert_eq!(t.restart_count(), 6);

        // Disabled: stays failed, the error kept.
        let mut t = RestartTracker::new(RestartPolicy::default(), 0);
        assert_eq!(t.on_failure("trace", 5), None);
        assert_eq!(t.state(), RestartState::Failed);
        assert!(!t.due(i64::MAX));
        assert_eq!(t.last_error(), Some("trace"));
        assert_eq!(t.restart_count(), 0);
    }
}
