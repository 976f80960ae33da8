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
