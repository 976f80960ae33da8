//! Configuration: the flags every service takes ([`CommonConfig`]: bind address, database,
//! registry) and the user-service's own (JWT, order-service calls, greeting). Every flag also
//! reads an environment variable.

use clap::Parser;

pub use service_common::config::CommonConfig;

#[derive(Clone, Parser)]
#[command(
    name = "user-service",
    about = "Users, login (JWT) and their orders",
    args_override_self = true
)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonConfig,
    /// Secret signing the login JWTs (HS512).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// Lifetime of a login JWT.
    #[arg(long, env = "JWT_EXPIRATION_SECS", default_value_t = 86_400)]
    pub jwt_expiration_secs: u64,
    /// Time allowed to one order-service instance before trying the next.
    #[arg(long, env = "ORDER_SERVICE_TIMEOUT_MS", default_value_t = 2000)]
    pub order_service_timeout_ms: u64,
    /// Password hashes/checks (argon2, ~19 MiB and tens of ms of a core each) run at once;
    /// default: the number of CPUs.
    #[arg(long, env = "PASSWORD_WORKERS")]
    pub password_workers: Option<usize>,
    /// How long a sign-up or login waits for a password worker before answering 503.
    #[arg(long, env = "PASSWORD_QUEUE_TIMEOUT_MS", default_value_t = 2000)]
    pub password_queue_timeout_ms: u64,
    /// Text of `GET /welcome`.
    #[arg(
        long,
        env = "GREETING_MESSAGE",
        default_value = "Welcome to the Simple E-commerce."
    )]
    pub greeting_message: String,
}

/// By hand, so that logging a `Config` with `{:?}` shows neither the database password (hidden
/// by [`CommonConfig`]'s `Debug`) nor the JWT secret.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("common", &self.common)
            .field("jwt_secret", &"[hidden]")
            .field("jwt_expiration_secs", &self.jwt_expiration_secs)
            .field("order_service_timeout_ms", &self.order_service_timeout_ms)
            .field("password_workers", &self.password_workers)
            .field("password_queue_timeout_ms", &self.password_queue_timeout_ms)
            .field("greeting_message", &self.greeting_message)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let url = "mysql://root:te@st1357@db/mydb?ssl-mode=disabled";
        let config = Config::parse_from(["x", "--database-url", url, "--jwt-secret", "jwt-s3cret"]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("st1357"), "{shown}");
        assert!(shown.contains("root:[hidden]@"), "{shown}");
        assert!(!shown.contains("jwt-s3cret"), "{shown}");
    }
}
