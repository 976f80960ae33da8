//! Configuration: every flag also reads an environment variable.

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "user-service",
    about = "Users, login (JWT) and their orders",
    args_override_self = true
)]
pub struct Config {
    /// Address to bind (the binary only; `run` takes a bound listener).
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port to bind; 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 0)]
    pub port: u16,
    /// Host name other services use to reach this instance; default: the bound address, or
    /// 127.0.0.1 when bound to 0.0.0.0.
    #[arg(long, env = "ADVERTISED_HOST")]
    pub advertised_host: Option<String>,
    /// MariaDB, `mysql://user:password@host:port/database`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Kafka bootstrap servers (for the registry).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    /// Secret signing the login JWTs (HS512).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// Lifetime of a login JWT.
    #[arg(long, env = "JWT_EXPIRATION_SECS", default_value_t = 86_400)]
    pub jwt_expiration_secs: u64,
    /// Time allowed to one order-service instance before trying the next.
    #[arg(long, env = "ORDER_SERVICE_TIMEOUT_MS", default_value_t = 2000)]
    pub order_service_timeout_ms: u64,
    /// Upper bound of one database round trip (pool acquire included); beyond it: 503.
    #[arg(long, env = "DB_TIMEOUT_MS", default_value_t = 2000)]
    pub db_timeout_ms: u64,
    /// Connection pool size.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    /// How long start-up keeps retrying the database (migrations) before giving up.
    #[arg(long, env = "STARTUP_TIMEOUT_SECS", default_value_t = 60)]
    pub startup_timeout_secs: u64,
    /// Compacted topic used for service discovery.
    #[arg(long, env = "REGISTRY_TOPIC", default_value = discovery::DEFAULT_TOPIC)]
    pub registry_topic: String,
    /// Registry heartbeat interval; readers drop an instance after 3 missed heartbeats.
    #[arg(long, env = "HEARTBEAT_MS", default_value_t = 2000)]
    pub heartbeat_ms: u64,
    /// Registry key of this instance; default: a random UUID.
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Text of `GET /welcome`.
    #[arg(
        long,
        env = "GREETING_MESSAGE",
        default_value = "Welcome to the Simple E-commerce."
    )]
    pub greeting_message: String,
}
