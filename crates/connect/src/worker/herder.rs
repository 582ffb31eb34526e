//! The herder: this worker's connectors, their tasks and target states, and the operations
//! the REST API calls, with Kafka's rules and answers (`AbstractHerder`,
//! `StandaloneHerder`). Configs live in memory (a standalone worker is given its connectors
//! on the command line at every start, as Kafka's); source offsets in the worker's offset
//! store. A supervisor restarts failed tasks when `errors.restart.enable` asks for it and
//! asks connectors for new task configs when they request a reconfiguration.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{
    validate_plugin_config, ConfigInfos, ConfigKeyInfo, ConnectorConfig, ConnectorType, Props,
};
use crate::connector::{Connector, ConnectorContext, Plugin};
use crate::errors::{RestartPolicy, RestartState, RestartTracker};
use crate::rest::{
    self, ConnectorInfo, ConnectorOffset, ConnectorOffsets, ConnectorState, ConnectorStateInfo,
    ConnectorTaskId, ErrorMessage, Message, RestartRequest, TaskInfo, TaskState,
};
use crate::storage::{OffsetMap, State, TargetState};

pub(crate) use super::now_ms;
use super::offsets::OffsetSnapshot;
use super::{sink, source, trace_of, StatusCell, TaskSpec, WorkerContext};

/// The longest a connector's own `validate` may take on a REST request's behalf.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct TaskHandle {
    pub(crate) id: ConnectorTaskId,
    pub(crate) config: Props,
    pub(crate) status: StatusCell,
    pub(crate) control: watch::Sender<TargetState>,
    pub(crate) join: Option<JoinHandle<()>>,
    pub(crate) restarts: Option<RestartTracker>,
}

impl TaskHandle {
    /// A task not started yet.
    pub(crate) fn new(
        id: ConnectorTaskId,
        config: Props,
        target: TargetState,
        restart_policy: &RestartPolicy,
    ) -> TaskHandle {
        TaskHandle {
            id,
            config,
            status: StatusCell::new(State::Unassigned),
            control: watch::channel(target).0,
            join: None,
            restarts: restart_policy
                .enable
                .then(|| RestartTracker::new(restart_policy.clone(), now_ms())),
        }
    }

    /// Whether it failed and finished and its automatic restart is due now (the tracker
    /// learns of the failure on the first call after it).
    pub(crate) fn automatic_restart_due(&mut self, now: i64) -> bool {
        let Some(tracker) = self.restarts.as_mut() else {
            return false;
        };
        let st = self.status.get();
        if st.state != State::Failed || !self.join.as_ref().is_none_or(|j| j.is_finished()) {
            return false;
        }
        if matches!(tracker.state(), RestartState::Running { .. }) {
            if let Some(at_ms) = tracker.on_failure(st.trace.unwrap_or_default(), now) {
                tracing::warn!(task = %self.id, "task failed; automatic restart in {} ms", at_ms - now);
            }
        }
        if tracker.due(now) {
            tracker.on_restarted(now);
            tracing::info!(task = %self.id, "restarting failed task (errors.restart.enable)");
            true
        } else {
            false
        }
    }

    /// The task's status for `/status`, with this worker's id.
    pub(crate) fn state(&self, worker_id: &str, version: &str) -> TaskState {
        let s = self.status.get();
        let mut ts = TaskState::new(self.id.task, s.state, worker_id, s.trace);
        ts.version = Some(version.to_string());
        ts.warning = self.status.reporter.warning();
        if let Some(r) = &self.restarts {
            ts.restarts = Some(r.restart_count());
            ts.last_error = r.last_error().map(str::to_string);
        }
        ts
    }

    /// Stops it (if running) and starts it again with the same config.
    pub(crate) async fn restart(
        &mut self,
        ctx: &Arc<WorkerContext>,
        spec: TaskSpec,
        target: TargetState,
    ) {
        stop_task(self, ctx).await;
        self.status = StatusCell::new(State::Restarting);
        self.control = watch::channel(target).0;
        start_task(ctx, self, spec);
    }
}

