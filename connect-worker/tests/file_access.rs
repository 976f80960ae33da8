//! The worker's file access is confined to `--allowed-paths` (Kafka's `allowed.paths`), and
//! connector configs may override client settings only as `--connector-client-config-override-
//! policy` allows: every escape is a 400 that names the path and the setting, and neither a topic
//! nor the disk changes; files inside an allowed directory still stream both ways.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Worker;
use connect_worker::config_providers::Provider;
use connect_worker::override_policy::OverridePolicy;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{json, Value};

/// A worker's files: `allowed/` is allowed, `outside/` holds what must never leak or change.
struct Dirs {
    _root: tempfile::TempDir,
    allowed: PathBuf,
    outside: PathBuf,
}

fn dirs() -> anyhow::Result<Dirs> {
    let root = tempfile::tempdir()?;
    let allowed = root.path().join("allowed");
    let outside = root.path().join("outside");
    std::fs::create_dir(&allowed)?;
    std::fs::create_dir(&outside)?;
    std::fs::write(outside.join("secret.txt"), "root:x:0:0:secret\n")?;
    std::fs::write(outside.join("secret.properties"), "password=leaked\n")?;
    std::os::unix::fs::symlink(outside.join("secret.txt"), allowed.join("link.txt"))?;
    std::os::unix::fs::symlink(outside.join("not-yet.txt"), allowed.join("dangling.txt"))?;
    std::os::unix::fs::symlink(&outside, allowed.join("outdir"))?;
    Ok(Dirs {
        _root: root,
        allowed,
        outside,
    })
}

/// Every file under `dir` with its content (links as their targets), to compare before/after.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let content = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&path).unwrap().display())
        } else {
            std::fs::read_to_string(&path).unwrap_or_default()
        };
        out.push((path, content));
    }
    out.sort();
    out
}

/// Records in `topic` (0 if it does not exist).
fn record_count(bootstrap: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "file-access-check")
        .set("allow.auto.create.topics", "false")
        .set("log_level", "0")
        .create()
        .expect("consumer");
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
        return 0;
    };
    let partitions = metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    (0..partitions as i32)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map(|(low, high)| high - low)
                .unwrap_or(0)
        })
        .sum()
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or("")
}

