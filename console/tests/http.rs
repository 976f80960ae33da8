//! The console's answers to what goes wrong, through its router (`oneshot`, no socket): a
//! cluster or Connect worker that is down gets a 503 page naming it, a user's mistake a 400
//! (or 404) page with the reason, never a 500; read-only mode and basic auth refuse what they
//! must.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use console::connect::Connect;
use console::history::History;
use console::kafka::Kafka;
use console::AppState;
use std::time::Duration;
use test_support::TestBroker;
use tower::ServiceExt;

fn state(bootstrap: &str, connect: &str) -> AppState {
    AppState {
        kafka: Arc::new(Kafka::new(bootstrap, Duration::from_secs(2))),
        connect: Connect::new(&[connect.to_string()], Duration::from_secs(2)),
        history: Arc::new(History::default()),
        read_only: false,
        metrics_url: None,
        authorization: None,
    }
}

/// An address nothing listens on.
fn closed() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

async fn send(state: AppState, req: Request<Body>) -> (StatusCode, String) {
    let resp = console::app(Arc::new(state))
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

fn post(uri: &str, form: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .expect("request")
}

#[tokio::test]
async fn a_cluster_or_worker_that_is_down_gets_a_503_page_naming_it() {
    let kafka = closed();
    let connect = format!("http://{}", closed());
    for uri in ["/", "/topics", "/groups", "/topics/orders/messages"] {
        let (status, body) = send(state(&kafka, &connect), get(uri)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}: {body}");
        assert!(
            body.contains(&kafka) && body.contains("unavailable"),
            "{uri}: {body}"
        );
    }
    let (status, body) = send(state(&kafka, &connect), get("/connectors")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("Kafka Connect is unavailable"), "{body}");
}

#[tokio::test]
async fn bad_input_gets_its_reason_and_never_a_500() {
    let mut broker = TestBroker::start().await.expect("broker");
    let b = broker.bootstrap();
    let connect = format!("http://{}", closed());

    let (status, body) = send(
        state(&b, &connect),
        post("/topics", "name=bad+name&partitions=1"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("only ASCII letters"), "{body}");
    let (status, body) = send(
        state(&b, &connect),
        post("/topics", "name=ok&partitions=zero"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("is not a number of partitions"), "{body}");
    let (status, _) = send(state(&b, &connect), post("/topics", "name=t1&partitions=2")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, body) = send(state(&b, &connect), get("/topics/t1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body.matches("<td class=\"num\">0 B</td>").count(),
        2,
        "sizes: {body}"
    );
    let (status, body) = send(state(&b, &connect), post("/topics", "name=t1&partitions=2")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a duplicate: {body}");
    assert!(body.contains("TOPIC_ALREADY_EXISTS"), "{body}");

    for uri in [
        "/topics/t1/messages?limit=abc",
        "/topics/t1/messages?partition=7",
        "/topics/t1/messages?from=offset&value=-3",
        "/topics/t1/messages?from=sideways",
    ] {
        let (status, body) = send(state(&b, &connect), get(uri)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body.contains("field-error"), "{uri}: {body}");
    }
    let (status, _) = send(state(&b, &connect), get("/topics/missing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(state(&b, &connect), get("/groups/missing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = send(state(&b, &connect), post("/topics/t1/delete", "confirm=t2")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = send(
        state(&b, &connect),
        post("/topics/t1/produce", "partition=x&value=v"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = send(
        state(&b, &connect),
        post("/topics/t1/produce", "partition=9&value=v"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an unknown partition: {body}"
    );
    let (status, body) = send(
        state(&b, &connect),
        post("/connectors", "name=c&config=%7Bnot+json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("not JSON"), "{body}");
    let (status, body) = send(state(&b, &connect), post("/groups/g/reset", "to=earliest")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    broker.stop().await;
}

/// Resetting the offsets of a group without members: to the latest offset, then to an offset;
/// a group with a live member is refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_groups_offsets_are_reset() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let mut broker = TestBroker::start().await.expect("broker");
    let b = broker.bootstrap();
    let connect = format!("http://{}", closed());
    let (status, _) = send(state(&b, &connect), post("/topics", "name=r&partitions=1")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &b);
    let producer: FutureProducer = config.create().expect("producer");
    for i in 0..5 {
        let v = format!("{i}");
        producer
            .send(
                FutureRecord::<(), _>::to("r").payload(&v),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }
    let mut cluster = broker::client::Cluster::connect(&b, Duration::from_secs(5))
        .await
        .expect("cluster");
    let committed = std::collections::BTreeMap::from([(("r".to_string(), 0), 1)]);
    broker::client::admin::commit_offsets(&mut cluster, "g", &committed)
        .await
        .expect("commit");

    let lag = |body: &str| {
        body.split("id=\"total-lag\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .map(str::to_string)
    };
    let (_, body) = send(state(&b, &connect), get("/groups/g")).await;
    assert_eq!(lag(&body).as_deref(), Some("4"), "{body}");
    let (status, body) = send(state(&b, &connect), post("/groups/g/reset", "to=latest")).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, body) = send(state(&b, &connect), get("/groups/g")).await;
    assert_eq!(lag(&body).as_deref(), Some("0"), "{body}");
    let (status, body) = send(
        state(&b, &connect),
        post("/groups/g/reset", "to=offset&value=2"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, body) = send(state(&b, &connect), get("/groups/g")).await;
    assert_eq!(lag(&body).as_deref(), Some("3"), "{body}");
    let (status, body) = send(
        state(&b, &connect),
        post("/groups/g/reset", "to=offset&value=x"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A live member: refused.
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "g")
        .create()
        .expect("consumer");
    consumer.subscribe(&["r"]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while consumer.assignment().expect("assignment").count() == 0 {
        assert!(std::time::Instant::now() < deadline, "no assignment");
        let _ = consumer.poll(Duration::from_millis(100));
    }
    let (status, body) = send(state(&b, &connect), post("/groups/g/reset", "to=earliest")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("active member"), "{body}");
    drop(consumer);
    broker.stop().await;
}

#[tokio::test]
async fn read_only_and_basic_auth_refuse_what_they_must() {
    let kafka = closed();
    let mut s = state(&kafka, "http://127.0.0.1:1");
    s.read_only = true;
    let (status, body) = send(s, post("/topics", "name=t&partitions=1")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let mut s = state(&kafka, "http://127.0.0.1:1");
    s.authorization = Some("Basic YWRtaW46c2VjcmV0".into()); // admin:secret
    let (status, _) = send(s, get("/healthz")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut s = state(&kafka, "http://127.0.0.1:1");
    s.authorization = Some("Basic YWRtaW46c2VjcmV0".into());
    let req = Request::get("/healthz")
        .header(header::AUTHORIZATION, "Basic YWRtaW46c2VjcmV0")
        .body(Body::empty())
        .expect("request");
    let (status, body) = send(s, req).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}
