//! Log compaction against the real broker process: a compacted topic with many updates to few
//! keys shrinks to about one record per key, tombstoned keys disappear (delete.retention.ms=0),
//! offsets keep increasing, and all of it survives a restart.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::BrokerProcess;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const KEYS: usize = 10;
const UPDATES: usize = 2000;
const FILLERS: usize = 300;

fn create_compacted_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096")
        .set("delete.retention.ms", "0");
    let res = rt
        .block_on(admin.create_topics(&[new_topic], &AdminOptions::new()))
        .expect("create");
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
}

fn produce(bootstrap: &str, topic: &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        // Keep every produce request well below segment.bytes.
        .set("batch.size", "1500")
        .create()
        .expect("producer");
    let send = |key: &str, value: Option<&str>| {
        let mut record = BaseRecord::<str, str>::to(topic).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => return,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e,
                            KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ),
                        "{e}"
                    );
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    };
    for i in 0..UPDATES {
        send(
            &format!("key-{}", i % KEYS),
            Some(&format!("value-{i}-{}", "x".repeat(30))),
        );
    }
    send("key-8", None);
    send("key-9", None);
    for i in 0..FILLERS {
        send("filler", Some(&format!("filler-{i}-{}", "y".repeat(30))));
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// `(offset, key, value)` of every record of partition 0, from the beginning.
fn consume_all(bootstrap: &str, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "compaction-test")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consume: {e}"),
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8(m.key().expect("key").to_vec()).expect("utf8"),
                m.payload()
                    .map(|p| String::from_utf8(p.to_vec()).expect("utf8")),
            )),
        }
    }
    panic!("no end of partition after 30 s ({} records)", out.len());
}

fn log_bytes(partition_dir: &Path) -> u64 {
    std::fs::read_dir(partition_dir)
        .expect("partition dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

fn check_compacted(records: &[(i64, String, Option<String>)]) {
    for pair in records.windows(2) {
        assert!(pair[0].0 < pair[1].0, "offsets not increasing: {pair:?}");
    }
    let mut by_key: HashMap<&str, Vec<&Option<String>>> = HashMap::new();
    for (_, k, v) in records {
        by_key.entry(k.as_str()).or_default().push(v);
    }
    for k in 0..KEYS {
        let key = format!("key-{k}");
        let values = by_key.get(key.as_str()).cloned().unwrap_or_default();
        if k >= 8 {
            assert!(values.is_empty(), "{key}: {values:?}");
            continue;
        }
        let last = (0..UPDATES)
            .rev()
            .find(|i| i % KEYS == k)
            .expect("an update");
        let want = format!("value-{last}-{}", "x".repeat(30));
        assert_eq!(values, vec![&Some(want)], "{key}");
    }
    let fillers = by_key.get("filler").map_or(0, Vec::len);
    assert!((1..FILLERS).contains(&fillers), "{fillers} filler records");
    assert_eq!(
        records.last().map(|r| r.2.clone()),
        Some(Some(format!("filler-{}-{}", FILLERS - 1, "y".repeat(30))))
    );
}

#[test]
fn compacted_topic_keeps_the_latest_record_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = BrokerProcess::start(dir.path(), &["--log-cleaner-backoff-ms", "200"])
        .expect("start broker");
    let bootstrap = broker.bootstrap();
    let topic = common::unique_topic("compacted");
    create_compacted_topic(&bootstrap, &topic);
    produce(&bootstrap, &topic);

    let partition_dir = dir.path().join(format!("{topic}-0"));
    let produced_bytes = (UPDATES + FILLERS) as u64 * 40;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let size = log_bytes(&partition_dir);
        if size < produced_bytes / 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "log not compacted: {size} bytes\n{}",
            broker.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // One more pass, in case the one that shrank the log ran before the tombstones' segment
    // was closed.
    std::thread::sleep(Duration::from_millis(1000));

    let records = consume_all(&bootstrap, &topic);
    eprintln!(
        "{} records, {} log bytes left; cleaner passes:",
        records.len(),
        log_bytes(&partition_dir)
    );
    for line in broker.logs().lines().filter(|l| l.contains("log cleaner")) {
        eprintln!("  {line}");
    }
    check_compacted(&records);
    assert!(records.len() < 200, "{} records left", records.len());
    assert!(
        broker.logs().contains("log cleaner compacted partition"),
        "{}",
        broker.logs()
    );

    broker.restart().expect("restart");
    let after = consume_all(&broker.bootstrap(), &topic);
    // A later cleaner pass may compact further (more segments become cleanable), but what a
    // reader from the beginning concludes must not change.
    check_compacted(&after);
    assert_eq!(latest_values(&after), latest_values(&records));
}

/// Key -> value after replaying the records in order (tombstones remove the key).
fn latest_values(
    records: &[(i64, String, Option<String>)],
) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    for (_, key, value) in records {
        match value {
            Some(v) => {
                map.insert(key.clone(), v.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
    map
}
