//! Runs connector tasks: a sink task is a consumer-group member feeding `put`, a source task a
//! `poll` loop feeding a producer and the offsets topic. Converters, retries and the error
//! policy live here, so connectors only deal with Connect data.

pub mod errors;
pub mod sink_runner;
pub mod source_runner;
pub mod status;

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connectors::Config;
use crate::storage::{OffsetStore, TargetState};
pub use status::{State, StatusBoard};

/// What every task runner shares.
pub struct WorkerContext {
    pub bootstrap: String,
    pub worker_id: String,
    pub status: Arc<StatusBoard>,
    pub offsets: Arc<OffsetStore>,
    /// Converters of connectors that name none.
    pub key_converter: String,
    pub value_converter: String,
    /// Least time between the starts of two sink batches that are not full.
    pub sink_linger: std::time::Duration,
    /// Resolves `${provider:...}` placeholders of connector configs.
    pub providers: crate::config_providers::ConfigProviders,
    /// Directories whose files the FileStream connectors may use.
    pub allowed_paths: crate::allowed_paths::AllowedPaths,
    /// Which client overrides (`consumer.override.*`...) connector configs may carry.
    pub override_policy: crate::override_policy::OverridePolicy,
}

/// What a task runner (sink or source) knows of its task: which one it is, its config and how
/// the herder controls it.
pub struct TaskRun {
    pub connector: String,
    pub task_id: usize,
    pub config: Config,
    pub ctx: Arc<WorkerContext>,
    pub cancel: CancellationToken,
    pub target: watch::Receiver<TargetState>,
    pub generation: u64,
}

impl TaskRun {
    /// Reports the task's state, its trace with secrets masked (ignored once a newer instance
    /// of the task has reported).
    pub fn report(&self, state: State, trace: Option<String>) {
        let trace = trace.map(|t| mask_secrets(&t, &self.config));
        self.ctx.status.set(
            &status::task_key(&self.connector, self.task_id),
            state,
            trace,
            self.generation,
        );
    }
}

/// A running task, as the herder holds it.
pub struct TaskHandle {
    pub cancel: CancellationToken,
    pub target: watch::Sender<TargetState>,
    pub join: tokio::task::JoinHandle<()>,
}

impl TaskHandle {
    /// Asks the task to stop and waits (a bounded time) until it has.
    pub async fn stop(self) {
        self.cancel.cancel();
        let abort = self.join.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_secs(30), self.join)
            .await
            .is_err()
        {
            tracing::warn!("task did not stop within 30s; abandoning it");
            abort.abort();
        }
    }
}

/// Replaces every password value in `text` (a trace) with `[hidden]`.
pub fn mask_secrets(text: &str, config: &Config) -> String {
    let mut out = text.to_string();
    for (k, v) in config {
        if k.to_ascii_lowercase().contains("password") && !v.is_empty() {
            out = out.replace(v.as_str(), "[hidden]");
        }
    }
    out
}
