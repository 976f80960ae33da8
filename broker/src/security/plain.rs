//! SASL/PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd` in one message, checked against the
//! users file. Only safe over TLS or a trusted network, as Kafka's documentation warns: the
//! password crosses the wire as is.

use subtle::ConstantTimeEq;

use super::users::Users;

/// Why a PLAIN message was refused (answered with SASL_AUTHENTICATION_FAILED).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("malformed SASL/PLAIN message: {0}")]
    Malformed(&'static str),
    #[error("authentication failed: invalid username or password")]
    BadCredentials,
}

/// Checks one PLAIN message; the authenticated user name on success.
pub fn authenticate(users: &Users, message: &[u8]) -> Result<String, PlainError> {
    let mut parts = message.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PlainError::Malformed(
            "expected [authzid] NUL user NUL password",
        ));
    };
    let user =
        std::str::from_utf8(user).map_err(|_| PlainError::Malformed("user name is not UTF-8"))?;
    if user.is_empty() || password.is_empty() {
        return Err(PlainError::Malformed("empty user name or password"));
    }
    // As Kafka: an authorization id other than the user is refused.
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(PlainError::BadCredentials);
    }
    match users.password(user) {
        Some(expected) if bool::from(expected.as_bytes().ct_eq(password)) => Ok(user.to_string()),
        _ => Err(PlainError::BadCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_password_only() {
        let users = Users::parse("alice=alice-secret\n").unwrap();
        assert_eq!(
            authenticate(&users, b"\0alice\0alice-secret").unwrap(),
            "alice"
        );
        assert_eq!(
            authenticate(&users, b"alice\0alice\0alice-secret").unwrap(),
            "alice"
        );
        for bad in [
            &b"\0alice\0wrong"[..],
            b"\0bob\0alice-secret",
            b"bob\0alice\0alice-secret",
            b"\0alice\0alice-secret-and-more",
        ] {
            assert_eq!(authenticate(&users, bad), Err(PlainError::BadCredentials));
        }
        for bad in [
            &b""[..],
            b"\0alice",
            b"\0\0x",
            b"\0alice\0",
            b"a\0b\0c\0d",
            b"\0\xff\0x",
        ] {
            assert!(matches!(
                authenticate(&users, bad),
                Err(PlainError::Malformed(_))
            ));
        }
    }
}
