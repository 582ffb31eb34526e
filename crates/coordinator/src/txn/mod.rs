//! Kafka's transaction coordinator as a state machine over one `__transaction_state`
//! partition ([`TxnShard`]).
//!
//! Each transactional id has a [`TxnMetadata`]: the producer id and epoch it owns, the
//! transaction's state, its partitions, timeout and timestamps. Requests do not mutate a
//! shard: they return the [`TxnWrite`] to append (a record in Kafka's schema) and, when a
//! transaction ends, the [`MarkerJob`] to carry out once that write is in the log. The
//! runtime appends, then [`TxnShard::apply`]s; replay at load applies the same records.
//!
//! Invariant: no I/O and no clock; fresh producer ids come in from the runtime.

mod records;

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;

pub use records::{decode_txn_key, decode_txn_value, txn_record, txn_tombstone};

use crate::CoordinatorRecord;

/// A partition of a transaction: (topic, partition).
pub type TxnPartition = (String, i32);

/// The internal topic of transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Kafka's `TransactionState`, with its on-disk ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name Kafka's admin APIs report (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// What the coordinator knows of one transactional id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// (topic, partition) in the transaction.
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    /// When the current transaction began; -1 when none has.
    pub start_ms: i64,
    /// The epoch the producer had before its own InitProducerId bumped it (KIP-360), so
    /// that a retry of that call whose answer was lost gets the same epoch back; -1 when
    /// the last bump fenced someone. Kept in memory only, as Kafka keeps it: after a
    /// reload such a retry is fenced.
    pub last_producer_epoch: i16,
}

impl TxnMetadata {
    /// Partitions grouped by topic, as the record and the admin APIs list them.
    pub fn topics(&self) -> BTreeMap<&str, Vec<i32>> {
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &self.partitions {
            topics.entry(topic.as_str()).or_default().push(*partition);
        }
        topics
    }

    /// Kafka's `isProducerEpochExhausted`: the next bump needs a new producer id.
    fn epoch_exhausted(&self) -> bool {
        self.producer_epoch >= i16::MAX - 1
    }
}

/// A state change to append to `__transaction_state`, then apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnWrite {
    pub transactional_id: String,
    pub metadata: TxnMetadata,
}

impl TxnWrite {
    pub fn record(&self) -> CoordinatorRecord {
        txn_record(&self.transactional_id, &self.metadata)
    }
}

/// COMMIT or ABORT markers to write to every partition of a transaction once its
/// PrepareCommit / PrepareAbort is in the log; then [`TxnShard::complete`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkerJob {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
}

/// The outcome of InitProducerId: a write (if any), markers (when an ongoing transaction
/// is fenced), and the answer to give once the write is in the log.
#[derive(Debug)]
pub struct InitOutcome {
    pub write: Option<TxnWrite>,
    pub markers: Option<MarkerJob>,
    pub answer: Result<(i64, i16), ResponseError>,
}

/// Transaction settings (broker keys `transaction.*`), Kafka 4.x defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct TxnConfig {
    /// transaction.max.timeout.ms
    pub max_timeout_ms: i32,
    /// transactional.id.expiration.ms: an id idle this long (no transaction open) is
    /// forgotten.
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
        }
    }
}

/// The transactional ids of one `__transaction_state` partition.
pub struct TxnShard {
    config: TxnConfig,
    txns: BTreeMap<String, TxnMetadata>,
}

impl TxnShard {
    pub fn new(config: TxnConfig) -> Self {
        TxnShard {
            config,
            txns: BTreeMap::new(),
        }
    }

    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    pub fn transactions(&self) -> impl Iterator<Item = (&String, &TxnMetadata)> {
        self.txns.iter()
    }

