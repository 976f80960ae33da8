//! The console's access to Kafka Connect, through its REST API only (so it works with
//! datasync's worker and Apache Kafka Connect alike): the first of the configured workers that
//! answers serves each request, as any worker of a Connect cluster answers the same.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::error::{ConsoleError, Result};

pub struct Connect {
    urls: Vec<String>,
    http: reqwest::Client,
    /// HTTP basic credentials for workers behind `--rest-basic-auth-users-file`.
    auth: Option<(String, String)>,
}

/// A task as the status endpoint reports it.
#[derive(Debug, Clone)]
pub struct TaskStatus {
    pub id: i64,
    pub state: String,
    pub worker_id: String,
    pub trace: Option<String>,
}

/// A connector with its status.
#[derive(Debug, Clone)]
pub struct ConnectorStatus {
    pub name: String,
    pub kind: String,
    pub state: String,
    pub worker_id: String,
    pub trace: Option<String>,
    pub tasks: Vec<TaskStatus>,
}

/// Problems Connect's validation found, by config key (`""` for the config as a whole).
pub type FieldErrors = BTreeMap<String, Vec<String>>;

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn status_of(name: &str, v: &Value) -> ConnectorStatus {
    let tasks = v["tasks"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| TaskStatus {
                    id: t["id"].as_i64().unwrap_or(-1),
                    state: text(&t["state"]),
                    worker_id: text(&t["worker_id"]),
                    trace: t["trace"].as_str().map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    ConnectorStatus {
        name: name.to_string(),
        kind: text(&v["type"]),
        state: text(&v["connector"]["state"]),
        worker_id: text(&v["connector"]["worker_id"]),
        trace: v["connector"]["trace"].as_str().map(str::to_string),
        tasks,
    }
}

impl Connect {
    /// Workers at `urls` without credentials, trusting the system's CAs.
    pub fn new(urls: &[String], timeout: Duration) -> Self {
        Self::secured(urls, timeout, None, None).unwrap_or_else(|_| Connect {
            urls: Vec::new(),
            http: reqwest::Client::new(),
            auth: None,
        })
    }

    /// Workers at `urls`, sent `auth` (user, password) as HTTP basic credentials and trusted
    /// when their certificate is signed by the PEM CA at `ca` (or a system root); an error
    /// says why the CA file is unusable.
    pub fn secured(
        urls: &[String],
        timeout: Duration,
        auth: Option<(String, String)>,
        ca: Option<&std::path::Path>,
    ) -> std::result::Result<Self, String> {
        let mut http = reqwest::Client::builder().use_rustls_tls().timeout(timeout);
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!("{}: no PEM certificate", ca.display()));
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        Ok(Connect {
            urls: urls
                .iter()
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            http: http.build().map_err(|e| e.to_string())?,
            auth,
        })
    }

    pub fn configured(&self) -> bool {
        !self.urls.is_empty()
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Sends a request to the first worker that answers; an error status becomes
    /// [`ConsoleError::Connect`] with Connect's message.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let mut failures = Vec::new();
        for base in &self.urls {
            let mut req = self.http.request(method.clone(), format!("{base}{path}"));
            if let Some((user, password)) = &self.auth {
                req = req.basic_auth(user, Some(password));
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let bytes = resp.bytes().await.unwrap_or_default();
                    let value: Value = if bytes.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&bytes)
                            .unwrap_or_else(|_| json!({"message": String::from_utf8_lossy(&bytes)}))
                    };
                    if status.is_success() {
                        return Ok(value);
                    }
                    return Err(ConsoleError::Connect {
                        status: status.as_u16(),
                        message: value["message"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| value.to_string()),
                    });
                }
                Err(e) => failures.push(format!("{base}: {e}")),
            }
        }
        if failures.is_empty() {
            failures.push("no Connect URL configured (--connect-urls)".into());
        }
        Err(ConsoleError::ConnectUnavailable(failures.join("; ")))
    }

    /// Every connector with its status, by name.
    pub async fn connectors(&self) -> Result<Vec<ConnectorStatus>> {
        let all = self
            .call(Method::GET, "/connectors?expand=status", None)
            .await?;
        let mut out: Vec<ConnectorStatus> = all
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(name, v)| status_of(name, &v["status"]))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn path(name: &str, rest: &str) -> String {
        let encoded: String = name
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("/connectors/{encoded}{rest}")
    }

    fn not_found(name: &str, e: ConsoleError) -> ConsoleError {
        match e {
            ConsoleError::Connect { status: 404, .. } => ConsoleError::NotFound {
                what: "connector",
                name: name.to_string(),
            },
            e => e,
        }
    }

    /// A connector's status and config.
    pub async fn connector(
        &self,
        name: &str,
    ) -> Result<(ConnectorStatus, BTreeMap<String, String>)> {
        let status = self
            .call(Method::GET, &Self::path(name, "/status"), None)
            .await
            .map_err(|e| Self::not_found(name, e))?;
        let config = self
            .call(Method::GET, &Self::path(name, "/config"), None)
            .await
            .map_err(|e| Self::not_found(name, e))?;
        let config = config
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default();
        Ok((status_of(name, &status), config))
    }

    /// Validates `config` with Connect's validation endpoint: the problems by field.
    pub async fn validate(&self, config: &serde_json::Map<String, Value>) -> Result<FieldErrors> {
        let mut errors = FieldErrors::new();
        let Some(class) = config.get("connector.class").and_then(Value::as_str) else {
            errors
                .entry("connector.class".into())
                .or_default()
                .push("connector.class is required".into());
            return Ok(errors);
        };
        let short = class.rsplit('.').next().unwrap_or(class);
        let path = format!("/connector-plugins/{short}/config/validate");
        let result = match self
            .call(Method::PUT, &path, Some(&Value::Object(config.clone())))
            .await
        {
            Ok(v) => v,
            Err(ConsoleError::Connect { status, message }) if status < 500 => {
                errors
                    .entry("connector.class".into())
                    .or_default()
                    .push(message);
                return Ok(errors);
            }
            Err(e) => return Err(e),
        };
        for c in result["configs"].as_array().into_iter().flatten() {
            let name = text(&c["value"]["name"]);
            for e in c["value"]["errors"].as_array().into_iter().flatten() {
                if let Some(e) = e.as_str() {
                    errors.entry(name.clone()).or_default().push(e.to_string());
                }
            }
        }
        Ok(errors)
    }

    /// Creates connector `name`, after validating its config: problems come back by field
    /// and nothing is created.
    pub async fn create(
        &self,
        name: &str,
        mut config: serde_json::Map<String, Value>,
    ) -> Result<std::result::Result<(), FieldErrors>> {
        // Connect validates `name` as part of the config, and accepts it there when it equals
        // the connector's name.
        config.insert("name".into(), Value::String(name.to_string()));
        let errors = self.validate(&config).await?;
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        let body = json!({ "name": name, "config": config });
        match self.call(Method::POST, "/connectors", Some(&body)).await {
            Ok(_) => Ok(Ok(())),
            Err(ConsoleError::Connect { status, message })
                if status == StatusCode::BAD_REQUEST.as_u16()
                    || status == StatusCode::CONFLICT.as_u16() =>
            {
                Ok(Err(FieldErrors::from([(String::new(), vec![message])])))
            }
            Err(e) => Err(e),
        }
    }

    /// `pause`, `resume`, `restart` or `delete`.
    pub async fn act(&self, name: &str, action: &str) -> Result<()> {
        let (method, path) = match action {
            "pause" => (Method::PUT, Self::path(name, "/pause")),
            "resume" => (Method::PUT, Self::path(name, "/resume")),
            "restart" => (
                Method::POST,
                Self::path(name, "/restart?includeTasks=true&onlyFailed=false"),
            ),
            "delete" => (Method::DELETE, Self::path(name, "")),
            other => {
                return Err(ConsoleError::BadRequest(format!(
                    "unknown action {other:?}"
                )))
            }
        };
        self.call(method, &path, None)
            .await
            .map(|_| ())
            .map_err(|e| Self::not_found(name, e))
    }
}
