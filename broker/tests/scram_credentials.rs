//! SCRAM credentials managed over the Kafka protocol (KIP-554) and kept in
//! `__datasync_scram_credentials`: confluent-kafka's AdminClient alters, describes and deletes
//! them on the PLAINTEXT listener, and the SASL_PLAINTEXT listener beside it checks the very next
//! login against them; Kafka's error codes for every bad request; credentials survive `kill -9`
//! and win over the users file that bootstrapped them.

mod common;

use std::io::Write as _;
use std::net::TcpListener;

use common::{python_script, run_python, BrokerProcess};

/// A broker with a SASL_PLAINTEXT listener (users file: alice=alice-secret) and its address.
fn sasl_broker(dir: &std::path::Path) -> anyhow::Result<(BrokerProcess, String)> {
    let users = dir.join("users.txt");
    std::fs::File::create(&users)?.write_all(b"alice=alice-secret\n")?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let spec = format!("SASL_PLAINTEXT://127.0.0.1:{port}=127.0.0.1:{port}");
    let broker = BrokerProcess::start(
        &dir.join("data"),
        &[
            "--extra-listener",
            &spec,
            "--sasl-users-file",
            users.to_str().unwrap_or_default(),
        ],
    )?;
    Ok((broker, format!("127.0.0.1:{port}")))
}

fn scram_admin(args: &[&str], broker: &BrokerProcess) -> anyhow::Result<String> {
    let out = run_python(&python_script("scram_admin.py"), args);
    if out.is_err() {
        eprintln!("broker output:\n{}", broker.logs());
    }
    Ok(out?.trim().to_string())
}

#[test]
fn admin_client_alters_describes_and_deletes_credentials_and_logins_follow() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (broker, sasl) = sasl_broker(dir.path())?;
    let out = scram_admin(&["roundtrip", &broker.bootstrap(), &sasl], &broker)?;
    assert_eq!(out, "OK");
    Ok(())
}

#[test]
fn altered_credentials_survive_kill_9_and_win_over_the_users_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut broker, sasl) = sasl_broker(dir.path())?;
    let login = |broker: &BrokerProcess, password: &str| {
        scram_admin(
            &["login", &sasl, "SCRAM-SHA-512", "alice", password],
            broker,
        )
    };
    assert_eq!(login(&broker, "alice-secret")?, "LOGIN OK");
    let set = scram_admin(&["set", &broker.bootstrap(), "alice", "alice-new"], &broker)?;
    assert_eq!(set, "SET");
    assert_eq!(login(&broker, "alice-new")?, "LOGIN OK");
    broker.kill9();
    broker.restart()?;
    assert_eq!(login(&broker, "alice-new")?, "LOGIN OK");
    assert_eq!(login(&broker, "alice-secret")?, "LOGIN REFUSED");
    Ok(())
}
