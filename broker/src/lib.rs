//! datasync's broker: a durable, single-node broker that speaks the Apache Kafka wire protocol,
//! so that unmodified Kafka clients (librdkafka, kcat, kafka-python, confluent-kafka, the Java
//! tools) can produce to it and consume from it.
//!
//! The crate is a library with a thin `main.rs`: [`run`] serves on a listener it is given, so
//! tests start the real broker in-process on port 0.

pub mod api;
pub mod authorizer;
pub mod broker;
pub mod cli;
pub mod client;
pub mod config;
pub mod durable_file;
pub mod flush;
pub mod group;
pub mod http;
pub mod log;
pub mod metrics;
pub mod producer_ids;
pub mod protocol;
pub mod security;
pub mod server;
pub mod topic;
pub mod txn;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::broker::{Advertised, Broker};
pub use crate::config::{Config, FlushPolicy};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid --advertised-listener {0:?}: expected HOST:PORT")]
    AdvertisedListener(String),
    #[error("invalid --extra-listener {0:?}: expected LISTEN_ADDR=ADVERTISED_HOST:PORT, e.g. 0.0.0.0:19092=localhost:9092")]
    ExtraListener(String),
    #[error("invalid --extra-listener {spec:?}: {why}")]
    ListenerProtocol { spec: String, why: String },
    #[error("a SASL_PLAINTEXT or SASL_SSL listener needs --sasl-users-file (env BROKER_SASL_USERS_FILE)")]
    NoSaslUsers,
    #[error(transparent)]
    Tls(#[from] security::tls::TlsError),
    #[error(transparent)]
    SaslUsers(#[from] security::users::UsersError),
    #[error("invalid --http-listen {0:?}: expected HOST:PORT, e.g. 0.0.0.0:9644, or off")]
    HttpListen(String),
    #[error("could not open the data directory: {0}")]
    Storage(#[from] topic::TopicError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Parses `HOST:PORT` as an advertised address.
pub fn parse_advertised(listener: &str) -> Result<Advertised, StartError> {
    let bad = || StartError::AdvertisedListener(listener.to_string());
    let (host, port) = listener.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok(Advertised {
        host: host.to_string(),
        port: i32::from(port),
    })
}

/// Parses `--extra-listener LISTEN_ADDR=ADVERTISED_HOST:PORT`.
pub fn parse_extra_listener(spec: &str) -> Result<(SocketAddr, Advertised), StartError> {
    let bad = || StartError::ExtraListener(spec.to_string());
    let (listen, advertised) = spec.split_once('=').ok_or_else(bad)?;
    let listen: SocketAddr = listen.trim().parse().map_err(|_| bad())?;
    Ok((
        listen,
        parse_advertised(advertised.trim()).map_err(|_| bad())?,
    ))
}

/// Parses one `--extra-listener` entry, `[PROTOCOL://]LISTEN_ADDR=ADVERTISED_HOST:PORT`.
pub fn parse_listener(
    spec: &str,
) -> Result<(security::SecurityProtocol, SocketAddr, Advertised), StartError> {
    let (protocol, rest) = match spec.trim().split_once("://") {
        Some((protocol, rest)) => (
            protocol
                .parse()
                .map_err(|why| StartError::ListenerProtocol {
                    spec: spec.to_string(),
                    why,
                })?,
            rest,
        ),
        None => (security::SecurityProtocol::Plaintext, spec),
    };
    let (addr, advertised) =
        parse_extra_listener(rest).map_err(|_| StartError::ExtraListener(spec.to_string()))?;
    Ok((protocol, addr, advertised))
}

/// The address clients are told to use: the configured advertised listener, or the bound
/// address with an unspecified IP replaced by loopback.
pub fn advertised(config: &Config, bound: SocketAddr) -> Result<Advertised, StartError> {
    if let Some(listener) = &config.advertised_listener {
        return parse_advertised(listener);
    }
    let ip = match bound.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "::1".to_string(),
        ip => ip.to_string(),
    };
    Ok(Advertised {
        host: ip,
        port: i32::from(bound.port()),
    })
}

/// Opens the data directory (recovering every partition), serves Kafka clients on `listener`
/// until `shutdown` resolves, then flushes everything to disk.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    run_with_extra_listeners(config, listener, Vec::new(), shutdown).await
}

/// [`run`] with further listeners, each telling its clients its own advertised address.
pub async fn run_with_extra_listeners(
    config: Config,
    listener: TcpListener,
    extra: Vec<(TcpListener, Advertised)>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let extra = extra
        .into_iter()
        .map(|(listener, advertised)| Listener::plaintext(listener, advertised))
        .collect();
    run_with(
        config,
        Listeners {
            kafka: listener,
            extra,
            http: None,
        },
        shutdown,
    )
    .await
}

/// Everything the broker serves on, bound by the caller (tests bind port 0).
pub struct Listeners {
    /// Kafka clients, told the configured (or bound) advertised address; its security protocol
    /// is `--listen`'s (PLAINTEXT unless it says otherwise).
    pub kafka: TcpListener,
    /// Further Kafka listeners, each with its security protocol and the address its clients are
    /// told.
    pub extra: Vec<Listener>,
    /// `/metrics`, `/healthz` and `/readyz` (see [`http`]), if served.
    pub http: Option<TcpListener>,
}

/// One further Kafka listener: `PROTOCOL://LISTEN_ADDR=ADVERTISED_HOST:PORT`, bound.
pub struct Listener {
    pub listener: TcpListener,
    pub advertised: Advertised,
    /// PLAINTEXT, SASL_PLAINTEXT (a login as a user of `--sasl-users-file` first), SSL (TLS with
    /// `--ssl-certificate-location`) or SASL_SSL (both).
    pub protocol: security::SecurityProtocol,
}

impl Listener {
    pub fn plaintext(listener: TcpListener, advertised: Advertised) -> Self {
        Listener {
            listener,
            advertised,
            protocol: security::SecurityProtocol::Plaintext,
        }
    }
}

/// The TLS server configuration `config` names, if any listener needs it; every file is read
/// and checked here, before anything is served.
pub fn tls_acceptor(config: &Config) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    let settings = security::tls::TlsSettings {
        certificate: config.ssl_certificate_location.as_deref(),
        key: config.ssl_key_location.as_deref(),
        client_auth: config.ssl_client_auth.parse()?,
        truststore: config.ssl_truststore_location.as_deref(),
    };
    Ok(tokio_rustls::TlsAcceptor::from(
        security::tls::server_config(&settings)?,
    ))
}

