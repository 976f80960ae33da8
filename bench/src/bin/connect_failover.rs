//! connect-failover-bench: the connect worker's distributed mode when a worker dies or joins,
//! and its sink throughput on one worker against three (issue 13's targets). The broker runs
//! in-process; so does each worker, on a runtime of its own, so a kill drops everything it
//! runs at once (no LeaveGroup, no task stopped cleanly), as `kill -9` would.
//!
//! 1. failover: three workers run a FileStreamSink of six tasks on six partitions; each round
//!    kills one worker and times until every task is RUNNING on the others (target: under
//!    `session.timeout.ms` + 5 s with `scheduled.rebalance.max.delay.ms=0`), then starts a
//!    replacement and waits until it runs tasks;
//! 2. join: a fourth worker joins the three: the tasks that moved (target: only those the new
//!    worker receives) and, from the status topic, whether any task that stayed was stopped
//!    (target: none; a task that keeps running writes no status);
//! 3. sink throughput: `--records` records on six partitions through a FileStreamSink of six
//!    tasks on one worker, then on three (fresh group, topics and file each): the connector is
//!    created, paused once every task is placed, the records produced, then it is resumed;
//!    records/s from the resume until the file holds every record (target: three workers not
//!    below one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "connect-failover-bench")]
struct Args {
    /// Kill-and-replace rounds of the failover phase.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The workers' `session.timeout.ms` (Kafka Connect's default).
    #[arg(long, default_value_t = 10_000)]
    session_timeout_ms: i32,
    /// The workers' `heartbeat.interval.ms` (Kafka Connect's default).
    #[arg(long, default_value_t = 3_000)]
    heartbeat_interval_ms: u64,
    /// Records of the throughput phase.
    #[arg(long, default_value_t = 600_000)]
    records: u64,
    /// Skip phases: comma-separated of failover, join, throughput.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

const TASKS: usize = 6;
/// Every line the throughput phase's sink writes is this long (the record and its newline), so
/// the file's size counts them.
const RECORD_LEN: usize = 100;

struct Worker {
    id: String,
    base: String,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), connect_worker::WorkerError>>>,
}

