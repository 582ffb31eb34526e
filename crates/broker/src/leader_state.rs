//! The leader's view of its followers (Kafka's `Replica` / `ReplicaState` and the ISR rules
//! of `Partition`): each follower's log end offset and when it last caught up, the high
//! watermark over the ISR, which followers fell out of sync and which may rejoin.
//!
//! Pure: no I/O, no clock (callers pass `now_ms`), so the simulator drives the same rules.
//! The replica manager holds one per partition this node leads, reset when a new leader
//! epoch begins; ISR changes it asks for go to the controller through AlterPartition and
//! count as "pending" until the committed change reaches the metadata image.

use std::collections::BTreeMap;

/// What the leader knows of one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset: its last fetch offset; -1 until it fetches in
    /// this leader epoch.
    pub log_end_offset: i64,
    /// The last time the follower had everything the leader had (Kafka's
    /// `lastCaughtUpTimeMs`).
    pub last_caught_up_time_ms: i64,
    /// The follower's log start offset as its last fetch reported it; -1 until it
    /// fetches in this leader epoch.
    pub log_start_offset: i64,
    /// The leader's log end offset and the time at the follower's previous fetch.
    last_fetch_leader_log_end_offset: i64,
    last_fetch_time_ms: i64,
    /// The broker epoch the follower fetched with (KIP-903; -1 from fetchers too old to
    /// send it): a restarted follower's new registration has a new epoch, so what this
    /// leader learned from its previous incarnation cannot put it back in the ISR.
    pub broker_epoch: Option<i64>,
}

impl FollowerState {
    fn new(last_caught_up_time_ms: i64) -> Self {
        FollowerState {
            log_end_offset: -1,
            log_start_offset: -1,
            last_caught_up_time_ms,
            last_fetch_leader_log_end_offset: -1,
            last_fetch_time_ms: -1,
            broker_epoch: None,
        }
    }

    /// Kafka's `isCaughtUp`: at the leader's log end, or caught up within the lag bound.
    fn is_caught_up(&self, leader_log_end_offset: i64, now_ms: i64, lag_max_ms: u64) -> bool {
        self.log_end_offset == leader_log_end_offset
            || now_ms.saturating_sub(self.last_caught_up_time_ms) <= lag_max_ms as i64
    }
}

/// An ISR change sent to the controller and not yet seen in the metadata image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingIsrChange {
    pub isr: Vec<i32>,
    /// The partition epoch the controller committed it at, once it answered.
    pub committed_partition_epoch: Option<i32>,
}

/// The leader side of one partition in one leader epoch.
#[derive(Clone, Debug)]
pub struct LeaderState {
    pub leader_id: i32,
    pub leader_epoch: i32,
    /// The log end offset when this epoch began: a follower below it may still hold a
    /// tail of an older epoch, so it does not rejoin the ISR yet (Kafka's
    /// `leaderEpochStartOffsetOpt`).
    pub epoch_start_offset: i64,
    followers: BTreeMap<i32, FollowerState>,
    pub pending: Option<PendingIsrChange>,
}

