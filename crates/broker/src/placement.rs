//! Replica placement for new partitions (CreateTopics, CreatePartitions, internal topics):
//! the striping of Kafka's KRaft controller (`StripedReplicaPlacer`), pure and
//! deterministic. Kafka draws its start offsets and shuffles from a `Random`; here they come
//! from a caller-given `seed`, so a test can fix it and the controller varies it per topic.
//!
//! The model: brokers are grouped by rack (brokers without `broker.rack` form one rack-less
//! group, as in KRaft; racks sorted by name, the rack-less group first), each group's
//! brokers sorted by id. Every partition starts on the next rack (round-robin over racks)
//! and takes that rack's next broker as leader; the followers come from the following
//! racks in turn, each rack giving its next broker not yet in the partition, so a partition
//! spans `min(replication factor, racks)` racks. Every rack's broker cursor and the rack
//! cursor advance by one per partition, which stripes leaders over the brokers; after as
//! many partitions as there are brokers, the rack order and each rack's broker order are
//! shuffled so that the next stripe does not repeat the same replica sets.
//!
//! Differences from Kafka: only unfenced brokers are given (Moldau never places a replica
//! on a fenced broker, where Kafka would use one for a follower when unfenced ones run
//! out), so the "too few brokers" count is of unfenced brokers; and a rack's cursor resets
//! per partition by partition number rather than by an epoch that restarts at each shuffle.

use std::collections::BTreeMap;

use moldau_metadata::{MetadataImage, Uuid};

/// A broker that may receive new replicas: registered and unfenced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsableBroker {
    pub id: i32,
    pub rack: Option<String>,
}

impl UsableBroker {
    /// The unfenced brokers of `image`, with their racks.
    pub fn unfenced(image: &MetadataImage) -> Vec<UsableBroker> {
        image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| UsableBroker {
                id: b.broker_id,
                rack: b.rack.clone(),
            })
            .collect()
    }
}

/// Why replicas cannot be placed (Kafka answers INVALID_REPLICATION_FACTOR with these).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("Invalid replication factor {0}: the replication factor must be positive.")]
    NonPositive(usize),
    #[error(
        "Unable to replicate the partition {replication_factor} time(s): The target replication \
         factor of {replication_factor} cannot be reached because only {available} broker(s) \
         are registered."
    )]
    TooFewBrokers {
        replication_factor: usize,
        available: usize,
    },
}

