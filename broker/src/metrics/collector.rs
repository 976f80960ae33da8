//! What the broker *is* at scrape time, read from its state: partitions and their offsets and
//! sizes, consumer-group offsets and lag, groups by state, connections. Computing lag here (the
//! high watermark minus the group's committed offset, as kafka_exporter does) means Prometheus
//! needs no extra exporter and the figures are never older than the scrape.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::broker::Broker;
use crate::server::Limits;

/// Reads the broker's state on each scrape.
pub struct StateCollector {
    broker: Arc<Broker>,
    limits: Arc<Limits>,
}

impl std::fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateCollector")
    }
}

impl StateCollector {
    pub fn new(broker: Arc<Broker>, limits: Arc<Limits>) -> Self {
        StateCollector { broker, limits }
    }
}

/// One partition as read at scrape time.
struct PartitionState {
    topic: String,
    partition: String,
    size: u64,
    log_start: i64,
    log_end: i64,
    high_watermark: i64,
}

/// A gauge family: one descriptor, then one sample per label set.
fn gauges<'a, L>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error>
where
    L: prometheus_client::encoding::EncodeLabelSet + 'a,
{
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge without labels.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let broker = &self.broker;
        let mut partitions = Vec::new();
        let mut per_topic: Vec<(String, i64)> = Vec::new();
        let mut high_watermarks: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for topic in broker.topics.all() {
            per_topic.push((topic.name.clone(), i64::from(topic.partition_count())));
            for p in topic.partitions() {
                let hw = p.high_watermark();
                high_watermarks.insert((topic.name.clone(), p.index), hw);
                partitions.push(PartitionState {
                    topic: topic.name.clone(),
                    partition: p.index.to_string(),
                    size: p.size_bytes(),
                    log_start: p.log_start_offset(),
                    log_end: p.log_end_offset(),
                    high_watermark: hw,
                });
            }
        }
        let labels = |p: &PartitionState| {
            [
                ("topic", p.topic.clone()),
                ("partition", p.partition.clone()),
            ]
        };

        gauge(&mut encoder, "kafka_brokers", "Brokers in the cluster", 1)?;
        gauge(
            &mut encoder,
            "kafka_server_replicamanager_partitioncount",
            "Partitions led by this broker",
            partitions.len() as i64,
        )?;
        gauges(
            &mut encoder,
            "kafka_topic_partitions",
            "Partitions per topic",
            per_topic.iter().map(|(t, n)| ([("topic", t.clone())], *n)),
        )?;
        gauges(
            &mut encoder,
            "kafka_topic_partition_current_offset",
            "High watermark (next offset consumers can read up to) per partition",
            partitions.iter().map(|p| (labels(p), p.high_watermark)),
        )?;
        gauges(
            &mut encoder,
            "kafka_topic_partition_oldest_offset",
            "Log start offset per partition",
            partitions.iter().map(|p| (labels(p), p.log_start)),
        )?;
        gauges(
            &mut encoder,
            "kafka_log_log_logendoffset",
            "Log end offset (appended, durable or not) per partition",
            partitions.iter().map(|p| (labels(p), p.log_end)),
        )?;
        gauges(
            &mut encoder,
            "kafka_log_log_logstartoffset",
            "Log start offset per partition",
            partitions.iter().map(|p| (labels(p), p.log_start)),
        )?;
        gauges(
            &mut encoder,
            "kafka_log_log_size",
            "Bytes of a partition's log segments",
            partitions
                .iter()
                .map(|p| (labels(p), i64::try_from(p.size).unwrap_or(i64::MAX))),
        )?;

        // Consumer groups: committed offsets and lag against the high watermark.
        let mut current = Vec::new();
        let mut lag = Vec::new();
        let mut lag_sum: BTreeMap<(String, String), i64> = BTreeMap::new();
        for group in broker.offsets.groups() {
            for ((topic, partition), committed) in broker.offsets.all_of(&group) {
                let Some(hw) = high_watermarks.get(&(topic.clone(), partition)) else {
                    continue;
                };
                let l = (hw - committed.offset).max(0);
                let labels = [
                    ("consumergroup", group.clone()),
                    ("topic", topic.clone()),
                    ("partition", partition.to_string()),
                ];
                current.push((labels.clone(), committed.offset));
                lag.push((labels, l));
                *lag_sum.entry((group.clone(), topic)).or_default() += l;
            }
        }
        gauges(
            &mut encoder,
            "kafka_consumergroup_current_offset",
            "Committed offset per consumer group and partition",
            current,
        )?;
        gauges(
            &mut encoder,
            "kafka_consumergroup_lag",
            "High watermark minus committed offset per consumer group and partition",
            lag,
        )?;
        gauges(
            &mut encoder,
            "kafka_consumergroup_lag_sum",
            "Lag of a consumer group summed over a topic's partitions",
            lag_sum
                .into_iter()
                .map(|((g, t), l)| ([("consumergroup", g), ("topic", t)], l)),
        )?;

        let groups = broker.groups.list();
        let mut by_state: BTreeMap<&str, i64> = [
            "Empty",
            "PreparingRebalance",
            "CompletingRebalance",
            "Stable",
        ]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
        let mut members = Vec::new();
        for (id, _, state) in &groups {
            *by_state.entry(state).or_default() += 1;
            let n = broker
                .groups
                .describe(id)
                .map_or(0, |g| g.members.len() as i64);
            members.push(([("consumergroup", id.clone())], n));
        }
        gauges(
            &mut encoder,
            "kafka_coordinator_group_groupmetadatamanager_numgroups",
            "Consumer groups per state",
            by_state
                .into_iter()
                .map(|(s, n)| ([("state", s.to_string())], n)),
        )?;
        gauges(
            &mut encoder,
            "kafka_consumergroup_members",
            "Members per consumer group",
            members,
        )?;

        gauge(
            &mut encoder,
            "kafka_server_socket_server_metrics_connection_count",
            "Client connections open now",
            i64::from(self.limits.open_connections()),
        )?;
        let refused = ConstCounter::new(self.limits.refused_connections());
        refused.encode(encoder.encode_descriptor(
            "kafka_server_socket_server_metrics_connections_refused",
            "Connections refused by max.connections or max.connections.per.ip",
            None,
            refused.metric_type(),
        )?)?;
        Ok(())
    }
}
