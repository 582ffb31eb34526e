//! The leader's incremental cooperative assignment (Kafka's
//! `IncrementalCooperativeAssignor`, KIP-415), as pure logic over what members run now.
//!
//! Each round the leader:
//! 1. takes what every member says it runs (its metadata) minus what was deleted from the
//!    config (deleted work is revoked);
//! 2. finds work *lost* with members that left since the previous round: it is held back
//!    for `scheduled.rebalance.max.delay.ms` (a worker restarting in that time gets it
//!    back without churn), then given out again; the delay still to wait goes out in every
//!    assignment so that members rejoin when it ends;
//! 3. revokes work from members above their fair share (balanced to within one connector
//!    and one task), to be reassigned in the next round, after those members stopped it;
//! 4. gives unassigned work to the least loaded members.
//!
//! A member's assignment holds only what it must start and what it must stop (the
//! incremental protocol); it keeps running everything else it runs.

use std::collections::{BTreeMap, BTreeSet};

use crate::rest::ConnectorTaskId;

use super::protocol::Assignment;

/// What a member runs, as the leader sees it this round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Load {
    pub connectors: BTreeSet<String>,
    pub tasks: BTreeSet<ConnectorTaskId>,
}

/// The leader's memory between rounds.
#[derive(Clone, Debug, Default)]
pub struct AssignorState {
    /// Each member's full load after the previous round.
    previous: BTreeMap<String, Load>,
    /// Work of departed members held back, and until when (ms since the epoch).
    held: Option<(Load, i64)>,
}

/// The result for one member: what to start and what to stop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberDelta {
    pub assigned: Load,
    pub revoked: Load,
}

/// One round's assignments and the delay (ms) members wait before rejoining for held work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub members: BTreeMap<String, MemberDelta>,
    pub delay_ms: i32,
}

impl Round {
    /// The protocol assignment of one member.
    pub fn assignment(
        &self,
        member: &str,
        leader: &str,
        leader_url: &str,
        config_offset: i64,
    ) -> Assignment {
        let d = self.members.get(member).cloned().unwrap_or_default();
        Assignment {
            error: super::protocol::NO_ERROR,
            leader: leader.to_string(),
            leader_url: leader_url.to_string(),
            config_offset,
            connectors: d.assigned.connectors.into_iter().collect(),
            tasks: d.assigned.tasks.into_iter().collect(),
            revoked_connectors: d.revoked.connectors.into_iter().collect(),
            revoked_tasks: d.revoked.tasks.into_iter().collect(),
            delay_ms: self.delay_ms,
        }
    }
}

