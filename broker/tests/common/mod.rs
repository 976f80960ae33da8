//! Shared helpers for the broker's integration tests (`mod common;` in each test file).
//!
//! * [`BrokerProcess`] runs the real `broker` binary on a loopback port and a data directory.
//! * [`python`], [`kcat`] locate external client tools; they panic (the test fails) when a tool
//!   is missing: run `./scripts/test.sh`, which prepares them.
//! * [`run_python`], [`run_command`] run a tool with a timeout and return its stdout.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

/// How long a broker may take to print its `listening on` line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default timeout for external client tools.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// A `broker` child process listening on `127.0.0.1`. Killed when dropped.
pub struct BrokerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    extra_args: Vec<String>,
    logs: Arc<Mutex<String>>,
}

/// Why a spawn attempt failed: `Exited` (e.g. the port was still taken) is worth retrying.
enum SpawnError {
    Exited(anyhow::Error),
    Other(anyhow::Error),
}

impl From<SpawnError> for anyhow::Error {
    fn from(e: SpawnError) -> Self {
        match e {
            SpawnError::Exited(e) | SpawnError::Other(e) => e,
        }
    }
}

impl BrokerProcess {
    /// Starts `broker --listen 127.0.0.1:0 --data-dir <data_dir> <extra_args...>` and waits for
    /// it to report the address it is listening on.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> anyhow::Result<Self> {
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let (child, addr, logs) = spawn_broker(data_dir, "127.0.0.1:0", &extra_args)?;
        Ok(Self {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            extra_args,
            logs,
        })
    }

    /// `host:port` to give to Kafka clients as bootstrap servers.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The broker's process id.
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the broker has printed so far (stdout and stderr interleaved by line).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Kills the broker with SIGKILL (no graceful shutdown) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the broker if it is running, then starts it again on the same data directory with
    /// the same extra arguments, on the same port if at all possible (retrying for a few
    /// seconds while the port is still unavailable; as a last resort on a fresh port, check
    /// `addr`/`bootstrap()` afterwards).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        let listen = format!("127.0.0.1:{}", self.addr.port());
        let mut last_err = None;
        for attempt in 0..10 {
            if attempt > 0 {
                thread::sleep(Duration::from_millis(300));
            }
            match spawn_broker(&self.data_dir, &listen, &self.extra_args) {
                Ok((child, addr, logs)) => {
                    self.child = child;
                    self.addr = addr;
                    self.logs = logs;
                    return Ok(());
                }
                Err(SpawnError::Exited(e)) => last_err = Some(e),
                Err(e @ SpawnError::Other(_)) => return Err(e.into()),
            }
        }
        eprintln!(
            "[harness] could not restart the broker on {listen} ({:#}); using a fresh port",
            last_err.expect("at least one attempt")
        );
        let (child, addr, logs) = spawn_broker(&self.data_dir, "127.0.0.1:0", &self.extra_args)?;
        self.child = child;
        self.addr = addr;
        self.logs = logs;
        Ok(())
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn_broker(
    data_dir: &Path,
    listen: &str,
    extra_args: &[String],
) -> Result<(Child, SocketAddr, Arc<Mutex<String>>), SpawnError> {
    let bin = env!("CARGO_BIN_EXE_broker");
    let mut cmd = Command::new(bin);
    // BROKER_* settings in the environment must not steer the tests: only explicit flags count.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BROKER_") {
            cmd.env_remove(key);
        }
    }
    // The HTTP listener's default port (9644) would collide between brokers of parallel tests.
    if !extra_args.iter().any(|a| a.starts_with("--http-listen")) {
        cmd.arg("--http-listen").arg("off");
    }
    cmd.arg("--listen")
        .arg(listen)
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra_args)
        // The `listening on` line is an INFO event; keep ANSI colours out of the output.
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {bin}"))
        .map_err(SpawnError::Other)?;

    let logs = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    drain_lines(stdout, tx.clone(), logs.clone());
    drain_lines(stderr, tx, logs.clone());

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(addr) => break Ok(addr),
            // Both output pipes closed: the broker exited (or closed them) without listening.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait();
                break Err(SpawnError::Exited(anyhow!(
                    "broker ({bin} --listen {listen}) exited before listening ({status:?}); output:\n{}",
                    logs.lock().unwrap()
                )));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    // Give the drain threads a moment to collect the last output.
                    thread::sleep(Duration::from_millis(100));
                    break Err(SpawnError::Exited(anyhow!(
                        "broker ({bin} --listen {listen}) exited before listening ({status}); output:\n{}",
                        logs.lock().unwrap()
                    )));
                }
                if Instant::now() >= deadline {
                    break Err(SpawnError::Other(anyhow!(
                        "broker ({bin} --listen {listen}) printed no `listening on` line within {:?}; output:\n{}",
                        STARTUP_TIMEOUT,
                        logs.lock().unwrap()
                    )));
                }
            }
        }
    };
    match result {
        Ok(addr) => Ok((child, addr, logs)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Reads `pipe` line by line until EOF on a background thread: echoes each line to the test's
/// stderr as `[broker] ...`, appends it to `logs`, and sends the address of the first
/// `listening on` line to `tx`.
fn drain_lines(
    pipe: impl Read + Send + 'static,
    tx: mpsc::Sender<SocketAddr>,
    logs: Arc<Mutex<String>>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        let mut reported = false;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = strip_ansi(&String::from_utf8_lossy(&buf));
            let line = line.trim_end();
            eprintln!("[broker] {line}");
            {
                let mut logs = logs.lock().unwrap();
                logs.push_str(line);
                logs.push('\n');
            }
            if !reported {
                if let Some(addr) = parse_listening_line(line) {
                    reported = true;
                    let _ = tx.send(addr);
                }
            }
        }
    });
}

