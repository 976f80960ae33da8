//! InitProducerId: a new producer id (epoch 0) for an idempotent producer. Transactional
//! producers are refused: this broker does not implement transactions.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::code;
use crate::broker::Broker;

pub fn handle(broker: &Arc<Broker>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req
        .transactional_id
        .as_ref()
        .is_some_and(|t| !t.0.is_empty())
    {
        tracing::warn!(transactional_id = ?req.transactional_id, "transactions are not supported");
        return resp.with_error_code(code(ResponseError::UnsupportedVersion));
    }
    // A producer asking to bump its epoch (KIP-360) gets a fresh id instead: with no
    // transactions there is no state that must carry over, and a new id fences the old one.
    match broker.producer_ids.next() {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::error!(error = %e, "could not reserve producer ids");
            resp.with_error_code(code(ResponseError::KafkaStorageError))
        }
    }
}