struct ConnectorEntry {
    config: Props,
    parsed: ConnectorConfig,
    plugin: Plugin,
    target: TargetState,
    status: StatusCell,
    instance: Option<Box<dyn Connector>>,
    tasks: Vec<TaskHandle>,
    active_topics: Arc<Mutex<BTreeSet<String>>>,
    restart_policy: RestartPolicy,
}

/// This worker's connectors and the REST operations on them.
pub struct Herder {
    ctx: Arc<WorkerContext>,
    /// Worker properties, for defaults of the automatic restart keys.
    worker_props: Props,
    connectors: tokio::sync::Mutex<BTreeMap<String, ConnectorEntry>>,
}

pub(crate) fn rest_type(t: ConnectorType) -> rest::ConnectorType {
    match t {
        ConnectorType::Source => rest::ConnectorType::Source,
        ConnectorType::Sink => rest::ConnectorType::Sink,
    }
}

impl Herder {
    pub fn new(ctx: Arc<WorkerContext>, worker_props: Props) -> Arc<Herder> {
        Arc::new(Herder {
            ctx,
            worker_props,
            connectors: tokio::sync::Mutex::new(BTreeMap::new()),
        })
    }

    pub fn context(&self) -> &Arc<WorkerContext> {
        &self.ctx
    }

