//! `broker-bench`: a producer + consumer benchmark for a Kafka-wire-compatible broker, in the
//! spirit of `kafka-producer-perf-test` and `kafka-consumer-perf-test`.
//!
//! 1. Creates the topic through the AdminClient (an existing topic is reused).
//! 2. Produces `--num-records` records of `--record-size` bytes with a `ThreadedProducer` (or
//!    `--producers` of them, each its own client sending its share), paced
//!    to `--throughput` records/s when set, and records every record's delivery latency
//!    (`send()` call → delivery report) in an HDR histogram.
//! 3. Optionally samples the broker's resident memory (`VmRSS`) every 100 ms.
//! 4. Optionally consumes the produced records back with an assigned `BaseConsumer` and checks
//!    that exactly `--num-records` records arrive.
//! 5. Prints a markdown block for `docs/benchmarks.md`.
//!
//! MB means 1,000,000 bytes of record payload (key + value), not counting protocol overhead.
//! Exits non-zero on any delivery error, lost or extra record, or timeout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use clap::Parser;
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const MB: f64 = 1_000_000.0;
const MIB: f64 = 1_048_576.0;
const META_TIMEOUT: Duration = Duration::from_secs(30);

/// Producer and consumer benchmark for a Kafka-wire-compatible broker.
#[derive(Parser, Debug)]
#[command(name = "broker-bench", version, about)]
struct Cli {
    /// Broker address(es), HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    bootstrap_servers: String,

    /// Topic to produce to; created with --partitions partitions if it does not exist.
    #[arg(long)]
    topic: String,

    /// Number of records to produce (and consume).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    num_records: u64,

    /// Value size of each record in bytes.
    #[arg(long)]
    record_size: usize,

    /// Key size in bytes; 0 sends records without a key (sticky partitioning).
    #[arg(long, default_value_t = 0)]
    key_size: usize,

    /// Producer acks: all (= -1), 1 or 0.
    #[arg(long, default_value = "all", value_parser = ["all", "-1", "1", "0"])]
    acks: String,

    /// Producer linger.ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,

    /// Producer batch.size in bytes (one partition's record batch).
    #[arg(long, default_value_t = 1_048_576)]
    batch_size: u64,

    /// Target records/s, paced evenly; -1 = as fast as possible.
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    throughput: f64,

    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 1)]
    partitions: i32,

    /// Producer compression.type: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    compression: String,

    /// Producer enable.idempotence.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    idempotence: bool,

    /// Produce in transactions of this many records each (transactional.id set, begin /
    /// commit around every N records, like kafka-producer-perf-test's transactions); 0 = none.
    #[arg(long, default_value_t = 0)]
    transaction_records: u64,

    /// Producers sending at once, each with its own client, connection and (in transactional
    /// mode) transactional.id, each an even share of --num-records (and of --throughput).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    producers: u64,

    /// Consume the produced records back and measure consumer throughput.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    consume: bool,

    /// PID of the broker; its VmRSS is sampled every 100 ms and the peak is reported.
    #[arg(long)]
    broker_pid: Option<u32>,

    /// librdkafka queue.buffering.max.messages of the producer.
    #[arg(long, default_value_t = 2_000_000)]
    queue_max_messages: u64,

    /// librdkafka queue.buffering.max.kbytes of the producer.
    #[arg(long, default_value_t = 1_048_576)]
    queue_max_kbytes: u64,

    /// librdkafka message.timeout.ms: a record not acknowledged by then fails its delivery.
    #[arg(long, default_value_t = 120_000)]
    message_timeout_ms: u64,

    /// Consumer: give up when no record arrives for this many seconds.
    #[arg(long, default_value_t = 60)]
    consume_idle_timeout_s: u64,

    /// Extra producer property KEY=VALUE (repeatable), applied last.
    #[arg(long = "producer-prop", value_name = "KEY=VALUE")]
    producer_props: Vec<String>,

    /// Extra consumer property KEY=VALUE (repeatable), applied last.
    #[arg(long = "consumer-prop", value_name = "KEY=VALUE")]
    consumer_props: Vec<String>,

    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,

    /// Label of this run in the markdown table (default: "produce"/"consume").
    #[arg(long)]
    label: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// librdkafka contexts
