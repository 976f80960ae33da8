//! The herder owns the connectors: it validates and stores configs, computes task configs,
//! starts/stops/restarts task runners and answers the REST API's questions. Every change is
//! written to the config topic before it is acted on, so a restarted worker (even after
//! `kill -9`) replays the topic and resumes each connector in its target state.
//!
//! Several workers form a group (see [`crate::distributed`]): every worker follows the config
//! topic ([`Herder::apply_view`]) and so knows every connector, but runs only the tasks the
//! group's leader assigns it ([`Herder::apply_assignment`]); revoked tasks are stopped, and
//! their statuses written, before the assignment is acknowledged. Changes (REST writes) are made
//! by the leader, to which the REST layer forwards them; a worker that knows no leader yet (a
//! single worker starting) makes them itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value as Json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::connectors::config_def::{self, ConfigExt};
use crate::connectors::{self, Config, ConnectorKind, ConnectorPlugin, Task, TopicPartition};
use crate::converters;
use crate::distributed::assignor::Work;
use crate::distributed::coordinator::AssignmentEvent;
use crate::error::{chain, ConnectError, Result};
use crate::storage::{ConfigStore, ConfigView, RestartRequest, StoredConnector, TargetState};
use crate::worker::sink_runner::SinkRun;
use crate::worker::source_runner::SourceRun;
use crate::worker::status::{connector_key, task_key};
use crate::worker::{mask_secrets, State, TaskHandle, TaskRun, WorkerContext};

/// Task configs computed by a connector, or the trace of its failure.
type TaskPlan = std::result::Result<Vec<Config>, String>;

/// Upper bound of `tasks.max`: one worker runs every task, each sink task on its own blocking
/// thread (tokio allows 512), and connectors build all task configs up front.
pub const MAX_TASKS: i64 = 256;

struct ConnectorRuntime {
    config: Config,
    plugin: Arc<dyn ConnectorPlugin>,
    target: TargetState,
    task_configs: Vec<Config>,
    tasks: Vec<Option<TaskHandle>>,
    applied: Arc<Mutex<BTreeMap<TopicPartition, i64>>>,
}

pub struct Herder {
    plugins: Vec<Arc<dyn ConnectorPlugin>>,
    ctx: Arc<WorkerContext>,
    store: ConfigStore,
    /// Connectors in creation order.
    connectors: tokio::sync::Mutex<Vec<(String, ConnectorRuntime)>>,
    generation: AtomicU64,
    /// The connectors and tasks the group assigned this worker.
    assigned: Mutex<BTreeSet<Work>>,
    /// The leader's advertised REST URL, once an assignment named it.
    leader_url: Mutex<Option<String>>,
    /// This worker's advertised REST URL.
    url: String,
    /// The offset of the newest restart request acted on.
    restarts_seen: Mutex<i64>,
}

/// The result of validating a config: the plugin and every problem found.
pub struct Validation {
    pub plugin: Option<Arc<dyn ConnectorPlugin>>,
    pub keys: Vec<config_def::ConfigKey>,
    pub problems: Vec<(String, String)>,
}

impl Herder {
    pub fn new(ctx: Arc<WorkerContext>, store: ConfigStore, url: &str) -> Self {
        Herder {
            plugins: connectors::registry(&ctx.allowed_paths),
            ctx,
            store,
            connectors: tokio::sync::Mutex::new(Vec::new()),
            generation: AtomicU64::new(1),
            assigned: Mutex::new(BTreeSet::new()),
            leader_url: Mutex::new(None),
            url: url.to_string(),
            restarts_seen: Mutex::new(-1),
        }
    }

    /// This worker's advertised REST URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The leader's REST URL when another worker leads the group: where writes go.
    pub fn forward_to(&self) -> Option<String> {
        let leader = self.leader_url.lock().clone()?;
        let same = leader.trim_end_matches('/') == self.url.trim_end_matches('/');
        (!leader.is_empty() && !same).then_some(leader)
    }

    fn owns(&self, name: &str, id: usize) -> bool {
        let id = i32::try_from(id).unwrap_or(i32::MAX);
        self.assigned.lock().contains(&Work::task(name, id))
    }

