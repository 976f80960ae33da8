//! The connection settings both JDBC connectors share: `connection.url` as Confluent takes it
//! (`jdbc:mysql://host:port/db?params` or `jdbc:mariadb://...`), plus
//! `connection.user`/`connection.password`, declared, validated and turned into a sqlx pool.
//! Options are built field by field, so passwords with special characters need no URL escaping
//! and never appear in a string that could be logged.

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

use crate::connectors::config_def::{ConfigExt, ConfigKey, ConfigType};
use crate::connectors::{Config, ConnectorError};

#[derive(Debug, Clone, PartialEq)]
pub struct JdbcUrl {
    pub host: String,
    pub port: u16,
    pub database: String,
}

pub fn parse(url: &str) -> Result<JdbcUrl, String> {
    let rest = ["jdbc:mysql://", "jdbc:mariadb://", "mysql://", "mariadb://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
        .ok_or_else(|| format!("Invalid value {url} for configuration connection.url: expected jdbc:mysql://HOST:PORT/DB or jdbc:mariadb://HOST:PORT/DB"))?;
    let rest = rest.split(['?', ';']).next().unwrap_or("");
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
                database: "mydb".into()
            }
        );
        assert_eq!(parse("jdbc:mariadb://mariadb/mydb").unwrap().port, 3306);
        assert!(parse("jdbc:postgresql://x/y").is_err());
        assert!(parse("jdbc:mysql://host:notaport/db").is_err());
    }
}
