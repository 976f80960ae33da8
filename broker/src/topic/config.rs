//! Topic-level configs (`retention.ms`, `cleanup.policy`, ...): which keys exist, their types and
//! defaults (taken from the broker's flags), validation, and the log settings they imply.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::log::{CompactionConfig, CompressionType, LogConfig, RecordPolicy, TimestampType};

/// Kafka's config types, as DescribeConfigs (v3+) reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}

/// One known topic config.
pub struct ConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    /// The broker-level config that supplies the default, if any (Kafka's synonym).
    pub broker_synonym: Option<&'static str>,
    pub doc: &'static str,
    allowed: Option<&'static [&'static str]>,
    min: Option<i64>,
}

const fn def(
    name: &'static str,
    ty: ConfigType,
    broker_synonym: Option<&'static str>,
    doc: &'static str,
    allowed: Option<&'static [&'static str]>,
    min: Option<i64>,
) -> ConfigDef {
    ConfigDef {
        name,
        ty,
        broker_synonym,
        doc,
        allowed,
        min,
    }
}

/// Every topic config this broker understands. Any other key is rejected with INVALID_CONFIG,
/// as Kafka does.
pub static DEFS: &[ConfigDef] = &[
    def(
        "cleanup.policy",
        ConfigType::List,
        Some("log.cleanup.policy"),
        "delete, compact or both",
        Some(&["delete", "compact"]),
        None,
    ),
    def(
        "compression.type",
        ConfigType::String,
        Some("compression.type"),
        "codec batches are stored with; producer keeps the producer's, others recompress",
        Some(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        None,
    ),
    def(
        "delete.retention.ms",
        ConfigType::Long,
        Some("log.cleaner.delete.retention.ms"),
        "how long tombstones are kept on compacted topics",
        None,
        Some(0),
    ),
    def(
        "file.delete.delay.ms",
        ConfigType::Long,
        Some("log.segment.delete.delay.ms"),
        "delay before a deleted segment's file is removed",
        None,
        Some(0),
    ),
    def(
        "flush.messages",
        ConfigType::Long,
        Some("log.flush.interval.messages"),
        "accepted for compatibility; the broker's flush policy decides",
        None,
        Some(1),
    ),
    def(
        "flush.ms",
        ConfigType::Long,
        Some("log.flush.interval.ms"),
        "accepted for compatibility; the broker's flush policy decides",
        None,
        Some(0),
    ),
    def(
        "index.interval.bytes",
        ConfigType::Int,
        Some("log.index.interval.bytes"),
        "bytes between offset index entries",
        None,
        Some(0),
    ),
    def(
        "max.compaction.lag.ms",
        ConfigType::Long,
        Some("log.cleaner.max.compaction.lag.ms"),
        "longest time a record stays uncompacted",
        None,
        Some(1),
    ),
    def(
        "max.message.bytes",
        ConfigType::Int,
        Some("message.max.bytes"),
        "largest record batch accepted",
        None,
        Some(0),
    ),
    // Deprecated in Kafka 3.x and still accepted by Kafka 3.9 (removed in 4.0): accepted, shown by
    // DescribeConfigs, and without effect, as in Kafka with the current message format.
    def(
        "message.downconversion.enable",
        ConfigType::Boolean,
        Some("log.message.downconversion.enable"),
        "deprecated; accepted for compatibility (no down-conversion: every client here reads v2)",
        None,
        None,
    ),
    def(
        "message.format.version",
        ConfigType::String,
        Some("log.message.format.version"),
        "deprecated; accepted for compatibility (batches are always stored in format v2)",
        None,
        None,
    ),
    def(
        "message.timestamp.after.max.ms",
        ConfigType::Long,
        Some("log.message.timestamp.after.max.ms"),
        "how far ahead of the broker's clock a CreateTime timestamp may be",
        None,
        Some(0),
    ),
    def(
        "message.timestamp.before.max.ms",
        ConfigType::Long,
        Some("log.message.timestamp.before.max.ms"),
        "how far behind the broker's clock a CreateTime timestamp may be",
        None,
        Some(0),
    ),
    def(
        "message.timestamp.type",
        ConfigType::String,
        Some("log.message.timestamp.type"),
        "CreateTime keeps the producer's timestamps, LogAppendTime stamps the append time",
        Some(&["CreateTime", "LogAppendTime"]),
        None,
    ),
    def(
        "min.cleanable.dirty.ratio",
        ConfigType::Double,
        Some("log.cleaner.min.cleanable.ratio"),
        "share of a log that must be dirty before compaction",
        None,
        None,
    ),
    def(
        "min.compaction.lag.ms",
        ConfigType::Long,
        Some("log.cleaner.min.compaction.lag.ms"),
        "shortest time a record stays uncompacted",
        None,
        Some(0),
    ),
    def(
        "min.insync.replicas",
        ConfigType::Int,
        Some("min.insync.replicas"),
        "a single node is always its own in-sync replica",
        None,
        Some(1),
    ),
    def(
        "preallocate",
        ConfigType::Boolean,
        Some("log.preallocate"),
        "accepted for compatibility",
        None,
        None,
    ),
    def(
        "retention.bytes",
        ConfigType::Long,
        Some("log.retention.bytes"),
        "bytes kept per partition; -1 for no limit",
        None,
        Some(-1),
    ),
    def(
        "retention.ms",
        ConfigType::Long,
        Some("log.retention.ms"),
        "how long records are kept; -1 for ever",
        None,
        Some(-1),
    ),
    def(
        "segment.bytes",
        ConfigType::Int,
        Some("log.segment.bytes"),
        "size at which a segment is rolled",
        None,
        Some(14),
    ),
    def(
        "segment.ms",
        ConfigType::Long,
        Some("log.roll.ms"),
        "accepted for compatibility; segments roll by size",
        None,
        Some(1),
    ),
    def(
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        Some("unclean.leader.election.enable"),
        "a single node has no unclean elections",
        None,
        None,
    ),
];

/// Looks up a known config.
pub fn lookup(name: &str) -> Option<&'static ConfigDef> {
    DEFS.iter().find(|d| d.name == name)
}

