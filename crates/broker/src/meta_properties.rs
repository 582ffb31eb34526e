//! `meta.properties`: which cluster and node a data directory belongs to, as Kafka's
//! KRaft layout (`version=1`, `cluster.id`, `node.id`, `directory.id`).
//!
//! `moldau storage format` writes it ahead of the first start, as `kafka-storage format`
//! does. A node started on directories nobody formatted formats them itself with a new
//! cluster id, so that a single node needs no setup step; directories that are formatted
//! must agree with each other and with the configured `node.id`, or the node refuses to
//! start with a message naming the directory and both values.
//!
//! Bootstrap records: what `storage format` puts in the metadata log before the cluster's
//! first start (Kafka's `bootstrap.checkpoint`; here the SCRAM credentials of
//! `--add-scram`) is written to [`BOOTSTRAP_RECORDS_FILE`] in the metadata log directory,
//! before `meta.properties` (a crash in between leaves the directory unformatted, and a
//! node that formats it itself removes the file). The active controller commits them,
//! once, as the first records of an empty metadata log (`controller::Controller::write`);
//! the file stays, and is ignored once the log holds any record.

use std::path::{Path, PathBuf};

use moldau_metadata::MetadataRecord;
use moldau_security::scram::{self, ScramCredential, ScramMechanism};
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
    /// A `--add-scram` argument refused, in Kafka's words (its `ScramParser`).
    #[error("{0}")]
    AddScram(String),
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
    format_with_bootstrap(config, cluster_id, ignore_formatted, initial, &[])
}

/// [`format`], leaving `bootstrap` (e.g. the records of [`parse_add_scram`]) in the
/// metadata log directory for the cluster's first active controller to commit. A metadata
/// directory that is already formatted (and skipped) keeps what it has, as Kafka's.
pub fn format_with_bootstrap(
    config: &ServerConfig,
    cluster_id: &str,
    ignore_formatted: bool,
    initial: &InitialControllers,
    bootstrap: &[MetadataRecord],
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
        // The voters and bootstrap records first: a directory without meta.properties is
        // not formatted yet, so a crash in between leaves it to format again.
        if dir == config.metadata_log_dir {
            write_initial_voters(config, &dir, &meta, initial)?;
            write_bootstrap_records(&dir, bootstrap)?;
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
        if dir == config.metadata_log_dir {
            // Left by a `storage format` that did not finish: not this node's to commit.
            remove_bootstrap_records(&dir)?;
        }
        MetaProperties::new_dir(&cluster_id, config.node_id).write(&dir)?;
    }
    Ok(cluster_id)
}

/// Where `storage format` leaves the records the cluster's metadata log starts with
/// (Kafka's `bootstrap.checkpoint`), in the metadata log directory: a JSON array of
/// [`MetadataRecord`]s.
pub const BOOTSTRAP_RECORDS_FILE: &str = "bootstrap-records.json";

