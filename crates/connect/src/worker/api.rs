//! What the REST API asks of a herder, standalone or distributed.

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{ConfigInfos, ConfigKeyInfo, Props};
use crate::rest::{
    ConnectorInfo, ConnectorOffsets, ConnectorStateInfo, ConnectorTaskId, ErrorMessage, Message,
    RestartRequest, TaskInfo, TaskState,
};
use crate::storage::TargetState;

use super::WorkerContext;

/// The herder operations behind the REST API, with Kafka's answers.
#[async_trait]
pub trait HerderApi: Send + Sync {
    fn context(&self) -> &Arc<WorkerContext>;
    async fn connector_names(&self) -> Result<Vec<String>, ErrorMessage>;
    async fn connector_config(&self, name: &str) -> Result<Props, ErrorMessage>;
    async fn connector_info(&self, name: &str) -> Result<ConnectorInfo, ErrorMessage>;
    /// Creates (or with `allow_replace` replaces) a connector; returns whether it was
    /// created.
    async fn put_connector(
        &self,
        name: &str,
        config: Props,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> Result<(bool, ConnectorInfo), ErrorMessage>;
    async fn delete_connector(&self, name: &str) -> Result<(), ErrorMessage>;
    async fn status(&self, name: &str) -> Result<ConnectorStateInfo, ErrorMessage>;
    /// A task's part of its connector's status.
    async fn task_status(&self, id: &ConnectorTaskId) -> Result<TaskState, ErrorMessage> {
        let status = self
            .status(&id.connector)
            .await
            .map_err(|_| ErrorMessage::no_task_status(id))?;
        status
            .tasks
            .into_iter()
            .find(|t| t.id == id.task)
            .ok_or_else(|| ErrorMessage::no_task_status(id))
    }
    async fn task_configs(&self, name: &str) -> Result<Vec<TaskInfo>, ErrorMessage>;
    async fn set_target_state(&self, name: &str, target: TargetState) -> Result<(), ErrorMessage>;
    async fn restart(
        &self,
        req: &RestartRequest,
    ) -> Result<Option<ConnectorStateInfo>, ErrorMessage>;
    async fn restart_task(&self, id: &ConnectorTaskId) -> Result<(), ErrorMessage>;
    async fn active_topics(&self, name: &str) -> Result<Vec<String>, ErrorMessage>;
    async fn reset_active_topics(&self, name: &str) -> Result<(), ErrorMessage>;
    async fn offsets(&self, name: &str) -> Result<ConnectorOffsets, ErrorMessage>;
    async fn modify_offsets(
        &self,
        name: &str,
        body: Option<ConnectorOffsets>,
    ) -> Result<Message, ErrorMessage>;
    async fn validate(&self, config: &Props) -> Result<ConfigInfos, ErrorMessage>;
    fn plugin_config(&self, plugin: &str) -> Result<Vec<ConfigKeyInfo>, ErrorMessage>;
    /// Where REST writes go when this worker may not make them (a distributed follower:
    /// the leader's URL); `None` to handle them here.
    fn leader_url(&self) -> Option<String> {
        None
    }
    /// The Kafka cluster id, for `GET /`.
    fn kafka_cluster_id(&self) -> Option<String> {
        None
    }
}
