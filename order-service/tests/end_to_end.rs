//! The whole write path with the REAL connect worker (`connect_worker::run`, the JDBC sink of
//! docker/connectors/orders-sink.json under another name, pointed at the test database): orders
//! posted to two order-service instances reach MariaDB only through the sink, both instances
//! return them identically, and the consistency token of a write made on one instance gives
//! read-your-writes on the other, vouched for by that sink whatever it is called.

mod common;

use std::time::Duration;

use common::{config, start_worker, TestApp};
use serde_json::{json, Value};
use test_support::{MariaDb, TestBroker};

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
    let mut worker = start_worker(&broker.bootstrap(), &db, "shop-orders-into-mariadb").await?;
    let c = reqwest::Client::new();

    let mut created = Vec::new();
    let mut last_token = String::new();
    for i in 0..6 {
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let r = c
            .post(format!("{}/order-service/u-e2e/orders", writer.url))
            .json(&json!({"productId": format!("CATALOG-{i:03}"), "qty": i + 1, "unitPrice": 1000}))
            .send()
            .await?;
        assert_eq!(r.status(), 201);
        let token = r.headers()["x-consistency-token"].to_str()?.to_string();
        last_token = token.clone();
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
        "SELECT next_offset FROM datasync_sink_offsets \
         WHERE connector = 'shop-orders-into-mariadb' AND topic = 'orders' AND target_table = 'orders'",
    )
    .fetch_one(&db.pool().await?)
    .await?;
    // Past the last order (each was alone in its transaction, so commit markers sit between).
    let last: i64 = last_token.rsplit(':').next().unwrap_or_default().parse()?;
    assert!(next > last, "sink at {next}, last order at {last}");

    if let Some(s) = worker.stop.take() {
        let _ = s.send(());
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), &mut worker.task).await;
    let _ = worker.url;
    a.stop().await?;
    b.stop().await
}
