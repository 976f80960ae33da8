//! SCRAM credentials as Kafka keeps them (KIP-554): per user and mechanism the salt, the
//! iteration count, StoredKey and ServerKey, never the password. They live in memory for logins
//! and are made durable in the compacted internal topic [`CREDENTIALS_TOPIC`] (one record per
//! user and mechanism, a null value deletes), which the broker replays at start, so what
//! AlterUserScramCredentials changed survives a crash and is what the next login checks.
//!
//! Record format (this broker's own; Kafka keeps these in its metadata log): key = i16 version
//! 0, user (i16-length string), i8 mechanism type (1 SHA-256, 2 SHA-512); value = i16 version 0,
//! i32 iterations, then salt, StoredKey and ServerKey each as i32 length and bytes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::RwLock;

use super::scram::{Mechanism, ScramCredential, MIN_ITERATIONS};
use crate::flush::Flusher;
use crate::topic::internal::{
    append_state_records, get_str, open_state_partition, put_str, replay_state,
};
use crate::topic::{Partition, TopicError, TopicRegistry};

/// The internal topic holding SCRAM credentials.
pub const CREDENTIALS_TOPIC: &str = "__datasync_scram_credentials";

/// One change of an AlterUserScramCredentials request, validated.
#[derive(Debug, Clone)]
pub enum Change {
    Upsert {
        user: String,
        mechanism: Mechanism,
        credential: ScramCredential,
    },
    Delete {
        user: String,
        mechanism: Mechanism,
    },
}

struct Durable {
    partition: Arc<Partition>,
    flusher: Flusher,
}

/// Every user's SCRAM credentials.
pub struct CredentialStore {
    durable: Option<Durable>,
    credentials: RwLock<HashMap<(String, Mechanism), ScramCredential>>,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore")
            .field("credentials", &self.credentials.read().len())
            .finish_non_exhaustive()
    }
}

impl CredentialStore {
    /// Creates the internal topic if needed and replays it.
    pub async fn open(topics: &TopicRegistry, flusher: Flusher) -> Result<Self, TopicError> {
        let partition = open_state_partition(topics, CREDENTIALS_TOPIC).await?;
        let credentials = replay(&partition)?;
        tracing::info!(credentials = credentials.len(), "loaded SCRAM credentials");
        Ok(CredentialStore {
            durable: Some(Durable { partition, flusher }),
            credentials: RwLock::new(credentials),
        })
    }

    /// A store that keeps nothing on disk (unit tests).
    pub fn in_memory() -> Self {
        CredentialStore {
            durable: None,
            credentials: RwLock::new(HashMap::new()),
        }
    }

    /// The credential a SCRAM login of `user` with `mechanism` is checked against.
    pub fn get(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        self.credentials
            .read()
            .get(&(user.to_string(), mechanism))
            .cloned()
    }

    /// The mechanisms and iteration counts of `user`'s credentials (empty: no such user).
    pub fn describe(&self, user: &str) -> Vec<(Mechanism, u32)> {
        let all = self.credentials.read();
        Mechanism::ALL
            .into_iter()
            .filter_map(|m| all.get(&(user.to_string(), m)).map(|c| (m, c.iterations)))
            .collect()
    }

    /// Every user with at least one credential, sorted.
    pub fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .credentials
            .read()
            .keys()
            .map(|(u, _)| u.clone())
            .collect();
        users.sort();
        users.dedup();
        users
    }

    /// Whether `user` has a credential for `mechanism`.
    pub fn contains(&self, user: &str, mechanism: Mechanism) -> bool {
        self.credentials
            .read()
            .contains_key(&(user.to_string(), mechanism))
    }

    /// Applies `changes` now (the next login sees them) and gives the future that resolves
    /// once they are on disk. A deletion of a missing credential is skipped (the API handler
    /// answers RESOURCE_NOT_FOUND before it gets here).
    pub fn alter(
        &self,
        changes: Vec<Change>,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let applied = self.apply(changes);
        let durable = self
            .durable
            .as_ref()
            .map(|d| (d.flusher.clone(), d.partition.clone()));
        async move {
            match (applied?, durable) {
                (true, Some((flusher, partition))) => flusher.commit(partition).await,
                _ => Ok(()),
            }
        }
    }

    fn apply(&self, changes: Vec<Change>) -> Result<bool, String> {
        if changes.is_empty() {
            return Ok(false);
        }
        // Locked across the append so that log order and map order agree.
        let mut all = self.credentials.write();
        if let Some(durable) = &self.durable {
            let records: Vec<(Bytes, Option<Bytes>)> = changes
                .iter()
                .map(|change| match change {
                    Change::Upsert {
                        user,
                        mechanism,
                        credential,
                    } => (encode_key(user, *mechanism), Some(encode_value(credential))),
                    Change::Delete { user, mechanism } => (encode_key(user, *mechanism), None),
                })
                .collect();
            append_state_records(&durable.partition, "SCRAM credentials", &records)?;
        }
        for change in changes {
            match change {
                Change::Upsert {
                    user,
                    mechanism,
                    credential,
                } => {
                    all.insert((user, mechanism), credential);
                }
                Change::Delete { user, mechanism } => {
                    all.remove(&(user, mechanism));
                }
            }
        }
        Ok(true)
    }

    /// The `--sasl-users-file` bootstrap: every file user gets a credential (random salt,
    /// [`MIN_ITERATIONS`]) for each mechanism it has none for. Credentials already stored, set
    /// by AlterUserScramCredentials or an earlier start, win over the file.
    pub async fn bootstrap<'a>(
        &self,
        users: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<usize, String> {
        let changes = self.bootstrap_changes(users);
        let n = changes.len();
        self.alter(changes).await?;
        Ok(n)
    }

    /// What [`CredentialStore::bootstrap`] would upsert.
    pub fn bootstrap_changes<'a>(
        &self,
        users: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for (user, password) in users {
            for mechanism in Mechanism::ALL {
                if self.contains(user, mechanism) {
                    continue;
                }
                let salt = uuid::Uuid::new_v4().as_bytes().to_vec();
                changes.push(Change::Upsert {
                    user: user.to_string(),
                    mechanism,
                    credential: ScramCredential::from_password(
                        mechanism,
                        password.as_bytes(),
                        &salt,
                        MIN_ITERATIONS,
                    ),
                });
            }
        }
        changes
    }
}

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