// ---------------------------------------------------------------------------------------------

/// Forwards librdkafka warnings and errors to stderr (the `log` crate has no logger here) and
/// counts client-level errors.
#[derive(Default)]
struct LogContext {
    client_errors: AtomicU64,
}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            eprintln!("librdkafka {level:?} [{fac}]: {log_message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.client_errors.fetch_add(1, Ordering::Relaxed);
        eprintln!("librdkafka client error: {error}: {reason}");
    }
}

impl ConsumerContext for LogContext {}

/// Delivery-report state of the produce phase. Updated from the producer's polling thread.
struct Deliveries {
    /// Time zero for the send timestamps carried in each record's opaque.
    t0: Instant,
    /// Send → delivery report latency, microseconds.
    latency_us: Mutex<Histogram<u64>>,
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Distinct delivery error → count.
    errors: Mutex<BTreeMap<String, u64>>,
    /// Time of the last delivery report, nanoseconds since `t0`.
    last_report_ns: AtomicU64,
}

struct BenchProducerContext {
    log: LogContext,
    deliveries: Arc<Deliveries>,
}

impl ClientContext for BenchProducerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ProducerContext for BenchProducerContext {
    /// Send time of the record, nanoseconds since `Deliveries::t0` (no allocation per record).
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let d = &self.deliveries;
        let now_ns = d.t0.elapsed().as_nanos() as u64;
        d.last_report_ns.fetch_max(now_ns, Ordering::Relaxed);
        match result {
            Ok(_) => {
                let us = now_ns.saturating_sub(sent_ns as u64) / 1_000;
                d.latency_us
                    .lock()
                    .expect("latency histogram lock")
                    .saturating_record(us.max(1));
                d.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, msg)) => {
                let n = d.failed.fetch_add(1, Ordering::Relaxed);
                let what = format!("{err} (partition {})", msg.partition());
                if n < 5 {
                    eprintln!("delivery failed: {what}");
                }
                *d.errors
                    .lock()
                    .expect("delivery errors lock")
                    .entry(err.to_string())
                    .or_default() += 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Broker RSS sampling
// ---------------------------------------------------------------------------------------------

/// Reads a `kB` field (e.g. `VmRSS`, `VmHWM`) of /proc/PID/status.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Samples a process's VmRSS every 100 ms on a background thread; `take_peak` returns the peak
/// since the previous call.
struct RssSampler {
    pid: u32,
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> anyhow::Result<Self> {
        let first = proc_status_kb(pid, "VmRSS")
            .with_context(|| format!("cannot read VmRSS from /proc/{pid}/status"))?;
        let peak_kb = Arc::new(AtomicU64::new(first));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (peak_kb, stop) = (peak_kb.clone(), stop.clone());
            thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(kb) = proc_status_kb(pid, "VmRSS") {
                            peak_kb.fetch_max(kb, Ordering::Relaxed);
                        }
                        thread::sleep(Duration::from_millis(100));
                    }
                })?
        };
        Ok(Self {
            pid,
            peak_kb,
            stop,
            handle: Some(handle),
        })
    }

    /// Peak VmRSS (kB) since the last call (or start), then restarts from the current RSS.
    fn take_peak(&self) -> u64 {
        let now = proc_status_kb(self.pid, "VmRSS").unwrap_or(0);
        self.peak_kb.swap(now, Ordering::Relaxed).max(now)
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------

fn apply_props(config: &mut ClientConfig, props: &[String]) -> anyhow::Result<()> {
    for prop in props {
        let (k, v) = prop
            .split_once('=')
            .with_context(|| format!("property {prop:?} is not KEY=VALUE"))?;
        config.set(k.trim(), v.trim());
    }
    Ok(())
}

/// Creates the topic; returns whether it already existed.
fn create_topic(cli: &Cli) -> anyhow::Result<bool> {
    let admin: AdminClient<LogContext> = ClientConfig::new()
        .set("bootstrap.servers", &cli.bootstrap_servers)
        .create_with_context(LogContext::default())
        .context("creating the admin client")?;
    let topic = NewTopic::new(&cli.topic, cli.partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new()
        .operation_timeout(Some(META_TIMEOUT))
        .request_timeout(Some(META_TIMEOUT));
    let results = futures::executor::block_on(admin.create_topics([&topic], &opts))
        .context("CreateTopics request failed")?;
    let mut existed = false;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => existed = true,
            Err((name, code)) => bail!("creating topic {name}: {code} ({code:?})"),
        }
    }
    Ok(existed)
}

