//! `broker consume`: the console consumer. Fetches from every partition of a topic (or one),
//! without a consumer group, from the log start or the log end, and prints records to stdout.
//!
//! Each Fetch is a full (sessionless) fetch with a short max wait, so the loop notices Ctrl-C,
//! the message limit and the idle timeout promptly.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::ConnArgs;
use crate::client::records::{decode_fetched, ConsumedRecord};
use crate::client::ClientError;

/// Longest a Fetch waits for data.
const MAX_WAIT: Duration = Duration::from_millis(500);
const FETCH_MAX_BYTES: i32 = 8 * 1024 * 1024;
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub topic: String,
    /// Start at the oldest retained record instead of the end of the log.
    #[arg(long)]
    pub from_beginning: bool,
    /// Consume only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Exit after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Exit when no record has arrived for this many milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Print the key before the value, separated by a tab.
    #[arg(long)]
    pub print_key: bool,
    /// Print the offset first, separated by a tab.
    #[arg(long)]
    pub print_offset: bool,
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<ExitCode> {
    tokio::select! {
        result = consume(&args) => result,
        _ = tokio::signal::ctrl_c() => Ok(ExitCode::SUCCESS),
    }
}

async fn consume(args: &ConsumeArgs) -> anyhow::Result<ExitCode> {
    let mut cluster = args.conn.connect().await?;
    let topics = [args.topic.clone()];
    let mut leaders = cluster.partition_leaders(&topics, false).await?;
    let partitions: Vec<(String, i32)> = match args.partition {
        Some(p) if leaders.contains_key(&(args.topic.clone(), p)) => vec![(args.topic.clone(), p)],
        Some(p) => anyhow::bail!(
            "topic {:?} has no partition {p} (it has {})",
            args.topic,
            leaders.len()
        ),
        None => leaders.keys().cloned().collect(),
    };
    let reset_to = if args.from_beginning {
        EARLIEST
    } else {
        LATEST
    };
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    for ((_, p), offset) in cluster
        .list_offsets(&leaders, &partitions, reset_to)
        .await?
    {
        positions.insert(p, offset?);
    }

    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    loop {
        if args.max_messages.is_some_and(|max| printed >= max) {
            break;
        }
        let wait = match idle_limit {
            Some(limit) => {
                let left = limit.saturating_sub(last_record.elapsed());
                if left.is_zero() {
                    break;
                }
                left.min(MAX_WAIT)
            }
            None => MAX_WAIT,
        };

        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &p in positions.keys() {
            let leader = leaders.get(&(args.topic.clone(), p)).copied().unwrap_or(-1);
            by_leader.entry(leader).or_default().push(p);
        }
        let mut refresh = false;
        for (leader, parts) in by_leader {
            if leader < 0 {
                refresh = true;
                continue;
            }
            let req = FetchRequest::default()
                .with_max_wait_ms(i32::try_from(wait.as_millis()).unwrap_or(i32::MAX))
                .with_min_bytes(1)
                .with_max_bytes(FETCH_MAX_BYTES)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(args.topic.clone())))
                    .with_partitions(
                        parts
                            .iter()
                            .map(|&p| {
                                FetchPartition::default()
                                    .with_partition(p)
                                    .with_fetch_offset(positions.get(&p).copied().unwrap_or(0))
                                    .with_partition_max_bytes(PARTITION_MAX_BYTES)
                            })
                            .collect(),
                    )]);
            let resp = cluster.node(leader).await?.call(req).await?;
            if resp.error_code != 0 {
                return Err(ClientError::broker("fetching", resp.error_code, None).into());
            }
            for t in resp.responses {
                for pd in t.partitions {
                    let p = pd.partition_index;
                    let Some(&from) = positions.get(&p) else {
                        continue;
                    };
                    match ResponseError::try_from_code(pd.error_code) {
                        None => {}
                        Some(ResponseError::OffsetOutOfRange) => {
                            let tp = [(args.topic.clone(), p)];
                            let reset = cluster.list_offsets(&leaders, &tp, reset_to).await?;
                            if let Some(Ok(offset)) = reset.into_values().next() {
                                eprintln!(
                                    "warning: offset {from} of partition {p} is out of range; continuing at {offset}"
                                );
                                positions.insert(p, offset);
                            }
                            continue;
                        }
                        Some(e) if e.is_retriable() => {
                            refresh = true;
                            continue;
                        }
                        Some(_) => {
                            return Err(ClientError::broker(
                                format!("fetching {}-{p}", args.topic),
                                pd.error_code,
                                None,
                            )
                            .into())
                        }
                    }
                    let Some(bytes) = pd.records else { continue };
                    let (records, next) = decode_fetched(&bytes, from).map_err(|e| {
                        anyhow::anyhow!("corrupt records from {}-{p} at {from}: {e}", args.topic)
                    })?;
                    positions.insert(p, next);
                    for r in records {
                        if args.max_messages.is_some_and(|max| printed >= max) {
                            break;
                        }
                        if !print(&mut out, args, &r)? {
                            return Ok(ExitCode::SUCCESS);
                        }
                        printed += 1;
                        last_record = Instant::now();
                    }
                }
            }
            if !flush(&mut out)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
        if refresh {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok(fresh) = cluster.partition_leaders(&topics, false).await {
                leaders = fresh;
            }
        }
    }
    flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes one record; `Ok(false)` when stdout is closed (e.g. piped into `head`).
fn print(out: &mut impl Write, args: &ConsumeArgs, r: &ConsumedRecord) -> anyhow::Result<bool> {
    let mut line = Vec::new();
    if args.print_offset {
        line.extend_from_slice(r.offset.to_string().as_bytes());
        line.push(b'\t');
    }
    if args.print_key {
        line.extend_from_slice(r.key.as_deref().unwrap_or(b"null"));
        line.push(b'\t');
    }
    line.extend_from_slice(r.value.as_deref().unwrap_or(b"null"));
    line.push(b'\n');
    match out.write_all(&line) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn flush(out: &mut impl Write) -> anyhow::Result<bool> {
    match out.flush() {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e.into()),
    }
}
