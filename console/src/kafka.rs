//! The console's access to the cluster, over the Kafka protocol only (`broker::client`), so
//! it works against datasync's broker and any Kafka alike. One idle connection is kept and
//! reused by the next page; pages loading at the same time open their own, and a connection
//! that failed is dropped rather than reused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use broker::client::{admin, ClientError, ClientSecurity, Cluster};
use parking_lot::Mutex;

use crate::error::{ConsoleError, Result};

pub struct Kafka {
    servers: String,
    timeout: Duration,
    security: ClientSecurity,
    idle: Mutex<Option<Cluster>>,
}

/// A connection lent to one page; given back with [`Lease::done`] after a success.
pub struct Lease<'a> {
    kafka: &'a Kafka,
    pub cluster: Cluster,
}

impl Lease<'_> {
    pub fn done(self) {
        *self.kafka.idle.lock() = Some(self.cluster);
    }
}

/// A partition with its leader and offsets.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub replicas: usize,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// Bytes on disk (DescribeLogDirs), where the cluster reports it.
    pub size: Option<i64>,
}

/// A topic with its partitions.
#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    pub internal: bool,
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// Bytes on disk, if known for every partition.
    pub fn size(&self) -> Option<i64> {
        self.partitions.iter().map(|p| p.size).sum()
    }

    /// Records in the topic (end minus start, summed).
    pub fn records(&self) -> i64 {
        self.partitions
            .iter()
            .filter_map(|p| Some(p.end? - p.start?))
            .sum()
    }
}

/// What the overview shows about the cluster.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub cluster_id: Option<String>,
    pub controller: i32,
    pub brokers: Vec<(i32, String)>,
    /// Topics (not internal) and internal topics.
    pub topics: usize,
    pub internal_topics: usize,
    pub partitions: usize,
}

impl Kafka {
    /// A PLAINTEXT client of `servers`.
    pub fn new(servers: &str, timeout: Duration) -> Self {
        Self::with_security(servers, timeout, ClientSecurity::default())
    }

    /// A client of `servers` that connects with `security` (TLS, SASL).
    pub fn with_security(servers: &str, timeout: Duration, security: ClientSecurity) -> Self {
        Kafka {
            servers: servers.to_string(),
            timeout,
            security,
            idle: Mutex::new(None),
        }
    }

    pub fn servers(&self) -> &str {
        &self.servers
    }

