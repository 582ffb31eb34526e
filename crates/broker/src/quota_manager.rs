//! Client quotas, as Kafka's `ClientQuotaManager` (produce and fetch byte rates),
//! `ClientRequestQuotaManager` (request time) and `ControllerMutationQuotaManager`
//! (KIP-599) enforce them, with KIP-219's throttling.
//!
//! The quotas are ClientQuota metadata records (AlterClientQuotas), so every node has the
//! same; what a node keeps here is its own measurements: one sensor per quota type and
//! (user, client id) it saw. As in Kafka:
//! - Resolution (`DefaultQuotaCallback`): a request counts against the most specific
//!   entity with a quota of its type, in the order `/users/<user>/clients/<client-id>`,
//!   `/users/<user>/clients/<default>`, `/users/<user>`,
//!   `/users/<default>/clients/<client-id>`, `/users/<default>/clients/<default>`,
//!   `/users/<default>`, `/clients/<client-id>`, `/clients/<default>`. The user is the
//!   principal's name (`ANONYMOUS` when unauthenticated), the client id the request
//!   header's. The entity decides what is shared: a quota on `/users/alice` is one rate
//!   for all of alice's clients, `/users/<default>` gives each user a rate of its own.
//!   `ip` entities are not client quotas (connection creation rates, not enforced yet).
//! - Rates are Kafka's `Rate` over a `SampledStat` of `quota.window.num` samples of
//!   `quota.window.size.seconds`: the samples' sum over their span, which counts as at
//!   least `quota.window.num - 1` whole windows (so a new client may send about that many
//!   seconds' worth at once). A request that takes the rate O over its quota T is
//!   throttled X = (O - T) / T × W ms (W the span): the time that brings the rate back
//!   to T if nothing more comes.
//! - Produce: the request's size (its frame) against `producer_byte_rate`, once handled
//!   (acks=0 too). Fetch by a consumer: the response's size against
//!   `consumer_byte_rate`; a throttled fetch is answered without records (its bytes are
//!   not counted, the consumer fetches them again), and a consumer never asks for more
//!   than `consumer_byte_rate × (quota.window.num - 1) × window` at once.
//! - `request_percentage` (Kafka's request-handler thread time, as a percentage of one
//!   thread over the window; throttles bounded by one window): Moldau has no request
//!   thread pool, so it counts the time the request's handler is being polled, which is
//!   the work done for it; waiting (a long-polling fetch, acks=-1 replication, a
//!   controller commit, a blocking-pool task) is not counted. Not for acks=0 produces.
//! - `controller_mutation_rate` (KIP-599): partitions created or deleted by
//!   CreateTopics, CreatePartitions and DeleteTopics, against Kafka's `TokenBucket`
//!   (refilled at the rate, holding at most 11 × 1 s of it: Kafka's
//!   `controller.quota.window.*` defaults). Strict from CreateTopics v6, DeleteTopics v5
//!   and CreatePartitions v3 (a topic is refused THROTTLING_QUOTA_EXCEEDED once the bucket
//!   is empty), permissive before (done, then throttled). Applied where the request is
//!   carried out, on the active controller.
//! - KIP-219: the answer goes out at once with `throttle_time_ms` (the largest of the
//!   request's throttles), and the connection is not read for that long
//!   ([`ConnectionMute`], held by network.rs), so a client that ignores the field is held
//!   to its quota too. Exempt, as Kafka's cluster actions: follower fetches, requests over
//!   a controller listener (nodes'), WriteTxnMarkers, DescribeQuorum, AlterPartition,
//!   BrokerRegistration, BrokerHeartbeat, AllocateProducerIds.
//! - Memory: a sensor idle for an hour is dropped (Kafka's sensor expiration); beyond
//!   [`MAX_SENSORS`] sensors or [`MAX_SENSOR_KEY_BYTES`] of names the idlest tenth goes.
//!
//! Thread-safety: the quota index is rebuilt when the image's quota map changes (compared
//! by pointer); sensors sit behind one mutex, taken briefly per request, never across an
//! await. Time is tokio's monotonic clock (the simulation's clock under turmoil).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, FetchResponse, RequestKind, ResponseKind};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::ResponseError;
use moldau_metadata::{ClientQuotas, MetadataImage};
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use crate::api::RequestContext;
use crate::config::ServerConfig;
use crate::state::BrokerState;

/// Kafka's entity types (`ClientQuotaEntity.USER`, `CLIENT_ID`, `IP`).
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// Kafka's quota keys (`QuotaConfig`).
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const IP_CONNECTION_RATE: &str = "connection_creation_rate";

/// Kafka's `InactiveSensorExpirationTimeSeconds`, and how often idle sensors are looked
/// for (Kafka's `ExpireSensorTask` period).
const SENSOR_EXPIRATION_MS: i64 = 3_600_000;
const SENSOR_PURGE_INTERVAL_MS: i64 = 30_000;
/// Bounds on the sensors a node keeps (client ids come from clients).
pub const MAX_SENSORS: usize = 100_000;
pub const MAX_SENSOR_KEY_BYTES: usize = 64 << 20;

/// Kafka's `controller.quota.window.num` and `controller.quota.window.size.seconds`
/// defaults: the token bucket holds this many seconds of the rate.
const CONTROLLER_QUOTA_WINDOWS: Windows = Windows {
    samples: 11,
    window_ms: 1000,
};

/// Kafka's `ClientRequestQuotaManager.NanosToPercentagePerSecond`, for a `Duration`.
const PERCENT_PER_SECOND: f64 = 100.0;

