//! LogManager: every partition log under one log dir, root checkpoints, the
//! clean-shutdown marker and background tasks (retention, cleaner, flusher).
//!
//! Files owned at the log dir root: `recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `cleaner-offset-checkpoint`,
//! `replication-offset-checkpoint` (high watermarks), `.kafka_cleanshutdown`, and `.lock`
//! (held while the manager is open, so that two brokers never share a log dir).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::checkpoint::{
    read_offset_checkpoint, sync_dir, write_file_atomically, write_offset_checkpoint,
};
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::loader::LoadParams;
use crate::log::{lock, Log};
use crate::seams::now_ms;
use crate::{TopicPartition, Uuid};

pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
pub const LOCK_FILE: &str = ".lock";
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";

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
    /// `log.cleaner.dedupe.buffer.size`: memory for the cleaner's key map.
    pub cleaner_dedupe_buffer_bytes: usize,
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
            cleaner_dedupe_buffer_bytes: crate::cleaner::DEFAULT_DEDUPE_BUFFER_BYTES,
            recovery_threads: 2,
        }
    }
}

/// Checkpoints read at open, keyed by partition.
#[derive(Default)]
struct RootCheckpoints {
    recovery_points: BTreeMap<TopicPartition, i64>,
    log_start_offsets: BTreeMap<TopicPartition, i64>,
    cleaner_offsets: BTreeMap<TopicPartition, i64>,
    high_watermarks: BTreeMap<TopicPartition, i64>,
}

/// All partition logs under one log dir.
pub struct LogManager {
    config: LogManagerConfig,
    default_log_config: LogConfig,
    logs: RwLock<BTreeMap<TopicPartition, Arc<Log>>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    last_checkpoint_ms: AtomicI64,
    /// Deleted partitions' renamed dirs and when to remove them (`file.delete.delay.ms`).
    pending_deletions: Mutex<Vec<(PathBuf, i64)>>,
    /// Holds the OS lock on `.lock` until shutdown (or drop).
    dir_lock: Mutex<Option<fs::File>>,
}

/// Kafka's `log.flush.offset.checkpoint.interval.ms` default.
const CHECKPOINT_INTERVAL_MS: i64 = 60_000;

fn read_checkpoint_or_empty(path: &Path) -> BTreeMap<TopicPartition, i64> {
    read_offset_checkpoint(path).unwrap_or_else(|e| {
        // A corrupt checkpoint only costs a longer recovery.
        tracing::warn!(path = %path.display(), %e, "ignoring unreadable checkpoint");
        BTreeMap::new()
    })
}

impl LogManager {
    /// Opens every `<topic>-<partition>` dir (recovering past the recovery point
    /// after an unclean shutdown), then removes the clean-shutdown marker.
    pub fn open(
        config: LogManagerConfig,
        default_log_config: LogConfig,
    ) -> Result<Arc<LogManager>, StorageError> {
        fs::create_dir_all(&config.log_dir)?;
        let root = &config.log_dir;
        let dir_lock = lock_log_dir(root)?;
        let marker = root.join(CLEAN_SHUTDOWN_FILE);
        let clean_shutdown = marker.exists();
        remove_temp_files(root);
        let checkpoints = RootCheckpoints {
            recovery_points: read_checkpoint_or_empty(&root.join(RECOVERY_POINT_CHECKPOINT)),
            log_start_offsets: read_checkpoint_or_empty(&root.join(LOG_START_OFFSET_CHECKPOINT)),
            cleaner_offsets: read_checkpoint_or_empty(&root.join(CLEANER_OFFSET_CHECKPOINT)),
            high_watermarks: read_checkpoint_or_empty(&root.join(REPLICATION_OFFSET_CHECKPOINT)),
        };
        let dirs = partition_dirs(root)?;
        let logs = open_logs(
            &config,
            &default_log_config,
            &checkpoints,
            clean_shutdown,
            dirs,
        )?;
        if clean_shutdown {
            fs::remove_file(&marker)?;
            sync_dir(root)?;
        }
        let manager = Arc::new(LogManager {
            config,
            default_log_config,
            logs: RwLock::new(logs),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            threads: Mutex::new(Vec::new()),
            last_checkpoint_ms: AtomicI64::new(now_ms()),
            pending_deletions: Mutex::new(Vec::new()),
            dir_lock: Mutex::new(Some(dir_lock)),
        });
        // A full disk must not stop the start: the operator needs a running node to
        // delete data. The old checkpoints stay valid, they only cost a longer recovery.
        if let Err(e) = manager.checkpoint() {
            tracing::warn!(%e, "could not write checkpoints after opening the logs");
        }
        Ok(manager)
    }