    /// Runs the supervisor until the herder is dropped: automatic task restarts and task
    /// reconfiguration requests, checked every 250 ms.
    pub fn spawn_supervisor(self: &Arc<Herder>) -> JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let Some(h) = weak.upgrade() else { return };
                h.supervise().await;
            }
        })
    }

    async fn supervise(&self) {
        let mut connectors = self.connectors.lock().await;
        let now = now_ms();
        let names: Vec<String> = connectors.keys().cloned().collect();
        for name in names {
            let entry = connectors.get_mut(&name).expect("listed");
            if entry.target == TargetState::Stopped {
                continue;
            }
            if entry.status.reporter.take_reconfiguration_request() {
                self.reconfigure(entry).await;
            }
            for i in 0..entry.tasks.len() {
                if entry.tasks[i].automatic_restart_due(now) {
                    let spec = self.task_spec(entry, i);
                    let target = entry.target;
                    entry.tasks[i].restart(&self.ctx, spec, target).await;
                }
            }
        }
    }

    fn task_spec(&self, entry: &ConnectorEntry, index: usize) -> TaskSpec {
        TaskSpec {
            id: ConnectorTaskId::new(entry.parsed.name.clone(), index as i32),
            connector: entry.parsed.clone(),
            task_props: entry.tasks[index].config.clone(),
            plugin: entry.plugin,
            active_topics: entry.active_topics.clone(),
        }
    }

    // -----------------------------------------------------------------------------------
    // Validation

    /// `PUT /connector-plugins/{plugin}/config/validate` and the check before any write:
    /// the runtime's keys, the connector's own keys and its `validate`.
    pub async fn validate(&self, config: &Props) -> Result<ConfigInfos, ErrorMessage> {
        let class = config.get(rest::CONNECTOR_CLASS_CONFIG).ok_or_else(|| {
            ErrorMessage::bad_request(format!(
                "Connector config {} contains no connector type",
                rest::java_map_to_string(config)
            ))
        })?;
        let plugin = self.ctx.plugins.find(class)?;
        let connector = (plugin.new_connector)();
        let plugin_errors = tokio::time::timeout(VALIDATE_TIMEOUT, connector.validate(config))
            .await
            .unwrap_or_else(|_| {
                vec![(
                    rest::CONNECTOR_CLASS_CONFIG.to_string(),
                    format!(
                        "The connector's validation did not finish within {} s",
                        VALIDATE_TIMEOUT.as_secs()
                    ),
                )]
            });
        let mut infos = validate_plugin_config(
            config,
            plugin.connector_type,
            self.ctx.config.connector_client_config_override_policy,
            plugin.config_keys,
            &plugin_errors,
        );
        // The worker's converters are the defaults of a connector's (Kafka 4.1).
        let w = &self.ctx.config;
        for (key, class) in [
            ("key.converter", &w.key_converter.class),
            ("value.converter", &w.value_converter.class),
            ("header.converter", &w.header_converter.class),
        ] {
            for c in infos.configs.iter_mut() {
                if let Some(d) = c.definition.as_mut().filter(|d| d.name == key) {
                    d.default_value = Some(class.clone());
                    if let Some(v) = c.value.as_mut().filter(|v| v.value.is_none()) {
                        v.value = Some(class.clone());
                    }
                }
            }
        }
        Ok(infos)
    }

    /// The keys of a plugin (`GET /connector-plugins/{plugin}/config`).
    pub fn plugin_config(&self, plugin: &str) -> Result<Vec<ConfigKeyInfo>, ErrorMessage> {
        let p = self
            .ctx
            .plugins
            .find(plugin)
            .map_err(|_| ErrorMessage::not_found(format!("Unknown plugin {plugin}.")))?;
        let mut props = Props::new();
        props.insert(rest::CONNECTOR_CLASS_CONFIG.into(), p.class.into());
        let infos = validate_plugin_config(
            &props,
            p.connector_type,
            self.ctx.config.connector_client_config_override_policy,
            p.config_keys,
            &[],
        );
        // Kafka lists the connector's own keys, then the runtime's.
        let (mut own, common): (Vec<ConfigKeyInfo>, Vec<ConfigKeyInfo>) = infos
            .configs
            .into_iter()
            .filter_map(|c| c.definition)
            .partition(|d| p.config_keys.iter().any(|k| k.name() == d.name));
        own.extend(common);
        // Without a connector config, the converters' versions have no default (Kafka 4.1).
        for d in own
            .iter_mut()
            .filter(|d| d.name.ends_with("converter.plugin.version"))
        {
            d.default_value = None;
        }
        Ok(own)
    }

    // -----------------------------------------------------------------------------------
    // Connectors

    pub async fn connector_names(&self) -> Vec<String> {
        self.connectors.lock().await.keys().cloned().collect()
    }

    pub async fn exists(&self, name: &str) -> bool {
        self.connectors.lock().await.contains_key(name)
    }

    pub async fn connector_config(&self, name: &str) -> Result<Props, ErrorMessage> {
        let c = self.connectors.lock().await;
        c.get(name)
            .map(|e| e.config.clone())
            .ok_or_else(|| ErrorMessage::connector_not_found(name))
    }

    pub async fn connector_info(&self, name: &str) -> Result<ConnectorInfo, ErrorMessage> {
        let c = self.connectors.lock().await;
        let e = c
            .get(name)
            .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
        Ok(info_of(e))
    }

    /// Creates (or with `allow_replace` replaces) a connector after validating everything;
    /// nothing is created when validation fails. Returns whether it was created.
    pub async fn put_connector(
        &self,
        name: &str,
        config: Props,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> Result<(bool, ConnectorInfo), ErrorMessage> {
        let infos = self.validate(&config).await?;
        if let Some(m) = infos.error_message() {
            return Err(ErrorMessage::bad_request(m));
        }
        let plugin = self.ctx.plugins.find(
            config
                .get(rest::CONNECTOR_CLASS_CONFIG)
                .map(String::as_str)
                .unwrap_or(""),
        )?;
        let parsed = ConnectorConfig::parse(
            &config,
            plugin.connector_type,
            self.ctx.config.connector_client_config_override_policy,
        )
        .map_err(|e| ErrorMessage::bad_request(e.to_string()))?;
        let restart_policy = RestartPolicy::from_props(&self.worker_props, &config)
            .map_err(|e| ErrorMessage::bad_request(e.to_string()))?;
        let mut connectors = self.connectors.lock().await;
        let existed = connectors.contains_key(name);
        if existed && !allow_replace {
            return Err(ErrorMessage::already_exists(name));
        }
        let target = match connectors.remove(name) {
            Some(mut old) => {
                let target = old.target;
                stop_connector(&mut old, &self.ctx).await;
                target
            }
            None => initial_state.unwrap_or(TargetState::Started),
        };
        let mut entry = ConnectorEntry {
            config,
            parsed,
            plugin,
            target,
            status: StatusCell::new(State::Unassigned),
            instance: None,
            tasks: Vec::new(),
            active_topics: Arc::new(Mutex::new(BTreeSet::new())),
            restart_policy,
        };
        self.start_connector(&mut entry).await;
        let info = info_of(&entry);
        connectors.insert(name.to_string(), entry);
        Ok((!existed, info))
    }

    /// Starts the connector (unless stopped) and its tasks.
    async fn start_connector(&self, entry: &mut ConnectorEntry) {
        if entry.target == TargetState::Stopped {
            entry.status.set(State::Stopped);
            return;
        }
        let connector =
            match start_connector_instance(&self.ctx, &entry.plugin, &entry.config, &entry.status)
                .await
            {
                Ok(c) => c,
                Err(()) => return,
            };
        entry.instance = Some(connector);
        entry.status.set(match entry.target {
            TargetState::Paused => State::Paused,
            _ => State::Running,
        });
        self.reconfigure(entry).await;
    }

    /// Asks the connector for task configs and (re)starts the tasks when they changed.
    async fn reconfigure(&self, entry: &mut ConnectorEntry) {
        let Some(connector) = entry.instance.as_mut() else {
            return;
        };
        let max_tasks = entry.parsed.tasks_max.max(1) as usize;
        let configs = match connector.task_configs(max_tasks).await {
            Ok(c) => c,
            Err(e) => {
                entry
                    .status
                    .fail(trace_of("Failed to generate task configs", &e));
                return;
            }
        };
        if configs.len() > max_tasks && entry.parsed.tasks_max_enforce {
            entry.status.fail(format!(
                "org.apache.kafka.connect.errors.TooManyTasksException: The connector {} has \
                 generated {} tasks, which is greater than {}, the maximum number of tasks it \
                 is configured to create.\n",
                entry.parsed.name,
                configs.len(),
                max_tasks
            ));
            return;
        }
        // Each task's config is the connector's output plus what the runtime adds.
        let configs: Vec<Props> = configs
            .into_iter()
            .map(|mut c| {
                c.insert("task.class".into(), entry.plugin.task_class.to_string());
                c
            })
            .collect();
        let current: Vec<&Props> = entry.tasks.iter().map(|t| &t.config).collect();
        if current.len() == configs.len() && current.iter().zip(&configs).all(|(a, b)| *a == b) {
            return;
        }
        stop_tasks(&mut entry.tasks, &self.ctx).await;
        for (i, config) in configs.into_iter().enumerate() {
            entry.tasks.push(TaskHandle::new(
                ConnectorTaskId::new(entry.parsed.name.clone(), i as i32),
                config,
                entry.target,
                &entry.restart_policy,
            ));
            let spec = self.task_spec(entry, i);
            start_task(&self.ctx, &mut entry.tasks[i], spec);
        }
    }

    pub async fn delete_connector(&self, name: &str) -> Result<(), ErrorMessage> {
        let mut connectors = self.connectors.lock().await;
        let mut entry = connectors
            .remove(name)
            .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
        stop_connector(&mut entry, &self.ctx).await;
        Ok(())
    }

    pub async fn status(&self, name: &str) -> Result<ConnectorStateInfo, ErrorMessage> {
        let c = self.connectors.lock().await;
        let e = c
            .get(name)
            .ok_or_else(|| ErrorMessage::no_connector_status(name))?;
        Ok(self.status_of(e))
    }

    fn status_of(&self, e: &ConnectorEntry) -> ConnectorStateInfo {
        let cs = e.status.get();
        let mut connector = ConnectorState::new(cs.state, &self.ctx.worker_id, cs.trace);
        connector.warning = e.status.reporter.warning();
        connector.version = Some(e.plugin.version.to_string());
        ConnectorStateInfo {
            name: e.parsed.name.clone(),
            connector,
            tasks: e
                .tasks
                .iter()
                .map(|t| t.state(&self.ctx.worker_id, e.plugin.version))
                .collect(),
            connector_type: rest_type(e.plugin.connector_type),
        }
    }

    pub async fn task_configs(&self, name: &str) -> Result<Vec<TaskInfo>, ErrorMessage> {
        let c = self.connectors.lock().await;
        let e = c
            .get(name)
            .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
        Ok(e.tasks
            .iter()
            .map(|t| TaskInfo {
                id: t.id.clone(),
                config: t.config.clone(),
            })
            .collect())
    }

    /// `PUT .../pause`, `.../resume`, `.../stop`.
    pub async fn set_target_state(
        &self,
        name: &str,
        target: TargetState,
    ) -> Result<(), ErrorMessage> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors
            .get_mut(name)
            .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
        let was = entry.target;
        entry.target = target;
        match (was, target) {
            (_, TargetState::Stopped) => {
                stop_connector(entry, &self.ctx).await;
                entry.status.set(State::Stopped);
            }
            (TargetState::Stopped, _) => self.start_connector(entry).await,
            (_, t) => {
                if entry.instance.is_some() {
                    entry.status.set(if t == TargetState::Paused {
                        State::Paused
                    } else {
                        State::Running
                    });
                }
                for task in &entry.tasks {
                    let _ = task.control.send(t);
                }
            }
        }
        Ok(())
    }

    /// `POST /connectors/{name}/restart` (KIP-745).
    pub async fn restart(
        &self,
        req: &RestartRequest,
    ) -> Result<Option<ConnectorStateInfo>, ErrorMessage> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors
            .get_mut(&req.connector)
            .ok_or_else(|| ErrorMessage::connector_not_found(&req.connector))?;
        if entry.target == TargetState::Stopped {
            // Kafka answers as if the connector restarts, then it stays stopped.
            let mut answer = self.status_of(entry);
            if req.should_restart_connector(State::Stopped) {
                answer.connector.state = State::Restarting.name().into();
            }
            return Ok((!req.force_restart_connector_only()).then_some(answer));
        }
        let restart_connector = req.should_restart_connector(entry.status.get().state);
        let tasks: Vec<usize> = (0..entry.tasks.len())
            .filter(|i| req.should_restart_task(entry.tasks[*i].status.get().state))
            .collect();
        if restart_connector {
            if let Some(mut c) = entry.instance.take() {
                c.stop().await;
            }
            entry.status.set(State::Restarting);
        }
        for &i in &tasks {
            entry.tasks[i].status.set(State::Restarting);
            if let Some(r) = entry.tasks[i].restarts.as_mut() {
                r.on_manual_restart(now_ms());
            }
        }
        let answer = self.status_of(entry);
        if restart_connector {
            if let Ok(connector) =
                start_connector_instance(&self.ctx, &entry.plugin, &entry.config, &entry.status)
                    .await
            {
                entry.instance = Some(connector);
                entry.status.set(match entry.target {
                    TargetState::Paused => State::Paused,
                    _ => State::Running,
                });
            }
        }
        for i in tasks {
            let spec = self.task_spec(entry, i);
            let target = entry.target;
            entry.tasks[i].restart(&self.ctx, spec, target).await;
        }
        Ok((!req.force_restart_connector_only()).then_some(answer))
    }

    /// `POST /connectors/{name}/tasks/{task}/restart`.
    pub async fn restart_task(&self, id: &ConnectorTaskId) -> Result<(), ErrorMessage> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors
            .get_mut(&id.connector)
            .ok_or_else(|| ErrorMessage::connector_not_found(&id.connector))?;
        let i = usize::try_from(id.task)
            .ok()
            .filter(|i| *i < entry.tasks.len())
            .ok_or_else(|| ErrorMessage::unknown_task(id))?;
        if let Some(r) = entry.tasks[i].restarts.as_mut() {
            r.on_manual_restart(now_ms());
        }
        let spec = self.task_spec(entry, i);
        let target = entry.target;
        entry.tasks[i].restart(&self.ctx, spec, target).await;
        Ok(())
    }

    pub async fn active_topics(&self, name: &str) -> Result<Vec<String>, ErrorMessage> {
        let c = self.connectors.lock().await;
        let e = c
            .get(name)
            .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
        let topics = e.active_topics.lock().iter().cloned().collect();
        Ok(topics)
    }

    pub async fn reset_active_topics(&self, name: &str) -> Result<(), ErrorMessage> {
        let c = self.connectors.lock().await;
        let e = c
            .get(name)
            .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
        e.active_topics.lock().clear();
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Offsets (KIP-875)

    pub async fn offsets(&self, name: &str) -> Result<ConnectorOffsets, ErrorMessage> {
        let (parsed, topics) = {
            let c = self.connectors.lock().await;
            let e = c
                .get(name)
                .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
            let topics: Vec<String> = e.active_topics.lock().iter().cloned().collect();
            (e.parsed.clone(), topics)
        };
        read_connector_offsets(&self.ctx, &parsed, &topics).await
    }

    /// `PATCH` (with offsets) and `DELETE` (`None`: a reset) of a connector's offsets; the
    /// connector must be stopped.
    pub async fn modify_offsets(
        &self,
        name: &str,
        body: Option<ConnectorOffsets>,
    ) -> Result<Message, ErrorMessage> {
        let c = self.connectors.lock().await;
        let e = c
            .get(name)
            .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
        rest::check_offsets_modifiable(name, e.target, e.tasks.len())?;
        modify_connector_offsets(&self.ctx, &e.plugin, &e.config, &e.parsed, body).await
    }

    /// Stops every connector and task (worker shutdown), waiting up to
    /// `task.shutdown.graceful.timeout.ms` for each task.
    pub async fn shutdown(&self) {
        let mut connectors = self.connectors.lock().await;
        for (_, mut e) in std::mem::take(&mut *connectors) {
            stop_connector(&mut e, &self.ctx).await;
        }
    }
}

