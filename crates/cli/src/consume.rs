//! `moldau consume`: reads partitions with `assign()` (no consumer group) from a
//! chosen position and prints each record as text or as one JSON object per line.

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, Timestamp, TopicPartitionList};
use serde::Serialize;

use crate::args::{parse_key_value, parse_topic, ConnectArgs, KeyValue};
use crate::client::{describe_kafka_error, plain_consumer, stop_on_signal, topic_info};

#[derive(Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    #[arg(long, short = 't', value_parser = parse_topic)]
    topic: String,
    /// Read only this partition (default: all partitions).
    #[arg(long, short = 'p', value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Start at the earliest record (default: only new records).
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    from_beginning: bool,
    /// Start at this offset in each partition read: a number, "earliest" or "latest".
    #[arg(long, value_parser = parse_offset, conflicts_with = "timestamp")]
    offset: Option<Offset>,
    /// Start at the first record with a timestamp at or after this time:
    /// milliseconds since the epoch or an ISO 8601 date-time (UTC unless it has an offset).
    #[arg(long, value_name = "MS|DATETIME", value_parser = parse_timestamp)]
    timestamp: Option<i64>,
    /// Stop after this many records.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_messages: Option<u64>,
    /// Stop when no record arrived for this long.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
    /// Stop once every partition read has been read to its end (as kcat -e does).
    #[arg(long)]
    exit_at_end: bool,
    /// Output format: the value (with --print-* fields) or one JSON object per line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Text format: print the key before the value.
    #[arg(long)]
    print_key: bool,
    /// Text format: print the headers (k:v,k2:v2).
    #[arg(long)]
    print_headers: bool,
    /// Text format: print the partition.
    #[arg(long)]
    print_partition: bool,
    /// Text format: print the offset.
    #[arg(long)]
    print_offset: bool,
    /// Text format: print the timestamp with its type.
    #[arg(long)]
    print_timestamp: bool,
    /// Text format: separator between the printed fields.
    #[arg(long, default_value = "\t")]
    separator: String,
    /// Extra consumer property (repeatable), e.g. --consumer-property fetch.max.bytes=1048576.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    consumer_property: Vec<KeyValue>,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

fn parse_offset(s: &str) -> Result<Offset, String> {
    match s {
        "earliest" | "beginning" => Ok(Offset::Beginning),
        "latest" | "end" => Ok(Offset::End),
        _ => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Offset::Offset(n)),
            _ => Err(format!(
                "expected a non-negative offset, \"earliest\" or \"latest\", got '{s}'"
            )),
        },
    }
}

/// Milliseconds since the epoch, or an RFC 3339 / ISO 8601 date-time.
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return if ms >= 0 {
            Ok(ms)
        } else {
            Err(format!("timestamp must not be negative, got {ms}"))
        };
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    Err(format!(
        "expected milliseconds since the epoch or a date-time like 2024-05-01T12:00:00Z, got '{s}'"
    ))
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let mut properties = args.consumer_property.clone();
    if args.exit_at_end {
        properties.push(KeyValue {
            key: "enable.partition.eof".into(),
            value: "true".into(),
        });
    }
    let consumer = plain_consumer(conn, &properties)?;
    let info = topic_info(consumer.client(), conn, &args.topic)?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if p as usize >= info.partition_count => bail!(
            "partition {p} does not exist: topic '{}' has {} partitions",
            args.topic,
            info.partition_count
        ),
        Some(p) => vec![p],
        None => info.partitions.iter().map(|p| p.partition).collect(),
    };

    let start = if args.from_beginning {
        Offset::Beginning
    } else {
        args.offset.unwrap_or(Offset::End)
    };
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        let offset = args.timestamp.map_or(start, Offset::Offset);
        assignment
            .add_partition_offset(&args.topic, p, offset)
            .context("cannot build assignment")?;
    }
    if args.timestamp.is_some() {
        assignment = consumer
            .offsets_for_times(assignment, conn.request_timeout())
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot look up offsets by timestamp: {}",
                    describe_kafka_error(&e, conn)
                )
            })?;
        // No record at or after the timestamp: start at the end, as Kafka's tools do.
        for mut elem in assignment.elements() {
            if !matches!(elem.offset(), Offset::Offset(_)) {
                elem.set_offset(Offset::End)
                    .context("cannot build assignment")?;
            }
        }
    }
    consumer
        .assign(&assignment)
        .context("cannot assign partitions")?;

    let stop = stop_on_signal()?;
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut count = 0u64;
    let mut last_record = Instant::now();
    // Partitions read to their end since their last record (with --exit-at-end).
    let mut at_end = std::collections::HashSet::new();
    let outcome = loop {
        if stop.load(std::sync::atomic::Ordering::Relaxed)
            || args.max_messages.is_some_and(|m| count >= m)
        {
            break Ok(());
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {
                if out.flush().is_err() {
                    break Ok(()); // stdout closed, e.g. `| head`
                }
                if idle_limit.is_some_and(|limit| last_record.elapsed() >= limit) {
                    break Ok(());
                }
            }
            Some(Ok(message)) => {
                last_record = Instant::now();
                count += 1;
                at_end.remove(&message.partition());
                if write_record(&mut out, &args, &message).is_err() {
                    break Ok(());
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
                if at_end.len() == partitions.len() {
                    break Ok(());
                }
            }
            Some(Err(e)) => {
                if let Some(e) = fatal(e, conn) {
                    break Err(e);
                }
            }
        }
    };
    let _ = out.flush();
    outcome?;
    note!("Processed a total of {count} messages");
    Ok(())
}

