//! Request versions that Kafka 4.0 removed (KIP-896) but Kafka 3.9 still answers, which the
//! `kafka-protocol` codec (generated from Kafka 4's schemas) no longer knows: Produce v0–2,
//! Fetch v0–3, ListOffsets v0, OffsetCommit v0–1, OffsetFetch v0, CreateTopics v0–1,
//! DeleteTopics v0 and DescribeConfigs v0. Tools in users' hands still send them: LinkedIn
//! Burrow 1.2 (Debian's), sarama clients set to an old `kafka-version`, old Java clients.
//!
//! Each request is turned into the oldest version the codec knows, with the defaults Kafka gives
//! the fields the old version lacks (no transactional id, read_uncommitted, no response size
//! limit, no generation for a v0 commit), handled by the same handler as every other version,
//! and its response is written back in the old layout. Record data is converted too: a v0–2
//! producer's message set is up-converted into a v2 batch before validation, and Fetch v0–3
//! answers get message sets of format v0/v1 down-converted from the log's batches
//! ([`legacy`](crate::log::batch::legacy)).

use std::future::Future;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use super::dispatch::{deferred, ready, waiting, Outcome};
use super::Session;
use crate::api;
use crate::authorizer::Requester;
use crate::broker::Broker;
use crate::log::batch::legacy::{down_convert, up_convert};
use crate::topic::internal::{put_nullable_str, put_str};

/// The versions below the codec's that this broker answers, per API (Kafka 3.9's minimums).
pub const LEGACY: &[(ApiKey, i16)] = &[
    (ApiKey::Produce, 0),
    (ApiKey::Fetch, 0),
    (ApiKey::ListOffsets, 0),
    (ApiKey::OffsetCommit, 0),
    (ApiKey::OffsetFetch, 0),
    (ApiKey::CreateTopics, 0),
    (ApiKey::DeleteTopics, 0),
    (ApiKey::DescribeConfigs, 0),
];

/// Whether `version` of `key` is below what the codec knows (and so handled here).
pub fn is_legacy(key: ApiKey, version: i16) -> bool {
    LEGACY
        .iter()
        .any(|&(k, min)| k == key && version >= min && version < key.valid_versions().min)
}

/// A response body already written in its old layout.
struct OldBody(Bytes);

impl Encodable for OldBody {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, _version: i16) -> anyhow::Result<()> {
        buf.put_slice(&self.0);
        Ok(())
    }

    fn compute_size(&self, _version: i16) -> anyhow::Result<usize> {
        Ok(self.0.len())
    }
}

impl HeaderVersion for OldBody {
    fn header_version(_version: i16) -> i16 {
        0
    }
}

/// Handles one request of a legacy version; `body` is the frame after the request header.
pub async fn handle(
    broker: &Arc<Broker>,
    session: &Session,
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: Bytes,
) -> Outcome {
    match translate(broker, session, key, version, correlation_id, body).await {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Close {
            last: None,
            reason: format!("malformed {key:?} v{version} request: {e}"),
        },
    }
}

