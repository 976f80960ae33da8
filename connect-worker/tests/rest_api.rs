//! The REST API against a real worker (in-process, real broker): shapes, codes and every error.

mod common;

use common::Worker;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rest_api_shapes_and_errors() -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("out.txt");
    let mut config = connect_worker::Config::new(&broker.bootstrap());
    config.allowed_paths = vec![dir.path().to_path_buf()];
    let w = Worker::start_with(config).await?;

    let (code, root) = w.get("/").await;
    assert_eq!(code, 200);
    assert!(root["version"].is_string());

    let (code, plugins) = w.get("/connector-plugins").await;
    assert_eq!(code, 200);
    let classes: Vec<&str> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["class"].as_str().unwrap())
        .collect();
    assert!(classes.contains(&"io.confluent.connect.jdbc.JdbcSinkConnector"));
    assert!(classes.contains(&"org.apache.kafka.connect.file.FileStreamSourceConnector"));

    assert_eq!(w.get("/connectors").await, (200, json!([])));

    // 404s
    for path in [
        "/connectors/nope",
        "/connectors/nope/config",
        "/connectors/nope/status",
        "/connectors/nope/tasks",
        "/connectors/nope/offsets",
        "/connectors/nope/tasks/0/status",
    ] {
        let (code, body) = w.get(path).await;
        assert_eq!(code, 404, "{path}");
        assert_eq!(body["error_code"], 404, "{path}");
        assert!(
            body["message"].as_str().unwrap().contains("nope"),
            "{path}: {body}"
        );
    }
    assert_eq!(w.delete("/connectors/nope").await.0, 404);
    assert_eq!(w.put("/connectors/nope/pause", &json!(null)).await.0, 404);
    assert_eq!(
        w.post("/connectors/nope/restart", &json!(null)).await.0,
        404
    );
    let (code, body) = w.get("/no/such/path").await;
    assert_eq!((code, body["error_code"].clone()), (404, json!(404)));

    // Invalid JSON and bad bodies: 400.
    let (code, body) = common::send(
        reqwest::Client::new()
            .post(w.url("/connectors"))
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(
        (code, body["error_code"].clone()),
        (400, json!(400)),
        "{body}"
    );
    let (code, body) = w.post("/connectors", &json!({"name": "x"})).await;
    assert_eq!(
        (code, body["error_code"].clone()),
        (400, json!(400)),
        "{body}"
    );

    // Invalid config: 400 listing every problem.
    let (code, body) = w
        .post(
            "/connectors",
            &json!({"name": "bad", "config": {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "tasks.max": "many",
        "insert.mode": "sideways"}}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    let msg = body["message"].as_str().unwrap();
    for needle in ["tasks.max", "insert.mode", "connection.url", "topics"] {
        assert!(msg.contains(needle), "{needle} missing in {msg}");
    }
    // An absurd tasks.max is a 400, not a worker that runs out of memory building task configs.
    let (code, body) = w
        .post(
            "/connectors",
            &json!({"name": "huge", "config": {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "tasks.max": "2147483647",
        "connection.url": "jdbc:mysql://127.0.0.1:1/db", "topics": "t"}}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("tasks.max"),
        "{body}"
    );
    let (code, body) = w
        .post(
            "/connectors",
            &json!({"name": "bad", "config": {"connector.class": "com.example.Nope"}}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("com.example.Nope"));

    // Validate endpoint: 200 with error_count.
    let (code, body) = w.put("/connector-plugins/JdbcSinkConnector/config/validate", &json!({"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "name": "v", "topics": "t", "insert.mode": "sideways", "connection.url": "jdbc:mysql://h:3306/d", "connection.password": "secret"})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["name"], "JdbcSinkConnector");
    assert_eq!(body["error_count"], 1, "{body}");
    assert!(!body.to_string().contains("secret"));
    let (code, _) = w
        .put(
            "/connector-plugins/com.example.Nope/config/validate",
            &json!({}),
        )
        .await;
    assert_eq!(code, 400);

    // Create a FileStream sink: 201 + Location; duplicate: 409.
    let cfg = json!({"connector.class": "FileStreamSink", "topics": "lines", "file": file.to_str().unwrap(),
        "value.converter": "org.apache.kafka.connect.storage.StringConverter"});
    let resp = reqwest::Client::new()
        .post(w.url("/connectors"))
        .json(&json!({"name": "fs", "config": cfg}))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(resp.headers()["location"], "/connectors/fs");
    let info: serde_json::Value = resp.json().await?;
    assert_eq!(info["name"], "fs");
    assert_eq!(info["type"], "sink");
    let (code, body) = w
        .post("/connectors", &json!({"name": "fs", "config": cfg}))
        .await;
    assert_eq!((code, body["error_code"].clone()), (409, json!(409)));

    let status = w.wait_state("fs", "RUNNING").await;
    assert_eq!(status["type"], "sink");
    assert!(status["connector"]["worker_id"].is_string());
    assert_eq!(w.get("/connectors").await, (200, json!(["fs"])));
    let (_, expanded) = w.get("/connectors?expand=status&expand=info").await;
    assert_eq!(expanded["fs"]["status"]["connector"]["state"], "RUNNING");
    assert_eq!(expanded["fs"]["info"]["config"]["topics"], "lines");
    let (code, tasks) = w.get("/connectors/fs/tasks").await;
    assert_eq!(code, 200);
    assert_eq!(tasks[0]["id"], json!({"connector": "fs", "task": 0}));
    let (code, ts) = w.get("/connectors/fs/tasks/0/status").await;
    assert_eq!(
        (code, ts["id"].clone(), ts["state"].clone()),
        (200, json!(0), json!("RUNNING"))
    );
    assert_eq!(w.get("/connectors/fs/tasks/7/status").await.0, 404);
    assert_eq!(w.get("/connectors/fs/tasks/x/status").await.0, 404);

    // Data flows.
    let p = common::producer(&broker.bootstrap());
    common::produce(&p, "lines", None, Some("hello")).await;
    common::produce(&p, "lines", None, Some("world")).await;
    let f2 = file.clone();
    common::eventually("file lines", || {
        let f2 = f2.clone();
        async move {
            std::fs::read_to_string(&f2)
                .map(|s| s == "hello\nworld\n")
                .unwrap_or(false)
        }
    })
    .await;

    // Config: GET, PUT (200 on update), PATCH.
    let (code, c) = w.get("/connectors/fs/config").await;
    assert_eq!((code, c["topics"].clone()), (200, json!("lines")));
    let mut updated = cfg.clone();
    updated["tasks.max"] = json!("1");
    let (code, _) = w.put("/connectors/fs/config", &updated).await;
    assert_eq!(code, 200);
    let (code, _) = send_patch(
        &w,
        "/connectors/fs/config",
        &json!({"tasks.max": null, "errors.tolerance": "all"}),
    )
    .await;
    assert_eq!(code, 200);
    let (_, c) = w.get("/connectors/fs/config").await;
    assert_eq!(c["errors.tolerance"], "all");
    assert!(c.get("tasks.max").is_none());
    assert_eq!(
        send_patch(&w, "/connectors/nope/config", &json!({}))
            .await
            .0,
        404
    );
    let (code, body) = w.put("/connectors/other/config", &json!({"name": "mismatch", "connector.class": "FileStreamSink", "topics": "a", "file": "/tmp/x"})).await;
    assert_eq!(code, 400, "{body}");

    // Pause / resume / stop / restart.
    assert_eq!(w.put("/connectors/fs/pause", &json!(null)).await.0, 202);
    w.wait_state("fs", "PAUSED").await;
    assert_eq!(w.put("/connectors/fs/resume", &json!(null)).await.0, 202);
    w.wait_state("fs", "RUNNING").await;
    let (code, body) = w
        .post(
            "/connectors/fs/restart?includeTasks=true&onlyFailed=false",
            &json!(null),
        )
        .await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["name"], "fs");
    assert_eq!(w.post("/connectors/fs/restart", &json!(null)).await.0, 204);
    assert_eq!(
        w.post("/connectors/fs/tasks/0/restart", &json!(null))
            .await
            .0,
        204
    );
    assert_eq!(
        w.post("/connectors/fs/tasks/9/restart", &json!(null))
            .await
            .0,
        404
    );
    assert_eq!(
        w.post("/connectors/fs/restart?includeTasks=maybe", &json!(null))
            .await
            .0,
        400
    );
    w.wait_state("fs", "RUNNING").await;
    assert_eq!(w.put("/connectors/fs/stop", &json!(null)).await.0, 202);
    let (_, s) = w.get("/connectors/fs/status").await;
    assert_eq!(s["connector"]["state"], "STOPPED");
    assert_eq!(s["tasks"], json!([]));
    assert_eq!(w.put("/connectors/fs/resume", &json!(null)).await.0, 202);
    w.wait_state("fs", "RUNNING").await;
    let (code, offsets) = w.get("/connectors/fs/offsets").await;
    assert_eq!(code, 200);
    assert!(offsets["offsets"].is_array());

    // Method not allowed keeps the error shape.
    let (code, body) =
        common::send(reqwest::Client::new().delete(w.url("/connector-plugins"))).await;
    assert_eq!((code, body["error_code"].clone()), (405, json!(405)));

    // Delete: 204 then 404.
    assert_eq!(w.delete("/connectors/fs").await.0, 204);
    assert_eq!(w.get("/connectors/fs").await.0, 404);
    w.stop().await;
    Ok(())
}

async fn send_patch(w: &Worker, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    common::send(reqwest::Client::new().patch(w.url(path)).json(body)).await
}

/// State survives a restart of the worker: connectors come back in their target state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connectors_survive_a_worker_restart() -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("in.txt");
    std::fs::write(&src, "a\nb\n")?;
    let mut config = connect_worker::Config::new(&broker.bootstrap());
    config.allowed_paths = vec![dir.path().to_path_buf()];
    let w = Worker::start_with(config.clone()).await?;
    let (code, body) = w.post("/connectors", &json!({"name": "src", "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "file": src.to_str().unwrap(), "topic": "file-lines"}})).await;
    assert_eq!(code, 201, "{body}");
    w.wait_state("src", "RUNNING").await;
    common::eventually("source offsets", || async {
        let (_, o) = w.get("/connectors/src/offsets").await;
        o["offsets"][0]["offset"]["position"] == 4
    })
    .await;
    assert_eq!(w.put("/connectors/src/pause", &json!(null)).await.0, 202);
    w.stop().await;

    let w = Worker::start_with(config).await?;
    assert_eq!(w.get("/connectors").await, (200, json!(["src"])));
    w.wait_state("src", "PAUSED").await;
    let (_, o) = w.get("/connectors/src/offsets").await;
    assert_eq!(
        o["offsets"][0]["partition"]["filename"],
        src.to_str().unwrap()
    );
    assert_eq!(o["offsets"][0]["offset"]["position"], 4);
    w.stop().await;
    Ok(())
}
