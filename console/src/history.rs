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

/// What the broker's own `/metrics` said, summed over topics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BrokerCounters {
    pub messages_in: f64,
    pub bytes_in: f64,
    pub bytes_out: f64,
    pub connections: f64,
}

impl BrokerCounters {
    /// Reads the counters out of a Prometheus text exposition (`prometheus-parse`).
    pub fn parse(text: &str) -> Option<Self> {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).ok()?;
        let mut out = BrokerCounters::default();
        let mut seen = false;
        for s in &scrape.samples {
            let v = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => continue,
            };
            let slot = match s.metric.as_str() {
                "kafka_server_brokertopicmetrics_messagesin_total" => &mut out.messages_in,
                "kafka_server_brokertopicmetrics_bytesin_total" => &mut out.bytes_in,
                "kafka_server_brokertopicmetrics_bytesout_total" => &mut out.bytes_out,
                "kafka_server_socket_server_metrics_connection_count" => &mut out.connections,
                _ => continue,
            };
            *slot += v;
            seen = true;
        }
        seen.then_some(out)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub at_ms: i64,
    /// The broker's counters, when `--metrics-url` is set and answered.
    pub broker: Option<BrokerCounters>,
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

    /// Per-second rate of one broker counter between consecutive samples that have it.
    pub fn broker_rate(&self, counter: impl Fn(&BrokerCounters) -> f64) -> Vec<(i64, f64)> {
        let s: Vec<(i64, BrokerCounters)> = self
            .samples()
            .iter()
            .filter_map(|s| Some((s.at_ms, s.broker?)))
            .collect();
        s.windows(2)
            .filter_map(|w| {
                let dt = (w[1].0 - w[0].0) as f64 / 1000.0;
                (dt > 0.0).then(|| {
                    (
                        w[1].0,
                        ((counter(&w[1].1) - counter(&w[0].1)).max(0.0)) / dt,
                    )
                })
            })
            .collect()
    }

    /// Open connections as the broker reported them.
    pub fn connections(&self) -> Vec<(i64, f64)> {
        self.samples()
            .iter()
            .filter_map(|s| Some((s.at_ms, s.broker?.connections)))
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

/// The broker's counters from `url`; `None` when it does not answer or says nothing known.
pub async fn broker_counters(http: &reqwest::Client, url: &str) -> Option<BrokerCounters> {
    let resp = http.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    BrokerCounters::parse(&resp.text().await.ok()?)
}

/// Takes one sample; a cluster that cannot be reached leaves a gap.
pub async fn sample(kafka: &Kafka, metrics: Option<(&reqwest::Client, &str)>) -> Option<Sample> {
    let topics = kafka.topics(None, false).await.ok()?;
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
    let broker = match metrics {
        Some((http, url)) => broker_counters(http, url).await,
        None => None,
    };
    Some(Sample {
        at_ms: now_ms(),
        broker,
        records,
        lag,
    })
}

/// Samples every `interval` until `stop` fires.
pub async fn run(
    kafka: Arc<Kafka>,
    history: Arc<History>,
    metrics_url: Option<String>,
    interval: Duration,
    stop: CancellationToken,
) {
    let http = reqwest::Client::builder()
        .timeout(interval.max(Duration::from_secs(1)))
        .build()
        .unwrap_or_default();
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let metrics = metrics_url.as_deref().map(|u| (&http, u));
        if let Some(s) = sample(&kafka, metrics).await {
            history.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_counters_are_summed_over_topics() {
        let text = "# TYPE kafka_server_brokertopicmetrics_messagesin counter\n\
            kafka_server_brokertopicmetrics_messagesin_total{topic=\"a\"} 3\n\
            kafka_server_brokertopicmetrics_messagesin_total{topic=\"b\"} 4\n\
            # TYPE kafka_server_brokertopicmetrics_bytesin counter\n\
            kafka_server_brokertopicmetrics_bytesin_total{topic=\"a\"} 300\n\
            # TYPE kafka_server_socket_server_metrics_connection_count gauge\n\
            kafka_server_socket_server_metrics_connection_count 2\n\
            # EOF\n";
        let c = BrokerCounters::parse(text).expect("counters");
        assert_eq!(
            (c.messages_in, c.bytes_in, c.bytes_out, c.connections),
            (7.0, 300.0, 0.0, 2.0)
        );
        assert_eq!(BrokerCounters::parse("other_metric 1\n"), None);
    }

    #[test]
    fn rates_come_from_consecutive_samples() {
        let h = History::default();
        for (at, n) in [(0, 0.0), (2_000, 10.0), (4_000, 30.0)] {
            h.push(Sample {
                at_ms: at,
                broker: Some(BrokerCounters {
                    messages_in: n,
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        assert_eq!(
            h.broker_rate(|c| c.messages_in),
            vec![(2_000, 5.0), (4_000, 10.0)]
        );
    }
}