/// Kafka's client `QuotaType`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaType {
    Produce,
    Fetch,
    Request,
    ControllerMutation,
}

impl QuotaType {
    const ALL: [QuotaType; 4] = [
        QuotaType::Produce,
        QuotaType::Fetch,
        QuotaType::Request,
        QuotaType::ControllerMutation,
    ];

    /// The quota key that limits this type.
    pub fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => PRODUCER_BYTE_RATE,
            QuotaType::Fetch => CONSUMER_BYTE_RATE,
            QuotaType::Request => REQUEST_PERCENTAGE,
            QuotaType::ControllerMutation => CONTROLLER_MUTATION_RATE,
        }
    }
}

/// The samples a rate is measured over (a quota sensor's `MetricConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Windows {
    samples: u32,
    window_ms: i64,
}

/// One sample of a [`SampledRate`] (Kafka's `SampledStat.Sample`).
#[derive(Clone, Debug, PartialEq)]
struct Sample {
    value: f64,
    start_ms: i64,
    last_event_ms: i64,
}

impl Sample {
    fn new(now_ms: i64) -> Sample {
        Sample {
            value: 0.0,
            start_ms: now_ms,
            last_event_ms: now_ms,
        }
    }
}

/// Kafka's `Rate` over a `WindowedSum`: per second, over `samples` windows (plus the one
/// that overlaps the start of the span, as Kafka keeps).
#[derive(Clone, Debug, Default)]
struct SampledRate {
    samples: Vec<Sample>,
    current: usize,
}

impl SampledRate {
    fn record(&mut self, windows: Windows, value: f64, now_ms: i64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now_ms));
        }
        if now_ms - self.samples[self.current].start_ms >= windows.window_ms {
            self.current = (self.current + 1) % (windows.samples as usize + 1);
            if self.current >= self.samples.len() {
                self.samples.push(Sample::new(now_ms));
            } else {
                self.samples[self.current] = Sample::new(now_ms);
            }
        }
        let sample = &mut self.samples[self.current];
        sample.value += value;
        sample.last_event_ms = now_ms;
    }

    /// Samples without an event within the whole span start over (Kafka's
    /// `purgeObsoleteSamples`).
    fn purge(&mut self, windows: Windows, now_ms: i64) {
        let expire_age_ms = windows.samples as i64 * windows.window_ms;
        for sample in &mut self.samples {
            if now_ms - sample.last_event_ms >= expire_age_ms {
                *sample = Sample::new(now_ms);
            }
        }
    }

    /// Kafka's `Rate.windowSize`: from the oldest sample's start, counted as at least
    /// `samples - 1` whole windows, at least 1 ms.
    fn window_size_ms(&mut self, windows: Windows, now_ms: i64) -> i64 {
        self.purge(windows, now_ms);
        let oldest_ms = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed_ms = now_ms - oldest_ms;
        let full_windows = elapsed_ms / windows.window_ms;
        let min_full_windows = windows.samples as i64 - 1;
        if full_windows < min_full_windows {
            elapsed_ms += (min_full_windows - full_windows) * windows.window_ms;
        }
        elapsed_ms.max(1)
    }

    /// Per second.
    fn measure(&mut self, windows: Windows, now_ms: i64) -> f64 {
        self.purge(windows, now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (self.window_size_ms(windows, now_ms) as f64 / 1000.0)
    }

    /// Kafka's `QuotaUtils.throttleTime` after a record: 0 within `bound`, else the time
    /// that brings the rate back to it.
    fn throttle_ms(&mut self, windows: Windows, bound: f64, now_ms: i64) -> i64 {
        let rate = self.measure(windows, now_ms);
        if rate <= bound {
            return 0;
        }
        ((rate - bound) / bound * self.window_size_ms(windows, now_ms) as f64).round() as i64
    }
}

/// Kafka's `TokenBucket`: refilled at the quota's rate, holding at most `samples ×
/// window` of it; a new bucket is full. The quota is exhausted below zero tokens.
#[derive(Clone, Debug, Default)]
struct TokenBucket {
    tokens: f64,
    last_update_ms: Option<i64>,
}

impl TokenBucket {
    fn burst(windows: Windows, rate: f64) -> f64 {
        windows.samples as f64 * (windows.window_ms as f64 / 1000.0) * rate
    }

    fn refill(&mut self, windows: Windows, rate: f64, now_ms: i64) {
        let burst = Self::burst(windows, rate);
        self.tokens = match self.last_update_ms {
            None => burst,
            Some(last_ms) => (self.tokens + rate * (now_ms - last_ms) as f64 / 1000.0).min(burst),
        };
        self.last_update_ms = Some(now_ms);
    }

    fn measure(&mut self, windows: Windows, rate: f64, now_ms: i64) -> f64 {
        self.refill(windows, rate, now_ms);
        self.tokens
    }

    fn record(&mut self, windows: Windows, rate: f64, permits: f64, now_ms: i64) {
        self.refill(windows, rate, now_ms);
        self.tokens = (self.tokens - permits).min(Self::burst(windows, rate));
    }

    /// Kafka's `ControllerMutationQuotaManager.throttleTimeMs`: until the bucket is back
    /// at zero.
    fn throttle_ms(&mut self, windows: Windows, rate: f64, now_ms: i64) -> i64 {
        let tokens = self.measure(windows, rate, now_ms);
        if tokens >= 0.0 {
            return 0;
        }
        (-tokens / rate * 1000.0).round() as i64
    }
}

#[derive(Debug)]
enum Stat {
    Rate(SampledRate),
    Tokens(TokenBucket),
}

