//! Transforms of a record's key or value fields: `ExtractField`, `ValueToKey`,
//! `InsertField`, `ReplaceField`, `MaskField`, `HoistField`, `SetSchemaMetadata` and
//! cjmatta's `InsertUuid`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use crate::record::ConnectRecord;

use super::util::{
    copy_schema_basics, field_value, map_get, map_put, require_map, require_struct, Config, Side,
};
use super::{Props, TransformError, Transformation};

const REPLACE_NULL_WITH_DEFAULT: &str = "replace.null.with.default";

/// A field path: one name (`field.syntax.version=V1`) or, with `V2`, dotted steps into
/// nested structs / maps (a step in backticks may hold dots).
fn parse_path(path: &str, v2: bool) -> Vec<String> {
    if !v2 {
        return vec![path.to_string()];
    }
    let mut steps = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in path.chars() {
        match c {
            '`' => quoted = !quoted,
            '.' if !quoted => steps.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    steps.push(current);
    steps
}

/// Kafka's `ExtractField`: replaces the key or value with one of its fields.
#[derive(Debug)]
pub(crate) struct ExtractField {
    side: Side,
    original: String,
    path: Vec<String>,
    replace_null_with_default: bool,
}

impl ExtractField {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let original = c.required("field")?.to_string();
        let version = c.one_of("field.syntax.version", "V1", &["V1", "V2"])?;
        Ok(ExtractField {
            side,
            path: parse_path(&original, version == "V2"),
            original,
            replace_null_with_default: c.boolean(REPLACE_NULL_WITH_DEFAULT, true)?,
        })
    }
}

impl Transformation for ExtractField {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        const PURPOSE: &str = "field extraction";
        let (schema, value) = self.side.take(&mut record);
        match schema {
            None => {
                if value.is_null() {
                    return Ok(Some(self.side.with(record, None, Value::Null)));
                }
                let mut current = &value;
                require_map(current, PURPOSE)?;
                for step in &self.path {
                    current = match current {
                        Value::Map(entries) => map_get(entries, step).unwrap_or(&Value::Null),
                        _ => &Value::Null,
                    };
                }
                let extracted = current.clone();
                Ok(Some(self.side.with(record, None, extracted)))
            }
            Some(schema) => {
                if !value.is_null() {
                    require_struct(&value, PURPOSE)?;
                }
                let mut field_schema = &schema;
                for step in &self.path {
                    field_schema = match field_schema.schema_type {
                        Type::Struct => field_schema.field(step).map(|f| &f.schema),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        TransformError::data(format!("Unknown field: {}", self.original))
                    })?;
                }
                let mut current = value;
                for step in &self.path {
                    current = match &current {
                        Value::Struct(s) => field_value(s, step, self.replace_null_with_default),
                        _ => Value::Null,
                    };
                }
                Ok(Some(self.side.with(
                    record,
                    Some(field_schema.clone()),
                    current,
                )))
            }
        }
    }
}

/// Kafka's `ValueToKey`: a key made of some of the value's fields.
#[derive(Debug)]
pub(crate) struct ValueToKey {
    fields: Vec<String>,
    replace_null_with_default: bool,
}

impl ValueToKey {
    pub(crate) fn new(props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let fields = c.required_list("fields")?;
        if fields.is_empty() {
            return Err(TransformError::invalid("fields", "", "Empty list"));
        }
        Ok(ValueToKey {
            fields,
            replace_null_with_default: c.boolean(REPLACE_NULL_WITH_DEFAULT, true)?,
        })
    }
}

impl Transformation for ValueToKey {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        const PURPOSE: &str = "copying fields from value to key";
        match &record.value_schema {
            None => {
                let entries = require_map(&record.value, PURPOSE)?;
                let key = self
                    .fields
                    .iter()
                    .map(|f| {
                        let v = map_get(entries, f).cloned().unwrap_or(Value::Null);
                        (Value::String(f.clone()), v)
                    })
                    .collect();
                record.key_schema = None;
                record.key = Value::Map(key);
            }
            Some(_) => {
                let value = require_struct(&record.value, PURPOSE)?;
                let mut builder = SchemaBuilder::struct_builder();
                for f in &self.fields {
                    let field = value.schema().field(f).ok_or_else(|| {
                        TransformError::data(format!("Field does not exist: {f}"))
                    })?;
                    builder = builder.field(f.clone(), field.schema.clone())?;
                }
                let key_schema = builder.build();
                let mut key = Struct::new(key_schema.clone())?;
                for f in &self.fields {
                    key.put(f, field_value(value, f, self.replace_null_with_default))?;
                }
                record.key_schema = Some(key_schema);
                record.key = Value::Struct(key);
            }
        }
        Ok(Some(record))
    }
}

