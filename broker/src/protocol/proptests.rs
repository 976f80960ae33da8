//! Property tests of the frame decoder: whatever a client sends as one request frame — random
//! bytes, a valid header over a random body, or a valid request of any supported API and
//! version with bytes flipped, inserted, removed or cut off — [`dispatch`] never panics, never
//! allocates what a forged length asks for, and either answers with a well-formed frame carrying
//! the request's correlation id or closes the connection (after an error frame, when the
//! correlation id could be read). A response the broker must finish (produce, commits) finishes.
//!
//! The default run is small (256 cases per property, a few seconds in a debug build); a longer
//! one: `PROPTEST_CASES=20000 cargo test -p broker --release --lib protocol::proptests`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;

use super::dispatch::{dispatch, Outcome};
use super::versions::SUPPORTED;
use super::Session;
use crate::broker::{Advertised, Broker};
use crate::config::Config;
use crate::log::batch::builder::{BatchBuilder, Record};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// A broker on a temporary directory, shared by every case of a property, and the runtime that
/// drives it.
struct Harness {
    runtime: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    advertised: Advertised,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let advertised = || Advertised {
            host: "127.0.0.1".into(),
            port: 9092,
        };
        let config = Config::for_data_dir(dir.path());
        let broker = runtime
            .block_on(Broker::open(config, advertised()))
            .expect("broker");
        Harness {
            runtime,
            broker: Arc::new(broker),
            advertised: advertised(),
            _dir: dir,
        }
    }

    /// Dispatches one frame and checks what comes back.
    fn check(&self, frame: Vec<u8>) -> Result<(), TestCaseError> {
        let correlation = frame
            .get(4..8)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
        self.runtime.block_on(async {
            let session = Session::plaintext(peer, Arc::new(self.advertised.clone()));
            let outcome = dispatch(&self.broker, &session, Bytes::from(frame)).await;
            match outcome {
                Outcome::Respond(pending) => {
                    // Must finish: it makes appended records durable and visible.
                    let done = tokio::time::timeout(Duration::from_secs(10), pending).await;
                    let done = done.map_err(|_| {
                        TestCaseError::fail("a response that must finish did not within 10 s")
                    })?;
                    if let Ok(Some(bytes)) = done {
                        well_formed(&bytes, correlation)?;
                    }
                }
                Outcome::Wait(pending) => {
                    // May long-poll: give it a moment, then drop it as a disconnect would.
                    if let Ok(Ok(Some(bytes))) =
                        tokio::time::timeout(Duration::from_millis(50), pending).await
                    {
                        well_formed(&bytes, correlation)?;
                    }
                }
                Outcome::Close { last, reason } => {
                    prop_assert!(!reason.is_empty());
                    if let Some(bytes) = last {
                        well_formed(&bytes, correlation)?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// A response frame: its length prefix matches, and it carries the request's correlation id.
fn well_formed(bytes: &[u8], correlation: Option<i32>) -> Result<(), TestCaseError> {
    prop_assert!(bytes.len() >= 8, "a {}-byte response", bytes.len());
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    prop_assert_eq!(len, bytes.len() - 4);
    let id = i32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    prop_assert_eq!(Some(id), correlation);
    Ok(())
}

fn encode<R: Encodable>(body: &R, version: i16) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).ok()?;
    Some(buf.to_vec())
}

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn a_batch() -> Bytes {
    let mut b = BatchBuilder::new();
    b.push(&Record {
        key: Some(b"key"),
        value: Some(b"value"),
        timestamp: 1_700_000_000_000,
        headers: &[(b"h", Some(b"v"))],
    });
    Bytes::from(b.build().expect("batch"))
}

/// A request body of `key` at `version` with some content where it matters (a topic, a batch,
/// a group member), else the default: the seeds that mutations start from.
/// One uncompressed message of format `magic` (0 or 1), as clients before Kafka 0.11 write.
fn legacy_message(magic: u8, value: &[u8]) -> Vec<u8> {
    let mut body = vec![magic, 0];
    if magic == 1 {
        body.extend(1_700_000_000_000i64.to_be_bytes());
    }
    body.extend((-1i32).to_be_bytes());
    body.extend(i32::try_from(value.len()).unwrap_or(0).to_be_bytes());
    body.extend(value);
    let mut out = 0i64.to_be_bytes().to_vec();
    out.extend(i32::try_from(body.len() + 4).unwrap_or(0).to_be_bytes());
    out.extend(crc32fast::hash(&body).to_be_bytes());
    out.extend(body);
    out
}

/// A request of a version older than the codec knows, as an old client writes it (see
/// `protocol::legacy`): built by hand, or from the codec's oldest version where the layouts
/// differ only by a trailing field.
fn legacy_body(key: ApiKey, version: i16) -> Option<Vec<u8>> {
    use bytes::BufMut;
    let mut b = BytesMut::new();
    let put_str = |b: &mut BytesMut, s: &str| {
        b.put_i16(i16::try_from(s.len()).unwrap_or(0));
        b.put_slice(s.as_bytes());
    };
    match key {
        ApiKey::Produce => {
            let set = legacy_message(u8::from(version >= 2), b"value");
            b.put_i16(-1);
            b.put_i32(1000);
            b.put_i32(1);
            put_str(&mut b, "fuzzed");
            b.put_i32(1);
            b.put_i32(0);
            b.put_i32(i32::try_from(set.len()).unwrap_or(0));
            b.put_slice(&set);
        }
        ApiKey::Fetch => {
            b.put_i32(-1);
            b.put_i32(10);
            b.put_i32(1);
            if version >= 3 {
                b.put_i32(1 << 20);
            }
            b.put_i32(1);
            put_str(&mut b, "fuzzed");
            b.put_i32(1);
            b.put_i32(0);
            b.put_i64(0);
            b.put_i32(1 << 20);
        }
        ApiKey::ListOffsets => {
            b.put_i32(-1);
            b.put_i32(1);
            put_str(&mut b, "fuzzed");
            b.put_i32(1);
            b.put_i32(0);
            b.put_i64(-1);
            b.put_i32(1);
        }
        ApiKey::OffsetCommit => {
            put_str(&mut b, "fuzz-group");
            if version >= 1 {
                b.put_i32(-1);
                put_str(&mut b, "");
            }
            b.put_i32(1);
            put_str(&mut b, "fuzzed");
            b.put_i32(1);
            b.put_i32(0);
            b.put_i64(1);
            if version >= 1 {
                b.put_i64(-1);
            }
            put_str(&mut b, "meta");
        }
        ApiKey::OffsetFetch => return body(key, 1),
        ApiKey::DeleteTopics => return body(key, 1),
        ApiKey::CreateTopics | ApiKey::DescribeConfigs => {
            // v0 lacks the trailing boolean (validate_only, include_synonyms).
            let newer = if key == ApiKey::CreateTopics { 2 } else { 1 };
            let mut whole = body(key, newer)?;
            if version == 0 {
                whole.pop();
            }
            return Some(whole);
        }
        _ => return None,
    }
    Some(b.to_vec())
}

fn body(key: ApiKey, version: i16) -> Option<Vec<u8>> {
    if super::legacy::is_legacy(key, version) {
        return legacy_body(key, version);
    }
    let topic = || TopicName(name("fuzzed"));
    match key {
        ApiKey::Produce => {
            let partition = produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(a_batch()));
            let data = produce_request::TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(vec![partition]);
            encode(
                &ProduceRequest::default()
                    .with_acks(-1)
                    .with_timeout_ms(1000)
                    .with_topic_data(vec![data]),
                version,
            )
        }
        ApiKey::Fetch => {
            let partition = fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20);
            let t = fetch_request::FetchTopic::default()
                .with_topic(topic())
                .with_partitions(vec![partition]);
            encode(
                &FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(10)
                    .with_max_bytes(1 << 20)
                    .with_topics(vec![t]),
                version,
            )
        }
        ApiKey::Metadata => encode(
            &MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(topic()))]))
                .with_allow_auto_topic_creation(true),
            version,
        ),
        ApiKey::CreateTopics => encode(
            &CreateTopicsRequest::default()
                .with_topics(vec![create_topics_request::CreatableTopic::default()
                    .with_name(topic())
                    .with_num_partitions(2)
                    .with_replication_factor(1)])
                .with_timeout_ms(1000),
            version,
        ),
        ApiKey::JoinGroup => encode(
            &JoinGroupRequest::default()
                .with_group_id(GroupId(name("g")))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(name("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(name("range"))
                .with_metadata(Bytes::from_static(b"\0\0\0\0"))]),
            version,
        ),
        ApiKey::OffsetCommit => encode(
            &OffsetCommitRequest::default()
                .with_group_id(GroupId(name("g")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1),
                        ]),
                ]),
            version,
        ),
        ApiKey::DescribeConfigs => encode(
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(name("fuzzed")),
            ]),
            version,
        ),
        ApiKey::IncrementalAlterConfigs => {
            encode(&IncrementalAlterConfigsRequest::default(), version)
        }
        ApiKey::ListOffsets => encode(&ListOffsetsRequest::default(), version),
        ApiKey::ApiVersions => encode(&ApiVersionsRequest::default(), version),
        ApiKey::DeleteTopics => encode(&DeleteTopicsRequest::default(), version),
        ApiKey::DeleteRecords => encode(&DeleteRecordsRequest::default(), version),
        ApiKey::CreatePartitions => encode(&CreatePartitionsRequest::default(), version),
        ApiKey::AlterConfigs => encode(&AlterConfigsRequest::default(), version),
        ApiKey::DescribeCluster => encode(&DescribeClusterRequest::default(), version),
        ApiKey::InitProducerId => encode(
            &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
            version,
        ),
        ApiKey::FindCoordinator => encode(&FindCoordinatorRequest::default(), version),
        ApiKey::SyncGroup => encode(&SyncGroupRequest::default(), version),
        ApiKey::Heartbeat => encode(&HeartbeatRequest::default(), version),
        ApiKey::LeaveGroup => encode(&LeaveGroupRequest::default(), version),
        ApiKey::OffsetFetch => encode(&OffsetFetchRequest::default(), version),
        ApiKey::DescribeGroups => encode(&DescribeGroupsRequest::default(), version),
        ApiKey::ListGroups => encode(&ListGroupsRequest::default(), version),
        ApiKey::DeleteGroups => encode(&DeleteGroupsRequest::default(), version),
        ApiKey::OffsetDelete => encode(&OffsetDeleteRequest::default(), version),
        ApiKey::SaslHandshake => encode(
            &SaslHandshakeRequest::default().with_mechanism(name("PLAIN")),
            version,
        ),
        ApiKey::SaslAuthenticate => encode(
            &SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from_static(b"\0user\0password")),
            version,
        ),
        _ => None,
    }
}