/// `GET /connectors/{name}/offsets`: a source's from the offset store, a sink's from its
/// consumer group.
pub(crate) async fn read_connector_offsets(
    ctx: &WorkerContext,
    parsed: &ConnectorConfig,
    active_topics: &[String],
) -> Result<ConnectorOffsets, ErrorMessage> {
    match parsed.connector_type {
        ConnectorType::Source => {
            ctx.offsets
                .refresh()
                .await
                .map_err(|err| ErrorMessage::new(500, err.to_string()))?;
            Ok(ConnectorOffsets {
                offsets: ctx
                    .offsets
                    .connector_offsets(&parsed.name)
                    .into_iter()
                    .map(|(p, o)| ConnectorOffset {
                        partition: offset_map_to_json(&p),
                        offset: Some(offset_map_to_json(&o)),
                    })
                    .collect(),
            })
        }
        ConnectorType::Sink => super::sink_offsets::read(ctx, parsed, active_topics).await,
    }
}

/// Alters (`body`) or resets (`None`) a stopped connector's offsets, if the connector
/// accepts them (KIP-875).
pub(crate) async fn modify_connector_offsets(
    ctx: &WorkerContext,
    plugin: &Plugin,
    config: &Props,
    parsed: &ConnectorConfig,
    body: Option<ConnectorOffsets>,
) -> Result<Message, ErrorMessage> {
    let name = &parsed.name;
    let reset = body.is_none();
    let entries: Vec<(OffsetMap, Option<OffsetMap>)> = match (&body, plugin.connector_type) {
        (Some(b), _) => {
            rest::validate_alter_offsets(b)?;
            b.offsets
                .iter()
                .map(|o| {
                    Ok((
                        json_to_offset_map(&o.partition)?,
                        o.offset.as_ref().map(json_to_offset_map).transpose()?,
                    ))
                })
                .collect::<Result<_, ErrorMessage>>()?
        }
        (None, ConnectorType::Source) => {
            let _ = ctx.offsets.refresh().await;
            ctx.offsets
                .connector_offsets(name)
                .into_iter()
                .map(|(p, _)| (p, None))
                .collect()
        }
        (None, ConnectorType::Sink) => Vec::new(),
    };
    let connector = (plugin.new_connector)();
    match connector.alter_offsets(config, &entries) {
        Ok(true) => {}
        Ok(false) => {
            return Err(ErrorMessage::bad_request(format!(
                "Connector {name} does not support {} offsets",
                if reset { "resetting" } else { "altering" }
            )))
        }
        Err(err) => return Err(ErrorMessage::bad_request(err.to_string())),
    }
    match plugin.connector_type {
        ConnectorType::Source => ctx
            .offsets
            .write(name, entries)
            .await
            .map_err(|err| ErrorMessage::new(500, err.to_string()))?,
        ConnectorType::Sink => super::sink_offsets::write(ctx, parsed, body.as_ref()).await?,
    }
    Ok(Message {
        message: if reset {
            "The offsets for this connector have been reset successfully".into()
        } else {
            "The offsets for this connector have been altered successfully".into()
        },
    })
}

