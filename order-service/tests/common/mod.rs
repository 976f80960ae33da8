//! Starts real order-service instances in-process on port 0, against a real MariaDB and broker.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use order_service::Config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};
use test_support::MariaDb;

pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), order_service::StartupError>>>,
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub fn config(database_url: &str, bootstrap: &str, extra: &[&str]) -> Config {
    let mut args = vec![
        "order-service",
        "--database-url",
        database_url,
        "--bootstrap-servers",
        bootstrap,
        "--heartbeat-ms",
        "200",
        "--publish-timeout-ms",
        "2000",
        "--consistency-timeout-ms",
        "3000",
        "--db-timeout-ms",
        "1500",
        "--startup-timeout-secs",
        "30",
    ];
    args.extend_from_slice(extra);
    Config::parse_from(args)
}

impl TestApp {
    pub async fn spawn(config: Config) -> anyhow::Result<TestApp> {
        init_tracing();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(order_service::run(config, listener, async {
            let _ = stopped.await;
        }));
        let app = TestApp {
            addr,
            url: format!("http://{addr}"),
            stop: Some(stop),
            task: Some(task),
        };
        // Ready once it serves (migrations done).
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = client
                .get(format!("{}/order-service/health_check", app.url))
                .send()
                .await;
            if matches!(r, Ok(ref r) if r.status().is_success()) {
                return Ok(app);
            }
            anyhow::ensure!(Instant::now() < deadline, "order-service did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Graceful shutdown (deregisters).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await??;
        }
        Ok(())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The name [`sink_wrote`] records, not the shipped `orders-sink`: any connector writing the
/// orders table counts.
pub const SINK_NAME: &str = "orders-to-mariadb";

/// Records what a JDBC sink applying `orders` into the `orders` table up to `next_offset` would
/// have written: only for tests named `reads_what_the_sink_wrote*`, which check the read side on
/// its own.
pub async fn sink_wrote(pool: &sqlx::MySqlPool, partition: i32, next_offset: i64) {
    sqlx::query(
        "INSERT INTO datasync_sink_offsets (connector, topic, kafka_partition, target_table, next_offset) \
         VALUES ('orders-to-mariadb', 'orders', ?, 'orders', ?) \
         ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset)",
    )
    .bind(partition)
    .bind(next_offset)
    .execute(pool)
    .await
    .expect("writing datasync_sink_offsets");
}

pub async fn insert_order_row(pool: &sqlx::MySqlPool, o: &serde_json::Value, user_id: &str) {
    let created = chrono::DateTime::parse_from_rfc3339(o["createdAt"].as_str().unwrap())
        .unwrap()
        .naive_utc();
    sqlx::query(
        "INSERT INTO orders (order_id, user_id, product_id, qty, unit_price, total_price, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(o["orderId"].as_str())
    .bind(user_id)
    .bind(o["productId"].as_str())
    .bind(o["qty"].as_i64())
    .bind(o["unitPrice"].as_i64())
    .bind(o["totalPrice"].as_i64())
    .bind(created)
    .execute(pool)
    .await
    .expect("inserting an order row");
}

/// The real connect worker in-process with the shipped `orders-sink` connector (under `name`),
/// pointed at `db`.
pub struct Worker {
    pub url: String,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn start_worker(bootstrap: &str, db: &MariaDb, name: &str) -> anyhow::Result<Worker> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = connect_worker::run(connect_worker::Config::new(bootstrap), listener, async {
        let _ = stopped.await;
    });
    let task = tokio::spawn(async move { Ok(worker.await?) });
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(c.get(format!("{url}/connectors")).send().await, Ok(r) if r.status() == 200) {
        anyhow::ensure!(Instant::now() < deadline, "connect worker did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The shipped connector config, pointed at this test's database.
    let mut connector: Value =
        serde_json::from_str(include_str!("../../../docker/connectors/orders-sink.json"))?;
    connector["name"] = json!(name);
    let host_and_db = db.url.rsplit_once('@').map(|(_, h)| h).unwrap_or_default();
    connector["config"]["connection.url"] = json!(format!("jdbc:mariadb://{host_and_db}"));
    // The shipped file names the password `${env:MARIADB_ROOT_PASSWORD}` (resolved by the compose
    // stack's worker); this worker enables no config provider, so it gets the password itself.
    connector["config"]["connection.password"] = json!(test_support::ROOT_PASSWORD);
    let r = c
        .post(format!("{url}/connectors"))
        .json(&connector)
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "creating {name}: {}",
        r.text().await?
    );
    Ok(Worker {
        url,
        stop: Some(stop),
        task,
    })
}

/// Every record of partition 0 of `orders` a consumer with `isolation` (`read_committed` or
/// `read_uncommitted`) gets, once it has at least `expected` and has reached the partition's end.
pub fn read_all(bootstrap: &str, isolation: &str, expected: usize) -> Vec<Value> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "order-service-test-all")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("orders", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(serde_json::from_slice(m.payload().unwrap()).unwrap()),
            Some(Err(KafkaError::PartitionEOF(_))) if out.len() >= expected => return out,
            _ => {}
        }
    }
    panic!("only {} of {expected} records read", out.len());
}

/// [`read_all`] with `read_committed`.
pub fn read_committed_all(bootstrap: &str, expected: usize) -> Vec<Value> {
    read_all(bootstrap, "read_committed", expected)
}
