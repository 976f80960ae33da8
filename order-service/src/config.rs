//! Configuration: every flag also reads an environment variable, so the same binary runs from a
//! shell, a compose file or a test (tests build a `Config` with `Config::parse_from`).

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "order-service",
    about = "Orders over HTTP, published to Kafka",
    args_override_self = true
)]
pub struct Config {
    /// Address to bind (the binary only; `run` takes a bound listener).
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port to bind; 0 picks a free one (the instance registers whatever it got).
    #[arg(long, env = "PORT", default_value_t = 0)]
    pub port: u16,
    /// Host name other services use to reach this instance; default: the bound address, or
    /// 127.0.0.1 when bound to 0.0.0.0.
    #[arg(long, env = "ADVERTISED_HOST")]
    pub advertised_host: Option<String>,
    /// MariaDB, `mysql://user:password@host:port/database`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Kafka bootstrap servers (datasync's broker or any Kafka).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    /// Topic the orders are published to (and named in consistency tokens).
    #[arg(long, env = "ORDERS_TOPIC", default_value = "orders")]
    pub orders_topic: String,
    /// Partitions of the orders topic when this service has to create it.
    #[arg(long, env = "ORDERS_PARTITIONS", default_value_t = 1)]
    pub orders_partitions: i32,
    /// How long a POST waits for the broker's acknowledgement before answering 503.
    #[arg(long, env = "PUBLISH_TIMEOUT_MS", default_value_t = 3000)]
    pub publish_timeout_ms: u64,
    /// Producer `linger.ms`: batching delay, trading a little latency for throughput.
    #[arg(long, env = "PRODUCER_LINGER_MS", default_value_t = 2)]
    pub producer_linger_ms: u64,
    /// How long a GET with `X-Consistency-Token` waits for the sink before answering 503.
    #[arg(long, env = "CONSISTENCY_TIMEOUT_MS", default_value_t = 5000)]
    pub consistency_timeout_ms: u64,
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
}
