//! One TCP connection to one broker: framing, correlation ids and per-API version negotiation,
//! over TLS and after a SASL login when [`ClientSecurity`] says so.
//!
//! Requests are strictly sequential (one in flight), which keeps correlation trivial and is
//! all the CLI needs. Any I/O failure or timeout leaves the stream at an unknown position, so
//! the connection then refuses further calls instead of misreading the next response.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::security::{scram_mechanism, ClientSecurity, SaslLogin};
use super::ClientError;
use crate::security::scram::ClientExchange;

/// Largest response frame accepted; anything bigger is treated as a corrupt stream.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// UNSUPPORTED_VERSION: the broker's answer to an ApiVersions version it does not know.
const UNSUPPORTED_VERSION: i16 = 35;

/// The version range of each API this client implements (the code building requests and
/// reading responses knows every version in the range). ApiVersions is negotiated separately.
const IMPLEMENTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::OffsetFetch, 2, 9),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// The socket, plain or TLS; [`open_stream`] makes one as [`ClientSecurity`] says. Public so
/// that other Kafka-protocol clients (the connect worker's group membership) share the
/// connect-and-handshake code instead of growing their own.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens a TCP connection to `addr` (`host:port`) and, when `security` has TLS settings, does
/// the TLS handshake (the server name taken from `addr`); `timeout` bounds each step. Returns
/// the stream and the socket address connected to. No SASL: that is a Kafka exchange on top.
pub async fn open_stream(
    addr: &str,
    timeout: Duration,
    security: &ClientSecurity,
) -> Result<(Stream, SocketAddr), ClientError> {
    let connect_err = |source| ClientError::Connect {
        addr: addr.to_string(),
        source,
    };
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(connect_err(e)),
        Err(_) => {
            return Err(connect_err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("timed out after {} ms", timeout.as_millis()),
            )))
        }
    };
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().map_err(connect_err)?;
    let stream = match &security.tls {
        None => Stream::Plain(stream),
        Some(config) => {
            let name = ClientSecurity::server_name(addr)?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
                Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                Ok(Err(e)) => {
                    return Err(ClientError::Connect {
                        addr: addr.to_string(),
                        source: std::io::Error::new(e.kind(), format!("TLS handshake failed: {e}")),
                    })
                }
                Err(_) => {
                    return Err(connect_err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "TLS handshake timed out",
                    )))
                }
            }
        }
    };
    Ok((stream, peer))
}

