//! The distributed herder (Kafka's `DistributedHerder`): one loop per worker that reads the
//! config topic, keeps the worker in its group (joining, the leader assigning, heartbeats),
//! runs what the group assigned it, writes the statuses of what it runs, and serves the
//! REST API: reads from the topics, writes through the leader (a follower's REST server
//! forwards them).
//!
//! Differences from Kafka, on purpose: the worker running a connector writes that
//! connector's task configs to the config topic itself (Kafka sends them to the leader
//! over an internal, signed REST call); a task restart is carried out by the worker running
//! the task (the request is forwarded to it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use rdkafka::Message;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{ConfigInfos, ConfigKeyInfo, ConnectorConfig, DistributedSettings, Props};
use crate::connector::{Connector, Plugin};
use crate::errors::RestartPolicy;
use crate::rest::{
    self, ConnectorInfo, ConnectorOffsets, ConnectorState, ConnectorStateInfo, ConnectorTaskId,
    ErrorMessage, Message as RestMessage, RestartRequest, TaskInfo, TaskState,
};
use crate::storage::{ConfigRecord, State, Status, StatusRecord, TargetState};
use crate::worker::herder::{
    modify_connector_offsets, now_ms, read_connector_offsets, rest_type, start_connector_instance,
    start_task, stop_task, Herder, TaskHandle,
};
use crate::worker::{HerderApi, StatusCell, TaskSpec, WorkerContext};

use super::assignor::{assign, AssignorState, Load};
use super::config_state::{put_connector_records, task_config_records, ConfigState};
use super::kafka_log::KafkaLog;
use super::member::{GroupMember, Joined, MemberError};
use super::protocol::{
    decode_assignment, encode_assignment, join_protocols, Assignment, Compatibility, WorkerState,
    CONFIG_MISMATCH,
};

/// How long a REST write waits for its record to be read back.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

struct LocalConnector {
    config: Props,
    parsed: ConnectorConfig,
    plugin: Plugin,
    target: TargetState,
    status: StatusCell,
    instance: Option<Box<dyn Connector>>,
    /// Task configs the instance generated last (written to the config topic).
    generated: Option<Vec<Props>>,
    active_topics: Arc<Mutex<BTreeSet<String>>>,
}

struct LocalTask {
    handle: TaskHandle,
    target: TargetState,
}

/// The group as this worker last saw it.
#[derive(Clone, Debug, Default)]
struct GroupView {
    leader_url: Option<String>,
    is_leader: bool,
    generation: i32,
}

struct Inner {
    config: ConfigState,
    statuses: BTreeMap<String, Status>,
    connectors: BTreeMap<String, LocalConnector>,
    tasks: BTreeMap<ConnectorTaskId, LocalTask>,
    assignor: AssignorState,
    /// What this worker runs by the group's assignments.
    assigned: Load,
    /// Statuses last written, by status key.
    written: BTreeMap<String, (State, Option<String>)>,
    needs_rejoin: bool,
    rejoin_at: Option<Instant>,
    /// Connector configs and task counts at the last rebalance (the leader rebalances
    /// when they change).
    assigned_shape: BTreeMap<String, i32>,
}

pub struct DistributedHerder {
    ctx: Arc<WorkerContext>,
    worker_props: Props,
    settings: DistributedSettings,
    /// This worker's REST URL (`http://host:port/`), given to the group.
    url: String,
    config_log: KafkaLog,
    status_log: KafkaLog,
    inner: tokio::sync::Mutex<Inner>,
    view: Mutex<GroupView>,
    wake: Notify,
    /// Validation and plugin answers are the standalone herder's.
    local: Arc<Herder>,
    stopping: std::sync::atomic::AtomicBool,
}

fn status_key_connector(c: &str) -> String {
    StatusRecord::Connector {
        connector: c.into(),
        status: None,
    }
    .key()
}

fn status_key_task(id: &ConnectorTaskId) -> String {
    StatusRecord::Task {
        connector: id.connector.clone(),
        task: id.task,
        status: None,
    }
    .key()
}

impl DistributedHerder {
    /// Opens the internal topics and reads them; `run` then joins the group.
    pub async fn open(
        ctx: Arc<WorkerContext>,
        worker_props: Props,
        url: String,
    ) -> Result<Arc<DistributedHerder>, crate::worker::WorkerError> {
        let settings =
            ctx.config.distributed.clone().ok_or_else(|| {
                crate::worker::WorkerError::Config("not a distributed worker".into())
            })?;
        let config_log = KafkaLog::open(&ctx.kafka_props, &settings.config_storage).await?;
        let status_log = KafkaLog::open(&ctx.kafka_props, &settings.status_storage).await?;
        let local = Herder::new(ctx.clone(), worker_props.clone());
        let herder = Arc::new(DistributedHerder {
            ctx,
            worker_props,
            settings,
            url,
            config_log,
            status_log,
            inner: tokio::sync::Mutex::new(Inner {
                config: ConfigState::default(),
                statuses: BTreeMap::new(),
                connectors: BTreeMap::new(),
                tasks: BTreeMap::new(),
                assignor: AssignorState::default(),
                assigned: Load::default(),
                written: BTreeMap::new(),
                needs_rejoin: true,
                rejoin_at: None,
                assigned_shape: BTreeMap::new(),
            }),
            view: Mutex::new(GroupView::default()),
            wake: Notify::new(),
            local,
            stopping: std::sync::atomic::AtomicBool::new(false),
        });
        {
            let mut inner = herder.inner.lock().await;
            herder.read_config(&mut inner, true).await?;
            herder.read_statuses(&mut inner).await?;
        }
        Ok(herder)
    }

