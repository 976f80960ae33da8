//! The Kafka client security settings every librdkafka user in the workspace takes: the
//! services (through `service-common` and `discovery`), the connect worker and the console.
//!
//! Why one crate: a deployment that secures the broker (SASL_PLAINTEXT, SSL, SASL_SSL) must give
//! every client the same handful of settings, under the same flag and environment names, with
//! the same validation (a SASL protocol without a mechanism, a username without a password) and
//! the same care for secrets (a password from a file, never shown by `{:?}`). [`KafkaSecurityArgs`]
//! is the clap `Args` each binary flattens into its `Config`; [`KafkaSecurityArgs::pairs`] gives
//! the librdkafka `(key, value)` pairs (the broker crate's own client takes the same pairs) and
//! [`KafkaConnection`] carries them with the bootstrap servers to wherever a `ClientConfig` is
//! made. [`KafkaConnection::check`] makes a wrong password a clear start-up error rather than a
//! client that retries forever.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityConfigError {
    #[error("reading the SASL password file {path}")]
    PasswordFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("give the SASL password or a password file, not both (--kafka-sasl-password, --kafka-sasl-password-file)")]
    TwoPasswords,
    #[error("security protocol {0} needs a SASL mechanism (--kafka-sasl-mechanism, env KAFKA_SASL_MECHANISM: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")]
    NoMechanism(SecurityProtocol),
    #[error("SASL mechanism {0} needs a username and a password (--kafka-sasl-username, --kafka-sasl-password or --kafka-sasl-password-file)")]
    NoCredentials(String),
    #[error(
        "SASL settings given but the security protocol is {0}; use SASL_PLAINTEXT or SASL_SSL"
    )]
    SaslWithoutSaslProtocol(SecurityProtocol),
    #[error("--kafka-property {0:?}: expected KEY=VALUE")]
    Property(String),
    #[error("the Kafka client configuration is invalid: {0}")]
    Client(#[source] KafkaError),
    #[error("authenticating to the Kafka cluster at {bootstrap} failed: {detail}")]
    Authentication { bootstrap: String, detail: String },
    #[error("the Kafka cluster at {bootstrap} did not answer within {timeout:?}: {detail}")]
    Unreachable {
        bootstrap: String,
        timeout: Duration,
        detail: String,
    },
}

/// Kafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl std::fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client security flags; flatten into a binary's `Config` with `#[command(flatten)]`.
/// Every flag also reads an environment variable. Default (nothing set): PLAINTEXT, no SASL.
#[derive(Clone, Default, Args)]
pub struct KafkaSecurityArgs {
    /// Kafka's `security.protocol`: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. Default:
    /// SASL_PLAINTEXT when a SASL mechanism is given, else PLAINTEXT.
    #[arg(
        long = "kafka-security-protocol",
        env = "KAFKA_SECURITY_PROTOCOL",
        value_enum,
        ignore_case = true
    )]
    pub security_protocol: Option<SecurityProtocol>,
    /// Kafka's `sasl.mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(
        long = "kafka-sasl-mechanism",
        env = "KAFKA_SASL_MECHANISM",
        value_parser = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"],
        ignore_case = true
    )]
    pub sasl_mechanism: Option<String>,
    /// Kafka's `sasl.username`.
    #[arg(long = "kafka-sasl-username", env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// Kafka's `sasl.password` (prefer the file: an environment variable is visible to anyone
    /// who may inspect the process).
    #[arg(
        long = "kafka-sasl-password",
        env = "KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub sasl_password: Option<String>,
    /// A file holding the SASL password (trailing newline ignored), e.g. a Docker secret.
    #[arg(long = "kafka-sasl-password-file", env = "KAFKA_SASL_PASSWORD_FILE")]
    pub sasl_password_file: Option<PathBuf>,
    /// Kafka's `ssl.ca.location`: PEM file of the CAs that sign the brokers' certificates.
    #[arg(long = "kafka-ssl-ca-location", env = "KAFKA_SSL_CA_LOCATION")]
    pub ssl_ca_location: Option<PathBuf>,
    /// Kafka's `ssl.certificate.location`: this client's PEM certificate (mutual TLS).
    #[arg(
        long = "kafka-ssl-certificate-location",
        env = "KAFKA_SSL_CERTIFICATE_LOCATION"
    )]
    pub ssl_certificate_location: Option<PathBuf>,
    /// Kafka's `ssl.key.location`: this client's PEM private key (mutual TLS).
    #[arg(long = "kafka-ssl-key-location", env = "KAFKA_SSL_KEY_LOCATION")]
    pub ssl_key_location: Option<PathBuf>,
    /// Any other librdkafka property, `KEY=VALUE`; repeatable (env: comma-separated). Applied
    /// last, so it overrides the settings above.
    #[arg(
        long = "kafka-property",
        env = "KAFKA_PROPERTIES",
        value_delimiter = ',',
        value_parser = parse_property
    )]
    pub properties: Vec<(String, String)>,
}