/// A connection to one broker with the API versions agreed with it.
pub struct Connection {
    addr: String,
    peer: SocketAddr,
    stream: Stream,
    timeout: Duration,
    next_correlation_id: i32,
    versions: HashMap<i16, i16>,
    broken: bool,
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates API versions. `timeout` bounds the
    /// connect and every later request/response round trip.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Self, ClientError> {
        Self::connect_with(addr, timeout, &ClientSecurity::default()).await
    }

    /// [`Connection::connect`] with TLS and a SASL login as `security` says.
    pub async fn connect_with(
        addr: &str,
        timeout: Duration,
        security: &ClientSecurity,
    ) -> Result<Self, ClientError> {
        let (stream, peer) = open_stream(addr, timeout, security).await?;
        let mut conn = Connection {
            addr: addr.to_string(),
            peer,
            stream,
            timeout,
            next_correlation_id: 0,
            versions: HashMap::new(),
            broken: false,
        };
        conn.negotiate().await?;
        if let Some(login) = &security.sasl {
            conn.login(login).await?;
        }
        Ok(conn)
    }

    /// SaslHandshake v1, then SaslAuthenticate rounds: PLAIN in one, SCRAM in two (with the
    /// server's signature checked).
    async fn login(&mut self, login: &SaslLogin) -> Result<(), ClientError> {
        let addr = self.addr.clone();
        let refused = move |why: String| {
            ClientError::Other(format!(
                "SASL {} login as {:?} at {addr} failed: {why}",
                login.mechanism, login.username
            ))
        };
        let resp: SaslHandshakeResponse = self
            .call(
                SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_string(login.mechanism.clone())),
            )
            .await?;
        if resp.error_code != 0 {
            let offered: Vec<String> = resp.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(refused(format!(
                "the broker offers {offered:?} (error {})",
                resp.error_code
            )));
        }
        match scram_mechanism(&login.mechanism) {
            None => {
                let token = format!("\0{}\0{}", login.username, login.password);
                self.authenticate(token.into_bytes(), &refused).await?;
            }
            Some(mechanism) => {
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let mut scram =
                    ClientExchange::new(mechanism, &login.username, &login.password, &nonce);
                let server_first = self.authenticate(scram.client_first(), &refused).await?;
                let client_final = scram
                    .client_final(&server_first)
                    .map_err(|e| refused(e.to_string()))?;
                let server_final = self.authenticate(client_final, &refused).await?;
                scram
                    .server_final(&server_final)
                    .map_err(|e| refused(e.to_string()))?;
            }
        }
        Ok(())
    }

    async fn authenticate(
        &mut self,
        token: Vec<u8>,
        refused: &impl Fn(String) -> ClientError,
    ) -> Result<Bytes, ClientError> {
        let resp: SaslAuthenticateResponse = self
            .call(SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)))
            .await?;
        if resp.error_code != 0 {
            return Err(refused(
                resp.error_message
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| format!("error {}", resp.error_code)),
            ));
        }
        Ok(resp.auth_bytes)
    }

    /// The `host:port` this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The socket address actually connected to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The version of `api` that requests on this connection use.
    pub fn version(&self, api: ApiKey) -> Result<i16, ClientError> {
        self.versions
            .get(&(api as i16))
            .copied()
            .ok_or_else(|| ClientError::Unsupported {
                addr: self.addr.clone(),
                api,
            })
    }

    /// Sends `req` at the negotiated version and returns the broker's response.
    pub async fn call<R: Request>(&mut self, req: R) -> Result<R::Response, ClientError> {
        let api = api_key::<R>()?;
        let version = self.version(api)?;
        let body = self.exchange(api, &req, version, true).await?;
        self.decode_body::<R::Response>(body, version)
    }

    /// Sends `req` and does not wait for an answer: for requests the broker never answers
    /// (Produce with acks=0).
    pub async fn send<R: Request>(&mut self, req: R) -> Result<(), ClientError> {
        let api = api_key::<R>()?;
        let version = self.version(api)?;
        self.exchange(api, &req, version, false).await?;
        Ok(())
    }

    /// ApiVersions v3 (falling back to v0 if the broker does not know v3), then picks, per API,
    /// the highest version both sides implement.
    async fn negotiate(&mut self) -> Result<(), ClientError> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("datasync-broker-cli"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = 3;
        let mut body = self
            .exchange(ApiKey::ApiVersions, &req, version, true)
            .await?;
        if body.len() >= 2 && (&body[..2]).get_i16() == UNSUPPORTED_VERSION {
            version = 0;
            body = self
                .exchange(ApiKey::ApiVersions, &ApiVersionsRequest::default(), 0, true)
                .await?;
        }
        let resp: ApiVersionsResponse = self.decode_body(body, version)?;
        super::check(
            resp.error_code,
            || format!("ApiVersions from {}", self.addr),
            None,
        )?;
        for &(api, min, max) in IMPLEMENTED {
            let Some(theirs) = resp.api_keys.iter().find(|k| k.api_key == api as i16) else {
                continue;
            };
            let lo = min.max(theirs.min_version);
            let hi = max.min(theirs.max_version);
            if lo <= hi {
                self.versions.insert(api as i16, hi);
            }
        }
        Ok(())
    }

    fn decode_body<T: Decodable>(&self, mut body: Bytes, version: i16) -> Result<T, ClientError> {
        T::decode(&mut body, version).map_err(|e| ClientError::Malformed {
            addr: self.addr.clone(),
            detail: format!("{e:#}"),
        })
    }

    /// Writes one request frame and, if `expect_response`, reads the matching response frame
    /// and returns its body (after the response header).
    async fn exchange<R: Encodable + HeaderVersion>(
        &mut self,
        api: ApiKey,
        req: &R,
        version: i16,
        expect_response: bool,
    ) -> Result<Bytes, ClientError> {
        if self.broken {
            return Err(ClientError::Broken(self.addr.clone()));
        }
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_frame(api, req, version, correlation_id)
            .map_err(|detail| ClientError::Encode { api, detail })?;
        // Until the exchange completes the stream position is unknown.
        self.broken = true;
        let timeout = self.timeout;
        let io = async {
            self.stream.write_all(&frame).await?;
            if !expect_response {
                return Ok(None);
            }
            let len = self.stream.read_i32().await?;
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= MAX_RESPONSE_BYTES)
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("response frame length {len} out of range"),
                    )
                })?;
            let mut buf = vec![0u8; len];
            self.stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(Some(Bytes::from(buf)))
        };
        let frame = match tokio::time::timeout(timeout, io).await {
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr: self.addr.clone(),
                    timeout_ms: timeout.as_millis(),
                })
            }
            Ok(Err(source)) => {
                return Err(ClientError::Io {
                    addr: self.addr.clone(),
                    source,
                })
            }
            Ok(Ok(None)) => {
                self.broken = false;
                return Ok(Bytes::new());
            }
            Ok(Ok(Some(frame))) => frame,
        };
        let mut frame = frame;
        let header_version = api.response_header_version(version);
        let header = ResponseHeader::decode(&mut frame, header_version).map_err(|e| {
            ClientError::Malformed {
                addr: self.addr.clone(),
                detail: format!("response header: {e:#}"),
            }
        })?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::Malformed {
                addr: self.addr.clone(),
                detail: format!(
                    "correlation id {} where {correlation_id} was expected",
                    header.correlation_id
                ),
            });
        }
        self.broken = false;
        Ok(frame)
    }
}