async fn translate(
    broker: &Arc<Broker>,
    session: &Session,
    key: ApiKey,
    version: i16,
    c: i32,
    body: Bytes,
) -> anyhow::Result<Outcome> {
    // The same checks as every other version: the handlers make them.
    let who = Requester::from(session);
    Ok(match key {
        ApiKey::Produce => {
            // v3 added the transactional id in front.
            let mut v3 = BytesMut::with_capacity(body.len() + 2);
            v3.put_i16(-1);
            v3.put_slice(&body);
            let req = ProduceRequest::decode(&mut v3.freeze(), 3)?;
            deferred(c, version, produce(broker, who, req, version))
        }
        ApiKey::Fetch => {
            // v3 added max_bytes after min_bytes, v4 isolation_level after max_bytes.
            let fixed = if version >= 3 { 16 } else { 12 };
            anyhow::ensure!(body.len() >= fixed, "{} bytes", body.len());
            let mut v4 = BytesMut::with_capacity(body.len() + 5);
            v4.put_slice(&body[..fixed]);
            if version < 3 {
                v4.put_i32(i32::MAX);
            }
            v4.put_i8(0);
            v4.put_slice(&body[fixed..]);
            let req = FetchRequest::decode(&mut v4.freeze(), 4)?;
            let broker = broker.clone();
            let session = session.clone();
            waiting(c, version, async move {
                let who = Requester::from(&session);
                let response = api::fetch::handle(&broker, who, req, 4).await;
                Some(OldBody(fetch_response(&broker, &response, version)))
            })
        }
        ApiKey::ListOffsets => {
            let (req, wanted) = list_offsets_v0(body)?;
            let response = api::list_offsets::handle(broker, who, req, 1);
            ready(
                c,
                version,
                OldBody(list_offsets_response(&response, &wanted)),
            )
        }
        ApiKey::OffsetCommit => {
            let req = offset_commit_v0_v1(body, version)?;
            let response = api::offsets::commit(broker, who, req);
            deferred(c, version, async move {
                let response: OffsetCommitResponse = response.await?;
                // v0 and v1 answer in v2's layout.
                Some(OldBody(encode_with(&response, 2)))
            })
        }
        ApiKey::OffsetFetch => {
            // v0 is v1's layout (v0 read ZooKeeper, which no Kafka 3.9 cluster in KRaft has).
            let req = OffsetFetchRequest::decode(&mut body.clone(), 1)?;
            let response = api::offsets::fetch(broker, who, req, 1);
            ready(c, version, OldBody(encode_with(&response, 1)))
        }
        ApiKey::CreateTopics => {
            // v1 added validate_only at the end; v2's request is v1's.
            let mut v2 = BytesMut::from(&body[..]);
            if version == 0 {
                v2.put_i8(0);
            }
            let req = CreateTopicsRequest::decode(&mut v2.freeze(), 2)?;
            let response = api::topics::create(broker, who, req, 2).await;
            ready(
                c,
                version,
                OldBody(create_topics_response(&response, version)),
            )
        }
        ApiKey::DeleteTopics => {
            let req = DeleteTopicsRequest::decode(&mut body.clone(), 1)?;
            let response = api::topics::delete(broker, who, req, 1).await;
            ready(c, version, OldBody(delete_topics_response(&response)))
        }
        ApiKey::DescribeConfigs => {
            // v1 added include_synonyms at the end.
            let mut v1 = BytesMut::from(&body[..]);
            v1.put_i8(0);
            let req = DescribeConfigsRequest::decode(&mut v1.freeze(), 1)?;
            let response = api::configs::describe(broker, who, req, 1);
            ready(c, version, OldBody(describe_configs_response(&response)))
        }
        other => anyhow::bail!("{other:?} has no legacy versions"),
    })
}

fn encode_with<R: Encodable>(response: &R, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    // The codec encodes every response it built itself; a failure would be a bug in it.
    if let Err(e) = response.encode(&mut buf, version) {
        tracing::error!(error = %e, "could not encode a response");
    }
    buf.freeze()
}

/// Produce v0–2: each partition's message set becomes one v2 batch; a set that does not
/// convert gets CORRUPT_MESSAGE and the rest of the request goes on.
fn produce(
    broker: &Arc<Broker>,
    who: Requester<'_>,
    mut req: ProduceRequest,
    version: i16,
) -> impl Future<Output = Option<OldBody>> + Send + 'static {
    let limit = broker.config.max_request_bytes as usize;
    let mut refused: Vec<(TopicName, PartitionProduceResponse)> = Vec::new();
    for topic in &mut req.topic_data {
        topic.partition_data.retain_mut(|data| {
            let Some(records) = data.records.as_ref().filter(|r| !r.is_empty()) else {
                return true; // the handler answers an empty one
            };
            // A client may send v2 batches in an old request; those are validated as they are.
            if records.get(16).is_some_and(|magic| *magic == 2) {
                return true;
            }
            match up_convert(records, limit) {
                Ok(batch) => {
                    data.records = Some(Bytes::from(batch));
                    true
                }
                Err(e) => {
                    tracing::debug!(topic = %topic.name.0, partition = data.index, error = %e, "message set refused");
                    refused.push((
                        topic.name.clone(),
                        PartitionProduceResponse::default()
                            .with_index(data.index)
                            .with_error_code(ResponseError::CorruptMessage.code())
                            .with_base_offset(-1),
                    ));
                    false
                }
            }
        });
    }
    let pending = api::produce::handle(broker, who, req, 3);
    async move {
        let response: ProduceResponse = pending.await?;
        Some(OldBody(produce_response(response, refused, version)))
    }
}

