//! Where source offsets live: a standalone worker's file (`offset.storage.file.filename`,
//! [`FileOffsetStore`]) or, distributed, the offsets topic. Keys and values are the offsets
//! topic's bytes (`storage::OffsetKey`, `encode_offset_value`), so both stores hold the same
//! thing and `GET /connectors/{name}/offsets` reads either.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::connector::OffsetStorageReader;
use crate::storage::{
    decode_offset_value, decode_offsets_file, encode_offset_value, encode_offsets_file, OffsetKey,
    OffsetMap,
};

use super::WorkerError;

/// A store of source offsets, read whole at start and written through.
#[async_trait]
pub trait OffsetStore: Send + Sync {
    /// Every committed (partition, offset) of a connector.
    fn connector_offsets(&self, connector: &str) -> Vec<(OffsetMap, OffsetMap)>;

    /// Writes offsets durably (`None` deletes one); returns once they are stored.
    async fn write(
        &self,
        connector: &str,
        entries: Vec<(OffsetMap, Option<OffsetMap>)>,
    ) -> Result<(), WorkerError>;

    /// Catches up with writes of other workers (a shared store); before a task starts.
    async fn refresh(&self) -> Result<(), WorkerError> {
        Ok(())
    }

    /// Offsets a task wrote to the store's topic itself, in its own transaction
    /// (exactly-once sources), now committed: applied to what this store shows.
    fn note_committed(&self, _connector: &str, _entries: &[(OffsetMap, Option<OffsetMap>)]) {}

    /// The offsets topic and its partition count, when the store is one (distributed).
    fn topic(&self) -> Option<(String, i32)> {
        None
    }
}

