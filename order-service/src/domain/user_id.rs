use crate::error::FieldError;

/// A user id from the path: 1 to 64 printable, non-space characters (the `user_id` column is
/// VARCHAR(64); the user-service issues UUIDs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId(String);

impl UserId {
    pub fn parse(s: String) -> Result<UserId, FieldError> {
        if s.is_empty() || s.chars().count() > 64 {
            return Err(FieldError::new("userId", "must be 1 to 64 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FieldError::new(
                "userId",
                "must not contain spaces or control characters",
            ));
        }
        Ok(UserId(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_rejects_blank_long_or_spaced_ids() {
        assert!(UserId::parse(uuid::Uuid::new_v4().to_string()).is_ok());
        assert!(UserId::parse(String::new()).is_err());
        assert!(UserId::parse("a b".into()).is_err());
        assert!(UserId::parse("x".repeat(65)).is_err());
        assert!(UserId::parse("x".repeat(64)).is_ok());
    }
}
