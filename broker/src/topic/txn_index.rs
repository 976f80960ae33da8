//! Transactions as one partition sees them (KIP-98): which producers have a transaction open
//! here (and at which offset it began), and which transactions were aborted (from their first
//! offset to their abort marker), as Kafka keeps them in its producer state and `.txnindex`.
//!
//! * The **last stable offset** is the first offset of the oldest open transaction (or the high
//!   watermark when none is open): a `read_committed` consumer reads only below it.
//! * The **aborted transactions** overlapping a fetched range go out with the fetch, so a
//!   `read_committed` consumer drops their records.
//!
//! Both are rebuilt from the log when the partition opens: transactional data batches open a
//! transaction, control batches (commit/abort markers, see [`marker_batch`]) close it.

use std::collections::BTreeMap;

use crate::log::batch::builder::{BatchBuilder, BuildError};
use crate::log::batch::record::Records;
use crate::log::{BatchHeader, BATCH_HEADER_LEN};

/// Control record type of an abort marker (Kafka's `ControlRecordType.ABORT`).
pub const ABORT: i16 = 0;
/// Control record type of a commit marker.
pub const COMMIT: i16 = 1;

/// An aborted transaction of one producer: records of `producer_id` from `first_offset` up to
/// the abort marker at `last_offset` are not to be shown to `read_committed` consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Open and aborted transactions of a partition.
#[derive(Debug, Default)]
pub struct PartitionTxns {
    /// Producer id → (first offset, epoch) of its open transaction.
    ongoing: BTreeMap<i64, (i64, i16)>,
    /// Aborted transactions in the order of their markers (so sorted by `last_offset`).
    aborted: Vec<AbortedTxn>,
}

impl PartitionTxns {
    /// Notes an appended batch: a transactional data batch opens its producer's transaction
    /// (if not open yet).
    pub fn on_data(&mut self, h: &BatchHeader) {
        if h.is_transactional() && !h.is_control() && h.producer_id >= 0 {
            self.ongoing
                .entry(h.producer_id)
                .or_insert((h.base_offset, h.producer_epoch));
        }
    }

    /// Notes a marker of `producer_id` at `offset`: closes its open transaction, remembering
    /// it as aborted if `kind` is [`ABORT`]. A marker without an open transaction (the
    /// producer wrote nothing here, or a marker written again after a restart) changes nothing.
    pub fn on_marker(&mut self, producer_id: i64, kind: i16, offset: i64) {
        let Some((first_offset, _)) = self.ongoing.remove(&producer_id) else {
            return;
        };
        if kind == ABORT {
            self.aborted.push(AbortedTxn {
                producer_id,
                first_offset,
                last_offset: offset,
            });
        }
    }

    /// The last stable offset, given the high watermark.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.ongoing
            .values()
            .map(|(first, _)| *first)
            .min()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Whether `producer_id` has a transaction open here.
    pub fn is_open(&self, producer_id: i64) -> bool {
        self.ongoing.contains_key(&producer_id)
    }

    /// `(producer id, epoch)` of every transaction open here.
    pub fn open(&self) -> Vec<(i64, i16)> {
        self.ongoing
            .iter()
            .map(|(pid, (_, epoch))| (*pid, *epoch))
            .collect()
    }

    /// Aborted transactions that may have records in `[from, to)`: marker at or after `from`,
    /// first offset before `to` (Kafka's `collectAbortedTxns`).
    pub fn aborted_in(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < to)
            .copied()
            .collect()
    }

    /// Whether the data batch `h` belongs to an aborted transaction.
    pub fn is_aborted(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self
                .aborted_in(h.base_offset, h.base_offset + 1)
                .iter()
                .any(|a| a.producer_id == h.producer_id && a.first_offset <= h.base_offset)
    }

    /// All aborted transactions (for the cleaner).
    pub fn aborted(&self) -> &[AbortedTxn] {
        &self.aborted
    }

    /// Forgets aborted transactions whose marker is below the log start offset.
    pub fn trim(&mut self, log_start_offset: i64) {
        let gone = self
            .aborted
            .partition_point(|a| a.last_offset < log_start_offset);
        self.aborted.drain(..gone);
    }
}

/// A control batch holding one commit or abort marker for `producer_id` at `epoch` (attributes:
/// control and transactional; key = version 0 and type, value = version 0 and coordinator epoch,
/// as Kafka's `EndTransactionMarker`).
pub fn marker_batch(
    producer_id: i64,
    epoch: i16,
    kind: i16,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Result<Vec<u8>, BuildError> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut builder = BatchBuilder::new()
        .producer(producer_id, epoch, -1)
        .transactional(true)
        .control(true);
    builder.record(Some(&key), Some(&value), now_ms);
    builder.build()
}

/// The marker type (commit or abort) of a control batch, `None` if it holds no readable marker.
pub fn marker_kind(batch: &[u8]) -> Option<i16> {
    let data = batch.get(BATCH_HEADER_LEN..)?;
    let record = Records::new(data).next()?.ok()?;
    let key = record.key?;
    let bytes: [u8; 2] = key.get(2..4)?.try_into().ok()?;
    Some(i16::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pid: i64, base: i64, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: crate::log::batch::TRANSACTIONAL_BIT,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            record_count: records,
        }
    }

    #[test]
    fn lso_is_the_first_offset_of_the_oldest_open_transaction() {
        let mut t = PartitionTxns::default();
        assert_eq!(t.last_stable_offset(10), 10);
        t.on_data(&data(1, 3, 2));
        t.on_data(&data(2, 5, 1));
        t.on_data(&data(1, 6, 1));
        assert_eq!(t.last_stable_offset(10), 3);
        assert_eq!(t.last_stable_offset(2), 2);
        t.on_marker(1, COMMIT, 7);
        assert_eq!(t.last_stable_offset(10), 5);
        t.on_marker(2, ABORT, 8);
        assert_eq!(t.last_stable_offset(10), 10);
        assert_eq!(
            t.aborted_in(0, 100),
            vec![AbortedTxn {
                producer_id: 2,
                first_offset: 5,
                last_offset: 8
            }]
        );
        assert!(t.aborted_in(9, 100).is_empty());
        assert!(t.aborted_in(0, 5).is_empty());
        assert!(t.is_aborted(&data(2, 5, 1)));
        assert!(!t.is_aborted(&data(1, 3, 2)));
        // A second marker (written again after a restart) changes nothing.
        t.on_marker(2, ABORT, 9);
        assert_eq!(t.aborted().len(), 1);
        t.trim(9);
        assert!(t.aborted().is_empty());
    }

    #[test]
    fn marker_batches_round_trip() {
        let batch = marker_batch(7, 3, COMMIT, 0, 1000).expect("build");
        let h = BatchHeader::parse(&batch).expect("header");
        assert!(h.is_control() && h.is_transactional());
        assert_eq!((h.producer_id, h.producer_epoch), (7, 3));
        assert_eq!(marker_kind(&batch), Some(COMMIT));
        let abort = marker_batch(7, 3, ABORT, 0, 1000).expect("build");
        assert_eq!(marker_kind(&abort), Some(ABORT));
    }
}
