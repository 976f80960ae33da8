//! Kafka transactions against the real broker process, with librdkafka's transactional producer
//! (through the `rdkafka` crate; confluent-kafka and kafka-python scripts in `tests/python/`): commit and abort as `read_committed` and `read_uncommitted`
//! consumers see them, fencing by a second instance with the same `transactional.id`,
//! consume-transform-produce with `send_offsets_to_transaction`, a `kill -9` of the broker in the
//! middle of a transaction, the transaction timeout, and INVALID_TRANSACTION_TIMEOUT.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{unique_topic, BrokerProcess};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(15);

fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let created = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(T)),
        ))
        .expect("create topics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
}

fn txn_producer(bootstrap: &str, id: &str, timeout_ms: u32) -> BaseProducer {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", timeout_ms.to_string())
        .set("message.timeout.ms", timeout_ms.min(10_000).to_string())
        .set("linger.ms", "2")
        .create()
        .expect("producer");
    producer.init_transactions(T).expect("init_transactions");
    producer
}

fn send(producer: &BaseProducer, topic: &str, partition: i32, values: &[String]) {
    for v in values {
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(partition)
                    .key(v.as_str())
                    .payload(v.as_str()),
            )
            .expect("enqueue");
    }
    producer.flush(T).expect("flush");
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn consumer(bootstrap: &str, isolation: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer")
}

/// Everything `isolation` lets a consumer read from the start of `partitions` of `topic`, per
/// partition in order: reads until `expected` values came and then `quiet` more without any.
fn read_all(
    bootstrap: &str,
    isolation: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    quiet: Duration,
) -> BTreeMap<i32, Vec<String>> {
    let c = consumer(bootstrap, isolation, &unique_topic("reader"));
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut got: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut count = 0;
    let deadline = Instant::now() + T;
    let mut quiet_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if quiet_until.is_some_and(|q| now >= q) || now >= deadline {
            break;
        }
        if let Some(m) = c.poll(Duration::from_millis(50)) {
            let m = m.expect("consume");
            let v = String::from_utf8(m.payload().unwrap_or_default().to_vec()).expect("utf8");
            got.entry(m.partition()).or_default().push(v);
            count += 1;
        }
        if count >= expected && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + quiet);
        }
    }
    got
}

fn flat(m: &BTreeMap<i32, Vec<String>>) -> Vec<String> {
    m.values().flatten().cloned().collect()
}

fn is_fatal_or_fenced(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fatal
        )
    ) || matches!(e, KafkaError::Transaction(err) if err.is_fatal() || err.txn_requires_abort())
}

#[test]
fn read_committed_sees_exactly_the_committed_records_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("txn");
    create_topic(&bootstrap, &topic, 2);
    let p = txn_producer(&bootstrap, "tx-commit-abort", 60_000);

    // Committed, aborted, committed: each over both partitions.
    let (a, b, c) = (values("a", 10), values("b", 10), values("c", 10));
    for (batch, commit) in [(&a, true), (&b, false), (&c, true)] {
        p.begin_transaction().expect("begin");
        send(&p, &topic, 0, &batch[..5]);
        send(&p, &topic, 1, &batch[5..]);
        if commit {
            p.commit_transaction(T).expect("commit");
        } else {
            p.abort_transaction(T).expect("abort");
        }
    }

    // An open transaction holds read_committed consumers back at its first offset (the last
    // stable offset), while read_uncommitted readers see its records at once.
    let open = values("open", 4);
    p.begin_transaction().expect("begin");
    send(&p, &topic, 0, &open);

    let expect = |parts: &[&[String]], p: usize| -> Vec<String> {
        parts
            .iter()
            .flat_map(|v| {
                if p == 0 {
                    &v[..v.len() / 2]
                } else {
                    &v[v.len() / 2..]
                }
            })
            .cloned()
            .collect()
    };
    let committed = read_all(
        &bootstrap,
        "read_committed",
        &topic,
        2,
        20,
        Duration::from_millis(700),
    );
    assert_eq!(
        committed.get(&0).cloned().unwrap_or_default(),
        expect(&[&a, &c], 0)
    );
    assert_eq!(
        committed.get(&1).cloned().unwrap_or_default(),
        expect(&[&a, &c], 1)
    );

    let uncommitted = read_all(
        &bootstrap,
        "read_uncommitted",
        &topic,
        2,
        34,
        Duration::from_millis(300),
    );
    let mut p0 = expect(&[&a, &b, &c], 0);
    p0.extend(open.iter().cloned());
    assert_eq!(uncommitted.get(&0).cloned().unwrap_or_default(), p0);
    assert_eq!(
        uncommitted.get(&1).cloned().unwrap_or_default(),
        expect(&[&a, &b, &c], 1)
    );

    // ListOffsets `latest`: the last stable offset for read_committed (partition 0: a, b, c of
    // 5 records each plus their markers end at 18, where the open transaction begins), the high
    // watermark for read_uncommitted.
    let (_, committed_end) = consumer(&bootstrap, "read_committed", "wm")
        .fetch_watermarks(&topic, 0, T)
        .expect("watermarks");
    let (_, uncommitted_end) = consumer(&bootstrap, "read_uncommitted", "wm")
        .fetch_watermarks(&topic, 0, T)
        .expect("watermarks");
    assert_eq!((committed_end, uncommitted_end), (18, 22));

    // Once committed, the open transaction's records are visible to read_committed too.
    p.commit_transaction(T).expect("commit");
    let committed = read_all(
        &bootstrap,
        "read_committed",
        &topic,
        2,
        24,
        Duration::from_millis(300),
    );
    let mut p0 = expect(&[&a, &c], 0);
    p0.extend(open.iter().cloned());
    assert_eq!(committed.get(&0).cloned().unwrap_or_default(), p0);
    assert_eq!(flat(&committed).len(), 24);
}

