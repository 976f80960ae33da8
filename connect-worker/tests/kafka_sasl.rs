//! The worker against a broker whose client listener requires SASL, with the `--kafka-sasl-*`
//! settings: SCRAM-SHA-512 for its internal topics, its group membership (its own Kafka-protocol
//! client) and its tasks' clients. A FileStream source connector runs (so the group assigned
//! it) and its lines arrive in the topic, read back over SCRAM; with a wrong password the worker
//! stops at start-up with an authentication error instead of hanging. The same over SASL_SSL.

mod common;

use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use serde_json::json;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    kafka: kafka_client_config::KafkaSecurityArgs,
}

fn scram(password: &str) -> kafka_client_config::KafkaSecurityArgs {
    scram_over(password, &[])
}

/// SCRAM-SHA-512 as alice, plus `extra` flags (TLS).
fn scram_over(password: &str, extra: &[&str]) -> kafka_client_config::KafkaSecurityArgs {
    let mut args = vec![
        "x",
        "--kafka-sasl-mechanism",
        "SCRAM-SHA-512",
        "--kafka-sasl-username",
        "alice",
        "--kafka-sasl-password",
        password,
    ];
    args.extend_from_slice(extra);
    Cli::try_parse_from(args).expect("flags parse").kafka
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_a_source_connector_over_scram_sha_512() -> anyhow::Result<()> {
    // alice's password: alice-secret
    let broker = test_support::TestBroker::start_sasl("alice=alice-secret\n").await?;
    source_connector_round_trip(&broker.sasl_bootstrap(), scram("alice-secret")).await
}

/// SASL_SSL: the worker's librdkafka clients and its own group membership client both do TLS
/// (verifying the broker's certificate against the test CA) and then SCRAM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_a_source_connector_over_sasl_ssl() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = test_support::Certs::make(&dir.path().join("certs"))?;
    let broker = test_support::TestBroker::start_sasl_ssl("alice=alice-secret\n", &certs).await?;
    let ca = certs.ca.to_string_lossy().into_owned();
    let security = scram_over(
        "alice-secret",
        &[
            "--kafka-security-protocol",
            "SASL_SSL",
            "--kafka-ssl-ca-location",
            &ca,
        ],
    );
    source_connector_round_trip(&broker.sasl_bootstrap(), security).await
}

/// A FileStream source connector on a worker with `security`: it runs (the group assigned it)
/// and its three lines are read back with the same settings.
async fn source_connector_round_trip(
    bootstrap: &str,
    security: kafka_client_config::KafkaSecurityArgs,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let files = dir.path().join("files");
    std::fs::create_dir(&files)?;
    let input = files.join("in.txt");
    std::fs::write(&input, "one\ntwo\nthree\n")?;

    let mut config = connect_worker::Config::new(bootstrap);
    config.kafka = security.clone();
    config.allowed_paths = vec![files.clone()];
    config.session_timeout_ms = 3_000;
    config.heartbeat_interval_ms = 300;
    let worker = common::Worker::start_with(config).await?;
    let (code, body) = worker
        .post(
            "/connectors",
            &json!({"name": "lines", "config": {
                "connector.class": "FileStreamSource", "file": input, "topic": "sasl-lines",
                "tasks.max": "1",
                "value.converter": "org.apache.kafka.connect.storage.StringConverter"}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");

    // RUNNING: the group (over SASL) assigned the connector and its task to this worker.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, s) = worker.get("/connectors/lines/status").await;
        if s["connector"]["state"] == "RUNNING" && s["tasks"][0]["state"] == "RUNNING" {
            break;
        }
        assert!(Instant::now() < deadline, "not running: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut client = security.connection(bootstrap)?.client_config();
    client
        .set("group.id", "sasl-reader")
        .set("auto.offset.reset", "earliest")
        .set("log_level", "3");
    let consumer: BaseConsumer = client.create()?;
    let values = tokio::task::spawn_blocking(move || {
        consumer.subscribe(&["sasl-lines"]).expect("subscribe");
        let mut values = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while values.len() < 3 && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
        }
        values
    })
    .await?;
    assert_eq!(values, ["one", "two", "three"]);
    worker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stops_the_worker_at_start_up() -> anyhow::Result<()> {
    // alice's password: alice-secret
    let broker = test_support::TestBroker::start_sasl("alice=alice-secret\n").await?;
    let bootstrap = broker.sasl_bootstrap();
    let mut config = connect_worker::Config::new(&bootstrap);
    config.kafka = scram("not-the-password");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        connect_worker::run(config, listener, std::future::pending()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the worker hung instead of failing"))?;
    let err = result.expect_err("a wrong password is refused").to_string();
    assert!(
        err.contains("authenticating to the Kafka cluster") && err.contains(&bootstrap),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    Ok(())
}
