//! Discovery and start-up with the real binary: it logs `listening on http://ADDR:PORT` for the
//! port it got, registers that URL through the broker, and after a `kill -9` (no tombstone) the
//! registry drops it within about three heartbeats. Also: several instances applying the
//! migrations at once (sqlx holds a GET_LOCK advisory lock around the run).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use discovery::Registry;
use test_support::{MariaDb, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_drops_a_killed_instance() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_order-service"))
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap())
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("HEARTBEAT_MS", "200")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
    });
    let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
        .await?
        .map_err(|_| anyhow::anyhow!("no 'listening on' line"))?;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_ne!(url, "http://127.0.0.1:0");
    let health = reqwest::get(format!("{url}/order-service/health_check")).await?;
    assert_eq!(health.status(), 200);

    let registry = Registry::start(&broker.bootstrap().into(), discovery::DEFAULT_TOPIC)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !registry.live("order-service").iter().any(|i| i.url == url) {
        assert!(Instant::now() < deadline, "{url} never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill()?; // SIGKILL: no tombstone
    child.wait()?;
    let killed = Instant::now();
    while registry.live("order-service").iter().any(|i| i.url == url) {
        assert!(
            killed.elapsed() < Duration::from_secs(3),
            "killed instance still live"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_startups_apply_the_migrations_once() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move {
                let pool = order_service::db::pool(&url, 2, Duration::from_secs(10))?;
                order_service::db::migrate(&pool, Duration::from_secs(30)).await?;
                anyhow::Ok(())
            })
        })
        .collect();
    for r in runs {
        r.await??;
    }
    let pool = db.pool().await?;
    let (applied,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await?;
    assert_eq!(applied as usize, order_service::db::MIGRATOR.iter().count());
    for table in ["users", "orders", "datasync_sink_offsets"] {
        sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
            .execute(&pool)
            .await?;
    }
    Ok(())
}
