//! Runs connector tasks: a sink task is a consumer-group member feeding `put`, a source task a
//! `poll` loop feeding a producer and the offsets topic. Converters, retries and the error
//! policy live here, so connectors only deal with Connect data.

pub mod errors;
pub mod exactly_once;
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
    pub bootstrap: crate::storage::kafka::KafkaConnection,
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
    /// Task metrics, served on `GET /metrics`.
    pub metrics: crate::metrics::ConnectMetrics,
    /// Whether source tasks run in transactions.
    pub exactly_once_source: exactly_once::ExactlyOnceSourceSupport,
    /// The worker's `group.id` (exactly-once source tasks' transactional ids).
    pub group_id: String,
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
///
/// Only whole occurrences are masked: a match must not be glued to letters, digits or `_` on
/// either side (where the password itself starts or ends with such a character). So the
/// password `x` in `password=x` is hidden, while `ConnectException` stays `ConnectException`;
/// a password that is a word of ordinary text (`at`, `in`) is still hidden wherever it stands
/// alone, which costs readability, never a secret.
pub fn mask_secrets(text: &str, config: &Config) -> String {
    let mut secrets: Vec<&str> = config
        .iter()
        .filter(|(k, v)| k.to_ascii_lowercase().contains("password") && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    // Longest first, so a password that contains another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for secret in secrets {
        out = mask_whole(&out, secret);
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with each whole occurrence of `secret` replaced by `[hidden]`.
fn mask_whole(text: &str, secret: &str) -> String {
    let starts_word = secret.chars().next().is_some_and(is_word);
    let ends_word = secret.chars().next_back().is_some_and(is_word);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(secret) {
        let before = rest[..at]
            .chars()
            .next_back()
            .or_else(|| out.chars().next_back());
        let after = rest[at + secret.len()..].chars().next();
        let glued_before = starts_word && before.is_some_and(is_word);
        let glued_after = ends_word && after.is_some_and(is_word);
        if glued_before || glued_after {
            // Not a whole occurrence: keep its first character and look again after it.
            let step = rest[at..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..at + step]);
            rest = &rest[at + step..];
        } else {
            out.push_str(&rest[..at]);
            out.push_str("[hidden]");
            rest = &rest[at + secret.len()..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::mask_secrets;
    use crate::connectors::config_of as config;

    #[test]
    fn a_short_password_never_mangles_other_words() {
        let c = config(&[("connection.password", "x")]);
        let trace = "org.apache.kafka.connect.errors.ConnectException: login x refused (max 1x)";
        assert_eq!(
            mask_secrets(trace, &c),
            "org.apache.kafka.connect.errors.ConnectException: login [hidden] refused (max 1x)"
        );
        let c = config(&[("connection.password", "e")]);
        assert_eq!(
            mask_secrets("ConnectException: password=e;", &c),
            "ConnectException: password=[hidden];"
        );
    }

    #[test]
    fn whole_passwords_are_hidden_wherever_they_stand() {
        let c = config(&[("connection.password", "s3cr3t"), ("user", "s3cr3t")]);
        assert_eq!(
            mask_secrets("jdbc://u:s3cr3t@db/x s3cr3t\n's3cr3t'", &c),
            "jdbc://u:[hidden]@db/x [hidden]\n'[hidden]'"
        );
        // Punctuation at the password's edge is part of it, so no boundary is needed there.
        let c = config(&[("db.password", "#pw!")]);
        assert_eq!(mask_secrets("a#pw!b", &c), "a[hidden]b");
        // Non-password settings are left alone.
        let c = config(&[("connection.user", "Exception")]);
        assert_eq!(mask_secrets("ConnectException", &c), "ConnectException");
    }

    #[test]
    fn a_password_containing_another_is_masked_whole() {
        let c = config(&[("a.password", "pass"), ("b.password", "pass word")]);
        assert_eq!(mask_secrets("is pass word ok", &c), "is [hidden] ok");
    }

    #[test]
    fn multibyte_text_around_a_password_survives() {
        let c = config(&[("connection.password", "é")]);
        assert_eq!(mask_secrets("café é ok", &c), "café [hidden] ok");
    }
}