/// Parses `--http-listen`: `None` for `off`.
pub fn parse_http_listen(spec: &str) -> Result<Option<SocketAddr>, StartError> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("off") || spec.is_empty() {
        return Ok(None);
    }
    spec.parse()
        .map(Some)
        .map_err(|_| StartError::HttpListen(spec.to_string()))
}

/// [`run`] on every listener of `listeners`.
pub async fn run_with(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let Listeners {
        kafka: listener,
        extra,
        http: http_listener,
    } = listeners;
    // `--listen`'s protocol applies to the main listener, whoever bound it.
    let main_protocol = config.listen.protocol;
    let protocols = || std::iter::once(main_protocol).chain(extra.iter().map(|l| l.protocol));
    let any_sasl = protocols().any(|p| p.is_sasl());
    let users = match (&config.sasl_users_file, any_sasl) {
        (_, false) => None,
        (None, true) => return Err(StartError::NoSaslUsers),
        (Some(path), true) => Some(security::users::Users::load(path)?),
    };
    let tls = if protocols().any(|p| p.is_tls()) {
        Some(tls_acceptor(&config)?)
    } else {
        None
    };
    let handshake_timeout = Duration::from_millis(config.ssl_handshake_timeout_ms.max(1));
    let bound = listener.local_addr()?;
    let advertised = advertised(&config, bound)?;
    let broker = Arc::new(Broker::open(config, advertised).await?);
    // The users file bootstraps the durable SCRAM store: stored credentials win (see
    // `CredentialStore::bootstrap`); PLAIN keeps the file's passwords.
    let users = match users {
        Some(users) => {
            let added = broker
                .credentials
                .bootstrap(users.passwords())
                .await
                .map_err(|e| StartError::Io(std::io::Error::other(e)))?;
            tracing::info!(
                added,
                "SCRAM credentials bootstrapped from the SASL users file"
            );
            Some(Arc::new(users.with_store(broker.credentials.clone())))
        }
        None => None,
    };
    if protocols().any(|p| p != security::SecurityProtocol::Plaintext) {
        broker.authorizer.secure();
    }
    tracing::info!(
        advertised = %format!("{}:{}", broker.advertised.host, broker.advertised.port),
        data_dir = %broker.config.data_dir.display(),
        "listening on {bound}"
    );

    let stop = broker.stopping.clone();
    let limits = server::Limits::new(&broker.config);
    let retention = tokio::spawn(enforce_retention(broker.clone(), stop.clone()));
    let cleaner = tokio::spawn(clean_logs(broker.clone(), stop.clone()));
    let group_timers = tokio::spawn(run_group_timers(broker.clone(), stop.clone()));
    let txn_timers = tokio::spawn(abort_timed_out_transactions(broker.clone(), stop.clone()));
    let primary = Arc::new(broker.advertised.clone());
    let main_security = server::Security {
        protocol: main_protocol,
        sasl: users.clone().filter(|_| main_protocol.is_sasl()),
        tls: tls.clone().filter(|_| main_protocol.is_tls()),
        handshake_timeout,
    };
    let mut servers = vec![tokio::spawn(server::serve(
        broker.clone(),
        listener,
        primary,
        main_security,
        limits.clone(),
        stop.clone(),
    ))];
    if let Some(http_listener) = http_listener {
        tracing::info!(
            "metrics and health on http://{}",
            http_listener.local_addr()?
        );
        servers.push(tokio::spawn(http::serve(
            http_listener,
            broker.clone(),
            limits.clone(),
            stop.clone(),
        )));
    }
    for Listener {
        listener: extra,
        advertised,
        protocol,
    } in extra
    {
        let security = server::Security {
            protocol,
            sasl: users.clone().filter(|_| protocol.is_sasl()),
            tls: tls.clone().filter(|_| protocol.is_tls()),
            handshake_timeout,
        };
        tracing::info!(
            advertised = %format!("{}:{}", advertised.host, advertised.port),
            %protocol,
            users = security.sasl.as_ref().map_or(0, |u| u.len()),
            ssl_client_auth = %if protocol.is_tls() { config_client_auth(&broker.config) } else { String::from("-") },
            "also listening on {}", extra.local_addr()?
        );
        servers.push(tokio::spawn(server::serve(
            broker.clone(),
            extra,
            Arc::new(advertised),
            security,
            limits.clone(),
            stop.clone(),
        )));
    }
    shutdown.await;
    tracing::info!("shutting down");
    stop.cancel();
    for server in servers {
        let _ = server.await;
    }
    let _ = retention.await;
    let _ = cleaner.await;
    let _ = group_timers.await;
    let _ = txn_timers.await;
    let flushing = broker.clone();
    let _ = tokio::task::spawn_blocking(move || flushing.topics.flush_all()).await;
    tracing::info!("stopped; everything flushed");
    Ok(())
}

