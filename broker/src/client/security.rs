//! How `broker::client` authenticates and encrypts, configured with librdkafka's property names
//! (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.location`,
//! `ssl.certificate.location`, `ssl.key.location`, `ssl.endpoint.identification.algorithm`), so
//! the CLI's `--command-config` file and the other crates hand it the very properties they give
//! librdkafka. Unknown keys are ignored (they are other clients' settings), bad values refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::ClientError;
use crate::security::scram::Mechanism;
use crate::security::{tls, SecurityProtocol};

/// A SASL login.
#[derive(Clone)]
pub struct SaslLogin {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The client's security settings: PLAINTEXT by default.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    pub protocol: SecurityProtocol,
    pub sasl: Option<SaslLogin>,
    /// For SSL and SASL_SSL.
    pub tls: Option<Arc<ClientConfig>>,
    /// Whether the broker's certificate must name the host connected to
    /// (`ssl.endpoint.identification.algorithm=https`, librdkafka's default).
    pub verify_hostname: bool,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("protocol", &self.protocol)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

fn bad(key: &str, why: impl std::fmt::Display) -> ClientError {
    ClientError::Other(format!("invalid client property {key}: {why}"))
}

impl ClientSecurity {
    /// From librdkafka properties, `(key, value)` pairs; later pairs win.
    pub fn from_properties<K, V>(
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ClientError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut protocol = SecurityProtocol::Plaintext;
        let (mut mechanism, mut username, mut password) = (String::from("GSSAPI"), None, None);
        let (mut ca, mut cert, mut key) = (None::<PathBuf>, None::<PathBuf>, None::<PathBuf>);
        let mut verify_hostname = true;
        for (k, v) in properties {
            let (k, v) = (k.as_ref().trim(), v.as_ref().trim());
            match k {
                "security.protocol" => protocol = v.parse().map_err(|e| bad(k, e))?,
                "sasl.mechanism" | "sasl.mechanisms" => mechanism = v.to_ascii_uppercase(),
                "sasl.username" => username = Some(v.to_string()),
                "sasl.password" => password = Some(v.to_string()),
                "ssl.ca.location" => ca = Some(v.into()),
                "ssl.certificate.location" => cert = Some(v.into()),
                "ssl.key.location" => key = Some(v.into()),
                "ssl.endpoint.identification.algorithm" => {
                    verify_hostname = match v.to_ascii_lowercase().as_str() {
                        "https" => true,
                        "none" | "" => false,
                        _ => return Err(bad(k, format!("{v:?}: expected https or none"))),
                    }
                }
                _ => {}
            }
        }
        let sasl = if protocol.is_sasl() {
            if !matches!(
                mechanism.as_str(),
                "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
            ) {
                return Err(bad(
                    "sasl.mechanism",
                    format!("{mechanism:?}: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
                ));
            }
            Some(SaslLogin {
                mechanism,
                username: username.ok_or_else(|| bad("sasl.username", "missing"))?,
                password: password.ok_or_else(|| bad("sasl.password", "missing"))?,
            })
        } else {
            None
        };
        let tls = if protocol.is_tls() {
            Some(client_config(
                ca.as_deref(),
                cert.as_deref(),
                key.as_deref(),
                verify_hostname,
            )?)
        } else {
            None
        };
        Ok(ClientSecurity {
            protocol,
            sasl,
            tls,
            verify_hostname,
        })
    }

    /// From a Java-style properties file (`key=value` lines, `#` and `!` comments), as Kafka's
    /// tools take with `--command-config`.
    pub fn from_properties_file(path: &Path) -> Result<Self, ClientError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Other(format!("could not read {}: {e}", path.display())))?;
        Self::from_properties(parse_properties(&text))
    }

    /// The server name to verify: the host of `addr` (`host:port`).
    pub(crate) fn server_name(addr: &str) -> Result<ServerName<'static>, ClientError> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string())
            .map_err(|e| ClientError::Other(format!("invalid TLS server name {host:?}: {e}")))
    }
}

/// `key=value` (or `key: value`) lines of a properties file.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let i = l.find(['=', ':'])?;
            Some((l[..i].trim().to_string(), l[i + 1..].trim().to_string()))
        })
        .collect()
}

/// The rustls client configuration: trust `ca` (else nothing is trusted: a CA is required),
/// present `cert`/`key` if given.
fn client_config(
    ca: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
    verify_hostname: bool,
) -> Result<Arc<ClientConfig>, ClientError> {
    let tls_err = |e: tls::TlsError| ClientError::Other(e.to_string());
    let ca = ca.ok_or_else(|| bad("ssl.ca.location", "required for SSL and SASL_SSL"))?;
    let roots = Arc::new(tls::read_roots(ca).map_err(tls_err)?);
    let provider = tls::provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Other(e.to_string()))?;
    let builder = if verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| ClientError::Other(e.to_string()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostname(inner)))
    };
    let config = match (cert, key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                tls::read_certificates("certificate", cert).map_err(tls_err)?,
                tls::read_private_key(key).map_err(tls_err)?,
            )
            .map_err(|e| bad("ssl.key.location", e))?,
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(bad(
                "ssl.certificate.location",
                "give both ssl.certificate.location and ssl.key.location",
            ))
        }
    };
    Ok(Arc::new(config))
}

/// Verifies the chain but not that it names the host (`ssl.endpoint.identification.algorithm=none`).
#[derive(Debug)]
struct NoHostname(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for NoHostname {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The SCRAM mechanism of a SASL mechanism name, if it is one.
pub(crate) fn scram_mechanism(name: &str) -> Option<Mechanism> {
    Mechanism::from_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_files_and_librdkafka_names() {
        let props = parse_properties(
            "# comment\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism = SCRAM-SHA-256\n\
             sasl.username=alice\nsasl.password=a=b\nbootstrap.servers=x:1\n",
        );
        let s = ClientSecurity::from_properties(props).unwrap();
        assert_eq!(s.protocol, SecurityProtocol::SaslPlaintext);
        let login = s.sasl.unwrap();
        assert_eq!(login.mechanism, "SCRAM-SHA-256");
        assert_eq!(login.password, "a=b");
        assert!(s.tls.is_none());
        assert!(
            ClientSecurity::from_properties([("security.protocol", "SASL_PLAINTEXT")]).is_err()
        );
        assert!(ClientSecurity::from_properties([("security.protocol", "SSL")]).is_err());
        assert!(ClientSecurity::from_properties([("security.protocol", "TLS")]).is_err());
        assert!(ClientSecurity::from_properties(Vec::<(&str, &str)>::new())
            .unwrap()
            .sasl
            .is_none());
    }
}
