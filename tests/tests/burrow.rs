//! Consumer lag as LinkedIn Burrow (Debian's 1.2.1, with Debian's ZooKeeper) evaluates it
//! against the broker, unchanged: Burrow pins sarama to an old `kafka-version`, so it speaks
//! request versions Kafka 4.0 removed (Fetch v0–2 with message formats v0/v1, ListOffsets v0),
//! reads `__consumer_offsets` itself, and decodes Kafka's offset records (lag) and group-metadata
//! records (who owns each partition).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use integration_tests::TestBroker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use test_support::{Burrow, ZooKeeper};

const TOPIC: &str = "burrow-lagged";
const GROUP: &str = "burrow-group";
const LAG: &str = "/v3/kafka/local/consumer/burrow-group/lag";
const WITHIN: Duration = Duration::from_secs(60);

/// `(current_lag, owner)` of each partition of the lag answer, by partition.
fn partitions(lag: &Value) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, i64, String)> = lag["status"]["partitions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["topic"] == TOPIC)
                .map(|p| {
                    (
                        p["partition"].as_i64().unwrap_or(-1),
                        p["current_lag"].as_i64().unwrap_or(-1),
                        p["owner"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.into_iter()
        .map(|(_, lag, owner)| (lag, owner))
        .collect()
}

fn commit(consumer: &BaseConsumer, offsets: [i64; 2]) -> anyhow::Result<()> {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets.into_iter().enumerate() {
        tpl.add_partition_offset(TOPIC, p as i32, Offset::Offset(o))?;
    }
    consumer.commit(&tpl, CommitMode::Sync)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burrow_evaluates_the_lag_and_owners_of_a_group() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let zookeeper = ZooKeeper::start().await?;

    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &bootstrap);
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let created = admin
        .create_topics(
            &[NewTopic::new(TOPIC, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    // 20 records in partition 0, 10 in partition 1.
    let producer: FutureProducer = config.clone().set("acks", "all").create()?;
    for i in 0..30 {
        let partition = if i < 20 { 0 } else { 1 };
        let value = format!("record {i}");
        producer
            .send(
                FutureRecord::<(), _>::to(TOPIC)
                    .partition(partition)
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }

    // A live member owning both partitions, polling on its own thread to stay in the group.
    let consumer: Arc<BaseConsumer> = Arc::new(
        config
            .clone()
            .set("group.id", GROUP)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .create()?,
    );
    consumer.subscribe(&[TOPIC])?;
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (consumer, stop) = (consumer.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
            }
        })
    };
    let deadline = std::time::Instant::now() + WITHIN;
    while consumer.assignment()?.count() < 2 {
        anyhow::ensure!(std::time::Instant::now() < deadline, "no assignment");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    commit(&consumer, [5, 3])?;

    // Debian's example config pins sarama to 0.10.0: Fetch v2 (message format v1), ListOffsets v0.
    let burrow = Burrow::start(&zookeeper, &bootstrap, "0.10.0").await?;
    let lag = burrow
        .wait_for(LAG, WITHIN, |v| {
            partitions(v)
                == vec![
                    (15, "/127.0.0.1".to_string()),
                    (7, "/127.0.0.1".to_string()),
                ]
        })
        .await?;
    assert_eq!(lag["status"]["totallag"], 22, "{lag}");
    let groups = burrow.get("/v3/kafka/local/consumer").await?;
    assert!(
        groups["consumers"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g == GROUP)),
        "{groups}"
    );

    // The group catches up: no lag left.
    commit(&consumer, [20, 10])?;
    let lag = burrow
        .wait_for(LAG, WITHIN, |v| {
            v["status"]["totallag"] == 0 && partitions(v).iter().all(|(lag, _)| *lag == 0)
        })
        .await?;
    assert_eq!(partitions(&lag).len(), 2, "{lag}");

    // The member leaves: the group's empty metadata record clears the owners.
    stop.store(true, Ordering::Relaxed);
    poller.join().expect("poller thread");
    // Closing sends LeaveGroup.
    drop(Arc::try_unwrap(consumer).map_err(|_| anyhow::anyhow!("consumer still shared"))?);
    burrow
        .wait_for(LAG, WITHIN, |v| {
            partitions(v) == vec![(0, String::new()), (0, String::new())]
        })
        .await?;
    drop(burrow);

    // Burrow's default, sarama pinned to 0.8.2: Fetch v0 (message format v0) reads the same.
    let old = Burrow::start(&zookeeper, &bootstrap, "0.8.2").await?;
    old.wait_for(LAG, WITHIN, |v| {
        v["status"]["totallag"] == 0
            && partitions(v) == vec![(0, String::new()), (0, String::new())]
    })
    .await?;
    Ok(())
}
