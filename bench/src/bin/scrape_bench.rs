//! scrape-bench: how long one scrape of the broker's `/metrics` takes, and how large it is, with
//! many partitions and consumer groups (issue 17's target: 1,000 partitions and 100 groups in
//! under 50 ms and under 1 MB).
//!
//! Starts the real broker in-process (Kafka and HTTP listeners on loopback port 0), creates the
//! topics with rdkafka's admin client, commits an offset for every partition of a topic in each
//! group (so every group has lag series), produces one record per partition, then times
//! `--scrapes` GETs of `/metrics` over HTTP, as Prometheus does them.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

#[derive(Parser)]
struct Args {
    /// Topics to create.
    #[arg(long, default_value_t = 100)]
    topics: usize,
    /// Partitions per topic.
    #[arg(long, default_value_t = 10)]
    partitions: i32,
    /// Consumer groups, each committing every partition of one topic (round robin).
    #[arg(long, default_value_t = 100)]
    groups: usize,
    /// Scrapes to time.
    #[arg(long, default_value_t = 50)]
    scrapes: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile_dir()?;
    let kafka = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bootstrap = kafka.local_addr()?.to_string();
    let http_addr = http.local_addr()?;
    let mut config = broker::Config::for_data_dir(&dir);
    config.auto_create_topics = false;
    let listeners = broker::Listeners {
        kafka,
        extra: Vec::new(),
        http: Some(http),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(broker::run_with(config, listeners, async {
        let _ = stopped.await;
    }));

    let client = |extra: &[(&str, &str)]| {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &bootstrap).set("log_level", "3");
        for (k, v) in extra {
            c.set(*k, *v);
        }
        c
    };
    let admin: AdminClient<DefaultClientContext> = client(&[]).create()?;
    let names: Vec<String> = (0..args.topics).map(|i| format!("scrape-{i:04}")).collect();
    let new: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, args.partitions, TopicReplication::Fixed(1)))
        .collect();
    for chunk in new.chunks(50) {
        for r in admin.create_topics(chunk, &AdminOptions::new()).await? {
            r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
        }
    }
    let producer: FutureProducer = client(&[("linger.ms", "20")]).create()?;
    let sends = names.iter().flat_map(|t| {
        let producer = &producer;
        (0..args.partitions).map(move |p| async move {
            producer
                .send(
                    FutureRecord::to(t).partition(p).key("k").payload("v"),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
        })
    });
    for r in futures::future::join_all(sends).await {
        r?;
    }
    for g in 0..args.groups {
        let consumer: BaseConsumer = client(&[
            ("group.id", &format!("scrape-group-{g:03}")),
            ("enable.auto.commit", "false"),
        ])
        .create()?;
        let topic = &names[g % names.len()];
        let mut tpl = TopicPartitionList::new();
        for p in 0..args.partitions {
            tpl.add_partition_offset(topic, p, Offset::Offset(0))?;
        }
        consumer.commit(&tpl, CommitMode::Sync)?;
    }

    let url = format!("http://{http_addr}/metrics");
    let http_client = reqwest::Client::new();
    let mut times = Vec::with_capacity(args.scrapes);
    let mut size = 0;
    let mut lag_series = 0;
    for _ in 0..args.scrapes {
        let started = Instant::now();
        let body = http_client.get(&url).send().await?.text().await?;
        times.push(started.elapsed());
        size = body.len();
        lag_series = body
            .lines()
            .filter(|l| l.starts_with("kafka_consumergroup_lag{"))
            .count();
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "scrape-bench: {} topics x {} partitions = {} partitions, {} groups ({} lag series)",
        args.topics,
        args.partitions,
        args.topics * args.partitions as usize,
        args.groups,
        lag_series
    );
    println!(
        "{} scrapes over HTTP: min {:.1} ms, median {:.1} ms, p95 {:.1} ms, max {:.1} ms; body {} bytes ({:.2} MiB)",
        times.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() * 95 / 100]),
        ms(times[times.len() - 1]),
        size,
        size as f64 / (1024.0 * 1024.0)
    );
    let _ = stop.send(());
    server.await?.context("broker")?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("scrape-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