#[test]
fn a_second_instance_with_the_same_transactional_id_fences_the_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("fence");
    create_topic(&bootstrap, &topic, 1);

    let first = txn_producer(&bootstrap, "tx-fence", 60_000);
    first.begin_transaction().expect("begin");
    send(&first, &topic, 0, &values("zombie", 5));

    // The second instance's InitProducerId aborts the first one's open transaction and bumps
    // the epoch: the first can neither commit nor write any more.
    let second = txn_producer(&bootstrap, "tx-fence", 60_000);
    let err = first
        .commit_transaction(T)
        .expect_err("a fenced producer must not commit");
    assert!(is_fatal_or_fenced(&err), "unexpected error: {err:?}");

    second.begin_transaction().expect("begin");
    send(&second, &topic, 0, &values("live", 5));
    second.commit_transaction(T).expect("commit");

    let committed = read_all(
        &bootstrap,
        "read_committed",
        &topic,
        1,
        5,
        Duration::from_millis(700),
    );
    assert_eq!(flat(&committed), values("live", 5));
    let all = read_all(
        &bootstrap,
        "read_uncommitted",
        &topic,
        1,
        10,
        Duration::from_millis(300),
    );
    assert_eq!(flat(&all).len(), 10, "{all:?}");
}

#[test]
fn consume_transform_produce_commits_the_offsets_with_the_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    let input = unique_topic("in");
    let output = unique_topic("out");
    create_topic(&bootstrap, &input, 1);
    create_topic(&bootstrap, &output, 1);

    let plain: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    send(&plain, &input, 0, &values("in", 10));

    let group = "ctp";
    let c = consumer(&bootstrap, "read_committed", group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&input, 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let p = txn_producer(&bootstrap, "tx-ctp", 60_000);

    // Round 1 (aborted): transforms the first 4 records, then aborts: neither output nor
    // offsets may remain. Round 2 (committed): all 10.
    let mut consumed = Vec::new();
    let deadline = Instant::now() + T;
    while consumed.len() < 10 && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(50)) {
            let m = m.expect("consume");
            consumed.push((
                m.offset(),
                String::from_utf8(m.payload().unwrap_or_default().to_vec()).expect("utf8"),
            ));
        }
    }
    assert_eq!(consumed.len(), 10);
    let cgm = c.group_metadata().expect("group metadata");
    for (upto, commit) in [(4usize, false), (10, true)] {
        p.begin_transaction().expect("begin");
        let out: Vec<String> = consumed[..upto]
            .iter()
            .map(|(_, v)| v.replace("in", "out"))
            .collect();
        send(&p, &output, 0, &out);
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&input, 0, Offset::Offset(consumed[upto - 1].0 + 1))
            .expect("tpl");
        p.send_offsets_to_transaction(&offsets, &cgm, T)
            .expect("send offsets");
        if commit {
            // While the transaction holds offsets for the group, a read_committed client
            // (OffsetFetch with require_stable, KIP-447) gets UNSTABLE_OFFSET_COMMIT and keeps
            // asking, rather than resuming from the offset about to be replaced; a
            // read_uncommitted one reads the last committed offset (none yet).
            let mut wanted = TopicPartitionList::new();
            wanted.add_partition(&input, 0);
            let stable = consumer(&bootstrap, "read_committed", group);
            assert!(
                stable
                    .committed_offsets(wanted.clone(), Duration::from_millis(1500))
                    .is_err(),
                "pending transactional offsets must not be served to require_stable"
            );
            let loose = consumer(&bootstrap, "read_uncommitted", group);
            let now = loose
                .committed_offsets(wanted, T)
                .expect("committed offsets");
            assert_eq!(
                now.find_partition(&input, 0).map(|p| p.offset()),
                Some(Offset::Invalid)
            );
            p.commit_transaction(T).expect("commit");
        } else {
            p.abort_transaction(T).expect("abort");
        }
    }

    let committed = c.committed(T).expect("committed offsets");
    let offset = committed
        .find_partition(&input, 0)
        .expect("input partition")
        .offset();
    assert_eq!(offset, Offset::Offset(consumed[9].0 + 1));
    let out = read_all(
        &bootstrap,
        "read_committed",
        &output,
        1,
        10,
        Duration::from_millis(500),
    );
    assert_eq!(flat(&out), values("out", 10));
}

