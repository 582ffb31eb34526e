//! `meta.properties`: which cluster and node a data directory belongs to, as Kafka's
//! KRaft layout (`version=1`, `cluster.id`, `node.id`, `directory.id`).
//!
//! `moldau storage format` writes it ahead of the first start, as `kafka-storage format`
//! does. A node started on directories nobody formatted formats them itself with a new
//! cluster id, so that a single node needs no setup step; directories that are formatted
//! must agree with each other and with the configured `node.id`, or the node refuses to
//! start with a message naming the directory and both values.

use std::path::{Path, PathBuf};

pub use moldau_storage::Uuid;

use crate::config::ServerConfig;

const FILE_NAME: &str = "meta.properties";

#[derive(Debug, thiserror::Error)]
pub enum MetaPropertiesError {
    #[error("Cluster ID string {0} does not appear to be a valid UUID (22 characters of URL-safe base64)")]
    InvalidClusterId(String),
    #[error("Log directory {0} is already formatted. Use --ignore-formatted to ignore this directory and format the others.")]
    AlreadyFormatted(PathBuf),
    #[error("{path}: {why}")]
    Unreadable { path: PathBuf, why: String },
    #[error(
        "Invalid cluster.id in {path}: expected {expected} (as in {expected_in}), but read {found}"
    )]
    ClusterIdMismatch {
        path: PathBuf,
        expected: String,
        expected_in: PathBuf,
        found: String,
    },
    #[error("Stored node id {stored} in {path} doesn't match the configured node.id {configured}. If you moved your data, make sure your configured node id matches. If you intend to create a new node, you should remove all data in your data directories.")]
    NodeIdMismatch {
        path: PathBuf,
        stored: i32,
        configured: i32,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// KIP-853 rules for `storage format` of a dynamic quorum, in Kafka's words.
    #[error("{0}")]
    InitialControllers(String),
    /// A node of a dynamic quorum starts only on formatted directories.
    #[error("a node of a dynamic quorum (controller.quorum.bootstrap.servers, no controller.quorum.voters) must be formatted first: moldau storage format (--standalone, --initial-controllers or --no-initial-controllers for a controller)")]
    DynamicQuorumUnformatted,
}

/// One voter of a new dynamic quorum, as `storage format --standalone|--initial-controllers`
/// names it (`id@host:port:directory-id`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InitialVoter {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub directory_id: String,
}

/// Where `storage format` leaves a dynamic quorum's initial voters (Kafka's bootstrap
/// checkpoint), in the metadata log directory; read at every start, used once.
pub const INITIAL_VOTERS_FILE: &str = "bootstrap-voters.json";

impl InitialVoter {
    /// Parses Kafka's `--initial-controllers` value: `id@host:port:directory-id,...`.
    pub fn parse_list(value: &str) -> Result<Vec<InitialVoter>, MetaPropertiesError> {
        let bad = |entry: &str| {
            MetaPropertiesError::InitialControllers(format!(
                "invalid --initial-controllers entry {entry:?}: expected id@host:port:directory-id"
            ))
        };
        let mut voters: Vec<InitialVoter> = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, rest) = entry.split_once('@').ok_or_else(|| bad(entry))?;
            let (address, directory_id) = rest.rsplit_once(':').ok_or_else(|| bad(entry))?;
            let (host, port) = address.rsplit_once(':').ok_or_else(|| bad(entry))?;
            let node_id: i32 = id
                .parse()
                .ok()
                .filter(|id| *id >= 0)
                .ok_or_else(|| bad(entry))?;
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(entry))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || directory_id.len() != 22 {
                return Err(bad(entry));
            }
            if voters.iter().any(|v| v.node_id == node_id) {
                return Err(MetaPropertiesError::InitialControllers(format!(
                    "node id {node_id} appears twice in --initial-controllers"
                )));
            }
            voters.push(InitialVoter {
                node_id,
                host: host.to_string(),
                port,
                directory_id: directory_id.to_string(),
            });
        }
        if voters.is_empty() {
            return Err(bad(value));
        }
        Ok(voters)
    }

    /// The initial voters `storage format` wrote into `metadata_log_dir`, if any.
    pub fn read(metadata_log_dir: &Path) -> Result<Vec<InitialVoter>, MetaPropertiesError> {
        let path = metadata_log_dir.join(INITIAL_VOTERS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| MetaPropertiesError::Unreadable {
                    path,
                    why: e.to_string(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(MetaPropertiesError::Io { path, source }),
        }
    }
}

/// How `storage format` sets up a controller of a dynamic quorum (Kafka's three flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum InitialControllers {
    /// No flag: a static quorum (`controller.quorum.voters`) or a broker-only node.
    #[default]
    None,
    /// `--standalone`: this controller alone is the first voter.
    Standalone,
    /// `--initial-controllers`: these are the first voters.
    List(Vec<InitialVoter>),
    /// `--no-initial-controllers`: this controller joins an existing quorum.
    Join,
}

