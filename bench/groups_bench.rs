//! Consumer-group benchmark (issue 4 item 8) with real librdkafka members against a
//! running broker. Prints a markdown table; asserts nothing about time. Run it through
//! `bench/groups.sh`, which starts a release broker with default settings.
//!
//! - leave: 3 members over 6 partitions have each read one record per partition and
//!   committed it; one member closes (LeaveGroup / epoch -1) and one new record is
//!   produced into every partition. Measured: until the two others own all 6 partitions,
//!   and until they have read all 6 new records ("consuming again").
//! - form: N members subscribe to a topic of P partitions at once. Measured: from the
//!   first subscribe until every member owns a share and together they own all P.
//!
//! Both with `group.protocol=classic` (range assignor, rdkafka defaults:
//! heartbeat.interval.ms 3000, session.timeout.ms 45000) and `group.protocol=consumer`
//! (KIP-848, the broker's uniform assignor and heartbeat interval).
//!
//! Usage: groups_bench BOOTSTRAP [RUNS] [FORM_MEMBERS] [FORM_PARTITIONS]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Message;

const HANG_GUARD: Duration = Duration::from_secs(180);

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = config(bootstrap).create().expect("admin");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = rt
        .block_on(admin.create_topics(&[new], &AdminOptions::new()))
        .expect("create topic");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }
}

fn member(bootstrap: &str, group: &str, protocol: &str, topic: &str) -> BaseConsumer {
    let mut c = config(bootstrap);
    c.set("group.id", group)
        .set("group.protocol", protocol)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let m: BaseConsumer = c.create().expect("consumer");
    m.subscribe(&[topic]).expect("subscribe");
    m
}

fn owned(m: &BaseConsumer) -> BTreeSet<i32> {
    m.assignment()
        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every member once; returns the records read as (partition, value).
fn poll_all(members: &[BaseConsumer]) -> Vec<(i32, String)> {
    let mut got = Vec::new();
    for m in members {
        match m.poll(Duration::from_millis(10)) {
            Some(Ok(msg)) => {
                let value = String::from_utf8_lossy(msg.payload().unwrap_or_default()).into_owned();
                m.commit_message(&msg, CommitMode::Sync).expect("commit");
                got.push((msg.partition(), value));
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    got
}

fn balanced(members: &[BaseConsumer], partitions: i32) -> bool {
    let sets: Vec<BTreeSet<i32>> = members.iter().map(owned).collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    total == partitions as usize
        && union.len() == partitions as usize
        && sets.iter().all(|s| !s.is_empty())
}

fn produce_one_per_partition(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    tag: &str,
) {
    for p in 0..6 {
        let value = format!("{tag}-{p}");
        producer
            .send(
                BaseRecord::<(), String>::to(topic)
                    .partition(p)
                    .payload(&value),
            )
            .expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

/// (until the others own everything, until they have read the new records)
fn leave(bootstrap: &str, protocol: &str, run: usize) -> (Duration, Duration) {
    let topic = format!("bench-leave-{protocol}-{run}");
    create_topic(bootstrap, &topic, 6);
    let producer: ThreadedProducer<DefaultProducerContext> =
        config(bootstrap).create().expect("producer");
    produce_one_per_partition(&producer, &topic, "before");
    let group = format!("{topic}-group");
    let mut members: Vec<BaseConsumer> = (0..3)
        .map(|_| member(bootstrap, &group, protocol, &topic))
        .collect();
    let deadline = Instant::now() + HANG_GUARD;
    let mut read = 0;
    while !(read >= 6 && balanced(&members, 6)) {
        read += poll_all(&members).len();
        assert!(Instant::now() < deadline, "group never formed");
    }
    let leaving = members.pop().expect("three members");
    let start = Instant::now();
    leaving.unsubscribe();
    drop(leaving);
    produce_one_per_partition(&producer, &topic, "after");
    let mut owned_at = None;
    let mut after = BTreeSet::new();
    while owned_at.is_none() || after.len() < 6 {
        for (p, v) in poll_all(&members) {
            if v.starts_with("after") {
                after.insert(p);
            }
        }
        if owned_at.is_none() && balanced(&members, 6) {
            owned_at = Some(start.elapsed());
        }
        assert!(Instant::now() < deadline, "no hand-over: {after:?}");
    }
    let consuming = start.elapsed();
    close_all(members);
    (owned_at.expect("owned"), consuming)
}

fn form(bootstrap: &str, protocol: &str, members: usize, partitions: i32, run: usize) -> Duration {
    let topic = format!("bench-form-{protocol}-{run}");
    create_topic(bootstrap, &topic, partitions);
    let group = format!("{topic}-group");
    let start = Instant::now();
    let consumers: Vec<BaseConsumer> = (0..members)
        .map(|_| member(bootstrap, &group, protocol, &topic))
        .collect();
    let deadline = Instant::now() + HANG_GUARD;
    while !balanced(&consumers, partitions) {
        poll_all(&consumers);
        assert!(
            Instant::now() < deadline,
            "group of {members} never balanced"
        );
    }
    let elapsed = start.elapsed();
    close_all(consumers);
    elapsed
}

/// Closes members in parallel: closed one by one, each leave would start a rebalance
/// that waits for members nobody polls any more.
fn close_all(members: Vec<BaseConsumer>) {
    std::thread::scope(|s| {
        for m in members {
            s.spawn(move || drop(m));
        }
    });
}

fn secs(d: &[Duration]) -> String {
    let mut v: Vec<f64> = d.iter().map(Duration::as_secs_f64).collect();
    v.sort_by(f64::total_cmp);
    let median = v[v.len() / 2];
    format!("{median:.2} (min {:.2}, max {:.2})", v[0], v[v.len() - 1])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args.get(1).map_or("127.0.0.1:9092", String::as_str);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let form_members: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(50);
    let form_partitions: i32 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(500);
    println!("| protocol | case | runs | seconds: median (min, max) |");
    println!("|---|---|---|---|");
    for protocol in ["classic", "consumer"] {
        let results: Vec<(Duration, Duration)> = (0..runs)
            .map(|r| {
                let result = leave(bootstrap, protocol, r);
                eprintln!("leave {protocol} run {r}: {result:?}");
                result
            })
            .collect();
        let owned: Vec<Duration> = results.iter().map(|r| r.0).collect();
        let consuming: Vec<Duration> = results.iter().map(|r| r.1).collect();
        println!(
            "| {protocol} | 1 of 3 members leaves (6 partitions): others own all | {runs} | {} |",
            secs(&owned)
        );
        println!("| {protocol} | 1 of 3 members leaves (6 partitions): others consuming again | {runs} | {} |", secs(&consuming));
        let formed: Vec<Duration> = (0..runs)
            .map(|r| {
                let result = form(bootstrap, protocol, form_members, form_partitions, r);
                eprintln!("form {protocol} run {r}: {result:?}");
                result
            })
            .collect();
        println!(
            "| {protocol} | {form_members} members over {form_partitions} partitions form a balanced group | {runs} | {} |",
            secs(&formed)
        );
    }
}
