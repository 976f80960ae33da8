//! Several real workers (each in-process on a runtime of its own, REST on port 0) in one group
//! against the in-process broker: connectors spread over them, writes made through any worker
//! (followers forward them to the leader), statuses naming the worker of each task from every
//! worker, a killed worker's tasks resumed by the others, and a worker added taking only its
//! share.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::ClusterWorker;
use serde_json::{json, Value};

const CONNECTORS: [&str; 3] = ["s1", "s2", "s3"];

fn config(bootstrap: &str, dir: &Path) -> connect_worker::Config {
    let mut c = connect_worker::Config::new(bootstrap);
    c.group_id = "cluster-test".into();
    c.session_timeout_ms = 3_000;
    c.heartbeat_interval_ms = 300;
    c.rebalance_timeout_ms = 10_000;
    c.scheduled_rebalance_max_delay_ms = 0;
    c.allowed_paths = vec![dir.to_path_buf()];
    c
}

/// Who runs each task of `names`, once every connector and task is RUNNING as `w` sees it.
async fn owners(w: &ClusterWorker, names: &[&str]) -> Option<BTreeMap<(String, u64), String>> {
    let mut out = BTreeMap::new();
    for name in names {
        let (code, s) = w.get(&format!("/connectors/{name}/status")).await;
        if code != 200 || s["connector"]["state"] != "RUNNING" {
            return None;
        }
        let tasks = s["tasks"].as_array()?;
        if tasks.is_empty() {
            return None;
        }
        for t in tasks {
            if t["state"] != "RUNNING" {
                return None;
            }
            out.insert(
                (name.to_string(), t["id"].as_u64()?),
                t["worker_id"].as_str()?.to_string(),
            );
        }
    }
    Some(out)
}

