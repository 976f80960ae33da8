//! The JDBC sink against a real MariaDB and the real broker: the tutorial's config, the
//! order-service's config, and exactly-once across `kill -9`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{eventually, jdbc_url, produce, producer, Worker};
use serde_json::json;
use sqlx::Row;

fn user_record(id: i64, name: &str) -> String {
    json!({"schema": {"type": "struct", "name": "users", "optional": false, "fields": [
        {"field": "id", "type": "int64", "optional": false},
        {"field": "name", "type": "string", "optional": true},
        {"field": "created_at", "type": "int64", "optional": true, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1}]},
        "payload": {"id": id, "name": name, "created_at": 1_700_000_000_123i64}})
    .to_string()
}

async fn count(pool: &sqlx::MySqlPool, sql: &str) -> i64 {
    match sqlx::query(sql).fetch_one(pool).await {
        Ok(r) => r.try_get::<Option<i64>, _>(0).ok().flatten().unwrap_or(-1),
        Err(_) => -1,
    }
}

/// The tutorial's sink config verbatim (URL pointed at the test database), a record produced
/// straight to the topic with kcat, and a new optional field evolving the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tutorial_sink_with_kcat() -> anyhow::Result<()> {
    let db = test_support::MariaDb::start().await?;
    let broker = test_support::TestBroker::start().await?;
    let w = Worker::start(&broker.bootstrap()).await?;
    let pool = db.pool().await?;
    let (code, body) = w.post("/connectors", &json!({"name":"my-sink-connect","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","connection.url":jdbc_url(&db.url),"connection.user":"root","connection.password":"test1357","auto.create":"true","auto.evolve":"true","delete.enabled":"false","tasks.max":"1","topics":"my_topic_users"}})).await;
    assert_eq!(code, 201, "{body}");
    w.wait_state("my-sink-connect", "RUNNING").await;

    // kcat, as the tutorial does.
    let mut kcat = Command::new("kcat")
        .args(["-P", "-b", &broker.bootstrap(), "-t", "my_topic_users"])
        .stdin(Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = kcat.stdin.take().unwrap();
        writeln!(stdin, "{}", user_record(1, "alice"))?;
    }
    assert!(kcat.wait()?.success());
    eventually("kcat record in table", || async {
        count(&pool, "SELECT COUNT(*) FROM my_topic_users").await == 1
    })
    .await;
    let row = sqlx::query("SELECT id, name, CAST(created_at AS CHAR) FROM my_topic_users")
        .fetch_one(&pool)
        .await?;
    assert_eq!(row.get::<i64, _>(0), 1);
    assert_eq!(row.get::<String, _>(1), "alice");
    assert_eq!(row.get::<String, _>(2), "2023-11-14 22:13:20.123");

    // auto.evolve: a new optional field becomes a column.
    let p = producer(&broker.bootstrap());
    let evolved = json!({"schema": {"type": "struct", "name": "users", "fields": [
        {"field": "id", "type": "int64"}, {"field": "name", "type": "string", "optional": true},
        {"field": "email", "type": "string", "optional": true}]},
        "payload": {"id": 2, "name": "bob", "email": "bob@example.com"}});
    produce(&p, "my_topic_users", None, Some(&evolved.to_string())).await;
    eventually("evolved row", || async {
        count(
            &pool,
            "SELECT COUNT(*) FROM my_topic_users WHERE email = 'bob@example.com'",
        )
        .await
            == 1
    })
    .await;
    // The offsets table is the consistency contract.
    assert_eq!(count(&pool, "SELECT MAX(next_offset) FROM datasync_sink_offsets WHERE connector='my-sink-connect' AND topic='my_topic_users' AND kafka_partition=0").await, 2);
    let (_, offsets) = w.get("/connectors/my-sink-connect/offsets").await;
    assert_eq!(
        offsets["offsets"][0]["offset"]["kafka_offset"], 2,
        "{offsets}"
    );
    w.stop().await;
    Ok(())
}

