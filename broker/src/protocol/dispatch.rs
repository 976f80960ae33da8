//! Turns one request frame into a pending response: checks the API and version, decodes the
//! header and body with `kafka-protocol`, and calls the API's handler.
//!
//! Handlers apply their effects (appending to logs, committing offsets, joining a group) before
//! `dispatch` returns, so requests of one connection take effect in the order they were sent;
//! the waiting part (group commit, long-poll fetch, rebalance) is the returned future, which the
//! connection polls concurrently while it still writes the answers back in request order.
//!
//! The outcome says what may happen to that future if the client goes away: a
//! [`Outcome::Respond`] future must run to the end (it asks the group commit to make appended
//! records durable and visible), an [`Outcome::Wait`] future only waits and is dropped with its
//! connection, so a client that disconnects during a long poll frees everything at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use super::frame::{encode_response, error_frame};
use super::Session;
use super::{legacy, versions};
use crate::api;
use crate::broker::{Advertised, Broker};

/// A response on its way: `Ok(None)` when the request gets no answer (produce with acks=0),
/// `Err` when the connection must be closed.
pub type Pending = Pin<Box<dyn Future<Output = Result<Option<Bytes>, String>> + Send>>;

/// What the connection does with a request.
pub enum Outcome {
    /// Queue this response behind the earlier ones; the future must be run to completion even
    /// if the client disconnects.
    Respond(Pending),
    /// Queue this response behind the earlier ones; the future only waits (or is ready) and is
    /// dropped if the client disconnects.
    Wait(Pending),
    /// Send `last` (if any) after the earlier responses, then close the connection.
    Close { last: Option<Bytes>, reason: String },
}

pub(super) fn ready<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    body: R,
) -> Outcome {
    match encode_response(correlation_id, version, &body) {
        Ok(frame) => Outcome::Wait(Box::pin(std::future::ready(Ok(Some(frame))))),
        Err(e) => Outcome::Close {
            last: None,
            reason: format!("could not encode the response: {e}"),
        },
    }
}

/// A response that must be completed (see [`Outcome::Respond`]).
pub(super) fn deferred<R, F>(correlation_id: i32, version: i16, body: F) -> Outcome
where
    R: Encodable + HeaderVersion,
    F: Future<Output = Option<R>> + Send + 'static,
{
    Outcome::Respond(encoded(correlation_id, version, body))
}

/// A response that only waits (see [`Outcome::Wait`]).
pub(super) fn waiting<R, F>(correlation_id: i32, version: i16, body: F) -> Outcome
where
    R: Encodable + HeaderVersion,
    F: Future<Output = Option<R>> + Send + 'static,
{
    Outcome::Wait(encoded(correlation_id, version, body))
}

fn encoded<R, F>(correlation_id: i32, version: i16, body: F) -> Pending
where
    R: Encodable + HeaderVersion,
    F: Future<Output = Option<R>> + Send + 'static,
{
    Box::pin(async move {
        match body.await {
            None => Ok(None),
            Some(body) => encode_response(correlation_id, version, &body)
                .map(Some)
                .map_err(|e| format!("could not encode the response: {e}")),
        }
    })
}

/// Handles one request frame (without its length prefix), counting it in the broker's metrics:
/// requests per API and version, the time until each response is ready, and errors (requests
/// that close their connection).
pub async fn dispatch(broker: &Arc<Broker>, session: &Session, frame: Bytes) -> Outcome {
    let started = std::time::Instant::now();
    let api = frame
        .get(..4)
        .map(|p| {
            (
                ApiKey::try_from(i16::from_be_bytes([p[0], p[1]])).ok(),
                i16::from_be_bytes([p[2], p[3]]),
            )
        })
        .and_then(|(key, version)| Some((key?, version)));
    let outcome = handle_frame(broker, session, frame).await;
    let Some((key, version)) = api else {
        broker.metrics.error("unknown", "UNKNOWN_API_KEY");
        return outcome;
    };
    let name = api_name(key);
    broker.metrics.request(name, version);
    let timed = |pending: Pending| -> Pending {
        let broker = broker.clone();
        Box::pin(async move {
            let result = pending.await;
            broker.metrics.answered(name, started.elapsed());
            if result.is_err() {
                broker.metrics.error(name, "RESPONSE_NOT_ENCODED");
            }
            result
        })
    };
    match outcome {
        Outcome::Respond(p) => Outcome::Respond(timed(p)),
        Outcome::Wait(p) => Outcome::Wait(timed(p)),
        Outcome::Close { last, reason } => {
            let error = if versions::is_supported(key, version) {
                "INVALID_REQUEST"
            } else {
                "UNSUPPORTED_VERSION"
            };
            broker.metrics.error(name, error);
            Outcome::Close { last, reason }
        }
    }
}

