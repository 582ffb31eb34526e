//! Listeners and connections: bounded length-prefixed frames, one request at a time per
//! connection, responses in request order.
//!
//! Like Kafka's processor, a connection handles its requests one after another: clients may
//! pipeline (the bytes wait in the socket buffer), responses keep request order, and a
//! producer's batches to one partition are appended in the order sent. Responses to
//! pipelined requests are flushed together.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::api::{self, Outcome};
use crate::state::BrokerState;

const SOCKET_BUFFER_BYTES: usize = 64 * 1024;
/// Kafka's `connections.max.idle.ms` default. A client that sends nothing for this long,
/// between requests or halfway through one, is disconnected: a stalled or hostile peer
/// cannot hold a connection (and its frame buffer) forever.
const CONNECTIONS_MAX_IDLE: Duration = Duration::from_millis(600_000);

pub async fn accept_loop(
    state: Arc<BrokerState>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(state.clone(), stream, peer, shutdown.clone()));
                }
                // Out of file descriptors and the like: keep serving the open connections.
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    // Connections see the same shutdown signal and stop after their current request.
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    state: Arc<BrokerState>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(SOCKET_BUFFER_BYTES, read_half);
    let mut writer = BufWriter::with_capacity(SOCKET_BUFFER_BYTES, write_half);
    let max_frame_bytes = state.config.socket_request_max_bytes;
    loop {
        let size = tokio::select! {
            size = tokio::time::timeout(CONNECTIONS_MAX_IDLE, reader.read_i32()) => match size {
                Ok(Ok(size)) => size,
                Ok(Err(_)) => return, // closed by the client
                Err(_) => {
                    tracing::debug!(%peer, "closing idle connection");
                    return;
                }
            },
            _ = shutdown.changed() => return,
        };
        if size < 0 || size > max_frame_bytes {
            tracing::warn!(%peer, size, "closing connection: frame size outside 0..={max_frame_bytes} (socket.request.max.bytes)");
            return;
        }
        let mut frame = BytesMut::zeroed(size as usize);
        if !read_frame_body(&mut reader, &mut frame).await {
            tracing::debug!(%peer, "closing connection: frame of {size} bytes cut short");
            return;
        }
        match api::handle_frame(&state, frame.freeze(), peer).await {
            Outcome::Respond(response) => {
                let written = async {
                    writer.write_u32(response.len() as u32).await?;
                    writer.write_all(&response).await
                };
                if written.await.is_err() {
                    return;
                }
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                tracing::debug!(%peer, "closing connection: {reason}");
                let _ = writer.flush().await;
                return;
            }
        }
        if !has_complete_frame(reader.buffer()) && writer.flush().await.is_err() {
            return;
        }
    }
}

/// Fills `frame`; false if the client closes or goes idle before it is complete.
async fn read_frame_body<R: AsyncRead + Unpin>(reader: &mut R, frame: &mut [u8]) -> bool {
    let mut filled = 0;
    while filled < frame.len() {
        match tokio::time::timeout(CONNECTIONS_MAX_IDLE, reader.read(&mut frame[filled..])).await {
            Ok(Ok(read)) if read > 0 => filled += read,
            _ => return false,
        }
    }
    true
}

/// Whether the bytes already read hold another whole request (then its response is written
/// together with this one).
fn has_complete_frame(buffered: &[u8]) -> bool {
    if buffered.len() < 4 {
        return false;
    }
    let size = i32::from_be_bytes([buffered[0], buffered[1], buffered[2], buffered[3]]);
    size >= 0 && buffered.len() >= 4 + size as usize
}
