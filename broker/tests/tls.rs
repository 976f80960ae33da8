//! SSL and SASL_SSL listeners with clients nobody here wrote: confluent-kafka, kafka-python and
//! kcat produce and consume over TLS with server authentication only, with a required client
//! certificate (whose subject names the principal), and over SASL_SSL with PLAIN and SCRAM; a
//! client trusting another CA and a client without a certificate on a `required` listener are
//! refused; malformed handshakes close their connection and nothing else; bad certificate files
//! stop the broker at startup with a message naming them. Certificates come from
//! `scripts/make-certs.sh`.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{python_script, run_python, unique_topic, workspace_root, BrokerProcess};

/// Runs `scripts/make-certs.sh` into `dir/certs`.
fn make_certs(dir: &Path) -> anyhow::Result<PathBuf> {
    let out = dir.join("certs");
    let status = Command::new(workspace_root().join("scripts/make-certs.sh"))
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "make-certs.sh failed");
    Ok(out)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// A broker with an SSL and a SASL_SSL listener (client auth as given), and their addresses.
fn tls_broker(
    dir: &Path,
    certs: &Path,
    client_auth: &str,
) -> anyhow::Result<(BrokerProcess, String, String)> {
    let users = dir.join("users.txt");
    std::fs::File::create(&users)?.write_all(b"alice=alice-secret\n")?;
    let (ssl, sasl_ssl, sasl) = (free_port()?, free_port()?, free_port()?);
    let spec = format!(
        "SSL://127.0.0.1:{ssl}=localhost:{ssl},SASL_SSL://127.0.0.1:{sasl_ssl}=localhost:{sasl_ssl},\
         SASL_PLAINTEXT://127.0.0.1:{sasl}=localhost:{sasl}"
    );
    let broker = BrokerProcess::start(
        &dir.join("data"),
        &[
            // Authentication is under test here, not ACLs (TLS listeners turn authorization on).
            "--allow-everyone-if-no-acl-found",
            "--extra-listener",
            &spec,
            "--sasl-users-file",
            path(&users),
            "--ssl-certificate-location",
            path(&certs.join("broker.pem")),
            "--ssl-key-location",
            path(&certs.join("broker.key")),
            "--ssl-client-auth",
            client_auth,
            "--ssl-truststore-location",
            path(&certs.join("ca.pem")),
        ],
    )?;
    Ok((
        broker,
        format!("localhost:{ssl}"),
        format!("localhost:{sasl_ssl}"),
    ))
}

fn python(broker: &BrokerProcess, args: &[&str]) -> anyhow::Result<String> {
    let out = run_python(&python_script("tls_clients.py"), args);
    if out.is_err() {
        eprintln!("broker output:\n{}", broker.logs());
    }
    out
}

#[test]
fn python_clients_over_ssl_and_sasl_ssl_and_a_wrong_ca_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = make_certs(dir.path())?;
    let (broker, ssl, sasl_ssl) = tls_broker(dir.path(), &certs, "none")?;
    let topic = unique_topic("ssl");
    let out = python(&broker, &["server-auth", &ssl, path(&certs), &topic])?;
    assert_eq!(out.trim(), "OK 2");
    let topic = unique_topic("sasl-ssl");
    let out = python(&broker, &["sasl-ssl", &sasl_ssl, path(&certs), &topic])?;
    assert_eq!(out.trim(), "OK 6");
    let logs = broker.logs();
    assert!(logs.contains("TLS handshake failed"), "{logs}");
    Ok(())
}

#[test]
fn a_required_client_certificate_names_the_principal() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = make_certs(dir.path())?;
    let (broker, ssl, _) = tls_broker(dir.path(), &certs, "required")?;
    let topic = unique_topic("mtls");
    let out = python(&broker, &["client-cert", &ssl, path(&certs), &topic])?;
    assert_eq!(out.trim(), "OK 2");
    let logs = broker.logs();
    assert!(
        logs.contains("principal=User:CN=writer,OU=datasync,O=example"),
        "the session's principal is the certificate's subject, RFC 2253: {logs}"
    );
    Ok(())
}

fn kcat(args: &[&str], input: Option<&str>) -> std::process::Output {
    let mut child = Command::new(common::kcat())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kcat runs");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).expect("write");
    }
    drop(stdin);
    child.wait_with_output().expect("kcat output")
}

