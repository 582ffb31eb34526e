//! The simulation's fixed seeds, the regression seeds of bugs it found, and replay.
//!
//! `MOLDAU_SIM_SEED=<seed> cargo test -p moldau-sim --test seeds` runs that seed alone
//! (with the event log printed), as a failing run's message says.

use moldau_sim::{run, Options};

moldau_sim::deterministic_os_randomness!();

/// Seeds every test run checks (with [`Options::quick`], the debug build being ~10x
/// slower than a release soak): the three shapes, and between them every fault kind.
const CI_SEEDS: &[u64] = &[1, 2, 10, 13, 17];

/// Seeds that once failed, with the bug each found (see `regression-seeds.txt`).
fn regression_seeds() -> Vec<u64> {
    include_str!("../regression-seeds.txt")
        .lines()
        .filter_map(|line| line.split('#').next())
        .filter_map(|seed| seed.trim().parse().ok())
        .collect()
}

/// One simulation at a time in this process. Two running side by side (the test harness
/// runs tests on parallel threads) have diverged once, by a millisecond at a crash, so a
/// seed is only promised to replay as it ran when it runs alone, as in a soak or a
/// `MOLDAU_SIM_SEED` replay.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_seeds(seeds: &[(u64, Options)]) {
    let _alone = alone();
    let mut failures = Vec::new();
    for (seed, options) in seeds {
        let seed = *seed;
        match run(seed, options) {
            Ok(report) => eprintln!(
                "seed {seed}: ok, {} s simulated, {} records acknowledged, {} faults",
                report.simulated.as_secs(),
                report.acknowledged_records,
                report.faults
            ),
            Err(failure) => {
                eprintln!("{failure}");
                failures.push(seed);
            }
        }
    }
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

#[test]
fn ci_and_regression_seeds_keep_every_invariant() {
    if let Ok(seed) = std::env::var("MOLDAU_SIM_SEED") {
        let seed: u64 = seed.parse().expect("MOLDAU_SIM_SEED must be a number");
        let _alone = alone();
        let report = run(seed, &Options::for_seed(seed)).unwrap_or_else(|f| panic!("{f}"));
        for event in &report.events {
            eprintln!("  {event}");
        }
        return;
    }
    let mut seeds: Vec<(u64, Options)> = CI_SEEDS
        .iter()
        .map(|seed| (*seed, Options::for_seed(*seed).quick()))
        .collect();
    // A regression seed replays as the soak that found it ran.
    seeds.extend(
        regression_seeds()
            .into_iter()
            .map(|s| (s, Options::for_seed(s))),
    );
    run_seeds(&seeds);
}

#[test]
fn a_seed_replays_exactly() {
    // Seed 11 runs three combined nodes and a broker-only one (`Options::for_seed`).
    let _alone = alone();
    let options = Options::for_seed(11).quick();
    let first = run(11, &options).unwrap_or_else(|f| panic!("{f}"));
    let second = run(11, &options).unwrap_or_else(|f| panic!("{f}"));
    if let Some(i) = (0..first.events.len().max(second.events.len()))
        .find(|&i| first.events.get(i) != second.events.get(i))
    {
        let around =
            |events: &[String]| events[i.saturating_sub(3)..(i + 2).min(events.len())].join("\n");
        panic!(
            "the replay diverges at event {i}:\nfirst run:\n{}\nsecond run:\n{}",
            around(&first.events),
            around(&second.events)
        );
    }
    assert_eq!(first.fingerprint, second.fingerprint);
    assert!(first.faults > 0 && first.acknowledged_records > 0);
}
