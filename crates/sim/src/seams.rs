//! The simulated side of Moldau's seams (ARCHITECTURE.md, "Simulation seams"): turmoil's
//! network for the broker's listeners and connections, turmoil's clock (plus the
//! schedule's clock jumps) for the wall clock, host tasks for the log manager's periodic
//! work, and a seeded stream for the process's OS randomness.

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
    });
    let _ = moldau_broker::net::install(Arc::new(TurmoilNetwork));
}

thread_local! {
    /// The wall clock's offset from turmoil's, moved by clock jumps (per run thread).
    static CLOCK_SKEW_MS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
    static OS_RANDOM: RefCell<Option<StdRng>> = const { RefCell::new(None) };
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
