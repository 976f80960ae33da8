//! Faults while orders are being posted to two order-service instances: the broker stopped and
//! restarted, the connect worker killed with SIGKILL, MariaDB restarted. Afterwards every order
//! that was answered 201 is in MariaDB exactly once (and nothing that was not posted).

use std::time::Duration;

use integration_tests::{
    assert_each_201_exactly_once, by_status, connect_worker, create_connector, order_service,
    shipped_connector, wait_rows, wait_running, Load, Service, TestBroker, WorkerProcess,
};
use test_support::MariaDb;

const WORKER_EXE: &str = env!("CARGO_BIN_EXE_connect-worker-child");

async fn rows(db: &MariaDb, user: &str) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders WHERE user_id = ?")
        .bind(user)
        .fetch_one(&db.pool().await?)
        .await?;
    Ok(n)
}

async fn two_instances(db: &MariaDb, bootstrap: &str) -> anyhow::Result<(Service, Service)> {
    Ok((
        order_service(db, bootstrap, &[]).await?,
        order_service(db, bootstrap, &[]).await?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_stopped_and_restarted_while_orders_are_posted() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let mut broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let (a, b) = two_instances(&db, &bootstrap).await?;
    let worker = connect_worker(&bootstrap).await?;
    create_connector(&worker.url, &shipped_connector("orders-sink.json", &db)?).await?;
    wait_running(&worker.url, "orders-sink").await?;
    let user = "u-broker-fault";
    let pool = db.pool().await?;

    let load = Load::start(&[a.url.clone(), b.url.clone()], user);
    wait_rows(&pool, user, 20).await?;
    broker.stop().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let broker = broker.restart().await?; // same port, same data directory
    let before = rows(&db, user).await?;
    wait_rows(&pool, user, before + 20).await?;
    let posted = load.finish().await?;
    let statuses = by_status(&posted);
    eprintln!("answers by status: {statuses:?}");
    assert!(
        posted.iter().any(|p| p.status != 201),
        "no POST failed while the broker was down: {statuses:?}"
    );
    assert_each_201_exactly_once(&db, user, &posted).await?;

    worker.stop().await?;
    a.stop().await?;
    b.stop().await?;
    drop(broker);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_worker_killed_mid_stream() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let (a, b) = two_instances(&db, &bootstrap).await?;
    let mut worker = WorkerProcess::start(WORKER_EXE, &bootstrap).await?;
    create_connector(&worker.url, &shipped_connector("orders-sink.json", &db)?).await?;
    wait_running(&worker.url, "orders-sink").await?;
    let user = "u-worker-kill";
    let pool = db.pool().await?;

    let load = Load::start(&[a.url.clone(), b.url.clone()], user);
    for round in 0..2 {
        let n = rows(&db, user).await?;
        wait_rows(&pool, user, n + 20).await?;
        worker.kill().await?; // SIGKILL, mid-stream
        eprintln!(
            "round {round}: worker killed with {} rows applied",
            rows(&db, user).await?
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        // A new worker resumes the stored connector (config topic) and the sink resumes from
        // the offsets it committed with the rows.
        worker = WorkerProcess::start(WORKER_EXE, &bootstrap).await?;
        wait_running(&worker.url, "orders-sink").await?;
    }
    let n = rows(&db, user).await?;
    wait_rows(&pool, user, n + 20).await?;
    let posted = load.finish().await?;
    eprintln!("answers by status: {:?}", by_status(&posted));
    assert!(
        posted.iter().all(|p| p.status == 201),
        "{:?}",
        by_status(&posted)
    );
    assert_each_201_exactly_once(&db, user, &posted).await?;

    worker.kill().await?;
    a.stop().await?;
    b.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_restarted_mid_stream() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let (a, b) = two_instances(&db, &bootstrap).await?;
    let worker = connect_worker(&bootstrap).await?;
    create_connector(&worker.url, &shipped_connector("orders-sink.json", &db)?).await?;
    wait_running(&worker.url, "orders-sink").await?;
    let user = "u-db-restart";
    let pool = db.pool().await?;

    let load = Load::start(&[a.url.clone(), b.url.clone()], user);
    wait_rows(&pool, user, 20).await?;
    db.stop().await?;
    // Orders keep being accepted: they only need the broker.
    tokio::time::sleep(Duration::from_secs(4)).await;
    db.start_again().await?;
    let pool = db.pool().await?;
    let n = rows(&db, user).await?;
    wait_rows(&pool, user, n + 20).await?;
    let posted = load.finish().await?;
    eprintln!("answers by status: {:?}", by_status(&posted));
    assert_each_201_exactly_once(&db, user, &posted).await?;
    wait_running(&worker.url, "orders-sink").await?;

    worker.stop().await?;
    a.stop().await?;
    b.stop().await
}