#[test]
fn a_broker_killed_mid_transaction_loses_no_commit_and_shows_no_abort() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("crash");
    create_topic(&bootstrap, &topic, 2);

    {
        let p = txn_producer(&bootstrap, "tx-crash", 60_000);
        p.begin_transaction().expect("begin");
        send(&p, &topic, 0, &values("kept", 5));
        send(&p, &topic, 1, &values("kept1", 5));
        p.commit_transaction(T).expect("commit");
        p.begin_transaction().expect("begin");
        send(&p, &topic, 0, &values("lost", 5));
        send(&p, &topic, 1, &values("lost1", 5));
        // kill -9 with the transaction open, the records in the log.
        broker.kill9();
    }
    broker.restart().expect("restart");
    let bootstrap = broker.bootstrap();

    // The open transaction was aborted by the restarted coordinator (before any instance of
    // its producer came back): read_committed consumers are not held back by it, so records
    // written after it are visible, and they never see it.
    let plain: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    send(&plain, &topic, 0, &values("plain", 2));
    let committed = read_all(
        &bootstrap,
        "read_committed",
        &topic,
        2,
        12,
        Duration::from_millis(700),
    );
    let mut p0 = values("kept", 5);
    p0.extend(values("plain", 2));
    assert_eq!(committed.get(&0).cloned().unwrap_or_default(), p0);
    assert_eq!(
        committed.get(&1).cloned().unwrap_or_default(),
        values("kept1", 5)
    );

    // A new instance goes on where the old one left.
    let p = txn_producer(&bootstrap, "tx-crash", 60_000);
    p.begin_transaction().expect("begin");
    send(&p, &topic, 0, &values("after", 3));
    p.commit_transaction(T).expect("commit");
    let committed = read_all(
        &bootstrap,
        "read_committed",
        &topic,
        2,
        15,
        Duration::from_millis(500),
    );
    let mut p0 = values("kept", 5);
    p0.extend(values("plain", 2));
    p0.extend(values("after", 3));
    assert_eq!(committed.get(&0).cloned().unwrap_or_default(), p0);
    let all = read_all(
        &bootstrap,
        "read_uncommitted",
        &topic,
        2,
        25,
        Duration::from_millis(300),
    );
    assert_eq!(flat(&all).len(), 25, "{all:?}");
}

#[test]
fn the_broker_aborts_a_transaction_past_its_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &["--transaction-abort-interval-ms", "100"])
        .expect("broker");
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("timeout");
    create_topic(&bootstrap, &topic, 1);

    let slow = txn_producer(&bootstrap, "tx-slow", 1_000);
    slow.begin_transaction().expect("begin");
    send(&slow, &topic, 0, &values("late", 3));
    std::thread::sleep(Duration::from_millis(2_000));
    let err = slow
        .commit_transaction(T)
        .expect_err("a transaction aborted for its timeout must not commit");
    assert!(is_fatal_or_fenced(&err), "unexpected error: {err:?}");

    // The abort freed the last stable offset: later transactions are visible.
    let p = txn_producer(&bootstrap, "tx-after", 60_000);
    p.begin_transaction().expect("begin");
    send(&p, &topic, 0, &values("ok", 3));
    p.commit_transaction(T).expect("commit");
    let committed = read_all(
        &bootstrap,
        "read_committed",
        &topic,
        1,
        3,
        Duration::from_millis(500),
    );
    assert_eq!(flat(&committed), values("ok", 3));
}