/// Extracts the socket address from a line containing `listening on <addr>`; tolerates
/// tracing decorations such as `listening on addr=127.0.0.1:9092` or quotes/commas.
fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on")? + "listening on".len()..];
    rest.split_whitespace().find_map(|token| {
        let token = token.rsplit('=').next().unwrap_or(token);
        let token =
            token.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | ';' | '(' | ')' | '`'));
        token.parse::<SocketAddr>().ok()
    })
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // CSI sequence: parameters/intermediates, then a final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Root of the Cargo workspace (parent of the `broker` crate directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("broker crate has a parent directory")
        .to_path_buf()
}

/// Path of a file in `broker/tests/python/`.
pub fn python_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// The Python interpreter of the test venv: `$DATASYNC_PYTHON`, else `<workspace>/.venv/bin/python`.
/// Panics (failing the test) if there is none.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("DATASYNC_PYTHON").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "DATASYNC_PYTHON={} does not exist: run ./scripts/test.sh (it creates the venv)",
            p.display()
        );
        return p;
    }
    let p = workspace_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "no Python venv for the client tests (DATASYNC_PYTHON unset and {} missing): \
         run ./scripts/test.sh (it creates the venv)",
        p.display()
    );
    p
}

/// The `kcat` executable on `PATH`. Panics (failing the test) if there is none.
pub fn kcat() -> PathBuf {
    which("kcat").unwrap_or_else(|| {
        panic!("kcat not found on PATH: install it (apt-get install kcat; .ci/run does) and run ./scripts/test.sh")
    })
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs the venv Python on `script` with `args` (timeout [`TOOL_TIMEOUT`]) and returns its
/// stdout; fails with stdout and stderr included if it does not exit successfully.
pub fn run_python(script: &Path, args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = Command::new(python());
    cmd.arg(script).args(args).env("PYTHONUNBUFFERED", "1");
    run_command(&mut cmd, None, TOOL_TIMEOUT)
}

/// Runs `cmd` with optional `stdin` contents and a timeout; returns stdout on success, fails
/// with the command line, exit status, stdout and stderr otherwise.
pub fn run_command(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let desc = describe(cmd);
    let output =
        output_with_timeout(cmd, stdin, timeout).with_context(|| format!("running {desc}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "{desc} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            output.status
        );
    }
    if !stderr.trim().is_empty() {
        eprintln!("--- stderr of {desc} ---\n{stderr}");
    }
    Ok(stdout)
}

/// Like [`Command::output`], with stdin contents and a timeout (the child is killed on timeout
/// and an error carrying its output so far is returned).
pub fn output_with_timeout(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> anyhow::Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let stdin_thread = stdin.map(|data| {
        let mut pipe: ChildStdin = child.stdin.take().expect("piped stdin");
        let data = data.to_vec();
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
            // Dropping `pipe` closes the child's stdin (EOF).
        })
    });
    let stdout = read_to_end_thread(child.stdout.take().expect("piped stdout"));
    let stderr = read_to_end_thread(child.stderr.take().expect("piped stderr"));

    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    if let Some(t) = stdin_thread {
        let _ = t.join();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => bail!(
            "timed out after {timeout:?}:\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

fn read_to_end_thread(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A topic name unique to this process and call site, safe for Kafka (`[a-zA-Z0-9._-]`).
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod harness_tests {
    use super::*;

    #[test]
    fn parses_listening_lines() {
        let want: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        for line in [
            "2024-01-01T00:00:00Z  INFO broker: listening on 127.0.0.1:40123",
            "INFO broker::server: listening on addr=127.0.0.1:40123",
            "INFO listening on 127.0.0.1:40123 advertised=127.0.0.1:40123",
            "\u{1b}[32m INFO\u{1b}[0m \u{1b}[2mbroker\u{1b}[0m: listening on \u{1b}[3maddr\u{1b}[0m=127.0.0.1:40123",
        ] {
            assert_eq!(parse_listening_line(&strip_ansi(line)), Some(want), "{line}");
        }
        assert_eq!(parse_listening_line("starting up"), None);
    }
}