/// The contents of one directory's `meta.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub version: i32,
    pub cluster_id: String,
    pub node_id: i32,
    pub directory_id: Option<String>,
}

impl MetaProperties {
    /// What a directory formatted now holds: a fresh `directory.id` of its own.
    fn new_dir(cluster_id: &str, node_id: i32) -> MetaProperties {
        MetaProperties {
            version: 1,
            cluster_id: cluster_id.to_string(),
            node_id,
            directory_id: Some(random_uuid()),
        }
    }

    /// Reads `dir/meta.properties`; `None` when the directory is not formatted.
    pub fn read(dir: &Path) -> Result<Option<MetaProperties>, MetaPropertiesError> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(MetaPropertiesError::Io { path, source }),
        };
        let unreadable = |why: String| MetaPropertiesError::Unreadable {
            path: path.clone(),
            why,
        };
        let mut version = None;
        let mut cluster_id = None;
        let mut node_id = None;
        let mut directory_id = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(unreadable(format!("line without '=': {line}")));
            };
            let value = value.trim().to_string();
            match key.trim() {
                "version" => version = Some(value),
                "cluster.id" => cluster_id = Some(value),
                "node.id" => node_id = Some(value),
                "directory.id" => directory_id = Some(value),
                _ => {}
            }
        }
        let version = match version.as_deref() {
            Some("1") => 1,
            Some(v) => {
                return Err(unreadable(format!(
                    "version {v} is not supported (only version 1, KRaft)"
                )))
            }
            None => return Err(unreadable("no version".into())),
        };
        let cluster_id = cluster_id.ok_or_else(|| unreadable("no cluster.id".into()))?;
        let node_id = node_id
            .ok_or_else(|| unreadable("no node.id".into()))?
            .parse()
            .map_err(|_| unreadable("node.id is not an integer".into()))?;
        Ok(Some(MetaProperties {
            version,
            cluster_id,
            node_id,
            directory_id,
        }))
    }

    /// Writes `dir/meta.properties` durably: a temp file, fsync, rename, fsync of the dir.
    pub fn write(&self, dir: &Path) -> Result<(), MetaPropertiesError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MetaPropertiesError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut text = format!(
            "#\n#{}\nnode.id={}\nversion={}\ncluster.id={}\n",
            "Written by moldau", self.node_id, self.version, self.cluster_id
        );
        if let Some(id) = &self.directory_id {
            text.push_str(&format!("directory.id={id}\n"));
        }
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(&tmp))?;
        let path = dir.join(FILE_NAME);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io(dir))
    }
}

/// A new random id in Kafka's text form (what `kafka-storage random-uuid` prints).
/// Kafka's text form of a UUID (22 characters of URL-safe base64).
pub fn base64_uuid(id: Uuid) -> String {
    crate::server::base64_url_uuid(id)
}

/// A UUID as Kafka writes it (22 characters of URL-safe base64: cluster and directory ids).
pub fn parse_base64_uuid(text: &str) -> Option<Uuid> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    Uuid::from_slice(&bytes).ok()
}

