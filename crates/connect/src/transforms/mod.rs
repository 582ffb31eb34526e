//! Kafka's single message transforms (SMTs) and predicates, with Kafka's class names and
//! options, behaving as Kafka 4.1's (`org.apache.kafka.connect.transforms`), plus Debezium's
//! `ExtractNewRecordState` and the widely used `InsertUuid`.
//!
//! * [`Transformation`]: a transform built from its configuration (the
//!   `transforms.<alias>.` keys with the prefix stripped) by [`transformation_for_class`].
//! * [`Predicate`]: a predicate built by [`predicate_for_class`].
//! * [`TransformationChain`]: a connector's `transforms` / `predicates` configuration, as
//!   Kafka's `ConnectorConfig` and `TransformationChain` read and apply it.
//!
//! Errors carry Kafka's messages: a bad option is a [`TransformError::Config`] naming the key
//! (Kafka's `ConfigException`), a record a transform cannot handle a
//! [`TransformError::Data`] (Kafka's `DataException`). No record makes a transform panic.

mod cast;
mod chain;
mod debezium;
mod fields;
mod flatten;
mod headers;
mod predicates;
mod routing;
mod timefmt;
mod timestamp;
mod util;

use std::collections::BTreeMap;

use crate::data::DataError;
use crate::record::ConnectRecord;

pub use chain::TransformationChain;

/// A configuration: option name to value.
pub type Props = BTreeMap<String, String>;

/// What goes wrong configuring or applying a transform.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// A bad configuration (Kafka's `ConfigException`), with Kafka's message.
    #[error("{0}")]
    Config(String),
    /// A record the transform cannot handle (Kafka's `DataException`).
    #[error("{0}")]
    Data(String),
}

impl From<DataError> for TransformError {
    fn from(e: DataError) -> Self {
        TransformError::Data(e.0)
    }
}

impl TransformError {
    /// Kafka's `new ConfigException(name, value, message)`.
    pub fn invalid(key: &str, value: impl std::fmt::Display, message: &str) -> TransformError {
        TransformError::Config(format!(
            "Invalid value {value} for configuration {key}: {message}"
        ))
    }

    /// Kafka's message for a required option that is missing.
    pub fn missing(key: &str) -> TransformError {
        TransformError::Config(format!(
            "Missing required configuration \"{key}\" which has no default value."
        ))
    }

    pub(crate) fn data(message: impl Into<String>) -> TransformError {
        TransformError::Data(message.into())
    }
}

/// A single message transform (Kafka's `Transformation`).
pub trait Transformation: Send + Sync + std::fmt::Debug {
    /// The transformed record, or `None` when the record is dropped.
    fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError>;
}

/// A predicate on records (Kafka's `Predicate`).
pub trait Predicate: Send + Sync + std::fmt::Debug {
    fn test(&self, record: &ConnectRecord) -> Result<bool, TransformError>;
}

const KAFKA: &str = "org.apache.kafka.connect.transforms.";

type TransformCtor = fn(&Props) -> Result<Box<dyn Transformation>, TransformError>;
type PredicateCtor = fn(&Props) -> Result<Box<dyn Predicate>, TransformError>;

fn boxed<T: Transformation + 'static>(
    r: Result<T, TransformError>,
) -> Result<Box<dyn Transformation>, TransformError> {
    r.map(|t| Box::new(t) as Box<dyn Transformation>)
}

