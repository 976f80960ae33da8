//! `GET /metrics` on the worker's REST port against a real worker and broker: a FileStream
//! source and sink move lines through a topic, and the metrics count exactly what they did
//! (records polled and written by the source, read and written by the sink, batch and commit
//! times) and show each connector's and task's status as Kafka Connect's JMX metrics do.

mod common;

use common::Worker;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_what_tasks_did_and_show_their_status() -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, "one\ntwo\nthree\n")?;
    let mut config = connect_worker::Config::new(&broker.bootstrap());
    config.allowed_paths = vec![dir.path().to_path_buf()];
    let w = Worker::start_with(config).await?;
    let strings = "org.apache.kafka.connect.storage.StringConverter";
    let (code, body) = w
        .post(
            "/connectors",
            &json!({"name": "lines-in", "config": {"connector.class": "FileStreamSource",
                "file": input, "topic": "lines", "value.converter": strings}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = w
        .post(
            "/connectors",
            &json!({"name": "lines-out", "config": {"connector.class": "FileStreamSink",
                "file": output, "topics": "lines", "value.converter": strings}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    common::eventually("three lines copied", || async {
        std::fs::read_to_string(&output).is_ok_and(|s| s.lines().count() == 3)
    })
    .await;

    // The sink's batch is settled (and counted) just after its put wrote the file.
    let settled = r#"kafka_connect_sink_task_metrics_sink_record_send_total{connector="lines-out",task="0"} 3"#;
    common::eventually("the sink's batch counted", || async {
        let Ok(r) = reqwest::get(w.url("/metrics")).await else {
            return false;
        };
        r.text()
            .await
            .is_ok_and(|t| t.lines().any(|l| l == settled))
    })
    .await;
    let text = reqwest::get(w.url("/metrics")).await?.text().await?;
    let has = |line: &str| text.lines().any(|l| l == line);
    for line in [
        r#"kafka_connect_source_task_metrics_source_record_poll_total{connector="lines-in",task="0"} 3"#,
        r#"kafka_connect_source_task_metrics_source_record_write_total{connector="lines-in",task="0"} 3"#,
        r#"kafka_connect_sink_task_metrics_sink_record_read_total{connector="lines-out",task="0"} 3"#,
        r#"kafka_connect_sink_task_metrics_sink_record_send_total{connector="lines-out",task="0"} 3"#,
        r#"kafka_connect_connector_status{connector="lines-in",type="source",status="running"} 1"#,
        r#"kafka_connect_connector_status{connector="lines-out",type="sink",status="running"} 1"#,
        r#"kafka_connect_connector_task_status{connector="lines-out",task="0",status="running"} 1"#,
        "kafka_connect_worker_metrics_connector_count 2",
        "kafka_connect_worker_metrics_task_count 2",
    ] {
        assert!(has(line), "missing {line} in:\n{text}");
    }
    for histogram in [
        r#"kafka_connect_sink_task_metrics_put_batch_time_seconds_count{connector="lines-out",task="0"} "#,
        r#"kafka_connect_connector_task_metrics_offset_commit_time_seconds_count{connector="lines-in",task="0"} "#,
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(histogram) && !l.ends_with(" 0")),
            "no {histogram} in:\n{text}"
        );
    }

    // Paused: the status gauge follows.
    assert_eq!(
        w.put("/connectors/lines-out/pause", &json!(null)).await.0,
        202
    );
    let paused =
        r#"kafka_connect_connector_status{connector="lines-out",type="sink",status="paused"} 1"#;
    common::eventually("the paused status in the metrics", || async {
        let Ok(r) = reqwest::get(w.url("/metrics")).await else {
            return false;
        };
        r.text().await.is_ok_and(|t| t.lines().any(|l| l == paused))
    })
    .await;
    w.stop().await;
    Ok(())
}
