//! DescribeCluster: this one broker, which is also the controller.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{code, str_bytes};
use crate::authorizer::{Operation, Requester, Resource};
use crate::broker::{Advertised, Broker};

/// Endpoint type 1 is "brokers"; 2 ("controllers") is for KRaft controllers, which we are not.
const BROKERS: i8 = 1;

pub fn describe(
    broker: &Arc<Broker>,
    advertised: &Advertised,
    who: Requester<'_>,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    // DESCRIBE on the cluster, as Kafka checks it.
    if !broker
        .authorizer
        .authorize(who, Operation::Describe, &Resource::cluster())
    {
        return DescribeClusterResponse::default()
            .with_error_code(code(ResponseError::ClusterAuthorizationFailed));
    }
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(broker.topics.cluster_id()))
        .with_controller_id(BrokerId(broker.node_id()))
        .with_endpoint_type(req.endpoint_type);
    if req.endpoint_type != BROKERS {
        return resp
            .with_error_code(code(ResponseError::UnsupportedEndpointType))
            .with_error_message(Some(str_bytes(format!(
                "endpoint type {} is not served here; use 1 (brokers)",
                req.endpoint_type
            ))));
    }
    resp.brokers = vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.node_id()))
        .with_host(str_bytes(advertised.host.clone()))
        .with_port(advertised.port)];
    resp
}
