//! sink-bench: the connect worker's JDBC sink against MariaDB, next to a plain-SQL baseline, and
//! the source → topic → sink end-to-end latency. Needs a running broker, connect worker (REST)
//! and MariaDB; creates its own tables, topics and connectors (suffixed with a run id).
//!
//! 1. baseline: `--records` order rows inserted with plain multi-row INSERTs, `--baseline-batch`
//!    rows per transaction, one connection (what a single sink task could do at best);
//! 2. sink: the same number of order records (the order-service's exact Kafka Connect JSON) are
//!    produced to a fresh topic first, then a JDBC sink connector configured like
//!    `docker/connectors/orders-sink.json` (upsert on `order_id`) is created; rows/s from the
//!    first applied batch to the last, as seen in `datasync_sink_offsets`; then exactly-once is
//!    checked (row count, distinct order ids, sum of qty, applied offset);
//! 3. e2e: rows inserted one per transaction into a source table at `--e2e-rate` rows/s; a JDBC
//!    source (incrementing, `poll.interval.ms`) and a JDBC sink carry them to a second table,
//!    polled every `--e2e-poll-ms`; latency = seen in the target − source INSERT committed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::json;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::Row;

#[derive(Parser, Debug)]
#[command(
    name = "sink-bench",
    about = "JDBC sink throughput and source→sink latency"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap_servers: String,
    /// The connect worker's REST API.
    #[arg(long, default_value = "http://127.0.0.1:8083")]
    connect_url: String,
    /// MariaDB as seen by this benchmark.
    #[arg(long)]
    database_url: String,
    /// The same database as seen by the connect worker (connectors' `connection.url`).
    #[arg(long)]
    jdbc_url: String,
    #[arg(long, default_value = "root")]
    db_user: String,
    #[arg(long, default_value = "test1357")]
    db_password: String,
    /// Rows for the baseline and the sink phases.
    #[arg(long, default_value_t = 300_000)]
    records: u64,
    /// Rows per transaction of the plain-INSERT baseline.
    #[arg(long, default_value_t = 1000)]
    baseline_batch: usize,
    /// Sink `batch.size` (empty: the connector's default, `consumer.max.poll.records` = 500).
    #[arg(long)]
    sink_batch_size: Option<usize>,
    /// Source rows/s during the end-to-end phase (0 skips it).
    #[arg(long, default_value_t = 200)]
    e2e_rate: u64,
    #[arg(long, default_value_t = 30)]
    e2e_secs: u64,
    /// The source connector's `poll.interval.ms`.
    #[arg(long, default_value_t = 100)]
    poll_interval_ms: u64,
    /// How often the benchmark looks for new rows in the target table.
    #[arg(long, default_value_t = 5)]
    e2e_poll_ms: u64,
    /// Skip phases: comma-separated of baseline, sink, e2e.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn create_topic(bootstrap: &str, topic: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin
        .create_topics(
            [&NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &opts,
        )
        .await?
    {
        r.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
    }
    Ok(())
}

async fn create_connector(
    http: &reqwest::Client,
    url: &str,
    name: &str,
    config: serde_json::Value,
) -> Result<()> {
    let resp = http
        .post(format!("{url}/connectors"))
        .json(&json!({"name": name, "config": config}))
        .send()
        .await?;
    let status = resp.status();
    if !status.is_success() {
        bail!("creating connector {name}: {status} {}", resp.text().await?);
    }
    Ok(())
}

async fn delete_connector(http: &reqwest::Client, url: &str, name: &str) {
    let _ = http.delete(format!("{url}/connectors/{name}")).send().await;
}

async fn applied_offset(pool: &MySqlPool, connector: &str, topic: &str) -> Result<i64> {
    let r = sqlx::query(
        "SELECT next_offset FROM datasync_sink_offsets WHERE connector = ? AND topic = ?",
    )
    .bind(connector)
    .bind(topic)
    .fetch_optional(pool)
    .await?;
    Ok(match r {
        Some(r) => r.try_get(0)?,
        None => 0,
    })
}

const COLS: &str = "order_id, user_id, product_id, qty, unit_price, total_price, created_at";

