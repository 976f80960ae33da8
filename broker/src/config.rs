//! The broker's configuration: command-line flags that also read environment variables, so the
//! same binary is configured the same way on a laptop, in compose and in CI.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::security::SecurityProtocol;

/// When an acknowledged write reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlushPolicy {
    /// Acknowledge acks=1/acks=all writes only after an fdatasync; concurrent requests share one
    /// fsync (group commit). Survives `kill -9` and power loss.
    GroupCommit,
    /// Acknowledge once the records are in the OS page cache, with no fsync. Survives `kill -9`
    /// of the broker but not a machine crash. For speed where that is acceptable.
    Os,
}

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: u32 = 100 * 1024 * 1024;

/// Default `queued.max.request.bytes`: 128 MiB, room for one maximal request and many ordinary
/// ones. Kafka's default is unbounded; with it, eight clients each sending 100 MB of a request
/// they never finish grew the broker by 800 MB.
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: i64 = 128 * 1024 * 1024;

/// The default of `--socket-request-max-bytes`: the deprecated `BROKER_MAX_REQUEST_BYTES` if it
/// is set (so old deployments keep their limit), else Kafka's default.
fn legacy_max_request_bytes() -> u32 {
    std::env::var("BROKER_MAX_REQUEST_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_REQUEST_BYTES)
}

/// `--super-users`, parsed: principals as `User:name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuperUsers(pub Vec<String>);

fn parse_super_users(spec: &str) -> Result<SuperUsers, String> {
    crate::authorizer::parse_super_users(spec).map(SuperUsers)
}

/// Flags of the broker server.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on for Kafka clients, `[PROTOCOL://]ADDR`: PROTOCOL as for
    /// `--extra-listener` (default `PLAINTEXT`), so a broker may serve only SASL_SSL, as Kafka's
    /// `listeners=SASL_SSL://:9093` does.
    #[arg(long, env = "BROKER_LISTEN", default_value = "0.0.0.0:9092")]
    pub listen: ListenAddr,

    /// HOST:PORT that Metadata hands to clients. Defaults to the bound listen address, with
    /// 0.0.0.0 replaced by 127.0.0.1.
    #[arg(long, env = "BROKER_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,

    /// Further listeners, comma-separated, each `[PROTOCOL://]LISTEN_ADDR=ADVERTISED_HOST:PORT`:
    /// clients connecting there are told the second address (Kafka's internal/external
    /// listeners). PROTOCOL is `PLAINTEXT` (the default), `SASL_PLAINTEXT` (clients must
    /// authenticate with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 as a user of
    /// `--sasl-users-file`), `SSL` (TLS, see `--ssl-certificate-location`) or `SASL_SSL` (both).
    /// Compose uses it so that containers reach `broker:9092` while the
    /// host reaches `localhost:9092`.
    #[arg(long, env = "BROKER_EXTRA_LISTENER")]
    pub extra_listener: Option<String>,

    /// The users SASL listeners accept: one `NAME=PASSWORD` per line (`#` comments), like the
    /// `user_NAME="PASSWORD"` entries of Kafka's PLAIN JAAS file.
    #[arg(long, env = "BROKER_SASL_USERS_FILE")]
    pub sasl_users_file: Option<PathBuf>,

    /// Principals that may do anything, whatever the ACLs say, separated by semicolons
    /// (Kafka's `super.users`): `User:admin;User:CN=broker,O=datasync`.
    #[arg(long, env = "BROKER_SUPER_USERS", value_parser = parse_super_users)]
    pub super_users: Option<SuperUsers>,

    /// Allow a request when no ACL covers its resource at all (Kafka's
    /// `allow.everyone.if.no.acl.found`). Without it, once authorization is on (an
    /// authenticating listener or any ACL exists), such requests are refused.
    #[arg(long, env = "BROKER_ALLOW_EVERYONE_IF_NO_ACL_FOUND")]
    pub allow_everyone_if_no_acl_found: bool,
    /// The certificate chain (PEM, leaf first) SSL and SASL_SSL listeners present (Kafka's
    /// `ssl.keystore.location`, in librdkafka's name).
    #[arg(long, env = "BROKER_SSL_CERTIFICATE_LOCATION")]
    pub ssl_certificate_location: Option<PathBuf>,

    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of `--ssl-certificate-location`.
    #[arg(long, env = "BROKER_SSL_KEY_LOCATION")]
    pub ssl_key_location: Option<PathBuf>,

    /// Whether TLS listeners ask clients for a certificate (Kafka's `ssl.client.auth`): `none`,
    /// `requested` (verified if sent) or `required`. A verified certificate names the principal,
    /// `User:<subject DN>`.
    #[arg(long, env = "BROKER_SSL_CLIENT_AUTH", default_value = "none")]
    pub ssl_client_auth: String,

    /// The CA certificates (PEM bundle) client certificates must chain to (Kafka's
    /// `ssl.truststore.location`); needed unless `--ssl-client-auth none`.
    #[arg(long, env = "BROKER_SSL_TRUSTSTORE_LOCATION")]
    pub ssl_truststore_location: Option<PathBuf>,

    /// How long a client has to complete its TLS handshake.
    #[arg(
        long,
        env = "BROKER_SSL_HANDSHAKE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub ssl_handshake_timeout_ms: u64,

    /// Address of the HTTP listener serving `/metrics` (Prometheus), `/healthz` and `/readyz`
    /// (Redpanda's admin port by default). `off` serves none.
    #[arg(long, env = "BROKER_HTTP_LISTEN", default_value = "0.0.0.0:9644")]
    pub http_listen: String,

    /// Directory holding topic metadata and partition logs.
    #[arg(long, env = "BROKER_DATA_DIR", default_value = "./data/broker")]
    pub data_dir: PathBuf,

    /// Partitions of a topic that is auto-created or created with num_partitions = -1.
    #[arg(long, env = "BROKER_DEFAULT_PARTITIONS", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub default_partitions: i32,

    /// Create a topic when a client asks Metadata for one that does not exist.
    #[arg(long, env = "BROKER_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Size at which a partition's active segment is closed and a new one started
    /// (default for the topic config `segment.bytes`).
    #[arg(long, env = "BROKER_LOG_SEGMENT_BYTES", default_value_t = 1 << 30, value_parser = clap::value_parser!(u64).range(14..=(u32::MAX as u64)))]
    pub log_segment_bytes: u64,

    /// How long records are kept (default for the topic config `retention.ms`; -1 = forever).
    #[arg(long, env = "BROKER_LOG_RETENTION_MS", default_value_t = 7 * 24 * 3600 * 1000, allow_negative_numbers = true)]
    pub log_retention_ms: i64,

    /// Bytes kept per partition (default for the topic config `retention.bytes`; -1 = no limit).
    #[arg(long, env = "BROKER_LOG_RETENTION_BYTES", default_value_t = -1, allow_negative_numbers = true)]
    pub log_retention_bytes: i64,

    /// How often retention is enforced.
    #[arg(
        long,
        env = "BROKER_LOG_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 300_000
    )]
    pub log_retention_check_interval_ms: u64,

    /// How often the log cleaner looks for compacted partitions (`cleanup.policy=compact`)
    /// that are dirty enough to clean.
    #[arg(long, env = "BROKER_LOG_CLEANER_BACKOFF_MS", default_value_t = 15_000)]
    pub log_cleaner_backoff_ms: u64,

    /// Largest record batch a producer may send (default for the topic config
    /// `max.message.bytes`).
    #[arg(long, env = "BROKER_MESSAGE_MAX_BYTES", default_value_t = 1_048_588, value_parser = clap::value_parser!(i32).range(64..))]
    pub message_max_bytes: i32,

    /// Largest request frame accepted; a larger one closes the connection (Kafka's
    /// `socket.request.max.bytes`). `--max-request-bytes` and `BROKER_MAX_REQUEST_BYTES`, the
    /// old names, still work.
    #[arg(
        long = "socket-request-max-bytes",
        visible_alias = "max-request-bytes",
        env = "BROKER_SOCKET_REQUEST_MAX_BYTES",
        default_value_t = legacy_max_request_bytes(),
        value_parser = clap::value_parser!(u32).range(64..=(i32::MAX as i64)),
    )]
    pub max_request_bytes: u32,

    /// Bytes of requests being read or served at once, over all connections (Kafka's
    /// `queued.max.request.bytes`): a connection whose next frame does not fit waits, unread,
    /// until earlier requests are done. At least one frame of `--socket-request-max-bytes`
    /// always fits. `-1` = no limit (Kafka's default; here the default bounds memory).
    #[arg(
        long,
        env = "BROKER_QUEUED_MAX_REQUEST_BYTES",
        default_value_t = DEFAULT_QUEUED_MAX_REQUEST_BYTES,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i64).range(-1..),
    )]
    pub queued_max_request_bytes: i64,

    /// A connection with no request read and no response written for this long is closed
    /// (Kafka's `connections.max.idle.ms`).
    #[arg(
        long,
        env = "BROKER_CONNECTIONS_MAX_IDLE_MS",
        default_value_t = 600_000
    )]
    pub connections_max_idle_ms: u64,

    /// A request whose first bytes have arrived must be complete within this time, or the
    /// connection is closed: a half-sent frame holds no memory and no budget for longer.
    #[arg(long, env = "BROKER_REQUEST_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_read_timeout_ms: u64,

    /// Most client connections open at once over all listeners (Kafka's `max.connections`);
    /// one more is accepted and closed at once.
    #[arg(long, env = "BROKER_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Most connections open at once from one IP address (Kafka's
    /// `max.connections.per.ip`); one more is accepted and closed at once.
    #[arg(long, env = "BROKER_MAX_CONNECTIONS_PER_IP", default_value_t = i32::MAX as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: u32,

    /// Longest a Fetch waits for data, whatever `max_wait_ms` it asks for (answering early
    /// with what there is is always allowed; clients simply fetch again).
    #[arg(long, env = "BROKER_MAX_FETCH_WAIT_MS", default_value_t = 30_000)]
    pub max_fetch_wait_ms: u64,

    /// When acknowledged records are made durable.
    #[arg(long, env = "BROKER_FLUSH_POLICY", value_enum, default_value_t = FlushPolicy::GroupCommit)]
    pub flush_policy: FlushPolicy,

    /// Shortest session timeout a consumer group member may ask for.
    #[arg(
        long,
        env = "BROKER_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6_000
    )]
    pub group_min_session_timeout_ms: u64,

    /// Longest session timeout a consumer group member may ask for.
    #[arg(
        long,
        env = "BROKER_GROUP_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    pub group_max_session_timeout_ms: u64,

    /// How long the first rebalance of an empty group waits for more members to join.
    #[arg(
        long,
        env = "BROKER_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 0
    )]
    pub group_initial_rebalance_delay_ms: u64,

    /// This broker's node id in Metadata.
    #[arg(long, env = "BROKER_NODE_ID", default_value_t = 1)]
    pub node_id: i32,

    /// Longest `transaction.timeout.ms` a transactional producer may ask for
    /// (`transaction.max.timeout.ms`); InitProducerId with more gets INVALID_TRANSACTION_TIMEOUT.
    #[arg(long, env = "BROKER_TRANSACTION_MAX_TIMEOUT_MS", default_value_t = 900_000,
        value_parser = clap::value_parser!(i32).range(1..))]
    pub transaction_max_timeout_ms: i32,

    /// How often the transaction coordinator looks for open transactions past their timeout and
    /// aborts them (`transaction.abort.timed.out.transaction.cleanup.interval.ms`).
    #[arg(
        long,
        env = "BROKER_TRANSACTION_ABORT_INTERVAL_MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(10..)
    )]
    pub transaction_abort_interval_ms: u64,
}