#[test]
fn a_transaction_timeout_above_the_broker_maximum_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &["--transaction-max-timeout-ms", "5000"])
        .expect("broker");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("transactional.id", "tx-too-long")
        .set("transaction.timeout.ms", "10000")
        .set("message.timeout.ms", "5000")
        .create()
        .expect("producer");
    let err = producer
        .init_transactions(T)
        .expect_err("the timeout is above --transaction-max-timeout-ms");
    assert_eq!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::InvalidTransactionTimeout),
        "{err:?}"
    );
}

#[test]
fn confluent_kafka_commit_abort_abort_on_error_and_fencing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let out = common::run_python(
        &common::python_script("confluent_transactions.py"),
        &[&broker.bootstrap(), &unique_topic("py-txn")],
    )
    .unwrap_or_else(|e| panic!("{e:#}\n--- broker ---\n{}", broker.logs()));
    assert_eq!(out.trim(), "OK", "unexpected script output: {out}");
}

#[test]
fn kafka_python_commit_abort_and_send_offsets_to_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let out = common::run_python(
        &common::python_script("kafka_python_transactions.py"),
        &[&broker.bootstrap(), &unique_topic("kp-txn")],
    )
    .unwrap_or_else(|e| panic!("{e:#}\n--- broker ---\n{}", broker.logs()));
    assert_eq!(out.trim(), "OK", "unexpected script output: {out}");
}

/// `broker transactions <args...> --bootstrap-server <broker>`, its stdout.
fn cli(broker: &BrokerProcess, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_broker"));
    cmd.arg("transactions")
        .args(args)
        .arg("--bootstrap-server")
        .arg(broker.bootstrap())
        .env_remove("KAFKA_BOOTSTRAP_SERVERS");
    common::run_command(&mut cmd, None, T)
        .unwrap_or_else(|e| panic!("{e:#}\n--- broker ---\n{}", broker.logs()))
}

#[test]
fn cli_lists_and_describes_transactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("cli-txn");
    create_topic(&bootstrap, &topic, 2);

    let done = txn_producer(&bootstrap, "tx-done", 60_000);
    done.begin_transaction().expect("begin");
    send(&done, &topic, 0, &values("d", 1));
    done.commit_transaction(T).expect("commit");
    let open = txn_producer(&bootstrap, "tx-open", 45_000);
    open.begin_transaction().expect("begin");
    send(&open, &topic, 0, &values("o", 1));
    send(&open, &topic, 1, &values("o1", 1));

    let list = cli(&broker, &["list"]);
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "TransactionalId",
            "Coordinator",
            "ProducerId",
            "TransactionState"
        ]
    );
    let states: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[0], r[3])).collect();
    assert_eq!(
        states,
        [("tx-done", "CompleteCommit"), ("tx-open", "Ongoing")],
        "{list}"
    );

    let out = cli(&broker, &["describe", "--transactional-id", "tx-open"]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    let field = |name: &str| {
        let i = lines[0]
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}: {out}"));
        lines[1][i]
    };
    assert_eq!(field("TransactionalId"), "tx-open");
    assert_eq!(field("TransactionState"), "Ongoing");
    assert_eq!(field("TransactionTimeoutMs"), "45000");
    assert_eq!(
        field("TopicPartitions"),
        format!("{topic}-0,{topic}-1"),
        "{out}"
    );
    open.abort_transaction(T).expect("abort");
    // The abort is answered once decided (PrepareAbort is durable); its markers follow.
    let deadline = Instant::now() + T;
    loop {
        let out = cli(&broker, &["describe", "--transactional-id", "tx-open"]);
        if out.contains("CompleteAbort") {
            break;
        }
        assert!(
            out.contains("PrepareAbort") && Instant::now() < deadline,
            "{out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // An unknown id: exit code 1 and Kafka's error name.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_broker"));
    let failed = cmd
        .args(["transactions", "describe", "--transactional-id", "nope"])
        .arg("--bootstrap-server")
        .arg(broker.bootstrap())
        .output()
        .expect("run");
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("TRANSACTIONAL_ID_NOT_FOUND"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
}