/// A complete request frame (without the length prefix, as `dispatch` takes it).
fn frame(key: ApiKey, version: i16, correlation: i32) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(name("proptest")));
    let mut out = encode(&header, key.request_header_version(version)).expect("header");
    out.extend(body(key, version).unwrap_or_default());
    out
}

/// Any supported (API, version).
fn api() -> impl Strategy<Value = (ApiKey, i16)> {
    prop::sample::select(SUPPORTED.to_vec()).prop_flat_map(|(key, min, max)| (Just(key), min..=max))
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
    /// A 4-byte length or count set to a chosen value, where lengths and counts live.
    Int(usize, i32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1..16usize).prop_map(|(i, n)| Mutation::Remove(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop_oneof![
                Just(-1i32),
                Just(0),
                Just(i32::MAX),
                Just(i32::MIN),
                Just(0x7fff),
                any::<i32>()
            ]
        )
            .prop_map(|(i, v)| Mutation::Int(i, v)),
    ]
}

/// Mutates the frame past its first 8 bytes (API key, version, correlation id), so the
/// handlers behind the decoder are reached, not only the version check.
fn apply(frame: &mut Vec<u8>, m: &Mutation) {
    const KEEP: usize = 8;
    if frame.len() <= KEEP {
        return;
    }
    let span = frame.len() - KEEP;
    match m {
        Mutation::Flip(i, x) => frame[KEEP + i % span] ^= x,
        Mutation::Insert(i, bytes) => {
            let at = KEEP + i % (span + 1);
            frame.splice(at..at, bytes.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let at = KEEP + i % span;
            let end = (at + n).min(frame.len());
            frame.drain(at..end);
        }
        Mutation::Truncate(i) => frame.truncate(KEEP + i % span),
        Mutation::Int(i, v) => {
            if span >= 4 {
                let at = KEEP + i % (span - 3);
                frame[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
    }
}

#[test]
fn every_seed_request_is_answered() {
    let h = Harness::new();
    for &(key, min, max) in SUPPORTED {
        for version in min..=max {
            let f = frame(key, version, 7);
            h.check(f)
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
        }
    }
}

/// Every request of a version older than the codec knows, as an old client writes it, gets an
/// answer (not a closed connection): the translation in `protocol::legacy` reads each layout.
#[test]
fn every_legacy_seed_request_gets_an_answer() {
    let h = Harness::new();
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    let session = Session::plaintext(peer, Arc::new(h.advertised.clone()));
    for &(key, min, max) in SUPPORTED {
        for version in (min..=max).filter(|&v| super::legacy::is_legacy(key, v)) {
            let f = frame(key, version, 9);
            assert!(body_len(key, version) > 0, "{key:?} v{version} has no seed");
            let answer = h.runtime.block_on(async {
                match dispatch(&h.broker, &session, Bytes::from(f)).await {
                    Outcome::Respond(p) | Outcome::Wait(p) => {
                        tokio::time::timeout(Duration::from_secs(10), p).await
                    }
                    Outcome::Close { reason, .. } => panic!("{key:?} v{version} closed: {reason}"),
                }
            });
            let bytes = answer
                .unwrap_or_else(|_| panic!("{key:?} v{version}: no answer within 10 s"))
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"))
                .unwrap_or_else(|| panic!("{key:?} v{version}: no response"));
            well_formed(&bytes, Some(9)).unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        thread_local!(static H: Harness = Harness::new());
        H.with(|h| h.check(bytes))?;
    }

    #[test]
    fn a_valid_header_over_a_random_body_never_panics(
        (key, version) in api(),
        correlation in any::<i32>(),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        thread_local!(static H: Harness = Harness::new());
        let mut f = frame(key, version, correlation);
        let header_len = f.len() - body_len(key, version);
        f.truncate(header_len);
        f.extend(body);
        H.with(|h| h.check(f))?;
    }

    #[test]
    fn mutated_requests_never_panic(
        (key, version) in api(),
        correlation in any::<i32>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        thread_local!(static H: Harness = Harness::new());
        let mut f = frame(key, version, correlation);
        for m in &mutations {
            apply(&mut f, m);
        }
        H.with(|h| h.check(f))?;
    }
}

fn body_len(key: ApiKey, version: i16) -> usize {
    body(key, version).map_or(0, |b| b.len())
}
