//! A minimal Kafka protocol client for APIs no Rust client exposes (DescribeCluster,
//! DescribeLogDirs, OffsetForLeaderEpoch, IncrementalAlterConfigs, ...): encodes one request
//! with kafka-protocol, sends it over TCP and decodes the response.

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct WireClient {
    stream: TcpStream,
    correlation_id: i32,
}

impl WireClient {
    pub async fn connect(bootstrap: &str) -> WireClient {
        let stream = TcpStream::connect(bootstrap)
            .await
            .expect("connect to broker");
        WireClient {
            stream,
            correlation_id: 0,
        }
    }

    /// The connection, to watch what the broker does next byte by byte.
    pub fn into_raw(self) -> super::raw::RawConnection {
        super::raw::RawConnection::from_stream(self.stream)
    }

    /// Sends `request` as `api_key` v`version` and returns the decoded response.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Resp {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("moldau-wire-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api_key.request_header_version(version))
            .expect("encode header");
        request.encode(&mut body, version).expect("encode request");
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).await.expect("send request");

        let len = self.stream.read_i32().await.expect("read response length");
        let mut response = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut response)
            .await
            .expect("read response");
        let mut response = bytes::Bytes::from(response);
        let header =
            ResponseHeader::decode(&mut response, api_key.response_header_version(version))
                .expect("decode response header");
        assert_eq!(header.correlation_id, self.correlation_id);
        let decoded = Resp::decode(&mut response, version).expect("decode response");
        assert_eq!(
            response.remaining(),
            0,
            "trailing bytes after {api_key:?} response"
        );
        decoded
    }
}
