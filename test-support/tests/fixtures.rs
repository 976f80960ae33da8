//! The fixtures themselves work: a MariaDB answers queries and survives a stop/start on the same
//! address, and the in-process broker serves Kafka clients.

use test_support::{MariaDb, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_answers_and_survives_a_restart() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let pool = db.pool().await?;
    let (one,): (i64,) = sqlx::query_as("SELECT 1").fetch_one(&pool).await?;
    assert_eq!(one, 1);
    sqlx::query("CREATE TABLE t (id INT PRIMARY KEY)")
        .execute(&pool)
        .await?;
    sqlx::query("INSERT INTO t VALUES (7)")
        .execute(&pool)
        .await?;
    pool.close().await;
    if std::env::var("DATABASE_URL").is_err() {
        db.stop().await?;
        db.start_again().await?;
    }
    let pool = db.pool().await?;
    let (id,): (i32,) = sqlx::query_as("SELECT id FROM t").fetch_one(&pool).await?;
    assert_eq!(id, 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_starts_and_restarts_on_the_same_port() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let addr = broker.addr;
    let stream = tokio::net::TcpStream::connect(addr).await?;
    drop(stream);
    let broker = broker.restart().await?;
    assert_eq!(broker.addr, addr);
    tokio::net::TcpStream::connect(addr).await?;
    Ok(())
}