/// kcat with `args` (broker and security settings) produces "one", "two" (acks=all) to a new
/// topic named after `label` and reads exactly them back from the beginning; the topic.
fn kcat_round_trip(args: &[&str], label: &str) -> anyhow::Result<String> {
    let topic = unique_topic(&format!("kcat-{label}"));
    let mut produce = args.to_vec();
    produce.extend(["-t", &topic, "-P", "-X", "acks=all"]);
    let out = kcat(&produce, Some("one\ntwo\n"));
    anyhow::ensure!(
        out.status.success(),
        "{label} produce: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut consume = args.to_vec();
    consume.extend(["-t", &topic, "-C", "-o", "beginning", "-e", "-q"]);
    let out = kcat(&consume, None);
    anyhow::ensure!(
        out.status.success(),
        "{label} consume: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        String::from_utf8_lossy(&out.stdout) == "one\ntwo\n",
        "{label} read {:?}, want \"one\\ntwo\\n\"",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(topic)
}

#[test]
fn kcat_over_ssl_with_a_client_certificate_and_over_sasl_ssl_with_scram() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = make_certs(dir.path())?;
    let (broker, ssl, sasl_ssl) = tls_broker(dir.path(), &certs, "requested")?;
    let ca = format!("ssl.ca.location={}", path(&certs.join("ca.pem")));
    let cert = format!(
        "ssl.certificate.location={}",
        path(&certs.join("client-writer.pem"))
    );
    let key = format!(
        "ssl.key.location={}",
        path(&certs.join("client-writer.key"))
    );
    let ssl_args = [
        "-b",
        ssl.as_str(),
        "-X",
        "security.protocol=SSL",
        "-X",
        &ca,
        "-X",
        &cert,
        "-X",
        &key,
    ];
    let sasl_args = [
        "-b",
        sasl_ssl.as_str(),
        "-X",
        "security.protocol=SASL_SSL",
        "-X",
        &ca,
        "-X",
        "sasl.mechanisms=SCRAM-SHA-512",
        "-X",
        "sasl.username=alice",
        "-X",
        "sasl.password=alice-secret",
    ];
    for (label, args) in [("ssl", &ssl_args[..]), ("sasl_ssl", &sasl_args[..])] {
        kcat_round_trip(args, label).map_err(|e| anyhow::anyhow!("{e}\n{}", broker.logs()))?;
    }
    Ok(())
}

/// Random bytes, a truncated ClientHello, an oversized record and plaintext Kafka on the TLS
/// port, 200 connections in all: each is closed with a warning and the broker serves on.
#[test]
fn malformed_tls_handshakes_leave_the_broker_serving() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = make_certs(dir.path())?;
    let (broker, ssl, _) = tls_broker(dir.path(), &certs, "none")?;
    // A TLS 1.2 ClientHello record header and the start of its handshake message.
    let hello_start: &[u8] = &[
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ];
    // A record claiming 65,535 bytes, beyond TLS's 16 KiB (+ overhead) limit.
    let oversized: &[u8] = &[0x16, 0x03, 0x03, 0xff, 0xff];
    // ApiVersions v0, as a plaintext Kafka client would send it.
    let plaintext_kafka: &[u8] = &[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..200 {
        let mut s = TcpStream::connect(&ssl)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let garbage: Vec<u8> = (0..(1 + next() % 600)).map(|_| next() as u8).collect();
        let _ = match round % 4 {
            0 => s.write_all(&garbage),
            1 => s.write_all(hello_start),
            2 => s
                .write_all(oversized)
                .and_then(|_| s.write_all(&vec![0x41; 20_000])),
            _ => s.write_all(plaintext_kafka),
        };
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    let ca = format!("ssl.ca.location={}", path(&certs.join("ca.pem")));
    let out = kcat(
        &["-b", &ssl, "-X", "security.protocol=SSL", "-X", &ca, "-L"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kcat(&["-b", &broker.bootstrap(), "-L"], None);
    assert!(out.status.success());
    let logs = broker.logs();
    assert!(logs.contains("TLS handshake failed"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
    Ok(())
}

/// Bad certificate settings stop the broker before it serves, naming the problem.
#[test]
fn bad_certificate_files_are_startup_errors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = make_certs(dir.path())?;
    // Port 0 everywhere: nothing here may fail for a port another test holds.
    let spec = "SSL://127.0.0.1:0=localhost:9093";
    // (certificate file, key file), more flags → what the error must name.
    type Case<'a> = (Option<(&'a str, &'a str)>, &'a [&'a str], &'a str);
    let cases: [Case; 5] = [
        (None, &[], "needs --ssl-certificate-location"),
        (Some(("broker.pem", "nope.key")), &[], "nope.key"),
        (
            Some(("broker.pem", "client-writer.key")),
            &[],
            "cannot be used together",
        ),
        (
            Some(("broker.key", "broker.key")),
            &[],
            "no usable PEM certificate",
        ),
        (
            Some(("broker.pem", "broker.key")),
            &["--ssl-client-auth", "required"],
            "needs --ssl-truststore-location",
        ),
    ];
    for (i, (files, more, want)) in cases.into_iter().enumerate() {
        let data = dir.path().join(format!("data-{i}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_broker"));
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir", path(&data)])
            .args(["--http-listen", "off", "--extra-listener", spec]);
        if let Some((cert, key)) = files {
            cmd.arg("--ssl-certificate-location")
                .arg(certs.join(cert))
                .arg("--ssl-key-location")
                .arg(certs.join(key));
        }
        cmd.args(more);
        let out = common::output_with_timeout(&mut cmd, None, Duration::from_secs(30))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {i} must not start");
        assert!(stderr.contains(want), "case {i}: want {want:?} in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    Ok(())
}

/// `broker topics` (the broker crate's own client) over SASL_SSL with SCRAM and PLAIN, and over
/// SSL with a client certificate, configured as Kafka's tools are: `--command-config FILE`.
#[test]
fn broker_cli_over_sasl_ssl_and_ssl_with_command_config() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = make_certs(dir.path())?;
    let (broker, ssl, sasl_ssl) = tls_broker(dir.path(), &certs, "requested")?;
    let ca = path(&certs.join("ca.pem")).to_string();
    let cli =
        |bootstrap: &str, config: &str, args: &[&str]| -> anyhow::Result<std::process::Output> {
            let file = dir
                .path()
                .join(format!("client-{}.properties", unique_topic("c")));
            std::fs::write(&file, config)?;
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_broker"));
            cmd.args(["topics"])
                .args(args)
                .args([
                    "--bootstrap-server",
                    bootstrap,
                    "--command-config",
                    path(&file),
                ])
                .args(["--command-timeout-ms", "10000"]);
            common::output_with_timeout(&mut cmd, None, Duration::from_secs(60))
        };
    let topic = unique_topic("cli-tls");
    for (i, mechanism) in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
        .iter()
        .enumerate()
    {
        let config = format!(
            "# as for kafka-topics.sh\nsecurity.protocol=SASL_SSL\nsasl.mechanism={mechanism}\n\
             sasl.username=alice\nsasl.password=alice-secret\nssl.ca.location={ca}\n"
        );
        let name = format!("{topic}-{i}");
        let out = cli(&sasl_ssl, &config, &["create", "--topic", &name])?;
        assert!(
            out.status.success(),
            "{mechanism}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            broker.logs()
        );
        let out = cli(&sasl_ssl, &config, &["list"])?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(listed.lines().any(|l| l == name), "{mechanism}: {listed}");
    }
    // SASL_PLAINTEXT: the third listener, its address from the broker's log.
    let config = "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n\
                  sasl.username=alice\nsasl.password=alice-secret\n";
    let sasl_plain = broker
        .logs()
        .lines()
        .find(|l| l.contains("protocol=SASL_PLAINTEXT") && l.contains("also listening on"))
        .and_then(|l| l.rsplit("also listening on ").next())
        .and_then(|a| a.split_whitespace().next())
        .map(str::to_string)
        .expect("the SASL_PLAINTEXT listener is logged");
    let out = cli(&sasl_plain, config, &["list"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&topic));
    // A wrong password is refused with a clear message.
    let config = format!(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\nsasl.username=alice\n\
         sasl.password=wrong\nssl.ca.location={ca}\n"
    );
    let out = cli(&sasl_ssl, &config, &["list"])?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SASL SCRAM-SHA-256 login"), "{stderr}");
    // SSL with a client certificate; and a client trusting another CA fails the handshake.
    let config = format!(
        "security.protocol=SSL\nssl.ca.location={ca}\nssl.certificate.location={}\n\
         ssl.key.location={}\n",
        path(&certs.join("client-writer.pem")),
        path(&certs.join("client-writer.key"))
    );
    let out = cli(&ssl, &config, &["list"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&topic));
    let config = format!(
        "security.protocol=SSL\nssl.ca.location={}\n",
        path(&certs.join("other-ca.pem"))
    );
    let out = cli(&ssl, &config, &["list"])?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TLS handshake failed"), "{stderr}");
    Ok(())
}

/// `--listen SASL_SSL://...`: the broker's only Kafka listener authenticates, as Kafka's
/// `listeners=SASL_SSL://:9093`; kcat produces and consumes over it as alice, and a PLAINTEXT
/// client gets nothing.
#[test]
fn the_main_listener_can_be_sasl_ssl() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = make_certs(dir.path())?;
    let users = dir.path().join("users.txt");
    std::fs::write(&users, "alice=alice-secret\n")?;
    let port = free_port()?;
    let listen = format!("SASL_SSL://127.0.0.1:{port}");
    let advertised = format!("localhost:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["--listen", &listen, "--advertised-listener", &advertised])
        .args(["--http-listen", "off", "--allow-everyone-if-no-acl-found"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--sasl-users-file")
        .arg(&users)
        .arg("--ssl-certificate-location")
        .arg(certs.join("broker.pem"))
        .arg("--ssl-key-location")
        .arg(certs.join("broker.key"))
        .env_remove("BROKER_LISTEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let result = (|| -> anyhow::Result<()> {
        let ca = format!("ssl.ca.location={}", path(&certs.join("ca.pem")));
        let args = [
            "-b",
            advertised.as_str(),
            "-X",
            "security.protocol=SASL_SSL",
            "-X",
            &ca,
            "-X",
            "sasl.mechanisms=SCRAM-SHA-256",
            "-X",
            "sasl.username=alice",
            "-X",
            "sasl.password=alice-secret",
        ];
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut list = args.to_vec();
        list.extend(["-L", "-m", "5"]);
        while !kcat(&list, None).status.success() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "no SASL_SSL metadata from {listen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let topic = kcat_round_trip(&args, "main-sasl-ssl")?;
        let plain = kcat(&["-b", &advertised, "-L", "-m", "5"], None);
        let text = String::from_utf8_lossy(&plain.stdout);
        assert!(
            !text.contains(&topic),
            "a PLAINTEXT client read metadata: {text}"
        );
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}
