//! ACLs over a SASL_PLAINTEXT listener with clients nobody here wrote: confluent-kafka's
//! AdminClient creates, lists and deletes them; confluent-kafka and kafka-python producers and
//! consumers are refused or served as the ACLs say (no ACLs, a PREFIXED ALLOW, a group ACL,
//! DENY beating ALLOW, a transactional id); the ACLs survive SIGKILL; and the `broker acls`
//! CLI adds, lists and removes them through the Kafka protocol.

mod common;

use std::io::Write as _;
use std::net::TcpListener;

use common::{python_script, run_python, unique_topic, BrokerProcess};

#[test]
fn acls_are_enforced_for_python_clients_and_survive_kill_9() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let users = dir.path().join("users.txt");
    std::fs::File::create(&users)?
        .write_all(b"admin=admin-secret\nalice=alice-secret\nbob=bob-secret\n")?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let spec = format!("SASL_PLAINTEXT://127.0.0.1:{port}=127.0.0.1:{port}");
    let mut broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "--extra-listener",
            &spec,
            "--sasl-users-file",
            users.to_str().unwrap_or_default(),
            "--super-users",
            "User:admin",
        ],
    )?;
    let sasl = format!("127.0.0.1:{port}");
    let prefix = unique_topic("acl");
    let out = run_python(&python_script("acl_clients.py"), &[&sasl, &prefix, "setup"]);
    if out.is_err() {
        eprintln!("broker output:\n{}", broker.logs());
    }
    let out = out?;
    for step in [
        "OK no-acls",
        "OK prefix-and-group",
        "OK deny-wins",
        "OK transactional-id",
        "OK admin-client",
        "OK transaction-allowed",
    ] {
        assert!(out.contains(step), "{step} missing from {out}");
    }

    broker.kill9();
    broker.restart()?;
    let out = run_python(
        &python_script("acl_clients.py"),
        &[&sasl, &prefix, "after-restart"],
    );
    if out.is_err() {
        eprintln!("broker output after the restart:\n{}", broker.logs());
    }
    assert_eq!(out?.trim(), "OK after-restart");
    Ok(())
}

