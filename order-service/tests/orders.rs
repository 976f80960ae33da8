//! order-service over HTTP against a real MariaDB and the real broker: the 201 contract and the
//! record on the topic, validation, read-your-writes with the consistency token (on rows written
//! the way the sink writes them; the end-to-end version with the real connect worker is in
//! `end_to_end.rs`), and 503s when MariaDB or the broker is down.

mod common;

use std::time::{Duration, Instant};

use common::{config, insert_order_row, read_committed_all, sink_wrote, TestApp, SINK_NAME};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};
use test_support::{Fault, FaultProxy, MariaDb, TestBroker};

async fn post(
    client: &reqwest::Client,
    app: &TestApp,
    user: &str,
    body: Value,
) -> reqwest::Response {
    client
        .post(format!("{}/order-service/{user}/orders", app.url))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn read_record(bootstrap: &str, partition: i32, offset: i64) -> (String, Value) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "order-service-test")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("orders", partition, Offset::Offset(offset))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
            return (key, serde_json::from_slice(m.payload().unwrap()).unwrap());
        }
    }
    panic!("record orders:{partition}:{offset} not readable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_answers_201_after_the_transaction_committed_a_connect_json_record(
) -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let app = TestApp::spawn(config(&db.url, &broker.bootstrap(), &[])).await?;
    let client = reqwest::Client::new();

    let r = post(
        &client,
        &app,
        "user-1",
        json!({"productId":"CATALOG-001","qty":3,"unitPrice":1500}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let token = r.headers()["x-consistency-token"].to_str()?.to_string();
    let body: Value = r.json().await?;
    assert_eq!(body["productId"], "CATALOG-001");
    assert_eq!(body["qty"], 3);
    assert_eq!(body["unitPrice"], 1500);
    assert_eq!(body["totalPrice"], 4500);
    let order_id = body["orderId"].as_str().unwrap();
    uuid::Uuid::parse_str(order_id)?;
    let created = chrono::DateTime::parse_from_rfc3339(body["createdAt"].as_str().unwrap())?;

    let parts: Vec<&str> = token.split(':').collect();
    assert_eq!(parts[0], "orders", "{token}");
    let (partition, offset): (i32, i64) = (parts[1].parse()?, parts[2].parse()?);
    let (key, value) = read_record(&broker.bootstrap(), partition, offset);
    let key: Value = serde_json::from_str(&key)?;
    assert_eq!(key["payload"], order_id);
    assert_eq!(value["schema"]["name"], "orders");
    assert_eq!(
        value["payload"],
        json!({"order_id": order_id, "user_id": "user-1", "product_id": "CATALOG-001", "qty": 3,
               "unit_price": 1500, "total_price": 4500, "created_at": created.timestamp_millis()})
    );

    // The order-service never writes orders itself.
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders")
        .fetch_one(&db.pool().await?)
        .await?;
    assert_eq!(n, 0);

    // A second order gets a later position: after the first one's commit marker (a
    // transaction per batch of orders, and this one was alone in its transaction).
    let r = post(
        &client,
        &app,
        "user-1",
        json!({"productId":"CATALOG-002","qty":1,"unitPrice":0}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let token2 = r.headers()["x-consistency-token"].to_str()?.to_string();
    assert_eq!(token2, format!("orders:{partition}:{}", offset + 2));
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_get_400_with_a_json_body_naming_the_field() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let app = TestApp::spawn(config(&db.url, &broker.bootstrap(), &[])).await?;
    let client = reqwest::Client::new();
    let url = format!("{}/order-service/u1/orders", app.url);

    for (body, field) in [
        (json!({"productId":"p","qty":0,"unitPrice":1}), "qty"),
        (json!({"productId":"p","qty":1,"unitPrice":-1}), "unitPrice"),
        (json!({"productId":"","qty":1,"unitPrice":1}), "productId"),
        (json!({"qty":1,"unitPrice":1}), "productId"),
        (json!({"productId":"p","qty":"two","unitPrice":1}), "qty"),
        (json!({"productId":"p","qty":1.5,"unitPrice":1}), "qty"),
    ] {
        let r = client.post(&url).json(&body).send().await?;
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await?;
        assert_eq!(e["status"], 400);
        assert_eq!(e["fields"][0]["field"], field, "{e}");
        assert!(e["fields"][0]["message"].as_str().unwrap().len() > 3);
    }
    // Malformed JSON, a JSON array, a missing content type: 400 with a JSON body.
    for (body, ctype) in [
        ("{\"productId\":", "application/json"),
        ("[1,2]", "application/json"),
        ("{}", "text/plain"),
    ] {
        let r = client
            .post(&url)
            .header("content-type", ctype)
            .body(body)
            .send()
            .await?;
        assert_eq!(r.status(), 400, "{body} {ctype}");
        let e: Value = r.json().await?;
        assert_eq!(e["error"], "Bad Request");
    }
    // A body over the 2 MiB limit: 413, JSON body.
    let huge = format!(
        r#"{{"productId":"{}","qty":1,"unitPrice":1}}"#,
        "p".repeat(3 << 20)
    );
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await?;
    assert_eq!(r.status(), 413);
    // The server closes this connection (the body's rest is unread) and says so, so the pooled
    // client opens a new one for the next request instead of losing it.
    assert_eq!(r.headers()["connection"], "close");
    assert_eq!(r.json::<Value>().await?["status"], 413);
    // A bad user id, a bad consistency token.
    let long = "x".repeat(65);
    let r = post(
        &client,
        &app,
        &long,
        json!({"productId":"p","qty":1,"unitPrice":1}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = client
        .get(&url)
        .header("x-consistency-token", "orders:zero:1")
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    let r = client
        .get(&url)
        .header("x-consistency-token", "payments:0:1")
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    // Tokens no acknowledged write can have produced: past the partition's end, or a partition
    // the topic does not have. A 400 at once (the consistency timeout here is 5 s), naming why.
    for (token, says) in [
        ("orders:0:1000000", "ends at offset"),
        ("orders:99:0", "has no partition 99"),
    ] {
        let started = Instant::now();
        let r = client
            .get(&url)
            .header("x-consistency-token", token)
            .send()
            .await?;
        assert_eq!(r.status(), 400, "{token}");
        let body: Value = r.json().await?;
        assert!(
            body["message"].as_str().unwrap_or("").contains(says),
            "{token}: {body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{token}: {:?}",
            started.elapsed()
        );
    }
    // Unknown endpoint: JSON 404.
    let r = client.get(format!("{}/nope", app.url)).send().await?;
    assert_eq!(r.status(), 404);
    let _: Value = r.json().await?;
    // Known path, unknown method: JSON 405.
    let r = client.put(&url).send().await?;
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().await?["status"], 405);
    // Liveness and readiness.
    let r = client
        .get(format!("{}/order-service/health_check", app.url))
        .send()
        .await?;
    assert!(r.text().await?.contains(&app.addr.port().to_string()));
    // Ready once the transactional producer is initialised (it starts in the background).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client
            .get(format!("{}/order-service/ready", app.url))
            .send()
            .await?;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await
}

/// The read side on its own: rows and `datasync_sink_offsets` are inserted by the test exactly as
/// the JDBC sink writes them (the real sink runs in `end_to_end.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_what_the_sink_wrote_on_both_instances_and_waits_for_the_token() -> anyhow::Result<()>
{
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let a = TestApp::spawn(config(&db.url, &broker.bootstrap(), &[])).await?;
    let b = TestApp::spawn(config(
        &db.url,
        &broker.bootstrap(),
        &["--consistency-timeout-ms", "800"],
    ))
    .await?;
    let pool = db.pool().await?;
    let client = reqwest::Client::new();

    let mut tokens = Vec::new();
    let mut created = Vec::new();
    for (i, app) in [&a, &b, &a].into_iter().enumerate() {
        let r = post(
            &client,
            app,
            "u-42",
            json!({"productId": format!("P{i}"), "qty": i + 1, "unitPrice": 100}),
        )
        .await;
        assert_eq!(r.status(), 201);
        tokens.push(r.headers()["x-consistency-token"].to_str()?.to_string());
        created.push(r.json::<Value>().await?);
    }
    // Not applied yet: without a token, an empty list at once; with it on b, 503 after its
    // (short) consistency timeout, saying so. Another sink connector on the topic, writing
    // another table, being past every token changes nothing: it does not write the orders
    // table, so no sink that could vouch exists, and the answer says so and how to fix it.
    sqlx::query(
        "INSERT INTO datasync_sink_offsets (connector, topic, kafka_partition, target_table, next_offset) \
         VALUES ('audit-sink', 'orders', 0, 'order_audit', 1000)",
    )
    .execute(&pool)
    .await?;
    let url_a = format!("{}/order-service/u-42/orders", a.url);
    let url_b = format!("{}/order-service/u-42/orders", b.url);
    let r = client.get(&url_a).send().await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await?, json!([]));
    let started = Instant::now();
    let r = client
        .get(&url_b)
        .header("x-consistency-token", &tokens[2])
        .send()
        .await?;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-consistency-status"], "no-sink");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let body: Value = r.json().await?;
    assert_eq!(
        body["details"]["looked_for"],
        json!({"topic": "orders", "table": "orders", "connector": null}),
        "{body}"
    );
    assert_eq!(
        body["details"]["connectors_reading_topic"],
        json!([{"name": "audit-sink", "table": "order_audit"}]),
        "{body}"
    );
    let hint = body["details"]["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("--consistency-connector=audit-sink"),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&tokens[2]),
        "{body}"
    );

    // The "sink" applies the first two records, then (later) the third: a GET on b with the
    // token of a's third order waits for it.
    for o in &created[..2] {
        insert_order_row(&pool, o, "u-42").await;
    }
    // Each order was alone in its transaction, so commit markers sit between the records: the
    // sink's next offset after a record is the record's offset + 1.
    let next_after = |token: &str| -> i64 {
        token
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .parse::<i64>()
            .unwrap_or(-1)
            + 1
    };
    sink_wrote(&pool, 0, next_after(&tokens[1])).await;
    let waiting = {
        let client = client.clone();
        let (url, token) = (
            format!("{}/order-service/u-42/orders", a.url),
            tokens[2].clone(),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            let r = client
                .get(&url)
                .header("x-consistency-token", token)
                .send()
                .await
                .unwrap();
            (
                r.status(),
                r.json::<Value>().await.unwrap(),
                started.elapsed(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    insert_order_row(&pool, &created[2], "u-42").await;
    sink_wrote(&pool, 0, next_after(&tokens[2])).await;
    let (status, list, waited) = waiting.await?;
    assert_eq!(status, 200);
    assert!(waited >= Duration::from_millis(350), "{waited:?}");
    assert_eq!(list, Value::Array(created.clone()));

    // Both instances answer identically, with or without a token.
    let from_a: Value = client.get(&url_a).send().await?.json().await?;
    let from_b: Value = client
        .get(&url_b)
        .header("x-consistency-token", &tokens[0])
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(from_a, from_b);
    assert_eq!(from_a, Value::Array(created));

    // Now a sink is there (under a name of its own): an instance told to wait for a connector
    // that does not exist says which one it looked for and names the one that writes the table;
    // one told the right name is served; b, waiting for a position no sink has reached yet,
    // times out plainly.
    for (name, status) in [("orders-sink", 503), (SINK_NAME, 200)] {
        let c = TestApp::spawn(config(
            &db.url,
            &broker.bootstrap(),
            &[
                "--consistency-timeout-ms",
                "300",
                "--consistency-connector",
                name,
            ],
        ))
        .await?;
        let r = client
            .get(format!("{}/order-service/u-42/orders", c.url))
            .header("x-consistency-token", &tokens[2])
            .send()
            .await?;
        assert_eq!(r.status(), status, "{name}");
        if status == 503 {
            assert_eq!(r.headers()["x-consistency-status"], "no-sink");
            let body: Value = r.json().await?;
            assert_eq!(body["details"]["looked_for"]["connector"], name, "{body}");
            let hint = body["details"]["hint"].as_str().unwrap_or_default();
            assert!(
                hint.contains(&format!("--consistency-connector={SINK_NAME}")),
                "{body}"
            );
        }
        c.stop().await?;
    }
    sqlx::query("DELETE FROM datasync_sink_offsets WHERE connector = 'audit-sink'")
        .execute(&pool)
        .await?;
    let r = client
        .get(&url_b)
        .header(
            "x-consistency-token",
            format!("orders:0:{}", next_after(&tokens[2])),
        )
        .send()
        .await?;
    // That offset holds the last transaction's commit marker (so the token is below the
    // partition's end and is waited for), and no sink will ever pass it: a plain timeout.
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-consistency-status"], "timeout");
    let body: Value = r.json().await?;
    assert!(body.get("details").is_none(), "{body}");
    // Other users see nothing.
    let other: Value = client
        .get(format!("{}/order-service/u-43/orders", b.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(other, json!([]));
    a.stop().await?;
    b.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_503_quickly_and_no_order() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let mut broker = TestBroker::start().await?;
    let app = TestApp::spawn(config(
        &db.url,
        &broker.bootstrap(),
        &["--publish-timeout-ms", "1000"],
    ))
    .await?;
    let client = reqwest::Client::new();
    let r = post(
        &client,
        &app,
        "u1",
        json!({"productId":"p","qty":1,"unitPrice":1}),
    )
    .await;
    assert_eq!(r.status(), 201);

    broker.stop().await;
    let started = Instant::now();
    let r = post(
        &client,
        &app,
        "u1",
        json!({"productId":"lost","qty":1,"unitPrice":1}),
    )
    .await;
    assert_eq!(r.status(), 503);
    let e: Value = r.json().await?;
    assert_eq!(e["status"], 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let r = client
        .get(format!("{}/order-service/ready", app.url))
        .send()
        .await?;
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await?["broker"]["status"], "DOWN");

    // Back up: the record of the failed POST was never appended. Wait until the service's
    // readiness probe sees the broker again (librdkafka reconnects with a backoff), as a load
    // balancer would, before posting.
    let broker = broker.restart().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("{}/order-service/ready", app.url))
            .send()
            .await?
            .status();
        if ready == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = post(
        &client,
        &app,
        "u1",
        json!({"productId":"after","qty":1,"unitPrice":1}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let token = r.headers()["x-consistency-token"].to_str()?.to_string();
    let offset: i64 = token.rsplit(':').next().unwrap_or_default().parse()?;
    let (_, v) = read_record(&broker.bootstrap(), 0, offset);
    assert_eq!(v["payload"]["product_id"], "after");
    // A read_committed consumer sees the two 201 orders and never the 503 one (whatever of it
    // reached the broker was aborted).
    let products: Vec<String> = read_committed_all(&broker.bootstrap(), 2)
        .iter()
        .map(|v| {
            v["payload"]["product_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(products, ["p", "after"]);
    app.stop().await
}

/// MariaDB unreachable (connections closed) or hung (connections open, no answer): every read
/// is a 503 within the database timeout, readiness says so, and the service recovers by itself.
/// The outage is a proxy between the service and the server, so this runs against a
/// `DATABASE_URL` server as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_means_503_quickly_never_a_hang() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let proxy = FaultProxy::start(db.server_addr()?).await?;
    let app = TestApp::spawn(config(&db.url_via(proxy.addr), &broker.bootstrap(), &[])).await?;
    let client = reqwest::Client::new();
    let url = format!("{}/order-service/u1/orders", app.url);
    assert_eq!(client.get(&url).send().await?.status(), 200);
    // A real token (orders reach the broker, not the database), which no sink has applied.
    let r = post(
        &client,
        &app,
        "u1",
        json!({"productId":"p","qty":1,"unitPrice":1}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let token = r.headers()["x-consistency-token"].to_str()?.to_string();
    for fault in [Fault::Down, Fault::Stall] {
        proxy.set(fault);
        for header in [None, Some(token.as_str())] {
            let started = Instant::now();
            let mut req = client.get(&url);
            if let Some(h) = header {
                req = req.header("x-consistency-token", h);
            }
            let r = req.send().await?;
            assert_eq!(r.status(), 503, "{fault:?}");
            let _: Value = r.json().await?;
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "{fault:?}: {:?}",
                started.elapsed()
            );
        }
        let r = client
            .get(format!("{}/order-service/ready", app.url))
            .send()
            .await?;
        assert_eq!(r.status(), 503, "{fault:?}");
        proxy.set(Fault::None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(&url).send().await?.status() != 200 {
            assert!(
                Instant::now() < deadline,
                "no recovery after the database came back ({fault:?})"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    app.stop().await
}

/// A server that is up but refuses the service for now (here MariaDB error 1203, "user already
/// has more than 'max_user_connections' active connections") is an outage like a dead one: 503
/// with `Retry-After`, not a 500; and the service recovers once the server lets it in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_connections_is_a_503_not_a_500() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let root = db.pool().await?;
    let user = format!("lim_{}", &db.database[2..14]);
    sqlx::query(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-12345' WITH MAX_USER_CONNECTIONS 1"
    ))
    .execute(&root)
    .await?;
    sqlx::query(&format!("GRANT ALL ON `{}`.* TO '{user}'@'%'", db.database))
        .execute(&root)
        .await?;
    let limited_url = format!(
        "mysql://{user}:pw-12345@{}/{}",
        db.server_addr()?,
        db.database
    );
    let app = TestApp::spawn(config(
        &limited_url,
        &broker.bootstrap(),
        &["--db-max-connections", "1"],
    ))
    .await?;
    let client = reqwest::Client::new();
    let url = format!("{}/order-service/u1/orders", app.url);
    assert_eq!(client.get(&url).send().await?.status(), 200);

    // Take the user's one connection away from the service and hold it ourselves.
    let ids: Vec<(i64,)> =
        sqlx::query_as("SELECT id FROM information_schema.processlist WHERE user = ?")
            .bind(&user)
            .fetch_all(&root)
            .await?;
    assert!(!ids.is_empty(), "the service holds no connection");
    for (id,) in ids {
        sqlx::query(&format!("KILL {id}")).execute(&root).await?;
    }
    let held = {
        use sqlx::Connection;
        sqlx::MySqlConnection::connect(&limited_url).await?
    };
    let r = client.get(&url).send().await?;
    assert_eq!(r.status(), 503, "{:?}", r.text().await);
    let r = client.get(&url).send().await?;
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await?;
    assert!(
        body["message"].as_str().unwrap_or("").contains("1203")
            || body["message"]
                .as_str()
                .unwrap_or("")
                .contains("max_user_connections"),
        "{body}"
    );

    {
        use sqlx::Connection;
        held.close().await?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.get(&url).send().await?.status() != 200 {
        assert!(
            Instant::now() < deadline,
            "no recovery once the server let the service in"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await
}

/// `GET /metrics`: HTTP requests by route template and status, orders published, consistency
/// waits by outcome and the database pool, as the service saw them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_orders_waits_and_the_pool() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let app = TestApp::spawn(config(&db.url, &broker.bootstrap(), &[])).await?;
    let client = reqwest::Client::new();
    for i in 0..2 {
        let r = post(
            &client,
            &app,
            "u-metrics",
            json!({"productId": format!("P{i}"), "qty": 1, "unitPrice": 10}),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let url = format!("{}/order-service/u-metrics/orders", app.url);
    let r = client
        .get(&url)
        .header("x-consistency-token", "orders:0:1000000")
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    assert_eq!(
        client
            .get(format!("{}/no/such/path", app.url))
            .send()
            .await?
            .status(),
        404
    );

    let r = client.get(format!("{}/metrics", app.url)).send().await?;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()?
        .starts_with("application/openmetrics-text"));
    let text = r.text().await?;
    let has = |line: &str| text.lines().any(|l| l == line);
    for line in [
        r#"http_server_requests_seconds_count{method="POST",uri="/order-service/{user_id}/orders",status="201"} 2"#,
        r#"http_server_requests_seconds_count{method="GET",uri="/order-service/{user_id}/orders",status="400"} 1"#,
        r#"http_server_requests_seconds_count{method="GET",uri="UNKNOWN",status="404"} 1"#,
        r#"orders_published_total{outcome="acknowledged"} 2"#,
        r#"order_publish_seconds_count 2"#,
        r#"consistency_wait_seconds_count{outcome="rejected"} 1"#,
    ] {
        assert!(has(line), "missing {line} in:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("hikaricp_connections_max ") && !l.ends_with(" 0")),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"));
    app.stop().await
}
