//! TLS for the SSL and SASL_SSL listeners: the rustls server configuration built once at startup
//! from PEM files named as librdkafka and Kafka name them (`ssl.certificate.location`,
//! `ssl.key.location`, `ssl.client.auth`, `ssl.truststore.location`).
//!
//! Everything that can be wrong with those files (missing, unreadable, not PEM, a key that is not
//! the certificate's) is found here, before the broker serves anyone, so a misconfigured broker
//! refuses to start with a message naming the file instead of failing every handshake later.
//! rustls runs with the `ring` provider passed explicitly, so nothing depends on a process-wide
//! default provider being installed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// Whether a TLS listener asks for client certificates (Kafka's `ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// Asked for; verified when sent, the connection proceeds without one.
    Requested,
    /// A certificate chaining to the truststore is required.
    Required,
}

impl FromStr for ClientAuth {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(ClientAuth::None),
            "requested" => Ok(ClientAuth::Requested),
            "required" => Ok(ClientAuth::Required),
            _ => Err(TlsError::ClientAuth(s.to_string())),
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientAuth::None => "none",
            ClientAuth::Requested => "requested",
            ClientAuth::Required => "required",
        })
    }
}

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("an SSL or SASL_SSL listener needs --ssl-certificate-location and --ssl-key-location (env BROKER_SSL_CERTIFICATE_LOCATION, BROKER_SSL_KEY_LOCATION)")]
    NoCertificate,
    #[error("could not read the {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the {what} {path} holds no usable PEM {expected}: {why}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
        why: String,
    },
    #[error("invalid --ssl-client-auth {0:?}: expected none, requested or required")]
    ClientAuth(String),
    #[error("--ssl-client-auth {0} needs --ssl-truststore-location (the CA bundle client certificates must chain to)")]
    NoTruststore(ClientAuth),
    #[error("the truststore {path} is unusable: {why}")]
    Truststore { path: PathBuf, why: String },
    #[error("the certificate {cert} and key {key} cannot be used together (is the key the certificate's?): {why}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The TLS settings of the broker's listeners, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings<'a> {
    pub certificate: Option<&'a Path>,
    pub key: Option<&'a Path>,
    pub client_auth: ClientAuth,
    pub truststore: Option<&'a Path>,
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every certificate of a PEM file (a chain or a CA bundle); at least one.
pub fn read_certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let bad = |why: String| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        expected: "certificate",
        why,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("private key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        what: "private key",
        path: path.to_path_buf(),
        expected: "private key",
        why: e.to_string(),
    })
}

/// A root store of every certificate in a PEM CA bundle.
pub fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certificates("CA bundle", path)? {
        roots.add(cert).map_err(|e| TlsError::Truststore {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The rustls provider everything here uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server configuration of the TLS listeners, checking every file.
pub fn server_config(settings: &TlsSettings<'_>) -> Result<Arc<ServerConfig>, TlsError> {
    let (Some(cert_path), Some(key_path)) = (settings.certificate, settings.key) else {
        return Err(TlsError::NoCertificate);
    };
    let chain = read_certificates("certificate chain", cert_path)?;
    let key = read_private_key(key_path)?;
    let provider = provider();
    let verifier = match settings.client_auth {
        ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
        auth => {
            let path = settings.truststore.ok_or(TlsError::NoTruststore(auth))?;
            let roots = Arc::new(read_roots(path)?);
            let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
            let builder = if auth == ClientAuth::Requested {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().map_err(|e| TlsError::Truststore {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?
        }
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Mismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
            why: e.to_string(),
        })?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_takes_kafkas_values() {
        assert_eq!("none".parse::<ClientAuth>().unwrap(), ClientAuth::None);
        assert_eq!(
            "REQUESTED".parse::<ClientAuth>().unwrap(),
            ClientAuth::Requested
        );
        assert_eq!(
            "required".parse::<ClientAuth>().unwrap(),
            ClientAuth::Required
        );
        assert!("sometimes".parse::<ClientAuth>().is_err());
    }

    #[test]
    fn missing_and_non_pem_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, b"not a pem file").unwrap();
        let missing = dir.path().join("missing.pem");
        let err = server_config(&TlsSettings {
            certificate: Some(&missing),
            key: Some(&junk),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = server_config(&TlsSettings {
            certificate: Some(&junk),
            key: Some(&junk),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(err, TlsError::Pem { .. }), "{err}");
        assert!(matches!(
            server_config(&TlsSettings::default()),
            Err(TlsError::NoCertificate)
        ));
    }
}
