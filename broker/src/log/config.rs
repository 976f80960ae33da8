//! The settings of one partition's log, as its topic's configs set them: sizes, retention,
//! compaction, and the record policy produce validation enforces.
//!
//! They live apart from [`PartitionLog`](super::PartitionLog) and the cleaner so that every
//! part of the log (appends, validation, the cleaner) reads them without depending on another.

use super::batch::codec::Codec;

/// Per-partition log settings (Kafka topic configs of the same names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before one would exceed this (capped at 4 GiB).
    pub segment_bytes: u64,
    /// `index.interval.bytes`: bytes of data between two offset index entries.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`: largest accepted record batch.
    pub max_batch_bytes: usize,
    /// `retention.ms`: `None` or negative keeps data forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: `None` or negative means no size limit.
    pub retention_bytes: Option<i64>,
    /// Compaction settings when `cleanup.policy` includes `compact`, else `None`. A compacted
    /// log also requires a key on every produced record.
    pub compaction: Option<CompactionConfig>,
    /// What produced records must satisfy, and how they are stored.
    pub records: RecordPolicy,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            index_interval_bytes: 4096,
            max_batch_bytes: 1_048_588,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
            compaction: None,
            records: RecordPolicy::default(),
        }
    }
}

/// What produced records must satisfy (Kafka's `LogValidator` settings) and how they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPolicy {
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime timestamp may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime timestamp may be.
    pub timestamp_after_max_ms: i64,
    /// `compression.type`: the codec batches are stored with.
    pub compression: CompressionType,
}

impl Default for RecordPolicy {
    /// Kafka 4.0's defaults.
    fn default() -> Self {
        RecordPolicy {
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            compression: CompressionType::Producer,
        }
    }
}

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamps are kept (and checked against the before/after limits).
    #[default]
    CreateTime,
    /// The broker stamps every batch with the time it appends it.
    LogAppendTime,
}

impl TimestampType {
    /// The config value's name.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }

    /// Parses a `message.timestamp.type` value.
    pub fn parse(value: &str) -> Option<Self> {
        [TimestampType::CreateTime, TimestampType::LogAppendTime]
            .into_iter()
            .find(|t| t.name() == value)
    }
}

/// `compression.type`: Kafka's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionType {
    /// Batches are stored as the producer compressed them.
    #[default]
    Producer,
    /// Batches are stored with this codec, recompressed when the producer used another.
    Codec(Codec),
}

impl CompressionType {
    /// Every value, in the order Kafka documents them.
    pub const ALL: [CompressionType; 6] = [
        CompressionType::Codec(Codec::None),
        CompressionType::Codec(Codec::Zstd),
        CompressionType::Codec(Codec::Lz4),
        CompressionType::Codec(Codec::Snappy),
        CompressionType::Codec(Codec::Gzip),
        CompressionType::Producer,
    ];

    /// The config value's name (`uncompressed` for no compression, as in Kafka).
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Codec(Codec::None) => "uncompressed",
            CompressionType::Codec(codec) => codec.name(),
        }
    }

    /// Parses a `compression.type` value.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == value)
    }

    /// The codec batches must be stored with, if the topic imposes one.
    pub fn codec(self) -> Option<Codec> {
        match self {
            CompressionType::Producer => None,
            CompressionType::Codec(codec) => Some(codec),
        }
    }
}

/// Compaction settings of a log (topic configs of the same names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionConfig {
    /// `delete.retention.ms`: how long a tombstone is kept, counted from its timestamp.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: a segment is cleaned only once its largest timestamp is at
    /// least this old.
    pub min_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: share of the cleanable bytes that must be dirty (not yet
    /// cleaned) for a pass to run.
    pub min_cleanable_dirty_ratio: f64,
}

// The ratio is a plain number from a validated config, never NaN.
impl Eq for CompactionConfig {}

impl Default for CompactionConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        CompactionConfig {
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}