/// An `InsertField` field spec: a name, `?` suffix optional (the default), `!` required.
#[derive(Debug, Clone)]
struct InsertionSpec {
    name: String,
    optional: bool,
}

impl InsertionSpec {
    fn parse(spec: Option<&str>) -> Option<InsertionSpec> {
        let spec = spec?.trim();
        if spec.is_empty() {
            return None;
        }
        Some(if let Some(name) = spec.strip_suffix('?') {
            InsertionSpec {
                name: name.to_string(),
                optional: true,
            }
        } else if let Some(name) = spec.strip_suffix('!') {
            InsertionSpec {
                name: name.to_string(),
                optional: false,
            }
        } else {
            InsertionSpec {
                name: spec.to_string(),
                optional: true,
            }
        })
    }
}

/// A field to insert: its spec, schema and this record's value (if any).
type Insertion<'a> = (&'a InsertionSpec, SchemaRef, Option<Value>);

/// Kafka's `InsertField`: adds the record's topic, partition, offset, timestamp or a static
/// string as fields.
#[derive(Debug)]
pub(crate) struct InsertField {
    side: Side,
    topic: Option<InsertionSpec>,
    partition: Option<InsertionSpec>,
    offset: Option<InsertionSpec>,
    timestamp: Option<InsertionSpec>,
    static_field: Option<InsertionSpec>,
    static_value: Option<String>,
    replace_null_with_default: bool,
}

impl InsertField {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let t = InsertField {
            side,
            topic: InsertionSpec::parse(c.string("topic.field")),
            partition: InsertionSpec::parse(c.string("partition.field")),
            offset: InsertionSpec::parse(c.string("offset.field")),
            timestamp: InsertionSpec::parse(c.string("timestamp.field")),
            static_field: InsertionSpec::parse(c.string("static.field")),
            static_value: c.string("static.value").map(|s| s.trim().to_string()),
            replace_null_with_default: c.boolean(REPLACE_NULL_WITH_DEFAULT, true)?,
        };
        if t.topic.is_none()
            && t.partition.is_none()
            && t.offset.is_none()
            && t.timestamp.is_none()
            && t.static_field.is_none()
        {
            return Err(TransformError::Config(
                "No field insertion configured".to_string(),
            ));
        }
        if t.static_field.is_some() && t.static_value.is_none() {
            return Err(TransformError::missing("static.value"));
        }
        Ok(t)
    }

    /// The fields to insert, with their schemas and this record's values.
    fn insertions(&self, record: &ConnectRecord) -> Result<Vec<Insertion<'_>>, TransformError> {
        let mut out = Vec::new();
        if let Some(spec) = &self.topic {
            out.push((
                spec,
                Schema::primitive(Type::String, spec.optional),
                Some(Value::String(record.topic.clone())),
            ));
        }
        if let Some(spec) = &self.partition {
            out.push((
                spec,
                Schema::primitive(Type::Int32, spec.optional),
                record.partition.map(Value::Int32),
            ));
        }
        if let Some(spec) = &self.offset {
            let offset = record.kafka_offset.ok_or_else(|| {
                TransformError::data(
                    "Only SinkRecord supported for [field insertion], found: \
                     org.apache.kafka.connect.source.SourceRecord",
                )
            })?;
            out.push((
                spec,
                Schema::primitive(Type::Int64, spec.optional),
                Some(Value::Int64(offset)),
            ));
        }
        if let Some(spec) = &self.timestamp {
            let mut b = SchemaBuilder::timestamp();
            if spec.optional {
                b = b.optional();
            }
            out.push((spec, b.build(), record.timestamp.map(Value::Timestamp)));
        }
        if let Some(spec) = &self.static_field {
            out.push((
                spec,
                Schema::primitive(Type::String, spec.optional),
                self.static_value.clone().map(Value::String),
            ));
        }
        Ok(out)
    }
}