/// The bootstrap records `storage format` wrote into `metadata_log_dir` (none without
/// the file).
pub fn read_bootstrap_records(
    metadata_log_dir: &Path,
) -> Result<Vec<MetadataRecord>, MetaPropertiesError> {
    let path = metadata_log_dir.join(BOOTSTRAP_RECORDS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| MetaPropertiesError::Unreadable {
            path,
            why: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(MetaPropertiesError::Io { path, source }),
    }
}

/// Writes the bootstrap records durably (temp file, fsync, rename, fsync of the dir), or
/// removes a file an earlier, unfinished format left when there are none.
fn write_bootstrap_records(
    dir: &Path,
    records: &[MetadataRecord],
) -> Result<(), MetaPropertiesError> {
    if records.is_empty() {
        return remove_bootstrap_records(dir);
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MetaPropertiesError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let bytes = serde_json::to_vec(records).expect("metadata records serialize");
    let tmp = dir.join(format!("{BOOTSTRAP_RECORDS_FILE}.tmp"));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    let path = dir.join(BOOTSTRAP_RECORDS_FILE);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}

fn remove_bootstrap_records(dir: &Path) -> Result<(), MetaPropertiesError> {
    let path = dir.join(BOOTSTRAP_RECORDS_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(MetaPropertiesError::Io { path, source }),
    }
}

/// Kafka's default SCRAM iteration count for `--add-scram` (and its admin client).
pub const DEFAULT_SCRAM_ITERATIONS: i32 = 4096;

/// Parses `storage format --add-scram` arguments as Kafka's `ScramParser` does, into one
/// `UserScramCredential` record each: `SCRAM-SHA-256=[name=alice,password=alice-secret]`,
/// with optional `iterations=` (default 4096) and `salt=` (base64; default a random one),
/// or `saltedpassword=` (base64, with `salt=`) instead of `password=`. Values may be quoted
/// (`salt="N3E="`). Refusals carry Kafka's messages.
pub fn parse_add_scram(arguments: &[String]) -> Result<Vec<MetadataRecord>, MetaPropertiesError> {
    arguments
        .iter()
        .map(|argument| parse_add_scram_argument(argument).map_err(MetaPropertiesError::AddScram))
        .collect()
}

fn parse_add_scram_argument(argument: &str) -> Result<MetadataRecord, String> {
    let input = argument.trim();
    let (mechanism_name, config) = input
        .split_once('=')
        .ok_or_else(|| format!("Failed to find equals sign in SCRAM argument '{input}'"))?;
    let mechanism = ScramMechanism::from_mechanism_name(mechanism_name)
        .ok_or_else(|| format!("The add-scram mechanism {mechanism_name} is not supported."))?;
    let config = config
        .strip_prefix('[')
        .ok_or("Expected configuration string to start with [")?
        .strip_suffix(']')
        .ok_or("Expected configuration string to end with ]")?;
    // Sorted by key, the last of a repeated key winning (Kafka's TreeMap).
    let mut components = std::collections::BTreeMap::new();
    for component in java_split_commas(config) {
        let (key, value) = component
            .split_once('=')
            .ok_or_else(|| format!("No equals sign found in SCRAM component: {component}"))?;
        let value = if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            &value[1..value.len() - 1]
        } else {
            value
        };
        components.insert(key, value);
    }
    let name = components
        .remove("name")
        .ok_or("You must supply 'name' to add-scram")?;
    let salt = components
        .remove("salt")
        .map(|text| java_base64(text).ok_or_else(|| format!("Failed to decode given salt: {text}")))
        .transpose()?;
    let iterations = components
        .remove("iterations")
        .map(|text| {
            text.parse::<i32>()
                .map_err(|_| format!("Failed to parse iterations count: {text}"))
        })
        .transpose()?;
    let password = components.remove("password");
    let salted_password = match (password, components.remove("saltedpassword")) {
        // Kafka ignores `saltedpassword` when `password` is given.
        (Some(_), _) => None,
        (None, None) => {
            return Err("You must supply one of 'password' or 'saltedpassword' to add-scram".into())
        }
        (None, Some(_)) if salt.is_none() => {
            return Err("You must supply 'salt' with 'saltedpassword' to add-scram".into())
        }
        (None, Some(text)) => Some(
            java_base64(text)
                .ok_or_else(|| format!("Failed to decode given saltedPassword: {text}"))?,
        ),
    };
    if !components.is_empty() {
        let unknown: Vec<&str> = components.keys().copied().collect();
        return Err(format!(
            "Unknown SCRAM configurations: {}",
            unknown.join(", ")
        ));
    }
    let salt = salt.unwrap_or_else(scram::random_salt);
    let iterations = iterations.unwrap_or(DEFAULT_SCRAM_ITERATIONS);
    // Kafka names the mechanism by its enum constant here (SCRAM_SHA_256).
    let constant = mechanism.mechanism_name().replace('-', "_");
    if iterations < mechanism.min_iterations() {
        return Err(format!(
            "The 'iterations' value must be >= {} for add-scram using {constant}",
            mechanism.min_iterations()
        ));
    }
    if iterations > mechanism.max_iterations() {
        return Err(format!(
            "The 'iterations' value must be <= {} for add-scram using {constant}",
            mechanism.max_iterations()
        ));
    }
    let salted_password = match (salted_password, password) {
        (Some(salted), _) => salted,
        (None, password) => scram::salted_password(
            mechanism,
            password.expect("a password when there is no salted password"),
            &salt,
            iterations,
        ),
    };
    let credential =
        ScramCredential::from_salted_password(mechanism, &salted_password, &salt, iterations);
    Ok(MetadataRecord::UserScramCredential {
        name: name.to_string(),
        mechanism: mechanism.type_code(),
        salt: credential.salt.into(),
        stored_key: credential.stored_key.into(),
        server_key: credential.server_key.into(),
        iterations: credential.iterations,
    })
}

/// Java's `String.split(",")`: trailing empty strings are dropped (all of them for a
/// string of commas only), but the empty string splits into itself.
fn java_split_commas(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return vec![""];
    }
    let mut parts: Vec<&str> = text.split(',').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// Java's basic `Base64.getDecoder()`: the standard alphabet, padding optional but whole
/// when present, unused low bits of the last character ignored.
fn java_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{alphabet, Engine};
    const JAVA: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    if text.contains('=') && !text.len().is_multiple_of(4) {
        return None;
    }
    JAVA.decode(text).ok()
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

    fn add_scram(argument: &str) -> Result<MetadataRecord, String> {
        parse_add_scram(&[argument.to_string()])
            .map(|mut records| records.remove(0))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn add_scram_refusals_are_kafkas() {
        for (argument, message) in [
            ("SCRAM-SHA-512", "Failed to find equals sign in SCRAM argument 'SCRAM-SHA-512'"),
            (
                "SCRAM-SHA-UNSUPPORTED=[name=a,password=b]",
                "The add-scram mechanism SCRAM-SHA-UNSUPPORTED is not supported.",
            ),
            ("scram-sha-256=[name=a,password=b]", "The add-scram mechanism scram-sha-256 is not supported."),
            ("SCRAM-SHA-256=name=a,password=b", "Expected configuration string to start with ["),
            ("SCRAM-SHA-256=[name=a,password=b", "Expected configuration string to end with ]"),
            ("SCRAM-SHA-256=[name]", "No equals sign found in SCRAM component: name"),
            ("SCRAM-SHA-256=[]", "No equals sign found in SCRAM component: "),
            ("SCRAM-SHA-256=[name=a,,password=b]", "No equals sign found in SCRAM component: "),
            ("SCRAM-SHA-256=[password=mypass]", "You must supply 'name' to add-scram"),
            ("SCRAM-SHA-256=[,,]", "You must supply 'name' to add-scram"),
            (
                "SCRAM-SHA-256=[name=bar]",
                "You must supply one of 'password' or 'saltedpassword' to add-scram",
            ),
            (
                "SCRAM-SHA-256=[name=alice,saltedpassword=\"mT0yyUUxnlJaC99HXgRTSYlbuqa4FSGtJCJfTMvjYCE=\"]",
                "You must supply 'salt' with 'saltedpassword' to add-scram",
            ),
            (
                "SCRAM-SHA-256=[name=bob,password=mypass,unknown=something,unknown2=somethingelse]",
                "Unknown SCRAM configurations: unknown, unknown2",
            ),
            ("SCRAM-SHA-256=[name=a,password=b,salt=%%]", "Failed to decode given salt: %%"),
            ("SCRAM-SHA-256=[name=a,password=b,salt=YQ=]", "Failed to decode given salt: YQ="),
            (
                "SCRAM-SHA-256=[name=a,salt=YWI=,saltedpassword=!]",
                "Failed to decode given saltedPassword: !",
            ),
            (
                "SCRAM-SHA-256=[name=a,password=b,iterations=lots]",
                "Failed to parse iterations count: lots",
            ),
            (
                "SCRAM-SHA-256=[name=a,password=b,iterations=4095]",
                "The 'iterations' value must be >= 4096 for add-scram using SCRAM_SHA_256",
            ),
            (
                "SCRAM-SHA-512=[name=a,password=b,iterations=16385]",
                "The 'iterations' value must be <= 16384 for add-scram using SCRAM_SHA_512",
            ),
        ] {
            assert_eq!(add_scram(argument).unwrap_err(), message, "{argument}");
        }
    }

    #[test]
    fn add_scram_makes_the_credentials_kafka_does() {
        // Kafka's ScramParserTest values: salt "1lv4pdnw4fwq7notcxm0yy1k7q".
        let salt = b"1lv4pdnw4fwq7notcxm0yy1k7q".to_vec();
        let salted = [
            -103i8, 61, 50, -55, 69, 49, -98, 82, 90, 11, -33, 71, 94, 4, 83, 73, -119, 91, -70,
            -90, -72, 21, 33, -83, 36, 34, 95, 76, -53, -29, 96, 33,
        ]
        .map(|b| b as u8);
        let expected =
            ScramCredential::from_salted_password(ScramMechanism::Sha512, &salted, &salt, 4096);
        let record = add_scram(
            " SCRAM-SHA-512=[name=alice,salt=\"MWx2NHBkbnc0ZndxN25vdGN4bTB5eTFrN3E=\",\
             saltedpassword=\"mT0yyUUxnlJaC99HXgRTSYlbuqa4FSGtJCJfTMvjYCE=\"] ",
        )
        .unwrap();
        assert_eq!(
            record,
            MetadataRecord::UserScramCredential {
                name: "alice".into(),
                mechanism: 2,
                salt: salt.clone().into(),
                stored_key: expected.stored_key.into(),
                server_key: expected.server_key.into(),
                iterations: 4096,
            }
        );
        // A password is salted with the given salt and iterations (a saltedpassword
        // beside it is ignored, as Kafka does).
        let record = add_scram(
            "SCRAM-SHA-256=[name=bob,password=my pass,iterations=8192,\
             salt=MWx2NHBkbnc0ZndxN25vdGN4bTB5eTFrN3E,saltedpassword=AAAA]",
        )
        .unwrap();
        let expected =
            ScramCredential::from_password(ScramMechanism::Sha256, "my pass", &salt, 8192);
        let MetadataRecord::UserScramCredential {
            name,
            mechanism,
            salt: record_salt,
            stored_key,
            iterations,
            ..
        } = record
        else {
            panic!("{record:?}");
        };
        assert_eq!((name.as_str(), mechanism, iterations), ("bob", 1, 8192));
        assert_eq!(record_salt.as_slice(), &salt[..]);
        assert_eq!(stored_key.as_slice(), &expected.stored_key[..]);
        // Defaults: 4096 iterations and a random salt of Kafka's form.
        let records = parse_add_scram(&[
            "SCRAM-SHA-256=[name=alice,password=alice-secret]".into(),
            "SCRAM-SHA-256=[name=alice,password=alice-secret]".into(),
        ])
        .unwrap();
        let salts: Vec<Vec<u8>> = records
            .iter()
            .map(|r| match r {
                MetadataRecord::UserScramCredential {
                    salt, iterations, ..
                } => {
                    assert_eq!(*iterations, 4096);
                    salt.to_vec()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_ne!(salts[0], salts[1]);
        assert!(salts[0].iter().all(u8::is_ascii_alphanumeric));
    }

    #[test]
    fn format_leaves_bootstrap_records_in_the_metadata_dir_only() {
        let tmp = tempfile::tempdir().unwrap();
        let (logs, meta) = (tmp.path().join("logs"), tmp.path().join("meta"));
        let c = config(&logs, Some(&meta), 1);
        let records =
            parse_add_scram(&["SCRAM-SHA-256=[name=alice,password=alice-secret]".into()]).unwrap();
        format_with_bootstrap(
            &c,
            &random_uuid(),
            false,
            &InitialControllers::None,
            &records,
        )
        .unwrap();
        assert_eq!(read_bootstrap_records(&meta).unwrap(), records);
        assert!(read_bootstrap_records(&logs).unwrap().is_empty());
        assert!(!meta.join(format!("{BOOTSTRAP_RECORDS_FILE}.tmp")).exists());
        // A formatted directory that is skipped keeps what it has.
        let other =
            parse_add_scram(&["SCRAM-SHA-512=[name=bob,password=bob-secret]".into()]).unwrap();
        format_with_bootstrap(&c, &random_uuid(), true, &InitialControllers::None, &other).unwrap();
        assert_eq!(read_bootstrap_records(&meta).unwrap(), records);
        // The file is in JSON, one record per element.
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(meta.join(BOOTSTRAP_RECORDS_FILE)).unwrap())
                .unwrap();
        assert_eq!(json[0]["type"], "UserScramCredential");
        assert_eq!(json[0]["name"], "alice");
    }

    #[test]
    fn bootstrap_records_of_an_unfinished_format_are_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let meta = tmp.path().join("meta");
        let c = config(&meta, None, 1);
        let records =
            parse_add_scram(&["SCRAM-SHA-256=[name=alice,password=alice-secret]".into()]).unwrap();
        // A format that stopped before meta.properties: the file, but no meta.properties.
        write_bootstrap_records(&meta, &records).unwrap();
        // Formatting again without --add-scram removes it...
        format(&c, &random_uuid(), false, &InitialControllers::None).unwrap();
        assert!(read_bootstrap_records(&meta).unwrap().is_empty());
        // ...and so does a node that formats the directory itself.
        let fresh = tmp.path().join("fresh");
        write_bootstrap_records(&fresh, &records).unwrap();
        ensure_formatted(&config(&fresh, None, 1)).unwrap();
        assert!(!fresh.join(BOOTSTRAP_RECORDS_FILE).exists());
        // A garbled file is named when read.
        std::fs::write(meta.join(BOOTSTRAP_RECORDS_FILE), b"[{").unwrap();
        let err = read_bootstrap_records(&meta).unwrap_err().to_string();
        assert!(err.contains(BOOTSTRAP_RECORDS_FILE), "{err}");
    }
}