async fn worker(bootstrap: &str, dirs: Option<&Dirs>, policy: OverridePolicy) -> Worker {
    let mut config = connect_worker::Config::new(bootstrap);
    config.config_providers = vec![Provider::File, Provider::Directory];
    config.allowed_paths = dirs.map(|d| vec![d.allowed.clone()]).unwrap_or_default();
    config.connector_client_config_override_policy = policy;
    Worker::start_with(config).await.expect("worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_escape_is_refused_and_changes_nothing() -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let d = dirs()?;
    let w = worker(&bootstrap, Some(&d), OverridePolicy::None).await;
    let before = snapshot(&d.outside);
    let allowed = d.allowed.display().to_string();
    let outside = d.outside.display().to_string();

    let escapes = [
        "/etc/passwd".to_string(),
        format!("{outside}/secret.txt"),
        format!("{allowed}/../outside/secret.txt"),
        format!("{allowed}/link.txt"),
        format!("{allowed}/dangling.txt"),
        format!("{allowed}/outdir/secret.txt"),
        format!("{allowed}/outdir/new.txt"),
        format!("{allowed}/../outside/new.txt"),
    ];
    for (i, path) in escapes.iter().enumerate() {
        for (class, topic_key) in [
            ("FileStreamSource", "topic"),
            (
                "org.apache.kafka.connect.file.FileStreamSinkConnector",
                "topics",
            ),
        ] {
            let name = format!("leak-{i}");
            let config = json!({"connector.class": class, "file": path, topic_key: "leak", "tasks.max": "1"});
            let (code, body) = w
                .post("/connectors", &json!({"name": name, "config": config}))
                .await;
            assert_eq!(code, 400, "{class} {path}: {body}");
            assert_eq!(body["error_code"], 400);
            let msg = message(&body);
            assert!(msg.contains("configuration file"), "{path}: {msg}");
            assert!(
                msg.contains("allowed paths") || msg.contains("cannot be resolved"),
                "{path}: {msg}"
            );
            // PUT creating or replacing is refused the same way.
            let (code, body) = w.put(&format!("/connectors/{name}/config"), &config).await;
            assert_eq!(code, 400, "PUT {class} {path}: {body}");
            // And validate reports it on the `file` setting.
            let (code, body) = w
                .put(
                    &format!("/connector-plugins/{class}/config/validate"),
                    &config,
                )
                .await;
            assert_eq!(code, 200, "{body}");
            let file_errors = body["configs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["definition"]["name"] == "file")
                .map(|c| c["value"]["errors"].clone())
                .unwrap_or(Value::Null);
            assert_eq!(
                file_errors.as_array().map(Vec::len),
                Some(1),
                "{path}: {body}"
            );
        }
    }

    // A config provider placeholder reading outside (in any setting, of any connector).
    for placeholder in [
        format!("${{file:{outside}/secret.properties:password}}"),
        format!("${{file:{allowed}/../outside/secret.properties:password}}"),
        format!("${{directory:{outside}:secret.txt}}"),
        format!("${{directory:{allowed}:link.txt}}"),
    ] {
        let config = json!({"connector.class": "FileStreamSource", "file": format!("{allowed}/in.txt"),
            "topic": "leak", "batch.size": placeholder});
        let (code, body) = w
            .post(
                "/connectors",
                &json!({"name": "provided", "config": config}),
            )
            .await;
        assert_eq!(code, 400, "{placeholder}: {body}");
        let msg = message(&body);
        assert!(
            msg.contains("batch.size") && msg.contains("Could not resolve"),
            "{msg}"
        );
        assert!(!msg.contains("leaked") && !msg.contains("root:x"), "{msg}");
    }

    assert_eq!(w.get("/connectors").await, (200, json!([])));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(record_count(&bootstrap, "leak"), 0);
    assert_eq!(snapshot(&d.outside), before);
    w.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_inside_an_allowed_directory_stream_both_ways() -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let d = dirs()?;
    std::fs::write(d.allowed.join("props.properties"), "topic=lines\n")?;
    let w = worker(&bootstrap, Some(&d), OverridePolicy::None).await;
    let input = d.allowed.join("in.txt");
    let output = d.allowed.join("sub-dir-less-out.txt");
    std::fs::write(&input, "one\ntwo\n")?;

    // The topic name comes through the file provider, from an allowed file.
    let (code, body) = w
        .post(
            "/connectors",
            &json!({"name": "src", "config": {
        "connector.class": "FileStreamSource", "file": input, "tasks.max": "1",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "topic": format!("${{file:{}:topic}}", d.allowed.join("props.properties").display())}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = w
        .post(
            "/connectors",
            &json!({"name": "sink", "config": {
        "connector.class": "FileStreamSink", "file": output, "topics": "lines",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter"}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    w.wait_state("src", "RUNNING").await;
    w.wait_state("sink", "RUNNING").await;
    common::eventually("lines copied through the topic", || async {
        std::fs::read_to_string(&output).is_ok_and(|s| s == "one\ntwo\n")
    })
    .await;
    std::fs::write(&input, "one\ntwo\nthree\n")?;
    common::eventually("an appended line copied", || async {
        std::fs::read_to_string(&output).is_ok_and(|s| s == "one\ntwo\nthree\n")
    })
    .await;

    // Checked again when the task opens the file: a source whose file is replaced by a link
    // pointing out of the directory fails instead of streaming the secret.
    let later = d.allowed.join("later.txt");
    let (code, body) = w
        .post(
            "/connectors",
            &json!({"name": "swap", "config": {
        "connector.class": "FileStreamSource", "file": later, "topic": "swapped"}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    w.wait_state("swap", "RUNNING").await;
    std::os::unix::fs::symlink(d.outside.join("secret.txt"), &later)?;
    let status = w.wait_state_any_task("swap", "FAILED").await;
    let trace = status["tasks"][0]["trace"].as_str().unwrap_or("");
    assert!(
        trace.contains("outside the worker's allowed paths"),
        "{trace}"
    );
    assert_eq!(record_count(&bootstrap, "swapped"), 0);
    w.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_allowed_paths_file_access_is_refused_saying_how_to_allow_it() -> anyhow::Result<()>
{
    let broker = test_support::TestBroker::start().await?;
    let d = dirs()?;
    let w = worker(&broker.bootstrap(), None, OverridePolicy::None).await;
    let inside = d.allowed.join("in.txt");
    std::fs::write(&inside, "x\n")?;
    for config in [
        json!({"connector.class": "FileStreamSource", "file": inside, "topic": "t"}),
        json!({"connector.class": "FileStreamSink", "file": d.allowed.join("out.txt"), "topics": "t"}),
        json!({"connector.class": "FileStreamSink", "file": "out.txt", "topics": "t",
            "errors.tolerance": format!("${{file:{}:x}}", inside.display())}),
    ] {
        let (code, body) = w
            .post("/connectors", &json!({"name": "f", "config": config}))
            .await;
        assert_eq!(code, 400, "{config}: {body}");
        let msg = message(&body);
        assert!(
            msg.contains("--allowed-paths") && msg.contains("CONNECT_ALLOWED_PATHS"),
            "{msg}"
        );
    }
    assert!(!d.allowed.join("out.txt").exists());
    w.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_overrides_follow_the_override_policy() -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let d = dirs()?;
    let sink = |name: &str, key: &str, value: &str| {
        json!({"name": name, "config": {"connector.class": "FileStreamSink", "topics": "o",
            "file": d.allowed.join(format!("{name}.txt")), key: value}})
    };

    let w = worker(&bootstrap, Some(&d), OverridePolicy::None).await;
    for key in [
        "consumer.override.auto.offset.reset",
        "producer.override.linger.ms",
        "admin.override.bootstrap.servers",
        "consumer.override.security.protocol",
    ] {
        let (code, body) = w.post("/connectors", &sink("o1", key, "latest")).await;
        assert_eq!(code, 400, "{key}: {body}");
        assert!(
            message(&body).contains("The 'None' policy does not allow"),
            "{body}"
        );
    }
    let (code, body) = w
        .put(
            "/connector-plugins/FileStreamSink/config/validate",
            &json!({"connector.class": "FileStreamSink", "name": "o1", "topics": "o",
                "file": d.allowed.join("o1.txt"), "consumer.override.auto.offset.reset": "latest"}),
        )
        .await;
    assert_eq!(
        (code, body["error_count"].clone()),
        (200, json!(1)),
        "{body}"
    );
    w.stop().await;

    let w = worker(&bootstrap, Some(&d), OverridePolicy::Principal).await;
    let (code, body) = w
        .post(
            "/connectors",
            &sink("o2", "consumer.override.auto.offset.reset", "latest"),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("The 'Principal' policy"), "{body}");
    let (code, body) = w
        .post(
            "/connectors",
            &sink("o2", "consumer.override.security.protocol", "plaintext"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    w.wait_state("o2", "RUNNING").await;
    w.stop().await;

    // All: the override is accepted and reaches the task's client (a setting librdkafka
    // refuses makes the task fail, which shows that it was passed on).
    let w = worker(&bootstrap, Some(&d), OverridePolicy::All).await;
    let (code, body) = w
        .post(
            "/connectors",
            &sink("o3", "consumer.override.auto.offset.reset", "latest"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    w.wait_state("o3", "RUNNING").await;
    let (code, body) = w
        .post(
            "/connectors",
            &sink("o4", "consumer.override.no.such.client.setting", "1"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let status = w.wait_state_any_task("o4", "FAILED").await;
    assert!(
        status["tasks"][0]["trace"]
            .as_str()
            .unwrap_or("")
            .contains("no.such.client.setting"),
        "{status}"
    );
    w.stop().await;
    Ok(())
}