    /// The worker loop: runs until `shutdown`.
    pub async fn run(self: Arc<Self>, mut member: GroupMember) {
        let heartbeat = Duration::from_millis(self.settings.heartbeat_interval_ms.max(100) as u64);
        let mut next_heartbeat = Instant::now();
        while !self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            if let Err(e) = self.tick(&mut member, &mut next_heartbeat, heartbeat).await {
                tracing::warn!("Connect worker loop: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        member.leave().await;
    }

    async fn tick(
        &self,
        member: &mut GroupMember,
        next_heartbeat: &mut Instant,
        heartbeat: Duration,
    ) -> Result<(), String> {
        let mut inner = self.inner.lock().await;
        self.read_config(&mut inner, false)
            .await
            .map_err(|e| e.to_string())?;
        let shape = inner.config.task_counts();
        let view = self.view.lock().clone();
        if view.is_leader && shape != inner.assigned_shape {
            inner.needs_rejoin = true;
        }
        if inner.rejoin_at.is_some_and(|t| Instant::now() >= t) {
            inner.rejoin_at = None;
            inner.needs_rejoin = true;
        }
        if inner.needs_rejoin {
            inner.needs_rejoin = false;
            if let Err(e) = self.rebalance(&mut inner, member).await {
                inner.needs_rejoin = true;
                return Err(format!("rebalance: {e}"));
            }
            *next_heartbeat = Instant::now() + heartbeat;
        }
        self.reconcile(&mut inner).await;
        self.write_statuses(&mut inner).await;
        self.read_statuses(&mut inner)
            .await
            .map_err(|e| e.to_string())?;
        if Instant::now() >= *next_heartbeat {
            *next_heartbeat = Instant::now() + heartbeat;
            match member.heartbeat().await {
                Ok(()) => {}
                Err(MemberError::Rejoin(why)) => {
                    tracing::info!("rejoining the Connect group: {why}");
                    inner.needs_rejoin = true;
                }
                Err(e) => return Err(format!("heartbeat: {e}")),
            }
        }
        Ok(())
    }

    /// Applies the config topic's new records. A restart request read after startup
    /// restarts what this worker runs of that connector.
    async fn read_config(
        &self,
        inner: &mut Inner,
        initial: bool,
    ) -> Result<(), crate::worker::WorkerError> {
        for m in self.config_log.read_to_end().await? {
            let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                continue;
            };
            match ConfigRecord::decode(key, m.payload()) {
                Ok(record) => {
                    if let (
                        false,
                        ConfigRecord::RestartRequest {
                            connector,
                            include_tasks,
                            only_failed,
                        },
                    ) = (initial, &record)
                    {
                        let req = RestartRequest {
                            connector: connector.clone(),
                            include_tasks: *include_tasks,
                            only_failed: *only_failed,
                        };
                        self.restart_local(inner, &req).await;
                    }
                    inner.config.apply(record, m.offset());
                }
                Err(e) => tracing::warn!("config topic record {key} skipped: {e}"),
            }
        }
        Ok(())
    }

    async fn read_statuses(&self, inner: &mut Inner) -> Result<(), crate::worker::WorkerError> {
        for m in self.status_log.read_to_end().await? {
            let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                continue;
            };
            match StatusRecord::decode(key, m.payload()) {
                Ok(
                    StatusRecord::Connector {
                        status: Some(s), ..
                    }
                    | StatusRecord::Task {
                        status: Some(s), ..
                    },
                ) => {
                    // A status from an older generation does not replace a newer one.
                    let newer = inner
                        .statuses
                        .get(key)
                        .is_none_or(|old| s.generation >= old.generation);
                    if newer {
                        inner.statuses.insert(key.to_string(), s);
                    }
                }
                Ok(
                    StatusRecord::Connector { status: None, .. }
                    | StatusRecord::Task { status: None, .. },
                ) => {
                    inner.statuses.remove(key);
                }
                Ok(StatusRecord::Topic { .. }) => {}
                Err(e) => tracing::debug!("status topic record {key} skipped: {e}"),
            }
        }
        Ok(())
    }

