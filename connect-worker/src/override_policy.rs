//! Kafka's `connector.client.config.override.policy` (KIP-458): which Kafka client settings a
//! connector config may override with `producer.override.*`, `consumer.override.*` and
//! `admin.override.*`.
//!
//! An override reaches the worker's own Kafka clients, so whoever may create connectors could
//! otherwise point a task's clients at another cluster, change their security settings or tune
//! them past what the worker was sized for. As in Kafka the policy is the worker's: `None` (our
//! default, and Kafka's before 3.0) refuses every override, `Principal` allows only the client's
//! identity (`security.protocol`, `sasl.mechanism`, `sasl.jaas.config`), `All` allows everything.
//! Validation reports each refused key as Kafka does, and the task runners apply only overrides
//! the policy allows, so a config stored under a laxer policy gains nothing after a restart.

use std::fmt;
use std::str::FromStr;

use crate::connectors::Config;

/// The prefixes whose keys are client overrides.
pub const PREFIXES: [&str; 3] = [
    "producer.override.",
    "consumer.override.",
    "admin.override.",
];

/// Keys the `Principal` policy allows (Kafka's `PrincipalConnectorClientConfigOverridePolicy`).
const PRINCIPAL_KEYS: [&str; 3] = ["sasl.jaas.config", "sasl.mechanism", "security.protocol"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverridePolicy {
    #[default]
    None,
    Principal,
    All,
}

impl OverridePolicy {
    pub fn name(self) -> &'static str {
        match self {
            OverridePolicy::None => "None",
            OverridePolicy::Principal => "Principal",
            OverridePolicy::All => "All",
        }
    }

    /// Whether the client setting `key` (prefix removed) may be overridden.
    pub fn allows(self, key: &str) -> bool {
        match self {
            OverridePolicy::None => false,
            OverridePolicy::Principal => PRINCIPAL_KEYS.contains(&key),
            OverridePolicy::All => true,
        }
    }

    /// Every override in `config` the policy refuses, as (config key, message).
    pub fn violations(self, config: &Config) -> Vec<(String, String)> {
        config
            .keys()
            .filter_map(|key| {
                let client_key = PREFIXES.iter().find_map(|p| key.strip_prefix(p))?;
                (!self.allows(client_key)).then(|| {
                    (
                        key.clone(),
                        format!(
                            "The '{}' policy does not allow '{client_key}' to be overridden in the connector configuration. Set --connector-client-config-override-policy (env CONNECT_CONNECTOR_CLIENT_CONFIG_OVERRIDE_POLICY) to allow it.",
                            self.name()
                        ),
                    )
                })
            })
            .collect()
    }

    /// The overrides under `prefix` (e.g. `consumer.override.`) that the policy allows, with
    /// the prefix removed: what a task's client is configured with.
    pub fn overrides<'a>(
        self,
        config: &'a Config,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        config.iter().filter_map(move |(k, v)| {
            let key = k.strip_prefix(prefix)?;
            self.allows(key).then_some((key, v.as_str()))
        })
    }
}

impl fmt::Display for OverridePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OverridePolicy {
    type Err = String;

    /// Kafka's names, or its class names (`org.apache.kafka.connect.connector.policy.
    /// AllConnectorClientConfigOverridePolicy` and the like); case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        let simple = name.rsplit('.').next().unwrap_or(name);
        let simple = simple
            .strip_suffix("ConnectorClientConfigOverridePolicy")
            .unwrap_or(simple);
        match simple.to_ascii_lowercase().as_str() {
            "none" => Ok(OverridePolicy::None),
            "principal" => Ok(OverridePolicy::Principal),
            "all" => Ok(OverridePolicy::All),
            _ => Err(format!(
                "unknown connector client config override policy {name:?} (known: None, Principal, All)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: &[&str]) -> Config {
        keys.iter().map(|k| (k.to_string(), "v".into())).collect()
    }

    #[test]
    fn names_parse_like_kafkas() {
        assert_eq!("None".parse(), Ok(OverridePolicy::None));
        assert_eq!("all".parse(), Ok(OverridePolicy::All));
        assert_eq!(
            "org.apache.kafka.connect.connector.policy.PrincipalConnectorClientConfigOverridePolicy"
                .parse(),
            Ok(OverridePolicy::Principal)
        );
        assert!("some".parse::<OverridePolicy>().is_err());
    }

    #[test]
    fn each_policy_refuses_what_it_must() {
        let c = config(&[
            "consumer.override.auto.offset.reset",
            "producer.override.security.protocol",
            "admin.override.bootstrap.servers",
            "topics",
            "consumer.max.poll.records",
        ]);
        let keys = |p: OverridePolicy| -> Vec<String> {
            p.violations(&c).into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(
            keys(OverridePolicy::None),
            [
                "admin.override.bootstrap.servers",
                "consumer.override.auto.offset.reset",
                "producer.override.security.protocol"
            ]
        );
        assert_eq!(
            keys(OverridePolicy::Principal),
            [
                "admin.override.bootstrap.servers",
                "consumer.override.auto.offset.reset"
            ]
        );
        assert!(keys(OverridePolicy::All).is_empty());
        let (_, message) = &OverridePolicy::None.violations(&c)[0];
        assert!(message
            .starts_with("The 'None' policy does not allow 'bootstrap.servers' to be overridden"));
    }

    #[test]
    fn only_allowed_overrides_reach_clients() {
        let c = config(&[
            "consumer.override.fetch.min.bytes",
            "consumer.override.security.protocol",
            "producer.override.linger.ms",
        ]);
        let got = |p: OverridePolicy| -> Vec<&str> {
            p.overrides(&c, "consumer.override.")
                .map(|(k, _)| k)
                .collect()
        };
        assert!(got(OverridePolicy::None).is_empty());
        assert_eq!(got(OverridePolicy::Principal), ["security.protocol"]);
        assert_eq!(
            got(OverridePolicy::All),
            ["fetch.min.bytes", "security.protocol"]
        );
    }
}
