//! The worker against a broker whose client listener requires SASL, with the `--kafka-sasl-*`
//! settings: SCRAM-SHA-512 for its internal topics, its group membership (its own Kafka-protocol
//! client) and its tasks' clients. A FileStream source connector runs (so the group assigned
//! it) and its lines arrive in the topic, read back over SCRAM; with a wrong password the worker
//! stops at start-up with an authentication error instead of hanging.

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
    Cli::try_parse_from([
        "x",
        "--kafka-sasl-mechanism",
        "SCRAM-SHA-512",
        "--kafka-sasl-username",
        "alice",
        "--kafka-sasl-password",
        password,
    ])
    .expect("flags parse")
    .kafka
}

/// An in-process broker whose listener for clients is SASL_PLAINTEXT (alice: alice-secret).
async fn sasl_broker(
    dir: &std::path::Path,
) -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let users = dir.join("users.txt");
    std::fs::write(&users, "alice=alice-secret\n")?;
    let mut config = broker::Config::for_data_dir(dir.join("data"));
    config.sasl_users_file = Some(users);
    // Authentication is under test here, not ACLs (a SASL listener turns authorization on).
    config.allow_everyone_if_no_acl_found = true;
    config.group_min_session_timeout_ms = 1_000;
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sasl = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = sasl.local_addr()?;
    let listeners = broker::Listeners {
        kafka: plain,
        extra: vec![broker::Listener {
            listener: sasl,
            advertised: broker::Advertised {
                host: "127.0.0.1".into(),
                port: i32::from(addr.port()),
            },
            protocol: broker::security::SecurityProtocol::SaslPlaintext,
        }],
        http: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = broker::run_with(config, listeners, async {
            let _ = stopped.await;
        })
        .await;
    });
    Ok((addr.to_string(), stop))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_a_source_connector_over_scram_sha_512() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (bootstrap, _stop) = sasl_broker(dir.path()).await?;
    let files = dir.path().join("files");
    std::fs::create_dir(&files)?;
    let input = files.join("in.txt");
    std::fs::write(&input, "one\ntwo\nthree\n")?;

    let mut config = connect_worker::Config::new(&bootstrap);
    config.kafka = scram("alice-secret");
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

    let mut client = scram("alice-secret")
        .connection(&bootstrap)?
        .client_config();
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
    let dir = tempfile::tempdir()?;
    let (bootstrap, _stop) = sasl_broker(dir.path()).await?;
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
