//! Config APIs answer as Kafka 3.9 does for every resource type clients use: topic configs Kafka
//! still accepts as deprecated are accepted and described; BROKER configs are described and any
//! change is INVALID_REQUEST (they are the broker's flags), with Kafka's checks of the resource
//! name; GROUP configs (KIP-848) are validated, stored across a restart and described; a
//! resource or config named twice is INVALID_REQUEST. Both IncrementalAlterConfigs and the
//! legacy AlterConfigs, which librdkafka's AdminClient sends, are covered.

mod common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::BrokerProcess;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request as inc;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;
const NONE: i16 = 0;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn call<R: Request>(addr: std::net::SocketAddr, version: i16, req: &R) -> R::Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(s("configs")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, R::header_version(version))
        .expect("header");
    req.encode(&mut body, version).expect("body");
    let mut frame = BytesMut::new();
    frame.put_u32(body.len() as u32);
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await.expect("write");
    let len = stream.read_u32().await.expect("answer");
    let mut resp = vec![0u8; len as usize];
    stream.read_exact(&mut resp).await.expect("body");
    let mut resp = Bytes::from(resp);
    ResponseHeader::decode(&mut resp, R::Response::header_version(version)).expect("header");
    let decoded = R::Response::decode(&mut resp, version).expect("decode");
    assert_eq!(resp.remaining(), 0);
    decoded
}

fn incremental(
    resource_type: i8,
    name: &str,
    configs: &[(&str, i8, Option<&str>)],
) -> inc::AlterConfigsResource {
    inc::AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_configs(
            configs
                .iter()
                .map(|(k, op, v)| {
                    inc::AlterableConfig::default()
                        .with_name(s(k))
                        .with_config_operation(*op)
                        .with_value(v.map(s))
                })
                .collect(),
        )
}

async fn alter_incremental(
    addr: std::net::SocketAddr,
    resources: Vec<inc::AlterConfigsResource>,
) -> Vec<(i16, String)> {
    let resp = call(
        addr,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(resources),
    )
    .await;
    resp.responses
        .into_iter()
        .map(|r| {
            (
                r.error_code,
                r.error_message.map(|m| m.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

async fn describe(
    addr: std::net::SocketAddr,
    resource_type: i8,
    name: &str,
) -> Vec<(String, String, i8)> {
    let resp = call(
        addr,
        4,
        &DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configuration_keys(None)]),
    )
    .await;
    let result = &resp.results[0];
    assert_eq!(result.error_code, NONE, "{:?}", result.error_message);
    result
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                c.config_source,
            )
        })
        .collect()
}

fn value(configs: &[(String, String, i8)], name: &str) -> Option<(String, i8)> {
    configs
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, v, src)| (v.clone(), *src))
}

