//! Fixtures for integration tests that need real infrastructure.
//!
//! * [`MariaDb`]: a MariaDB server, from `DATABASE_URL` when set (each fixture then gets a fresh
//!   database on it), else a container started by testcontainers from `MARIADB_IMAGE` (default
//!   `mariadb:11.4`; CI points it at the offline stand-in). A test that finds neither Docker nor a
//!   database fails with a message saying so; it never passes silently.
//! * [`TestBroker`]: datasync's broker running in-process on a loopback port and a temporary
//!   data directory; with [`TestBroker::start_sasl`], also a SASL_PLAINTEXT listener.
//! * [`Burrow`] and [`ZooKeeper`]: LinkedIn Burrow and the ZooKeeper it needs, from Debian's
//!   packages, reading the broker as they read Kafka.
//! * [`Certs`]: a CA, server and client certificates from `scripts/make-certs.sh`.
//! * [`FaultProxy`]: a TCP proxy a test puts between a service and a server, to make the server
//!   unreachable or unresponsive without touching it (so fault tests also run against a
//!   `DATABASE_URL` server that cannot be stopped).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sqlx::mysql::MySqlPoolOptions;
use sqlx::{Connection, MySqlConnection, MySqlPool};
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

mod burrow;
mod certs;
mod fault_proxy;
mod prometheus;
pub use burrow::{Burrow, ZooKeeper};
pub use certs::Certs;
pub use fault_proxy::{Fault, FaultProxy};
pub use prometheus::Prometheus;

/// Root password of the test containers (the tutorial's).
pub const ROOT_PASSWORD: &str = "test1357";

/// A MariaDB database for one test.
pub struct MariaDb {
    /// `mysql://user:password@host:port/database`
    pub url: String,
    /// The server without a database, to create more databases.
    pub server_url: String,
    pub database: String,
    container: Option<ContainerAsync<GenericImage>>,
}

fn image_name() -> (String, String) {
    let image = std::env::var("MARIADB_IMAGE").unwrap_or_else(|_| "mariadb:11.4".to_string());
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_string(), tag.to_string()),
        _ => (image, "latest".to_string()),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl MariaDb {
    /// A fresh, empty database.
    pub async fn start() -> anyhow::Result<Self> {
        let database = format!("t_{}", uuid::Uuid::new_v4().simple());
        if let Ok(url) = std::env::var("DATABASE_URL") {
            let server_url = url
                .rsplit_once('/')
                .map(|(server, _)| server.to_string())
                .context("DATABASE_URL must look like mysql://user:pw@host:port/db")?;
            let db = MariaDb {
                url: format!("{server_url}/{database}"),
                server_url,
                database,
                container: None,
            };
            db.create_database().await?;
            return Ok(db);
        }
        let (name, tag) = image_name();
        // A fixed host port, so that the server keeps its address across stop/start.
        let port = free_port()?;
        let container = GenericImage::new(name.clone(), tag.clone())
            .with_exposed_port(ContainerPort::Tcp(3306))
            .with_wait_for(WaitFor::Nothing)
            .with_env_var("MARIADB_ROOT_PASSWORD", ROOT_PASSWORD)
            .with_mapped_port(port, ContainerPort::Tcp(3306))
            .start()
            .await
            .with_context(|| {
                format!(
                    "could not start a MariaDB container from {name}:{tag} (is Docker running? \
                     set MARIADB_IMAGE to a local image, or DATABASE_URL to a server)"
                )
            })?;
        let server_url = format!("mysql://root:{ROOT_PASSWORD}@127.0.0.1:{port}");
        let db = MariaDb {
            url: format!("{server_url}/{database}"),
            server_url,
            database,
            container: Some(container),
        };
        db.wait_ready(Duration::from_secs(120)).await?;
        db.create_database().await?;
        Ok(db)
    }

    async fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            match MySqlConnection::connect(&self.server_url).await {
                Ok(c) => {
                    let _ = c.close().await;
                    return Ok(());
                }
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "MariaDB not ready yet");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => bail!(
                    "MariaDB at {} not ready within {within:?}: {e}",
                    self.server_url
                ),
            }
        }
    }

    async fn create_database(&self) -> anyhow::Result<()> {
        let mut c = MySqlConnection::connect(&self.server_url)
            .await
            .with_context(|| format!("connecting to {}", self.server_url))?;
        sqlx::query(&format!("CREATE DATABASE `{}`", self.database))
            .execute(&mut c)
            .await?;
        Ok(())
    }

    /// A connection pool on the test database.
    pub async fn pool(&self) -> anyhow::Result<MySqlPool> {
        Ok(MySqlPoolOptions::new()
            .max_connections(5)
            .connect(&self.url)
            .await?)
    }

    /// `scheme://user:password` and `host:port` of [`MariaDb::server_url`], split at the last
    /// `@` (a password may contain one).
    fn credentials_and_host(&self) -> (&str, &str) {
        self.server_url
            .rsplit_once('@')
            .unwrap_or(("mysql://", &self.server_url))
    }

    /// `host:port` of the server.
    pub fn server_addr(&self) -> anyhow::Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        let (_, host_port) = self.credentials_and_host();
        host_port
            .to_socket_addrs()?
            .next()
            .with_context(|| format!("no address for {host_port}"))
    }

    /// [`MariaDb::url`] with the server's address replaced by `addr` (a [`FaultProxy`]'s).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        let (credentials, _) = self.credentials_and_host();
        format!("{credentials}@{addr}/{}", self.database)
    }

    /// Stops the server (containers only), for fault tests.
    pub async fn stop(&self) -> anyhow::Result<()> {
        let Some(c) = &self.container else {
            bail!("cannot stop a server given by DATABASE_URL");
        };
        c.stop().await?;
        Ok(())
    }

    /// Starts a stopped server again on the same address and waits until it answers.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        let Some(c) = &self.container else {
            bail!("cannot start a server given by DATABASE_URL");
        };
        c.start().await?;
        self.wait_ready(Duration::from_secs(120)).await
    }
}

