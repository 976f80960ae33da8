//! `broker groups`: the kafka-consumer-groups.sh `--list` and `--describe` views, over
//! ListGroups (sent to every broker, since each lists only the groups it coordinates),
//! FindCoordinator, DescribeGroups, OffsetFetch and ListOffsets.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::Subcommand;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::ConnArgs;
use crate::client::{check, consumer_protocol, Cluster};

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Print the id of every consumer group, one per line.
    List,
    /// Print a group's partitions with committed offset, log-end offset, lag and owner.
    Describe {
        #[arg(long)]
        group: String,
    },
}

pub async fn run(conn: &ConnArgs, command: GroupsCommand) -> anyhow::Result<ExitCode> {
    let mut cluster = conn.connect().await?;
    match command {
        GroupsCommand::List => list(&mut cluster).await,
        GroupsCommand::Describe { group } => describe(&mut cluster, &group).await,
    }
}

async fn list(cluster: &mut Cluster) -> anyhow::Result<ExitCode> {
    cluster.metadata(Some(&[]), false).await?;
    let mut groups = BTreeSet::new();
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
        // As the Java admin client does: consumer groups, and groups with no protocol yet.
        groups.extend(
            resp.groups
                .into_iter()
                .filter(|g| matches!(g.protocol_type.as_str(), "consumer" | ""))
                .map(|g| g.group_id.0.to_string()),
        );
    }
    for g in groups {
        println!("{g}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of the describe table.
struct Row {
    topic: String,
    partition: String,
    current: Option<i64>,
    end: Option<i64>,
    member: Option<(String, String, String)>,
}

async fn describe(cluster: &mut Cluster, group: &str) -> anyhow::Result<ExitCode> {
    let group_id = GroupId(StrBytes::from_string(group.to_string()));
    let coordinator = cluster.coordinator(group).await?;

    let resp = coordinator
        .call(DescribeGroupsRequest::default().with_groups(vec![group_id.clone()]))
        .await?;
    let Some(described) = resp.groups.into_iter().next() else {
        anyhow::bail!("DescribeGroups answered nothing for group {group:?}");
    };
    check(
        described.error_code,
        || format!("describing group {group:?}"),
        described.error_message.as_deref(),
    )?;
    if described.group_state.as_str() == "Dead" {
        eprintln!("Error: Consumer group '{group}' does not exist.");
        return Ok(ExitCode::FAILURE);
    }

    // Partition -> (member id, host, client id), from the members' assignments.
    let mut owners: BTreeMap<(String, i32), (String, String, String)> = BTreeMap::new();
    let mut idle_members = Vec::new();
    for m in &described.members {
        let who = (
            m.member_id.to_string(),
            m.client_host.to_string(),
            m.client_id.to_string(),
        );
        let assigned = if described.protocol_type.as_str() == "consumer" {
            consumer_protocol::assigned_partitions(&m.member_assignment).unwrap_or_else(|e| {
                eprintln!(
                    "warning: cannot read the assignment of member {}: {e}",
                    m.member_id.as_str()
                );
                Vec::new()
            })
        } else {
            Vec::new()
        };
        if assigned.iter().all(|(_, parts)| parts.is_empty()) {
            idle_members.push(who.clone());
        }
        for (topic, parts) in assigned {
            for p in parts {
                owners.insert((topic.clone(), p), who.clone());
            }
        }
    }

    let committed = committed_offsets(cluster, group, &group_id).await?;

    let partitions: BTreeSet<(String, i32)> = committed
        .keys()
        .cloned()
        .chain(owners.keys().cloned())
        .collect();
    let topics: Vec<String> = partitions
        .iter()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let wanted: Vec<(String, i32)> = partitions.iter().cloned().collect();
    let mut end_offsets = BTreeMap::new();
    if !topics.is_empty() {
        // Topics deleted since the commit have no leader: their log-end offset is unknown.
        let md = cluster.metadata(Some(&topics), false).await?;
        let mut leaders = BTreeMap::new();
        for t in md.topics.iter().filter(|t| t.error_code == 0) {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            for p in &t.partitions {
                leaders.insert((name.clone(), p.partition_index), p.leader_id.0);
            }
        }
        for (tp, result) in cluster.list_offsets(&leaders, &wanted, -1).await? {
            if let Ok(offset) = result {
                end_offsets.insert(tp, offset);
            }
        }
    }

    let mut rows: Vec<Row> = partitions
        .into_iter()
        .map(|tp| Row {
            current: committed.get(&tp).copied(),
            end: end_offsets.get(&tp).copied(),
            member: owners.get(&tp).cloned(),
            partition: tp.1.to_string(),
            topic: tp.0,
        })
        .collect();
    rows.extend(idle_members.into_iter().map(|m| Row {
        topic: "-".into(),
        partition: "-".into(),
        current: None,
        end: None,
        member: Some(m),
    }));

    if described.members.is_empty() {
        println!("Consumer group '{group}' has no active members.");
        println!();
    }
    print_table(group, &rows);
    Ok(ExitCode::SUCCESS)
}

/// The group's committed offsets of all topics (OffsetFetch with topics = null).
async fn committed_offsets(
    cluster: &mut Cluster,
    group: &str,
    group_id: &GroupId,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let coordinator = cluster.coordinator(group).await?;
    let version = coordinator.version(ApiKey::OffsetFetch)?;
    let context = || format!("fetching the committed offsets of group {group:?}");
    let mut out = BTreeMap::new();
    let mut add = |topic: &str, partition: i32, offset: i64, code: i16| {
        if code != 0 {
            if let Err(e) = check(code, || format!("{topic}-{partition}"), None) {
                eprintln!("warning: committed offset of {e}");
            }
        } else if offset >= 0 {
            out.insert((topic.to_string(), partition), offset);
        }
    };
    if version >= 8 {
        let req =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id.clone())
                .with_topics(None)]);
        let resp = coordinator.call(req).await?;
        for g in resp.groups {
            check(g.error_code, context, None)?;
            for t in g.topics {
                for p in t.partitions {
                    add(
                        t.name.0.as_str(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    );
                }
            }
        }
    } else {
        let req = OffsetFetchRequest::default()
            .with_group_id(group_id.clone())
            .with_topics(None);
        let resp = coordinator.call(req).await?;
        check(resp.error_code, context, None)?;
        for t in resp.topics {
            for p in t.partitions {
                add(
                    t.name.0.as_str(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                );
            }
        }
    }
    Ok(out)
}

fn print_table(group: &str, rows: &[Row]) {
    let dash = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let mut lines: Vec<[String; 9]> = vec![[
        "GROUP".into(),
        "TOPIC".into(),
        "PARTITION".into(),
        "CURRENT-OFFSET".into(),
        "LOG-END-OFFSET".into(),
        "LAG".into(),
        "CONSUMER-ID".into(),
        "HOST".into(),
        "CLIENT-ID".into(),
    ]];
    for r in rows {
        let lag = match (r.current, r.end) {
            (Some(c), Some(e)) => Some(e.saturating_sub(c).max(0)),
            _ => None,
        };
        let (member, host, client) = r
            .member
            .clone()
            .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
        lines.push([
            group.to_string(),
            r.topic.clone(),
            r.partition.clone(),
            dash(r.current),
            dash(r.end),
            dash(lag),
            member,
            host,
            client,
        ]);
    }
    let mut widths = [0usize; 9];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for line in &lines {
        let mut out = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i + 1 == line.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$} ", width = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    }
}