/// `KEY=VALUE`, both sides trimmed, the key non-empty.
pub fn parse_property(s: &str) -> Result<(String, String), SecurityConfigError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(SecurityConfigError::Property(s.to_string())),
    }
}

/// True for keys whose values are secrets and are never shown.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key.contains("secret") || key.ends_with("jaas.config")
}

fn redacted(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret_key(k) {
                "[hidden]"
            } else {
                v.as_str()
            };
            (k.as_str(), shown)
        })
        .collect()
}

/// By hand, so that logging a configuration never shows the password.
impl std::fmt::Debug for KafkaSecurityArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSecurityArgs")
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field(
                "sasl_password",
                &self.sasl_password.as_ref().map(|_| "[hidden]"),
            )
            .field("sasl_password_file", &self.sasl_password_file)
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("ssl_certificate_location", &self.ssl_certificate_location)
            .field("ssl_key_location", &self.ssl_key_location)
            .field("properties", &redacted(&self.properties))
            .finish()
    }
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl KafkaSecurityArgs {
    /// The librdkafka properties these flags stand for, validated, the password file read.
    /// Empty when nothing is set (PLAINTEXT, librdkafka's default).
    pub fn pairs(&self) -> Result<Vec<(String, String)>, SecurityConfigError> {
        let password = match (&self.sasl_password, &self.sasl_password_file) {
            (Some(_), Some(_)) => return Err(SecurityConfigError::TwoPasswords),
            (Some(p), None) => Some(p.clone()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| SecurityConfigError::PasswordFile {
                        path: path.clone(),
                        source,
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            (None, None) => None,
        };
        let mechanism = self.sasl_mechanism.as_ref().map(|m| m.to_ascii_uppercase());
        let protocol = self.security_protocol.or(if mechanism.is_some() {
            Some(SecurityProtocol::SaslPlaintext)
        } else {
            None
        });
        let sasl_given = mechanism.is_some() || self.sasl_username.is_some() || password.is_some();
        let mut pairs = Vec::new();
        if let Some(protocol) = protocol {
            if protocol.is_sasl() {
                let Some(mechanism) = &mechanism else {
                    return Err(SecurityConfigError::NoMechanism(protocol));
                };
                let needs_credentials = matches!(
                    mechanism.as_str(),
                    "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
                );
                if needs_credentials && (self.sasl_username.is_none() || password.is_none()) {
                    return Err(SecurityConfigError::NoCredentials(mechanism.clone()));
                }
            } else if sasl_given {
                return Err(SecurityConfigError::SaslWithoutSaslProtocol(protocol));
            }
            pairs.push(("security.protocol".into(), protocol.as_str().into()));
        } else if sasl_given {
            return Err(SecurityConfigError::NoMechanism(
                SecurityProtocol::SaslPlaintext,
            ));
        }
        let mut push = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                pairs.push((k.to_string(), v));
            }
        };
        push("sasl.mechanism", mechanism);
        push("sasl.username", self.sasl_username.clone());
        push("sasl.password", password);
        push(
            "ssl.ca.location",
            self.ssl_ca_location.as_deref().map(path_str),
        );
        push(
            "ssl.certificate.location",
            self.ssl_certificate_location.as_deref().map(path_str),
        );
        push(
            "ssl.key.location",
            self.ssl_key_location.as_deref().map(path_str),
        );
        pairs.extend(self.properties.iter().cloned());
        Ok(pairs)
    }

    /// Sets [`pairs`](Self::pairs) on `config`.
    pub fn apply(&self, config: &mut ClientConfig) -> Result<(), SecurityConfigError> {
        for (k, v) in self.pairs()? {
            config.set(k, v);
        }
        Ok(())
    }

    /// The bootstrap servers with these settings, to hand to whatever makes clients.
    pub fn connection(&self, bootstrap: &str) -> Result<KafkaConnection, SecurityConfigError> {
        Ok(KafkaConnection {
            bootstrap: bootstrap.to_string(),
            properties: self.pairs()?,
        })
    }
}

