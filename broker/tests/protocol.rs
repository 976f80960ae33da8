//! Wire-level conformance: every advertised API at every advertised version answers a request
//! that `kafka-protocol` encodes, and bad input (garbage, oversized frames, unknown APIs, corrupt
//! batches, illegal names) gets the protocol's error without taking the broker down.

use std::net::SocketAddr;
use std::time::Duration;

use broker::log::batch::builder::{BatchBuilder, Record as BuiltRecord};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct TestBroker {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestBroker {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut broker::Config)) -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir"), tweak).await
    }

    /// Stops the broker gracefully and starts a new one on the same data directory.
    async fn restart(mut self) -> Self {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("broker task");
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("tempdir"));
        Self::start_in(dir, |_| {}).await
    }

    async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut broker::Config)) -> Self {
        let mut config = broker::Config::for_data_dir(dir.path());
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            broker::run(config, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("broker run");
        });
        TestBroker {
            addr,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    async fn connect(&self) -> Client {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        Client {
            stream,
            correlation: 0,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("broker stops")
            .expect("broker task");
    }
}

struct Client {
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    async fn send_raw(&mut self, frame: &[u8]) {
        self.stream.write_all(frame).await.expect("write");
    }

    /// Reads one response frame, or None if the broker closed the connection.
    async fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        match tokio::time::timeout(Duration::from_secs(10), self.stream.read_exact(&mut len)).await
        {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return None,
            Err(_) => panic!("no response within 10 s"),
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).await.expect("read body");
        Some(Bytes::from(body))
    }

    async fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("conformance")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("encode header");
        req.encode(&mut body, version).expect("encode request");
        let mut frame = BytesMut::new();
        frame.put_u32(body.len() as u32);
        frame.extend_from_slice(&body);
        self.send_raw(&frame).await;
        let mut resp = self.read_frame().await.unwrap_or_else(|| {
            panic!(
                "connection closed instead of answering api {} v{version}",
                R::KEY
            )
        });
        let header = ResponseHeader::decode(&mut resp, R::Response::header_version(version))
            .expect("response header");
        assert_eq!(header.correlation_id, self.correlation);
        let decoded = R::Response::decode(&mut resp, version).expect("decode response");
        assert_eq!(
            resp.remaining(),
            0,
            "trailing bytes in api {} v{version}",
            R::KEY
        );
        decoded
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch(records: &[(&str, &str)], ts: i64) -> Bytes {
    idempotent_batch(records, ts, -1, -1, -1)
}

fn idempotent_batch(
    records: &[(&str, &str)],
    ts: i64,
    producer_id: i64,
    epoch: i16,
    sequence: i32,
) -> Bytes {
    // The broker's own batch builder: one batch, as clients send per partition.
    let mut b = BatchBuilder::new();
    if producer_id >= 0 {
        b = b.producer(producer_id, epoch, sequence);
    }
    for (i, (k, v)) in records.iter().enumerate() {
        b.push(&BuiltRecord {
            key: Some(k.as_bytes()),
            value: Some(v.as_bytes()),
            timestamp: ts + i as i64,
            headers: &[],
        });
    }
    Bytes::from(b.build().expect("build batch"))
}

fn zstd_batch(records: &[(&str, &str)], ts: i64) -> Bytes {
    let mut plain = batch(records, ts);
    let decoded = RecordBatchDecoder::decode_all(&mut plain).expect("decode");
    let records: Vec<Record> = decoded.into_iter().flat_map(|set| set.records).collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::Zstd,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records)),
            ])])
}

fn fetch_request(topic: &str, partition: i32, offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

fn create_topics_request(topic: &str, partitions: i32) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
}

fn first_produce_error(resp: &ProduceResponse) -> i16 {
    resp.responses[0].partition_responses[0].error_code
}

#[tokio::test]
async fn api_versions_lists_our_table_and_answers_a_newer_version_with_v0() {
    let broker = TestBroker::start().await;
    let mut c = broker.connect().await;
    let resp = c.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(resp.error_code, 0);
    let produce = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .expect("produce advertised");
    // Kafka 3.9's minimum: v0–2 (message formats v0/v1) are converted, see protocol::legacy.
    assert_eq!((produce.min_version, produce.max_version), (0, 9));

    // A client newer than us: UNSUPPORTED_VERSION, in v0, with our ranges.
    c.correlation += 1;
    let mut frame = BytesMut::new();
    frame.put_u32(0);
    frame.put_i16(ApiKey::ApiVersions as i16);
    frame.put_i16(99);
    frame.put_i32(c.correlation);
    frame.put_i16(-1);
    let len = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    c.send_raw(&frame).await;
    let mut resp = c.read_frame().await.expect("answer");
    assert_eq!(resp.get_i32(), c.correlation);
    let body = ApiVersionsResponse::decode(&mut resp, 0).expect("v0 body");
    assert_eq!(body.error_code, 35);
    assert!(body.api_keys.len() >= 10);
    broker.stop().await;
}

