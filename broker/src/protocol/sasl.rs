//! SASL on a `SASL_PLAINTEXT` listener: what a connection may do before it has authenticated.
//!
//! As Kafka's `SaslServerAuthenticator`: until a client has authenticated it may send
//! ApiVersions, then SaslHandshake (v1: naming its mechanism) and SaslAuthenticate requests
//! carrying the mechanism's tokens; anything else closes the connection. A failed exchange is
//! answered with SASL_AUTHENTICATION_FAILED and the connection is closed after that answer, and
//! every failure is counted and delayed ([`FAILED_LOGIN_DELAY`]) so guessing passwords is slow.
//! Once authenticated, every request goes to [`dispatch`](super::dispatch) as on a PLAINTEXT
//! listener, which answers a second SaslHandshake with ILLEGAL_SASL_STATE (no re-authentication,
//! KIP-368, yet). After a v0 handshake (clients older than Kafka 1.0) the tokens come as bare
//! length-prefixed frames without a request header, and are answered the same way.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::dispatch::{ready, Outcome};
use super::frame::{encode_response, error_frame};
use crate::security::scram::{Mechanism, ServerExchange};
use crate::security::users::Users;
use crate::security::{plain, MECHANISMS};

/// How long a failed authentication is held before its answer (Kafka's
/// `connection.failed.authentication.delay.ms` defaults to 100 ms).
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(100);

enum State {
    /// Nothing but ApiVersions so far.
    Start,
    /// The mechanism was agreed on; its first token is next.
    Handshaken(Chosen),
    /// A SCRAM exchange waits for the client-final message.
    Scram(ServerExchange),
    Authenticated(String),
    /// Failed; the connection is closing.
    Failed,
}

#[derive(Clone, Copy)]
enum Chosen {
    Plain,
    Scram(Mechanism),
}

/// One connection's authentication.
pub struct SaslSession {
    users: Arc<Users>,
    state: State,
    /// A v0 handshake: tokens travel as bare frames.
    raw: bool,
}

impl SaslSession {
    pub fn new(users: Arc<Users>) -> Self {
        SaslSession {
            users,
            state: State::Start,
            raw: false,
        }
    }