#[derive(Debug)]
struct Sensor {
    stat: Stat,
    last_record_ms: i64,
}

/// One quota type's quotas by entity level, for lookups by name without allocating.
#[derive(Debug, Default)]
struct QuotaIndex {
    user_client: HashMap<String, HashMap<String, f64>>,
    user_default_client: HashMap<String, f64>,
    user: HashMap<String, f64>,
    default_user_client: HashMap<String, f64>,
    default_user_default_client: Option<f64>,
    default_user: Option<f64>,
    client: HashMap<String, f64>,
    default_client: Option<f64>,
    /// Some entity has this quota (Kafka's `quotasEnabled`); nothing is measured before.
    enabled: bool,
}

impl QuotaIndex {
    fn of(quotas: &ClientQuotas, key: &str) -> QuotaIndex {
        let mut index = QuotaIndex::default();
        for (entity, values) in quotas {
            let Some(&value) = values.get(key) else {
                continue;
            };
            if entity.keys().any(|t| t != USER && t != CLIENT_ID) {
                continue;
            }
            match (entity.get(USER), entity.get(CLIENT_ID)) {
                (Some(Some(user)), Some(Some(client))) => {
                    index
                        .user_client
                        .entry(user.clone())
                        .or_default()
                        .insert(client.clone(), value);
                }
                (Some(Some(user)), Some(None)) => {
                    index.user_default_client.insert(user.clone(), value);
                }
                (Some(Some(user)), None) => {
                    index.user.insert(user.clone(), value);
                }
                (Some(None), Some(Some(client))) => {
                    index.default_user_client.insert(client.clone(), value);
                }
                (Some(None), Some(None)) => index.default_user_default_client = Some(value),
                (Some(None), None) => index.default_user = Some(value),
                (None, Some(Some(client))) => {
                    index.client.insert(client.clone(), value);
                }
                (None, Some(None)) => index.default_client = Some(value),
                (None, None) => continue,
            }
            index.enabled = true;
        }
        index
    }

    /// Kafka's `DefaultQuotaCallback.quotaMetricTags`: the (user, client id) of the sensor
    /// a request counts against, `""` for a level the matching entity does not have.
    fn tags<'a>(&self, user: &'a str, client_id: &'a str) -> (&'a str, &'a str) {
        let user_and_client = self
            .user_client
            .get(user)
            .is_some_and(|clients| clients.contains_key(client_id));
        if user_and_client || self.user_default_client.contains_key(user) {
            (user, client_id)
        } else if self.user.contains_key(user) {
            (user, "")
        } else if self.default_user_client.contains_key(client_id)
            || self.default_user_default_client.is_some()
        {
            (user, client_id)
        } else if self.default_user.is_some() {
            (user, "")
        } else {
            ("", client_id)
        }
    }

    /// Kafka's `DefaultQuotaCallback.quotaLimit` for a sensor's tags; `None`: unlimited.
    fn limit(&self, (user, client_id): (&str, &str)) -> Option<f64> {
        match (user.is_empty(), client_id.is_empty()) {
            (false, false) => self
                .user_client
                .get(user)
                .and_then(|clients| clients.get(client_id))
                .or_else(|| self.user_default_client.get(user))
                .or_else(|| self.default_user_client.get(client_id))
                .or(self.default_user_default_client.as_ref())
                .copied(),
            (false, true) => self.user.get(user).or(self.default_user.as_ref()).copied(),
            (true, false) => self
                .client
                .get(client_id)
                .or(self.default_client.as_ref())
                .copied(),
            (true, true) => None,
        }
    }
}

/// The quota index of every type, for one image's quotas.
#[derive(Debug, Default)]
struct QuotaIndexes([QuotaIndex; 4]);

impl QuotaIndexes {
    fn of(quotas: &ClientQuotas) -> QuotaIndexes {
        QuotaIndexes(QuotaType::ALL.map(|t| QuotaIndex::of(quotas, t.key())))
    }

    fn get(&self, quota_type: QuotaType) -> &QuotaIndex {
        &self.0[quota_type as usize]
    }
}

type SensorKey = (QuotaType, String, String);

#[derive(Default)]
struct Sensors {
    map: HashMap<SensorKey, Sensor>,
    /// Bytes of the names in `map`'s keys.
    key_bytes: usize,
    last_purge_ms: i64,
}

impl Sensors {
    /// The sensor of `key`, created (with `stat`) if missing; idle sensors are dropped
    /// first when it is time, or when the bounds are reached.
    fn get_or_create(
        &mut self,
        key: (QuotaType, &str, &str),
        now_ms: i64,
        stat: impl FnOnce() -> Stat,
    ) -> &mut Sensor {
        if now_ms - self.last_purge_ms >= SENSOR_PURGE_INTERVAL_MS {
            self.last_purge_ms = now_ms;
            self.retain_recent(now_ms - SENSOR_EXPIRATION_MS);
        }
        let owned = (key.0, key.1.to_string(), key.2.to_string());
        if !self.map.contains_key(&owned) {
            if self.map.len() >= MAX_SENSORS || self.key_bytes >= MAX_SENSOR_KEY_BYTES {
                self.evict_idlest_tenth();
            }
            self.key_bytes += owned.1.len() + owned.2.len();
        }
        let sensor = self.map.entry(owned).or_insert_with(|| Sensor {
            stat: stat(),
            last_record_ms: now_ms,
        });
        sensor.last_record_ms = now_ms;
        sensor
    }

