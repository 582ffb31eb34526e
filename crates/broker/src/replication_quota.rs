//! Replication throttles (Kafka's `ReplicationQuotaManager`, KIP-73): a byte rate on the
//! replication of chosen replicas, as `kafka-reassign-partitions --throttle` sets it.
//!
//! Which replicas: the topic configs `leader.replication.throttled.replicas` and
//! `follower.replication.throttled.replicas` (`partition:broker,...` or `*`); this broker
//! throttles the partitions listed with its own id (or all of a `*` topic). How fast: the
//! dynamic broker configs `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate` (bytes/s; this broker's, else the cluster
//! default; unset is unlimited). As in Kafka, only replicas outside the ISR are held back
//! (a caught-up follower is never slowed), on both sides:
//! - the leader answers a throttled follower's fetch without records while its leader
//!   rate is exceeded, and counts the bytes it sends to throttled followers;
//! - the follower leaves its throttled partitions out of its fetches while its follower
//!   rate is exceeded (and asks for at most one second's worth in one fetch), and counts
//!   the bytes it receives for them.
//!
//! The rate is Kafka's sampled rate: 11 one-second samples
//! (`replication.quota.window.num`, `replication.quota.window.size.seconds`), the bytes
//! of the samples divided by their span, which counts as at least 10 s, so a throttle
//! lets about ten seconds' worth through at first, then holds the rate.

use std::collections::{HashMap, HashSet};

use moldau_metadata::{ConfigResource, ConfigResourceType, MetadataImage};
use parking_lot::Mutex;

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// Kafka's defaults: 11 samples of 1 s.
const SAMPLES: usize = 11;
const SAMPLE_MS: i64 = 1000;

/// Kafka's `Rate` over `SampledStat` samples, in bytes per second.
#[derive(Debug, Default)]
pub struct SampledRate {
    /// (window start, bytes), oldest first.
    samples: Vec<(i64, u64)>,
}

impl SampledRate {
    pub fn record(&mut self, bytes: u64, now_ms: i64) {
        self.purge(now_ms);
        match self.samples.last_mut() {
            Some((start, total)) if now_ms < *start + SAMPLE_MS => *total += bytes,
            _ => self.samples.push((now_ms, bytes)),
        }
    }

    fn purge(&mut self, now_ms: i64) {
        let horizon = now_ms - SAMPLES as i64 * SAMPLE_MS;
        self.samples
            .retain(|(start, _)| *start + SAMPLE_MS > horizon);
        if self.samples.len() > SAMPLES {
            let excess = self.samples.len() - SAMPLES;
            self.samples.drain(..excess);
        }
    }

    /// Bytes per second: the samples' bytes over their span, counted as at least
    /// `SAMPLES - 1` windows (Kafka's `Rate.windowSize`).
    pub fn rate(&mut self, now_ms: i64) -> f64 {
        self.purge(now_ms);
        let Some((oldest, _)) = self.samples.first() else {
            return 0.0;
        };
        let total: u64 = self.samples.iter().map(|(_, b)| b).sum();
        let min_span = (SAMPLES as i64 - 1) * SAMPLE_MS;
        let span_ms = (now_ms - oldest).max(min_span).max(1);
        total as f64 * 1000.0 / span_ms as f64
    }
}

/// The partitions one side throttles on this broker, by topic (`None`: every partition).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThrottledReplicas(HashMap<String, Option<HashSet<i32>>>);

impl ThrottledReplicas {
    pub fn contains(&self, topic: &str, partition: i32) -> bool {
        match self.0.get(topic) {
            Some(None) => true,
            Some(Some(partitions)) => partitions.contains(&partition),
            None => false,
        }
    }
}

/// Kafka's `parseThrottledPartitions`: the partitions of a `partition:broker` list (or `*`)
/// that name `node_id`; `None` for every partition. Malformed items (never committed: the
/// value is checked before) are ignored.
fn throttled_partitions(value: &str, node_id: i32) -> Option<Option<HashSet<i32>>> {
    let value = value.trim();
    if value == "*" {
        return Some(None);
    }
    let partitions: HashSet<i32> = value
        .split(',')
        .filter_map(|item| {
            let (partition, broker) = item.trim().split_once(':')?;
            (broker.trim().parse::<i32>().ok()? == node_id)
                .then(|| partition.trim().parse().ok())
                .flatten()
        })
        .collect();
    (!partitions.is_empty()).then_some(Some(partitions))
}

/// What this broker throttles, as the image configures it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Throttles {
    /// Bytes/s; `None`: unlimited.
    pub leader_rate: Option<u64>,
    pub follower_rate: Option<u64>,
    pub leader: ThrottledReplicas,
    pub follower: ThrottledReplicas,
}

