//! MariaDB over TLS: the test container started as the official image takes it, with
//! `--ssl-cert`/`--ssl-key`/`--ssl-ca` and `--require-secure-transport=ON` (certificates of a
//! test CA, made by `scripts/make-certs.sh` and copied in). The service's start-up (pool and
//! migrations) works with `ssl-mode=VERIFY_CA` in `DATABASE_URL` and its session is encrypted;
//! `ssl-mode=DISABLED` is refused by the server with a clear error. The connect worker's JDBC
//! connection settings take the JDBC URL's TLS parameters the same way.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use sqlx::{Connection, MySqlConnection, Row};
use test_support::Certs;
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

const ROOT_PASSWORD: &str = "test1357";

/// The test certificates (`scripts/make-certs.sh`) in `dir`, plus the server key as PKCS#1
/// (`server-rsa.key`), which every MariaDB build reads.
fn make_certs(dir: &Path) -> anyhow::Result<Certs> {
    let certs = Certs::make(dir)?;
    let out = Command::new("openssl")
        .args(["rsa", "-traditional", "-in"])
        .arg(&certs.server_key)
        .arg("-out")
        .arg(dir.join("server-rsa.key"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "openssl rsa: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(certs)
}

async fn tls_mariadb(dir: &Path) -> anyhow::Result<(ContainerAsync<GenericImage>, u16)> {
    let image = std::env::var("MARIADB_IMAGE").unwrap_or_else(|_| "mariadb:11.4".to_string());
    let (name, tag) = image
        .rsplit_once(':')
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .unwrap_or((image.clone(), "latest".into()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let container = GenericImage::new(name, tag)
        .with_exposed_port(ContainerPort::Tcp(3306))
        .with_wait_for(WaitFor::Nothing)
        .with_env_var("MARIADB_ROOT_PASSWORD", ROOT_PASSWORD)
        .with_mapped_port(port, ContainerPort::Tcp(3306))
        .with_copy_to("/etc/mysql/tls/ca.pem", std::fs::read(dir.join("ca.pem"))?)
        .with_copy_to(
            "/etc/mysql/tls/server.pem",
            std::fs::read(dir.join("broker.pem"))?,
        )
        .with_copy_to(
            "/etc/mysql/tls/server.key",
            std::fs::read(dir.join("server-rsa.key"))?,
        )
        .with_cmd([
            "--ssl-ca=/etc/mysql/tls/ca.pem",
            "--ssl-cert=/etc/mysql/tls/server.pem",
            "--ssl-key=/etc/mysql/tls/server.key",
            "--require-secure-transport=ON",
        ])
        .start()
        .await?;
    Ok((container, port))
}

async fn encrypted(c: &mut MySqlConnection) -> anyhow::Result<String> {
    let row = sqlx::query("SHOW SESSION STATUS LIKE 'Ssl_version'")
        .fetch_one(&mut *c)
        .await?;
    Ok(row.try_get::<String, _>(1)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_jdbc_connectors_reach_mariadb_over_tls() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = make_certs(dir.path())?;
    let ca = certs.ca.clone();
    let ca = ca.to_str().unwrap_or_default();
    let (_container, port) = tls_mariadb(dir.path()).await?;
    let server = format!("mysql://root:{ROOT_PASSWORD}@127.0.0.1:{port}");

    // Wait for the server, over TLS (a plaintext attempt could never succeed).
    let required = format!("{server}?ssl-mode=REQUIRED");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut conn = loop {
        match MySqlConnection::connect(&required).await {
            Ok(c) => break c,
            Err(e) => {
                anyhow::ensure!(Instant::now() < deadline, "MariaDB not ready: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    assert!(encrypted(&mut conn).await?.starts_with("TLS"));
    sqlx::query("CREATE DATABASE orders_tls")
        .execute(&mut conn)
        .await?;

    // The service: VERIFY_CA against the test CA; start-up migrates over TLS.
    let url = format!("{server}/orders_tls?ssl-mode=VERIFY_CA&ssl-ca={ca}");
    let config = order_service::config::Config::try_parse_from([
        "order-service",
        "--database-url",
        &url,
        "--startup-timeout-secs",
        "20",
    ])?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let started = service_common::startup::start(&config.common, &listener).await?;
    let mut c = started.pool.acquire().await?;
    assert!(encrypted(&mut c).await?.starts_with("TLS"));
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'orders_tls'",
    )
    .fetch_one(&mut *c)
    .await?;
    assert!(tables > 0, "migrations ran");

    // Plaintext: refused by the server (the same password works over TLS above).
    let err = MySqlConnection::connect(&format!("{server}/orders_tls?ssl-mode=DISABLED"))
        .await
        .expect_err("require_secure_transport refuses plaintext");
    assert_refused(&err);
    // A CA that did not sign the server's certificate: refused by the client.
    let wrong_ca = format!(
        "{server}/orders_tls?ssl-mode=VERIFY_CA&ssl-ca={}",
        certs.other_ca.display()
    );
    assert!(MySqlConnection::connect(&wrong_ca).await.is_err());

    // The JDBC connectors: MariaDB Connector/J's parameters, then MySQL's useSSL=false.
    let jdbc = |params: &str| {
        let mut config = connect_worker::connectors::Config::new();
        config.insert(
            "connection.url".into(),
            format!("jdbc:mariadb://127.0.0.1:{port}/orders_tls?{params}"),
        );
        config.insert("connection.user".into(), "root".into());
        config.insert("connection.password".into(), ROOT_PASSWORD.into());
        connect_worker::connectors::jdbc::url::connect_options(&config)
    };
    let opts =
        jdbc(&format!("sslMode=verify-ca&serverSslCert={ca}")).map_err(anyhow::Error::msg)?;
    let mut c = MySqlConnection::connect_with(&opts).await?;
    assert!(encrypted(&mut c).await?.starts_with("TLS"));
    let opts = jdbc("useSSL=false").map_err(anyhow::Error::msg)?;
    let err = MySqlConnection::connect_with(&opts)
        .await
        .expect_err("plaintext refused");
    assert_refused(&err);
    Ok(())
}

/// The server's refusal of a plaintext session: MariaDB's "Connections using insecure
/// transport are prohibited while --require_secure_transport=ON" (1941/3159), or an access
/// denial (1045) from servers that refuse at authentication; never a network error.
fn assert_refused(err: &sqlx::Error) {
    let sqlx::Error::Database(db) = err else {
        panic!("expected the server's refusal, got {err}");
    };
    let text = db.message().to_string();
    assert!(
        text.contains("insecure transport")
            || matches!(
                db.code().as_deref(),
                Some("28000") | Some("08004") | Some("HY000")
            ),
        "{err}"
    );
}
