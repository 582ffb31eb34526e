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

/// A connection's halves as one stream again, for a TLS session to run over.
struct Joined {
    reader: Box<dyn ReadHalf>,
    writer: WriteHalf,
}

impl AsyncRead for Joined {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Joined {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.writer).poll_shutdown(cx)
    }
}

/// The reading half of a TLS connection. TCP's peek sees ciphertext, so peeking here
/// decrypts one byte ahead and keeps it for the next read.
struct TlsReader<S> {
    inner: tokio::io::ReadHalf<S>,
    peeked: Option<u8>,
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin> AsyncRead for TlsReader<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() > 0 {
            if let Some(byte) = self.peeked.take() {
                buf.put_slice(&[byte]);
                return Poll::Ready(Ok(()));
            }
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> ReadHalf for TlsReader<S> {
    fn poll_peek(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.peeked.is_none() {
            let mut byte = [0u8; 1];
            let mut one = ReadBuf::new(&mut byte);
            match Pin::new(&mut self.inner).poll_read(cx, &mut one) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if one.filled().is_empty() => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(())) => self.peeked = Some(byte[0]),
            }
        }
        match self.peeked {
            Some(byte) if buf.remaining() > 0 => {
                buf.put_slice(&[byte]);
                Poll::Ready(Ok(1))
            }
            _ => Poll::Ready(Ok(0)),
        }
    }
}

fn split_tls<S>(stream: S) -> Connection
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    Connection {
        reader: Box::new(TlsReader {
            inner: reader,
            peeked: None,
        }),
        writer: Box::new(writer),
    }
}

/// The server side of a TLS handshake on an accepted connection: the secured connection
/// and the client's certificate, if it sent one (verified by the acceptor's config).
pub(crate) async fn tls_accept(
    connection: Connection,
    acceptor: &tokio_rustls::TlsAcceptor,
) -> io::Result<(
    Connection,
    Option<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
)> {
    let joined = Joined {
        reader: connection.reader,
        writer: connection.writer,
    };
    let stream = acceptor.accept(joined).await?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first().cloned());
    Ok((split_tls(stream), certificate))
}

/// The client side: secures a connection to `host` (the name or address the server's
/// certificate must carry, unless the config skips that check).
pub(crate) async fn tls_connect(
    connection: Connection,
    config: Arc<tokio_rustls::rustls::ClientConfig>,
    host: &str,
) -> io::Result<Connection> {
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
    let joined = Joined {
        reader: connection.reader,
        writer: connection.writer,
    };
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, joined)
        .await?;
    Ok(split_tls(stream))
}