impl Worker {
    async fn start(config: connect_worker::Config) -> anyhow::Result<Worker> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(connect_worker::WorkerError::Listener)?;
            connect_worker::run(config, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        let w = Worker {
            id: addr.to_string(),
            base: format!("http://{addr}"),
            runtime: Some(runtime),
            stop: Some(stop),
            task: Some(task),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{}/", w.base)).await.is_err() {
            if Instant::now() > deadline {
                bail!("worker {} did not come up", w.id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(w)
    }

    fn kill(mut self) {
        self.stop.take();
        self.task.take();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }

    async fn stop(mut self) {
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

    async fn request(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let mut req = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if !body.is_null() {
            req = req.json(&body);
        }
        match req.send().await {
            Ok(r) => {
                let code = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (code, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// Who runs each task of `name`, once it and every task are RUNNING as this worker sees.
    async fn owners(&self, name: &str) -> Option<BTreeMap<u64, String>> {
        let (code, s) = self
            .request(
                reqwest::Method::GET,
                &format!("/connectors/{name}/status"),
                Value::Null,
            )
            .await;
        if code != 200 || s["connector"]["state"] != "RUNNING" {
            return None;
        }
        let tasks = s["tasks"].as_array()?;
        if tasks.len() != TASKS {
            return None;
        }
        let mut out = BTreeMap::new();
        for t in tasks {
            if t["state"] != "RUNNING" {
                return None;
            }
            out.insert(t["id"].as_u64()?, t["worker_id"].as_str()?.to_string());
        }
        Some(out)
    }

    /// Polls [`Self::owners`] every 20 ms until `ok` accepts them.
    async fn wait_owners(
        &self,
        name: &str,
        within: Duration,
        what: &str,
        ok: impl Fn(&BTreeMap<u64, String>) -> bool,
    ) -> anyhow::Result<BTreeMap<u64, String>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(o) = self.owners(name).await {
                if ok(&o) {
                    return Ok(o);
                }
            }
            if Instant::now() > deadline {
                bail!("{what}: not settled within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

struct Bench {
    args: Args,
    bootstrap: String,
    dir: PathBuf,
}

impl Bench {
    /// A worker config of group `group`, whose state topics are named after it.
    fn config(&self, group: &str) -> connect_worker::Config {
        let mut c = connect_worker::Config::new(&self.bootstrap);
        c.group_id = group.to_string();
        c.config_topic = format!("{group}-configs");
        c.offset_topic = format!("{group}-offsets");
        c.status_topic = format!("{group}-status");
        c.session_timeout_ms = self.args.session_timeout_ms;
        c.heartbeat_interval_ms = self.args.heartbeat_interval_ms;
        c.rebalance_timeout_ms = 30_000;
        c.scheduled_rebalance_max_delay_ms = 0;
        c.allowed_paths = vec![self.dir.clone()];
        c
    }

    async fn create_topic(&self, topic: &str) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("log_level", "3")
            .create()?;
        let new = NewTopic::new(topic, TASKS as i32, TopicReplication::Fixed(1));
        for r in admin.create_topics([&new], &AdminOptions::new()).await? {
            r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
        }
        Ok(())
    }

    async fn create_sink(
        &self,
        via: &Worker,
        name: &str,
        topic: &str,
        file: &Path,
    ) -> anyhow::Result<()> {
        let (code, body) = via
            .request(
                reqwest::Method::POST,
                "/connectors",
                json!({"name": name, "config": {
                    "connector.class": "FileStreamSink", "tasks.max": TASKS.to_string(),
                    "value.converter": "org.apache.kafka.connect.storage.StringConverter",
                    "topics": topic, "file": file}}),
            )
            .await;
        if code != 201 {
            bail!("creating {name}: {code} {body}");
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Every record of `topic` now: (key, value, timestamp ms).
fn read_topic(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<(String, Value, i64)>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "failover-bench-reader")
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = md.topics().first().map_or(0, |t| t.partitions().len());
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in 0..partitions as i32 {
        let (lo, hi) = c.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        if hi > lo {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
            ends.insert(p, hi);
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    c.assign(&tpl)?;
    let mut done = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while done.len() < ends.len() {
        if Instant::now() > deadline {
            bail!("{topic} not read to its end");
        }
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            let value = m
                .payload()
                .and_then(|v| serde_json::from_slice(v).ok())
                .unwrap_or(Value::Null);
            out.push((key, value, m.timestamp().to_millis().unwrap_or(0)));
            if m.offset() + 1 >= ends[&m.partition()] {
                done.insert(m.partition());
            }
        }
    }
    Ok(out)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Phases 1 and 2 on one group; returns the rows of the table.
async fn failover_and_join(b: &Bench) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    let group = format!("fo{}", std::process::id());
    let topic = format!("{group}-in");
    b.create_topic(&topic).await?;
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(Worker::start(b.config(&group)).await?);
    }
    // Let the three form one group before the connector exists, so its tasks spread at once.
    tokio::time::sleep(Duration::from_millis(
        b.args.heartbeat_interval_ms * 2 + 1_000,
    ))
    .await;
    b.create_sink(&workers[0], "fo", &topic, &b.dir.join("fo.txt"))
        .await?;
    workers[0]
        .wait_owners("fo", Duration::from_secs(120), "spread over three", |o| {
            o.values().collect::<BTreeSet<_>>().len() == 3
        })
        .await?;
    let session = Duration::from_millis(b.args.session_timeout_ms as u64);
    let target = session + Duration::from_secs(5);
    if !b.args.skip.iter().any(|s| s == "failover") {
        let mut took_all = Vec::new();
        for round in 0..b.args.rounds {
            let victim = workers.remove(0);
            let killed = victim.id.clone();
            let lost = workers[0]
                .owners("fo")
                .await
                .map_or(0, |o| o.values().filter(|id| **id == killed).count());
            let t0 = Instant::now();
            victim.kill();
            workers[0]
                .wait_owners("fo", Duration::from_secs(120), "failover", |o| {
                    o.values().all(|id| *id != killed)
                })
                .await?;
            let took = t0.elapsed();
            println!(
                "failover round {round}: {lost} tasks of the killed worker running again after {}",
                secs(took)
            );
            took_all.push(took);
            // A replacement, so the next round starts from three again.
            let fresh = Worker::start(b.config(&group)).await?;
            let id = fresh.id.clone();
            workers.push(fresh);
            workers[0]
                .wait_owners("fo", Duration::from_secs(120), "replacement", |o| {
                    o.values().any(|w| *w == id) && o.values().collect::<BTreeSet<_>>().len() == 3
                })
                .await?;
        }
        took_all.sort();
        let max = *took_all.last().unwrap_or(&Duration::ZERO);
        rows.push(format!(
            "| killed worker's tasks running elsewhere ({} rounds, session.timeout.ms={}, heartbeat.interval.ms={}, scheduled.rebalance.max.delay.ms=0) | min {}, median {}, max {} | < {} | {} |",
            took_all.len(),
            b.args.session_timeout_ms,
            b.args.heartbeat_interval_ms,
            secs(took_all[0]),
            secs(took_all[took_all.len() / 2]),
            secs(max),
            secs(target),
            if max < target { "met" } else { "not met" }
        ));
    }
    if !b.args.skip.iter().any(|s| s == "join") {
        let before = workers[0]
            .wait_owners("fo", Duration::from_secs(60), "before the join", |_| true)
            .await?;
        let joined_ms = now_ms();
        let t0 = Instant::now();
        let fourth = Worker::start(b.config(&group)).await?;
        let id = fourth.id.clone();
        let after = workers[0]
            .wait_owners("fo", Duration::from_secs(120), "join", |o| {
                o.values().any(|w| *w == id)
            })
            .await?;
        let took = t0.elapsed();
        // Any further round would show in the statuses: give it time.
        tokio::time::sleep(Duration::from_millis(
            b.args.heartbeat_interval_ms * 2 + 2_000,
        ))
        .await;
        let settled = workers[0]
            .wait_owners("fo", Duration::from_secs(60), "settled", |_| true)
            .await?;
        let moved: Vec<u64> = before
            .iter()
            .filter(|(t, w)| settled.get(t) != Some(w))
            .map(|(t, _)| *t)
            .collect();
        let received = settled.values().filter(|w| **w == id).count();
        let moved_elsewhere = moved.iter().filter(|t| settled[t] != id).count();
        let bootstrap = b.bootstrap.clone();
        let status_topic = format!("{group}-status");
        let records =
            tokio::task::spawn_blocking(move || read_topic(&bootstrap, &status_topic)).await??;
        let mut stayed_stopped = 0;
        for (task, _) in before.iter().filter(|(t, _)| !moved.contains(t)) {
            let key = format!("status-task-fo-{task}");
            let changes: Vec<String> = records
                .iter()
                .filter(|(k, _, at)| *k == key && *at >= joined_ms)
                .map(|(_, v, _)| v["state"].as_str().unwrap_or("?").to_string())
                .collect();
            if !changes.is_empty() {
                println!("task {task} stayed but reported {changes:?} after the join");
                stayed_stopped += 1;
            }
        }
        println!(
            "join: the new worker runs {received} tasks after {} ({} before settling); moved {} ({moved:?}), {moved_elsewhere} of them elsewhere; tasks that stayed but stopped: {stayed_stopped}",
            secs(took),
            after.values().filter(|w| **w == id).count(),
            moved.len()
        );
        let met = moved.len() == received && moved_elsewhere == 0 && stayed_stopped == 0;
        rows.push(format!(
            "| a fourth worker joins three (6 tasks) | moved {} = received {}, {} stopped among the {} that stayed; new worker running its tasks after {} | moved ≤ received, none of the others stopped | {} |",
            moved.len(),
            received,
            stayed_stopped,
            TASKS - moved.len(),
            secs(took),
            if met { "met" } else { "not met" }
        ));
        workers.push(fourth);
    }
    for w in workers {
        w.stop().await;
    }
    Ok(rows)
}

/// Phase 3 with `n` workers: records/s.
async fn throughput(b: &Bench, n: usize) -> anyhow::Result<f64> {
    let group = format!("tp{n}-{}", std::process::id());
    let topic = format!("{group}-in");
    b.create_topic(&topic).await?;
    let mut workers = Vec::new();
    for _ in 0..n {
        workers.push(Worker::start(b.config(&group)).await?);
    }
    tokio::time::sleep(Duration::from_millis(
        b.args.heartbeat_interval_ms * 2 + 1_000,
    ))
    .await;
    let file = b.dir.join(format!("{group}.txt"));
    // Created on the empty topic and paused once every task is placed; the records are
    // produced while it is paused.
    let (code, body) = workers[0]
        .request(
            reqwest::Method::POST,
            "/connectors",
            json!({"name": group, "config": {
                "connector.class": "FileStreamSink", "tasks.max": TASKS.to_string(),
                "value.converter": "org.apache.kafka.connect.storage.StringConverter",
                "topics": topic, "file": file}}),
        )
        .await;
    if code != 201 {
        bail!("creating {group}: {code} {body}");
    }
    let (code, _) = workers[0]
        .request(
            reqwest::Method::PUT,
            &format!("/connectors/{group}/pause"),
            Value::Null,
        )
        .await;
    if code != 202 {
        bail!("pausing {group}: {code}");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, s) = workers[0]
            .request(
                reqwest::Method::GET,
                &format!("/connectors/{group}/status"),
                Value::Null,
            )
            .await;
        let tasks = s["tasks"].as_array().cloned().unwrap_or_default();
        let on: BTreeSet<&str> = tasks
            .iter()
            .filter_map(|t| t["worker_id"].as_str())
            .collect();
        if tasks.len() == TASKS && tasks.iter().all(|t| t["state"] == "PAUSED") && on.len() == n {
            break;
        }
        if Instant::now() > deadline {
            bail!("{group}: tasks not placed paused: {s}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b.bootstrap)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("log_level", "3")
        .create()?;
    let mut pending = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for i in 0..b.args.records {
        let mut v = format!("r{i:012}-");
        v.push_str(&"x".repeat(RECORD_LEN - 1 - v.len()));
        let (p, t) = (&producer, topic.as_str());
        pending.push(async move {
            p.send(
                FutureRecord::<(), str>::to(t).payload(&v),
                Duration::from_secs(60),
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
        });
        if pending.len() >= 50_000 {
            while let Some(r) = pending.next().await {
                r?;
                if pending.len() < 10_000 {
                    break;
                }
            }
        }
    }
    while let Some(r) = pending.next().await {
        r?;
    }
    let size = |f: &Path| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
    let base = size(&file);
    let want = base + b.args.records * RECORD_LEN as u64;
    let t0 = Instant::now();
    let (code, _) = workers[0]
        .request(
            reqwest::Method::PUT,
            &format!("/connectors/{group}/resume"),
            Value::Null,
        )
        .await;
    if code != 202 {
        bail!("resuming {group}: {code}");
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while size(&file) < want {
        if Instant::now() > deadline {
            bail!("{group}: {} of {want} bytes after 600 s", size(&file));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = t0.elapsed();
    let rate = b.args.records as f64 / took.as_secs_f64();
    println!(
        "throughput, {n} worker(s): {} records in {} = {rate:.0} records/s",
        b.args.records,
        secs(took)
    );
    for w in workers {
        w.stop().await;
    }
    Ok(rate)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("connect-failover-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let kafka = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bootstrap = kafka.local_addr()?.to_string();
    let mut config = broker::Config::for_data_dir(dir.join("broker"));
    config.group_min_session_timeout_ms = 1_000;
    let listeners = broker::Listeners {
        kafka,
        extra: Vec::new(),
        http: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(broker::run_with(config, listeners, async {
        let _ = stopped.await;
    }));
    let b = Bench {
        args,
        bootstrap,
        dir: dir.clone(),
    };
    let mut rows = Vec::new();
    if !(b.args.skip.iter().any(|s| s == "failover") && b.args.skip.iter().any(|s| s == "join")) {
        rows.extend(failover_and_join(&b).await.context("failover and join")?);
    }
    if !b.args.skip.iter().any(|s| s == "throughput") {
        let one = throughput(&b, 1).await?;
        let three = throughput(&b, 3).await?;
        rows.push(format!(
            "| FileStreamSink, 6 tasks, 6 partitions, {} records ({RECORD_LEN}-byte lines) | 1 worker {one:.0}/s, 3 workers {three:.0}/s ({:.2}×) | 3 workers ≥ 1 worker | {} |",
            b.args.records,
            three / one,
            if three >= one { "met" } else { "not met" }
        ));
    }
    println!();
    println!("| measure | result | target | verdict |");
    println!("|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
