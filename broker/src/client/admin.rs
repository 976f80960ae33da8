//! Admin operations over the wire protocol, returning data rather than printing it: the
//! `broker` CLI prints them, the web console renders them. Each works against any
//! Kafka-compatible cluster (topic admin goes to the controller, group requests to the group's
//! coordinator), as the Java admin client does.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{check, consumer_protocol, ClientError, Cluster, Connection};

/// `resource_type` of a topic in the configs APIs.
const TOPIC_RESOURCE: i8 = 2;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// The connection that should receive topic admin requests: the controller Metadata names
/// (ZooKeeper-era Kafka requires it; KRaft brokers forward), else the bootstrap broker.
pub async fn controller(cluster: &mut Cluster) -> Result<&mut Connection, ClientError> {
    let md = cluster.metadata(Some(&[]), false).await?;
    let id = md.controller_id.0;
    if id >= 0 && md.brokers.iter().any(|b| b.node_id.0 == id) {
        cluster.node(id).await
    } else {
        Ok(cluster.any())
    }
}

/// Creates `topic`; `None` partitions or replication factor take the broker's default.
pub async fn create_topic(
    cluster: &mut Cluster,
    topic: &str,
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    configs: &[(String, String)],
) -> Result<(), ClientError> {
    let timeout_ms = i32::try_from(cluster.timeout().as_millis()).unwrap_or(i32::MAX);
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .collect();
    let conn = controller(cluster).await?;
    // -1 ("broker default") needs CreateTopics v4+.
    let default = if conn.version(ApiKey::CreateTopics)? >= 4 {
        -1
    } else {
        1
    };
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(partitions.unwrap_or(default))
            .with_replication_factor(replication_factor.unwrap_or(default as i16))
            .with_configs(configs)])
        .with_timeout_ms(timeout_ms);
    let resp = conn.call(req).await?;
    for t in &resp.topics {
        check(
            t.error_code,
            || format!("creating topic {:?}", t.name.0.as_str()),
            t.error_message.as_deref(),
        )?;
    }
    Ok(())
}

/// Deletes `topic`.
pub async fn delete_topic(cluster: &mut Cluster, topic: &str) -> Result<(), ClientError> {
    let timeout_ms = i32::try_from(cluster.timeout().as_millis()).unwrap_or(i32::MAX);
    let conn = controller(cluster).await?;
    let mut req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
    if conn.version(ApiKey::DeleteTopics)? >= 6 {
        req.topics = vec![DeleteTopicState::default().with_name(Some(topic_name(topic)))];
    } else {
        req.topic_names = vec![topic_name(topic)];
    }
    let resp = conn.call(req).await?;
    for r in &resp.responses {
        check(
            r.error_code,
            || format!("deleting topic {topic:?}"),
            r.error_message.as_deref(),
        )?;
    }
    Ok(())
}

/// One config of a topic as DescribeConfigs gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for a sensitive or unset value.
    pub value: Option<String>,
    /// Set on the topic itself (`DYNAMIC_TOPIC_CONFIG`), not inherited from a default.
    pub is_override: bool,
    pub is_sensitive: bool,
}

/// Every config of each of `topics`, by topic.
pub async fn topic_configs(
    cluster: &mut Cluster,
    topics: &[String],
) -> Result<BTreeMap<String, Vec<ConfigEntry>>, ClientError> {
    /// `config_source` of a config set on the topic.
    const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    let req = DescribeConfigsRequest::default().with_resources(
        topics
            .iter()
            .map(|n| {
                DescribeConfigsResource::default()
                    .with_resource_type(TOPIC_RESOURCE)
                    .with_resource_name(StrBytes::from_string(n.clone()))
                    .with_configuration_keys(None)
            })
            .collect(),
    );
    let resp = cluster.any().call(req).await?;
    let mut out = BTreeMap::new();
    for r in resp.results {
        check(
            r.error_code,
            || format!("describing configs of topic {:?}", r.resource_name.as_str()),
            r.error_message.as_deref(),
        )?;
        let entries = r
            .configs
            .iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: if c.is_sensitive {
                    None
                } else {
                    c.value.as_ref().map(|v| v.to_string())
                },
                is_override: c.config_source == DYNAMIC_TOPIC_CONFIG,
                is_sensitive: c.is_sensitive,
            })
            .collect();
        out.insert(r.resource_name.to_string(), entries);
    }
    Ok(out)
}

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    /// Empty where the broker answers ListGroups below v4.
    pub state: String,
}