/// Makes and starts a connector instance; a failure is logged and shown in its status.
pub(crate) async fn start_connector_instance(
    ctx: &Arc<WorkerContext>,
    plugin: &Plugin,
    config: &Props,
    status: &StatusCell,
) -> Result<Box<dyn Connector>, ()> {
    let name = config.get(rest::NAME_CONFIG).cloned().unwrap_or_default();
    let mut connector = (plugin.new_connector)();
    if let Err(e) = ctx.offsets.refresh().await {
        tracing::warn!(connector = %name, "could not read source offsets: {e}");
    }
    let connector_ctx = ConnectorContext {
        name: name.clone(),
        kafka_client_props: ctx.kafka_props.clone(),
        status: status.reporter.clone(),
        offsets: Arc::new(OffsetSnapshot::of(&ctx.offsets, &name)),
    };
    match connector.start(config, connector_ctx).await {
        Ok(()) => Ok(connector),
        Err(e) => {
            tracing::error!(connector = %name, "connector failed to start: {e}");
            status.fail(trace_of(&format!("Failed to start connector {name}"), &e));
            Err(())
        }
    }
}

fn info_of(e: &ConnectorEntry) -> ConnectorInfo {
    ConnectorInfo {
        name: e.parsed.name.clone(),
        config: e.config.clone(),
        tasks: e.tasks.iter().map(|t| t.id.clone()).collect(),
        connector_type: rest_type(e.plugin.connector_type),
    }
}