fn put_len(buf: &mut BytesMut, len: usize) {
    buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

fn produce_response(
    mut response: ProduceResponse,
    refused: Vec<(TopicName, PartitionProduceResponse)>,
    version: i16,
) -> Bytes {
    for (name, partition) in refused {
        match response.responses.iter_mut().find(|t| t.name == name) {
            Some(topic) => topic.partition_responses.push(partition),
            None => response.responses.push(
                kafka_protocol::messages::produce_response::TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(vec![partition]),
            ),
        }
    }
    if version == 2 {
        return encode_with(&response, 3); // v3 only changed the request
    }
    let mut buf = BytesMut::new();
    put_len(&mut buf, response.responses.len());
    for topic in &response.responses {
        put_str(&mut buf, &topic.name.0);
        put_len(&mut buf, topic.partition_responses.len());
        for p in &topic.partition_responses {
            buf.put_i32(p.index);
            buf.put_i16(p.error_code);
            buf.put_i64(p.base_offset);
        }
    }
    if version == 1 {
        buf.put_i32(response.throttle_time_ms);
    }
    buf.freeze()
}

/// Fetch v0–3: v1 added the throttle time in front; the records are message sets of format
/// v0 (Fetch v0–1) or v1 (v2–3).
fn fetch_response(broker: &Broker, response: &FetchResponse, version: i16) -> Bytes {
    let magic = if version >= 2 { 1 } else { 0 };
    let limit = broker.config.max_request_bytes as usize;
    let mut buf = BytesMut::new();
    if version >= 1 {
        buf.put_i32(response.throttle_time_ms);
    }
    put_len(&mut buf, response.responses.len());
    for topic in &response.responses {
        put_str(&mut buf, &topic.topic.0);
        put_len(&mut buf, topic.partitions.len());
        for p in &topic.partitions {
            buf.put_i32(p.partition_index);
            buf.put_i16(p.error_code);
            buf.put_i64(p.high_watermark);
            let set = p
                .records
                .as_ref()
                .map(|r| down_convert(r, magic, limit))
                .unwrap_or_default();
            put_len(&mut buf, set.len());
            buf.put_slice(&set);
        }
    }
    buf.freeze()
}

/// A reader of the old request layouts the codec cannot decode, with bounds checks.
struct Reader(Bytes);

impl Reader {
    fn need(&self, n: usize) -> anyhow::Result<()> {
        anyhow::ensure!(self.0.remaining() >= n, "truncated request");
        Ok(())
    }
    fn i32(&mut self) -> anyhow::Result<i32> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }
    fn i64(&mut self) -> anyhow::Result<i64> {
        self.need(8)?;
        Ok(self.0.get_i64())
    }
    fn nullable_string(&mut self) -> anyhow::Result<Option<StrBytes>> {
        self.need(2)?;
        let len = self.0.get_i16();
        if len < 0 {
            return Ok(None);
        }
        let len = len as usize;
        self.need(len)?;
        let bytes = self.0.split_to(len);
        Ok(Some(StrBytes::from_utf8(bytes)?))
    }
    fn string(&mut self) -> anyhow::Result<StrBytes> {
        self.nullable_string()?
            .ok_or_else(|| anyhow::anyhow!("null where a string is required"))
    }
    /// An array's elements; the count is checked against the bytes left (each element takes
    /// at least `min_size` of them), so a forged count allocates nothing.
    fn array<T>(
        &mut self,
        min_size: usize,
        mut element: impl FnMut(&mut Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        let count = self.i32()?;
        if count < 0 {
            return Ok(Vec::new());
        }
        let count = count as usize;
        anyhow::ensure!(
            count.saturating_mul(min_size) <= self.0.remaining(),
            "array of {count} elements in {} bytes",
            self.0.remaining()
        );
        (0..count).map(|_| element(self)).collect()
    }
    fn done(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.0.has_remaining(),
            "{} bytes after the request",
            self.0.remaining()
        );
        Ok(())
    }
}

/// ListOffsets v0: `replica_id, [topic, [partition, timestamp, max_num_offsets]]`. Returns the
/// v1 request and each partition's `max_num_offsets`.
fn list_offsets_v0(body: Bytes) -> anyhow::Result<(ListOffsetsRequest, Vec<i32>)> {
    let mut r = Reader(body);
    let replica_id = r.i32()?;
    let mut wanted = Vec::new();
    let topics = r.array(6, |r| {
        let name = r.string()?;
        let partitions = r.array(16, |r| {
            let index = r.i32()?;
            let timestamp = r.i64()?;
            wanted.push(r.i32()?);
            Ok(ListOffsetsPartition::default()
                .with_partition_index(index)
                .with_timestamp(timestamp))
        })?;
        Ok(ListOffsetsTopic::default()
            .with_name(TopicName(name))
            .with_partitions(partitions))
    })?;
    r.done()?;
    let req = ListOffsetsRequest::default()
        .with_replica_id(replica_id.into())
        .with_topics(topics);
    Ok((req, wanted))
}

