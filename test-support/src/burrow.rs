//! LinkedIn Burrow (Debian's `burrow` package, 1.2.1) and the ZooKeeper it needs (Debian's
//! `zookeeper`, run as `ZooKeeperServerMain` on the package's jar); `.ci/run` installs both.
//! Burrow reads the broker the way it reads Kafka: sarama pinned to an old `kafka-version`
//! (Metadata, ListOffsets and Fetch of the versions that release knows), consuming
//! `__consumer_offsets` and decoding Kafka's offset and group-metadata records itself.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A free loopback port (released before the server binds it).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A child process killed on drop, with its own temporary directory.
struct Process {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A standalone ZooKeeper on a loopback port.
pub struct ZooKeeper {
    _process: Process,
    pub addr: SocketAddr,
}

impl ZooKeeper {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config = dir.path().join("zoo.cfg");
        std::fs::write(
            &config,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n",
                dir.path().join("data").display()
            ),
        )?;
        let jar = "/usr/share/java/zookeeper.jar";
        if !Path::new(jar).exists() {
            bail!("{jar} is missing: install Debian's `zookeeper` package (.ci/run does)");
        }
        let child = Command::new("java")
            .args([
                "-cp",
                jar,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ZooKeeper with java")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let zk = ZooKeeper {
            _process: Process { child, _dir: dir },
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if Instant::now() > deadline {
                bail!("ZooKeeper not listening on {addr} within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(zk)
    }
}

/// A running Burrow with one cluster (`local`) and its Kafka consumer module on the broker.
pub struct Burrow {
    _process: Process,
    pub url: String,
}

impl Burrow {
    /// Starts Burrow on `bootstrap` with sarama pinned to `kafka_version` (Debian's example
    /// config uses "0.10.0"; Burrow's default is "0.8.2").
    pub async fn start(
        zookeeper: &ZooKeeper,
        bootstrap: &str,
        kafka_version: &str,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config = format!(
            r#"[general]
pidfile="{pid}"
[logging]
level="info"
[zookeeper]
servers=["{zk}"]
timeout=6
root-path="/burrow"
[client-profile.test]
client-id="burrow-test"
kafka-version="{kafka_version}"
[cluster.local]
class-name="kafka"
servers=["{bootstrap}"]
client-profile="test"
topic-refresh=5
offset-refresh=1
[consumer.local]
class-name="kafka"
cluster="local"
servers=["{bootstrap}"]
client-profile="test"
offsets-topic="__consumer_offsets"
start-latest=false
[httpserver.default]
address="127.0.0.1:{port}"
[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
"#,
            pid = dir.path().join("burrow.pid").display(),
            zk = zookeeper.addr,
        );
        std::fs::write(dir.path().join("burrow.toml"), config)?;
        let log = std::fs::File::create(dir.path().join("burrow.log"))?;
        let child = Command::new("Burrow")
            .arg("--config-dir")
            .arg(dir.path())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting Burrow (Debian's `burrow` package; .ci/run installs it)")?;
        let burrow = Burrow {
            _process: Process { child, _dir: dir },
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = reqwest::get(format!("{}/burrow/admin", burrow.url)).await;
            if ok.is_ok_and(|r| r.status().is_success()) {
                return Ok(burrow);
            }
            if Instant::now() > deadline {
                bail!("Burrow not answering within 60 s; log:\n{}", burrow.log());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What Burrow logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._process._dir.path().join("burrow.log")).unwrap_or_default()
    }

    /// GET `path` of Burrow's HTTP API (v3), as JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let resp = reqwest::get(format!("{}{path}", self.url)).await?;
        Ok(resp.json().await?)
    }

    /// Polls `path` until `ok` holds for its JSON (up to `within`); the last answer otherwise.
    pub async fn wait_for(
        &self,
        path: &str,
        within: Duration,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> anyhow::Result<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.get(path).await;
            if let Ok(v) = &got {
                if ok(v) {
                    return got;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{path}: {got:?} after {within:?}; Burrow's log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}
