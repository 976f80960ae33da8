//! eos-source-bench: the JDBC source connector (incrementing mode, as the tutorial's
//! `my-source-connect`) with exactly-once source support (KIP-618: the worker's
//! `exactly.once.source.support=enabled`, the connector's `exactly.once.support=required`)
//! against the same connector at least once, each followed by a JDBC sink into a second table,
//! in the same run, rounds alternating.
//!
//! Needs a running broker, MariaDB and two connect workers: one with exactly-once source support
//! enabled (`--eos-connect-url`), one without (`--alo-connect-url`); see
//! `scripts/bench-eos-source.sh`, which starts them all.
//!
//! Per round and mode: a fresh source table is loaded with `--rows` rows (before the clock
//! starts), a JDBC sink (insert, primary key `id`, auto-created table) is created and waited for,
//! then the JDBC source; the bench then polls, every `--poll-ms`, the source's committed offset
//! (`GET /connectors/{name}/offsets`, what the worker remembers once a poll's offsets are
//! committed, or its transaction is) and `MAX(id)` of the sink's table. Source rows/s = rows /
//! (last offset committed − source connector created); end to end = rows / (last row in the
//! target table − source connector created). Afterwards the target table is checked: every id
//! exactly once; and the topic holds exactly `--rows` records read_committed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::Row;

#[derive(Parser, Debug)]
#[command(
    name = "eos-source-bench",
    about = "JDBC source → sink rows/s, exactly-once source against at least once, same run"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap_servers: String,
    /// A connect worker with `exactly.once.source.support=enabled`.
    #[arg(long)]
    eos_connect_url: String,
    /// A connect worker without it (at-least-once sources).
    #[arg(long)]
    alo_connect_url: String,
    /// MariaDB as seen by this benchmark.
    #[arg(long)]
    database_url: String,
    /// The same database as seen by the connect workers (connectors' `connection.url`).
    #[arg(long)]
    jdbc_url: String,
    #[arg(long, default_value = "root")]
    db_user: String,
    #[arg(long, default_value = "test1357")]
    db_password: String,
    /// Rows in the source table of each run.
    #[arg(long, default_value_t = 200_000)]
    rows: u64,
    /// Rounds; each runs at least once then exactly once (or the reverse on even rounds).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// The source's `batch.max.rows` (empty: the connector's default, 100, as the tutorial).
    #[arg(long)]
    batch_max_rows: Option<u32>,
    /// The source's `poll.interval.ms` (a full batch polls again at once either way).
    #[arg(long, default_value_t = 100)]
    poll_interval_ms: u64,
    /// Extra source connector settings for the exactly-once runs, `key=value`, comma-separated
    /// (e.g. `transaction.boundary=interval,transaction.boundary.interval.ms=100`).
    #[arg(long, value_delimiter = ',')]
    eos_extra: Vec<String>,
    /// Only these modes (comma-separated of `alo`, `eos`).
    #[arg(long, value_delimiter = ',', default_value = "alo,eos")]
    modes: Vec<String>,
    /// How often the bench looks at the source's offset and the target table.
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
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

/// (busy, idle) jiffies of the whole machine.
fn cpu_busy_idle() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return (0, 0);
    }
    let idle = v[3] + v[4];
    (v.iter().sum::<u64>() - idle, idle)
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
    config: Value,
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

/// Whether the connector's first task is RUNNING; an error if it FAILED.
async fn task_running(http: &reqwest::Client, url: &str, name: &str) -> Result<bool> {
    let v: Value = match http
        .get(format!("{url}/connectors/{name}/status"))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r.json().await?,
        _ => return Ok(false),
    };
    let state = v["tasks"][0]["state"].as_str().unwrap_or("");
    if state == "FAILED" {
        bail!("{name} failed: {}", v["tasks"][0]["trace"]);
    }
    Ok(state == "RUNNING")
}