impl Config {
    /// The request-byte budget in force: `queued.max.request.bytes`, raised to one maximal frame
    /// if set lower, or `None` for no limit.
    pub fn request_byte_budget(&self) -> Option<usize> {
        let max_frame = self.max_request_bytes as usize;
        usize::try_from(self.queued_max_request_bytes)
            .ok()
            .map(|budget| budget.max(max_frame))
    }

    /// A configuration for tests and embedding: the documented defaults, with the given data
    /// directory and a listen address on loopback with a port the OS picks. Environment variables
    /// are not read, so tests are not steered by the environment.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: ListenAddr {
                protocol: SecurityProtocol::Plaintext,
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            },
            advertised_listener: None,
            extra_listener: None,
            sasl_users_file: None,
            super_users: None,
            allow_everyone_if_no_acl_found: false,
            ssl_certificate_location: None,
            ssl_key_location: None,
            ssl_client_auth: "none".into(),
            ssl_truststore_location: None,
            ssl_handshake_timeout_ms: 10_000,
            http_listen: "off".into(),
            data_dir: data_dir.into(),
            default_partitions: 1,
            auto_create_topics: true,
            log_segment_bytes: 1 << 30,
            log_retention_ms: 7 * 24 * 3600 * 1000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_cleaner_backoff_ms: 15_000,
            message_max_bytes: 1_048_588,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            queued_max_request_bytes: DEFAULT_QUEUED_MAX_REQUEST_BYTES,
            connections_max_idle_ms: 600_000,
            request_read_timeout_ms: 30_000,
            max_connections: 10_000,
            max_connections_per_ip: i32::MAX as u32,
            max_fetch_wait_ms: 30_000,
            flush_policy: FlushPolicy::GroupCommit,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 0,
            node_id: 1,
            transaction_max_timeout_ms: 900_000,
            transaction_abort_interval_ms: 10_000,
        }
    }
}