fn transformations() -> Vec<(String, TransformCtor)> {
    use util::Side::{Key, Value};
    let k = |name: &str| format!("{KAFKA}{name}");
    vec![
        (k("ExtractField$Key"), |p| {
            boxed(fields::ExtractField::new(Key, p))
        }),
        (k("ExtractField$Value"), |p| {
            boxed(fields::ExtractField::new(Value, p))
        }),
        (k("ValueToKey"), |p| boxed(fields::ValueToKey::new(p))),
        (k("InsertField$Key"), |p| {
            boxed(fields::InsertField::new(Key, p))
        }),
        (k("InsertField$Value"), |p| {
            boxed(fields::InsertField::new(Value, p))
        }),
        (k("ReplaceField$Key"), |p| {
            boxed(fields::ReplaceField::new(Key, p))
        }),
        (k("ReplaceField$Value"), |p| {
            boxed(fields::ReplaceField::new(Value, p))
        }),
        (k("MaskField$Key"), |p| {
            boxed(fields::MaskField::new(Key, p))
        }),
        (k("MaskField$Value"), |p| {
            boxed(fields::MaskField::new(Value, p))
        }),
        (k("HoistField$Key"), |p| {
            boxed(fields::HoistField::new(Key, p))
        }),
        (k("HoistField$Value"), |p| {
            boxed(fields::HoistField::new(Value, p))
        }),
        (k("SetSchemaMetadata$Key"), |p| {
            boxed(fields::SetSchemaMetadata::new(Key, p))
        }),
        (k("SetSchemaMetadata$Value"), |p| {
            boxed(fields::SetSchemaMetadata::new(Value, p))
        }),
        (k("Flatten$Key"), |p| boxed(flatten::Flatten::new(Key, p))),
        (k("Flatten$Value"), |p| {
            boxed(flatten::Flatten::new(Value, p))
        }),
        (k("Cast$Key"), |p| boxed(cast::Cast::new(Key, p))),
        (k("Cast$Value"), |p| boxed(cast::Cast::new(Value, p))),
        (k("TimestampConverter$Key"), |p| {
            boxed(timestamp::TimestampConverter::new(Key, p))
        }),
        (k("TimestampConverter$Value"), |p| {
            boxed(timestamp::TimestampConverter::new(Value, p))
        }),
        (k("RegexRouter"), |p| boxed(routing::RegexRouter::new(p))),
        (k("TimestampRouter"), |p| {
            boxed(routing::TimestampRouter::new(p))
        }),
        (k("Filter"), |p| boxed(routing::Filter::new(p))),
        (k("InsertHeader"), |p| boxed(headers::InsertHeader::new(p))),
        (k("DropHeaders"), |p| boxed(headers::DropHeaders::new(p))),
        (k("HeaderFrom$Key"), |p| {
            boxed(headers::HeaderFrom::new(Key, p))
        }),
        (k("HeaderFrom$Value"), |p| {
            boxed(headers::HeaderFrom::new(Value, p))
        }),
        (
            "io.debezium.transforms.ExtractNewRecordState".to_string(),
            |p| boxed(debezium::ExtractNewRecordState::new(p)),
        ),
        (
            "com.github.cjmatta.kafka.connect.smt.InsertUuid$Key".to_string(),
            |p| boxed(fields::InsertUuid::new(Key, p)),
        ),
        (
            "com.github.cjmatta.kafka.connect.smt.InsertUuid$Value".to_string(),
            |p| boxed(fields::InsertUuid::new(Value, p)),
        ),
    ]
}

fn predicates() -> Vec<(String, PredicateCtor)> {
    let k = |name: &str| format!("{KAFKA}predicates.{name}");
    vec![
        (k("TopicNameMatches"), |p| {
            predicates::TopicNameMatches::new(p).map(|t| Box::new(t) as Box<dyn Predicate>)
        }),
        (k("HasHeaderKey"), |p| {
            predicates::HasHeaderKey::new(p).map(|t| Box::new(t) as Box<dyn Predicate>)
        }),
        (k("RecordIsTombstone"), |_| {
            Ok(Box::new(predicates::RecordIsTombstone) as Box<dyn Predicate>)
        }),
    ]
}

/// The class names [`transformation_for_class`] knows, in registry order.
pub fn known_transformations() -> Vec<String> {
    transformations().into_iter().map(|(n, _)| n).collect()
}

/// The class names [`predicate_for_class`] knows.
pub fn known_predicates() -> Vec<String> {
    predicates().into_iter().map(|(n, _)| n).collect()
}

fn unknown_class(class_name: &str, known: Vec<String>) -> TransformError {
    TransformError::Config(format!(
        "Class {class_name} could not be found. Known classes: {}",
        known.join(", ")
    ))
}

/// Builds the transformation of Kafka class `class_name` from its options (the
/// `transforms.<alias>.` keys, prefix stripped). An unknown class is an error naming it and
/// listing the known ones.
pub fn transformation_for_class(
    class_name: &str,
    props: &Props,
) -> Result<Box<dyn Transformation>, TransformError> {
    let class_name = class_name.trim();
    match transformations().into_iter().find(|(n, _)| n == class_name) {
        Some((_, ctor)) => ctor(props),
        None => Err(unknown_class(class_name, known_transformations())),
    }
}

/// Builds the predicate of Kafka class `class_name` from its options.
pub fn predicate_for_class(
    class_name: &str,
    props: &Props,
) -> Result<Box<dyn Predicate>, TransformError> {
    let class_name = class_name.trim();
    match predicates().into_iter().find(|(n, _)| n == class_name) {
        Some((_, ctor)) => ctor(props),
        None => Err(unknown_class(class_name, known_predicates())),
    }
}

#[cfg(test)]
mod tests;
