//! The real Prometheus (Debian's `prometheus` package; `.ci/run` installs it) on the
//! repository's config, `docker/prometheus/prometheus.yml`, with each compose target rewritten
//! to the loopback address a test's process listens on, and a 1 s scrape interval.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A running Prometheus, killed on drop.
pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus on the repository's config with `targets` (compose `host:port` →
    /// the test's address) rewritten; every compose target must be given one, so the config
    /// and the test cannot drift apart.
    pub async fn start(targets: &BTreeMap<&str, SocketAddr>) -> anyhow::Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let path = root.join("docker/prometheus/prometheus.yml");
        let mut config = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for (from, to) in targets {
            let quoted = format!("\"{from}\"");
            if !config.contains(&quoted) {
                bail!("{} has no target {from}", path.display());
            }
            config = config.replace(&quoted, &format!("\"{to}\""));
        }
        let scrape = scrape_interval_line(&config);
        config = config.replace(&scrape, "scrape_interval: 1s");
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, &config)?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting prometheus (Debian's `prometheus` package; .ci/run installs it)")?;
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = reqwest::get(format!("{}/-/ready", p.url)).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(p);
            }
            if Instant::now() > deadline {
                bail!("Prometheus not ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The values of an instant PromQL query (one per series).
    pub async fn query(&self, promql: &str) -> anyhow::Result<Vec<f64>> {
        let resp: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await?
            .json()
            .await?;
        if resp["status"] != "success" {
            bail!("{promql}: {resp}");
        }
        Ok(resp["data"]["result"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .filter_map(|r| r["value"][1].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits (up to `within`) until `promql`'s values satisfy `ok`; the last values otherwise.
    pub async fn wait_for(
        &self,
        promql: &str,
        within: Duration,
        ok: impl Fn(&[f64]) -> bool,
    ) -> anyhow::Result<Vec<f64>> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.query(promql).await?;
            if ok(&got) {
                return Ok(got);
            }
            if Instant::now() > deadline {
                bail!("{promql}: {got:?} after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The config's `scrape_interval: ...` line.
fn scrape_interval_line(config: &str) -> String {
    config
        .lines()
        .find(|l| l.trim_start().starts_with("scrape_interval:"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "scrape_interval: 5s".into())
}
