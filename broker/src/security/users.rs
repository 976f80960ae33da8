//! The users a SASL listener accepts. `--sasl-users-file` holds one `NAME=PASSWORD` per line
//! (`#` starts a comment), like the `user_NAME="PASSWORD"` entries of Kafka's PLAIN JAAS
//! configuration: PLAIN compares against those passwords and only those (the SCRAM store has no
//! passwords, so users made through AlterUserScramCredentials are SCRAM-only, as in Kafka).
//! SCRAM logins are checked against a [`CredentialStore`]: the broker's durable one, which the
//! file only bootstraps (see [`CredentialStore::bootstrap`]), so an exchange costs the broker
//! one HMAC, not 4096, and an altered credential counts from the next login.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::credentials::CredentialStore;
use super::scram::{Mechanism, ScramCredential};

/// A users file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("could not read the SASL users file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("SASL users file, line {line}: {what}")]
    Line { line: usize, what: String },
}

pub struct Users {
    passwords: HashMap<String, String>,
    scram: Arc<CredentialStore>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.passwords.keys().collect();
        names.sort();
        f.debug_struct("Users")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

impl Users {
    pub fn load(path: &Path) -> Result<Self, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, UsersError> {
        let mut passwords = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| UsersError::Line {
                line: i + 1,
                what: what.to_string(),
            };
            let (name, password) = line
                .split_once('=')
                .ok_or_else(|| bad("expected NAME=PASSWORD"))?;
            let name = name.trim();
            if name.is_empty() || password.is_empty() {
                return Err(bad("empty user name or password"));
            }
            if name.contains(',') || name.contains('=') {
                return Err(bad("a user name may not contain ',' or '='"));
            }
            if passwords
                .insert(name.to_string(), password.to_string())
                .is_some()
            {
                return Err(bad(&format!("user {name:?} appears twice")));
            }
        }
        // Until the broker hands its durable store over (`with_store`), an in-memory one
        // derived from the file.
        let scram = CredentialStore::in_memory();
        drop(scram.alter(
            scram.bootstrap_changes(passwords.iter().map(|(u, p)| (u.as_str(), p.as_str()))),
        ));
        let scram = Arc::new(scram);
        Ok(Users { passwords, scram })
    }

    /// These users, their SCRAM logins checked against `store` (the broker's durable store,
    /// which the caller has bootstrapped from [`Users::passwords`]).
    pub fn with_store(self, store: Arc<CredentialStore>) -> Self {
        Users {
            scram: store,
            ..self
        }
    }

    /// The file's users and passwords, for the SCRAM store's bootstrap.
    pub fn passwords(&self) -> impl Iterator<Item = (&str, &str)> {
        self.passwords.iter().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    pub fn password(&self, name: &str) -> Option<&str> {
        self.passwords.get(name).map(String::as_str)
    }

    pub fn scram(&self, name: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        self.scram.get(name, mechanism)
    }

    pub fn len(&self) -> usize {
        self.passwords.len()
    }

    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_passwords_and_refuses_bad_lines() {
        let users = Users::parse("# services\nalice=a=b c\n\n  bob = x\n").unwrap();
        assert_eq!(users.password("alice"), Some("a=b c"));
        assert_eq!(users.password("bob"), Some(" x"));
        assert!(users.scram("alice", Mechanism::Sha512).is_some());
        assert!(users.scram("carol", Mechanism::Sha256).is_none());
        for (bad, line) in [
            ("alice", 1),
            ("ok=1\n=x", 2),
            ("a=\n", 1),
            ("a=1\na=2", 2),
            ("a,b=1", 1),
        ] {
            match Users::parse(bad) {
                Err(UsersError::Line { line: l, .. }) => assert_eq!(l, line, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(!format!("{users:?}").contains("a=b c"));
    }
}
