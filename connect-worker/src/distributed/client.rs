//! A small Kafka-protocol client for one thing: membership of a `connect` group.
//!
//! librdkafka's consumer-group API only runs groups of protocol type `consumer`; Kafka Connect's
//! workers join a group of type `connect` whose metadata and assignments are their own
//! ([`super::protocol`]). This client speaks FindCoordinator, JoinGroup, SyncGroup, Heartbeat
//! and LeaveGroup to the group coordinator, at versions every Kafka since 2.3 and datasync's
//! broker answer, so a real Kafka cluster works too. Requests are sequential on one
//! connection; a failed exchange leaves the stream position unknown, so the connection then
//! refuses further calls and the caller reconnects.

use std::time::Duration;

use broker::client::security::SaslLogin;
use broker::client::{open_stream, ClientError, ClientSecurity, Stream};
use broker::security::scram::{ClientExchange, Mechanism};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::protocol::PROTOCOL_TYPE;

const FIND_COORDINATOR_VERSION: i16 = 2;
const JOIN_GROUP_VERSION: i16 = 5;
const SYNC_GROUP_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const LEAVE_GROUP_VERSION: i16 = 3;
const SASL_HANDSHAKE_VERSION: i16 = 1;
const SASL_AUTHENTICATE_VERSION: i16 = 1;
/// Largest response frame accepted; a JoinGroup answer carries every member's metadata.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Kafka error codes this client acts on.
pub mod codes {
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
}

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("talking to {addr}: {detail}")]
    Io { addr: String, detail: String },
    #[error("connection to {0} is broken by an earlier failure")]
    Broken(String),
    #[error("{api:?} answered error code {code}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        api: ApiKey,
        code: i16,
        message: Option<String>,
    },
    #[error("malformed {api:?} answer from {addr}: {detail}")]
    Malformed {
        api: ApiKey,
        addr: String,
        detail: String,
    },
    #[error("encoding {api:?}: {detail}")]
    Encode { api: ApiKey, detail: String },
    #[error("SASL {mechanism} login to {addr} failed: {detail}")]
    Sasl {
        addr: String,
        mechanism: String,
        detail: String,
    },
    #[error("the coordinator chose protocol {0:?}, which this worker did not offer")]
    UnknownProtocol(String),
}

