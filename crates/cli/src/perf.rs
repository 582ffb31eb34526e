//! `moldau perf produce|consume`, in the spirit of kafka-producer-perf-test and
//! kafka-consumer-perf-test: a progress line on stderr about every second, and a
//! summary on stdout (a sentence, or JSON with `--output json`).
//!
//! MB means 2^20 bytes, as in Kafka's tools. Bytes count keys and values.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::args::{parse_key_value, parse_topic, ConnectArgs, KeyValue, OutputArgs, OutputFormat};
use crate::client::{
    creation_error, default_idempotence, plain_consumer, producer_config, stop_on_signal,
    topic_info, QuietContext,
};

const MB: f64 = 1024.0 * 1024.0;

/// Three decimals are plenty for rates and milliseconds in a report.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Subcommand)]
pub enum PerfCommand {
    /// Produce records as fast as allowed and report throughput and latency.
    Produce(ProduceArgs),
    /// Consume records from the beginning of every partition and report throughput.
    Consume(ConsumeArgs),
}

#[derive(Args)]
pub struct ProduceArgs {
    /// Topic to write to; its partition count decides how the load spreads.
    #[arg(long, short = 't', value_parser = parse_topic)]
    topic: String,
    /// Number of records to produce.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    num_records: u64,
    /// Size of each record value in bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=100_000_000))]
    record_size: u32,
    /// Upper bound in records per second; -1 for no limit.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-1..))]
    throughput: i64,
    /// Producer properties, e.g. --producer-props acks=1 linger.ms=5 compression.type=lz4.
    #[arg(long, num_args = 1.., value_name = "KEY=VALUE", value_parser = parse_key_value)]
    producer_props: Vec<KeyValue>,
    /// Produce inside transactions of this many records each (commit after every N).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    transaction_size: Option<u64>,
    /// transactional.id for --transaction-size (default: moldau-perf-<pid>).
    #[arg(long, requires = "transaction_size")]
    transactional_id: Option<String>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    #[arg(long, short = 't', value_parser = parse_topic)]
    topic: String,
    /// Number of records to consume.
    #[arg(long, alias = "messages", value_parser = clap::value_parser!(u64).range(1..))]
    num_records: u64,
    /// Give up when no record arrived for this long.
    #[arg(long, default_value_t = 10_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
    /// Consumer properties, e.g. --consumer-props fetch.max.bytes=52428800.
    #[arg(long, num_args = 1.., value_name = "KEY=VALUE", value_parser = parse_key_value)]
    consumer_props: Vec<KeyValue>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(cmd: PerfCommand) -> anyhow::Result<()> {
    match cmd {
        PerfCommand::Produce(args) => produce(args),
        PerfCommand::Consume(args) => consume(args),
    }
}

/// Delivery statistics, updated by librdkafka's polling thread.
struct Stats {
    /// Records finished (acknowledged or failed) and their latencies, in microseconds.
    histogram: Histogram<u64>,
    acked: u64,
    failed: u64,
    first_error: Option<String>,
    last_ack: Option<Instant>,
    window: Window,
}

/// What happened since the last progress line.
#[derive(Default)]
struct Window {
    records: u64,
    latency_sum_us: u64,
    latency_max_us: u64,
}

struct PerfContext {
    start: Instant,
    stats: Mutex<Stats>,
}

impl ClientContext for PerfContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        QuietContext.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        QuietContext.error(error, reason);
    }
}

impl ProducerContext for PerfContext {
    /// When the record was handed to librdkafka, in nanoseconds since `start`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let now = Instant::now();
        let latency_us =
            ((now - self.start).as_micros() as u64).saturating_sub(sent_ns as u64 / 1_000);
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => {
                stats.acked += 1;
                stats.histogram.saturating_record(latency_us.max(1));
                stats.last_ack = Some(now);
                stats.window.records += 1;
                stats.window.latency_sum_us += latency_us;
                stats.window.latency_max_us = stats.window.latency_max_us.max(latency_us);
            }
            Err((e, _)) => {
                stats.failed += 1;
                if stats.first_error.is_none() {
                    stats.first_error = Some(match e.rdkafka_error_code() {
                        Some(code) => code.to_string(),
                        None => e.to_string(),
                    });
                }
            }
        }
    }
}

#[derive(Serialize)]
struct ProduceSummary {
    topic: String,
    records: u64,
    failed: u64,
    record_size: u32,
    elapsed_ms: f64,
    records_per_sec: f64,
    mb_per_sec: f64,
    latency_ms: Latency,
}

#[derive(Serialize)]
struct Latency {
    avg: f64,
    max: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    p999: f64,
}

fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let mut config = producer_config(conn)?;
    for kv in &args.producer_props {
        config.set(&kv.key, &kv.value);
    }
    default_idempotence(&mut config);
    if args.transaction_size.is_some() {
        let id = args
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("moldau-perf-{}", std::process::id()));
        config.set("transactional.id", id);
    }
    let context = PerfContext {
        start: Instant::now(),
        stats: Mutex::new(Stats {
            // 1 µs to 1 hour at 3 significant digits.
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .context("cannot create latency histogram")?,
            acked: 0,
            failed: 0,
            first_error: None,
            last_ack: None,
            window: Window::default(),
        }),
    };
    let producer: ThreadedProducer<PerfContext> =
        ThreadedProducer::from_config_and_context(&config, context)
            .map_err(|e| creation_error("producer", e))?;
    topic_info(producer.client(), conn, &args.topic)?;
    let txn_timeout = conn.request_timeout() + Duration::from_secs(30);
    if args.transaction_size.is_some() {
        producer
            .init_transactions(txn_timeout)
            .context("cannot initialize transactions")?;
        producer
            .begin_transaction()
            .context("cannot begin a transaction")?;
    }

    let payload = random_payload(args.record_size as usize);
    let stop = stop_on_signal()?;
    let ctx = producer.context();
    let start = Instant::now();
    let mut progress = Progress::new(start);
    let mut sent = 0u64;
    while sent < args.num_records && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if args.throughput > 0 {
            throttle(start, sent, args.throughput as u64);
        }
        let sent_ns = (Instant::now() - ctx.start).as_nanos() as usize;
        let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(&args.topic, sent_ns)
            .payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                    progress.maybe_print(ctx, args.record_size);
                }
                Err((e, _)) => bail!("cannot send record: {e}"),
            }
        }
        sent += 1;
        progress.maybe_print(ctx, args.record_size);
        if let Some(n) = args.transaction_size {
            if sent.is_multiple_of(n) || sent == args.num_records {
                await_deliveries(&producer, txn_timeout);
                producer
                    .commit_transaction(txn_timeout)
                    .context("cannot commit a transaction")?;
                if sent < args.num_records {
                    producer
                        .begin_transaction()
                        .context("cannot begin a transaction")?;
                }
            }
        }
    }
    // Wait for the outstanding deliveries, still printing progress.
    let deadline = Instant::now() + conn.request_timeout() + Duration::from_secs(5);
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        let _ = producer.flush(Duration::from_millis(200));
        progress.maybe_print(ctx, args.record_size);
    }
    if producer.in_flight_count() > 0 {
        bail!(
            "{} records still undelivered after the {} ms request timeout",
            producer.in_flight_count(),
            conn.request_timeout_ms
        );
    }

    let stats = ctx.stats.lock().unwrap_or_else(|e| e.into_inner());
    let elapsed = stats.last_ack.unwrap_or_else(Instant::now) - start;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let h = &stats.histogram;
    let ms = |us: u64| us as f64 / 1000.0;
    let summary = ProduceSummary {
        topic: args.topic.clone(),
        records: stats.acked,
        failed: stats.failed,
        record_size: args.record_size,
        elapsed_ms: round3(elapsed.as_secs_f64() * 1000.0),
        records_per_sec: round3(stats.acked as f64 / secs),
        mb_per_sec: round3(stats.acked as f64 * args.record_size as f64 / MB / secs),
        latency_ms: Latency {
            avg: round3(if h.is_empty() { 0.0 } else { h.mean() / 1000.0 }),
            max: round3(ms(h.max())),
            p50: round3(ms(h.value_at_quantile(0.50))),
            p95: round3(ms(h.value_at_quantile(0.95))),
            p99: round3(ms(h.value_at_quantile(0.99))),
            p999: round3(ms(h.value_at_quantile(0.999))),
        },
    };
    match args.output.output {
        OutputFormat::Json => crate::output::print_json(&summary)?,
        OutputFormat::Table => {
            let l = &summary.latency_ms;
            say!(
                "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, \
                 {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
                summary.records,
                summary.records_per_sec,
                summary.mb_per_sec,
                l.avg,
                l.max,
                l.p50,
                l.p95,
                l.p99,
                l.p999
            );
        }
    }
    if stats.failed > 0 {
        bail!(
            "{} of {} records failed; first error: {}",
            stats.failed,
            stats.acked + stats.failed,
            stats.first_error.as_deref().unwrap_or("unknown")
        );
    }
    if sent < args.num_records {
        bail!("interrupted after {sent} of {} records", args.num_records);
    }
    Ok(())
}

/// Waits until every record handed to librdkafka is acknowledged (or `timeout` passes).
/// rust-rdkafka's `flush`, which `commit_transaction` calls first, polls in slices of
/// 100 ms that always run to their end, so a commit would cost at least 100 ms even when
/// the acknowledgements arrive in one; short polls here return within a millisecond of
/// the last one, and the commit's own flush then finds nothing in flight.
fn await_deliveries(producer: &ThreadedProducer<PerfContext>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        producer.poll(Duration::from_millis(1));
    }
}