    pub fn default_log_config(&self) -> &LogConfig {
        &self.default_log_config
    }

    pub fn get_log(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.logs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tp)
            .cloned()
    }

    /// Creates the partition dir and `partition.metadata` if absent, else returns the existing log.
    pub fn get_or_create_log(
        &self,
        tp: &TopicPartition,
        topic_id: Uuid,
        config: LogConfig,
    ) -> Result<Arc<Log>, StorageError> {
        let mut logs = self.logs.write().unwrap_or_else(|e| e.into_inner());
        if let Some(log) = logs.get(tp) {
            log.ensure_topic_id(topic_id)?;
            return Ok(log.clone());
        }
        let dir = self.config.log_dir.join(tp.dir_name());
        let params = LoadParams {
            clean_shutdown: true,
            now_ms: now_ms(),
            ..LoadParams::default()
        };
        let log = open_or_recover(&dir, tp, Some(topic_id), config, params)?;
        sync_dir(&self.config.log_dir)?;
        logs.insert(tp.clone(), log.clone());
        Ok(log)
    }

    /// Removes the log: renames its dir to `<dir>.<uuid>-delete` at once (the partition is
    /// gone, also across a restart) and deletes the files `file.delete.delay.ms` later, as
    /// Kafka does, so that reads already under way finish. A restart removes leftovers.
    ///
    /// Only a log of `topic_id` is deleted: replaying a topic's removal at start must not
    /// delete the dir of a later topic of the same name.
    pub fn delete_log(&self, tp: &TopicPartition, topic_id: Uuid) -> Result<(), StorageError> {
        let log = {
            let mut logs = self.logs.write().unwrap_or_else(|e| e.into_inner());
            match logs.get(tp) {
                Some(log) if log.topic_id().is_none_or(|id| id == topic_id) => logs.remove(tp),
                _ => None,
            }
        };
        let Some(log) = log else {
            return Ok(());
        };
        // Wait out an in-flight append, then refuse new ones.
        let _writer = lock(&log.writer);
        log.deleted.store(true, Ordering::Release);
        let doomed = self
            .config
            .log_dir
            .join(delete_dir_name(tp, Uuid::new_v4()));
        fs::rename(log.dir(), &doomed)?;
        sync_dir(&self.config.log_dir)?;
        let due_ms = now_ms().saturating_add(log.config_arc().file_delete_delay_ms);
        lock(&self.pending_deletions).push((doomed, due_ms));
        self.remove_deleted_logs(now_ms())
    }

    /// Removes the dirs of deleted partitions whose delay has passed.
    fn remove_deleted_logs(&self, now_ms: i64) -> Result<(), StorageError> {
        let due: Vec<PathBuf> = {
            let mut pending = lock(&self.pending_deletions);
            let (due, waiting) = pending.drain(..).partition(|(_, due_ms)| *due_ms <= now_ms);
            *pending = waiting;
            due.into_iter().map(|(dir, _)| dir).collect()
        };
        for dir in due {
            // A leftover is removed at the next start; it must not stop other work.
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %e, "could not remove a deleted log's dir");
            }
        }
        Ok(())
    }

    pub fn all_logs(&self) -> Vec<Arc<Log>> {
        self.logs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Writes the root checkpoints from every log's current state.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let logs = self.all_logs();
        let collect = |f: &dyn Fn(&Log) -> i64| -> BTreeMap<TopicPartition, i64> {
            logs.iter()
                .map(|l| (l.topic_partition().clone(), f(l)))
                .collect()
        };
        let root = &self.config.log_dir;
        write_offset_checkpoint(
            &root.join(RECOVERY_POINT_CHECKPOINT),
            &collect(&|l| l.recovery_point()),
        )?;
        write_offset_checkpoint(
            &root.join(LOG_START_OFFSET_CHECKPOINT),
            &collect(&|l| l.log_start_offset()),
        )?;
        write_offset_checkpoint(
            &root.join(CLEANER_OFFSET_CHECKPOINT),
            &collect(&|l| l.cleaner_checkpoint()),
        )?;
        write_offset_checkpoint(
            &root.join(REPLICATION_OFFSET_CHECKPOINT),
            &collect(&|l| l.high_watermark()),
        )?;
        Ok(())
    }

    /// Stops threads, flushes every log, writes producer snapshots and checkpoints,
    /// then the clean-shutdown marker.
    ///
    /// An offline log is skipped (its failure was logged when it went offline), and a log
    /// that cannot be closed or checkpoints that cannot be written (disk full) are logged
    /// and the rest still closed: shutdown finishes and releases the dir. The marker is
    /// then not written, so the next start recovers. Fails only if the marker write does.
    pub fn shutdown(&self) -> Result<(), StorageError> {
        self.stop_background_tasks();
        // Closing is a flush per log: over many partitions it must run in parallel, as
        // Kafka's shutdown uses the recovery threads, or SIGTERM takes minutes.
        let closed = parallel_map(self.config.recovery_threads, self.all_logs(), |log| {
            if log.is_offline() {
                return false;
            }
            match log.close() {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(tp = %log.topic_partition(), %e, "could not close log");
                    false
                }
            }
        });
        let mut clean = closed.into_iter().all(|closed| closed == Some(true));
        if let Err(e) = self.checkpoint() {
            tracing::error!(%e, "could not write checkpoints at shutdown");
            clean = false;
        }
        let marked = if clean {
            write_file_atomically(&self.config.log_dir.join(CLEAN_SHUTDOWN_FILE), b"")
        } else {
            Ok(())
        };
        // Another process may open the dir as soon as this returns, even while tasks of
        // this one still hold the manager; the closed logs refuse appends meanwhile.
        lock(&self.dir_lock).take();
        marked.map_err(StorageError::from)
    }

    pub fn log_dir(&self) -> &Path {
        &self.config.log_dir
    }

    /// One retention pass over every log (also removes due `.deleted` files).
    pub fn run_retention_once(&self, now_ms: i64) -> Result<(), StorageError> {
        self.for_each_online_log("retention", |log| log.delete_old_segments(now_ms).map(drop))
    }

    /// One cleaning pass over every compacted log.
    pub fn run_cleaner_once(&self, now_ms: i64) -> Result<(), StorageError> {
        self.for_each_online_log("cleaner", |log| {
            if log.config_arc().cleanup_policy.is_compact() {
                crate::cleaner::LogCleaner::new(log, self.config.cleaner_dedupe_buffer_bytes)
                    .clean(now_ms)
                    .map(drop)?;
            }
            Ok(())
        })
    }

    /// Runs `task` on every online log; one log's failure is logged with its partition
    /// (an I/O failure takes that log offline) and the others carry on. Returns the
    /// first failure.
    fn for_each_online_log(
        &self,
        task_name: &str,
        task: impl Fn(&Arc<Log>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut first_error = None;
        for log in self.all_logs() {
            if log.is_offline() {
                continue;
            }
            if let Err(e) = log.offline_on_io_error(task(&log)) {
                tracing::error!(task = task_name, tp = %log.topic_partition(), %e, "log task failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Spawns the retention, cleaner and flusher threads.
    pub fn start_background_tasks(self: &Arc<Self>) {
        let mut threads = lock(&self.threads);
        if !threads.is_empty() {
            return;
        }
        let retention_ms = self.config.retention_check_interval_ms;
        threads.extend(
            self.spawn_periodic("log-retention", retention_ms, |m, now| {
                m.run_retention_once(now)
            }),
        );
        if self.config.cleaner_enabled {
            let backoff_ms = self.config.cleaner_backoff_ms;
            threads.extend(
                self.spawn_periodic("log-cleaner", backoff_ms, |m, now| m.run_cleaner_once(now)),
            );
        }
        let flush_ms = self.config.flush_check_interval_ms.min(1_000);
        threads.extend(
            self.spawn_periodic("log-flusher", flush_ms, |m, now| m.flush_and_housekeep(now)),
        );
    }

    fn spawn_periodic(
        self: &Arc<Self>,
        name: &str,
        interval_ms: i64,
        task: fn(&LogManager, i64) -> Result<(), StorageError>,
    ) -> Option<JoinHandle<()>> {
        let manager = Arc::downgrade(self);
        let interval = Duration::from_millis(interval_ms.clamp(1, 86_400_000) as u64);
        let task_name = name.to_string();
        let run_once = move || {
            let Some(manager) = manager.upgrade() else {
                return false;
            };
            // A panic is a bug, but it must not silently end the task for good.
            let run =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(&manager, now_ms())));
            match run {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(task = %task_name, %e, "background log task failed"),
                Err(panic) => tracing::error!(
                    task = %task_name,
                    panic = panic_message(&*panic),
                    "background log task panicked; it runs again next interval"
                ),
            }
            true
        };
        crate::seams::spawn_periodic(name, interval, Box::new(run_once), self.stop.clone())
    }

    fn stop_background_tasks(&self) {
        let (flag, cvar) = &*self.stop;
        *lock(flag) = true;
        cvar.notify_all();
        let handles: Vec<JoinHandle<()>> = lock(&self.threads).drain(..).collect();
        for handle in handles {
            let _ = handle.join();
        }
    }

    /// Flush by `flush.ms`, fsync rolled segments, remove due `.deleted` files and
    /// refresh the root checkpoints every minute.
    fn flush_and_housekeep(&self, now_ms: i64) -> Result<(), StorageError> {
        let flushed = self.for_each_online_log("flusher", |log| {
            log.flush_if_due(now_ms)?;
            log.remove_deleted_files(now_ms)
        });
        self.remove_deleted_logs(now_ms)?;
        let last = self.last_checkpoint_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= CHECKPOINT_INTERVAL_MS {
            self.last_checkpoint_ms.store(now_ms, Ordering::Relaxed);
            self.checkpoint()?;
        }
        flushed
    }
}

impl Drop for LogManager {
    fn drop(&mut self) {
        let (flag, cvar) = &*self.stop;
        *lock(flag) = true;
        cvar.notify_all();
    }
}

/// Takes the OS lock on the log dir's `.lock`, as Kafka does: a second broker pointed at
/// the same dir would corrupt it.
fn lock_log_dir(root: &Path) -> Result<fs::File, StorageError> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StorageError::LogDirLocked(root.to_path_buf())),
        Err(fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// `(dir, partition)` of every partition directory; removes unfinished deletions.
fn partition_dirs(root: &Path) -> Result<Vec<(PathBuf, TopicPartition)>, StorageError> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("-delete") {
            // Not removable now (e.g. an I/O error): tried again at the next start.
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = %entry.path().display(), %e, "could not remove a deleted log's dir");
            }
            continue;
        }
        if let Some(tp) = TopicPartition::from_dir_name(&name) {
            dirs.push((entry.path(), tp));
        }
    }
    Ok(dirs)
}