/// Where the cluster is and how to talk to it: what every client of one process is made from.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaConnection {
    /// `host:port,...`.
    pub bootstrap: String,
    /// librdkafka properties besides `bootstrap.servers` (security settings and overrides).
    pub properties: Vec<(String, String)>,
}

impl std::fmt::Debug for KafkaConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConnection")
            .field("bootstrap", &self.bootstrap)
            .field("properties", &redacted(&self.properties))
            .finish()
    }
}

/// A PLAINTEXT connection to `bootstrap`.
impl From<&str> for KafkaConnection {
    fn from(bootstrap: &str) -> Self {
        KafkaConnection {
            bootstrap: bootstrap.to_string(),
            properties: Vec::new(),
        }
    }
}

impl From<String> for KafkaConnection {
    fn from(bootstrap: String) -> Self {
        KafkaConnection {
            bootstrap,
            properties: Vec::new(),
        }
    }
}

impl From<&String> for KafkaConnection {
    fn from(bootstrap: &String) -> Self {
        bootstrap.as_str().into()
    }
}

impl KafkaConnection {
    /// A `ClientConfig` with `bootstrap.servers` and the properties set; the caller adds what
    /// is its own (and may override any of them).
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// Connects and authenticates once, within `timeout`: `Ok` when the cluster answered a
    /// metadata request, else an error naming the cause (a failed SASL login or TLS handshake
    /// is [`SecurityConfigError::Authentication`]). librdkafka itself retries a failed login
    /// forever, so a service calls this at start-up to fail clearly instead of hanging.
    pub async fn check(&self, timeout: Duration) -> Result<(), SecurityConfigError> {
        let conn = self.clone();
        tokio::task::spawn_blocking(move || conn.check_blocking(timeout))
            .await
            .unwrap_or_else(|e| {
                Err(SecurityConfigError::Unreachable {
                    bootstrap: self.bootstrap.clone(),
                    timeout,
                    detail: e.to_string(),
                })
            })
    }

    fn check_blocking(&self, timeout: Duration) -> Result<(), SecurityConfigError> {
        let context = ErrorRecorder::default();
        let mut config = self.client_config();
        config.set_log_level(RDKafkaLogLevel::Error);
        let consumer: BaseConsumer<ErrorRecorder> = config
            .create_with_context(context.clone())
            .map_err(SecurityConfigError::Client)?;
        let client = consumer.client();
        // Short metadata requests, so that an authentication failure (reported through the
        // error callback) ends the wait early.
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let step = Duration::from_millis(500).min(timeout);
            let result = client.fetch_metadata(None, step);
            // Errors reach the context only while the client is polled.
            let _ = consumer.poll(Duration::ZERO);
            if let Some(detail) = context.authentication_failure() {
                return Err(SecurityConfigError::Authentication {
                    bootstrap: self.bootstrap.clone(),
                    detail,
                });
            }
            match result {
                Ok(_) => return Ok(()),
                Err(e) if std::time::Instant::now() >= deadline => {
                    let detail = context.last_error().unwrap_or_else(|| e.to_string());
                    return Err(SecurityConfigError::Unreachable {
                        bootstrap: self.bootstrap.clone(),
                        timeout,
                        detail,
                    });
                }
                Err(_) => {}
            }
        }
    }
}

/// Records the errors librdkafka reports through its error callback (not otherwise visible
/// to a caller waiting on a request).
#[derive(Clone, Default)]
struct ErrorRecorder {
    errors: Arc<Mutex<Vec<Reported>>>,
}

/// One error the callback reported: its code, if any, and its text.
type Reported = (Option<RDKafkaErrorCode>, String);

impl ErrorRecorder {
    fn authentication_failure(&self) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors
            .iter()
            .find(|(code, _)| {
                matches!(
                    code,
                    Some(RDKafkaErrorCode::Authentication)
                        | Some(RDKafkaErrorCode::SaslAuthenticationFailed)
                        | Some(RDKafkaErrorCode::SSL)
                )
            })
            .map(|(_, reason)| reason.clone())
    }

    fn last_error(&self) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors.last().map(|(_, reason)| reason.clone())
    }
}

impl ConsumerContext for ErrorRecorder {}