/// The offsets as key bytes → value bytes, with decoding for readers.
#[derive(Default)]
pub(crate) struct OffsetTable {
    pub(crate) entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl OffsetTable {
    pub(crate) fn connector_offsets(&self, connector: &str) -> Vec<(OffsetMap, OffsetMap)> {
        self.entries
            .iter()
            .filter_map(|(k, v)| {
                let key = OffsetKey::decode(k).ok()?;
                if key.connector != connector {
                    return None;
                }
                let offset = decode_offset_value(Some(v)).ok()??;
                Some((key.partition, offset))
            })
            .collect()
    }

    pub(crate) fn apply(
        &mut self,
        connector: &str,
        entries: &[(OffsetMap, Option<OffsetMap>)],
    ) -> Result<(), WorkerError> {
        for (partition, offset) in entries {
            let key = OffsetKey::new(connector, partition.clone())
                .encode()
                .map_err(|e| WorkerError::Offsets(e.to_string()))?;
            match encode_offset_value(offset.as_ref())
                .map_err(|e| WorkerError::Offsets(e.to_string()))?
            {
                Some(v) => {
                    self.entries.insert(key, v);
                }
                None => {
                    self.entries.remove(&key);
                }
            }
        }
        Ok(())
    }
}

/// Kafka's `FileOffsetBackingStore`: the whole table rewritten to a temporary file,
/// synced and renamed over the old one on every write, so a crash leaves the old or the
/// new table, never a torn one.
pub struct FileOffsetStore {
    path: PathBuf,
    table: Mutex<OffsetTable>,
    /// Serializes writers so that renames happen in write order.
    write_lock: tokio::sync::Mutex<()>,
}

impl FileOffsetStore {
    /// Reads the file (a missing file is an empty store; a malformed one an error naming
    /// it, never silently emptied).
    pub fn open(path: impl Into<PathBuf>) -> Result<FileOffsetStore, WorkerError> {
        let path = path.into();
        let mut table = OffsetTable::default();
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => {
                let entries = decode_offsets_file(&text).map_err(|e| {
                    WorkerError::Offsets(format!(
                        "offset.storage.file.filename {}: {e}",
                        path.display()
                    ))
                })?;
                for (k, v) in entries {
                    if let Some(v) = v {
                        table.entries.insert(k, v);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(WorkerError::Offsets(format!(
                    "offset.storage.file.filename {}: {e}",
                    path.display()
                )))
            }
        }
        Ok(FileOffsetStore {
            path,
            table: Mutex::new(table),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }
}

#[async_trait]
impl OffsetStore for FileOffsetStore {
    fn connector_offsets(&self, connector: &str) -> Vec<(OffsetMap, OffsetMap)> {
        self.table.lock().connector_offsets(connector)
    }

    async fn write(
        &self,
        connector: &str,
        entries: Vec<(OffsetMap, Option<OffsetMap>)>,
    ) -> Result<(), WorkerError> {
        let _guard = self.write_lock.lock().await;
        let text = {
            let mut table = self.table.lock();
            table.apply(connector, &entries)?;
            let all: Vec<(Vec<u8>, Option<Vec<u8>>)> = table
                .entries
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            encode_offsets_file(&all).map_err(|e| WorkerError::Offsets(e.to_string()))?
        };
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, text.as_bytes()))
            .await
            .map_err(|e| WorkerError::Offsets(e.to_string()))?
            .map_err(|e| WorkerError::Offsets(format!("writing {}: {e}", self.path.display())))
    }
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A task's view of its connector's committed offsets, read when it starts.
pub struct OffsetSnapshot(BTreeMap<String, OffsetMap>);

impl OffsetSnapshot {
    pub fn of(store: &Arc<dyn OffsetStore>, connector: &str) -> OffsetSnapshot {
        OffsetSnapshot(
            store
                .connector_offsets(connector)
                .into_iter()
                .map(|(p, o)| (partition_id(&p), o))
                .collect(),
        )
    }
}

/// A stable identity of a source partition (its JSON with keys sorted).
pub fn partition_id(partition: &OffsetMap) -> String {
    let mut sorted: Vec<&(String, crate::data::Value)> = partition.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    format!("{sorted:?}")
}

impl OffsetStorageReader for OffsetSnapshot {
    fn offset(&self, partition: &OffsetMap) -> Option<OffsetMap> {
        self.0.get(&partition_id(partition)).cloned()
    }
}

/// An in-memory store, for tests and for `offset.storage` when nothing must persist.
#[derive(Default)]
pub struct MemoryOffsetStore(Mutex<OffsetTable>);

#[async_trait]
impl OffsetStore for MemoryOffsetStore {
    fn connector_offsets(&self, connector: &str) -> Vec<(OffsetMap, OffsetMap)> {
        self.0.lock().connector_offsets(connector)
    }

    async fn write(
        &self,
        connector: &str,
        entries: Vec<(OffsetMap, Option<OffsetMap>)>,
    ) -> Result<(), WorkerError> {
        self.0.lock().apply(connector, &entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Value;

    #[tokio::test]
    async fn a_file_store_survives_reopening_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets");
        let store = FileOffsetStore::open(&path).unwrap();
        let p = vec![("filename".to_string(), Value::String("/a".into()))];
        let o = vec![("position".to_string(), Value::Int64(42))];
        store
            .write("c", vec![(p.clone(), Some(o.clone()))])
            .await
            .unwrap();
        let reopened = FileOffsetStore::open(&path).unwrap();
        assert_eq!(reopened.connector_offsets("c"), vec![(p.clone(), o)]);
        assert!(reopened.connector_offsets("other").is_empty());
        reopened.write("c", vec![(p, None)]).await.unwrap();
        assert!(FileOffsetStore::open(&path)
            .unwrap()
            .connector_offsets("c")
            .is_empty());
    }

    #[test]
    fn a_malformed_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets");
        std::fs::write(&path, "garbage\n").unwrap();
        let e = FileOffsetStore::open(&path).err().unwrap().to_string();
        assert!(e.contains("offset.storage.file.filename"), "{e}");
    }
}
