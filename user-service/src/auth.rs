//! Passwords (argon2id, PHC strings with a random salt) and login tokens (JWT, HS512, `sub` =
//! userId, as the tutorial's gateway expects). Hashing is CPU- and memory-heavy, so it runs on
//! the blocking pool rather than on the async workers, a bounded number at a time
//! ([`Passwords`]).

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Password hashing and checking, bounded: at most `workers` argon2 computations run at once
/// (each holds ~19 MiB and a core for tens of milliseconds), and a request waits at most
/// `queue_timeout` for a turn, then gets 503 with `Retry-After`. A flood of logins or sign-ups
/// thus queues briefly and sheds the rest instead of piling up blocking threads until the
/// process runs out of memory; every other endpoint keeps answering.
#[derive(Clone)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl Passwords {
    pub fn new(workers: usize, queue_timeout: Duration) -> Self {
        Passwords {
            slots: Arc::new(Semaphore::new(workers.max(1))),
            queue_timeout,
        }
    }

    /// Runs `work` on the blocking pool once a slot is free (503 if none frees up in time).
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let slot = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                ApiError::Unavailable(
                    "too many password checks in progress; retry in a moment".into(),
                )
            })?
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// The PHC string (argon2id, random salt) to store for `pwd`.
    pub async fn hash(&self, pwd: String) -> Result<String, ApiError> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(pwd.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| ApiError::Internal(format!("hashing failed: {e}")))
        })
        .await?
    }

    /// Whether `pwd` matches the user's stored hash; for no user (unknown email) it is checked
    /// against [`dummy_hash`] and is always false, at the same cost.
    pub async fn check_login(&self, pwd: String, stored: Option<String>) -> Result<bool, ApiError> {
        self.run(move || {
            let known = stored.is_some();
            let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
            verify(&pwd, &stored) && known
        })
        .await
    }
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

/// Whether `pwd` matches the stored hash (false on a malformed hash as well). Blocking.
fn verify(pwd: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(pwd.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
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

    fn passwords() -> Passwords {
        Passwords::new(2, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn an_unknown_login_costs_a_real_check_and_never_matches() {
        let p = passwords();
        let dummy = dummy_hash();
        assert!(dummy.starts_with("$argon2id$"), "a real hash: {dummy}");
        assert!(!p.check_login("anything".into(), None).await.unwrap());
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(p
            .check_login("correct horse".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!p.check_login("wrong".into(), Some(h)).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_verify_and_tokens_carry_the_user() {
        let h = passwords().hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("x", "not a hash"));

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

    #[tokio::test]
    async fn password_work_waits_for_a_slot_then_sheds_with_503() {
        let p = Passwords::new(1, Duration::from_millis(200));
        let busy = p.slots.clone().acquire_owned().await.unwrap();
        let started = std::time::Instant::now();
        let e = p.hash("correct horse".into()).await.unwrap_err();
        assert_eq!(
            e.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "{e}"
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        let e = p
            .check_login("correct horse".into(), None)
            .await
            .unwrap_err();
        assert_eq!(
            e.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "{e}"
        );

        // A slot freed while a request waits serves it.
        let waiting = tokio::spawn({
            let p = p.clone();
            async move { p.hash("correct horse".into()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(busy);
        assert!(waiting.await.unwrap().unwrap().starts_with("$argon2id$"));
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