/// Partition count and per-partition high watermarks of the topic.
fn topic_watermarks(consumer: &BaseConsumer<LogContext>, topic: &str) -> anyhow::Result<Vec<i64>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), META_TIMEOUT)
        .context("fetching topic metadata")?;
    let t = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .with_context(|| format!("topic {topic} missing from metadata"))?;
    if let Some(err) = t.error() {
        bail!("metadata error for topic {topic}: {err:?}");
    }
    let mut partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    if partitions.is_empty() {
        bail!("topic {topic} has no partitions in metadata");
    }
    partitions
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            if p != i as i32 {
                bail!(
                    "topic {topic}: partition ids are not 0..{}",
                    partitions.len()
                );
            }
            let (_low, high) = consumer
                .fetch_watermarks(topic, p, META_TIMEOUT)
                .with_context(|| format!("fetching watermarks of {topic}-{p}"))?;
            Ok(high)
        })
        .collect()
}

fn new_consumer(cli: &Cli) -> anyhow::Result<BaseConsumer<LogContext>> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &cli.bootstrap_servers)
        .set(
            "group.id",
            format!("broker-bench-{}-{nanos}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("fetch.min.bytes", "1")
        .set("queued.max.messages.kbytes", "262144");
    apply_props(&mut config, &cli.consumer_props)?;
    config
        .create_with_context(LogContext::default())
        .context("creating the consumer")
}

struct ProduceResult {
    elapsed: Duration,
    delivered: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    queue_full_retries: u64,
    client_errors: u64,
    latency_us: Histogram<u64>,
}

/// Fills a pool of pseudo-random bytes (xorshift64*) from which record values are sliced, so
/// that records differ without generating bytes in the send loop.
fn payload_pool(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut pool = Vec::with_capacity(len + 8);
    while pool.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        pool.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    pool.truncate(len);
    pool
}

const POOL_SLACK: usize = 4096;

/// The records producer `index` of `producers` sends: an even share of `0..n`.
fn share(n: u64, producers: u64, index: u64) -> std::ops::Range<u64> {
    n * index / producers..n * (index + 1) / producers
}

/// What one producer thread reports besides its delivery reports.
#[derive(Default)]
struct ProducerTotals {
    queue_full_retries: u64,
    client_errors: u64,
}

fn produce(cli: &Cli) -> anyhow::Result<ProduceResult> {
    let deliveries = Arc::new(Deliveries {
        t0: Instant::now(),
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3)?),
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        errors: Mutex::new(BTreeMap::new()),
        last_report_ns: AtomicU64::new(0),
    });
    let pool = payload_pool(cli.record_size + POOL_SLACK);
    let producers = cli.producers;
    let n = cli.num_records;
    // Every producer is created (and its init_transactions done) before the clock starts.
    let ready = std::sync::Barrier::new(producers as usize + 1);
    let (totals, elapsed) = thread::scope(|scope| {
        let handles: Vec<_> = (0..producers)
            .map(|index| {
                let (deliveries, pool, ready) = (deliveries.clone(), &pool, &ready);
                thread::Builder::new()
                    .name(format!("producer-{index}"))
                    .spawn_scoped(scope, move || {
                        produce_share(
                            cli,
                            index,
                            share(n, producers, index),
                            &deliveries,
                            pool,
                            ready,
                        )
                    })
            })
            .collect();
        let handles = handles
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .context("starting the producer threads");
        let handles = match handles {
            Ok(handles) => handles,
            Err(e) => {
                // The threads that did start wait for this barrier; let them run and end.
                ready.wait();
                return Err(e);
            }
        };
        ready.wait();
        let start = Instant::now();
        let mut totals = ProducerTotals::default();
        let mut first_error = None;
        for h in handles {
            match h.join() {
                Ok(Ok(t)) => {
                    totals.queue_full_retries += t.queue_full_retries;
                    totals.client_errors += t.client_errors;
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(anyhow::anyhow!("a producer thread panicked"));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok((totals, start.elapsed())),
        }
    })?;
    // The polling threads may still be running the last callbacks.
    let wait_until = Instant::now() + Duration::from_secs(5);
    while deliveries.delivered.load(Ordering::Relaxed) + deliveries.failed.load(Ordering::Relaxed)
        < n
        && Instant::now() < wait_until
    {
        thread::sleep(Duration::from_millis(1));
    }
    let delivered = deliveries.delivered.load(Ordering::Relaxed);
    let failed = deliveries.failed.load(Ordering::Relaxed);
    let errors = deliveries.errors.lock().expect("errors lock").clone();
    let latency_us = deliveries
        .latency_us
        .lock()
        .expect("histogram lock")
        .clone();
    Ok(ProduceResult {
        elapsed,
        delivered,
        failed,
        errors,
        queue_full_retries: totals.queue_full_retries,
        client_errors: totals.client_errors,
        latency_us,
    })
}

/// One producer (its own client, connection and transactional.id): sends records `range`,
/// waits at `ready` once it is set up, and returns once all of them have a delivery report.
fn produce_share(
    cli: &Cli,
    index: u64,
    range: std::ops::Range<u64>,
    deliveries: &Arc<Deliveries>,
    pool: &[u8],
    ready: &std::sync::Barrier,
) -> anyhow::Result<ProducerTotals> {
    let set_up = new_producer(cli, index, deliveries);
    // Everyone waits here, failed or not, so that no thread waits for ever.
    ready.wait();
    let producer = set_up?;
    let mut key = vec![0u8; cli.key_size];
    let interval_ns = (cli.throughput > 0.0).then(|| 1e9 * cli.producers as f64 / cli.throughput);
    let mut queue_full_retries = 0u64;
    let txn_timeout = Duration::from_millis(cli.message_timeout_ms);
    let per_txn = cli.transaction_records;

    let start = Instant::now();
    for (k, i) in range.clone().enumerate() {
        let k = k as u64;
        if per_txn > 0 && k.is_multiple_of(per_txn) {
            if k > 0 {
                wait_delivered(&producer, txn_timeout);
                producer
                    .commit_transaction(txn_timeout)
                    .with_context(|| format!("committing the transaction ending at record {i}"))?;
            }
            producer.begin_transaction().context("begin_transaction")?;
        }
        if let Some(interval_ns) = interval_ns {
            // Even pacing: this producer's record k is due at start + k * interval.
            let due = start + Duration::from_nanos((k as f64 * interval_ns) as u64);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
        }
        let off = (i as usize).wrapping_mul(61) % POOL_SLACK;
        let value = &pool[off..off + cli.record_size];
        // Like the Java tool, latency starts before send(), so time spent waiting for buffer
        // space counts.
        let sent_ns = deliveries.t0.elapsed().as_nanos() as usize;
        let mut record =
            BaseRecord::<[u8], [u8], usize>::with_opaque_to(&cli.topic, sent_ns).payload(value);
        if !key.is_empty() {
            let idx = i.to_be_bytes();
            let k = key.len().min(8);
            let kl = key.len();
            key[kl - k..].copy_from_slice(&idx[8 - k..]);
            record = record.key(&key[..]);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    queue_full_retries += 1;
                    record = r;
                    thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => bail!("send() of record {i} failed: {e}"),
            }
        }
    }
    if per_txn > 0 && !range.is_empty() {
        wait_delivered(&producer, txn_timeout);
        producer
            .commit_transaction(txn_timeout)
            .context("committing the last transaction")?;
    }
    if index == 0 {
        eprintln!(
            "produce: {} records enqueued in {:.2} s by producer 0 of {}, waiting for delivery reports",
            range.end - range.start,
            start.elapsed().as_secs_f64(),
            cli.producers
        );
    }
    // flush() returns once every record has a delivery report (delivered, failed or timed out).
    let flush_deadline = Duration::from_millis(cli.message_timeout_ms) + Duration::from_secs(60);
    if let Err(e) = producer.flush(flush_deadline) {
        eprintln!("produce: flush failed: {e}");
    }
    let client_errors = producer.context().log.client_errors.load(Ordering::Relaxed);
    Ok(ProducerTotals {
        queue_full_retries,
        client_errors,
    })
}

