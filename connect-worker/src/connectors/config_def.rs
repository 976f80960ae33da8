//! Config definitions: what a connector accepts, checked in one pass so that a bad config is
//! answered with every problem at once, and rendered as Kafka Connect's `validate` response.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    String,
    Int,
    Long,
    Boolean,
    List,
    Password,
    Class,
}

impl ConfigType {
    fn name(self) -> &'static str {
        match self {
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::List => "LIST",
            ConfigType::Password => "PASSWORD",
            ConfigType::Class => "CLASS",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConfigKey {
    pub name: &'static str,
    pub kind: ConfigType,
    /// None: required.
    pub default: Option<&'static str>,
    /// Allowed values (case-insensitive), if an enumeration.
    pub allowed: &'static [&'static str],
    pub group: &'static str,
    pub doc: &'static str,
}

impl ConfigKey {
    pub const fn new(
        name: &'static str,
        kind: ConfigType,
        default: Option<&'static str>,
        group: &'static str,
        doc: &'static str,
    ) -> Self {
        ConfigKey {
            name,
            kind,
            default,
            allowed: &[],
            group,
            doc,
        }
    }

    pub const fn one_of(mut self, allowed: &'static [&'static str]) -> Self {
        self.allowed = allowed;
        self
    }

    /// The problem with `value` for this key, if any.
    pub fn check(&self, value: Option<&str>) -> Option<String> {
        let Some(v) = value else {
            return self.default.is_none().then(|| {
                format!(
                    "Missing required configuration \"{}\" which has no default value.",
                    self.name
                )
            });
        };
        let v = v.trim();
        let bad = |what: &str| {
            Some(format!(
                "Invalid value {v} for configuration {}: {what}",
                self.name
            ))
        };
        match self.kind {
            ConfigType::Int if v.parse::<i32>().is_err() => return bad("Not a number of type INT"),
            ConfigType::Long if v.parse::<i64>().is_err() => {
                return bad("Not a number of type LONG")
            }
            ConfigType::Boolean
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") =>
            {
                return bad("Expected value to be either true or false")
            }
            _ => {}
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
            return bad(&format!(
                "String must be one of: {}",
                self.allowed.join(", ")
            ));
        }
        None
    }
}

/// Keys every connector has (Kafka's `ConnectorConfig`).
pub fn common_keys() -> Vec<ConfigKey> {
    use ConfigType::*;
    vec![
        ConfigKey::new(
            "name",
            String,
            None,
            "Common",
            "Globally unique name to use for this connector.",
        ),
        ConfigKey::new(
            "connector.class",
            Class,
            None,
            "Common",
            "Name or alias of the class for this connector.",
        ),
        ConfigKey::new(
            "tasks.max",
            Int,
            Some("1"),
            "Common",
            "Maximum number of tasks to use for this connector.",
        ),
        ConfigKey::new(
            "key.converter",
            Class,
            Some(""),
            "Common",
            "Converter class for keys.",
        ),
        ConfigKey::new(
            "value.converter",
            Class,
            Some(""),
            "Common",
            "Converter class for values.",
        ),
        ConfigKey::new(
            "errors.tolerance",
            String,
            Some("none"),
            "Error Handling",
            "Behavior for tolerating errors during connector operation.",
        )
        .one_of(&["none", "all"]),
        ConfigKey::new(
            "errors.log.enable",
            Boolean,
            Some("false"),
            "Error Handling",
            "Log failed records.",
        ),
        ConfigKey::new(
            "errors.deadletterqueue.topic.name",
            String,
            Some(""),
            "Error Handling",
            "Topic receiving records that failed (sink connectors).",
        ),
        ConfigKey::new(
            "errors.deadletterqueue.context.headers.enable",
            Boolean,
            Some("true"),
            "Error Handling",
            "Add error context headers to dead letter queue records.",
        ),
    ]
}

/// Every problem with `config` against `keys`, as (key, message).
pub fn check_all(keys: &[ConfigKey], config: &BTreeMap<String, String>) -> Vec<(String, String)> {
    keys.iter()
        .filter_map(|k| {
            k.check(config.get(k.name).map(String::as_str))
                .map(|m| (k.name.to_string(), m))
        })
        .collect()
}

/// Kafka Connect's `ConfigInfos` JSON.
pub fn validate_response(
    plugin_name: &str,
    keys: &[ConfigKey],
    config: &BTreeMap<String, String>,
    problems: &[(String, String)],
) -> Json {
    let mut groups: Vec<&str> = Vec::new();
    for k in keys {
        if !groups.contains(&k.group) {
            groups.push(k.group);
        }
    }
    let mut error_count = 0;
    let mut configs: Vec<Json> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let errors: Vec<&String> = problems.iter().filter(|(n, _)| n == k.name).map(|(_, m)| m).collect();
            error_count += errors.len();
            let value = config.get(k.name).map(|v| {
                if k.kind == ConfigType::Password { "[hidden]".to_string() } else { v.clone() }
            });
            json!({
                "definition": {
                    "name": k.name, "type": k.kind.name(), "required": k.default.is_none(),
                    "default_value": k.default, "importance": if k.default.is_none() { "HIGH" } else { "MEDIUM" },
                    "documentation": k.doc, "group": k.group, "width": "NONE", "display_name": k.name,
                    "dependents": [], "order": i + 1
                },
                "value": {"name": k.name, "value": value, "recommended_values": k.allowed, "errors": errors, "visible": true}
            })
        })
        .collect();
    // Problems on keys that have no definition (cross-field checks) still count.
    for (name, msg) in problems
        .iter()
        .filter(|(n, _)| !keys.iter().any(|k| k.name == n))
    {
        error_count += 1;
        configs.push(json!({
            "definition": {"name": name, "type": "STRING", "required": false, "default_value": null, "importance": "LOW",
                "documentation": "", "group": "Common", "width": "NONE", "display_name": name, "dependents": [], "order": -1},
            "value": {"name": name, "value": config.get(name), "recommended_values": [], "errors": [msg], "visible": true}
        }));
    }
    json!({"name": plugin_name, "error_count": error_count, "groups": groups, "configs": configs})
}

/// Typed reads of an already validated config.
pub trait ConfigExt {
    fn str_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str;
    fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> T;
    fn bool_or(&self, key: &str, default: bool) -> bool;
    fn list(&self, key: &str) -> Vec<String>;
}

impl ConfigExt for BTreeMap<String, String> {
    fn str_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .unwrap_or(default)
    }
    fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        self.get(key)
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default)
    }
    fn bool_or(&self, key: &str, default: bool) -> bool {
        self.get(key)
            .map(|s| s.trim().eq_ignore_ascii_case("true"))
            .unwrap_or(default)
    }
    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|s| {
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}
