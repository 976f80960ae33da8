//! Consumer groups (classic protocol) with the Python Kafka clients: kafka-python and
//! confluent-kafka (librdkafka). Each test runs `tests/python/group_balance.py` against a fresh
//! broker: partitions spread over three members, move on a clean leave and (after the session
//! timeout) when a member is SIGKILLed, and a committed offset is where a new member resumes.
//! Needs the venv prepared by `./scripts/test.sh` (fails, never skips, without it).

mod common;

use common::{python_script, run_python, unique_topic, BrokerProcess};

fn run_group_balance(lib: &str) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path(), &[])?;
    let topic = unique_topic(&format!("groups-{lib}"));
    let out = run_python(
        &python_script("group_balance.py"),
        &[&broker.bootstrap(), &topic, lib],
    );
    if out.is_err() {
        eprintln!("broker output:\n{}", broker.logs());
    }
    out
}

#[test]
fn kafka_python_group_balance_and_commit() -> anyhow::Result<()> {
    let out = run_group_balance("kafka-python")?;
    assert!(out.contains("OK"), "unexpected script output: {out}");
    Ok(())
}

#[test]
fn confluent_group_balance_and_commit() -> anyhow::Result<()> {
    let out = run_group_balance("confluent")?;
    assert!(out.contains("OK"), "unexpected script output: {out}");
    Ok(())
}
