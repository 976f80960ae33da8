//! Bootstrap and request routing: the bootstrap connection answers cluster-wide requests
//! (Metadata, CreateTopics, ...), while partition requests go to the partition's leader and group
//! requests to the group's coordinator, each over a connection opened on first use.
//!
//! On a single-node broker every node id resolves to the bootstrap connection, so one TCP
//! connection serves the whole command even when the advertised address is not reachable
//! from where the CLI runs (e.g. a container-internal host name).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{check, ClientError, ClientSecurity, Connection};

/// A connection to a cluster through its bootstrap servers.
pub struct Cluster {
    timeout: Duration,
    /// TLS and SASL for every connection, the bootstrap one and those to each broker.
    security: ClientSecurity,
    bootstrap: Connection,
    /// `host:port` of every broker seen in Metadata or FindCoordinator, by node id.
    brokers: HashMap<i32, String>,
    /// The node id of the broker the bootstrap connection reached, once known.
    bootstrap_node: Option<i32>,
    conns: HashMap<i32, Connection>,
}

impl Cluster {
    /// Connects to the first reachable server of the comma-separated `servers`.
    pub async fn connect(servers: &str, timeout: Duration) -> Result<Self, ClientError> {
        Self::connect_with(servers, timeout, ClientSecurity::default()).await
    }

