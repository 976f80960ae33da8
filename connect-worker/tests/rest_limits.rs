//! Requests the REST API must refuse or survive without a 500 or a stall, against a real worker
//! (in-process, real broker): a connector config too large for the config topic, a body over
//! the limit, a path with broken percent-encoding (each a JSON error in Kafka Connect's shape,
//! nothing stored), and a connector whose database refuses connections, which must not hold up
//! the rest of the API while it is being created.

mod common;

use std::time::Duration;

use common::Worker;
use serde_json::{json, Value};

fn sink_config(name: &str, url: &str) -> Value {
    json!({
        "name": name,
        "config": {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "connection.url": url,
            "topics": "orders",
            "tasks.max": "1",
        }
    })
}

/// A loopback port nobody listens on: connections to it are refused at once.
async fn refused_port() -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(port)
}

fn assert_error_shape(code: u16, body: &Value, expected: u16, says: &str) {
    assert_eq!(code, expected, "{body}");
    assert_eq!(body["error_code"], expected, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(says),
        "expected {says:?} in the message: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_configs_bodies_and_bad_paths_get_json_errors_and_store_nothing(
) -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let w = Worker::start(&broker.bootstrap()).await?;
    let url = format!("jdbc:mariadb://127.0.0.1:{}/db", refused_port().await?);

    // 1.5 MB of config: under the body limit, over what the config topic takes (1 MiB).
    let mut big = sink_config("big", &url);
    big["config"]["comment"] = json!("x".repeat(1_500_000));
    let (code, body) = w.post("/connectors", &big).await;
    assert_error_shape(code, &body, 413, "too large");
    let (code, body) = w.put("/connectors/big/config", &big["config"]).await;
    assert_error_shape(code, &body, 413, "too large");
    assert_eq!(w.get("/connectors").await, (200, json!([])));
    assert_eq!(w.get("/connectors/big").await.0, 404);

    // Over the body limit: refused before it is parsed, in the same JSON shape.
    let huge = format!(
        r#"{{"name":"huge","config":{{"x":"{}"}}}}"#,
        "y".repeat(3 << 20)
    );
    let (code, body) = common::send(
        reqwest::Client::new()
            .post(w.url("/connectors"))
            .header("content-type", "application/json")
            .body(huge),
    )
    .await;
    assert_error_shape(code, &body, 413, "larger than the limit");

    // Broken percent-encoding in a connector name: 400, whatever the route.
    for (method, path) in [
        ("GET", "/connectors/%FF"),
        ("GET", "/connectors/a%zz/status"),
        ("GET", "/connectors/a%2"),
        ("PUT", "/connectors/%C3%28/config"),
        ("DELETE", "/connectors/%E2%82"),
    ] {
        let req = match method {
            "GET" => reqwest::Client::new().get(w.url(path)),
            "PUT" => reqwest::Client::new()
                .put(w.url(path))
                .json(&sink_config("x", &url)["config"]),
            _ => reqwest::Client::new().delete(w.url(path)),
        };
        let (code, body) = common::send(req).await;
        assert_error_shape(code, &body, 400, "Invalid request path");
    }
    // Valid percent-encoding still names the connector it decodes to.
    let (code, body) = w.get("/connectors/my%20sink").await;
    assert_error_shape(code, &body, 404, "my sink");

    // The same connector at a normal size is stored and listed.
    let (code, _) = w.post("/connectors", &sink_config("big", &url)).await;
    assert_eq!(code, 201);
    assert_eq!(w.get("/connectors").await, (200, json!(["big"])));
    w.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connector_whose_database_refuses_connections_does_not_block_the_api(
) -> anyhow::Result<()> {
    let broker = test_support::TestBroker::start().await?;
    let w = Worker::start(&broker.bootstrap()).await?;
    let url = format!("jdbc:mariadb://127.0.0.1:{}/db", refused_port().await?);
    // Listing the tables of this source takes the database's connection timeout (10 s) to fail.
    let source = json!({
        "name": "unreachable-source",
        "config": {
            "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
            "connection.url": url,
            "mode": "incrementing",
            "incrementing.column.name": "id",
            "topic.prefix": "db-",
            "tasks.max": "1",
        }
    });
    let create = {
        let client = reqwest::Client::new();
        let url = w.url("/connectors");
        tokio::spawn(async move { common::send(client.post(url).json(&source)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile the rest of the API answers, reads and writes alike.
    assert_eq!(w.get("/connectors").await, (200, json!([])));
    assert_eq!(w.get("/connector-plugins").await.0, 200);
    let (code, _) = w.post("/connectors", &sink_config("other", &url)).await;
    assert_eq!(code, 201);
    assert!(
        !create.is_finished(),
        "the creation finished before the other requests were answered, so this test proved nothing"
    );

    // The creation completes: stored, its failure in its status (not a 500), as Kafka Connect does.
    let (code, body) = create.await?;
    assert_eq!(code, 201, "{body}");
    let (code, status) = w.get("/connectors/unreachable-source/status").await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["connector"]["state"], "FAILED", "{status}");
    let trace = status["connector"]["trace"].as_str().unwrap_or_default();
    assert!(trace.contains("ConnectException"), "{status}");
    let (code, mut names) = w.get("/connectors").await;
    assert_eq!(code, 200);
    names
        .as_array_mut()
        .expect("a list")
        .sort_by_key(|v| v.as_str().unwrap_or_default().to_string());
    assert_eq!(names, json!(["other", "unreachable-source"]));
    w.stop().await;
    Ok(())
}
