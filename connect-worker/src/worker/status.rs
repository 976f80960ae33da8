//! Connector and task statuses: kept in memory for REST, written to the status topic for
//! anything else that watches. Each report carries the generation of the task instance that
//! made it, so a task that was replaced cannot overwrite its successor's status.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value as Json};

use crate::storage::StatusStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
    Failed,
    Stopped,
    Unassigned,
    Restarting,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Failed => "FAILED",
            State::Stopped => "STOPPED",
            State::Unassigned => "UNASSIGNED",
            State::Restarting => "RESTARTING",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub trace: Option<String>,
    pub generation: u64,
}

pub struct StatusBoard {
    worker_id: String,
    store: Arc<StatusStore>,
    statuses: Mutex<HashMap<String, Status>>,
}

pub fn connector_key(name: &str) -> String {
    format!("status-connector-{name}")
}

pub fn task_key(name: &str, task: usize) -> String {
    format!("status-task-{name}-{task}")
}

impl StatusBoard {
    pub fn new(worker_id: &str, store: StatusStore) -> Self {
        StatusBoard {
            worker_id: worker_id.to_string(),
            store: Arc::new(store),
            statuses: Mutex::new(HashMap::new()),
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Records a status unless a newer generation already reported.
    pub fn set(&self, key: &str, state: State, trace: Option<String>, generation: u64) {
        {
            let mut m = self.statuses.lock();
            if m.get(key).is_some_and(|s| s.generation > generation) {
                return;
            }
            m.insert(
                key.to_string(),
                Status {
                    state,
                    trace: trace.clone(),
                    generation,
                },
            );
        }
        let (store, key, worker) = (self.store.clone(), key.to_string(), self.worker_id.clone());
        tokio::spawn(async move {
            store
                .put(&key, state.as_str(), trace.as_deref(), &worker, generation)
                .await
        });
    }

    pub fn get(&self, key: &str) -> Option<Status> {
        self.statuses.lock().get(key).cloned()
    }

    pub fn remove(&self, key: &str) {
        self.statuses.lock().remove(key);
        let (store, key) = (self.store.clone(), key.to_string());
        tokio::spawn(async move { store.delete(&key).await });
    }

    /// Kafka Connect's JSON for one status.
    pub fn to_json(&self, key: &str, id: Option<usize>) -> Json {
        let s = self.get(key).unwrap_or(Status {
            state: State::Unassigned,
            trace: None,
            generation: 0,
        });
        let mut j = json!({"state": s.state.as_str(), "worker_id": self.worker_id});
        if let Some(id) = id {
            j["id"] = json!(id);
        }
        if let Some(t) = s.trace {
            j["trace"] = json!(t);
        }
        j
    }
}