#[tokio::test]
async fn every_advertised_version_round_trips() {
    let broker = TestBroker::start().await;
    let mut c = broker.connect().await;

    for v in 0..=12 {
        let topic = format!("meta-{v}");
        let req = MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(name(&topic)))]))
            .with_allow_auto_topic_creation(true);
        let resp = c.call(v, &req).await;
        assert_eq!(resp.brokers.len(), 1, "v{v}");
        assert_eq!(resp.topics[0].error_code, 0, "metadata v{v}");
        assert_eq!(resp.topics[0].partitions.len(), 1, "v{v}");
    }
    // Null topic list = all topics.
    let all = c
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    assert!(all.topics.len() >= 13);
    assert!(all.topics.iter().all(|t| !t.topic_id.is_nil()));

    for v in 2..=7 {
        let resp = c
            .call(v, &create_topics_request(&format!("created-{v}"), 3))
            .await;
        assert_eq!(resp.topics[0].error_code, 0, "create v{v}");
    }

    let mut expected_offset = 0;
    for v in 3..=9 {
        let resp = c
            .call(
                v,
                &produce_request("created-7", 1, batch(&[("k", "v"), ("k2", "v2")], 1000), -1),
            )
            .await;
        assert_eq!(first_produce_error(&resp), 0, "produce v{v}");
        assert_eq!(
            resp.responses[0].partition_responses[0].base_offset,
            expected_offset
        );
        expected_offset += 2;
    }
    for v in 4..=12 {
        let resp = c.call(v, &fetch_request("created-7", 1, 0)).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch v{v}");
        assert_eq!(p.high_watermark, expected_offset);
        let mut records = p.records.clone().expect("records");
        let sets = RecordBatchDecoder::decode_all(&mut records).expect("decode");
        let n: usize = sets.iter().map(|s| s.records.len()).sum();
        assert_eq!(n as i64, expected_offset, "fetch v{v}");
    }
    for v in 1..=7 {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(name("created-7"))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(1)
                        .with_timestamp(-1),
                ])]);
        let resp = c.call(v, &req).await;
        assert_eq!(
            resp.topics[0].partitions[0].offset, expected_offset,
            "list offsets v{v}"
        );
    }
    // Earliest, by timestamp, and a timestamp after every record.
    for (ts, want) in [(-2, 0), (1000, 0), (1001, 1), (i64::MAX, -1)] {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(name("created-7"))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(1)
                        .with_timestamp(ts),
                ])]);
        let resp = c.call(7, &req).await;
        assert_eq!(resp.topics[0].partitions[0].offset, want, "timestamp {ts}");
    }
    for v in 1..=4 {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("created-7"))
                .with_configuration_keys(None),
        ]);
        let resp = c.call(v, &req).await;
        assert_eq!(resp.results[0].error_code, 0, "describe configs v{v}");
        assert!(resp.results[0]
            .configs
            .iter()
            .any(|c| c.name.as_str() == "retention.ms"));
    }
    for v in 0..=1 {
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("created-7"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("retention.ms"))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_static_str("12345"))),
                ]),
        ]);
        let resp = c.call(v, &req).await;
        assert_eq!(resp.responses[0].error_code, 0, "alter configs v{v}");
    }
    for v in 0..=3 {
        let req = CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name("created-2"))
                .with_count(4 + i32::from(v)),
        ]);
        let resp = c.call(v, &req).await;
        assert_eq!(resp.results[0].error_code, 0, "create partitions v{v}");
    }
    for v in 0..=1 {
        let resp = c.call(v, &DescribeClusterRequest::default()).await;
        assert_eq!(resp.error_code, 0, "describe cluster v{v}");
        assert_eq!(resp.brokers.len(), 1);
    }
    for v in 0..=2 {
        let req = DeleteRecordsRequest::default().with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(name("created-7"))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(1)
                        .with_offset(i64::from(v) + 1),
                ]),
        ]);
        let resp = c.call(v, &req).await;
        let p = &resp.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.low_watermark),
            (0, i64::from(v) + 1),
            "delete records v{v}"
        );
    }
    for v in 1..=6 {
        let topic = format!("created-{}", v.max(2));
        let req = if v >= 6 {
            DeleteTopicsRequest::default()
                .with_topics(vec![delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(name(&topic)))])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&format!("meta-{v}"))])
        };
        let resp = c.call(v, &req).await;
        assert_eq!(resp.responses[0].error_code, 0, "delete topics v{v}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn bad_batches_and_names_get_kafka_errors_and_nothing_is_stored() {
    let broker = TestBroker::start_with(|c| c.message_max_bytes = 1024).await;
    let mut c = broker.connect().await;
    c.call(7, &create_topics_request("t", 1)).await;

    let mut corrupt = BytesMut::from(&batch(&[("k", "v")], 1)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let resp = c
        .call(9, &produce_request("t", 0, corrupt.freeze(), -1))
        .await;
    assert_eq!(first_produce_error(&resp), 2, "CORRUPT_MESSAGE");

    let big = "x".repeat(4096);
    let resp = c
        .call(9, &produce_request("t", 0, batch(&[("k", &big)], 1), -1))
        .await;
    assert_eq!(first_produce_error(&resp), 10, "MESSAGE_TOO_LARGE");

    let resp = c
        .call(9, &produce_request("nope", 0, batch(&[("k", "v")], 1), -1))
        .await;
    assert_eq!(first_produce_error(&resp), 3, "UNKNOWN_TOPIC_OR_PARTITION");

    let resp = c
        .call(9, &produce_request("t", 0, batch(&[("k", "v")], 1), 2))
        .await;
    assert_eq!(first_produce_error(&resp), 21, "INVALID_REQUIRED_ACKS");

    // As Kafka's ProduceRequest.validateRecords: one batch per partition from v3, and zstd
    // only from v7.
    let two = [batch(&[("k", "v")], 1), batch(&[("k2", "v2")], 2)].concat();
    let resp = c
        .call(9, &produce_request("t", 0, Bytes::from(two), -1))
        .await;
    assert_eq!(first_produce_error(&resp), 87, "INVALID_RECORD");
    let zstd = zstd_batch(&[("k", "v")], 1);
    for v in 3..=6 {
        let resp = c.call(v, &produce_request("t", 0, zstd.clone(), -1)).await;
        assert_eq!(
            first_produce_error(&resp),
            76,
            "UNSUPPORTED_COMPRESSION_TYPE at v{v}"
        );
    }

    let fetched = c.call(12, &fetch_request("t", 0, 0)).await;
    assert_eq!(
        fetched.responses[0].partitions[0].high_watermark, 0,
        "nothing stored"
    );
    let resp = c.call(7, &produce_request("t", 0, zstd, -1)).await;
    assert_eq!(first_produce_error(&resp), 0, "zstd from v7");
    assert_eq!(
        fetched.responses[0].partitions[0]
            .records
            .as_ref()
            .map(|r| r.len()),
        Some(0),
        "an empty partition answers empty records, never null"
    );

    for bad in ["a/b", "..", "with space"] {
        let resp = c.call(7, &create_topics_request(bad, 1)).await;
        assert_eq!(resp.topics[0].error_code, 17, "create {bad}");
        let req = MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(name(bad))),
        ]));
        let resp = c.call(12, &req).await;
        assert_eq!(resp.topics[0].error_code, 17, "metadata {bad}");
    }
    let resp = c.call(7, &create_topics_request("t", 1)).await;
    assert_eq!(resp.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");
    broker.stop().await;
}

