//! Kafka's dynamic SSL update: `listener.name.<l>.ssl.keystore.*` and `ssl.truststore.*`
//! set per broker through IncrementalAlterConfigs (or AlterConfigs) change a listener's
//! certificates without a restart.
//!
//! As Kafka: only these keys, only with the listener prefix, only for one broker (not the
//! cluster default); the new stores are loaded and checked on the broker that takes the
//! request before the change is committed, and the key store's subject and alternative
//! names must stay the same unless `ssl.allow.dn.changes` / `ssl.allow.san.changes`.
//! Once committed, every change of the image (and of the files it names: setting the same
//! location again reloads it, Kafka's reloadable files) is applied to the listener by
//! [`spawn_watcher`]; a store that no longer loads is logged and the listener keeps what
//! it serves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use kafka_protocol::ResponseError;
use moldau_metadata::{ConfigResource, ConfigResourceType, MetadataImage};
use moldau_security::tls::{SslConfig, SslProps};
use tokio::task::JoinHandle;

use crate::network::ListenerTls;
use crate::state::BrokerState;

/// Kafka's `SslConfigs.RECONFIGURABLE_CONFIGS`.
pub const RECONFIGURABLE_SSL_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
];

/// An `ssl.*` key in a dynamic broker config: the listener it names (lower case) if any,
/// and whether Kafka reconfigures it at run time.
fn classify(key: &str) -> Option<(Option<&str>, bool)> {
    if key.starts_with("ssl.") {
        return Some((None, RECONFIGURABLE_SSL_KEYS.contains(&key)));
    }
    let (listener, setting) = key.strip_prefix("listener.name.")?.split_once('.')?;
    setting
        .starts_with("ssl.")
        .then(|| (Some(listener), RECONFIGURABLE_SSL_KEYS.contains(&setting)))
}

type Refusal = (ResponseError, String);

/// Checks the `ssl.*` keys of a broker resource's dynamic configs after a change
/// (`resource_name` "" is the cluster default), as Kafka's `DynamicBrokerConfig`. `next`
/// is the resource's whole dynamic config as it would be.
pub fn validate(
    state: &BrokerState,
    listeners: &BTreeMap<String, Arc<ListenerTls>>,
    resource_name: &str,
    next: &BTreeMap<String, String>,
) -> Result<(), Refusal> {
    let invalid = |message: String| (ResponseError::InvalidRequest, message);
    let mut bare = Vec::new();
    let mut fixed = Vec::new();
    let mut touched = Vec::new();
    for key in next.keys() {
        match classify(key) {
            None => {}
            Some((None, true)) => bare.push(key.as_str()),
            Some((_, false)) => fixed.push(key.as_str()),
            Some((Some(listener), true)) => touched.push(listener),
        }
    }
    if !fixed.is_empty() {
        return Err(invalid(format!(
            "Cannot update these configs dynamically: Set({})",
            fixed.join(", ")
        )));
    }
    if !bare.is_empty() {
        return Err(invalid(format!(
            "These security configs can be dynamically updated only per-listener using the \
             listener prefix: Set({})",
            bare.join(", ")
        )));
    }
    if touched.is_empty() {
        return Ok(());
    }
    if resource_name.is_empty() {
        return Err(invalid(
            "Cannot update these configs at default cluster level, broker id must be \
             specified: listener SSL configs"
                .to_string(),
        ));
    }
    touched.sort();
    touched.dedup();
    for listener in touched {
        let name = listener.to_ascii_uppercase();
        let Some(tls) = listeners.get(&name) else {
            return Err(invalid(format!(
                "Listener {name} does not use SSL on this broker: its ssl.* configs cannot be \
                 updated"
            )));
        };
        let props = effective_props(&state.config.static_configs, Some(next));
        let loaded = SslConfig::load(&SslProps::new(&props, prefix(listener))).map_err(|e| {
            invalid(format!(
                "Validation of dynamic config update of SSLFactory failed: {e}"
            ))
        })?;
        ensure_compatible(&tls.current(), &loaded).map_err(invalid)?;
        // The stores must make a working server (a trust store when clients authenticate).
        crate::network::ListenerTls::new(&loaded).map_err(|e| {
            invalid(format!(
                "Validation of dynamic config update of SSLFactory failed: {e}"
            ))
        })?;
    }
    Ok(())
}

fn prefix(listener_lower: &str) -> String {
    format!("listener.name.{listener_lower}.")
}

