//! `broker transactions`: the kafka-transactions.sh `list` and `describe` views (KIP-664), over
//! ListTransactions (sent to every broker, since each lists only the transactional ids it
//! coordinates), FindCoordinator (key type 1, transaction) and DescribeTransactions.

use std::process::ExitCode;

use clap::Subcommand;
use kafka_protocol::messages::{
    DescribeTransactionsRequest, ListTransactionsRequest, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::ConnArgs;
use crate::client::{check, Cluster};

#[derive(Debug, Subcommand)]
pub enum TransactionsCommand {
    /// Print every transactional id with its coordinator, producer id and state.
    List,
    /// Print the state of one transactional id: producer id and epoch, state, timeout, start
    /// time and duration of the current transaction, and its partitions.
    Describe {
        #[arg(long)]
        transactional_id: String,
    },
}

pub async fn run(conn: &ConnArgs, command: TransactionsCommand) -> anyhow::Result<ExitCode> {
    let mut cluster = conn.connect().await?;
    match command {
        TransactionsCommand::List => list(&mut cluster).await,
        TransactionsCommand::Describe { transactional_id } => {
            describe(&mut cluster, &transactional_id).await
        }
    }
}

async fn list(cluster: &mut Cluster) -> anyhow::Result<ExitCode> {
    cluster.metadata(Some(&[]), false).await?;
    let mut rows = vec![[
        "TransactionalId".to_string(),
        "Coordinator".to_string(),
        "ProducerId".to_string(),
        "TransactionState".to_string(),
    ]];
    let mut found = Vec::new();
    for id in cluster.broker_ids() {
        let resp = cluster
            .node(id)
            .await?
            .call(ListTransactionsRequest::default().with_duration_filter(-1))
            .await?;
        check(
            resp.error_code,
            || format!("listing transactions on broker {id}"),
            None,
        )?;
        for t in resp.transaction_states {
            found.push([
                t.transactional_id.0.to_string(),
                id.to_string(),
                t.producer_id.0.to_string(),
                t.transaction_state.to_string(),
            ]);
        }
    }
    found.sort();
    rows.extend(found);
    print_table(&rows);
    Ok(ExitCode::SUCCESS)
}

async fn describe(cluster: &mut Cluster, id: &str) -> anyhow::Result<ExitCode> {
    let coordinator = cluster.coordinator_of(id, 1).await?;
    let node = coordinator.addr().to_string();
    let resp = coordinator
        .call(
            DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
                StrBytes::from_string(id.to_string()),
            )]),
        )
        .await?;
    let Some(state) = resp.transaction_states.into_iter().next() else {
        anyhow::bail!("DescribeTransactions answered nothing for {id:?}");
    };
    check(
        state.error_code,
        || format!("describing transactional id {id:?}"),
        None,
    )?;
    let now = crate::now_ms();
    let (start, duration) = if state.transaction_start_time_ms >= 0 {
        (
            state.transaction_start_time_ms.to_string(),
            now.saturating_sub(state.transaction_start_time_ms)
                .to_string(),
        )
    } else {
        ("None".to_string(), "None".to_string())
    };
    let partitions: Vec<String> = state
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| format!("{}-{p}", t.topic.0))
        })
        .collect();
    let partitions = if partitions.is_empty() {
        "None".to_string()
    } else {
        partitions.join(",")
    };
    print_table(&[
        [
            "Coordinator".to_string(),
            "TransactionalId".to_string(),
            "ProducerId".to_string(),
            "ProducerEpoch".to_string(),
            "TransactionState".to_string(),
            "TransactionTimeoutMs".to_string(),
            "CurrentTransactionStartTimeMs".to_string(),
            "TransactionDurationMs".to_string(),
            "TopicPartitions".to_string(),
        ],
        [
            node,
            state.transactional_id.0.to_string(),
            state.producer_id.0.to_string(),
            state.producer_epoch.to_string(),
            state.transaction_state.to_string(),
            state.transaction_timeout_ms.to_string(),
            start,
            duration,
            partitions,
        ],
    ]);
    Ok(ExitCode::SUCCESS)
}

fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut out = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$} ", width = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    }
}
