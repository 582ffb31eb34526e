//! `moldau produce`: one record per input line, like kafka-console-producer, but it
//! waits for every delivery report and says which records failed.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::args::{parse_key_value, parse_topic, ConnectArgs, KeyValue};
use crate::client::{
    creation_error, default_idempotence, producer_config, topic_info, QuietContext,
};

#[derive(Args)]
pub struct ProduceArgs {
    /// Topic to write to.
    #[arg(long, short = 't', value_parser = parse_topic)]
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
    /// Split each line at the first occurrence of this string into key and value.
    #[arg(long, value_parser = non_empty)]
    key_separator: Option<String>,
    /// Header added to every record (repeatable).
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    headers: Vec<KeyValue>,
    /// Write every record to this partition (default: by key hash, or sticky for no key).
    #[arg(long, short = 'p', value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Acknowledgements to wait for: all (same as -1), 1 (the leader) or 0 (none).
    #[arg(long, default_value = "all", allow_negative_numbers = true,
          value_parser = ["all", "-1", "0", "1"])]
    acks: String,
    /// Compression codec for record batches.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".to_string())
    } else {
        Ok(s.to_string())
    }
}

/// At most this many failed records are named one by one; the rest are counted.
const MAX_REPORTED_FAILURES: usize = 100;

/// Failed records: the first ones by line number and message, and how many in all.
#[derive(Default)]
struct Failures {
    reported: Vec<(usize, String)>,
    count: usize,
}

impl Failures {
    fn add(&mut self, line: usize, message: String) {
        self.count += 1;
        if self.reported.len() < MAX_REPORTED_FAILURES {
            self.reported.push((line, message));
        }
    }
}

/// Collects delivery reports; the opaque value is the record's line number.
#[derive(Default)]
struct DeliveryLog {
    failures: Mutex<Failures>,
}

impl ClientContext for DeliveryLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        QuietContext.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        QuietContext.error(error, reason);
    }
}

impl ProducerContext for DeliveryLog {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, line: usize) {
        if let Err((err, _)) = result {
            let message = match err.rdkafka_error_code() {
                Some(code) => code.to_string(),
                None => err.to_string(),
            };
            self.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(line, message);
        }
    }
}

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let mut config = producer_config(conn)?;
    config
        .set("acks", &args.acks)
        .set("compression.type", args.compression.as_str());
    default_idempotence(&mut config);
    let producer: ThreadedProducer<DeliveryLog> =
        ThreadedProducer::from_config_and_context(&config, DeliveryLog::default())
            .map_err(|e| creation_error("producer", e))?;

    // Fail fast, in one line, when the cluster or the topic is not there.
    let info = topic_info(producer.client(), conn, &args.topic)?;
    if let Some(p) = args.partition {
        if p as usize >= info.partition_count {
            bail!(
                "partition {p} does not exist: topic '{}' has {} partitions",
                args.topic,
                info.partition_count
            );
        }
    }

    let input: Box<dyn Read> = match &args.file {
        Some(path) => Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => Box::new(std::io::stdin().lock()),
    };
    let headers = args.headers.iter().fold(OwnedHeaders::new(), |h, kv| {
        h.insert(Header {
            key: &kv.key,
            value: Some(kv.value.as_bytes()),
        })
    });

    let mut sent = 0usize;
    let mut local_failures = Failures::default();
    for (index, line) in BufReader::new(input).split(b'\n').enumerate() {
        let line_no = index + 1;
        let mut line = line.context("cannot read input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let (key, value) = match &args.key_separator {
            None => (None, &line[..]),
            Some(sep) => match find(&line, sep.as_bytes()) {
                Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
                None => {
                    local_failures.add(line_no, format!("no key separator {sep:?} in line"));
                    continue;
                }
            },
        };
        let mut record = BaseRecord::with_opaque_to(&args.topic, line_no)
            .payload(value)
            .headers(headers.clone());
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        if let Err(message) = send_blocking(&producer, record) {
            local_failures.add(line_no, message);
            continue;
        }
        sent += 1;
    }

    // Every record has a delivery report within message.timeout.ms; a little more
    // bounds the wait for the last callbacks.
    let flush_timeout = conn.request_timeout() + Duration::from_secs(5);
    if let Err(e) = producer.flush(flush_timeout) {
        bail!(
            "records not delivered within {} ms: {e}",
            flush_timeout.as_millis()
        );
    }

    let read = sent + local_failures.count;
    let delivery = std::mem::take(
        &mut *producer
            .context()
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    let failed = local_failures.count + delivery.count;
    let mut reported = local_failures.reported;
    reported.extend(delivery.reported);
    reported.sort();
    reported.truncate(MAX_REPORTED_FAILURES);
    for (line, message) in &reported {
        note!("error: record at line {line}: {message}");
    }
    if failed > reported.len() {
        note!(
            "error: ... and {} more failed records",
            failed - reported.len()
        );
    }
    if failed == 0 {
        let records = if read == 1 { "record" } else { "records" };
        note!("Produced {read} {records} to topic {}.", args.topic);
        Ok(())
    } else {
        bail!("{failed} of {read} records failed")
    }
}

/// Sends one record, waiting while librdkafka's queue is full.
fn send_blocking<C: ProducerContext + 'static>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>,
) -> Result<(), String> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => {
                return Err(match e.rdkafka_error_code() {
                    Some(code) => code.to_string(),
                    None => e.to_string(),
                })
            }
        }
    }
}

/// Position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
