//! Observability with the tools users run, unchanged: the real Prometheus (Debian's package)
//! scrapes every process from the repository's config (`docker/prometheus/prometheus.yml`,
//! targets rewritten to this test's loopback ports) while orders flow through the whole system,
//! answers PromQL about it (the message rate while producing; the lag of a stopped group is
//! what it has not read, then 0 after it catches up), and every query of the shipped Grafana
//! dashboard (`docker/grafana/datasync-dashboard.json`) returns data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use integration_tests::{
    client, connect_worker, create_connector, create_user, order_service, post_order,
    shipped_connector, user_service, wait_running, Load, Service, TestBroker,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use test_support::{MariaDb, Prometheus};

fn addr(s: &Service) -> anyhow::Result<SocketAddr> {
    Ok(s.url.trim_start_matches("http://").parse()?)
}

/// Every PromQL expression of the shipped Grafana dashboard.
fn dashboard_queries() -> anyhow::Result<Vec<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docker/grafana/datasync-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push(expr.to_string());
            }
        }
    }
    anyhow::ensure!(out.len() >= 10, "the dashboard has {} queries", out.len());
    Ok(out)
}

/// Commits `offset` on orders partition 0 for a group that never consumes.
fn commit(bootstrap: &str, group: &str, offset: i64) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("orders", 0, Offset::Offset(offset))?;
    consumer.commit(&tpl, CommitMode::Sync)?;
    Ok(())
}

fn end_offset(bootstrap: &str) -> anyhow::Result<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()?;
    let (_, high) = consumer.fetch_watermarks("orders", 0, Duration::from_secs(10))?;
    Ok(high)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_scrapes_every_process_and_the_dashboard_has_data() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let users = user_service(&db, &bootstrap).await?;
    let a = order_service(&db, &bootstrap, &[]).await?;
    let b = order_service(&db, &bootstrap, &[]).await?;
    let worker = connect_worker(&bootstrap).await?;
    create_connector(&worker.url, &shipped_connector("orders-sink.json", &db)?).await?;
    wait_running(&worker.url, "orders-sink").await?;
    let uid = create_user(&users.url, "prom@example.com", "Prom").await?;

    let targets = BTreeMap::from([
        ("broker:9644", broker.http_addr),
        ("user-service:8081", addr(&users)?),
        ("order-service-1:8091", addr(&a)?),
        ("order-service-2:8092", addr(&b)?),
        ("connect-worker:8083", addr(&worker)?),
    ]);
    let prometheus = Prometheus::start(&targets).await?;
    let within = Duration::from_secs(45);
    prometheus
        .wait_for("sum(up)", within, |v| v == [5.0])
        .await?;

    // Orders flowing, and reads with consistency tokens on the other instance.
    let load = Load::start(&[a.url.clone(), b.url.clone()], &uid);
    let c = client();
    for i in 0..3 {
        let p = post_order(&c, &a.url, &uid, 9_000_000 + i).await;
        assert_eq!(p.status, 201, "{:?}", p.body);
        let r = c
            .get(format!("{}/order-service/{uid}/orders", b.url))
            .header("x-consistency-token", p.token.expect("token"))
            .send()
            .await?;
        assert_eq!(r.status(), 200);
    }
    let rate = "sum(rate(kafka_server_brokertopicmetrics_messagesin_total{topic=\"orders\"}[1m]))";
    prometheus
        .wait_for(rate, within, |v| v.first().is_some_and(|r| *r > 0.0))
        .await?;
    prometheus
        .wait_for(
            "kafka_connect_connector_status{connector=\"orders-sink\",status=\"running\"}",
            within,
            |v| v == [1.0],
        )
        .await?;
    for expr in dashboard_queries()? {
        prometheus
            .wait_for(&expr, within, |v| !v.is_empty())
            .await?;
    }
    let posted = load.finish().await?;
    assert!(posted.iter().any(|p| p.status == 201));

    // A stopped group's lag is what it has not read; 0 once it has caught up.
    let end = end_offset(&bootstrap)?;
    assert!(end > 2, "{end}");
    commit(&bootstrap, "stopped-reader", 2)?;
    let lag = "kafka_consumergroup_lag{consumergroup=\"stopped-reader\",topic=\"orders\",partition=\"0\"}";
    prometheus
        .wait_for(lag, within, |v| v == [(end - 2) as f64])
        .await?;
    commit(&bootstrap, "stopped-reader", end)?;
    prometheus.wait_for(lag, within, |v| v == [0.0]).await?;

    drop(prometheus);
    for s in [worker, a, b, users] {
        s.stop().await?;
    }
    Ok(())
}
