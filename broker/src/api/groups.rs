//! The classic group protocol: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! and DescribeGroups, ListGroups, DeleteGroups. The state machine is in `group::coordinator`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{code, str_bytes};
use crate::authorizer::{Operation, Requester, Resource, ResourceType};
use crate::broker::{Advertised, Broker};
use crate::group::{JoinOutcome, JoinRequest, JoinResult, SyncResult};

/// Whether `who` may do `op` on group `id`.
fn group_allowed(broker: &Broker, who: Requester<'_>, op: Operation, id: &str) -> bool {
    broker.authorizer.authorize(who, op, &Resource::group(id))
}

/// Who sent a request, for the group member records.
pub struct Client {
    pub client_id: String,
    pub host: String,
}

pub fn find_coordinator(
    advertised: &Advertised,
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let node = BrokerId(broker.node_id());
    let host = str_bytes(advertised.host.clone());
    let port = advertised.port;
    // DESCRIBE on the group (key type 0) or transactional id (1), as Kafka checks it.
    let refusal = |key_type: i8, key: &str| -> Option<ResponseError> {
        let (resource_type, error) = match key_type {
            1 => (
                ResourceType::TransactionalId,
                ResponseError::TransactionalIdAuthorizationFailed,
            ),
            _ => (ResourceType::Group, ResponseError::GroupAuthorizationFailed),
        };
        let resource = Resource {
            resource_type,
            name: key.to_string(),
        };
        (!broker
            .authorizer
            .authorize(who, Operation::Describe, &resource))
        .then_some(error)
    };
    if version >= 4 {
        let key_type = req.key_type;
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                if let Some(error) = refusal(key_type, key.as_str()) {
                    return Coordinator::default()
                        .with_key(key)
                        .with_node_id(BrokerId(-1))
                        .with_host(str_bytes(""))
                        .with_port(-1)
                        .with_error_code(code(error));
                }
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node)
                    .with_host(host.clone())
                    .with_port(port)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    if let Some(error) = refusal(req.key_type, req.key.as_str()) {
        return FindCoordinatorResponse::default()
            .with_error_code(code(error))
            .with_node_id(BrokerId(-1))
            .with_host(str_bytes(""))
            .with_port(-1);
    }
    FindCoordinatorResponse::default()
        .with_node_id(node)
        .with_host(host)
        .with_port(port)
}

fn opt(s: Option<StrBytes>) -> Option<String> {
    s.map(|s| s.to_string())
}

pub fn join(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: JoinGroupRequest,
    version: i16,
    client: Client,
) -> impl Future<Output = Option<JoinGroupResponse>> + Send + 'static {
    let session = Duration::from_millis(u64::try_from(req.session_timeout_ms).unwrap_or(0));
    let rebalance = if version >= 1 {
        Duration::from_millis(u64::try_from(req.rebalance_timeout_ms).unwrap_or(0))
    } else {
        session
    };
    let outcome = if !group_allowed(broker, who, Operation::Read, req.group_id.0.as_str()) {
        JoinOutcome::Now(JoinResult {
            error: code(ResponseError::GroupAuthorizationFailed),
            generation: -1,
            ..Default::default()
        })
    } else {
        broker.groups.join(JoinRequest {
            group_id: req.group_id.0.to_string(),
            member_id: req.member_id.to_string(),
            group_instance_id: opt(req.group_instance_id),
            client_id: client.client_id,
            client_host: client.host,
            session_timeout: session,
            rebalance_timeout: rebalance,
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
            require_known_member_id: version >= 4,
        })
    };
    async move {
        let result = match outcome {
            JoinOutcome::Now(r) => r,
            JoinOutcome::Later(rx) => rx.await.unwrap_or_else(|_| JoinResult {
                error: ResponseError::CoordinatorNotAvailable.code(),
                generation: -1,
                ..Default::default()
            }),
        };
        Some(join_response(result, version))
    }
}

fn join_response(r: JoinResult, version: i16) -> JoinGroupResponse {
    let mut resp = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_leader(str_bytes(r.leader))
        .with_member_id(str_bytes(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(id))
                        .with_group_instance_id(if version >= 5 {
                            instance.map(str_bytes)
                        } else {
                            None
                        })
                        .with_metadata(metadata)
                })
                .collect(),
        );
    if version >= 7 {
        resp.protocol_type = r.protocol_type.map(str_bytes);
        resp.protocol_name = r.protocol_name.map(str_bytes);
    } else {
        resp.protocol_name = Some(str_bytes(r.protocol_name.unwrap_or_default()));
    }
    resp
}

pub fn sync(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: SyncGroupRequest,
    version: i16,
) -> impl Future<Output = Option<SyncGroupResponse>> + Send + 'static {
    let outcome = if !group_allowed(broker, who, Operation::Read, req.group_id.0.as_str()) {
        Ok(SyncResult {
            error: code(ResponseError::GroupAuthorizationFailed),
            ..Default::default()
        })
    } else {
        broker.groups.sync(
            req.group_id.0.as_str(),
            req.generation_id,
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(|s| s.as_str()),
            req.assignments
                .into_iter()
                .map(|a| (a.member_id.to_string(), a.assignment))
                .collect(),
        )
    };
    async move {
        let result = match outcome {
            Ok(r) => r,
            Err(rx) => rx.await.unwrap_or_else(|_| SyncResult {
                error: ResponseError::CoordinatorNotAvailable.code(),
                ..Default::default()
            }),
        };
        let mut resp = SyncGroupResponse::default()
            .with_error_code(result.error)
            .with_assignment(result.assignment);
        if version >= 5 {
            resp.protocol_type = result.protocol_type.map(str_bytes);
            resp.protocol_name = result.protocol_name.map(str_bytes);
        }
        Some(resp)
    }
}