/// The consumer groups of every broker (each lists only the groups it coordinates): groups of
/// protocol type `consumer` and groups with no protocol yet, as the Java admin client lists.
pub async fn list_groups(cluster: &mut Cluster) -> Result<Vec<GroupListing>, ClientError> {
    cluster.metadata(Some(&[]), false).await?;
    let mut groups = BTreeMap::new();
    for id in cluster.broker_ids() {
        let resp = cluster
            .node(id)
            .await?
            .call(ListGroupsRequest::default())
            .await?;
        check(
            resp.error_code,
            || format!("listing groups on broker {id}"),
            None,
        )?;
        for g in resp.groups {
            if matches!(g.protocol_type.as_str(), "consumer" | "") {
                groups.insert(
                    g.group_id.0.to_string(),
                    GroupListing {
                        group_id: g.group_id.0.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                        state: g.group_state.to_string(),
                    },
                );
            }
        }
    }
    Ok(groups.into_values().collect())
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    /// Assigned partitions (consumer protocol only).
    pub partitions: Vec<(String, i32)>,
}

/// One partition a group has committed or is assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    /// The log-end offset (high watermark); unknown for a deleted topic.
    pub end: Option<i64>,
    /// Index into [`GroupDescription::members`] of the owner.
    pub owner: Option<usize>,
}

impl PartitionLag {
    /// What the group has not read: end minus committed, never negative.
    pub fn lag(&self) -> Option<i64> {
        match (self.committed, self.end) {
            (Some(c), Some(e)) => Some(e.saturating_sub(c).max(0)),
            _ => None,
        }
    }
}

/// A group with its members and per-partition lag (kafka-consumer-groups.sh `--describe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub members: Vec<GroupMember>,
    /// By topic and partition.
    pub partitions: Vec<PartitionLag>,
    /// Assignments that could not be read, as `(member id, why)`.
    pub unreadable: Vec<(String, String)>,
}

impl GroupDescription {
    /// Lag summed over every partition whose lag is known.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(PartitionLag::lag).sum()
    }
}