/// Waits (at most `within`) until `w` sees every task running, on workers `ok` accepts.
async fn wait_owners(
    w: &ClusterWorker,
    within: Duration,
    what: &str,
    ok: impl Fn(&BTreeMap<(String, u64), String>) -> bool,
) -> BTreeMap<(String, u64), String> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(o) = owners(w, &CONNECTORS).await {
            if ok(&o) {
                return o;
            }
        }
        if Instant::now() > deadline {
            let mut seen = Vec::new();
            for name in CONNECTORS {
                seen.push(w.get(&format!("/connectors/{name}/status")).await.1);
            }
            panic!("{what}: not settled within {within:?}: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the group has `n` members in a stable generation (so each worker knows the
/// leader).
async fn wait_group(bootstrap: &str, n: usize) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stable = consumer
            .fetch_group_list(Some("cluster-test"), Duration::from_secs(5))
            .ok()
            .and_then(|l| {
                l.groups()
                    .iter()
                    .find(|g| g.name() == "cluster-test")
                    .map(|g| g.state() == "Stable" && g.members().len() == n)
            })
            .unwrap_or(false);
        if stable {
            // The members hear of the generation's leader once they have synced.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not reach {n} members"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Produces `values` to `topic` (keyed, so both partitions get some) and waits until the file
/// holds every one of them.
async fn flows(bootstrap: &str, topic: &str, file: &Path, values: &[String]) {
    let p = common::producer(bootstrap);
    for (i, v) in values.iter().enumerate() {
        common::produce(&p, topic, Some(&format!("k{i}")), Some(v)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let have: BTreeSet<String> = lines(file).into_iter().collect();
        if values.iter().all(|v| have.contains(v)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} → {}: missing records",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_connectors_forward_writes_and_fail_over() -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    for name in CONNECTORS {
        common::create_topic(&bootstrap, &format!("t-{name}"), 2).await;
    }
    let w1 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    let w2 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    let w3 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    let workers = [&w1, &w2, &w3];
    wait_group(&bootstrap, 3).await;

    // One connector created through each worker: at most one of them leads, so at least two
    // creations are forwarded by a follower.
    for (name, w) in CONNECTORS.iter().zip(workers) {
        let file = dir.path().join(format!("{name}.txt"));
        let (code, body) = w
            .post(
                "/connectors",
                &json!({"name": name, "config": {
                    "connector.class": "FileStreamSink", "tasks.max": "2",
                    "value.converter": "org.apache.kafka.connect.storage.StringConverter",
                    "topics": format!("t-{name}"), "file": file}}),
            )
            .await;
        assert_eq!(code, 201, "{name} through {}: {body}", w.base);
        assert_eq!(body["name"], *name);
    }
    // A second creation of the same name is refused wherever it is sent.
    let (code, _) = w3
        .post(
            "/connectors",
            &json!({"name": "s1", "config": {"connector.class": "FileStreamSink",
                "topics": "t-s1", "file": dir.path().join("s1.txt")}}),
        )
        .await;
    assert_eq!(code, 409);

    // Every worker knows every connector; the six tasks run on all three workers.
    let ids: BTreeSet<String> = workers.iter().map(|w| w.id.clone()).collect();
    let spread = wait_owners(&w1, Duration::from_secs(60), "three workers", |o| {
        o.values().collect::<BTreeSet<_>>().len() == 3
    })
    .await;
    assert_eq!(spread.len(), 6);
    assert!(spread.values().all(|id| ids.contains(id)));
    for w in workers {
        let (code, names) = w.get("/connectors").await;
        assert_eq!(code, 200);
        let mut names: Vec<String> = serde_json::from_value(names)?;
        names.sort();
        assert_eq!(names, CONNECTORS);
        // Any worker names the same worker for each task.
        wait_owners(w, Duration::from_secs(30), "same view", |o| *o == spread).await;
    }
    // The leader made every change: each connector's own status was reported by one worker,
    // although they were created through three.
    let mut planners = BTreeSet::new();
    for name in CONNECTORS {
        let (_, s) = w3.get(&format!("/connectors/{name}/status")).await;
        planners.insert(
            s["connector"]["worker_id"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert_eq!(
        planners.len(),
        1,
        "connectors planned by several workers: {planners:?}"
    );
    assert!(planners.iter().all(|p| ids.contains(p)));
    for name in CONNECTORS {
        let file = dir.path().join(format!("{name}.txt"));
        let values: Vec<String> = (0..20).map(|i| format!("{name}-a{i}")).collect();
        flows(&bootstrap, &format!("t-{name}"), &file, &values).await;
    }

    // Pause through one worker, seen paused from another; resume through a third.
    assert_eq!(w2.put("/connectors/s1/pause", &Value::Null).await.0, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, s) = w3.get("/connectors/s1/status").await;
        let tasks = s["tasks"].as_array().cloned().unwrap_or_default();
        if s["connector"]["state"] == "PAUSED"
            && tasks.len() == 2
            && tasks.iter().all(|t| t["state"] == "PAUSED")
        {
            break;
        }
        assert!(Instant::now() < deadline, "s1 not paused: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(w3.put("/connectors/s1/resume", &Value::Null).await.0, 202);
    wait_owners(&w1, Duration::from_secs(30), "resumed", |_| true).await;

    // Kill the second worker: its tasks run on the two others after the session timeout.
    let killed_id = w2.id.clone();
    let lost = spread.values().filter(|id| **id == killed_id).count();
    assert!(lost > 0);
    let killed_at = Instant::now();
    w2.kill();
    let after_kill = wait_owners(&w1, Duration::from_secs(60), "after the kill", |o| {
        o.values().all(|id| *id != killed_id)
    })
    .await;
    let took = killed_at.elapsed();
    tracing::info!(?took, "tasks of the killed worker running again");
    assert!(
        took < Duration::from_millis(3_000 + 10_000),
        "failover took {took:?}"
    );
    // Only the killed worker's tasks moved.
    for (task, id) in &spread {
        if *id != killed_id {
            assert_eq!(after_kill.get(task), Some(id), "{task:?} moved needlessly");
        }
    }
    for name in CONNECTORS {
        let file = dir.path().join(format!("{name}.txt"));
        let values: Vec<String> = (0..20).map(|i| format!("{name}-b{i}")).collect();
        flows(&bootstrap, &format!("t-{name}"), &file, &values).await;
    }

    // A worker joins: it takes tasks, and only what it takes moves.
    let w4 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    let w4_id = w4.id.clone();
    let after_join = wait_owners(&w3, Duration::from_secs(60), "after a join", |o| {
        o.values().any(|id| *id == w4_id)
    })
    .await;
    for (task, id) in &after_join {
        if *id != w4_id {
            assert_eq!(
                after_kill.get(task),
                Some(id),
                "{task:?} moved but not to the new worker"
            );
        }
    }
    let moved = after_join.values().filter(|id| **id == w4_id).count();
    assert!(
        moved < after_join.len(),
        "everything moved to the new worker"
    );

    // A delete through a follower removes the connector everywhere.
    assert_eq!(w4.delete("/connectors/s3").await.0, 204);
    for w in [&w1, &w3, &w4] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while w.get("/connectors/s3").await.0 != 404 {
            assert!(Instant::now() < deadline, "s3 still on {}", w.base);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for w in [w1, w3, w4] {
        w.stop().await;
    }
    Ok(())
}

/// One record of the status topic: its key, state, worker id and timestamp (ms).
#[derive(Debug, Clone)]
struct StatusRecord {
    key: String,
    state: String,
    worker: String,
    at_ms: i64,
}

/// Reads a whole topic (from the beginning to the high watermarks of now): key, value and
/// timestamp of each record, each partition in order.
async fn read_topic(bootstrap: &str, topic: &str) -> Vec<(String, Vec<u8>, i64)> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::{Message, Offset, TopicPartitionList};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "topic-reader")
            .set("enable.auto.commit", "false")
            .set("log_level", "3")
            .create()
            .expect("consumer");
        let md = c
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .expect("metadata");
        let partitions = md.topics()[0].partitions().len();
        let mut tpl = TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for p in 0..i32::try_from(partitions).expect("partitions") {
            let (lo, hi) = c
                .fetch_watermarks(&topic, p, Duration::from_secs(10))
                .expect("watermarks");
            if hi > lo {
                tpl.add_partition_offset(&topic, p, Offset::Beginning)
                    .expect("partition");
                ends.insert(p, hi);
            }
        }
        let mut out = Vec::new();
        if ends.is_empty() {
            return out;
        }
        c.assign(&tpl).expect("assign");
        let mut done = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while done.len() < ends.len() && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                let ts = m.timestamp().to_millis().unwrap_or(0);
                out.push((key, m.payload().unwrap_or_default().to_vec(), ts));
                if m.offset() + 1 >= ends[&m.partition()] {
                    done.insert(m.partition());
                }
            }
        }
        out
    })
    .await
    .expect("reader thread")
}

async fn status_records(bootstrap: &str) -> Vec<StatusRecord> {
    read_topic(bootstrap, "connect-status")
        .await
        .into_iter()
        .filter_map(|(key, value, at_ms)| {
            let v: Value = serde_json::from_slice(&value).ok()?;
            Some(StatusRecord {
                key,
                state: v["state"].as_str()?.to_string(),
                worker: v["worker_id"].as_str()?.to_string(),
                at_ms,
            })
        })
        .collect()
}

/// Whether `key` was reported RESTARTING by `worker` (more than `before` times), then RUNNING
/// by it after the last of those.
fn restarted_by(records: &[StatusRecord], key: &str, worker: &str, before: usize) -> bool {
    let mine: Vec<&StatusRecord> = records
        .iter()
        .filter(|r| r.key == key && r.worker == worker)
        .collect();
    let restarting: Vec<usize> = mine
        .iter()
        .enumerate()
        .filter(|(_, r)| r.state == "RESTARTING")
        .map(|(i, _)| i)
        .collect();
    restarting.len() > before
        && restarting
            .last()
            .is_some_and(|&i| mine[i + 1..].iter().any(|r| r.state == "RUNNING"))
}

fn restarting_count(records: &[StatusRecord], key: &str, worker: &str) -> usize {
    records
        .iter()
        .filter(|r| r.key == key && r.worker == worker && r.state == "RESTARTING")
        .count()
}

/// KIP-745 restarts sent to a worker that does not run the task: the leader writes a restart
/// request to the config topic, and the worker running each task restarts it (RESTARTING, then
/// RUNNING, both reported by that worker); tasks stay where they ran, as in Kafka.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_are_carried_out_by_the_worker_running_the_task() -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    common::create_topic(&bootstrap, "t-r", 3).await;
    let w1 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    let w2 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    let w3 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    let workers = [&w1, &w2, &w3];
    wait_group(&bootstrap, 3).await;
    let (code, body) = w1
        .post(
            "/connectors",
            &json!({"name": "r", "config": {
                "connector.class": "FileStreamSink", "tasks.max": "3",
                "value.converter": "org.apache.kafka.connect.storage.StringConverter",
                "topics": "t-r", "file": dir.path().join("r.txt")}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        if let Some(o) = owners(&w1, &["r"]).await {
            if o.len() == 3 {
                break o;
            }
        }
        assert!(Instant::now() < deadline, "r not running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let not_running = |task: u64| {
        let owner = &before[&("r".to_string(), task)];
        *workers
            .iter()
            .find(|w| w.id != *owner)
            .expect("another worker")
    };

    // Connector and tasks, through a worker that does not run task 0.
    let (code, body) = not_running(0)
        .post(
            "/connectors/r/restart?includeTasks=true&onlyFailed=false",
            &Value::Null,
        )
        .await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["connector"]["state"], "RESTARTING", "{body}");
    let tasks = body["tasks"].as_array().cloned().unwrap_or_default();
    assert_eq!(tasks.len(), 3, "{body}");
    assert!(tasks.iter().all(|t| t["state"] == "RESTARTING"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let records = status_records(&bootstrap).await;
        if before.iter().all(|((_, id), owner)| {
            restarted_by(&records, &format!("status-task-r-{id}"), owner, 0)
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every task restarted by its worker: {records:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = wait_owners_of(&w2, "r", |o| o.len() == 3).await;
    assert_eq!(after, before, "a restart moved tasks");

    // One task, through a worker that does not run it.
    let owner1 = before[&("r".to_string(), 1)].clone();
    let key = "status-task-r-1";
    let n = restarting_count(&status_records(&bootstrap).await, key, &owner1);
    let (code, body) = not_running(1)
        .post("/connectors/r/tasks/1/restart", &Value::Null)
        .await;
    assert_eq!(code, 204, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let records = status_records(&bootstrap).await;
        if restarted_by(&records, key, &owner1, n) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "task 1 not restarted by {owner1}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = wait_owners_of(&w3, "r", |o| o.len() == 3).await;
    assert_eq!(after, before, "a task restart moved tasks");

    // Only failed ones, none failed: nothing restarts.
    let (code, body) = not_running(2)
        .post(
            "/connectors/r/restart?includeTasks=true&onlyFailed=true",
            &Value::Null,
        )
        .await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["connector"]["state"], "RUNNING", "{body}");
    assert!(
        body["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["state"] == "RUNNING")),
        "{body}"
    );
    // The plain restart (the connector's instance only) answers 204 wherever it is sent.
    assert_eq!(
        not_running(0)
            .post("/connectors/r/restart", &Value::Null)
            .await
            .0,
        204
    );
    assert_eq!(
        w2.post("/connectors/r/tasks/7/restart", &Value::Null)
            .await
            .0,
        404
    );
    for w in [w1, w2, w3] {
        w.stop().await;
    }
    Ok(())
}

/// Waits until every task of `name` runs, as `w` sees it, and `ok` accepts the owners.
async fn wait_owners_of(
    w: &ClusterWorker,
    name: &str,
    ok: impl Fn(&BTreeMap<(String, u64), String>) -> bool,
) -> BTreeMap<(String, u64), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(o) = owners(w, &[name]).await {
            if ok(&o) {
                return o;
            }
        }
        assert!(Instant::now() < deadline, "{name}: not settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A worker cut off from the group coordinator (its group requests hang; its producer still
/// works) stops its source task before the session timeout, so the task never runs on two
/// workers at once although exactly-once source support is off: each line appended once the
/// other worker runs the task is in the topic exactly once, and the cut-off worker reported the
/// task stopped before the other reported it running, within two thirds of the session timeout
/// (plus the stop) of being cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_worker_stops_its_source_before_another_starts_it() -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    common::create_topic(&bootstrap, "lines", 1).await;
    let c1 = config(&bootstrap, dir.path());
    let c2 = config(&bootstrap, dir.path());
    let session = Duration::from_millis(u64::try_from(c1.session_timeout_ms)?);
    let freezes = [c1.freeze_group.clone(), c2.freeze_group.clone()];
    let w1 = ClusterWorker::start(c1).await?;
    let w2 = ClusterWorker::start(c2).await?;
    wait_group(&bootstrap, 2).await;

    // Lines appended every 20 ms, each with the time it was appended.
    let file = dir.path().join("in.txt");
    std::fs::write(&file, "")?;
    let appended: std::sync::Arc<std::sync::Mutex<Vec<Instant>>> = Default::default();
    let stop_appending: std::sync::Arc<std::sync::atomic::AtomicBool> = Default::default();
    let appender = {
        let (file, appended, stop) = (file.clone(), appended.clone(), stop_appending.clone());
        tokio::spawn(async move {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&file)
                .expect("open");
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(format!("line-{n}\n").as_bytes())
                    .expect("append");
                appended.lock().expect("lock").push(Instant::now());
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let (code, body) = w1
        .post(
            "/connectors",
            &json!({"name": "src", "config": {
                "connector.class": "FileStreamSource", "topic": "lines", "file": file,
                "value.converter": "org.apache.kafka.connect.storage.StringConverter"}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let running = wait_owners_of(&w1, "src", |o| o.len() == 1).await;
    let owner = running[&("src".to_string(), 0)].clone();
    let (cut, other, freeze) = if owner == w1.id {
        (&w1, &w2, &freezes[0])
    } else {
        (&w2, &w1, &freezes[1])
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    let cut_at = std::time::SystemTime::now();
    let cut_instant = Instant::now();
    freeze.store(true, std::sync::atomic::Ordering::Relaxed);
    let other_id = other.id.clone();
    let taken = wait_owners_of(other, "src", |o| o.values().all(|id| *id == other_id)).await;
    assert_eq!(taken.len(), 1);
    let moved_at = Instant::now();
    let took = moved_at - cut_instant;
    tracing::info!(?took, "the source task runs on the other worker");
    assert!(took < session + Duration::from_secs(5), "took {took:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_appending.store(true, std::sync::atomic::Ordering::Relaxed);
    appender.await?;
    let appended = appended.lock().expect("lock").clone();

    // Every line is in the topic; none appended once the other worker ran the task twice.
    let deadline = Instant::now() + Duration::from_secs(30);
    let counts = loop {
        let mut counts = vec![0usize; appended.len()];
        for (_, value, _) in read_topic(&bootstrap, "lines").await {
            let v = String::from_utf8_lossy(&value).into_owned();
            if let Some(n) = v
                .strip_prefix("line-")
                .and_then(|n| n.parse::<usize>().ok())
            {
                if n < counts.len() {
                    counts[n] += 1;
                }
            }
        }
        if counts.iter().all(|c| *c > 0) {
            break counts;
        }
        assert!(Instant::now() < deadline, "lines missing from the topic");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let replayed = counts.iter().filter(|c| **c > 1).count();
    tracing::info!(lines = counts.len(), replayed, "lines in the topic");
    for (n, at) in appended.iter().enumerate() {
        if *at >= moved_at {
            assert_eq!(
                counts[n],
                1,
                "line-{n}, appended {:?} after the task moved, is in the topic {} times",
                *at - moved_at,
                counts[n]
            );
        }
    }

    // The cut-off worker reported the task stopped, before the other reported it running.
    let records = status_records(&bootstrap).await;
    let cut_ms = i64::try_from(cut_at.duration_since(std::time::UNIX_EPOCH)?.as_millis())?;
    let stopped = records
        .iter()
        .find(|r| {
            r.key == "status-task-src-0"
                && r.worker == cut.id
                && r.state == "UNASSIGNED"
                && r.at_ms >= cut_ms
        })
        .unwrap_or_else(|| panic!("no stop reported by the cut-off worker: {records:?}"));
    let started = records
        .iter()
        .find(|r| {
            r.key == "status-task-src-0"
                && r.worker == other.id
                && r.state == "RUNNING"
                && r.at_ms >= cut_ms
        })
        .unwrap_or_else(|| panic!("no start reported by the other worker: {records:?}"));
    assert!(
        stopped.at_ms <= started.at_ms,
        "stopped at {} ms, started elsewhere at {} ms",
        stopped.at_ms,
        started.at_ms
    );
    let stop_after = stopped.at_ms - cut_ms;
    tracing::info!(
        stop_after,
        started_after = started.at_ms - cut_ms,
        "ms after the cut"
    );
    let bound = i64::try_from((session * 2 / 3).as_millis())? + 1_000;
    assert!(stop_after <= bound, "stopped {stop_after} ms after the cut");

    freeze.store(false, std::sync::atomic::Ordering::Relaxed);
    for w in [w1, w2] {
        w.stop().await;
    }
    Ok(())
}

/// A worker killed and another started at once: the survivors' JoinGroup waits for the killed
/// worker's session to expire (longer than the two thirds of it after which a member that
/// hears nothing stops its tasks), yet they keep their tasks running: they heartbeat on a
/// second connection meanwhile. No task that stayed reports any status after the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_rebalance_does_not_stop_the_survivors_tasks() -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    common::create_topic(&bootstrap, "t-k", 3).await;
    let w1 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    let w2 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    let w3 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    wait_group(&bootstrap, 3).await;
    let (code, body) = w1
        .post(
            "/connectors",
            &json!({"name": "k", "config": {
                "connector.class": "FileStreamSink", "tasks.max": "3",
                "value.converter": "org.apache.kafka.connect.storage.StringConverter",
                "topics": "t-k", "file": dir.path().join("k.txt")}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let before = wait_owners_of(&w1, "k", |o| {
        o.len() == 3 && o.values().collect::<BTreeSet<_>>().len() == 3
    })
    .await;
    let killed = w3.id.clone();
    let killed_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    w3.kill();
    let w4 = ClusterWorker::start(config(&bootstrap, dir.path())).await?;
    wait_owners_of(&w1, "k", |o| o.values().all(|id| *id != killed)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let records = status_records(&bootstrap).await;
    for ((_, id), owner) in before.iter().filter(|(_, o)| **o != killed) {
        let key = format!("status-task-k-{id}");
        let after: Vec<&StatusRecord> = records
            .iter()
            .filter(|r| r.key == key && r.at_ms >= killed_ms)
            .collect();
        assert!(
            after.is_empty(),
            "task {id} of {owner} changed state during the rebalance: {after:?}"
        );
    }
    for w in [w1, w2, w4] {
        w.stop().await;
    }
    Ok(())
}
