//! The REST API secured as Kafka Connect secures it: HTTPS with a certificate of a test CA and
//! HTTP basic authentication against a `PropertyFileLoginModule` users file. Requests without
//! credentials, with a wrong password or a malformed `Authorization` header get a 401 with
//! `WWW-Authenticate` and Kafka Connect's JSON error; the right credentials get 200/201 (from
//! reqwest, and from curl, which offers HTTP/2 first); plain
//! HTTP on the TLS port is refused without disturbing the worker; and in a group of two such
//! workers a write sent to the follower reaches the leader (forwarded over HTTPS, to the
//! advertised `https://` URL, with the caller's credentials).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use test_support::{Certs, TestBroker};

fn secure_config(bootstrap: &str, dir: &Path, certs: &Certs) -> connect_worker::Config {
    let users = dir.join("users.properties");
    std::fs::write(
        &users,
        "# Kafka Connect basic auth\nadmin: admin-secret\nops=ops-secret\n",
    )
    .expect("users file");
    let mut c = connect_worker::Config::new(bootstrap);
    c.rest_ssl_certificate_location = Some(certs.server_cert.clone());
    c.rest_ssl_key_location = Some(certs.server_key.clone());
    c.rest_ssl_ca_location = Some(certs.ca.clone());
    c.rest_basic_auth_users_file = Some(users);
    c.allowed_paths = vec![dir.to_path_buf()];
    c
}

struct SecureWorker {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), connect_worker::WorkerError>>,
}

impl SecureWorker {
    async fn start(
        config: connect_worker::Config,
        client: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        common::init_tracing();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("https://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(connect_worker::run(config, listener, async {
            let _ = stopped.await;
        }));
        let deadline = Instant::now() + Duration::from_secs(30);
        // Any HTTPS answer (a 401 too) means it is serving.
        while client.get(format!("{base}/")).send().await.is_err() {
            anyhow::ensure!(!task.is_finished(), "worker stopped during start-up");
            anyhow::ensure!(Instant::now() < deadline, "worker did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(SecureWorker {
            base,
            stop: Some(stop),
            task,
        })
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.task.await;
    }
}

fn https_client(ca: &Path) -> anyhow::Result<reqwest::Client> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca)?)?;
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(30))
        .build()?)
}

async fn answer(req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Option<String>, Value)> {
    let res = req.send().await?;
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = res.json().await.unwrap_or(Value::Null);
    Ok((status, challenge, body))
}

fn source_connector(name: &str, dir: &Path) -> Value {
    let file = dir.join(format!("{name}.txt"));
    std::fs::write(&file, "").expect("input file");
    json!({
        "name": name,
        "config": {
            "connector.class": "FileStreamSource",
            "file": file,
            "topic": format!("{name}-topic"),
            "tasks.max": "1",
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_basic_auth_refuses_bad_credentials_and_plain_http() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let certs = Certs::make(dir.path())?;
    let client = https_client(&certs.ca)?;
    let worker = SecureWorker::start(
        secure_config(&broker.bootstrap(), dir.path(), &certs),
        &client,
    )
    .await?;
    let url = |p: &str| format!("{}{p}", worker.base);

    // No credentials, a wrong password, an unknown user, malformed headers: 401, Kafka's shape.
    let unauthorized = [
        client.get(url("/connectors")),
        client
            .get(url("/connectors"))
            .basic_auth("admin", Some("wrong")),
        client
            .get(url("/connectors"))
            .basic_auth("mallory", Some("admin-secret")),
        client
            .get(url("/connectors"))
            .header("authorization", "Basic"),
        client
            .get(url("/connectors"))
            .header("authorization", "Basic %%%not-base64"),
        client.get(url("/connectors")).header(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("no-colon")
            ),
        ),
        client
            .get(url("/connectors"))
            .header("authorization", "Bearer admin-secret"),
        client.get(url("/no-such-path")),
        client
            .post(url("/connectors"))
            .json(&source_connector("refused", dir.path())),
    ];
    for req in unauthorized {
        let (status, challenge, body) = answer(req).await?;
        assert_eq!(status, 401, "{body}");
        assert_eq!(challenge.as_deref(), Some("Basic realm=\"connect\""));
        assert_eq!(body["error_code"], 401, "{body}");
        assert!(body["message"].is_string(), "{body}");
    }

    // The right credentials: 200 and 201, either user of the file.
    let (status, _, body) = answer(
        client
            .get(url("/"))
            .basic_auth("admin", Some("admin-secret")),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = answer(
        client
            .post(url("/connectors"))
            .basic_auth("ops", Some("ops-secret"))
            .json(&source_connector("allowed", dir.path())),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = answer(
        client
            .get(url("/connectors"))
            .basic_auth("admin", Some("admin-secret")),
    )
    .await?;
    assert_eq!((status, body), (200, json!(["allowed"])));

    // curl, which offers HTTP/2 first over TLS (as browsers do), gets the same answer.
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&certs.ca)
        .args(["-u", "admin:admin-secret", &url("/connectors")])
        .output()
        .await?;
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), r#"["allowed"]"#);

    // Plain HTTP on the TLS port: no answer, and the worker serves HTTPS as before.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let http_url = worker.base.replacen("https://", "http://", 1);
    assert!(plain.get(format!("{http_url}/")).send().await.is_err());
    // A client that does not trust the test CA cannot connect either.
    let untrusting = reqwest::Client::builder().use_rustls_tls().build()?;
    assert!(untrusting.get(url("/")).send().await.is_err());
    let (status, _, _) = answer(
        client
            .get(url("/"))
            .basic_auth("admin", Some("admin-secret")),
    )
    .await?;
    assert_eq!(status, 200);

    worker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_refuse_clients_without_one() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let certs = Certs::make(dir.path())?;
    let mut config = secure_config(&broker.bootstrap(), dir.path(), &certs);
    config.rest_ssl_client_auth = connect_worker::rest::tls::ClientAuth::Required;
    // A client certificate of the test CA.
    let (cert, key) = certs.client("writer");
    let mut pem = std::fs::read(cert)?;
    pem.extend(std::fs::read(key)?);
    let with_cert = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&certs.ca)?)?)
        .identity(reqwest::Identity::from_pem(&pem)?)
        .build()?;
    let worker = SecureWorker::start(config, &with_cert).await?;
    let (status, _, _) = answer(
        with_cert
            .get(format!("{}/", worker.base))
            .basic_auth("admin", Some("admin-secret")),
    )
    .await?;
    assert_eq!(status, 200);
    let without = https_client(&certs.ca)?;
    assert!(without
        .get(format!("{}/", worker.base))
        .basic_auth("admin", Some("admin-secret"))
        .send()
        .await
        .is_err());
    worker.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_security_settings_stop_the_worker_with_a_clear_error() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let run = |config: connect_worker::Config| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let result = tokio::time::timeout(
            Duration::from_secs(30),
            connect_worker::run(config, listener, std::future::pending()),
        )
        .await?;
        anyhow::Ok(result.expect_err("the worker refuses to start").to_string())
    };
    let mut c = connect_worker::Config::new(&broker.bootstrap());
    c.rest_basic_auth_users_file = Some(dir.path().join("missing.properties"));
    assert!(run(c).await?.contains("missing.properties"));
    let mut c = connect_worker::Config::new(&broker.bootstrap());
    c.rest_ssl_certificate_location = Some(dir.path().join("cert.pem"));
    assert!(run(c).await?.contains("go together"));
    let mut c = connect_worker::Config::new(&broker.bootstrap());
    std::fs::write(dir.path().join("empty.pem"), "")?;
    c.rest_ssl_certificate_location = Some(dir.path().join("empty.pem"));
    c.rest_ssl_key_location = Some(dir.path().join("empty.pem"));
    assert!(run(c).await?.contains("empty.pem"));
    Ok(())
}

