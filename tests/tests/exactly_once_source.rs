//! Exactly-once source (KIP-618) across the whole pipeline: rows inserted into `users` while the
//! connect worker running the tutorial's JDBC source (`exactly.once.source.support=enabled`) and
//! sink is killed with SIGKILL at random points, a bounded number of times, and restarted.
//! Afterwards every row is in the read_committed topic exactly once and in the sink's table
//! exactly once (the tutorial's sink inserts, so a repeated record would be a second row). And a
//! connector that requires exactly once is refused by a worker that does not provide it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::{
    client, connect_worker, tutorial_connectors, user_service, TestBroker, WorkerProcess,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};
use test_support::MariaDb;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_connect-worker-child");
const EXACTLY_ONCE: &[(&str, &str)] = &[("CONNECT_EXACTLY_ONCE_SOURCE_SUPPORT", "enabled")];
const KILLS: usize = 6;

/// A random duration below `max_ms` (test jitter only: `RandomState` is seeded randomly).
fn jitter(max_ms: u64) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis(random % max_ms.max(1))
}

/// How many times each `users.id` is in the topic, read_committed, once at least `n` records
/// are read and the end is reached.
fn ids_in_topic(bootstrap: &str, n: usize) -> anyhow::Result<HashMap<i64, usize>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "eos-source-test")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("my_topic_users", 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut ids = HashMap::new();
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let v: Value = serde_json::from_slice(m.payload().unwrap_or_default())?;
                let id = v["payload"]["id"].as_i64().unwrap_or(-1);
                *ids.entry(id).or_insert(0) += 1;
                read += 1;
            }
            Some(Err(KafkaError::PartitionEOF(_))) if read >= n => return Ok(ids),
            _ => {}
        }
    }
    anyhow::bail!("only {read} of {n} records in my_topic_users")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jdbc_source_killed_at_random_points_copies_every_row_exactly_once() -> anyhow::Result<()> {
    // transaction.boundary=poll (the default): one transaction per poll of up to 5 rows
    kill_loop(&[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_interval_boundaries_too() -> anyhow::Result<()> {
    // several polls (and empty ones) per transaction
    kill_loop(&[
        ("transaction.boundary", "interval"),
        ("transaction.boundary.interval.ms", "150"),
    ])
    .await
}

/// Inserts rows while the worker is killed [`KILLS`] times, then checks the topic and the sink's
/// table; `boundary` are the source connector's transaction settings.
async fn kill_loop(boundary: &[(&str, &str)]) -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let pool = db.pool().await?;
    let broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let users = user_service(&db, &bootstrap).await?; // its migrations create `users`

    let mut worker = WorkerProcess::start_with(WORKER_EXE, &bootstrap, EXACTLY_ONCE).await?;
    tutorial_connectors(
        &worker.url,
        &db,
        &[
            [
                ("poll.interval.ms", "10"),
                // small batches: many transactions, so kills land inside them
                ("batch.max.rows", "5"),
                ("exactly.once.support", "required"),
            ]
            .as_slice(),
            boundary,
        ]
        .concat(),
    )
    .await?;

    // Rows keep arriving throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let inserter = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("eos-{n}");
                sqlx::query(
                    "INSERT INTO users (user_id, email, name, encrypted_pwd) VALUES (?, ?, 'n', 'x')",
                )
                .bind(&id)
                .bind(format!("{id}@example.com"))
                .execute(&pool)
                .await?;
                n += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            anyhow::Ok(n)
        })
    };
    for round in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(400) + jitter(1500)).await;
        worker.kill().await?; // SIGKILL, wherever the source task is
        eprintln!("round {round}: worker killed");
        tokio::time::sleep(jitter(300)).await;
        worker = WorkerProcess::start_with(WORKER_EXE, &bootstrap, EXACTLY_ONCE).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let inserted = inserter.await??;
    let want: Vec<(i64,)> = sqlx::query_as("SELECT id FROM users ORDER BY id")
        .fetch_all(&pool)
        .await?;
    let want: Vec<i64> = want.into_iter().map(|(id,)| id).collect();
    assert!(want.len() as u64 >= inserted, "{} rows", want.len());
    eprintln!("{} rows inserted across {KILLS} kills", want.len());

    // The topic, read_committed: every row exactly once, nothing else.
    let b = bootstrap.clone();
    let n = want.len();
    let in_topic = tokio::task::spawn_blocking(move || ids_in_topic(&b, n)).await??;
    let repeated: Vec<_> = in_topic.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        repeated.is_empty(),
        "rows repeated in the topic: {repeated:?}"
    );
    let mut got: Vec<i64> = in_topic.keys().copied().collect();
    got.sort_unstable();
    assert_eq!(got, want, "the topic holds exactly the table's rows");

    // The sink's table (insert mode): one row per source row.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM my_topic_users")
            .fetch_one(&pool)
            .await
            .unwrap_or((-1,));
        if rows >= want.len() as i64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "sink at {rows} of {} rows",
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let copied: Vec<(i64,)> = sqlx::query_as("SELECT id FROM my_topic_users ORDER BY id")
        .fetch_all(&pool)
        .await?;
    let copied: Vec<i64> = copied.into_iter().map(|(id,)| id).collect();
    assert_eq!(copied, want, "the sink's table holds each row once");

    worker.kill().await?;
    users.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_exactly_once_support_refuses_a_connector_requiring_it(
) -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let worker = connect_worker(&broker.bootstrap()).await?;
    let connector = json!({"name": "needs-eos", "config": {
        "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
        "connection.url": "jdbc:mysql://127.0.0.1:1/mydb", "mode": "incrementing",
        "incrementing.column.name": "id", "table.whitelist": "users", "topic.prefix": "t_",
        "exactly.once.support": "required"}});
    let r = client()
        .post(format!("{}/connectors", worker.url))
        .json(&connector)
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    let body = r.text().await?;
    assert!(body.contains("exactly.once.support"), "{body}");
    // Validation says the same.
    let r = client()
        .put(format!(
            "{}/connector-plugins/JdbcSourceConnector/config/validate",
            worker.url
        ))
        .json(&connector["config"])
        .send()
        .await?;
    let v: Value = r.json().await?;
    let errors: Vec<&Value> = v["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["value"]["name"] == "exactly.once.support")
        .collect();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(
        errors[0]["value"]["errors"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );
    worker.stop().await
}
