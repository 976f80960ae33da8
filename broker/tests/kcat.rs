//! Compatibility with kcat (librdkafka's command-line client): metadata listing, keyed produce,
//! consume from the beginning, and durability of acknowledged messages across a SIGKILL.
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
