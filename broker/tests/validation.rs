//! Record validation on produce (issue 16): poison batches — each codec's garbage, unknown
//! codecs, garbage records, record counts that do not match, a forged lastOffsetDelta, a zstd
//! frame declaring 1 TB, a 200 MB gzip bomb, bad timestamps, control batches — are refused with
//! Kafka's error codes and KIP-467 record errors, nothing of them is stored (the end offset does
//! not move), the broker's memory stays where an honest batch would put it, and stock consumers
//! (librdkafka through rdkafka, confluent-kafka and kafka-python) read every good record
//! produced before and after each rejected batch. Keys on compacted topics and appends to
//! internal topics are covered too.
//!
//! The poison batches are valid batches from the broker's own builder with one targeted
//! corruption, CRC fixed afterwards, so that only the property under test is wrong.

mod common;

use std::time::Duration;

use broker::client::Connection;
use broker::log::batch::builder::BatchBuilder;
use broker::log::batch::codec::{self, Codec};
use broker::log::testing::{fields, gzip_bomb, patch_header, replace_payload, zstd_bomb};
use bytes::Bytes;
use common::{python_script, run_python, BrokerProcess};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const NONE: i16 = 0;
const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_TIMESTAMP: i16 = 32;
const INVALID_RECORD: i16 = 87;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

async fn connect(broker: &BrokerProcess) -> Connection {
    Connection::connect(&broker.bootstrap(), Duration::from_secs(30))
        .await
        .expect("connect")
}

async fn create_topic(conn: &mut Connection, topic: &str, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            create_topics_request::CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let resp = conn
        .call(
            CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![create_topics_request::CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
                    .with_configs(configs)]),
        )
        .await
        .expect("create topics");
    assert_eq!(resp.topics[0].error_code, NONE, "{:?}", resp.topics[0]);
}

async fn produce(conn: &mut Connection, topic: &str, records: Vec<u8>) -> PartitionProduceResponse {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(records))),
            ])]);
    let mut resp = conn.call(req).await.expect("produce");
    resp.responses.remove(0).partition_responses.remove(0)
}

async fn end_offset(conn: &mut Connection, topic: &str) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1),
            ])]);
    let resp = conn.call(req).await.expect("list offsets");
    resp.topics[0].partitions[0].offset
}

/// A valid batch of `(key, value)` records stamped now.
fn batch(codec: Codec, records: &[(Option<&str>, &str)]) -> Vec<u8> {
    let now = now_ms();
    let mut b = BatchBuilder::new().compression(codec);
    for (key, value) in records {
        b.record(key.map(str::as_bytes), Some(value.as_bytes()), now);
    }
    b.build().expect("build")
}

/// `(name, records, expected error code, expected record_errors indexes)`.
type Poison = (String, Vec<u8>, i16, Vec<i32>);