fn open_logs(
    config: &LogManagerConfig,
    default_log_config: &LogConfig,
    checkpoints: &RootCheckpoints,
    clean_shutdown: bool,
    dirs: Vec<(PathBuf, TopicPartition)>,
) -> Result<BTreeMap<TopicPartition, Arc<Log>>, StorageError> {
    let now = now_ms();
    let open_one = |(dir, tp): &(PathBuf, TopicPartition)| {
        let params = LoadParams {
            recovery_point: checkpoints.recovery_points.get(tp).copied(),
            log_start_offset: checkpoints.log_start_offsets.get(tp).copied(),
            cleaner_checkpoint: checkpoints.cleaner_offsets.get(tp).copied(),
            high_watermark: checkpoints.high_watermarks.get(tp).copied(),
            clean_shutdown,
            now_ms: now,
        };
        open_or_recover(dir, tp, None, default_log_config.clone(), params)
    };
    let results = parallel_map(config.recovery_threads, dirs.iter().collect(), |dir| {
        open_one(dir)
    });
    let mut logs = BTreeMap::new();
    for ((_, tp), log) in dirs.iter().zip(results) {
        // One bad partition must not stop the node: it stays unloaded, and the broker
        // serves it as offline (retrying the open) while the others serve.
        match log {
            Some(Ok(log)) => {
                logs.insert(tp.clone(), log);
            }
            Some(Err(e)) => {
                tracing::error!(%tp, %e, "log could not be opened or recovered; left offline")
            }
            None => tracing::error!(%tp, "log recovery panicked; left offline"),
        }
    }
    Ok(logs)
}