impl Throttles {
    pub fn of(image: &MetadataImage, node_id: i32) -> Self {
        let broker = |name: String| ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name,
        };
        let rate = |key: &str| {
            [node_id.to_string(), String::new()]
                .into_iter()
                .find_map(|name| image.configs(&broker(name))?.get(key).cloned())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|v| *v >= 0 && *v < i64::MAX)
                .map(|v| v as u64)
        };
        let mut throttles = Throttles {
            leader_rate: rate(LEADER_RATE),
            follower_rate: rate(FOLLOWER_RATE),
            ..Throttles::default()
        };
        for topic in image.topics() {
            let Some(configs) = image.configs(&ConfigResource {
                resource_type: ConfigResourceType::Topic,
                name: topic.name.clone(),
            }) else {
                continue;
            };
            for (key, side) in [
                (LEADER_REPLICAS, &mut throttles.leader),
                (FOLLOWER_REPLICAS, &mut throttles.follower),
            ] {
                if let Some(partitions) = configs
                    .get(key)
                    .and_then(|v| throttled_partitions(v, node_id))
                {
                    side.0.insert(topic.name.clone(), partitions);
                }
            }
        }
        throttles
    }
}

/// One side's quota: its rate, measured over what it replicated of throttled replicas.
#[derive(Debug, Default)]
pub struct ReplicationQuota {
    rate: Mutex<SampledRate>,
}

impl ReplicationQuota {
    pub fn record(&self, bytes: u64, now_ms: i64) {
        if bytes > 0 {
            self.rate.lock().record(bytes, now_ms);
        }
    }

    /// Whether the measured rate is above `bound` (Kafka's `isQuotaExceeded`).
    pub fn is_exceeded(&self, bound: Option<u64>, now_ms: i64) -> bool {
        bound.is_some_and(|bound| self.rate.lock().rate(now_ms) > bound as f64)
    }
}

#[cfg(test)]
mod tests {
    use moldau_metadata::{MetadataDelta, MetadataRecord, Uuid};

    use super::*;

    #[test]
    fn the_rate_counts_at_least_ten_seconds_then_holds() {
        let mut rate = SampledRate::default();
        assert_eq!(rate.rate(0), 0.0);
        // 100 KB at once: over the minimum span of 10 s, 10 KB/s.
        rate.record(100_000, 0);
        assert_eq!(rate.rate(500), 10_000.0);
        // 20 s later the sample has left the window.
        assert_eq!(rate.rate(20_000), 0.0);
        // A steady 5 KB/s for 30 s measures about 5 KB/s.
        let mut steady = SampledRate::default();
        for s in 0..30 {
            steady.record(5_000, s * 1000);
        }
        let measured = steady.rate(29_999);
        assert!((4_500.0..=5_600.0).contains(&measured), "{measured}");
        let quota = ReplicationQuota::default();
        quota.record(200_000, 0);
        assert!(quota.is_exceeded(Some(10_000), 100));
        assert!(!quota.is_exceeded(Some(30_000), 100));
        assert!(!quota.is_exceeded(None, 100));
    }

    #[test]
    fn throttles_follow_the_configs_that_name_this_broker() {
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        let mut offset = 0;
        let mut replay = |record: MetadataRecord| {
            delta.replay(offset, &record).unwrap();
            offset += 1;
        };
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            replay(MetadataRecord::Topic {
                name: name.to_string(),
                topic_id: Uuid::from_u128(i as u128 + 1),
            });
        }
        let config =
            |resource_type, resource_name: &str, name: &str, value: &str| MetadataRecord::Config {
                resource_type,
                resource_name: resource_name.into(),
                name: name.into(),
                value: Some(value.into()),
            };
        replay(config(
            ConfigResourceType::Topic,
            "a",
            LEADER_REPLICAS,
            "0:1,1:2,2:1",
        ));
        replay(config(
            ConfigResourceType::Topic,
            "a",
            FOLLOWER_REPLICAS,
            "0:2",
        ));
        replay(config(
            ConfigResourceType::Topic,
            "b",
            FOLLOWER_REPLICAS,
            "*",
        ));
        replay(config(ConfigResourceType::Broker, "", LEADER_RATE, "1000"));
        replay(config(ConfigResourceType::Broker, "1", LEADER_RATE, "500"));
        replay(config(ConfigResourceType::Broker, "", FOLLOWER_RATE, "700"));
        let image = delta.apply();
        let one = Throttles::of(&image, 1);
        assert_eq!((one.leader_rate, one.follower_rate), (Some(500), Some(700)));
        assert!(one.leader.contains("a", 0) && one.leader.contains("a", 2));
        assert!(!one.leader.contains("a", 1) && !one.leader.contains("c", 0));
        assert!(!one.follower.contains("a", 0));
        assert!(one.follower.contains("b", 7));
        let two = Throttles::of(&image, 2);
        assert_eq!(two.leader_rate, Some(1000));
        assert!(two.leader.contains("a", 1) && two.follower.contains("a", 0));
        assert!(Throttles::of(&MetadataImage::empty(), 1) == Throttles::default());
    }
}