    async fn write_status(&self, record: StatusRecord) {
        match record.encode() {
            Ok((key, value)) => {
                if let Err(e) = self
                    .status_log
                    .send(key.as_bytes(), value.as_deref(), None)
                    .await
                {
                    tracing::warn!("writing status {key}: {e}");
                }
            }
            Err(e) => tracing::warn!("encoding a status: {e}"),
        }
    }

    /// Writes the statuses of what this worker runs that changed.
    async fn write_statuses(&self, inner: &mut Inner) {
        let generation = self.view.lock().generation;
        let status = |s: &crate::worker::StatusValue| {
            Some(Status {
                state: s.state,
                trace: s.trace.clone(),
                worker_id: self.ctx.worker_id.clone(),
                generation,
            })
        };
        let mut current: Vec<(String, StatusRecord, (State, Option<String>))> = Vec::new();
        for (name, c) in &inner.connectors {
            let s = c.status.get();
            let record = StatusRecord::Connector {
                connector: name.clone(),
                status: status(&s),
            };
            current.push((status_key_connector(name), record, (s.state, s.trace)));
        }
        for (id, t) in &inner.tasks {
            let s = t.handle.status.get();
            let record = StatusRecord::Task {
                connector: id.connector.clone(),
                task: id.task,
                status: status(&s),
            };
            current.push((status_key_task(id), record, (s.state, s.trace)));
        }
        let changed: Vec<_> = current
            .into_iter()
            .filter(|(key, _, now)| inner.written.get(key) != Some(now))
            .collect();
        for (key, record, now) in changed {
            self.write_status(record).await;
            inner.written.insert(key, now);
        }
    }

    /// Joins the group, assigns as leader, and applies this worker's assignment.
    async fn rebalance(
        &self,
        inner: &mut Inner,
        member: &mut GroupMember,
    ) -> Result<(), MemberError> {
        let current = Assignment {
            connectors: inner.assigned.connectors.iter().cloned().collect(),
            tasks: inner.assigned.tasks.iter().cloned().collect(),
            ..Assignment::default()
        };
        let state = WorkerState {
            url: self.url.clone(),
            config_offset: inner.config.offset,
            assignment: Some(current),
        };
        let preferred = match self.settings.connect_protocol {
            crate::config::ConnectProtocol::Eager => Compatibility::Eager,
            crate::config::ConnectProtocol::Compatible => Compatibility::Compatible,
            crate::config::ConnectProtocol::Sessioned => Compatibility::Sessioned,
        };
        let protocols =
            join_protocols(&state, preferred).map_err(|e| MemberError::Rejoin(e.to_string()))?;
        let joined = member.join(&protocols).await?;
        let assignments = if joined.is_leader() {
            self.assign_as_leader(inner, &joined)
        } else {
            Vec::new()
        };
        let mine = member.sync(assignments).await?;
        let assignment =
            decode_assignment(&mine).map_err(|e| MemberError::Rejoin(e.to_string()))?;
        if assignment.error == CONFIG_MISMATCH {
            // Read the config topic to the end and rejoin.
            inner.needs_rejoin = true;
            return Ok(());
        }
        {
            let mut view = self.view.lock();
            view.generation = joined.generation;
            view.is_leader = joined.is_leader();
            view.leader_url = Some(assignment.leader_url.clone());
        }
        tracing::info!(
            generation = joined.generation,
            leader = %assignment.leader_url,
            "Connect group joined: assigned {} connectors and {} tasks, revoked {} and {}",
            assignment.connectors.len(),
            assignment.tasks.len(),
            assignment.revoked_connectors.len(),
            assignment.revoked_tasks.len()
        );
        // Eager: the assignment is everything this worker runs.
        if joined.protocol == Compatibility::Eager {
            let keep_c: BTreeSet<String> = assignment.connectors.iter().cloned().collect();
            let keep_t: BTreeSet<ConnectorTaskId> = assignment.tasks.iter().cloned().collect();
            for c in inner.assigned.connectors.clone() {
                if !keep_c.contains(&c) {
                    self.stop_local_connector(inner, &c).await;
                }
            }
            for t in inner.assigned.tasks.clone() {
                if !keep_t.contains(&t) {
                    self.stop_local_task(inner, &t).await;
                }
            }
            inner.assigned = Load::default();
        }
        for c in &assignment.revoked_connectors {
            self.stop_local_connector(inner, c).await;
        }
        for t in &assignment.revoked_tasks {
            self.stop_local_task(inner, t).await;
        }
        inner
            .assigned
            .connectors
            .extend(assignment.connectors.iter().cloned());
        inner
            .assigned
            .tasks
            .extend(assignment.tasks.iter().cloned());
        inner.assigned_shape = inner.config.task_counts();
        if !assignment.revoked_connectors.is_empty() || !assignment.revoked_tasks.is_empty() {
            // Cooperative: what was revoked is assigned elsewhere in the next round.
            inner.needs_rejoin = true;
        } else if assignment.delay_ms > 0 {
            inner.rejoin_at =
                Some(Instant::now() + Duration::from_millis(assignment.delay_ms as u64));
        }
        Ok(())
    }

