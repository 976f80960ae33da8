//! Shared test helpers: the real worker in-process on port 0 against the in-process broker, and
//! small REST/Kafka helpers.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

pub struct Worker {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), connect_worker::WorkerError>>>,
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,librdkafka=off".into()),
        )
        .with_test_writer()
        .try_init();
}

impl Worker {
    pub async fn start(bootstrap: &str) -> anyhow::Result<Self> {
        Self::start_with(connect_worker::Config::new(bootstrap)).await
    }

    /// A worker with settings of the test's own (its `listen` is ignored: port 0).
    pub async fn start_with(config: connect_worker::Config) -> anyhow::Result<Self> {
        init_tracing();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(connect_worker::run(config, listener, async {
            let _ = stopped.await;
        }));
        let w = Worker {
            base,
            stop: Some(stop),
            task: Some(task),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/", w.base)).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "worker did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(w)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        send(reqwest::Client::new().post(self.url(path)).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        send(reqwest::Client::new().put(self.url(path)).json(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(reqwest::Client::new().get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(reqwest::Client::new().delete(self.url(path))).await
    }

    /// Waits until the connector and all its tasks (at least one) are in `state`.
    pub async fn wait_state(&self, name: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, s) = self.get(&format!("/connectors/{name}/status")).await;
            if code == 200 {
                let tasks = s["tasks"].as_array().cloned().unwrap_or_default();
                if s["connector"]["state"] == state
                    && !tasks.is_empty()
                    && tasks.iter().all(|t| t["state"] == state)
                {
                    return s;
                }
            }
            assert!(Instant::now() < deadline, "{name} not {state}: {s}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Worker {
    /// Waits until some task of the connector is in `state` (e.g. FAILED).
    pub async fn wait_state_any_task(&self, name: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, s) = self.get(&format!("/connectors/{name}/status")).await;
            let tasks = s["tasks"].as_array().cloned().unwrap_or_default();
            if code == 200 && tasks.iter().any(|t| t["state"] == state) {
                return s;
            }
            assert!(Instant::now() < deadline, "no task of {name} {state}: {s}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("log_level", "3")
        .create()
        .expect("producer")
}

pub async fn produce(p: &FutureProducer, topic: &str, key: Option<&str>, value: Option<&str>) {
    let mut r: FutureRecord<'_, str, str> = FutureRecord::to(topic);
    if let Some(k) = key {
        r = r.key(k);
    }
    if let Some(v) = value {
        r = r.payload(v);
    }
    p.send(r, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
}

/// Polls `f` until it returns true (60 s).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `jdbc:mysql://HOST:PORT/DB` for a test database URL `mysql://root:pw@HOST:PORT/DB`.
pub fn jdbc_url(db_url: &str) -> String {
    let rest = db_url.split_once('@').map(|(_, r)| r).unwrap_or(db_url);
    format!("jdbc:mysql://{rest}")
}

/// A worker on a runtime of its own, so a test can kill it as `kill -9` would: its runtime is
/// dropped with everything on it (no LeaveGroup, no task stopped cleanly).
pub struct ClusterWorker {
    pub base: String,
    /// Its worker id in statuses (the listen address).
    pub id: String,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), connect_worker::WorkerError>>>,
}

impl ClusterWorker {
    pub async fn start(config: connect_worker::Config) -> anyhow::Result<Self> {
        init_tracing();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener)
                .map_err(connect_worker::WorkerError::Listener)?;
            connect_worker::run(config, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        let w = ClusterWorker {
            base: format!("http://{addr}"),
            id: addr.to_string(),
            runtime: Some(runtime),
            stop: Some(stop),
            task: Some(task),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/", w.base)).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "worker did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(w)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(reqwest::Client::new().get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        send(reqwest::Client::new().post(self.url(path)).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        send(reqwest::Client::new().put(self.url(path)).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(reqwest::Client::new().delete(self.url(path))).await
    }

    /// Everything it runs dies at once, mid-write if so.
    pub fn kill(mut self) {
        self.stop.take();
        self.task.take();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }

    /// A graceful stop: tasks stopped, the group left.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(60), t).await;
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for ClusterWorker {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Creates `topic` with `partitions` partitions.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .expect("admin");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin
        .create_topics([&new], &AdminOptions::new())
        .await
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}
