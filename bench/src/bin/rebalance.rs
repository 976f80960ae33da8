//! rebalance-bench: how long a consumer group of three takes to settle after its last member
//! joins. Each round starts three librdkafka consumers (subscribe, a fresh group id) on a topic
//! with six partitions and measures from the moment the last of them subscribed until all six
//! partitions are assigned, each to exactly one member, every member owning at least one.
//!
//! The classic protocol tells a stable member about a rebalance through its next heartbeat, so
//! the result depends on `heartbeat.interval.ms` (librdkafka's default is 3000); the command
//! line sets it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap_servers: String,
    #[arg(long, default_value = "rebalance-bench")]
    topic: String,
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    #[arg(long, default_value_t = 3)]
    members: usize,
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    #[arg(long, default_value_t = 100)]
    heartbeat_interval_ms: u64,
    #[arg(long, default_value_t = 6000)]
    session_timeout_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &cli.bootstrap_servers)
        .create()?;
    let rt = tokio::runtime::Runtime::new()?;
    let _ = rt.block_on(admin.create_topics(
        &[NewTopic::new(
            &cli.topic,
            cli.partitions,
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new(),
    ))?;

    let mut times = Vec::new();
    for round in 0..cli.rounds {
        let group = format!("rebalance-bench-{}-{round}", std::process::id());
        let assignments: Arc<Mutex<Vec<BTreeSet<i32>>>> =
            Arc::new(Mutex::new(vec![BTreeSet::new(); cli.members]));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        // Connect every client first, so that the measurement covers the group protocol and
        // not librdkafka's bootstrap.
        let mut consumers = Vec::new();
        for _ in 0..cli.members {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &cli.bootstrap_servers)
                .set("group.id", &group)
                .set(
                    "heartbeat.interval.ms",
                    cli.heartbeat_interval_ms.to_string(),
                )
                .set("session.timeout.ms", cli.session_timeout_ms.to_string())
                .set("enable.auto.commit", "false")
                .create()
                .context("consumer")?;
            consumer.fetch_metadata(Some(&cli.topic), Duration::from_secs(10))?;
            consumers.push(consumer);
        }
        let mut last_join = Instant::now();
        for (i, consumer) in consumers.into_iter().enumerate() {
            consumer.subscribe(&[&cli.topic])?;
            last_join = Instant::now();
            let (assignments, stop) = (assignments.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = consumer.poll(Duration::from_millis(5));
                    let mine = consumer
                        .assignment()
                        .map(|t| t.elements().iter().map(|e| e.partition()).collect())
                        .unwrap_or_default();
                    if let Ok(mut a) = assignments.lock() {
                        a[i] = mine;
                    }
                }
            }));
        }
        let deadline = last_join + Duration::from_secs(30);
        let settled = loop {
            let balanced = assignments.lock().is_ok_and(|a| {
                let total: usize = a.iter().map(BTreeSet::len).sum();
                let distinct: BTreeSet<i32> = a.iter().flatten().copied().collect();
                total == cli.partitions as usize
                    && distinct.len() == total
                    && a.iter().all(|m| !m.is_empty())
            });
            if balanced {
                break last_join.elapsed();
            }
            if Instant::now() > deadline {
                bail!(
                    "round {round}: group never settled: {:?}",
                    assignments.lock().ok()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        println!(
            "round {round}: settled {:.1} ms after the last member joined",
            settled.as_secs_f64() * 1000.0
        );
        times.push(settled);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| rebalance ({} members, {} partitions, heartbeat.interval.ms={}) | rounds {} | min {:.1} ms | median {:.1} ms | max {:.1} ms |",
        cli.members,
        cli.partitions,
        cli.heartbeat_interval_ms,
        times.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    Ok(())
}