impl GroupError {
    /// The Kafka error code, when the coordinator answered one.
    pub fn code(&self) -> Option<i16> {
        match self {
            GroupError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The outcome of a JoinGroup round.
#[derive(Debug, Clone)]
pub struct Joined {
    pub generation_id: i32,
    pub member_id: String,
    pub leader: String,
    /// The protocol the coordinator chose (one of those offered).
    pub protocol: String,
    /// Every member's metadata for that protocol; empty unless this member leads.
    pub members: Vec<(String, Bytes)>,
}

impl Joined {
    pub fn is_leader(&self) -> bool {
        self.leader == self.member_id
    }
}

/// One worker's membership of a `connect` group, through its coordinator.
pub struct GroupMember {
    conn: Connection,
    group_id: String,
    member_id: String,
    generation_id: i32,
    protocol: Option<String>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
}

impl GroupMember {
    /// Finds `group_id`'s coordinator through the first reachable `bootstrap` server and
    /// connects to it. `request_timeout` bounds every request but JoinGroup and SyncGroup,
    /// which may wait a rebalance timeout.
    pub async fn connect(
        bootstrap: &str,
        group_id: &str,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
        request_timeout: Duration,
    ) -> Result<Self, GroupError> {
        Self::connect_as(
            bootstrap,
            &ClientSecurity::default(),
            group_id,
            session_timeout_ms,
            rebalance_timeout_ms,
            request_timeout,
        )
        .await
    }

    /// [`connect`](Self::connect), every connection encrypted and logging in as `security`
    /// says (the worker's `--kafka-*` settings, read as librdkafka reads them).
    pub async fn connect_as(
        bootstrap: &str,
        security: &ClientSecurity,
        group_id: &str,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
        request_timeout: Duration,
    ) -> Result<Self, GroupError> {
        let mut last_err = None;
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Connection::connect(addr, request_timeout, security).await {
                Ok(mut conn) => {
                    let req = FindCoordinatorRequest::default()
                        .with_key(StrBytes::from_string(group_id.to_string()))
                        .with_key_type(0);
                    let resp = conn
                        .call(ApiKey::FindCoordinator, req, FIND_COORDINATOR_VERSION, None)
                        .await?;
                    check(
                        ApiKey::FindCoordinator,
                        resp.error_code,
                        resp.error_message.as_ref(),
                    )?;
                    let coordinator = format!("{}:{}", resp.host.as_str(), resp.port);
                    let conn = Connection::connect(&coordinator, request_timeout, security).await?;
                    return Ok(GroupMember {
                        conn,
                        group_id: group_id.to_string(),
                        member_id: String::new(),
                        generation_id: -1,
                        protocol: None,
                        session_timeout_ms,
                        rebalance_timeout_ms,
                    });
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| GroupError::Io {
            addr: bootstrap.to_string(),
            detail: "no bootstrap server given".into(),
        }))
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// JoinGroup with `protocols` (name and metadata, preferred first). A first join gets a
    /// member id (MEMBER_ID_REQUIRED, KIP-394) and joins again with it; a member the coordinator
    /// no longer knows (UNKNOWN_MEMBER_ID) joins again as a new one.
    pub async fn join(&mut self, protocols: &[(&str, Vec<u8>)]) -> Result<Joined, GroupError> {
        let wait = Some(Duration::from_millis(
            u64::try_from(self.rebalance_timeout_ms).unwrap_or(0) + 5_000,
        ));
        for _ in 0..3 {
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
                .with_session_timeout_ms(self.session_timeout_ms)
                .with_rebalance_timeout_ms(self.rebalance_timeout_ms)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
                .with_protocols(
                    protocols
                        .iter()
                        .map(|(name, meta)| {
                            JoinGroupRequestProtocol::default()
                                .with_name(StrBytes::from_string(name.to_string()))
                                .with_metadata(Bytes::copy_from_slice(meta))
                        })
                        .collect(),
                );
            let resp = self
                .conn
                .call(ApiKey::JoinGroup, req, JOIN_GROUP_VERSION, wait)
                .await?;
            if resp.error_code == codes::MEMBER_ID_REQUIRED {
                self.member_id = resp.member_id.to_string();
                continue;
            }
            if resp.error_code == codes::UNKNOWN_MEMBER_ID && !self.member_id.is_empty() {
                // The coordinator forgot us (session expired): join again as a new member.
                self.member_id.clear();
                continue;
            }
            check(ApiKey::JoinGroup, resp.error_code, None)?;
            let protocol = resp
                .protocol_name
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            if !protocols.iter().any(|(name, _)| *name == protocol) {
                return Err(GroupError::UnknownProtocol(protocol));
            }
            self.member_id = resp.member_id.to_string();
            self.generation_id = resp.generation_id;
            self.protocol = Some(protocol.clone());
            return Ok(Joined {
                generation_id: resp.generation_id,
                member_id: self.member_id.clone(),
                leader: resp.leader.to_string(),
                protocol,
                members: resp
                    .members
                    .into_iter()
                    .map(|m| (m.member_id.to_string(), m.metadata))
                    .collect(),
            });
        }
        Err(GroupError::Kafka {
            api: ApiKey::JoinGroup,
            code: codes::MEMBER_ID_REQUIRED,
            message: Some("the coordinator refused three joins in a row".into()),
        })
    }

    /// SyncGroup: the leader sends every member's assignment, the others none; returns this
    /// member's assignment bytes.
    pub async fn sync(&mut self, assignments: Vec<(String, Vec<u8>)>) -> Result<Bytes, GroupError> {
        let wait = Some(Duration::from_millis(
            u64::try_from(self.rebalance_timeout_ms).unwrap_or(0) + 5_000,
        ));
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
            .with_generation_id(self.generation_id)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(member, bytes)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(member))
                            .with_assignment(Bytes::from(bytes))
                    })
                    .collect(),
            );
        let resp = self
            .conn
            .call(ApiKey::SyncGroup, req, SYNC_GROUP_VERSION, wait)
            .await?;
        check(ApiKey::SyncGroup, resp.error_code, None)?;
        Ok(resp.assignment)
    }

