//! A source task's loop: `poll`, convert, produce. At least once by default: the records are
//! produced (idempotent producer, awaited), and only then their source offsets are committed
//! to the offsets topic, so a crash between the two re-sends the last records. Exactly once with
//! the worker's `exactly.once.source.support=enabled` ([`super::exactly_once`]): records and
//! offsets go into one transaction of the task's transactional producer, committed at each
//! `transaction.boundary`.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use serde_json::Value as Json;

use super::exactly_once::{self, TransactionBoundary};
use super::{mask_secrets, State, TaskRun};
use crate::connectors::config_def::ConfigExt;
use crate::connectors::SourceTask;
use crate::converters;
use crate::error::chain;
use crate::storage::{kafka, OffsetStore, TargetState};

pub struct SourceRun {
    pub common: TaskRun,
    pub task: Box<dyn SourceTask>,
}

impl SourceRun {
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(mut self) {
        let result = self.run_inner().await;
        if let Err(trace) = result {
            tracing::error!(connector = %self.common.connector, task = self.common.task_id, "source task failed: {}", mask_secrets(&trace, &self.common.config));
            self.common.report(State::Failed, Some(trace));
        }
        self.task.stop().await;
    }

    async fn run_inner(&mut self) -> Result<(), String> {
        let key_conv = converters::from_config(&self.common.config, "key.converter")?;
        let value_conv = converters::from_config(&self.common.config, "value.converter")?;
        let tolerate = self
            .common
            .config
            .str_or("errors.tolerance", "none")
            .eq_ignore_ascii_case("all");
        let id = exactly_once::transactional_id(
            &self.common.ctx.group_id,
            &self.common.connector,
            self.common.task_id,
        );
        let overrides = self
            .common
            .ctx
            .override_policy
            .overrides(&self.common.config, "producer.override.");
        let boundary =
            exactly_once::boundary(&self.common.config, self.common.ctx.exactly_once_source)
                .map_err(|e| format!("org.apache.kafka.common.config.ConfigException: {e}"))?;
        let mut txn = None;
        let producer: FutureProducer = match boundary {
            None => kafka::producer_with(&self.common.ctx.bootstrap, overrides),
            Some(_) => {
                // A killed task's open transaction holds back read_committed readers (the
                // offsets topic at a worker's start included) until the broker aborts it:
                // 10 s instead of Kafka's 60 s. producer.override.* may change both.
                let base = [
                    ("transactional.id", id.as_str()),
                    ("transaction.timeout.ms", "10000"),
                    ("message.timeout.ms", "10000"),
                ];
                kafka::producer_with(
                    &self.common.ctx.bootstrap,
                    base.into_iter().chain(overrides),
                )
            }
        }
        .map_err(|e| format!("creating the producer: {e}"))?;
        if let Some(boundary) = boundary {
            // Fences the task's previous incarnation (a zombie of a killed worker or an earlier
            // run) and settles its last transaction; only then are the committed offsets known.
            let p = producer.clone();
            tokio::task::spawn_blocking(move || p.init_transactions(TXN_CALL_TIMEOUT))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("org.apache.kafka.connect.errors.ConnectException: initialising the transactional producer: {e}"))?;
            self.common
                .ctx
                .offsets
                .reload(&self.common.ctx.bootstrap, &self.common.connector)
                .await
                .map_err(|e| format!("reading the committed source offsets: {}", chain(&e)))?;
            tracing::debug!(connector = %self.common.connector, task = self.common.task_id, transactional_id = %id, offsets = ?self.common.ctx.offsets.list(&self.common.connector), "exactly-once source task: producer initialised, committed offsets read");
            txn = Some(Transaction::new(producer.clone(), boundary));
        }
        if boundary.is_none() {
            // The task may have run on another worker until now: resume from the offsets it
            // committed there.
            self.common
                .ctx
                .offsets
                .reload(&self.common.ctx.bootstrap, &self.common.connector)
                .await
                .map_err(|e| format!("reading source offsets: {}", chain(&e)))?;
        }
        self.task
            .start(self.common.ctx.offsets.reader(&self.common.connector))
            .await
            .map_err(|e| format!("starting the task: {}", chain(&e)))?;
        let mut known_topics: HashSet<String> = HashSet::new();
        self.common.report(State::Running, None);
        let mut paused = false;
        loop {
            if self.common.cancel.is_cancelled() {
                if let Some(t) = &mut txn {
                    t.abort().await;
                }
                return Ok(());
            }
            if *self.common.target.borrow() == TargetState::Paused {
                if let Some(t) = &mut txn {
                    t.commit(&self.common).await?;
                }
                if !paused {
                    self.common.report(State::Paused, None);
                    paused = true;
                }
                tokio::select! {
                    _ = self.common.cancel.cancelled() => return Ok(()),
                    _ = self.common.target.changed() => {}
                }
                continue;
            } else if paused {
                self.common.report(State::Running, None);
                paused = false;
            }
            let records = tokio::select! {
                _ = self.common.cancel.cancelled() => continue,
                r = self.task.poll() => r.map_err(|e| format!("org.apache.kafka.connect.errors.ConnectException: {}", chain(&e)))?,
            };
            if records.is_empty() {
                if let Some(t) = &mut txn {
                    if t.due() {
                        t.commit(&self.common).await?;
                    }
                }
                continue;
            }
            let metrics = &self.common.ctx.metrics;
            let (connector, id) = (self.common.connector.clone(), self.common.task_id);
            metrics.source_polled(&connector, id, records.len() as u64);
            let mut encoded = Vec::with_capacity(records.len());
            let mut offsets: BTreeMap<String, (Json, Json)> = BTreeMap::new();
            for r in &records {
                offsets.insert(
                    r.source_partition.to_string(),
                    (r.source_partition.clone(), r.source_offset.clone()),
                );
                let key = key_conv.from_connect(&r.topic, r.key_schema.as_ref(), &r.key);
                let value = value_conv.from_connect(&r.topic, r.value_schema.as_ref(), &r.value);
                match (key, value) {
                    (Ok(k), Ok(v)) => encoded.push((r.topic.as_str(), k, v, r.timestamp)),
                    (Err(e), _) | (_, Err(e)) => {
                        if !tolerate {
                            return Err(format!("org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\nconverting a record for {}: {e}", r.topic));
                        }
                        tracing::warn!(connector = %self.common.connector, error = %e, "skipping a record that cannot be converted");
                    }
                }
            }
            for (topic, ..) in &encoded {
                if known_topics.insert(topic.to_string()) {
                    if let Err(e) =
                        kafka::ensure_topic(&self.common.ctx.bootstrap, topic, 1, false).await
                    {
                        tracing::warn!(error = %e, topic, "could not create topic");
                    }
                }
            }
            if let Some(t) = &mut txn {
                t.begin().await?;
                for (topic, k, v, ts) in &encoded {
                    t.send(topic, k.as_deref(), v.as_deref(), *ts)?;
                }
                t.written += encoded.len() as u64;
                t.offsets.extend(offsets);
                if t.due() {
                    t.commit(&self.common).await?;
                }
                continue;
            }
            let sends = encoded.iter().map(|(topic, k, v, ts)| {
                producer.send(
                    record(topic, k.as_deref(), v.as_deref(), *ts),
                    Duration::from_secs(60),
                )
            });
            for r in join_all(sends).await {
                if let Err((e, _)) = r {
                    return Err(format!("org.apache.kafka.connect.errors.ConnectException: Unrecoverable exception from producer send callback: {e}"));
                }
            }
            metrics.source_written(&connector, id, encoded.len() as u64);
            let committing = std::time::Instant::now();
            let offsets: Vec<(Json, Json)> = offsets.into_values().collect();
            self.common
                .ctx
                .offsets
                .commit(&self.common.connector, &offsets)
                .await
                .map_err(|e| format!("committing source offsets: {}", chain(&e)))?;
            metrics.offset_committed(&connector, id, committing.elapsed());
        }
    }
}

