//! LogManager: every partition log under one log dir, checkpoints and background tasks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::StorageError;
use crate::log::Log;
use crate::{TopicPartition, Uuid};

/// Broker-level settings of the log manager.
#[derive(Clone, Debug)]
pub struct LogManagerConfig {
    pub log_dir: PathBuf,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: i64,
    /// `log.flush.scheduler.interval.ms`.
    pub flush_check_interval_ms: i64,
    /// `log.cleaner.enable`.
    pub cleaner_enabled: bool,
    /// `log.cleaner.backoff.ms`.
    pub cleaner_backoff_ms: i64,
    /// `num.recovery.threads.per.data.dir`.
    pub recovery_threads: usize,
}

impl LogManagerConfig {
    /// Kafka's defaults for `log_dir`.
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        LogManagerConfig {
            log_dir: log_dir.into(),
            retention_check_interval_ms: 300_000,
            flush_check_interval_ms: i64::MAX,
            cleaner_enabled: true,
            cleaner_backoff_ms: 15_000,
            recovery_threads: 2,
        }
    }
}

/// All partition logs under one log dir.
pub struct LogManager {
    config: LogManagerConfig,
}

impl LogManager {
    pub fn open(
        _config: LogManagerConfig,
        _default_log_config: LogConfig,
    ) -> Result<Arc<LogManager>, StorageError> {
        todo!()
    }

    pub fn get_log(&self, _tp: &TopicPartition) -> Option<Arc<Log>> {
        todo!()
    }

    pub fn get_or_create_log(
        &self,
        _tp: &TopicPartition,
        _topic_id: Uuid,
        _config: LogConfig,
    ) -> Result<Arc<Log>, StorageError> {
        todo!()
    }

    pub fn delete_log(&self, _tp: &TopicPartition) -> Result<(), StorageError> {
        todo!()
    }

    pub fn all_logs(&self) -> Vec<Arc<Log>> {
        todo!()
    }

    pub fn start_background_tasks(self: &Arc<Self>) {
        todo!()
    }

    pub fn checkpoint(&self) -> Result<(), StorageError> {
        todo!()
    }

    pub fn shutdown(&self) -> Result<(), StorageError> {
        todo!()
    }

    pub fn log_dir(&self) -> &Path {
        &self.config.log_dir
    }

    pub fn run_retention_once(&self, _now_ms: i64) -> Result<(), StorageError> {
        todo!()
    }

    pub fn run_cleaner_once(&self, _now_ms: i64) -> Result<(), StorageError> {
        todo!()
    }
}
