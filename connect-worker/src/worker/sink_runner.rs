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
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::errors::{ErrorPolicy, RawRecord};
use super::status::task_key;
use super::{mask_secrets, State, WorkerContext};
use crate::connectors::config_def::ConfigExt;
use crate::connectors::{Config, SinkError, SinkRecord, SinkTask, TopicPartition};
use crate::converters::{self, Converter};
use crate::storage::TargetState;

pub struct SinkRun {
    pub connector: String,
    pub task_id: usize,
    pub config: Config,
    pub task: Box<dyn SinkTask>,
    pub ctx: Arc<WorkerContext>,
    pub cancel: CancellationToken,
    pub target: watch::Receiver<TargetState>,
    pub generation: u64,
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
                    let mut last = None;
                    for attempt in 0..5u64 {
                        match self.task.lock().await.open(&parts).await {
                            Ok(o) => return Ok(o),
                            Err(e) => last = Some(e),
                        }
                        tokio::time::sleep(Duration::from_millis(500 * (attempt + 1))).await;
                    }
                    Err(last.unwrap_or_else(|| anyhow::anyhow!("open failed")))
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
                            "could not read the stored offsets of {parts:?}: {e:#}"
                        ));
                        let _ = consumer.assign(&TopicPartitionList::new());
                    }
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
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

