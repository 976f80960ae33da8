//! SASL_PLAINTEXT listeners with clients nobody here wrote: confluent-kafka (librdkafka),
//! kafka-python and kcat authenticate with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 as a user of
//! `--sasl-users-file`; a wrong password, an unknown user and a client without SASL are refused
//! and see no data; the PLAINTEXT listener beside it serves as before; garbage in the SASL
//! exchange closes that connection and nothing else.

mod common;

use std::io::Write as _;
use std::net::TcpListener;
use std::process::Command;

use common::{python_script, run_python, unique_topic, BrokerProcess};

/// A broker with a SASL_PLAINTEXT listener on a free port, and that listener's address.
fn sasl_broker(dir: &std::path::Path) -> anyhow::Result<(BrokerProcess, String)> {
    let users = dir.join("users.txt");
    std::fs::File::create(&users)?.write_all(b"# test users\nalice=alice-secret\n")?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let spec = format!("SASL_PLAINTEXT://127.0.0.1:{port}=127.0.0.1:{port}");
    let data = dir.join("data");
    let broker = BrokerProcess::start(
        &data,
        &[
            "--extra-listener",
            &spec,
            "--sasl-users-file",
            users.to_str().unwrap_or_default(),
            // These tests are about authentication; with a SASL listener the authorizer denies
            // what no ACL allows (see tests/acls.rs), so relax it as Kafka's setting does.
            "--allow-everyone-if-no-acl-found",
        ],
    )?;
    Ok((broker, format!("127.0.0.1:{port}")))
}

#[test]
fn python_clients_authenticate_with_plain_and_scram_and_the_rest_are_refused() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let (broker, sasl) = sasl_broker(dir.path())?;
    let out = run_python(
        &python_script("sasl_clients.py"),
        &[&sasl, &unique_topic("sasl")],
    );
    if out.is_err() {
        eprintln!("broker output:\n{}", broker.logs());
    }
    assert_eq!(out?.trim(), "OK 6");
    let logs = broker.logs();
    assert!(
        logs.contains("SASL authentication failed"),
        "failed logins are logged: {logs}"
    );
    Ok(())
}

fn kcat(args: &[&str], input: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new("kcat");
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("kcat runs");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("kcat output")
}

#[test]
fn kcat_over_scram_and_plaintext_beside_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (broker, sasl) = sasl_broker(dir.path())?;
    let topic = unique_topic("kcat-sasl");
    let auth = |password: &'static str| {
        vec![
            "-X".to_string(),
            "security.protocol=SASL_PLAINTEXT".to_string(),
            "-X".to_string(),
            "sasl.mechanisms=SCRAM-SHA-512".to_string(),
            "-X".to_string(),
            "sasl.username=alice".to_string(),
            "-X".to_string(),
            format!("sasl.password={password}"),
        ]
    };
    let with = |mut base: Vec<String>, more: &[&str]| {
        base.extend(more.iter().map(|s| s.to_string()));
        base
    };
    let args = with(
        auth("alice-secret"),
        &["-b", &sasl, "-P", "-t", &topic, "-m", "10"],
    );
    let out = kcat(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        Some("one\ntwo\n"),
    );
    assert!(
        out.status.success(),
        "kcat -P: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = with(
        auth("alice-secret"),
        &[
            "-b",
            &sasl,
            "-C",
            "-t",
            &topic,
            "-o",
            "beginning",
            "-e",
            "-m",
            "10",
        ],
    );
    let out = kcat(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert!(
        out.status.success(),
        "kcat -C: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
    // A wrong password: no metadata, and kcat says why.
    let args = with(auth("nope"), &["-b", &sasl, "-L", "-m", "5"]);
    let out = kcat(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Authentication failed") || err.contains("authentication"),
        "{err}"
    );
    // The PLAINTEXT listener is unchanged, and sees what alice wrote.
    let out = kcat(
        &[
            "-b",
            &broker.bootstrap(),
            "-C",
            "-t",
            &topic,
            "-o",
            "beginning",
            "-e",
            "-m",
            "10",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
    Ok(())
}

/// Random bytes, truncated and oversized SASL frames on the SASL listener close that connection;
/// the broker keeps serving everyone else.
#[test]
fn garbage_in_the_sasl_exchange_never_crashes_the_broker() -> anyhow::Result<()> {
    use std::io::Read as _;
    use std::net::TcpStream;
    use std::time::Duration;

    let dir = tempfile::tempdir()?;
    let (broker, sasl) = sasl_broker(dir.path())?;
    // SaslHandshake v1 (key 17) for PLAIN, then SaslAuthenticate v2 (key 36) frames with bad
    // bodies, and frames that are not requests at all.
    let handshake = {
        let mut f = vec![0, 17, 0, 1, 0, 0, 0, 1, 0, 0];
        f.extend([0, 5]);
        f.extend(b"PLAIN");
        f
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..200 {
        let mut s = TcpStream::connect(&sasl)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut send = |body: &[u8]| {
            let mut framed = (body.len() as u32).to_be_bytes().to_vec();
            framed.extend(body);
            s.write_all(&framed)
        };
        let garbage: Vec<u8> = (0..(next() % 300)).map(|_| next() as u8).collect();
        let _ = match round % 5 {
            0 => send(&garbage),
            1 => send(&handshake).and_then(|_| {
                let mut f = vec![0, 36, 0, 2, 0, 0, 0, 2, 0, 0, 0];
                f.extend(&garbage);
                send(&f)
            }),
            2 => send(&handshake[..garbage.len().min(handshake.len())]),
            // SCRAM-SHA-256, then a 64 KiB random client-first token.
            3 => {
                let mut h = vec![0, 17, 0, 1, 0, 0, 0, 1, 0, 0, 0, 13];
                h.extend(b"SCRAM-SHA-256");
                send(&h).and_then(|_| {
                    let mut f = vec![0, 36, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0];
                    f.extend((0..65536).map(|_| next() as u8));
                    send(&f)
                })
            }
            _ => s.write_all(&u32::MAX.to_be_bytes()),
        };
        // Done sending: the broker sees the end of the stream as well as the garbage.
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    // Still serving, on both listeners.
    for addr in [sasl.as_str(), &broker.bootstrap()] {
        let out = kcat(
            &[
                "-b",
                addr,
                "-L",
                "-m",
                "5",
                "-X",
                "api.version.request=true",
            ],
            None,
        );
        if addr == sasl {
            assert!(!out.status.success(), "no SASL, no metadata");
        } else {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}