#[tokio::test]
async fn garbage_oversized_and_unknown_requests_close_only_their_connection() {
    let broker = TestBroker::start_with(|c| c.max_request_bytes = 1 << 20).await;
    let mut healthy = broker.connect().await;
    healthy.call(3, &ApiVersionsRequest::default()).await;

    // An oversized frame: the length alone is enough for the broker to hang up.
    let mut c = broker.connect().await;
    c.send_raw(&(200u32 << 20).to_be_bytes()).await;
    assert!(
        c.read_frame().await.is_none(),
        "oversized frame closes the connection"
    );

    // Garbage: a frame whose body is not a request.
    let mut c = broker.connect().await;
    c.send_raw(&[
        0, 0, 0, 12, 0, 3, 0, 9, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff,
    ])
    .await;
    assert!(
        c.read_frame().await.is_none(),
        "garbage closes the connection"
    );

    // A forged array length must not make the broker reserve gigabytes.
    let mut c = broker.connect().await;
    let mut frame = BytesMut::new();
    frame.put_u32(0);
    frame.put_i16(ApiKey::Metadata as i16);
    frame.put_i16(4);
    frame.put_i32(1);
    frame.put_i16(-1);
    frame.put_i32(i32::MAX);
    let len = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    c.send_raw(&frame).await;
    assert!(
        c.read_frame().await.is_none(),
        "forged length closes the connection"
    );

    // An unknown API key: UNSUPPORTED_VERSION with the correlation id, then the connection closes.
    let mut c = broker.connect().await;
    c.send_raw(&[0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 42, 0xff, 0xff])
        .await;
    let mut resp = c.read_frame().await.expect("an error answer");
    assert_eq!(resp.get_i32(), 42);
    assert_eq!(resp.get_i16(), 35);
    assert!(c.read_frame().await.is_none());

    // A known API at a version we do not implement.
    let mut c = broker.connect().await;
    c.send_raw(&[0, 0, 0, 10, 0, 0, 0, 10, 0, 0, 0, 7, 0xff, 0xff])
        .await;
    let mut resp = c.read_frame().await.expect("an error answer");
    assert_eq!(resp.get_i32(), 7);
    assert_eq!(resp.get_i16(), 35);

    // A truncated request of an old version (Produce v1, translated by protocol::legacy) closes
    // its connection without an answer, as any malformed request does.
    let mut c = broker.connect().await;
    c.send_raw(&[
        0, 0, 0, 13, 0, 0, 0, 1, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0,
    ])
    .await;
    assert!(c.read_frame().await.is_none());

    // The first client never noticed.
    let resp = healthy
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    assert_eq!(resp.brokers.len(), 1);
    broker.stop().await;
}

