//! The broker's HTTP listener against a real broker driven by rdkafka: `/metrics` counts what
//! clients did (records and bytes in and out per topic, requests per API, latency and fsync
//! histograms) and reports the state as Kafka dashboards read it (end offsets, log sizes,
//! partitions, connections), including consumer lag computed by the broker itself with
//! kafka_exporter's names; `/healthz` and `/readyz` answer; unknown paths are a JSON 404.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Broker {
    kafka: SocketAddr,
    http: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Broker {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = broker::Config::for_data_dir(dir.path());
        let kafka = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (kafka_addr, http_addr) = (kafka.local_addr().unwrap(), http.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listeners = broker::Listeners {
            kafka,
            extra: Vec::new(),
            http: Some(http),
        };
        let task = tokio::spawn(async move {
            broker::run_with(config, listeners, async {
                let _ = stopped.await;
            })
            .await
            .expect("broker run");
        });
        Broker {
            kafka: kafka_addr,
            http: http_addr,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// A plain HTTP/1.1 GET: (status, content type, body).
    async fn get(&self, path: &str) -> (u16, String, String) {
        let mut s = TcpStream::connect(self.http).await.expect("connect http");
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        let text = String::from_utf8(raw).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a header");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status");
        let content_type = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-type")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, content_type, body)
    }

    async fn metrics(&self) -> Samples {
        let (status, content_type, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        assert!(
            body.trim_end().ends_with("# EOF"),
            "OpenMetrics ends with # EOF"
        );
        Samples::parse(&body)
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

/// One sample: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// Samples of an exposition by metric name.
struct Samples(BTreeMap<String, Vec<Sample>>);

impl Samples {
    fn parse(text: &str) -> Self {
        let mut all: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("label");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            all.entry(name.to_string())
                .or_default()
                .push((labels, value));
        }
        Samples(all)
    }

    /// The value of `name` whose labels include all of `want`.
    fn get(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        self.0.get(name)?.iter().find_map(|(labels, v)| {
            want.iter()
                .all(|(k, w)| labels.get(*k).is_some_and(|l| l == w))
                .then_some(*v)
        })
    }

    fn value(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.get(name, want)
            .unwrap_or_else(|| panic!("no sample {name}{want:?}; have {:?}", self.0.keys()))
    }
}

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("log_level", "3");
    c
}

fn commit(bootstrap: &str, group: &str, topic: &str, offset: i64) {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("offset");
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_traffic_and_report_state_and_lag() {
    let broker = Broker::start().await;
    let bootstrap = broker.kafka.to_string();

    let (status, _, body) = broker.get("/healthz").await;
    assert_eq!((status, body.contains("ok")), (200, true), "{body}");
    let (status, _, body) = broker.get("/readyz").await;
    assert_eq!((status, body.contains("ready")), (200, true), "{body}");
    let (status, content_type, body) = broker.get("/nope").await;
    assert_eq!(status, 404);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(body.contains("/metrics"), "{body}");

    let topic = "metered";
    let admin: AdminClient<DefaultClientContext> = client(&bootstrap).create().expect("admin");
    admin
        .create_topics(
            &[NewTopic::new(topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topics");

    let producer: FutureProducer = client(&bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let value = "v".repeat(100);
    for i in 0..10 {
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(0)
                    .key(&format!("k{i}"))
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }

    commit(&bootstrap, "lagging", topic, 4);
    let m = broker.metrics().await;
    let t = [("topic", topic)];
    let p0 = [("topic", topic), ("partition", "0")];
    assert_eq!(
        m.value("kafka_server_brokertopicmetrics_messagesin_total", &t),
        10.0
    );
    assert!(m.value("kafka_server_brokertopicmetrics_bytesin_total", &t) > 1000.0);
    assert_eq!(m.value("kafka_topic_partition_current_offset", &p0), 10.0);
    assert_eq!(
        m.value(
            "kafka_topic_partition_current_offset",
            &[("topic", topic), ("partition", "1")]
        ),
        0.0
    );
    assert_eq!(m.value("kafka_log_log_logendoffset", &p0), 10.0);
    assert_eq!(m.value("kafka_topic_partition_oldest_offset", &p0), 0.0);
    assert!(m.value("kafka_log_log_size", &p0) > 1000.0);
    assert_eq!(m.value("kafka_topic_partitions", &t), 2.0);
    assert!(m.value("kafka_server_replicamanager_partitioncount", &[]) >= 2.0);
    assert_eq!(m.value("kafka_brokers", &[]), 1.0);
    assert!(m.value("kafka_server_socket_server_metrics_connection_count", &[]) >= 1.0);
    // Lag computed by the broker: what the group has not read.
    let g = [
        ("consumergroup", "lagging"),
        ("topic", topic),
        ("partition", "0"),
    ];
    assert_eq!(m.value("kafka_consumergroup_current_offset", &g), 4.0);
    assert_eq!(m.value("kafka_consumergroup_lag", &g), 6.0);
    assert_eq!(
        m.value(
            "kafka_consumergroup_lag_sum",
            &[("consumergroup", "lagging"), ("topic", topic)]
        ),
        6.0
    );
    // Requests per API and version, latency histograms, fsyncs.
    let produce: f64 = m.0["kafka_network_requestmetrics_requests_total"]
        .iter()
        .filter(|(l, _)| l["request"] == "Produce")
        .map(|(_, v)| v)
        .sum();
    assert!(produce >= 10.0, "{produce}");
    assert!(
        m.value(
            "kafka_network_requestmetrics_requests_total",
            &[("request", "Metadata")]
        ) >= 1.0
    );
    assert!(
        m.value(
            "kafka_network_requestmetrics_totaltime_seconds_count",
            &[("request", "Produce")]
        ) >= 10.0
    );
    assert!(m.value("kafka_log_logflushstats_logflush_seconds_count", &[]) >= 1.0);
    assert_eq!(
        m.value(
            "kafka_coordinator_group_groupmetadatamanager_numgroups",
            &[("state", "Stable")]
        ),
        0.0
    );

    // A consumer reads everything: bytes out, and the group's lag goes to 0 once committed.
    let consumer: BaseConsumer = client(&bootstrap)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assign");
    consumer.assign(&tpl).expect("assign");
    let mut read = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while read < 10 {
        assert!(std::time::Instant::now() < deadline, "read {read} of 10");
        if let Some(msg) = consumer.poll(Duration::from_millis(200)) {
            msg.expect("message").offset();
            read += 1;
        }
    }
    commit(&bootstrap, "lagging", topic, 10);
    let m = broker.metrics().await;
    assert!(m.value("kafka_server_brokertopicmetrics_bytesout_total", &t) > 1000.0);
    assert_eq!(m.value("kafka_consumergroup_lag", &g), 0.0);
    // A refused produce (partition 7 does not exist) is counted as failed, nothing appended.
    let refused = producer
        .send(
            FutureRecord::to(topic).partition(7).key("k").payload("v"),
            Duration::from_secs(2),
        )
        .await;
    assert!(refused.is_err());
    let m = broker.metrics().await;
    assert_eq!(
        m.value("kafka_server_brokertopicmetrics_messagesin_total", &t),
        10.0
    );
    drop(consumer);
    drop(producer);
    broker.stop().await;
}