/// Describes `group`; `None` when it does not exist (state `Dead`).
pub async fn describe_group(
    cluster: &mut Cluster,
    group: &str,
) -> Result<Option<GroupDescription>, ClientError> {
    let group_id = GroupId(StrBytes::from_string(group.to_string()));
    let coordinator = cluster.coordinator(group).await?;
    let resp = coordinator
        .call(DescribeGroupsRequest::default().with_groups(vec![group_id.clone()]))
        .await?;
    let Some(described) = resp.groups.into_iter().next() else {
        return Err(ClientError::Other(format!(
            "DescribeGroups answered nothing for group {group:?}"
        )));
    };
    check(
        described.error_code,
        || format!("describing group {group:?}"),
        described.error_message.as_deref(),
    )?;
    if described.group_state.as_str() == "Dead" {
        return Ok(None);
    }

    let mut members = Vec::new();
    let mut unreadable = Vec::new();
    let mut owners: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for m in &described.members {
        let partitions: Vec<(String, i32)> = if described.protocol_type.as_str() == "consumer" {
            match consumer_protocol::assigned_partitions(&m.member_assignment) {
                Ok(assigned) => assigned
                    .into_iter()
                    .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
                    .collect(),
                Err(e) => {
                    unreadable.push((m.member_id.to_string(), e));
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        for tp in &partitions {
            owners.insert(tp.clone(), members.len());
        }
        members.push(GroupMember {
            member_id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            partitions,
        });
    }

    let committed = committed_offsets(cluster, group).await?;
    let wanted: BTreeSet<(String, i32)> = committed
        .keys()
        .cloned()
        .chain(owners.keys().cloned())
        .collect();
    let end_offsets = end_offsets(cluster, &wanted).await?;
    let partitions = wanted
        .into_iter()
        .map(|tp| PartitionLag {
            committed: committed.get(&tp).copied(),
            end: end_offsets.get(&tp).copied(),
            owner: owners.get(&tp).copied(),
            topic: tp.0,
            partition: tp.1,
        })
        .collect();
    Ok(Some(GroupDescription {
        group_id: group.to_string(),
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        members,
        partitions,
        unreadable,
    }))
}

/// The log-end offsets of `wanted`; partitions of deleted topics (no leader) are left out.
pub async fn end_offsets(
    cluster: &mut Cluster,
    wanted: &BTreeSet<(String, i32)>,
) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
    let topics: Vec<String> = wanted
        .iter()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = BTreeMap::new();
    if topics.is_empty() {
        return Ok(out);
    }
    let md = cluster.metadata(Some(&topics), false).await?;
    let mut leaders = BTreeMap::new();
    for t in md.topics.iter().filter(|t| t.error_code == 0) {
        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        for p in &t.partitions {
            leaders.insert((name.clone(), p.partition_index), p.leader_id.0);
        }
    }
    let wanted: Vec<(String, i32)> = wanted.iter().cloned().collect();
    for (tp, result) in cluster.list_offsets(&leaders, &wanted, -1).await? {
        if let Ok(offset) = result {
            out.insert(tp, offset);
        }
    }
    Ok(out)
}

/// The group's committed offsets of all topics (OffsetFetch with topics = null). Partitions
/// whose offset the coordinator reports an error for are left out.
pub async fn committed_offsets(
    cluster: &mut Cluster,
    group: &str,
) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
    let group_id = GroupId(StrBytes::from_string(group.to_string()));
    let coordinator = cluster.coordinator(group).await?;
    let version = coordinator.version(ApiKey::OffsetFetch)?;
    let context = || format!("fetching the committed offsets of group {group:?}");
    // (topic, partition, committed offset, error code) of every partition answered.
    let mut answered: Vec<(String, i32, i64, i16)> = Vec::new();
    if version >= 8 {
        let req =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id)
                .with_topics(None)]);
        let resp = coordinator.call(req).await?;
        for g in resp.groups {
            check(g.error_code, context, None)?;
            answered.extend(g.topics.into_iter().flat_map(|t| {
                let name = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| {
                    (
                        name.clone(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )
                })
            }));
        }
    } else {
        let req = OffsetFetchRequest::default()
            .with_group_id(group_id)
            .with_topics(None);
        let resp = coordinator.call(req).await?;
        check(resp.error_code, context, None)?;
        answered.extend(resp.topics.into_iter().flat_map(|t| {
            let name = t.name.0.to_string();
            t.partitions.into_iter().map(move |p| {
                (
                    name.clone(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )
            })
        }));
    }
    let out = answered
        .into_iter()
        .filter(|&(_, _, offset, code)| code == 0 && offset >= 0)
        .map(|(topic, partition, offset, _)| ((topic, partition), offset))
        .collect();
    Ok(out)
}

/// Commits `offsets` for `group` as a standalone client (no generation), which the coordinator
/// accepts only while the group has no members, as kafka-consumer-groups.sh `--reset-offsets`.
pub async fn commit_offsets(
    cluster: &mut Cluster,
    group: &str,
    offsets: &BTreeMap<(String, i32), i64>,
) -> Result<(), ClientError> {
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        by_topic.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset),
        );
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_retention_time_ms(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let resp = cluster.coordinator(group).await?.call(req).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            check(
                p.error_code,
                || {
                    format!(
                        "committing the offset of {}-{} for group {group:?}",
                        t.name.0.as_str(),
                        p.partition_index
                    )
                },
                None,
            )?;
        }
    }
    Ok(())
}

/// Where a read of one partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    Offset(i64),
    /// The first record at or after this timestamp (ms).
    Timestamp(i64),
    Earliest,
    /// The last `n` records.
    Latest(i64),
}

/// One page of a partition: up to `max_records` records from `from`, in one Fetch of at most
/// `max_bytes` (so a page never costs more than the page shows), with the partition's log
/// start and end offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPage {
    pub start: i64,
    pub end: i64,
    /// Where this page starts (`from` resolved and clamped to the log).
    pub first: i64,
    pub records: Vec<super::records::ConsumedRecord>,
}

