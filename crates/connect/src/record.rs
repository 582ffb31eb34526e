//! Kafka's `ConnectRecord` (`SourceRecord` / `SinkRecord`): a record on its way between a
//! connector and Kafka, with schemas, as converters produce and transforms change it.

use crate::data::{SchemaRef, Value};

/// A record header: a key and a value with its schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub key: String,
    pub schema: Option<SchemaRef>,
    pub value: Value,
}

/// A Connect record.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectRecord {
    pub topic: String,
    /// `None`: the producer's partitioner chooses.
    pub partition: Option<i32>,
    pub key_schema: Option<SchemaRef>,
    pub key: Value,
    pub value_schema: Option<SchemaRef>,
    pub value: Value,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    pub headers: Vec<Header>,
    /// A sink record's Kafka offset (`None` for a source record).
    pub kafka_offset: Option<i64>,
}

impl ConnectRecord {
    /// A record with a value only.
    pub fn new(
        topic: impl Into<String>,
        value_schema: Option<SchemaRef>,
        value: Value,
    ) -> ConnectRecord {
        ConnectRecord {
            topic: topic.into(),
            partition: None,
            key_schema: None,
            key: Value::Null,
            value_schema,
            value,
            timestamp: None,
            headers: Vec::new(),
            kafka_offset: None,
        }
    }

    /// Kafka's `newRecord`: the same record with another topic, key and value (headers,
    /// partition, timestamp and offset carried over).
    pub fn new_record(
        &self,
        topic: impl Into<String>,
        key_schema: Option<SchemaRef>,
        key: Value,
        value_schema: Option<SchemaRef>,
        value: Value,
    ) -> ConnectRecord {
        ConnectRecord {
            topic: topic.into(),
            key_schema,
            key,
            value_schema,
            value,
            ..self.clone()
        }
    }

    /// The last header with this key.
    pub fn last_header(&self, key: &str) -> Option<&Header> {
        self.headers.iter().rev().find(|h| h.key == key)
    }
}
