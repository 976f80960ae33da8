//! InitProducerId: a new producer id (epoch 0) for an idempotent producer; for a transactional
//! one (a `transactional.id`), the id that belongs to it with its epoch bumped, fencing any
//! earlier instance and aborting the transaction it left open (see [`crate::txn`]).

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::code;
use crate::authorizer::{Operation, Requester, Resource, ResourceType};
use crate::broker::Broker;
use crate::txn::fenced;

/// InitProducerId answers PRODUCER_FENCED from v4 on, INVALID_PRODUCER_EPOCH before.
const FENCED_SINCE: i16 = 4;

pub fn handle(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: InitProducerIdRequest,
    version: i16,
) -> impl Future<Output = Option<InitProducerIdResponse>> + Send + 'static {
    // A transactional producer needs WRITE on its transactional id; an idempotent one
    // IDEMPOTENT_WRITE on the cluster or WRITE on some topic (Kafka's rule since 2.8).
    let refused = match req.transactional_id.as_ref().filter(|t| !t.0.is_empty()) {
        Some(id) => (!broker.authorizer.authorize(
            who,
            Operation::Write,
            &Resource::transactional_id(id.0.as_str()),
        ))
        .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        None => {
            (!broker
                .authorizer
                .authorize(who, Operation::IdempotentWrite, &Resource::cluster())
                && !broker
                    .authorizer
                    .authorize_any(who, Operation::Write, ResourceType::Topic))
            .then_some(ResponseError::ClusterAuthorizationFailed)
        }
    };
    let broker = broker.clone();
    async move {
        let resp = InitProducerIdResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        if let Some(error) = refused {
            return Some(resp.with_error_code(code(error)));
        }
        let transactional_id = req
            .transactional_id
            .as_ref()
            .map(|t| t.0.to_string())
            .filter(|t| !t.is_empty());
        let Some(id) = transactional_id else {
            // An idempotent producer asking to bump its epoch (KIP-360) gets a fresh id instead:
            // without a transaction there is no state that must carry over, and a new id fences
            // the old one.
            return Some(match broker.producer_ids.next() {
                Ok(pid) => resp
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(0),
                Err(e) => {
                    tracing::error!(error = %e, "could not reserve producer ids");
                    resp.with_error_code(code(ResponseError::KafkaStorageError))
                }
            });
        };
        let expected = (req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
        Some(
            match broker
                .txns
                .init_producer_id(&broker, &id, req.transaction_timeout_ms, expected)
                .await
            {
                Ok((pid, epoch)) => resp
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch),
                Err(ResponseError::ProducerFenced) => {
                    resp.with_error_code(code(fenced(version, FENCED_SINCE)))
                }
                Err(e) => resp.with_error_code(code(e)),
            },
        )
    }
}
