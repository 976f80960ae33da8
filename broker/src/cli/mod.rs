//! Admin and console subcommands of the `broker` binary (`broker topics ...`, `broker groups
//! ...`, `broker transactions ...`, `broker produce`, `broker consume`).
//!
//! They talk to the broker only over the Kafka protocol (see [`crate::client`]), so they work
//! against any Kafka-compatible cluster, like kafka-topics.sh, kafka-consumer-groups.sh and the
//! console producer/consumer, without needing a JVM. Output follows those tools where they have
//! a well-known format; errors go to stderr with the Kafka error name and exit code 1.

mod acls;
mod consume;
mod groups;
mod produce;
mod topics;
mod transactions;
mod users;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::client::Cluster;

pub use acls::AclsArgs;
pub use consume::ConsumeArgs;
pub use groups::GroupsCommand;
pub use produce::ProduceArgs;
pub use topics::TopicsCommand;
pub use transactions::TransactionsCommand;
pub use users::UsersCommand;

/// A client subcommand; without one, `broker` runs the server.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, create, describe, delete topics and alter their configs (like kafka-topics.sh).
    Topics {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// List consumer groups and describe their members, offsets and lag (like
    /// kafka-consumer-groups.sh).
    Groups {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// List transactional ids and describe their transactions (like kafka-transactions.sh).
    Transactions {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: TransactionsCommand,
    },
    /// List, describe, set and delete SCRAM users (like kafka-configs --entity-type users).
    Users {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Add, list and remove ACLs (kafka-acls.sh).
    Acls {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(flatten)]
        args: AclsArgs,
    },
    /// Produce lines of stdin as records (like kafka-console-producer.sh).
    Produce(ProduceArgs),
    /// Print records of a topic (like kafka-console-consumer.sh).
    Consume(ConsumeArgs),
}

/// How to reach the cluster.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Comma-separated HOST:PORT list of brokers to bootstrap from.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub bootstrap_server: String,

    /// Timeout of connecting and of each request, in milliseconds.
    #[arg(long, default_value_t = 30_000, global = true)]
    pub command_timeout_ms: u64,

    /// A properties file (`key=value` lines) of client settings in librdkafka's names, as
    /// Kafka's tools take it: `security.protocol`, `sasl.mechanism`, `sasl.username`,
    /// `sasl.password`, `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`,
    /// `ssl.endpoint.identification.algorithm`. Env `KAFKA_SECURITY_PROTOCOL`,
    /// `KAFKA_SASL_MECHANISM`, ... (the property upper-cased, dots as `_`) override it.
    #[arg(long, env = "KAFKA_COMMAND_CONFIG", global = true)]
    pub command_config: Option<std::path::PathBuf>,
}

/// The client properties the CLI reads from the environment, `KAFKA_` + the property name.
const ENV_PROPERTIES: [&str; 8] = [
    "security.protocol",
    "sasl.mechanism",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.endpoint.identification.algorithm",
];

impl ConnArgs {
    fn timeout(&self) -> Duration {
        // Bounded so that deadlines (`Instant::now() + timeout`) cannot overflow.
        Duration::from_millis(self.command_timeout_ms.clamp(1, u64::from(u32::MAX)))
    }

    async fn connect(&self) -> anyhow::Result<Cluster> {
        let mut properties = match &self.command_config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("could not read --command-config {}: {e}", path.display())
                })?;
                crate::client::security::parse_properties(&text)
            }
            None => Vec::new(),
        };
        for key in ENV_PROPERTIES {
            let var = format!("KAFKA_{}", key.replace('.', "_").to_ascii_uppercase());
            if let Ok(value) = std::env::var(&var) {
                properties.push((key.to_string(), value));
            }
        }
        let security = crate::client::ClientSecurity::from_properties(properties)?;
        Ok(Cluster::connect_with(&self.bootstrap_server, self.timeout(), security).await?)
    }
}

/// Runs `command`; failures are printed to stderr and give exit code 1.
pub async fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Topics { conn, command } => topics::run(&conn, command).await,
        Command::Groups { conn, command } => groups::run(&conn, command).await,
        Command::Transactions { conn, command } => transactions::run(&conn, command).await,
        Command::Acls { conn, args } => acls::run(&conn, args).await,
        Command::Users { conn, command } => users::run(&conn, command).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Consume(args) => consume::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `key=value`.
fn parse_key_value(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => anyhow::bail!("invalid config {s:?}: expected key=value"),
    }
}

/// Splits a comma-separated list as kafka-configs.sh does, except inside `[...]`, so a value
/// may itself be a list: `a=1,b=[x,y]` is `a=1` and `b=x,y`.
fn split_config_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0u32;
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        if c != '[' && c != ']' {
            current.push(c);
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_split_outside_brackets() {
        assert_eq!(
            split_config_list("retention.ms=1000, cleanup.policy=[compact,delete]"),
            vec!["retention.ms=1000", "cleanup.policy=compact,delete"]
        );
        assert_eq!(split_config_list(""), Vec::<String>::new());
        assert_eq!(
            parse_key_value("a=b=c").expect("parses"),
            ("a".to_string(), "b=c".to_string())
        );
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }
}