/// Errors that say the partition cannot be read end the command; others (a dropped
/// connection, a broker restarting, group coordination) are retried by librdkafka.
pub fn fatal(e: KafkaError, conn: &ConnectArgs) -> Option<anyhow::Error> {
    match &e {
        KafkaError::MessageConsumptionFatal(_)
        | KafkaError::MessageConsumption(
            RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownPartition
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::OffsetOutOfRange
            | RDKafkaErrorCode::UnsupportedVersion,
        ) => Some(anyhow::anyhow!(
            "consume failed: {}",
            describe_kafka_error(&e, conn)
        )),
        _ => {
            tracing::debug!("consumer: {e}");
            None
        }
    }
}

/// One record in `--format json`.
#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    timestamp_type: Option<&'static str>,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<JsonHeader>,
}

#[derive(Serialize)]
struct JsonHeader {
    key: String,
    value: Option<String>,
}

fn timestamp_parts(t: Timestamp) -> (Option<i64>, Option<&'static str>) {
    match t {
        Timestamp::NotAvailable => (None, None),
        Timestamp::CreateTime(ms) => (Some(ms), Some("CreateTime")),
        Timestamp::LogAppendTime(ms) => (Some(ms), Some("LogAppendTime")),
    }
}

/// JSON holds keys, values and headers as UTF-8 text; invalid bytes become U+FFFD.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A record's headers, read through librdkafka's C API: the rdkafka crate's header
/// iterator panics on a header name that is not UTF-8, and headers are whatever
/// some producer wrote.
fn read_headers(m: &BorrowedMessage<'_>) -> Vec<JsonHeader> {
    use rdkafka::bindings as rd;
    use rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR as NO_ERROR;
    let mut headers = std::ptr::null_mut();
    // SAFETY: `m.ptr()` is a live message for as long as `m` is borrowed; librdkafka
    // keeps ownership of the headers it returns.
    let err = unsafe { rd::rd_kafka_message_headers(m.ptr(), &mut headers) };
    if err != NO_ERROR || headers.is_null() {
        return Vec::new();
    }
    // SAFETY: `headers` was just returned non-null by librdkafka for this message.
    let count = unsafe { rd::rd_kafka_header_cnt(headers) };
    (0..count)
        .filter_map(|i| {
            let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0usize);
            // SAFETY: `i < count`; the out-pointers point to live locals.
            let err = unsafe {
                rd::rd_kafka_header_get_all(headers, i, &mut name, &mut value, &mut size)
            };
            if err != NO_ERROR || name.is_null() {
                return None;
            }
            // SAFETY: librdkafka returns a NUL-terminated name and `size` value bytes
            // (or a null value), valid while the message lives.
            let key = unsafe { std::ffi::CStr::from_ptr(name) };
            let value = (!value.is_null())
                .then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) });
            Some(JsonHeader {
                key: key.to_string_lossy().into_owned(),
                value: value.map(text),
            })
        })
        .collect()
}

fn write_record(
    out: &mut impl Write,
    args: &ConsumeArgs,
    m: &BorrowedMessage<'_>,
) -> std::io::Result<()> {
    let headers = read_headers(m);
    let (timestamp, timestamp_type) = timestamp_parts(m.timestamp());
    match args.format {
        Format::Json => {
            let record = JsonRecord {
                topic: m.topic(),
                partition: m.partition(),
                offset: m.offset(),
                timestamp,
                timestamp_type,
                key: m.key().map(text),
                value: m.payload().map(text),
                headers,
            };
            serde_json::to_writer(&mut *out, &record)?;
            writeln!(out)
        }
        Format::Text => {
            let sep = &args.separator;
            if args.print_timestamp {
                match (timestamp_type, timestamp) {
                    (Some(kind), Some(ms)) => write!(out, "{kind}:{ms}{sep}")?,
                    _ => write!(out, "NO_TIMESTAMP{sep}")?,
                }
            }
            if args.print_partition {
                write!(out, "Partition:{}{sep}", m.partition())?;
            }
            if args.print_offset {
                write!(out, "Offset:{}{sep}", m.offset())?;
            }
            if args.print_headers {
                let list: Vec<String> = headers
                    .iter()
                    .map(|h| format!("{}:{}", h.key, h.value.as_deref().unwrap_or("null")))
                    .collect();
                let list = if list.is_empty() {
                    "NO_HEADERS".to_string()
                } else {
                    list.join(",")
                };
                write!(out, "{list}{sep}")?;
            }
            // Keys and values go out as their bytes, as kafka-console-consumer does.
            if args.print_key {
                out.write_all(m.key().unwrap_or(b"null"))?;
                out.write_all(sep.as_bytes())?;
            }
            out.write_all(m.payload().unwrap_or(b"null"))?;
            writeln!(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_timestamp("1970-01-01T01:00:01+01:00").unwrap(), 1000);
        assert_eq!(parse_timestamp("1970-01-01T00:00:01.5").unwrap(), 1500);
        assert_eq!(parse_timestamp("1970-01-02").unwrap(), 86_400_000);
        assert!(parse_timestamp("-5").is_err());
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("earliest").unwrap(), Offset::Beginning);
        assert_eq!(parse_offset("latest").unwrap(), Offset::End);
        assert_eq!(parse_offset("42").unwrap(), Offset::Offset(42));
        assert!(parse_offset("-1").is_err());
        assert!(parse_offset("x").is_err());
    }
}