/// Kafka's `CertificateEntries.ensureCompatible`: the key store's end-entity subject and
/// alternative names stay unless the listener allows them to change.
fn ensure_compatible(current: &SslConfig, next: &SslConfig) -> Result<(), String> {
    let (Some(old), Some(new)) = (&current.key_store, &next.key_store) else {
        return Ok(());
    };
    let (Some(old), Some(new)) = (old.chain.first(), new.chain.first()) else {
        return Ok(());
    };
    if !next.allow_dn_changes {
        let old_dn = moldau_security::principal::distinguished_name(old).unwrap_or_default();
        let new_dn = moldau_security::principal::distinguished_name(new).unwrap_or_default();
        if old_dn != new_dn {
            return Err(format!(
                "Keystore DistinguishedName does not match: existing={old_dn}, new={new_dn}"
            ));
        }
    }
    if !next.allow_san_changes {
        let old_sans = moldau_security::tls::subject_alt_names(old).unwrap_or_default();
        let new_sans = moldau_security::tls::subject_alt_names(new).unwrap_or_default();
        if old_sans != new_sans {
            return Err(format!(
                "Keystore SubjectAltNames do not match: existing={old_sans:?}, new={new_sans:?}"
            ));
        }
    }
    Ok(())
}

/// The static config with a broker's dynamic listener `ssl.*` keys on top.
fn effective_props(
    static_configs: &BTreeMap<String, String>,
    dynamic: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut props = static_configs.clone();
    for (key, value) in dynamic.into_iter().flatten() {
        if matches!(classify(key), Some((Some(_), true))) {
            props.insert(key.clone(), value.clone());
        }
    }
    props
}

/// What a listener's TLS was loaded from: its dynamic keys and the stamps of the files
/// they name. A change reloads it.
#[derive(PartialEq, Eq)]
struct Fingerprint {
    dynamic: BTreeMap<String, String>,
    files: Vec<(String, Option<(SystemTime, u64)>)>,
}

fn fingerprint(listener_lower: &str, props: &BTreeMap<String, String>) -> Fingerprint {
    let prefix = prefix(listener_lower);
    let dynamic: BTreeMap<String, String> = props
        .iter()
        .filter(|(k, _)| {
            k.strip_prefix(&prefix)
                .is_some_and(|s| RECONFIGURABLE_SSL_KEYS.contains(&s))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let files = ["ssl.keystore.location", "ssl.truststore.location"]
        .iter()
        .filter_map(|key| {
            props
                .get(&format!("{prefix}{key}"))
                .or_else(|| props.get(*key))
        })
        .map(|path| {
            let stamp = std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (path.clone(), stamp)
        })
        .collect();
    Fingerprint { dynamic, files }
}

/// Applies committed dynamic SSL configs to this node's TLS listeners, at start (what an
/// earlier run committed) and whenever the image changes.
pub fn spawn_watcher(
    state: Arc<BrokerState>,
    listeners: BTreeMap<String, Arc<ListenerTls>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if listeners.is_empty() {
            return;
        }
        let mut images = state.controller.quorum().subscribe();
        let mut applied: BTreeMap<String, Fingerprint> = BTreeMap::new();
        for name in listeners.keys() {
            let props = effective_props(&state.config.static_configs, None);
            applied.insert(
                name.clone(),
                fingerprint(&name.to_ascii_lowercase(), &props),
            );
        }
        loop {
            let image = state.image();
            apply(&state, &image, &listeners, &mut applied);
            if images.changed().await.is_err() {
                return;
            }
        }
    })
}

fn apply(
    state: &BrokerState,
    image: &MetadataImage,
    listeners: &BTreeMap<String, Arc<ListenerTls>>,
    applied: &mut BTreeMap<String, Fingerprint>,
) {
    let resource = ConfigResource {
        resource_type: ConfigResourceType::Broker,
        name: state.node_id.to_string(),
    };
    let props = effective_props(&state.config.static_configs, image.configs(&resource));
    for (name, tls) in listeners {
        let lower = name.to_ascii_lowercase();
        let now = fingerprint(&lower, &props);
        if applied.get(name) == Some(&now) {
            continue;
        }
        let loaded = SslConfig::load(&SslProps::new(&props, prefix(&lower)));
        match loaded.map(|ssl| tls.reconfigure(ssl)) {
            Ok(Ok(())) => tracing::info!(listener = %name, "TLS settings reloaded"),
            Ok(Err(e)) | Err(e) => {
                tracing::error!(listener = %name, "dynamic SSL config not applied, the listener keeps its certificates: {e}")
            }
        }
        applied.insert(name.clone(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listener_prefixed_store_keys_are_dynamic() {
        assert_eq!(classify("ssl.keystore.location"), Some((None, true)));
        assert_eq!(classify("ssl.client.auth"), Some((None, false)));
        assert_eq!(
            classify("listener.name.external.ssl.keystore.password"),
            Some((Some("external"), true))
        );
        assert_eq!(
            classify("listener.name.external.ssl.client.auth"),
            Some((Some("external"), false))
        );
        assert_eq!(classify("log.retention.ms"), None);
    }
}
