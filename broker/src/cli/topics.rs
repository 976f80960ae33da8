//! `broker topics`: the kafka-topics.sh subset (plus kafka-configs.sh `--alter` for topics),
//! over CreateTopics, Metadata, DescribeConfigs, DeleteTopics and IncrementalAlterConfigs.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Subcommand;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::protocol::StrBytes;

use super::{parse_key_value, split_config_list, ConnArgs};
use crate::client::{admin, check, Cluster};

/// Config resource type of a topic (IncrementalAlterConfigs).
const TOPIC_RESOURCE: i8 = 2;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Print the name of every topic, one per line.
    List {
        /// Leave out internal topics such as __consumer_offsets.
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Create a topic.
    Create {
        #[arg(long)]
        topic: String,
        /// Number of partitions (default: the broker's default).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// Topic config override KEY=VALUE; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Print partitions, leaders, replicas and config overrides of one topic or all topics.
    Describe {
        #[arg(long)]
        topic: Option<String>,
        /// With no --topic, leave out internal topics.
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Delete a topic.
    Delete {
        #[arg(long)]
        topic: String,
    },
    /// Set or remove config overrides of a topic.
    AlterConfig {
        #[arg(long)]
        topic: String,
        /// KEY=VALUE[,KEY=VALUE...] to set (a value with commas goes in [...]); repeatable.
        #[arg(long, value_name = "KEY=VALUE,...")]
        add_config: Vec<String>,
        /// KEY[,KEY...] to reset to the broker default; repeatable.
        #[arg(long, value_name = "KEY,...")]
        delete_config: Vec<String>,
    },
}

pub async fn run(conn: &ConnArgs, command: TopicsCommand) -> anyhow::Result<ExitCode> {
    let mut cluster = conn.connect().await?;
    match command {
        TopicsCommand::List { exclude_internal } => list(&mut cluster, exclude_internal).await?,
        TopicsCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
        } => {
            create(
                &mut cluster,
                &topic,
                partitions,
                replication_factor,
                &configs,
            )
            .await?
        }
        TopicsCommand::Describe {
            topic,
            exclude_internal,
        } => describe(&mut cluster, topic, exclude_internal).await?,
        TopicsCommand::Delete { topic } => admin::delete_topic(&mut cluster, &topic).await?,
        TopicsCommand::AlterConfig {
            topic,
            add_config,
            delete_config,
        } => alter_config(&mut cluster, &topic, &add_config, &delete_config).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(cluster: &mut Cluster, exclude_internal: bool) -> anyhow::Result<()> {
    let md = cluster.metadata(None, false).await?;
    let mut names: Vec<String> = md
        .topics
        .iter()
        .filter(|t| !(exclude_internal && t.is_internal))
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    names.sort();
    for name in names {
        println!("{name}");
    }
    Ok(())
}

async fn create(
    cluster: &mut Cluster,
    topic: &str,
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    configs: &[String],
) -> anyhow::Result<()> {
    let configs = configs
        .iter()
        .map(|c| parse_key_value(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    admin::create_topic(cluster, topic, partitions, replication_factor, &configs).await?;
    println!("Created topic {topic}.");
    Ok(())
}

async fn describe(
    cluster: &mut Cluster,
    topic: Option<String>,
    exclude_internal: bool,
) -> anyhow::Result<()> {
    let wanted = topic.map(|t| vec![t]);
    let md = cluster.metadata(wanted.as_deref(), false).await?;
    let mut topics: Vec<_> = md
        .topics
        .into_iter()
        .filter(|t| wanted.is_some() || !(exclude_internal && t.is_internal))
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    for t in &topics {
        let name = t.name.as_ref().map(|n| n.0.as_str()).unwrap_or("");
        check(t.error_code, || format!("describing topic {name:?}"), None)?;
    }
    if topics.is_empty() {
        return Ok(());
    }

    let names: Vec<String> = topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    let overrides: HashMap<String, Vec<String>> = admin::topic_configs(cluster, &names)
        .await?
        .into_iter()
        .map(|(topic, entries)| {
            let set = entries
                .into_iter()
                .filter(|c| c.is_override)
                .map(|c| {
                    let value = match (&c.value, c.is_sensitive) {
                        (_, true) => "<sensitive>",
                        (Some(v), false) => v.as_str(),
                        (None, false) => "null",
                    };
                    format!("{}={value}", c.name)
                })
                .collect();
            (topic, set)
        })
        .collect();

    for t in &topics {
        let name = t.name.as_ref().map(|n| n.0.as_str()).unwrap_or("");
        let mut partitions: Vec<_> = t.partitions.iter().collect();
        partitions.sort_by_key(|p| p.partition_index);
        let replication = partitions.first().map_or(0, |p| p.replica_nodes.len());
        let configs = overrides.get(name).map(|c| c.join(",")).unwrap_or_default();
        println!(
            "Topic: {name}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {replication}\tConfigs: {configs}",
            kafka_uuid(&t.topic_id),
            partitions.len(),
        );
        for p in partitions {
            let leader = if p.leader_id.0 < 0 {
                "none".to_string()
            } else {
                p.leader_id.0.to_string()
            };
            println!(
                "\tTopic: {name}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}",
                p.partition_index,
                join_ids(&p.replica_nodes),
                join_ids(&p.isr_nodes),
            );
        }
    }
    Ok(())
}

fn join_ids(ids: &[kafka_protocol::messages::BrokerId]) -> String {
    ids.iter()
        .map(|id| id.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A topic id as Kafka prints it: URL-safe base64 of the 16 bytes, without padding.
fn kafka_uuid(id: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

async fn alter_config(
    cluster: &mut Cluster,
    topic: &str,
    add: &[String],
    delete: &[String],
) -> anyhow::Result<()> {
    let mut configs = Vec::new();
    for entry in add.iter().flat_map(|s| split_config_list(s)) {
        let (k, v) = parse_key_value(&entry)?;
        configs.push(
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k))
                .with_config_operation(OP_SET)
                .with_value(Some(StrBytes::from_string(v))),
        );
    }
    for key in delete.iter().flat_map(|s| split_config_list(s)) {
        configs.push(
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key))
                .with_config_operation(OP_DELETE)
                .with_value(None),
        );
    }
    if configs.is_empty() {
        anyhow::bail!("nothing to change: give --add-config and/or --delete-config");
    }
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configs(configs),
    ]);
    let resp = cluster.any().call(req).await?;
    for r in &resp.responses {
        check(
            r.error_code,
            || format!("altering configs of topic {topic:?}"),
            r.error_message.as_deref(),
        )?;
    }
    println!("Completed updating config for topic {topic}.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_print_like_kafka() {
        // Kafka's Uuid.toString() of (most=0x0102030405060708, least=0x090a0b0c0d0e0f10).
        let id = uuid::Uuid::from_bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(kafka_uuid(&id), "AQIDBAUGBwgJCgsMDQ4PEA");
        assert_eq!(kafka_uuid(&uuid::Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
    }
}
