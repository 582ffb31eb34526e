//! Soak testing: runs random seeds (or the given ones) until a count or a time limit, and
//! reports runs, simulated hours and every failing seed with its replay command.
//!
//! `cargo run --release -p moldau-sim -- [--runs N] [--minutes M] [--seed S]...`

use std::time::{Duration, Instant};

moldau_sim::deterministic_os_randomness!();

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_timer(SimulatedTime)
            .init();
    }
    let mut runs: Option<u64> = None;
    let mut minutes: Option<f64> = None;
    let mut seeds: Vec<u64> = Vec::new();
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--runs" => runs = Some(parse(&value("--runs"), "--runs")),
            "--minutes" => minutes = Some(parse(&value("--minutes"), "--minutes")),
            "--seed" => seeds.push(parse(&value("--seed"), "--seed")),
            "--verbose" => verbose = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if runs.is_none() && minutes.is_none() {
        runs = Some(if seeds.is_empty() {
            10
        } else {
            seeds.len() as u64
        });
    }
    let started = Instant::now();
    let deadline = minutes.map(|m| started + Duration::from_secs_f64(m * 60.0));
    // The seeds of a soak come from the wall clock; each run's own seed is printed.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let shape = moldau_sim::Options::for_seed;
    let (mut done, mut failures, mut simulated) = (0u64, Vec::new(), Duration::ZERO);
    loop {
        if runs.is_some_and(|r| done >= r) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let seed = seeds.get(done as usize).copied().unwrap_or_else(|| {
            base.wrapping_add(done.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % 1_000_000_000_000
        });
        let run_started = Instant::now();
        match moldau_sim::run(seed, &shape(seed)) {
            Ok(report) => {
                simulated += report.simulated;
                println!(
                    "seed {seed}: ok, {:.0} s simulated in {:.1} s, {} records acknowledged, {} faults, fingerprint {:016x}",
                    report.simulated.as_secs_f64(),
                    run_started.elapsed().as_secs_f64(),
                    report.acknowledged_records,
                    report.faults,
                    report.fingerprint
                );
                if verbose {
                    for event in &report.events {
                        println!("  {event}");
                    }
                }
            }
            Err(failure) => {
                if verbose {
                    for event in &failure.events {
                        println!("  {event}");
                    }
                }
                println!("{failure}");
                failures.push(seed);
            }
        }
        done += 1;
    }
    let real = started.elapsed().as_secs_f64();
    println!(
        "{done} runs, {} failed, {:.2} simulated hours in {:.1} real minutes ({:.2} simulated hours per real minute)",
        failures.len(),
        simulated.as_secs_f64() / 3600.0,
        real / 60.0,
        simulated.as_secs_f64() / 3600.0 / (real / 60.0).max(1e-9)
    );
    if !failures.is_empty() {
        println!("failing seeds: {failures:?}");
        std::process::exit(1);
    }
}

fn parse<T: std::str::FromStr>(value: &str, name: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| usage(&format!("{name}: '{value}' is not a number")))
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("moldau-sim: {problem}");
    }
    eprintln!("usage: moldau-sim [--runs N] [--minutes M] [--seed S]... [--verbose]");
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}

/// Log lines carry the simulated time of the host that wrote them.
struct SimulatedTime;

impl tracing_subscriber::fmt::time::FormatTime for SimulatedTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(at) => write!(w, "{:>9.3}s", at.as_secs_f64()),
            None => write!(w, "{:>10}", "-"),
        }
    }
}
