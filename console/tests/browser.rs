//! The console in a real browser: headless Chromium (Debian's `chromium`) driven through
//! WebDriver (`chromedriver` from `chromium-driver`) by fantoccini, against the broker and a
//! connect worker running in-process. It creates a topic, produces a message and finds it in the
//! message browser, watches a group's lag fall to zero as the group consumes, creates a connector
//! with a bad config and sees Connect's error next to the setting, then a good one, and pauses
//! and resumes it. Each page is saved as a screenshot (`target/console-screenshots/`, or
//! `$CONSOLE_SCREENSHOTS_DIR`; the README's come from such a run).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fantoccini::{Client, ClientBuilder, Locator};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use test_support::TestBroker;

const WAIT: Duration = Duration::from_secs(30);

struct ChromeDriver(Child);

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> anyhow::Result<(ChromeDriver, Client)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let driver = ChromeDriver(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (Debian's chromium-driver; .ci/run installs it)")?,
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1100"],
        }),
    );
    let deadline = Instant::now() + WAIT;
    loop {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return Ok((driver, client)),
            Err(e) if Instant::now() > deadline => bail!("no WebDriver session: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn screenshots_dir() -> PathBuf {
    std::env::var_os("CONSOLE_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
        })
}

async fn screenshot(c: &Client, name: &str) -> anyhow::Result<()> {
    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.png")), c.screenshot().await?)?;
    Ok(())
}

/// The text of the element `css`.
async fn text(c: &Client, css: &str) -> anyhow::Result<String> {
    Ok(c.find(Locator::Css(css)).await?.text().await?)
}

