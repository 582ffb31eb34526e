//! A hostile client: one TCP connection writing whatever bytes a test wants (broken frames,
//! lying lengths, unknown api keys) and observing whether the broker answers or closes.
//! Timeouts here only guard against hangs; no test depends on timing.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a test waits for an answer or a close before calling the broker hung.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// What the broker did after a request.
#[derive(Debug)]
pub enum Reply {
    /// One response frame (without its length prefix).
    Frame(Bytes),
    /// The broker closed the connection (EOF or reset) without a complete response.
    Closed,
}

pub struct RawConnection {
    stream: TcpStream,
}

impl RawConnection {
    pub async fn connect(bootstrap: &str) -> RawConnection {
        let stream = TcpStream::connect(bootstrap)
            .await
            .expect("connect to broker");
        RawConnection { stream }
    }

    pub fn from_stream(stream: TcpStream) -> RawConnection {
        RawConnection { stream }
    }

    /// Writes raw bytes. The broker may already have closed the connection: a failed write
    /// is then expected, and the next `reply` reports `Closed`.
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
        let _ = self.stream.flush().await;
    }

    /// Writes `body` with its 4-byte length prefix.
    pub async fn send_frame(&mut self, body: &[u8]) {
        self.send(&frame(body)).await;
    }

    /// Ends the client's side of the connection (the broker reads EOF).
    pub async fn finish_writing(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// The broker's next response frame, or `Closed`.
    pub async fn reply(&mut self) -> Reply {
        tokio::time::timeout(HANG_GUARD, self.read_reply())
            .await
            .expect("the broker neither answered nor closed the connection")
    }

    async fn read_reply(&mut self) -> Reply {
        let Ok(len) = self.stream.read_i32().await else {
            return Reply::Closed;
        };
        assert!(len >= 0, "negative response length {len}");
        let mut body = vec![0u8; len as usize];
        match self.stream.read_exact(&mut body).await {
            Ok(_) => Reply::Frame(body.into()),
            Err(_) => Reply::Closed,
        }
    }

    /// Asserts that the broker closes the connection without answering.
    pub async fn expect_closed(&mut self, what: &str) {
        match self.reply().await {
            Reply::Closed => {}
            Reply::Frame(f) => panic!(
                "{what}: expected a closed connection, got a {}-byte response",
                f.len()
            ),
        }
    }

    /// Asserts that the broker answers, and returns the response frame.
    pub async fn expect_frame(&mut self, what: &str) -> Bytes {
        match self.reply().await {
            Reply::Frame(f) => f,
            Reply::Closed => panic!("{what}: expected a response, the connection was closed"),
        }
    }
}

/// `body` with its 4-byte big-endian length prefix.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.put_i32(body.len() as i32);
    out.extend_from_slice(body);
    out
}

/// A request header written by hand (so that any key and version can be sent): v1 layout
/// (api key, api version, correlation id, nullable client id), plus the empty tagged-field
/// section of v2 when `flexible`.
pub fn raw_header(api_key: i16, api_version: i16, correlation_id: i32, flexible: bool) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_i16(api_key);
    out.put_i16(api_version);
    out.put_i32(correlation_id);
    let client_id = b"hostile";
    out.put_i16(client_id.len() as i16);
    out.extend_from_slice(client_id);
    if flexible {
        out.put_u8(0);
    }
    out
}
