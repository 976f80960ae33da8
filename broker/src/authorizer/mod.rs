//! The authorizer (issue 19): Kafka's `StandardAuthorizer` semantics over the ACLs of
//! [`acl`], kept in memory for the per-request checks and durable in the compacted internal
//! topic `__datasync_acls` ([`store`]), replayed at start.
//!
//! The rules, as Kafka's: a super user (`--super-users`) may do anything; otherwise a DENY that
//! covers the resource, principal, host and operation (or ALL) wins; otherwise an ALLOW of the
//! operation, ALL, or an operation implying it (READ/WRITE/DELETE/ALTER imply DESCRIBE,
//! ALTER_CONFIGS implies DESCRIBE_CONFIGS) allows; otherwise the request is refused, unless no
//! ACL covers the resource at all and `--allow-everyone-if-no-acl-found` is set.
//!
//! When authorization is on at all: once a listener authenticates (SASL, TLS) or any ACL exists
//! (issue 19: "deny by default once any ACL or SASL listener exists"). A PLAINTEXT-only broker
//! without ACLs allows everything, as before. A PLAINTEXT connection's principal is
//! `User:ANONYMOUS`, an ordinary principal: once authorization is on, it gets what ACLs (or
//! `--super-users User:ANONYMOUS`) give it, and nothing else.

pub mod acl;
pub mod store;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

pub use acl::{
    AclBinding, AclError, AclFilter, Operation, PatternType, Permission, Resource, ResourceType,
};
pub use store::ACL_TOPIC;

use crate::flush::Flusher;
use crate::security::principal::KafkaPrincipal;
use crate::topic::{TopicError, TopicRegistry};

/// Who asks, from where: what every check needs from the connection's session.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub principal: &'a KafkaPrincipal,
    /// The client's IP address, as ACL hosts name it.
    pub host: std::net::IpAddr,
}

impl<'a> From<&'a crate::protocol::Session> for Requester<'a> {
    fn from(s: &'a crate::protocol::Session) -> Self {
        Requester {
            principal: &s.principal,
            host: s.peer.ip(),
        }
    }
}

/// Why changing the ACLs failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error("could not store ACLs: {0}")]
    Storage(String),
}

/// The ACLs and the rules that apply them.
pub struct Authorizer {
    acls: RwLock<BTreeSet<AclBinding>>,
    super_users: Vec<String>,
    allow_if_no_acl: bool,
    /// Set when an authenticating listener is served.
    secured: AtomicBool,
    store: Option<store::AclStore>,
}

impl Authorizer {
    /// An authorizer that keeps its ACLs in memory only (tests of the rules).
    pub fn in_memory(super_users: &[String], allow_if_no_acl: bool) -> Self {
        Authorizer {
            acls: RwLock::new(BTreeSet::new()),
            super_users: super_users.to_vec(),
            allow_if_no_acl,
            secured: AtomicBool::new(false),
            store: None,
        }
    }

    /// Creates `__datasync_acls` if needed and replays it.
    pub async fn open(
        topics: &TopicRegistry,
        flusher: Flusher,
        super_users: &[String],
        allow_if_no_acl: bool,
    ) -> Result<Self, TopicError> {
        let (store, acls) = store::AclStore::open(topics, flusher).await?;
        tracing::info!(acls = acls.len(), "loaded ACLs");
        let mut authorizer = Self::in_memory(super_users, allow_if_no_acl);
        *authorizer.acls.get_mut() = acls;
        authorizer.store = Some(store);
        Ok(authorizer)
    }

    /// Turns authorization on for good: the broker serves a listener that authenticates.
    pub fn secure(&self) {
        self.secured.store(true, Ordering::Relaxed);
    }

    /// Whether requests are checked at all (see the module docs).
    pub fn enabled(&self) -> bool {
        self.secured.load(Ordering::Relaxed) || !self.acls.read().is_empty()
    }

    pub fn is_super_user(&self, principal: &KafkaPrincipal) -> bool {
        let name = principal.to_string();
        self.super_users.contains(&name)
    }

