//! Kafka's internal topics are protected: a stock AdminClient (librdkafka's) can neither delete
//! `__consumer_offsets` nor delete records from it, nor create the reserved
//! `__transaction_state`; nothing changes, so the committed offsets of a group are still there
//! after the broker is killed and restarted.

mod common;

use std::time::Duration;

use common::{unique_topic, BrokerProcess};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const OFFSETS: &str = "__consumer_offsets";

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

fn committed(bootstrap: &str, group: &str, topic: &str) -> Offset {
    let c = consumer(bootstrap, group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.find_partition(topic, 0).expect("partition").offset()
}

#[tokio::test]
async fn internal_topics_cannot_be_deleted_and_offsets_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let topic = unique_topic("internal");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .expect("create");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    // A group commits offset 7.
    let group = unique_topic("group");
    let c = consumer(&bootstrap, &group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(7))
        .expect("offset");
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    drop(c);
    assert_eq!(committed(&bootstrap, &group, &topic), Offset::Offset(7));

    // DeleteTopics on __consumer_offsets: refused with INVALID_TOPIC_EXCEPTION.
    let deleted = admin
        .delete_topics(&[OFFSETS], &opts)
        .await
        .expect("delete");
    assert_eq!(
        deleted,
        vec![Err((OFFSETS.to_string(), RDKafkaErrorCode::InvalidTopic))]
    );

    // DeleteRecords on __consumer_offsets: refused too.
    let mut all = TopicPartitionList::new();
    all.add_partition_offset(OFFSETS, 0, Offset::End)
        .expect("offset");
    match admin.delete_records(&all, &opts).await {
        Ok(result) => {
            let elem = result.find_partition(OFFSETS, 0).expect("partition");
            let err = elem.error().expect_err("DeleteRecords must be refused");
            assert_eq!(
                err.rdkafka_error_code(),
                Some(RDKafkaErrorCode::InvalidTopic),
                "{err}"
            );
        }
        Err(e) => assert_eq!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::InvalidTopic),
            "{e}"
        ),
    }

    // The transaction-state topic's name is reserved; an ordinary `__` topic is not.
    let app_topic = format!("__{}", unique_topic("app"));
    let created = admin
        .create_topics(
            &[
                NewTopic::new("__transaction_state", 1, TopicReplication::Fixed(1)),
                NewTopic::new(&app_topic, 1, TopicReplication::Fixed(1)),
            ],
            &opts,
        )
        .await
        .expect("create");
    assert_eq!(
        created,
        vec![
            Err((
                "__transaction_state".to_string(),
                RDKafkaErrorCode::InvalidTopic
            )),
            Ok(app_topic.clone()),
        ]
    );
    // ... and that one may be deleted.
    let deleted = admin
        .delete_topics(&[app_topic.as_str()], &opts)
        .await
        .expect("delete");
    assert_eq!(deleted, vec![Ok(app_topic)]);

    // Nothing changed: after a kill -9 and restart the group's offset is still there.
    drop(admin);
    broker.restart().expect("restart");
    let bootstrap = broker.bootstrap();
    assert_eq!(committed(&bootstrap, &group, &topic), Offset::Offset(7));
    let meta = consumer(&bootstrap, "meta")
        .fetch_metadata(Some(OFFSETS), Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(meta.topics()[0].partitions().len(), 1);
    assert!(meta.topics()[0].error().is_none());
}