#[tokio::test]
async fn long_poll_fetch_waits_for_data_without_blocking_other_connections() {
    let broker = TestBroker::start().await;
    let mut setup = broker.connect().await;
    setup.call(7, &create_topics_request("lp", 1)).await;

    let addr = broker.addr;
    let waiter = tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut c = Client {
            stream,
            correlation: 0,
        };
        let started = std::time::Instant::now();
        let req = fetch_request("lp", 0, 0).with_max_wait_ms(10_000);
        let resp = c.call(12, &req).await;
        (started.elapsed(), resp)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another connection is served while the fetch is parked.
    let resp = setup
        .call(9, &produce_request("lp", 0, batch(&[("k", "v")], 5), -1))
        .await;
    assert_eq!(first_produce_error(&resp), 0);
    let (elapsed, resp) = waiter.await.expect("waiter");
    assert!(
        elapsed < Duration::from_secs(5),
        "woken by the produce, not the timeout"
    );
    assert_eq!(resp.responses[0].partitions[0].high_watermark, 1);

    // With no data, the fetch answers after max_wait_ms with empty records.
    let started = std::time::Instant::now();
    let resp = setup
        .call(12, &fetch_request("lp", 0, 1).with_max_wait_ms(300))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .map(|r| r.len()),
        Some(0)
    );
    broker.stop().await;
}

#[tokio::test]
async fn acks_zero_gets_no_answer_but_is_stored() {
    let broker = TestBroker::start().await;
    let mut c = broker.connect().await;
    c.call(7, &create_topics_request("a0", 1)).await;
    // Send acks=0 produce; no answer comes, so the next answer is the metadata's.
    let req = produce_request("a0", 0, batch(&[("k", "v")], 5), 0);
    c.correlation += 1;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(9)
        .with_correlation_id(c.correlation);
    let mut body = BytesMut::new();
    header
        .encode(&mut body, ProduceRequest::header_version(9))
        .expect("header");
    req.encode(&mut body, 9).expect("body");
    let mut frame = BytesMut::new();
    frame.put_u32(body.len() as u32);
    frame.extend_from_slice(&body);
    c.send_raw(&frame).await;
    let resp = c
        .call(12, &fetch_request("a0", 0, 0).with_max_wait_ms(2000))
        .await;
    assert_eq!(resp.responses[0].partitions[0].high_watermark, 1);
    broker.stop().await;
}