    fn retain_recent(&mut self, since_ms: i64) {
        let mut freed = 0;
        self.map.retain(|(_, user, client), sensor| {
            let keep = sensor.last_record_ms >= since_ms;
            if !keep {
                freed += user.len() + client.len();
            }
            keep
        });
        self.key_bytes -= freed;
    }

    fn evict_idlest_tenth(&mut self) {
        let mut times: Vec<i64> = self.map.values().map(|s| s.last_record_ms).collect();
        if times.is_empty() {
            return;
        }
        let nth = times.len() / 10;
        let (_, threshold, _) = times.select_nth_unstable(nth);
        let threshold = *threshold;
        self.retain_recent(threshold + 1);
    }
}

/// KIP-219 for one connection: until when it must not be read (a throttled answer went
/// out). Set by the request path, taken by the connection after it sent the answer.
#[derive(Debug, Default)]
pub struct ConnectionMute(Mutex<Option<Instant>>);

impl ConnectionMute {
    pub fn mute_until(&self, until: Instant) {
        let mut mute = self.0.lock();
        *mute = Some(mute.map_or(until, |current| current.max(until)));
    }

    /// When the connection may be read again, if that is still to come; clears it.
    pub fn take(&self) -> Option<Instant> {
        self.0.lock().take().filter(|until| *until > Instant::now())
    }
}

/// What a request's handler found against its quotas (the controller mutation quota's
/// throttle), for the request path to answer and mute with.
#[derive(Debug, Default)]
pub struct RequestQuota {
    throttled_until: Mutex<Option<Instant>>,
}

impl RequestQuota {
    /// The last violation's throttle wins (Kafka's `updateThrottleTime`).
    fn throttle(&self, throttle_ms: i64) {
        *self.throttled_until.lock() =
            Some(Instant::now() + Duration::from_millis(throttle_ms.max(0) as u64));
    }

    /// What is left of the throttle (Kafka's `throttleTime`: less the time since).
    fn remaining_ms(&self) -> i64 {
        self.throttled_until.lock().map_or(0, |until| {
            until.saturating_duration_since(Instant::now()).as_millis() as i64
        })
    }
}

/// This node's client quota sensors.
pub struct QuotaManager {
    client_windows: Windows,
    /// The request quota's throttle bound (Kafka's `maxThrottleTimeMs`: one window).
    max_request_throttle_ms: i64,
    epoch: Instant,
    /// The image's quota map the index was built from (compared by pointer) and the index.
    index: RwLock<(Arc<ClientQuotas>, Arc<QuotaIndexes>)>,
    sensors: Mutex<Sensors>,
}

impl QuotaManager {
    pub fn new(config: &ServerConfig) -> QuotaManager {
        let window_ms = config.quota_window_size_seconds.max(1) as i64 * 1000;
        QuotaManager {
            client_windows: Windows {
                samples: config.quota_window_num.max(1),
                window_ms,
            },
            max_request_throttle_ms: window_ms,
            epoch: Instant::now(),
            index: RwLock::new((Arc::default(), Arc::default())),
            sensors: Mutex::new(Sensors::default()),
        }
    }

    fn now_ms(&self) -> i64 {
        self.epoch.elapsed().as_millis() as i64
    }

    /// The quota index of `image`, rebuilt when its quotas changed.
    fn indexes(&self, image: &MetadataImage) -> Arc<QuotaIndexes> {
        {
            let current = self.index.read();
            if Arc::ptr_eq(&current.0, image.client_quotas()) {
                return current.1.clone();
            }
        }
        let indexes = Arc::new(QuotaIndexes::of(image.client_quotas()));
        *self.index.write() = (image.client_quotas().clone(), indexes.clone());
        indexes
    }

    /// Records `value` against a rate quota of the request's user and client id; the
    /// throttle time in ms (0: within the quota, or none applies).
    fn record_rate(
        &self,
        indexes: &QuotaIndexes,
        quota_type: QuotaType,
        who: (&str, &str),
        value: f64,
        now_ms: i64,
    ) -> i64 {
        let index = indexes.get(quota_type);
        let tags = index.tags(who.0, who.1);
        let limit = index.limit(tags);
        let windows = self.client_windows;
        let mut sensors = self.sensors.lock();
        let sensor = sensors.get_or_create((quota_type, tags.0, tags.1), now_ms, || {
            Stat::Rate(SampledRate::default())
        });
        let Stat::Rate(rate) = &mut sensor.stat else {
            return 0;
        };
        rate.record(windows, value, now_ms);
        let throttle_ms = match limit {
            Some(bound) => rate.throttle_ms(windows, bound, now_ms),
            None => 0,
        };
        if throttle_ms > 0 {
            tracing::debug!(
                "quota violated for {quota_type:?} sensor {tags:?} ({value} at {now_ms} ms): throttled {throttle_ms} ms"
            );
        }
        throttle_ms
    }

    /// Kafka's `getMaxValueInQuotaWindow`: the most a fetch may ask for without being
    /// sure to be throttled.
    fn max_value_in_window(&self, indexes: &QuotaIndexes, who: (&str, &str)) -> Option<f64> {
        let index = indexes.get(QuotaType::Fetch);
        let limit = index.limit(index.tags(who.0, who.1))?;
        let windows = self.client_windows;
        Some(limit * (windows.samples as f64 - 1.0) * (windows.window_ms as f64 / 1000.0))
    }