    /// A connection: the idle one, or a new one.
    pub async fn lease(&self) -> Result<Lease<'_>> {
        let idle = self.idle.lock().take();
        let cluster = match idle {
            Some(c) => c,
            None => Cluster::connect_with(&self.servers, self.timeout, self.security.clone())
                .await
                .map_err(|e| ConsoleError::KafkaUnavailable {
                    servers: self.servers.clone(),
                    reason: e.to_string(),
                })?,
        };
        Ok(Lease {
            kafka: self,
            cluster,
        })
    }

    /// Runs `op` on a leased connection, giving it back on success; a lost connection is
    /// reported as the cluster being unavailable.
    pub async fn with<T>(
        &self,
        op: impl AsyncFnOnce(&mut Cluster) -> std::result::Result<T, ClientError>,
    ) -> Result<T> {
        let mut lease = self.lease().await?;
        match tokio::time::timeout(self.timeout * 3, op(&mut lease.cluster)).await {
            Ok(Ok(v)) => {
                lease.done();
                Ok(v)
            }
            Ok(Err(e @ ClientError::Broker { .. })) => {
                lease.done();
                Err(ConsoleError::Kafka(e))
            }
            Ok(Err(e)) => Err(ConsoleError::KafkaUnavailable {
                servers: self.servers.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(ConsoleError::KafkaUnavailable {
                servers: self.servers.clone(),
                reason: format!("no answer within {:?}", self.timeout * 3),
            }),
        }
    }

    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        self.with(async |c| {
            let md = c.metadata(None, false).await?;
            let mut brokers: Vec<(i32, String)> = md
                .brokers
                .iter()
                .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
                .collect();
            brokers.sort();
            Ok(ClusterInfo {
                cluster_id: md.cluster_id.as_ref().map(|s| s.to_string()),
                controller: md.controller_id.0,
                brokers,
                topics: md.topics.iter().filter(|t| !t.is_internal).count(),
                internal_topics: md.topics.iter().filter(|t| t.is_internal).count(),
                partitions: md.topics.iter().map(|t| t.partitions.len()).sum(),
            })
        })
        .await
    }

    /// Every topic (or only `only`) with partitions and their start and end offsets, and their
    /// sizes on disk when `with_sizes` (one DescribeLogDirs per broker more).
    pub async fn topics(&self, only: Option<&str>, with_sizes: bool) -> Result<Vec<TopicInfo>> {
        let wanted = only.map(|t| vec![t.to_string()]);
        self.with(async |c| {
            let md = c.metadata(wanted.as_deref(), false).await?;
            let mut topics = Vec::new();
            let mut leaders = BTreeMap::new();
            for t in &md.topics {
                let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                if t.error_code != 0 {
                    broker::client::check(t.error_code, || format!("topic {name:?}"), None)?;
                }
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .iter()
                    .map(|p| {
                        leaders.insert((name.clone(), p.partition_index), p.leader_id.0);
                        PartitionInfo {
                            partition: p.partition_index,
                            leader: p.leader_id.0,
                            replicas: p.replica_nodes.len(),
                            start: None,
                            end: None,
                            size: None,
                        }
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                topics.push(TopicInfo {
                    name,
                    internal: t.is_internal,
                    partitions,
                });
            }
            let all: Vec<(String, i32)> = leaders.keys().cloned().collect();
            let starts = c.list_offsets(&leaders, &all, -2).await?;
            let ends = c.list_offsets(&leaders, &all, -1).await?;
            let sizes = if with_sizes {
                admin::partition_sizes(c).await?
            } else {
                BTreeMap::new()
            };
            for t in &mut topics {
                for p in &mut t.partitions {
                    let key = (t.name.clone(), p.partition);
                    p.start = starts.get(&key).and_then(|r| r.as_ref().ok()).copied();
                    p.end = ends.get(&key).and_then(|r| r.as_ref().ok()).copied();
                    p.size = sizes.get(&key).copied();
                }
            }
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(topics)
        })
        .await
    }

    pub async fn topic(&self, name: &str) -> Result<TopicInfo> {
        self.topics(Some(name), true)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ConsoleError::NotFound {
                what: "topic",
                name: name.to_string(),
            })
    }

    pub async fn topic_configs(&self, name: &str) -> Result<Vec<admin::ConfigEntry>> {
        let topics = [name.to_string()];
        let mut all = self
            .with(async |c| admin::topic_configs(c, &topics).await)
            .await?;
        Ok(all.remove(name).unwrap_or_default())
    }

    pub async fn groups(&self) -> Result<Vec<admin::GroupDescription>> {
        self.with(async |c| {
            let mut out = Vec::new();
            for g in admin::list_groups(c).await? {
                if let Some(d) = admin::describe_group(c, &g.group_id).await? {
                    out.push(d);
                }
            }
            Ok(out)
        })
        .await
    }

    pub async fn group(&self, id: &str) -> Result<admin::GroupDescription> {
        self.with(async |c| admin::describe_group(c, id).await)
            .await?
            .ok_or_else(|| ConsoleError::NotFound {
                what: "consumer group",
                name: id.to_string(),
            })
    }

    /// The offsets a reset moves `group` to: for every partition it has committed, the
    /// earliest, latest, first at a timestamp, or a given offset (clamped to the log).
    pub async fn reset_targets(
        &self,
        group: &str,
        to: ResetTo,
    ) -> Result<BTreeMap<(String, i32), i64>> {
        self.with(async |c| {
            let committed = admin::committed_offsets(c, group).await?;
            let topics: Vec<String> = committed
                .keys()
                .map(|(t, _)| t.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if topics.is_empty() {
                return Ok(BTreeMap::new());
            }
            let leaders = c.partition_leaders(&topics, false).await?;
            let wanted: Vec<(String, i32)> = committed.keys().cloned().collect();
            let starts = c.list_offsets(&leaders, &wanted, -2).await?;
            let ends = c.list_offsets(&leaders, &wanted, -1).await?;
            let stamped = match to {
                ResetTo::Timestamp(ts) => Some(c.list_offsets(&leaders, &wanted, ts).await?),
                _ => None,
            };
            let mut out = BTreeMap::new();
            for tp in wanted {
                let (Some(Ok(start)), Some(Ok(end))) = (starts.get(&tp), ends.get(&tp)) else {
                    continue;
                };
                let target = match to {
                    ResetTo::Earliest => *start,
                    ResetTo::Latest => *end,
                    ResetTo::Offset(o) => o,
                    ResetTo::Timestamp(_) => stamped
                        .as_ref()
                        .and_then(|s| s.get(&tp))
                        .and_then(|r| r.as_ref().ok())
                        .copied()
                        .filter(|o| *o >= 0)
                        .unwrap_or(*end),
                };
                out.insert(tp, target.clamp(*start, *end));
            }
            Ok(out)
        })
        .await
    }
}

/// Where a group's offsets are reset to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    Timestamp(i64),
    Offset(i64),
}
