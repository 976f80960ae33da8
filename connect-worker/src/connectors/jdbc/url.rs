//! The connection settings both JDBC connectors share: `connection.url` as Confluent takes it
//! (`jdbc:mysql://host:port/db?params` or `jdbc:mariadb://...`), plus
//! `connection.user`/`connection.password`, declared, validated and turned into a sqlx pool.
//! Options are built field by field, so passwords with special characters need no URL escaping
//! and never appear in a string that could be logged.
//!
//! TLS comes from the URL's parameters as the JDBC drivers name them, so a Confluent config
//! works unchanged: `sslMode` (MySQL Connector/J: `DISABLED`, `PREFERRED`, `REQUIRED`,
//! `VERIFY_CA`, `VERIFY_IDENTITY`; MariaDB Connector/J: `disable`, `trust`, `verify-ca`,
//! `verify-full`), the older `useSSL`/`useSsl`/`requireSSL` with `verifyServerCertificate` or
//! `trustServerCertificate`, and MariaDB's `serverSslCert` (a PEM CA or server certificate
//! file) for the trust anchor. Java keystores (`trustCertificateKeyStoreUrl`, `trustStore`)
//! cannot be read here: they are refused with a message naming `serverSslCert` instead.

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlSslMode};

use crate::connectors::config_def::{ConfigExt, ConfigKey, ConfigType};
use crate::connectors::{Config, ConnectorError};

#[derive(Debug, Clone, PartialEq)]
pub struct JdbcUrl {
    pub host: String,
    pub port: u16,
    pub database: String,
    /// TLS as the URL's parameters ask; `None`: sqlx's default (`PREFERRED`).
    pub ssl_mode: Option<SslMode>,
    /// `serverSslCert`: the PEM file the server's certificate is checked against.
    pub ssl_ca: Option<String>,
}

/// The TLS modes of MySQL's `sslMode` (sqlx's [`MySqlSslMode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl SslMode {
    fn sqlx(self) -> MySqlSslMode {
        match self {
            SslMode::Disabled => MySqlSslMode::Disabled,
            SslMode::Preferred => MySqlSslMode::Preferred,
            SslMode::Required => MySqlSslMode::Required,
            SslMode::VerifyCa => MySqlSslMode::VerifyCa,
            SslMode::VerifyIdentity => MySqlSslMode::VerifyIdentity,
        }
    }
}

fn is_true(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes")
}

/// The TLS settings of the URL's parameters (`?a=b&c=d`, or `;a=b` as some drivers write).
fn tls_params(params: &str) -> Result<(Option<SslMode>, Option<String>), String> {
    let mut mode = None;
    let mut use_ssl = None;
    let mut verify = None;
    let mut ca = None;
    for pair in params.split(['&', ';']).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8_lossy()
            .into_owned();
        match key.to_ascii_lowercase().as_str() {
            "sslmode" => {
                mode = Some(
                    match value.to_ascii_lowercase().replace('-', "_").as_str() {
                        "disabled" | "disable" => SslMode::Disabled,
                        "preferred" => SslMode::Preferred,
                        "required" | "trust" => SslMode::Required,
                        "verify_ca" => SslMode::VerifyCa,
                        "verify_identity" | "verify_full" => SslMode::VerifyIdentity,
                        _ => return Err(format!(
                            "Invalid sslMode {value} in connection.url: expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY (or disable, trust, verify-ca, verify-full)"
                        )),
                    },
                )
            }
            "usessl" | "requiressl" => use_ssl = Some(is_true(&value)),
            "verifyservercertificate" => verify = Some(is_true(&value)),
            "trustservercertificate" => verify = Some(!is_true(&value)),
            "serversslcert" => {
                ca = Some(value.strip_prefix("file:").unwrap_or(&value).to_string())
            }
            "trustcertificatekeystoreurl" | "truststore" | "clientcertificatekeystoreurl"
            | "keystore" => {
                return Err(format!(
                    "connection.url parameter {key}: Java keystores are not supported here; give the CA as a PEM file with serverSslCert=/path/ca.pem"
                ))
            }
            _ => {}
        }
    }
    let mode = mode.or(match (use_ssl, verify) {
        (Some(false), _) => Some(SslMode::Disabled),
        (Some(true), Some(true)) => Some(SslMode::VerifyCa),
        (Some(true), _) => Some(SslMode::Required),
        (None, _) => None,
    });
    // A CA without a mode means verifying against it, as MariaDB Connector/J does.
    let mode = match (mode, &ca) {
        (None, Some(_)) => Some(SslMode::VerifyCa),
        (m, _) => m,
    };
    Ok((mode, ca))
}

