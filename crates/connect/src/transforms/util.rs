//! What the transforms share: which side of the record they work on, reading options as
//! Kafka's `ConfigDef` does, and Kafka's `Requirements` / `SchemaUtil`.

use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Value};
use crate::record::ConnectRecord;

use super::{Props, TransformError};

/// The `$Key` or `$Value` variant of a transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Key,
    Value,
}

impl Side {
    pub(crate) fn value(self, record: &ConnectRecord) -> &Value {
        match self {
            Side::Key => &record.key,
            Side::Value => &record.value,
        }
    }

    /// Takes the side's schema and value out of the record.
    pub(crate) fn take(self, record: &mut ConnectRecord) -> (Option<SchemaRef>, Value) {
        match self {
            Side::Key => (
                record.key_schema.take(),
                std::mem::replace(&mut record.key, Value::Null),
            ),
            Side::Value => (
                record.value_schema.take(),
                std::mem::replace(&mut record.value, Value::Null),
            ),
        }
    }

    /// Kafka's `newRecord`: the record with this side replaced.
    pub(crate) fn with(
        self,
        mut record: ConnectRecord,
        schema: Option<SchemaRef>,
        value: Value,
    ) -> ConnectRecord {
        match self {
            Side::Key => {
                record.key_schema = schema;
                record.key = value;
            }
            Side::Value => {
                record.value_schema = schema;
                record.value = value;
            }
        }
        record
    }
}

/// Options read as Kafka's `ConfigDef` parses them.
pub(crate) struct Config<'a>(pub(crate) &'a Props);

impl<'a> Config<'a> {
    pub(crate) fn string(&self, key: &str) -> Option<&'a str> {
        self.0.get(key).map(|s| s.as_str())
    }

    /// A required option (Kafka trims STRING values).
    pub(crate) fn required(&self, key: &str) -> Result<&'a str, TransformError> {
        self.string(key)
            .map(str::trim)
            .ok_or_else(|| TransformError::missing(key))
    }

    /// A required option that must not be empty (Kafka's `NonEmptyString`).
    pub(crate) fn non_empty(&self, key: &str) -> Result<&'a str, TransformError> {
        let v = self.required(key)?;
        if v.is_empty() {
            return Err(TransformError::invalid(key, v, "String must be non-empty"));
        }
        Ok(v)
    }

    /// A LIST option: comma separated, trimmed; empty is the empty list.
    pub(crate) fn list(&self, key: &str) -> Option<Vec<String>> {
        self.string(key).map(parse_list)
    }

    pub(crate) fn required_list(&self, key: &str) -> Result<Vec<String>, TransformError> {
        self.list(key).ok_or_else(|| TransformError::missing(key))
    }

    pub(crate) fn boolean(&self, key: &str, default: bool) -> Result<bool, TransformError> {
        match self.string(key).map(str::trim) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(TransformError::invalid(
                key,
                v,
                "Expected value to be either true or false",
            )),
        }
    }

    pub(crate) fn int(&self, key: &str) -> Result<Option<i32>, TransformError> {
        match self.string(key).map(str::trim) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| TransformError::invalid(key, v, "Not a number of type INT")),
        }
    }

    /// A STRING option restricted to some values (Kafka's `ValidString`, case-sensitive).
    pub(crate) fn one_of(
        &self,
        key: &str,
        default: &'a str,
        allowed: &[&str],
    ) -> Result<&'a str, TransformError> {
        let v = self.string(key).map(str::trim).unwrap_or(default);
        if allowed.contains(&v) {
            Ok(v)
        } else {
            Err(TransformError::invalid(
                key,
                v,
                &format!("String must be one of: {}", allowed.join(", ")),
            ))
        }
    }
}

pub(crate) fn parse_list(s: &str) -> Vec<String> {
    let s = s.trim();
    if s.is_empty() {
        return Vec::new();
    }
    s.split(',').map(|p| p.trim().to_string()).collect()
}

