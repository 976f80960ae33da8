//! `broker groups`: the kafka-consumer-groups.sh `--list` and `--describe` views, over
//! ListGroups (sent to every broker, since each lists only the groups it coordinates),
//! FindCoordinator, DescribeGroups, OffsetFetch and ListOffsets.

use std::process::ExitCode;

use clap::Subcommand;

use super::ConnArgs;
use crate::client::{admin, Cluster};

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
    for g in admin::list_groups(cluster).await? {
        println!("{}", g.group_id);
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
    let Some(described) = admin::describe_group(cluster, group).await? else {
        eprintln!("Error: Consumer group '{group}' does not exist.");
        return Ok(ExitCode::FAILURE);
    };
    for (member, why) in &described.unreadable {
        eprintln!("warning: cannot read the assignment of member {member}: {why}");
    }
    let who = |m: &admin::GroupMember| (m.member_id.clone(), m.host.clone(), m.client_id.clone());
    let mut rows: Vec<Row> = described
        .partitions
        .iter()
        .map(|p| Row {
            topic: p.topic.clone(),
            partition: p.partition.to_string(),
            current: p.committed,
            end: p.end,
            member: p.owner.and_then(|i| described.members.get(i)).map(who),
        })
        .collect();
    rows.extend(
        described
            .members
            .iter()
            .filter(|m| m.partitions.is_empty())
            .map(|m| Row {
                topic: "-".into(),
                partition: "-".into(),
                current: None,
                end: None,
                member: Some(who(m)),
            }),
    );
    if described.members.is_empty() {
        println!("Consumer group '{group}' has no active members.");
        println!();
    }
    print_table(group, &rows);
    Ok(ExitCode::SUCCESS)
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