/// The highest number among the source connector's committed offsets (its `incrementing`
/// value), 0 before the first commit.
async fn source_offset(http: &reqwest::Client, url: &str, name: &str) -> Result<i64> {
    let v: Value = http
        .get(format!("{url}/connectors/{name}/offsets"))
        .send()
        .await?
        .json()
        .await?;
    fn max_int(v: &Value) -> i64 {
        match v {
            Value::Number(n) => n.as_i64().unwrap_or(0),
            Value::Array(a) => a.iter().map(max_int).max().unwrap_or(0),
            Value::Object(o) => o.values().map(max_int).max().unwrap_or(0),
            _ => 0,
        }
    }
    Ok(v["offsets"]
        .as_array()
        .map(|a| a.iter().map(|o| max_int(&o["offset"])).max().unwrap_or(0))
        .unwrap_or(0))
}

async fn max_id(pool: &MySqlPool, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COALESCE(MAX(id), 0) FROM {table}"))
        .fetch_one(pool)
        .await
        .ok()
        .and_then(|r| r.try_get::<i64, _>(0).ok())
        .unwrap_or(0)
}

/// Records in the topic, read_committed, from the beginning to the end.
fn committed_records(bootstrap: &str, topic: &str) -> Result<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "eos-source-bench-check")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut n = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(_)) => n += 1,
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(n),
            Some(Err(e)) => bail!("reading {topic}: {e}"),
            None => {}
        }
    }
    bail!("{topic}: no end reached within 120 s ({n} records read)")
}

struct Outcome {
    source_rate: f64,
    source_steady: f64,
    e2e_rate: f64,
    busy: f64,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    AtLeastOnce,
    ExactlyOnce,
}

impl Mode {
    fn short(self) -> &'static str {
        match self {
            Mode::AtLeastOnce => "alo",
            Mode::ExactlyOnce => "eos",
        }
    }
}