/// Reloads `url` until the text of `css` satisfies `ok`.
async fn wait_text(
    c: &Client,
    url: &str,
    css: &str,
    ok: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        c.goto(url).await?;
        let got = text(c, css).await.unwrap_or_default();
        if ok(&got) {
            return Ok(got);
        }
        if Instant::now() > deadline {
            bail!(
                "{url} {css}: {got:?}\n{}",
                c.source().await.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn fill(c: &Client, css: &str, value: &str) -> anyhow::Result<()> {
    let field = c.find(Locator::Css(css)).await?;
    field.clear().await?;
    field.send_keys(value).await?;
    Ok(())
}

/// Clicks `css` and waits until the page it leads to has loaded (the old document, marked
/// before the click, is gone and the new one is complete).
async fn click_and_wait(c: &Client, css: &str) -> anyhow::Result<()> {
    c.execute("window.__before_click = true;", vec![]).await?;
    c.find(Locator::Css(css)).await?.click().await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let loaded = c
            .execute(
                "return window.__before_click !== true && document.readyState === 'complete';",
                vec![],
            )
            .await?;
        if loaded.as_bool() == Some(true) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no new page after clicking {css}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn submit(c: &Client, form: &str) -> anyhow::Result<()> {
    click_and_wait(c, &format!("{form} button[type=submit]")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() -> anyhow::Result<()> {
    let broker = TestBroker::start().await?;
    let bootstrap = broker.bootstrap();
    let files = tempfile::tempdir()?;

    let mut worker_config = connect_worker::Config::new(&bootstrap);
    worker_config.allowed_paths = vec![files.path().to_path_buf()];
    let worker_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let worker_url = format!("http://{}", worker_listener.local_addr()?);
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(connect_worker::run(worker_config, worker_listener, async {
        let _ = worker_stopped.await;
    }));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_console, console_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut console_config = console::Config::new(&bootstrap, Some(&worker_url));
    console_config.metrics_url = Some(format!("http://{}/metrics", broker.http_addr));
    let console = tokio::spawn(console::run(console_config, listener, async {
        let _ = console_stopped.await;
    }));

    let (_driver, c) = browser().await?;
    let result = scenario(&c, &base, &bootstrap, files.path()).await;
    if result.is_err() {
        let _ = screenshot(&c, "failure").await;
    }
    c.close().await?;
    let _ = stop_console.send(());
    let _ = stop_worker.send(());
    console.await??;
    let _ = worker.await;
    result
}

async fn scenario(
    c: &Client,
    base: &str,
    bootstrap: &str,
    files: &std::path::Path,
) -> anyhow::Result<()> {
    // Create a topic through the form.
    c.goto(&format!("{base}/topics")).await?;
    fill(c, "#name", "browser-orders").await?;
    fill(c, "#partitions", "2").await?;
    submit(c, "#create-topic").await?;
    let rows = c.find_all(Locator::Css("#partitions tbody tr")).await?;
    assert_eq!(rows.len(), 2, "{}", c.current_url().await?);
    screenshot(c, "topic").await?;

    // A bad topic name is refused next to the field.
    c.goto(&format!("{base}/topics")).await?;
    fill(c, "#name", "no spaces please").await?;
    submit(c, "#create-topic").await?;
    let error = text(c, "#create-topic .field-error").await?;
    assert!(error.contains("only ASCII letters"), "{error}");

    // Produce a Connect-style record with a header, then find it in the message browser.
    c.goto(&format!("{base}/topics/browser-orders/produce"))
        .await?;
    fill(c, "#partition", "0").await?;
    fill(c, "#key", "o-1").await?;
    fill(
        c,
        "#value",
        r#"{"schema":{"type":"struct","name":"orders","fields":[{"field":"order_id","type":"string"},{"field":"qty","type":"int32"}]},"payload":{"order_id":"o-1","qty":7}}"#,
    )
    .await?;
    fill(c, "#headers", "source=browser").await?;
    submit(c, "#produce").await?;
    let produced = text(c, "#produced").await?;
    assert!(produced.contains("partition 0 at offset 0"), "{produced}");
    click_and_wait(c, "#produced a").await?;
    let messages = text(c, "#messages").await?;
    assert!(
        messages.contains("order_id")
            && messages.contains("o-1")
            && messages.contains("source: browser"),
        "{messages}"
    );
    screenshot(c, "messages").await?;

    // A group that has read 3 of 21 records of partition 0: lag 18, then 0 after it catches up.
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    let producer: FutureProducer = config.create()?;
    for i in 0..20 {
        let value = format!("record {i}");
        producer
            .send(
                FutureRecord::<(), _>::to("browser-orders")
                    .partition(0)
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "browser-group")
        .set("enable.auto.commit", "false")
        .create()?;
    let commit = |offset: i64| -> anyhow::Result<()> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("browser-orders", 0, Offset::Offset(offset))?;
        consumer.commit(&tpl, CommitMode::Sync)?;
        Ok(())
    };
    commit(3)?;
    let group_url = format!("{base}/groups/browser-group");
    wait_text(c, &group_url, "#total-lag", |t| t == "18").await?;
    // Let the sampler chart a few points of the lag before it falls.
    tokio::time::sleep(Duration::from_secs(3)).await;
    commit(21)?;
    wait_text(c, &group_url, "#total-lag", |t| t == "0").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.goto(&group_url).await?;
    screenshot(c, "group").await?;
    c.goto(&format!("{base}/groups")).await?;
    assert!(text(c, "#groups").await?.contains("browser-group"));

    // A connector whose file is outside the worker's allowed paths: Connect's error by the setting.
    c.goto(&format!("{base}/connectors/new")).await?;
    fill(c, "#name", "orders-file").await?;
    let config_json = |file: &str| {
        serde_json::json!({
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "topics": "browser-orders",
            "file": file,
            "tasks.max": "1",
        })
        .to_string()
    };
    fill(c, "#config", &config_json("/etc/passwd")).await?;
    submit(c, "#new-connector").await?;
    let problems = text(c, "#config-errors").await?;
    assert!(
        problems.contains("file") && !problems.contains("name"),
        "{problems}"
    );
    screenshot(c, "connector-error").await?;

    // Fixed, it runs; pause and resume it.
    let file = files.join("orders.txt");
    fill(c, "#config", &config_json(&file.display().to_string())).await?;
    submit(c, "#new-connector").await?;
    let at = c.current_url().await?;
    assert!(
        at.path().ends_with("/connectors/orders-file"),
        "{at}: {}",
        text(c, "#new-connector").await.unwrap_or_default()
    );
    let connector_url = format!("{base}/connectors/orders-file");
    wait_text(c, &connector_url, "#state", |t| t == "RUNNING").await?;
    click_and_wait(c, "#action-pause").await?;
    wait_text(c, &connector_url, "#state", |t| t == "PAUSED").await?;
    c.find(Locator::Css("#action-resume"))
        .await?
        .click()
        .await?;
    wait_text(c, &connector_url, "#state", |t| t == "RUNNING").await?;
    screenshot(c, "connector").await?;
    c.goto(&format!("{base}/connectors")).await?;
    assert!(text(c, "#connectors").await?.contains("orders-file"));

    // The overview charts the broker's own counters: the records produced above came in.
    let rate = wait_text(c, base, "figure.chart figcaption", |t| {
        t.starts_with("Messages in (broker metrics)")
    })
    .await?;
    assert!(rate.contains("records/s"), "{rate}");
    assert!(c.source().await?.contains("<polyline"), "no chart drawn");
    screenshot(c, "overview").await?;
    Ok(())
}
