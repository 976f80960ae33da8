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

fn users_cli(
    broker: &BrokerProcess,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> anyhow::Result<String> {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_broker"));
    cmd.args(["users", "--bootstrap-server", &broker.bootstrap()])
        .args(args)
        .env_remove("BROKER_USER_PASSWORD");
    common::run_command(&mut cmd, stdin, std::time::Duration::from_secs(60))
}

/// `broker users` sets (password from stdin, then from a file), lists, describes and deletes;
/// the SASL listener follows every step.
#[test]
fn broker_users_cli_round_trip() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (broker, sasl) = sasl_broker(dir.path())?;
    let login = |mechanism: &str, user: &str, password: &str| {
        scram_admin(&["login", &sasl, mechanism, user, password], &broker)
    };
    let out = users_cli(
        &broker,
        &[
            "set",
            "carol",
            "--mechanism",
            "SCRAM-SHA-512",
            "--iterations",
            "8192",
        ],
        Some(b"carol-1\n"),
    )?;
    assert_eq!(out.trim(), "Set SCRAM-SHA-512 credential of user carol");
    assert_eq!(login("SCRAM-SHA-512", "carol", "carol-1")?, "LOGIN OK");
    let file = dir.path().join("pw");
    std::fs::write(&file, "carol-2\n")?;
    users_cli(
        &broker,
        &[
            "set",
            "carol",
            "--mechanism",
            "scram-sha-256",
            "--password-file",
            file.to_str().unwrap_or_default(),
        ],
        None,
    )?;
    assert_eq!(login("SCRAM-SHA-256", "carol", "carol-2")?, "LOGIN OK");
    let list = users_cli(&broker, &["list"], None)?;
    assert_eq!(
        list,
        "alice SCRAM-SHA-256(iterations=4096) SCRAM-SHA-512(iterations=4096)\n\
         carol SCRAM-SHA-256(iterations=4096) SCRAM-SHA-512(iterations=8192)\n"
    );
    users_cli(
        &broker,
        &["delete", "carol", "--mechanism", "SCRAM-SHA-512"],
        None,
    )?;
    assert_eq!(
        users_cli(&broker, &["describe", "carol"], None)?,
        "carol SCRAM-SHA-256(iterations=4096)\n"
    );
    assert_eq!(login("SCRAM-SHA-512", "carol", "carol-1")?, "LOGIN REFUSED");
    // Kafka's errors reach the user.
    let err = users_cli(&broker, &["describe", "nobody"], None).unwrap_err();
    assert!(format!("{err:#}").contains("RESOURCE_NOT_FOUND"), "{err:#}");
    let err = users_cli(
        &broker,
        &["delete", "carol", "--mechanism", "SCRAM-SHA-512"],
        None,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("RESOURCE_NOT_FOUND"), "{err:#}");
    let err = users_cli(
        &broker,
        &["set", "carol", "--mechanism", "SCRAM-SHA-256"],
        Some(b"\n"),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("password is empty"), "{err:#}");
    Ok(())
}

/// AlterUserScramCredentials frames cut short or filled with random bytes close that connection
/// only; the broker keeps answering.
#[test]
fn malformed_alter_requests_never_crash_the_broker() -> anyhow::Result<()> {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    use std::time::Duration;

    let dir = tempfile::tempdir()?;
    let (broker, _sasl) = sasl_broker(dir.path())?;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..100 {
        let mut s = TcpStream::connect(broker.bootstrap())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        // AlterUserScramCredentials v0 (key 51, flexible header v2) or Describe (key 50).
        let key: u8 = if round % 2 == 0 { 51 } else { 50 };
        let mut body = vec![0, key, 0, 0, 0, 0, 0, 7, 0, 0, 0];
        body.extend((0..(next() % 200)).map(|_| next() as u8));
        let mut framed = (body.len() as u32).to_be_bytes().to_vec();
        framed.extend(&body);
        s.write_all(&framed)?;
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    let out = scram_admin(&["set", &broker.bootstrap(), "dave", "dave-1"], &broker)?;
    assert_eq!(out, "SET");
    Ok(())
}