async fn run_one(
    args: &Args,
    pool: &MySqlPool,
    http: &reqwest::Client,
    run: &str,
    round: u32,
    mode: Mode,
) -> Result<Outcome> {
    let tag = format!("{run}_{round}_{}", mode.short());
    let src = format!("eos_src_{tag}");
    let dst = format!("eos_dst_{tag}");
    let prefix = format!("eosbench-{tag}-");
    let topic = format!("{prefix}{src}");
    let url = match mode {
        Mode::AtLeastOnce => &args.alo_connect_url,
        Mode::ExactlyOnce => &args.eos_connect_url,
    };
    sqlx::query(&format!(
        "CREATE TABLE {src} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         user_id VARCHAR(64) NOT NULL, email VARCHAR(128) NOT NULL, name VARCHAR(64) NOT NULL, \
         qty INT NOT NULL)"
    ))
    .execute(pool)
    .await?;
    let per = 1000u64;
    let mut n = 0u64;
    while n < args.rows {
        let k = (args.rows - n).min(per);
        let values: Vec<String> = (n..n + k)
            .map(|i| format!("('u{i}', 'u{i}@example.com', 'user {i}', {})", 1 + i % 5))
            .collect();
        sqlx::query(&format!(
            "INSERT INTO {src} (user_id, email, name, qty) VALUES {}",
            values.join(", ")
        ))
        .execute(pool)
        .await?;
        n += k;
    }
    let last = max_id(pool, &src).await;
    if last != args.rows as i64 {
        bail!("{src}: MAX(id) {last}, expected {}", args.rows);
    }
    create_topic(&args.bootstrap_servers, &topic).await?;

    let common = |m: &mut Value| {
        m["connection.url"] = json!(args.jdbc_url);
        m["connection.user"] = json!(args.db_user);
        m["connection.password"] = json!(args.db_password);
        m["tasks.max"] = json!("1");
    };
    let mut sink = json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "topics": topic, "table.name.format": dst, "auto.create": "true",
        "insert.mode": "insert", "pk.mode": "record_value", "pk.fields": "id",
    });
    common(&mut sink);
    let mut source = json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
        "mode": "incrementing", "incrementing.column.name": "id",
        "table.whitelist": src, "topic.prefix": prefix,
        "poll.interval.ms": args.poll_interval_ms.to_string(),
    });
    common(&mut source);
    if let Some(b) = args.batch_max_rows {
        source["batch.max.rows"] = json!(b.to_string());
    }
    if mode == Mode::ExactlyOnce {
        source["exactly.once.support"] = json!("required");
        for kv in &args.eos_extra {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--eos-extra {kv}: not key=value"))?;
            source[k] = json!(v);
        }
    }
    let (src_name, sink_name) = (format!("eos-src-{tag}"), format!("eos-sink-{tag}"));
    create_connector(http, url, &sink_name, sink).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !task_running(http, url, &sink_name).await? {
        if Instant::now() > deadline {
            bail!("{sink_name} not RUNNING within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the sink's consumer join its group before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let load = loadavg();
    let cpu0 = cpu_busy_idle();
    let t0 = Instant::now();
    create_connector(http, url, &src_name, source).await?;
    let total = args.rows as i64;
    let deadline = t0 + Duration::from_secs(args.timeout_secs);
    let mut src_first: Option<(Instant, i64)> = None;
    let mut src_done: Option<Instant> = None;
    let mut dst_done: Option<Instant> = None;
    let mut polls = 0u64;
    while src_done.is_none() || dst_done.is_none() {
        let now = Instant::now();
        if now > deadline {
            bail!(
                "{mode}: not done within {} s (source offset {}, target MAX(id) {})",
                args.timeout_secs,
                source_offset(http, url, &src_name).await.unwrap_or(-1),
                max_id(pool, &dst).await,
                mode = mode.short()
            );
        }
        if src_done.is_none() {
            let off = source_offset(http, url, &src_name).await.unwrap_or(0);
            let now = Instant::now();
            if off > 0 && src_first.is_none() {
                src_first = Some((now, off));
            }
            if off >= total {
                src_done = Some(now);
            }
        }
        if dst_done.is_none() && max_id(pool, &dst).await >= total {
            dst_done = Some(Instant::now());
        }
        polls += 1;
        if polls.is_multiple_of(50) {
            // Fails the run if either connector's task failed.
            task_running(http, url, &src_name).await?;
            task_running(http, url, &sink_name).await?;
        }
        tokio::time::sleep(Duration::from_millis(args.poll_ms)).await;
    }
    let cpu1 = cpu_busy_idle();
    let busy = if cpu1.0 + cpu1.1 > cpu0.0 + cpu0.1 {
        100.0 * (cpu1.0 - cpu0.0) as f64 / ((cpu1.0 - cpu0.0) + (cpu1.1 - cpu0.1)) as f64
    } else {
        f64::NAN
    };
    let (src_done, dst_done) = (src_done.unwrap_or(t0), dst_done.unwrap_or(t0));
    let src_secs = (src_done - t0).as_secs_f64();
    let e2e_secs = (dst_done - t0).as_secs_f64();
    let (t_first, off_first) = src_first.unwrap_or((src_done, 0));
    let steady_secs = (src_done - t_first).as_secs_f64();
    let outcome = Outcome {
        source_rate: total as f64 / src_secs,
        source_steady: if steady_secs > 0.0 {
            (total - off_first) as f64 / steady_secs
        } else {
            f64::NAN
        },
        e2e_rate: total as f64 / e2e_secs,
        busy,
    };

    // Exactly once in the target table and in the topic (read_committed).
    let r = sqlx::query(&format!(
        "SELECT COUNT(*), COUNT(DISTINCT id), CAST(COALESCE(SUM(qty), 0) AS SIGNED) FROM {dst}"
    ))
    .fetch_one(pool)
    .await?;
    let (count, distinct, sum): (i64, i64, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
    let expected_sum: i64 = (0..args.rows).map(|i| (1 + i % 5) as i64).sum();
    delete_connector(http, url, &src_name).await;
    delete_connector(http, url, &sink_name).await;
    let (b, t) = (args.bootstrap_servers.clone(), topic.clone());
    let in_topic = tokio::task::spawn_blocking(move || committed_records(&b, &t)).await??;
    let mode_name = match mode {
        Mode::AtLeastOnce => "at least once",
        Mode::ExactlyOnce => "exactly once",
    };
    println!(
        "| {round} | {mode_name} | {total} | {src_secs:.2} | {:.0} | {:.0} | {e2e_secs:.2} | {:.0} | {busy:.0} % | {load} | {in_topic} / {count} / {distinct} |",
        outcome.source_rate, outcome.source_steady, outcome.e2e_rate
    );
    if count != total || distinct != total || sum != expected_sum {
        bail!("{dst}: {count} rows, {distinct} distinct ids, sum(qty) {sum} (expected {total}, {total}, {expected_sum})");
    }
    if mode == Mode::ExactlyOnce && in_topic != args.rows {
        bail!(
            "{topic}: {in_topic} records read_committed, expected {}",
            args.rows
        );
    }
    sqlx::query(&format!("DROP TABLE {src}"))
        .execute(pool)
        .await?;
    sqlx::query(&format!("DROP TABLE {dst}"))
        .execute(pool)
        .await?;
    Ok(outcome)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
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
    for url in [&args.alo_connect_url, &args.eos_connect_url] {
        http.get(format!("{url}/connectors"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("the connect worker's REST API at {url}"))?;
    }
    println!("### eos-source-bench (run {run})");
    println!();
    println!(
        "- Command: `target/release/eos-source-bench {}`",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    println!(
        "- Source: JDBC source, incrementing on `id`, `batch.max.rows` {}, `poll.interval.ms` {}; exactly once adds `exactly.once.support=required`{} on the worker with `exactly.once.source.support=enabled`. Sink: JDBC sink, insert, `pk.mode=record_value` `pk.fields=id`, auto-created table.",
        args.batch_max_rows
            .map(|b| b.to_string())
            .unwrap_or_else(|| "default (100)".into()),
        args.poll_interval_ms,
        if args.eos_extra.is_empty() {
            String::new()
        } else {
            format!(", {}", args.eos_extra.join(", "))
        }
    );
    println!("- Load average at start: {}", loadavg());
    println!();
    println!("| Round | Source | Rows | Source s | Source rows/s | Source rows/s, first to last commit | Source → target s | End-to-end rows/s | Machine CPU busy | Load average before | Topic (read_committed) / target rows / distinct ids |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
    let modes: Vec<Mode> = [Mode::AtLeastOnce, Mode::ExactlyOnce]
        .into_iter()
        .filter(|m| args.modes.iter().any(|s| s == m.short()))
        .collect();
    let mut alo: (Vec<f64>, Vec<f64>) = Default::default();
    let mut eos: (Vec<f64>, Vec<f64>) = Default::default();
    for round in 1..=args.rounds {
        let mut order = modes.clone();
        if round % 2 == 0 {
            order.reverse();
        }
        for mode in order {
            let o = run_one(&args, &pool, &http, &run, round, mode).await?;
            let acc = match mode {
                Mode::AtLeastOnce => &mut alo,
                Mode::ExactlyOnce => &mut eos,
            };
            acc.0.push(o.source_rate);
            acc.1.push(o.e2e_rate);
            let _ = o.busy;
            sync_pause().await;
        }
    }
    println!();
    let (a_src, a_e2e) = (median(&mut alo.0), median(&mut alo.1));
    let (e_src, e_e2e) = (median(&mut eos.0), median(&mut eos.1));
    println!(
        "Medians: at least once {a_src:.0} rows/s into the topic, {a_e2e:.0} rows/s end to end; exactly once {e_src:.0} rows/s into the topic, {e_e2e:.0} rows/s end to end."
    );
    if !alo.0.is_empty() && !eos.0.is_empty() {
        println!(
            "Exactly once / at least once (medians): {:.0} % into the topic, {:.0} % end to end (target ≥ 70 %).",
            100.0 * e_src / a_src,
            100.0 * e_e2e / a_e2e
        );
    }
    println!();
    println!("- Load average at end: {}", loadavg());
    Ok(())
}

/// A pause between runs, so that one run's background work (log flushes, the sink's last
/// commits, MariaDB's purge) is not charged to the next.
async fn sync_pause() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}