/// ListOffsets v0 answers a list of offsets per partition (`old_style_offsets`): the one v1
/// finds for the timestamp, or none when the client asked for none. (Kafka's v0 listed segment
/// base offsets before the timestamp; clients use it with -1 and -2, where both agree.)
fn list_offsets_response(response: &ListOffsetsResponse, wanted: &[i32]) -> Bytes {
    let mut wanted = wanted.iter();
    let mut buf = BytesMut::new();
    put_len(&mut buf, response.topics.len());
    for topic in &response.topics {
        put_str(&mut buf, &topic.name.0);
        put_len(&mut buf, topic.partitions.len());
        for p in &topic.partitions {
            buf.put_i32(p.partition_index);
            buf.put_i16(p.error_code);
            let max = wanted.next().copied().unwrap_or(1);
            if p.error_code == 0 && p.offset >= 0 && max > 0 {
                buf.put_i32(1);
                buf.put_i64(p.offset);
            } else {
                buf.put_i32(0);
            }
        }
    }
    buf.freeze()
}

/// OffsetCommit v0 (`group, [topic, [partition, offset, metadata]]`) and v1 (with generation
/// and member id, and a commit timestamp per partition, which Kafka 3.9 only used for
/// expiry and this broker ignores). A v0 commit carries no generation: Kafka accepts it only
/// for a group without members, as the coordinator does for generation -1.
fn offset_commit_v0_v1(body: Bytes, version: i16) -> anyhow::Result<OffsetCommitRequest> {
    let mut r = Reader(body);
    let group = r.string()?;
    let (generation, member) = if version >= 1 {
        (r.i32()?, r.string()?)
    } else {
        (-1, StrBytes::default())
    };
    let topics = r.array(6, |r| {
        let name = r.string()?;
        let partitions = r.array(14, |r| {
            let index = r.i32()?;
            let offset = r.i64()?;
            if version >= 1 {
                r.i64()?; // commit timestamp
            }
            let metadata = r.nullable_string()?;
            Ok(OffsetCommitRequestPartition::default()
                .with_partition_index(index)
                .with_committed_offset(offset)
                .with_committed_metadata(metadata))
        })?;
        Ok(OffsetCommitRequestTopic::default()
            .with_name(TopicName(name))
            .with_partitions(partitions))
    })?;
    r.done()?;
    Ok(OffsetCommitRequest::default()
        .with_group_id(group.into())
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(member)
        .with_retention_time_ms(-1)
        .with_topics(topics))
}

/// CreateTopics v0 (`[name, error_code]`) and v1 (with the error message); v2 added the
/// throttle time.
fn create_topics_response(response: &CreateTopicsResponse, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    put_len(&mut buf, response.topics.len());
    for t in &response.topics {
        put_str(&mut buf, &t.name.0);
        buf.put_i16(t.error_code);
        if version >= 1 {
            put_nullable_str(&mut buf, t.error_message.as_deref());
        }
    }
    buf.freeze()
}

/// DeleteTopics v0: `[name, error_code]`; v1 added the throttle time.
fn delete_topics_response(response: &DeleteTopicsResponse) -> Bytes {
    let mut buf = BytesMut::new();
    put_len(&mut buf, response.responses.len());
    for t in &response.responses {
        put_str(&mut buf, t.name.as_ref().map_or("", |n| n.0.as_str()));
        buf.put_i16(t.error_code);
    }
    buf.freeze()
}

/// DescribeConfigs v0: configs carry `is_default` where v1 has a source and synonyms.
fn describe_configs_response(response: &DescribeConfigsResponse) -> Bytes {
    /// `DEFAULT_CONFIG` among the config sources.
    const DEFAULT_CONFIG: i8 = 5;
    let mut buf = BytesMut::new();
    buf.put_i32(response.throttle_time_ms);
    put_len(&mut buf, response.results.len());
    for r in &response.results {
        buf.put_i16(r.error_code);
        put_nullable_str(&mut buf, r.error_message.as_deref());
        buf.put_i8(r.resource_type);
        put_str(&mut buf, &r.resource_name);
        put_len(&mut buf, r.configs.len());
        for c in &r.configs {
            put_str(&mut buf, &c.name);
            put_nullable_str(&mut buf, c.value.as_deref());
            buf.put_i8(i8::from(c.read_only));
            buf.put_i8(i8::from(c.config_source == DEFAULT_CONFIG));
            buf.put_i8(i8::from(c.is_sensitive));
        }
    }
    buf.freeze()
}