    /// Applies one assignment of the group: stops the revoked tasks (their statuses written
    /// before this returns, so their next owner's are newer), then starts the assigned ones
    /// from configs read at least to the leader's offset.
    pub async fn apply_assignment(&self, ev: AssignmentEvent, view: ConfigView) {
        let mut all = self.connectors.lock().await;
        self.reconcile(&mut all, &view);
        for w in &ev.revoked {
            let Ok(id) = usize::try_from(w.task) else {
                continue;
            };
            let key = task_key(&w.connector, id);
            if let Some(rt) = all
                .iter_mut()
                .find(|(n, _)| *n == w.connector)
                .map(|(_, rt)| rt)
            {
                if let Some(h) = rt.tasks.get_mut(id).and_then(Option::take) {
                    tracing::info!(connector = %w.connector, task = id, "stopping revoked task");
                    h.stop().await;
                }
                let generation = self.generation.fetch_add(1, Ordering::SeqCst);
                self.ctx
                    .status
                    .set(&key, State::Unassigned, None, generation);
            }
            self.ctx.status.forget(&key);
        }
        {
            let mut assigned = self.assigned.lock();
            for w in &ev.revoked {
                assigned.remove(w);
            }
            assigned.extend(ev.assigned.iter().cloned());
        }
        if ev.generation_id >= 0 {
            *self.leader_url.lock() = Some(ev.leader_url.clone());
        }
        for w in &ev.assigned {
            let Ok(id) = usize::try_from(w.task) else {
                continue;
            };
            if let Some(rt) = all
                .iter_mut()
                .find(|(n, _)| *n == w.connector)
                .map(|(_, rt)| rt)
            {
                self.start_owned(&w.connector, rt, Some(id));
            }
        }
        drop(all);
        self.ctx.status.flush().await;
        tracing::info!(
            generation = ev.generation_id,
            assigned = ev.assigned.len(),
            revoked = ev.revoked.len(),
            "assignment applied"
        );
        let _ = ev.applied.send(());
        self.process_restarts(&view).await;
    }

    /// Starts the tasks of `rt` this worker owns and does not run (only `only`, if given).
    fn start_owned(&self, name: &str, rt: &mut ConnectorRuntime, only: Option<usize>) {
        if rt.target == TargetState::Stopped {
            return;
        }
        if rt.tasks.len() < rt.task_configs.len() {
            rt.tasks.resize_with(rt.task_configs.len(), || None);
        }
        for id in 0..rt.task_configs.len() {
            if only.is_some_and(|o| o != id) || rt.tasks[id].is_some() {
                continue;
            }
            self.start_task(name, rt, id);
        }
    }

    /// Follows the config topic: connectors created, changed or deleted by the leader (or
    /// another worker before a group formed) are applied here too.
    pub async fn apply_view(&self, view: ConfigView) {
        let mut all = self.connectors.lock().await;
        self.reconcile(&mut all, &view);
        drop(all);
        self.process_restarts(&view).await;
    }

    /// Acts on the restart requests of `view` not yet seen (KIP-745, as Kafka's
    /// `DistributedHerder::processRestartRequests`): the leader, which runs the connectors'
    /// own instances here, restarts the connector; every worker restarts the tasks it owns
    /// that the request names, each reported RESTARTING first. Each worker decides from the
    /// statuses it knows when it reads the request, as Kafka's do.
    async fn process_restarts(&self, view: &ConfigView) {
        let fresh: Vec<RestartRequest> = {
            let mut seen = self.restarts_seen.lock();
            let fresh = view
                .restarts
                .iter()
                .filter(|r| r.offset > *seen)
                .cloned()
                .collect();
            if let Some(last) = view.restarts.last() {
                *seen = (*seen).max(last.offset);
            }
            fresh
        };
        for r in fresh {
            tracing::info!(connector = %r.connector, task = ?r.task, include_tasks = r.include_tasks, only_failed = r.only_failed, "restart request");
            self.act_on_restart(&r).await;
        }
    }

