//! Kafka's predicates: `TopicNameMatches`, `HasHeaderKey`, `RecordIsTombstone`.

use regex::Regex;

use crate::record::ConnectRecord;

use super::util::Config;
use super::{Predicate, Props, TransformError};

/// Kafka's `TopicNameMatches`: the topic matches `pattern` entirely.
#[derive(Debug)]
pub(crate) struct TopicNameMatches(Regex);

impl TopicNameMatches {
    pub(crate) fn new(props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let pattern = c.non_empty("pattern")?;
        Regex::new(&format!("^(?:{pattern})$"))
            .map(TopicNameMatches)
            .map_err(|e| {
                TransformError::invalid(
                    "pattern",
                    pattern,
                    &format!("entry must be a Java-compatible regular expression: {e}"),
                )
            })
    }
}

impl Predicate for TopicNameMatches {
    fn test(&self, record: &ConnectRecord) -> Result<bool, TransformError> {
        Ok(self.0.is_match(&record.topic))
    }
}

/// Kafka's `HasHeaderKey`: the record has a header `name`.
#[derive(Debug)]
pub(crate) struct HasHeaderKey(String);

impl HasHeaderKey {
    pub(crate) fn new(props: &Props) -> Result<Self, TransformError> {
        Ok(HasHeaderKey(Config(props).non_empty("name")?.to_string()))
    }
}

impl Predicate for HasHeaderKey {
    fn test(&self, record: &ConnectRecord) -> Result<bool, TransformError> {
        Ok(record.headers.iter().any(|h| h.key == self.0))
    }
}

/// Kafka's `RecordIsTombstone`: the value is null.
#[derive(Debug)]
pub(crate) struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &ConnectRecord) -> Result<bool, TransformError> {
        Ok(record.value.is_null())
    }
}