/// Computes a round. `current`: each member and what it runs (from its metadata);
/// `connectors`: the configured connectors with their task counts (stopped ones have 0
/// tasks and are still assigned as connectors); `max_delay_ms`:
/// `scheduled.rebalance.max.delay.ms`.
pub fn assign(
    state: &mut AssignorState,
    current: &BTreeMap<String, Load>,
    connectors: &BTreeMap<String, i32>,
    max_delay_ms: i64,
    now_ms: i64,
) -> Round {
    let configured_tasks: BTreeSet<ConnectorTaskId> = connectors
        .iter()
        .flat_map(|(c, n)| (0..*n).map(move |t| ConnectorTaskId::new(c.clone(), t)))
        .collect();
    let configured_connectors: BTreeSet<String> = connectors.keys().cloned().collect();

    let mut round = Round::default();
    let mut load: BTreeMap<String, Load> = BTreeMap::new();
    for (m, l) in current {
        let delta = round.members.entry(m.clone()).or_default();
        let mut kept = Load::default();
        for c in &l.connectors {
            if configured_connectors.contains(c) {
                kept.connectors.insert(c.clone());
            } else {
                delta.revoked.connectors.insert(c.clone());
            }
        }
        for t in &l.tasks {
            if configured_tasks.contains(t) {
                kept.tasks.insert(t.clone());
            } else {
                delta.revoked.tasks.insert(t.clone());
            }
        }
        load.insert(m.clone(), kept);
    }
    // Work two members claim (a member that missed a revocation) stays with the first.
    let mut seen_c = BTreeSet::new();
    let mut seen_t = BTreeSet::new();
    for (m, l) in load.iter_mut() {
        let delta = round.members.get_mut(m).expect("every member has a delta");
        l.connectors.retain(|c| {
            let first = seen_c.insert(c.clone());
            if !first {
                delta.revoked.connectors.insert(c.clone());
            }
            first
        });
        l.tasks.retain(|t| {
            let first = seen_t.insert(t.clone());
            if !first {
                delta.revoked.tasks.insert(t.clone());
            }
            first
        });
    }

    // Lost work: run by members of the previous round that are gone.
    let mut lost = Load::default();
    for (m, l) in &state.previous {
        if !current.contains_key(m) {
            lost.connectors.extend(
                l.connectors
                    .iter()
                    .filter(|c| configured_connectors.contains(*c))
                    .cloned(),
            );
            lost.tasks.extend(
                l.tasks
                    .iter()
                    .filter(|t| configured_tasks.contains(*t))
                    .cloned(),
            );
        }
    }
    let mut held = Load::default();
    if max_delay_ms > 0 {
        match &mut state.held {
            Some((h, until)) if now_ms < *until => {
                h.connectors.extend(lost.connectors);
                h.tasks.extend(lost.tasks);
                held = h.clone();
                round.delay_ms = (*until - now_ms).clamp(0, i32::MAX as i64) as i32;
            }
            Some(_) => state.held = None,
            None if !lost.connectors.is_empty() || !lost.tasks.is_empty() => {
                held = lost;
                state.held = Some((held.clone(), now_ms + max_delay_ms));
                round.delay_ms = max_delay_ms.min(i32::MAX as i64) as i32;
            }
            None => {}
        }
    }
    // Held work that a member runs again (it came back) is no longer held.
    held.connectors.retain(|c| !seen_c.contains(c));
    held.tasks.retain(|t| !seen_t.contains(t));

    let unassigned_connectors: Vec<String> = configured_connectors
        .iter()
        .filter(|c| !seen_c.contains(*c) && !held.connectors.contains(*c))
        .cloned()
        .collect();
    let unassigned_tasks: Vec<ConnectorTaskId> = configured_tasks
        .iter()
        .filter(|t| !seen_t.contains(*t) && !held.tasks.contains(*t))
        .cloned()
        .collect();

    if !load.is_empty() {
        // Balance: revoke above the fair share counting what will be assigned now.
        let members = load.len();
        let total_c = seen_c.len() + unassigned_connectors.len();
        let total_t = seen_t.len() + unassigned_tasks.len();
        revoke_excess(
            &mut load,
            &mut round,
            total_c.div_ceil(members),
            |l| &mut l.connectors,
            |d| &mut d.revoked.connectors,
        );
        revoke_excess(
            &mut load,
            &mut round,
            total_t.div_ceil(members),
            |l| &mut l.tasks,
            |d| &mut d.revoked.tasks,
        );

        for c in unassigned_connectors {
            let m = least_loaded(&load, |l| l.connectors.len());
            load.get_mut(&m)
                .expect("member")
                .connectors
                .insert(c.clone());
            round
                .members
                .get_mut(&m)
                .expect("member")
                .assigned
                .connectors
                .insert(c);
        }
        for t in unassigned_tasks {
            let m = least_loaded(&load, |l| l.tasks.len());
            load.get_mut(&m).expect("member").tasks.insert(t.clone());
            round
                .members
                .get_mut(&m)
                .expect("member")
                .assigned
                .tasks
                .insert(t);
        }
    }
    state.previous = load;
    round
}