/// The broker, in-process, on a loopback port.
pub struct TestBroker {
    pub addr: SocketAddr,
    /// The HTTP listener (`/metrics`, `/healthz`, `/readyz`).
    pub http_addr: SocketAddr,
    /// The SASL listener, when started with [`TestBroker::start_sasl`] (SASL_PLAINTEXT) or
    /// [`TestBroker::start_sasl_ssl`] (SASL_SSL).
    pub sasl_addr: Option<SocketAddr>,
    sasl: Option<SaslListener>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

/// What a SASL listener takes: the users file's text and, for SASL_SSL, the server's
/// certificate and key.
#[derive(Clone)]
struct SaslListener {
    users: String,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl TestBroker {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_in(tempfile::tempdir()?, 0, None).await
    }

    /// A broker with a second, SASL_PLAINTEXT listener ([`TestBroker::sasl_bootstrap`]) whose
    /// users (PLAIN and SCRAM-SHA-256/512) come from `users`, a users file's text
    /// (`name=password` lines). Authentication is what such tests are about, not ACLs, so
    /// everyone is allowed where no ACL is found (a SASL listener turns authorization on).
    pub async fn start_sasl(users: &str) -> anyhow::Result<Self> {
        let sasl = SaslListener {
            users: users.to_string(),
            tls: None,
        };
        Self::start_in(tempfile::tempdir()?, 0, Some(sasl)).await
    }

    /// [`TestBroker::start_sasl`] with a SASL_SSL listener presenting `certs`' server
    /// certificate (for `localhost` and `127.0.0.1`; clients trust `certs.ca`).
    pub async fn start_sasl_ssl(users: &str, certs: &Certs) -> anyhow::Result<Self> {
        let sasl = SaslListener {
            users: users.to_string(),
            tls: Some((certs.server_cert.clone(), certs.server_key.clone())),
        };
        Self::start_in(tempfile::tempdir()?, 0, Some(sasl)).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        port: u16,
        sasl: Option<SaslListener>,
    ) -> anyhow::Result<Self> {
        let mut config = broker::Config::for_data_dir(dir.path());
        config.group_min_session_timeout_ms = 1_000;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let http = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let http_addr = http.local_addr()?;
        let mut extra = Vec::new();
        let mut sasl_addr = None;
        if let Some(SaslListener { users, tls }) = &sasl {
            let file = dir.path().join("sasl-users.txt");
            std::fs::write(&file, users)?;
            let protocol = match tls {
                None => broker::security::SecurityProtocol::SaslPlaintext,
                Some((cert, key)) => {
                    config.ssl_certificate_location = Some(cert.clone());
                    config.ssl_key_location = Some(key.clone());
                    broker::security::SecurityProtocol::SaslSsl
                }
            };
            config.sasl_users_file = Some(file);
            config.allow_everyone_if_no_acl_found = true;
            let sasl = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let local = sasl.local_addr()?;
            sasl_addr = Some(local);
            extra.push(broker::Listener {
                listener: sasl,
                advertised: broker::Advertised {
                    host: "127.0.0.1".into(),
                    port: i32::from(local.port()),
                },
                protocol,
            });
        }
        let listeners = broker::Listeners {
            kafka: listener,
            extra,
            http: Some(http),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            if let Err(e) = broker::run_with(config, listeners, async {
                let _ = stopped.await;
            })
            .await
            {
                tracing::error!(error = %e, "test broker failed");
            }
        });
        Ok(TestBroker {
            addr,
            http_addr,
            sasl_addr,
            sasl,
            stop: Some(stop),
            task: Some(task),
            dir,
        })
    }

    /// `host:port` of the SASL listener.
    ///
    /// # Panics
    /// When the broker was not started with a SASL listener.
    pub fn sasl_bootstrap(&self) -> String {
        self.sasl_addr
            .expect("a broker started with TestBroker::start_sasl or start_sasl_ssl")
            .to_string()
    }

    /// `host:port` for Kafka clients.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the broker gracefully.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops the broker and starts it again on the same port and data directory.
    pub async fn restart(mut self) -> anyhow::Result<Self> {
        self.stop().await;
        let port = self.addr.port();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir()?);
        Self::start_in(dir, port, self.sasl.take()).await
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
