//! Exactly-once source support (KIP-618): the worker setting `exactly.once.source.support`, the
//! connector settings `exactly.once.support` and `transaction.boundary`, and what a source task
//! does with them. With support enabled, a source task writes its records and its source offsets
//! (to the offsets topic) in one Kafka transaction under the transactional.id
//! `${groupId}-${connector}-${taskId}`, as Kafka Connect does: a task killed at any moment leaves
//! either both or neither, and its successor (same transactional.id) fences it, settles its last
//! transaction and reads the committed offsets before polling. Without it a source is at least
//! once: records first, offsets after, so a kill in between repeats records.

use std::time::Duration;

use crate::connectors::config_def::{ConfigExt, ConfigKey, ConfigType};
use crate::connectors::Config;

/// The worker's `exactly.once.source.support`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[value(rename_all = "lower")]
pub enum ExactlyOnceSourceSupport {
    /// Sources are at least once.
    #[default]
    Disabled,
    /// Kafka's step of a rolling upgrade (fence zombies, no transactions yet); with one worker
    /// the same as `disabled`.
    Preparing,
    /// Source tasks write records and offsets in transactions.
    Enabled,
}

/// When a source task commits its transaction (`transaction.boundary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionBoundary {
    /// After every non-empty batch `poll` returns.
    Poll,
    /// Once this long has passed since the transaction began.
    Interval(Duration),
}

/// `transaction.boundary.interval.ms` when unset: Kafka's `offset.flush.interval.ms` default.
const DEFAULT_INTERVAL_MS: u64 = 60_000;

/// The connector settings of this module, for validation responses.
pub fn config_keys() -> Vec<ConfigKey> {
    use ConfigType::*;
    vec![
        ConfigKey::new(
            "exactly.once.support",
            String,
            Some("requested"),
            "Exactly Once Support",
            "Whether the connector must run with exactly-once semantics (required) or only when the worker provides them (requested).",
        )
        .one_of(&["requested", "required"]),
        ConfigKey::new(
            "transaction.boundary",
            String,
            Some("poll"),
            "Exactly Once Support",
            "When a task commits its transaction: after each poll, every transaction.boundary.interval.ms, or where the connector says (connector; no connector here defines boundaries).",
        )
        .one_of(&["poll", "interval", "connector"]),
        ConfigKey::new(
            "transaction.boundary.interval.ms",
            Long,
            Some(""),
            "Exactly Once Support",
            "With transaction.boundary=interval: how long a transaction stays open (default 60000).",
        ),
    ]
}

/// The problems of a source connector's exactly-once settings on a worker with `support`, as
/// (key, message) pairs. The values themselves are checked by [`config_keys`].
pub fn violations(config: &Config, support: ExactlyOnceSourceSupport) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let required = config
        .str_or("exactly.once.support", "requested")
        .trim()
        .eq_ignore_ascii_case("required");
    if required && support != ExactlyOnceSourceSupport::Enabled {
        problems.push((
            "exactly.once.support".to_string(),
            "This worker does not have exactly-once source support enabled (exactly.once.source.support=enabled), which exactly.once.support=required needs".to_string(),
        ));
    }
    if support == ExactlyOnceSourceSupport::Enabled {
        let boundary = config.str_or("transaction.boundary", "poll").trim();
        if boundary.eq_ignore_ascii_case("connector") {
            problems.push((
                "transaction.boundary".to_string(),
                "The connector does not support connector-defined transaction boundaries with the given configuration. Please use a different transaction boundary type".to_string(),
            ));
        }
        if let Some(raw) = config.get("transaction.boundary.interval.ms") {
            let raw = raw.trim();
            if !raw.is_empty() && raw.parse::<u64>().is_err() {
                problems.push((
                    "transaction.boundary.interval.ms".to_string(),
                    format!("Invalid value {raw} for configuration transaction.boundary.interval.ms: must be a non-negative number of milliseconds"),
                ));
            }
        }
    }
    problems
}

/// How a source task of `config` runs on a worker with `support`: `None` at least once,
/// `Some(boundary)` in transactions. `Err` for settings [`violations`] refuses.
pub fn boundary(
    config: &Config,
    support: ExactlyOnceSourceSupport,
) -> Result<Option<TransactionBoundary>, String> {
    if let Some((key, message)) = violations(config, support).into_iter().next() {
        return Err(format!("{key}: {message}"));
    }
    if support != ExactlyOnceSourceSupport::Enabled {
        return Ok(None);
    }
    let kind = config.str_or("transaction.boundary", "poll").trim();
    if kind.eq_ignore_ascii_case("interval") {
        let ms = config
            .get("transaction.boundary.interval.ms")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_INTERVAL_MS);
        Ok(Some(TransactionBoundary::Interval(Duration::from_millis(
            ms,
        ))))
    } else {
        Ok(Some(TransactionBoundary::Poll))
    }
}

/// A source task's transactional.id, as Kafka Connect names it.
pub fn transactional_id(group_id: &str, connector: &str, task: usize) -> String {
    format!("{group_id}-{connector}-{task}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::config_of as config;
    use ExactlyOnceSourceSupport::*;

    #[test]
    fn boundaries_follow_the_worker_and_connector_settings() {
        assert_eq!(boundary(&config(&[]), Disabled), Ok(None));
        assert_eq!(boundary(&config(&[]), Preparing), Ok(None));
        assert_eq!(
            boundary(&config(&[]), Enabled),
            Ok(Some(TransactionBoundary::Poll))
        );
        assert_eq!(
            boundary(
                &config(&[
                    ("transaction.boundary", "interval"),
                    ("transaction.boundary.interval.ms", "250")
                ]),
                Enabled
            ),
            Ok(Some(TransactionBoundary::Interval(Duration::from_millis(
                250
            ))))
        );
        assert_eq!(
            boundary(&config(&[("transaction.boundary", "interval")]), Enabled),
            Ok(Some(TransactionBoundary::Interval(Duration::from_secs(60))))
        );
        // Ignored when the worker runs no transactions, as in Kafka.
        assert_eq!(
            boundary(&config(&[("transaction.boundary", "connector")]), Disabled),
            Ok(None)
        );
    }

    #[test]
    fn impossible_settings_are_refused() {
        let required = config(&[("exactly.once.support", "required")]);
        assert_eq!(violations(&required, Enabled), vec![]);
        for support in [Disabled, Preparing] {
            let v = violations(&required, support);
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(v[0].0, "exactly.once.support");
            assert!(boundary(&required, support).is_err());
        }
        let v = violations(&config(&[("transaction.boundary", "connector")]), Enabled);
        assert_eq!(v[0].0, "transaction.boundary");
        let v = violations(
            &config(&[
                ("transaction.boundary", "interval"),
                ("transaction.boundary.interval.ms", "-5"),
            ]),
            Enabled,
        );
        assert_eq!(v[0].0, "transaction.boundary.interval.ms");
        assert_eq!(
            transactional_id("connect-cluster", "src", 0),
            "connect-cluster-src-0"
        );
    }
}