pub fn random_uuid() -> String {
    // As Kafka's Uuid.randomUuid: never one whose text starts with '-', which a command
    // line would take for a flag (`storage format -t -Sx...`).
    loop {
        let id = crate::server::base64_url_uuid(Uuid::new_v4());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// The cluster id of a quorum formed without `storage format`: a name-based UUID of its
/// voter set (ids, hosts, ports), the same on every node configured with it.
pub fn derived_cluster_id(voters: &[crate::config::QuorumVoter]) -> String {
    let mut entries: Vec<String> = voters
        .iter()
        .map(|v| format!("{}@{}:{}", v.node_id, v.host, v.port))
        .collect();
    entries.sort();
    let name = format!("moldau-cluster:{}", entries.join(","));
    // Deterministic, and like random ids never starting with '-'.
    (0u32..)
        .map(|salt| {
            let salted = format!("{name}#{salt}");
            crate::server::base64_url_uuid(Uuid::new_v5(&Uuid::NAMESPACE_OID, salted.as_bytes()))
        })
        .find(|id| !id.starts_with('-'))
        .expect("some salt gives an id without a leading '-'")
}

/// Checks a cluster id as Kafka's `Uuid.fromString`: URL-safe base64 of 16 bytes.
pub fn validate_cluster_id(id: &str) -> Result<(), MetaPropertiesError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{alphabet, Engine};
    // Java's decoder ignores the unused low bits of the last character (Kafka's quickstart
    // id `MkU3OEVBNTcwNTJENDM2Qk` has them set).
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    let invalid = || MetaPropertiesError::InvalidClusterId(id.to_string());
    if id.len() != 22 {
        return Err(invalid());
    }
    let bytes = LENIENT.decode(id).map_err(|_| invalid())?;
    if bytes.len() != 16 {
        return Err(invalid());
    }
    Ok(())
}

/// The directories a node keeps data in: `log.dirs` and `metadata.log.dir`, once each.
pub fn data_dirs(config: &ServerConfig) -> Vec<PathBuf> {
    let mut dirs = vec![config.log_dir.clone()];
    if config.metadata_log_dir != config.log_dir {
        dirs.push(config.metadata_log_dir.clone());
    }
    dirs
}

/// What `format` did with one directory.
#[derive(Debug, PartialEq, Eq)]
pub enum FormatOutcome {
    Formatted,
    /// Already formatted and `--ignore-formatted` was given.
    Skipped,
}

/// `moldau storage format`: writes `meta.properties` in every data directory. Checks all
/// directories before writing any, so a refusal leaves nothing half-formatted.
pub fn format(
    config: &ServerConfig,
    cluster_id: &str,
    ignore_formatted: bool,
    initial: &InitialControllers,
) -> Result<Vec<(PathBuf, FormatOutcome)>, MetaPropertiesError> {
    validate_cluster_id(cluster_id)?;
    check_initial_controllers(config, initial)?;
    let dirs = data_dirs(config);
    let mut plan = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let formatted = MetaProperties::read(&dir)?.is_some();
        if formatted && !ignore_formatted {
            return Err(MetaPropertiesError::AlreadyFormatted(dir));
        }
        plan.push((dir, formatted));
    }
    let mut outcomes = Vec::with_capacity(plan.len());
    for (dir, formatted) in plan {
        if formatted {
            outcomes.push((dir, FormatOutcome::Skipped));
            continue;
        }
        let meta = MetaProperties::new_dir(cluster_id, config.node_id);
        // The voters first: a directory without meta.properties is not formatted yet, so
        // a crash in between leaves it to format again.
        if dir == config.metadata_log_dir {
            write_initial_voters(config, &dir, &meta, initial)?;
        }
        meta.write(&dir)?;
        outcomes.push((dir, FormatOutcome::Formatted));
    }
    Ok(outcomes)
}

/// Kafka's rules: a controller of a dynamic quorum takes exactly one of the three flags;
/// a static quorum's nodes and broker-only nodes take none of the first two; an
/// `--initial-controllers` list names this controller.
fn check_initial_controllers(
    config: &ServerConfig,
    initial: &InitialControllers,
) -> Result<(), MetaPropertiesError> {
    let fail = |why: &str| Err(MetaPropertiesError::InitialControllers(why.to_string()));
    let dynamic = config.controller_quorum_voters.is_empty()
        && !config.controller_quorum_bootstrap_servers.is_empty();
    match initial {
        InitialControllers::None if config.is_controller() && dynamic => fail(
            "Because controller.quorum.voters is not set on this controller, you must specify \
             one of the following: --standalone, --initial-controllers, or \
             --no-initial-controllers.",
        ),
        InitialControllers::None | InitialControllers::Join => Ok(()),
        _ if !config.controller_quorum_voters.is_empty() => fail(
            "You cannot specify --standalone or --initial-controllers when \
             controller.quorum.voters is set (a static quorum)",
        ),
        _ if !config.is_controller() => fail(
            "You can only specify --standalone or --initial-controllers for a node with the \
             controller role",
        ),
        InitialControllers::List(voters) if !voters.iter().any(|v| v.node_id == config.node_id) => {
            fail("--initial-controllers must include this controller's node.id")
        }
        _ => Ok(()),
    }
}

