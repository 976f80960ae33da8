//! CreateAcls, DescribeAcls and DeleteAcls (KIP-11, KIP-290): change and list the
//! authorizer's ACLs. Creating and deleting need ALTER on the cluster, listing DESCRIBE, as in
//! Kafka; each creation and each deletion filter gets its own error.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};

use super::{code, str_bytes, NONE};
use crate::authorizer::{AclBinding, AclFilter, Operation, Requester, Resource};
use crate::broker::Broker;

fn cluster_allowed(broker: &Broker, who: Requester<'_>, op: Operation) -> bool {
    broker.authorizer.authorize(who, op, &Resource::cluster())
}

pub async fn create(
    broker: &Broker,
    who: Requester<'_>,
    req: CreateAclsRequest,
) -> CreateAclsResponse {
    let failed = |e: ResponseError, message: String| {
        AclCreationResult::default()
            .with_error_code(code(e))
            .with_error_message(Some(str_bytes(message)))
    };
    if !cluster_allowed(broker, who, Operation::Alter) {
        let results = req
            .creations
            .iter()
            .map(|_| {
                failed(
                    ResponseError::ClusterAuthorizationFailed,
                    "ALTER on the cluster is needed to create ACLs".into(),
                )
            })
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let mut results = Vec::with_capacity(req.creations.len());
    let mut valid = Vec::new();
    for c in &req.creations {
        match AclBinding::from_wire(
            c.resource_type,
            c.resource_name.as_str(),
            c.resource_pattern_type,
            c.principal.as_str(),
            c.host.as_str(),
            c.operation,
            c.permission_type,
        ) {
            Ok(binding) => {
                valid.push((results.len(), binding));
                results.push(AclCreationResult::default());
            }
            Err(e) => results.push(failed(ResponseError::InvalidRequest, e.to_string())),
        }
    }
    let bindings = valid.iter().map(|(_, b)| b.clone()).collect();
    if let Err(e) = broker.authorizer.add(bindings).await {
        for (i, _) in &valid {
            results[*i] = failed(ResponseError::UnknownServerError, e.to_string());
        }
    } else {
        for (_, b) in &valid {
            tracing::info!(principal = %who.principal, acl = %b, "ACL created");
        }
    }
    CreateAclsResponse::default().with_results(results)
}

pub fn describe(
    broker: &Broker,
    who: Requester<'_>,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    if !cluster_allowed(broker, who, Operation::Describe) {
        return DescribeAclsResponse::default()
            .with_error_code(code(ResponseError::ClusterAuthorizationFailed))
            .with_error_message(Some(str_bytes(
                "DESCRIBE on the cluster is needed to list ACLs",
            )));
    }
    let filter = match AclFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_ref().map(|s| s.as_str()),
        req.pattern_type_filter,
        req.principal_filter.as_ref().map(|s| s.as_str()),
        req.host_filter.as_ref().map(|s| s.as_str()),
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(e) => {
            return DescribeAclsResponse::default()
                .with_error_code(code(ResponseError::InvalidRequest))
                .with_error_message(Some(str_bytes(e.to_string())))
        }
    };
    // Grouped by resource pattern, as Kafka answers (the bindings come sorted by it).
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for acl in broker.authorizer.describe(&filter) {
        let entry = AclDescription::default()
            .with_principal(str_bytes(acl.principal.clone()))
            .with_host(str_bytes(acl.host.clone()))
            .with_operation(acl.operation.code())
            .with_permission_type(acl.permission.code());
        match resources.last_mut() {
            Some(r)
                if r.resource_type == acl.resource_type.code()
                    && r.resource_name.as_str() == acl.resource_name
                    && r.pattern_type == acl.pattern_type.code() =>
            {
                r.acls.push(entry)
            }
            _ => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(acl.resource_type.code())
                    .with_resource_name(str_bytes(acl.resource_name.clone()))
                    .with_pattern_type(acl.pattern_type.code())
                    .with_acls(vec![entry]),
            ),
        }
    }
    DescribeAclsResponse::default()
        .with_error_code(NONE)
        .with_resources(resources)
}

pub async fn delete(
    broker: &Broker,
    who: Requester<'_>,
    req: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let failed = |e: ResponseError, message: String| {
        DeleteAclsFilterResult::default()
            .with_error_code(code(e))
            .with_error_message(Some(str_bytes(message)))
    };
    let allowed = cluster_allowed(broker, who, Operation::Alter);
    let mut results = Vec::with_capacity(req.filters.len());
    for f in &req.filters {
        if !allowed {
            results.push(failed(
                ResponseError::ClusterAuthorizationFailed,
                "ALTER on the cluster is needed to delete ACLs".into(),
            ));
            continue;
        }
        let filter = match AclFilter::from_wire(
            f.resource_type_filter,
            f.resource_name_filter.as_ref().map(|s| s.as_str()),
            f.pattern_type_filter,
            f.principal_filter.as_ref().map(|s| s.as_str()),
            f.host_filter.as_ref().map(|s| s.as_str()),
            f.operation,
            f.permission_type,
        ) {
            Ok(filter) => filter,
            Err(e) => {
                results.push(failed(ResponseError::InvalidRequest, e.to_string()));
                continue;
            }
        };
        match broker.authorizer.remove(&filter).await {
            Ok(removed) => {
                let matching = removed
                    .into_iter()
                    .map(|acl| {
                        tracing::info!(principal = %who.principal, acl = %acl, "ACL deleted");
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(acl.resource_type.code())
                            .with_resource_name(str_bytes(acl.resource_name))
                            .with_pattern_type(acl.pattern_type.code())
                            .with_principal(str_bytes(acl.principal))
                            .with_host(str_bytes(acl.host))
                            .with_operation(acl.operation.code())
                            .with_permission_type(acl.permission.code())
                    })
                    .collect();
                results.push(DeleteAclsFilterResult::default().with_matching_acls(matching));
            }
            Err(e) => results.push(failed(ResponseError::UnknownServerError, e.to_string())),
        }
    }
    DeleteAclsResponse::default().with_filter_results(results)
}
