//! Who a request comes from, as Kafka's `KafkaPrincipal` names it: a type and a name, written
//! `User:alice`. ACLs (`User:alice`, `User:*`), `--super-users` and the audit of who did what
//! all speak of principals in this form, whichever way the client proved who it is: a SASL
//! login gives `User:<username>`, a TLS client certificate `User:<subject DN>`, and a connection
//! that proved nothing is `User:ANONYMOUS`.

use std::fmt;
use std::str::FromStr;

/// A principal: `User:alice`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    pub principal_type: String,
    pub name: String,
}

/// The principal type Kafka's authenticators produce.
pub const USER_TYPE: &str = "User";

impl KafkaPrincipal {
    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Self {
        KafkaPrincipal {
            principal_type: USER_TYPE.to_string(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`: a connection on a listener that authenticates nobody.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    pub fn is_anonymous(&self) -> bool {
        self.principal_type == USER_TYPE && self.name == "ANONYMOUS"
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// Why a principal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid principal {0:?}: expected TYPE:NAME, e.g. User:alice")]
pub struct PrincipalError(pub String);

impl FromStr for KafkaPrincipal {
    type Err = PrincipalError;

    /// `User:alice`; the name may itself hold colons (`User:CN=a:b`), as Kafka splits at the
    /// first one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((t, n)) if !t.is_empty() && !n.is_empty() => Ok(KafkaPrincipal {
                principal_type: t.to_string(),
                name: n.to_string(),
            }),
            _ => Err(PrincipalError(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_as_kafka_does() {
        let p: KafkaPrincipal = "User:CN=client,O=datasync:x".parse().unwrap();
        assert_eq!(p.principal_type, "User");
        assert_eq!(p.name, "CN=client,O=datasync:x");
        assert_eq!(p.to_string(), "User:CN=client,O=datasync:x");
        assert!("alice".parse::<KafkaPrincipal>().is_err());
        assert!("User:".parse::<KafkaPrincipal>().is_err());
        assert!(KafkaPrincipal::anonymous().is_anonymous());
        assert_eq!(KafkaPrincipal::user("a").to_string(), "User:a");
    }
}