impl LeaderState {
    /// A new leader epoch: followers in the ISR count as caught up now (they get
    /// `replica.lag.time.max.ms` to fetch), the others as never caught up; every log end
    /// offset is unknown until the follower fetches.
    pub fn new(
        leader_id: i32,
        leader_epoch: i32,
        replicas: &[i32],
        isr: &[i32],
        epoch_start_offset: i64,
        now_ms: i64,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|id| **id != leader_id)
            .map(|id| {
                let caught_up = if isr.contains(id) { now_ms } else { 0 };
                (*id, FollowerState::new(caught_up))
            })
            .collect();
        LeaderState {
            leader_id,
            leader_epoch,
            epoch_start_offset,
            followers,
            pending: None,
        }
    }

    /// Follows a change of the replica set (reassignment): new followers start unknown,
    /// removed ones are forgotten.
    pub fn update_replicas(&mut self, replicas: &[i32]) {
        self.followers
            .retain(|id, _| replicas.contains(id) && *id != self.leader_id);
        for id in replicas {
            if *id != self.leader_id {
                self.followers
                    .entry(*id)
                    .or_insert_with(|| FollowerState::new(0));
            }
        }
    }

    pub fn follower(&self, replica_id: i32) -> Option<&FollowerState> {
        self.followers.get(&replica_id)
    }

    /// Records a follower's fetch at `fetch_offset` (Kafka's
    /// `updateFetchStateOrThrow`). False if `replica_id` is not a follower here.
    pub fn update_follower(
        &mut self,
        replica_id: i32,
        fetch_offset: i64,
        leader_log_end_offset: i64,
        now_ms: i64,
    ) -> bool {
        let Some(f) = self.followers.get_mut(&replica_id) else {
            return false;
        };
        if fetch_offset >= leader_log_end_offset {
            f.last_caught_up_time_ms = f.last_caught_up_time_ms.max(now_ms);
        } else if fetch_offset >= f.last_fetch_leader_log_end_offset {
            // It has what the leader had at its previous fetch: caught up as of then.
            f.last_caught_up_time_ms = f.last_caught_up_time_ms.max(f.last_fetch_time_ms);
        }
        f.log_end_offset = fetch_offset;
        f.last_fetch_leader_log_end_offset = leader_log_end_offset;
        f.last_fetch_time_ms = now_ms;
        true
    }

    /// Records the broker epoch a follower's fetch carried.
    pub fn update_follower_broker_epoch(&mut self, replica_id: i32, broker_epoch: i64) {
        if let Some(f) = self.followers.get_mut(&replica_id) {
            f.broker_epoch = Some(broker_epoch);
        }
    }

    /// Records the log start offset a follower's fetch reported; true if it changed.
    pub fn update_follower_log_start(&mut self, replica_id: i32, log_start_offset: i64) -> bool {
        match self.followers.get_mut(&replica_id) {
            Some(f) if f.log_start_offset != log_start_offset => {
                f.log_start_offset = log_start_offset;
                true
            }
            _ => false,
        }
    }

    /// The partition's low watermark (Kafka's `lowWatermarkIfLeader`): the least log start
    /// offset over the leader and every follower on an `alive` broker. A follower that has
    /// not fetched in this epoch counts as -1, so DeleteRecords waits for it.
    pub fn low_watermark(&self, leader_log_start_offset: i64, alive: impl Fn(i32) -> bool) -> i64 {
        self.followers
            .iter()
            .filter(|(id, _)| alive(**id))
            .map(|(_, f)| f.log_start_offset)
            .fold(leader_log_start_offset, i64::min)
    }

    /// The ISR for safety decisions: the committed one plus what a pending change adds
    /// (Kafka's "maximal ISR"), so the high watermark never passes a member the
    /// controller may already have admitted.
    pub fn maximal_isr(&self, isr: &[i32]) -> Vec<i32> {
        let mut all = isr.to_vec();
        if let Some(pending) = &self.pending {
            for id in &pending.isr {
                if !all.contains(id) {
                    all.push(*id);
                }
            }
        }
        all
    }

    /// The high watermark the ISR allows: the least log end offset over the maximal ISR,
    /// and over followers about to join it (caught up and `eligible`), so the mark does
    /// not race past one the controller is admitting. Never above the leader's log end.
    pub fn high_watermark(
        &self,
        isr: &[i32],
        leader_log_end_offset: i64,
        now_ms: i64,
        lag_max_ms: u64,
        eligible: impl Fn(i32) -> bool,
    ) -> i64 {
        let maximal = self.maximal_isr(isr);
        let mut high_watermark = leader_log_end_offset;
        for (id, f) in &self.followers {
            let joining =
                f.is_caught_up(leader_log_end_offset, now_ms, lag_max_ms) && eligible(*id);
            if (maximal.contains(id) || joining) && f.log_end_offset < high_watermark {
                high_watermark = f.log_end_offset;
            }
        }
        high_watermark
    }

    /// ISR followers that have not caught up within `lag_max_ms` (Kafka's
    /// `getOutOfSyncReplicas`); the leader never drops itself.
    pub fn out_of_sync(
        &self,
        isr: &[i32],
        leader_log_end_offset: i64,
        now_ms: i64,
        lag_max_ms: u64,
    ) -> Vec<i32> {
        isr.iter()
            .copied()
            .filter(|id| *id != self.leader_id)
            .filter(|id| {
                self.followers
                    .get(id)
                    .is_none_or(|f| !f.is_caught_up(leader_log_end_offset, now_ms, lag_max_ms))
            })
            .collect()
    }

    /// Whether a follower outside the ISR may rejoin (Kafka's `isFollowerInSync`): it has
    /// everything up to the high watermark and reached this leader epoch's start.
    pub fn can_join_isr(&self, replica_id: i32, high_watermark: i64) -> bool {
        self.followers.get(&replica_id).is_some_and(|f| {
            f.log_end_offset >= high_watermark && f.log_end_offset >= self.epoch_start_offset
        })
    }

    /// The ISR change to ask for now, if any: shrink away out-of-sync followers, or add
    /// `joining` followers that caught up. Nothing while another change is in flight.
    /// `registered_epoch`: the broker epoch of a follower that may join (registered,
    /// unfenced); Kafka's `isReplicaIsrEligible` also wants the follower's fetches to
    /// come from that registration (KIP-903).
    pub fn isr_change(
        &self,
        isr: &[i32],
        leader_log_end_offset: i64,
        high_watermark: i64,
        now_ms: i64,
        lag_max_ms: u64,
        registered_epoch: impl Fn(i32) -> Option<i64>,
    ) -> Option<Vec<i32>> {
        if self.pending.is_some() {
            return None;
        }
        let out = self.out_of_sync(isr, leader_log_end_offset, now_ms, lag_max_ms);
        if !out.is_empty() {
            return Some(isr.iter().copied().filter(|id| !out.contains(id)).collect());
        }
        let joining: Vec<i32> = self
            .followers
            .keys()
            .copied()
            .filter(|id| !isr.contains(id) && self.epoch_is_current(*id, &registered_epoch))
            .filter(|id| self.can_join_isr(*id, high_watermark))
            .collect();
        if joining.is_empty() {
            return None;
        }
        let mut new_isr = isr.to_vec();
        new_isr.extend(joining);
        Some(new_isr)
    }

    /// Whether `replica_id` is registered and unfenced, its fetches coming from that
    /// registration (or from a fetcher too old to say).
    fn epoch_is_current(
        &self,
        replica_id: i32,
        registered_epoch: impl Fn(i32) -> Option<i64>,
    ) -> bool {
        let fetched_with = self.followers.get(&replica_id).and_then(|f| f.broker_epoch);
        registered_epoch(replica_id)
            .is_some_and(|current| fetched_with.is_none_or(|e| e == -1 || e == current))
    }

    /// The image now holds partition epoch `partition_epoch`: a pending change the
    /// controller committed at or below it is no longer pending.
    pub fn observe_partition_epoch(&mut self, partition_epoch: i32) {
        if self
            .pending
            .as_ref()
            .and_then(|p| p.committed_partition_epoch)
            .is_some_and(|committed| committed <= partition_epoch)
        {
            self.pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG_MS: u64 = 30_000;

    fn state() -> LeaderState {
        LeaderState::new(1, 5, &[1, 2, 3], &[1, 2, 3], 100, 1_000)
    }

    #[test]
    fn the_high_watermark_is_the_least_log_end_over_the_isr() {
        let mut s = state();
        // Followers that have not fetched yet hold the mark where it is (unknown = -1).
        assert_eq!(
            s.high_watermark(&[1, 2, 3], 120, 1_000, LAG_MS, |_| true),
            -1
        );
        s.update_follower(2, 120, 120, 1_100);
        s.update_follower(3, 110, 120, 1_100);
        assert_eq!(
            s.high_watermark(&[1, 2, 3], 120, 1_100, LAG_MS, |_| true),
            110
        );
        // A follower outside the ISR and not caught up does not hold it back.
        let mut lagging = LeaderState::new(1, 5, &[1, 2, 3], &[1, 2], 100, 1_000);
        lagging.update_follower(2, 120, 120, 1_100);
        lagging.update_follower(3, 50, 120, 1_100);
        assert_eq!(
            lagging.high_watermark(&[1, 2], 120, 100_000, LAG_MS, |_| true),
            120
        );
    }

    #[test]
    fn a_follower_about_to_join_holds_the_high_watermark() {
        let mut s = LeaderState::new(1, 5, &[1, 2], &[1], 100, 1_000);
        s.update_follower(2, 120, 120, 1_100);
        s.update_follower(2, 130, 140, 1_200);
        // Caught up (within the lag) and eligible: the mark waits for it.
        assert_eq!(s.high_watermark(&[1], 140, 1_200, LAG_MS, |_| true), 130);
        // Fenced (not eligible): it does not.
        assert_eq!(s.high_watermark(&[1], 140, 1_200, LAG_MS, |_| false), 140);
        // A pending addition counts as in the ISR.
        s.pending = Some(PendingIsrChange {
            isr: vec![1, 2],
            committed_partition_epoch: None,
        });
        assert_eq!(s.high_watermark(&[1], 140, 1_200, LAG_MS, |_| false), 130);
    }

    #[test]
    fn followers_that_stop_catching_up_fall_out_of_sync() {
        let mut s = state();
        s.update_follower(2, 120, 120, 2_000);
        s.update_follower(3, 100, 120, 2_000);
        // Within the lag bound of the epoch's start, nobody is out of sync.
        assert!(s.out_of_sync(&[1, 2, 3], 120, 20_000, LAG_MS).is_empty());
        // Past it: 3 never reached the leader's end; 2 did at 2_000.
        assert_eq!(s.out_of_sync(&[1, 2, 3], 120, 31_500, LAG_MS), vec![3]);
        assert_eq!(
            s.isr_change(&[1, 2, 3], 120, 100, 31_500, LAG_MS, |_| Some(1)),
            Some(vec![1, 2])
        );
        // At the leader's end, a follower is in sync however long ago it caught up.
        let mut idle = state();
        idle.update_follower(2, 120, 120, 1_000);
        idle.update_follower(3, 120, 120, 1_000);
        assert!(idle
            .out_of_sync(&[1, 2, 3], 120, 900_000, LAG_MS)
            .is_empty());
    }

    #[test]
    fn catching_up_counts_from_the_previous_fetch() {
        let mut s = state();
        s.update_follower(2, 100, 150, 1_000);
        // It now has what the leader had at its previous fetch (150): caught up as of 1_000.
        s.update_follower(2, 150, 200, 5_000);
        assert_eq!(s.follower(2).unwrap().last_caught_up_time_ms, 1_000);
        s.update_follower(2, 200, 200, 6_000);
        assert_eq!(s.follower(2).unwrap().last_caught_up_time_ms, 6_000);
    }

    #[test]
    fn a_follower_rejoins_at_the_high_watermark_and_the_epoch_start() {
        let mut s = LeaderState::new(1, 5, &[1, 2], &[1], 100, 1_000);
        s.update_follower(2, 90, 120, 1_100);
        // Below the epoch start (100): it may still hold an older epoch's tail.
        assert!(!s.can_join_isr(2, 80));
        s.update_follower(2, 110, 120, 1_200);
        assert!(s.can_join_isr(2, 110));
        assert!(!s.can_join_isr(2, 115));
        assert_eq!(
            s.isr_change(&[1], 120, 110, 1_200, LAG_MS, |_| Some(1)),
            Some(vec![1, 2])
        );
        assert_eq!(s.isr_change(&[1], 120, 110, 1_200, LAG_MS, |_| None), None);
        // One change at a time.
        s.pending = Some(PendingIsrChange {
            isr: vec![1, 2],
            committed_partition_epoch: None,
        });
        assert_eq!(
            s.isr_change(&[1], 120, 110, 1_200, LAG_MS, |_| Some(1)),
            None
        );
    }

    #[test]
    fn a_follower_restarted_as_a_new_registration_must_fetch_again_to_rejoin() {
        let mut s = LeaderState::new(1, 5, &[1, 2], &[1], 100, 1_000);
        s.update_follower(2, 120, 120, 1_100);
        s.update_follower_broker_epoch(2, 7);
        // Its registration is still epoch 7: it may join.
        assert_eq!(
            s.isr_change(&[1], 120, 110, 1_200, LAG_MS, |_| Some(7)),
            Some(vec![1, 2])
        );
        // It restarted and registered anew (epoch 9): what it fetched before says
        // nothing of what its log holds now.
        assert_eq!(
            s.isr_change(&[1], 120, 110, 1_200, LAG_MS, |_| Some(9)),
            None
        );
        s.update_follower(2, 120, 120, 1_300);
        s.update_follower_broker_epoch(2, 9);
        assert_eq!(
            s.isr_change(&[1], 120, 110, 1_300, LAG_MS, |_| Some(9)),
            Some(vec![1, 2])
        );
    }

    #[test]
    fn a_pending_change_ends_when_the_image_reaches_its_epoch() {
        let mut s = state();
        s.pending = Some(PendingIsrChange {
            isr: vec![1, 2],
            committed_partition_epoch: None,
        });
        s.observe_partition_epoch(9);
        assert!(s.pending.is_some(), "not answered yet");
        s.pending.as_mut().unwrap().committed_partition_epoch = Some(4);
        s.observe_partition_epoch(3);
        assert!(s.pending.is_some());
        s.observe_partition_epoch(4);
        assert!(s.pending.is_none());
    }

    #[test]
    fn the_low_watermark_is_the_least_log_start_over_live_replicas() {
        let mut s = state();
        // Followers 2 and 3 have not fetched: unknown, so nothing is known deleted.
        assert_eq!(s.low_watermark(50, |_| true), -1);
        assert!(s.update_follower_log_start(2, 50));
        assert!(!s.update_follower_log_start(2, 50));
        assert!(s.update_follower_log_start(3, 20));
        assert_eq!(s.low_watermark(50, |_| true), 20);
        // A follower on a fenced or unregistered broker does not hold it back.
        assert_eq!(s.low_watermark(50, |id| id != 3), 50);
        assert!(!s.update_follower_log_start(9, 50));
    }

    #[test]
    fn unknown_replicas_are_not_followers() {
        let mut s = state();
        assert!(!s.update_follower(9, 10, 10, 1));
        s.update_replicas(&[1, 2, 4]);
        assert!(s.follower(3).is_none());
        assert!(s.update_follower(4, 10, 10, 1));
    }
}