pub async fn read_partition(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    from: ReadFrom,
    max_records: usize,
    max_bytes: i32,
) -> Result<PartitionPage, ClientError> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::FetchRequest;

    let topics = [topic.to_string()];
    let leaders = cluster.partition_leaders(&topics, false).await?;
    let Some(&leader) = leaders.get(&(topic.to_string(), partition)) else {
        return Err(ClientError::broker(
            format!("topic {topic:?} partition {partition}"),
            kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code(),
            None,
        ));
    };
    let tp = [(topic.to_string(), partition)];
    let offset_at = |m: std::collections::HashMap<(String, i32), Result<i64, ClientError>>| {
        m.into_values()
            .next()
            .unwrap_or_else(|| Err(ClientError::Other("no offset answered".into())))
    };
    let start = offset_at(cluster.list_offsets(&leaders, &tp, -2).await?)?;
    let end = offset_at(cluster.list_offsets(&leaders, &tp, -1).await?)?;
    let first = match from {
        ReadFrom::Offset(o) => o,
        ReadFrom::Earliest => start,
        ReadFrom::Latest(n) => end.saturating_sub(n.max(0)),
        ReadFrom::Timestamp(ts) => {
            match offset_at(cluster.list_offsets(&leaders, &tp, ts).await?) {
                Ok(o) if o >= 0 => o,
                _ => end,
            }
        }
    }
    .clamp(start, end);
    let mut page = PartitionPage {
        start,
        end,
        first,
        records: Vec::new(),
    };
    if first >= end || max_records == 0 {
        return Ok(page);
    }
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(first)
                .with_partition_max_bytes(max_bytes)])]);
    let resp = cluster.node(leader).await?.call(req).await?;
    check(
        resp.error_code,
        || format!("fetching {topic}-{partition}"),
        None,
    )?;
    for t in resp.responses {
        for p in t.partitions {
            check(
                p.error_code,
                || format!("fetching {topic}-{partition} at {first}"),
                None,
            )?;
            if let Some(bytes) = p.records {
                let (records, _) = super::records::decode_fetched(&bytes, first)
                    .map_err(|e| ClientError::Other(format!("{topic}-{partition}: {e}")))?;
                page.records.extend(records);
            }
        }
    }
    page.records.truncate(max_records);
    Ok(page)
}

/// Produces one record (acks=all) to `partition`, or by key hash (murmur2, as the Java client
/// and librdkafka) when `None`; returns the partition and offset.
pub async fn produce_record(
    cluster: &mut Cluster,
    topic: &str,
    partition: Option<i32>,
    record: super::records::OutRecord,
) -> Result<(i32, i64), ClientError> {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::ProduceRequest;

    let topics = [topic.to_string()];
    let leaders = cluster.partition_leaders(&topics, false).await?;
    let count = i32::try_from(leaders.len()).unwrap_or(i32::MAX);
    let partition = match (partition, &record.0) {
        (Some(p), _) => p,
        (None, Some(key)) => super::records::partition_for_key(key, count.max(1)),
        (None, None) => {
            i32::try_from(crate::now_ms().rem_euclid(i64::from(count.max(1)))).unwrap_or(0)
        }
    };
    let Some(&leader) = leaders.get(&(topic.to_string(), partition)) else {
        return Err(ClientError::broker(
            format!("topic {topic:?} partition {partition}"),
            kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code(),
            None,
        ));
    };
    let batch = super::records::encode_records(&[record], crate::now_ms())?;
    let timeout_ms = i32::try_from(cluster.timeout().as_millis()).unwrap_or(i32::MAX);
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let resp = cluster.node(leader).await?.call(req).await?;
    let answer = resp
        .responses
        .into_iter()
        .flat_map(|t| t.partition_responses)
        .next()
        .ok_or_else(|| {
            ClientError::Other(format!(
                "the produce answer names no partition of {topic:?}"
            ))
        })?;
    check(
        answer.error_code,
        || format!("producing to {topic}-{partition}"),
        answer.error_message.as_deref(),
    )?;
    Ok((partition, answer.base_offset))
}

