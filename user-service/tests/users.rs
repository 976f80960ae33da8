//! user-service over HTTP against a real MariaDB and the real broker: sign-up, hashing, login,
//! error codes, and a user's orders fetched from live order-service instances found through the
//! registry (round-robin, skipping dead ones, empty list and a warning when none answers).

mod common;

use std::time::{Duration, Instant};

use common::{order_service, user_service, App, SECRET};
use serde_json::{json, Value};
use test_support::{Fault, FaultProxy, MariaDb, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_hashes_the_password_and_login_returns_a_jwt() -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    // The service reaches MariaDB through a proxy, for the outage at the end.
    let proxy = FaultProxy::start(db.server_addr()?).await?;
    let app = user_service(&db.url_via(proxy.addr), &broker.bootstrap()).await?;
    let c = reqwest::Client::new();
    let users = format!("{}/users", app.url);

    let r = c
        .post(&users)
        .json(&json!({"email":"kim@example.com","name":"Kim","pwd":"s3cret-pass"}))
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await?;
    let user_id = created["userId"].as_str().unwrap().to_string();
    assert_eq!(
        created,
        json!({"email":"kim@example.com","name":"Kim","userId": user_id})
    );

    // Stored hashed with argon2, never in clear.
    let (stored,): (String,) = sqlx::query_as("SELECT encrypted_pwd FROM users WHERE user_id = ?")
        .bind(&user_id)
        .fetch_one(&db.pool().await?)
        .await?;
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("s3cret-pass"));

    // Duplicate email (any case) → 409.
    let r = c
        .post(&users)
        .json(&json!({"email":"KIM@example.com","name":"Kim2","pwd":"another-pass"}))
        .send()
        .await?;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await?["status"], 409);

    // Validation → 400 naming the fields; malformed JSON → 400.
    let r = c
        .post(&users)
        .json(&json!({"email":"not-an-email","name":"K","pwd":"short"}))
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await?;
    let fields: Vec<&str> = e["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "name", "pwd"]);
    let r = c
        .post(&users)
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await?["status"], 400);

    // Lists and lookups never show the password.
    let list: Value = c.get(&users).send().await?.json().await?;
    assert_eq!(
        list,
        json!([{"email":"kim@example.com","name":"Kim","userId": user_id}])
    );
    let r = c.get(format!("{users}/no-such-user")).send().await?;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await?["status"], 404);
    // A method the path does not have → 405 with the same JSON error shape.
    let r = c.delete(&users).send().await?;
    assert_eq!(r.status(), 405);
    let e: Value = r.json().await?;
    assert_eq!(e["status"], 405);
    assert!(e["message"].as_str().unwrap().contains("DELETE"), "{e}");

    // Login: token + userId headers; wrong password or unknown email → 401.
    let r = c
        .post(format!("{}/login", app.url))
        .json(&json!({"email":"kim@example.com","password":"s3cret-pass"}))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["userId"], user_id.as_str());
    let token = r.headers()["token"].to_str()?;
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS512),
    )?;
    assert_eq!(claims.claims["sub"], user_id.as_str());
    for body in [
        json!({"email":"kim@example.com","password":"wrong-pass"}),
        json!({"email":"nobody@example.com","password":"s3cret-pass"}),
    ] {
        let r = c
            .post(format!("{}/login", app.url))
            .json(&body)
            .send()
            .await?;
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("token").is_none());
    }
    let r = c
        .post(format!("{}/login", app.url))
        .json(&json!({"email":"kim@example.com"}))
        .send()
        .await?;
    assert_eq!(r.status(), 400);

    assert_eq!(
        c.get(format!("{}/welcome", app.url))
            .send()
            .await?
            .text()
            .await?,
        "Welcome to the Simple E-commerce."
    );
    assert_eq!(
        c.get(format!("{}/ready", app.url)).send().await?.status(),
        200
    );

    // MariaDB unreachable or hung (a proxy in between) → 503 quickly.
    for fault in [Fault::Down, Fault::Stall] {
        proxy.set(fault);
        let started = Instant::now();
        let r = c.get(&users).send().await?;
        assert_eq!(r.status(), 503, "{fault:?}");
        assert!(started.elapsed() < Duration::from_secs(4), "{fault:?}");
        let r = c
            .post(&users)
            .json(&json!({"email":"x@example.com","name":"Xi","pwd":"12345678"}))
            .send()
            .await?;
        assert_eq!(r.status(), 503, "{fault:?}");
        proxy.set(Fault::None);
    }

    // GET /metrics: every request above by route template and status, and the pool.
    let text = c
        .get(format!("{}/metrics", app.url))
        .send()
        .await?
        .text()
        .await?;
    for line in [
        r#"http_server_requests_seconds_count{method="POST",uri="/users",status="201"} 1"#,
        r#"http_server_requests_seconds_count{method="GET",uri="/users",status="503"} 2"#,
        r#"http_server_requests_seconds_count{method="POST",uri="/users",status="503"} 2"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line} in:\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("hikaricp_connections_max ")),
        "{text}"
    );
    app.stop().await
}

