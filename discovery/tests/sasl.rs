//! The registry's clients through `kafka-client-config`'s flags against a broker whose listener
//! requires SASL: with SCRAM-SHA-512 and the right password a heartbeat is produced and read
//! back; with a wrong one the start-up check fails at once with an authentication error
//! instead of librdkafka retrying forever.

use std::time::{Duration, Instant};

use clap::Parser;
use discovery::{Heartbeat, KafkaConnection, Registration, Registry};
use kafka_client_config::{KafkaSecurityArgs, SecurityConfigError};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    kafka: KafkaSecurityArgs,
}

fn connection(bootstrap: &str, password: &str) -> anyhow::Result<KafkaConnection> {
    let cli = Cli::try_parse_from([
        "x",
        "--kafka-security-protocol",
        "SASL_PLAINTEXT",
        "--kafka-sasl-mechanism",
        "SCRAM-SHA-512",
        "--kafka-sasl-username",
        "alice",
        "--kafka-sasl-password",
        password,
    ])?;
    Ok(cli.kafka.connection(bootstrap)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_512_produces_and_consumes_and_a_wrong_password_fails_fast() -> anyhow::Result<()>
{
    // alice's password: alice-secret
    let broker = test_support::TestBroker::start_sasl("alice=alice-secret\n").await?;
    let bootstrap = broker.sasl_bootstrap();

    let good = connection(&bootstrap, "alice-secret")?;
    good.check(Duration::from_secs(20)).await?;
    let topic = format!("registry-{}", uuid::Uuid::new_v4().simple());
    let _heartbeat = Heartbeat::start(
        &good,
        &topic,
        "sasl-instance",
        Registration {
            service: "svc".into(),
            url: "http://svc".into(),
            heartbeat_ms: 200,
        },
    )?;
    let registry = Registry::start(&good, &topic)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while registry.live("svc").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the heartbeat was not read back over SCRAM-SHA-512"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(registry.live("svc")[0].url, "http://svc");

    let bad = connection(&bootstrap, "wrong")?;
    let started = Instant::now();
    let err = bad
        .check(Duration::from_secs(20))
        .await
        .expect_err("a wrong password is refused");
    assert!(
        matches!(err, SecurityConfigError::Authentication { .. }),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains("authenticating") && text.contains(&bootstrap),
        "{text}"
    );

    // Without SASL settings the SASL listener does not serve the client either.
    let plain: KafkaConnection = bootstrap.as_str().into();
    assert!(plain.check(Duration::from_secs(3)).await.is_err());
    Ok(())
}