pub(crate) fn start_task(ctx: &Arc<WorkerContext>, t: &mut TaskHandle, spec: TaskSpec) {
    let status = t.status.clone();
    let control = t.control.subscribe();
    let ctx = ctx.clone();
    t.join = Some(tokio::spawn(async move {
        match spec.plugin.connector_type {
            ConnectorType::Source => source::run(ctx, spec, status, control).await,
            ConnectorType::Sink => sink::run(ctx, spec, status, control).await,
        }
    }));
}

/// Tells a task to stop and waits up to `task.shutdown.graceful.timeout.ms`, then aborts it.
pub(crate) async fn stop_task(t: &mut TaskHandle, ctx: &WorkerContext) {
    let _ = t.control.send(TargetState::Stopped);
    if let Some(mut join) = t.join.take() {
        let grace =
            Duration::from_millis(ctx.config.task_shutdown_graceful_timeout_ms.max(0) as u64);
        if tokio::time::timeout(grace, &mut join).await.is_err() {
            tracing::error!(task = %t.id, "Graceful stop of task {} failed.", t.id);
            join.abort();
        }
    }
    if t.status.get().state != State::Failed {
        t.status.set(State::Unassigned);
    }
}

async fn stop_tasks(tasks: &mut Vec<TaskHandle>, ctx: &WorkerContext) {
    for t in tasks.iter() {
        let _ = t.control.send(TargetState::Stopped);
    }
    for t in tasks.iter_mut() {
        stop_task(t, ctx).await;
    }
    tasks.clear();
}

