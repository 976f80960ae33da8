//! The console against a secured cluster and a secured Kafka Connect, through its flags as a user
//! gives them: the broker only over SASL_SSL (SCRAM-SHA-512, a test CA) and the worker's REST API
//! over HTTPS with basic auth. With the right settings the topics and connectors pages show what
//! is there; a wrong Kafka password or wrong Connect credentials get an error page naming the
//! cause (never a 200 with nothing, never a 500); bad settings stop the console at start-up.

use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use test_support::{Certs, TestBroker};

struct Secured {
    broker: TestBroker,
    certs: Certs,
    connect_url: String,
    _dir: tempfile::TempDir,
    stop_worker: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A broker whose SASL_SSL listener knows `console`, with one topic; a Connect worker serving
/// HTTPS with basic auth (`admin: admin-secret`).
async fn secured() -> anyhow::Result<Secured> {
    let dir = tempfile::tempdir()?;
    let certs = Certs::make(&dir.path().join("certs"))?;
    let broker = TestBroker::start_sasl_ssl("console=console-secret\n", &certs).await?;
    // A topic with a record, produced over the broker's PLAINTEXT test listener.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("log_level", "3")
        .create()?;
    producer
        .send(
            FutureRecord::to("secure-orders").key("k").payload("v"),
            Duration::from_secs(20),
        )
        .await
        .map_err(|(e, _)| e)?;

    let users = dir.path().join("rest-users.properties");
    std::fs::write(&users, "admin: admin-secret\n")?;
    let mut worker = connect_worker::Config::new(&broker.bootstrap());
    worker.rest_ssl_certificate_location = Some(certs.server_cert.clone());
    worker.rest_ssl_key_location = Some(certs.server_key.clone());
    worker.rest_basic_auth_users_file = Some(users);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let connect_url = format!("https://{}", listener.local_addr()?);
    let (stop_worker, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(connect_worker::run(worker, listener, async {
        let _ = stopped.await;
    }));
    Ok(Secured {
        broker,
        certs,
        connect_url,
        _dir: dir,
        stop_worker: Some(stop_worker),
    })
}

impl Drop for Secured {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_worker.take() {
            let _ = stop.send(());
        }
    }
}

impl Secured {
    /// The console's command line for this set-up, with `kafka_password` and `connect_auth`.
    fn config(&self, kafka_password: &str, connect_auth: &str) -> console::Config {
        let ca = self.certs.ca.to_string_lossy().into_owned();
        console::Config::try_parse_from([
            "console",
            "--bootstrap-servers",
            &self.broker.sasl_bootstrap(),
            "--kafka-security-protocol",
            "SASL_SSL",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-512",
            "--kafka-sasl-username",
            "console",
            "--kafka-sasl-password",
            kafka_password,
            "--kafka-ssl-ca-location",
            &ca,
            "--connect-urls",
            &self.connect_url,
            "--connect-basic-auth",
            connect_auth,
            "--connect-ssl-ca-location",
            &ca,
            "--request-timeout-ms",
            "3000",
        ])
        .expect("flags parse")
    }
}

/// Serves `config` on a loopback port; its base URL and the stopper.
async fn serve(
    config: console::Config,
) -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(console::run(config, listener, async {
        let _ = stopped.await;
    }));
    Ok((base, stop))
}

/// GET `url` until `done(status, body)` or 60 s; the last answer.
async fn get_until(url: &str, done: impl Fn(u16, &str) -> bool) -> anyhow::Result<(u16, String)> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = match client.get(url).send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        };
        if done(answer.0, &answer.1) || Instant::now() > deadline {
            return Ok(answer);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_a_sasl_ssl_cluster_and_an_https_connect_with_basic_auth(
) -> anyhow::Result<()> {
    let s = secured().await?;
    let (base, _stop) = serve(s.config("console-secret", "admin:admin-secret")).await?;
    let (status, body) = get_until(&format!("{base}/topics"), |st, b| {
        st == 200 && b.contains("secure-orders")
    })
    .await?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("href=\"/topics/secure-orders\""), "{body}");
    let (status, body) = get_until(&format!("{base}/connectors"), |st, _| st == 200).await?;
    assert_eq!(
        status, 200,
        "the connectors page over HTTPS with basic auth: {body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_kafka_or_connect_credentials_get_an_error_page_naming_the_cause(
) -> anyhow::Result<()> {
    let s = secured().await?;
    let (base, _stop) = serve(s.config("not-the-password", "admin:wrong")).await?;
    let (status, body) = get_until(&format!("{base}/topics"), |st, _| st != 0).await?;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.to_ascii_lowercase().contains("authentication") || body.contains("SASL"),
        "the page names the failed login: {body}"
    );
    assert!(!body.contains("secure-orders"), "{body}");
    let (status, body) = get_until(&format!("{base}/connectors"), |st, _| st != 0).await?;
    assert!(
        status >= 400 && status != 500 && body.contains("401"),
        "Connect's 401 reaches the page: {status} {body}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_security_settings_stop_the_console_at_start_up() -> anyhow::Result<()> {
    let cases: [(&[&str], &str); 3] = [
        (
            &["--connect-basic-auth", "no-colon"],
            "--connect-basic-auth",
        ),
        (
            &["--connect-ssl-ca-location", "/nonexistent/ca.pem"],
            "--connect-ssl-ca-location",
        ),
        (
            &[
                "--kafka-security-protocol",
                "SASL_SSL",
                "--kafka-sasl-mechanism",
                "PLAIN",
            ],
            "sasl",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["console"];
        args.extend_from_slice(flags);
        let config = console::Config::try_parse_from(&args)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            console::run(config, listener, std::future::pending()),
        )
        .await
        .expect("a bad setting stops the start-up at once");
        let err = result.expect_err("refused").to_string();
        assert!(err.contains(expected), "{flags:?}: {err}");
    }
    Ok(())
}