    fn assign_as_leader(&self, inner: &mut Inner, joined: &Joined) -> Vec<(String, Vec<u8>)> {
        let max_offset = joined
            .members
            .iter()
            .map(|(_, s)| s.config_offset)
            .max()
            .unwrap_or(0);
        let leader_url = joined
            .members
            .iter()
            .find(|(m, _)| *m == joined.member_id)
            .map(|(_, s)| s.url.clone())
            .unwrap_or_else(|| self.url.clone());
        if max_offset > inner.config.offset {
            // Another worker has read further: this leader must catch up first.
            return joined
                .members
                .iter()
                .filter_map(|(m, _)| {
                    let a = Assignment {
                        error: CONFIG_MISMATCH,
                        leader: joined.member_id.clone(),
                        leader_url: leader_url.clone(),
                        config_offset: inner.config.offset,
                        ..Assignment::default()
                    };
                    encode_assignment(&a, joined.protocol)
                        .ok()
                        .map(|b| (m.clone(), b))
                })
                .collect();
        }
        let current: BTreeMap<String, Load> = joined
            .members
            .iter()
            .map(|(m, s)| {
                let a = s.assignment.clone().unwrap_or_default();
                (
                    m.clone(),
                    Load {
                        connectors: a.connectors.into_iter().collect(),
                        tasks: a.tasks.into_iter().collect(),
                    },
                )
            })
            .collect();
        let delay = if joined.protocol == Compatibility::Eager {
            0
        } else {
            self.settings.scheduled_rebalance_max_delay_ms as i64
        };
        let connectors = inner.config.task_counts();
        let round = if joined.protocol == Compatibility::Eager {
            // Eager: everything is reassigned from scratch.
            let empty: BTreeMap<String, Load> = current
                .keys()
                .map(|m| (m.clone(), Load::default()))
                .collect();
            let mut fresh = AssignorState::default();
            assign(&mut fresh, &empty, &connectors, 0, now_ms())
        } else {
            assign(&mut inner.assignor, &current, &connectors, delay, now_ms())
        };
        joined
            .members
            .iter()
            .filter_map(|(m, _)| {
                let a = round.assignment(m, &joined.member_id, &leader_url, inner.config.offset);
                encode_assignment(&a, joined.protocol)
                    .ok()
                    .map(|b| (m.clone(), b))
            })
            .collect()
    }

    async fn stop_local_connector(&self, inner: &mut Inner, name: &str) {
        inner.assigned.connectors.remove(name);
        if let Some(mut c) = inner.connectors.remove(name) {
            if let Some(mut i) = c.instance.take() {
                i.stop().await;
            }
            inner.written.remove(&status_key_connector(name));
        }
    }

    async fn stop_local_task(&self, inner: &mut Inner, id: &ConnectorTaskId) {
        inner.assigned.tasks.remove(id);
        if let Some(mut t) = inner.tasks.remove(id) {
            stop_task(&mut t.handle, &self.ctx).await;
            inner.written.remove(&status_key_task(id));
        }
    }

