//! Errors of the storage layer.
//!
//! One enum for the whole `log` module so that the request handlers can map every failure to a
//! Kafka error code in one place: data problems in a produce request (`CorruptMessage`,
//! `UnsupportedMagic`, `MessageTooLarge`, `RecordListTooLarge`) are the client's fault and are
//! answered with an error code, `OffsetOutOfRange` is part of the normal fetch protocol, and
//! `Io` / `OffsetOverflow` are broker-side failures.

use std::io;

/// Everything that can go wrong in the on-disk log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The underlying file system failed.
    #[error("log I/O error: {0}")]
    Io(#[from] io::Error),

    /// A record batch is malformed: bad length, bad CRC, negative counts, truncated data, or a
    /// produce without any batch.
    /// Kafka error code CORRUPT_MESSAGE (2).
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),

    /// A record batch uses a message format other than v2 (magic 2).
    /// Kafka error code UNSUPPORTED_FOR_MESSAGE_FORMAT (43).
    #[error("unsupported record batch magic {0} (only magic 2 is supported)")]
    UnsupportedMagic(i8),

    /// A single record batch is larger than the configured maximum.
    /// Kafka error code MESSAGE_TOO_LARGE (10).
    #[error("record batch of {size} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// Size of the offending batch in bytes.
        size: usize,
        /// Configured maximum batch size.
        max: usize,
    },

    /// The batches of one append do not fit in a single segment.
    /// Kafka error code RECORD_LIST_TOO_LARGE (18).
    #[error("append of {size} bytes exceeds the maximum segment size of {max} bytes")]
    RecordListTooLarge {
        /// Size of the append in bytes.
        size: usize,
        /// Maximum segment size in bytes.
        max: u64,
    },

    /// The requested offset is outside `[log_start, log_end]`.
    /// Kafka error code OFFSET_OUT_OF_RANGE (1).
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The offset that was asked for.
        offset: i64,
        /// First offset still in the log.
        log_start: i64,
        /// Offset the next appended record will get.
        log_end: i64,
    },

    /// Offsets can no longer be assigned (i64 overflow or a single append spanning more offsets
    /// than a segment can address).
    #[error("offset overflow: {0}")]
    OffsetOverflow(String),
}
