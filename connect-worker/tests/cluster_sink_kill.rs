//! An exactly-once JDBC sink (three tasks, six partitions) on a group of workers while workers
//! are killed (`kill -9`-like: their runtimes dropped mid-write) and new ones started, in a
//! bounded loop: afterwards every record is in MariaDB exactly once.

mod common;

use std::time::{Duration, Instant};

use common::{jdbc_url, ClusterWorker};
use serde_json::json;
use sqlx::Row;

fn record(id: i64) -> String {
    json!({"schema": {"type": "struct", "name": "orders", "optional": false, "fields": [
        {"field": "id", "type": "int64", "optional": false},
        {"field": "item", "type": "string", "optional": true}]},
        "payload": {"id": id, "item": format!("item-{id}")}})
    .to_string()
}

async fn count(pool: &sqlx::MySqlPool, sql: &str) -> i64 {
    match sqlx::query(sql).fetch_one(pool).await {
        Ok(r) => r.try_get::<Option<i64>, _>(0).ok().flatten().unwrap_or(-1),
        Err(_) => -1,
    }
}

fn config(bootstrap: &str) -> connect_worker::Config {
    let mut c = connect_worker::Config::new(bootstrap);
    c.group_id = "sink-kill".into();
    c.session_timeout_ms = 3_000;
    c.heartbeat_interval_ms = 300;
    c.rebalance_timeout_ms = 10_000;
    c.scheduled_rebalance_max_delay_ms = 0;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_sink_stays_exactly_once_while_workers_are_killed() -> anyhow::Result<()> {
    let db = test_support::MariaDb::start().await?;
    let pool = db.pool().await?;
    let broker = test_support::TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    common::create_topic(&bootstrap, "orders-kill", 6).await;
    let mut workers = vec![
        ClusterWorker::start(config(&bootstrap)).await?,
        ClusterWorker::start(config(&bootstrap)).await?,
        ClusterWorker::start(config(&bootstrap)).await?,
    ];
    let (code, body) = workers[0]
        .post(
            "/connectors",
            &json!({"name": "orders-sink", "config": {
                "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
                "connection.url": jdbc_url(&db.url), "connection.user": "root",
                "connection.password": "test1357", "topics": "orders-kill", "tasks.max": "3",
                "table.name.format": "orders_kill", "auto.create": "true",
                "insert.mode": "insert", "pk.mode": "none", "batch.size": "50"}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");

    const N: i64 = 6000;
    let b = bootstrap.clone();
    let producing = tokio::spawn(async move {
        let p = common::producer(&b);
        for i in 0..N {
            common::produce(&p, "orders-kill", Some(&format!("k{i}")), Some(&record(i))).await;
            if i % 300 == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    // Bounded: four kills, each after visible progress, a new worker started for each.
    for round in 0..4 {
        let before = count(&pool, "SELECT COUNT(*) FROM orders_kill").await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&pool, "SELECT COUNT(*) FROM orders_kill").await < before + 200
            && !producing.is_finished()
        {
            assert!(Instant::now() < deadline, "round {round}: no progress");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let victim = workers.remove(round % workers.len());
        eprintln!(
            "round {round}: killing {} at {} rows",
            victim.id,
            count(&pool, "SELECT COUNT(*) FROM orders_kill").await
        );
        victim.kill();
        workers.push(ClusterWorker::start(config(&bootstrap)).await?);
    }
    producing.await?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(&pool, "SELECT COUNT(*) FROM orders_kill").await < N {
        assert!(
            Instant::now() < deadline,
            "only {} of {N} rows",
            count(&pool, "SELECT COUNT(*) FROM orders_kill").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM orders_kill").await, N);
    assert_eq!(
        count(&pool, "SELECT COUNT(DISTINCT id) FROM orders_kill").await,
        N
    );
    for w in workers {
        w.stop().await;
    }
    Ok(())
}
