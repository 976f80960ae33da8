//! The last minutes of throughput and lag, for the charts: a background task samples the
//! topics' end offsets and every group's lag over the Kafka protocol (so it works against any
//! Kafka) every `--sample-interval-ms`, and keeps a bounded window in memory.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::kafka::Kafka;

/// Samples kept: 10 minutes at the default 5 s interval.
pub const WINDOW: usize = 120;
/// Groups whose lag is kept per sample (the first by name).
pub const MAX_GROUPS: usize = 200;

#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub at_ms: i64,
    /// End offsets summed over the non-internal topics.
    pub records: i64,
    /// Total lag per group.
    pub lag: BTreeMap<String, i64>,
}

#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    pub fn push(&self, sample: Sample) {
        let mut s = self.samples.lock();
        if s.len() == WINDOW {
            s.pop_front();
        }
        s.push_back(sample);
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().iter().cloned().collect()
    }

    /// Records per second between consecutive samples, at each later sample's time.
    pub fn throughput(&self) -> Vec<(i64, f64)> {
        let s = self.samples();
        s.windows(2)
            .filter_map(|w| {
                let dt = (w[1].at_ms - w[0].at_ms) as f64 / 1000.0;
                (dt > 0.0).then(|| {
                    (
                        w[1].at_ms,
                        ((w[1].records - w[0].records).max(0) as f64) / dt,
                    )
                })
            })
            .collect()
    }

    /// A group's total lag at each sample that has it.
    pub fn lag_of(&self, group: &str) -> Vec<(i64, f64)> {
        self.samples()
            .iter()
            .filter_map(|s| s.lag.get(group).map(|l| (s.at_ms, *l as f64)))
            .collect()
    }

    /// Lag summed over every group at each sample.
    pub fn total_lag(&self) -> Vec<(i64, f64)> {
        self.samples()
            .iter()
            .map(|s| (s.at_ms, s.lag.values().sum::<i64>() as f64))
            .collect()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Takes one sample; a cluster that cannot be reached leaves a gap.
pub async fn sample(kafka: &Kafka) -> Option<Sample> {
    let topics = kafka.topics(None).await.ok()?;
    let records = topics
        .iter()
        .filter(|t| !t.internal)
        .flat_map(|t| t.partitions.iter().filter_map(|p| p.end))
        .sum();
    let groups = kafka.groups().await.unwrap_or_default();
    let lag = groups
        .iter()
        .take(MAX_GROUPS)
        .map(|g| (g.group_id.clone(), g.total_lag()))
        .collect();
    Some(Sample {
        at_ms: now_ms(),
        records,
        lag,
    })
}

/// Samples every `interval` until `stop` fires.
pub async fn run(
    kafka: Arc<Kafka>,
    history: Arc<History>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        if let Some(s) = sample(&kafka).await {
            history.push(s);
        }
    }
}
