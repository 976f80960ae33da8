//! The whole write path with the REAL connect worker (`connect_worker::run`, JDBC sink
//! `orders-sink` as in docker/connectors/orders-sink.json, pointed at the test database): orders
//! posted to two order-service instances reach MariaDB only through the sink, both instances
//! return them identically, and the consistency token of a write made on one instance gives
//! read-your-writes on the other.

mod common;

use std::time::{Duration, Instant};

use common::{config, TestApp};
use serde_json::{json, Value};
use test_support::{MariaDb, TestBroker};

struct Worker {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_worker(bootstrap: &str, db: &MariaDb) -> anyhow::Result<Worker> {
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
        serde_json::from_str(include_str!("../../docker/connectors/orders-sink.json"))?;
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
        "creating orders-sink: {}",
        r.text().await?
    );
    Ok(Worker {
        url,
        stop: Some(stop),
        task,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_flow_through_the_real_sink_with_read_your_writes_across_instances(
) -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let a = TestApp::spawn(config(
        &db.url,
        &broker.bootstrap(),
        &["--consistency-timeout-ms", "10000"],
    ))
    .await?;
    let b = TestApp::spawn(config(
        &db.url,
        &broker.bootstrap(),
        &["--consistency-timeout-ms", "10000"],
    ))
    .await?;
    let mut worker = start_worker(&broker.bootstrap(), &db).await?;
    let c = reqwest::Client::new();

    let mut created = Vec::new();
    for i in 0..6 {
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let r = c
            .post(format!("{}/order-service/u-e2e/orders", writer.url))
            .json(&json!({"productId": format!("CATALOG-{i:03}"), "qty": i + 1, "unitPrice": 1000}))
            .send()
            .await?;
        assert_eq!(r.status(), 201);
        let token = r.headers()["x-consistency-token"].to_str()?.to_string();
        created.push(r.json::<Value>().await?);
        // Read-your-writes on the OTHER instance: the list already holds this order.
        let r = c
            .get(format!("{}/order-service/u-e2e/orders", reader.url))
            .header("x-consistency-token", &token)
            .send()
            .await?;
        assert_eq!(r.status(), 200, "{}", r.text().await?);
        let list: Value = r.json().await?;
        assert_eq!(list, Value::Array(created.clone()), "after {token}");
    }
    // Both instances, without a token, answer identically.
    let from_a: Value = c
        .get(format!("{}/order-service/u-e2e/orders", a.url))
        .send()
        .await?
        .json()
        .await?;
    let from_b: Value = c
        .get(format!("{}/order-service/u-e2e/orders", b.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(from_a, from_b);
    assert_eq!(from_a, Value::Array(created));
    let (next,): (i64,) = sqlx::query_as(
        "SELECT next_offset FROM datasync_sink_offsets WHERE connector = 'orders-sink' AND topic = 'orders'",
    )
    .fetch_one(&db.pool().await?)
    .await?;
    assert_eq!(next, 6);

    if let Some(s) = worker.stop.take() {
        let _ = s.send(());
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), &mut worker.task).await;
    let _ = worker.url;
    a.stop().await?;
    b.stop().await
}
