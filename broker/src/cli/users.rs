//! `broker users`: SCRAM users managed as `kafka-configs --entity-type users` does, over
//! DescribeUserScramCredentials and AlterUserScramCredentials only. The password is salted
//! here (random salt; only SaltedPassword travels) and read from `--password-file`, stdin or
//! `BROKER_USER_PASSWORD`, never from a flag another user could see in `ps`.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::ConnArgs;
use crate::client::admin;
use crate::security::scram::{Mechanism, MAX_ITERATIONS, MIN_ITERATIONS};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Print every user with SCRAM credentials, and their mechanisms and iterations.
    List,
    /// Print one user's SCRAM mechanisms and iterations.
    Describe { name: String },
    /// Set a user's SCRAM credential (creating the user). The password comes from
    /// --password-file, else env BROKER_USER_PASSWORD, else the first line of stdin.
    Set {
        name: String,
        #[arg(long, value_parser = parse_mechanism)]
        mechanism: Mechanism,
        #[arg(long, default_value_t = MIN_ITERATIONS)]
        iterations: u32,
        /// A file whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Delete a user's SCRAM credential for one mechanism.
    Delete {
        name: String,
        #[arg(long, value_parser = parse_mechanism)]
        mechanism: Mechanism,
    },
}

fn parse_mechanism(s: &str) -> Result<Mechanism, String> {
    Mechanism::from_name(&s.to_ascii_uppercase())
        .ok_or_else(|| format!("unknown mechanism {s:?} (SCRAM-SHA-256 or SCRAM-SHA-512)"))
}

/// The password: first line of `file`, else `BROKER_USER_PASSWORD`, else the first line of
/// stdin. Empty is refused.
fn password(file: Option<&PathBuf>) -> anyhow::Result<String> {
    let raw = match (file, std::env::var("BROKER_USER_PASSWORD")) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
        (None, Ok(p)) => p,
        (None, Err(_)) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
    };
    let line = raw.lines().next().unwrap_or_default().to_string();
    anyhow::ensure!(!line.is_empty(), "the password is empty");
    Ok(line)
}

pub async fn run(conn: &ConnArgs, command: UsersCommand) -> anyhow::Result<ExitCode> {
    if let UsersCommand::Set { iterations, .. } = &command {
        anyhow::ensure!(
            (MIN_ITERATIONS..=MAX_ITERATIONS).contains(iterations),
            "--iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}"
        );
    }
    let mut cluster = conn.connect().await?;
    match command {
        UsersCommand::List => {
            let all = admin::describe_user_scram_credentials(&mut cluster, None).await?;
            for (user, infos) in all {
                println!("{}", line(&user, &infos));
            }
        }
        UsersCommand::Describe { name } => {
            let one = admin::describe_user_scram_credentials(
                &mut cluster,
                Some(std::slice::from_ref(&name)),
            )
            .await?;
            for (user, infos) in one {
                println!("{}", line(&user, &infos));
            }
        }
        UsersCommand::Set {
            name,
            mechanism,
            iterations,
            password_file,
        } => {
            let password = password(password_file.as_ref())?;
            admin::set_user_scram_credential(
                &mut cluster,
                &name,
                mechanism,
                iterations,
                password.as_bytes(),
            )
            .await?;
            println!("Set {} credential of user {name}", mechanism.name());
        }
        UsersCommand::Delete { name, mechanism } => {
            admin::delete_user_scram_credential(&mut cluster, &name, mechanism).await?;
            println!("Deleted {} credential of user {name}", mechanism.name());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `alice SCRAM-SHA-256(iterations=4096) SCRAM-SHA-512(iterations=8192)`, as kafka-configs
/// describes users.
fn line(user: &str, infos: &[admin::ScramCredentialInfo]) -> String {
    let mut s = user.to_string();
    for i in infos {
        s.push_str(&format!(" {}(iterations={})", i.mechanism, i.iterations));
    }
    s
}
