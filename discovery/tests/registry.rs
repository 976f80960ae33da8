//! The registry against the real broker: instances appear, a tombstone removes one at once, and
//! one that stops heartbeating (a crash) is dropped after about three intervals.

use std::time::{Duration, Instant};

use discovery::{Heartbeat, Registration, Registry};
use test_support::TestBroker;

async fn wait_for(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reg(url: &str) -> Registration {
    Registration {
        service: "svc".into(),
        url: url.into(),
        heartbeat_ms: 200,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstone_removes_at_once_and_silence_removes_after_three_intervals() -> anyhow::Result<()>
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let broker = TestBroker::start().await?;
    let topic = format!("registry-{}", uuid::Uuid::new_v4().simple());
    let a = Heartbeat::start(&broker.bootstrap().into(), &topic, "a", reg("http://a"))?;
    let b = Heartbeat::start(&broker.bootstrap().into(), &topic, "b", reg("http://b"))?;
    let other = Heartbeat::start(
        &broker.bootstrap().into(),
        &topic,
        "c",
        Registration {
            service: "other".into(),
            ..reg("http://c")
        },
    )?;
    let registry = Registry::start(&broker.bootstrap().into(), &topic)?;
    wait_for("a and b", Duration::from_secs(15), || {
        registry.live("svc").len() == 2
    })
    .await;
    let live = registry.live("svc");
    assert_eq!(live[0].url, "http://a");
    assert_eq!(live[1].url, "http://b");
    assert_eq!(registry.live("other").len(), 1);

    // A late reader sees the same, reading from the beginning.
    let late = Registry::start(&broker.bootstrap().into(), &topic)?;
    wait_for("late reader", Duration::from_secs(15), || {
        late.live("svc").len() == 2
    })
    .await;

    a.deregister(Duration::from_secs(5)).await;
    wait_for("tombstone", Duration::from_millis(1000), || {
        registry.live("svc").len() == 1
    })
    .await;

    let killed_at = Instant::now();
    drop(b);
    wait_for("dead b", Duration::from_secs(5), || {
        registry.live("svc").is_empty()
    })
    .await;
    // Not before ~3 heartbeats of silence (minus the age of its last heartbeat).
    assert!(
        killed_at.elapsed() >= Duration::from_millis(350),
        "{:?}",
        killed_at.elapsed()
    );
    drop(other);
    Ok(())
}

/// The registry topic is compacted (one record per instance) and deleted by time (so a killed
/// instance's last heartbeat does not stay forever), with the cluster's replication factor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_topic_compacts_and_expires() -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::ClientConfig;
    let broker = TestBroker::start().await?;
    let topic = format!("registry-{}", uuid::Uuid::new_v4().simple());
    discovery::ensure_topic(&broker.bootstrap().into(), &topic).await?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()?;
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(&topic)], &AdminOptions::new())
        .await?;
    let resource = described
        .into_iter()
        .next()
        .expect("one resource")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let value = |name: &str| {
        resource
            .get(name)
            .and_then(|e| e.value.clone())
            .unwrap_or_default()
    };
    assert_eq!(value("cleanup.policy"), "compact,delete");
    assert_eq!(value("retention.ms"), "3600000");
    Ok(())
}