    /// Replays one record of the partition (at load, or after the runtime wrote it).
    pub fn replay(&mut self, record: &CoordinatorRecord) {
        let id = match decode_txn_key(&record.key) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!("skipping {TRANSACTION_STATE_TOPIC} record: {e}");
                return;
            }
        };
        match record.value.as_deref().map(decode_txn_value) {
            None => {
                self.txns.remove(&id);
            }
            Some(Ok(metadata)) => {
                self.txns.insert(id, metadata);
            }
            Some(Err(e)) => tracing::warn!("skipping {TRANSACTION_STATE_TOPIC} value: {e}"),
        }
    }

    /// Applies a write once it is in the log.
    pub fn apply(&mut self, write: &TxnWrite) {
        self.txns
            .insert(write.transactional_id.clone(), write.metadata.clone());
    }

    /// Whether InitProducerId for this id needs a fresh producer id from the runtime.
    pub fn needs_producer_id(&self, transactional_id: &str) -> bool {
        self.txns.get(transactional_id).is_none_or(|m| {
            m.epoch_exhausted()
                && !matches!(
                    m.state,
                    TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
                )
        })
    }

    /// Kafka's `handleInitProducerId` for a transactional id. `expected` is the producer id
    /// and epoch the client already has (v3+, KIP-360), `fresh_producer_id` one the runtime
    /// allocated when [`needs_producer_id`](Self::needs_producer_id) said so.
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        fresh_producer_id: Option<i64>,
        now_ms: i64,
    ) -> Result<InitOutcome, ResponseError> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let fresh = |pid: Option<i64>| pid.ok_or(ResponseError::CoordinatorLoadInProgress);
        let Some(current) = self.txns.get(transactional_id) else {
            let producer_id = fresh(fresh_producer_id)?;
            let metadata = TxnMetadata {
                producer_id,
                producer_epoch: 0,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                last_update_ms: now_ms,
                start_ms: -1,
                last_producer_epoch: -1,
            };
            return Ok(self.init_write(transactional_id, metadata));
        };
        // A producer that names its id and epoch (v3+) continues after an error: its epoch
        // must be the current one, or the previous one when this is a retry (KIP-360).
        let retry_of_bump = expected.is_some_and(|(_, epoch)| {
            epoch != current.producer_epoch && epoch >= 0 && epoch == current.last_producer_epoch
        });
        if let Some((producer_id, epoch)) = expected {
            if producer_id != current.producer_id
                || (epoch != current.producer_epoch && !retry_of_bump)
            {
                return Err(ResponseError::ProducerFenced);
            }
        }
        match current.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Ongoing if retry_of_bump => {
                // The retried call's epoch has begun a transaction since: it is fenced.
                Err(ResponseError::ProducerFenced)
            }
            TxnState::Ongoing => {
                // Fence the current producer: abort its transaction under a bumped epoch
                // and have this one retry (Kafka's PrepareEpochFence).
                let mut metadata = current.clone();
                if !metadata.epoch_exhausted() {
                    metadata.producer_epoch += 1;
                }
                metadata.last_producer_epoch = -1;
                let (write, markers) = self.prepare_end(transactional_id, metadata, false, now_ms);
                Ok(InitOutcome {
                    write: Some(write),
                    markers: Some(markers),
                    answer: Err(ResponseError::ConcurrentTransactions),
                })
            }
            TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort
            | TxnState::Dead => {
                let (producer_id, producer_epoch, last_producer_epoch) = if retry_of_bump {
                    // Its answer was lost: the same epoch again, no new bump.
                    (
                        current.producer_id,
                        current.producer_epoch,
                        current.last_producer_epoch,
                    )
                } else if current.epoch_exhausted() {
                    (fresh(fresh_producer_id)?, 0, -1)
                } else {
                    // A producer continuing after an error may retry this call; a new
                    // producer fences every earlier epoch.
                    let last = if expected.is_some() {
                        current.producer_epoch
                    } else {
                        -1
                    };
                    (current.producer_id, current.producer_epoch + 1, last)
                };
                let metadata = TxnMetadata {
                    producer_id,
                    producer_epoch,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    last_update_ms: now_ms,
                    start_ms: -1,
                    last_producer_epoch,
                };
                Ok(self.init_write(transactional_id, metadata))
            }
        }
    }

    fn init_write(&self, transactional_id: &str, metadata: TxnMetadata) -> InitOutcome {
        let answer = Ok((metadata.producer_id, metadata.producer_epoch));
        InitOutcome {
            write: Some(TxnWrite {
                transactional_id: transactional_id.to_string(),
                metadata,
            }),
            markers: None,
            answer,
        }
    }

    /// The checks every in-transaction request makes: the id is known, the producer id is
    /// its current one, and the epoch is current (else the producer is fenced).
    fn check_producer(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<&TxnMetadata, ResponseError> {
        let current = self
            .txns
            .get(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if current.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if current.producer_epoch != producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        Ok(current)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: `None` when every partition is already in the
    /// ongoing transaction.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TxnWrite>, ResponseError> {
        let current = self.check_producer(transactional_id, producer_id, producer_epoch)?;
        match current.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Dead => return Err(ResponseError::InvalidProducerIdMapping),
            TxnState::Ongoing if partitions.iter().all(|p| current.partitions.contains(p)) => {
                return Ok(None)
            }
            _ => {}
        }
        let mut metadata = current.clone();
        if metadata.state != TxnState::Ongoing {
            metadata.start_ms = now_ms;
            metadata.partitions.clear();
        }
        metadata.state = TxnState::Ongoing;
        metadata.partitions.extend(partitions.iter().cloned());
        metadata.last_update_ms = now_ms;
        Ok(Some(TxnWrite {
            transactional_id: transactional_id.to_string(),
            metadata,
        }))
    }

    /// KIP-890 verification (AddPartitionsToTxn v4+ verify-only, Produce): the error for
    /// each partition that is not in the producer's transaction (TRANSACTION_ABORTABLE;
    /// callers convert it for clients that predate it).
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TxnPartition],
    ) -> Result<Vec<(TxnPartition, ResponseError)>, ResponseError> {
        let current = self.check_producer(transactional_id, producer_id, producer_epoch)?;
        if matches!(
            current.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort
        ) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .filter(|p| !current.partitions.contains(*p))
            .map(|p| (p.clone(), ResponseError::TransactionAbortable))
            .collect())
    }

    /// EndTxn: the Prepare* write and the markers to send after it, or `None` when a
    /// retried request finds the transaction already completed the same way.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<(TxnWrite, MarkerJob)>, ResponseError> {
        let current = self.check_producer(transactional_id, producer_id, producer_epoch)?;
        match (current.state, commit) {
            (TxnState::Ongoing, _) => Ok(Some(self.prepare_end(
                transactional_id,
                current.clone(),
                commit,
                now_ms,
            ))),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            (TxnState::PrepareEpochFence, _) => Err(ResponseError::ConcurrentTransactions),
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    fn prepare_end(
        &self,
        transactional_id: &str,
        mut metadata: TxnMetadata,
        commit: bool,
        now_ms: i64,
    ) -> (TxnWrite, MarkerJob) {
        metadata.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        metadata.last_update_ms = now_ms;
        let markers = marker_job(transactional_id, &metadata);
        (
            TxnWrite {
                transactional_id: transactional_id.to_string(),
                metadata,
            },
            markers,
        )
    }

    /// After the markers of `job` are written: the CompleteCommit / CompleteAbort write,
    /// unless the transaction moved on meanwhile.
    pub fn complete(&self, job: &MarkerJob, now_ms: i64) -> Option<TxnWrite> {
        let current = self.txns.get(&job.transactional_id)?;
        let expected = if job.commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if current.state != expected
            || current.producer_id != job.producer_id
            || current.producer_epoch != job.producer_epoch
        {
            return None;
        }
        let mut metadata = current.clone();
        metadata.state = if job.commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        metadata.partitions.clear();
        metadata.last_update_ms = now_ms;
        Some(TxnWrite {
            transactional_id: job.transactional_id.clone(),
            metadata,
        })
    }

    /// Transactions left in PrepareCommit / PrepareAbort (after a restart): their markers.
    pub fn pending_markers(&self) -> Vec<MarkerJob> {
        self.txns
            .iter()
            .filter(|(_, m)| matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
            .map(|(id, m)| marker_job(id, m))
            .collect()
    }

    /// Transactional ids idle past `transactional.id.expiration.ms` with no transaction
    /// open: the tombstones to append (then replay) to forget them.
    pub fn expired_ids(&self, now_ms: i64) -> Vec<CoordinatorRecord> {
        self.txns
            .iter()
            .filter(|(_, m)| {
                matches!(
                    m.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                ) && m.last_update_ms + self.config.id_expiration_ms <= now_ms
            })
            .map(|(id, _)| txn_tombstone(id))
            .collect()
    }

    /// Ongoing transactions past their timeout, aborted under a bumped epoch so that the
    /// producer that started them is fenced (Kafka's `abortTimedOutTransactions`).
    pub fn abort_timed_out(&self, now_ms: i64) -> Vec<(TxnWrite, MarkerJob)> {
        self.txns
            .iter()
            .filter(|(_, m)| {
                m.state == TxnState::Ongoing && m.start_ms + i64::from(m.timeout_ms) < now_ms
            })
            .map(|(id, m)| {
                let mut metadata = m.clone();
                if !metadata.epoch_exhausted() {
                    metadata.producer_epoch += 1;
                }
                metadata.last_producer_epoch = -1;
                self.prepare_end(id, metadata, false, now_ms)
            })
            .collect()
    }
}

/// ListTransactions v2 (KIP-1152): a transactional id pattern, matched against the whole id
/// as Java's `Matcher.matches`; INVALID_REGULAR_EXPRESSION when it does not compile.
pub fn transactional_id_pattern(pattern: &str) -> Result<regex::Regex, ResponseError> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|_| ResponseError::InvalidRegularExpression)
}

