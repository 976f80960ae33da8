//! Kafka's rules for legal topic names, checked before a name reaches the file system, and
//! which names are Kafka's internal topics.
//!
//! Internal topics hold the broker's own state (committed offsets), so a client that deletes one
//! or deletes records from it destroys every group's progress at the next restart. Kafka's own
//! broker protects them only through ACLs (with no ACLs an admin may delete `__consumer_offsets`;
//! `kafka-topics.sh` refuses on the client side). This broker has no ACLs, so it refuses such
//! requests outright, with the error Kafka's broker gives for the other operations it refuses on
//! internal topics (appends, DeleteRecords): INVALID_TOPIC_EXCEPTION and a message that says why.

/// Longest legal topic name (Kafka's limit, so that `<name>-<partition>` fits a file name).
pub const MAX_NAME_LEN: usize = 249;

/// Kafka's internal topics (`Topic.INTERNAL_TOPICS`): Metadata flags them `is_internal`, and
/// clients may neither delete them nor delete records from them; plus this broker's own: the
/// authorizer's ACLs (see [`crate::authorizer`]) and the SCRAM credential store
/// (`security::credentials`), which Kafka keeps in its metadata log.
pub const INTERNAL_TOPICS: [&str; 4] = [
    "__consumer_offsets",
    "__transaction_state",
    crate::authorizer::ACL_TOPIC,
    "__datasync_scram_credentials",
];

/// Names a client may not create: Kafka's transaction-state topic (its transaction coordinator,
/// which this broker does not implement, owns it) and KRaft's metadata log. `__consumer_offsets`
/// is not listed: the broker creates it at start, so creating it again is TOPIC_ALREADY_EXISTS.
pub const RESERVED_NAMES: [&str; 2] = ["__transaction_state", "__cluster_metadata"];

/// Whether `name` is one of Kafka's internal topics.
pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Whether clients may not create a topic named `name`.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.contains(&name)
}

/// Why a topic name is not legal, in words a client can show.
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be \"{name}\""));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "topic name is {} characters long, longer than the maximum of {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {bad:?}; legal characters are ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{is_internal, is_reserved, validate};

    #[test]
    fn accepts_kafka_legal_names() {
        for name in ["orders", "my_topic_users", "a.b-c_D9", "__consumer_offsets"] {
            assert!(validate(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn internal_topics_are_kafkas_two_not_every_double_underscore() {
        assert!(is_internal("__consumer_offsets"));
        assert!(is_internal("__transaction_state"));
        assert!(!is_internal("__my_app_state"));
        assert!(!is_internal("orders"));
        assert!(is_reserved("__transaction_state"));
        assert!(!is_reserved("__consumer_offsets"));
    }

    #[test]
    fn rejects_illegal_names() {
        let long = "x".repeat(250);
        for name in ["", ".", "..", "a/b", "a b", "ü", "../etc", long.as_str()] {
            assert!(validate(name).is_err(), "{name}");
        }
    }
}
