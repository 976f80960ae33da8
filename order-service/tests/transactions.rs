//! The transactional order path under faults: many concurrent POSTs (so transactions hold many
//! orders) while the broker is stopped at random points and restarted, a bounded number of
//! times. Afterwards, checked against a read_committed consumer and against MariaDB filled by the
//! real JDBC sink: every 201 order is there exactly once, no order that got an error answer is
//! there, and nothing else is (an order whose POST got no answer at all may be either).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{config, read_all, read_committed_all, start_worker, TestApp};
use serde_json::json;
use test_support::{MariaDb, TestBroker};

const USER: &str = "u-txn-faults";
const POSTERS: usize = 16;
const ROUNDS: usize = 4;

/// A random duration below `max_ms` (test jitter; no cryptographic need).
fn jitter(max_ms: u64) -> Duration {
    Duration::from_millis((uuid::Uuid::new_v4().as_u128() % u128::from(max_ms.max(1))) as u64)
}

/// What each POST (named by its unique productId) got: an HTTP status, or 0 for no answer.
type Answers = HashMap<String, u16>;

fn start_load(url: &str, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<Answers>> {
    (0..POSTERS)
        .map(|n| {
            let (url, stop) = (url.to_string(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap_or_default();
                let mut answers = Answers::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let product = format!("P-{n}-{i}");
                    let status = match client
                        .post(format!("{url}/order-service/{USER}/orders"))
                        .json(&json!({"productId": product, "qty": 1, "unitPrice": 100}))
                        .send()
                        .await
                    {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    if status != 201 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    answers.insert(product, status);
                    i += 1;
                }
                answers
            })
        })
        .collect()
}

async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = client
            .get(format!("{url}/order-service/ready"))
            .send()
            .await?;
        if r.status() == 200 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_stopped_at_random_points_no_error_answer_ever_becomes_an_order(
) -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let mut broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let app = TestApp::spawn(config(
        &db.url,
        &bootstrap,
        &[
            "--publish-timeout-ms",
            "1000",
            "--transaction-timeout-ms",
            "5000",
            "--transactional-id",
            "order-service-fault-test",
        ],
    ))
    .await?;
    wait_ready(&app.url).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&app.url, stop.clone());
    for _ in 0..ROUNDS {
        tokio::time::sleep(Duration::from_millis(300) + jitter(700)).await;
        broker.stop().await;
        tokio::time::sleep(jitter(800)).await;
        broker = broker.restart().await?;
    }
    // Back for good: the service recovers (aborts what it must) and commits again.
    wait_ready(&app.url).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Answers::new();
    for t in load {
        answers.extend(t.await?);
    }
    let mut by_status = BTreeMap::<u16, usize>::new();
    for s in answers.values() {
        *by_status.entry(*s).or_default() += 1;
    }
    eprintln!("answers by status: {by_status:?}");
    let answered = |want: fn(u16) -> bool| -> HashSet<&str> {
        answers
            .iter()
            .filter(|(_, s)| want(**s))
            .map(|(p, _)| p.as_str())
            .collect()
    };
    let ok = answered(|s| s == 201);
    let failed = answered(|s| s != 201 && s != 0);
    let unanswered = answered(|s| s == 0);
    assert!(
        answers.values().all(|s| [0, 201, 503].contains(s)),
        "{by_status:?}"
    );
    assert!(!ok.is_empty() && !failed.is_empty(), "{by_status:?}");

    // What read_committed consumers see.
    let bootstrap = broker.bootstrap();
    let committed = {
        let b = bootstrap.clone();
        let n = ok.len();
        tokio::task::spawn_blocking(move || read_committed_all(&b, n)).await?
    };
    let products: Vec<String> = committed
        .iter()
        .filter_map(|v| v["payload"]["product_id"].as_str().map(str::to_string))
        .collect();
    let visible: HashSet<&str> = products.iter().map(String::as_str).collect();
    assert_eq!(visible.len(), products.len(), "an order committed twice");
    let missing: Vec<_> = ok.difference(&visible).collect();
    assert!(missing.is_empty(), "201 but not committed: {missing:?}");
    let wrongly: Vec<_> = failed.intersection(&visible).collect();
    assert!(
        wrongly.is_empty(),
        "error answer but committed: {wrongly:?}"
    );
    let foreign: Vec<_> = visible
        .iter()
        .filter(|p| !ok.contains(*p) && !unanswered.contains(*p))
        .collect();
    assert!(
        foreign.is_empty(),
        "committed but never posted: {foreign:?}"
    );
    // How many records the faults left aborted (read_uncommitted sees them), to show the test
    // hit transactions in flight.
    let all = {
        let b = bootstrap.clone();
        let n = products.len();
        tokio::task::spawn_blocking(move || read_all(&b, "read_uncommitted", n)).await?
    };
    eprintln!(
        "{} committed orders, {} records of aborted transactions",
        products.len(),
        all.len() - products.len()
    );

    // MariaDB through the real sink (read_committed): exactly the committed orders.
    let mut worker = start_worker(&bootstrap, &db, "orders-sink").await?;
    let pool = db.pool().await?;
    let stored = || async {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT product_id FROM orders WHERE user_id = ?")
                .bind(USER)
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
        rows.into_iter().map(|(p,)| p).collect::<Vec<String>>()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while stored().await.len() < products.len() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sink did not write every order"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut in_db = stored().await;
    in_db.sort();
    let mut expected = products.clone();
    expected.sort();
    assert_eq!(
        in_db, expected,
        "MariaDB holds exactly the committed orders"
    );

    if let Some(s) = worker.stop.take() {
        let _ = s.send(());
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), &mut worker.task).await;
    app.stop().await
}
