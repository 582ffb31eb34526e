//! The leader's side of ISR changes (Kafka's AlterPartitionManager and the ISR expiration
//! task): changes the replica manager decides are sent to the active controller with
//! AlterPartition, one task per change, and the answer is handed back; every
//! `replica.lag.time.max.ms / 2` each led partition's ISR is checked for followers that
//! fell behind.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::replica_manager::IsrChangeRequest;
use crate::state::BrokerState;

/// Sends the ISR changes leaders ask for and hands each answer back.
pub fn spawn_alter_partition_sender(state: Arc<BrokerState>) -> JoinHandle<()> {
    let Some(mut changes) = state.replica_manager.take_isr_changes() else {
        return tokio::spawn(async {});
    };
    tokio::spawn(async move {
        while let Some(change) = changes.recv().await {
            let state = state.clone();
            tokio::spawn(async move {
                let result = send(&state, &change).await;
                state.replica_manager.isr_change_completed(&change, result);
            });
        }
    })
}

async fn send(state: &BrokerState, change: &IsrChangeRequest) -> Result<i32, String> {
    crate::handlers::alter_partition::alter_isr(
        state,
        &change.tp,
        change.topic_id,
        change.tp.partition,
        change.leader_epoch,
        change.partition_epoch,
        change.new_isr.clone(),
    )
    .await
    .map(|committed| committed.partition_epoch)
    .map_err(|e| format!("{e:?}"))
}

/// Kafka's `isr-expiration` task: followers that have not caught up within
/// `replica.lag.time.max.ms` leave the ISR.
pub fn spawn_isr_expiration(state: Arc<BrokerState>) -> JoinHandle<()> {
    let interval_ms = (state.config.replication.replica_lag_time_max_ms / 2).max(1);
    crate::supervisor::spawn_supervised("ISR expiration", move || {
        let state = state.clone();
        async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(interval_ms));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                state.replica_manager.shrink_isrs();
            }
        }
    })
}
