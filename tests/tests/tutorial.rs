//! The tutorial's scenarios on the whole system: the user-service, two order-service instances,
//! the broker and the connect worker (with the connector files shipped in docker/connectors/),
//! against a real MariaDB.

use std::time::Duration;

use integration_tests::{
    client, connect_worker, create_connector, create_user, eventually, order_service, post_order,
    shipped_connector, tutorial_connectors, user_service, wait_running, TestBroker,
};
use serde_json::Value;
use test_support::MariaDb;

/// A user is created on the user-service; orders are posted alternately to two order-service
/// instances and each is read back on the OTHER instance with its consistency token; the
/// user-service's `GET /users/{id}` (which finds the instances through the broker) lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn order_flow_with_two_order_service_instances() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let users = user_service(&db, &bootstrap).await?;
    let a = order_service(&db, &bootstrap, &[]).await?;
    let b = order_service(&db, &bootstrap, &[]).await?;
    let worker = connect_worker(&bootstrap).await?;
    create_connector(&worker.url, &shipped_connector("orders-sink.json", &db)?).await?;
    wait_running(&worker.url, "orders-sink").await?;
    let c = client();

    let uid = create_user(&users.url, "kim@example.com", "Kim").await?;
    let mut ids = Vec::new();
    for i in 0..6 {
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let p = post_order(&c, &writer.url, &uid, i).await;
        assert_eq!(p.status, 201, "{:?}", p.body);
        let id = p.order_id.clone().expect("orderId");
        let token = p.token.clone().expect("X-Consistency-Token on 201");
        let r = c
            .get(format!("{}/order-service/{uid}/orders", reader.url))
            .header("x-consistency-token", &token)
            .send()
            .await?;
        assert_eq!(r.status(), 200, "read-your-writes with {token}");
        let list: Vec<Value> = r.json().await?;
        assert!(
            list.iter().any(|o| o["orderId"] == id.as_str()),
            "order {id} missing on the other instance after {token}: {list:?}"
        );
        ids.push(id);
    }
    ids.sort();

    // Both instances agree.
    let mut lists = Vec::new();
    for s in [&a, &b] {
        let list: Vec<Value> = c
            .get(format!("{}/order-service/{uid}/orders", s.url))
            .send()
            .await?
            .json()
            .await?;
        lists.push(list);
    }
    assert_eq!(lists[0], lists[1]);

    // The user-service shows the user with its orders, fetched from an instance it found in the
    // registry (it may need a heartbeat or two to see them).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let user = loop {
        let user: Value = c
            .get(format!("{}/users/{uid}", users.url))
            .send()
            .await?
            .json()
            .await?;
        let mut got: Vec<String> = user["orders"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|o| o["orderId"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        got.sort();
        if got == ids {
            break user;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "user-service GET /users/{uid} never listed the 6 orders; last answer: {user}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(user["email"], "kim@example.com");
    assert_eq!(user["name"], "Kim");
    assert!(
        user.get("pwd").is_none() && user.get("encryptedPwd").is_none(),
        "{user}"
    );

    // MariaDB holds each order once.
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT order_id) FROM orders WHERE user_id = ?")
            .bind(&uid)
            .fetch_one(&db.pool().await?)
            .await?;
    assert_eq!((rows, distinct), (6, 6));

    worker.stop().await?;
    a.stop().await?;
    b.stop().await?;
    users.stop().await
}

/// The tutorial's Kafka Connect part with its configs as shipped in docker/connectors/: the
/// `users` table (filled through the user-service) → JDBC source (incrementing on `id`) →
/// topic `my_topic_users` → JDBC sink (auto.create) → table `my_topic_users`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_connect_tutorial_users_source_to_sink() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let pool = db.pool().await?;
    let broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let users = user_service(&db, &bootstrap).await?; // its migrations create `users`
    create_user(&users.url, "ann@example.com", "Ann").await?;
    create_user(&users.url, "bob@example.com", "Bob").await?;

    let worker = connect_worker(&bootstrap).await?;
    // the tutorial's config, polled faster than the 5 s default to keep the test short
    tutorial_connectors(&worker.url, &db, &[("poll.interval.ms", "300")]).await?;

    let copied = || async {
        sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM my_topic_users")
            .fetch_one(&pool)
            .await
            .map(|(n,)| n)
            .unwrap_or(-1)
    };
    eventually("2 users copied", Duration::from_secs(60), || async {
        copied().await == 2
    })
    .await?;
    create_user(&users.url, "cy@example.com", "Cy").await?;
    eventually("the 3rd user copied", Duration::from_secs(60), || async {
        copied().await == 3
    })
    .await?;

    let q = |t: &str| format!("SELECT id, user_id, email, name FROM {t} ORDER BY id");
    let want: Vec<(i64, String, String, String)> =
        sqlx::query_as(&q("users")).fetch_all(&pool).await?;
    let got: Vec<(i64, String, String, String)> = sqlx::query_as(&q("my_topic_users"))
        .fetch_all(&pool)
        .await?;
    assert_eq!(got, want);
    let r = client()
        .get(format!(
            "{}/connectors/my-source-connect/offsets",
            worker.url
        ))
        .send()
        .await?
        .json::<Value>()
        .await?;
    assert_eq!(r["offsets"][0]["offset"]["incrementing"], want[2].0, "{r}");

    worker.stop().await?;
    users.stop().await
}
