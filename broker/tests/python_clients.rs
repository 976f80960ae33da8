//! Compatibility with the Python Kafka clients: kafka-python (pure Python) and confluent-kafka
//! (librdkafka). Each test runs a script from `tests/python/` against a fresh broker.
//! Needs the venv prepared by `./scripts/test.sh` (fails, never skips, without it).

mod common;

use common::{python_script, run_python, unique_topic, BrokerProcess};

fn run_script_against_fresh_broker(script: &str, topic_prefix: &str) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(dir.path(), &[])?;
    let topic = unique_topic(topic_prefix);
    let out = run_python(&python_script(script), &[&broker.bootstrap(), &topic]);
    if out.is_err() {
        eprintln!("broker output:\n{}", broker.logs());
    }
    out
}

#[test]
fn kafka_python_roundtrip() -> anyhow::Result<()> {
    let out = run_script_against_fresh_broker("kafka_python_roundtrip.py", "kafka-python")?;
    assert_eq!(out.trim(), "OK 200", "unexpected script output: {out}");
    Ok(())
}

#[test]
fn confluent_kafka_roundtrip() -> anyhow::Result<()> {
    let out = run_script_against_fresh_broker("confluent_roundtrip.py", "confluent")?;
    assert_eq!(out.trim(), "OK", "unexpected script output: {out}");
    Ok(())
}