    /// The controller mutation quota of a CreateTopics, CreatePartitions or DeleteTopics
    /// (Kafka's `newQuotaFor(request, strictSinceVersion)`).
    pub(crate) fn controller_mutation<'a>(
        &'a self,
        image: &MetadataImage,
        ctx: &'a RequestContext,
        strict_since_version: i16,
    ) -> ControllerMutationQuota<'a> {
        let indexes = self.indexes(image);
        let index = indexes.get(QuotaType::ControllerMutation);
        let target = (index.enabled && !ctx.controller_listener)
            .then(|| {
                let (user, client_id) = who(ctx);
                let (user, client_id) = index.tags(user, client_id);
                let rate = index.limit((user, client_id))?;
                Some((user.to_string(), client_id.to_string(), rate))
            })
            .flatten();
        ControllerMutationQuota {
            manager: self,
            ctx,
            strict: ctx.api_version >= strict_since_version,
            target,
        }
    }
}

/// The (user, client id) a request is measured as.
fn who(ctx: &RequestContext) -> (&str, &str) {
    (
        ctx.principal.name.as_str(),
        ctx.header.client_id.as_deref().unwrap_or(""),
    )
}

/// Kafka's `ControllerMutationQuota` for one request: strict (refuses a mutation once the
/// bucket is empty) or permissive (lets it through, then throttles), or unbounded when no
/// quota applies.
pub(crate) struct ControllerMutationQuota<'a> {
    manager: &'a QuotaManager,
    ctx: &'a RequestContext,
    strict: bool,
    /// The sensor's tags and the rate; `None`: unbounded.
    target: Option<(String, String, f64)>,
}

/// Kafka's answer for a mutation the strict quota refuses.
pub(crate) fn throttling_quota_exceeded() -> (ResponseError, String) {
    (
        ResponseError::ThrottlingQuotaExceeded,
        "The throttling quota has been exceeded.".to_string(),
    )
}

impl ControllerMutationQuota<'_> {
    /// Kafka's `applyPartitionChangeQuota(permits)`: strict, refused while the bucket is
    /// empty (nothing recorded), else recorded; permissive, recorded and throttled when
    /// that empties the bucket.
    pub(crate) fn apply(&self, permits: u32) -> Result<(), (ResponseError, String)> {
        self.admit()?;
        self.record(permits);
        Ok(())
    }

    /// The strict quota's check alone (before a mutation whose permits are recorded
    /// after it is made): refused while the bucket is empty.
    pub(crate) fn admit(&self) -> Result<(), (ResponseError, String)> {
        let Some((user, client_id, rate)) = &self.target else {
            return Ok(());
        };
        if !self.strict {
            return Ok(());
        }
        let throttle_ms = self.with_bucket(user, client_id, |bucket, now_ms| {
            bucket.throttle_ms(CONTROLLER_QUOTA_WINDOWS, *rate, now_ms)
        });
        if throttle_ms > 0 {
            self.ctx.quota.throttle(throttle_ms);
            return Err(throttling_quota_exceeded());
        }
        Ok(())
    }

    /// Records mutations made (after [`Self::admit`]); a permissive quota throttles once
    /// the bucket is empty.
    pub(crate) fn record(&self, permits: u32) {
        let Some((user, client_id, rate)) = &self.target else {
            return;
        };
        let throttle_ms = self.with_bucket(user, client_id, |bucket, now_ms| {
            bucket.record(CONTROLLER_QUOTA_WINDOWS, *rate, f64::from(permits), now_ms);
            bucket.throttle_ms(CONTROLLER_QUOTA_WINDOWS, *rate, now_ms)
        });
        if !self.strict && throttle_ms > 0 {
            self.ctx.quota.throttle(throttle_ms);
        }
    }

    fn with_bucket<T>(
        &self,
        user: &str,
        client_id: &str,
        f: impl FnOnce(&mut TokenBucket, i64) -> T,
    ) -> T {
        let now_ms = self.manager.now_ms();
        let mut sensors = self.manager.sensors.lock();
        let sensor = sensors.get_or_create(
            (QuotaType::ControllerMutation, user, client_id),
            now_ms,
            || Stat::Tokens(TokenBucket::default()),
        );
        match &mut sensor.stat {
            Stat::Tokens(bucket) => f(bucket, now_ms),
            Stat::Rate(_) => unreachable!("a controller mutation sensor is a token bucket"),
        }
    }
}

/// Requests Kafka never throttles (cluster actions: what nodes send each other).
fn exempt(api_key: ApiKey) -> bool {
    matches!(
        api_key,
        ApiKey::WriteTxnMarkers
            | ApiKey::DescribeQuorum
            | ApiKey::AlterPartition
            | ApiKey::BrokerRegistration
            | ApiKey::BrokerHeartbeat
            | ApiKey::AllocateProducerIds
    )
}

/// What a request counts against, decided before its handler runs.
struct Measured {
    indexes: Arc<QuotaIndexes>,
    /// The request quota applies (enabled, and not an acks=0 produce).
    request_time: bool,
    bandwidth: Bandwidth,
}

enum Bandwidth {
    None,
    /// A produce of this many bytes.
    Produce(usize),
    /// A consumer's fetch.
    Fetch,
}