    /// [`Cluster::connect`] over TLS and/or with a SASL login, as `security` says: build it
    /// from librdkafka properties with [`ClientSecurity::from_properties`].
    pub async fn connect_with(
        servers: &str,
        timeout: Duration,
        security: ClientSecurity,
    ) -> Result<Self, ClientError> {
        let mut failures = Vec::new();
        for addr in servers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match Connection::connect_with(addr, timeout, &security).await {
                Ok(bootstrap) => {
                    return Ok(Cluster {
                        timeout,
                        security,
                        bootstrap,
                        brokers: HashMap::new(),
                        bootstrap_node: None,
                        conns: HashMap::new(),
                    })
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            failures.push(format!("no servers in {servers:?}"));
        }
        Err(ClientError::NoBootstrap(failures.join("; ")))
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The bootstrap connection, for requests any broker can answer.
    pub fn any(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// Node ids of every broker in the last Metadata response.
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Metadata for `topics` (all topics if `None`, brokers only if empty); also learns the
    /// brokers' addresses. `auto_create` asks the broker to create missing topics (v4+).
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<MetadataResponse, ClientError> {
        let version = self.bootstrap.version(ApiKey::Metadata)?;
        let mut req = MetadataRequest::default().with_topics(topics.map(|names| {
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                })
                .collect()
        }));
        if version >= 4 {
            req.allow_auto_topic_creation = auto_create;
        }
        let resp = self.bootstrap.call(req).await?;
        for b in &resp.brokers {
            self.brokers
                .insert(b.node_id.0, host_port(b.host.as_str(), b.port));
        }
        Ok(resp)
    }

    /// The connection to broker `node_id` (the bootstrap connection if that is the same broker).
    pub async fn node(&mut self, node_id: i32) -> Result<&mut Connection, ClientError> {
        if !self.brokers.contains_key(&node_id) {
            self.metadata(Some(&[]), false).await?;
        }
        if self.bootstrap_node.is_none() {
            self.bootstrap_node = self.identify_bootstrap().await;
        }
        if self.bootstrap_node == Some(node_id) {
            return Ok(&mut self.bootstrap);
        }
        if !self.conns.contains_key(&node_id) {
            let addr = self.brokers.get(&node_id).cloned().ok_or_else(|| {
                ClientError::Other(format!("broker {node_id} is not in the cluster metadata"))
            })?;
            let conn = Connection::connect_with(&addr, self.timeout, &self.security).await?;
            self.conns.insert(node_id, conn);
        }
        self.conns
            .get_mut(&node_id)
            .ok_or_else(|| ClientError::Other(format!("no connection to broker {node_id}")))
    }

    /// The connection to the coordinator of consumer group `group`, retrying while the
    /// coordinator is loading or not yet elected (up to the request timeout).
    pub async fn coordinator(&mut self, group: &str) -> Result<&mut Connection, ClientError> {
        self.coordinator_of(group, 0).await
    }

    /// The connection to the coordinator of `key`: a consumer group (`key_type` 0) or a
    /// transactional id (1), retrying as [`Cluster::coordinator`] does.
    pub async fn coordinator_of(
        &mut self,
        group: &str,
        key_type: i8,
    ) -> Result<&mut Connection, ClientError> {
        let version = self.bootstrap.version(ApiKey::FindCoordinator)?;
        let deadline = Instant::now() + self.timeout;
        let key = StrBytes::from_string(group.to_string());
        loop {
            let req = if version >= 4 {
                FindCoordinatorRequest::default().with_coordinator_keys(vec![key.clone()])
            } else {
                FindCoordinatorRequest::default().with_key(key.clone())
            }
            .with_key_type(key_type);
            let resp = self.bootstrap.call(req).await?;
            let (code, message, node_id, host, port) = if version >= 4 {
                let Some(c) = resp.coordinators.into_iter().next() else {
                    return Err(ClientError::Malformed {
                        addr: self.bootstrap.addr().to_string(),
                        detail: "FindCoordinator answered no coordinator".into(),
                    });
                };
                (c.error_code, c.error_message, c.node_id, c.host, c.port)
            } else {
                (
                    resp.error_code,
                    resp.error_message,
                    resp.node_id,
                    resp.host,
                    resp.port,
                )
            };
            let retry = matches!(
                ResponseError::try_from_code(code),
                Some(
                    ResponseError::CoordinatorNotAvailable
                        | ResponseError::CoordinatorLoadInProgress
                )
            );
            if retry && Instant::now() + Duration::from_millis(200) < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            check(
                code,
                || format!("finding the coordinator of {group:?}"),
                message.as_deref(),
            )?;
            self.brokers
                .insert(node_id.0, host_port(host.as_str(), port));
            return self.node(node_id.0).await;
        }
    }

    /// The leader of every partition of `topics`, retrying (up to the request timeout) while a
    /// topic reports a retriable error or a partition has no leader, as right after creation.
    pub async fn partition_leaders(
        &mut self,
        topics: &[String],
        auto_create: bool,
    ) -> Result<BTreeMap<(String, i32), i32>, ClientError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let md = self.metadata(Some(topics), auto_create).await?;
            let mut leaders = BTreeMap::new();
            let mut problem = None;
            for t in &md.topics {
                let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                if t.error_code != 0 {
                    problem = Some(ClientError::broker(
                        format!("topic {name:?}"),
                        t.error_code,
                        None,
                    ));
                    continue;
                }
                for p in &t.partitions {
                    if p.leader_id.0 < 0 {
                        problem = Some(ClientError::broker(
                            format!("topic {name:?} partition {}", p.partition_index),
                            ResponseError::LeaderNotAvailable.code(),
                            None,
                        ));
                    }
                    leaders.insert((name.clone(), p.partition_index), p.leader_id.0);
                }
            }
            match problem {
                None => return Ok(leaders),
                Some(e)
                    if e.is_retriable()
                        && Instant::now() + Duration::from_millis(200) < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(e) => return Err(e),
            }
        }
    }

    /// ListOffsets for each of `wanted` at `timestamp` (-1 latest, -2 earliest), sent to each
    /// partition's leader per `leaders`. The outer error is a failed request; the inner ones are
    /// per-partition errors (including partitions missing from `leaders`).
    pub async fn list_offsets(
        &mut self,
        leaders: &BTreeMap<(String, i32), i32>,
        wanted: &[(String, i32)],
        timestamp: i64,
    ) -> Result<HashMap<(String, i32), Result<i64, ClientError>>, ClientError> {
        let mut out = HashMap::new();
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (topic, partition) in wanted {
            match leaders.get(&(topic.clone(), *partition)) {
                Some(&leader) if leader >= 0 => by_leader
                    .entry(leader)
                    .or_default()
                    .entry(topic.clone())
                    .or_default()
                    .push(*partition),
                _ => {
                    out.insert(
                        (topic.clone(), *partition),
                        Err(ClientError::broker(
                            format!("topic {topic:?} partition {partition}"),
                            ResponseError::UnknownTopicOrPartition.code(),
                            None,
                        )),
                    );
                }
            }
        }
        for (leader, topics) in by_leader {
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, partitions)| {
                            ListOffsetsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(name)))
                                .with_partitions(
                                    partitions
                                        .into_iter()
                                        .map(|p| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(p)
                                                .with_timestamp(timestamp)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let resp = self.node(leader).await?.call(req).await?;
            for t in resp.topics {
                let topic = t.name.0.to_string();
                for p in t.partitions {
                    let result = check(
                        p.error_code,
                        || format!("offsets of topic {topic:?} partition {}", p.partition_index),
                        None,
                    )
                    .map(|()| p.offset);
                    out.insert((topic.clone(), p.partition_index), result);
                }
            }
        }
        Ok(out)
    }

    /// Which node the bootstrap connection reached: the only broker of a single-node cluster,
    /// else the one whose advertised address resolves to the bootstrap peer address.
    async fn identify_bootstrap(&self) -> Option<i32> {
        if self.brokers.len() == 1 {
            return self.brokers.keys().next().copied();
        }
        let peer = self.bootstrap.peer();
        for (&id, addr) in &self.brokers {
            if let Ok(mut addrs) = tokio::net::lookup_host(addr.as_str()).await {
                if addrs.any(|a| a == peer) {
                    return Some(id);
                }
            }
        }
        None
    }
}

/// `host:port`, bracketing IPv6 literals.
fn host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
