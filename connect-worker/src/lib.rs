//! `connect-worker`: a Kafka Connect-compatible worker.
//!
//! It speaks only the Kafka protocol (through librdkafka), so it runs against datasync's broker
//! or real Kafka; it serves Kafka Connect's REST API and keeps its state in Kafka topics like
//! Kafka Connect's distributed mode. Connectors: JDBC source and sink for MariaDB/MySQL (the sink
//! exactly once) and the FileStream quickstart pair.

pub mod allowed_paths;
pub mod config_providers;
pub mod connectors;
pub mod converters;
pub mod data;
pub mod distributed;
pub mod error;
pub mod herder;
pub mod metrics;
pub mod override_policy;
pub mod rest;
pub mod storage;
pub mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use crate::allowed_paths::AllowedPaths;
pub use crate::error::WorkerError;
use crate::herder::Herder;
use crate::storage::{kafka, ConfigStore, OffsetStore, StatusStore};
pub use crate::worker::exactly_once::ExactlyOnceSourceSupport;
use crate::worker::{StatusBoard, WorkerContext};

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "connect-worker",
    about = "Kafka Connect-compatible worker (REST API, JDBC and FileStream connectors)"
)]
pub struct Config {
    /// Address of the REST API.
    #[arg(long, env = "CONNECT_LISTEN", default_value = "0.0.0.0:8083")]
    pub listen: String,
    /// Kafka bootstrap servers (host:port,...).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    pub bootstrap_servers: String,
    /// This worker's id in statuses (default: the listen address).
    #[arg(long, env = "CONNECT_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Topic holding connector configs (compacted).
    #[arg(
        long,
        env = "CONNECT_CONFIG_STORAGE_TOPIC",
        default_value = "connect-configs"
    )]
    pub config_topic: String,
    /// Topic holding source offsets (compacted).
    #[arg(
        long,
        env = "CONNECT_OFFSET_STORAGE_TOPIC",
        default_value = "connect-offsets"
    )]
    pub offset_topic: String,
    /// Topic holding statuses (compacted).
    #[arg(
        long,
        env = "CONNECT_STATUS_STORAGE_TOPIC",
        default_value = "connect-status"
    )]
    pub status_topic: String,
    /// Default `key.converter` of connectors that set none (Confluent's images use StringConverter).
    #[arg(
        long,
        env = "CONNECT_KEY_CONVERTER",
        default_value = "org.apache.kafka.connect.storage.StringConverter"
    )]
    pub key_converter: String,
    /// Default `value.converter` of connectors that set none (JsonConverter, schemas enabled).
    #[arg(
        long,
        env = "CONNECT_VALUE_CONVERTER",
        default_value = "org.apache.kafka.connect.json.JsonConverter"
    )]
    pub value_converter: String,
    /// Directory of connector JSON files (`{"name":..,"config":{..}}`) created at start-up
    /// unless a connector of that name exists.
    #[arg(long, env = "CONNECT_CONNECTORS_DIR")]
    pub connectors_dir: Option<PathBuf>,
    /// A sink task starts its next batch at most every this many milliseconds unless the batch
    /// is already full (`batch.size`): under a trickle of records, fewer and larger transactions
    /// instead of one per few records. Adds at most this much to end-to-end latency; 0 writes
    /// as soon as anything arrives.
    #[arg(long, env = "CONNECT_SINK_LINGER_MS", default_value_t = 10)]
    pub sink_linger_ms: u64,
    /// Config providers whose placeholders connector configs may use, comma-separated, like
    /// Kafka's `config.providers`: `env` (`${env:NAME}`), `file` (`${file:PATH:KEY}`),
    /// `directory` (`${directory:DIR:FILE}`). None by default, as in Kafka: an enabled provider
    /// lets any connector config read the worker's environment or files.
    #[arg(long, env = "CONNECT_CONFIG_PROVIDERS", value_delimiter = ',')]
    pub config_providers: Vec<config_providers::Provider>,
    /// Directories whose files connectors may use, comma-separated absolute paths (Kafka's
    /// `allowed.paths`, KIP-993): the FileStream source and sink and the `file` and `directory`
    /// config providers open only paths inside them, checked after resolving `..` and symbolic
    /// links. None by default: file connectors and file placeholders are refused with a 400.
    #[arg(long, env = "CONNECT_ALLOWED_PATHS", value_delimiter = ',')]
    pub allowed_paths: Vec<PathBuf>,
    /// Which Kafka client settings a connector config may override with `producer.override.*`,
    /// `consumer.override.*` and `admin.override.*` (Kafka's
    /// `connector.client.config.override.policy`, KIP-458): `None` (no overrides), `Principal`
    /// (only `security.protocol`, `sasl.mechanism`, `sasl.jaas.config`) or `All`.
    #[arg(
        long,
        env = "CONNECT_CONNECTOR_CLIENT_CONFIG_OVERRIDE_POLICY",
        default_value = "None"
    )]
    pub connector_client_config_override_policy: override_policy::OverridePolicy,
    /// Kafka's `exactly.once.source.support` (KIP-618): `enabled` runs every source task in
    /// transactions (records and source offsets committed together, see
    /// `worker::exactly_once`); `disabled` (Kafka's default) and `preparing` leave sources at
    /// least once.
    #[arg(
        long,
        env = "CONNECT_EXACTLY_ONCE_SOURCE_SUPPORT",
        value_enum,
        default_value = "disabled"
    )]
    pub exactly_once_source_support: ExactlyOnceSourceSupport,
    /// The group of workers this one joins (Kafka's `group.id`): workers with the same group id
    /// and state topics share connectors and tasks.
    #[arg(long, env = "CONNECT_GROUP_ID", default_value = "connect-cluster")]
    pub group_id: String,
    /// The URL other workers reach this worker's REST API at (Kafka's
    /// `rest.advertised.host.name`/`port`): followers forward writes to the leader's. Default:
    /// `http://<listen address>`, with this host's name for an unspecified address.
    #[arg(long, env = "CONNECT_REST_ADVERTISED_URL")]
    pub rest_advertised_url: Option<String>,
    /// How long the leader keeps the work of a worker that left before giving it to the
    /// others, in case it comes back (Kafka's `scheduled.rebalance.max.delay.ms`, KIP-415).
    #[arg(
        long,
        env = "CONNECT_SCHEDULED_REBALANCE_MAX_DELAY_MS",
        default_value_t = 300_000
    )]
    pub scheduled_rebalance_max_delay_ms: i64,
    /// A worker not heard from for this long leaves the group (Kafka's `session.timeout.ms`).
    #[arg(long, env = "CONNECT_SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    pub session_timeout_ms: i32,
    /// Kafka's `heartbeat.interval.ms`.
    #[arg(long, env = "CONNECT_HEARTBEAT_INTERVAL_MS", default_value_t = 3_000)]
    pub heartbeat_interval_ms: u64,
    /// How long a rebalance waits for every worker to rejoin (Kafka's `rebalance.timeout.ms`).
    #[arg(long, env = "CONNECT_REBALANCE_TIMEOUT_MS", default_value_t = 60_000)]
    pub rebalance_timeout_ms: i32,
    /// How long a worker waits to read the config topic to the leader's offset before giving up
    /// on a rebalance round (Kafka's `worker.sync.timeout.ms`).
    #[arg(long, env = "CONNECT_WORKER_SYNC_TIMEOUT_MS", default_value_t = 3_000)]
    pub worker_sync_timeout_ms: u64,
    /// Test hook, not a flag: while set, the worker's requests to the group coordinator hang
    /// as over a frozen connection (its producers and consumers are unaffected).
    #[arg(skip)]
    pub freeze_group: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Serve the REST API over HTTPS with this PEM certificate chain (Kafka Connect's
    /// `listeners=https://...` with `listeners.https.ssl.*`); needs the key too.
    #[arg(long, env = "CONNECT_REST_SSL_CERTIFICATE_LOCATION")]
    pub rest_ssl_certificate_location: Option<PathBuf>,
    /// The PEM private key of `--rest-ssl-certificate-location`.
    #[arg(long, env = "CONNECT_REST_SSL_KEY_LOCATION")]
    pub rest_ssl_key_location: Option<PathBuf>,
    /// PEM CA certificates: client certificates are checked against them, and a follower
    /// trusts them when forwarding to the leader over HTTPS.
    #[arg(long, env = "CONNECT_REST_SSL_CA_LOCATION")]
    pub rest_ssl_ca_location: Option<PathBuf>,
    /// Client certificates (Kafka's `listeners.https.ssl.client.authentication`): `none`,
    /// `requested` or `required`.
    #[arg(
        long,
        env = "CONNECT_REST_SSL_CLIENT_AUTH",
        value_enum,
        default_value = "none"
    )]
    pub rest_ssl_client_auth: rest::tls::ClientAuth,
    /// Require HTTP basic authentication against this file of `user: password` lines (Kafka
    /// Connect's `BasicAuthSecurityRestExtension` with JAAS `PropertyFileLoginModule`).
    #[arg(long, env = "CONNECT_REST_BASIC_AUTH_USERS_FILE")]
    pub rest_basic_auth_users_file: Option<PathBuf>,
    /// How the worker's Kafka clients authenticate (`--kafka-security-protocol`, SASL, SSL,
    /// `--kafka-property`): its internal producer, consumers and admin client and its tasks'
    /// clients (a connector's allowed `*.override.*` settings come after these).
    #[command(flatten)]
    pub kafka: kafka_client_config::KafkaSecurityArgs,
}

