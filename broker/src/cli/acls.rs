//! `broker acls`: the kafka-acls.sh subset over CreateAcls, DescribeAcls and DeleteAcls.
//! `--add` creates one ACL per (resource, principal, host, operation); `--list` and `--remove`
//! take the same flags as filters, where a flag left out matches everything (pattern type ANY
//! unless `--resource-pattern-type` says otherwise). Unlike kafka-acls.sh, `--remove` does not
//! ask for confirmation.

use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::ConnArgs;
use crate::authorizer::acl::{CLUSTER_NAME, WILDCARD};
use crate::authorizer::{AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType};
use crate::client::acls;

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("action").required(true).args(["add", "list", "remove"])))]
pub struct AclsArgs {
    /// Create ACLs.
    #[arg(long)]
    pub add: bool,
    /// List ACLs matching the resource/principal flags (all without any).
    #[arg(long)]
    pub list: bool,
    /// Remove ACLs matching the resource/principal/operation flags.
    #[arg(long)]
    pub remove: bool,
    /// Principal to allow (`User:alice`, `User:*`); repeatable.
    #[arg(long)]
    pub allow_principal: Vec<String>,
    /// Principal to deny; repeatable.
    #[arg(long)]
    pub deny_principal: Vec<String>,
    /// Host the ALLOW ACLs are for (default `*`); repeatable.
    #[arg(long)]
    pub allow_host: Vec<String>,
    /// Host the DENY ACLs are for (default `*`); repeatable.
    #[arg(long)]
    pub deny_host: Vec<String>,
    /// With --list: only ACLs of this principal.
    #[arg(long)]
    pub principal: Option<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite or All; repeatable.
    #[arg(long)]
    pub operation: Vec<String>,
    /// Topic resource; repeatable (`*` for every topic).
    #[arg(long)]
    pub topic: Vec<String>,
    /// Consumer group resource; repeatable.
    #[arg(long)]
    pub group: Vec<String>,
    /// The cluster resource.
    #[arg(long)]
    pub cluster: bool,
    /// Transactional id resource; repeatable.
    #[arg(long)]
    pub transactional_id: Vec<String>,
    /// literal or prefixed (add; default literal); any, match, literal or prefixed (list,
    /// remove; default any).
    #[arg(long)]
    pub resource_pattern_type: Option<String>,
}