fn poison_batches() -> Vec<Poison> {
    let mut cases: Vec<Poison> = Vec::new();
    let junk: Vec<u8> = (0..400u32).map(|i| (i * 131 + 17) as u8).collect();
    let three = |codec| batch(codec, &[(Some("k"), "a"), (None, "b"), (Some("k"), "c")]);
    for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
        cases.push((
            format!("{codec} payload of garbage"),
            replace_payload(&three(codec), &junk),
            CORRUPT_MESSAGE,
            vec![],
        ));
        cases.push((
            format!("garbage records inside valid {codec}"),
            replace_payload(
                &three(codec),
                &codec::compress(codec, &junk).expect("compress"),
            ),
            INVALID_RECORD,
            vec![0],
        ));
    }
    for id in 5..=7i16 {
        let mut b = three(Codec::None);
        patch_header(&mut b, fields::ATTRIBUTES, &id.to_be_bytes());
        cases.push((format!("unknown codec {id}"), b, CORRUPT_MESSAGE, vec![]));
    }
    cases.push((
        "garbage records".into(),
        replace_payload(&three(Codec::None), &junk),
        INVALID_RECORD,
        vec![0],
    ));
    let mut more = three(Codec::Lz4);
    patch_header(&mut more, fields::RECORD_COUNT, &4i32.to_be_bytes());
    patch_header(&mut more, fields::LAST_OFFSET_DELTA, &3i32.to_be_bytes());
    cases.push((
        "four records declared, three present".into(),
        more,
        INVALID_RECORD,
        vec![3],
    ));
    let mut fewer = three(Codec::None);
    patch_header(&mut fewer, fields::RECORD_COUNT, &2i32.to_be_bytes());
    patch_header(&mut fewer, fields::LAST_OFFSET_DELTA, &1i32.to_be_bytes());
    cases.push((
        "two records declared, three present".into(),
        fewer,
        INVALID_RECORD,
        vec![],
    ));
    let mut forged = batch(Codec::None, &[(None, "one")]);
    patch_header(
        &mut forged,
        fields::LAST_OFFSET_DELTA,
        &i32::MAX.to_be_bytes(),
    );
    cases.push((
        "one record claiming lastOffsetDelta 2^31-1".into(),
        forged,
        INVALID_RECORD,
        vec![],
    ));
    cases.push((
        "zstd frame declaring 1 TB".into(),
        replace_payload(&batch(Codec::Zstd, &[(None, "x")]), &zstd_bomb(1 << 40, 64)),
        MESSAGE_TOO_LARGE,
        vec![],
    ));
    cases.push((
        "200 MB gzip bomb".into(),
        replace_payload(&batch(Codec::Gzip, &[(None, "x")]), &gzip_bomb(200)),
        MESSAGE_TOO_LARGE,
        vec![],
    ));
    let mut control = BatchBuilder::new().control(true);
    control.record(None, Some(b"marker"), now_ms());
    cases.push((
        "control batch".into(),
        control.build().expect("build"),
        INVALID_RECORD,
        vec![],
    ));
    let mut future = BatchBuilder::new();
    future.record(None, Some(b"now"), now_ms()).record(
        None,
        Some(b"in two hours"),
        now_ms() + 7_200_000,
    );
    cases.push((
        "timestamp two hours ahead".into(),
        future.build().expect("build"),
        INVALID_TIMESTAMP,
        vec![1],
    ));
    let mut append_time = three(Codec::None);
    patch_header(&mut append_time, fields::ATTRIBUTES, &0x08i16.to_be_bytes());
    cases.push((
        "producer claiming LogAppendTime".into(),
        append_time,
        INVALID_TIMESTAMP,
        vec![0, 1, 2],
    ));
    let mut good_then_bad = batch(Codec::None, &[(None, "stored with its bad neighbour?")]);
    let mut bad_crc = three(Codec::Snappy);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x55;
    good_then_bad.extend(bad_crc);
    // Produce v3+ carries exactly one batch per partition (Kafka's
    // ProduceRequest.validateRecords): refused before any batch is looked at.
    cases.push((
        "a good batch followed by a bad CRC".into(),
        good_then_bad,
        INVALID_RECORD,
        vec![],
    ));
    let mut two_good = batch(Codec::None, &[(None, "first of two")]);
    two_good.extend(batch(Codec::None, &[(None, "second of two")]));
    cases.push((
        "two good batches for one partition".into(),
        two_good,
        INVALID_RECORD,
        vec![],
    ));
    cases
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