/// The broker-wide default of a topic config, as the broker's flags set it.
pub fn default_value(def: &ConfigDef, broker: &Config) -> String {
    match def.name {
        "cleanup.policy" => "delete".into(),
        "compression.type" => "producer".into(),
        "delete.retention.ms" => "86400000".into(),
        "file.delete.delay.ms" => "60000".into(),
        "flush.messages" | "max.compaction.lag.ms" | "flush.ms" | "segment.ms" => {
            i64::MAX.to_string()
        }
        "index.interval.bytes" => "4096".into(),
        "max.message.bytes" => broker.message_max_bytes.to_string(),
        "message.downconversion.enable" => "true".into(),
        "message.format.version" => "3.0-IV1".into(),
        "message.timestamp.type" => "CreateTime".into(),
        "message.timestamp.before.max.ms" => i64::MAX.to_string(),
        "message.timestamp.after.max.ms" => "3600000".into(),
        "min.cleanable.dirty.ratio" => "0.5".into(),
        "min.compaction.lag.ms" => "0".into(),
        "min.insync.replicas" => "1".into(),
        "preallocate" | "unclean.leader.election.enable" => "false".into(),
        "retention.bytes" => broker.log_retention_bytes.to_string(),
        "retention.ms" => broker.log_retention_ms.to_string(),
        "segment.bytes" => broker.log_segment_bytes.to_string(),
        _ => String::new(),
    }
}

