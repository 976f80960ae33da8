//! Property tests of the batch builder and the produce validator: whatever the builder writes
//! (any records, any codec) validates unchanged, and no mutation of a valid batch — flipped,
//! inserted or removed bytes, cut tails, forged header fields, with or without the CRC and
//! length fixed afterwards — makes the validator panic; what it accepts it accepts again,
//! unchanged.
//!
//! The default run is small (256 cases per property, under a second in a debug build); a longer
//! one: `PROPTEST_CASES=20000 cargo test -p broker --release --lib proptests`.

use proptest::prelude::*;

use super::builder::{BatchBuilder, Record};
use super::codec::Codec;
use super::validator::validate;
use super::{rewrite_crc, BatchHeader, LOG_OVERHEAD};
use crate::log::config::LogConfig;

const NOW: i64 = 1_700_000_000_000;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

type Header = (Vec<u8>, Option<Vec<u8>>);

#[derive(Debug, Clone)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    ts_offset: i64,
    headers: Vec<Header>,
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn record() -> impl Strategy<Value = Rec> {
    (
        prop::option::of(bytes(24)),
        prop::option::of(bytes(200)),
        -100_000i64..100_000,
        prop::collection::vec((bytes(8), prop::option::of(bytes(8))), 0..3),
    )
        .prop_map(|(key, value, ts_offset, headers)| Rec {
            key,
            value,
            ts_offset,
            headers,
        })
}

fn codec() -> impl Strategy<Value = Codec> {
    prop::sample::select(Codec::ALL.to_vec())
}

fn build(records: &[Rec], codec: Codec, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
    let mut b = BatchBuilder::new().compression(codec);
    if let Some((id, epoch, seq)) = producer {
        b = b.producer(id, epoch, seq);
    }
    for r in records {
        let headers: Vec<(&[u8], Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (&k[..], v.as_deref()))
            .collect();
        b.push(&Record {
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            timestamp: NOW + r.ts_offset,
            headers: &headers,
        });
    }
    b.build().expect("build")
}

fn config() -> LogConfig {
    LogConfig {
        max_batch_bytes: 1 << 20,
        ..LogConfig::default()
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    Field(usize, i64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        // A header field from batchLength (8) to recordCount (57), set to a chosen value.
        (
            prop::sample::select(vec![8usize, 12, 16, 21, 23, 27, 35, 43, 51, 53, 57]),
            prop_oneof![
                Just(0i64),
                Just(-1),
                Just(1),
                Just(i64::from(i32::MAX)),
                Just(i64::from(i32::MIN)),
                any::<i64>()
            ]
        )
            .prop_map(|(at, v)| Mutation::Field(at, v)),
    ]
}

fn apply(batch: &mut Vec<u8>, m: &Mutation) {
    let len = batch.len().max(1);
    match *m {
        Mutation::Flip(i, x) => {
            if let Some(b) = batch.get_mut(i % len) {
                *b ^= x;
            }
        }
        Mutation::Insert(i, b) => batch.insert(i % (batch.len() + 1), b),
        Mutation::Remove(i) => {
            if !batch.is_empty() {
                batch.remove(i % len);
            }
        }
        Mutation::Truncate(i) => batch.truncate(i % len),
        Mutation::Field(at, v) => {
            let width = match at {
                16 => 1,
                21 | 51 => 2,
                27 | 35 | 43 => 8,
                _ => 4,
            };
            let be = v.to_be_bytes();
            if let Some(field) = batch.get_mut(at..at + width) {
                field.copy_from_slice(&be[8 - width..]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn builder_output_always_validates_unchanged(
        records in prop::collection::vec(record(), 1..20),
        codec in codec(),
        producer in prop::option::of((0i64..1000, 0i16..10, 0i32..1000)),
    ) {
        let batch = build(&records, codec, producer);
        let mut buf = batch.clone();
        let validated = validate(&mut buf, &config(), NOW).expect("valid");
        prop_assert_eq!(&buf, &batch);
        let h = validated.headers()[0];
        prop_assert_eq!(h.record_count as usize, records.len());
        prop_assert_eq!(h.compression(), codec.id());
    }

    #[test]
    fn mutations_never_panic_and_accepted_output_is_stable(
        records in prop::collection::vec(record(), 1..8),
        codec in codec(),
        mutations in prop::collection::vec(mutation(), 1..4),
        fix_length in any::<bool>(),
        fix_crc in any::<bool>(),
    ) {
        let mut batch = build(&records, codec, None);
        for m in &mutations {
            apply(&mut batch, m);
        }
        if fix_length && batch.len() >= 12 {
            let len = i32::try_from(batch.len() - LOG_OVERHEAD).unwrap_or(i32::MAX);
            batch[8..12].copy_from_slice(&len.to_be_bytes());
        }
        if fix_crc {
            rewrite_crc(&mut batch);
        }
        let mut buf = batch.clone();
        if validate(&mut buf, &config(), NOW).is_ok() {
            let mut again = buf.clone();
            prop_assert!(validate(&mut again, &config(), NOW).is_ok());
            prop_assert_eq!(&again, &buf);
            prop_assert!(BatchHeader::parse(&buf).is_ok());
        }
    }
}