impl Transformation for InsertField {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        const PURPOSE: &str = "field insertion";
        if self.side.value(&record).is_null() {
            return Ok(Some(record));
        }
        let insertions = self.insertions(&record)?;
        let (schema, value) = self.side.take(&mut record);
        match schema {
            None => {
                let mut entries = require_map(&value, PURPOSE)?.to_vec();
                for (spec, _, v) in insertions {
                    if let Some(v) = v {
                        let v = match v {
                            Value::Timestamp(ms) => Value::Int64(ms),
                            v => v,
                        };
                        map_put(&mut entries, &spec.name, v);
                    }
                }
                Ok(Some(self.side.with(record, None, Value::Map(entries))))
            }
            Some(_) => {
                let value = require_struct(&value, PURPOSE)?;
                let mut builder = copy_schema_basics(value.schema());
                for f in &value.schema().fields {
                    builder = builder.field(f.name.clone(), f.schema.clone())?;
                }
                for (spec, s, _) in &insertions {
                    builder = builder.field(spec.name.clone(), s.clone())?;
                }
                let updated_schema = builder.build();
                let mut updated = Struct::new(updated_schema.clone())?;
                for f in &value.schema().fields {
                    updated.put(
                        &f.name,
                        field_value(value, &f.name, self.replace_null_with_default),
                    )?;
                }
                for (spec, _, v) in insertions {
                    if let Some(v) = v {
                        updated.put(&spec.name, v)?;
                    }
                }
                Ok(Some(self.side.with(
                    record,
                    Some(updated_schema),
                    Value::Struct(updated),
                )))
            }
        }
    }
}

/// Kafka's `ReplaceField`: keeps (`include`), drops (`exclude`) and renames fields.
#[derive(Debug)]
pub(crate) struct ReplaceField {
    side: Side,
    include: BTreeSet<String>,
    exclude: BTreeSet<String>,
    renames: BTreeMap<String, String>,
    reverse: BTreeMap<String, String>,
    replace_null_with_default: bool,
}

impl ReplaceField {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let mut renames = BTreeMap::new();
        let mappings = c.list("renames").unwrap_or_default();
        for mapping in &mappings {
            let parts: Vec<&str> = mapping.split(':').collect();
            if parts.len() != 2 {
                return Err(TransformError::invalid(
                    "renames",
                    format!("[{}]", mappings.join(", ")),
                    &format!("Invalid rename mapping: {mapping}"),
                ));
            }
            renames.insert(parts[0].to_string(), parts[1].to_string());
        }
        let reverse = renames
            .iter()
            .map(|(k, v)| (v.clone(), k.clone()))
            .collect();
        Ok(ReplaceField {
            side,
            include: c.list("include").unwrap_or_default().into_iter().collect(),
            exclude: c.list("exclude").unwrap_or_default().into_iter().collect(),
            renames,
            reverse,
            replace_null_with_default: c.boolean(REPLACE_NULL_WITH_DEFAULT, true)?,
        })
    }

    fn keep(&self, name: &str) -> bool {
        !self.exclude.contains(name) && (self.include.is_empty() || self.include.contains(name))
    }

    fn renamed<'a>(&'a self, name: &'a str) -> &'a str {
        self.renames.get(name).map(String::as_str).unwrap_or(name)
    }
}

impl Transformation for ReplaceField {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        const PURPOSE: &str = "field replacement";
        if self.side.value(&record).is_null() {
            return Ok(Some(record));
        }
        let (schema, value) = self.side.take(&mut record);
        match schema {
            None => {
                let entries = require_map(&value, PURPOSE)?;
                let mut updated = Vec::new();
                for (k, v) in entries {
                    let name = match k {
                        Value::String(s) => s.as_str(),
                        _ => continue,
                    };
                    if self.keep(name) {
                        map_put(&mut updated, self.renamed(name), v.clone());
                    }
                }
                Ok(Some(self.side.with(record, None, Value::Map(updated))))
            }
            Some(_) => {
                let value = require_struct(&value, PURPOSE)?;
                let mut builder = copy_schema_basics(value.schema());
                for f in &value.schema().fields {
                    if self.keep(&f.name) {
                        builder = builder.field(self.renamed(&f.name), f.schema.clone())?;
                    }
                }
                let updated_schema = builder.build();
                let mut updated = Struct::new(updated_schema.clone())?;
                for f in &updated_schema.fields {
                    let original = self
                        .reverse
                        .get(&f.name)
                        .map(String::as_str)
                        .unwrap_or(&f.name);
                    updated.put(
                        &f.name,
                        field_value(value, original, self.replace_null_with_default),
                    )?;
                }
                Ok(Some(self.side.with(
                    record,
                    Some(updated_schema),
                    Value::Struct(updated),
                )))
            }
        }
    }
}