async fn stop_connector(e: &mut ConnectorEntry, ctx: &WorkerContext) {
    stop_tasks(&mut e.tasks, ctx).await;
    if let Some(mut c) = e.instance.take() {
        c.stop().await;
    }
}

/// A source partition or offset as JSON (`GET /connectors/{name}/offsets`).
pub fn offset_map_to_json(map: &OffsetMap) -> serde_json::Map<String, serde_json::Value> {
    use crate::data::Value;
    map.iter()
        .map(|(k, v)| {
            let j = match v {
                Value::Null => serde_json::Value::Null,
                Value::Boolean(b) => (*b).into(),
                Value::Int8(n) => (*n).into(),
                Value::Int16(n) => (*n).into(),
                Value::Int32(n) => (*n).into(),
                Value::Int64(n) => (*n).into(),
                Value::Float32(f) => (*f as f64).into(),
                Value::Float64(f) => (*f).into(),
                Value::String(s) => s.clone().into(),
                other => format!("{other:?}").into(),
            };
            (k.clone(), j)
        })
        .collect()
}

/// A partition or offset given as JSON, in Connect's offset types (whole numbers as longs).
pub fn json_to_offset_map(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<OffsetMap, ErrorMessage> {
    use crate::data::Value;
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Bool(b) => Value::Boolean(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Int64(i),
                    None => Value::Float64(n.as_f64().unwrap_or(0.0)),
                },
                serde_json::Value::String(s) => Value::String(s.clone()),
                _ => {
                    return Err(ErrorMessage::bad_request(format!(
                        "Offsets may only contain primitive types, but the value of '{k}' is {v}"
                    )))
                }
            };
            Ok((k.clone(), value))
        })
        .collect()
}