/// Sleeps while ahead of the target rate, as Kafka's ThroughputThrottler does.
fn throttle(start: Instant, sent: u64, records_per_sec: u64) {
    let due = Duration::from_secs_f64(sent as f64 / records_per_sec as f64);
    let elapsed = start.elapsed();
    if due > elapsed {
        std::thread::sleep(due - elapsed);
    }
}

/// The progress line printed about every second.
struct Progress {
    next: Instant,
    window_start: Instant,
}

impl Progress {
    fn new(start: Instant) -> Self {
        Progress {
            next: start + REPORT_INTERVAL,
            window_start: start,
        }
    }

    fn maybe_print(&mut self, ctx: &PerfContext, record_size: u32) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        let window = {
            let mut stats = ctx.stats.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut stats.window)
        };
        let secs = (now - self.window_start).as_secs_f64().max(1e-9);
        let avg_ms = if window.records == 0 {
            0.0
        } else {
            window.latency_sum_us as f64 / window.records as f64 / 1000.0
        };
        note!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
            window.records,
            window.records as f64 / secs,
            window.records as f64 * record_size as f64 / MB / secs,
            avg_ms,
            window.latency_max_us as f64 / 1000.0
        );
        self.window_start = now;
        self.next = now + REPORT_INTERVAL;
    }
}

/// Upper-case letters from a fixed-seed xorshift, like the Java tool's random payload.
fn random_payload(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect()
}

#[derive(Serialize)]
struct ConsumeSummary {
    topic: String,
    records: u64,
    mb: f64,
    elapsed_ms: f64,
    records_per_sec: f64,
    mb_per_sec: f64,
    /// From partition assignment to the last record: time spent fetching.
    fetch_ms: f64,
    fetch_records_per_sec: f64,
    fetch_mb_per_sec: f64,
}

fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let start = Instant::now();
    let consumer = plain_consumer(conn, &args.consumer_props)?;
    let info = topic_info(consumer.client(), conn, &args.topic)?;
    let mut assignment = TopicPartitionList::new();
    for p in &info.partitions {
        assignment
            .add_partition_offset(&args.topic, p.partition, Offset::Beginning)
            .context("cannot build assignment")?;
    }
    consumer
        .assign(&assignment)
        .context("cannot assign partitions")?;
    let fetch_start = Instant::now();

    let stop = stop_on_signal()?;
    let idle_limit = Duration::from_millis(args.timeout_ms);
    let (mut records, mut bytes) = (0u64, 0u64);
    let (mut window_records, mut window_bytes) = (0u64, 0u64);
    let mut window_start = fetch_start;
    let mut last_record = fetch_start;
    let mut timed_out = false;
    while records < args.num_records && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let size = (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
                records += 1;
                bytes += size;
                window_records += 1;
                window_bytes += size;
                last_record = Instant::now();
            }
            Some(Err(e)) => {
                if let Some(e) = crate::consume::fatal(e, conn) {
                    return Err(e);
                }
            }
            None => {
                if last_record.elapsed() >= idle_limit {
                    timed_out = true;
                    break;
                }
            }
        }
        let now = Instant::now();
        if now - window_start >= REPORT_INTERVAL {
            if window_records > 0 {
                let secs = (now - window_start).as_secs_f64();
                note!(
                    "{} records consumed, {:.1} records/sec ({:.2} MB/sec).",
                    window_records,
                    window_records as f64 / secs,
                    window_bytes as f64 / MB / secs
                );
            }
            (window_records, window_bytes, window_start) = (0, 0, now);
        }
    }

    let elapsed = (last_record - start).as_secs_f64().max(1e-9);
    let fetch = (last_record - fetch_start).as_secs_f64().max(1e-9);
    let mb = bytes as f64 / MB;
    let summary = ConsumeSummary {
        topic: args.topic.clone(),
        records,
        mb: round3(mb),
        elapsed_ms: round3(elapsed * 1000.0),
        records_per_sec: round3(records as f64 / elapsed),
        mb_per_sec: round3(mb / elapsed),
        fetch_ms: round3(fetch * 1000.0),
        fetch_records_per_sec: round3(records as f64 / fetch),
        fetch_mb_per_sec: round3(mb / fetch),
    };
    match args.output.output {
        OutputFormat::Json => crate::output::print_json(&summary)?,
        OutputFormat::Table => say!(
            "{} records ({:.2} MB) consumed in {:.0} ms: {:.1} records/sec ({:.2} MB/sec); \
             fetch time {:.0} ms: {:.1} records/sec ({:.2} MB/sec).",
            summary.records,
            summary.mb,
            summary.elapsed_ms,
            summary.records_per_sec,
            summary.mb_per_sec,
            summary.fetch_ms,
            summary.fetch_records_per_sec,
            summary.fetch_mb_per_sec
        ),
    }
    if timed_out {
        bail!(
            "consumed {records} of {} records: none arrived for {} ms",
            args.num_records,
            args.timeout_ms
        );
    }
    if records < args.num_records {
        bail!(
            "interrupted after {records} of {} records",
            args.num_records
        );
    }
    Ok(())
}