fn revoke_excess<T: Ord + Clone>(
    load: &mut BTreeMap<String, Load>,
    round: &mut Round,
    fair: usize,
    items: impl Fn(&mut Load) -> &mut BTreeSet<T>,
    revoked: impl Fn(&mut MemberDelta) -> &mut BTreeSet<T>,
) {
    for (m, l) in load.iter_mut() {
        let set = items(l);
        while set.len() > fair.max(1) {
            let last = set.iter().next_back().cloned().expect("non-empty");
            set.remove(&last);
            revoked(round.members.get_mut(m).expect("member")).insert(last);
        }
    }
}

fn least_loaded(load: &BTreeMap<String, Load>, count: impl Fn(&Load) -> usize) -> String {
    load.iter()
        .min_by_key(|(m, l)| (count(l), (*m).clone()))
        .map(|(m, _)| m.clone())
        .expect("at least one member")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(c: &str, n: i32) -> Vec<ConnectorTaskId> {
        (0..n).map(|t| ConnectorTaskId::new(c, t)).collect()
    }

    fn apply(current: &mut BTreeMap<String, Load>, round: &Round) {
        for (m, d) in &round.members {
            let l = current.entry(m.clone()).or_default();
            for c in &d.revoked.connectors {
                l.connectors.remove(c);
            }
            for t in &d.revoked.tasks {
                l.tasks.remove(t);
            }
            l.connectors.extend(d.assigned.connectors.iter().cloned());
            l.tasks.extend(d.assigned.tasks.iter().cloned());
        }
    }

    #[test]
    fn work_spreads_evenly_and_moves_when_a_member_leaves_after_the_delay() {
        let mut state = AssignorState::default();
        let config = BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 3)]);
        let mut current: BTreeMap<String, Load> = ["w1", "w2", "w3"]
            .iter()
            .map(|m| (m.to_string(), Load::default()))
            .collect();
        let r = assign(&mut state, &current, &config, 1000, 0);
        apply(&mut current, &r);
        for l in current.values() {
            assert_eq!(l.tasks.len(), 2);
        }
        let all: BTreeSet<_> = current
            .values()
            .flat_map(|l| l.tasks.iter().cloned())
            .collect();
        assert_eq!(all.len(), 6);

        // w3 leaves: its work is held for the delay, then given to the others.
        let w3 = current.remove("w3").unwrap();
        let r = assign(&mut state, &current, &config, 1000, 100);
        assert_eq!(r.delay_ms, 1000);
        assert!(r.members.values().all(|d| d.assigned.tasks.is_empty()));
        let r = assign(&mut state, &current, &config, 1000, 1200);
        assert_eq!(r.delay_ms, 0);
        apply(&mut current, &r);
        let all: BTreeSet<_> = current
            .values()
            .flat_map(|l| l.tasks.iter().cloned())
            .collect();
        assert_eq!(all.len(), 6, "w3's tasks {:?} moved", w3.tasks);
        assert_eq!(current["w1"].tasks.len() + current["w2"].tasks.len(), 6);
    }

    #[test]
    fn a_new_member_gets_work_after_revocations_and_deleted_work_is_revoked() {
        let mut state = AssignorState::default();
        let config = BTreeMap::from([("a".to_string(), 4)]);
        let mut current = BTreeMap::from([(
            "w1".to_string(),
            Load {
                connectors: BTreeSet::from(["a".to_string(), "gone".to_string()]),
                tasks: tasks("a", 4).into_iter().chain(tasks("gone", 1)).collect(),
            },
        )]);
        current.insert("w2".into(), Load::default());
        let r = assign(&mut state, &current, &config, 0, 0);
        let d1 = &r.members["w1"];
        assert!(d1.revoked.connectors.contains("gone"));
        assert_eq!(
            d1.revoked.tasks.len(),
            3,
            "one deleted and two over the fair share"
        );
        apply(&mut current, &r);
        // Next round: the revoked tasks go to w2.
        let r = assign(&mut state, &current, &config, 0, 0);
        apply(&mut current, &r);
        assert_eq!(current["w1"].tasks.len(), 2);
        assert_eq!(current["w2"].tasks.len(), 2);
    }
}