/// The bound of each blocking transactional call.
const TXN_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times a commit that timed out (outcome unknown) is retried before the task fails.
const COMMIT_ATTEMPTS: usize = 5;

fn record<'a>(
    topic: &'a str,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    timestamp: Option<i64>,
) -> FutureRecord<'a, [u8], [u8]> {
    let mut rec = kafka::record(topic, key, value);
    if let Some(ts) = timestamp {
        rec = rec.timestamp(ts);
    }
    rec
}

/// An exactly-once source task's open transaction: the records sent in it and the source
/// offsets that go with them. Any failure fails the task (as in Kafka Connect); its restart
/// fences this producer, and reads the offsets that did commit.
struct Transaction {
    producer: FutureProducer,
    boundary: TransactionBoundary,
    /// When the open transaction began (`None`: none open).
    began: Option<Instant>,
    deliveries: Vec<DeliveryFuture>,
    /// Source partition (JSON text) → (partition, offset) of the records in the transaction.
    offsets: BTreeMap<String, (Json, Json)>,
    written: u64,
}

impl Transaction {
    fn new(producer: FutureProducer, boundary: TransactionBoundary) -> Self {
        Transaction {
            producer,
            boundary,
            began: None,
            deliveries: Vec::new(),
            offsets: BTreeMap::new(),
            written: 0,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&FutureProducer) -> Result<T, KafkaError> + Send + 'static,
    ) -> Result<T, KafkaError> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || call(&p))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    async fn begin(&mut self) -> Result<(), String> {
        if self.began.is_none() {
            self.blocking(|p| p.begin_transaction())
                .await
                .map_err(|e| format!("org.apache.kafka.connect.errors.ConnectException: beginning a transaction: {e}"))?;
            self.began = Some(Instant::now());
        }
        Ok(())
    }

    fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: Option<i64>,
    ) -> Result<(), String> {
        let delivery = self
            .producer
            .send_result(record(topic, key, value, timestamp))
            .map_err(|(e, _)| format!("org.apache.kafka.connect.errors.ConnectException: Unrecoverable exception from producer send callback: {e}"))?;
        self.deliveries.push(delivery);
        Ok(())
    }

    /// Whether the transaction boundary is reached.
    fn due(&self) -> bool {
        match (self.began, self.boundary) {
            (None, _) => false,
            (Some(_), TransactionBoundary::Poll) => true,
            (Some(began), TransactionBoundary::Interval(every)) => began.elapsed() >= every,
        }
    }

    /// Writes the source offsets into the transaction and commits it; then the worker's offset
    /// store remembers them.
    async fn commit(&mut self, run: &TaskRun) -> Result<(), String> {
        if self.began.is_none() {
            return Ok(());
        }
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            format!("org.apache.kafka.connect.errors.ConnectException: {what}: {e}")
        };
        let offsets: Vec<(Json, Json)> = std::mem::take(&mut self.offsets).into_values().collect();
        let topic = run.ctx.offsets.topic().to_string();
        for (partition, offset) in &offsets {
            let (k, v) = OffsetStore::record(&run.connector, partition, offset)
                .map_err(|e| fail("encoding source offsets", &e))?;
            self.send(&topic, Some(&k), Some(&v), None)?;
        }
        let committing = Instant::now();
        // Every delivery report first: rdkafka's commit_transaction flushes by polling in 100 ms
        // steps; with nothing outstanding it commits at once. A record not delivered means the
        // transaction can only be aborted.
        let delivered = join_all(std::mem::take(&mut self.deliveries)).await;
        if let Some(e) = delivered.into_iter().find_map(|d| match d {
            Ok(Ok(_)) => None,
            Ok(Err((e, _))) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        }) {
            self.abort().await;
            return Err(fail(
                "Unrecoverable exception from producer send callback",
                &e,
            ));
        }
        let committed = self
            .blocking(|p| {
                // A delivery future resolves inside librdkafka's callback, a moment before the
                // message leaves the out queue; a flush that sees it still there sleeps 100 ms.
                let deadline = Instant::now() + Duration::from_secs(1);
                while p.in_flight_count() > 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_micros(100));
                }
                let mut attempts = 0;
                loop {
                    match p.commit_transaction(TXN_CALL_TIMEOUT) {
                        Err(KafkaError::Transaction(e))
                            if e.is_retriable() && !e.is_fatal() && attempts + 1 < COMMIT_ATTEMPTS =>
                        {
                            attempts += 1;
                            tracing::warn!(error = %e, "commit_transaction failed, retrying");
                        }
                        // rdkafka flushes first: records not delivered yet, nothing decided.
                        Err(KafkaError::Flush(e)) if attempts + 1 < COMMIT_ATTEMPTS => {
                            attempts += 1;
                            tracing::warn!(error = %e, "records not flushed yet, retrying the commit");
                        }
                        Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                            let _ = p.abort_transaction(TXN_CALL_TIMEOUT);
                            return Err(KafkaError::Transaction(e));
                        }
                        other => return other,
                    }
                }
            })
            .await;
        self.began = None;
        committed.map_err(|e| fail("committing the transaction", &e))?;
        tracing::debug!(connector = %run.connector, task = run.task_id, records = self.written, offsets = ?offsets, "source transaction committed");
        run.ctx.offsets.remember(&run.connector, &offsets);
        let metrics = &run.ctx.metrics;
        metrics.source_written(&run.connector, run.task_id, self.written);
        metrics.offset_committed(&run.connector, run.task_id, committing.elapsed());
        self.written = 0;
        Ok(())
    }

    /// Aborts the open transaction (the task is stopping): its records are never committed,
    /// and neither are their offsets, so the next run polls them again.
    async fn abort(&mut self) {
        if self.began.take().is_some() {
            self.offsets.clear();
            self.deliveries.clear();
            self.written = 0;
            if let Err(e) = self
                .blocking(|p| p.abort_transaction(TXN_CALL_TIMEOUT))
                .await
            {
                tracing::warn!(error = %e, "aborting the transaction of a stopping source task");
            }
        }
    }
}
