//! Idempotent-producer state of one partition: for every producer id, its epoch and the sequence
//! ranges of its last five batches (librdkafka and the Java client keep at most five requests in
//! flight), so that a retried batch is recognised and answered with its original offset instead
//! of being appended twice, and a gap in the sequence is refused. The state is rebuilt from the
//! batch headers in the log when the broker starts, so deduplication survives a restart.

use std::collections::{HashMap, VecDeque};

use kafka_protocol::error::ResponseError;

use crate::log::BatchHeader;

/// Batches remembered per producer, as in Kafka.
const REMEMBERED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequencing {
    /// Next in sequence (or not idempotent at all): append it.
    Append,
    /// Already in the log at this base offset: acknowledge again, append nothing.
    Duplicate { base_offset: i64 },
}

/// The last sequence number of a batch; sequences wrap from `i32::MAX` to 0.
fn last_seq(h: &BatchHeader) -> i32 {
    let last = i64::from(h.base_sequence) + i64::from(h.last_offset_delta);
    (last % (i64::from(i32::MAX) + 1)) as i32
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// Per-producer sequence state of a partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// Rebuilds the state from the batch headers of the log, oldest first.
    pub fn rebuild(headers: impl IntoIterator<Item = BatchHeader>) -> Self {
        let mut states = ProducerStates::default();
        for h in headers {
            if h.producer_id >= 0 && !h.is_control() {
                states.record(&h, h.base_offset);
            }
        }
        states
    }

    /// Decides what to do with a batch about to be appended.
    pub fn check(&self, h: &BatchHeader) -> Result<Sequencing, ResponseError> {
        if h.producer_id < 0 {
            return Ok(Sequencing::Append);
        }
        if h.base_sequence < 0 {
            return Err(ResponseError::InvalidRecord);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // A producer this partition has not seen starts at sequence 0.
            return if h.base_sequence == 0 {
                Ok(Sequencing::Append)
            } else {
                Err(ResponseError::OutOfOrderSequenceNumber)
            };
        };
        if h.producer_epoch < entry.epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if h.producer_epoch > entry.epoch {
            // A bumped epoch starts its sequence again at 0.
            return if h.base_sequence == 0 {
                Ok(Sequencing::Append)
            } else {
                Err(ResponseError::OutOfOrderSequenceNumber)
            };
        }
        let (first, last) = (h.base_sequence, last_seq(h));
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(Sequencing::Duplicate {
                base_offset: dup.base_offset,
            });
        }
        match entry.batches.back() {
            Some(prev) if next_seq(prev.last_seq) == first => Ok(Sequencing::Append),
            None if first == 0 => Ok(Sequencing::Append),
            _ => Err(ResponseError::OutOfOrderSequenceNumber),
        }
    }

    /// A transaction marker of `producer_id` at `epoch` was written: batches with an older
    /// epoch are refused from now on. The same epoch keeps its sequence (a transactional
    /// producer's sequence numbers run on across its transactions).
    pub fn fence(&mut self, producer_id: i64, epoch: i16) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
    }

    /// Remembers a batch appended at `base_offset`.
    pub fn record(&mut self, h: &BatchHeader, base_offset: i64) {
        if h.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: last_seq(h),
            base_offset,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    #[test]
    fn retries_are_duplicates_and_gaps_are_refused() {
        let mut s = ProducerStates::default();
        let b0 = header(7, 0, 0, 3);
        assert_eq!(s.check(&b0), Ok(Sequencing::Append));
        s.record(&b0, 100);
        assert_eq!(s.check(&b0), Ok(Sequencing::Duplicate { base_offset: 100 }));
        let b1 = header(7, 0, 3, 2);
        assert_eq!(s.check(&b1), Ok(Sequencing::Append));
        s.record(&b1, 103);
        assert_eq!(s.check(&b1), Ok(Sequencing::Duplicate { base_offset: 103 }));
        assert_eq!(
            s.check(&header(7, 0, 9, 1)),
            Err(ResponseError::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            s.check(&header(8, 0, 4, 1)),
            Err(ResponseError::OutOfOrderSequenceNumber)
        );
        assert_eq!(s.check(&header(7, 1, 0, 1)), Ok(Sequencing::Append));
        s.record(&header(7, 1, 0, 1), 105);
        assert_eq!(
            s.check(&header(7, 0, 5, 1)),
            Err(ResponseError::InvalidProducerEpoch)
        );
    }

    #[test]
    fn rebuilt_state_still_deduplicates() {
        let mut a = header(3, 0, 0, 2);
        a.base_offset = 10;
        let mut b = header(3, 0, 2, 2);
        b.base_offset = 12;
        let s = ProducerStates::rebuild([a, b]);
        assert_eq!(s.check(&b), Ok(Sequencing::Duplicate { base_offset: 12 }));
        assert_eq!(s.check(&header(3, 0, 4, 1)), Ok(Sequencing::Append));
    }

    #[test]
    fn sequences_wrap_around() {
        let mut s = ProducerStates::default();
        s.producers.insert(
            1,
            ProducerEntry {
                epoch: 0,
                batches: VecDeque::from([BatchMeta {
                    first_seq: i32::MAX - 5,
                    last_seq: i32::MAX - 2,
                    base_offset: 0,
                }]),
            },
        );
        let wrapping = header(1, 0, i32::MAX - 1, 3);
        assert_eq!(s.check(&wrapping), Ok(Sequencing::Append));
        s.record(&wrapping, 3);
        assert_eq!(s.check(&header(1, 0, 1, 1)), Ok(Sequencing::Append));
    }
}