/// `--listen`: a socket address with the security protocol of the listener bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr {
    pub protocol: SecurityProtocol,
    pub addr: SocketAddr,
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    /// `[PROTOCOL://]HOST:PORT` with an IP address for the host.
    fn from_str(s: &str) -> Result<Self, String> {
        let (protocol, addr) = match s.trim().split_once("://") {
            Some((protocol, addr)) => (protocol.parse::<SecurityProtocol>()?, addr),
            None => (SecurityProtocol::Plaintext, s.trim()),
        };
        let addr = addr.parse().map_err(|_| {
            format!("{addr:?} is not an IP address with a port (e.g. 0.0.0.0:9092)")
        })?;
        Ok(ListenAddr { protocol, addr })
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.protocol, self.addr)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn listen_takes_an_optional_protocol() {
        let plain: ListenAddr = "0.0.0.0:9092".parse().expect("plain");
        assert_eq!(plain.protocol, SecurityProtocol::Plaintext);
        assert_eq!(plain.to_string(), "PLAINTEXT://0.0.0.0:9092");
        let secure: ListenAddr = "sasl_ssl://127.0.0.1:9093".parse().expect("secure");
        assert_eq!(secure.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(secure.addr, SocketAddr::from(([127, 0, 0, 1], 9093)));
        for bad in ["", "9092", "localhost:9092", "TLS://0.0.0.0:9092", "SSL://"] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kafka_named_limits_parse_and_the_old_request_size_flag_still_works() {
        let parsed = Flags::try_parse_from([
            "broker",
            "--max-request-bytes",
            "2000",
            "--queued-max-request-bytes",
            "-1",
            "--connections-max-idle-ms",
            "5",
            "--max-connections",
            "7",
            "--max-connections-per-ip",
            "3",
        ])
        .expect("flags");
        let c = parsed.config;
        assert_eq!(c.max_request_bytes, 2000);
        assert_eq!(c.request_byte_budget(), None);
        assert_eq!(
            (
                c.connections_max_idle_ms,
                c.max_connections,
                c.max_connections_per_ip
            ),
            (5, 7, 3)
        );
        let parsed =
            Flags::try_parse_from(["broker", "--socket-request-max-bytes", "4096"]).expect("flags");
        assert_eq!(parsed.config.max_request_bytes, 4096);
        assert!(Flags::try_parse_from(["broker", "--max-connections", "0"]).is_err());
        assert!(Flags::try_parse_from(["broker", "--queued-max-request-bytes", "-2"]).is_err());
    }
}