    /// The authenticated user, once there is one.
    pub fn principal(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated(user) => Some(user),
            _ => None,
        }
    }

    /// Whether authentication failed (the connection is being closed).
    pub fn failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// Handles a request of a connection that has not authenticated yet. `None`: the request
    /// is ApiVersions, which the caller dispatches as usual.
    pub fn handle(&mut self, mut frame: Bytes) -> Option<Outcome> {
        if self.raw && matches!(self.state, State::Handshaken(_) | State::Scram(_)) {
            return Some(self.raw_token(&frame));
        }
        let Some(prefix) = frame.get(..8) else {
            return Some(close(None, "a frame too short for a request header".into()));
        };
        let raw_key = i16::from_be_bytes([prefix[0], prefix[1]]);
        let version = i16::from_be_bytes([prefix[2], prefix[3]]);
        let c = i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
        let api = ApiKey::try_from(raw_key).ok();
        match api {
            Some(ApiKey::ApiVersions) => return None,
            Some(ApiKey::SaslHandshake) | Some(ApiKey::SaslAuthenticate) => {}
            _ => {
                return Some(close(
                    None,
                    format!(
                        "unexpected Kafka request {} during SASL authentication",
                        api.map(|a| format!("{a:?}"))
                            .unwrap_or_else(|| format!("of API key {raw_key}"))
                    ),
                ))
            }
        }
        let api = api.unwrap_or(ApiKey::SaslHandshake);
        if !super::versions::is_supported(api, version) {
            return Some(close(
                Some(error_frame(c, ResponseError::UnsupportedVersion.code())),
                format!("unsupported version {version} of {api:?}"),
            ));
        }
        if RequestHeader::decode(&mut frame, api.request_header_version(version)).is_err() {
            return Some(close(None, format!("malformed {api:?} request header")));
        }
        Some(match api {
            ApiKey::SaslHandshake => match SaslHandshakeRequest::decode(&mut frame, version) {
                Ok(req) => self.handshake(c, version, &req.mechanism),
                Err(e) => close(None, format!("malformed SaslHandshake request: {e}")),
            },
            _ => match SaslAuthenticateRequest::decode(&mut frame, version) {
                Ok(req) => self.authenticate(c, version, &req.auth_bytes),
                Err(e) => close(None, format!("malformed SaslAuthenticate request: {e}")),
            },
        })
    }

    fn handshake(&mut self, c: i32, version: i16, mechanism: &str) -> Outcome {
        let offered = MECHANISMS
            .iter()
            .map(|m| StrBytes::from_static_str(m))
            .collect::<Vec<_>>();
        let response = |code: i16| {
            SaslHandshakeResponse::default()
                .with_error_code(code)
                .with_mechanisms(offered.clone())
        };
        if !matches!(self.state, State::Start) {
            self.state = State::Failed;
            return closing(
                c,
                version,
                response(ResponseError::IllegalSaslState.code()),
                "a second SaslHandshake".into(),
            );
        }
        let chosen = match mechanism {
            "PLAIN" => Chosen::Plain,
            other => match Mechanism::from_name(other) {
                Some(m) => Chosen::Scram(m),
                None => {
                    self.state = State::Failed;
                    return closing(
                        c,
                        version,
                        response(ResponseError::UnsupportedSaslMechanism.code()),
                        format!("unsupported SASL mechanism {other:?}"),
                    );
                }
            },
        };
        self.state = State::Handshaken(chosen);
        self.raw = version == 0;
        ready(c, version, response(0))
    }

    /// A bare token after a v0 handshake: the answer is a bare frame too; a failure closes the
    /// connection without one, as Kafka does.
    fn raw_token(&mut self, token: &[u8]) -> Outcome {
        match self.step(token) {
            Ok(bytes) => {
                let mut frame = bytes::BytesMut::with_capacity(4 + bytes.len());
                frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                frame.extend_from_slice(&bytes);
                let frame = frame.freeze();
                Outcome::Wait(Box::pin(std::future::ready(Ok(Some(frame)))))
            }
            Err(reason) => close(None, format!("SASL authentication failed: {reason}")),
        }
    }

    /// Feeds one token to the agreed mechanism: its answer, or why authentication failed.
    fn step(&mut self, token: &[u8]) -> Result<Vec<u8>, String> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (bytes, user) = match state {
            State::Handshaken(Chosen::Plain) => plain::authenticate(&self.users, token)
                .map(|user| (Vec::new(), Some(user)))
                .map_err(|e| e.to_string())?,
            State::Handshaken(Chosen::Scram(mechanism)) => {
                let mut exchange = ServerExchange::new(mechanism);
                let users = &self.users;
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let first = exchange
                    .client_first(token, |u| users.scram(u, mechanism), &nonce)
                    .map_err(|e| e.to_string())?;
                self.state = State::Scram(exchange);
                (first, None)
            }
            State::Scram(mut exchange) => exchange
                .client_final(token)
                .map(|(last, user)| (last, Some(user)))
                .map_err(|e| e.to_string())?,
            State::Start | State::Authenticated(_) | State::Failed => {
                return Err("a SASL token before the handshake".into())
            }
        };
        if let Some(user) = user {
            tracing::debug!(%user, "SASL authentication succeeded");
            self.state = State::Authenticated(user);
        }
        Ok(bytes)
    }

    fn authenticate(&mut self, c: i32, version: i16, token: &[u8]) -> Outcome {
        if matches!(self.state, State::Start) {
            self.state = State::Failed;
            let response = SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::IllegalSaslState.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "SaslAuthenticate before SaslHandshake",
                )));
            return closing(c, version, response, "SaslAuthenticate out of order".into());
        }
        match self.step(token) {
            Ok(bytes) => ready(
                c,
                version,
                SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)),
            ),
            Err(reason) => {
                let response = SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                    .with_error_message(Some(StrBytes::from_string(reason.clone())));
                closing(
                    c,
                    version,
                    response,
                    format!("SASL authentication failed: {reason}"),
                )
            }
        }
    }
}

fn close(last: Option<Bytes>, reason: String) -> Outcome {
    Outcome::Close { last, reason }
}

/// Answers `response`, then closes the connection.
fn closing<R>(c: i32, version: i16, response: R, reason: String) -> Outcome
where
    R: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
{
    close(encode_response(c, version, &response).ok(), reason)
}