fn order(order_id: &str, qty: i32, price: i32) -> String {
    json!({"schema":{"type":"struct","name":"orders","optional":false,"fields":[
        {"field":"order_id","type":"string","optional":false},
        {"field":"user_id","type":"string","optional":false},
        {"field":"product_id","type":"string","optional":false},
        {"field":"qty","type":"int32","optional":false},
        {"field":"unit_price","type":"int32","optional":false},
        {"field":"total_price","type":"int32","optional":false},
        {"field":"created_at","type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1}]},
     "payload":{"order_id":order_id,"user_id":"u1","product_id":"p1","qty":qty,"unit_price":price,"total_price":qty*price,"created_at":1_700_000_000_000i64}})
    .to_string()
}

/// The order-service's sink config, verbatim but for the URL, into its own `orders` table; the
/// offsets table as the first migration left it (no `target_table`) gets the column and the
/// table each position is written into.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_sink_upserts() -> anyhow::Result<()> {
    let db = test_support::MariaDb::start().await?;
    let pool = db.pool().await?;
    sqlx::query(include_str!(
        "../../migrations/20240101000003_sink_offsets.sql"
    ))
    .execute(&pool)
    .await?;
    sqlx::query("CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id VARCHAR(64) NOT NULL UNIQUE, user_id VARCHAR(64) NOT NULL, product_id VARCHAR(64) NOT NULL, qty INT NOT NULL, unit_price DECIMAL(12,2) NOT NULL, total_price DECIMAL(12,2) NOT NULL, created_at DATETIME(3) NOT NULL)").execute(&pool).await?;
    let broker = test_support::TestBroker::start().await?;
    let w = Worker::start(&broker.bootstrap()).await?;
    let url = jdbc_url(&db.url).replace("jdbc:mysql:", "jdbc:mariadb:");
    let (code, body) = w.post("/connectors", &json!({"name":"orders-sink","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","connection.url":url,"connection.user":"root","connection.password":"test1357","topics":"orders","table.name.format":"orders","insert.mode":"upsert","pk.mode":"record_value","pk.fields":"order_id","auto.create":"false","tasks.max":"1"}})).await;
    assert_eq!(code, 201, "{body}");
    let p = producer(&broker.bootstrap());
    produce(&p, "orders", Some("o1"), Some(&order("o1", 1, 100))).await;
    produce(&p, "orders", Some("o2"), Some(&order("o2", 2, 50))).await;
    produce(&p, "orders", Some("o1"), Some(&order("o1", 3, 100))).await;
    // The consistency token orders:0:2 is answered once MAX(next_offset) > 2 for a sink that
    // writes the orders table.
    eventually("token orders:0:2", || async {
        count(&pool, "SELECT MAX(next_offset) FROM datasync_sink_offsets WHERE topic='orders' AND kafka_partition=0 AND target_table='orders'").await > 2
    })
    .await;
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM orders").await, 2);
    assert_eq!(
        count(&pool, "SELECT qty FROM orders WHERE order_id='o1'").await,
        3
    );
    assert_eq!(
        count(
            &pool,
            "SELECT CAST(total_price AS SIGNED) FROM orders WHERE order_id='o1'"
        )
        .await,
        300
    );
    let status = w.wait_state("orders-sink", "RUNNING").await;
    assert!(!status.to_string().contains("test1357"));
    w.stop().await;
    Ok(())
}

/// A secret named through a config provider (`${file:PATH:KEY}`, enabled on this worker): the
/// connector reaches MariaDB with the resolved password, while the config and the task configs
/// the worker stores and shows keep the placeholder; a key missing from the file is a 400 that
/// says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_from_a_config_provider_are_resolved_but_never_stored() -> anyhow::Result<()> {
    let db = test_support::MariaDb::start().await?;
    let pool = db.pool().await?;
    let broker = test_support::TestBroker::start().await?;
    let secrets = tempfile::tempdir()?;
    let file = secrets.path().join("db.properties");
    std::fs::write(
        &file,
        format!(
            "# the database account\nuser=root\npassword={}\n",
            test_support::ROOT_PASSWORD
        ),
    )?;
    let mut config = connect_worker::Config::new(&broker.bootstrap());
    config.config_providers = vec![connect_worker::config_providers::Provider::File];
    config.allowed_paths = vec![secrets.path().to_path_buf()];
    let w = Worker::start_with(config).await?;
    let password = format!("${{file:{}:password}}", file.display());
    let connector = |name: &str, password: &str| json!({"name": name, "config": {"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","connection.url":jdbc_url(&db.url),"connection.user":format!("${{file:{}:user}}", file.display()),"connection.password":password,"auto.create":"true","tasks.max":"1","topics":"provided_users"}});

    let (code, body) = w
        .post(
            "/connectors",
            &connector("typo", &format!("${{file:{}:passwort}}", file.display())),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("has no key passwort"),
        "{body}"
    );

    let (code, body) = w
        .post("/connectors", &connector("provided", &password))
        .await;
    assert_eq!(code, 201, "{body}");
    w.wait_state("provided", "RUNNING").await;
    let p = producer(&broker.bootstrap());
    produce(&p, "provided_users", None, Some(&user_record(7, "carol"))).await;
    eventually("record written with the resolved password", || async {
        count(&pool, "SELECT COUNT(*) FROM provided_users WHERE id = 7").await == 1
    })
    .await;

    let (_, config) = w.get("/connectors/provided/config").await;
    assert_eq!(config["connection.password"], password.as_str());
    let (_, tasks) = w.get("/connectors/provided/tasks").await;
    assert!(tasks.as_array().is_some_and(|t| !t.is_empty()), "{tasks}");
    for shown in [config.to_string(), tasks.to_string()] {
        assert!(!shown.contains(test_support::ROOT_PASSWORD), "{shown}");
    }
    w.stop().await;
    Ok(())
}

