//! Passwords (argon2id, PHC strings with a random salt) and login tokens (JWT, HS512, `sub` =
//! userId, as the tutorial's gateway expects). Hashing is CPU-heavy, so it runs on the blocking
//! pool rather than on the async workers.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub async fn hash_password(pwd: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(pwd.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// A hash (of a random password, with the same parameters as real ones) to check a login for an
/// unknown email against, so that it takes as long as for a known one.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let salt = SaltString::generate(&mut OsRng);
        let password = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_str().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    &DUMMY
}

/// Whether `pwd` matches the user's stored hash; for no user (unknown email) it is checked
/// against [`dummy_hash`] and is always false, at the same cost.
pub async fn check_login_password(pwd: String, stored: Option<String>) -> Result<bool, ApiError> {
    let known = stored.is_some();
    let stored = match stored {
        Some(s) => s,
        None => tokio::task::spawn_blocking(|| dummy_hash().to_string())
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    Ok(verify_password(pwd, stored).await? && known)
}

/// Whether `pwd` matches the stored hash (false on a malformed hash as well).
pub async fn verify_password(pwd: String, stored: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(pwd.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
}

pub fn issue_token(user_id: &str, secret: &[u8], lifetime_secs: u64) -> Result<String, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: user_id.to_string(),
        iat: now,
        // Saturating: a huge --jwt-expiration-secs must neither wrap into a token that is
        // already expired nor overflow.
        exp: now.saturating_add(i64::try_from(lifetime_secs).unwrap_or(i64::MAX)),
    };
    encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| ApiError::Internal(format!("signing failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_login_costs_a_real_check_and_never_matches() {
        let dummy = dummy_hash();
        assert!(dummy.starts_with("$argon2id$"), "a real hash: {dummy}");
        assert!(!check_login_password("anything".into(), None).await.unwrap());
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(
            check_login_password("correct horse".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!check_login_password("wrong".into(), Some(h)).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_verify_and_tokens_carry_the_user() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), h.clone())
            .await
            .unwrap());
        assert!(!verify_password("wrong horse".into(), h).await.unwrap());
        assert!(!verify_password("x".into(), "not a hash".into())
            .await
            .unwrap());

        let t = issue_token("u-1", b"secret", 60).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::HS512);
        v.validate_exp = true;
        let d = jsonwebtoken::decode::<Claims>(
            &t,
            &jsonwebtoken::DecodingKey::from_secret(b"secret"),
            &v,
        )
        .unwrap();
        assert_eq!(d.claims.sub, "u-1");
    }

    #[test]
    fn huge_lifetimes_saturate_instead_of_wrapping() {
        for lifetime in [u64::MAX, i64::MAX as u64] {
            let t = issue_token("u-1", b"secret", lifetime).unwrap();
            let d = jsonwebtoken::decode::<Claims>(
                &t,
                &jsonwebtoken::DecodingKey::from_secret(b"secret"),
                &jsonwebtoken::Validation::new(Algorithm::HS512),
            )
            .unwrap();
            assert_eq!(d.claims.exp, i64::MAX);
        }
    }
}
