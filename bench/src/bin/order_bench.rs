//! order-bench: HTTP load on `POST /order-service/{userId}/orders` of one or more running
//! order-service instances, then a check that MariaDB (written only by the connect worker's
//! `orders-sink`) holds exactly the orders that were answered 201.
//!
//! Two load models:
//! * open loop (`--rate R`, the default): requests are scheduled at R/s whatever the service
//!   does, like wrk2; latency runs from the *scheduled* send time, so a stalled service is not
//!   hidden by a stalled client (no coordinated omission);
//! * closed loop (`--rate 0 --connections N`): N workers each send the next request when the
//!   previous one is answered; latency runs from the actual send.
//!
//! Requests alternate round-robin between the `--targets`. Only requests scheduled after the
//! warm-up count in the rate and latency figures; every 201 (warm-up included) is verified.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use sqlx::mysql::MySqlPoolOptions;
use sqlx::Row;
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
#[command(
    name = "order-bench",
    about = "Load test of POST /order-service/{userId}/orders"
)]
struct Args {
    /// Base URLs of the order-service instances, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    targets: Vec<String>,
    /// MariaDB the orders-sink writes to (for the exactly-the-201s check).
    #[arg(long)]
    database_url: String,
    /// Open-loop target rate in orders/s; 0 = closed loop with --connections workers.
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Closed-loop workers (only with --rate 0).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 30)]
    duration_secs: u64,
    /// Warm-up seconds (load applied, not counted in the figures).
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Distinct user ids the orders are spread over.
    #[arg(long, default_value_t = 100)]
    users: u64,
    /// Per-request timeout of the HTTP client.
    #[arg(long, default_value_t = 10_000)]
    request_timeout_ms: u64,
    /// How long to wait for the sink to write every 201'd order.
    #[arg(long, default_value_t = 180)]
    verify_timeout_secs: u64,
    /// Label for the output.
    #[arg(long, default_value = "orders")]
    label: String,
}

struct Outcome {
    /// Counted in the figures (scheduled after the warm-up).
    measured: bool,
    /// Completion time, relative to the start of the measured window.
    done_at: Duration,
    latency: Duration,
    /// HTTP status, or 0 for a transport error / timeout.
    status: u16,
    order_id: Option<String>,
}

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

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The URL of request `i`: target `i % targets`, user `i % users`.
fn url_for(urls: &[Vec<reqwest::Url>], i: u64) -> &reqwest::Url {
    let per_target = &urls[(i as usize) % urls.len()];
    &per_target[(i as usize) % per_target.len()]
}

/// The part of a 201 body the check needs.
#[derive(serde::Deserialize)]
struct Created<'a> {
    #[serde(rename = "orderId", borrow)]
    order_id: std::borrow::Cow<'a, str>,
}

