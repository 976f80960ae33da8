//! The topic config `compression.type` with Kafka's values (`uncompressed`, `zstd`, `lz4`,
//! `snappy`, `gzip`, `producer`): validated on CreateTopics and IncrementalAlterConfigs, and
//! honoured — a batch whose codec differs from the topic's is recompressed before it is stored,
//! as Kafka does. Each value round-trips: rdkafka produces with another codec, the stored
//! batches carry the topic's codec (read raw with Fetch), and rdkafka, confluent-kafka and
//! kafka-python read every record back.

mod common;

use std::time::Duration;

use broker::client::Connection;
use broker::log::validate_batches;
use common::{python_script, run_python, BrokerProcess};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const INVALID_CONFIG: i16 = 40;
const RECORDS: usize = 60;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn create_topic(conn: &mut Connection, topic: &str, compression: &str) -> i16 {
    let resp = conn
        .call(
            CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![create_topics_request::CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
                    .with_configs(vec![
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(s("compression.type"))
                            .with_value(Some(s(compression))),
                    ])]),
        )
        .await
        .expect("create topics");
    resp.topics[0].error_code
}

async fn alter_compression(conn: &mut Connection, topic: &str, compression: &str) -> i16 {
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("compression.type"))
                    .with_config_operation(0)
                    .with_value(Some(s(compression))),
            ]),
    ]);
    conn.call(req).await.expect("alter configs").responses[0].error_code
}

/// The codec ids of the batches stored in partition 0 of `topic`.
async fn stored_codecs(conn: &mut Connection, topic: &str) -> Vec<i16> {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(16 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(16 << 20)])]);
    let resp = conn.call(req).await.expect("fetch");
    let records = resp.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    validate_batches(&records, usize::MAX)
        .expect("stored batches are intact")
        .iter()
        .map(|h| h.compression())
        .collect()
}

async fn produce_with(bootstrap: &str, topic: &str, codec: &str, values: &[String]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.codec", codec)
        .set("linger.ms", "20")
        .set("acks", "all")
        .create()
        .expect("producer");
    let sends = values.iter().enumerate().map(|(i, v)| {
        let key = format!("k{i}");
        let producer = &producer;
        async move {
            producer
                .send(
                    FutureRecord::to(topic).key(&key).payload(v).partition(0),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
        }
    });
    for result in futures::future::join_all(sends).await {
        result.unwrap_or_else(|e| panic!("produce to {topic} with {codec}: {e}"));
    }
}

fn read_with_rdkafka(bootstrap: &str, topic: &str, count: usize) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "compression-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut values = Vec::new();
    while values.len() < count && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
            }
            Some(Err(e)) => panic!("rdkafka consumer error on {topic}: {e}"),
            None => {}
        }
    }
    values
}

fn read_with_python(bootstrap: &str, topic: &str, count: usize, client: &str) -> Vec<String> {
    let out = run_python(
        &python_script("read_all.py"),
        &[bootstrap, topic, &count.to_string(), client],
    )
    .unwrap_or_else(|e| panic!("{client} on {topic}: {e:#}"));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{client} printed {out}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_type_round_trips_through_stock_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    let mut conn = Connection::connect(&bootstrap, Duration::from_secs(30))
        .await
        .expect("connect");

    // Kafka's values only; `none` is the producer's name, the topic's is `uncompressed`.
    for bad in ["brotli", "none", "ZSTD", ""] {
        assert_eq!(
            create_topic(&mut conn, "bad", bad).await,
            INVALID_CONFIG,
            "{bad}"
        );
    }

    // (topic's compression.type, codec the producer uses, codec id stored)
    let cases = [
        ("uncompressed", "gzip", 0),
        ("gzip", "lz4", 1),
        ("snappy", "zstd", 2),
        ("lz4", "none", 3),
        ("zstd", "snappy", 4),
        ("producer", "lz4", 3),
        ("producer", "zstd", 4),
        ("zstd", "zstd", 4),
    ];
    for (i, (compression, producer_codec, stored)) in cases.into_iter().enumerate() {
        let topic = format!("ct-{i}-{compression}");
        assert_eq!(
            create_topic(&mut conn, &topic, compression).await,
            0,
            "{topic}"
        );
        let values: Vec<String> = (0..RECORDS)
            .map(|j| format!("{compression}-{producer_codec}-{j}-{}", "v".repeat(j * 7)))
            .collect();
        produce_with(&bootstrap, &topic, producer_codec, &values).await;
        let codecs = stored_codecs(&mut conn, &topic).await;
        // With `producer`, batches stay as sent: librdkafka sends a batch uncompressed when
        // compressing would not make it smaller. Otherwise every batch has the topic's codec.
        let as_sent = compression == "producer";
        assert!(
            codecs.contains(&stored) && codecs.iter().all(|c| *c == stored || as_sent && *c == 0),
            "{topic} ({producer_codec} producer): stored codecs {codecs:?}, want {stored}"
        );
        let (b, t) = (bootstrap.clone(), topic.clone());
        let got = tokio::task::spawn_blocking(move || read_with_rdkafka(&b, &t, RECORDS))
            .await
            .expect("rdkafka reader");
        assert_eq!(got, values, "rdkafka on {topic}");
        for client in ["confluent", "kafka-python"] {
            let (b, t) = (bootstrap.clone(), topic.clone());
            let got =
                tokio::task::spawn_blocking(move || read_with_python(&b, &t, RECORDS, client))
                    .await
                    .expect("python reader");
            assert_eq!(got, values, "{client} on {topic}");
        }
    }

    // Changed later: new batches follow the new value; a bad value is refused.
    let topic = "ct-0-uncompressed";
    assert_eq!(alter_compression(&mut conn, topic, "snappy").await, 0);
    assert_eq!(
        alter_compression(&mut conn, topic, "lzma").await,
        INVALID_CONFIG
    );
    let more: Vec<String> = (0..10).map(|j| format!("after-{j}")).collect();
    produce_with(&bootstrap, topic, "gzip", &more).await;
    let codecs = stored_codecs(&mut conn, topic).await;
    assert_eq!(codecs.first(), Some(&0));
    assert_eq!(codecs.last(), Some(&2), "{codecs:?}");
}
