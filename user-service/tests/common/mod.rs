//! Starts the real user-service (and order-service instances) in-process on port 0, for the
//! test binaries of this crate.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use clap::Parser;

pub struct App {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl App {
    /// Graceful shutdown (deregisters).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await??;
        }
        Ok(())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // Dropping without `stop` is a crash: no tombstone, the port closes.
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub async fn spawn<F, E>(
    health: &str,
    run: impl FnOnce(tokio::net::TcpListener, tokio::sync::oneshot::Receiver<()>) -> F,
) -> anyhow::Result<App>
where
    F: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: Into<anyhow::Error> + Send + 'static,
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let running = run(listener, stopped);
    let task = tokio::spawn(async move { running.await.map_err(Into::into) });
    let app = App {
        url,
        stop: Some(stop),
        task: Some(task),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(reqwest::get(format!("{}{health}", app.url)).await, Ok(r) if r.status() == 200)
    {
        anyhow::ensure!(Instant::now() < deadline, "service did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(app)
}

pub const SECRET: &str = "test-secret-0123456789";

pub async fn user_service(db: &str, bootstrap: &str) -> anyhow::Result<App> {
    let config = user_service::Config::parse_from([
        "user-service",
        "--database-url",
        db,
        "--bootstrap-servers",
        bootstrap,
        "--jwt-secret",
        SECRET,
        "--heartbeat-ms",
        "200",
        "--order-service-timeout-ms",
        "1000",
        "--db-timeout-ms",
        "1500",
        "--startup-timeout-secs",
        "30",
    ]);
    spawn("/health_check", |l, s| {
        user_service::run(config, l, async {
            let _ = s.await;
        })
    })
    .await
}

pub async fn order_service(db: &str, bootstrap: &str) -> anyhow::Result<App> {
    let config = order_service::Config::parse_from([
        "order-service",
        "--database-url",
        db,
        "--bootstrap-servers",
        bootstrap,
        // Live for three intervals after its last heartbeat: 200 ms (0.6 s) made a loaded machine
        // (two test binaries on two cores) drop live instances from the registry now and then.
        "--heartbeat-ms",
        "1000",
        "--startup-timeout-secs",
        "30",
    ]);
    spawn("/order-service/health_check", |l, s| {
        order_service::run(config, l, async {
            let _ = s.await;
        })
    })
    .await
}