fn marker_job(transactional_id: &str, m: &TxnMetadata) -> MarkerJob {
    MarkerJob {
        transactional_id: transactional_id.to_string(),
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        commit: m.state == TxnState::PrepareCommit,
        partitions: m.partitions.iter().cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, p: i32) -> (String, i32) {
        (topic.to_string(), p)
    }

    /// Applies an outcome's write as the runtime does, after checking that its record
    /// replays to the same state (all but the in-memory last epoch).
    fn write(shard: &mut TxnShard, w: &TxnWrite) {
        shard.replay(&w.record());
        let replayed = TxnMetadata {
            last_producer_epoch: -1,
            ..w.metadata.clone()
        };
        assert_eq!(shard.get(&w.transactional_id), Some(&replayed));
        shard.apply(w);
    }

    fn init_as(
        shard: &mut TxnShard,
        id: &str,
        expected: (i64, i16),
    ) -> Result<(i64, i16), ResponseError> {
        let out = shard.init_producer_id(id, 60_000, Some(expected), None, 0)?;
        if let Some(w) = &out.write {
            write(shard, w);
        }
        out.answer
    }

    #[test]
    fn a_retried_init_producer_id_gets_the_epoch_it_bumped_to() {
        // KIP-360: a producer continuing after an error names its epoch; if the answer is
        // lost it asks again with the same one and must get the same bumped epoch.
        let mut shard = TxnShard::new(TxnConfig::default());
        assert_eq!(init(&mut shard, "tx", 7, 1), (7, 0));
        assert_eq!(init_as(&mut shard, "tx", (7, 0)), Ok((7, 1)));
        assert_eq!(init_as(&mut shard, "tx", (7, 0)), Ok((7, 1)), "a retry");
        assert_eq!(init_as(&mut shard, "tx", (7, 1)), Ok((7, 2)));
        assert_eq!(
            init_as(&mut shard, "tx", (7, 0)),
            Err(ResponseError::ProducerFenced),
            "two bumps back"
        );
        assert_eq!(
            init_as(&mut shard, "tx", (8, 2)),
            Err(ResponseError::ProducerFenced),
            "another producer id"
        );
        // A new producer (no epoch named) fences every earlier epoch, retries included.
        assert_eq!(init(&mut shard, "tx", 7, 2), (7, 3));
        assert_eq!(
            init_as(&mut shard, "tx", (7, 2)),
            Err(ResponseError::ProducerFenced)
        );
        // So does the coordinator's own fencing of an open transaction.
        assert_eq!(init_as(&mut shard, "tx", (7, 3)), Ok((7, 4)));
        let w = shard
            .add_partitions("tx", 7, 4, &[tp("a", 0)], 3)
            .unwrap()
            .unwrap();
        write(&mut shard, &w);
        for (w, _) in shard.abort_timed_out(i64::MAX / 2) {
            write(&mut shard, &w);
        }
        assert_eq!(shard.get("tx").unwrap().producer_epoch, 5);
        assert_eq!(
            init_as(&mut shard, "tx", (7, 3)),
            Err(ResponseError::ProducerFenced),
            "the epoch before the timed-out one"
        );
        // The last epoch is not in the record: after a reload a retry is fenced.
        let mut reloaded = TxnShard::new(TxnConfig::default());
        let job = shard.pending_markers().pop().expect("abort markers");
        let done = shard.complete(&job, 4).unwrap();
        write(&mut shard, &done);
        assert_eq!(init_as(&mut shard, "tx", (7, 5)), Ok((7, 6)));
        reloaded.replay(&crate::txn::records::txn_record(
            "tx",
            shard.get("tx").unwrap(),
        ));
        assert_eq!(
            init_as(&mut reloaded, "tx", (7, 5)),
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(init_as(&mut shard, "tx", (7, 5)), Ok((7, 6)));
    }

    fn init(shard: &mut TxnShard, id: &str, fresh: i64, now: i64) -> (i64, i16) {
        let pid = shard.needs_producer_id(id).then_some(fresh);
        let out = shard.init_producer_id(id, 60_000, None, pid, now).unwrap();
        write(shard, out.write.as_ref().unwrap());
        out.answer.unwrap()
    }

    #[test]
    fn commit_lifecycle() {
        let mut shard = TxnShard::new(TxnConfig::default());
        assert_eq!(init(&mut shard, "tx", 1000, 1), (1000, 0));
        assert_eq!(init(&mut shard, "tx", 2000, 2), (1000, 1));
        let w = shard
            .add_partitions("tx", 1000, 1, &[tp("a", 0), tp("b", 1)], 3)
            .unwrap()
            .unwrap();
        write(&mut shard, &w);
        assert_eq!(shard.get("tx").unwrap().start_ms, 3);
        assert_eq!(
            shard.add_partitions("tx", 1000, 1, &[tp("a", 0)], 4),
            Ok(None)
        );
        let (w, job) = shard.end_txn("tx", 1000, 1, true, 5).unwrap().unwrap();
        write(&mut shard, &w);
        assert_eq!(job.partitions, vec![tp("a", 0), tp("b", 1)]);
        assert!(job.commit);
        // While markers are in flight, the producer waits.
        assert_eq!(
            shard.add_partitions("tx", 1000, 1, &[tp("a", 0)], 6),
            Err(ResponseError::ConcurrentTransactions)
        );
        assert_eq!(shard.pending_markers(), vec![job.clone()]);
        let w = shard.complete(&job, 7).unwrap();
        write(&mut shard, &w);
        assert_eq!(shard.get("tx").unwrap().state, TxnState::CompleteCommit);
        assert!(shard.get("tx").unwrap().partitions.is_empty());
        // A retried EndTxn is answered without a write; the opposite one is invalid.
        assert_eq!(shard.end_txn("tx", 1000, 1, true, 8), Ok(None));
        assert_eq!(
            shard.end_txn("tx", 1000, 1, false, 8),
            Err(ResponseError::InvalidTxnState)
        );
    }

    #[test]
    fn fencing_and_errors() {
        let mut shard = TxnShard::new(TxnConfig::default());
        assert_eq!(
            shard
                .init_producer_id("tx", 900_001, None, Some(1), 0)
                .err(),
            Some(ResponseError::InvalidTransactionTimeout)
        );
        init(&mut shard, "tx", 10, 1);
        let w = shard
            .add_partitions("tx", 10, 0, &[tp("a", 0)], 2)
            .unwrap()
            .unwrap();
        write(&mut shard, &w);
        // A new instance fences the ongoing transaction: abort under epoch 1, retry.
        let out = shard.init_producer_id("tx", 60_000, None, None, 3).unwrap();
        assert_eq!(out.answer, Err(ResponseError::ConcurrentTransactions));
        let job = out.markers.unwrap();
        assert_eq!((job.producer_epoch, job.commit), (1, false));
        write(&mut shard, out.write.as_ref().unwrap());
        assert_eq!(
            shard.init_producer_id("tx", 60_000, None, None, 4).err(),
            Some(ResponseError::ConcurrentTransactions)
        );
        let w = shard.complete(&job, 5).unwrap();
        write(&mut shard, &w);
        assert_eq!(init(&mut shard, "tx", 99, 6), (10, 2));
        // The old producer is fenced everywhere.
        assert_eq!(
            shard.add_partitions("tx", 10, 0, &[tp("a", 0)], 7),
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(
            shard.end_txn("tx", 10, 0, true, 7).err(),
            Some(ResponseError::ProducerFenced)
        );
        assert_eq!(
            shard.end_txn("tx", 11, 2, true, 7).err(),
            Some(ResponseError::InvalidProducerIdMapping)
        );
        assert_eq!(
            shard.end_txn("nope", 10, 2, true, 7).err(),
            Some(ResponseError::InvalidProducerIdMapping)
        );
        // Nothing to end in an empty transaction.
        assert_eq!(
            shard.end_txn("tx", 10, 2, true, 7).err(),
            Some(ResponseError::InvalidTxnState)
        );
        // KIP-360: a client naming an old epoch is fenced.
        assert_eq!(
            shard
                .init_producer_id("tx", 60_000, Some((10, 1)), None, 8)
                .err(),
            Some(ResponseError::ProducerFenced)
        );
    }

    #[test]
    fn exhausted_epoch_takes_a_new_producer_id() {
        let mut shard = TxnShard::new(TxnConfig::default());
        init(&mut shard, "tx", 10, 1);
        let mut m = shard.get("tx").unwrap().clone();
        m.producer_epoch = i16::MAX - 1;
        shard.apply(&TxnWrite {
            transactional_id: "tx".into(),
            metadata: m,
        });
        assert!(shard.needs_producer_id("tx"));
        assert_eq!(init(&mut shard, "tx", 11, 2), (11, 0));
    }

    #[test]
    fn timed_out_transactions_are_aborted_with_a_bumped_epoch() {
        let mut shard = TxnShard::new(TxnConfig::default());
        init(&mut shard, "tx", 10, 0);
        let w = shard
            .add_partitions("tx", 10, 0, &[tp("a", 0)], 1_000)
            .unwrap()
            .unwrap();
        write(&mut shard, &w);
        assert!(shard.abort_timed_out(61_000).is_empty());
        let aborts = shard.abort_timed_out(61_001);
        assert_eq!(aborts.len(), 1);
        let (w, job) = &aborts[0];
        assert_eq!(w.metadata.state, TxnState::PrepareAbort);
        assert_eq!(job.producer_epoch, 1);
        write(&mut shard, w);
        let w = shard.complete(job, 61_002).unwrap();
        write(&mut shard, &w);
        assert_eq!(
            shard.end_txn("tx", 10, 0, true, 61_003).err(),
            Some(ResponseError::ProducerFenced)
        );
    }

    #[test]
    fn id_patterns_match_whole_ids() {
        let pattern = transactional_id_pattern("tx-.*").unwrap();
        assert!(pattern.is_match("tx-1"));
        assert!(!pattern.is_match("my-tx-1"));
        assert_eq!(
            transactional_id_pattern("(").err(),
            Some(ResponseError::InvalidRegularExpression)
        );
    }

    #[test]
    fn idle_ids_expire_but_not_open_transactions() {
        let mut shard = TxnShard::new(TxnConfig {
            id_expiration_ms: 100,
            ..TxnConfig::default()
        });
        init(&mut shard, "idle", 10, 0);
        init(&mut shard, "busy", 11, 0);
        let w = shard
            .add_partitions("busy", 11, 0, &[tp("a", 0)], 0)
            .unwrap()
            .unwrap();
        write(&mut shard, &w);
        assert!(shard.expired_ids(99).is_empty());
        let tombstones = shard.expired_ids(100);
        assert_eq!(tombstones, vec![txn_tombstone("idle")]);
        shard.replay(&tombstones[0]);
        assert!(shard.get("idle").is_none());
        assert!(shard.get("busy").is_some());
    }

    #[test]
    fn verify_reports_partitions_outside_the_transaction() {
        let mut shard = TxnShard::new(TxnConfig::default());
        init(&mut shard, "tx", 10, 0);
        let w = shard
            .add_partitions("tx", 10, 0, &[tp("a", 0)], 1)
            .unwrap()
            .unwrap();
        write(&mut shard, &w);
        let errors = shard
            .verify_partitions("tx", 10, 0, &[tp("a", 0), tp("a", 1)])
            .unwrap();
        assert_eq!(
            errors,
            vec![(tp("a", 1), ResponseError::TransactionAbortable)]
        );
    }

    mod model {
        use proptest::prelude::*;

        use super::super::*;

        #[derive(Clone, Debug)]
        enum Op {
            Init(usize),
            Add(usize, i32),
            End(usize, bool),
            Complete(usize),
            Tick(i64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0..3usize).prop_map(Op::Init),
                (0..3usize, 0..3i32).prop_map(|(i, p)| Op::Add(i, p)),
                (0..3usize, any::<bool>()).prop_map(|(i, c)| Op::End(i, c)),
                (0..3usize).prop_map(Op::Complete),
                (0..200_000i64).prop_map(Op::Tick),
            ]
        }

        proptest! {
            /// Whatever the requests, the records written rebuild the same state, epochs
            /// never go back, and the markers of a transaction name its partitions.
            #[test]
            fn replay_rebuilds_the_live_state(ops in proptest::collection::vec(op(), 1..60)) {
                let ids = ["a", "b", "c"];
                let mut shard = TxnShard::new(TxnConfig::default());
                let mut log: Vec<CoordinatorRecord> = Vec::new();
                let mut jobs: Vec<MarkerJob> = Vec::new();
                let mut next_pid = 100;
                let mut now = 0;
                let apply = |shard: &mut TxnShard, w: &TxnWrite, log: &mut Vec<_>| {
                    let before = shard.get(&w.transactional_id).cloned();
                    if let Some(b) = before.filter(|b| b.producer_id == w.metadata.producer_id) {
                        prop_assert!(w.metadata.producer_epoch >= b.producer_epoch);
                    }
                    log.push(w.record());
                    shard.apply(w);
                    Ok(())
                };
                for op in ops {
                    now += 10;
                    match op {
                        Op::Init(i) => {
                            let fresh = shard.needs_producer_id(ids[i]).then(|| {
                                next_pid += 1;
                                next_pid
                            });
                            if let Ok(out) = shard.init_producer_id(ids[i], 60_000, None, fresh, now) {
                                if let Some(w) = &out.write {
                                    apply(&mut shard, w, &mut log)?;
                                }
                                jobs.extend(out.markers);
                            }
                        }
                        Op::Add(i, p) => {
                            let Some(m) = shard.get(ids[i]).cloned() else { continue };
                            let parts = [("t".to_string(), p)];
                            if let Ok(Some(w)) =
                                shard.add_partitions(ids[i], m.producer_id, m.producer_epoch, &parts, now)
                            {
                                apply(&mut shard, &w, &mut log)?;
                                prop_assert!(shard.get(ids[i]).unwrap().partitions.contains(&parts[0]));
                            }
                        }
                        Op::End(i, commit) => {
                            let Some(m) = shard.get(ids[i]).cloned() else { continue };
                            if let Ok(Some((w, job))) =
                                shard.end_txn(ids[i], m.producer_id, m.producer_epoch, commit, now)
                            {
                                prop_assert_eq!(
                                    job.partitions.iter().cloned().collect::<BTreeSet<_>>(),
                                    m.partitions.clone()
                                );
                                apply(&mut shard, &w, &mut log)?;
                                jobs.push(job);
                            }
                        }
                        Op::Complete(i) => {
                            if let Some(pos) = jobs.iter().position(|j| j.transactional_id == ids[i]) {
                                let job = jobs.remove(pos);
                                if let Some(w) = shard.complete(&job, now) {
                                    apply(&mut shard, &w, &mut log)?;
                                    prop_assert!(shard.get(ids[i]).unwrap().partitions.is_empty());
                                }
                            }
                        }
                        Op::Tick(dt) => {
                            now += dt;
                            for (w, job) in shard.abort_timed_out(now) {
                                apply(&mut shard, &w, &mut log)?;
                                jobs.push(job);
                            }
                        }
                    }
                }
                let mut replayed = TxnShard::new(TxnConfig::default());
                for record in &log {
                    replayed.replay(record);
                }
                let live: Vec<_> = shard.transactions().collect();
                let rebuilt: Vec<_> = replayed.transactions().collect();
                prop_assert_eq!(live, rebuilt);
            }
        }
    }
}
