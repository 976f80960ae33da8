//! Kafka's rules for legal topic names, checked before a name reaches the file system.

/// Longest legal topic name (Kafka's limit, so that `<name>-<partition>` fits a file name).
pub const MAX_NAME_LEN: usize = 249;

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
    use super::validate;

    #[test]
    fn accepts_kafka_legal_names() {
        for name in ["orders", "my_topic_users", "a.b-c_D9", "__consumer_offsets"] {
            assert!(validate(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_illegal_names() {
        let long = "x".repeat(250);
        for name in ["", ".", "..", "a/b", "a b", "ü", "../etc", long.as_str()] {
            assert!(validate(name).is_err(), "{name}");
        }
    }
}
