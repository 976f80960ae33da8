//! The on-disk log: one directory per partition, holding segments of record batches.
//!
//! The storage layer is deliberately simple and close to Kafka's own, because Kafka clients and
//! tools expect Kafka's semantics (offsets, KIP-74 fetch sizing, log start offset, retention):
//!
//! * [`batch`] — the v2 record batch: the header (parsing, CRC, offset rewriting) that the log
//!   works with, and below it the records parser, the codecs, the one batch builder and the
//!   produce validator (every record of every codec checked before anything is stored).
//! * [`config`] — [`LogConfig`]: sizes, retention, compaction and the record policy of a log.
//! * [`index`] — sparse offset and time indexes, in memory for the active segment only.
//! * [`segment`] — one `<base_offset>.log` file plus its indexes; positioned reads and writes.
//! * [`partition_log`] — [`PartitionLog`]: offset assignment, segment rolling, fetches across
//!   segments, retention, DeleteRecords, crash recovery.
//! * [`cleaner`] — log compaction (`cleanup.policy=compact`): keeps the latest record per key in
//!   closed segments, rewriting them beside the live files and swapping them in.
//! * [`swap`] — the crash-safe swap of a cleaned segment, and its recovery on open (so that the
//!   log does not depend on the cleaner: dependencies go cleaner → partition_log → segment).
//! * [`testing`] — shortcuts over the batch builder for tests and benchmarks.
//!
//! Durability model: an append is one `write` into the page cache; the caller makes it durable
//! with [`SyncHandle::sync`] (fdatasync outside the partition lock, shared by many producers),
//! or [`PartitionLog::flush`]. Closed segments are always fsynced whole. After a crash the active
//! segment is validated batch by batch and cut at the first torn batch.

pub mod batch;
pub mod cleaner;
pub mod config;
pub mod error;
pub mod index;
pub mod partition_log;
pub mod segment;
pub mod swap;
pub mod testing;

pub use batch::{validate_batches, BatchHeader, BATCH_HEADER_LEN};
pub use cleaner::CleanStats;
pub use config::{CompactionConfig, CompressionType, LogConfig, RecordPolicy, TimestampType};
pub use error::LogError;
pub use partition_log::{AppendInfo, PartitionLog, SyncHandle};
