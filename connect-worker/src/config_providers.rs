//! Kafka Connect's config providers (KIP-297, KIP-887): a connector config may name a secret as
//! `${env:NAME}`, `${file:/path/to/file.properties:key}` or `${directory:/path/to/dir:file}`
//! instead of carrying it. The worker stores and shows the config as written (placeholders, not
//! secrets: `GET /connectors/{name}/config`, the `connect-configs` topic) and resolves it only
//! when it hands the config to a connector or task.
//!
//! As in Kafka, a worker resolves only the providers it was told to enable (`--config-providers`,
//! like `config.providers=env,file,directory`), since any connector config could otherwise read
//! the worker's environment and files; placeholders of other providers are left as written.
//! Unlike Kafka, which also leaves a placeholder whose variable or key is missing, a missing one
//! is an error that `validate` reports, so a typo is a clear 400 rather than a wrong password.
//!
//! The `file` and `directory` providers read only files inside the worker's `--allowed-paths`
//! (Kafka's `allowed.paths`, KIP-993), and nothing when none are set: otherwise enabling them
//! would let any connector config read any file the worker can.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;

use crate::allowed_paths::{AllowedPaths, PathError};
use crate::connectors::Config;

/// One kind of provider, by the name used in placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `${env:NAME}`: the worker's environment variable `NAME` (Kafka's EnvVarConfigProvider).
    Env,
    /// `${file:PATH:KEY}`: key `KEY` of the Java properties file `PATH` (FileConfigProvider).
    File,
    /// `${directory:DIR:FILE}`: the content of file `FILE` in `DIR` (DirectoryConfigProvider).
    Directory,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Env => "env",
            Provider::File => "file",
            Provider::Directory => "directory",
        }
    }
}

impl std::str::FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "env" => Ok(Provider::Env),
            "file" => Ok(Provider::File),
            "directory" => Ok(Provider::Directory),
            other => Err(format!(
                "unknown config provider {other:?} (known: env, file, directory)"
            )),
        }
    }
}

/// Why a placeholder could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("Could not resolve {placeholder} in {key}: environment variable {name} is not set")]
    MissingEnv {
        key: String,
        placeholder: String,
        name: String,
    },
    #[error("Could not resolve {placeholder} in {key}: {path} has no key {name}")]
    MissingKey {
        key: String,
        placeholder: String,
        path: String,
        name: String,
    },
    #[error("Could not resolve {placeholder} in {key}: cannot read {path}: {reason}")]
    Unreadable {
        key: String,
        placeholder: String,
        path: String,
        reason: String,
    },
    #[error("Could not resolve {placeholder} in {key}: the {provider} provider needs a path (${{{provider}:PATH:KEY}})")]
    MissingPath {
        key: String,
        placeholder: String,
        provider: &'static str,
    },
    /// The file is outside `--allowed-paths`, or cannot be resolved.
    #[error("Could not resolve {placeholder} in {key}: {source}")]
    Path {
        key: String,
        placeholder: String,
        source: PathError,
    },
}

impl ResolveError {
    /// The config key whose value holds the placeholder.
    pub fn key(&self) -> &str {
        match self {
            ResolveError::MissingEnv { key, .. }
            | ResolveError::MissingKey { key, .. }
            | ResolveError::Unreadable { key, .. }
            | ResolveError::MissingPath { key, .. }
            | ResolveError::Path { key, .. } => key,
        }
    }
}

/// Kafka's variable pattern: `${provider:[path:]key}`.
fn pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}").expect("a valid regular expression")
    })
}

/// The providers this worker resolves, and the directories their files may be in.
#[derive(Debug, Clone, Default)]
pub struct ConfigProviders {
    enabled: Vec<Provider>,
    allowed: AllowedPaths,
}

impl ConfigProviders {
    pub fn new(enabled: impl IntoIterator<Item = Provider>, allowed: AllowedPaths) -> Self {
        ConfigProviders {
            enabled: enabled.into_iter().collect(),
            allowed,
        }
    }

    fn enabled(&self, name: &str) -> Option<Provider> {
        self.enabled.iter().copied().find(|p| p.name() == name)
    }