/// Signs a user up; their userId.
async fn sign_up(
    c: &reqwest::Client,
    users: &App,
    email: &str,
    name: &str,
) -> anyhow::Result<String> {
    let r = c
        .post(format!("{}/users", users.url))
        .json(&json!({"email": email, "name": name, "pwd": "s3cret-pass"}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "sign-up answered {}", r.status());
    let created: Value = r.json().await?;
    Ok(created["userId"].as_str().unwrap_or_default().to_string())
}

/// Orders rows are inserted by the test as the JDBC sink writes them (this test is about
/// discovery, not the sink; see order-service/tests/end_to_end.rs for the real pipeline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_what_the_sink_wrote_through_live_order_services_skipping_dead_ones(
) -> anyhow::Result<()> {
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let users = user_service(&db.url, &broker.bootstrap()).await?;
    let c = reqwest::Client::new();
    let user_id = sign_up(&c, &users, "lee@example.com", "Lee").await?;
    let one = format!("{}/users/{user_id}", users.url);

    // No order-service at all: the user, no orders, a warning.
    let r = c.get(&one).send().await?;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("warning").is_some());
    assert_eq!(r.json::<Value>().await?["orders"], json!([]));

    let a = order_service(&db.url, &broker.bootstrap()).await?;
    let b = order_service(&db.url, &broker.bootstrap()).await?;
    sqlx::query("INSERT INTO orders (order_id, user_id, product_id, qty, unit_price, total_price, created_at) \
                 VALUES ('o-1', ?, 'CATALOG-001', 2, 1500, 3000, '2024-05-01 10:00:00.123')")
        .bind(&user_id).execute(&db.pool().await?).await?;
    let expected = json!([{"orderId":"o-1","productId":"CATALOG-001","qty":2,"unitPrice":1500,"totalPrice":3000,"createdAt":"2024-05-01T10:00:00.123Z"}]);

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = c.get(&one).send().await?;
        let warned = r.headers().get("warning").is_some();
        let body: Value = r.json().await?;
        if !warned {
            assert_eq!(body["orders"], expected);
            break;
        }
        assert!(Instant::now() < deadline, "order-services never discovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several requests in a row all succeed (round-robin over both).
    for _ in 0..4 {
        let r = c.get(&one).send().await?;
        assert!(r.headers().get("warning").is_none());
        assert_eq!(r.json::<Value>().await?["orders"], expected);
    }

    // a goes away (its task aborted, its port closed): every request still gets the orders, at
    // once. (The stand-in test below covers a crash that leaves the registration behind.)
    drop(a);
    for _ in 0..4 {
        let started = Instant::now();
        let r = c.get(&one).send().await?;
        assert!(r.headers().get("warning").is_none());
        assert_eq!(r.json::<Value>().await?["orders"], expected);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    // b shuts down gracefully: no instance left → empty list with a warning.
    b.stop().await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = c.get(&one).send().await?;
        if r.headers().get("warning").is_some() {
            assert_eq!(r.json::<Value>().await?["orders"], json!([]));
            break;
        }
        assert!(Instant::now() < deadline, "stopped instances still used");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    users.stop().await
}

/// An order-service stand-in that counts the requests it serves and answers every user's orders
/// with one order naming itself.
async fn counting_order_service(
    name: &'static str,
) -> anyhow::Result<(String, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/order-service/{user_id}/orders",
        axum::routing::get({
            let hits = hits.clone();
            move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!([{ "orderId": name }]))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, hits))
}

