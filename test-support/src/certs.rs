//! Test certificates from `scripts/make-certs.sh`, the script users run for the secure compose
//! stack, so tests exercise the same files users get (and no test grows its own openssl calls).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

/// A CA, a server certificate for `localhost`/`127.0.0.1` signed by it, client certificates
/// (`CN=writer`, `CN=reader`) and an unrelated CA, as PEM files in one directory.
pub struct Certs {
    pub dir: PathBuf,
    /// The CA clients trust.
    pub ca: PathBuf,
    /// A CA that signed nothing here, for "an untrusted certificate is refused" cases.
    pub other_ca: PathBuf,
    /// The server's certificate (serverAuth) and its PKCS#8 key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl Certs {
    /// Runs `scripts/make-certs.sh` into `dir` (created if missing).
    pub fn make(dir: &Path) -> anyhow::Result<Certs> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-certs.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir)
            .stdout(Stdio::null())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Certs {
            dir: dir.to_path_buf(),
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            server_cert: dir.join("broker.pem"),
            server_key: dir.join("broker.key"),
        })
    }

    /// The certificate and key of client `name` (`writer` or `reader`), subject
    /// `CN=name,OU=datasync,O=example`.
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("client-{name}.pem")),
            self.dir.join(format!("client-{name}.key")),
        )
    }
}