impl Config {
    pub fn new(bootstrap_servers: &str) -> Self {
        Config {
            listen: "127.0.0.1:0".into(),
            bootstrap_servers: bootstrap_servers.into(),
            worker_id: None,
            config_topic: "connect-configs".into(),
            offset_topic: "connect-offsets".into(),
            status_topic: "connect-status".into(),
            connectors_dir: None,
            key_converter: converters::STRING_CONVERTER.into(),
            value_converter: converters::JSON_CONVERTER.into(),
            sink_linger_ms: 10,
            config_providers: Vec::new(),
            allowed_paths: Vec::new(),
            connector_client_config_override_policy: override_policy::OverridePolicy::None,
            exactly_once_source_support: ExactlyOnceSourceSupport::Disabled,
            group_id: "connect-cluster".into(),
            rest_advertised_url: None,
            scheduled_rebalance_max_delay_ms: 300_000,
            session_timeout_ms: 10_000,
            heartbeat_interval_ms: 3_000,
            rebalance_timeout_ms: 60_000,
            worker_sync_timeout_ms: 3_000,
            freeze_group: Default::default(),
            rest_ssl_certificate_location: None,
            rest_ssl_key_location: None,
            rest_ssl_ca_location: None,
            rest_ssl_client_auth: rest::tls::ClientAuth::None,
            rest_basic_auth_users_file: None,
            kafka: Default::default(),
        }
    }
}