    /// A second connection to the coordinator, to heartbeat on while this member waits in a
    /// JoinGroup or SyncGroup on its own.
    pub async fn side_channel(&self) -> Result<SideChannel, GroupError> {
        Ok(SideChannel {
            conn: Connection::connect(&self.conn.addr, self.conn.timeout, &self.conn.security)
                .await?,
            group_id: self.group_id.clone(),
            member_id: self.member_id.clone(),
            generation_id: self.generation_id,
        })
    }

    /// Heartbeat; REBALANCE_IN_PROGRESS (the caller must rejoin) comes back as its error code.
    pub async fn heartbeat(&mut self) -> Result<(), GroupError> {
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
            .with_generation_id(self.generation_id)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let resp = self
            .conn
            .call(ApiKey::Heartbeat, req, HEARTBEAT_VERSION, None)
            .await?;
        check(ApiKey::Heartbeat, resp.error_code, None)
    }

    /// LeaveGroup, so the group rebalances at once instead of after the session timeout.
    pub async fn leave(&mut self) -> Result<(), GroupError> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let req = LeaveGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
            .with_members(vec![MemberIdentity::default()
                .with_member_id(StrBytes::from_string(self.member_id.clone()))]);
        let resp = self
            .conn
            .call(ApiKey::LeaveGroup, req, LEAVE_GROUP_VERSION, None)
            .await?;
        self.member_id.clear();
        self.generation_id = -1;
        check(ApiKey::LeaveGroup, resp.error_code, None)
    }
}

/// Heartbeats of a member on a connection of their own, as the member was when it was opened
/// (the coordinator answers REBALANCE_IN_PROGRESS while a rebalance waits for members, and
/// counts the heartbeat).
pub struct SideChannel {
    conn: Connection,
    group_id: String,
    member_id: String,
    generation_id: i32,
}

impl SideChannel {
    pub async fn heartbeat(&mut self) -> Result<(), GroupError> {
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group_id.clone())))
            .with_generation_id(self.generation_id)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let resp = self
            .conn
            .call(ApiKey::Heartbeat, req, HEARTBEAT_VERSION, None)
            .await?;
        check(ApiKey::Heartbeat, resp.error_code, None)
    }
}

fn check(api: ApiKey, code: i16, message: Option<&StrBytes>) -> Result<(), GroupError> {
    if code == 0 {
        Ok(())
    } else {
        Err(GroupError::Kafka {
            api,
            code,
            message: message.map(|m| m.to_string()),
        })
    }
}

/// One TCP connection with sequential request/response exchanges at fixed versions.
struct Connection {
    addr: String,
    stream: Stream,
    timeout: Duration,
    /// TLS and the login of every connection (this one's is done), kept for reconnects.
    security: ClientSecurity,
    next_correlation_id: i32,
    broken: bool,
}