    /// `config` with every placeholder of an enabled provider replaced by its value. Files are
    /// read once per call.
    pub fn resolve(&self, config: &Config) -> Result<Config, ResolveError> {
        if self.enabled.is_empty() {
            return Ok(config.clone());
        }
        let mut files: HashMap<String, Result<HashMap<String, String>, PathError>> = HashMap::new();
        let mut out = Config::new();
        for (key, value) in config {
            let mut resolved = String::with_capacity(value.len());
            let mut last = 0;
            for caps in pattern().captures_iter(value) {
                let whole = caps.get(0).expect("group 0 always matches");
                let Some(provider) = self.enabled(&caps[1]) else {
                    continue;
                };
                let path = caps.get(3).map(|m| m.as_str());
                let name = &caps[4];
                let placeholder = whole.as_str().to_string();
                let replacement = match (provider, path) {
                    (Provider::Env, _) => {
                        std::env::var(name).map_err(|_| ResolveError::MissingEnv {
                            key: key.clone(),
                            placeholder,
                            name: name.to_string(),
                        })?
                    }
                    (Provider::File | Provider::Directory, None) => {
                        return Err(ResolveError::MissingPath {
                            key: key.clone(),
                            placeholder,
                            provider: provider.name(),
                        })
                    }
                    (Provider::File, Some(path)) => {
                        let props = files.entry(path.to_string()).or_insert_with(|| {
                            self.allowed
                                .read_to_string(Path::new(path))
                                .map(|text| parse_properties(&text))
                        });
                        match props {
                            Ok(props) => props.get(name).cloned().ok_or_else(|| {
                                ResolveError::MissingKey {
                                    key: key.clone(),
                                    placeholder,
                                    path: path.to_string(),
                                    name: name.to_string(),
                                }
                            })?,
                            Err(e) => {
                                return Err(ResolveError::Path {
                                    key: key.clone(),
                                    placeholder,
                                    source: e.clone(),
                                })
                            }
                        }
                    }
                    (Provider::Directory, Some(dir)) => {
                        let file = Path::new(dir).join(name);
                        // Kafka's DirectoryConfigProvider only reads files directly in the
                        // directory, never through `..` or a subdirectory.
                        if name.contains('/') || name == ".." || name == "." {
                            return Err(ResolveError::Unreadable {
                                key: key.clone(),
                                placeholder,
                                path: file.display().to_string(),
                                reason: "not a file name in that directory".into(),
                            });
                        }
                        self.allowed
                            .read_to_string(&file)
                            .map_err(|source| ResolveError::Path {
                                key: key.clone(),
                                placeholder,
                                source,
                            })?
                    }
                };
                resolved.push_str(&value[last..whole.start()]);
                resolved.push_str(&replacement);
                last = whole.end();
            }
            resolved.push_str(&value[last..]);
            out.insert(key.clone(), resolved);
        }
        Ok(out)
    }

    /// What to store of task configs a connector built from `resolved` (the resolution of
    /// `raw`): a value the connector copied unchanged from a key holding placeholders goes back
    /// to the placeholders, so resolved secrets are not written to the config topic (Kafka's
    /// `reverseTransform`). Tasks resolve them again when they start.
    pub fn unresolve(&self, raw: &Config, resolved: &Config, task: &Config) -> Config {
        task.iter()
            .map(|(k, v)| match (raw.get(k), resolved.get(k)) {
                (Some(raw_v), Some(res_v)) if raw_v != res_v && v == res_v => {
                    (k.clone(), raw_v.clone())
                }
                _ => (k.clone(), v.clone()),
            })
            .collect()
    }
}