#[async_trait::async_trait]
impl super::api::HerderApi for Herder {
    fn context(&self) -> &Arc<WorkerContext> {
        Herder::context(self)
    }
    async fn connector_names(&self) -> Result<Vec<String>, ErrorMessage> {
        Ok(Herder::connector_names(self).await)
    }
    async fn connector_config(&self, name: &str) -> Result<Props, ErrorMessage> {
        Herder::connector_config(self, name).await
    }
    async fn connector_info(&self, name: &str) -> Result<ConnectorInfo, ErrorMessage> {
        Herder::connector_info(self, name).await
    }
    async fn put_connector(
        &self,
        name: &str,
        config: Props,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> Result<(bool, ConnectorInfo), ErrorMessage> {
        Herder::put_connector(self, name, config, allow_replace, initial_state).await
    }
    async fn delete_connector(&self, name: &str) -> Result<(), ErrorMessage> {
        Herder::delete_connector(self, name).await
    }
    async fn status(&self, name: &str) -> Result<ConnectorStateInfo, ErrorMessage> {
        Herder::status(self, name).await
    }
    async fn task_configs(&self, name: &str) -> Result<Vec<TaskInfo>, ErrorMessage> {
        Herder::task_configs(self, name).await
    }
    async fn set_target_state(&self, name: &str, target: TargetState) -> Result<(), ErrorMessage> {
        Herder::set_target_state(self, name, target).await
    }
    async fn restart(
        &self,
        req: &RestartRequest,
    ) -> Result<Option<ConnectorStateInfo>, ErrorMessage> {
        Herder::restart(self, req).await
    }
    async fn restart_task(&self, id: &ConnectorTaskId) -> Result<(), ErrorMessage> {
        Herder::restart_task(self, id).await
    }
    async fn active_topics(&self, name: &str) -> Result<Vec<String>, ErrorMessage> {
        Herder::active_topics(self, name).await
    }
    async fn reset_active_topics(&self, name: &str) -> Result<(), ErrorMessage> {
        Herder::reset_active_topics(self, name).await
    }
    async fn offsets(&self, name: &str) -> Result<ConnectorOffsets, ErrorMessage> {
        Herder::offsets(self, name).await
    }
    async fn modify_offsets(
        &self,
        name: &str,
        body: Option<ConnectorOffsets>,
    ) -> Result<Message, ErrorMessage> {
        Herder::modify_offsets(self, name, body).await
    }
    async fn validate(&self, config: &Props) -> Result<ConfigInfos, ErrorMessage> {
        Herder::validate(self, config).await
    }
    fn plugin_config(&self, plugin: &str) -> Result<Vec<ConfigKeyInfo>, ErrorMessage> {
        Herder::plugin_config(self, plugin)
    }
}