impl Connection {
    async fn connect(
        addr: &str,
        timeout: Duration,
        security: &ClientSecurity,
    ) -> Result<Self, GroupError> {
        let (stream, _) = open_stream(addr, timeout, security)
            .await
            .map_err(|e| match e {
                ClientError::Connect { source, .. } => GroupError::Connect {
                    addr: addr.to_string(),
                    source,
                },
                other => GroupError::Io {
                    addr: addr.to_string(),
                    detail: other.to_string(),
                },
            })?;
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            timeout,
            security: security.clone(),
            next_correlation_id: 0,
            broken: false,
        };
        if let Some(login) = &security.sasl {
            conn.login(login).await?;
        }
        Ok(conn)
    }

    /// SaslHandshake, then SaslAuthenticate rounds (KIP-152): PLAIN in one, SCRAM in two with
    /// the server's signature checked (`broker::security::scram`'s client side).
    async fn login(&mut self, login: &SaslLogin) -> Result<(), GroupError> {
        let fail = |addr: &str, detail: String| GroupError::Sasl {
            addr: addr.to_string(),
            mechanism: login.mechanism.clone(),
            detail,
        };
        let resp = self
            .call(
                ApiKey::SaslHandshake,
                SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_string(login.mechanism.clone())),
                SASL_HANDSHAKE_VERSION,
                None,
            )
            .await?;
        if resp.error_code != 0 {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(fail(
                &self.addr,
                format!(
                    "the broker does not offer it (error code {}; it offers {offered:?})",
                    resp.error_code
                ),
            ));
        }
        match Mechanism::from_name(&login.mechanism) {
            None => {
                let token = format!("\0{}\0{}", login.username, login.password);
                self.authenticate(token.into_bytes(), &fail).await?;
            }
            Some(mechanism) => {
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let mut scram =
                    ClientExchange::new(mechanism, &login.username, &login.password, &nonce);
                let server_first = self.authenticate(scram.client_first(), &fail).await?;
                let client_final = scram
                    .client_final(&server_first)
                    .map_err(|e| fail(&self.addr, e.to_string()))?;
                let server_final = self.authenticate(client_final, &fail).await?;
                scram
                    .server_final(&server_final)
                    .map_err(|e| fail(&self.addr, e.to_string()))?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate round: the server's answer to `token`.
    async fn authenticate(
        &mut self,
        token: Vec<u8>,
        fail: &impl Fn(&str, String) -> GroupError,
    ) -> Result<Bytes, GroupError> {
        let resp = self
            .call(
                ApiKey::SaslAuthenticate,
                SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
                SASL_AUTHENTICATE_VERSION,
                None,
            )
            .await?;
        if resp.error_code != 0 {
            return Err(fail(
                &self.addr,
                resp.error_message
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| format!("error code {}", resp.error_code)),
            ));
        }
        Ok(resp.auth_bytes)
    }

    /// Sends `req` at `version` and reads its answer within `wait` (default: the connection's
    /// request timeout).
    async fn call<R>(
        &mut self,
        api: ApiKey,
        req: R,
        version: i16,
        wait: Option<Duration>,
    ) -> Result<R::Response, GroupError>
    where
        R: Request + Encodable + HeaderVersion,
        R::Response: Decodable + HeaderVersion,
    {
        if self.broken {
            return Err(GroupError::Broken(self.addr.clone()));
        }
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("connect-worker")));
        let header_version = R::header_version(version);
        let encode_err = |e: anyhow::Error| GroupError::Encode {
            api,
            detail: format!("{e:#}"),
        };
        let mut body = BytesMut::new();
        header
            .encode(&mut body, header_version)
            .map_err(encode_err)?;
        req.encode(&mut body, version).map_err(encode_err)?;
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
        frame.extend_from_slice(&body);

        self.broken = true;
        let io = async {
            self.stream.write_all(&frame).await?;
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
            Ok::<_, std::io::Error>(buf)
        };
        let buf = match tokio::time::timeout(wait.unwrap_or(self.timeout), io).await {
            Ok(Ok(buf)) => buf,
            Ok(Err(e)) => {
                return Err(GroupError::Io {
                    addr: self.addr.clone(),
                    detail: e.to_string(),
                })
            }
            Err(_) => {
                return Err(GroupError::Io {
                    addr: self.addr.clone(),
                    detail: format!("no answer to {api:?} in time"),
                })
            }
        };
        let malformed = |detail: String| GroupError::Malformed {
            api,
            addr: self.addr.clone(),
            detail,
        };
        let mut bytes = Bytes::from(buf);
        let resp_header = ResponseHeader::decode(&mut bytes, R::Response::header_version(version))
            .map_err(|e| malformed(format!("{e:#}")))?;
        if resp_header.correlation_id != correlation_id {
            return Err(malformed(format!(
                "correlation id {} for request {correlation_id}",
                resp_header.correlation_id
            )));
        }
        let resp =
            R::Response::decode(&mut bytes, version).map_err(|e| malformed(format!("{e:#}")))?;
        if bytes.has_remaining() {
            tracing::debug!(?api, left = bytes.remaining(), "trailing bytes in answer");
        }
        self.broken = false;
        Ok(resp)
    }
}
