//! Connector and task statuses: what this worker runs is kept in memory for REST and written to
//! the status topic; what other workers of the group run is answered from that topic. Each
//! report carries the generation of the task instance that made it, so a task that was replaced
//! cannot overwrite its successor's status.

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
        self.store.put(
            key,
            state.as_str(),
            trace.as_deref(),
            &self.worker_id,
            generation,
        );
    }

    /// Forgets a status locally (its work moved to another worker, who reports it now).
    pub fn forget(&self, key: &str) {
        self.statuses.lock().remove(key);
    }

    /// Waits until every status reported so far is in the topic.
    pub async fn flush(&self) {
        self.store.flush().await;
    }

    /// The store, to follow the topic.
    pub fn store(&self) -> &StatusStore {
        &self.store
    }

    pub fn get(&self, key: &str) -> Option<Status> {
        self.statuses.lock().get(key).cloned()
    }

    pub fn remove(&self, key: &str) {
        self.statuses.lock().remove(key);
        self.store.delete(key);
    }

    /// Kafka Connect's JSON for one status: this worker's own, else the newest in the status
    /// topic (reported by the worker that runs it), else UNASSIGNED.
    pub fn to_json(&self, key: &str, id: Option<usize>) -> Json {
        let (state, trace, worker) = match self.get(key) {
            Some(s) => (
                s.state.as_str().to_string(),
                s.trace,
                self.worker_id.clone(),
            ),
            None => match self.store.seen(key) {
                Some(s) => (s.state, s.trace, s.worker_id),
                None => (
                    State::Unassigned.as_str().to_string(),
                    None,
                    self.worker_id.clone(),
                ),
            },
        };
        let mut j = json!({"state": state, "worker_id": worker});
        if let Some(id) = id {
            j["id"] = json!(id);
        }
        if let Some(t) = trace {
            j["trace"] = json!(t);
        }
        j
    }

    /// The state name `to_json` would answer.
    pub fn state_name(&self, key: &str) -> String {
        match self.get(key) {
            Some(s) => s.state.as_str().to_string(),
            None => self
                .store
                .seen(key)
                .map(|s| s.state)
                .unwrap_or_else(|| State::Unassigned.as_str().to_string()),
        }
    }
}