/// Kafka's name of an API (`Produce`, `Fetch`, ...), as request metrics label it: `ApiKey`'s
/// Debug form, built once for every key the codec knows.
fn api_name(key: ApiKey) -> &'static str {
    static NAMES: std::sync::OnceLock<std::collections::HashMap<i16, String>> =
        std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| {
            (0..=i16::from(u8::MAX))
                .filter_map(|k| ApiKey::try_from(k).ok().map(|key| (k, format!("{key:?}"))))
                .collect()
        })
        .get(&(key as i16))
        .map_or("unknown", String::as_str)
}

async fn handle_frame(broker: &Arc<Broker>, session: &Session, mut frame: Bytes) -> Outcome {
    let advertised: &Advertised = &session.advertised;
    let peer = session.peer;
    let who = crate::authorizer::Requester::from(session);
    let Some(prefix) = frame.get(..8) else {
        return Outcome::Close {
            last: None,
            reason: format!(
                "a {}-byte frame is too short to hold a request header",
                frame.len()
            ),
        };
    };
    let raw_key = i16::from_be_bytes([prefix[0], prefix[1]]);
    let version = i16::from_be_bytes([prefix[2], prefix[3]]);
    let correlation_id = i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    let unsupported = ResponseError::UnsupportedVersion.code();

    let Ok(api_key) = ApiKey::try_from(raw_key) else {
        return Outcome::Close {
            last: Some(error_frame(correlation_id, unsupported)),
            reason: format!("unknown API key {raw_key}"),
        };
    };
    if !versions::is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            // As Kafka does: answer in v0 with the error and our ranges, so the client can retry
            // with a version both sides know.
            return ready(correlation_id, 0, api::api_versions::response(unsupported));
        }
        return Outcome::Close {
            last: Some(error_frame(correlation_id, unsupported)),
            reason: format!("unsupported version {version} of {api_key:?}"),
        };
    }
    let header_version = api_key.request_header_version(version);
    let header = match RequestHeader::decode(&mut frame, header_version) {
        Ok(header) => header,
        Err(e) => {
            return Outcome::Close {
                last: None,
                reason: format!("malformed {api_key:?} v{version} request header: {e}"),
            }
        }
    };
    if legacy::is_legacy(api_key, version) {
        return legacy::handle(broker, session, api_key, version, correlation_id, frame).await;
    }
    let request = match RequestKind::decode(api_key, &mut frame, version) {
        Ok(request) => request,
        Err(e) => {
            return Outcome::Close {
                last: None,
                reason: format!("malformed {api_key:?} v{version} request: {e}"),
            }
        }
    };
    tracing::trace!(?api_key, version, correlation_id, client_id = ?header.client_id, "request");

    let c = correlation_id;
    match request {
        RequestKind::ApiVersions(_) => ready(c, version, api::api_versions::response(0)),
        RequestKind::Metadata(req) => ready(
            c,
            version,
            api::metadata::handle(broker, who, advertised, req, version).await,
        ),
        RequestKind::Produce(req) => {
            deferred(c, version, api::produce::handle(broker, who, req, version))
        }
        RequestKind::Fetch(req) => {
            let broker = broker.clone();
            let session = session.clone();
            waiting(c, version, async move {
                let who = crate::authorizer::Requester::from(&session);
                Some(api::fetch::handle(&broker, who, req, version).await)
            })
        }
        RequestKind::ListOffsets(req) => ready(
            c,
            version,
            api::list_offsets::handle(broker, who, req, version),
        ),
        RequestKind::CreateTopics(req) => ready(
            c,
            version,
            api::topics::create(broker, who, req, version).await,
        ),
        RequestKind::DeleteTopics(req) => ready(
            c,
            version,
            api::topics::delete(broker, who, req, version).await,
        ),
        RequestKind::CreatePartitions(req) => ready(
            c,
            version,
            api::topics::create_partitions(broker, who, req).await,
        ),
        RequestKind::DeleteRecords(req) => {
            ready(c, version, api::delete_records::handle(broker, who, req))
        }
        RequestKind::DescribeConfigs(req) => ready(
            c,
            version,
            api::configs::describe(broker, who, req, version),
        ),
        RequestKind::AlterConfigs(req) => ready(
            c,
            version,
            api::configs::alter_legacy(broker, who, req).await,
        ),
        RequestKind::IncrementalAlterConfigs(req) => ready(
            c,
            version,
            api::configs::incremental_alter(broker, who, req).await,
        ),
        RequestKind::InitProducerId(req) => deferred(
            c,
            version,
            api::init_producer_id::handle(broker, who, req, version),
        ),
        RequestKind::AddPartitionsToTxn(req) => deferred(
            c,
            version,
            api::txn::add_partitions(broker, who, req, version),
        ),
        RequestKind::AddOffsetsToTxn(req) => {
            deferred(c, version, api::txn::add_offsets(broker, who, req, version))
        }
        RequestKind::TxnOffsetCommit(req) => deferred(
            c,
            version,
            api::txn::txn_offset_commit(broker, who, req, version),
        ),
        RequestKind::EndTxn(req) => {
            deferred(c, version, api::txn::end_txn(broker, who, req, version))
        }
        RequestKind::DescribeTransactions(req) => {
            ready(c, version, api::txn::describe(broker, who, req))
        }
        RequestKind::ListTransactions(req) => ready(c, version, api::txn::list(broker, who, req)),
        RequestKind::FindCoordinator(req) => ready(
            c,
            version,
            api::groups::find_coordinator(advertised, broker, who, req, version),
        ),
        RequestKind::JoinGroup(req) => {
            let client = api::groups::Client {
                client_id: header
                    .client_id
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                host: format!("/{}", peer.ip()),
            };
            waiting(
                c,
                version,
                api::groups::join(broker, who, req, version, client),
            )
        }
        RequestKind::SyncGroup(req) => {
            waiting(c, version, api::groups::sync(broker, who, req, version))
        }
        RequestKind::Heartbeat(req) => ready(c, version, api::groups::heartbeat(broker, who, req)),
        RequestKind::LeaveGroup(req) => {
            ready(c, version, api::groups::leave(broker, who, req, version))
        }
        RequestKind::DescribeGroups(req) => {
            ready(c, version, api::groups::describe(broker, who, req, version))
        }
        RequestKind::ListGroups(req) => {
            ready(c, version, api::groups::list(broker, who, req, version))
        }
        RequestKind::DeleteGroups(req) => {
            ready(c, version, api::groups::delete(broker, who, req).await)
        }
        RequestKind::OffsetCommit(req) => {
            deferred(c, version, api::offsets::commit(broker, who, req))
        }
        RequestKind::OffsetFetch(req) => {
            ready(c, version, api::offsets::fetch(broker, who, req, version))
        }
        RequestKind::OffsetDelete(req) => {
            ready(c, version, api::offsets::delete(broker, who, req).await)
        }
        RequestKind::DescribeLogDirs(req) => {
            ready(c, version, api::log_dirs::describe(broker, who, req))
        }
        RequestKind::DescribeCluster(req) => ready(
            c,
            version,
            api::cluster::describe(broker, advertised, who, req),
        ),
        RequestKind::CreateAcls(req) => {
            ready(c, version, api::acls::create(broker, who, req).await)
        }
        RequestKind::DescribeAcls(req) => ready(c, version, api::acls::describe(broker, who, req)),
        RequestKind::DeleteAcls(req) => {
            ready(c, version, api::acls::delete(broker, who, req).await)
        }
        RequestKind::DescribeUserScramCredentials(req) => {
            ready(c, version, api::scram::describe(broker, session, req))
        }
        RequestKind::AlterUserScramCredentials(req) => {
            deferred(c, version, api::scram::alter(broker, session, req))
        }
        // On a PLAINTEXT listener, or once authenticated (no re-authentication yet), as Kafka's
        // KafkaApis answers them.
        RequestKind::SaslHandshake(_) => ready(
            c,
            version,
            kafka_protocol::messages::SaslHandshakeResponse::default()
                .with_error_code(ResponseError::IllegalSaslState.code()),
        ),
        RequestKind::SaslAuthenticate(_) => ready(
            c,
            version,
            kafka_protocol::messages::SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::IllegalSaslState.code())
                .with_error_message(Some(kafka_protocol::protocol::StrBytes::from_static_str(
                    "SaslAuthenticate on a connection that needs none",
                ))),
        ),
        other => Outcome::Close {
            last: Some(error_frame(correlation_id, unsupported)),
            reason: format!("no handler for {:?}", std::mem::discriminant(&other)),
        },
    }
}
