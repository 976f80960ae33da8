//! CreateAcls, DescribeAcls and DeleteAcls from the client side (what the Java admin client's
//! `createAcls`/`describeAcls`/`deleteAcls` send), for `broker acls`. Kept apart from
//! [`super::admin`] so that the ACL types ([`crate::authorizer::acl`]) stay one import.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use super::{check, ClientError, Cluster};
use crate::authorizer::{AclBinding, AclFilter};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A binding as the broker reported it; `None` if it used codes this client does not know.
fn binding(
    resource_type: i8,
    name: &str,
    pattern_type: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> Option<AclBinding> {
    AclBinding::from_wire(
        resource_type,
        name,
        pattern_type,
        principal,
        host,
        operation,
        permission,
    )
    .ok()
}

/// Creates `acls`; the first refused one is the error.
pub async fn create_acls(cluster: &mut Cluster, acls: &[AclBinding]) -> Result<(), ClientError> {
    let creations = acls
        .iter()
        .map(|a| {
            AclCreation::default()
                .with_resource_type(a.resource_type.code())
                .with_resource_name(s(&a.resource_name))
                .with_resource_pattern_type(a.pattern_type.code())
                .with_principal(s(&a.principal))
                .with_host(s(&a.host))
                .with_operation(a.operation.code())
                .with_permission_type(a.permission.code())
        })
        .collect();
    let resp = cluster
        .any()
        .call(CreateAclsRequest::default().with_creations(creations))
        .await?;
    for (r, a) in resp.results.iter().zip(acls) {
        check(
            r.error_code,
            || format!("creating ACL {a}"),
            r.error_message.as_deref(),
        )?;
    }
    Ok(())
}

/// The ACLs `filter` matches.
pub async fn describe_acls(
    cluster: &mut Cluster,
    filter: &AclFilter,
) -> Result<Vec<AclBinding>, ClientError> {
    let req = DescribeAclsRequest::default()
        .with_resource_type_filter(filter.resource_type.code())
        .with_resource_name_filter(filter.resource_name.as_deref().map(s))
        .with_pattern_type_filter(filter.pattern_type.code())
        .with_principal_filter(filter.principal.as_deref().map(s))
        .with_host_filter(filter.host.as_deref().map(s))
        .with_operation(filter.operation.code())
        .with_permission_type(filter.permission.code());
    let resp = cluster.any().call(req).await?;
    check(
        resp.error_code,
        || "listing ACLs".to_string(),
        resp.error_message.as_deref(),
    )?;
    Ok(resp
        .resources
        .iter()
        .flat_map(|r| {
            r.acls.iter().filter_map(move |a| {
                binding(
                    r.resource_type,
                    &r.resource_name,
                    r.pattern_type,
                    &a.principal,
                    &a.host,
                    a.operation,
                    a.permission_type,
                )
            })
        })
        .collect())
}

/// Deletes the ACLs `filters` match and returns them.
pub async fn delete_acls(
    cluster: &mut Cluster,
    filters: &[AclFilter],
) -> Result<Vec<AclBinding>, ClientError> {
    let wire = filters
        .iter()
        .map(|f| {
            DeleteAclsFilter::default()
                .with_resource_type_filter(f.resource_type.code())
                .with_resource_name_filter(f.resource_name.as_deref().map(s))
                .with_pattern_type_filter(f.pattern_type.code())
                .with_principal_filter(f.principal.as_deref().map(s))
                .with_host_filter(f.host.as_deref().map(s))
                .with_operation(f.operation.code())
                .with_permission_type(f.permission.code())
        })
        .collect();
    let resp = cluster
        .any()
        .call(DeleteAclsRequest::default().with_filters(wire))
        .await?;
    let mut deleted = Vec::new();
    for r in &resp.filter_results {
        check(
            r.error_code,
            || "deleting ACLs".to_string(),
            r.error_message.as_deref(),
        )?;
        deleted.extend(r.matching_acls.iter().filter_map(|a| {
            binding(
                a.resource_type,
                &a.resource_name,
                a.pattern_type,
                &a.principal,
                &a.host,
                a.operation,
                a.permission_type,
            )
        }));
    }
    Ok(deleted)
}
