//! `broker produce`: the console producer. Each stdin line is one record; lines that arrive
//! together are batched into one Produce request per leader, as a linger would.
//!
//! Partitioning matches the Java client's default partitioner for keyed records (murmur2), so
//! keys land where other Kafka producers would put them; unkeyed lines rotate over partitions
//! request by request. Retriable partition errors are retried a few times after a metadata
//! refresh; anything else is reported per partition and makes the exit code 1.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::ConnArgs;
use crate::client::records::{encode_batch, partition_for_key};
use crate::client::{ClientError, Cluster};

/// Most lines per request, and roughly most bytes per request.
const MAX_BATCH_RECORDS: usize = 1000;
const MAX_BATCH_BYTES: usize = 512 * 1024;
/// How long to wait for more lines before sending what has arrived.
const LINGER: Duration = Duration::from_millis(5);
/// Attempts per batch when the broker answers with a retriable error.
const ATTEMPTS: u32 = 3;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic to produce to (created if the broker auto-creates topics).
    #[arg(long)]
    pub topic: String,
    /// Split each line at the first occurrence of this string into key and value.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// Produce every record to this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Acknowledgements to wait for: all (-1), 1 or 0.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: i16,
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(format!("invalid acks {s:?}: expected all, -1, 1 or 0")),
    }
}

type Line = (u64, Vec<u8>);
/// Records (key, value) to produce, by partition.
type ByPartition = BTreeMap<i32, Vec<(Option<Bytes>, Option<Bytes>)>>;

pub async fn run(args: ProduceArgs) -> anyhow::Result<ExitCode> {
    let mut cluster = args.conn.connect().await?;
    let topics = [args.topic.clone()];
    let mut leaders = cluster.partition_leaders(&topics, true).await?;
    let partition_count = i32::try_from(leaders.len())?;
    if let Some(p) = args.partition {
        if !leaders.contains_key(&(args.topic.clone(), p)) {
            anyhow::bail!(
                "topic {:?} has no partition {p} (it has {partition_count})",
                args.topic
            );
        }
    }

    // A plain thread reads stdin, so an interactive producer never keeps the runtime from
    // shutting down while it waits for a line.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Line>>(4 * MAX_BATCH_RECORDS);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut number = 0u64;
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    number += 1;
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if tx.blocking_send(Ok((number, line))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });

    let mut failed = 0u64;
    let mut round_robin = 0i32;
    while let Some(first) = rx.recv().await {
        let mut lines = vec![first?];
        let mut bytes = lines[0].1.len();
        while lines.len() < MAX_BATCH_RECORDS && bytes < MAX_BATCH_BYTES {
            match tokio::time::timeout(LINGER, rx.recv()).await {
                Ok(Some(line)) => {
                    let line = line?;
                    bytes += line.1.len();
                    lines.push(line);
                }
                Ok(None) | Err(_) => break,
            }
        }

        // Group the lines by partition.
        let mut by_partition = ByPartition::new();
        let unkeyed_partition = round_robin.rem_euclid(partition_count.max(1));
        round_robin = round_robin.wrapping_add(1);
        for (number, line) in lines {
            let (key, value) = match &args.key_separator {
                None => (None, line),
                Some(sep) => match find(&line, sep.as_bytes()) {
                    Some(at) => (
                        Some(Bytes::copy_from_slice(&line[..at])),
                        line[at + sep.len()..].to_vec(),
                    ),
                    None => {
                        eprintln!("Error: no key separator {sep:?} on line {number}; line skipped");
                        failed += 1;
                        continue;
                    }
                },
            };
            let partition = match (args.partition, &key) {
                (Some(p), _) => p,
                (None, Some(k)) => partition_for_key(k, partition_count),
                (None, None) => unkeyed_partition,
            };
            by_partition
                .entry(partition)
                .or_default()
                .push((key, Some(Bytes::from(value))));
        }
        failed += send(&mut cluster, &args, &mut leaders, by_partition).await?;
    }

    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} record(s) failed");
        ExitCode::FAILURE
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Produces each partition's records (one batch per partition), retrying retriable errors;
/// returns how many records finally failed. Connection failures are errors.
async fn send(
    cluster: &mut Cluster,
    args: &ProduceArgs,
    leaders: &mut BTreeMap<(String, i32), i32>,
    by_partition: ByPartition,
) -> anyhow::Result<u64> {
    let timestamp = crate::now_ms();
    let mut pending: Vec<(i32, Bytes, u64)> = Vec::new();
    for (partition, records) in by_partition {
        let batch = encode_batch(&records, timestamp)?;
        pending.push((partition, batch, records.len() as u64));
    }
    let timeout_ms = i32::try_from(args.conn.command_timeout_ms).unwrap_or(i32::MAX);
    let mut failed = 0;
    for attempt in 1..=ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 1 {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            if let Ok(fresh) = cluster
                .partition_leaders(std::slice::from_ref(&args.topic), false)
                .await
            {
                *leaders = fresh;
            }
        }
        let mut by_leader: BTreeMap<i32, Vec<(i32, Bytes, u64)>> = BTreeMap::new();
        for item in pending.drain(..) {
            let leader = leaders
                .get(&(args.topic.clone(), item.0))
                .copied()
                .unwrap_or(-1);
            by_leader.entry(leader).or_default().push(item);
        }
        for (leader, items) in by_leader {
            if leader < 0 {
                for (partition, batch, n) in items {
                    if attempt < ATTEMPTS {
                        pending.push((partition, batch, n));
                    } else {
                        eprintln!(
                            "Error: producing {n} record(s) to {}-{partition}: LEADER_NOT_AVAILABLE",
                            args.topic
                        );
                        failed += n;
                    }
                }
                continue;
            }
            let counts: BTreeMap<i32, (Bytes, u64)> = items
                .iter()
                .map(|(p, b, n)| (*p, (b.clone(), *n)))
                .collect();
            let req = ProduceRequest::default()
                .with_acks(args.acks)
                .with_timeout_ms(timeout_ms)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
                    .with_partition_data(
                        items
                            .into_iter()
                            .map(|(p, batch, _)| {
                                PartitionProduceData::default()
                                    .with_index(p)
                                    .with_records(Some(batch))
                            })
                            .collect(),
                    )]);
            let conn = cluster.node(leader).await?;
            if args.acks == 0 {
                conn.send(req).await?;
                continue;
            }
            let resp = conn.call(req).await?;
            let mut answered = BTreeMap::new();
            for t in resp.responses {
                for p in t.partition_responses {
                    answered.insert(p.index, (p.error_code, p.error_message));
                }
            }
            for (partition, (batch, n)) in counts {
                let (code, message) = answered.remove(&partition).unwrap_or((
                    kafka_protocol::error::ResponseError::UnknownServerError.code(),
                    Some(StrBytes::from_static_str("no answer for this partition")),
                ));
                if code == 0 {
                    continue;
                }
                let err = ClientError::broker(
                    format!("producing {n} record(s) to {}-{partition}", args.topic),
                    code,
                    message.as_deref(),
                );
                if err.is_retriable() && attempt < ATTEMPTS {
                    pending.push((partition, batch, n));
                } else {
                    eprintln!("Error: {err}");
                    failed += n;
                }
            }
        }
    }
    Ok(failed)
}
