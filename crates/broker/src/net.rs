//! The network seam: every listener this node binds and every connection it opens (to
//! peers, controllers, Raft voters) goes through [`Network`]. Production uses tokio's TCP;
//! the deterministic simulation (`crates/sim`) installs turmoil's simulated network with
//! [`install`] before any node starts. Connections come split into halves because that is
//! how both the request loop and the inter-broker client use them.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The reading half of a connection; peeking tells a closed peer from a pipelined request.
pub trait ReadHalf: AsyncRead + Send + Sync + Unpin + 'static {
    fn poll_peek(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>)
        -> Poll<io::Result<usize>>;
}

pub type WriteHalf = Box<dyn AsyncWrite + Send + Sync + Unpin + 'static>;

/// One established connection, by halves.
pub struct Connection {
    pub reader: Box<dyn ReadHalf>,
    pub writer: WriteHalf,
}

pub trait Listener: Send + Sync {
    fn accept(&self) -> BoxFuture<'_, io::Result<(Connection, SocketAddr)>>;
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

pub trait Network: Send + Sync + 'static {
    fn bind(&self, host: &str, port: u16) -> BoxFuture<'_, io::Result<Box<dyn Listener>>>;
    /// Connects to `host:port`.
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Connection>>;
}

static NETWORK: OnceLock<Arc<dyn Network>> = OnceLock::new();

/// Replaces tokio's TCP for this process; `Err` if a network was installed already.
pub fn install(network: Arc<dyn Network>) -> Result<(), Arc<dyn Network>> {
    NETWORK.set(network)
}

pub(crate) fn network() -> &'static dyn Network {
    NETWORK.get_or_init(|| Arc::new(TokioTcp)).as_ref()
}

/// Resolves once the peer has closed its side (or reset); never resolves while bytes wait.
pub(crate) async fn peer_closed(reader: &mut dyn ReadHalf) {
    let mut byte = [0u8; 1];
    let peeked = std::future::poll_fn(|cx| reader.poll_peek(cx, &mut ReadBuf::new(&mut byte)));
    match peeked.await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

struct TokioTcp;

impl ReadHalf for tokio::net::tcp::OwnedReadHalf {
    fn poll_peek(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        tokio::net::tcp::OwnedReadHalf::poll_peek(self, cx, buf)
    }
}

fn tokio_connection(stream: tokio::net::TcpStream) -> Connection {
    // Requests and responses are whole frames written at once: no Nagle delay.
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    Connection {
        reader: Box::new(reader),
        writer: Box::new(writer),
    }
}

impl Listener for tokio::net::TcpListener {
    fn accept(&self) -> BoxFuture<'_, io::Result<(Connection, SocketAddr)>> {
        Box::pin(async move {
            let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
            Ok((tokio_connection(stream), peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }
}

impl Network for TokioTcp {
    fn bind(&self, host: &str, port: u16) -> BoxFuture<'_, io::Result<Box<dyn Listener>>> {
        let host = host.to_string();
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
            Ok(Box::new(listener) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Connection>> {
        Box::pin(async move {
            Ok(tokio_connection(
                tokio::net::TcpStream::connect(addr).await?,
            ))
        })
    }
}
