//! console-bench: issue 18's targets for the web console. Every page under 200 ms p95 with
//! 1,000 topics and 100 groups on the broker; on a 1 GB topic, the first page of messages under
//! 100 ms with the console's memory flat.
//!
//! Starts the real broker in-process, creates `--topics` single-partition topics with one record
//! each and `--groups` groups (group i commits offset 0 of topic i, so each has lag), fills a
//! topic with `--big-mb` MiB of 1 KiB records, then starts the release `console` binary as a
//! child process (so its memory is its own) and times `--requests` GETs of each page, as a
//! browser makes them. The console's resident memory (VmRSS) is read before and after
//! `--browse` page loads of the big topic at offsets spread over it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    topics: usize,
    #[arg(long, default_value_t = 100)]
    groups: usize,
    /// Size of the big topic in MiB (1 KiB records).
    #[arg(long, default_value_t = 1024)]
    big_mb: usize,
    /// GETs per page.
    #[arg(long, default_value_t = 50)]
    requests: usize,
    /// Message pages loaded between the two memory readings.
    #[arg(long, default_value_t = 300)]
    browse: usize,
    /// The console binary (built with `cargo build --release -p console`).
    #[arg(long, default_value = "target/release/console")]
    console_bin: String,
}

struct Console(Child);

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// (median, p95, max) in ms of `n` GETs of `url`, each of which must answer 200.
async fn time_page(http: &reqwest::Client, url: &str, n: usize) -> anyhow::Result<(f64, f64, f64)> {
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let resp = http.get(url).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            bail!("{url}: {status}: {}", String::from_utf8_lossy(&body));
        }
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.95), ms[ms.len() - 1]))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("console-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kafka = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bootstrap = kafka.local_addr()?.to_string();
    let mut config = broker::Config::for_data_dir(&dir);
    config.auto_create_topics = false;
    let listeners = broker::Listeners {
        kafka,
        extra: Vec::new(),
        http: None,
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
    let mut names: Vec<String> = (0..args.topics).map(|i| format!("topic-{i:04}")).collect();
    names.push("big".into());
    let new: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    for chunk in new.chunks(100) {
        for r in admin.create_topics(chunk, &AdminOptions::new()).await? {
            r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
        }
    }
    let producer: FutureProducer =
        client(&[("linger.ms", "5"), ("batch.size", "1000000")]).create()?;
    for t in &names[..args.topics] {
        producer
            .send_result(FutureRecord::<(), _>::to(t).payload("x"))
            .map_err(|(e, _)| e)?;
    }
    let record = vec![b'r'; 1024];
    let big_records = args.big_mb * 1024;
    let t0 = Instant::now();
    for i in 0..big_records {
        loop {
            match producer.send_result(FutureRecord::<(), _>::to("big").payload(&record)) {
                Ok(_) => break,
                Err((_, _)) => producer.poll(Duration::from_millis(5)),
            }
        }
        if i % 100_000 == 0 {
            eprintln!("big topic: {i} records");
        }
    }
    producer.flush(Duration::from_secs(120))?;
    eprintln!(
        "setup: {} topics and {} MiB in {:.1} s",
        args.topics,
        args.big_mb,
        t0.elapsed().as_secs_f64()
    );
    for g in 0..args.groups {
        let consumer: BaseConsumer = client(&[("group.id", &format!("group-{g:03}"))]).create()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&names[g % args.topics], 0, Offset::Offset(0))?;
        consumer.commit(&tpl, CommitMode::Sync)?;
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let console = Console(
        Command::new(&args.console_bin)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--bootstrap-servers", &bootstrap])
            .args(["--connect-urls", ""])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", args.console_bin))?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        if Instant::now() > deadline {
            bail!("the console did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    println!("| Page | median ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|");
    let pages = [
        "/".to_string(),
        "/topics".into(),
        "/topics/topic-0000".into(),
        "/topics/topic-0000/messages".into(),
        "/groups".into(),
        "/groups/group-000".into(),
        "/topics/big".into(),
    ];
    for page in &pages {
        let (median, p95, max) = time_page(&http, &format!("{base}{page}"), args.requests).await?;
        println!("| `{page}` | {median:.1} | {p95:.1} | {max:.1} |");
    }

    let pid = console.0.id();
    let first = Instant::now();
    let resp = http
        .get(format!("{base}/topics/big/messages?from=earliest"))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "{}", resp.status());
    resp.bytes().await?;
    let first_ms = first.elapsed().as_secs_f64() * 1000.0;
    println!();
    println!("Big topic ({} MiB, {big_records} records):", args.big_mb);
    println!("- first page from the beginning, first request: {first_ms:.1} ms");
    for (label, query) in [
        ("from the beginning", "from=earliest".to_string()),
        ("the last page", "from=latest".into()),
        (
            "from the middle offset",
            format!("from=offset&value={}", big_records / 2),
        ),
        (
            "100 records from the middle",
            format!("from=offset&value={}&limit=100", big_records / 2),
        ),
    ] {
        let (median, p95, max) = time_page(
            &http,
            &format!("{base}/topics/big/messages?{query}"),
            args.requests,
        )
        .await?;
        println!("- {label}: median {median:.1} ms, p95 {p95:.1} ms, max {max:.1} ms");
    }
    let before = rss_kib(pid)?;
    for i in 0..args.browse {
        let offset = (i * 7919 % big_records.max(1)) as i64;
        let resp = http
            .get(format!(
                "{base}/topics/big/messages?from=offset&value={offset}&limit=100"
            ))
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "{}", resp.status());
        resp.bytes().await?;
    }
    let after = rss_kib(pid)?;
    println!(
        "- console memory (VmRSS) before and after {} pages of 100 records at offsets spread over the topic: {:.1} MiB → {:.1} MiB",
        args.browse,
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );

    drop(console);
    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
