//! Group-level configs (config resource type GROUP, 32; KIP-848): in Kafka 3.9
//! `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`, which override the
//! broker's defaults for groups of the new consumer protocol.
//!
//! This broker implements only the classic protocol, where Kafka ignores these configs too, so
//! they have no effect here. They are still validated, stored and described as Kafka 3.9 does,
//! because admin tools (`kafka-configs.sh --entity-type groups`, AdminClient) set and read them,
//! and a broker that refused them or forgot them would break those tools, not the groups.
//! Stored in `<data-dir>/group-configs.json`, replaced atomically on every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::durable_file::write_atomically;

const FILE: &str = "group-configs.json";

/// One group config: its broker-level synonym (the default) and the range the broker allows
/// (Kafka 3.9's defaults of `group.consumer.{min,max}.*`).
pub struct GroupConfigDef {
    pub name: &'static str,
    pub broker_synonym: &'static str,
    pub default: i64,
    pub min: i64,
    pub max: i64,
    pub doc: &'static str,
}

/// The group configs Kafka 3.9 knows.
pub static GROUP_DEFS: &[GroupConfigDef] = &[
    GroupConfigDef {
        name: "consumer.heartbeat.interval.ms",
        broker_synonym: "group.consumer.heartbeat.interval.ms",
        default: 5_000,
        min: 5_000,
        max: 15_000,
        doc: "heartbeat interval of consumer-protocol members (no effect on classic groups)",
    },
    GroupConfigDef {
        name: "consumer.session.timeout.ms",
        broker_synonym: "group.consumer.session.timeout.ms",
        default: 45_000,
        min: 45_000,
        max: 60_000,
        doc: "session timeout of consumer-protocol members (no effect on classic groups)",
    },
];

/// Why a group config change is refused (INVALID_CONFIG, as Kafka's GroupConfig validation).
#[derive(Debug, thiserror::Error)]
pub enum GroupConfigError {
    #[error("Unknown group config name: {0}")]
    Unknown(String),
    #[error("invalid value {value:?} for {name}: {why}")]
    Invalid {
        name: String,
        value: String,
        why: String,
    },
    #[error("could not store group configs: {0}")]
    Io(#[from] std::io::Error),
}

/// The overrides of every group that has some.
pub struct GroupConfigStore {
    dir: PathBuf,
    groups: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

impl GroupConfigStore {
    /// Loads the stored overrides (none if the file does not exist).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let groups = match std::fs::read(dir.join(FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{FILE}: {e}"))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(GroupConfigStore {
            dir: dir.to_path_buf(),
            groups: Mutex::new(groups),
        })
    }

    /// A group's overrides.
    pub fn get(&self, group: &str) -> BTreeMap<String, String> {
        self.groups.lock().get(group).cloned().unwrap_or_default()
    }

    /// Replaces a group's overrides (validated together first) and persists them.
    pub fn set(
        &self,
        group: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), GroupConfigError> {
        validate(&configs)?;
        if validate_only {
            return Ok(());
        }
        let mut groups = self.groups.lock();
        let previous = if configs.is_empty() {
            groups.remove(group)
        } else {
            groups.insert(group.to_string(), configs)
        };
        let bytes = serde_json::to_vec_pretty(&*groups).map_err(std::io::Error::other)?;
        if let Err(e) = write_atomically(&self.dir, FILE, &bytes) {
            match previous {
                Some(p) => groups.insert(group.to_string(), p),
                None => groups.remove(group),
            };
            return Err(e.into());
        }
        Ok(())
    }
}

/// Looks up a group config.
pub fn lookup(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_DEFS.iter().find(|d| d.name == name)
}

/// Checks a group's overrides: known names, integers within the broker's range, and the
/// heartbeat interval below the session timeout.
pub fn validate(configs: &BTreeMap<String, String>) -> Result<(), GroupConfigError> {
    let mut effective = BTreeMap::new();
    for def in GROUP_DEFS {
        effective.insert(def.name, def.default);
    }
    for (name, value) in configs {
        let def = lookup(name).ok_or_else(|| GroupConfigError::Unknown(name.clone()))?;
        let invalid = |why: String| GroupConfigError::Invalid {
            name: name.clone(),
            value: value.clone(),
            why,
        };
        let n: i64 = value
            .trim()
            .parse()
            .map_err(|_| invalid("not an integer".into()))?;
        if n < def.min || n > def.max {
            return Err(invalid(format!(
                "must be between {} and {} ({}.min/max)",
                def.min,
                def.max,
                def.broker_synonym.trim_end_matches(".ms")
            )));
        }
        effective.insert(def.name, n);
    }
    let heartbeat = effective
        .get("consumer.heartbeat.interval.ms")
        .copied()
        .unwrap_or(5_000);
    let session = effective
        .get("consumer.session.timeout.ms")
        .copied()
        .unwrap_or(45_000);
    if heartbeat >= session {
        return Err(GroupConfigError::Invalid {
            name: "consumer.heartbeat.interval.ms".into(),
            value: heartbeat.to_string(),
            why: format!("must be less than consumer.session.timeout.ms ({session})"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validates_names_ranges_and_stores_across_reopen() {
        assert!(validate(&configs(&[("consumer.session.timeout.ms", "50000")])).is_ok());
        assert!(matches!(
            validate(&configs(&[("session.timeout.ms", "50000")])),
            Err(GroupConfigError::Unknown(_))
        ));
        assert!(validate(&configs(&[("consumer.session.timeout.ms", "1000")])).is_err());
        assert!(validate(&configs(&[("consumer.heartbeat.interval.ms", "x")])).is_err());

        let dir = tempfile::tempdir().unwrap();
        let store = GroupConfigStore::open(dir.path()).unwrap();
        store
            .set(
                "g",
                configs(&[("consumer.session.timeout.ms", "50000")]),
                false,
            )
            .unwrap();
        store
            .set("h", configs(&[("consumer.session.timeout.ms", "1")]), false)
            .unwrap_err();
        let reopened = GroupConfigStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.get("g"),
            configs(&[("consumer.session.timeout.ms", "50000")])
        );
        assert!(reopened.get("h").is_empty());
    }
}