/// Runs `f` over `items` on up to `threads` threads, in order; None where `f` panicked.
fn parallel_map<T: Sync, R: Send>(
    threads: usize,
    items: Vec<T>,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    if crate::seams::simulated() {
        // One thread drives the simulation: recovery runs on it, in order.
        return items.iter().map(|item| Some(f(item))).collect();
    }
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .zip(items.chunks(chunk))
            .flat_map(|(h, c)| match h.join() {
                Ok(results) => results.into_iter().map(Some).collect(),
                Err(_) => (0..c.len()).map(|_| None).collect::<Vec<_>>(),
            })
            .collect()
    })
}

/// Opens a log; if that fails after a clean shutdown (e.g. a tail that does not parse),
/// opens it again recovering every segment, which truncates at the first bad batch.
fn open_or_recover(
    dir: &Path,
    tp: &TopicPartition,
    topic_id: Option<Uuid>,
    config: LogConfig,
    params: LoadParams,
) -> Result<Arc<Log>, StorageError> {
    match Log::open(dir, tp.clone(), topic_id, config.clone(), params) {
        Err(e) if params.clean_shutdown => {
            tracing::warn!(%tp, %e, "log does not open as cleanly shut down; recovering it");
            let params = LoadParams {
                clean_shutdown: false,
                recovery_point: Some(0),
                ..params
            };
            Log::open(dir, tp.clone(), topic_id, config, params).inspect_err(|e| {
                tracing::error!(%tp, %e, "log cannot be recovered");
            })
        }
        result => result,
    }
}

/// The name a deleted partition's dir is renamed to, `<topic>-<partition>.<uuid>-delete`,
/// with the topic cut short (as Kafka does) so that it fits a 255-byte file name.
pub(crate) fn delete_dir_name(tp: &TopicPartition, id: Uuid) -> String {
    const MAX_FILE_NAME_BYTES: usize = 255;
    let suffix = format!("-{}.{}-delete", tp.partition, id.simple());
    let mut prefix_len = tp.topic.len().min(MAX_FILE_NAME_BYTES - suffix.len());
    while !tp.topic.is_char_boundary(prefix_len) {
        prefix_len -= 1;
    }
    format!("{}{suffix}", &tp.topic[..prefix_len])
}

/// Removes root files left by interrupted checkpoint writes (a crash or a full disk
/// between create and rename); the target file is still the previous complete one.
fn remove_temp_files(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_tmp = path.extension().is_some_and(|e| e == "tmp");
        if is_tmp && entry.file_type().is_ok_and(|t| t.is_file()) {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %e, "could not remove temp file");
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_string())
}
