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

/// kafka-python pinned to Kafka 0.8.1–0.10.1 sends the request versions Kafka 4.0 removed and
/// 3.9 still answers (message formats v0/v1 up- and down-converted, the old offset and admin
/// APIs); see the script's docstring.
#[test]
fn kafka_python_pinned_to_old_broker_versions() -> anyhow::Result<()> {
    let out = run_script_against_fresh_broker("kafka_python_old_versions.py", "old-versions")?;
    assert_eq!(
        out.trim(),
        "OK 0.8.1 0.8.2 0.9 0.10 0.10.1",
        "unexpected script output: {out}"
    );
    Ok(())
}