fn heartbeat(bootstrap: &str, id: &str, url: &str) -> anyhow::Result<discovery::Heartbeat> {
    Ok(discovery::Heartbeat::start(
        &bootstrap.into(),
        discovery::DEFAULT_TOPIC,
        id,
        discovery::Registration {
            service: "order-service".into(),
            url: url.into(),
            heartbeat_ms: 500,
        },
    )?)
}

/// Round-robin over the live instances, and a crashed instance that is still in the registry
/// (heartbeats going, port closed: the window before readers notice a crash) is skipped for the
/// next one at once. Stand-ins count what each instance served; instance ids fix the order
/// (`a-live`, `b-live`, `c-dead`), so the split is exact: c's turns fall to a.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_come_round_robin_from_live_instances_skipping_a_crashed_one() -> anyhow::Result<()>
{
    use std::sync::atomic::Ordering;
    let db = MariaDb::start().await?;
    let broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let users = user_service(&db.url, &bootstrap).await?;
    let c = reqwest::Client::new();
    let user_id = sign_up(&c, &users, "rr@example.com", "Robin").await?;
    let one = format!("{}/users/{user_id}", users.url);

    // The crashed instance: registered, but nothing listens on its port any more.
    let dead_url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("http://{}", l.local_addr()?)
    };
    let dead = heartbeat(&bootstrap, "c-dead", &dead_url)?;
    let registry =
        discovery::Registry::start(&bootstrap.as_str().into(), discovery::DEFAULT_TOPIC)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while registry.live("order-service").is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the dead instance never registered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The live ones register after it, so a reader that sees them has seen it too.
    let (a_url, a_hits) = counting_order_service("from-a").await?;
    let (b_url, b_hits) = counting_order_service("from-b").await?;
    let _a = heartbeat(&bootstrap, "a-live", &a_url)?;
    let _b = heartbeat(&bootstrap, "b-live", &b_url)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while a_hits.load(Ordering::SeqCst) == 0 || b_hits.load(Ordering::SeqCst) == 0 {
        anyhow::ensure!(Instant::now() < deadline, "the live instances never served");
        c.get(&one).send().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 30 requests over [a, b, c-dead]: a serves its turns and c's, b its own.
    let get_orders = |c: reqwest::Client, url: String| async move {
        let started = Instant::now();
        let r = c.get(&url).send().await?;
        assert!(r.headers().get("warning").is_none(), "no instance answered");
        let orders = r.json::<Value>().await?["orders"].clone();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        anyhow::Ok(orders)
    };
    a_hits.store(0, Ordering::SeqCst);
    b_hits.store(0, Ordering::SeqCst);
    for _ in 0..30 {
        let orders = get_orders(c.clone(), one.clone()).await?;
        assert!(
            orders == json!([{"orderId":"from-a"}]) || orders == json!([{"orderId":"from-b"}]),
            "{orders}"
        );
    }
    assert_eq!(
        (a_hits.load(Ordering::SeqCst), b_hits.load(Ordering::SeqCst)),
        (20, 10)
    );

    // Its heartbeats stop too (no tombstone): after three missed ones it is gone, and a and b
    // take turns.
    drop(dead);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    a_hits.store(0, Ordering::SeqCst);
    b_hits.store(0, Ordering::SeqCst);
    for _ in 0..30 {
        get_orders(c.clone(), one.clone()).await?;
    }
    assert_eq!(
        (a_hits.load(Ordering::SeqCst), b_hits.load(Ordering::SeqCst)),
        (15, 15)
    );
    users.stop().await
}