/// Kafka's `MaskField`: replaces fields with their type's "empty" value or `replacement`.
#[derive(Debug)]
pub(crate) struct MaskField {
    side: Side,
    fields: Vec<String>,
    replacement: Option<String>,
    replace_null_with_default: bool,
}

impl MaskField {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let fields = c.required_list("fields")?;
        if fields.is_empty() {
            return Err(TransformError::invalid("fields", "", "Empty list"));
        }
        let replacement = match c.string("replacement") {
            None => None,
            Some(r) if r.trim().is_empty() => {
                return Err(TransformError::invalid(
                    "replacement",
                    r.trim(),
                    "String must be non-empty",
                ))
            }
            Some(r) => Some(r.trim().to_string()),
        };
        Ok(MaskField {
            side,
            fields,
            replacement,
            replace_null_with_default: c.boolean(REPLACE_NULL_WITH_DEFAULT, true)?,
        })
    }

    fn masked(&self, value: &Value) -> Result<Value, TransformError> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        match &self.replacement {
            None => Ok(match value {
                Value::Boolean(_) => Value::Boolean(false),
                Value::Int8(_) => Value::Int8(0),
                Value::Int16(_) => Value::Int16(0),
                Value::Int32(_) => Value::Int32(0),
                Value::Int64(_) => Value::Int64(0),
                Value::Float32(_) => Value::Float32(0.0),
                Value::Float64(_) => Value::Float64(0.0),
                Value::Decimal(_) => Value::Decimal(0),
                Value::Date(_) => Value::Date(0),
                Value::Time(_) => Value::Time(0),
                Value::Timestamp(_) => Value::Timestamp(0),
                Value::String(_) => Value::String(String::new()),
                Value::Array(_) => Value::Array(Vec::new()),
                Value::Map(_) => Value::Map(Vec::new()),
                other => {
                    return Err(TransformError::data(format!(
                        "Cannot mask value of type: class {}",
                        other.kind()
                    )))
                }
            }),
            Some(r) => {
                let bad = || {
                    TransformError::data(format!(
                        "Unable to convert {r} (class java.lang.String) to number"
                    ))
                };
                Ok(match value {
                    Value::Int8(_) => Value::Int8(r.parse().map_err(|_| bad())?),
                    Value::Int16(_) => Value::Int16(r.parse().map_err(|_| bad())?),
                    Value::Int32(_) => Value::Int32(r.parse().map_err(|_| bad())?),
                    Value::Int64(_) => Value::Int64(r.parse().map_err(|_| bad())?),
                    Value::Float32(_) => Value::Float32(r.parse().map_err(|_| bad())?),
                    Value::Float64(_) => Value::Float64(r.parse().map_err(|_| bad())?),
                    Value::String(_) => Value::String(r.clone()),
                    other => {
                        return Err(TransformError::data(format!(
                            "Cannot mask value of type class {} with custom replacement.",
                            other.kind()
                        )))
                    }
                })
            }
        }
    }
}

impl Transformation for MaskField {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        const PURPOSE: &str = "mask fields";
        let (schema, value) = self.side.take(&mut record);
        match schema {
            None => {
                let entries = require_map(&value, PURPOSE)?;
                let mut updated = entries.to_vec();
                for f in &self.fields {
                    let masked = self.masked(map_get(entries, f).unwrap_or(&Value::Null))?;
                    map_put(&mut updated, f, masked);
                }
                Ok(Some(self.side.with(record, None, Value::Map(updated))))
            }
            Some(schema) => {
                let value = require_struct(&value, PURPOSE)?;
                let mut updated = Struct::new(value.schema().clone())?;
                for f in &value.schema().fields {
                    let v = field_value(value, &f.name, self.replace_null_with_default);
                    let v = if self.fields.contains(&f.name) {
                        self.masked(&v)?
                    } else {
                        v
                    };
                    updated.put(&f.name, v)?;
                }
                Ok(Some(self.side.with(
                    record,
                    Some(schema),
                    Value::Struct(updated),
                )))
            }
        }
    }
}

