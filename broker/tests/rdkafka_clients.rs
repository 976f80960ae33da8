//! librdkafka (through the `rdkafka` crate) against the real broker process: produce to every
//! partition of a multi-partition topic with keys, headers and timestamps, and read it all back
//! with an assign-based consumer.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::BrokerProcess;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;
const RECORDS: i64 = 400;

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_produces_and_consumes_every_partition_with_keys_headers_and_timestamps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();

    let created = admin(&bootstrap)
        .create_topics(
            &[NewTopic::new("rd", PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create topics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let base_ts = 1_700_000_000_000i64;
    let keys: Vec<String> = (0..RECORDS).map(|i| format!("key-{i}")).collect();
    let values: Vec<String> = (0..RECORDS).map(|i| format!("value-{i}")).collect();
    let mut sends = Vec::new();
    for i in 0..RECORDS {
        let (key, value) = (&keys[i as usize], &values[i as usize]);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "seq",
                value: Some(&i.to_string()),
            })
            .insert(Header {
                key: "empty",
                value: None::<&[u8]>,
            });
        let record = FutureRecord::to("rd")
            .partition((i % i64::from(PARTITIONS)) as i32)
            .key(key)
            .payload(value)
            .timestamp(base_ts + i)
            .headers(headers);
        sends.push(producer.send(record, Duration::from_secs(10)));
    }
    let mut expected_offsets: HashMap<i32, i64> = HashMap::new();
    for (i, send) in futures::future::join_all(sends)
        .await
        .into_iter()
        .enumerate()
    {
        let delivery = send.unwrap_or_else(|(e, _)| panic!("record {i} not delivered: {e}"));
        let next = expected_offsets.entry(delivery.partition).or_default();
        assert_eq!(
            delivery.offset, *next,
            "offsets within a partition are consecutive"
        );
        *next += 1;
    }
    assert_eq!(expected_offsets.len(), PARTITIONS as usize);

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "rd-assign")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("rd", p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");

    let mut next_per_partition: HashMap<i32, i64> = HashMap::new();
    let mut seen = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen < RECORDS {
        assert!(
            std::time::Instant::now() < deadline,
            "read only {seen} of {RECORDS}"
        );
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let msg = msg.expect("consume");
        let next = next_per_partition.entry(msg.partition()).or_default();
        assert_eq!(msg.offset(), *next, "in order, nothing skipped or repeated");
        *next += 1;
        let payload = std::str::from_utf8(msg.payload().expect("payload")).expect("utf8");
        let i: i64 = payload.trim_start_matches("value-").parse().expect("index");
        assert_eq!(msg.partition(), (i % i64::from(PARTITIONS)) as i32);
        assert_eq!(msg.key(), Some(format!("key-{i}").as_bytes()));
        assert_eq!(msg.timestamp().to_millis(), Some(base_ts + i));
        let headers = msg.headers().expect("headers");
        assert_eq!(headers.count(), 2);
        let seq = headers.get(0);
        assert_eq!(
            (seq.key, seq.value),
            ("seq", Some(i.to_string().as_bytes()))
        );
        let empty = headers.get(1);
        assert_eq!((empty.key, empty.value), ("empty", None));
        seen += 1;
    }
    assert_eq!(next_per_partition, expected_offsets);
}