/// A placement seed from a topic id (random for a new topic), mixed with `salt` (e.g. the
/// partition count a CreatePartitions grows from, so that successive growths differ).
pub fn seed_from(topic_id: Uuid, salt: u64) -> u64 {
    let bytes = topic_id.as_bytes();
    let high = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let low = u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes"));
    high ^ low ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Replica lists (leader first) for `num_partitions` new partitions of
/// `replication_factor` replicas each, over `brokers` (the usable ones; their order does
/// not matter). The same inputs and `seed` always give the same lists.
pub fn place(
    brokers: &[UsableBroker],
    num_partitions: usize,
    replication_factor: usize,
    seed: u64,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    if replication_factor == 0 {
        return Err(PlacementError::NonPositive(replication_factor));
    }
    if replication_factor > brokers.len() {
        return Err(PlacementError::TooFewBrokers {
            replication_factor,
            available: brokers.len(),
        });
    }
    let mut rng = SplitMix64(seed);
    let mut groups: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for broker in brokers {
        groups
            .entry(broker.rack.as_deref())
            .or_default()
            .push(broker.id);
    }
    let mut racks: Vec<Rack> = groups
        .into_values()
        .map(|mut ids| {
            ids.sort_unstable();
            ids.dedup();
            let offset = rng.below(ids.len());
            Rack {
                brokers: ids,
                offset,
                round: None,
                taken: 0,
            }
        })
        .collect();
    let num_brokers: usize = racks.iter().map(|r| r.brokers.len()).sum();
    if replication_factor > num_brokers {
        // Only reachable with a broker id listed twice.
        return Err(PlacementError::TooFewBrokers {
            replication_factor,
            available: num_brokers,
        });
    }
    let mut rack_offset = rng.below(racks.len());
    let mut in_stripe = 0;
    let mut placements = Vec::with_capacity(num_partitions);
    for round in 0..num_partitions {
        if in_stripe == num_brokers && num_brokers > 1 {
            rng.shuffle(&mut racks);
            for rack in &mut racks {
                rng.shuffle(&mut rack.brokers);
            }
            in_stripe = 0;
        }
        rack_offset %= racks.len();
        let mut replicas = Vec::with_capacity(replication_factor);
        // The first rack visited in a round has all its brokers left.
        let leader = racks[rack_offset]
            .next(round)
            .expect("a rack's first broker in a round");
        replicas.push(leader);
        // Followers: the racks after the leader's in turn, the leader's own rack again
        // only once every other rack has had its turn.
        let mut rack_index = (rack_offset + 1) % racks.len();
        while replicas.len() < replication_factor {
            if let Some(broker) = racks[rack_index].next(round) {
                replicas.push(broker);
            }
            rack_index = (rack_index + 1) % racks.len();
        }
        placements.push(replicas);
        in_stripe += 1;
        rack_offset += 1;
    }
    Ok(placements)
}

/// The brokers of one rack and its round-robin cursor.
struct Rack {
    brokers: Vec<i32>,
    /// Where this rack's next round starts (advanced by one at each round it serves).
    offset: usize,
    /// The round (partition) this rack last served, and how many brokers it gave to it.
    round: Option<usize>,
    taken: usize,
}

impl Rack {
    /// The rack's next broker for partition `round`, or `None` once every broker of the
    /// rack is in that partition.
    fn next(&mut self, round: usize) -> Option<i32> {
        if self.round != Some(round) {
            self.round = Some(round);
            self.taken = 0;
            self.offset = (self.offset + 1) % self.brokers.len();
        }
        if self.taken >= self.brokers.len() {
            return None;
        }
        let broker = self.brokers[(self.offset + self.taken) % self.brokers.len()];
        self.taken += 1;
        Some(broker)
    }
}

/// A small deterministic generator (SplitMix64): start offsets and shuffles only.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; the modulo bias is irrelevant at cluster sizes).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher-Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn racked(racks: &[(i32, Option<&str>)]) -> Vec<UsableBroker> {
        racks
            .iter()
            .map(|(id, rack)| UsableBroker {
                id: *id,
                rack: rack.map(str::to_string),
            })
            .collect()
    }

    fn no_racks(n: i32) -> Vec<UsableBroker> {
        (1..=n).map(|id| UsableBroker { id, rack: None }).collect()
    }

    /// 3 racks × 2 brokers: a1=1, a2=2, b1=3, b2=4, c1=5, c2=6.
    fn three_racks_of_two() -> Vec<UsableBroker> {
        racked(&[
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("b")),
            (4, Some("b")),
            (5, Some("c")),
            (6, Some("c")),
        ])
    }

    fn rack_of(brokers: &[UsableBroker], id: i32) -> Option<&str> {
        brokers
            .iter()
            .find(|b| b.id == id)
            .and_then(|b| b.rack.as_deref())
    }

    fn leader_counts(placements: &[Vec<i32>]) -> BTreeMap<i32, usize> {
        let mut counts = BTreeMap::new();
        for replicas in placements {
            *counts.entry(replicas[0]).or_default() += 1;
        }
        counts
    }

    #[test]
    fn replicas_of_a_partition_are_distinct_usable_brokers() {
        let layouts = [
            no_racks(1),
            no_racks(5),
            three_racks_of_two(),
            // Uneven racks, and brokers without a rack next to racked ones.
            racked(&[
                (1, Some("a")),
                (2, Some("b")),
                (3, Some("b")),
                (4, Some("b")),
                (5, None),
                (6, None),
            ]),
        ];
        for brokers in &layouts {
            let ids: BTreeSet<i32> = brokers.iter().map(|b| b.id).collect();
            for rf in 1..=brokers.len() {
                for seed in 0..20 {
                    let placements = place(brokers, 50, rf, seed).unwrap();
                    assert_eq!(placements.len(), 50);
                    for replicas in &placements {
                        assert_eq!(replicas.len(), rf);
                        let unique: BTreeSet<i32> = replicas.iter().copied().collect();
                        assert_eq!(unique.len(), rf, "{replicas:?}");
                        assert!(unique.is_subset(&ids), "{replicas:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn replicas_spread_over_as_many_racks_as_possible() {
        let brokers = three_racks_of_two();
        for seed in 0..50 {
            for replicas in place(&brokers, 60, 3, seed).unwrap() {
                let racks: BTreeSet<_> = replicas.iter().map(|b| rack_of(&brokers, *b)).collect();
                assert_eq!(racks.len(), 3, "{replicas:?}");
            }
        }
        // Uneven racks (and a rack-less group): min(rf, racks) distinct racks.
        let brokers = racked(&[
            (1, Some("a")),
            (2, Some("b")),
            (3, Some("b")),
            (4, Some("b")),
            (5, None),
        ]);
        for rf in 1..=5 {
            for seed in 0..50 {
                for replicas in place(&brokers, 30, rf, seed).unwrap() {
                    let racks: BTreeSet<_> =
                        replicas.iter().map(|b| rack_of(&brokers, *b)).collect();
                    assert_eq!(racks.len(), rf.min(3), "rf {rf}: {replicas:?}");
                }
            }
        }
    }

    #[test]
    fn leaders_spread_evenly_over_brokers() {
        // Every stripe of as many partitions as brokers leads on each broker once.
        for (brokers, rf) in [
            (no_racks(3), 1),
            (no_racks(3), 3),
            (no_racks(5), 2),
            (no_racks(7), 3),
            (three_racks_of_two(), 1),
            (three_racks_of_two(), 3),
        ] {
            for seed in 0..20 {
                let n = brokers.len();
                let placements = place(&brokers, n * 100, rf, seed).unwrap();
                let counts = leader_counts(&placements);
                assert_eq!(counts.len(), n, "{counts:?}");
                assert!(counts.values().all(|c| *c == 100), "rf {rf}: {counts:?}");
                // So does any prefix, within one stripe.
                let counts = leader_counts(&placements[..n + n / 2]);
                assert!(
                    counts.values().all(|c| *c == 1 || *c == 2),
                    "rf {rf}: {counts:?}"
                );
            }
        }
        // Where stripes are not exactly even (Kafka's are not either), shuffles even them
        // out over many partitions.
        let brokers = three_racks_of_two();
        let counts = leader_counts(&place(&brokers, 6000, 2, 7).unwrap());
        assert_eq!(counts.len(), 6);
        assert!(
            counts.values().all(|c| (800..=1200).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn replicas_spread_over_brokers() {
        let brokers = no_racks(4);
        let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
        for replicas in place(&brokers, 400, 2, 3).unwrap() {
            for b in replicas {
                *counts.entry(b).or_default() += 1;
            }
        }
        assert!(counts.values().all(|c| *c == 200), "{counts:?}");
    }

    #[test]
    fn a_seed_gives_one_placement() {
        let brokers = three_racks_of_two();
        let first = place(&brokers, 20, 3, 42).unwrap();
        assert_eq!(first, place(&brokers, 20, 3, 42).unwrap());
        // The order brokers are given in does not matter.
        let mut reversed = brokers.clone();
        reversed.reverse();
        assert_eq!(first, place(&reversed, 20, 3, 42).unwrap());
        // Seeds vary the start (the leader of the first partition, over a few seeds).
        let leaders: BTreeSet<i32> = (0..30)
            .map(|seed| place(&brokers, 1, 3, seed).unwrap()[0][0])
            .collect();
        assert!(leaders.len() > 1, "{leaders:?}");
    }

    #[test]
    fn striping_follows_kafkas_pattern() {
        // One broker per rack: partition p starts one rack further than p - 1.
        let brokers = racked(&[(1, Some("a")), (2, Some("b")), (3, Some("c"))]);
        let placements = place(&brokers, 3, 3, 0).unwrap();
        for pair in placements.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert_eq!(b[0], a[1], "{placements:?}");
            assert_eq!(b[1], a[2], "{placements:?}");
            assert_eq!(b[2], a[0], "{placements:?}");
        }
    }

    #[test]
    fn too_few_brokers_is_kafkas_error() {
        let err = place(&no_racks(2), 3, 3, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 \
             cannot be reached because only 2 broker(s) are registered."
        );
        assert_eq!(
            place(&[], 1, 1, 0).unwrap_err(),
            PlacementError::TooFewBrokers {
                replication_factor: 1,
                available: 0
            }
        );
        assert_eq!(
            place(&no_racks(2), 1, 0, 0).unwrap_err(),
            PlacementError::NonPositive(0)
        );
        assert_eq!(
            place(&no_racks(2), 0, 2, 0).unwrap(),
            Vec::<Vec<i32>>::new()
        );
    }

    #[test]
    fn seeds_from_topic_ids_differ_by_salt() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(seed_from(id, 0), seed_from(id, 0));
        assert_ne!(seed_from(id, 0), seed_from(id, 1));
    }
}