impl QuotaManager {
    fn measured(
        &self,
        image: &MetadataImage,
        ctx: &RequestContext,
        request: &RequestKind,
        request_bytes: usize,
    ) -> Option<Measured> {
        if ctx.controller_listener {
            return None;
        }
        let api_key = ApiKey::try_from(ctx.header.request_api_key).ok()?;
        if exempt(api_key) {
            return None;
        }
        let indexes = self.indexes(image);
        let enabled = |t| indexes.get(t).enabled;
        let (bandwidth, request_time) = match request {
            RequestKind::Produce(produce) => (
                Bandwidth::Produce(request_bytes),
                produce.acks != 0 && enabled(QuotaType::Request),
            ),
            RequestKind::Fetch(fetch) => {
                let replica_id = if ctx.api_version >= 15 {
                    fetch.replica_state.replica_id.0
                } else {
                    fetch.replica_id.0
                };
                if replica_id >= 0 {
                    return None;
                }
                (Bandwidth::Fetch, enabled(QuotaType::Request))
            }
            _ => (Bandwidth::None, enabled(QuotaType::Request)),
        };
        let bandwidth = match bandwidth {
            Bandwidth::Produce(_) if !enabled(QuotaType::Produce) => Bandwidth::None,
            Bandwidth::Fetch if !enabled(QuotaType::Fetch) => Bandwidth::None,
            other => other,
        };
        if !request_time && matches!(bandwidth, Bandwidth::None) {
            return None;
        }
        Some(Measured {
            indexes,
            request_time,
            bandwidth,
        })
    }

    /// After the handler: records what the request cost and returns its throttle in ms.
    /// A throttled fetch's answer is replaced by one without records.
    fn finish(
        &self,
        measured: &Measured,
        ctx: &RequestContext,
        response: Option<&mut ResponseKind>,
        handled_for: Duration,
    ) -> i64 {
        let now_ms = self.now_ms();
        let who = who(ctx);
        let indexes = &measured.indexes;
        let request_ms = if measured.request_time {
            let percent = handled_for.as_secs_f64() * PERCENT_PER_SECOND;
            self.record_rate(indexes, QuotaType::Request, who, percent, now_ms)
                .min(self.max_request_throttle_ms)
        } else {
            0
        };
        match (&measured.bandwidth, response) {
            (Bandwidth::Produce(bytes), _) => {
                let produce_ms =
                    self.record_rate(indexes, QuotaType::Produce, who, *bytes as f64, now_ms);
                produce_ms.max(request_ms)
            }
            (Bandwidth::Fetch, Some(ResponseKind::Fetch(fetch))) => {
                let bytes = fetch.compute_size(ctx.api_version).unwrap_or(0) as f64;
                let fetch_ms = self.record_rate(indexes, QuotaType::Fetch, who, bytes, now_ms);
                let throttle_ms = fetch_ms.max(request_ms);
                if throttle_ms > 0 {
                    // Kafka's `unrecordQuotaSensor`: the records are not sent.
                    self.record_rate(indexes, QuotaType::Fetch, who, -bytes, now_ms);
                    *fetch = FetchResponse::default().with_error_code(fetch.error_code);
                }
                throttle_ms
            }
            _ => request_ms,
        }
    }
}

/// The request path with quotas (called by `api::handle_frame` around the handler): a
/// consumer's fetch asks for no more than a quota window's worth; after the handler the
/// request's costs are recorded, the answer gets the largest throttle in
/// `throttle_time_ms`, and the instant until which the connection must not be read is
/// returned (`None`: not throttled).
pub(crate) async fn enforce<F, Fut>(
    state: &BrokerState,
    ctx: &RequestContext,
    request_bytes: usize,
    mut request: RequestKind,
    handle: F,
) -> (Result<Option<ResponseKind>, String>, Option<Instant>)
where
    F: FnOnce(RequestKind) -> Fut,
    Fut: Future<Output = Result<Option<ResponseKind>, String>>,
{
    let quotas = &state.quota_manager;
    let measured = quotas.measured(&state.image(), ctx, &request, request_bytes);
    let mut result = match &measured {
        None => handle(request).await,
        Some(measured) => {
            if let (Bandwidth::Fetch, RequestKind::Fetch(fetch)) =
                (&measured.bandwidth, &mut request)
            {
                if let Some(max) = quotas.max_value_in_window(&measured.indexes, who(ctx)) {
                    // Saturating, as Java's `toInt`.
                    fetch.max_bytes = fetch.max_bytes.min(max as i32);
                    fetch.min_bytes = fetch.min_bytes.min(fetch.max_bytes);
                }
            }
            let (mut result, handled_for) = polled_for(handle(request)).await;
            if let Ok(response) = &mut result {
                let throttle_ms = quotas.finish(measured, ctx, response.as_mut(), handled_for);
                if throttle_ms > 0 {
                    ctx.quota
                        .throttle(throttle_ms.max(ctx.quota.remaining_ms()));
                }
            }
            result
        }
    };
    let throttle_ms = ctx.quota.remaining_ms();
    if throttle_ms <= 0 || result.is_err() {
        return (result, None);
    }
    if let Ok(Some(response)) = &mut result {
        set_throttle_time(response, throttle_ms.min(i32::MAX as i64) as i32);
    }
    let until = Instant::now() + Duration::from_millis(throttle_ms as u64);
    (result, Some(until))
}

/// Runs `future`, adding up the time spent polling it: the work done for it, without the
/// time it waited.
async fn polled_for<F: Future>(future: F) -> (F::Output, Duration) {
    let mut future = std::pin::pin!(future);
    let mut busy = Duration::ZERO;
    let output = std::future::poll_fn(|cx| {
        let start = Instant::now();
        let poll = future.as_mut().poll(cx);
        busy += start.elapsed();
        poll
    })
    .await;
    (output, busy)
}