/// A Java properties file, as far as config files use it: `key=value` or `key: value` lines,
/// `#`/`!` comments, blank lines; a trailing backslash continues the line.
fn parse_properties(text: &str) -> HashMap<String, String> {
    let mut props = HashMap::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry.find(['=', ':']).unwrap_or(entry.len());
        let key = entry[..split].trim_end().to_string();
        let value = entry
            .get(split + 1..)
            .unwrap_or("")
            .trim_start()
            .to_string();
        props.insert(key, value);
    }
    props
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::config_of as config;

    #[test]
    fn provider_names_parse() {
        assert_eq!("env".parse::<Provider>(), Ok(Provider::Env));
        assert_eq!(" file ".parse::<Provider>(), Ok(Provider::File));
        assert_eq!("directory".parse::<Provider>(), Ok(Provider::Directory));
        assert!("vault".parse::<Provider>().unwrap_err().contains("vault"));
    }

    #[test]
    fn file_and_directory_placeholders_resolve_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let props = dir.path().join("db.properties");
        std::fs::write(
            &props,
            "# secrets\nuser = app\npassword: s3cr=t\nlong=a\\\n  b\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("token"), "t0k").unwrap();
        let p = props.display().to_string();
        let d = dir.path().display().to_string();
        let raw = config(&[
            ("connection.user", &format!("${{file:{p}:user}}")),
            ("connection.password", &format!("${{file:{p}:password}}")),
            (
                "long",
                &format!("x-${{file:{p}:long}}-${{directory:{d}:token}}"),
            ),
            ("other", "${vault:secret/db:password}"),
            ("plain", "no placeholder here, not even ${this"),
        ]);
        let providers = ConfigProviders::new(
            [Provider::File, Provider::Directory],
            AllowedPaths::new(&[dir.path().to_path_buf()]).unwrap(),
        );
        let resolved = providers.resolve(&raw).unwrap();
        assert_eq!(resolved["connection.user"], "app");
        assert_eq!(resolved["connection.password"], "s3cr=t");
        assert_eq!(resolved["long"], "x-ab-t0k");
        assert_eq!(resolved["other"], "${vault:secret/db:password}");
        assert_eq!(resolved["plain"], raw["plain"]);

        // Nothing enabled: nothing resolved.
        assert_eq!(ConfigProviders::default().resolve(&raw).unwrap(), raw);
    }

    #[test]
    fn missing_values_are_errors_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let providers = ConfigProviders::new(
            [Provider::Env, Provider::File, Provider::Directory],
            AllowedPaths::new(&[dir.path().to_path_buf()]).unwrap(),
        );
        let err = providers
            .resolve(&config(&[(
                "a",
                "${env:DATASYNC_SURELY_UNSET_VARIABLE_42}",
            )]))
            .unwrap_err();
        assert_eq!(err.key(), "a");
        assert!(err
            .to_string()
            .contains("DATASYNC_SURELY_UNSET_VARIABLE_42 is not set"));

        let props = dir.path().join("p.properties");
        std::fs::write(&props, "x=1\n").unwrap();
        let err = providers
            .resolve(&config(&[(
                "b",
                &format!("${{file:{}:y}}", props.display()),
            )]))
            .unwrap_err();
        assert!(err.to_string().contains("has no key y"), "{err}");
        let err = providers
            .resolve(&config(&[(
                "c",
                &format!("${{file:{}/nothing.properties:y}}", dir.path().display()),
            )]))
            .unwrap_err();
        assert!(err.to_string().contains("No such file"), "{err}");
        let err = providers
            .resolve(&config(&[("d", "${file:y}")]))
            .unwrap_err();
        assert!(err.to_string().contains("needs a path"), "{err}");
        let err = providers
            .resolve(&config(&[(
                "e",
                &format!("${{directory:{}:../etc}}", dir.path().display()),
            )]))
            .unwrap_err();
        assert!(err.to_string().contains("not a file name"), "{err}");
    }

    #[test]
    fn env_placeholders_resolve_from_the_environment() {
        // PATH is set in every environment the tests run in.
        let path = std::env::var("PATH").unwrap();
        let providers = ConfigProviders::new([Provider::Env], AllowedPaths::default());
        let resolved = providers.resolve(&config(&[("p", "${env:PATH}")])).unwrap();
        assert_eq!(resolved["p"], path);
    }

    #[test]
    fn unresolve_puts_placeholders_back_only_where_values_were_copied() {
        let raw = config(&[("password", "${env:PW}"), ("user", "app")]);
        let resolved = config(&[("password", "pw"), ("user", "app")]);
        let task = config(&[("password", "pw"), ("user", "app"), ("table", "t")]);
        let stored = ConfigProviders::new([Provider::Env], AllowedPaths::default())
            .unresolve(&raw, &resolved, &task);
        assert_eq!(stored["password"], "${env:PW}");
        assert_eq!(stored["user"], "app");
        assert_eq!(stored["table"], "t");
    }

    #[test]
    fn file_placeholders_only_read_allowed_paths() {
        let parent = tempfile::tempdir().unwrap();
        let allowed = parent.path().join("secrets");
        std::fs::create_dir(&allowed).unwrap();
        std::fs::write(allowed.join("ok.properties"), "k=v\n").unwrap();
        std::fs::write(parent.path().join("outside.properties"), "k=leak\n").unwrap();
        std::os::unix::fs::symlink(
            parent.path().join("outside.properties"),
            allowed.join("link.properties"),
        )
        .unwrap();
        let a = allowed.display().to_string();
        let p = parent.path().display().to_string();
        let providers = ConfigProviders::new(
            [Provider::File, Provider::Directory],
            AllowedPaths::new(std::slice::from_ref(&allowed)).unwrap(),
        );
        let ok = providers
            .resolve(&config(&[("x", &format!("${{file:{a}/ok.properties:k}}"))]))
            .unwrap();
        assert_eq!(ok["x"], "v");
        for placeholder in [
            "${file:/etc/hostname:x}".to_string(),
            format!("${{file:{p}/outside.properties:k}}"),
            format!("${{file:{a}/../outside.properties:k}}"),
            format!("${{file:{a}/link.properties:k}}"),
            format!("${{directory:{p}:outside.properties}}"),
            format!("${{directory:{a}:link.properties}}"),
        ] {
            let err = providers
                .resolve(&config(&[("x", &placeholder)]))
                .unwrap_err();
            assert!(
                matches!(err, ResolveError::Path { .. }),
                "{placeholder}: {err}"
            );
            assert!(!err.to_string().contains("leak"), "{err}");
        }
        // No allowed paths: refused, saying how to allow a directory.
        let none = ConfigProviders::new([Provider::File], AllowedPaths::default());
        let err = none
            .resolve(&config(&[("x", &format!("${{file:{a}/ok.properties:k}}"))]))
            .unwrap_err();
        assert!(err.to_string().contains("--allowed-paths"), "{err}");
    }
}
