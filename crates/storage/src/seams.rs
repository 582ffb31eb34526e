//! Where Moldau meets its environment's clock and threads, shared by every crate above
//! this one. Production leaves them as they are: the system clock and OS threads. The
//! deterministic simulation (`crates/sim`) installs a [`Simulation`] once per process,
//! before any node starts; from then on the wall clock is the simulated one and periodic
//! background work runs as tasks of the simulated host that started it, so one seed
//! decides every interleaving, and the simulation's disk faults (failed and torn writes,
//! failed syncs, slow disks) reach the log's files here. The code paths are the same
//! either way: only these functions look at the seam.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
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
    /// What the disk holding `path` does with a write of `bytes` bytes (0: a sync).
    pub disk_fault: fn(path: &Path, bytes: usize) -> Option<DiskFault>,
    /// How much longer than usual disk work under `dir` takes now (a slow disk).
    pub disk_delay: fn(dir: &Path) -> Duration,
}

/// A write or sync the simulated disk does not carry out as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFault {
    /// Fails with EIO before any byte reaches the file.
    Fail,
    /// The first `written` bytes reach the file, then the write fails (a torn write).
    Torn { written: usize },
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

fn injected(path: &Path, bytes: usize) -> Option<DiskFault> {
    SIMULATION
        .get()
        .and_then(|simulation| (simulation.disk_fault)(path, bytes))
}

fn disk_error(path: &Path) -> io::Error {
    io::Error::other(format!(
        "input/output error (simulated) on {}",
        path.display()
    ))
}

/// Carries out `write` of `buf` to the file at `path`, as the simulated disk decides: in
/// full, not at all, or torn (a prefix written, then an error).
fn write_faulted(
    path: &Path,
    buf: &[u8],
    write: impl FnOnce(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    match injected(path, buf.len()) {
        None => write(buf),
        Some(DiskFault::Fail) => Err(disk_error(path)),
        Some(DiskFault::Torn { written }) => {
            write(&buf[..written.min(buf.len())])?;
            Err(disk_error(path))
        }
    }
}

/// Writes all of `buf` at `offset` of `file`, which lives at `path`: every data write of
/// the log (segments, indexes, checkpoints) goes through here or [`write_all`].
pub(crate) fn write_all_at(file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
    write_faulted(path, buf, |bytes| file.write_all_at(bytes, offset))
}

/// Writes all of `buf` at the file's cursor (a new file being filled).
pub(crate) fn write_all(file: &mut File, path: &Path, buf: &[u8]) -> io::Result<()> {
    use std::io::Write;
    write_faulted(path, buf, |bytes| file.write_all(bytes))
}

/// fsync (data and metadata) of `file`, at `path`.
pub(crate) fn sync_all(file: &File, path: &Path) -> io::Result<()> {
    match injected(path, 0) {
        None => file.sync_all(),
        Some(_) => Err(disk_error(path)),
    }
}

/// fdatasync of `file`, at `path`.
pub(crate) fn sync_data(file: &File, path: &Path) -> io::Result<()> {
    match injected(path, 0) {
        None => file.sync_data(),
        Some(_) => Err(disk_error(path)),
    }
}

/// How much longer disk work under `dir` takes now: always zero in production, where the
/// disk's own speed is what it is; the simulation's slow-disk fault sets it.
pub fn disk_delay(dir: &Path) -> Duration {
    SIMULATION
        .get()
        .map_or(Duration::ZERO, |simulation| (simulation.disk_delay)(dir))
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
