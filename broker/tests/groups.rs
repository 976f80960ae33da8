//! Consumer groups with real clients against the real broker process: partitions spread over
//! the members, move when one leaves or is killed, and committed offsets survive a `kill -9` of
//! the broker.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::BrokerProcess;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};

type Assignments = Arc<Mutex<HashMap<String, BTreeSet<i32>>>>;

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("admin");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let res = rt
        .block_on(admin.create_topics(
            &[rdkafka::admin::NewTopic::new(
                topic,
                partitions,
                rdkafka::admin::TopicReplication::Fixed(1),
            )],
            &rdkafka::admin::AdminOptions::new(),
        ))
        .expect("create");
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
}

/// A group member polling in its own thread and publishing its assignment.
struct Member {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    fn start(
        bootstrap: &str,
        group: &str,
        topic: &str,
        name: &str,
        assignments: Assignments,
    ) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("client.id", name)
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let name = name.to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
                let mine: BTreeSet<i32> = consumer
                    .assignment()
                    .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
                    .unwrap_or_default();
                assignments.lock().expect("lock").insert(name.clone(), mine);
            }
            assignments.lock().expect("lock").remove(&name);
            drop(consumer); // close: leaves the group
        });
        Member {
            stop,
            thread: Some(thread),
        }
    }

    fn leave(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until the named members together own every partition exactly once, each at least one.
fn wait_balanced(assignments: &Assignments, members: &[&str], partitions: i32, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let snapshot = assignments.lock().expect("lock").clone();
        let owned: Vec<i32> = members
            .iter()
            .flat_map(|m| snapshot.get(*m).cloned().unwrap_or_default())
            .collect();
        let distinct: BTreeSet<i32> = owned.iter().copied().collect();
        let each_has_some = members
            .iter()
            .all(|m| snapshot.get(*m).is_some_and(|a| !a.is_empty()));
        if owned.len() == partitions as usize
            && distinct.len() == partitions as usize
            && each_has_some
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not balanced over {members:?} within {within:?}: {snapshot:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rdkafka_group_spreads_partitions_and_rebalances_on_leave_and_on_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "six", 6);
    let assignments: Assignments = Arc::default();

    let a = Member::start(&bootstrap, "g", "six", "a", assignments.clone());
    let b = Member::start(&bootstrap, "g", "six", "b", assignments.clone());
    let c = Member::start(&bootstrap, "g", "six", "c", assignments.clone());
    wait_balanced(&assignments, &["a", "b", "c"], 6, Duration::from_secs(30));

    // A member that leaves: its partitions move to the others.
    c.leave();
    wait_balanced(&assignments, &["a", "b"], 6, Duration::from_secs(20));

    // A member that dies without leaving (kcat's balanced consumer, SIGKILLed): its partitions
    // come back after its session times out.
    let mut kcat = Command::new(common::kcat())
        .args([
            "-b",
            &bootstrap,
            "-G",
            "g",
            "-X",
            "session.timeout.ms=6000",
            "-q",
            "six",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kcat");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let owned: usize = assignments
            .lock()
            .expect("lock")
            .values()
            .map(|s| s.len())
            .sum();
        if owned < 6 {
            break; // kcat took some partitions
        }
        assert!(Instant::now() < deadline, "kcat never joined the group");
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed_at = Instant::now();
    kcat.kill().expect("kill kcat");
    let _ = kcat.wait();
    wait_balanced(&assignments, &["a", "b"], 6, Duration::from_secs(30));
    assert!(
        killed_at.elapsed() >= Duration::from_secs(4),
        "reassigned only after the dead member's session timed out"
    );
    drop((a, b));
}

fn consume_and_commit(bootstrap: &str, topic: &str, group: &str, count: usize) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut offsets = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while offsets.len() < count {
        assert!(Instant::now() < deadline, "consumed only {offsets:?}");
        if let Some(msg) = consumer.poll(Duration::from_millis(200)) {
            let msg = msg.expect("message");
            offsets.push(msg.offset());
            if offsets.len() == count {
                consumer
                    .commit_message(&msg, CommitMode::Sync)
                    .expect("commit");
            }
        }
    }
    offsets
}

#[test]
fn committed_offsets_survive_consumer_restart_and_broker_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "resume", 1);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .create()
        .expect("producer");
    for i in 0..100 {
        producer
            .send(BaseRecord::<(), _>::to("resume").payload(&format!("m{i}")))
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");

    let first = consume_and_commit(&bootstrap, "resume", "resumers", 40);
    assert_eq!(first, (0..40).collect::<Vec<_>>());

    // The consumer restarts: it resumes right after the commit.
    let second = consume_and_commit(&bootstrap, "resume", "resumers", 30);
    assert_eq!(
        second,
        (40..70).collect::<Vec<_>>(),
        "nothing re-read, nothing skipped"
    );

    // The broker is killed: the commit survives.
    broker.kill9();
    broker.restart().expect("restart");
    let third = consume_and_commit(&broker.bootstrap(), "resume", "resumers", 30);
    assert_eq!(
        third,
        (70..100).collect::<Vec<_>>(),
        "resumes from the committed offset after kill -9"
    );
}
