//! A sink task's consumer loop, on its own blocking thread.
//!
//! One consumer group per connector (`connect-<name>`), eager (range) assignment and no auto
//! commit. Partitions are positioned in the rebalance callback itself, before any fetch: at
//! the offsets the task keeps (the JDBC sink's offsets table, written with the rows) or, for
//! sinks that keep none, the group's committed offsets. The callback runs inside `poll` on this
//! thread, which is why the loop is a plain thread calling into the runtime with `block_on`.
//! Offsets are committed to Kafka after each applied batch, for monitoring (and as the resume
//! point of sinks without their own).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;

use super::errors::{ErrorPolicy, RawRecord};
use super::{mask_secrets, State, TaskRun};
use crate::connectors::config_def::ConfigExt;
use crate::connectors::{ConnectorError, SinkError, SinkRecord, SinkTask, TopicPartition};
use crate::converters::{self, Converter};
use crate::error::chain;
use crate::storage::{kafka, TargetState};

/// Records per put when nothing says otherwise (the JDBC sink's `batch.size` default).
const DEFAULT_BATCH: usize = 3000;

pub struct SinkRun {
    pub common: TaskRun,
    pub task: Box<dyn SinkTask>,
    /// Applied positions, for `GET /connectors/{name}/offsets`.
    pub applied: Arc<Mutex<BTreeMap<TopicPartition, i64>>>,
}

#[derive(Default)]
struct Assignment {
    generation: u64,
    /// Next offset expected per assigned partition (None: wherever the group left it).
    next: HashMap<TopicPartition, Option<i64>>,
    error: Option<String>,
}

struct SinkContext {
    task: Arc<tokio::sync::Mutex<Box<dyn SinkTask>>>,
    handle: Handle,
    assignment: Arc<Mutex<Assignment>>,
}

impl ClientContext for SinkContext {}

impl ConsumerContext for SinkContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let parts: Vec<TopicPartition> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                let opened = self.handle.block_on(async {
                    let mut attempt = 0u64;
                    loop {
                        let e = match self.task.lock().await.open(&parts).await {
                            Ok(o) => return Ok(o),
                            Err(e) => e,
                        };
                        tokio::time::sleep(Duration::from_millis(500 * (attempt + 1))).await;
                        attempt += 1;
                        if attempt == 5 {
                            return Err(e);
                        }
                    }
                });
                let mut a = self.assignment.lock();
                a.generation += 1;
                a.next.clear();
                match opened {
                    Ok(offsets) => {
                        let mut assign = TopicPartitionList::new();
                        for tp in &parts {
                            let start = offsets.get(tp).copied();
                            let offset = start.map(Offset::Offset).unwrap_or(Offset::Stored);
                            if let Err(e) = assign.add_partition_offset(&tp.0, tp.1, offset) {
                                a.error = Some(format!("assigning {}-{}: {e}", tp.0, tp.1));
                            }
                            a.next.insert(tp.clone(), start);
                        }
                        tracing::info!(partitions = ?a.next, "sink partitions assigned");
                        if let Err(e) = consumer.assign(&assign) {
                            a.error = Some(format!("assign failed: {e}"));
                        }
                    }
                    Err(e) => {
                        a.error = Some(format!(
                            "could not read the stored offsets of {parts:?}: {}",
                            chain(&e)
                        ));
                        let _ = consumer.assign(&TopicPartitionList::new());
                    }
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // A write in flight finishes before the partitions are given up, and one not
                // yet begun sees the new generation and writes nothing: no batch is written
                // once another member may own its partitions.
                let _task = self.handle.block_on(self.task.lock());
                let mut a = self.assignment.lock();
                a.generation += 1;
                a.next.clear();
                let _ = consumer.unassign();
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                let _ = consumer.unassign();
            }
        }
    }
}

