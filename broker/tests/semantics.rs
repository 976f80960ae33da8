//! Kafka's semantics that clients rely on, checked with a stock client (librdkafka): requests on
//! one connection take effect in the order they were sent, so pipelined asynchronous commits end
//! on the last one; offsets for times are those of the first *record* at or after the time, also
//! inside a batch.

mod common;

use std::time::{Duration, Instant};

use common::{unique_topic, BrokerProcess};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

fn committed(c: &BaseConsumer, topic: &str) -> Offset {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    c.committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets")
        .find_partition(topic, 0)
        .expect("partition")
        .offset()
}

#[tokio::test]
async fn pipelined_async_commits_end_on_the_last_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("commits");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    for round in 0..3 {
        let group = unique_topic("group");
        let c = consumer(&bootstrap, &group);
        // The commits go out back to back on the coordinator connection, many in flight.
        const LAST: i64 = 300;
        for offset in 1..=LAST {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Offset(offset))
                .expect("offset");
            c.commit(&tpl, CommitMode::Async).expect("commit");
        }
        // Wait for them to be answered (the callbacks are served by poll).
        let started = Instant::now();
        while committed(&c, &topic) != Offset::Offset(LAST) {
            let _ = c.poll(Duration::from_millis(10));
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "round {round}: stored offset {:?}, not the last commit {LAST}",
                committed(&c, &topic)
            );
        }
        let _ = c.poll(Duration::from_millis(200));
        drop(c);
        // A new member of the group starts after the last commit, not an earlier one.
        let fresh = consumer(&bootstrap, &group);
        assert_eq!(
            committed(&fresh, &topic),
            Offset::Offset(LAST),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn offsets_for_times_inside_a_batch_are_those_of_the_first_later_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("times");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    // Ten records with timestamps 1000, 1010, ..., 1090, lingered into one batch, for each codec.
    for (round, codec) in ["none", "gzip", "snappy", "lz4"].into_iter().enumerate() {
        let producer: ThreadedProducer<_> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "200")
            .set("compression.codec", codec)
            .create()
            .expect("producer");
        let base = 1_000_000 * (round as i64 + 1);
        for i in 0..10i64 {
            producer
                .send(
                    BaseRecord::to(&topic)
                        .partition(0)
                        .key("k")
                        .payload("v")
                        .timestamp(base + 10 * i),
                )
                .expect("send");
        }
        producer.flush(Duration::from_secs(10)).expect("flush");
        let first = 10 * round as i64;

        let c = consumer(&bootstrap, "times");
        let at = |ts: i64| {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Offset(ts))
                .expect("ts");
            c.offsets_for_times(tpl, Duration::from_secs(10))
                .expect("offsets for times")
                .find_partition(&topic, 0)
                .expect("partition")
                .offset()
        };
        assert_eq!(at(base - 5), Offset::Offset(first), "{codec}");
        assert_eq!(at(base), Offset::Offset(first), "{codec}");
        assert_eq!(at(base + 1), Offset::Offset(first + 1), "{codec}");
        assert_eq!(at(base + 35), Offset::Offset(first + 4), "{codec}");
        assert_eq!(at(base + 90), Offset::Offset(first + 9), "{codec}");
        assert_eq!(at(base + 91), Offset::End, "{codec}");
    }
}
