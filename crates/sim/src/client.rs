//! Simulated clients' connections: Kafka framing over turmoil TCP, every message encoded
//! and decoded by the `kafka-protocol` crate, every round trip bounded in (simulated) time.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Larger answers mean a bug (or not a Kafka broker): never allocate what the wire says.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug)]
pub enum ClientError {
    /// Not connected, the connection broke, or no answer in time: the outcome is unknown.
    Unreachable(String),
    /// The answer did not decode.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable(m) => write!(f, "unreachable: {m}"),
            ClientError::Protocol(m) => write!(f, "protocol: {m}"),
        }
    }
}

/// One connection to one node's client listener.
pub struct KafkaConnection {
    addr: String,
    stream: turmoil::net::TcpStream,
    correlation_id: i32,
    timeout: Duration,
}

impl KafkaConnection {
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Self, ClientError> {
        let stream = tokio::time::timeout(timeout, turmoil::net::TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Unreachable(format!("connect to {addr} timed out")))?
            .map_err(|e| ClientError::Unreachable(format!("connect to {addr}: {e}")))?;
        Ok(KafkaConnection {
            addr: addr.to_string(),
            stream,
            correlation_id: 0,
            timeout,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` at `version` and waits for its answer. Any error leaves the
    /// connection unusable (the caller drops it).
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("moldau-sim")));
        let mut body = BytesMut::new();
        body.put_i32(0);
        let encoded = header
            .encode(&mut body, R::header_version(version))
            .and_then(|()| request.encode(&mut body, version));
        encoded.map_err(|e| ClientError::Protocol(format!("encode: {e}")))?;
        let size = (body.len() - 4) as i32;
        body[..4].copy_from_slice(&size.to_be_bytes());
        let timeout = self.timeout;
        let addr = self.addr.clone();
        let exchange = async {
            self.stream.write_all(&body).await?;
            let size = self.stream.read_i32().await?;
            if size < 0 || size as usize > MAX_RESPONSE_BYTES {
                return Err(std::io::Error::other(format!("answer of {size} bytes")));
            }
            let mut answer = vec![0u8; size as usize];
            self.stream.read_exact(&mut answer).await?;
            Ok(Bytes::from(answer))
        };
        let mut answer = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Unreachable(format!("{:?} to {addr} timed out", R::KEY)))?
            .map_err(|e| ClientError::Unreachable(format!("{:?} to {addr}: {e}", R::KEY)))?;
        let response_header_version = R::Response::header_version(version);
        let header = ResponseHeader::decode(&mut answer, response_header_version)
            .map_err(|e| ClientError::Protocol(format!("response header: {e}")))?;
        if header.correlation_id != self.correlation_id {
            return Err(ClientError::Protocol(format!(
                "correlation id {} for request {}",
                header.correlation_id, self.correlation_id
            )));
        }
        let response = R::Response::decode(&mut answer, version)
            .map_err(|e| ClientError::Protocol(format!("{:?} response: {e}", R::KEY)))?;
        if answer.has_remaining() {
            return Err(ClientError::Protocol(format!(
                "{} bytes after the {:?} response",
                answer.remaining(),
                R::KEY
            )));
        }
        Ok(response)
    }
}
