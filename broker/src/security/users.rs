//! The users a SASL listener accepts, from `--sasl-users-file`: one `NAME=PASSWORD` per line
//! (`#` starts a comment), like the `user_NAME="PASSWORD"` entries of Kafka's PLAIN JAAS
//! configuration. PLAIN compares against the password; SCRAM gets credentials derived once at
//! startup with a random salt, so an exchange costs the broker one HMAC, not 4096.

use std::collections::HashMap;
use std::path::Path;

use super::scram::{Mechanism, ScramCredential, MIN_ITERATIONS};

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
    scram: HashMap<(String, Mechanism), ScramCredential>,
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
        let mut scram = HashMap::new();
        for (name, password) in &passwords {
            for mechanism in Mechanism::ALL {
                let salt: Vec<u8> = uuid::Uuid::new_v4().as_bytes().to_vec();
                let credential = ScramCredential::from_password(
                    mechanism,
                    password.as_bytes(),
                    &salt,
                    MIN_ITERATIONS,
                );
                scram.insert((name.clone(), mechanism), credential);
            }
        }
        Ok(Users { passwords, scram })
    }

    pub fn password(&self, name: &str) -> Option<&str> {
        self.passwords.get(name).map(String::as_str)
    }

    pub fn scram(&self, name: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        self.scram.get(&(name.to_string(), mechanism)).cloned()
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