/// Kafka's `Requirements.requireMap`: a schemaless value must be a map.
pub(crate) fn require_map<'v>(
    value: &'v Value,
    purpose: &str,
) -> Result<&'v [(Value, Value)], TransformError> {
    match value {
        Value::Map(entries) => Ok(entries),
        other => Err(TransformError::data(format!(
            "Only Map objects supported in absence of schema for [{purpose}], found: {}",
            other.kind()
        ))),
    }
}

/// Kafka's `Requirements.requireStruct`.
pub(crate) fn require_struct<'v>(
    value: &'v Value,
    purpose: &str,
) -> Result<&'v Struct, TransformError> {
    match value {
        Value::Struct(s) => Ok(s),
        other => Err(TransformError::data(format!(
            "Only Struct objects supported for [{purpose}], found: {}",
            other.kind()
        ))),
    }
}

/// A schemaless map's entry by string key.
pub(crate) fn map_get<'v>(entries: &'v [(Value, Value)], name: &str) -> Option<&'v Value> {
    entries
        .iter()
        .find(|(k, _)| matches!(k, Value::String(k) if k == name))
        .map(|(_, v)| v)
}

/// Puts an entry into a schemaless map, replacing one with the same key.
pub(crate) fn map_put(entries: &mut Vec<(Value, Value)>, name: &str, value: Value) {
    match entries
        .iter_mut()
        .find(|(k, _)| matches!(k, Value::String(k) if k == name))
    {
        Some(entry) => entry.1 = value,
        None => entries.push((Value::String(name.to_string()), value)),
    }
}

/// Kafka's `SchemaUtil.copySchemaBasics`: name, version, doc, parameters and optionality
/// (and the default for non-structs) onto a new builder of `schema`'s type.
pub(crate) fn copy_schema_basics(schema: &Schema) -> SchemaBuilder {
    let mut builder = SchemaBuilder::new(schema.schema_type);
    if let Some(name) = &schema.name {
        builder = builder.name(name.clone());
    }
    if let Some(version) = schema.version {
        builder = builder.version(version);
    }
    if let Some(doc) = &schema.doc {
        builder = builder.doc(doc.clone());
    }
    for (k, v) in &schema.parameters {
        builder = builder.parameter(k.clone(), v.clone());
    }
    if schema.optional {
        builder = builder.optional();
    }
    builder
}

/// A field's value as the transform reads it: with the default when
/// `replace.null.with.default` is on.
pub(crate) fn field_value(s: &Struct, name: &str, replace_null_with_default: bool) -> Value {
    let v = if replace_null_with_default {
        s.get(name)
    } else {
        s.get_without_default(name)
    };
    v.cloned().unwrap_or(Value::Null)
}

/// Kafka's two-argument `SchemaUtil.copySchemaBasics(source, builder)`: name, version, doc
/// and parameters only (not optionality nor the default).
pub(crate) fn copy_basics_onto(source: &Schema, mut builder: SchemaBuilder) -> SchemaBuilder {
    if let Some(name) = &source.name {
        builder = builder.name(name.clone());
    }
    if let Some(version) = source.version {
        builder = builder.version(version);
    }
    if let Some(doc) = &source.doc {
        builder = builder.doc(doc.clone());
    }
    for (k, v) in &source.parameters {
        builder = builder.parameter(k.clone(), v.clone());
    }
    builder
}

/// Kafka's one-argument `SchemaUtil.copySchemaBasics(source)`: a builder of the same type
/// (an array keeps its element schema, a map its key and value schemas) with the basics.
pub(crate) fn copy_basics(source: &Schema) -> SchemaBuilder {
    let builder = match (source.schema_type, &source.key_schema, &source.value_schema) {
        (crate::data::Type::Array, _, Some(v)) => SchemaBuilder::array(v.clone()),
        (crate::data::Type::Map, Some(k), Some(v)) => SchemaBuilder::map(k.clone(), v.clone()),
        (t, _, _) => SchemaBuilder::new(t),
    };
    copy_basics_onto(source, builder)
}

/// Java's `getClass()` in messages: `class java.lang.Integer`.
pub(crate) fn java_class(value: &Value) -> String {
    format!("class {}", value.kind())
}