/// The size on disk of every partition replica, summed over each broker's log directories
/// (DescribeLogDirs to every broker). Empty when the brokers do not implement the API.
pub async fn partition_sizes(
    cluster: &mut Cluster,
) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
    use kafka_protocol::messages::DescribeLogDirsRequest;

    cluster.metadata(Some(&[]), false).await?;
    let mut out: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for id in cluster.broker_ids() {
        let conn = cluster.node(id).await?;
        if conn.version(ApiKey::DescribeLogDirs).is_err() {
            continue;
        }
        let resp = conn
            .call(DescribeLogDirsRequest::default().with_topics(None))
            .await?;
        check(
            resp.error_code,
            || format!("describing the log dirs of broker {id}"),
            None,
        )?;
        for dir in resp.results.iter().filter(|d| d.error_code == 0) {
            for t in &dir.topics {
                for p in &t.partitions {
                    *out.entry((t.name.0.to_string(), p.partition_index))
                        .or_default() += p.partition_size;
                }
            }
        }
    }
    Ok(out)
}

/// One SCRAM credential of a user as DescribeUserScramCredentials gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512` (or `UNKNOWN(n)`).
    pub mechanism: String,
    pub iterations: i32,
}

fn scram_mechanism_name(t: i8) -> String {
    crate::security::scram::Mechanism::from_kafka_type(t)
        .map(|m| m.name().to_string())
        .unwrap_or_else(|| format!("UNKNOWN({t})"))
}

/// The SCRAM credentials of `users` (every user when `None`), by user.
pub async fn describe_user_scram_credentials(
    cluster: &mut Cluster,
    users: Option<&[String]>,
) -> Result<BTreeMap<String, Vec<ScramCredentialInfo>>, ClientError> {
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    let req = kafka_protocol::messages::DescribeUserScramCredentialsRequest::default().with_users(
        users.map(|users| {
            users
                .iter()
                .map(|u| UserName::default().with_name(StrBytes::from_string(u.clone())))
                .collect()
        }),
    );
    let resp = controller(cluster).await?.call(req).await?;
    check(
        resp.error_code,
        || "describing SCRAM credentials".to_string(),
        resp.error_message.as_deref(),
    )?;
    let mut out = BTreeMap::new();
    for r in resp.results {
        let user = r.user.to_string();
        check(
            r.error_code,
            || format!("describing the SCRAM credentials of {user:?}"),
            r.error_message.as_deref(),
        )?;
        out.insert(
            user,
            r.credential_infos
                .iter()
                .map(|i| ScramCredentialInfo {
                    mechanism: scram_mechanism_name(i.mechanism),
                    iterations: i.iterations,
                })
                .collect(),
        );
    }
    Ok(out)
}

/// Sets `user`'s credential for `mechanism` to `password`: salted here with a random salt, as
/// Kafka's admin client does, so only SaltedPassword travels.
pub async fn set_user_scram_credential(
    cluster: &mut Cluster,
    user: &str,
    mechanism: crate::security::scram::Mechanism,
    iterations: u32,
    password: &[u8],
) -> Result<(), ClientError> {
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
    let mut salt = uuid::Uuid::new_v4().as_bytes().to_vec();
    salt.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let salted = mechanism.salted_password(password, &salt, iterations);
    let req = kafka_protocol::messages::AlterUserScramCredentialsRequest::default()
        .with_upsertions(vec![ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(user.to_string()))
            .with_mechanism(mechanism.kafka_type())
            .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
            .with_salt(salt.into())
            .with_salted_password(salted.into())]);
    alter_scram(cluster, req, user).await
}

/// Deletes `user`'s credential for `mechanism`.
pub async fn delete_user_scram_credential(
    cluster: &mut Cluster,
    user: &str,
    mechanism: crate::security::scram::Mechanism,
) -> Result<(), ClientError> {
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialDeletion;
    let req =
        kafka_protocol::messages::AlterUserScramCredentialsRequest::default().with_deletions(vec![
            ScramCredentialDeletion::default()
                .with_name(StrBytes::from_string(user.to_string()))
                .with_mechanism(mechanism.kafka_type()),
        ]);
    alter_scram(cluster, req, user).await
}

async fn alter_scram(
    cluster: &mut Cluster,
    req: kafka_protocol::messages::AlterUserScramCredentialsRequest,
    user: &str,
) -> Result<(), ClientError> {
    let resp = controller(cluster).await?.call(req).await?;
    for r in &resp.results {
        check(
            r.error_code,
            || format!("altering the SCRAM credentials of {user:?}"),
            r.error_message.as_deref(),
        )?;
    }
    Ok(())
}
