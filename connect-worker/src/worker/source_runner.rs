//! A source task's loop: `poll`, convert, produce (idempotent producer, awaited), and only then
//! commit the source offsets of what was delivered to the offsets topic. A crash between the
//! two re-sends the last records (at least once, as Kafka Connect's sources are).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value as Json;

use super::{mask_secrets, State, TaskRun};
use crate::connectors::config_def::ConfigExt;
use crate::connectors::SourceTask;
use crate::converters;
use crate::error::chain;
use crate::storage::{kafka, TargetState};

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
        let overrides = self
            .common
            .ctx
            .override_policy
            .overrides(&self.common.config, "producer.override.");
        let producer: FutureProducer = kafka::producer_with(&self.common.ctx.bootstrap, overrides)
            .map_err(|e| format!("creating the producer: {e}"))?;
        // The task may have run on another worker until now: resume from the offsets it
        // committed there.
        self.common
            .ctx
            .offsets
            .reload(&self.common.ctx.bootstrap)
            .await
            .map_err(|e| format!("reading source offsets: {}", chain(&e)))?;
        self.task
            .start(self.common.ctx.offsets.reader(&self.common.connector))
            .await
            .map_err(|e| format!("starting the task: {}", chain(&e)))?;
        let mut known_topics: HashSet<String> = HashSet::new();
        self.common.report(State::Running, None);
        let mut paused = false;
        loop {
            if self.common.cancel.is_cancelled() {
                return Ok(());
            }
            if *self.common.target.borrow() == TargetState::Paused {
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
                _ = self.common.cancel.cancelled() => return Ok(()),
                r = self.task.poll() => r.map_err(|e| format!("org.apache.kafka.connect.errors.ConnectException: {}", chain(&e)))?,
            };
            if records.is_empty() {
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
            let sends = encoded.iter().map(|(topic, k, v, ts)| {
                let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
                if let Some(k) = k {
                    rec = rec.key(k.as_slice());
                }
                if let Some(v) = v {
                    rec = rec.payload(v.as_slice());
                }
                if let Some(ts) = ts {
                    rec = rec.timestamp(*ts);
                }
                producer.send(rec, Duration::from_secs(60))
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