impl AclsArgs {
    fn resources(&self) -> Vec<(ResourceType, String)> {
        let mut out: Vec<(ResourceType, String)> = Vec::new();
        out.extend(self.topic.iter().map(|t| (ResourceType::Topic, t.clone())));
        out.extend(self.group.iter().map(|g| (ResourceType::Group, g.clone())));
        out.extend(
            self.transactional_id
                .iter()
                .map(|t| (ResourceType::TransactionalId, t.clone())),
        );
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
        }
        out
    }

    fn operations(&self) -> anyhow::Result<Vec<Operation>> {
        self.operation
            .iter()
            .map(|o| o.parse::<Operation>().map_err(anyhow::Error::msg))
            .collect()
    }

    fn pattern_type(&self, default: PatternType) -> anyhow::Result<PatternType> {
        self.resource_pattern_type
            .as_deref()
            .map_or(Ok(default), |p| p.parse().map_err(anyhow::Error::msg))
    }

    /// (principal, host, permission) entries the flags name.
    fn entries(&self) -> Vec<(String, String, Permission)> {
        let hosts = |h: &[String]| {
            if h.is_empty() {
                vec![WILDCARD.to_string()]
            } else {
                h.to_vec()
            }
        };
        let mut out = Vec::new();
        for p in &self.allow_principal {
            for h in hosts(&self.allow_host) {
                out.push((p.clone(), h, Permission::Allow));
            }
        }
        for p in &self.deny_principal {
            for h in hosts(&self.deny_host) {
                out.push((p.clone(), h, Permission::Deny));
            }
        }
        out
    }

    /// The ACLs `--add` creates.
    pub fn bindings(&self) -> anyhow::Result<Vec<AclBinding>> {
        let pattern = self.pattern_type(PatternType::Literal)?;
        anyhow::ensure!(
            matches!(pattern, PatternType::Literal | PatternType::Prefixed),
            "--add takes --resource-pattern-type literal or prefixed"
        );
        let resources = self.resources();
        anyhow::ensure!(
            !resources.is_empty(),
            "--add needs a resource: --topic, --group, --cluster or --transactional-id"
        );
        let entries = self.entries();
        anyhow::ensure!(
            !entries.is_empty(),
            "--add needs --allow-principal or --deny-principal"
        );
        let operations = self.operations()?;
        anyhow::ensure!(!operations.is_empty(), "--add needs --operation");
        let mut out = Vec::new();
        for (rt, name) in &resources {
            for (principal, host, permission) in &entries {
                for op in &operations {
                    out.push(AclBinding::from_wire(
                        rt.code(),
                        name,
                        pattern.code(),
                        principal,
                        host,
                        op.code(),
                        permission.code(),
                    )?);
                }
            }
        }
        Ok(out)
    }

    /// The filters `--list` and `--remove` use.
    pub fn filters(&self) -> anyhow::Result<Vec<AclFilter>> {
        let pattern = self.pattern_type(PatternType::Any)?;
        let resources: Vec<(ResourceType, Option<String>)> = match self.resources() {
            r if r.is_empty() => vec![(ResourceType::Any, None)],
            r => r.into_iter().map(|(t, n)| (t, Some(n))).collect(),
        };
        let mut entries: Vec<(Option<String>, Option<String>, Permission)> = self
            .entries()
            .into_iter()
            .map(|(p, h, perm)| (Some(p), (h != WILDCARD).then_some(h), perm))
            .collect();
        if entries.is_empty() {
            entries.push((self.principal.clone(), None, Permission::Any));
        }
        let operations = match self.operations()? {
            o if o.is_empty() => vec![Operation::Any],
            o => o,
        };
        let mut out = Vec::new();
        for (rt, name) in &resources {
            for (principal, host, permission) in &entries {
                for op in &operations {
                    out.push(AclFilter {
                        resource_type: *rt,
                        resource_name: name.clone(),
                        pattern_type: pattern,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: *op,
                        permission: *permission,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Prints ACLs grouped by resource pattern, as kafka-acls.sh does.
fn print(acls: &[AclBinding]) {
    let mut last: Option<(ResourceType, &str, PatternType)> = None;
    for a in acls {
        let key = (a.resource_type, a.resource_name.as_str(), a.pattern_type);
        if last != Some(key) {
            if last.is_some() {
                println!();
            }
            println!(
                "Current ACLs for resource `ResourcePattern(resourceType={}, name={}, patternType={})`:",
                a.resource_type, a.resource_name, a.pattern_type
            );
            last = Some(key);
        }
        println!(
            " \t(principal={}, host={}, operation={}, permissionType={})",
            a.principal, a.host, a.operation, a.permission
        );
    }
}

pub async fn run(conn: &ConnArgs, args: AclsArgs) -> anyhow::Result<ExitCode> {
    // Flags are checked before connecting, so a typo fails fast.
    if args.add {
        let bindings = args.bindings()?;
        let mut cluster = conn.connect().await?;
        acls::create_acls(&mut cluster, &bindings).await?;
        println!("Adding ACLs:");
        print(&bindings);
    } else if args.list {
        let filters = args.filters()?;
        let mut cluster = conn.connect().await?;
        let mut all = Vec::new();
        for f in &filters {
            for a in acls::describe_acls(&mut cluster, f).await? {
                if !all.contains(&a) {
                    all.push(a);
                }
            }
        }
        all.sort();
        print(&all);
    } else {
        let filters = args.filters()?;
        let mut cluster = conn.connect().await?;
        let mut removed = acls::delete_acls(&mut cluster, &filters).await?;
        removed.sort();
        println!("Removed {} ACLs:", removed.len());
        print(&removed);
    }
    Ok(ExitCode::SUCCESS)
}