/// Producer `index`'s client, with `init_transactions` done in transactional mode.
fn new_producer(
    cli: &Cli,
    index: u64,
    deliveries: &Arc<Deliveries>,
) -> anyhow::Result<ThreadedProducer<BenchProducerContext>> {
    // librdkafka caps a MessageSet at message.max.bytes too, so raise it to fit batch.size.
    let message_max_bytes = cli.batch_size.max(1_000_000) + 65_536;
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &cli.bootstrap_servers)
        .set("acks", &cli.acks)
        .set("linger.ms", cli.linger_ms.to_string())
        .set("batch.size", cli.batch_size.to_string())
        .set("message.max.bytes", message_max_bytes.to_string())
        .set("batch.num.messages", "1000000")
        .set("compression.type", &cli.compression)
        .set("enable.idempotence", cli.idempotence.to_string())
        .set(
            "queue.buffering.max.messages",
            cli.queue_max_messages.to_string(),
        )
        .set(
            "queue.buffering.max.kbytes",
            cli.queue_max_kbytes.to_string(),
        )
        .set("message.timeout.ms", cli.message_timeout_ms.to_string());
    if cli.transaction_records > 0 {
        config
            .set(
                "transactional.id",
                format!("broker-bench-{}-{index}", std::process::id()),
            )
            // librdkafka requires message.timeout.ms <= transaction.timeout.ms.
            .set(
                "transaction.timeout.ms",
                cli.message_timeout_ms.max(60_000).to_string(),
            );
    }
    apply_props(&mut config, &cli.producer_props)?;
    let producer: ThreadedProducer<BenchProducerContext> = config
        .create_with_context(BenchProducerContext {
            log: LogContext::default(),
            deliveries: deliveries.clone(),
        })
        .context("creating the producer")?;
    if cli.transaction_records > 0 {
        producer
            .init_transactions(Duration::from_millis(cli.message_timeout_ms))
            .context("init_transactions")?;
    }
    Ok(producer)
}

