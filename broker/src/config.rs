//! The broker's configuration: command-line flags that also read environment variables, so the
//! same binary is configured the same way on a laptop, in compose and in CI.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

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

/// Flags of the broker server.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on for Kafka clients.
    #[arg(long, env = "BROKER_LISTEN", default_value = "0.0.0.0:9092")]
    pub listen: SocketAddr,

    /// HOST:PORT that Metadata hands to clients. Defaults to the bound listen address, with
    /// 0.0.0.0 replaced by 127.0.0.1.
    #[arg(long, env = "BROKER_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,

    /// A second listener, as `LISTEN_ADDR=ADVERTISED_HOST:PORT`: clients connecting there are
    /// told the second address (Kafka's internal/external listeners). Compose uses it so that
    /// containers reach `broker:9092` while the host reaches `localhost:9092`.
    #[arg(long, env = "BROKER_EXTRA_LISTENER")]
    pub extra_listener: Option<String>,

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

    /// Largest request frame accepted; a larger one closes the connection.
    #[arg(long, env = "BROKER_MAX_REQUEST_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_request_bytes: usize,

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
}

impl Config {
    /// A configuration for tests and embedding: the documented defaults, with the given data
    /// directory and a listen address on loopback with a port the OS picks. Environment variables
    /// are not read, so tests are not steered by the environment.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertised_listener: None,
            extra_listener: None,
            data_dir: data_dir.into(),
            default_partitions: 1,
            auto_create_topics: true,
            log_segment_bytes: 1 << 30,
            log_retention_ms: 7 * 24 * 3600 * 1000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_cleaner_backoff_ms: 15_000,
            message_max_bytes: 1_048_588,
            max_request_bytes: 100 * 1024 * 1024,
            flush_policy: FlushPolicy::GroupCommit,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 0,
            node_id: 1,
        }
    }
}