/// Sets `throttle_time_ms` (keeping a larger one the handler set) on the answers that
/// have the field; versions without it leave it out when encoding.
fn set_throttle_time(response: &mut ResponseKind, throttle_time_ms: i32) {
    macro_rules! with_throttle_time {
        ($($kind:ident),* $(,)?) => {
            match response {
                $(ResponseKind::$kind(r) => {
                    r.throttle_time_ms = r.throttle_time_ms.max(throttle_time_ms);
                })*
                _ => {}
            }
        };
    }
    with_throttle_time!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        ApiVersions,
        AlterPartitionReassignments,
        ListPartitionReassignments,
        UnregisterBroker,
        ElectLeaders,
        CreateTopics,
        InitProducerId,
        AddPartitionsToTxn,
        AddOffsetsToTxn,
        EndTxn,
        TxnOffsetCommit,
        DescribeProducers,
        DescribeTransactions,
        ListTransactions,
        FindCoordinator,
        JoinGroup,
        SyncGroup,
        Heartbeat,
        LeaveGroup,
        OffsetCommit,
        OffsetFetch,
        OffsetDelete,
        DeleteGroups,
        ListGroups,
        DescribeGroups,
        ConsumerGroupHeartbeat,
        ConsumerGroupDescribe,
        DeleteTopics,
        CreatePartitions,
        DescribeConfigs,
        AlterConfigs,
        IncrementalAlterConfigs,
        DeleteRecords,
        DescribeCluster,
        ControllerRegistration,
        AddRaftVoter,
        UpdateRaftVoter,
        RemoveRaftVoter,
        AlterReplicaLogDirs,
        DescribeLogDirs,
        OffsetForLeaderEpoch,
        DescribeUserScramCredentials,
        AlterUserScramCredentials,
        DescribeAcls,
        CreateAcls,
        DeleteAcls,
        DescribeClientQuotas,
        AlterClientQuotas,
    );
}

#[cfg(test)]
mod tests {
    use moldau_metadata::{MetadataDelta, MetadataRecord, QuotaEntityComponent};

    use super::*;

    const WINDOWS: Windows = Windows {
        samples: 11,
        window_ms: 1000,
    };

    /// An entity as `user=alice/client-id=<default>`-style pairs.
    type Entity<'a> = &'a [(&'a str, Option<&'a str>)];

    fn quotas(entries: &[(Entity, &str, f64)]) -> Arc<ClientQuotas> {
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        for (i, (entity, key, value)) in entries.iter().enumerate() {
            let record = MetadataRecord::ClientQuota {
                entity: entity
                    .iter()
                    .map(|(t, n)| QuotaEntityComponent {
                        entity_type: t.to_string(),
                        entity_name: n.map(str::to_string),
                    })
                    .collect(),
                key: key.to_string(),
                value: *value,
                remove: false,
            };
            delta.replay(i as i64, &record).unwrap();
        }
        delta.apply().client_quotas().clone()
    }

    /// The sensor tags and quota a (user, client id) gets for produce.
    fn resolve(quotas: &ClientQuotas, user: &str, client_id: &str) -> (String, Option<f64>) {
        let index = QuotaIndex::of(quotas, PRODUCER_BYTE_RATE);
        let tags = index.tags(user, client_id);
        (format!("{}/{}", tags.0, tags.1), index.limit(tags))
    }

    #[test]
    fn the_most_specific_entity_wins_in_kafkas_order() {
        let levels: [(Entity, f64); 8] = [
            (&[("user", Some("alice")), ("client-id", Some("app"))], 1.0),
            (&[("user", Some("alice")), ("client-id", None)], 2.0),
            (&[("user", Some("alice"))], 3.0),
            (&[("user", None), ("client-id", Some("app"))], 4.0),
            (&[("user", None), ("client-id", None)], 5.0),
            (&[("user", None)], 6.0),
            (&[("client-id", Some("app"))], 7.0),
            (&[("client-id", None)], 8.0),
        ];
        // Take the levels away from the most specific on: each time the next one applies,
        // with the sensor Kafka shares at that level.
        let expected_tags = [
            "alice/app",
            "alice/app",
            "alice/",
            "alice/app",
            "alice/app",
            "alice/",
            "/app",
            "/app",
        ];
        for (first, tags) in expected_tags.iter().enumerate() {
            let entries: Vec<(Entity, &str, f64)> = levels[first..]
                .iter()
                .map(|(entity, value)| (*entity, PRODUCER_BYTE_RATE, *value))
                .collect();
            let quotas = quotas(&entries);
            assert_eq!(
                resolve(&quotas, "alice", "app"),
                (tags.to_string(), Some(levels[first].1)),
                "with levels from {first} on"
            );
        }
        // Nothing applies: unlimited, one sensor per client id.
        assert_eq!(
            resolve(&quotas(&[]), "alice", "app"),
            ("/app".to_string(), None)
        );
    }

    #[test]
    fn defaults_apply_to_others_and_named_entities_only_to_themselves() {
        let quotas = quotas(&[
            (&[("user", Some("alice"))], PRODUCER_BYTE_RATE, 100.0),
            (&[("user", None)], PRODUCER_BYTE_RATE, 10.0),
            (&[("client-id", Some("app"))], PRODUCER_BYTE_RATE, 50.0),
            // Other keys and ip entities are not produce quotas.
            (&[("user", Some("bob"))], CONSUMER_BYTE_RATE, 1.0),
            (&[("ip", None)], IP_CONNECTION_RATE, 1.0),
        ]);
        assert_eq!(
            resolve(&quotas, "alice", "x"),
            ("alice/".into(), Some(100.0))
        );
        // Bob's consumer quota does not make him a produce entity: the default user's.
        assert_eq!(resolve(&quotas, "bob", "app"), ("bob/".into(), Some(10.0)));
        assert_eq!(
            resolve(&quotas, "ANONYMOUS", "app"),
            ("ANONYMOUS/".into(), Some(10.0))
        );
        let index = QuotaIndex::of(&quotas, CONSUMER_BYTE_RATE);
        assert!(index.enabled);
        assert_eq!(index.limit(index.tags("carol", "app")), None);
        assert!(!QuotaIndex::of(&quotas, REQUEST_PERCENTAGE).enabled);
    }

