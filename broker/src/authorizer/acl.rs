//! What an ACL is, in Kafka's model (KIP-11, KIP-290): a resource pattern (type, name, LITERAL
//! or PREFIXED) and an entry (principal, host, operation, ALLOW or DENY), with Kafka's wire
//! codes for each enum so that CreateAcls/DescribeAcls/DeleteAcls and the stored records speak
//! the same numbers as Kafka's `AclBinding`. Filters (ANY, MATCH, null names) are here too,
//! because DescribeAcls and DeleteAcls share them.

use std::fmt;
use std::str::FromStr;

/// The name a LITERAL pattern uses to mean every resource of its type.
pub const WILDCARD: &str = "*";

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:expr, $text:expr;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        impl $name {
            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code),* }
            }

            /// The value of a wire code; `None` for UNKNOWN and codes Kafka does not define.
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name (`TRANSACTIONAL_ID`, `DESCRIBE_CONFIGS`).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = String;

            /// Kafka's name in any case, with `-`/`_` or none (`Read`, `describe-configs`,
            /// `DescribeConfigs`), as kafka-acls.sh accepts them.
            fn from_str(s: &str) -> Result<Self, String> {
                let wanted: String = s
                    .chars()
                    .filter(|c| *c != '_' && *c != '-')
                    .collect::<String>()
                    .to_ascii_uppercase();
                [$($name::$variant),*]
                    .into_iter()
                    .find(|v| v.name().replace('_', "") == wanted)
                    .ok_or_else(|| format!("unknown {} {s:?}", stringify!($name)))
            }
        }
    };
}

wire_enum!(
    /// What kind of thing an ACL is about (`ResourceType`).
    ResourceType {
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
    }
);

wire_enum!(
    /// How an ACL's resource name matches (`PatternType`); ANY and MATCH only in filters.
    PatternType {
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

wire_enum!(
    /// What a request does to a resource (`AclOperation`); ANY only in filters.
    Operation {
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
    }
);

wire_enum!(
    /// Whether a matching ACL allows or denies (`AclPermissionType`); ANY only in filters.
    Permission {
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

impl Operation {
    /// The operations an ALLOW of `self` also allows (Kafka's implied operations): READ, WRITE,
    /// DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS.
    pub fn implies(self, wanted: Operation) -> bool {
        self == wanted
            || self == Operation::All
            || (wanted == Operation::Describe
                && matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ))
            || (wanted == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }
}

/// A resource a request acts on: `TOPIC orders`, `CLUSTER kafka-cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    pub resource_type: ResourceType,
    pub name: String,
}

/// The one name of the CLUSTER resource, as Kafka names it.
pub const CLUSTER_NAME: &str = "kafka-cluster";

impl Resource {
    pub fn topic(name: impl Into<String>) -> Self {
        Resource {
            resource_type: ResourceType::Topic,
            name: name.into(),
        }
    }

    pub fn group(name: impl Into<String>) -> Self {
        Resource {
            resource_type: ResourceType::Group,
            name: name.into(),
        }
    }

    pub fn transactional_id(name: impl Into<String>) -> Self {
        Resource {
            resource_type: ResourceType::TransactionalId,
            name: name.into(),
        }
    }

    pub fn cluster() -> Self {
        Resource {
            resource_type: ResourceType::Cluster,
            name: CLUSTER_NAME.into(),
        }
    }
}

/// An ACL: which resources, who, from where, what, and whether allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// Why an ACL (or filter) from a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("unknown or unspecific resource type code {0}")]
    ResourceType(i8),
    #[error("unknown or unspecific pattern type code {0}")]
    PatternType(i8),
    #[error("unknown or unspecific operation code {0}")]
    Operation(i8),
    #[error("unknown or unspecific permission type code {0}")]
    Permission(i8),
    #[error("invalid principal {0:?}: expected TYPE:NAME, e.g. User:alice")]
    Principal(String),
    #[error("an ACL needs a resource name")]
    EmptyName,
    #[error("the CLUSTER resource is named kafka-cluster, not {0:?}")]
    ClusterName(String),
}

impl AclBinding {
    /// A binding from wire codes, refusing filter-only values (ANY, MATCH) as Kafka does.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<Self, AclError> {
        let resource_type = ResourceType::from_code(resource_type)
            .filter(|t| *t != ResourceType::Any)
            .ok_or(AclError::ResourceType(resource_type))?;
        let pattern_type = PatternType::from_code(pattern_type)
            .filter(|t| matches!(t, PatternType::Literal | PatternType::Prefixed))
            .ok_or(AclError::PatternType(pattern_type))?;
        let operation = Operation::from_code(operation)
            .filter(|o| *o != Operation::Any)
            .ok_or(AclError::Operation(operation))?;
        let permission = Permission::from_code(permission)
            .filter(|p| *p != Permission::Any)
            .ok_or(AclError::Permission(permission))?;
        if principal
            .parse::<crate::security::principal::KafkaPrincipal>()
            .is_err()
        {
            return Err(AclError::Principal(principal.to_string()));
        }
        if resource_name.is_empty() {
            return Err(AclError::EmptyName);
        }
        if resource_type == ResourceType::Cluster && resource_name != CLUSTER_NAME {
            return Err(AclError::ClusterName(resource_name.to_string()));
        }
        Ok(AclBinding {
            resource_type,
            resource_name: resource_name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: if host.is_empty() {
                WILDCARD.into()
            } else {
                host.to_string()
            },
            operation,
            permission,
        })
    }

    /// Whether this ACL's resource pattern covers `resource` (LITERAL name or `*`, or PREFIXED).
    pub fn covers(&self, resource: &Resource) -> bool {
        self.resource_type == resource.resource_type
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == resource.name || self.resource_name == WILDCARD
                }
                PatternType::Prefixed => resource.name.starts_with(&self.resource_name),
                PatternType::Any | PatternType::Match => false,
            }
    }

    /// Whether this ACL's entry names `principal` (or `User:*`) connecting from `host` (or `*`).
    pub fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && (self.host == WILDCARD || self.host == host)
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(resource={}:{}:{}, principal={}, host={}, operation={}, permission={})",
            self.resource_type,
            self.pattern_type,
            self.resource_name,
            self.principal,
            self.host,
            self.operation,
            self.permission
        )
    }
}