    /// The state `key` has as this worker knows it (another worker's from the status topic).
    fn state_of(&self, key: &str) -> String {
        self.ctx.status.to_json(key, None)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn act_on_restart(&self, r: &RestartRequest) {
        let name = r.connector.as_str();
        let failed = State::Failed.as_str();
        if r.task.is_none()
            && self.forward_to().is_none()
            && (!r.only_failed || self.state_of(&connector_key(name)) == failed)
        {
            if let Err(e) = self.restart_connector_instance(name).await {
                tracing::warn!(connector = %name, error = %e, "restarting the connector");
            }
        }
        if !r.include_tasks {
            return;
        }
        let mut all = self.connectors.lock().await;
        let Ok(rt) = runtime_mut(&mut all, name) else {
            return;
        };
        if rt.target == TargetState::Stopped {
            return;
        }
        for id in 0..rt.task_configs.len() {
            if r.task.is_some_and(|t| t != id) || !self.owns(name, id) {
                continue;
            }
            if r.only_failed && self.state_of(&task_key(name, id)) != failed {
                continue;
            }
            self.restart_owned_task(name, rt, id).await;
        }
    }

    /// Restarts a task this worker owns, reported RESTARTING first.
    async fn restart_owned_task(&self, name: &str, rt: &mut ConnectorRuntime, id: usize) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst);
        self.ctx
            .status
            .set(&task_key(name, id), State::Restarting, None, generation);
        self.restart_task_locked(name, rt, id).await;
    }

    /// Restarts the connector's own instance (Kafka's plain `POST /connectors/{name}/restart`):
    /// its task configs are computed again; its tasks restart only if those changed (or the
    /// connector failed and had none).
    async fn restart_connector_instance(&self, name: &str) -> Result<()> {
        let (config, plugin, target) = self.snapshot(name).await?;
        if target == TargetState::Stopped {
            return Ok(());
        }
        let g = self.generation.fetch_add(1, Ordering::SeqCst);
        self.ctx
            .status
            .set(&connector_key(name), State::Restarting, None, g);
        let tasks = self.plan_tasks(&config, &plugin).await;
        let mut all = self.connectors.lock().await;
        let rt = runtime_mut(&mut all, name)?;
        if rt.config != config || rt.target == TargetState::Stopped {
            // Changed meanwhile: whoever changed it started it anew.
            return Ok(());
        }
        match &tasks {
            Ok(t) if *t == rt.task_configs && !t.is_empty() => {
                let g = self.generation.fetch_add(1, Ordering::SeqCst);
                let state = if rt.target == TargetState::Paused {
                    State::Paused
                } else {
                    State::Running
                };
                self.ctx.status.set(&connector_key(name), state, None, g);
            }
            _ => {
                self.stop_tasks(name, rt).await;
                self.start_connector(name, rt, true, Some((config, tasks)))
                    .await;
            }
        }
        tracing::info!(connector = %name, "connector restarted");
        Ok(())
    }

    fn reconcile_skip(&self, view: &ConfigView) -> bool {
        // This worker's own latest writes are in memory already; an older view would undo them.
        view.offset < self.store.written()
    }

    fn reconcile(&self, all: &mut Vec<(String, ConnectorRuntime)>, view: &ConfigView) {
        if self.reconcile_skip(view) {
            return;
        }
        let mut keep: Vec<(String, ConnectorRuntime)> = Vec::with_capacity(view.connectors.len());
        let mut old: Vec<(String, ConnectorRuntime)> = std::mem::take(all);
        for (name, stored) in &view.connectors {
            let existing = old
                .iter()
                .position(|(n, _)| n == name)
                .map(|i| old.remove(i));
            match existing {
                Some((_, mut rt)) => {
                    self.update_runtime(name, &mut rt, stored);
                    keep.push((name.clone(), rt));
                }
                None => {
                    let class = stored
                        .config
                        .get("connector.class")
                        .cloned()
                        .unwrap_or_default();
                    let Some(plugin) = connectors::find_plugin(&self.plugins, &class) else {
                        tracing::error!(connector = %name, class, "connector has an unknown class; skipping");
                        continue;
                    };
                    let mut rt = ConnectorRuntime {
                        config: stored.config.clone(),
                        plugin,
                        target: stored.target,
                        task_configs: stored.tasks.clone(),
                        tasks: Vec::new(),
                        applied: Arc::default(),
                    };
                    self.start_owned(name, &mut rt, None);
                    keep.push((name.clone(), rt));
                }
            }
        }
        // Deleted: stop what runs here (its task handles stop in the background).
        for (name, mut rt) in old {
            tracing::info!(connector = %name, "connector deleted");
            for h in rt.tasks.iter_mut().filter_map(Option::take) {
                tokio::spawn(h.stop());
            }
            self.ctx.status.forget(&connector_key(&name));
            for id in 0..rt.task_configs.len() {
                self.ctx.status.forget(&task_key(&name, id));
            }
        }
        *all = keep;
    }

    /// Brings a known connector to its stored state: new task configs restart its tasks here,
    /// a new target state is passed on.
    fn update_runtime(&self, name: &str, rt: &mut ConnectorRuntime, stored: &StoredConnector) {
        let tasks_changed = rt.task_configs != stored.tasks;
        let target_changed = rt.target != stored.target;
        if rt.config != stored.config {
            if let Some(plugin) = stored
                .config
                .get("connector.class")
                .and_then(|c| connectors::find_plugin(&self.plugins, c))
            {
                rt.plugin = plugin;
            }
            rt.config = stored.config.clone();
        }
        if !tasks_changed && !target_changed {
            return;
        }
        // The leader reports the connector's own status now.
        self.ctx.status.forget(&connector_key(name));
        if tasks_changed || stored.target == TargetState::Stopped {
            for (id, h) in rt.tasks.iter_mut().enumerate() {
                if let Some(h) = h.take() {
                    tracing::info!(connector = %name, task = id, "stopping task for new configs");
                    tokio::spawn(h.stop());
                }
            }
            rt.task_configs = stored.tasks.clone();
            rt.tasks = (0..rt.task_configs.len()).map(|_| None).collect();
        }
        rt.target = stored.target;
        if stored.target != TargetState::Stopped {
            for h in rt.tasks.iter().flatten() {
                let _ = h.target.send(stored.target);
            }
            self.start_owned(name, rt, None);
        }
    }

    pub fn plugins(&self) -> &[Arc<dyn ConnectorPlugin>] {
        &self.plugins
    }

    /// The worker's task metrics.
    pub fn metrics(&self) -> &crate::metrics::ConnectMetrics {
        &self.ctx.metrics
    }

    pub fn worker_id(&self) -> &str {
        &self.ctx.worker_id
    }

    /// Starts what the config topic holds.
    pub async fn resume_stored(&self, stored: Vec<(String, crate::storage::StoredConnector)>) {
        let mut all = self.connectors.lock().await;
        for (name, s) in stored {
            let class = s.config.get("connector.class").cloned().unwrap_or_default();
            let Some(plugin) = connectors::find_plugin(&self.plugins, &class) else {
                tracing::error!(connector = %name, class, "stored connector has an unknown class; skipping");
                continue;
            };
            tracing::info!(connector = %name, state = s.target.as_str(), "resuming stored connector");
            let mut rt = ConnectorRuntime {
                config: s.config,
                plugin,
                target: s.target,
                task_configs: s.tasks,
                tasks: Vec::new(),
                applied: Arc::default(),
            };
            self.start_connector(&name, &mut rt, false, None).await;
            all.push((name, rt));
        }
    }

    pub fn validate(&self, raw: &Config) -> Validation {
        // Placeholders (`${env:...}`) are checked as the connector will see them: resolved.
        let (resolved, unresolvable) = match self.ctx.providers.resolve(raw) {
            Ok(resolved) => (resolved, None),
            Err(e) => (raw.clone(), Some((e.key().to_string(), e.to_string()))),
        };
        let config = &resolved;
        let mut keys = config_def::common_keys();
        let class = config
            .get("connector.class")
            .map(|s| s.trim())
            .unwrap_or("");
        let plugin = connectors::find_plugin(&self.plugins, class);
        let mut problems: Vec<(String, String)> = unresolvable.into_iter().collect();
        match &plugin {
            None if class.is_empty() => {}
            None => problems.push((
                "connector.class".to_string(),
                format!("Failed to find any class that implements Connector and which name matches {class}"),
            )),
            Some(p) => {
                if p.kind() == ConnectorKind::Sink {
                    keys.push(config_def::ConfigKey::new("topics", config_def::ConfigType::List, Some(""), "Common", "Topics to consume."));
                    keys.push(config_def::ConfigKey::new("topics.regex", config_def::ConfigType::String, Some(""), "Common", "Regular expression of topics to consume."));
                }
                keys.extend(p.config_keys());
                if p.kind() == ConnectorKind::Source {
                    keys.extend(crate::worker::exactly_once::config_keys());
                    problems.extend(crate::worker::exactly_once::violations(config, self.ctx.exactly_once_source));
                }
            }
        }
        problems.extend(config_def::check_all(&keys, config));
        problems.extend(self.ctx.override_policy.violations(config));
        if let Some(p) = &plugin {
            if p.kind() == ConnectorKind::Sink {
                let topics = config.list("topics");
                let regex = config.str_or("topics.regex", "");
                if topics.is_empty() && regex.is_empty() {
                    problems.push((
                        "topics".into(),
                        "Must configure one of topics or topics.regex".into(),
                    ));
                } else if !topics.is_empty() && !regex.is_empty() {
                    problems.push((
                        "topics".into(),
                        "topics and topics.regex are mutually exclusive options, but both are set."
                            .into(),
                    ));
                }
                if !regex.is_empty() {
                    if let Err(e) = regex::Regex::new(regex) {
                        problems.push((
                            "topics.regex".into(),
                            format!("Invalid value {regex} for configuration topics.regex: {e}"),
                        ));
                    }
                }
                let dlq = config.str_or("errors.deadletterqueue.topic.name", "");
                if !dlq.is_empty() && topics.iter().any(|t| t == dlq) {
                    problems.push(("errors.deadletterqueue.topic.name".into(), format!("The DLQ topic '{dlq}' may not be included in the list of topics ('topics=...') consumed by the connector")));
                }
            }
            problems.extend(p.validate(config));
        }
        let tasks_max = config.parse_or("tasks.max", 1i64);
        if tasks_max < 1 {
            problems.push((
                "tasks.max".into(),
                "Invalid value for configuration tasks.max: Value must be at least 1".into(),
            ));
        } else if tasks_max > MAX_TASKS {
            // Connectors build one config per task up front (tasks.max=2147483647 would exhaust
            // memory), and every sink task holds a blocking thread of this one worker.
            problems.push((
                "tasks.max".into(),
                format!("Invalid value {tasks_max} for configuration tasks.max: Value must be no more than {MAX_TASKS}"),
            ));
        }
        for prefix in ["key.converter", "value.converter"] {
            if config.get(prefix).is_some_and(|c| !c.trim().is_empty()) {
                if let Err(e) = converters::from_config(config, prefix) {
                    problems.push((prefix.to_string(), e));
                }
            }
        }
        Validation {
            plugin,
            keys,
            problems,
        }
    }

    /// Creates (`allow_update` false: 409 if it exists) or replaces a connector. Returns
    /// (created, info).
    pub async fn put_connector(
        &self,
        name: &str,
        mut config: Config,
        allow_update: bool,
    ) -> Result<(bool, Json)> {
        if name.trim().is_empty() {
            return Err(ConnectError::BadRequest(
                "Connector name must not be empty".into(),
            ));
        }
        if name.contains('/') || name.chars().any(char::is_control) {
            return Err(ConnectError::BadRequest(format!(
                "Connector name {name:?} contains invalid characters"
            )));
        }
        match config.get("name") {
            Some(n) if n != name => {
                return Err(ConnectError::BadRequest(format!(
                    "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                )))
            }
            _ => {
                config.insert("name".into(), name.to_string());
            }
        }
        let v = self.validate(&config);
        let problems: Vec<String> = v.problems.iter().map(|(_, m)| m.clone()).collect();
        let Some(plugin) = v.plugin.filter(|_| problems.is_empty()) else {
            return Err(ConnectError::invalid_config(problems));
        };
        if !allow_update && self.connectors.lock().await.iter().any(|(n, _)| n == name) {
            return Err(ConnectError::ConnectorExists(name.to_string()));
        }
        let plan = Some((config.clone(), self.plan_tasks(&config, &plugin).await));
        let mut all = self.connectors.lock().await;
        let existing = all.iter().position(|(n, _)| n == name);
        if existing.is_some() && !allow_update {
            return Err(ConnectError::ConnectorExists(name.to_string()));
        }
        self.store.put_connector(name, &config).await?;
        let created = match existing {
            Some(i) => {
                let rt = &mut all[i].1;
                self.stop_tasks(name, rt).await;
                rt.config = config;
                rt.plugin = plugin;
                self.start_connector(name, rt, true, plan).await;
                false
            }
            None => {
                self.store
                    .put_target_state(name, TargetState::Started)
                    .await?;
                let mut rt = ConnectorRuntime {
                    config,
                    plugin,
                    target: TargetState::Started,
                    task_configs: Vec::new(),
                    tasks: Vec::new(),
                    applied: Arc::default(),
                };
                self.start_connector(name, &mut rt, true, plan).await;
                all.push((name.to_string(), rt));
                true
            }
        };
        tracing::info!(connector = %name, created, "connector config stored");
        let rt = &all.iter().find(|(n, _)| n == name).expect("just stored").1;
        Ok((created, info_json(name, rt)))
    }

    /// Computes the task configs of a connector: resolves its placeholders, asks the plugin
    /// (which may reach a database, as the JDBC source listing its tables does) and stores
    /// them with the placeholders back in place. `Err` is the failure trace, secrets masked.
    ///
    /// Callers run this without holding the connectors lock, so a connector whose database is
    /// slow or refuses connections delays only the request that (re)starts it, never the rest
    /// of the REST API.
    async fn plan_tasks(&self, config: &Config, plugin: &Arc<dyn ConnectorPlugin>) -> TaskPlan {
        // Clamped as well: configs stored before the bound existed are not re-validated.
        let max = config.parse_or("tasks.max", 1i64).clamp(1, MAX_TASKS) as usize;
        let resolved = self
            .ctx
            .providers
            .resolve(config)
            .map_err(|e| format!("org.apache.kafka.connect.errors.ConnectException: {e}"))?;
        match plugin.task_configs(&resolved, max).await {
            // Stored and shown with the placeholders, never the secrets.
            Ok(tasks) => Ok(tasks
                .iter()
                .map(|t| self.ctx.providers.unresolve(config, &resolved, t))
                .collect()),
            Err(e) => Err(mask_secrets(
                &format!(
                    "org.apache.kafka.connect.errors.ConnectException: {}",
                    chain(&e)
                ),
                &resolved,
            )),
        }
    }

    /// The current config, plugin and target state of `name`, to plan its tasks outside the
    /// lock.
    async fn snapshot(
        &self,
        name: &str,
    ) -> Result<(Config, Arc<dyn ConnectorPlugin>, TargetState)> {
        let mut all = self.connectors.lock().await;
        let rt = runtime_mut(&mut all, name)?;
        Ok((rt.config.clone(), rt.plugin.clone(), rt.target))
    }

    /// Starts tasks per the target state: with the task configs of `plan` when given (planned
    /// for `rt.config` outside the lock), else computed now (if asked or unknown).
    async fn start_connector(
        &self,
        name: &str,
        rt: &mut ConnectorRuntime,
        recompute: bool,
        plan: Option<(Config, TaskPlan)>,
    ) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst);
        if rt.target == TargetState::Stopped {
            self.ctx
                .status
                .set(&connector_key(name), State::Stopped, None, generation);
            return;
        }
        if recompute || rt.task_configs.is_empty() {
            // A plan made for another config (changed meanwhile) is not used.
            let tasks = match plan.filter(|(planned_for, _)| *planned_for == rt.config) {
                Some((_, tasks)) => tasks,
                None => self.plan_tasks(&rt.config, &rt.plugin).await,
            };
            match tasks {
                Ok(tasks) => {
                    if let Err(e) = self.store.put_tasks(name, &tasks).await {
                        tracing::warn!(connector = %name, error = %e, "could not store task configs");
                    }
                    rt.task_configs = tasks;
                }
                Err(trace) => {
                    tracing::error!(connector = %name, "connector failed: {trace}");
                    // No tasks: the workers running the previous ones stop them.
                    if !rt.task_configs.is_empty() {
                        rt.task_configs.clear();
                        rt.tasks.clear();
                        if let Err(e) = self.store.put_tasks(name, &[]).await {
                            tracing::warn!(connector = %name, error = %e, "could not store task configs");
                        }
                    }
                    self.ctx.status.set(
                        &connector_key(name),
                        State::Failed,
                        Some(trace),
                        generation,
                    );
                    return;
                }
            }
        }
        let state = if rt.target == TargetState::Paused {
            State::Paused
        } else {
            State::Running
        };
        self.ctx
            .status
            .set(&connector_key(name), state, None, generation);
        rt.tasks = (0..rt.task_configs.len()).map(|_| None).collect();
        for id in 0..rt.task_configs.len() {
            self.start_task(name, rt, id);
        }
    }

    fn start_task(&self, name: &str, rt: &mut ConnectorRuntime, id: usize) {
        if !self.owns(name, id) {
            return;
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst);
        let mut config = rt.task_configs[id].clone();
        // Worker-level settings of the connector (converters, errors.*) apply to every task.
        for (k, v) in &rt.config {
            config.entry(k.clone()).or_insert_with(|| v.clone());
        }
        config
            .entry("key.converter".into())
            .or_insert_with(|| self.ctx.key_converter.clone());
        config
            .entry("value.converter".into())
            .or_insert_with(|| self.ctx.value_converter.clone());
        let key = task_key(name, id);
        let config = match self.ctx.providers.resolve(&config) {
            Ok(resolved) => resolved,
            Err(e) => {
                let trace = format!("org.apache.kafka.connect.errors.ConnectException: {e}");
                self.ctx
                    .status
                    .set(&key, State::Failed, Some(trace), generation);
                return;
            }
        };
        let task = match rt.plugin.create_task(&config) {
            Ok(t) => t,
            Err(e) => {
                let trace = mask_secrets(&chain(&e), &config);
                self.ctx
                    .status
                    .set(&key, State::Failed, Some(trace), generation);
                return;
            }
        };
        self.ctx
            .status
            .set(&key, State::Unassigned, None, generation);
        let cancel = CancellationToken::new();
        let (target_tx, target_rx) = watch::channel(rt.target);
        let common = TaskRun {
            connector: name.to_string(),
            task_id: id,
            config,
            ctx: self.ctx.clone(),
            cancel: cancel.clone(),
            target: target_rx,
            generation,
        };
        let join = match task {
            Task::Sink(task) => SinkRun {
                common,
                task,
                applied: rt.applied.clone(),
            }
            .spawn(),
            Task::Source(task) => SourceRun { common, task }.spawn(),
        };
        if id < rt.tasks.len() {
            rt.tasks[id] = Some(TaskHandle {
                cancel,
                target: target_tx,
                join,
            });
        }
    }

    async fn stop_tasks(&self, name: &str, rt: &mut ConnectorRuntime) {
        let handles: Vec<TaskHandle> = rt.tasks.iter_mut().filter_map(Option::take).collect();
        futures::future::join_all(handles.into_iter().map(TaskHandle::stop)).await;
        // Only the statuses of this worker's tasks: the others report their own.
        for id in (0..rt.task_configs.len()).filter(|id| self.owns(name, *id)) {
            let generation = self.generation.fetch_add(1, Ordering::SeqCst);
            self.ctx
                .status
                .set(&task_key(name, id), State::Unassigned, None, generation);
        }
    }

    async fn with<T>(&self, name: &str, f: impl FnOnce(&ConnectorRuntime) -> T) -> Result<T> {
        let all = self.connectors.lock().await;
        all.iter()
            .find(|(n, _)| n == name)
            .map(|(_, rt)| f(rt))
            .ok_or_else(|| ConnectError::ConnectorNotFound(name.to_string()))
    }

    pub async fn names(&self) -> Vec<String> {
        self.connectors
            .lock()
            .await
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub async fn info(&self, name: &str) -> Result<Json> {
        self.with(name, |rt| info_json(name, rt)).await
    }

    pub async fn config(&self, name: &str) -> Result<Config> {
        self.with(name, |rt| rt.config.clone()).await
    }

    pub async fn status(&self, name: &str) -> Result<Json> {
        self.with(name, |rt| self.status_json(name, rt)).await
    }

    fn status_json(&self, name: &str, rt: &ConnectorRuntime) -> Json {
        let tasks: Vec<Json> = if rt.target == TargetState::Stopped {
            Vec::new()
        } else {
            (0..rt.task_configs.len())
                .map(|id| self.ctx.status.to_json(&task_key(name, id), Some(id)))
                .collect()
        };
        json!({
            "name": name,
            "connector": self.ctx.status.to_json(&connector_key(name), None),
            "tasks": tasks,
            "type": rt.plugin.kind().as_str(),
        })
    }

    pub async fn task_status(&self, name: &str, id: usize) -> Result<Json> {
        let n = self
            .with(name, |rt| {
                if rt.target == TargetState::Stopped {
                    0
                } else {
                    rt.task_configs.len()
                }
            })
            .await?;
        if id >= n {
            return Err(ConnectError::TaskNotFound(format!("{name}-{id}")));
        }
        Ok(self.ctx.status.to_json(&task_key(name, id), Some(id)))
    }

    pub async fn tasks(&self, name: &str) -> Result<Json> {
        self.with(name, |rt| {
            Json::Array(
                rt.task_configs
                    .iter()
                    .enumerate()
                    .map(|(i, c)| json!({"id": {"connector": name, "task": i}, "config": c}))
                    .collect(),
            )
        })
        .await
    }

    pub async fn offsets(&self, name: &str) -> Result<Json> {
        let (kind, applied) = self
            .with(name, |rt| (rt.plugin.kind(), rt.applied.lock().clone()))
            .await?;
        let offsets: Vec<Json> = match kind {
            ConnectorKind::Source => self.ctx.offsets.list(name),
            ConnectorKind::Sink => applied
                .into_iter()
                .map(|((t, p), o)| json!({"partition": {"kafka_topic": t, "kafka_partition": p}, "offset": {"kafka_offset": o}}))
                .collect(),
        };
        Ok(json!({"offsets": offsets}))
    }

    pub async fn expanded(&self, status: bool, info: bool) -> Json {
        let all = self.connectors.lock().await;
        let mut out = serde_json::Map::new();
        for (name, rt) in all.iter() {
            let mut e = serde_json::Map::new();
            if status {
                e.insert("status".into(), self.status_json(name, rt));
            }
            if info {
                e.insert("info".into(), info_json(name, rt));
            }
            out.insert(name.clone(), Json::Object(e));
        }
        Json::Object(out)
    }

    pub async fn set_target(&self, name: &str, target: TargetState) -> Result<()> {
        // Leaving STOPPED recomputes the task configs: planned before taking the lock.
        let plan = match self.snapshot(name).await? {
            (config, plugin, TargetState::Stopped) if target != TargetState::Stopped => {
                let tasks = self.plan_tasks(&config, &plugin).await;
                Some((config, tasks))
            }
            _ => None,
        };
        let mut all = self.connectors.lock().await;
        let rt = runtime_mut(&mut all, name)?;
        self.store.put_target_state(name, target).await?;
        let before = rt.target;
        rt.target = target;
        match (before, target) {
            (a, b) if a == b => {}
            (_, TargetState::Stopped) => {
                self.stop_tasks(name, rt).await;
                rt.tasks.clear();
                let g = self.generation.fetch_add(1, Ordering::SeqCst);
                self.ctx
                    .status
                    .set(&connector_key(name), State::Stopped, None, g);
            }
            (TargetState::Stopped, _) => self.start_connector(name, rt, true, plan).await,
            (_, t) => {
                for h in rt.tasks.iter().flatten() {
                    let _ = h.target.send(t);
                }
                let g = self.generation.fetch_add(1, Ordering::SeqCst);
                let state = if t == TargetState::Paused {
                    State::Paused
                } else {
                    State::Running
                };
                self.ctx.status.set(&connector_key(name), state, None, g);
            }
        }
        tracing::info!(connector = %name, state = target.as_str(), "target state changed");
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let mut all = self.connectors.lock().await;
        let i = all
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| ConnectError::ConnectorNotFound(name.to_string()))?;
        let (_, mut rt) = all.remove(i);
        self.store
            .delete_connector(name, rt.task_configs.len())
            .await?;
        self.stop_tasks(name, &mut rt).await;
        self.ctx.status.remove(&connector_key(name));
        for id in 0..rt.task_configs.len() {
            self.ctx.status.remove(&task_key(name, id));
        }
        tracing::info!(connector = %name, "connector deleted");
        Ok(())
    }

    /// `POST /connectors/{name}/restart` (KIP-745). Without `include_tasks` and `only_failed`
    /// the connector's instance is restarted here, at once (the leader runs it). Otherwise a
    /// restart request is written to the config topic for every worker to act on (the owner of
    /// each task restarts it, where it runs now) and the answer is the connector's status with
    /// RESTARTING for what the request will restart, as Kafka's leader answers.
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Json> {
        if !include_tasks && !only_failed {
            self.restart_connector_instance(name).await?;
            return self.status(name).await;
        }
        let mut status = self.status(name).await?;
        self.store
            .put_restart(name, include_tasks, only_failed)
            .await?;
        let failed = State::Failed.as_str();
        let restarting = State::Restarting.as_str();
        if !only_failed || status["connector"]["state"] == failed {
            status["connector"]["state"] = restarting.into();
        }
        if include_tasks {
            for t in status["tasks"].as_array_mut().into_iter().flatten() {
                if !only_failed || t["state"] == failed {
                    t["state"] = restarting.into();
                }
            }
        }
        Ok(status)
    }

    /// `POST /connectors/{name}/tasks/{id}/restart`: restarted here if this worker runs it,
    /// else a restart request for its owner is written to the config topic.
    pub async fn restart_task(&self, name: &str, id: usize) -> Result<()> {
        {
            let mut all = self.connectors.lock().await;
            let rt = runtime_mut(&mut all, name)?;
            if id >= rt.task_configs.len() || rt.target == TargetState::Stopped {
                return Err(ConnectError::TaskNotFound(format!("{name}-{id}")));
            }
            if self.owns(name, id) {
                self.restart_owned_task(name, rt, id).await;
                return Ok(());
            }
        }
        self.store.put_task_restart(name, id).await?;
        Ok(())
    }

    async fn restart_task_locked(&self, name: &str, rt: &mut ConnectorRuntime, id: usize) {
        if rt.tasks.len() < rt.task_configs.len() {
            rt.tasks.resize_with(rt.task_configs.len(), || None);
        }
        if let Some(h) = rt.tasks[id].take() {
            h.stop().await;
        }
        tracing::info!(connector = %name, task = id, "restarting task");
        self.start_task(name, rt, id);
    }

    /// Stops every task (worker shutdown); stored state is untouched.
    pub async fn shutdown(&self) {
        let mut all = self.connectors.lock().await;
        for (name, rt) in all.iter_mut() {
            let handles: Vec<TaskHandle> = rt.tasks.iter_mut().filter_map(Option::take).collect();
            futures::future::join_all(handles.into_iter().map(TaskHandle::stop)).await;
            tracing::info!(connector = %name, "stopped");
        }
    }
}

/// The runtime of connector `name`, or its 404.
fn runtime_mut<'a>(
    all: &'a mut [(String, ConnectorRuntime)],
    name: &str,
) -> Result<&'a mut ConnectorRuntime> {
    all.iter_mut()
        .find(|(n, _)| n == name)
        .map(|(_, rt)| rt)
        .ok_or_else(|| ConnectError::ConnectorNotFound(name.to_string()))
}

fn info_json(name: &str, rt: &ConnectorRuntime) -> Json {
    let tasks: Vec<Json> = if rt.target == TargetState::Stopped {
        Vec::new()
    } else {
        (0..rt.task_configs.len())
            .map(|i| json!({"connector": name, "task": i}))
            .collect()
    };
    json!({"name": name, "config": rt.config, "tasks": tasks, "type": rt.plugin.kind().as_str()})
}