pub fn parse(url: &str) -> Result<JdbcUrl, String> {
    let rest = ["jdbc:mysql://", "jdbc:mariadb://", "mysql://", "mariadb://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
        .ok_or_else(|| format!("Invalid value {url} for configuration connection.url: expected jdbc:mysql://HOST:PORT/DB or jdbc:mariadb://HOST:PORT/DB"))?;
    let (rest, params) = match rest.find(['?', ';']) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (ssl_mode, ssl_ca) = tls_params(params)?;
    let (hostport, database) = rest.split_once('/').unwrap_or((rest, ""));
    // user:pw@ in the URL is not supported (use connection.user/password): drop it.
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let hostport = hostport.split(',').next().unwrap_or(hostport);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("Invalid port in connection.url: {p}"))?,
        ),
        None => (hostport, 3306),
    };
    if host.is_empty() {
        return Err("connection.url has no host".into());
    }
    if database.is_empty() {
        return Err("connection.url has no database".into());
    }
    Ok(JdbcUrl {
        host: host.to_string(),
        port,
        database: database.to_string(),
        ssl_mode,
        ssl_ca,
    })
}

/// The `connection.*` keys, in the connector's `group`.
pub fn connection_keys(group: &'static str) -> Vec<ConfigKey> {
    vec![
        ConfigKey::new(
            "connection.url",
            ConfigType::String,
            None,
            group,
            "JDBC connection URL: jdbc:mysql://HOST:PORT/DB or jdbc:mariadb://...",
        ),
        ConfigKey::new(
            "connection.user",
            ConfigType::String,
            Some(""),
            group,
            "JDBC connection user.",
        ),
        ConfigKey::new(
            "connection.password",
            ConfigType::Password,
            Some(""),
            group,
            "JDBC connection password.",
        ),
    ]
}

/// The problem with `connection.url`, if it is set and does not parse, as (key, message).
pub fn validate(config: &Config) -> Option<(String, String)> {
    let e = parse(config.get("connection.url")?).err()?;
    Some(("connection.url".into(), e))
}

/// A pool of at most two connections, opened on first use (so creating a task never blocks on
/// the database), waiting up to `acquire_timeout` for a connection.
pub fn pool(config: &Config, acquire_timeout: Duration) -> Result<MySqlPool, ConnectorError> {
    let opts = connect_options(config).map_err(ConnectorError::InvalidConfig)?;
    Ok(MySqlPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(opts))
}

pub fn connect_options(config: &Config) -> Result<MySqlConnectOptions, String> {
    let url = parse(config.str_or("connection.url", ""))?;
    let mut opts = MySqlConnectOptions::new()
        .host(&url.host)
        .port(url.port)
        .database(&url.database)
        .username(config.str_or("connection.user", "root"));
    if let Some(pw) = config.get("connection.password").filter(|p| !p.is_empty()) {
        opts = opts.password(pw);
    }
    if let Some(mode) = url.ssl_mode {
        opts = opts.ssl_mode(mode.sqlx());
    }
    if let Some(ca) = &url.ssl_ca {
        opts = opts.ssl_ca(ca);
    }
    Ok(opts.timezone(Some("+00:00".to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_jdbc_urls() {
        let u = parse("jdbc:mysql://localhost:3306/mydb?useSSL=false").unwrap();
        assert_eq!(
            u,
            JdbcUrl {
                host: "localhost".into(),
                port: 3306,
                database: "mydb".into(),
                ssl_mode: Some(SslMode::Disabled),
                ssl_ca: None,
            }
        );
        assert_eq!(parse("jdbc:mariadb://mariadb/mydb").unwrap().port, 3306);
        assert!(parse("jdbc:postgresql://x/y").is_err());
        assert!(parse("jdbc:mysql://host:notaport/db").is_err());
    }

    #[test]
    fn tls_parameters_of_both_drivers() {
        let tls = |url: &str| {
            let u = parse(url).unwrap();
            (u.ssl_mode, u.ssl_ca)
        };
        assert_eq!(tls("jdbc:mysql://h/db"), (None, None));
        assert_eq!(
            tls("jdbc:mysql://h/db?sslMode=VERIFY_CA&serverSslCert=/certs/ca.pem"),
            (Some(SslMode::VerifyCa), Some("/certs/ca.pem".into()))
        );
        assert_eq!(
            tls("jdbc:mariadb://h/db?sslMode=verify-full&serverSslCert=file:/ca.pem"),
            (Some(SslMode::VerifyIdentity), Some("/ca.pem".into()))
        );
        assert_eq!(
            tls("jdbc:mariadb://h/db?sslMode=trust").0,
            Some(SslMode::Required)
        );
        assert_eq!(
            tls("jdbc:mysql://h/db?useSSL=true").0,
            Some(SslMode::Required)
        );
        assert_eq!(
            tls("jdbc:mysql://h/db?useSSL=true&verifyServerCertificate=true").0,
            Some(SslMode::VerifyCa)
        );
        assert_eq!(
            tls("jdbc:mysql://h/db;useSsl=false").0,
            Some(SslMode::Disabled)
        );
        assert_eq!(
            tls("jdbc:mariadb://h/db?serverSslCert=/ca.pem").0,
            Some(SslMode::VerifyCa)
        );
        assert!(parse("jdbc:mysql://h/db?sslMode=sometimes")
            .unwrap_err()
            .contains("sslMode"));
        assert!(
            parse("jdbc:mysql://h/db?trustCertificateKeyStoreUrl=file:/ts.jks")
                .unwrap_err()
                .contains("serverSslCert")
        );
    }
}