/// A record's bytes as read, kept only where the error policy may need them later (record by
/// record retries with `errors.tolerance=all`).
struct Polled {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

impl Polled {
    fn from(m: &BorrowedMessage<'_>) -> Self {
        Polled {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
        }
    }
    fn raw(&self) -> RawRecord<'_> {
        RawRecord {
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
        }
    }
}

fn raw<'a>(m: &'a BorrowedMessage<'_>) -> RawRecord<'a> {
    RawRecord {
        topic: m.topic(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key(),
        value: m.payload(),
    }
}

/// Records converted and ready to hand to the task, with the positions they complete.
#[derive(Default)]
struct Batch {
    generation: u64,
    records: Vec<SinkRecord>,
    /// Next offset per partition once this batch is applied (skipped bad records included).
    positions: BTreeMap<TopicPartition, i64>,
    /// First offset read per partition (where to go back to when the batch is not applied).
    first: BTreeMap<TopicPartition, i64>,
    /// With `errors.tolerance=all`: each record's bytes, to retry record by record.
    raws: Option<Vec<Polled>>,
}

/// A batch being written by the task while the next one is read and converted.
struct InFlight {
    generation: u64,
    positions: BTreeMap<TopicPartition, i64>,
    /// With `errors.tolerance=all`: the records and their bytes, to retry record by record.
    retry: Option<(Vec<SinkRecord>, Vec<Polled>)>,
    put: tokio::task::JoinHandle<Result<(), SinkError>>,
    /// Records in the batch, and when its put started (for the task metrics).
    records: usize,
    started: Instant,
}

impl SinkRun {
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let handle = Handle::current();
        tokio::task::spawn_blocking(move || self.run(handle))
    }

    fn run(mut self, handle: Handle) {
        let task = std::mem::replace(&mut self.task, Box::new(NoTask));
        let task = Arc::new(tokio::sync::Mutex::new(task));
        if let Err(trace) = self.run_inner(&handle, task.clone()) {
            tracing::error!(connector = %self.common.connector, task = self.common.task_id, "sink task failed: {}", mask_secrets(&trace, &self.common.config));
            self.common.report(State::Failed, Some(trace));
        }
        handle.block_on(async { task.lock().await.stop().await });
    }

    fn consumer(&self, context: SinkContext) -> Result<BaseConsumer<SinkContext>, String> {
        // The worker's own settings (bootstrap servers, security) first; the connector's
        // allowed consumer.override.* after them.
        let mut cfg = kafka::client_config(&self.common.ctx.bootstrap);
        cfg.set("group.id", format!("connect-{}", self.common.connector))
            .set(
                "client.id",
                format!(
                    "connector-consumer-{}-{}",
                    self.common.connector, self.common.task_id
                ),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Only committed transactions' records (the order-service and exactly-once sources
            // write in transactions; an aborted order must never reach a table). librdkafka's
            // default too, set explicitly so that it is visible and survives a default change;
            // `consumer.override.isolation.level` may still lower it.
            .set("isolation.level", "read_committed")
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "5000")
            .set("log_level", "3");
        let overrides = self
            .common
            .ctx
            .override_policy
            .overrides(&self.common.config, "consumer.override.");
        // max.poll.records is the Java consumer's; here it sizes the batches (below).
        for (k, v) in overrides.filter(|(k, _)| *k != "max.poll.records") {
            cfg.set(k, v);
        }
        let consumer: BaseConsumer<SinkContext> = cfg
            .create_with_context(context)
            .map_err(|e| format!("creating the consumer: {e}"))?;
        let regex = self.common.config.str_or("topics.regex", "");
        let topics: Vec<String> = if regex.is_empty() {
            self.common.config.list("topics")
        } else if regex.starts_with('^') {
            vec![regex.to_string()]
        } else {
            vec![format!("^{regex}")]
        };
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&refs)
            .map_err(|e| format!("subscribing to {topics:?}: {e}"))?;
        Ok(consumer)
    }

    /// The consumer loop. Reading and converting the next batch overlaps with the task writing
    /// the previous one (one batch in flight, applied strictly in order), so the database is
    /// kept busy instead of waiting for the worker between transactions.
    fn run_inner(
        &self,
        handle: &Handle,
        task: Arc<tokio::sync::Mutex<Box<dyn SinkTask>>>,
    ) -> Result<(), String> {
        let key_conv = converters::from_config(&self.common.config, "key.converter")?;
        let value_conv = converters::from_config(&self.common.config, "value.converter")?;
        let mut policy = ErrorPolicy::new(
            &self.common.connector,
            self.common.task_id,
            &self.common.config,
            &self.common.ctx.bootstrap,
            self.common.ctx.metrics.clone(),
        );
        handle
            .block_on(async { task.lock().await.start().await })
            .map_err(|e| format!("starting the task: {}", chain(&e)))?;
        let assignment = Arc::new(Mutex::new(Assignment::default()));
        let consumer = self.consumer(SinkContext {
            task: task.clone(),
            handle: handle.clone(),
            assignment: assignment.clone(),
        })?;
        // Records per put (one transaction for the JDBC sink): `batch.size`, else the consumer's
        // max.poll.records override, else the JDBC sink's documented default of 3000. Larger
        // batches matter: each transaction also locks and advances the stored offsets.
        let config = &self.common.config;
        let max_poll_override = self
            .common
            .ctx
            .override_policy
            .overrides(config, "consumer.override.")
            .find(|(k, _)| *k == "max.poll.records")
            .and_then(|(_, v)| v.trim().parse().ok());
        let max_batch = [
            config.parse_or("batch.size", 0usize),
            max_poll_override.unwrap_or(0),
            config.parse_or("consumer.max.poll.records", 0usize),
        ]
        .into_iter()
        .find(|n| *n > 0)
        .unwrap_or(DEFAULT_BATCH);
        self.common.report(State::Running, None);
        // Settles the batch in flight, if any (see `finish`).
        let finish = |policy: &mut ErrorPolicy, inflight: Option<InFlight>| {
            self.finish(handle, &task, &consumer, &assignment, policy, inflight)
        };
        let mut paused = false;
        let mut inflight: Option<InFlight> = None;
        let mut last_dispatch = Instant::now();
        let result = loop {
            if self.common.cancel.is_cancelled() {
                break Ok(());
            }
            if let Some(e) = assignment.lock().error.take() {
                break Err(e);
            }
            let want_paused = *self.common.target.borrow() == TargetState::Paused;
            if want_paused {
                if let Ok(a) = consumer.assignment() {
                    let _ = consumer.pause(&a);
                }
                if !paused {
                    if let Err(e) = finish(&mut policy, inflight.take()) {
                        break Err(e);
                    }
                    self.common.report(State::Paused, None);
                    paused = true;
                }
            } else if paused {
                if let Ok(a) = consumer.assignment() {
                    let _ = consumer.resume(&a);
                }
                self.common.report(State::Running, None);
                paused = false;
            }
            let batch = match self.collect(
                handle,
                &consumer,
                &assignment,
                &mut policy,
                key_conv.as_ref(),
                value_conv.as_ref(),
                max_batch,
                inflight.as_ref(),
                last_dispatch + self.common.ctx.sink_linger,
            ) {
                Ok(b) => b,
                Err(e) => break Err(e),
            };
            if want_paused && !batch.positions.is_empty() {
                // Read before the pause took effect: read them again after resume.
                for ((topic, partition), offset) in &batch.first {
                    let _ = consumer.seek(
                        topic,
                        *partition,
                        Offset::Offset(*offset),
                        Duration::from_secs(5),
                    );
                }
                continue;
            }
            let done = inflight.as_ref().is_some_and(|f| f.put.is_finished());
            if batch.positions.is_empty() && !done {
                continue;
            }
            if let Err(e) = finish(&mut policy, inflight.take()) {
                break Err(e);
            }
            if batch.positions.is_empty() {
                continue;
            }
            if batch.generation != assignment.lock().generation {
                continue; // read under an assignment that has changed meanwhile
            }
            let retry = batch.raws.map(|raws| (batch.records.clone(), raws));
            let positions = batch.positions;
            let count = batch.records.len();
            let put = {
                let (task, positions) = (task.clone(), positions.clone());
                let (assignment, generation) = (assignment.clone(), batch.generation);
                let records = batch.records;
                handle.spawn(async move {
                    let mut task = task.lock().await;
                    // Revoked since it was read (the revocation holds the task while it
                    // changes the generation): not ours to write any more.
                    if assignment.lock().generation != generation {
                        return Ok(());
                    }
                    task.put(records, &positions).await
                })
            };
            last_dispatch = Instant::now();
            inflight = Some(InFlight {
                generation: batch.generation,
                positions,
                retry,
                put,
                records: count,
                started: Instant::now(),
            });
        };
        // Whatever is in flight is completed (or fails) before the task stops.
        let last = finish(&mut policy, inflight.take());
        result.and(last)
    }

    /// Reads up to `max_batch` records, converted; records the task has already applied or that
    /// belong to partitions no longer assigned are left out. Without a batch in flight it waits
    /// up to 100 ms for the first record and then takes what is already fetched; with one in
    /// flight it keeps reading until the batch is full or the write in flight is done.
    #[allow(clippy::too_many_arguments)]
    fn collect(
        &self,
        handle: &Handle,
        consumer: &BaseConsumer<SinkContext>,
        assignment: &Arc<Mutex<Assignment>>,
        policy: &mut ErrorPolicy,
        key_conv: &dyn Converter,
        value_conv: &dyn Converter,
        max_batch: usize,
        inflight: Option<&InFlight>,
        linger_until: Instant,
    ) -> Result<Batch, String> {
        let mut batch = Batch {
            generation: assignment.lock().generation,
            raws: policy.tolerates().then(Vec::new),
            ..Batch::default()
        };
        let mut wait = Duration::from_millis(100);
        while batch.records.len() < max_batch {
            let polled = consumer.poll(wait);
            let now = assignment.lock().generation;
            if now != batch.generation {
                // Read under the previous assignment: may belong to another member now.
                batch = Batch {
                    generation: now,
                    raws: policy.tolerates().then(Vec::new),
                    ..Batch::default()
                };
            }
            let m = match polled {
                Some(Ok(m)) => m,
                None | Some(Err(KafkaError::PartitionEOF(_))) => {
                    if inflight.is_some_and(|f| !f.put.is_finished()) {
                        wait = Duration::from_millis(1);
                        continue;
                    }
                    // Linger: a batch that is not full waits for more until `linger_until`.
                    let left = linger_until.saturating_duration_since(Instant::now());
                    if !batch.records.is_empty() && !left.is_zero() {
                        wait = left;
                        continue;
                    }
                    break;
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, connector = %self.common.connector, "consumer error");
                    break;
                }
            };
            wait = if inflight.is_some_and(|f| !f.put.is_finished()) {
                Duration::from_millis(1)
            } else {
                Duration::ZERO
            };
            self.common
                .ctx
                .metrics
                .sink_read(&self.common.connector, self.common.task_id, 1);
            let tp = (m.topic().to_string(), m.partition());
            {
                let a = assignment.lock();
                match a.next.get(&tp) {
                    None => continue,                                   // not ours (any more)
                    Some(Some(next)) if m.offset() < *next => continue, // already applied
                    _ => {}
                }
            }
            batch.first.entry(tp.clone()).or_insert(m.offset());
            batch.positions.insert(tp, m.offset() + 1);
            // Convert; a record that cannot be converted goes through the error policy.
            let converted = key_conv
                .to_connect(m.topic(), m.key())
                .map_err(|e| ("KEY_CONVERTER", e))
                .and_then(|k| {
                    value_conv
                        .to_connect(m.topic(), m.payload())
                        .map(|v| (k, v))
                        .map_err(|e| ("VALUE_CONVERTER", e))
                });
            match converted {
                Ok(((key_schema, key), (value_schema, value))) => {
                    batch.records.push(SinkRecord {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp: m.timestamp().to_millis(),
                        key_schema,
                        key,
                        value_schema,
                        value,
                    });
                    if let Some(raws) = &mut batch.raws {
                        raws.push(Polled::from(&m));
                    }
                }
                Err((stage, e)) => handle.block_on(policy.handle(stage, &raw(&m), &e))?,
            }
        }
        Ok(batch)
    }

    /// Waits for the batch in flight and settles it: on success its positions are the task's
    /// new resume points (committed to the group too, for monitoring); a failed batch is
    /// retried record by record under `errors.tolerance=all`, or fails the task.
    fn finish(
        &self,
        handle: &Handle,
        task: &Arc<tokio::sync::Mutex<Box<dyn SinkTask>>>,
        consumer: &BaseConsumer<SinkContext>,
        assignment: &Arc<Mutex<Assignment>>,
        policy: &mut ErrorPolicy,
        inflight: Option<InFlight>,
    ) -> Result<(), String> {
        let Some(inflight) = inflight else {
            return Ok(());
        };
        let result = handle
            .block_on(inflight.put)
            .unwrap_or_else(|e| Err(SinkError::Retriable(format!("the write failed: {e}"))));
        let positions = inflight.positions;
        let metrics = &self.common.ctx.metrics;
        let (connector, id) = (&self.common.connector, self.common.task_id);
        match result {
            Ok(()) => metrics.sink_written(
                connector,
                id,
                inflight.records as u64,
                inflight.started.elapsed(),
            ),
            Err(SinkError::Fatal(e)) if policy.tolerates() => {
                // Find the bad records one by one; the others are applied in order.
                tracing::warn!(connector = %self.common.connector, error = %e, "batch failed; retrying record by record");
                let (records, raws) = inflight.retry.unwrap_or_default();
                for (r, p) in records.into_iter().zip(&raws) {
                    let pos = BTreeMap::from([((r.topic.clone(), r.partition), r.offset + 1)]);
                    match handle.block_on(async { task.lock().await.put(vec![r], &pos).await }) {
                        Ok(()) => {}
                        Err(SinkError::Fatal(e)) => {
                            handle.block_on(policy.handle("TASK_PUT", &p.raw(), &e))?;
                            handle
                                .block_on(async { task.lock().await.put(Vec::new(), &pos).await })
                                .map_err(|e| format!("recording the offset of a skipped record: {e}"))?;
                        }
                        Err(e) => return Err(format!("org.apache.kafka.connect.errors.ConnectException: {e}")),
                    }
                }
                handle
                    .block_on(async { task.lock().await.put(Vec::new(), &positions).await })
                    .map_err(|e| format!("recording offsets: {e}"))?;
            }
            Err(e) => return Err(format!("org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask due to unrecoverable exception.\n{e}")),
        }
        // Applied: remember, and commit to the group for monitoring (unless the partitions
        // have moved meanwhile: the new assignment starts from what the task stored).
        let mut tpl = TopicPartitionList::new();
        {
            let mut a = assignment.lock();
            if a.generation != inflight.generation {
                return Ok(());
            }
            let mut applied = self.applied.lock();
            for (tp, next) in &positions {
                if let Some(slot) = a.next.get_mut(tp) {
                    *slot = Some(*next);
                }
                applied.insert(tp.clone(), *next);
                let _ = tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(*next));
            }
        }
        let committing = Instant::now();
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(error = %e, "offset commit failed");
        } else {
            metrics.offset_committed(connector, id, committing.elapsed());
        }
        Ok(())
    }
}

/// Stands in for the task while it is shared with the consumer's context.
struct NoTask;

#[async_trait::async_trait]
impl SinkTask for NoTask {
    async fn start(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
    async fn put(
        &mut self,
        _: Vec<SinkRecord>,
        _: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), SinkError> {
        Ok(())
    }
}
