//! Helpers for the whole-system tests in `tests/tests/`: every datasync process started for real
//! (`run(config, listener, shutdown)` on a loopback port 0), against a real MariaDB
//! ([`test_support::MariaDb`]: testcontainers from `MARIADB_IMAGE`, or `DATABASE_URL`) and the
//! in-process broker ([`test_support::TestBroker`]).
//!
//! The connect worker can also run as a child process ([`WorkerProcess`], the
//! `connect-worker-child` binary of this crate), so that a test can `kill -9` it: aborting an
//! in-process worker would leave its connector tasks running.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Parser;
use serde_json::{json, Value};
use test_support::MariaDb;

pub use test_support::{TestBroker, ROOT_PASSWORD};

/// Logs of the processes under test (`RUST_LOG`, default `warn`), captured per test.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,librdkafka=off".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A service running in-process: its base URL and how to stop it.
pub struct Service {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Service {
    /// Runs `run(listener, shutdown)` on a loopback port and waits until `health_path` answers 200.
    pub async fn spawn<F, E>(
        what: &str,
        health_path: &str,
        run: impl FnOnce(tokio::net::TcpListener, tokio::sync::oneshot::Receiver<()>) -> F,
    ) -> anyhow::Result<Service>
    where
        F: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: Into<anyhow::Error> + Send + 'static,
    {
        init_tracing();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let running = run(listener, stopped);
        let mut task = tokio::spawn(async move { running.await.map_err(Into::into) });
        let deadline = Instant::now() + Duration::from_secs(90);
        let c = client();
        loop {
            if matches!(c.get(format!("{url}{health_path}")).send().await, Ok(r) if r.status() == 200)
            {
                break;
            }
            if task.is_finished() {
                let r = (&mut task).await;
                bail!("{what} exited during start-up: {r:?}");
            }
            ensure!(
                Instant::now() < deadline,
                "{what} did not answer {health_path} within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Service {
            url,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Graceful shutdown; returns the service's own result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .context("service did not stop within 30 s")???;
        }
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// An order-service instance (`extra` flags appended to the defaults used here).
pub async fn order_service(
    db: &MariaDb,
    bootstrap: &str,
    extra: &[&str],
) -> anyhow::Result<Service> {
    let mut args = vec![
        "order-service",
        "--database-url",
        &db.url,
        "--bootstrap-servers",
        bootstrap,
        "--heartbeat-ms",
        "300",
        "--publish-timeout-ms",
        "3000",
        "--consistency-timeout-ms",
        "20000",
        "--db-timeout-ms",
        "2000",
        "--startup-timeout-secs",
        "60",
    ];
    args.extend_from_slice(extra);
    let config = order_service::Config::try_parse_from(args)?;
    Service::spawn("order-service", "/order-service/ready", |l, stop| {
        order_service::run(config, l, async {
            let _ = stop.await;
        })
    })
    .await
}

/// The user-service.
pub async fn user_service(db: &MariaDb, bootstrap: &str) -> anyhow::Result<Service> {
    let config = user_service::Config::try_parse_from([
        "user-service",
        "--database-url",
        &db.url,
        "--bootstrap-servers",
        bootstrap,
        "--jwt-secret",
        "integration-test-secret-0123456789",
        "--heartbeat-ms",
        "300",
        "--order-service-timeout-ms",
        "5000",
        "--startup-timeout-secs",
        "60",
    ])?;
    Service::spawn("user-service", "/ready", |l, stop| {
        user_service::run(config, l, async {
            let _ = stop.await;
        })
    })
    .await
}

/// The connect worker, in-process.
pub async fn connect_worker(bootstrap: &str) -> anyhow::Result<Service> {
    let config = connect_worker::Config::new(bootstrap);
    Service::spawn("connect-worker", "/connectors", |l, stop| {
        connect_worker::run(config, l, async {
            let _ = stop.await;
        })
    })
    .await
}

/// The connect worker as a child process, so that it can be killed with SIGKILL. `exe` is this
/// crate's `connect-worker-child` binary (`connect-worker`'s main); integration tests pass
/// `env!("CARGO_BIN_EXE_connect-worker-child")`.
pub struct WorkerProcess {
    pub url: String,
    child: tokio::process::Child,
}

impl WorkerProcess {
    pub async fn start(exe: &str, bootstrap: &str) -> anyhow::Result<Self> {
        Self::start_with(exe, bootstrap, &[]).await
    }

    /// [`WorkerProcess::start`] with more environment variables (worker settings).
    pub async fn start_with(
        exe: &str,
        bootstrap: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new(exe)
            .envs(env.iter().copied())
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("CONNECT_LISTEN", format!("127.0.0.1:{port}"))
            .env("CONNECT_WORKER_ID", "worker-child")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,librdkafka=off".into()),
            )
            .env_remove("CONNECT_CONNECTORS_DIR")
            .kill_on_drop(true)
            .spawn()
            .context("starting connect-worker-child")?;
        let mut w = WorkerProcess {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        let c = client();
        while !matches!(c.get(w.url("/connectors")).send().await, Ok(r) if r.status() == 200) {
            if let Some(status) = w.child.try_wait()? {
                bail!("connect-worker-child exited during start-up: {status}");
            }
            ensure!(
                Instant::now() < deadline,
                "connect-worker-child did not start within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(w)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `kill -9`: no shutdown, no flush, no leaving the consumer group.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// A reqwest client with a per-request timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// What the shipped connector files say instead of the password.
pub const SHIPPED_PASSWORD: &str = "${env:MARIADB_ROOT_PASSWORD}";

/// A connector definition shipped in `docker/connectors/<file>`, pointed at `db` instead of the
/// compose service `mariadb:3306/mydb` (its JDBC scheme and user are kept). The shipped files name
/// the password `${env:MARIADB_ROOT_PASSWORD}`, which the compose stack's worker resolves from its
/// environment (`CONNECT_CONFIG_PROVIDERS=env`, covered by the compose smoke test); here it is
/// the test server's.
pub fn shipped_connector(file: &str, db: &MariaDb) -> anyhow::Result<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docker/connectors")
        .join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: Value = serde_json::from_str(&text)?;
    let url = doc["config"]["connection.url"]
        .as_str()
        .with_context(|| format!("{file}: no connection.url"))?
        .to_string();
    let (scheme, _) = url.split_once("//").context("connection.url without //")?;
    let host_and_db = db.url.rsplit_once('@').map(|(_, h)| h).unwrap_or_default();
    doc["config"]["connection.url"] = json!(format!("{scheme}//{host_and_db}"));
    ensure!(
        doc["config"]["connection.password"] == SHIPPED_PASSWORD,
        "{file}: connection.password is not {SHIPPED_PASSWORD}"
    );
    doc["config"]["connection.password"] = json!(ROOT_PASSWORD);
    Ok(doc)
}

/// `POST {base}/connectors` with `connector`, expecting 201.
pub async fn create_connector(base: &str, connector: &Value) -> anyhow::Result<()> {
    let r = client()
        .post(format!("{base}/connectors"))
        .json(connector)
        .send()
        .await?;
    let code = r.status();
    let body = r.text().await?;
    ensure!(code == 201, "creating {}: {code} {body}", connector["name"]);
    Ok(())
}

/// Creates the tutorial's `my-source-connect` (as shipped, with `source_settings` added) and
/// `my-sink-connect` on the worker at `base`, pointed at `db`, and waits until both run.
pub async fn tutorial_connectors(
    base: &str,
    db: &MariaDb,
    source_settings: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut source = shipped_connector("my-source-connect.json", db)?;
    for (k, v) in source_settings {
        source["config"][*k] = json!(v);
    }
    create_connector(base, &source).await?;
    create_connector(base, &shipped_connector("my-sink-connect.json", db)?).await?;
    wait_running(base, "my-source-connect").await?;
    wait_running(base, "my-sink-connect").await
}

/// Waits until `name` and all its tasks (at least one) are RUNNING.
pub async fn wait_running(base: &str, name: &str) -> anyhow::Result<()> {
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s: Value = match c
            .get(format!("{base}/connectors/{name}/status"))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        let tasks = s["tasks"].as_array().cloned().unwrap_or_default();
        if s["connector"]["state"] == "RUNNING"
            && !tasks.is_empty()
            && tasks.iter().all(|t| t["state"] == "RUNNING")
        {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{name} not RUNNING within 60 s: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `f` every 200 ms until it returns true, for at most `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !f().await {
        ensure!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// A user created through the user-service; returns its `userId`.
pub async fn create_user(user_service: &str, email: &str, name: &str) -> anyhow::Result<String> {
    let r = client()
        .post(format!("{user_service}/users"))
        .json(&json!({"email": email, "name": name, "pwd": "s3cret-pass"}))
        .send()
        .await?;
    let code = r.status();
    let body: Value = r.json().await?;
    ensure!(code == 201, "POST /users: {code} {body}");
    Ok(body["userId"].as_str().context("no userId")?.to_string())
}

/// What one `POST /order-service/{user}/orders` answered.
#[derive(Debug, Clone)]
pub struct Posted {
    pub status: u16,
    pub order_id: Option<String>,
    pub token: Option<String>,
    pub body: Value,
}

/// Posts one order; transport errors count as status 0.
pub async fn post_order(c: &reqwest::Client, base: &str, user: &str, i: usize) -> Posted {
    let r = c
        .post(format!("{base}/order-service/{user}/orders"))
        .json(&json!({"productId": format!("CATALOG-{i:04}"), "qty": 1 + i % 5, "unitPrice": 1500}))
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            let token = r
                .headers()
                .get("x-consistency-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body: Value = r.json().await.unwrap_or(Value::Null);
            Posted {
                status,
                order_id: body["orderId"].as_str().map(str::to_string),
                token,
                body,
            }
        }
        Err(e) => Posted {
            status: 0,
            order_id: None,
            token: None,
            body: json!(e.to_string()),
        },
    }
}

/// Background load: posts orders for `user` round-robin to `instances` until stopped (at most
/// one request in flight per instance), recording every answer.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Posted>>>,
}

impl Load {
    pub fn start(instances: &[String], user: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = instances
            .iter()
            .enumerate()
            .map(|(n, base)| {
                let (stop, base, user) = (stop.clone(), base.clone(), user.to_string());
                tokio::spawn(async move {
                    let c = client();
                    let mut out = Vec::new();
                    let mut i = n * 1_000_000;
                    while !stop.load(Ordering::Relaxed) {
                        let p = post_order(&c, &base, &user, i).await;
                        if p.status != 201 {
                            // the broker or database is down: do not spin
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        } else {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        out.push(p);
                        i += 1;
                    }
                    out
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops the load and returns every answer.
    pub async fn finish(self) -> anyhow::Result<Vec<Posted>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await?);
        }
        Ok(all)
    }
}

/// Waits until `user` has at least `n` order rows in MariaDB.
pub async fn wait_rows(pool: &sqlx::MySqlPool, user: &str, n: i64) -> anyhow::Result<()> {
    eventually(
        &format!("{n} order rows"),
        Duration::from_secs(60),
        || async { order_rows(pool, user).await.unwrap_or(0) >= n },
    )
    .await
}

async fn order_rows(pool: &sqlx::MySqlPool, user: &str) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders WHERE user_id = ?")
        .bind(user)
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// The exactly-once check after a fault: every order answered 201 reaches MariaDB (waiting up to
/// 90 s for the sink), exactly once (rows = distinct order ids), and nothing but what was posted
/// is there (rows ≤ attempts; a request answered 503 may still have been stored).
pub async fn assert_each_201_exactly_once(
    db: &MariaDb,
    user: &str,
    posted: &[Posted],
) -> anyhow::Result<()> {
    let acked: HashSet<&str> = posted
        .iter()
        .filter(|p| p.status == 201)
        .map(|p| p.order_id.as_deref().expect("201 without orderId"))
        .collect();
    ensure!(
        acked.len() == posted.iter().filter(|p| p.status == 201).count(),
        "two 201 answers carried the same orderId"
    );
    // MariaDB may have been restarted: a fresh pool.
    let pool = db.pool().await?;
    let mut missing: Vec<String>;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ids: Vec<(String,)> = sqlx::query_as("SELECT order_id FROM orders WHERE user_id = ?")
            .bind(user)
            .fetch_all(&pool)
            .await?;
        let stored: HashSet<String> = ids.into_iter().map(|(id,)| id).collect();
        missing = acked
            .iter()
            .filter(|id| !stored.contains(**id))
            .map(|id| id.to_string())
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ensure!(
        missing.is_empty(),
        "{} of {} acknowledged orders never reached MariaDB, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    // Let the sink settle (records of 503 answers may still arrive), then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT order_id) FROM orders WHERE user_id = ?")
            .bind(user)
            .fetch_one(&pool)
            .await?;
    ensure!(
        rows == distinct,
        "{rows} rows but {distinct} distinct order ids"
    );
    ensure!(
        rows as usize <= posted.len(),
        "{rows} rows for {} attempts",
        posted.len()
    );
    Ok(())
}

/// Counts by status, e.g. `{201: 120, 503: 7}`, for messages.
pub fn by_status(posted: &[Posted]) -> std::collections::BTreeMap<u16, usize> {
    let mut m = std::collections::BTreeMap::new();
    for p in posted {
        *m.entry(p.status).or_default() += 1;
    }
    m
}