    #[test]
    fn the_rate_spans_at_least_the_window_less_one_sample() {
        let mut rate = SampledRate::default();
        rate.record(WINDOWS, 1000.0, 0);
        // 0.5 s in: the span counts as 10.5 s.
        assert_eq!(rate.window_size_ms(WINDOWS, 500), 10_500);
        assert!((rate.measure(WINDOWS, 500) - 1000.0 / 10.5).abs() < 1e-9);
        // Kafka's X = (O - T) / T × W: (95.238 - 50) / 50 × 10500 = 9500.
        assert_eq!(rate.throttle_ms(WINDOWS, 50.0, 500), 9500);
        assert_eq!(rate.throttle_ms(WINDOWS, 100.0, 500), 0);
        // Past 11 windows without an event the samples start over.
        assert_eq!(rate.measure(WINDOWS, 11_000), 0.0);
        // Samples roll over: 20 s at 100/s, one record per 100 ms.
        let mut steady = SampledRate::default();
        for i in 0..200 {
            steady.record(WINDOWS, 10.0, i * 100);
        }
        let measured = steady.measure(WINDOWS, 19_999);
        assert!((95.0..=105.0).contains(&measured), "{measured}");
        assert!(steady.samples.len() <= WINDOWS.samples as usize + 1);
    }

    /// A client that waits out each throttle (or is muted for it) gets its quota: the
    /// bytes it sends after the first window's allowance settle at the rate.
    #[test]
    fn throttling_holds_a_greedy_client_to_its_quota() {
        let bound = 100_000.0;
        let mut rate = SampledRate::default();
        let mut now_ms = 777;
        let mut sent = Vec::new();
        while now_ms < 60_000 {
            rate.record(WINDOWS, 16_384.0, now_ms);
            sent.push((now_ms, 16_384.0));
            // The client sends again as soon as it is let, at most every 2 ms.
            now_ms += rate.throttle_ms(WINDOWS, bound, now_ms).max(2);
        }
        let late: f64 = sent
            .iter()
            .filter(|(t, _)| *t >= 20_000)
            .map(|(_, b)| b)
            .sum();
        let achieved = late / ((now_ms - 20_000) as f64 / 1000.0);
        assert!(
            (0.85 * bound..=1.15 * bound).contains(&achieved),
            "{achieved} B/s for a quota of {bound}"
        );
    }

    #[test]
    fn the_token_bucket_starts_full_and_refills_at_the_rate() {
        let mut bucket = TokenBucket::default();
        // 2 mutations/s: a burst of 22.
        assert_eq!(bucket.measure(WINDOWS, 2.0, 0), 22.0);
        bucket.record(WINDOWS, 2.0, 30.0, 0);
        assert_eq!(bucket.measure(WINDOWS, 2.0, 0), -8.0);
        // Kafka's throttle: back at zero after 8 / 2 s.
        assert_eq!(bucket.throttle_ms(WINDOWS, 2.0, 0), 4000);
        assert_eq!(bucket.throttle_ms(WINDOWS, 2.0, 1000), 3000);
        assert_eq!(bucket.throttle_ms(WINDOWS, 2.0, 4000), 0);
        // Never more than the burst.
        assert_eq!(bucket.measure(WINDOWS, 2.0, 1_000_000), 22.0);
    }

    #[test]
    fn idle_sensors_expire_and_the_count_is_bounded() {
        let mut sensors = Sensors::default();
        let rate = || Stat::Rate(SampledRate::default());
        sensors.get_or_create((QuotaType::Produce, "a", "x"), 0, rate);
        sensors.get_or_create((QuotaType::Fetch, "b", ""), 1_000, rate);
        assert_eq!((sensors.map.len(), sensors.key_bytes), (2, 3));
        // An hour after its last record a sensor goes, at the next purge.
        sensors.get_or_create(
            (QuotaType::Produce, "c", ""),
            SENSOR_EXPIRATION_MS + 500,
            rate,
        );
        let keys: Vec<&str> = sensors.map.keys().map(|k| k.1.as_str()).collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(!keys.contains(&"a"));
        assert_eq!(sensors.key_bytes, 2);
        // Past the bound the idlest tenth goes.
        let mut sensors = Sensors::default();
        for i in 0..MAX_SENSORS as i64 + 1 {
            sensors.get_or_create((QuotaType::Request, "", &i.to_string()), i, rate);
        }
        assert!(sensors.map.len() <= MAX_SENSORS, "{}", sensors.map.len());
        assert!(sensors.map.len() >= MAX_SENSORS * 9 / 10);
        assert!(!sensors
            .map
            .contains_key(&(QuotaType::Request, String::new(), "0".into())));
    }

    #[test]
    fn a_consumer_asks_for_at_most_a_window_of_its_quota() {
        let quotas = quotas(&[(&[("client-id", None)], CONSUMER_BYTE_RATE, 1000.0)]);
        let indexes = QuotaIndexes::of(&quotas);
        let config = ServerConfig::load(None, &[]).unwrap().0;
        let manager = QuotaManager::new(&config);
        assert_eq!(
            manager.max_value_in_window(&indexes, ("u", "c")),
            Some(10_000.0)
        );
        // An empty client id matches no client-id entity (as in Kafka).
        assert_eq!(manager.max_value_in_window(&indexes, ("u", "")), None);
    }
}