/// Kafka's `HoistField`: wraps the key or value in a struct (or map) of one field.
#[derive(Debug)]
pub(crate) struct HoistField {
    side: Side,
    field: String,
}

impl HoistField {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        Ok(HoistField {
            side,
            field: Config(props).required("field")?.to_string(),
        })
    }
}

impl Transformation for HoistField {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        let (schema, value) = self.side.take(&mut record);
        match schema {
            None => Ok(Some(self.side.with(
                record,
                None,
                Value::Map(vec![(Value::String(self.field.clone()), value)]),
            ))),
            Some(schema) => {
                let updated_schema = SchemaBuilder::struct_builder()
                    .field(self.field.clone(), schema)?
                    .build();
                let updated = Struct::new(updated_schema.clone())?.with(&self.field, value)?;
                Ok(Some(self.side.with(
                    record,
                    Some(updated_schema),
                    Value::Struct(updated),
                )))
            }
        }
    }
}

/// Kafka's `SetSchemaMetadata`: sets the key or value schema's name and/or version.
#[derive(Debug)]
pub(crate) struct SetSchemaMetadata {
    side: Side,
    name: Option<String>,
    version: Option<i32>,
}

impl SetSchemaMetadata {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let name = c.string("schema.name").map(|s| s.trim().to_string());
        let version = c.int("schema.version")?;
        if name.is_none() && version.is_none() {
            return Err(TransformError::Config(
                "Neither schema name nor version configured".to_string(),
            ));
        }
        Ok(SetSchemaMetadata {
            side,
            name,
            version,
        })
    }
}

impl Transformation for SetSchemaMetadata {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        let (schema, value) = self.side.take(&mut record);
        let schema = schema.ok_or_else(|| {
            TransformError::data("Schema required for [updating schema metadata]")
        })?;
        let mut updated = (*schema).clone();
        if let Some(name) = &self.name {
            updated.name = Some(name.clone());
        }
        if let Some(version) = self.version {
            updated.version = Some(version);
        }
        let updated = Arc::new(updated);
        let value = match value {
            Value::Struct(s) => {
                let mut out = Struct::new(updated.clone())?;
                for (f, v) in s.iter() {
                    out.put(&f.name, v.clone())?;
                }
                Value::Struct(out)
            }
            v => v,
        };
        Ok(Some(self.side.with(record, Some(updated), value)))
    }
}

/// cjmatta's `InsertUuid` (`com.github.cjmatta.kafka.connect.smt.InsertUuid`): adds a
/// random UUID string field (`uuid.field.name`, default `uuid`).
#[derive(Debug)]
pub(crate) struct InsertUuid {
    side: Side,
    field: String,
}

impl InsertUuid {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        let field = Config(props)
            .string("uuid.field.name")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "uuid".to_string());
        Ok(InsertUuid { side, field })
    }
}

impl Transformation for InsertUuid {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        const PURPOSE: &str = "adding UUID to record";
        let uuid = Value::String(uuid::Uuid::new_v4().to_string());
        let (schema, value) = self.side.take(&mut record);
        match schema {
            None => {
                let mut entries = require_map(&value, PURPOSE)?.to_vec();
                map_put(&mut entries, &self.field, uuid);
                Ok(Some(self.side.with(record, None, Value::Map(entries))))
            }
            Some(_) => {
                let value = require_struct(&value, PURPOSE)?;
                let mut builder = copy_schema_basics(value.schema());
                for f in &value.schema().fields {
                    builder = builder.field(f.name.clone(), f.schema.clone())?;
                }
                let schema = builder
                    .field(self.field.clone(), Schema::primitive(Type::String, false))?
                    .build();
                let mut updated = Struct::new(schema.clone())?;
                for (f, v) in value.iter() {
                    updated.put(&f.name, v.clone())?;
                }
                updated.put(&self.field, uuid)?;
                Ok(Some(self.side.with(
                    record,
                    Some(schema),
                    Value::Struct(updated),
                )))
            }
        }
    }
}