impl ClientContext for ErrorRecorder {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((code, format!("{error}: {reason}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaSecurityArgs,
    }

    fn parse(args: &[&str]) -> KafkaSecurityArgs {
        let mut all = vec!["x"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parses").kafka
    }

    #[test]
    fn nothing_set_is_plaintext_with_no_properties() {
        assert!(parse(&[]).pairs().unwrap().is_empty());
    }

    #[test]
    fn scram_settings_become_librdkafka_properties() {
        let args = parse(&[
            "--kafka-sasl-mechanism",
            "scram-sha-512",
            "--kafka-sasl-username",
            "alice",
            "--kafka-sasl-password",
            "s3cret",
            "--kafka-property",
            "client.id=me",
            "--kafka-property",
            "socket.timeout.ms = 5000",
        ]);
        assert_eq!(
            args.pairs().unwrap(),
            [
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "alice"),
                ("sasl.password", "s3cret"),
                ("client.id", "me"),
                ("socket.timeout.ms", "5000"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let shown = format!("{args:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let conn = args.connection("b:9092").unwrap();
        assert!(!format!("{conn:?}").contains("s3cret"));
        assert_eq!(conn.client_config().get("sasl.password"), Some("s3cret"));
        assert_eq!(
            conn.client_config().get("bootstrap.servers"),
            Some("b:9092")
        );
    }

    #[test]
    fn ssl_paths_and_the_password_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n")?;
        let args = parse(&[
            "--kafka-security-protocol",
            "SASL_SSL",
            "--kafka-sasl-mechanism",
            "PLAIN",
            "--kafka-sasl-username",
            "bob",
            "--kafka-sasl-password-file",
            file.to_str().unwrap_or_default(),
            "--kafka-ssl-ca-location",
            "/ca.pem",
            "--kafka-ssl-certificate-location",
            "/c.pem",
            "--kafka-ssl-key-location",
            "/k.pem",
        ]);
        let mut config = ClientConfig::new();
        args.apply(&mut config)?;
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.password"), Some("from-file"));
        assert_eq!(config.get("ssl.ca.location"), Some("/ca.pem"));
        assert_eq!(config.get("ssl.certificate.location"), Some("/c.pem"));
        assert_eq!(config.get("ssl.key.location"), Some("/k.pem"));
        Ok(())
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let err = |args: &[&str]| parse(args).pairs().unwrap_err().to_string();
        assert!(err(&["--kafka-security-protocol", "SASL_SSL"]).contains("needs a SASL mechanism"));
        assert!(err(&[
            "--kafka-sasl-mechanism",
            "PLAIN",
            "--kafka-sasl-username",
            "a"
        ])
        .contains("needs a username and a password"));
        assert!(err(&[
            "--kafka-security-protocol",
            "SSL",
            "--kafka-sasl-username",
            "a"
        ])
        .contains("security protocol is SSL"));
        assert!(err(&[
            "--kafka-sasl-mechanism",
            "PLAIN",
            "--kafka-sasl-username",
            "a",
            "--kafka-sasl-password",
            "p",
            "--kafka-sasl-password-file",
            "/f"
        ])
        .contains("not both"));
        assert!(err(&[
            "--kafka-sasl-mechanism",
            "PLAIN",
            "--kafka-sasl-username",
            "a",
            "--kafka-sasl-password-file",
            "/nonexistent/pw"
        ])
        .contains("/nonexistent/pw"));
        assert!(Cli::try_parse_from(["x", "--kafka-property", "novalue"]).is_err());
        assert!(Cli::try_parse_from(["x", "--kafka-security-protocol", "TLS"]).is_err());
        assert!(Cli::try_parse_from(["x", "--kafka-sasl-mechanism", "MD5"]).is_err());
    }

    #[test]
    fn environment_variables_keep_their_names() {
        let env: Vec<_> = <Cli as clap::CommandFactory>::command()
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(
            env,
            [
                "KAFKA_SECURITY_PROTOCOL",
                "KAFKA_SASL_MECHANISM",
                "KAFKA_SASL_USERNAME",
                "KAFKA_SASL_PASSWORD",
                "KAFKA_SASL_PASSWORD_FILE",
                "KAFKA_SSL_CA_LOCATION",
                "KAFKA_SSL_CERTIFICATE_LOCATION",
                "KAFKA_SSL_KEY_LOCATION",
                "KAFKA_PROPERTIES",
            ]
        );
    }
}
