//! Compatibility with kcat (librdkafka's command-line client): metadata listing (-L), keyed produce,
//! consume from the beginning, balanced consumer groups (-G), offsets for times (-Q), and
//! durability of acknowledged messages across a SIGKILL.
//! Needs `kcat` on PATH (fails, never skips, without it).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{kcat, run_command, unique_topic, BrokerProcess};

const KCAT_TIMEOUT: Duration = Duration::from_secs(60);

/// Broker settings these tests rely on: auto-created topics get exactly one partition, so the
/// consumed order is the produced order.
const ARGS: &[&str] = &["--auto-create-topics", "true", "--default-partitions", "1"];

fn keyed_lines(n: usize) -> String {
    (1..=n).map(|i| format!("k{i}:v{i}\n")).collect()
}

/// `kcat -P -K:` with `input` on stdin (acks=all; kcat waits for delivery before exiting).
fn produce(broker: &BrokerProcess, topic: &str, input: &str) -> anyhow::Result<()> {
    let mut cmd = Command::new(kcat());
    cmd.args([
        "-b",
        &broker.bootstrap(),
        "-P",
        "-t",
        topic,
        "-K:",
        "-X",
        "acks=all",
    ]);
    run_command(&mut cmd, Some(input.as_bytes()), KCAT_TIMEOUT)?;
    Ok(())
}

/// `kcat -C -e -o beginning -f '%k=%s\n'`: every message of `topic`, then exit.
fn consume_all(broker: &BrokerProcess, topic: &str) -> anyhow::Result<String> {
    let mut cmd = Command::new(kcat());
    cmd.args([
        "-b",
        &broker.bootstrap(),
        "-C",
        "-t",
        topic,
        "-e",
        "-o",
        "beginning",
        "-f",
        "%k=%s\n",
    ]);
    run_command(&mut cmd, None, KCAT_TIMEOUT)
}

fn metadata(broker: &BrokerProcess) -> anyhow::Result<String> {
    let mut cmd = Command::new(kcat());
    cmd.args(["-b", &broker.bootstrap(), "-L"]);
    run_command(&mut cmd, None, KCAT_TIMEOUT)
}

fn expected_consumed(n: usize) -> String {
    (1..=n).map(|i| format!("k{i}=v{i}\n")).collect()
}

#[test]
fn kcat_metadata_produce_consume() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path(), ARGS)?;
    let topic = unique_topic("kcat");

    let md = metadata(&broker)?;
    assert!(md.contains("1 brokers:"), "kcat -L output:\n{md}");
    assert!(
        md.contains(&format!(" at {}", broker.addr)),
        "broker {} not listed:\n{md}",
        broker.addr
    );

    produce(&broker, &topic, &keyed_lines(20))?;
    assert_eq!(consume_all(&broker, &topic)?, expected_consumed(20));

    let md = metadata(&broker)?;
    assert!(
        md.contains(&format!(" at {}", broker.addr)),
        "broker {} not listed:\n{md}",
        broker.addr
    );
    assert!(
        md.contains(&format!("topic \"{topic}\" with 1 partitions")),
        "topic {topic} not listed with 1 partition:\n{md}"
    );
    Ok(())
}

#[test]
fn kcat_acknowledged_messages_survive_kill9() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut broker = BrokerProcess::start(dir.path(), ARGS)?;
    let topic = unique_topic("kcat-kill9");

    produce(&broker, &topic, &keyed_lines(50))?;
    broker.kill9();
    broker.restart()?;
    assert_eq!(consume_all(&broker, &topic)?, expected_consumed(50));

    // The restarted broker accepts more writes after the recovered ones.
    produce(&broker, &topic, "k51:v51\n")?;
    assert_eq!(consume_all(&broker, &topic)?, expected_consumed(51));
    Ok(())
}

/// `kcat -G` (a balanced consumer group: JoinGroup, SyncGroup, heartbeats, commits) reads every
/// message once and commits, so a second run of the same group reads nothing new; `kcat -Q`
/// (ListOffsets by timestamp) finds the first offset at or after a time, and the end offset for
/// a time past the last message.
#[test]
fn kcat_balanced_group_and_offsets_for_times() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path(), ARGS)?;
    let topic = unique_topic("kcat-group");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis()
        - 1;
    produce(&broker, &topic, &keyed_lines(10))?;

    let group = |extra: &[&str]| -> anyhow::Result<String> {
        let mut cmd = Command::new(kcat());
        cmd.args([
            "-b",
            &broker.bootstrap(),
            "-G",
            "kcat-readers",
            &topic,
            "-e",
            "-X",
            "auto.offset.reset=earliest",
            "-f",
            "%k=%s\n",
        ])
        .args(extra);
        run_command(&mut cmd, None, KCAT_TIMEOUT)
    };
    assert_eq!(group(&[])?, expected_consumed(10));
    produce(&broker, &topic, "k11:v11\n")?;
    assert_eq!(
        group(&[])?,
        "k11=v11\n",
        "the group resumes after its commit"
    );

    let query = |ts: String| -> anyhow::Result<String> {
        let mut cmd = Command::new(kcat());
        cmd.args([
            "-b",
            &broker.bootstrap(),
            "-Q",
            "-t",
            &format!("{topic}:0:{ts}"),
        ]);
        run_command(&mut cmd, None, KCAT_TIMEOUT)
    };
    let first = query(before.to_string())?;
    assert_eq!(
        first.trim(),
        format!("{topic} [0] offset 0"),
        "kcat -Q at a time before the first message"
    );
    let future = (before + 3_600_000).to_string();
    let end = query(future)?;
    assert_eq!(
        end.trim(),
        format!("{topic} [0] offset -1"),
        "kcat -Q past the last message: Kafka answers -1 (no such offset)"
    );
    Ok(())
}
