//! A minimal Kafka protocol client for APIs no Rust client exposes (DescribeCluster,
//! DescribeLogDirs, OffsetForLeaderEpoch, IncrementalAlterConfigs, ...): encodes one request
//! with kafka-protocol, sends it over TCP and decodes the response.

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use std::sync::Arc;

#[allow(deprecated)] // ring: the provider the broker uses (see moldau-security's tls.rs)
fn ring_provider() -> tokio_rustls::rustls::crypto::CryptoProvider {
    tokio_rustls::rustls::crypto::ring::default_provider()
}

/// A plaintext or TLS connection.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for S {}

pub struct WireClient {
    tls: Option<Box<dyn Stream>>,
    /// The plain TCP stream, kept for `into_raw` (plaintext connections only).
    tcp: Option<TcpStream>,
    correlation_id: i32,
}

impl WireClient {
    pub async fn connect(bootstrap: &str) -> WireClient {
        let stream = TcpStream::connect(bootstrap)
            .await
            .expect("connect to broker");
        WireClient {
            tls: None,
            tcp: Some(stream),
            correlation_id: 0,
        }
    }

    /// A TLS connection trusting the CA certificates of `ca_pem` (host name checked
    /// against the address's host).
    pub async fn connect_tls(bootstrap: &str, ca_pem: &str) -> WireClient {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let config =
            tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(ring_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        let tcp = TcpStream::connect(bootstrap)
            .await
            .expect("connect to broker");
        let host = bootstrap.rsplit_once(':').expect("host:port").0.to_string();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from(host).expect("server name"), tcp)
            .await
            .expect("TLS handshake");
        WireClient {
            tls: Some(Box::new(stream)),
            tcp: None,
            correlation_id: 0,
        }
    }

    fn io(&mut self) -> &mut (dyn Stream + '_) {
        match (&mut self.tcp, &mut self.tls) {
            (Some(tcp), _) => tcp,
            (None, Some(tls)) => tls.as_mut(),
            (None, None) => unreachable!("a client has a stream"),
        }
    }

    /// The connection, to watch what the broker does next byte by byte.
    pub fn into_raw(self) -> super::raw::RawConnection {
        super::raw::RawConnection::from_stream(self.tcp.expect("a plaintext connection"))
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
        self.io().write_all(&frame).await.expect("send request");

        let len = self.io().read_i32().await.expect("read response length");
        let mut response = vec![0u8; len as usize];
        self.io()
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

impl WireClient {
    /// A plaintext connection authenticated with SASL PLAIN (SaslHandshake v1, then
    /// SaslAuthenticate v2 with the token `\0user\0password`), for a SASL_PLAINTEXT
    /// listener. Panics when the broker refuses the credentials.
    pub async fn connect_sasl_plain(bootstrap: &str, user: &str, password: &str) -> WireClient {
        use kafka_protocol::messages::{
            SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
            SaslHandshakeResponse,
        };
        let mut client = WireClient::connect(bootstrap).await;
        let handshake: SaslHandshakeResponse = client
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
            )
            .await;
        assert_eq!(handshake.error_code, 0, "SASL handshake: {handshake:?}");
        let token = bytes::Bytes::from(format!("\0{user}\0{password}").into_bytes());
        let authenticated: SaslAuthenticateResponse = client
            .call(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default().with_auth_bytes(token),
            )
            .await;
        assert_eq!(
            authenticated.error_code, 0,
            "SASL PLAIN as {user}: {:?}",
            authenticated.error_message
        );
        client
    }
}
