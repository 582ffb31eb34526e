//! Connection setup cost by security protocol (issue 11 item 8), measured with a real
//! client (librdkafka): each round creates a client and waits for its first Metadata
//! answer, which takes the TCP connect, the TLS handshake and the SASL exchange of the
//! listener. The PLAINTEXT row is the baseline (librdkafka's own setup); the others add
//! their handshake to it. Prints a markdown table; asserts nothing about time. Run it
//! through `bench/security.sh`, which starts the broker and writes the client configs.
//!
//! Usage: auth_bench ROUNDS NAME=BOOTSTRAP[;key=value;...] ...

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .and_then(|r| r.parse().ok())
        .expect("usage: auth_bench ROUNDS NAME=BOOTSTRAP[;k=v...] ...");
    println!("| listener | rounds | mean ms | p50 ms | p90 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for spec in args {
        let (name, rest) = spec.split_once('=').expect("NAME=BOOTSTRAP");
        let mut parts = rest.split(';');
        let bootstrap = parts.next().expect("bootstrap");
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", bootstrap);
        for kv in parts.filter(|p| !p.is_empty()) {
            let (k, v) = kv.split_once('=').expect("key=value");
            config.set(k, v);
        }
        // One warm-up round (TLS session caches are per client, so every round pays the
        // full handshake anyway).
        let mut times = Vec::with_capacity(rounds);
        for round in 0..=rounds {
            let start = Instant::now();
            let consumer: BaseConsumer = config.create().expect("client");
            consumer
                .fetch_metadata(None, Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let elapsed = start.elapsed();
            drop(consumer);
            if round > 0 {
                times.push(elapsed.as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "| {name} | {rounds} | {mean:.2} | {:.2} | {:.2} | {:.2} |",
            at(0.5),
            at(0.9),
            times[times.len() - 1]
        );
    }
}