/// One POST. The load generator shares the two cores with what it measures, so it does as little
/// as it can per request: the URL is parsed once per (target, user), the body is formatted
/// straight into a string and only `orderId` is read from the answer.
async fn post_one(client: &reqwest::Client, url: &reqwest::Url, n: u64) -> (u16, Option<String>) {
    let body = format!(
        r#"{{"productId":"BENCH-{}","qty":{},"unitPrice":{}}}"#,
        n % 1000,
        1 + (n % 5),
        100 + (n % 7) * 10
    );
    let request = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    match request.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await;
            let id = match (status, bytes) {
                (201, Ok(b)) => serde_json::from_slice::<Created>(&b)
                    .ok()
                    .map(|c| c.order_id.into_owned()),
                _ => None,
            };
            (status, id)
        }
        Err(_) => (0, None),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let run = format!(
        "bench{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let users: Vec<String> = (0..args.users.max(1))
        .map(|u| format!("{run}-u{u}"))
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_millis(args.request_timeout_ms))
        .tcp_nodelay(true)
        .build()?;
    for t in &args.targets {
        client
            .get(format!("{t}/order-service/health_check"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("health check of {t}"))?;
    }

    let warmup = Duration::from_secs(args.warmup_secs);
    let measure = Duration::from_secs(args.duration_secs);
    let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
    let t0 = Instant::now();
    let measure_start = t0 + warmup;
    let end = measure_start + measure;
    let cpu0 = std::sync::Mutex::new(None::<(u64, u64)>);
    let load_before = loadavg();
    let counter = Arc::new(AtomicU64::new(0));
    // Request i goes to target i % targets and user i % users, as before; each URL parsed once.
    let urls: Vec<Vec<reqwest::Url>> = args
        .targets
        .iter()
        .map(|t| {
            users
                .iter()
                .map(|u| reqwest::Url::parse(&format!("{t}/order-service/{u}/orders")))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()
        .context("a --targets entry is not a valid URL")?;
    let urls = Arc::new(urls);
    let model;

    if args.rate > 0 {
        model = format!("open loop, {} orders/s scheduled", args.rate);
        let total = args.rate * (args.warmup_secs + args.duration_secs);
        let period = Duration::from_secs_f64(1.0 / args.rate as f64);
        for i in 0..total {
            let intended = t0 + period.mul_f64(i as f64);
            tokio::time::sleep_until(intended.into()).await;
            if intended >= measure_start && cpu0.lock().unwrap().is_none() {
                *cpu0.lock().unwrap() = Some(cpu_busy_idle());
            }
            let (client, tx, urls) = (client.clone(), tx.clone(), urls.clone());
            tokio::spawn(async move {
                let url = url_for(&urls, i);
                let (status, order_id) = post_one(&client, url, i).await;
                let now = Instant::now();
                let _ = tx.send(Outcome {
                    measured: intended >= measure_start,
                    done_at: now.saturating_duration_since(measure_start),
                    latency: now - intended,
                    status,
                    order_id,
                });
            });
        }
    } else {
        model = format!("closed loop, {} concurrent connections", args.connections);
        let mut workers = Vec::new();
        for _ in 0..args.connections.max(1) {
            let (client, tx, urls, counter) =
                (client.clone(), tx.clone(), urls.clone(), counter.clone());
            workers.push(tokio::spawn(async move {
                loop {
                    let start = Instant::now();
                    if start >= end {
                        break;
                    }
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let url = url_for(&urls, i);
                    let (status, order_id) = post_one(&client, url, i).await;
                    let now = Instant::now();
                    let _ = tx.send(Outcome {
                        measured: start >= measure_start && now <= end,
                        done_at: now.saturating_duration_since(measure_start),
                        latency: now - start,
                        status,
                        order_id,
                    });
                }
            }));
        }
        tokio::time::sleep_until(measure_start.into()).await;
        *cpu0.lock().unwrap() = Some(cpu_busy_idle());
        for w in workers {
            w.await?;
        }
    }
    drop(tx);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut ok_ids: Vec<String> = Vec::new();
    let (mut measured, mut measured_ok, mut errors_by_status) =
        (0u64, 0u64, std::collections::BTreeMap::<u16, u64>::new());
    let mut last_done = Duration::ZERO;
    let mut cpu1 = None;
    while let Some(o) = rx.recv().await {
        if cpu1.is_none() && Instant::now() >= end {
            cpu1 = Some(cpu_busy_idle());
        }
        if o.status == 201 {
            if let Some(id) = &o.order_id {
                ok_ids.push(id.clone());
            }
        }
        if o.measured {
            measured += 1;
            last_done = last_done.max(o.done_at);
            hist.record((o.latency.as_micros() as u64).clamp(1, 120_000_000))?;
            if o.status == 201 {
                measured_ok += 1;
            } else {
                *errors_by_status.entry(o.status).or_default() += 1;
            }
        }
    }
    let cpu1 = cpu1.unwrap_or_else(cpu_busy_idle);
    let self_cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let f: Vec<u64> = s
                .rsplit(')')
                .next()?
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 2).then(|| (f[0] + f[1]) as f64 / 100.0)
        })
        .unwrap_or(f64::NAN);
    let load_after = loadavg();
    let cpu_util = match *cpu0.lock().unwrap() {
        Some((b0, i0)) if cpu1.0 + cpu1.1 > b0 + i0 => {
            100.0 * (cpu1.0 - b0) as f64 / ((cpu1.0 - b0) + (cpu1.1 - i0)) as f64
        }
        _ => f64::NAN,
    };
    // The window: the measured scheduling period, or longer if the answers came late.
    let window = last_done.max(measure).as_secs_f64();
    let ok_rate = measured_ok as f64 / window;
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;

    println!("### order-bench {}, {}", args.label, model);
    println!();
    println!(
        "- Command: `target/release/order-bench {}`",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    println!(
        "- Load average before/after: {load_before} / {load_after}; whole-machine CPU busy during the measured window: {cpu_util:.0} %; order-bench's own CPU: {self_cpu:.1} s (user+system, assuming 100 ticks/s)"
    );
    println!();
    println!("| Load model | Requests measured | 201 | errors | 201/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {model} | {measured} | {measured_ok} | {} | {ok_rate:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
        measured - measured_ok,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        hist.max() as f64 / 1000.0
    );
    if !errors_by_status.is_empty() {
        println!();
        println!("Non-201 answers by status (0 = transport error or client timeout): {errors_by_status:?}");
    }

    // Exactly the 201s in MariaDB.
    let pool = MySqlPoolOptions::new()
        .max_connections(2)
        .connect(&args.database_url)
        .await
        .context("connecting to MariaDB")?;
    let like = format!("{run}-u%");
    let expected: HashSet<String> = ok_ids.into_iter().collect();
    let verify_start = Instant::now();
    let deadline = verify_start + Duration::from_secs(args.verify_timeout_secs);
    let mut count: i64;
    loop {
        count = sqlx::query("SELECT COUNT(*) FROM orders WHERE user_id LIKE ?")
            .bind(&like)
            .fetch_one(&pool)
            .await?
            .try_get(0)?;
        if count as usize >= expected.len() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = verify_start.elapsed();
    // Records answered 503 after reaching the broker could still arrive; give them a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows = sqlx::query("SELECT order_id FROM orders WHERE user_id LIKE ?")
        .bind(&like)
        .fetch_all(&pool)
        .await?;
    let mut in_db = HashSet::new();
    let mut dup = 0u64;
    for r in rows {
        let id: String = r.try_get(0)?;
        if !in_db.insert(id) {
            dup += 1;
        }
    }
    let missing = expected.difference(&in_db).count();
    let extra = in_db.difference(&expected).count();
    println!();
    println!(
        "Verification (run id `{run}`): {} orders answered 201 (warm-up included); MariaDB `orders` holds {} of this run's rows after {:.1} s of sink drain (since the last answer); missing {missing}, extra {extra}, duplicates {dup}.",
        expected.len(),
        in_db.len(),
        drained.as_secs_f64()
    );
    if missing > 0 || dup > 0 {
        bail!("MariaDB does not hold exactly the 201'd orders");
    }
    if extra > 0 {
        println!("(extra rows are orders answered non-201 whose record nevertheless reached the broker: librdkafka's \"possibly persisted\" case)");
    }
    Ok(())
}