/// Waits until nothing is in flight. rdkafka's `flush()` (which `commit_transaction()` calls
/// first) waits in steps of up to 100 ms for events that a `ThreadedProducer`'s own polling
/// thread takes, so every commit would cost ~100 ms of client-side sleep; with nothing in flight
/// its flush returns at once.
fn wait_delivered<C: ProducerContext>(producer: &ThreadedProducer<C>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_micros(100));
    }
}

struct ConsumeResult {
    elapsed: Duration,
    /// From the first record received to the last.
    fetch_elapsed: Duration,
    records: u64,
    bytes: u64,
    wrong_size: u64,
    errors: BTreeMap<String, u64>,
    per_partition: Vec<u64>,
    timed_out: bool,
}

fn consume(
    cli: &Cli,
    consumer: &BaseConsumer<LogContext>,
    start_offsets: &[Option<i64>],
) -> anyhow::Result<ConsumeResult> {
    let mut tpl = TopicPartitionList::new();
    for (p, start) in start_offsets.iter().enumerate() {
        let offset = start.map_or(Offset::Beginning, Offset::Offset);
        tpl.add_partition_offset(&cli.topic, p as i32, offset)?;
    }
    let n = cli.num_records;
    let idle_timeout = Duration::from_secs(cli.consume_idle_timeout_s);
    let mut per_partition = vec![0u64; start_offsets.len()];
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let (mut records, mut bytes, mut wrong_size) = (0u64, 0u64, 0u64);
    let mut first_record: Option<Instant> = None;
    let mut last_progress = Instant::now();
    let mut timed_out = false;

    let start = Instant::now();
    consumer.assign(&tpl).context("assigning partitions")?;
    while records < n {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                first_record.get_or_insert_with(Instant::now);
                last_progress = Instant::now();
                let value_len = msg.payload_len();
                let key_len = msg.key_len();
                if value_len != cli.record_size || key_len != cli.key_size {
                    wrong_size += 1;
                }
                bytes += (value_len + key_len) as u64;
                records += 1;
                if let Some(c) = per_partition.get_mut(msg.partition() as usize) {
                    *c += 1;
                }
            }
            Some(Err(e)) => {
                let count = errors.entry(e.to_string()).or_default();
                if *count < 3 {
                    eprintln!("consume: error: {e}");
                }
                *count += 1;
            }
            None => {
                if last_progress.elapsed() >= idle_timeout {
                    eprintln!(
                        "consume: no record for {} s after {records}/{n} records; giving up",
                        idle_timeout.as_secs()
                    );
                    timed_out = true;
                    break;
                }
            }
        }
    }
    let end = Instant::now();
    // Records beyond N that are already buffered mean the broker returned more than was
    // produced (duplicates) — look briefly.
    let extra_deadline = Instant::now() + Duration::from_millis(500);
    while !timed_out && Instant::now() < extra_deadline {
        if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(50)) {
            records += 1;
            if let Some(c) = per_partition.get_mut(msg.partition() as usize) {
                *c += 1;
            }
        }
    }
    Ok(ConsumeResult {
        elapsed: end - start,
        fetch_elapsed: first_record.map_or(Duration::ZERO, |f| end - f),
        records,
        bytes,
        wrong_size,
        errors,
        per_partition,
        timed_out,
    })
}

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