    /// Brings what runs here in line with the assignment and the config topic.
    async fn reconcile(&self, inner: &mut Inner) {
        // Connectors.
        for name in inner.assigned.connectors.clone() {
            let Some(config) = inner.config.connectors.get(&name).cloned() else {
                self.stop_local_connector(inner, &name).await;
                continue;
            };
            let target = inner
                .config
                .target_states
                .get(&name)
                .copied()
                .unwrap_or(TargetState::Started);
            let restart = inner
                .connectors
                .get(&name)
                .is_none_or(|c| c.config != config);
            if restart {
                self.stop_local_connector(inner, &name).await;
                inner.assigned.connectors.insert(name.clone());
                let plugin = match self.ctx.plugins.find(
                    config
                        .get(rest::CONNECTOR_CLASS_CONFIG)
                        .map(String::as_str)
                        .unwrap_or(""),
                ) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(connector = %name, "{}", e.message);
                        continue;
                    }
                };
                let parsed = match ConnectorConfig::parse(
                    &config,
                    plugin.connector_type,
                    self.ctx.config.connector_client_config_override_policy,
                ) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(connector = %name, "invalid config: {e}");
                        continue;
                    }
                };
                let status = StatusCell::new(State::Unassigned);
                let instance = if target == TargetState::Stopped {
                    status.set(State::Stopped);
                    None
                } else {
                    match start_connector_instance(&self.ctx, &plugin, &config, &status).await {
                        Ok(i) => {
                            status.set(if target == TargetState::Paused {
                                State::Paused
                            } else {
                                State::Running
                            });
                            Some(i)
                        }
                        Err(()) => None,
                    }
                };
                inner.connectors.insert(
                    name.clone(),
                    LocalConnector {
                        config,
                        parsed,
                        plugin,
                        target,
                        status,
                        instance,
                        generated: None,
                        active_topics: Arc::new(Mutex::new(BTreeSet::new())),
                    },
                );
            }
            let Some(c) = inner.connectors.get_mut(&name) else {
                continue;
            };
            if c.target != target {
                c.target = target;
                match target {
                    TargetState::Stopped => {
                        if let Some(mut i) = c.instance.take() {
                            i.stop().await;
                        }
                        c.status.set(State::Stopped);
                        c.generated = None;
                    }
                    _ if c.instance.is_none() => {
                        if let Ok(i) =
                            start_connector_instance(&self.ctx, &c.plugin, &c.config, &c.status)
                                .await
                        {
                            c.instance = Some(i);
                        }
                        c.status.set(if target == TargetState::Paused {
                            State::Paused
                        } else {
                            State::Running
                        });
                    }
                    _ => c.status.set(if target == TargetState::Paused {
                        State::Paused
                    } else {
                        State::Running
                    }),
                }
            }
            // Task configs: generated when the connector starts or asks, written when
            // they differ from the committed ones. A stopped connector has none.
            let wanted: Option<Vec<Props>> = if target == TargetState::Stopped {
                Some(Vec::new())
            } else if let Some(instance) = c.instance.as_mut() {
                if c.generated.is_none() || c.status.reporter.take_reconfiguration_request() {
                    let max = c.parsed.tasks_max.max(1) as usize;
                    match instance.task_configs(max).await {
                        Ok(configs) => {
                            let configs: Vec<Props> = configs
                                .into_iter()
                                .map(|mut p| {
                                    p.insert("task.class".into(), c.plugin.task_class.to_string());
                                    p
                                })
                                .collect();
                            c.generated = Some(configs.clone());
                            Some(configs)
                        }
                        Err(e) => {
                            c.status.fail(crate::worker::trace_of(
                                "Failed to generate task configs",
                                &e,
                            ));
                            None
                        }
                    }
                } else {
                    c.generated.clone()
                }
            } else {
                None
            };
            if let Some(wanted) = wanted {
                let committed = inner.config.tasks.get(&name).cloned().unwrap_or_default();
                if committed != wanted {
                    for r in task_config_records(&name, &wanted) {
                        if let Err(e) = self.write_config(&r).await {
                            tracing::warn!(connector = %name, "writing task configs: {e}");
                            break;
                        }
                    }
                }
            }
        }
        // Tasks.
        let now = now_ms();
        for id in inner.assigned.tasks.clone() {
            let config = inner
                .config
                .tasks
                .get(&id.connector)
                .and_then(|t| t.get(id.task as usize))
                .cloned();
            let connector_config = inner.config.connectors.get(&id.connector).cloned();
            let (Some(config), Some(connector_config)) = (config, connector_config) else {
                // Deleted or fewer tasks now: stopped until the next assignment.
                if inner.tasks.contains_key(&id) {
                    self.stop_local_task(inner, &id).await;
                    inner.assigned.tasks.insert(id.clone());
                }
                continue;
            };
            let target = inner
                .config
                .target_states
                .get(&id.connector)
                .copied()
                .unwrap_or(TargetState::Started);
            let restart = inner
                .tasks
                .get(&id)
                .is_none_or(|t| t.handle.config != config);
            let Some(spec) = self.task_spec(&id, &connector_config, &config) else {
                continue;
            };
            if restart {
                if let Some(mut old) = inner.tasks.remove(&id) {
                    stop_task(&mut old.handle, &self.ctx).await;
                }
                let policy = RestartPolicy::from_props(&self.worker_props, &connector_config)
                    .unwrap_or_default();
                let mut handle = TaskHandle::new(id.clone(), config, target, &policy);
                start_task(&self.ctx, &mut handle, spec);
                inner.tasks.insert(id.clone(), LocalTask { handle, target });
                continue;
            }
            let t = inner.tasks.get_mut(&id).expect("present");
            if t.target != target {
                t.target = target;
                let _ = t.handle.control.send(target);
            }
            if t.handle.automatic_restart_due(now) {
                t.handle.restart(&self.ctx, spec, target).await;
            }
        }
    }

    fn task_spec(
        &self,
        id: &ConnectorTaskId,
        connector_config: &Props,
        task_config: &Props,
    ) -> Option<TaskSpec> {
        let plugin = self
            .ctx
            .plugins
            .find(
                connector_config
                    .get(rest::CONNECTOR_CLASS_CONFIG)
                    .map(String::as_str)
                    .unwrap_or(""),
            )
            .ok()?;
        let parsed = ConnectorConfig::parse(
            connector_config,
            plugin.connector_type,
            self.ctx.config.connector_client_config_override_policy,
        )
        .ok()?;
        Some(TaskSpec {
            id: id.clone(),
            connector: parsed,
            task_props: task_config.clone(),
            plugin,
            active_topics: Arc::new(Mutex::new(BTreeSet::new())),
        })
    }

    /// Restarts what this worker runs of a connector, as a restart request asks.
    async fn restart_local(&self, inner: &mut Inner, req: &RestartRequest) {
        if let Some(c) = inner.connectors.get_mut(&req.connector) {
            if req.should_restart_connector(c.status.get().state)
                && c.target != TargetState::Stopped
            {
                if let Some(mut i) = c.instance.take() {
                    i.stop().await;
                }
                c.status.set(State::Restarting);
                if let Ok(i) =
                    start_connector_instance(&self.ctx, &c.plugin, &c.config, &c.status).await
                {
                    c.instance = Some(i);
                    c.status.set(if c.target == TargetState::Paused {
                        State::Paused
                    } else {
                        State::Running
                    });
                }
            }
        }
        let ids: Vec<ConnectorTaskId> = inner
            .tasks
            .iter()
            .filter(|(id, t)| {
                id.connector == req.connector
                    && req.should_restart_task(t.handle.status.get().state)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let Some(connector_config) = inner.config.connectors.get(&id.connector).cloned() else {
                continue;
            };
            let t = inner.tasks.get_mut(&id).expect("listed");
            if let Some(r) = t.handle.restarts.as_mut() {
                r.on_manual_restart(now_ms());
            }
            if let Some(spec) = self.task_spec(&id, &connector_config, &t.handle.config.clone()) {
                let target = t.target;
                t.handle.restart(&self.ctx, spec, target).await;
            }
        }
    }

    async fn write_config(&self, record: &ConfigRecord) -> Result<i64, ErrorMessage> {
        let (key, value) = record
            .encode()
            .map_err(|e| ErrorMessage::new(500, e.to_string()))?;
        self.config_log
            .send(key.as_bytes(), value.as_deref(), Some(0))
            .await
            .map(|(_, offset)| offset)
            .map_err(|e| ErrorMessage::new(500, e.to_string()))
    }

    /// Writes records and waits until this worker has read them back.
    async fn write_and_wait(&self, records: &[ConfigRecord]) -> Result<(), ErrorMessage> {
        let mut last = -1;
        for r in records {
            last = self.write_config(r).await?;
        }
        let deadline = Instant::now() + WRITE_TIMEOUT;
        loop {
            {
                let mut inner = self.inner.lock().await;
                self.read_config(&mut inner, false)
                    .await
                    .map_err(|e| ErrorMessage::new(500, e.to_string()))?;
                if inner.config.offset > last {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(ErrorMessage::request_timed_out());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.wake.notify_one();
        Ok(())
    }

    fn require_leader(&self) -> Result<(), ErrorMessage> {
        let view = self.view.lock();
        if view.is_leader {
            Ok(())
        } else if view.leader_url.is_some() {
            Err(ErrorMessage::conflicting_operation())
        } else {
            Err(ErrorMessage::no_known_leader())
        }
    }

    fn connector_info_of(
        &self,
        config: &ConfigState,
        name: &str,
    ) -> Result<ConnectorInfo, ErrorMessage> {
        let c = config
            .connectors
            .get(name)
            .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
        let ty = self
            .ctx
            .plugins
            .find(
                c.get(rest::CONNECTOR_CLASS_CONFIG)
                    .map(String::as_str)
                    .unwrap_or(""),
            )
            .map(|p| rest_type(p.connector_type))
            .unwrap_or(rest::ConnectorType::Unknown);
        let tasks = config.tasks.get(name).map_or(0, Vec::len);
        Ok(ConnectorInfo {
            name: name.to_string(),
            config: c.clone(),
            tasks: (0..tasks as i32)
                .map(|t| ConnectorTaskId::new(name, t))
                .collect(),
            connector_type: ty,
        })
    }

    /// A stored connector config's plugin and parsed form.
    fn parse_config(&self, config: &Props) -> Result<(Plugin, ConnectorConfig), ErrorMessage> {
        let plugin = self.ctx.plugins.find(
            config
                .get(rest::CONNECTOR_CLASS_CONFIG)
                .map(String::as_str)
                .unwrap_or(""),
        )?;
        let parsed = ConnectorConfig::parse(
            config,
            plugin.connector_type,
            self.ctx.config.connector_client_config_override_policy,
        )
        .map_err(|e| ErrorMessage::bad_request(e.to_string()))?;
        Ok((plugin, parsed))
    }

    /// Stops everything this worker runs and leaves the group.
    pub async fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
        let mut inner = self.inner.lock().await;
        for id in inner.tasks.keys().cloned().collect::<Vec<_>>() {
            self.stop_local_task(&mut inner, &id).await;
        }
        for c in inner.connectors.keys().cloned().collect::<Vec<_>>() {
            self.stop_local_connector(&mut inner, &c).await;
        }
    }

    /// The leader's URL when this worker is not the leader (REST writes go there).
    pub fn forward_to(&self) -> Option<String> {
        let view = self.view.lock();
        (!view.is_leader).then(|| view.leader_url.clone()).flatten()
    }
}

#[async_trait]
impl HerderApi for DistributedHerder {
    fn context(&self) -> &Arc<WorkerContext> {
        &self.ctx
    }

    fn leader_url(&self) -> Option<String> {
        self.forward_to()
    }

    async fn connector_names(&self) -> Result<Vec<String>, ErrorMessage> {
        Ok(self
            .inner
            .lock()
            .await
            .config
            .connectors
            .keys()
            .cloned()
            .collect())
    }

    async fn connector_config(&self, name: &str) -> Result<Props, ErrorMessage> {
        let inner = self.inner.lock().await;
        inner
            .config
            .connectors
            .get(name)
            .cloned()
            .ok_or_else(|| ErrorMessage::connector_not_found(name))
    }

    async fn connector_info(&self, name: &str) -> Result<ConnectorInfo, ErrorMessage> {
        let inner = self.inner.lock().await;
        self.connector_info_of(&inner.config, name)
    }

    async fn put_connector(
        &self,
        name: &str,
        config: Props,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> Result<(bool, ConnectorInfo), ErrorMessage> {
        self.require_leader()?;
        let infos = self.local.validate(&config).await?;
        if let Some(m) = infos.error_message() {
            return Err(ErrorMessage::bad_request(m));
        }
        let existed = self.inner.lock().await.config.connectors.contains_key(name);
        if existed && !allow_replace {
            return Err(ErrorMessage::already_exists(name));
        }
        let target = if existed {
            None
        } else {
            Some(initial_state.unwrap_or(TargetState::Started))
        };
        self.write_and_wait(&put_connector_records(name, &config, target))
            .await?;
        let inner = self.inner.lock().await;
        Ok((!existed, self.connector_info_of(&inner.config, name)?))
    }

    async fn delete_connector(&self, name: &str) -> Result<(), ErrorMessage> {
        self.require_leader()?;
        if !self.inner.lock().await.config.connectors.contains_key(name) {
            return Err(ErrorMessage::connector_not_found(name));
        }
        self.write_and_wait(&[
            ConfigRecord::ConnectorConfigRemoved {
                connector: name.into(),
            },
            ConfigRecord::TargetStateRemoved {
                connector: name.into(),
            },
        ])
        .await
    }

    async fn status(&self, name: &str) -> Result<ConnectorStateInfo, ErrorMessage> {
        let mut inner = self.inner.lock().await;
        let _ = self.read_statuses(&mut inner).await;
        let config = inner
            .config
            .connectors
            .get(name)
            .ok_or_else(|| ErrorMessage::no_connector_status(name))?;
        let ty = self
            .ctx
            .plugins
            .find(
                config
                    .get(rest::CONNECTOR_CLASS_CONFIG)
                    .map(String::as_str)
                    .unwrap_or(""),
            )
            .map(|p| rest_type(p.connector_type))
            .unwrap_or(rest::ConnectorType::Unknown);
        let version = self
            .ctx
            .plugins
            .find(
                config
                    .get(rest::CONNECTOR_CLASS_CONFIG)
                    .map(String::as_str)
                    .unwrap_or(""),
            )
            .map(|p| p.version.to_string())
            .unwrap_or_default();
        let mut connector = match inner.statuses.get(&status_key_connector(name)) {
            Some(s) => ConnectorState::new(s.state, &s.worker_id, s.trace.clone()),
            None => ConnectorState::new(State::Unassigned, "", None),
        };
        connector.version = Some(version.clone());
        let n = inner.config.tasks.get(name).map_or(0, Vec::len) as i32;
        let tasks = (0..n)
            .map(|t| {
                let id = ConnectorTaskId::new(name, t);
                if let Some(local) = inner.tasks.get(&id) {
                    return local.handle.state(&self.ctx.worker_id, &version);
                }
                let mut state = match inner.statuses.get(&status_key_task(&id)) {
                    Some(s) => TaskState::new(t, s.state, &s.worker_id, s.trace.clone()),
                    None => TaskState::new(t, State::Unassigned, "", None),
                };
                state.version = Some(version.clone());
                state
            })
            .collect();
        Ok(ConnectorStateInfo {
            name: name.to_string(),
            connector,
            tasks,
            connector_type: ty,
        })
    }

    async fn task_configs(&self, name: &str) -> Result<Vec<TaskInfo>, ErrorMessage> {
        let inner = self.inner.lock().await;
        if !inner.config.connectors.contains_key(name) {
            return Err(ErrorMessage::connector_not_found(name));
        }
        Ok(inner
            .config
            .tasks
            .get(name)
            .map(|tasks| {
                tasks
                    .iter()
                    .enumerate()
                    .map(|(i, c)| TaskInfo {
                        id: ConnectorTaskId::new(name, i as i32),
                        config: c.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn set_target_state(&self, name: &str, target: TargetState) -> Result<(), ErrorMessage> {
        self.require_leader()?;
        if !self.inner.lock().await.config.connectors.contains_key(name) {
            return Err(ErrorMessage::connector_not_found(name));
        }
        let mut records = vec![ConfigRecord::TargetState {
            connector: name.into(),
            state: target,
        }];
        if target == TargetState::Stopped {
            // KIP-875: a stopped connector has no tasks.
            records.extend(task_config_records(name, &[]));
        }
        self.write_and_wait(&records).await
    }

    async fn restart(
        &self,
        req: &RestartRequest,
    ) -> Result<Option<ConnectorStateInfo>, ErrorMessage> {
        self.require_leader()?;
        let status = self
            .status(&req.connector)
            .await
            .map_err(|_| ErrorMessage::connector_not_found(&req.connector))?;
        self.write_and_wait(&[ConfigRecord::RestartRequest {
            connector: req.connector.clone(),
            include_tasks: req.include_tasks,
            only_failed: req.only_failed,
        }])
        .await?;
        if req.force_restart_connector_only() {
            return Ok(None);
        }
        let mut answer = status;
        if req.should_restart_connector(
            State::parse(&answer.connector.state).unwrap_or(State::Unassigned),
        ) {
            answer.connector.state = State::Restarting.name().into();
        }
        for t in &mut answer.tasks {
            if req.should_restart_task(State::parse(&t.state).unwrap_or(State::Unassigned)) {
                t.state = State::Restarting.name().into();
            }
        }
        Ok(Some(answer))
    }

    async fn restart_task(&self, id: &ConnectorTaskId) -> Result<(), ErrorMessage> {
        let mut inner = self.inner.lock().await;
        let n = inner.config.tasks.get(&id.connector).map_or(0, Vec::len) as i32;
        if !inner.config.connectors.contains_key(&id.connector) {
            return Err(ErrorMessage::connector_not_found(&id.connector));
        }
        if id.task < 0 || id.task >= n {
            return Err(ErrorMessage::unknown_task(id));
        }
        let Some(t) = inner.tasks.get_mut(id) else {
            // Another worker runs it: the request goes there.
            return Err(ErrorMessage::conflicting_operation());
        };
        if let Some(r) = t.handle.restarts.as_mut() {
            r.on_manual_restart(now_ms());
        }
        let connector_config = inner
            .config
            .connectors
            .get(&id.connector)
            .cloned()
            .unwrap_or_default();
        let t = inner.tasks.get_mut(id).expect("present");
        let spec = self
            .task_spec(id, &connector_config, &t.handle.config.clone())
            .ok_or_else(|| ErrorMessage::new(500, "cannot restart the task"))?;
        let target = t.target;
        t.handle.restart(&self.ctx, spec, target).await;
        Ok(())
    }

    async fn active_topics(&self, name: &str) -> Result<Vec<String>, ErrorMessage> {
        let inner = self.inner.lock().await;
        if !inner.config.connectors.contains_key(name) {
            return Err(ErrorMessage::connector_not_found(name));
        }
        Ok(inner
            .connectors
            .get(name)
            .map(|c| c.active_topics.lock().iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn reset_active_topics(&self, name: &str) -> Result<(), ErrorMessage> {
        let inner = self.inner.lock().await;
        if let Some(c) = inner.connectors.get(name) {
            c.active_topics.lock().clear();
        }
        Ok(())
    }

    async fn offsets(&self, name: &str) -> Result<ConnectorOffsets, ErrorMessage> {
        let (parsed, topics) = {
            let inner = self.inner.lock().await;
            let config = inner
                .config
                .connectors
                .get(name)
                .cloned()
                .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
            let topics: Vec<String> = inner
                .connectors
                .get(name)
                .map(|c| c.active_topics.lock().iter().cloned().collect())
                .unwrap_or_default();
            (self.parse_config(&config)?.1, topics)
        };
        read_connector_offsets(&self.ctx, &parsed, &topics).await
    }

    async fn modify_offsets(
        &self,
        name: &str,
        body: Option<ConnectorOffsets>,
    ) -> Result<RestMessage, ErrorMessage> {
        self.require_leader()?;
        let (config, target, tasks) = {
            let inner = self.inner.lock().await;
            let config = inner
                .config
                .connectors
                .get(name)
                .cloned()
                .ok_or_else(|| ErrorMessage::connector_not_found(name))?;
            let target = inner
                .config
                .target_states
                .get(name)
                .copied()
                .unwrap_or(TargetState::Started);
            (
                config,
                target,
                inner.config.tasks.get(name).map_or(0, Vec::len),
            )
        };
        rest::check_offsets_modifiable(name, target, tasks)?;
        let (plugin, parsed) = self.parse_config(&config)?;
        modify_connector_offsets(&self.ctx, &plugin, &config, &parsed, body).await
    }

    async fn validate(&self, config: &Props) -> Result<ConfigInfos, ErrorMessage> {
        self.local.validate(config).await
    }

    fn plugin_config(&self, plugin: &str) -> Result<Vec<ConfigKeyInfo>, ErrorMessage> {
        self.local.plugin_config(plugin)
    }
}