/// Writes the initial voters into the metadata log directory: `--standalone` names this
/// node at its first controller listener with the directory's own id.
fn write_initial_voters(
    config: &ServerConfig,
    dir: &Path,
    meta: &MetaProperties,
    initial: &InitialControllers,
) -> Result<(), MetaPropertiesError> {
    let voters = match initial {
        InitialControllers::None | InitialControllers::Join => return Ok(()),
        InitialControllers::List(voters) => voters.clone(),
        InitialControllers::Standalone => {
            let listener = config
                .controller_endpoint()
                .filter(|l| !l.host.is_empty() && l.port != 0)
                .ok_or_else(|| {
                    MetaPropertiesError::InitialControllers(
                        "--standalone needs a controller listener with a host and a port \
                         (controller.listener.names, listeners)"
                            .into(),
                    )
                })?;
            vec![InitialVoter {
                node_id: config.node_id,
                host: listener.host.clone(),
                port: listener.port,
                directory_id: meta.directory_id.clone().unwrap_or_default(),
            }]
        }
    };
    let path = dir.join(INITIAL_VOTERS_FILE);
    let io = |source| MetaPropertiesError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let bytes = serde_json::to_vec(&voters).expect("voters serialize");
    let file = std::fs::File::create(&path).map_err(io)?;
    std::io::Write::write_all(&mut &file, &bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// At start: the cluster id every formatted directory agrees on, after checking each one's
/// node id. Directories not yet formatted are formatted with it, so a zero-config node
/// starts on empty directories. With nothing formatted, a combined node that is its own
/// only voter takes a random id, and any other node (of a multi-voter quorum, or with one
/// role only: its controllers or brokers are other nodes) the id its voters derive (every
/// node of a new cluster started without `storage format` then agrees; the active
/// controller refuses a broker whose id differs with INCONSISTENT_CLUSTER_ID).
pub fn ensure_formatted(config: &ServerConfig) -> Result<String, MetaPropertiesError> {
    let dirs = data_dirs(config);
    let mut agreed: Option<(String, PathBuf)> = None;
    let mut unformatted = Vec::new();
    for dir in dirs {
        let Some(meta) = MetaProperties::read(&dir)? else {
            unformatted.push(dir);
            continue;
        };
        let path = dir.join(FILE_NAME);
        if meta.node_id != config.node_id {
            return Err(MetaPropertiesError::NodeIdMismatch {
                path,
                stored: meta.node_id,
                configured: config.node_id,
            });
        }
        match &agreed {
            Some((expected, expected_in)) if *expected != meta.cluster_id => {
                return Err(MetaPropertiesError::ClusterIdMismatch {
                    path,
                    expected: expected.clone(),
                    expected_in: expected_in.clone(),
                    found: meta.cluster_id,
                });
            }
            Some(_) => {}
            None => agreed = Some((meta.cluster_id, path)),
        }
    }
    let dynamic = config.controller_quorum_voters.is_empty()
        && !config.controller_quorum_bootstrap_servers.is_empty();
    let cluster_id = match agreed {
        Some((id, _)) => id,
        None if dynamic => return Err(MetaPropertiesError::DynamicQuorumUnformatted),
        None if config.controller_quorum_voters.len() > 1
            || !(config.is_broker() && config.is_controller()) =>
        {
            derived_cluster_id(&config.controller_quorum_voters)
        }
        None => random_uuid(),
    };
    for dir in unformatted {
        MetaProperties::new_dir(&cluster_id, config.node_id).write(&dir)?;
    }
    Ok(cluster_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, metadata_dir: Option<&Path>, node_id: i32) -> ServerConfig {
        let mut overrides = vec![
            ("node.id".to_string(), node_id.to_string()),
            ("log.dirs".to_string(), dir.display().to_string()),
        ];
        if let Some(m) = metadata_dir {
            overrides.push(("metadata.log.dir".into(), m.display().to_string()));
        }
        ServerConfig::load(None, &overrides).unwrap().0
    }

    #[test]
    fn cluster_ids_are_checked_as_kafka_uuids() {
        validate_cluster_id(&random_uuid()).unwrap();
        // One in 64 encodings starts with '-': never handed out, as Kafka.
        assert!((0..2000).all(|_| !random_uuid().starts_with('-')));
        validate_cluster_id("MkU3OEVBNTcwNTJENDM2Qk").unwrap();
        for bad in [
            "",
            "abc",
            "MkU3OEVBNTcwNTJENDM2Qk==",
            "MkU3OEVBNTcwNTJENDM2Q!",
        ] {
            assert!(validate_cluster_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_writes_every_dir_or_none() {
        let tmp = tempfile::tempdir().unwrap();
        let (logs, meta) = (tmp.path().join("logs"), tmp.path().join("meta"));
        let c = config(&logs, Some(&meta), 3);
        let id = random_uuid();
        let outcomes = format(&c, &id, false, &InitialControllers::None).unwrap();
        assert_eq!(outcomes.len(), 2);
        let written = MetaProperties::read(&logs).unwrap().unwrap();
        assert_eq!(
            (written.cluster_id.as_str(), written.node_id),
            (id.as_str(), 3)
        );
        assert!(written.directory_id.is_some());
        assert_ne!(
            written.directory_id,
            MetaProperties::read(&meta).unwrap().unwrap().directory_id
        );
        // A second format refuses, naming the directory; --ignore-formatted skips.
        let err = format(&c, &random_uuid(), false, &InitialControllers::None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already formatted"), "{err}");
        let outcomes = format(&c, &random_uuid(), true, &InitialControllers::None).unwrap();
        assert!(outcomes.iter().all(|(_, o)| *o == FormatOutcome::Skipped));
        assert_eq!(ensure_formatted(&c).unwrap(), id);
        assert!(format(&c, "not-a-uuid", true, &InitialControllers::None).is_err());
    }

    #[test]
    fn start_checks_node_and_cluster_ids_and_formats_empty_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let (logs, meta) = (tmp.path().join("logs"), tmp.path().join("meta"));
        // Nothing formatted: both dirs get one new cluster id.
        let id = ensure_formatted(&config(&logs, Some(&meta), 1)).unwrap();
        assert_eq!(MetaProperties::read(&meta).unwrap().unwrap().cluster_id, id);
        // Another node id on the same data refuses, naming both.
        let err = ensure_formatted(&config(&logs, Some(&meta), 2))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Stored node id 1") && err.contains("node.id 2"),
            "{err}"
        );
        // A directory of another cluster refuses.
        MetaProperties {
            version: 1,
            cluster_id: random_uuid(),
            node_id: 1,
            directory_id: None,
        }
        .write(&meta)
        .unwrap();
        let err = ensure_formatted(&config(&logs, Some(&meta), 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Invalid cluster.id"), "{err}");
        // A new empty metadata dir joins the cluster of the formatted log dir.
        let fresh = tmp.path().join("fresh");
        let c = config(&logs, Some(&fresh), 1);
        assert_eq!(ensure_formatted(&c).unwrap(), id);
        assert_eq!(
            MetaProperties::read(&fresh).unwrap().unwrap().cluster_id,
            id
        );
    }

    #[test]
    fn unreadable_files_name_the_problem() {
        let tmp = tempfile::tempdir().unwrap();
        for (text, why) in [
            ("version=0\ncluster.id=x\nnode.id=1\n", "version 0"),
            ("version=1\nnode.id=1\n", "no cluster.id"),
            ("version=1\ncluster.id=x\nnode.id=one\n", "not an integer"),
        ] {
            std::fs::write(tmp.path().join(FILE_NAME), text).unwrap();
            let err = MetaProperties::read(tmp.path()).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