/// Checks one value against its definition.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    let def = lookup(name).ok_or_else(|| format!("unknown topic config name: {name}"))?;
    let invalid = |why: &str| format!("invalid value {value:?} for configuration {name}: {why}");
    if name == "message.format.version" && !is_kafka_version(value) {
        return Err(invalid("expected a Kafka version such as 2.8 or 3.0-IV1"));
    }
    match def.ty {
        ConfigType::Boolean => {
            if !matches!(value, "true" | "false") {
                return Err(invalid("expected true or false"));
            }
        }
        ConfigType::Int | ConfigType::Short | ConfigType::Long => {
            let n: i64 = value.trim().parse().map_err(|_| invalid("not a number"))?;
            if def.ty == ConfigType::Int && i32::try_from(n).is_err() {
                return Err(invalid("out of range for an int"));
            }
            if let Some(min) = def.min {
                if n < min {
                    return Err(invalid(&format!("value must be at least {min}")));
                }
            }
        }
        ConfigType::Double => {
            let x: f64 = value.trim().parse().map_err(|_| invalid("not a number"))?;
            if !(0.0..=1.0).contains(&x) {
                return Err(invalid("value must be between 0 and 1"));
            }
        }
        ConfigType::String => {
            if let Some(allowed) = def.allowed {
                if !allowed.contains(&value) {
                    return Err(invalid(&format!(
                        "supported values: {}",
                        allowed.join(", ")
                    )));
                }
            }
        }
        ConfigType::List => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            if let Some(allowed) = def.allowed {
                if items.is_empty() || items.iter().any(|i| !allowed.contains(i)) {
                    return Err(invalid(&format!(
                        "supported values: {}",
                        allowed.join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Whether `value` reads as a Kafka release, as `message.format.version` takes them: `2.8`,
/// `0.10.2`, `3.0-IV1`.
fn is_kafka_version(value: &str) -> bool {
    let (release, iv) = value.split_once("-IV").unwrap_or((value, "0"));
    let parts: Vec<&str> = release.split('.').collect();
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (2..=3).contains(&parts.len()) && parts.iter().all(|p| number(p)) && number(iv)
}

/// A topic's overrides of the broker defaults, as set by CreateTopics or IncrementalAlterConfigs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TopicConfigs(pub BTreeMap<String, String>);

impl TopicConfigs {
    /// The value in force: the override if set, else the broker default.
    pub fn effective(&self, name: &str, broker: &Config) -> Option<String> {
        let def = lookup(name)?;
        Some(
            self.0
                .get(name)
                .cloned()
                .unwrap_or_else(|| default_value(def, broker)),
        )
    }

    fn effective_i64(&self, name: &str, broker: &Config) -> i64 {
        self.effective(name, broker)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(-1)
    }

    /// Whether the topic is compacted (`cleanup.policy` includes `compact`).
    pub fn is_compacted(&self, broker: &Config) -> bool {
        self.effective("cleanup.policy", broker)
            .is_some_and(|p| p.split(',').any(|i| i.trim() == "compact"))
    }

    /// Whether old segments are deleted by time and size (`cleanup.policy` includes `delete`).
    pub fn deletes_by_retention(&self, broker: &Config) -> bool {
        self.effective("cleanup.policy", broker)
            .is_some_and(|p| p.split(',').any(|i| i.trim() == "delete"))
    }

    /// The log settings these configs imply.
    pub fn log_config(&self, broker: &Config) -> LogConfig {
        let deletes = self.deletes_by_retention(broker);
        let positive = |n: i64| (deletes && n >= 0).then_some(n);
        LogConfig {
            segment_bytes: u64::try_from(self.effective_i64("segment.bytes", broker))
                .unwrap_or(broker.log_segment_bytes),
            index_interval_bytes: u32::try_from(self.effective_i64("index.interval.bytes", broker))
                .unwrap_or(4096),
            max_batch_bytes: usize::try_from(self.effective_i64("max.message.bytes", broker))
                .unwrap_or(usize::MAX),
            retention_ms: positive(self.effective_i64("retention.ms", broker)),
            retention_bytes: positive(self.effective_i64("retention.bytes", broker)),
            compaction: self.compaction_config(broker),
            records: self.record_policy(broker),
        }
    }

    /// What produce validation enforces (timestamps) and the codec batches are stored with.
    pub fn record_policy(&self, broker: &Config) -> RecordPolicy {
        let defaults = RecordPolicy::default();
        let long = |name: &str, default: i64| {
            self.effective(name, broker)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|v| *v >= 0)
                .unwrap_or(default)
        };
        RecordPolicy {
            timestamp_type: self
                .effective("message.timestamp.type", broker)
                .and_then(|v| TimestampType::parse(&v))
                .unwrap_or(defaults.timestamp_type),
            timestamp_before_max_ms: long(
                "message.timestamp.before.max.ms",
                defaults.timestamp_before_max_ms,
            ),
            timestamp_after_max_ms: long(
                "message.timestamp.after.max.ms",
                defaults.timestamp_after_max_ms,
            ),
            compression: self
                .effective("compression.type", broker)
                .and_then(|v| CompressionType::parse(&v))
                .unwrap_or(defaults.compression),
        }
    }

    /// The compaction settings, if `cleanup.policy` includes `compact`.
    pub fn compaction_config(&self, broker: &Config) -> Option<CompactionConfig> {
        if !self.is_compacted(broker) {
            return None;
        }
        let defaults = CompactionConfig::default();
        let long = |name: &str, default: i64| {
            self.effective(name, broker)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|v| *v >= 0)
                .unwrap_or(default)
        };
        Some(CompactionConfig {
            delete_retention_ms: long("delete.retention.ms", defaults.delete_retention_ms),
            min_compaction_lag_ms: long("min.compaction.lag.ms", defaults.min_compaction_lag_ms),
            min_cleanable_dirty_ratio: self
                .effective("min.cleanable.dirty.ratio", broker)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(defaults.min_cleanable_dirty_ratio),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_types_ranges_and_names() {
        assert!(validate("retention.ms", "3600000").is_ok());
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("retention.ms", "soon").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "shred").is_err());
        assert!(validate("segment.bytes", "99999999999").is_err());
        assert!(validate("no.such.config", "1").is_err());
        assert!(validate("message.format.version", "2.8").is_ok());
        assert!(validate("message.format.version", "3.0-IV1").is_ok());
        assert!(validate("message.format.version", "0.10.2").is_ok());
        assert!(validate("message.format.version", "banana").is_err());
        assert!(validate("message.format.version", "3.").is_err());
        assert!(validate("message.downconversion.enable", "false").is_ok());
    }

    #[test]
    fn overrides_win_over_broker_defaults() {
        let broker = Config::for_data_dir("/tmp/x");
        let mut configs = TopicConfigs::default();
        assert_eq!(
            configs.effective("retention.ms", &broker).as_deref(),
            Some("604800000")
        );
        configs.0.insert("retention.ms".into(), "1000".into());
        assert_eq!(configs.log_config(&broker).retention_ms, Some(1000));
        configs.0.insert("cleanup.policy".into(), "compact".into());
        assert!(configs.is_compacted(&broker));
        assert_eq!(configs.log_config(&broker).retention_ms, None);
        assert_eq!(
            configs.log_config(&broker).compaction,
            Some(crate::log::CompactionConfig::default())
        );
        configs.0.insert("delete.retention.ms".into(), "0".into());
        configs
            .0
            .insert("min.cleanable.dirty.ratio".into(), "0.1".into());
        let compaction = configs.log_config(&broker).compaction.unwrap();
        assert_eq!(compaction.delete_retention_ms, 0);
        assert_eq!(compaction.min_cleanable_dirty_ratio, 0.1);
        configs.0.insert("cleanup.policy".into(), "delete".into());
        assert_eq!(configs.log_config(&broker).compaction, None);
    }
}
