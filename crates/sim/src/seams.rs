//! The simulated side of Moldau's seams (ARCHITECTURE.md, "Simulation seams"): turmoil's
//! network for the broker's listeners and connections, turmoil's clock (plus the
//! schedule's clock jumps) for the wall clock, host tasks for the log manager's periodic
//! work, a seeded stream for the process's OS randomness, and failing or slow disks for
//! the log's writes.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use moldau_broker::net::{BoxFuture, Connection, Listener, Network, ReadHalf};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use tokio::io::ReadBuf;

/// Installs the simulated seams for this process (once; later calls do nothing).
pub fn install() {
    let _ = moldau_storage::seams::install_simulation(moldau_storage::seams::Simulation {
        now_ms: simulated_now_ms,
        spawn_periodic,
        disk_fault,
        disk_delay,
    });
    let _ = moldau_broker::net::install(Arc::new(TurmoilNetwork));
}

thread_local! {
    /// The wall clock's offset from turmoil's, moved by clock jumps (per run thread).
    static CLOCK_SKEW_MS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
    static OS_RANDOM: RefCell<Option<StdRng>> = const { RefCell::new(None) };
    /// The disk faults in force (per run thread): failing and slow log dirs.
    static DISKS: RefCell<Disks> = RefCell::new(Disks::default());
}

#[derive(Default)]
struct Disks {
    /// Log dirs whose writes and syncs fail.
    failing: Vec<std::path::PathBuf>,
    /// Log dirs whose appends take up to this much longer.
    slow: Vec<(std::path::PathBuf, Duration)>,
    /// Decides torn-write lengths and delays (seeded per run).
    rng: Option<StdRng>,
}

/// Clears the disk faults and seeds their draws for a run of `seed`.
pub(crate) fn reset_disks(seed: u64) {
    DISKS.with(|disks| {
        *disks.borrow_mut() = Disks {
            rng: Some(StdRng::seed_from_u64(seed ^ 0xd1_5c_fa_17)),
            ..Disks::default()
        }
    });
}

/// From now on every write or sync under `dir` fails with EIO; half the writes are torn
/// (a random prefix reaches the file first).
pub fn fail_disk(dir: &std::path::Path) {
    DISKS.with(|disks| disks.borrow_mut().failing.push(dir.to_path_buf()));
}

/// Appends under `dir` take up to `max` longer (drawn per append).
pub fn slow_down_disk(dir: &std::path::Path, max: Duration) {
    DISKS.with(|disks| disks.borrow_mut().slow.push((dir.to_path_buf(), max)));
}

/// The disk under `dir` works normally again.
pub fn repair_disk(dir: &std::path::Path) {
    DISKS.with(|disks| {
        let mut disks = disks.borrow_mut();
        disks.failing.retain(|d| d != dir);
        disks.slow.retain(|(d, _)| d != dir);
    });
}

fn disk_fault(path: &std::path::Path, bytes: usize) -> Option<moldau_storage::seams::DiskFault> {
    use moldau_storage::seams::DiskFault;
    DISKS.with(|disks| {
        let mut disks = disks.borrow_mut();
        if !disks.failing.iter().any(|dir| path.starts_with(dir)) {
            return None;
        }
        let rng = disks.rng.as_mut()?;
        if bytes > 0 && rand::Rng::random_bool(rng, 0.5) {
            let written = rand::Rng::random_range(rng, 0..bytes);
            return Some(DiskFault::Torn { written });
        }
        Some(DiskFault::Fail)
    })
}

fn disk_delay(dir: &std::path::Path) -> Duration {
    DISKS
        .with(|disks| {
            let mut disks = disks.borrow_mut();
            let max = disks
                .slow
                .iter()
                .find(|(slow, _)| dir.starts_with(slow))
                .map(|(_, max)| *max)?;
            let rng = disks.rng.as_mut()?;
            Some(Duration::from_millis(rand::Rng::random_range(
                rng,
                0..=max.as_millis() as u64,
            )))
        })
        .unwrap_or(Duration::ZERO)
}

/// A process-wide fallback for threads that were never seeded (none in a simulation run).
static UNSEEDED: AtomicU64 = AtomicU64::new(0x5eed);