#[tokio::test]
async fn config_apis_answer_as_kafka_3_9_for_topics_brokers_and_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = BrokerProcess::start(dir.path(), &[]).expect("broker");
    let addr = broker.addr;

    // Deprecated topic configs are accepted on create and alter, and described.
    let created = call(
        addr,
        7,
        &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(s("legacy")))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![
                CreatableTopicConfig::default()
                    .with_name(s("message.format.version"))
                    .with_value(Some(s("2.8"))),
                CreatableTopicConfig::default()
                    .with_name(s("message.downconversion.enable"))
                    .with_value(Some(s("false"))),
            ])]),
    )
    .await;
    assert_eq!(
        created.topics[0].error_code, NONE,
        "{:?}",
        created.topics[0].error_message
    );
    let got = alter_incremental(
        addr,
        vec![incremental(
            TOPIC,
            "legacy",
            &[("message.format.version", 0, Some("3.0-IV1"))],
        )],
    )
    .await;
    assert_eq!(got, vec![(NONE, String::new())]);
    let topic = describe(addr, TOPIC, "legacy").await;
    assert_eq!(
        value(&topic, "message.format.version"),
        Some(("3.0-IV1".into(), 1))
    );
    assert_eq!(
        value(&topic, "message.downconversion.enable"),
        Some(("false".into(), 1))
    );
    let got = alter_incremental(
        addr,
        vec![incremental(
            TOPIC,
            "legacy",
            &[("message.format.version", 0, Some("banana"))],
        )],
    )
    .await;
    assert_eq!(got[0].0, INVALID_CONFIG);

    // BROKER: described read-only; changes refused as not dynamically updatable; Kafka's
    // resource-name checks; an empty alteration succeeds.
    let broker_configs = describe(addr, BROKER, "1").await;
    assert_eq!(
        value(&broker_configs, "max.connections"),
        Some(("10000".into(), 4))
    );
    let got = alter_incremental(
        addr,
        vec![
            incremental(BROKER, "1", &[("log.retention.ms", 0, Some("1000"))]),
            incremental(BROKER, "2", &[]),
            incremental(BROKER, "x", &[]),
            incremental(BROKER, "", &[]),
        ],
    )
    .await;
    assert_eq!(got[0].0, INVALID_REQUEST);
    assert!(
        got[0]
            .1
            .contains("Cannot update these configs dynamically: log.retention.ms"),
        "{}",
        got[0].1
    );
    assert_eq!(
        got[1],
        (
            INVALID_REQUEST,
            "Unexpected broker id, expected 1, but received 2".into()
        )
    );
    assert_eq!(
        got[2],
        (
            INVALID_REQUEST,
            "Node id must be an integer, but it is: x".into()
        )
    );
    assert_eq!(got[3], (NONE, String::new()));

    // GROUP: validated, stored, described.
    let got = alter_incremental(
        addr,
        vec![
            incremental(
                GROUP,
                "g",
                &[("consumer.session.timeout.ms", 0, Some("50000"))],
            ),
            incremental(
                GROUP,
                "h",
                &[("consumer.session.timeout.ms", 0, Some("1000"))],
            ),
            incremental(GROUP, "i", &[("session.timeout.ms", 0, Some("50000"))]),
        ],
    )
    .await;
    assert_eq!(got[0], (NONE, String::new()));
    assert_eq!(got[1].0, INVALID_CONFIG);
    assert_eq!(
        got[2],
        (
            INVALID_CONFIG,
            "Unknown group config name: session.timeout.ms".into()
        )
    );

    // Request-level checks.
    let got = alter_incremental(
        addr,
        vec![
            incremental(TOPIC, "legacy", &[]),
            incremental(TOPIC, "legacy", &[]),
            incremental(GROUP, "j", &[("consumer.session.timeout.ms", 0, None)]),
            incremental(
                GROUP,
                "k",
                &[
                    ("consumer.session.timeout.ms", 0, Some("50000")),
                    ("consumer.session.timeout.ms", 0, Some("50000")),
                ],
            ),
            incremental(16, "metrics", &[]),
        ],
    )
    .await;
    assert_eq!(
        got[0],
        (
            INVALID_REQUEST,
            "Each resource must appear at most once.".into()
        )
    );
    assert_eq!(got[1].0, INVALID_REQUEST);
    assert_eq!(
        got[2],
        (
            INVALID_REQUEST,
            "Null value not supported for : consumer.session.timeout.ms".into()
        )
    );
    assert_eq!(
        got[3],
        (INVALID_REQUEST, "Error due to duplicate config keys".into())
    );
    assert_eq!(got[4].0, INVALID_REQUEST);

    // Legacy AlterConfigs replaces a resource's configs.
    let resp = call(
        addr,
        2,
        &AlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(s("legacy"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("3600000")))]),
            AlterConfigsResource::default()
                .with_resource_type(BROKER)
                .with_resource_name(s("1"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(s("num.partitions"))
                    .with_value(Some(s("3")))]),
        ]),
    )
    .await;
    assert_eq!(resp.responses[0].error_code, NONE);
    assert_eq!(resp.responses[1].error_code, INVALID_REQUEST);
    let topic = describe(addr, TOPIC, "legacy").await;
    assert_eq!(value(&topic, "retention.ms"), Some(("3600000".into(), 1)));
    assert_eq!(
        value(&topic, "message.format.version"),
        Some(("3.0-IV1".into(), 5))
    );

    // Group configs survive a restart.
    broker.restart().expect("restart");
    let group = describe(broker.addr, GROUP, "g").await;
    assert_eq!(
        value(&group, "consumer.session.timeout.ms"),
        Some(("50000".into(), 8))
    );
    assert_eq!(
        value(&group, "consumer.heartbeat.interval.ms"),
        Some(("5000".into(), 5))
    );
}