/// Waits until the group has `n` members in a stable generation (each worker then knows the
/// leader).
async fn wait_group(bootstrap: &str, group: &str, n: usize) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stable = consumer
            .fetch_group_list(Some(group), Duration::from_secs(5))
            .ok()
            .and_then(|l| {
                l.groups()
                    .iter()
                    .find(|g| g.name() == group)
                    .map(|g| g.state() == "Stable" && g.members().len() == n)
            })
            .unwrap_or(false);
        if stable {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not reach {n} members"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_writes_to_the_leader_over_https_with_the_callers_credentials(
) -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let dir = tempfile::tempdir()?;
    let certs = Certs::make(dir.path())?;
    let client = https_client(&certs.ca)?;
    let group = format!("secure-{}", uuid::Uuid::new_v4().simple());
    let config = || {
        let mut c = secure_config(&broker.bootstrap(), dir.path(), &certs);
        c.group_id = group.clone();
        c.session_timeout_ms = 3_000;
        c.heartbeat_interval_ms = 300;
        c.rebalance_timeout_ms = 10_000;
        c.scheduled_rebalance_max_delay_ms = 0;
        c
    };
    let a = SecureWorker::start(config(), &client).await?;
    let b = SecureWorker::start(config(), &client).await?;
    wait_group(&broker.bootstrap(), &group, 2).await;

    // One of the two is a follower: its write only succeeds if forwarding to the leader's
    // advertised https:// URL works and the leader accepts the caller's credentials.
    for (i, w) in [&a, &b].into_iter().enumerate() {
        let name = format!("via-worker-{i}");
        let (status, _, body) = answer(
            client
                .post(format!("{}/connectors", w.base))
                .basic_auth("admin", Some("admin-secret"))
                .json(&source_connector(&name, dir.path())),
        )
        .await?;
        assert_eq!(status, 201, "worker {i}: {body}");
        // Unauthenticated writes are refused by whichever worker gets them.
        let (status, _, _) = answer(
            client
                .delete(format!("{}/connectors/{name}", w.base))
                .basic_auth("admin", Some("nope")),
        )
        .await?;
        assert_eq!(status, 401);
    }
    for w in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, _, body) = answer(
                client
                    .get(format!("{}/connectors", w.base))
                    .basic_auth("admin", Some("admin-secret")),
            )
            .await?;
            assert_eq!(status, 200);
            let mut names: Vec<String> = serde_json::from_value(body)?;
            names.sort();
            if names == ["via-worker-0", "via-worker-1"] {
                break;
            }
            assert!(Instant::now() < deadline, "{} sees {names:?}", w.base);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    a.stop().await;
    b.stop().await;
    Ok(())
}