/// Which ACLs DescribeAcls lists and DeleteAcls removes (`AclBindingFilter`): `None` and the
/// ANY codes match everything; pattern type MATCH matches every pattern that would cover a
/// resource of that name (the LITERAL name, the LITERAL `*`, PREFIXED prefixes of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// A filter from wire codes (ANY and MATCH allowed, UNKNOWN refused).
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Self, AclError> {
        Ok(AclFilter {
            resource_type: ResourceType::from_code(resource_type)
                .ok_or(AclError::ResourceType(resource_type))?,
            resource_name: resource_name.map(str::to_string),
            pattern_type: PatternType::from_code(pattern_type)
                .ok_or(AclError::PatternType(pattern_type))?,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: Operation::from_code(operation).ok_or(AclError::Operation(operation))?,
            permission: Permission::from_code(permission)
                .ok_or(AclError::Permission(permission))?,
        })
    }

    /// The filter that matches every ACL.
    pub fn any() -> Self {
        AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        }
    }

    pub fn matches(&self, acl: &AclBinding) -> bool {
        let type_ok =
            self.resource_type == ResourceType::Any || self.resource_type == acl.resource_type;
        let pattern_ok = match (self.pattern_type, &self.resource_name) {
            (PatternType::Any, None) | (PatternType::Match, None) => true,
            (PatternType::Any, Some(name)) => *name == acl.resource_name,
            (PatternType::Match, Some(name)) => match acl.pattern_type {
                PatternType::Literal => acl.resource_name == *name || acl.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&acl.resource_name),
                _ => false,
            },
            (p, name) => {
                p == acl.pattern_type && name.as_ref().is_none_or(|n| *n == acl.resource_name)
            }
        };
        type_ok
            && pattern_ok
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == Operation::Any || self.operation == acl.operation)
            && (self.permission == Permission::Any || self.permission == acl.permission)
    }
}