fn read_with_rdkafka(bootstrap: &str, topic: &str, count: usize) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "validation-reader")
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
            Some(Err(e)) => panic!("rdkafka consumer error: {e}"),
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
    .unwrap_or_else(|e| panic!("{client}: {e:#}"));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{client} printed {out}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_batches_are_refused_and_consumers_read_every_good_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let mut conn = connect(&broker).await;
    let topic = "poison";
    create_topic(&mut conn, topic, &[]).await;

    let mut good = Vec::new();
    let mut produce_good = async |conn: &mut Connection, round: usize| {
        let codec = Codec::ALL[round % Codec::ALL.len()];
        let values = [format!("good-{round}-a"), format!("good-{round}-b")];
        let records: Vec<(Option<&str>, &str)> =
            values.iter().map(|v| (Some("key"), v.as_str())).collect();
        let resp = produce(conn, topic, batch(codec, &records)).await;
        assert_eq!(
            resp.error_code, NONE,
            "good batch {round} ({codec}): {resp:?}"
        );
        assert_eq!(
            resp.base_offset,
            good.len() as i64,
            "offsets stay contiguous"
        );
        good.extend(values);
    };

    let cases = poison_batches();
    for (round, (case, records, code, record_errors)) in cases.into_iter().enumerate() {
        produce_good(&mut conn, round).await;
        let end = end_offset(&mut conn, topic).await;
        let resp = produce(&mut conn, topic, records).await;
        assert_eq!(resp.error_code, code, "{case}: {resp:?}");
        assert_eq!(resp.base_offset, -1, "{case}");
        assert!(resp.error_message.is_some(), "{case}: an error message");
        let indexes: Vec<i32> = resp.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(
            indexes, record_errors,
            "{case}: record_errors {:?}",
            resp.record_errors
        );
        assert_eq!(
            end_offset(&mut conn, topic).await,
            end,
            "{case}: nothing stored"
        );
    }
    produce_good(&mut conn, 99).await;

    let hwm_mib = vm_hwm_kib(broker.pid()) / 1024;
    assert!(
        hwm_mib < 120,
        "bombs cost no more than an honest batch: broker peak RSS {hwm_mib} MiB"
    );

    let bootstrap = broker.bootstrap();
    let count = good.len();
    let (b, t) = (bootstrap.clone(), topic.to_string());
    let rd = tokio::task::spawn_blocking(move || read_with_rdkafka(&b, &t, count))
        .await
        .expect("rdkafka reader");
    assert_eq!(rd, good, "rdkafka");
    for client in ["confluent", "kafka-python"] {
        let (b, t) = (bootstrap.clone(), topic.to_string());
        let got = tokio::task::spawn_blocking(move || read_with_python(&b, &t, count, client))
            .await
            .expect("python reader");
        assert_eq!(got, good, "{client}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topics_need_keys_and_internal_topics_refuse_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let mut conn = connect(&broker).await;
    create_topic(&mut conn, "compacted", &[("cleanup.policy", "compact")]).await;

    let keyless = batch(
        Codec::Zstd,
        &[(Some("a"), "1"), (None, "2"), (Some("b"), "3"), (None, "4")],
    );
    let resp = produce(&mut conn, "compacted", keyless).await;
    assert_eq!(resp.error_code, INVALID_RECORD, "{resp:?}");
    let indexes: Vec<i32> = resp.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, vec![1, 3]);
    assert!(resp.record_errors[0]
        .batch_index_error_message
        .as_ref()
        .is_some_and(|m| m.contains("without key")));
    assert_eq!(end_offset(&mut conn, "compacted").await, 0);
    let keyed = batch(Codec::None, &[(Some("a"), "1"), (Some("b"), "2")]);
    assert_eq!(
        produce(&mut conn, "compacted", keyed).await.error_code,
        NONE
    );

    // Clients may not write into the broker's committed offsets ...
    let resp = produce(
        &mut conn,
        "__consumer_offsets",
        batch(Codec::None, &[(Some("k"), "v")]),
    )
    .await;
    assert_eq!(resp.error_code, INVALID_TOPIC_EXCEPTION, "{resp:?}");
    // ... but the group coordinator still stores them there.
    let bootstrap = broker.bootstrap();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "committer")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("compacted", 0, Offset::Offset(2))
            .expect("tpl");
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed");
        let offset = committed.find_partition("compacted", 0).map(|p| p.offset());
        assert_eq!(offset, Some(Offset::Offset(2)));
    })
    .await
    .expect("commit check");
}
