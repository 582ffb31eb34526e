//! A connector's transformation chain: Kafka's `ConnectorConfig.transformationStages` and
//! `TransformationChain`.

use std::collections::BTreeSet;

use crate::record::ConnectRecord;

use super::util::{parse_list, Config};
use super::{
    predicate_for_class, transformation_for_class, Predicate, Props, TransformError, Transformation,
};

/// One `transforms` alias: its transformation, and the predicate (maybe negated) that
/// decides whether it applies.
#[derive(Debug)]
pub struct TransformationStage {
    pub alias: String,
    transformation: Box<dyn Transformation>,
    predicate: Option<(Box<dyn Predicate>, bool)>,
}

impl TransformationStage {
    fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        if let Some((predicate, negate)) = &self.predicate {
            if predicate.test(&record)? == *negate {
                return Ok(Some(record));
            }
        }
        self.transformation.apply(record)
    }
}

/// The transformations of a connector, in `transforms` order.
#[derive(Debug, Default)]
pub struct TransformationChain {
    stages: Vec<TransformationStage>,
}

/// The options under `prefix`, prefix stripped (Kafka's `originalsWithPrefix`).
fn with_prefix(config: &Props, prefix: &str) -> Props {
    config
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

fn aliases(config: &Props, key: &str) -> Result<Vec<String>, TransformError> {
    let list = config.get(key).map(|v| parse_list(v)).unwrap_or_default();
    let mut seen = BTreeSet::new();
    for alias in &list {
        if !seen.insert(alias) {
            return Err(TransformError::invalid(
                key,
                list.join(","),
                "Duplicate alias provided.",
            ));
        }
    }
    Ok(list)
}

fn class_error(key: &str, class: &str, e: TransformError) -> TransformError {
    match e {
        TransformError::Config(m) if m.starts_with("Class ") => {
            TransformError::invalid(key, class, &m)
        }
        e => e,
    }
}

impl TransformationChain {
    /// Reads a connector's configuration: `transforms=a,b`, `transforms.a.type=<class>`,
    /// its options `transforms.a.*`, `transforms.a.predicate=p`, `transforms.a.negate`, and
    /// `predicates=p`, `predicates.p.type=<class>`, `predicates.p.*`.
    pub fn from_connector_config(config: &Props) -> Result<TransformationChain, TransformError> {
        let predicate_aliases = aliases(config, "predicates")?;
        let mut stages = Vec::new();
        for alias in aliases(config, "transforms")? {
            let prefix = format!("transforms.{alias}.");
            let type_key = format!("{prefix}type");
            let negate_key = format!("{prefix}negate");
            let predicate_key = format!("{prefix}predicate");
            if config.contains_key(&negate_key) && !config.contains_key(&predicate_key) {
                return Err(TransformError::Config(format!(
                    "Config '{negate_key}' was provided but there is no config \
                     '{predicate_key}' defining a predicate to be negated."
                )));
            }
            let class = config
                .get(&type_key)
                .map(|s| s.trim())
                .ok_or_else(|| TransformError::missing(&type_key))?;
            let mut props = with_prefix(config, &prefix);
            let predicate_alias = props.remove("predicate");
            let negate = Config(config).boolean(&negate_key, false)?;
            props.remove("negate");
            let transformation = transformation_for_class(class, &props)
                .map_err(|e| class_error(&type_key, class, e))?;
            let predicate = match predicate_alias {
                None => None,
                Some(p) => {
                    let p = p.trim().to_string();
                    let p_type_key = format!("predicates.{p}.type");
                    if !predicate_aliases.contains(&p) {
                        return Err(TransformError::Config(format!(
                            "Unknown configuration '{p_type_key}'"
                        )));
                    }
                    let p_class = config
                        .get(&p_type_key)
                        .map(|s| s.trim())
                        .ok_or_else(|| TransformError::missing(&p_type_key))?;
                    let p_props = with_prefix(config, &format!("predicates.{p}."));
                    let predicate = predicate_for_class(p_class, &p_props)
                        .map_err(|e| class_error(&p_type_key, p_class, e))?;
                    Some((predicate, negate))
                }
            };
            stages.push(TransformationStage {
                alias,
                transformation,
                predicate,
            });
        }
        Ok(TransformationChain { stages })
    }

    /// A chain of transformations without predicates.
    pub fn of(transformations: Vec<(String, Box<dyn Transformation>)>) -> TransformationChain {
        TransformationChain {
            stages: transformations
                .into_iter()
                .map(|(alias, transformation)| TransformationStage {
                    alias,
                    transformation,
                    predicate: None,
                })
                .collect(),
        }
    }

    pub fn stages(&self) -> &[TransformationStage] {
        &self.stages
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Applies the stages in order; `None` once a stage drops the record.
    pub fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        let mut current = record;
        for stage in &self.stages {
            match stage.apply(current)? {
                Some(r) => current = r,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }
}