#[tokio::test]
async fn idempotent_retries_are_stored_once_even_across_a_restart() {
    let broker = TestBroker::start().await;
    let mut c = broker.connect().await;
    c.call(7, &create_topics_request("idem", 1)).await;
    let init = c
        .call(
            4,
            &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
        )
        .await;
    assert_eq!(init.error_code, 0);
    let pid = init.producer_id.0;
    assert!(pid >= 0);
    assert_eq!(init.producer_epoch, 0);

    let first = idempotent_batch(&[("a", "1"), ("b", "2")], 10, pid, 0, 0);
    let resp = c
        .call(9, &produce_request("idem", 0, first.clone(), -1))
        .await;
    assert_eq!(
        (
            first_produce_error(&resp),
            resp.responses[0].partition_responses[0].base_offset
        ),
        (0, 0)
    );
    // The same batch again, as a producer retrying after a lost answer: same offset, not stored.
    let resp = c
        .call(9, &produce_request("idem", 0, first.clone(), -1))
        .await;
    assert_eq!(
        (
            first_produce_error(&resp),
            resp.responses[0].partition_responses[0].base_offset
        ),
        (0, 0)
    );

    let second = idempotent_batch(&[("c", "3")], 11, pid, 0, 2);
    let resp = c
        .call(9, &produce_request("idem", 0, second.clone(), -1))
        .await;
    assert_eq!(
        (
            first_produce_error(&resp),
            resp.responses[0].partition_responses[0].base_offset
        ),
        (0, 2)
    );

    // A gap in the sequence is refused.
    let gap = idempotent_batch(&[("d", "4")], 12, pid, 0, 9);
    let resp = c.call(9, &produce_request("idem", 0, gap, -1)).await;
    assert_eq!(
        first_produce_error(&resp),
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );

    let resp = c.call(12, &fetch_request("idem", 0, 0)).await;
    assert_eq!(resp.responses[0].partitions[0].high_watermark, 3);

    // After a restart the state is rebuilt from the log: the retry is still recognised.
    drop(c);
    let broker = broker.restart().await;
    let mut c = broker.connect().await;
    let resp = c.call(9, &produce_request("idem", 0, second, -1)).await;
    assert_eq!(
        (
            first_produce_error(&resp),
            resp.responses[0].partition_responses[0].base_offset
        ),
        (0, 2)
    );
    let resp = c.call(12, &fetch_request("idem", 0, 0)).await;
    assert_eq!(
        resp.responses[0].partitions[0].high_watermark, 3,
        "stored once"
    );
    // New producer ids never repeat an old one.
    let again = c.call(4, &InitProducerIdRequest::default()).await;
    assert!(again.producer_id.0 > pid);
    broker.stop().await;
}

#[tokio::test]
async fn standalone_commits_fetch_delete_and_group_deletion() {
    let broker = TestBroker::start().await;
    let mut c = broker.connect().await;
    c.call(7, &create_topics_request("offs", 2)).await;
    let commit = |partition: i32, offset: i64| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(name("offs"))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(partition)
                            .with_committed_offset(offset)
                            .with_committed_metadata(Some(StrBytes::from_static_str("meta"))),
                    ]),
            ])
    };
    for (p, o) in [(0, 5), (1, 7)] {
        let resp = c.call(8, &commit(p, o)).await;
        assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    }
    // Plain form (v7): all topics of the group.
    let fetched = c
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
                .with_topics(None),
        )
        .await;
    let got: Vec<(i32, i64, String)> = fetched.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.committed_offset,
                p.metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(0, 5, "meta".to_string()), (1, 7, "meta".to_string())]
    );
    // Grouped form (v8+), asking for one partition and an unknown group.
    let req = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(name("offs"))
                    .with_partition_indexes(vec![1]),
            ])),
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str("nobody")))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(name("offs"))
                    .with_partition_indexes(vec![0]),
            ])),
    ]);
    let fetched = c.call(9, &req).await;
    assert_eq!(
        fetched.groups[0].topics[0].partitions[0].committed_offset,
        7
    );
    assert_eq!(
        fetched.groups[1].topics[0].partitions[0].committed_offset,
        -1
    );

    let listed = c.call(5, &ListGroupsRequest::default()).await;
    assert!(listed
        .groups
        .iter()
        .any(|g| g.group_id.0.as_str() == "standalone" && g.group_state.as_str() == "Empty"));

    let req = OffsetDeleteRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(name("offs"))
                .with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default()
                        .with_partition_index(0),
                ]),
        ]);
    let deleted = c.call(0, &req).await;
    assert_eq!(
        (
            deleted.error_code,
            deleted.topics[0].partitions[0].error_code
        ),
        (0, 0)
    );
    let fetched = c
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
                .with_topics(None),
        )
        .await;
    assert_eq!(
        fetched.topics[0].partitions.len(),
        1,
        "partition 0's offset is gone"
    );

    let resp = c
        .call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![
                GroupId(StrBytes::from_static_str("standalone")),
                GroupId(StrBytes::from_static_str("nobody")),
            ]),
        )
        .await;
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(resp.results[1].error_code, 69, "GROUP_ID_NOT_FOUND");
    let listed = c.call(5, &ListGroupsRequest::default()).await;
    assert!(listed
        .groups
        .iter()
        .all(|g| g.group_id.0.as_str() != "standalone"));

    // Committed offsets survive a restart (they live in __consumer_offsets).
    let resp = c.call(8, &commit(1, 11)).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    drop(c);
    let broker = broker.restart().await;
    let mut c = broker.connect().await;
    let fetched = c
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
                .with_topics(None),
        )
        .await;
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 11);
    broker.stop().await;
}