pub fn heartbeat(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: HeartbeatRequest,
) -> HeartbeatResponse {
    if !group_allowed(broker, who, Operation::Read, req.group_id.0.as_str()) {
        return HeartbeatResponse::default()
            .with_error_code(code(ResponseError::GroupAuthorizationFailed));
    }
    HeartbeatResponse::default().with_error_code(broker.groups.heartbeat(
        req.group_id.0.as_str(),
        req.generation_id,
        req.member_id.as_str(),
        req.group_instance_id.as_ref().map(|s| s.as_str()),
    ))
}

pub fn leave(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    if !group_allowed(broker, who, Operation::Read, req.group_id.0.as_str()) {
        return LeaveGroupResponse::default()
            .with_error_code(code(ResponseError::GroupAuthorizationFailed));
    }
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id.to_string(), opt(m.group_instance_id.clone())))
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    match broker.groups.leave(req.group_id.0.as_str(), &members) {
        Err(e) => LeaveGroupResponse::default().with_error_code(e),
        Ok(codes) if version >= 3 => LeaveGroupResponse::default().with_members(
            members
                .into_iter()
                .zip(codes)
                .map(|((id, instance), code)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(id))
                        .with_group_instance_id(instance.map(str_bytes))
                        .with_error_code(code)
                })
                .collect(),
        ),
        Ok(codes) => {
            LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(0))
        }
    }
}

pub fn describe(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let mut out = DescribedGroup::default().with_group_id(id.clone());
            if !group_allowed(broker, who, Operation::Describe, id.0.as_str()) {
                out.error_code = code(ResponseError::GroupAuthorizationFailed);
                return out;
            }
            match broker.groups.describe(id.0.as_str()) {
                Some(g) => {
                    out.group_state = str_bytes(g.state);
                    out.protocol_type = str_bytes(g.protocol_type);
                    out.protocol_data = str_bytes(g.protocol);
                    out.members = g
                        .members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(str_bytes(m.member_id))
                                .with_group_instance_id(if version >= 4 {
                                    m.instance_id.map(str_bytes)
                                } else {
                                    None
                                })
                                .with_client_id(str_bytes(m.client_id))
                                .with_client_host(str_bytes(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment)
                        })
                        .collect();
                }
                // A group known only by its committed offsets is Empty; any other is Dead.
                None if broker
                    .offsets
                    .groups()
                    .iter()
                    .any(|g| g.as_str() == id.0.as_str()) =>
                {
                    out.group_state = str_bytes("Empty");
                    out.protocol_type = str_bytes("consumer");
                }
                None => out.group_state = str_bytes("Dead"),
            }
            out
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub fn list(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let mut all = broker.groups.list();
    for g in broker.offsets.groups() {
        if !all.iter().any(|(id, _, _)| *id == g) {
            all.push((g, "consumer".to_string(), "Empty"));
        }
    }
    // DESCRIBE on the cluster lists every group; otherwise only those the principal may
    // describe (Kafka's filtering).
    if !broker
        .authorizer
        .authorize(who, Operation::Describe, &Resource::cluster())
    {
        all.retain(|(id, _, _)| group_allowed(broker, who, Operation::Describe, id));
    }
    all.sort();
    let states: Vec<String> = req
        .states_filter
        .iter()
        .map(|s| s.to_string().to_lowercase())
        .collect();
    let types: Vec<String> = req
        .types_filter
        .iter()
        .map(|s| s.to_string().to_lowercase())
        .collect();
    let groups = all
        .into_iter()
        .filter(|(_, _, state)| states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|(id, protocol_type, state)| {
            let mut g = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_protocol_type(str_bytes(protocol_type));
            if version >= 4 {
                g.group_state = str_bytes(state);
            }
            if version >= 5 {
                g.group_type = str_bytes("classic");
            }
            g
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn delete(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in req.groups_names {
        let name = id.0.to_string();
        let known =
            broker.groups.describe(&name).is_some() || broker.offsets.groups().contains(&name);
        let error = if !group_allowed(broker, who, Operation::Delete, &name) {
            code(ResponseError::GroupAuthorizationFailed)
        } else if !known {
            code(ResponseError::GroupIdNotFound)
        } else if broker.groups.has_members(&name) {
            code(ResponseError::NonEmptyGroup)
        } else {
            match broker.offsets.delete(&name, None).await {
                Ok(()) => {
                    broker.groups.remove_if_empty(&name);
                    0
                }
                Err(e) => {
                    tracing::error!(group = %name, error = %e, "could not delete group offsets");
                    code(ResponseError::KafkaStorageError)
                }
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(error),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