/// Runs the worker on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    let addr = listener.local_addr().map_err(WorkerError::Listener)?;
    let worker_id = config.worker_id.clone().unwrap_or_else(|| addr.to_string());
    // The REST security settings first: a bad file stops the worker before it joins anything.
    let rest_tls = rest::tls::RestTls::from_flags(
        config.rest_ssl_certificate_location.as_deref(),
        config.rest_ssl_key_location.as_deref(),
        config.rest_ssl_ca_location.as_deref(),
        config.rest_ssl_client_auth,
    )?;
    let tls_config = rest_tls
        .as_ref()
        .map(rest::tls::RestTls::server_config)
        .transpose()?;
    let security = rest::RestSecurity {
        basic_auth: config
            .rest_basic_auth_users_file
            .as_deref()
            .map(rest::basic_auth::BasicAuth::load)
            .transpose()?,
        forward_client: rest::tls::forward_client(rest_tls.as_ref())?,
    };
    let bootstrap = config.kafka.connection(&config.bootstrap_servers)?;
    if !bootstrap.properties.is_empty() {
        // librdkafka retries a refused login forever: fail clearly instead.
        match bootstrap.check(std::time::Duration::from_secs(10)).await {
            Ok(()) => {}
            Err(e @ kafka_client_config::SecurityConfigError::Unreachable { .. }) => {
                tracing::warn!(error = %e, "Kafka not reachable yet");
            }
            Err(e) => return Err(e.into()),
        }
    }
    // An empty CONNECT_ALLOWED_PATHS (or a trailing comma) allows nothing more.
    let allowed_dirs: Vec<PathBuf> = config
        .allowed_paths
        .iter()
        .filter(|p| !p.as_os_str().is_empty())
        .cloned()
        .collect();
    let allowed_paths = AllowedPaths::new(&allowed_dirs)?;
    for (topic, partitions) in [
        (&config.config_topic, 1),
        (&config.offset_topic, 5),
        (&config.status_topic, 5),
    ] {
        kafka::ensure_topic(&bootstrap, topic, partitions, true)
            .await
            .map_err(|source| WorkerError::InternalTopic {
                topic: topic.clone(),
                bootstrap: bootstrap.bootstrap.clone(),
                source,
            })?;
    }
    // The group membership client is not librdkafka: `broker::client` reads the same
    // librdkafka properties for its TLS and SASL.
    let group_security = broker::client::ClientSecurity::from_properties(
        bootstrap.properties.iter().map(|(k, v)| (k, v)),
    )
    .map_err(|e| WorkerError::GroupSecurity(e.to_string()))?;
    let producer = kafka::producer(&bootstrap)?;
    let offsets =
        Arc::new(OffsetStore::load(&bootstrap, &config.offset_topic, producer.clone()).await?);
    let status = Arc::new(StatusBoard::new(
        &worker_id,
        StatusStore::new(&config.status_topic, producer.clone()),
    ));
    // Stops the threads following the state topics.
    let tails = tokio_util::sync::CancellationToken::new();
    let _stop_tails = tails.clone().drop_guard();
    status
        .store()
        .tail(&bootstrap, tails.clone())
        .await
        .map_err(WorkerError::StatusTopic)?;
    let store = ConfigStore::new(&config.config_topic, producer.clone());
    let view = store
        .tail(&bootstrap, tails.clone())
        .await
        .map_err(WorkerError::ConfigTopic)?;
    let ctx = Arc::new(WorkerContext {
        bootstrap: bootstrap.clone(),
        worker_id: worker_id.clone(),
        status,
        offsets,
        key_converter: config.key_converter.clone(),
        value_converter: config.value_converter.clone(),
        sink_linger: std::time::Duration::from_millis(config.sink_linger_ms),
        providers: config_providers::ConfigProviders::new(
            config.config_providers.iter().copied(),
            allowed_paths.clone(),
        ),
        allowed_paths,
        override_policy: config.connector_client_config_override_policy,
        metrics: metrics::ConnectMetrics::default(),
        exactly_once_source: config.exactly_once_source_support,
        group_id: config.group_id.clone(),
    });
    let url = config
        .rest_advertised_url
        .clone()
        .unwrap_or_else(|| advertised_url(addr, rest_tls.is_some()));
    let herder = Arc::new(Herder::new(ctx, store, &url));
    let stored = view.borrow().connectors.clone();
    herder.resume_stored(stored).await;
    let group = distributed::start(
        distributed::coordinator::CoordinatorConfig {
            bootstrap: bootstrap.bootstrap.clone(),
            security: group_security,
            group_id: config.group_id.clone(),
            url: url.clone(),
            session_timeout_ms: config.session_timeout_ms,
            rebalance_timeout_ms: config.rebalance_timeout_ms,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            max_delay_ms: config.scheduled_rebalance_max_delay_ms,
            worker_sync_timeout_ms: config.worker_sync_timeout_ms,
            freeze: config.freeze_group.clone(),
        },
        herder.clone(),
        view,
    );
    if let Some(dir) = &config.connectors_dir {
        create_from_dir(&herder, dir).await?;
    }
    let app = rest::router_with(herder.clone(), security);
    let scheme = if tls_config.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        worker_id,
        url,
        group = config.group_id,
        "listening on {scheme}://{addr}"
    );
    let served = match tls_config {
        Some(tls) => {
            let listener =
                rest::tls::TlsListener::new(listener, tls).map_err(WorkerError::Listener)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
    .map_err(WorkerError::Serve);
    group.stop(&herder).await;
    served
}

/// `http://<addr>` (`https://` with TLS), with this host's name in place of an unspecified
/// address (`0.0.0.0`).
fn advertised_url(addr: std::net::SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    if addr.ip().is_unspecified() {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("{scheme}://{host}:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    }
}

async fn create_from_dir(herder: &Herder, dir: &std::path::Path) -> Result<(), WorkerError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| WorkerError::ConnectorsDir {
            dir: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let existing = herder.names().await;
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(WorkerError::ConnectorFile)?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| WorkerError::ConnectorJson {
                file: f.clone(),
                source,
            })?;
        let name = doc
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or_else(|| WorkerError::ConnectorFileName { file: f.clone() })?;
        if existing.iter().any(|n| n == name) {
            continue;
        }
        let config = doc
            .get("config")
            .and_then(|c| c.as_object())
            .ok_or_else(|| WorkerError::ConnectorFileConfig { file: f.clone() })?
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        herder
            .put_connector(name, config, false)
            .await
            .map_err(|error| WorkerError::CreateConnector {
                file: f.clone(),
                error,
            })?;
        tracing::info!(connector = name, file = %f.display(), "created connector from file");
    }
    Ok(())
}