/// Formats an integer with thousands separators.
fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// Current UTC date-time as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

fn host_description() -> String {
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = proc_meminfo_kb("MemTotal").map_or(0.0, |kb| kb as f64 / MIB);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{cpus} × {model}, {mem_gib:.1} GiB RAM, Linux {kernel}")
}

fn proc_meminfo_kb(field: &str) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    info.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn mib(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.record_size == 0 && cli.key_size == 0 {
        bail!("--record-size and --key-size are both 0");
    }
    let command_line = std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ");

    let existed = create_topic(&cli)?;
    // A consumer client is also used for metadata and watermarks.
    let consumer = new_consumer(&cli)?;
    let before = topic_watermarks(&consumer, &cli.topic)?;
    if existed {
        eprintln!(
            "topic {} already exists with {} partition(s), high watermarks {:?}; only the new records are consumed",
            cli.topic,
            before.len(),
            before
        );
    } else {
        eprintln!(
            "created topic {} with {} partition(s)",
            cli.topic,
            before.len()
        );
    }

    let sampler = cli.broker_pid.map(RssSampler::start).transpose()?;
    let rss_start_kb = sampler.as_ref().map(|s| s.take_peak());

    eprintln!(
        "produce: {} records of {} B, acks={}, linger.ms={}, batch.size={}, throughput={}",
        cli.num_records,
        cli.record_size,
        cli.acks,
        cli.linger_ms,
        cli.batch_size,
        if cli.throughput > 0.0 {
            format!("{} rec/s", cli.throughput)
        } else {
            "unlimited".into()
        }
    );
    let prod = produce(&cli)?;
    let rss_produce_kb = sampler.as_ref().map(|s| s.take_peak());

    let after = topic_watermarks(&consumer, &cli.topic)?;
    let appended: i64 = after
        .iter()
        .zip(before.iter().chain(std::iter::repeat(&0)))
        .map(|(a, b)| a - b)
        .sum();

    let cons = if cli.consume {
        let starts: Vec<Option<i64>> = after
            .iter()
            .enumerate()
            .map(|(p, _)| {
                if existed {
                    before.get(p).copied()
                } else {
                    None
                }
            })
            .collect();
        eprintln!(
            "consume: reading {} records from {} partition(s)",
            cli.num_records,
            starts.len()
        );
        Some(consume(&cli, &consumer, &starts)?)
    } else {
        None
    };
    let rss_consume_kb = sampler
        .as_ref()
        .and_then(|s| cli.consume.then(|| s.take_peak()));
    let hwm_kb = cli.broker_pid.and_then(|pid| proc_status_kb(pid, "VmHWM"));
    if let Some(s) = sampler {
        s.stop();
    }

    // ----- verdict -----
    let n = cli.num_records;
    let mut problems: Vec<String> = Vec::new();
    if prod.failed > 0 {
        problems.push(format!(
            "{} delivery errors: {:?}",
            prod.failed, prod.errors
        ));
    }
    if prod.delivered + prod.failed != n {
        problems.push(format!(
            "only {} of {n} records got a delivery report",
            prod.delivered + prod.failed
        ));
    }
    // A transaction adds one commit marker per partition it wrote to (one offset each).
    let markers = if cli.transaction_records > 0 {
        let transactions: u64 = (0..cli.producers)
            .map(|i| {
                let r = share(n, cli.producers, i);
                (r.end - r.start).div_ceil(cli.transaction_records)
            })
            .sum();
        (transactions * after.len() as u64) as i64
    } else {
        0
    };
    let appended_ok = if markers > 0 {
        (n as i64..=n as i64 + markers).contains(&appended)
    } else {
        appended == n as i64
    };
    if cli.acks != "0" && !appended_ok {
        problems.push(format!(
            "high watermarks advanced by {appended}, expected {n} (before {before:?}, after {after:?})"
        ));
    }
    if let Some(c) = &cons {
        if c.records != n {
            problems.push(format!(
                "consumed {} records, expected {n} (per partition {:?})",
                c.records, c.per_partition
            ));
        }
        if c.wrong_size > 0 {
            problems.push(format!(
                "{} consumed records had the wrong size",
                c.wrong_size
            ));
        }
        if !c.errors.is_empty() {
            problems.push(format!("consumer errors: {:?}", c.errors));
        }
        if c.timed_out {
            problems.push("consumer timed out".into());
        }
    }

    // ----- markdown -----
    let record_bytes = (cli.record_size + cli.key_size) as f64;
    let prod_secs = prod.elapsed.as_secs_f64();
    let prod_rps = prod.delivered as f64 / prod_secs;
    let prod_mbps = prod.delivered as f64 * record_bytes / MB / prod_secs;
    let h = &prod.latency_us;
    let label = cli.label.clone().unwrap_or_default();
    let label_of = |phase: &str| {
        if label.is_empty() {
            phase.to_string()
        } else {
            format!("{label} {phase}")
        }
    };
    let throughput_desc = if cli.throughput > 0.0 {
        format!("{} rec/s", thousands(cli.throughput as u64))
    } else {
        "unlimited".into()
    };

    let mut out = String::new();
    writeln!(out, "#### broker-bench, {}", utc_now())?;
    writeln!(out)?;
    writeln!(out, "- Host: {}", host_description())?;
    writeln!(out, "- Command: `{command_line}`")?;
    writeln!(
        out,
        "- Parameters: {} records × {} B value{}, {} partition(s), {} producer(s), acks={}, linger.ms={}, batch.size={}, compression={}, idempotence={}, records per transaction {}, target rate {}",
        thousands(n),
        cli.record_size,
        if cli.key_size > 0 { format!(" + {} B key", cli.key_size) } else { String::new() },
        after.len(),
        cli.producers,
        cli.acks,
        cli.linger_ms,
        cli.batch_size,
        cli.compression,
        cli.idempotence,
        if cli.transaction_records > 0 {
            thousands(cli.transaction_records)
        } else {
            "– (not transactional)".to_string()
        },
        throughput_desc
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| Phase | Records | Record size | Records/s | MB/s | p50 ms | p99 ms | p99.9 ms | max ms | Broker peak RSS MiB |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let rss_cell = |kb: Option<u64>| kb.map_or("–".to_string(), mib);
    writeln!(
        out,
        "| {} | {} | {} B | {} | {:.1} | {} | {} | {} | {} | {} |",
        label_of("produce"),
        thousands(prod.delivered),
        cli.record_size + cli.key_size,
        thousands(prod_rps.round() as u64),
        prod_mbps,
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        rss_cell(rss_produce_kb),
    )?;
    if let Some(c) = &cons {
        let secs = c.elapsed.as_secs_f64();
        writeln!(
            out,
            "| {} | {} | {} B | {} | {:.1} | – | – | – | – | {} |",
            label_of("consume"),
            thousands(c.records),
            cli.record_size + cli.key_size,
            thousands((c.records as f64 / secs).round() as u64),
            c.bytes as f64 / MB / secs,
            rss_cell(rss_consume_kb),
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "MB = 10^6 bytes of record key+value (no protocol overhead). Latency = send() call → delivery report, per record (HDR histogram, µs precision). Produce time runs from the first send() to the last delivery report (flush); consume time from assign() to the N-th record."
    )?;
    let mut notes = vec![format!(
        "produce {:.2} s, mean latency {:.2} ms",
        prod_secs,
        h.mean() / 1000.0
    )];
    if let Some(c) = &cons {
        notes.push(format!(
            "consume {:.2} s ({:.2} s from first to last record)",
            c.elapsed.as_secs_f64(),
            c.fetch_elapsed.as_secs_f64()
        ));
    }
    if let (Some(start), Some(hwm)) = (rss_start_kb, hwm_kb) {
        notes.push(format!(
            "broker RSS {} MiB before produce, VmHWM {} MiB at end",
            mib(start),
            mib(hwm)
        ));
    }
    if prod.queue_full_retries > 0 {
        notes.push(format!(
            "{} producer queue-full retries",
            thousands(prod.queue_full_retries)
        ));
    }
    if prod.client_errors > 0 {
        notes.push(format!(
            "{} producer client errors (see stderr)",
            prod.client_errors
        ));
    }
    writeln!(out, "{}.", notes.join("; "))?;
    if problems.is_empty() {
        writeln!(out, "Delivery errors: 0; consumed count verified.")?;
    } else {
        writeln!(out, "**FAILED:** {}", problems.join("; "))?;
    }
    print!("{out}");

    if let Some(path) = &cli.json {
        let json = serde_json::json!({
            "command": command_line,
            "records": n,
            "record_size": cli.record_size,
            "key_size": cli.key_size,
            "partitions": after.len(),
            "acks": cli.acks,
            "linger_ms": cli.linger_ms,
            "batch_size": cli.batch_size,
            "compression": cli.compression,
            "idempotence": cli.idempotence,
            "transaction_records": cli.transaction_records,
            "producers": cli.producers,
            "throughput_target": cli.throughput,
            "produce": {
                "seconds": prod_secs,
                "delivered": prod.delivered,
                "failed": prod.failed,
                "errors": prod.errors,
                "records_per_s": prod_rps,
                "mb_per_s": prod_mbps,
                "latency_ms": {
                    "p50": h.value_at_quantile(0.50) as f64 / 1000.0,
                    "p99": h.value_at_quantile(0.99) as f64 / 1000.0,
                    "p999": h.value_at_quantile(0.999) as f64 / 1000.0,
                    "max": h.max() as f64 / 1000.0,
                    "mean": h.mean() / 1000.0,
                },
                "broker_peak_rss_kb": rss_produce_kb,
            },
            "consume": cons.as_ref().map(|c| serde_json::json!({
                "seconds": c.elapsed.as_secs_f64(),
                "records": c.records,
                "bytes": c.bytes,
                "records_per_s": c.records as f64 / c.elapsed.as_secs_f64(),
                "mb_per_s": c.bytes as f64 / MB / c.elapsed.as_secs_f64(),
                "errors": c.errors,
                "broker_peak_rss_kb": rss_consume_kb,
            })),
            "broker_vmhwm_kb": hwm_kb,
            "problems": problems,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }

    if !problems.is_empty() {
        bail!("benchmark failed: {}", problems.join("; "));
    }
    Ok(())
}