/// Moves this run's wall clock by `delta_ms` (negative: backwards, as an NTP step).
pub fn jump_clock(delta_ms: i64) {
    CLOCK_SKEW_MS.with(|skew| skew.set(skew.get() + delta_ms));
}

pub(crate) fn reset_clock() {
    CLOCK_SKEW_MS.with(|skew| skew.set(0));
}

fn simulated_now_ms() -> i64 {
    let skew = CLOCK_SKEW_MS.with(|skew| skew.get());
    match turmoil::since_epoch() {
        Some(since) => since.as_millis() as i64 + skew,
        // Outside a host (the harness between steps): the simulation's start.
        None => skew,
    }
}

fn spawn_periodic(name: &str, interval: Duration, mut task: moldau_storage::seams::PeriodicTask) {
    let name = name.to_string();
    tokio::spawn(async move {
        tracing::trace!(task = %name, "periodic log task on the simulated host");
        loop {
            tokio::time::sleep(interval).await;
            if !task() {
                return;
            }
        }
    });
}

/// Seeds this thread's OS randomness: every `getrandom` call on it (std's hash map keys,
/// uuids, tokio's and openraft's rngs) draws from this seed from now on.
pub fn seed_os_randomness(seed: u64) {
    OS_RANDOM.with(|rng| *rng.borrow_mut() = Some(StdRng::seed_from_u64(seed)));
}

/// Fills `buf` from this thread's seeded stream (see [`crate::deterministic_os_randomness`]).
pub fn fill_os_randomness(buf: &mut [u8]) {
    let seeded = OS_RANDOM.with(|rng| match rng.try_borrow_mut() {
        Ok(mut rng) => match rng.as_mut() {
            Some(rng) => {
                rng.fill_bytes(buf);
                true
            }
            None => false,
        },
        Err(_) => false,
    });
    if !seeded {
        let state = UNSEEDED.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        StdRng::seed_from_u64(state).fill_bytes(buf);
    }
}

/// Replaces the C library's `getrandom` in the executable that invokes it (a test or the
/// `moldau-sim` binary) with [`fill_os_randomness`]: std, uuid, tokio and openraft all
/// take their randomness from there, so one seed decides hash-map order, ids and
/// election jitter. Invoke it once, at the top level of the executable's crate.
#[macro_export]
macro_rules! deterministic_os_randomness {
    () => {
        /// # Safety
        /// Called by the C library's contract: `buf` is valid for `len` bytes.
        #[no_mangle]
        pub unsafe extern "C" fn getrandom(buf: *mut u8, len: usize, _flags: u32) -> isize {
            let bytes = unsafe { std::slice::from_raw_parts_mut(buf, len) };
            $crate::seams::fill_os_randomness(bytes);
            len as isize
        }
    };
}

struct TurmoilNetwork;

/// turmoil's reading half, as the broker's seam wants it.
struct TurmoilReadHalf(turmoil::net::tcp::OwnedReadHalf);

impl tokio::io::AsyncRead for TurmoilReadHalf {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl ReadHalf for TurmoilReadHalf {
    fn poll_peek(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_peek(cx, buf)
    }
}

fn connection(stream: turmoil::net::TcpStream) -> Connection {
    let (reader, writer) = stream.into_split();
    Connection {
        reader: Box::new(TurmoilReadHalf(reader)),
        writer: Box::new(writer),
    }
}

struct TurmoilListener(turmoil::net::TcpListener);

impl Listener for TurmoilListener {
    fn accept(&self) -> BoxFuture<'_, io::Result<(Connection, SocketAddr)>> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            Ok((connection(stream), peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Network for TurmoilNetwork {
    fn bind(&self, host: &str, port: u16) -> BoxFuture<'_, io::Result<Box<dyn Listener>>> {
        let host = host.to_string();
        Box::pin(async move {
            let listener = turmoil::net::TcpListener::bind((host.as_str(), port)).await?;
            Ok(Box::new(TurmoilListener(listener)) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Connection>> {
        Box::pin(async move { Ok(connection(turmoil::net::TcpStream::connect(addr).await?)) })
    }
}