fn config_client_auth(config: &Config) -> String {
    config.ssl_client_auth.trim().to_ascii_lowercase()
}

/// Expires group members whose session ran out and ends rebalances whose time is up.
async fn run_group_timers(broker: Arc<Broker>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => broker.groups.tick(),
        }
    }
}

/// Aborts transactions past their `transaction.timeout.ms`, every
/// `--transaction-abort-interval-ms`.
async fn abort_timed_out_transactions(broker: Arc<Broker>, stop: CancellationToken) {
    let period = Duration::from_millis(broker.config.transaction_abort_interval_ms.max(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => broker.txns.abort_timed_out(&broker).await,
        }
    }
}

async fn enforce_retention(broker: Arc<Broker>, stop: CancellationToken) {
    let period = Duration::from_millis(broker.config.log_retention_check_interval_ms.max(100));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let broker = broker.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            for topic in broker.topics.all() {
                for p in topic.partitions() {
                    match p.enforce_retention(now) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(topic = %topic.name, partition = p.index, segments = n, "retention deleted segments"),
                        Err(e) => tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "retention failed"),
                    }
                }
            }
        })
        .await;
    }
}

/// The log cleaner: every `--log-cleaner-backoff-ms`, compacts the partitions of compacted
/// topics that are dirty enough (see [`log::cleaner`]), one partition at a time.
async fn clean_logs(broker: Arc<Broker>, stop: CancellationToken) {
    let period = Duration::from_millis(broker.config.log_cleaner_backoff_ms.max(10));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let broker = broker.clone();
        let stop = stop.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for topic in broker.topics.all() {
                for p in topic.partitions() {
                    if stop.is_cancelled() {
                        return;
                    }
                    match p.clean(now_ms()) {
                        Ok(None) => {}
                        Ok(Some(s)) if s.segments_cleaned == 0 => {}
                        Ok(Some(s)) => tracing::info!(topic = %topic.name, partition = p.index,
                            segments = s.segments_cleaned, deleted_segments = s.segments_deleted,
                            bytes_before = s.bytes_before, bytes_after = s.bytes_after,
                            records_removed = s.records_removed, tombstones_removed = s.tombstones_removed,
                            "log cleaner compacted partition"),
                        Err(e) => tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "log cleaner failed"),
                    }
                }
            }
        })
        .await;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