fn encode_key(user: &str, mechanism: Mechanism) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(KEY_VERSION);
    put_str(&mut buf, user);
    buf.put_i8(mechanism.kafka_type());
    buf.freeze()
}

fn decode_key(mut buf: Bytes) -> Option<(String, Mechanism)> {
    if buf.remaining() < 2 || buf.get_i16() != KEY_VERSION {
        return None;
    }
    let user = get_str(&mut buf)?;
    if buf.remaining() < 1 {
        return None;
    }
    Some((user, Mechanism::from_kafka_type(buf.get_i8())?))
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

fn get_bytes(buf: &mut Bytes) -> Option<Vec<u8>> {
    if buf.remaining() < 4 {
        return None;
    }
    let len = usize::try_from(buf.get_i32()).ok()?;
    (buf.remaining() >= len).then(|| buf.split_to(len).to_vec())
}

fn encode_value(c: &ScramCredential) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(VALUE_VERSION);
    buf.put_i32(c.iterations as i32);
    put_bytes(&mut buf, &c.salt);
    put_bytes(&mut buf, &c.stored_key);
    put_bytes(&mut buf, &c.server_key);
    buf.freeze()
}

fn decode_value(mut buf: Bytes) -> Option<ScramCredential> {
    if buf.remaining() < 6 || buf.get_i16() != VALUE_VERSION {
        return None;
    }
    let iterations = u32::try_from(buf.get_i32()).ok()?;
    Some(ScramCredential {
        salt: get_bytes(&mut buf)?,
        stored_key: get_bytes(&mut buf)?,
        server_key: get_bytes(&mut buf)?,
        iterations,
    })
}

type Credentials = HashMap<(String, Mechanism), ScramCredential>;

fn replay(partition: &Partition) -> Result<Credentials, TopicError> {
    let mut credentials = HashMap::new();
    replay_state(partition, |key, value| {
        let Some(key) = decode_key(key) else {
            return;
        };
        match value.and_then(decode_value) {
            Some(value) => {
                credentials.insert(key, value);
            }
            None => {
                credentials.remove(&key);
            }
        }
    })?;
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_ignored() {
        let c = ScramCredential::from_password(Mechanism::Sha512, b"pw", b"salt", 4096);
        let (user, m) = decode_key(encode_key("alice", Mechanism::Sha512)).unwrap();
        assert_eq!((user.as_str(), m), ("alice", Mechanism::Sha512));
        let back = decode_value(encode_value(&c)).unwrap();
        assert_eq!(back.salt, c.salt);
        assert_eq!(back.stored_key, c.stored_key);
        assert_eq!(back.server_key, c.server_key);
        assert_eq!(back.iterations, 4096);
        assert!(decode_value(Bytes::from_static(&[0, 0, 0, 0, 16, 0, 0, 0, 0, 9])).is_none());
        assert!(decode_key(Bytes::from_static(&[0, 0, 0, 1, b'a', 7])).is_none());
    }

    #[tokio::test]
    async fn stored_credentials_win_over_the_bootstrap_file() {
        let store = CredentialStore::in_memory();
        let new = ScramCredential::from_password(Mechanism::Sha256, b"new", b"s", 4096);
        store
            .alter(vec![Change::Upsert {
                user: "alice".into(),
                mechanism: Mechanism::Sha256,
                credential: new.clone(),
            }])
            .await
            .unwrap();
        let added = store
            .bootstrap([("alice", "old"), ("bob", "b")])
            .await
            .unwrap();
        assert_eq!(added, 3);
        assert_eq!(
            store.get("alice", Mechanism::Sha256).unwrap().stored_key,
            new.stored_key
        );
        assert_eq!(store.users(), vec!["alice".to_string(), "bob".to_string()]);
        store
            .alter(vec![Change::Delete {
                user: "bob".into(),
                mechanism: Mechanism::Sha512,
            }])
            .await
            .unwrap();
        assert_eq!(store.describe("bob"), vec![(Mechanism::Sha256, 4096)]);
    }
}
