//! Durability against the real broker process: records acknowledged with acks=all survive
//! `kill -9`, and a torn tail in the active segment is cut on restart with everything before it
//! served and new writes continuing at the right offset.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::BrokerProcess;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "5000")
        .create()
        .expect("producer")
}

/// Reads partition 0 of `topic` from the beginning until `until` records or `timeout`.
fn read_all(bootstrap: &str, topic: &str, until: usize, timeout: Duration) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "durability-check")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    while out.len() < until && std::time::Instant::now() < deadline {
        if let Some(msg) = consumer.poll(Duration::from_millis(200)) {
            let msg = msg.expect("consume");
            let value = String::from_utf8_lossy(msg.payload().unwrap_or_default()).into_owned();
            out.push((msg.offset(), value));
        }
    }
    out
}

fn create_topic(bootstrap: &str, topic: &str) {
    let out = common::run_command(
        std::process::Command::new(common::kcat()).args(["-b", bootstrap, "-L", "-t", topic]),
        None,
        common::TOOL_TIMEOUT,
    )
    .expect("kcat -L creates the topic through Metadata");
    assert!(out.contains(topic), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "durable");

    // Produce continuously; remember exactly which records were acknowledged, at which offset.
    let acked: Arc<Mutex<BTreeMap<i64, String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = {
        let acked = acked.clone();
        let stop = stop.clone();
        let producer = producer(&bootstrap);
        tokio::spawn(async move {
            let mut i = 0u64;
            let mut in_flight = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let value = format!("record-{i}");
                i += 1;
                let send = producer.send_result(
                    FutureRecord::<(), _>::to("durable")
                        .partition(0)
                        .payload(&value),
                );
                if let Ok(delivery) = send {
                    let acked = acked.clone();
                    in_flight.push(tokio::spawn(async move {
                        if let Ok(Ok(d)) = delivery.await {
                            acked.lock().expect("lock").insert(d.offset, value);
                        }
                    }));
                }
                if in_flight.len() >= 64 {
                    for f in in_flight.drain(..) {
                        let _ = f.await;
                    }
                }
            }
            for f in in_flight {
                let _ = f.await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    broker.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(30), producing).await;
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 100,
        "only {} records were acknowledged before the kill",
        acked.len()
    );

    broker.restart().expect("restart");
    let max_acked = *acked.keys().last().expect("some");
    let read = read_all(
        &broker.bootstrap(),
        "durable",
        (max_acked + 1) as usize,
        Duration::from_secs(60),
    );
    let by_offset: BTreeMap<i64, String> = read.into_iter().collect();
    for (offset, value) in &acked {
        assert_eq!(
            by_offset.get(offset),
            Some(value),
            "acknowledged record at offset {offset} lost or changed"
        );
    }
}

fn active_segment(data_dir: &std::path::Path, topic: &str) -> PathBuf {
    let dir = data_dir.join(format!("{topic}-0"));
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_cut_and_writes_continue_at_the_right_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "torn");
    let before = producer(&bootstrap);
    // One record per batch: each send waits for its acknowledgement.
    for i in 0..50 {
        let value = format!("before-{i}");
        let d = before
            .send(
                FutureRecord::<(), _>::to("torn")
                    .partition(0)
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
        assert_eq!(d.offset, i);
    }
    drop(before);
    broker.kill9();

    // Cut the last batch in half, as a crash in the middle of a write would.
    let segment = active_segment(dir.path(), "torn");
    let len = std::fs::metadata(&segment).expect("meta").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open");
    file.set_len(len - 20).expect("truncate");
    drop(file);

    broker.restart().expect("restart");
    let bootstrap = broker.bootstrap();
    let read = read_all(&bootstrap, "torn", 49, Duration::from_secs(30));
    let expected: Vec<(i64, String)> = (0..49).map(|i| (i, format!("before-{i}"))).collect();
    assert_eq!(read, expected, "everything before the cut is served");

    let after = producer(&bootstrap);
    let d = after
        .send(
            FutureRecord::<(), _>::to("torn")
                .partition(0)
                .payload("after"),
            Duration::from_secs(10),
        )
        .await
        .expect("delivered after restart");
    assert_eq!(
        d.offset, 49,
        "new writes continue where the whole batches end"
    );
    let read = read_all(&bootstrap, "torn", 50, Duration::from_secs(30));
    assert_eq!(read.last(), Some(&(49, "after".to_string())));
    assert!(
        broker.logs().contains("torn") || broker.logs().contains("truncat"),
        "recovery is logged"
    );
}