/// `broker acls <args...> --bootstrap-server <broker>`: (exit code, stdout, stderr).
fn acls_cli(broker: &BrokerProcess, args: &[&str]) -> (Option<i32>, String, String) {
    let out = common::output_with_timeout(
        std::process::Command::new(env!("CARGO_BIN_EXE_broker"))
            .arg("acls")
            .args(args)
            .arg("--bootstrap-server")
            .arg(broker.bootstrap())
            .env_remove("KAFKA_BOOTSTRAP_SERVERS"),
        None,
        std::time::Duration::from_secs(60),
    )
    .expect("broker acls runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn acls_ok(broker: &BrokerProcess, args: &[&str]) -> String {
    let (code, out, err) = acls_cli(broker, args);
    assert_eq!(
        code,
        Some(0),
        "broker acls {args:?}: {err}\n{}",
        broker.logs()
    );
    out
}

#[test]
fn broker_acls_cli_adds_lists_and_removes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The CLI connects over PLAINTEXT as User:ANONYMOUS, made a super user here.
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["--super-users", "User:ANONYMOUS"],
    )?;
    let out = acls_ok(
        &broker,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--operation",
            "write",
            "--topic",
            "orders-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    assert!(
        out.contains("operation=READ, permissionType=ALLOW"),
        "{out}"
    );
    acls_ok(
        &broker,
        &[
            "--add",
            "--deny-principal",
            "User:bob",
            "--operation",
            "All",
            "--group",
            "g1",
        ],
    );
    acls_ok(
        &broker,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Describe",
            "--cluster",
        ],
    );

    let all = acls_ok(&broker, &["--list"]);
    assert_eq!(all.matches("(principal=").count(), 4, "{all}");
    assert!(
        all.contains(
            "Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders-, patternType=PREFIXED)`:"
        ),
        "{all}"
    );
    assert!(
        all.contains("(principal=User:bob, host=*, operation=ALL, permissionType=DENY)"),
        "{all}"
    );
    // MATCH: the ACLs that apply to topic orders-eu.
    let matching = acls_ok(
        &broker,
        &[
            "--list",
            "--topic",
            "orders-eu",
            "--resource-pattern-type",
            "match",
        ],
    );
    assert_eq!(
        matching.matches("(principal=User:alice").count(),
        2,
        "{matching}"
    );
    let alices = acls_ok(&broker, &["--list", "--principal", "User:alice"]);
    assert_eq!(alices.matches("(principal=").count(), 3, "{alices}");

    let removed = acls_ok(
        &broker,
        &["--remove", "--deny-principal", "User:bob", "--group", "g1"],
    );
    assert!(removed.starts_with("Removed 1 ACLs:"), "{removed}");
    let all = acls_ok(&broker, &["--list"]);
    assert_eq!(all.matches("(principal=").count(), 3, "{all}");
    assert!(!all.contains("User:bob"), "{all}");

    // Bad flags fail before connecting, with exit code 1.
    let (code, _, err) = acls_cli(
        &broker,
        &[
            "--add",
            "--allow-principal",
            "User:a",
            "--operation",
            "Fly",
            "--topic",
            "t",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("Fly"), "{err}");
    let (code, _, err) = acls_cli(
        &broker,
        &[
            "--add",
            "--allow-principal",
            "alice",
            "--operation",
            "Read",
            "--topic",
            "t",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("principal"), "{err}");
    Ok(())
}

#[test]
fn a_plaintext_broker_denies_anonymous_once_an_acl_exists() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(&dir.path().join("data"), &[])?;
    // No ACLs and no authenticating listener: everything is allowed, as before ACLs existed.
    acls_ok(
        &broker,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "t",
        ],
    );
    // Now the authorizer is on and User:ANONYMOUS has no ACL: listing needs DESCRIBE on the
    // cluster.
    let (code, _, err) = acls_cli(&broker, &["--list"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("CLUSTER_AUTHORIZATION_FAILED"), "{err}");
    Ok(())
}

#[tokio::test]
async fn clients_can_neither_produce_to_nor_delete_the_acl_topic() -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::error::RDKafkaErrorCode;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::ClientConfig;
    use std::time::Duration;

    const ACLS: &str = "__datasync_acls";
    let dir = tempfile::tempdir()?;
    // No ACLs and PLAINTEXT only: the authorizer allows everything, the protections remain.
    let broker = BrokerProcess::start(&dir.path().join("data"), &[])?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let deleted = admin.delete_topics(&[ACLS], &opts).await?;
    assert_eq!(
        deleted,
        vec![Err((ACLS.to_string(), RDKafkaErrorCode::InvalidTopic))]
    );
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.timeout.ms", "10000")
        .create()?;
    let sent = producer
        .send(
            FutureRecord::to(ACLS).key("k").payload("forged ACL"),
            Duration::from_secs(10),
        )
        .await;
    let (err, _) = sent.expect_err("producing to the ACL topic must fail");
    assert_eq!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::InvalidTopic),
        "{err}"
    );
    Ok(())
}

#[test]
fn legacy_request_versions_are_authorized_too() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = BrokerProcess::start(&dir.path().join("data"), &[])?;
    let topic = unique_topic("acl-legacy");
    let created = common::run_command(
        std::process::Command::new(env!("CARGO_BIN_EXE_broker"))
            .args(["topics", "create", "--topic", &topic, "--bootstrap-server"])
            .arg(broker.bootstrap()),
        None,
        std::time::Duration::from_secs(60),
    );
    assert!(created.is_ok(), "{created:?}");
    // User:ANONYMOUS may describe the topic, nothing more; the ACL turns the authorizer on.
    acls_ok(
        &broker,
        &[
            "--add",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "Describe",
            "--topic",
            &topic,
        ],
    );
    let out = run_python(
        &python_script("acl_legacy.py"),
        &[&broker.bootstrap(), &topic],
    );
    if out.is_err() {
        eprintln!("broker output:\n{}", broker.logs());
    }
    assert_eq!(out?.trim(), "OK");
    Ok(())
}