async fn baseline(args: &Args, pool: &MySqlPool, run: &str) -> Result<f64> {
    let table = format!("bench_plain_{run}");
    sqlx::query(&format!("CREATE TABLE {table} LIKE orders"))
        .execute(pool)
        .await?;
    let placeholders = vec!["(?, ?, ?, ?, ?, ?, ?)"; args.baseline_batch].join(", ");
    let now = chrono_like_now();
    let start = Instant::now();
    let mut n = 0u64;
    while n < args.records {
        let k = (args.records - n).min(args.baseline_batch as u64) as usize;
        let sql = if k == args.baseline_batch {
            format!("INSERT INTO {table} ({COLS}) VALUES {placeholders}")
        } else {
            format!(
                "INSERT INTO {table} ({COLS}) VALUES {}",
                vec!["(?, ?, ?, ?, ?, ?, ?)"; k].join(", ")
            )
        };
        let mut tx = pool.begin().await?;
        let mut q = sqlx::query(&sql);
        for i in n..n + k as u64 {
            q = q
                .bind(format!("{run}-plain-{i}"))
                .bind(format!("{run}-u{}", i % 100))
                .bind(format!("BENCH-{}", i % 1000))
                .bind((1 + i % 5) as i32)
                .bind(100i32)
                .bind((100 * (1 + i % 5)) as i64)
                .bind(now.clone());
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        n += k as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = args.records as f64 / secs;
    println!(
        "| plain INSERT, {} rows/transaction, 1 connection | {} | {secs:.2} | {rate:.0} |",
        args.baseline_batch, args.records
    );
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(pool)
        .await?;
    Ok(rate)
}

/// A DATETIME(3) literal for "now" (UTC), without a chrono dependency.
fn chrono_like_now() -> String {
    "2026-01-01 00:00:00.000".to_string()
}

async fn sink(
    args: &Args,
    pool: &MySqlPool,
    http: &reqwest::Client,
    run: &str,
) -> Result<(f64, f64)> {
    let table = format!("bench_sink_{run}");
    let topic = format!("bench-sink-{run}");
    let connector = format!("bench-sink-{run}");
    sqlx::query(&format!("CREATE TABLE {table} LIKE orders"))
        .execute(pool)
        .await?;
    create_topic(&args.bootstrap_servers, &topic).await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap_servers)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let produce_start = Instant::now();
    let created_ms = 1_767_225_600_000i64; // 2026-01-01T00:00:00Z
    let mut pending = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for i in 0..args.records {
        let order_id = format!("{run}-sink-{i}");
        let qty = (1 + i % 5) as i64;
        let payload = json!({
            "order_id": order_id, "user_id": format!("{run}-u{}", i % 100),
            "product_id": format!("BENCH-{}", i % 1000), "qty": qty, "unit_price": 100,
            "total_price": 100 * qty, "created_at": created_ms,
        });
        let value = format!(
            r#"{{"schema":{},"payload":{}}}"#,
            order_service::publisher::ORDER_SCHEMA,
            payload
        );
        let key = order_service::publisher::connect_key(&order_id);
        let mut record = FutureRecord::to(&topic).key(&key).payload(&value);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => break pending.push(delivery),
                Err((e, r)) => {
                    if pending.is_empty() {
                        bail!("producing: {e}");
                    }
                    record = r;
                    // Queue full: wait for some deliveries.
                    while pending.len() > 10_000 {
                        if let Some(Ok(Err((e, _)))) = pending.next().await {
                            bail!("producing: {e}");
                        }
                    }
                    if let Some(Ok(Err((e, _)))) = pending.next().await {
                        bail!("producing: {e}");
                    }
                }
            }
        }
    }
    while let Some(r) = pending.next().await {
        match r {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => bail!("producing: {e}"),
            Err(_) => bail!("producing: delivery cancelled"),
        }
    }
    eprintln!(
        "produced {} records to {topic} in {:.1} s",
        args.records,
        produce_start.elapsed().as_secs_f64()
    );
    let (host_url, _) = (args.jdbc_url.clone(), ());
    let mut config = json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "connection.url": host_url,
        "connection.user": args.db_user,
        "connection.password": args.db_password,
        "topics": topic,
        "table.name.format": table,
        "insert.mode": "upsert",
        "pk.mode": "record_value",
        "pk.fields": "order_id",
        "auto.create": "false",
        "tasks.max": "1",
    });
    if let Some(b) = args.sink_batch_size {
        config["batch.size"] = json!(b.to_string());
        config["consumer.override.max.partition.fetch.bytes"] = json!("52428800");
    }
    let created = Instant::now();
    create_connector(http, &args.connect_url, &connector, config).await?;
    let deadline = created + Duration::from_secs(args.timeout_secs);
    let mut first: Option<(Instant, i64)> = None;
    let total = args.records as i64;
    let done;
    loop {
        let off = applied_offset(pool, &connector, &topic).await?;
        let now = Instant::now();
        if off > 0 && first.is_none() {
            first = Some((now, off));
        }
        if off >= total {
            done = now;
            break;
        }
        if now > deadline {
            bail!(
                "sink applied only {off} of {total} records in {} s",
                args.timeout_secs
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (t_first, off_first) = first.unwrap_or((done, 0));
    let steady_secs = (done - t_first).as_secs_f64();
    let steady = if steady_secs > 0.0 {
        (total - off_first) as f64 / steady_secs
    } else {
        f64::NAN
    };
    let whole_secs = (done - created).as_secs_f64();
    let whole = total as f64 / whole_secs;
    println!(
        "| JDBC sink (upsert on order_id, batch.size {}), first to last applied batch | {} | {steady_secs:.2} | {steady:.0} |",
        args.sink_batch_size
            .map(|b| b.to_string())
            .unwrap_or_else(|| "default 3000".into()),
        total - off_first
    );
    println!(
        "| JDBC sink, from connector creation (includes start-up, group join) | {total} | {whole_secs:.2} | {whole:.0} |"
    );
    // Exactly once.
    let r = sqlx::query(&format!(
        "SELECT COUNT(*), COUNT(DISTINCT order_id), CAST(COALESCE(SUM(qty),0) AS SIGNED) FROM {table}"
    ))
    .fetch_one(pool)
    .await?;
    let (count, distinct, sum): (i64, i64, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
    let expected_sum: i64 = (0..args.records).map(|i| (1 + i % 5) as i64).sum();
    let off = applied_offset(pool, &connector, &topic).await?;
    println!();
    println!(
        "Sink check: rows {count} (expected {total}), distinct order ids {distinct}, sum(qty) {sum} (expected {expected_sum}), datasync_sink_offsets.next_offset {off}."
    );
    delete_connector(http, &args.connect_url, &connector).await;
    if count != total || distinct != total || sum != expected_sum || off != total {
        bail!("the sink did not write every record exactly once");
    }
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(pool)
        .await?;
    Ok((steady, whole))
}

async fn e2e(args: &Args, pool: &MySqlPool, http: &reqwest::Client, run: &str) -> Result<()> {
    let src = format!("bench_e2e_src_{run}");
    let dst = format!("bench_e2e_dst_{run}");
    let prefix = format!("bench-e2e-{run}-");
    let topic = format!("{prefix}{src}");
    sqlx::query(&format!(
        "CREATE TABLE {src} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, order_id VARCHAR(64) NOT NULL, qty INT NOT NULL)"
    ))
    .execute(pool)
    .await?;
    create_topic(&args.bootstrap_servers, &topic).await?;
    let common = |m: &mut serde_json::Value| {
        m["connection.url"] = json!(args.jdbc_url);
        m["connection.user"] = json!(args.db_user);
        m["connection.password"] = json!(args.db_password);
        m["tasks.max"] = json!("1");
    };
    let mut source = json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
        "mode": "incrementing", "incrementing.column.name": "id",
        "table.whitelist": src, "topic.prefix": prefix,
        "poll.interval.ms": args.poll_interval_ms.to_string(),
    });
    common(&mut source);
    let mut sink = json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "topics": topic, "table.name.format": dst, "auto.create": "true",
        "insert.mode": "insert", "pk.mode": "record_value", "pk.fields": "id",
    });
    common(&mut sink);
    let (src_name, sink_name) = (
        format!("bench-e2e-src-{run}"),
        format!("bench-e2e-sink-{run}"),
    );
    create_connector(http, &args.connect_url, &sink_name, sink).await?;
    create_connector(http, &args.connect_url, &src_name, source).await?;

    // Warm-up row: wait until the pipeline carries it.
    sqlx::query(&format!(
        "INSERT INTO {src} (order_id, qty) VALUES ('warmup', 1)"
    ))
    .execute(pool)
    .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = sqlx::query(&format!("SELECT COUNT(*) FROM {dst}"))
            .fetch_one(pool)
            .await
            .ok()
            .and_then(|r| r.try_get::<i64, _>(0).ok())
            .unwrap_or(0);
        if seen > 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the warm-up row did not reach {dst} within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let total = args.e2e_rate * args.e2e_secs;
    let inserter = {
        let pool = pool.clone();
        let src = src.clone();
        let rate = args.e2e_rate;
        tokio::spawn(async move {
            let mut committed: HashMap<u64, Instant> = HashMap::new();
            let t0 = Instant::now();
            let period = Duration::from_secs_f64(1.0 / rate as f64);
            for i in 0..total {
                tokio::time::sleep_until((t0 + period.mul_f64(i as f64)).into()).await;
                let r = sqlx::query(&format!("INSERT INTO {src} (order_id, qty) VALUES (?, 1)"))
                    .bind(format!("e2e-{i}"))
                    .execute(&pool)
                    .await?;
                committed.insert(r.last_insert_id(), Instant::now());
            }
            anyhow::Ok(committed)
        })
    };
    let mut seen: HashMap<u64, Instant> = HashMap::new();
    let mut last_id = 1i64; // the warm-up row
    let deadline = Instant::now() + Duration::from_secs(args.e2e_secs + 120);
    while (seen.len() as u64) < total && Instant::now() < deadline {
        let rows = sqlx::query(&format!("SELECT id FROM {dst} WHERE id > ? ORDER BY id"))
            .bind(last_id)
            .fetch_all(pool)
            .await?;
        let now = Instant::now();
        for r in rows {
            let id: i64 = r.try_get(0)?;
            last_id = last_id.max(id);
            seen.entry(id as u64).or_insert(now);
        }
        tokio::time::sleep(Duration::from_millis(args.e2e_poll_ms)).await;
    }
    let committed = inserter.await??;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut missing = 0;
    for (id, t) in &committed {
        match seen.get(id) {
            Some(s) => hist.record((s.saturating_duration_since(*t).as_micros() as u64).max(1))?,
            None => missing += 1,
        }
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "| source → topic → sink, {} rows at {} rows/s, poll.interval.ms={} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {missing} |",
        total,
        args.e2e_rate,
        args.poll_interval_ms,
        hist.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        hist.max() as f64 / 1000.0
    );
    delete_connector(http, &args.connect_url, &src_name).await;
    delete_connector(http, &args.connect_url, &sink_name).await;
    if missing > 0 {
        bail!("{missing} source rows did not reach {dst}");
    }
    sqlx::query(&format!("DROP TABLE {src}"))
        .execute(pool)
        .await?;
    sqlx::query(&format!("DROP TABLE {dst}"))
        .execute(pool)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let run = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let pool = MySqlPoolOptions::new()
        .max_connections(4)
        .connect(&args.database_url)
        .await
        .context("connecting to MariaDB")?;
    let http = reqwest::Client::new();
    http.get(format!("{}/connectors", args.connect_url))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .context("the connect worker's REST API")?;
    println!("### sink-bench (run {run})");
    println!();
    println!(
        "- Command: `target/release/sink-bench {}`",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    println!("- Load average at start: {}", loadavg());
    println!();
    let skip = |p: &str| args.skip.iter().any(|s| s == p);
    let mut base = None;
    let mut sink_rate = None;
    if !skip("baseline") || !skip("sink") {
        println!("| Phase | Rows | Seconds | Rows/s |");
        println!("|---|---:|---:|---:|");
    }
    if !skip("baseline") {
        base = Some(baseline(&args, &pool, &run).await?);
    }
    if !skip("sink") {
        sink_rate = Some(sink(&args, &pool, &http, &run).await?);
    }
    if let (Some(b), Some((s, w))) = (base, sink_rate) {
        println!(
            "Sink / baseline: {:.0} % (first to last batch), {:.0} % (from connector creation).",
            100.0 * s / b,
            100.0 * w / b
        );
    }
    if !skip("e2e") && args.e2e_rate > 0 {
        println!();
        println!("| End-to-end | Rows measured | p50 ms | p90 ms | p99 ms | max ms | missing |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        e2e(&args, &pool, &http, &run).await?;
    }
    println!();
    println!("- Load average at end: {}", loadavg());
    Ok(())
}