/// What became of one transaction of the crash loop, as its producer saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// commit_transaction returned Ok: every record must be visible to read_committed.
    Committed,
    /// abort_transaction returned Ok: none may ever be visible to read_committed.
    Aborted,
    /// Cut short by the crash: all of its records or none, never some.
    Unknown,
}

#[test]
fn kill_9_in_a_loop_keeps_transactions_all_or_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    const ROUNDS: usize = 3;
    const PER_PARTITION: usize = 3;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let topic = unique_topic("crash-loop");
    create_topic(&broker.bootstrap(), &topic, 2);
    let fates: Arc<Mutex<BTreeMap<usize, Fate>>> = Arc::default();
    let mut next_txn = 0usize;

    for round in 0..ROUNDS {
        let bootstrap = broker.bootstrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let worker = {
            let (stop, fates, topic) = (stop.clone(), fates.clone(), topic.clone());
            let first = next_txn;
            std::thread::spawn(move || {
                let short = Duration::from_secs(4);
                let p: BaseProducer = ClientConfig::new()
                    .set("bootstrap.servers", &bootstrap)
                    .set("transactional.id", "tx-crash-loop")
                    .set("transaction.timeout.ms", "10000")
                    .set("message.timeout.ms", "4000")
                    .set("linger.ms", "1")
                    .create()
                    .expect("producer");
                p.init_transactions(T).expect("init_transactions");
                let _ = ready_tx.send(());
                let mut n = first;
                while !stop.load(Ordering::Relaxed) {
                    fates.lock().unwrap().insert(n, Fate::Unknown);
                    if p.begin_transaction().is_err() {
                        break;
                    }
                    let mut ok = true;
                    for part in 0..2 {
                        for i in 0..PER_PARTITION {
                            let v = format!("{n}:{part}:{i}");
                            let record = BaseRecord::to(&topic).partition(part).key(&v).payload(&v);
                            ok &= p.send(record).is_ok();
                        }
                    }
                    ok &= p.flush(short).is_ok();
                    let fate = if !ok {
                        break;
                    } else if n % 3 == 2 {
                        p.abort_transaction(short).map(|()| Fate::Aborted)
                    } else {
                        p.commit_transaction(short).map(|()| Fate::Committed)
                    };
                    match fate {
                        Ok(fate) => {
                            fates.lock().unwrap().insert(n, fate);
                        }
                        Err(_) => break,
                    }
                    n += 1;
                }
                n + 1
            })
        };
        // The kill falls somewhere in the producer's loop, not before it started.
        ready.recv_timeout(T).expect("producer initialised");
        std::thread::sleep(Duration::from_millis(300 + 250 * round as u64));
        broker.kill9();
        stop.store(true, Ordering::Relaxed);
        next_txn = worker.join().expect("producer thread");
        broker.restart().expect("restart");
    }

    let fates = fates.lock().unwrap().clone();
    let committed_count = fates.values().filter(|f| **f == Fate::Committed).count();
    assert!(
        committed_count >= ROUNDS,
        "too few transactions ran: {fates:?}"
    );
    // Read everything read_committed shows, then check each transaction against its fate.
    let bootstrap = broker.bootstrap();
    let expected_min = committed_count * 2 * PER_PARTITION;
    let seen = read_all(
        &bootstrap,
        "read_committed",
        &topic,
        2,
        expected_min,
        Duration::from_millis(1000),
    );
    let mut per_txn: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (part, values) in &seen {
        let mut last = None;
        for v in values {
            let n: usize = v
                .split(':')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected value {v}"));
            assert!(
                last.is_none_or(|l| l <= n),
                "partition {part}: out of order: {values:?}"
            );
            last = Some(n);
            per_txn.entry(n).or_default().push(v.clone());
        }
    }
    for (n, fate) in &fates {
        let got = per_txn.get(n).map_or(0, Vec::len);
        match fate {
            Fate::Committed => assert_eq!(got, 2 * PER_PARTITION, "committed txn {n} lost records"),
            Fate::Aborted => assert_eq!(got, 0, "aborted txn {n} visible to read_committed"),
            Fate::Unknown => assert!(
                got == 0 || got == 2 * PER_PARTITION,
                "txn {n} partly visible: {:?}",
                per_txn.get(n)
            ),
        }
    }
    for n in per_txn.keys() {
        assert!(fates.contains_key(n), "txn {n} never sent");
    }
    eprintln!("crash loop: {fates:?}");
}
