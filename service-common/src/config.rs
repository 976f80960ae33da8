//! The flags every service takes (bind address, database, registry), flattened into each
//! service's own `Config` with `#[command(flatten)]`, so that they keep one name, one environment
//! variable and one default everywhere. Every flag also reads an environment variable, so the same
//! binary runs from a shell, a compose file or a test (`Config::parse_from`).

use clap::Args;
use kafka_client_config::{KafkaConnection, KafkaSecurityArgs, SecurityConfigError};

#[derive(Clone, Args)]
pub struct CommonConfig {
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
    /// How every Kafka client of the service authenticates (`--kafka-security-protocol`, SASL,
    /// SSL, `--kafka-property`).
    #[command(flatten)]
    pub kafka: KafkaSecurityArgs,
}

impl CommonConfig {
    /// The bootstrap servers with the security settings, what the service's clients are made
    /// from.
    pub fn kafka_connection(&self) -> Result<KafkaConnection, SecurityConfigError> {
        self.kafka.connection(&self.bootstrap_servers)
    }
}

/// By hand, so that logging a configuration with `{:?}` does not show the database password.
impl std::fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("advertised_host", &self.advertised_host)
            .field("database_url", &redact_url(&self.database_url))
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("db_timeout_ms", &self.db_timeout_ms)
            .field("db_max_connections", &self.db_max_connections)
            .field("startup_timeout_secs", &self.startup_timeout_secs)
            .field("registry_topic", &self.registry_topic)
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("instance_id", &self.instance_id)
            .field("kafka", &self.kafka)
            .finish()
    }
}

/// `scheme://user:password@host/...` with the password replaced by `[hidden]`. Splits at the
/// last `@` so that an unescaped `@`, `/` or `?` in the password is hidden as well (at worst more
/// than the password is hidden, never less).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo
                .split_once(':')
                .map_or(userinfo, |(u, _)| u)
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("");
            format!("{scheme}://{user}:[hidden]@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonConfig,
    }

    #[test]
    fn debug_output_hides_the_database_password() {
        for url in [
            "mysql://root:test1357@127.0.0.1:3306/mydb",
            "mysql://root:te/st1357@db/mydb",
            "mysql://root:te@st1357@db/mydb?ssl-mode=disabled",
        ] {
            let cli = Cli::parse_from(["x", "--database-url", url]);
            let shown = format!("{:?}", cli.common);
            assert!(!shown.contains("st1357"), "{shown}");
            assert!(shown.contains("root:[hidden]@"), "{shown}");
        }
        assert_eq!(redact_url("mysql://db/mydb"), "mysql://db/mydb");
    }

    #[test]
    fn defaults() {
        let c = Cli::parse_from(["x", "--database-url", "mysql://db/mydb"]).common;
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 0));
        assert_eq!(c.bootstrap_servers, "127.0.0.1:9092");
        assert_eq!(c.registry_topic, discovery::DEFAULT_TOPIC);
        assert_eq!(
            (
                c.db_timeout_ms,
                c.db_max_connections,
                c.startup_timeout_secs
            ),
            (2000, 10, 60)
        );
        assert_eq!(c.heartbeat_ms, 2000);
        assert_eq!(c.instance_id, None);
        assert!(c.kafka_connection().unwrap().properties.is_empty());
    }

    /// The services' deployments (compose file, scripts) set these.
    #[test]
    fn environment_variables_keep_their_names() {
        let env: Vec<_> = <Cli as clap::CommandFactory>::command()
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(
            env,
            [
                "HOST",
                "PORT",
                "ADVERTISED_HOST",
                "DATABASE_URL",
                "KAFKA_BOOTSTRAP_SERVERS",
                "DB_TIMEOUT_MS",
                "DB_MAX_CONNECTIONS",
                "STARTUP_TIMEOUT_SECS",
                "REGISTRY_TOPIC",
                "HEARTBEAT_MS",
                "INSTANCE_ID",
                "KAFKA_SECURITY_PROTOCOL",
                "KAFKA_SASL_MECHANISM",
                "KAFKA_SASL_USERNAME",
                "KAFKA_SASL_PASSWORD",
                "KAFKA_SASL_PASSWORD_FILE",
                "KAFKA_SSL_CA_LOCATION",
                "KAFKA_SSL_CERTIFICATE_LOCATION",
                "KAFKA_SSL_KEY_LOCATION",
                "KAFKA_PROPERTIES",
            ]
        );
    }
}