#[tokio::test]
async fn each_listener_advertises_its_own_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = broker::Config::for_data_dir(dir.path());
    let internal = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let external = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (internal_addr, external_addr) = (
        internal.local_addr().expect("addr"),
        external.local_addr().expect("addr"),
    );
    let (_, advertised) =
        broker::parse_extra_listener("127.0.0.1:0=external.example:1234").expect("spec");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        broker::run_with_extra_listeners(config, internal, vec![(external, advertised)], async {
            let _ = stopped.await;
        })
        .await
        .expect("run");
    });
    for (addr, host, port) in [
        (
            internal_addr,
            "127.0.0.1".to_string(),
            i32::from(internal_addr.port()),
        ),
        (external_addr, "external.example".to_string(), 1234),
    ] {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut c = Client {
            stream,
            correlation: 0,
        };
        let resp = c
            .call(12, &MetadataRequest::default().with_topics(None))
            .await;
        assert_eq!(
            (resp.brokers[0].host.to_string(), resp.brokers[0].port),
            (host.clone(), port)
        );
        let resp = c
            .call(
                4,
                &FindCoordinatorRequest::default()
                    .with_coordinator_keys(vec![StrBytes::from_static_str("g")]),
            )
            .await;
        assert_eq!(
            (
                resp.coordinators[0].host.to_string(),
                resp.coordinators[0].port
            ),
            (host, port)
        );
    }
    assert!(broker::parse_extra_listener("0.0.0.0:1").is_err());
    let _ = stop.send(());
    task.await.expect("task");
}

/// DescribeLogDirs (kafka-log-dirs.sh; consoles show topic sizes from it): the data directory
/// with every partition's size on disk, or only the partitions asked for.
#[tokio::test]
async fn describe_log_dirs_reports_partition_sizes() {
    let broker = TestBroker::start().await;
    let mut c = broker.connect().await;
    let created = c.call(5, &create_topics_request("sized", 2)).await;
    assert_eq!(created.topics[0].error_code, 0);
    let produced = c
        .call(
            9,
            &produce_request("sized", 1, batch(&[("k", &"v".repeat(1000))], 1), -1),
        )
        .await;
    assert_eq!(first_produce_error(&produced), 0);

    let sizes = |resp: &DescribeLogDirsResponse| -> Vec<(i32, i64)> {
        let mut out: Vec<(i32, i64)> = resp.results[0]
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == "sized")
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.partition_size))
            })
            .collect();
        out.sort();
        out
    };
    let all = c
        .call(4, &DescribeLogDirsRequest::default().with_topics(None))
        .await;
    assert_eq!((all.error_code, all.results.len()), (0, 1));
    assert!(!all.results[0].log_dir.is_empty());
    let got = sizes(&all);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].1, 0, "nothing in partition 0");
    assert!(got[1].1 > 1000, "partition 1 holds the record: {got:?}");

    let some = c
        .call(
            1,
            &DescribeLogDirsRequest::default().with_topics(Some(vec![
                describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_topic(name("sized"))
                    .with_partitions(vec![1, 7]),
                describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_topic(name("missing"))
                    .with_partitions(vec![0]),
            ])),
        )
        .await;
    assert_eq!(sizes(&some), vec![(1, got[1].1)]);
    assert_eq!(
        some.results[0].topics.len(),
        1,
        "an unknown topic is left out"
    );
    broker.stop().await;
}
