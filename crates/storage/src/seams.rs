//! Where Moldau meets its environment's clock and threads, shared by every crate above
//! this one. Production leaves them as they are: the system clock and OS threads. The
//! deterministic simulation (`crates/sim`) installs a [`Simulation`] once per process,
//! before any node starts; from then on the wall clock is the simulated one and periodic
//! background work runs as tasks of the simulated host that started it, so one seed
//! decides every interleaving. The code paths are the same either way: only these
//! functions look at the seam.

use std::sync::OnceLock;
use std::time::Duration;

/// A periodic task: runs once per call, returns `false` once it should stop for good.
pub type PeriodicTask = Box<dyn FnMut() -> bool + Send>;

/// What the simulation puts in place of the environment.
pub struct Simulation {
    /// Wall-clock milliseconds since the epoch, as the calling host sees them.
    pub now_ms: fn() -> i64,
    /// Starts `task` every `interval` on the calling host (instead of an OS thread).
    pub spawn_periodic: fn(name: &str, interval: Duration, task: PeriodicTask),
}

static SIMULATION: OnceLock<Simulation> = OnceLock::new();

/// Switches this process to simulated seams; `Err` if they were installed already.
pub fn install_simulation(simulation: Simulation) -> Result<(), Simulation> {
    SIMULATION.set(simulation)
}

/// Whether this process runs under the simulation (blocking work then runs inline:
/// the simulator drives every host from one thread).
pub fn simulated() -> bool {
    SIMULATION.get().is_some()
}

/// Wall-clock milliseconds since the epoch, as Kafka timestamps are.
pub fn now_ms() -> i64 {
    match SIMULATION.get() {
        Some(simulation) => (simulation.now_ms)(),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    }
}

/// Runs `task` every `interval` until it returns `false`: on its own OS thread named
/// `name` in production (the handle is returned to be joined), as a task of the calling
/// simulated host under the simulation (`None`: it ends with its host).
pub(crate) fn spawn_periodic(
    name: &str,
    interval: Duration,
    mut task: PeriodicTask,
    stop: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
) -> Option<std::thread::JoinHandle<()>> {
    if let Some(simulation) = SIMULATION.get() {
        let stopped = stop.clone();
        (simulation.spawn_periodic)(
            name,
            interval,
            Box::new(move || !*crate::log::lock(&stopped.0) && task()),
        );
        return None;
    }
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || loop {
            let (flag, cvar) = &*stop;
            let stopped = cvar
                .wait_timeout_while(crate::log::lock(flag), interval, |s| !*s)
                .map(|(g, _)| *g);
            if stopped.unwrap_or(true) || !task() {
                return;
            }
        })
        .expect("spawn log manager thread");
    Some(handle)
}
