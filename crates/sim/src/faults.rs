//! Fault schedules drawn from a seed: what happens to which node when, in simulated time.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The node's process dies (its runtime and every task are dropped; what it wrote to
    /// its files stays, as after kill -9) and restarts after `down`.
    Crash { node: usize, down: Duration },
    /// The node loses power: as `Crash`, and every log loses what was written after its
    /// recovery point (the last fsync, per the flush settings) but a random part, and may
    /// end in a torn write (the storage crate's crash model).
    PowerLoss { node: usize, down: Duration },
    /// Crashes whichever node is the active controller then (the quorum's leader changes
    /// mid-operation).
    CrashActiveController { down: Duration },
    /// No traffic between `a` and `b`, both ways.
    Partition {
        a: usize,
        b: usize,
        heal_after: Duration,
    },
    /// `node` cut off from every other node.
    Isolate { node: usize, heal_after: Duration },
    /// Traffic from `from` to `to` is lost; the other way still flows.
    OneWay {
        from: usize,
        to: usize,
        heal_after: Duration,
    },
    /// A bridge: `a` and `b` cannot talk, both still reach the third node.
    Bridge {
        a: usize,
        b: usize,
        heal_after: Duration,
    },
    /// Messages between every pair take up to `max` (reordering across connections).
    Latency {
        max: Duration,
        restore_after: Duration,
    },
    /// Every link of `node` holds its messages (a stall longer than session timeouts,
    /// as a long GC pause looks from outside), then delivers them.
    Stall {
        node: usize,
        release_after: Duration,
    },
    /// The wall clock steps by `delta_ms` (negative: backwards).
    ClockJump { delta_ms: i64 },
    /// Every write and sync under the node's log dir fails (EIO), half the writes torn;
    /// after `restart_after` the node is restarted (kill -9) with a working disk, as an
    /// operator would, and recovery truncates what was torn.
    DiskFailure {
        node: usize,
        restart_after: Duration,
    },
    /// Now and then the link between `a` and `b` drops what is in flight (each simulated
    /// millisecond with probability `fail_rate`); turmoil's TCP does not resend, so a
    /// connection that lost a segment stalls until a timeout gives up on it.
    LossyLink {
        a: usize,
        b: usize,
        fail_rate: f64,
        heal_after: Duration,
    },
    /// The node's appends (as leader and as follower) take up to `max` longer.
    SlowDisk {
        node: usize,
        max: Duration,
        restore_after: Duration,
    },
}

/// A fault at a simulated time.
#[derive(Clone, Debug)]
pub struct Scheduled {
    pub at: Duration,
    pub fault: Fault,
}

/// Draws a schedule for `nodes` nodes over `window` from `seed`: the process, network
/// and clock faults, with the disk faults and lossy links (drawn from a stream of their
/// own, so that adding them left every earlier seed's other faults as they were) merged in.
pub fn schedule(seed: u64, nodes: usize, start: Duration, window: Duration) -> Vec<Scheduled> {
    let mut faults = process_and_network(seed, nodes, start, window);
    faults.extend(disk_and_loss(seed, nodes, start, window));
    // Stable: a disk fault drawn for the same moment comes after the other.
    faults.sort_by_key(|s| s.at);
    faults
}

/// Disk faults and lossy links.
fn disk_and_loss(seed: u64, nodes: usize, start: Duration, window: Duration) -> Vec<Scheduled> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xd15c_0000_fa17);
    let mut at = start;
    let mut faults = Vec::new();
    loop {
        at += Duration::from_millis(rng.random_range(8_000..30_000));
        if at >= start + window {
            return faults;
        }
        let node = rng.random_range(0..nodes);
        let fault = match rng.random_range(0..3) {
            0 => Fault::DiskFailure {
                node,
                restart_after: Duration::from_millis(rng.random_range(500..6_000)),
            },
            1 => Fault::LossyLink {
                a: node,
                b: (node + rng.random_range(1..nodes)) % nodes,
                fail_rate: rng.random_range(0.0002..0.005),
                heal_after: Duration::from_millis(rng.random_range(2_000..15_000)),
            },
            _ => Fault::SlowDisk {
                node,
                max: Duration::from_millis(rng.random_range(20..1_500)),
                restore_after: Duration::from_millis(rng.random_range(2_000..15_000)),
            },
        };
        faults.push(Scheduled { at, fault });
    }
}

fn process_and_network(
    seed: u64,
    nodes: usize,
    start: Duration,
    window: Duration,
) -> Vec<Scheduled> {
    // Not the OS randomness stream: the schedule must not depend on how much randomness
    // the nodes consumed.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5ca1_ab1e_fa17_0000);
    let mut at = start;
    let mut faults = Vec::new();
    let secs = |rng: &mut StdRng, lo: u64, hi: u64| {
        Duration::from_millis(rng.random_range(lo * 1000..hi * 1000))
    };
    loop {
        at += secs(&mut rng, 2, 9);
        if at >= start + window {
            return faults;
        }
        let node = rng.random_range(0..nodes);
        let other = (node + rng.random_range(1..nodes)) % nodes;
        let fault = match rng.random_range(0..11) {
            0 => Fault::Crash {
                node,
                down: secs(&mut rng, 1, 8),
            },
            1 | 10 => Fault::PowerLoss {
                node,
                down: secs(&mut rng, 1, 8),
            },
            2 => Fault::CrashActiveController {
                down: secs(&mut rng, 1, 6),
            },
            3 => Fault::Partition {
                a: node,
                b: other,
                heal_after: secs(&mut rng, 1, 8),
            },
            4 => Fault::Isolate {
                node,
                heal_after: secs(&mut rng, 1, 8),
            },
            5 => Fault::OneWay {
                from: node,
                to: other,
                heal_after: secs(&mut rng, 1, 8),
            },
            6 => Fault::Bridge {
                a: node,
                b: other,
                heal_after: secs(&mut rng, 1, 8),
            },
            7 => Fault::Latency {
                max: Duration::from_millis(rng.random_range(5..300)),
                restore_after: secs(&mut rng, 2, 10),
            },
            8 => Fault::Stall {
                node,
                release_after: secs(&mut rng, 2, 5),
            },
            _ => Fault::ClockJump {
                delta_ms: rng.random_range(-120_000..600_000),
            },
        };
        faults.push(Scheduled { at, fault });
    }
}