fn api_key<R: Request>() -> Result<ApiKey, ClientError> {
    ApiKey::try_from(R::KEY).map_err(|_| ClientError::Other(format!("unknown API key {}", R::KEY)))
}

/// A request frame: 4-byte length, request header, body.
fn encode_frame<R: Encodable + HeaderVersion>(
    api: ApiKey,
    req: &R,
    version: i16,
    correlation_id: i32,
) -> Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("datasync-cli")));
    let header_version = R::header_version(version);
    let size = header
        .compute_size(header_version)
        .and_then(|h| Ok(h + req.compute_size(version)?))
        .map_err(|e| format!("{e:#}"))?;
    let len = u32::try_from(size).map_err(|_| format!("request of {size} bytes is too large"))?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_u32(len);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| format!("{e:#}"))?;
    req.encode(&mut buf, version)
        .map_err(|e| format!("{e:#}"))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implemented_ranges_are_known_to_the_codec() {
        for &(api, min, max) in IMPLEMENTED {
            let codec = api.valid_versions();
            assert!(
                min <= max && codec.min <= min && max <= codec.max,
                "{api:?}"
            );
        }
    }

    #[test]
    fn frames_carry_length_header_and_body() {
        let frame = encode_frame(ApiKey::ApiVersions, &ApiVersionsRequest::default(), 0, 7)
            .expect("encodes");
        let mut buf = frame.freeze();
        let len = buf.get_u32() as usize;
        assert_eq!(len, buf.len());
        assert_eq!(buf.get_i16(), ApiKey::ApiVersions as i16);
        assert_eq!(buf.get_i16(), 0);
        assert_eq!(buf.get_i32(), 7);
    }
}