struct Polled {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

impl Polled {
    fn from(m: &BorrowedMessage<'_>) -> Self {
        Polled {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
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

impl SinkRun {
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let handle = Handle::current();
        tokio::task::spawn_blocking(move || self.run(handle))
    }

    fn report(&self, state: State, trace: Option<String>) {
        let trace = trace.map(|t| mask_secrets(&t, &self.config));
        self.ctx.status.set(
            &task_key(&self.connector, self.task_id),
            state,
            trace,
            self.generation,
        );
    }

    fn run(mut self, handle: Handle) {
        let task = std::mem::replace(&mut self.task, Box::new(NoTask));
        let task = Arc::new(tokio::sync::Mutex::new(task));
        if let Err(trace) = self.run_inner(&handle, task.clone()) {
            tracing::error!(connector = %self.connector, task = self.task_id, "sink task failed: {}", mask_secrets(&trace, &self.config));
            self.report(State::Failed, Some(trace));
        }
        handle.block_on(async { task.lock().await.stop().await });
    }

    fn consumer(&self, context: SinkContext) -> Result<BaseConsumer<SinkContext>, String> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.ctx.bootstrap)
            .set("group.id", format!("connect-{}", self.connector))
            .set(
                "client.id",
                format!("connector-consumer-{}-{}", self.connector, self.task_id),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "5000")
            .set("log_level", "3");
        for (k, v) in &self.config {
            if let Some(k) = k.strip_prefix("consumer.override.") {
                cfg.set(k, v);
            }
        }
        let consumer: BaseConsumer<SinkContext> = cfg
            .create_with_context(context)
            .map_err(|e| format!("creating the consumer: {e}"))?;
        let regex = self.config.str_or("topics.regex", "");
        let topics: Vec<String> = if regex.is_empty() {
            self.config.list("topics")
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

    fn run_inner(
        &self,
        handle: &Handle,
        task: Arc<tokio::sync::Mutex<Box<dyn SinkTask>>>,
    ) -> Result<(), String> {
        let key_conv = converters::from_config(&self.config, "key.converter")?;
        let value_conv = converters::from_config(&self.config, "value.converter")?;
        let mut policy = ErrorPolicy::new(
            &self.connector,
            self.task_id,
            &self.config,
            &self.ctx.bootstrap,
        );
        handle
            .block_on(async { task.lock().await.start().await })
            .map_err(|e| format!("starting the task: {e:#}"))?;
        let assignment = Arc::new(Mutex::new(Assignment::default()));
        let consumer = self.consumer(SinkContext {
            task: task.clone(),
            handle: handle.clone(),
            assignment: assignment.clone(),
        })?;
        let max_batch = self.config.parse_or("batch.size", 0usize);
        let max_batch = if max_batch == 0 {
            self.config.parse_or("consumer.max.poll.records", 500usize)
        } else {
            max_batch
        }
        .max(1);
        self.report(State::Running, None);
        let mut paused = false;
        loop {
            if self.cancel.is_cancelled() {
                return Ok(());
            }
            if let Some(e) = assignment.lock().error.take() {
                return Err(e);
            }
            let want_paused = *self.target.borrow() == TargetState::Paused;
            if want_paused {
                if let Ok(a) = consumer.assignment() {
                    let _ = consumer.pause(&a);
                }
                if !paused {
                    self.report(State::Paused, None);
                    paused = true;
                }
            } else if paused {
                if let Ok(a) = consumer.assignment() {
                    let _ = consumer.resume(&a);
                }
                self.report(State::Running, None);
                paused = false;
            }
            // Collect a batch: wait for the first record, then take what is already fetched.
            let mut batch: Vec<Polled> = Vec::new();
            let mut generation = assignment.lock().generation;
            let mut wait = Duration::from_millis(100);
            while batch.len() < max_batch {
                let polled = consumer.poll(wait);
                let now = assignment.lock().generation;
                if now != generation {
                    // Records read under the previous assignment may belong to another member now.
                    batch.clear();
                    generation = now;
                }
                match polled {
                    None => break,
                    Some(Ok(m)) => batch.push(Polled::from(&m)),
                    Some(Err(KafkaError::PartitionEOF(_))) => break,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, connector = %self.connector, "consumer error");
                        break;
                    }
                }
                wait = Duration::ZERO;
            }
            if batch.is_empty() {
                continue;
            }
            if want_paused {
                // Fetched before the pause took effect: read them again after resume.
                for p in &batch {
                    let _ = consumer.seek(
                        &p.topic,
                        p.partition,
                        Offset::Offset(p.offset),
                        Duration::from_secs(5),
                    );
                }
                continue;
            }
            self.process(
                handle,
                &task,
                &consumer,
                &assignment,
                &mut policy,
                key_conv.as_ref(),
                value_conv.as_ref(),
                batch,
            )?;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn process(
        &self,
        handle: &Handle,
        task: &Arc<tokio::sync::Mutex<Box<dyn SinkTask>>>,
        consumer: &BaseConsumer<SinkContext>,
        assignment: &Arc<Mutex<Assignment>>,
        policy: &mut ErrorPolicy,
        key_conv: &dyn Converter,
        value_conv: &dyn Converter,
        batch: Vec<Polled>,
    ) -> Result<(), String> {
        let mut positions: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut records: Vec<(SinkRecord, usize)> = Vec::new();
        {
            let a = assignment.lock();
            for (i, p) in batch.iter().enumerate() {
                let tp = (p.topic.clone(), p.partition);
                match a.next.get(&tp) {
                    None => continue,                                 // not ours (any more)
                    Some(Some(next)) if p.offset < *next => continue, // already applied
                    _ => {}
                }
                positions.insert(tp, p.offset + 1);
                records.push((
                    SinkRecord {
                        topic: p.topic.clone(),
                        partition: p.partition,
                        offset: p.offset,
                        timestamp: p.timestamp,
                        key_schema: None,
                        key: crate::data::Value::Null,
                        value_schema: None,
                        value: crate::data::Value::Null,
                    },
                    i,
                ));
            }
        }
        if positions.is_empty() {
            return Ok(());
        }
        // Convert; a record that cannot be converted goes through the error policy.
        let mut converted = Vec::with_capacity(records.len());
        for (mut r, i) in records {
            let p = &batch[i];
            let key = key_conv
                .to_connect(&p.topic, p.key.as_deref())
                .map_err(|e| ("KEY_CONVERTER", e));
            let value = key.and_then(|k| {
                value_conv
                    .to_connect(&p.topic, p.value.as_deref())
                    .map(|v| (k, v))
                    .map_err(|e| ("VALUE_CONVERTER", e))
            });
            match value {
                Ok(((ks, k), (vs, v))) => {
                    (r.key_schema, r.key, r.value_schema, r.value) = (ks, k, vs, v);
                    converted.push((r, i));
                }
                Err((stage, e)) => handle.block_on(policy.handle(stage, &p.raw(), &e))?,
            }
        }
        let records: Vec<SinkRecord> = converted.iter().map(|(r, _)| r.clone()).collect();
        let result = handle.block_on(async { task.lock().await.put(records, &positions).await });
        match result {
            Ok(()) => {}
            Err(SinkError::Fatal(e)) if policy.tolerates() => {
                // Find the bad records one by one; the others are applied in order.
                tracing::warn!(connector = %self.connector, error = %e, "batch failed; retrying record by record");
                for (r, i) in converted {
                    let p = &batch[i];
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
        // Applied: remember, and commit to the group for monitoring.
        let mut tpl = TopicPartitionList::new();
        {
            let mut a = assignment.lock();
            let mut applied = self.applied.lock();
            for (tp, next) in &positions {
                if let Some(slot) = a.next.get_mut(tp) {
                    *slot = Some(*next);
                }
                applied.insert(tp.clone(), *next);
                let _ = tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(*next));
            }
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(error = %e, "offset commit failed");
        }
        Ok(())
    }
}

/// Stands in for the task while it is shared with the consumer's context.
struct NoTask;

#[async_trait::async_trait]
impl SinkTask for NoTask {
    async fn start(&mut self) -> anyhow::Result<()> {
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
