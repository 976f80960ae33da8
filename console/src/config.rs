//! The console's settings: flags with environment variables, as every datasync binary.

use std::time::Duration;

/// Where the console listens and what it looks at.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    version,
    about = "Web console for datasync (and any Kafka cluster with Kafka Connect)"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CONSOLE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: String,
    /// Kafka bootstrap servers (datasync's broker or any Kafka).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    /// Kafka Connect REST URLs, comma-separated: the first that answers is used. Empty: no
    /// connectors pages.
    #[arg(
        long,
        env = "CONNECT_URLS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8083"
    )]
    pub connect_urls: Vec<String>,
    /// The broker's Prometheus endpoint (datasync's broker: `http://HOST:9644/metrics`): the
    /// overview then charts the broker's own counters (records and bytes in and out, open
    /// connections). Without it, throughput is derived from end offsets.
    #[arg(long, env = "BROKER_METRICS_URL")]
    pub metrics_url: Option<String>,
    /// Refuse every change (create, delete, produce, reset, connector actions).
    #[arg(long, env = "CONSOLE_READ_ONLY", default_value_t = false)]
    pub read_only: bool,
    /// `user:password` for HTTP basic auth on every page; none by default.
    #[arg(long, env = "CONSOLE_BASIC_AUTH")]
    pub basic_auth: Option<String>,
    /// `user:password` the console sends to Kafka Connect (a worker with
    /// `--rest-basic-auth-users-file`).
    #[arg(long, env = "CONNECT_BASIC_AUTH", hide_env_values = true)]
    pub connect_basic_auth: Option<String>,
    /// PEM file of the CA that signs the Connect workers' HTTPS certificates (`https://` URLs
    /// in `--connect-urls`); the system's roots when unset.
    #[arg(long, env = "CONNECT_SSL_CA_LOCATION")]
    pub connect_ssl_ca_location: Option<std::path::PathBuf>,
    /// How the console reaches the cluster: `--kafka-security-protocol`, `--kafka-sasl-*`,
    /// `--kafka-ssl-*`, as every datasync client takes them.
    #[command(flatten)]
    pub kafka: kafka_client_config::KafkaSecurityArgs,
    /// Upper bound of one request to the cluster or to Kafka Connect; beyond it: 503.
    #[arg(long, env = "CONSOLE_REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    pub request_timeout_ms: u64,
    /// How often throughput and lag are sampled for the charts.
    #[arg(long, env = "CONSOLE_SAMPLE_INTERVAL_MS", default_value_t = 5000)]
    pub sample_interval_ms: u64,
}

impl Config {
    /// Settings for a console on `bootstrap` and `connect` (tests).
    pub fn new(bootstrap: &str, connect: Option<&str>) -> Self {
        Config {
            listen: "127.0.0.1:0".into(),
            bootstrap_servers: bootstrap.into(),
            connect_urls: connect.map(|c| vec![c.to_string()]).unwrap_or_default(),
            metrics_url: None,
            read_only: false,
            basic_auth: None,
            connect_basic_auth: None,
            connect_ssl_ca_location: None,
            kafka: Default::default(),
            request_timeout_ms: 5000,
            sample_interval_ms: 1000,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}