    /// Whether `who` may do `op` on `resource`.
    pub fn authorize(&self, who: Requester<'_>, op: Operation, resource: &Resource) -> bool {
        if !self.enabled() || self.is_super_user(who.principal) {
            return true;
        }
        let principal = who.principal.to_string();
        let host = who.host.to_string();
        let acls = self.acls.read();
        let mut covered = false;
        let mut allowed = false;
        for acl in acls.iter().filter(|a| a.covers(resource)) {
            covered = true;
            if !acl.applies_to(&principal, &host) {
                continue;
            }
            match acl.permission {
                Permission::Deny if acl.operation == op || acl.operation == Operation::All => {
                    tracing::debug!(%principal, %host, operation = %op, acl = %acl, "authorization denied by a DENY ACL");
                    return false;
                }
                Permission::Allow if acl.operation.implies(op) => allowed = true,
                _ => {}
            }
        }
        let allowed = allowed || (!covered && self.allow_if_no_acl);
        if !allowed {
            // Kafka's authorizer logs denials (at INFO in kafka.authorizer.logger); here at
            // debug, as a refused client already sees the error.
            tracing::debug!(%principal, %host, operation = %op, resource_type = %resource.resource_type, resource = %resource.name, "authorization denied");
        }
        allowed
    }

    /// [`Authorizer::authorize`] for many resources of one type at once: the names allowed.
    pub fn allowed_names<'n>(
        &self,
        who: Requester<'_>,
        op: Operation,
        resource_type: ResourceType,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Vec<&'n str> {
        names
            .into_iter()
            .filter(|n| {
                self.authorize(
                    who,
                    op,
                    &Resource {
                        resource_type,
                        name: n.to_string(),
                    },
                )
            })
            .collect()
    }

    /// Whether `who` may do `op` on some resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`, which InitProducerId without a transactional id uses for
    /// WRITE on any topic): an ALLOW for it exists that no DENY of the same operation on every
    /// resource of the type (LITERAL `*`) cancels.
    pub fn authorize_any(
        &self,
        who: Requester<'_>,
        op: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.enabled() || self.is_super_user(who.principal) {
            return true;
        }
        let principal = who.principal.to_string();
        let host = who.host.to_string();
        let acls = self.acls.read();
        let of_type: Vec<&AclBinding> = acls
            .iter()
            .filter(|a| a.resource_type == resource_type && a.applies_to(&principal, &host))
            .collect();
        let denied_everywhere = of_type.iter().any(|a| {
            a.permission == Permission::Deny
                && (a.operation == op || a.operation == Operation::All)
                && ((a.pattern_type == PatternType::Literal && a.resource_name == acl::WILDCARD)
                    || (a.pattern_type == PatternType::Prefixed && a.resource_name.is_empty()))
        });
        if denied_everywhere {
            return false;
        }
        let allowed = of_type
            .iter()
            .any(|a| a.permission == Permission::Allow && a.operation.implies(op));
        allowed || (self.allow_if_no_acl && !acls.iter().any(|a| a.resource_type == resource_type))
    }

    /// Adds ACLs (durably, when the authorizer has a store); adding one that exists is a no-op.
    pub async fn add(&self, bindings: Vec<AclBinding>) -> Result<(), AuthorizerError> {
        let durable = {
            let mut acls = self.acls.write();
            let new: Vec<AclBinding> = bindings.into_iter().filter(|b| !acls.contains(b)).collect();
            if let Some(store) = &self.store {
                store.write(&new, true).map_err(AuthorizerError::Storage)?;
            }
            acls.extend(new);
            self.store.as_ref().map(store::AclStore::durable)
        };
        if let Some(durable) = durable {
            durable.await.map_err(AuthorizerError::Storage)?;
        }
        Ok(())
    }

    /// The ACLs `filter` matches.
    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.acls
            .read()
            .iter()
            .filter(|a| filter.matches(a))
            .cloned()
            .collect()
    }

    /// Removes (durably) the ACLs `filter` matches and returns them.
    pub async fn remove(&self, filter: &AclFilter) -> Result<Vec<AclBinding>, AuthorizerError> {
        let (removed, durable) = {
            let mut acls = self.acls.write();
            let removed: Vec<AclBinding> =
                acls.iter().filter(|a| filter.matches(a)).cloned().collect();
            if let Some(store) = &self.store {
                store
                    .write(&removed, false)
                    .map_err(AuthorizerError::Storage)?;
            }
            for r in &removed {
                acls.remove(r);
            }
            (removed, self.store.as_ref().map(store::AclStore::durable))
        };
        if let Some(durable) = durable {
            durable.await.map_err(AuthorizerError::Storage)?;
        }
        Ok(removed)
    }
}

/// Parses `--super-users`: Kafka's `super.users`, principals separated by semicolons
/// (`User:admin;User:CN=broker,O=x`; commas belong to certificate names).
pub fn parse_super_users(spec: &str) -> Result<Vec<String>, String> {
    spec.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<KafkaPrincipal>()
                .map(|p| p.to_string())
                .map_err(|e| e.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests;