struct Child_(Child);

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(bootstrap: &str, port: u16) -> Child_ {
    Child_(
        Command::new(env!("CARGO_BIN_EXE_connect-worker"))
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("CONNECT_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawning connect-worker"),
    )
}

async fn wait_up(base: &str) {
    eventually("worker up", || async {
        reqwest::get(format!("{base}/connectors")).await.is_ok()
    })
    .await;
}

/// The worker binary is killed with SIGKILL twice while records stream in (insert mode, no
/// primary key: a record written twice would be a second row). Every record lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_stream_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let db = test_support::MariaDb::start().await?;
    let pool = db.pool().await?;
    let broker = test_support::TestBroker::start().await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_worker(&broker.bootstrap(), port);
    wait_up(&base).await;
    let (code, body) = common::send(reqwest::Client::new().post(format!("{base}/connectors")).json(&json!({"name":"eos","config":{
        "connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","connection.url":jdbc_url(&db.url),
        "connection.user":"root","connection.password":"test1357","topics":"events","auto.create":"true",
        "insert.mode":"insert","pk.mode":"none","batch.size":"50"}}))).await;
    assert_eq!(code, 201, "{body}");

    const N: i64 = 6000;
    let bootstrap = broker.bootstrap();
    let producing = tokio::spawn(async move {
        let p = producer(&bootstrap);
        for i in 0..N {
            produce(&p, "events", None, Some(&user_record(i, "x"))).await;
            if i % 500 == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    for round in 0..2 {
        let before = count(&pool, "SELECT COUNT(*) FROM events").await;
        eventually("progress before the kill", || async {
            count(&pool, "SELECT COUNT(*) FROM events").await > before + 200
        })
        .await;
        child.0.kill()?; // SIGKILL
        child.0.wait()?;
        eprintln!(
            "round {round}: killed with {} rows",
            count(&pool, "SELECT COUNT(*) FROM events").await
        );
        child = spawn_worker(&broker.bootstrap(), port);
        wait_up(&base).await;
    }
    producing.await?;
    eventually("all rows", || async {
        count(&pool, "SELECT COUNT(*) FROM events").await >= N
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM events").await, N);
    assert_eq!(
        count(&pool, "SELECT COUNT(DISTINCT id) FROM events").await,
        N
    );
    assert_eq!(
        count(
            &pool,
            "SELECT MAX(next_offset) FROM datasync_sink_offsets WHERE connector='eos'"
        )
        .await,
        N
    );
    drop(child);
    Ok(())
}
