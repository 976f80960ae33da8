//! End to end: the tutorial's source and sink configs verbatim (users → my_topic_users → table),
//! a poison record going to the dead letter queue, and the database stopped mid-stream.

mod common;

use std::time::Duration;

use common::{eventually, jdbc_url, produce, producer, Worker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use serde_json::json;
use sqlx::Row;

async fn count(pool: &sqlx::MySqlPool, sql: &str) -> i64 {
    match sqlx::query(sql).fetch_one(pool).await {
        Ok(r) => r.try_get::<Option<i64>, _>(0).ok().flatten().unwrap_or(-1),
        Err(_) => -1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tutorial_source_to_sink() -> anyhow::Result<()> {
    let db = test_support::MariaDb::start().await?;
    let pool = db.pool().await?;
    sqlx::query("CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(100), balance DECIMAL(10,2), created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))").execute(&pool).await?;
    sqlx::query("INSERT INTO users (name, email, balance) VALUES ('alice','a@x', 1.50), ('bob', NULL, NULL)").execute(&pool).await?;
    let broker = test_support::TestBroker::start().await?;
    let w = Worker::start(&broker.bootstrap()).await?;
    let url = jdbc_url(&db.url);
    let (code, body) = w.post("/connectors", &json!({"name":"my-source-connect","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSourceConnector","connection.url":url,"connection.user":"root","connection.password":"test1357","mode":"incrementing","incrementing.column.name":"id","table.whitelist":"users","topic.prefix":"my_topic_","tasks.max":"1","poll.interval.ms":"200"}})).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = w.post("/connectors", &json!({"name":"my-sink-connect","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","connection.url":url,"connection.user":"root","connection.password":"test1357","auto.create":"true","auto.evolve":"true","delete.enabled":"false","tasks.max":"1","topics":"my_topic_users"}})).await;
    assert_eq!(code, 201, "{body}");
    w.wait_state("my-source-connect", "RUNNING").await;
    eventually("rows copied", || async {
        count(&pool, "SELECT COUNT(*) FROM my_topic_users").await == 2
    })
    .await;
    sqlx::query("INSERT INTO users (name) VALUES ('carol')")
        .execute(&pool)
        .await?;
    eventually("new row copied", || async {
        count(&pool, "SELECT COUNT(*) FROM my_topic_users").await == 3
    })
    .await;
    let r =
        sqlx::query("SELECT name, CAST(balance AS CHAR), email FROM my_topic_users WHERE id = 1")
            .fetch_one(&pool)
            .await?;
    assert_eq!(r.get::<String, _>(0), "alice");
    assert_eq!(r.get::<String, _>(1), "1.50");
    let (_, o) = w.get("/connectors/my-source-connect/offsets").await;
    assert_eq!(o["offsets"][0]["offset"]["incrementing"], 3, "{o}");
    w.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_record_goes_to_the_dead_letter_queue() -> anyhow::Result<()> {
    let db = test_support::MariaDb::start().await?;
    let pool = db.pool().await?;
    let broker = test_support::TestBroker::start().await?;
    let w = Worker::start(&broker.bootstrap()).await?;
    let p = producer(&broker.bootstrap());
    let good = |id: i64| {
        json!({"schema":{"type":"struct","fields":[{"field":"id","type":"int64"}]},"payload":{"id":id}}).to_string()
    };
    produce(&p, "in", None, Some(&good(1))).await;
    produce(&p, "in", None, Some("this is not json")).await;
    produce(&p, "in", None, Some(&good(2))).await;
    // Tolerance none: the task fails with a trace; the good record before it is written.
    let (code, body) = w.post("/connectors", &json!({"name":"strict","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","connection.url":jdbc_url(&db.url),"connection.user":"root","connection.password":"test1357","topics":"in","auto.create":"true","table.name.format":"strict_t"}})).await;
    assert_eq!(code, 201, "{body}");
    eventually("strict task failed", || async {
        let (_, s) = w.get("/connectors/strict/status").await;
        s["tasks"][0]["state"] == "FAILED"
            && s["tasks"][0]["trace"]
                .as_str()
                .is_some_and(|t| t.contains("offset 1"))
    })
    .await;
    let (_, s) = w.get("/connectors/strict/status").await;
    assert!(!s.to_string().contains("test1357"));
    // Tolerance all + DLQ: both good records land, the poison one goes to the DLQ with headers.
    let (code, body) = w.post("/connectors", &json!({"name":"lenient","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","connection.url":jdbc_url(&db.url),"connection.user":"root","connection.password":"test1357","topics":"in","auto.create":"true","table.name.format":"lenient_t","errors.tolerance":"all","errors.deadletterqueue.topic.name":"dlq"}})).await;
    assert_eq!(code, 201, "{body}");
    eventually("good rows", || async {
        count(&pool, "SELECT COUNT(*) FROM lenient_t").await == 2
    })
    .await;
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()?;
    c.subscribe(&["dlq"])?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let m = loop {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            break m.detach();
        }
        assert!(std::time::Instant::now() < deadline, "nothing in the DLQ");
    };
    assert_eq!(m.payload(), Some(&b"this is not json"[..]));
    let headers = m.headers().expect("headers");
    let mut found = std::collections::HashMap::new();
    for h in headers.iter() {
        found.insert(
            h.key.to_string(),
            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
        );
    }
    assert_eq!(found["__connect.errors.offset"], "1");
    assert_eq!(found["__connect.errors.topic"], "in");
    assert!(found["__connect.errors.exception.message"].contains("serialization"));
    w.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_stopped_and_restarted_mid_stream() -> anyhow::Result<()> {
    let db = test_support::MariaDb::start().await?;
    let broker = test_support::TestBroker::start().await?;
    let w = Worker::start(&broker.bootstrap()).await?;
    let (code, body) = w.post("/connectors", &json!({"name":"resilient","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","connection.url":jdbc_url(&db.url),"connection.user":"root","connection.password":"test1357","topics":"ev","auto.create":"true","insert.mode":"insert","max.retries":"100","retry.backoff.ms":"500","batch.size":"20"}})).await;
    assert_eq!(code, 201, "{body}");
    let p = producer(&broker.bootstrap());
    let rec = |id: i64| {
        json!({"schema":{"type":"struct","fields":[{"field":"id","type":"int64"}]},"payload":{"id":id}}).to_string()
    };
    for i in 0..200 {
        produce(&p, "ev", None, Some(&rec(i))).await;
    }
    {
        let pool = db.pool().await?;
        eventually("first rows", || async {
            count(&pool, "SELECT COUNT(*) FROM ev").await == 200
        })
        .await;
        pool.close().await;
    }
    db.stop().await?;
    for i in 200..400 {
        produce(&p, "ev", None, Some(&rec(i))).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    db.start_again().await?;
    let pool = db.pool().await?;
    eventually("all rows after restart", || async {
        count(&pool, "SELECT COUNT(*) FROM ev").await == 400
    })
    .await;
    assert_eq!(count(&pool, "SELECT COUNT(DISTINCT id) FROM ev").await, 400);
    w.wait_state("resilient", "RUNNING").await;
    w.stop().await;
    Ok(())
}
