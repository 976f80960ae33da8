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
