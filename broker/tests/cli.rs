//! The `broker` client subcommands (`topics`, `produce`, `consume`, `groups`) against the real
//! broker process: what they print, and that broker errors become exit code 1 with the Kafka
//! error name on stderr.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::BrokerProcess;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(60);

/// `broker <args...> --bootstrap-server <broker>`.
fn cli(broker: &BrokerProcess, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_broker"));
    cmd.args(args)
        .arg("--bootstrap-server")
        .arg(broker.bootstrap())
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env("NO_COLOR", "1");
    cmd
}

fn run(broker: &BrokerProcess, args: &[&str], stdin: Option<&[u8]>) -> String {
    common::run_command(&mut cli(broker, args), stdin, TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}\n--- broker ---\n{}", broker.logs()))
}

fn topic_list(broker: &BrokerProcess) -> Vec<String> {
    run(broker, &["topics", "list"], None)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn topic_lifecycle_with_produce_and_consume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker starts");
    let topic = common::unique_topic("cli");

    let out = run(
        &broker,
        &[
            "topics",
            "create",
            "--topic",
            &topic,
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        None,
    );
    assert_eq!(out.trim(), format!("Created topic {topic}."));
    assert!(topic_list(&broker).contains(&topic));

    let describe = run(&broker, &["topics", "describe", "--topic", &topic], None);
    let mut lines = describe.lines();
    let header = lines.next().expect("a topic line");
    assert!(
        header.starts_with(&format!("Topic: {topic}\tTopicId: ")),
        "{describe}"
    );
    assert!(header.contains("\tPartitionCount: 3\t"), "{describe}");
    assert!(header.contains("\tReplicationFactor: 1\t"), "{describe}");
    assert!(
        header.ends_with("\tConfigs: retention.ms=3600000"),
        "{describe}"
    );
    let partitions: Vec<&str> = lines.collect();
    assert_eq!(partitions.len(), 3, "{describe}");
    for (i, line) in partitions.iter().enumerate() {
        assert!(
            line.starts_with(&format!("\tTopic: {topic}\tPartition: {i}\tLeader: ")),
            "{describe}"
        );
        assert!(
            line.contains("\tReplicas: ") && line.contains("\tIsr: "),
            "{describe}"
        );
    }

    let out = run(
        &broker,
        &[
            "topics",
            "alter-config",
            "--topic",
            &topic,
            "--add-config",
            "retention.ms=7200000,max.message.bytes=500000",
        ],
        None,
    );
    assert_eq!(
        out.trim(),
        format!("Completed updating config for topic {topic}.")
    );
    let describe = run(&broker, &["topics", "describe", "--topic", &topic], None);
    let header = describe.lines().next().unwrap_or_default();
    assert!(header.contains("retention.ms=7200000"), "{describe}");
    assert!(header.contains("max.message.bytes=500000"), "{describe}");
    assert!(!header.contains("retention.ms=3600000"), "{describe}");
    run(
        &broker,
        &[
            "topics",
            "alter-config",
            "--topic",
            &topic,
            "--delete-config",
            "max.message.bytes",
        ],
        None,
    );
    let describe = run(&broker, &["topics", "describe", "--topic", &topic], None);
    let header = describe.lines().next().unwrap_or_default();
    assert!(
        header.ends_with("\tConfigs: retention.ms=7200000"),
        "{describe}"
    );

    // Without --from-beginning the consumer starts at the (empty) end and times out idle.
    let out = run(
        &broker,
        &["consume", "--topic", &topic, "--timeout-ms", "1000"],
        None,
    );
    assert_eq!(out, "");

    let input: String = (0..10).map(|i| format!("key{i}:value {i}\n")).collect();
    let out = run(
        &broker,
        &["produce", "--topic", &topic, "--key-separator", ":"],
        Some(input.as_bytes()),
    );
    assert_eq!(out, "", "the producer prints nothing on success");

    let out = run(
        &broker,
        &[
            "consume",
            "--topic",
            &topic,
            "--from-beginning",
            "--max-messages",
            "10",
            "--print-key",
        ],
        None,
    );
    let got: BTreeSet<&str> = out.lines().collect();
    let want: BTreeSet<String> = (0..10).map(|i| format!("key{i}\tvalue {i}")).collect();
    assert_eq!(out.lines().count(), 10, "{out}");
    assert_eq!(
        got,
        want.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );

    // One partition, with offsets: the same key always lands in the same partition.
    let mut per_partition = 0;
    for p in 0..3 {
        let out = run(
            &broker,
            &[
                "consume",
                "--topic",
                &topic,
                "--partition",
                &p.to_string(),
                "--from-beginning",
                "--print-offset",
                "--timeout-ms",
                "1000",
            ],
            None,
        );
        for (i, line) in out.lines().enumerate() {
            assert!(line.starts_with(&format!("{i}\tvalue ")), "{out}");
        }
        per_partition += out.lines().count();
    }
    assert_eq!(per_partition, 10);

    let out = run(&broker, &["topics", "delete", "--topic", &topic], None);
    assert_eq!(out, "");
    assert!(!topic_list(&broker).contains(&topic));
}

#[test]
fn broker_errors_exit_1_with_the_kafka_error_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker starts");
    let topic = common::unique_topic("cli-dup");
    run(&broker, &["topics", "create", "--topic", &topic], None);

    let out = common::output_with_timeout(
        &mut cli(&broker, &["topics", "create", "--topic", &topic]),
        None,
        TIMEOUT,
    )
    .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("TOPIC_ALREADY_EXISTS") || stderr.contains("TopicAlreadyExists"),
        "{stderr}"
    );

    let out = common::output_with_timeout(
        &mut cli(&broker, &["topics", "describe", "--topic", "no-such-topic"]),
        None,
        TIMEOUT,
    )
    .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{stderr}");

    // Nothing listens on port 1: a connection error, also exit code 1.
    let out = common::output_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_broker")).args([
            "topics",
            "list",
            "--bootstrap-server",
            "127.0.0.1:1",
            "--command-timeout-ms",
            "2000",
        ]),
        None,
        TIMEOUT,
    )
    .expect("runs");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn groups_list_and_describe_show_committed_offsets_and_lag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = BrokerProcess::start(dir.path(), &[]).expect("broker starts");
    assert_eq!(run(&broker, &["groups", "list"], None), "");

    let topic = common::unique_topic("cli-groups");
    run(
        &broker,
        &["topics", "create", "--topic", &topic, "--partitions", "2"],
        None,
    );
    let input: String = (0..10).map(|i| format!("v{i}\n")).collect();
    run(
        &broker,
        &["produce", "--topic", &topic, "--partition", "1"],
        Some(input.as_bytes()),
    );

    // A group that only commits offsets (no members), as a tool resetting offsets would.
    let group = common::unique_topic("cli-group");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, 1, Offset::Offset(4))
        .expect("offset");
    consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    drop(consumer);

    let list = run(&broker, &["groups", "list"], None);
    assert_eq!(list.lines().collect::<Vec<_>>(), vec![group.as_str()]);

    let out = run(&broker, &["groups", "describe", "--group", &group], None);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        out.contains(&format!("Consumer group '{group}' has no active members.")),
        "{out}"
    );
    let header = lines
        .iter()
        .position(|l| l.first() == Some(&"GROUP"))
        .unwrap_or_else(|| panic!("no header in {out}"));
    assert_eq!(
        lines[header],
        vec![
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    assert_eq!(
        lines[header + 1..].to_vec(),
        vec![vec![
            group.as_str(),
            topic.as_str(),
            "1",
            "4",
            "10",
            "6",
            "-",
            "-",
            "-"
        ]],
        "{out}"
    );

    let out = common::output_with_timeout(
        &mut cli(&broker, &["groups", "describe", "--group", "no-such-group"]),
        None,
        TIMEOUT,
    )
    .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
