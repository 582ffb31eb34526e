//! Kafka's `JsonConverter`: Connect data as JSON, by default in an envelope carrying the
//! schema (`{"schema":{...},"payload":...}`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::json_node::{self, big_decimal_string, java_double, java_float, JsonNode};
use super::{bool_prop, data_err, int_prop, ConvertError, Converter, ConverterType, Props};
use crate::data::{
    Schema, SchemaBuilder, SchemaRef, Struct, Type, Value, DATE, DECIMAL, TIME, TIMESTAMP,
};

/// `decimal.format`: how Decimals are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalFormat {
    /// The unscaled value's two's-complement bytes, base64 (the default).
    Base64,
    /// A JSON number.
    Numeric,
}

/// Kafka's `org.apache.kafka.connect.json.JsonConverter` with its options `schemas.enable`
/// (default true), `schemas.cache.size` (how many schemas' JSON is kept, on the writing
/// side), `decimal.format` (`BASE64` default, or `NUMERIC`, any case) and
/// `replace.null.with.default` (default true).
#[derive(Clone, Debug)]
pub struct JsonConverter {
    pub schemas_enabled: bool,
    pub decimal_format: DecimalFormat,
    pub replace_null_with_default: bool,
    pub schema_cache: SchemaCache,
}

impl Default for JsonConverter {
    fn default() -> Self {
        JsonConverter {
            schemas_enabled: true,
            decimal_format: DecimalFormat::Base64,
            replace_null_with_default: true,
            schema_cache: SchemaCache::new(1000),
        }
    }
}

/// The JSON of schemas written recently (Kafka's `fromConnectSchemaCache`): records of one
/// table share one schema, whose JSON is most of a change event's bytes. Keyed by the
/// schema's allocation, which the entry keeps alive (so the key cannot be reused).
#[derive(Debug)]
pub struct SchemaCache {
    capacity: usize,
    entries: parking_lot::Mutex<std::collections::HashMap<usize, (SchemaRef, std::sync::Arc<str>)>>,
}

impl SchemaCache {
    pub fn new(capacity: usize) -> SchemaCache {
        SchemaCache {
            capacity,
            entries: parking_lot::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn get_or_insert(
        &self,
        schema: &SchemaRef,
        make: impl FnOnce() -> Result<String, ConvertError>,
    ) -> Result<std::sync::Arc<str>, ConvertError> {
        let key = std::sync::Arc::as_ptr(schema) as usize;
        if let Some((_, json)) = self.entries.lock().get(&key) {
            return Ok(json.clone());
        }
        let json: std::sync::Arc<str> = make()?.into();
        if self.capacity > 0 {
            let mut entries = self.entries.lock();
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(key, (schema.clone(), json.clone()));
        }
        Ok(json)
    }
}

impl Clone for SchemaCache {
    /// A clone starts empty (a cache is per converter instance).
    fn clone(&self) -> Self {
        SchemaCache::new(self.capacity)
    }
}

const ENVELOPE_ERROR: &str = "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.";

fn json_type_name(t: Type) -> &'static str {
    match t {
        Type::Float32 => "float",
        Type::Float64 => "double",
        other => other.name(),
    }
}

fn type_from_json_name(name: &str) -> Option<Type> {
    Some(match name {
        "boolean" => Type::Boolean,
        "int8" => Type::Int8,
        "int16" => Type::Int16,
        "int32" => Type::Int32,
        "int64" => Type::Int64,
        "float" => Type::Float32,
        "double" => Type::Float64,
        "bytes" => Type::Bytes,
        "string" => Type::String,
        "array" => Type::Array,
        "map" => Type::Map,
        "struct" => Type::Struct,
        _ => return None,
    })
}

fn num(text: String) -> JsonNode {
    JsonNode::Number(text)
}

/// A float as Jackson writes it: non-finite values are quoted (`QUOTE_NON_NUMERIC_NUMBERS`).
fn float_node(text: String) -> JsonNode {
    if text.ends_with("NaN") || text.ends_with("Infinity") {
        JsonNode::String(text)
    } else {
        JsonNode::Number(text)
    }
}

/// Kafka's `Decimal.fromLogical`: the unscaled value's minimal big-endian two's complement.
pub(crate) fn decimal_bytes(unscaled: i128) -> Vec<u8> {
    let bytes = unscaled.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// Kafka's `Decimal.toLogical`: big-endian two's complement to the unscaled value.
pub(crate) fn decimal_from_bytes(bytes: &[u8]) -> Option<i128> {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let fill = if negative { 0xFF } else { 0x00 };
    let significant = bytes.iter().position(|&b| b != fill).unwrap_or(bytes.len());
    let rest = &bytes[significant..];
    // Keep one sign byte if the first significant byte's sign bit disagrees.
    let needs_sign = rest.first().is_some_and(|b| (b & 0x80 != 0) != negative);
    if rest.len() + usize::from(needs_sign) > 16 {
        return None;
    }
    let mut out = [fill; 16];
    out[16 - rest.len()..].copy_from_slice(rest);
    Some(i128::from_be_bytes(out))
}

fn class_of(value: &Value) -> String {
    format!("class {}", value.kind())
}

impl JsonConverter {
    /// Configures a converter from its options.
    pub fn configure(props: &Props, _kind: ConverterType) -> Result<JsonConverter, ConvertError> {
        let schemas_enabled = bool_prop(props, "schemas.enable", true)?;
        let cache_size = int_prop(props, "schemas.cache.size", 1000)?;
        let decimal_format = match props.get("decimal.format") {
            None => DecimalFormat::Base64,
            Some(v) => match v.to_ascii_uppercase().as_str() {
                "BASE64" => DecimalFormat::Base64,
                "NUMERIC" => DecimalFormat::Numeric,
                _ => {
                    return Err(ConvertError::Config {
                        key: "decimal.format".into(),
                        value: v.clone(),
                        reason: "String must be one of (case insensitive): BASE64, NUMERIC".into(),
                    });
                }
            },
        };
        let replace_null_with_default = bool_prop(props, "replace.null.with.default", true)?;
        Ok(JsonConverter {
            schemas_enabled,
            decimal_format,
            replace_null_with_default,
            schema_cache: SchemaCache::new(cache_size.max(0) as usize),
        })
    }

    /// Kafka's `asJsonSchema`: a schema in Connect's JSON schema format.
    fn as_json_schema(&self, schema: &Schema) -> Result<JsonNode, ConvertError> {
        let mut out = vec![(
            "type".to_string(),
            JsonNode::String(json_type_name(schema.schema_type).into()),
        )];
        let sub = |s: &Option<SchemaRef>| -> Result<JsonNode, ConvertError> {
            match s {
                Some(s) => self.as_json_schema(s),
                None => Ok(JsonNode::Null),
            }
        };
        match schema.schema_type {
            Type::Array => out.push(("items".into(), sub(&schema.value_schema)?)),
            Type::Map => {
                out.push(("keys".into(), sub(&schema.key_schema)?));
                out.push(("values".into(), sub(&schema.value_schema)?));
            }
            Type::Struct => {
                let mut fields = Vec::with_capacity(schema.fields.len());
                for field in &schema.fields {
                    let mut node = self.as_json_schema(&field.schema)?;
                    if let JsonNode::Object(entries) = &mut node {
                        JsonNode::object_set(
                            entries,
                            "field".into(),
                            JsonNode::String(field.name.clone()),
                        );
                    }
                    fields.push(node);
                }
                out.push(("fields".into(), JsonNode::Array(fields)));
            }
            _ => {}
        }
        out.push(("optional".into(), JsonNode::Bool(schema.optional)));
        if let Some(name) = &schema.name {
            out.push(("name".into(), JsonNode::String(name.clone())));
        }
        if let Some(version) = schema.version {
            out.push(("version".into(), num(version.to_string())));
        }
        if let Some(doc) = &schema.doc {
            out.push(("doc".into(), JsonNode::String(doc.clone())));
        }
        if !schema.parameters.is_empty() {
            let params = schema
                .parameters
                .iter()
                .map(|(k, v)| (k.clone(), JsonNode::String(v.clone())))
                .collect();
            out.push(("parameters".into(), JsonNode::Object(params)));
        }
        if let Some(default) = &schema.default {
            out.push((
                "default".into(),
                self.convert_to_json(Some(schema), default)?,
            ));
        }
        Ok(JsonNode::Object(out))
    }

    /// Kafka's `asConnectSchema`: a schema from Connect's JSON schema format (`None` for null).
    fn as_connect_schema(
        &self,
        json: &JsonNode,
        depth: usize,
    ) -> Result<Option<SchemaRef>, ConvertError> {
        if json.is_null_or_missing() {
            return Ok(None);
        }
        if depth > json_node::MAX_DEPTH {
            return data_err("Schema nesting too deep");
        }
        let required = |node: Option<&JsonNode>, what: &str| -> Result<SchemaRef, ConvertError> {
            match node {
                Some(n) => match self.as_connect_schema(n, depth + 1)? {
                    Some(s) => Ok(s),
                    None => data_err(format!("{what} cannot be null.")),
                },
                None => data_err(format!("{what} cannot be null.")),
            }
        };
        let Some(type_name) = json.get("type").and_then(JsonNode::text) else {
            return data_err("Schema must contain 'type' field");
        };
        let Some(schema_type) = type_from_json_name(type_name) else {
            return data_err(format!("Unknown schema type: {type_name}"));
        };
        let mut builder = match schema_type {
            Type::Array => match json.get("items") {
                Some(items) if !items.is_null_or_missing() => {
                    SchemaBuilder::array(required(Some(items), "valueSchema")?)
                }
                _ => return data_err("Array schema did not specify the element type"),
            },
            Type::Map => {
                let Some(keys) = json.get("keys") else {
                    return data_err("Map schema did not specify the key type");
                };
                let Some(values) = json.get("values") else {
                    return data_err("Map schema did not specify the value type");
                };
                SchemaBuilder::map(
                    required(Some(keys), "keySchema")?,
                    required(Some(values), "valueSchema")?,
                )
            }
            Type::Struct => {
                let Some(JsonNode::Array(fields)) = json.get("fields") else {
                    return data_err("Struct schema's \"fields\" argument is not an array.");
                };
                let mut builder = SchemaBuilder::struct_builder();
                for field in fields {
                    let Some(name) = field.get("field").and_then(JsonNode::text) else {
                        return data_err("Struct schema's field name not specified properly");
                    };
                    builder = builder.field(name, required(Some(field), "fieldSchema")?)?;
                }
                builder
            }
            primitive => SchemaBuilder::new(primitive),
        };
        builder = match json.get("optional") {
            Some(JsonNode::Bool(true)) => builder.optional(),
            _ => builder.required(),
        };
        if let Some(name) = json.get("name").and_then(JsonNode::text) {
            builder = builder.name(name);
        }
        if let Some(version) = json.get("version").filter(|v| v.is_integral()) {
            builder = builder.version(version.int_value());
        }
        if let Some(doc) = json.get("doc").and_then(JsonNode::text) {
            builder = builder.doc(doc);
        }
        if let Some(JsonNode::Object(params)) = json.get("parameters") {
            for (key, value) in params {
                let Some(value) = value.text() else {
                    return data_err("Schema parameters must have string values.");
                };
                builder = builder.parameter(key.clone(), value);
            }
        }
        if let Some(default) = json.get("default") {
            let so_far = builder.clone().build();
            let value = self.convert_to_connect(Some(&so_far), default, depth + 1)?;
            // A null default is no default.
            if !value.is_null() {
                builder = builder.default_value(value)?;
            }
        }
        Ok(Some(builder.build()))
    }

    /// Kafka's `convertToJson`.
    fn convert_to_json(
        &self,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<JsonNode, ConvertError> {
        if value.is_null() {
            let Some(schema) = schema else {
                return Ok(JsonNode::Null);
            };
            if let (Some(default), true) = (&schema.default, self.replace_null_with_default) {
                return self.convert_to_json(Some(schema), default);
            }
            if schema.optional {
                return Ok(JsonNode::Null);
            }
            return data_err(
                "Conversion error: null value for field that is required and has no default value",
            );
        }
        if let Some(schema) = schema {
            match schema.name.as_deref() {
                Some(DECIMAL) => {
                    let Value::Decimal(unscaled) = value else {
                        return data_err(format!(
                            "Invalid type for Decimal, expected BigDecimal but was {}",
                            class_of(value)
                        ));
                    };
                    let scale = schema.decimal_scale()?;
                    return Ok(match self.decimal_format {
                        DecimalFormat::Numeric => num(big_decimal_string(*unscaled, scale)),
                        DecimalFormat::Base64 => {
                            JsonNode::String(BASE64.encode(decimal_bytes(*unscaled)))
                        }
                    });
                }
                Some(name @ (DATE | TIME | TIMESTAMP)) => {
                    let short = &name["org.apache.kafka.connect.data.".len()..];
                    return match (name, value) {
                        (DATE, Value::Date(days)) => Ok(num(days.to_string())),
                        (TIME, Value::Time(ms)) => Ok(num(ms.to_string())),
                        (TIMESTAMP, Value::Timestamp(ms)) => Ok(num(ms.to_string())),
                        _ => data_err(format!(
                            "Invalid type for {short}, expected Date but was {}",
                            class_of(value)
                        )),
                    };
                }
                _ => {}
            }
        }
        let schema_type = match schema {
            Some(s) => s.schema_type,
            None => match value {
                Value::Int8(_) => Type::Int8,
                Value::Int16(_) => Type::Int16,
                Value::Int32(_) => Type::Int32,
                Value::Int64(_) => Type::Int64,
                Value::Float32(_) => Type::Float32,
                Value::Float64(_) => Type::Float64,
                Value::Boolean(_) => Type::Boolean,
                Value::String(_) => Type::String,
                Value::Bytes(_) => Type::Bytes,
                Value::Array(_) => Type::Array,
                Value::Map(_) => Type::Map,
                Value::Struct(_) => Type::Struct,
                other => {
                    return data_err(format!(
                        "Java class {} does not have corresponding schema type.",
                        class_of(other)
                    ));
                }
            },
        };
        let value_schema = schema.and_then(|s| s.value_schema.as_deref());
        let key_schema = schema.and_then(|s| s.key_schema.as_deref());
        Ok(match (schema_type, value) {
            (Type::Int8, Value::Int8(v)) => num(v.to_string()),
            (Type::Int16, Value::Int16(v)) => num(v.to_string()),
            (Type::Int32, Value::Int32(v)) => num(v.to_string()),
            (Type::Int64, Value::Int64(v)) => num(v.to_string()),
            (Type::Float32, Value::Float32(v)) => float_node(java_float(*v)),
            (Type::Float64, Value::Float64(v)) => float_node(java_double(*v)),
            (Type::Boolean, Value::Boolean(v)) => JsonNode::Bool(*v),
            (Type::String, Value::String(v)) => JsonNode::String(v.clone()),
            (Type::Bytes, Value::Bytes(v)) => JsonNode::String(BASE64.encode(v)),
            (Type::Array, Value::Array(items)) => JsonNode::Array(
                items
                    .iter()
                    .map(|item| self.convert_to_json(value_schema, item))
                    .collect::<Result<_, _>>()?,
            ),
            (Type::Map, Value::Map(entries)) => {
                let object_mode = match schema {
                    None => entries.iter().all(|(k, _)| matches!(k, Value::String(_))),
                    Some(_) => key_schema.is_some_and(|k| k.schema_type == Type::String),
                };
                let mut object = Vec::new();
                let mut pairs = Vec::new();
                for (k, v) in entries {
                    let key = self.convert_to_json(key_schema, k)?;
                    let value = self.convert_to_json(value_schema, v)?;
                    if object_mode {
                        let key = match key {
                            JsonNode::String(s) | JsonNode::Number(s) => s,
                            other => other.to_json_string(),
                        };
                        JsonNode::object_set(&mut object, key, value);
                    } else {
                        pairs.push(JsonNode::Array(vec![key, value]));
                    }
                }
                if object_mode {
                    JsonNode::Object(object)
                } else {
                    JsonNode::Array(pairs)
                }
            }
            (Type::Struct, Value::Struct(s)) => {
                let Some(schema) = schema.filter(|schema| **s.schema() == **schema) else {
                    return data_err("Mismatching schema.");
                };
                let mut object = Vec::with_capacity(schema.fields.len());
                for field in &schema.fields {
                    let v = s.get_without_default(&field.name).unwrap_or(&Value::Null);
                    object.push((
                        field.name.clone(),
                        self.convert_to_json(Some(&field.schema), v)?,
                    ));
                }
                JsonNode::Object(object)
            }
            _ => {
                let type_name = schema
                    .map(|s| s.schema_type.to_string())
                    .unwrap_or_else(|| "unknown schema".into());
                return data_err(format!("Invalid type for {type_name}: {}", class_of(value)));
            }
        })
    }

    /// Kafka's `convertToConnect`.
    fn convert_to_connect(
        &self,
        schema: Option<&SchemaRef>,
        json: &JsonNode,
        depth: usize,
    ) -> Result<Value, ConvertError> {
        if depth > 2 * json_node::MAX_DEPTH {
            return data_err("Value nesting too deep");
        }
        let schema_type = match schema {
            Some(schema) => {
                if json.is_null_or_missing() {
                    if let (Some(default), true) = (&schema.default, self.replace_null_with_default)
                    {
                        return Ok(default.clone());
                    }
                    if schema.optional {
                        return Ok(Value::Null);
                    }
                    return data_err(format!(
                        "Invalid null value for required {} field",
                        schema.schema_type
                    ));
                }
                schema.schema_type
            }
            None => match json {
                JsonNode::Null | JsonNode::Missing => return Ok(Value::Null),
                JsonNode::Bool(_) => Type::Boolean,
                JsonNode::Number(_) if json.is_integral() => Type::Int64,
                JsonNode::Number(_) => Type::Float64,
                JsonNode::Array(_) => Type::Array,
                JsonNode::Object(_) => Type::Map,
                JsonNode::String(_) => Type::String,
            },
        };
        if let Some(schema) = schema {
            match schema.name.as_deref() {
                Some(DECIMAL) => return decimal_to_connect(schema, json),
                Some(DATE) => {
                    if !json.is_int() {
                        return data_err(format!(
                            "Invalid type for Date, underlying representation should be integer but was {}",
                            json.node_type()
                        ));
                    }
                    return Ok(Value::Date(json.int_value()));
                }
                Some(TIME) => {
                    if !json.is_int() {
                        return data_err(format!(
                            "Invalid type for Time, underlying representation should be integer but was {}",
                            json.node_type()
                        ));
                    }
                    return Ok(Value::Time(json.int_value()));
                }
                Some(TIMESTAMP) => {
                    if !json.is_integral() {
                        return data_err(format!(
                            "Invalid type for Timestamp, underlying representation should be integral but was {}",
                            json.node_type()
                        ));
                    }
                    return Ok(Value::Timestamp(json.long_value()));
                }
                _ => {}
            }
        }
        let value_schema = schema.and_then(|s| s.value_schema.as_ref());
        Ok(match schema_type {
            Type::Boolean => Value::Boolean(matches!(json, JsonNode::Bool(true))),
            Type::Int8 => Value::Int8(json.int_value() as i8),
            Type::Int16 => Value::Int16(json.int_value() as i16),
            Type::Int32 => Value::Int32(json.int_value()),
            Type::Int64 => Value::Int64(json.long_value()),
            Type::Float32 => Value::Float32(json.float_value()),
            Type::Float64 => Value::Float64(json.double_value()),
            Type::String => match json {
                JsonNode::String(s) => Value::String(s.clone()),
                _ => Value::Null,
            },
            Type::Bytes => match json {
                JsonNode::String(s) => match BASE64.decode(s) {
                    Ok(bytes) => Value::Bytes(bytes),
                    Err(_) => return data_err("Invalid bytes field"),
                },
                _ => Value::Null,
            },
            Type::Array => {
                // Jackson iterates an object's values, and nothing of a scalar.
                let elements: Vec<&JsonNode> = match json {
                    JsonNode::Array(items) => items.iter().collect(),
                    JsonNode::Object(entries) => entries.iter().map(|(_, v)| v).collect(),
                    _ => Vec::new(),
                };
                Value::Array(
                    elements
                        .into_iter()
                        .map(|e| self.convert_to_connect(value_schema, e, depth + 1))
                        .collect::<Result<_, _>>()?,
                )
            }
            Type::Map => {
                let key_schema = schema.and_then(|s| s.key_schema.as_ref());
                let mut entries = Vec::new();
                if schema.is_none() || key_schema.is_some_and(|k| k.schema_type == Type::String) {
                    let JsonNode::Object(fields) = json else {
                        return data_err(format!(
                            "Maps with string fields should be encoded as JSON objects, but found {}",
                            json.node_type()
                        ));
                    };
                    for (k, v) in fields {
                        entries.push((
                            Value::String(k.clone()),
                            self.convert_to_connect(value_schema, v, depth + 1)?,
                        ));
                    }
                } else {
                    let JsonNode::Array(items) = json else {
                        return data_err(format!(
                            "Maps with non-string fields should be encoded as JSON array of tuples, but found {}",
                            json.node_type()
                        ));
                    };
                    for item in items {
                        let JsonNode::Array(pair) = item else {
                            return data_err(format!(
                                "Found invalid map entry instead of array tuple: {}",
                                item.node_type()
                            ));
                        };
                        let [k, v] = pair.as_slice() else {
                            return data_err(format!(
                                "Found invalid map entry, expected length 2 but found :{}",
                                pair.len()
                            ));
                        };
                        let key = self.convert_to_connect(key_schema, k, depth + 1)?;
                        let value = self.convert_to_connect(value_schema, v, depth + 1)?;
                        // A HashMap: a repeated key replaces the earlier entry.
                        match entries.iter_mut().find(|(ek, _)| *ek == key) {
                            Some(entry) => entry.1 = value,
                            None => entries.push((key, value)),
                        }
                    }
                }
                Value::Map(entries)
            }
            Type::Struct => {
                if !matches!(json, JsonNode::Object(_)) {
                    return data_err(format!(
                        "Structs should be encoded as JSON objects, but found {}",
                        json.node_type()
                    ));
                }
                let Some(schema) = schema else {
                    return data_err("Unknown schema type: null");
                };
                let mut result = Struct::new(schema.clone())?;
                for field in &schema.fields {
                    let v = json.get(&field.name).unwrap_or(&JsonNode::Missing);
                    result.put(
                        &field.name,
                        self.convert_to_connect(Some(&field.schema), v, depth + 1)?,
                    )?;
                }
                Value::Struct(result)
            }
        })
    }
}

fn decimal_to_connect(schema: &Schema, json: &JsonNode) -> Result<Value, ConvertError> {
    let scale = schema.decimal_scale()?;
    match json {
        JsonNode::Number(_) => {
            let Some(n) = json.number() else {
                return data_err("Invalid type for Decimal, underlying representation should be numeric or bytes but was NUMBER");
            };
            match n.unscaled_at(scale) {
                Some(unscaled) => Ok(Value::Decimal(unscaled)),
                None => data_err(format!(
                    "BigDecimal has mismatching scale value for given Decimal schema (value scale {}, schema scale {scale}) or more than 38 digits",
                    n.scale()
                )),
            }
        }
        JsonNode::String(s) => match BASE64.decode(s).ok().and_then(|b| decimal_from_bytes(&b)) {
            Some(unscaled) => Ok(Value::Decimal(unscaled)),
            None => data_err("Invalid bytes for Decimal field"),
        },
        other => data_err(format!(
            "Invalid type for Decimal, underlying representation should be numeric or bytes but was {}",
            other.node_type()
        )),
    }
}

impl Converter for JsonConverter {
    fn from_connect_data(
        &self,
        _topic: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        if schema.is_none() && value.is_null() {
            return Ok(None);
        }
        let payload = self.convert_to_json(schema.map(|s| &**s), value)?;
        if !self.schemas_enabled {
            return Ok(Some(payload.to_json_string().into_bytes()));
        }
        // `{"schema":<schema>,"payload":<payload>}`, the schema's JSON from the cache.
        let schema_json = match schema {
            Some(s) => self
                .schema_cache
                .get_or_insert(s, || Ok(self.as_json_schema(s)?.to_json_string()))?,
            None => "null".into(),
        };
        let payload = payload.to_json_string();
        let mut out = String::with_capacity(schema_json.len() + payload.len() + 24);
        out.push_str("{\"schema\":");
        out.push_str(&schema_json);
        out.push_str(",\"payload\":");
        out.push_str(&payload);
        out.push('}');
        Ok(Some(out.into_bytes()))
    }

    fn to_connect_data(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<SchemaRef>, Value), ConvertError> {
        let Some(bytes) = bytes else {
            return Ok((None, Value::Null));
        };
        let json = json_node::parse(bytes).map_err(|e| {
            ConvertError::Data(format!(
                "Converting byte[] to Kafka Connect data failed due to serialization error: {}",
                e.0
            ))
        })?;
        if !self.schemas_enabled {
            return Ok((None, self.convert_to_connect(None, &json, 0)?));
        }
        let (Some(schema), Some(payload), JsonNode::Object(entries)) =
            (json.get("schema"), json.get("payload"), &json)
        else {
            return data_err(ENVELOPE_ERROR);
        };
        if entries.len() != 2 {
            return data_err(ENVELOPE_ERROR);
        }
        let schema = self.as_connect_schema(schema, 0)?;
        let value = self.convert_to_connect(schema.as_ref(), payload, 0)?;
        Ok((schema, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn converter(props: &[(&str, &str)]) -> JsonConverter {
        let props: Props = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        JsonConverter::configure(&props, ConverterType::Value).unwrap()
    }

    #[test]
    fn a_cached_schema_writes_the_same_bytes() {
        use crate::data::{SchemaBuilder, Struct};
        let schema = SchemaBuilder::struct_builder()
            .name("t.Value")
            .field("id", Schema::primitive(Type::Int32, false))
            .unwrap()
            .field("note", Schema::primitive(Type::String, true))
            .unwrap()
            .build();
        let value = |id: i32| {
            Value::Struct(
                Struct::new(schema.clone())
                    .unwrap()
                    .with("id", Value::Int32(id))
                    .unwrap(),
            )
        };
        let cached = converter(&[]);
        let uncached = converter(&[("schemas.cache.size", "0")]);
        for id in [1, 2, 3] {
            let a = cached
                .from_connect_data("t", Some(&schema), &value(id))
                .unwrap();
            let b = uncached
                .from_connect_data("t", Some(&schema), &value(id))
                .unwrap();
            assert_eq!(a, b);
        }
        assert_eq!(
            String::from_utf8(
                cached
                    .from_connect_data("t", Some(&schema), &value(7))
                    .unwrap()
                    .unwrap()
            )
            .unwrap(),
            r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"note"}],"optional":false,"name":"t.Value"},"payload":{"id":7,"note":null}}"#
        );
        // A schemaless value with schemas on: a null schema.
        assert_eq!(
            cached
                .from_connect_data("t", None, &Value::Int64(5))
                .unwrap(),
            Some(br#"{"schema":null,"payload":5}"#.to_vec())
        );
    }

    fn to_json(c: &JsonConverter, schema: Option<&SchemaRef>, value: &Value) -> String {
        String::from_utf8(c.from_connect_data("t", schema, value).unwrap().unwrap()).unwrap()
    }

    fn from_json(
        c: &JsonConverter,
        json: &str,
    ) -> Result<(Option<SchemaRef>, Value), ConvertError> {
        c.to_connect_data("t", Some(json.as_bytes()))
    }

    fn prim(t: Type, optional: bool) -> SchemaRef {
        Schema::primitive(t, optional)
    }

    #[test]
    fn kafkas_documented_envelopes() {
        let c = JsonConverter::default();
        assert_eq!(
            from_json(
                &c,
                r#"{ "schema": { "type": "boolean" }, "payload": true }"#
            )
            .unwrap(),
            (Some(prim(Type::Boolean, false)), Value::Boolean(true))
        );
        assert_eq!(
            from_json(&c, r#"{ "schema": { "type": "int32" }, "payload": 12 }"#)
                .unwrap()
                .1,
            Value::Int32(12)
        );
        assert_eq!(
            from_json(&c, r#"{ "schema": { "type": "float" }, "payload": 12.34 }"#)
                .unwrap()
                .1,
            Value::Float32(12.34)
        );
        assert_eq!(
            from_json(
                &c,
                r#"{ "schema": { "type": "bytes" }, "payload": "Ynl0ZXM=" }"#
            )
            .unwrap()
            .1,
            Value::Bytes(b"bytes".to_vec())
        );
        assert_eq!(
            to_json(&c, Some(&prim(Type::Int32, false)), &Value::Int32(12)),
            r#"{"schema":{"type":"int32","optional":false},"payload":12}"#
        );
        assert_eq!(
            to_json(
                &c,
                Some(&prim(Type::Float64, false)),
                &Value::Float64(12.34)
            ),
            r#"{"schema":{"type":"double","optional":false},"payload":12.34}"#
        );
        // Null: a tombstone either way.
        assert_eq!(c.from_connect_data("t", None, &Value::Null).unwrap(), None);
        assert_eq!(c.to_connect_data("t", None).unwrap(), (None, Value::Null));
        assert_eq!(
            to_json(&c, Some(&prim(Type::String, true)), &Value::Null),
            r#"{"schema":{"type":"string","optional":true},"payload":null}"#
        );
        assert_eq!(
            from_json(&c, r#"{"schema":null,"payload":null}"#).unwrap(),
            (None, Value::Null)
        );
    }

    fn rich_schema() -> SchemaRef {
        let inner = SchemaBuilder::struct_builder()
            .name("com.example.Inner")
            .field("n", prim(Type::Int16, false))
            .unwrap()
            .field("s", prim(Type::String, true))
            .unwrap()
            .build();
        SchemaBuilder::struct_builder()
            .name("com.example.Outer")
            .version(3)
            .doc("a doc")
            .field("id", prim(Type::Int64, false))
            .unwrap()
            .field("inner", inner)
            .unwrap()
            .field(
                "tags",
                SchemaBuilder::array(prim(Type::String, false)).build(),
            )
            .unwrap()
            .field(
                "scores",
                SchemaBuilder::map(prim(Type::String, false), prim(Type::Float64, true)).build(),
            )
            .unwrap()
            .field(
                "by_id",
                SchemaBuilder::map(prim(Type::Int32, false), prim(Type::Boolean, false))
                    .optional()
                    .build(),
            )
            .unwrap()
            .field("price", SchemaBuilder::decimal(2).build())
            .unwrap()
            .field("day", SchemaBuilder::date().build())
            .unwrap()
            .field("at", SchemaBuilder::timestamp().optional().build())
            .unwrap()
            .field("noon", SchemaBuilder::time().build())
            .unwrap()
            .field("blob", prim(Type::Bytes, true))
            .unwrap()
            .field("ratio", prim(Type::Float32, false))
            .unwrap()
            .field("small", prim(Type::Int8, false))
            .unwrap()
            .build()
    }

    fn rich_value(schema: &SchemaRef) -> Value {
        let inner_schema = schema.field("inner").unwrap().schema.clone();
        let inner = Struct::new(inner_schema)
            .unwrap()
            .with("n", Value::Int16(-7))
            .unwrap();
        Value::Struct(
            Struct::new(schema.clone())
                .unwrap()
                .with("id", Value::Int64(1 << 40))
                .unwrap()
                .with("inner", Value::Struct(inner))
                .unwrap()
                .with(
                    "tags",
                    Value::Array(vec![Value::String("a".into()), Value::String("b\"".into())]),
                )
                .unwrap()
                .with(
                    "scores",
                    Value::Map(vec![
                        (Value::String("x".into()), Value::Float64(0.5)),
                        (Value::String("y".into()), Value::Null),
                    ]),
                )
                .unwrap()
                .with(
                    "by_id",
                    Value::Map(vec![(Value::Int32(1), Value::Boolean(true))]),
                )
                .unwrap()
                .with("price", Value::Decimal(-12345))
                .unwrap()
                .with("day", Value::Date(19_723))
                .unwrap()
                .with("at", Value::Timestamp(1_704_067_200_123))
                .unwrap()
                .with("noon", Value::Time(43_200_000))
                .unwrap()
                .with("blob", Value::Bytes(vec![0, 255, 7]))
                .unwrap()
                .with("ratio", Value::Float32(0.25))
                .unwrap()
                .with("small", Value::Int8(-128))
                .unwrap(),
        )
    }

    #[test]
    fn structs_round_trip_with_schemas() {
        for format in ["BASE64", "numeric"] {
            let c = converter(&[("decimal.format", format)]);
            let schema = rich_schema();
            let value = rich_value(&schema);
            let bytes = c
                .from_connect_data("t", Some(&schema), &value)
                .unwrap()
                .unwrap();
            let (back_schema, back) = c.to_connect_data("t", Some(&bytes)).unwrap();
            assert_eq!(back_schema.as_ref(), Some(&schema));
            assert_eq!(back, value);
            let text = String::from_utf8(bytes).unwrap();
            if format == "BASE64" {
                assert!(text.contains(r#""price":"z8c=""#), "{text}");
            } else {
                assert!(text.contains(r#""price":-123.45"#), "{text}");
            }
            assert!(text.contains(r#""by_id":[[1,true]]"#), "{text}");
            assert!(text.contains(r#""scores":{"x":0.5,"y":null}"#), "{text}");
            assert!(
                text.contains(r#"{"type":"int64","optional":false,"field":"id"}"#),
                "{text}"
            );
            assert!(
                text.contains(r#"{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"},"field":"price"}"#),
                "{text}"
            );
        }
    }

    #[test]
    fn structs_without_schemas_become_plain_json_and_maps() {
        let c = converter(&[("schemas.enable", "false")]);
        let schema = rich_schema();
        let text = to_json(&c, Some(&schema), &rich_value(&schema));
        assert!(
            text.starts_with(r#"{"id":1099511627776,"inner":{"n":-7,"s":null},"tags":["a","b\""]"#),
            "{text}"
        );
        assert!(text.contains(r#""day":19723,"at":1704067200123,"noon":43200000,"blob":"AP8H","ratio":0.25,"small":-128"#), "{text}");
        let (schema, value) = c.to_connect_data("t", Some(text.as_bytes())).unwrap();
        assert_eq!(schema, None);
        assert_eq!(value.get("id"), Some(&Value::Int64(1 << 40)));
        assert_eq!(value.get("ratio"), Some(&Value::Float64(0.25)));
        assert_eq!(
            value.get("inner").unwrap().get("n"),
            Some(&Value::Int64(-7))
        );
        assert_eq!(
            value.get("tags"),
            Some(&Value::Array(vec![
                Value::String("a".into()),
                Value::String("b\"".into())
            ]))
        );
        assert_eq!(value.get("price"), Some(&Value::String("z8c=".into())));
        // Schemaless Connect data too.
        let map = Value::Map(vec![(
            Value::String("k".into()),
            Value::Array(vec![Value::Int32(1), Value::Null]),
        )]);
        assert_eq!(to_json(&c, None, &map), r#"{"k":[1,null]}"#);
        let pairs = Value::Map(vec![(Value::Int64(1), Value::String("one".into()))]);
        assert_eq!(to_json(&c, None, &pairs), r#"[[1,"one"]]"#);
        assert_eq!(to_json(&c, None, &Value::Float64(1e20)), "1.0E20");
        assert_eq!(
            c.to_connect_data("t", Some(b"")).unwrap(),
            (None, Value::Null)
        );
        assert_eq!(from_json(&c, "12.5").unwrap().1, Value::Float64(12.5));
        // No schema for logical values.
        let err = c
            .from_connect_data("t", None, &Value::Decimal(1))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Java class class java.math.BigDecimal does not have corresponding schema type."
        );
    }

    #[test]
    fn decimals_numeric_and_base64() {
        let schema = SchemaBuilder::decimal(2).build();
        let numeric = converter(&[("decimal.format", "NUMERIC"), ("schemas.enable", "false")]);
        let base64 = converter(&[("schemas.enable", "false")]);
        assert_eq!(
            to_json(&numeric, Some(&schema), &Value::Decimal(156)),
            "1.56"
        );
        assert_eq!(
            to_json(&base64, Some(&schema), &Value::Decimal(156)),
            r#""AJw=""#
        );
        // Either form reads back, whichever format is configured.
        let with = JsonConverter::default();
        for payload in ["1.56", "\"AJw=\"", "1.560", "156e-2"] {
            let json = format!(
                r#"{{"schema":{{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{{"scale":"2"}}}},"payload":{payload}}}"#
            );
            assert_eq!(
                from_json(&with, &json).unwrap().1,
                Value::Decimal(156),
                "{payload}"
            );
        }
        let bad = r#"{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},"payload":true}"#;
        assert_eq!(
            from_json(&with, bad).unwrap_err().to_string(),
            "Invalid type for Decimal, underlying representation should be numeric or bytes but was BOOLEAN"
        );
        let bad = r#"{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},"payload":"!!"}"#;
        assert_eq!(
            from_json(&with, bad).unwrap_err().to_string(),
            "Invalid bytes for Decimal field"
        );
        for v in [
            0i128,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            255,
            256,
            i128::MAX,
            i128::MIN,
            1 << 70,
        ] {
            assert_eq!(decimal_from_bytes(&decimal_bytes(v)), Some(v), "{v}");
        }
        assert_eq!(decimal_bytes(0), vec![0]);
        assert_eq!(decimal_bytes(-12345), vec![0xCF, 0xC7]);
        assert_eq!(decimal_from_bytes(&[1; 17]), None);
        assert_eq!(decimal_from_bytes(&[0xFF, 0xFF, 0xFF]), Some(-1));
    }

    #[test]
    fn nulls_and_defaults() {
        let schema = SchemaBuilder::struct_builder()
            .field(
                "n",
                SchemaBuilder::new(Type::Int32)
                    .optional()
                    .default_value(Value::Int32(5))
                    .unwrap()
                    .build(),
            )
            .unwrap()
            .build();
        let value = Value::Struct(Struct::new(schema.clone()).unwrap());
        let replacing = converter(&[("schemas.enable", "false")]);
        let keeping = converter(&[
            ("schemas.enable", "false"),
            ("replace.null.with.default", "false"),
        ]);
        assert_eq!(to_json(&replacing, Some(&schema), &value), r#"{"n":5}"#);
        assert_eq!(to_json(&keeping, Some(&schema), &value), r#"{"n":null}"#);
        let with = JsonConverter::default();
        let text = to_json(&with, Some(&schema), &value);
        assert!(text.contains(r#""default":5"#), "{text}");
        let (back_schema, back) = from_json(&with, r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":true,"default":5,"field":"n"}]},"payload":{"n":null}}"#).unwrap();
        assert_eq!(back_schema.as_ref(), Some(&schema));
        assert_eq!(back.get("n"), Some(&Value::Int32(5)));
        let keeping = converter(&[("replace.null.with.default", "false")]);
        let (_, back) = from_json(&keeping, r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":true,"default":5,"field":"n"}]},"payload":{}}"#).unwrap();
        if let Value::Struct(s) = &back {
            assert_eq!(s.get_without_default("n"), Some(&Value::Null));
        } else {
            panic!("{back:?}");
        }
        // Required and null.
        let err = replacing
            .from_connect_data("t", Some(&prim(Type::Int32, false)), &Value::Null)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Conversion error: null value for field that is required and has no default value"
        );
        let err = from_json(&with, r#"{"schema":{"type":"int32"},"payload":null}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid null value for required INT32 field"
        );
    }

    #[test]
    fn bad_input_gets_kafkas_errors() {
        let c = JsonConverter::default();
        let envelope = ENVELOPE_ERROR;
        for json in [
            "{}",
            r#"{"payload":1}"#,
            r#"{"schema":null,"payload":1,"x":2}"#,
            "[1]",
            "12",
            "\"s\"",
            "",
        ] {
            assert_eq!(
                from_json(&c, json).unwrap_err().to_string(),
                envelope,
                "{json}"
            );
        }
        let err = from_json(&c, "{not json").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "Converting byte[] to Kafka Connect data failed due to serialization error: "
            ),
            "{err}"
        );
        let cases = [
            (
                r#"{"schema":{},"payload":1}"#,
                "Schema must contain 'type' field",
            ),
            (
                r#"{"schema":{"type":"float32"},"payload":1}"#,
                "Unknown schema type: float32",
            ),
            (
                r#"{"schema":{"type":"array"},"payload":[]}"#,
                "Array schema did not specify the element type",
            ),
            (
                r#"{"schema":{"type":"map","values":{"type":"int8"}},"payload":{}}"#,
                "Map schema did not specify the key type",
            ),
            (
                r#"{"schema":{"type":"struct","fields":{}},"payload":{}}"#,
                "Struct schema's \"fields\" argument is not an array.",
            ),
            (
                r#"{"schema":{"type":"struct","fields":[{"type":"int8"}]},"payload":{}}"#,
                "Struct schema's field name not specified properly",
            ),
            (
                r#"{"schema":{"type":"struct","fields":[]},"payload":[]}"#,
                "Structs should be encoded as JSON objects, but found ARRAY",
            ),
            (
                r#"{"schema":{"type":"int8","parameters":{"a":1}},"payload":1}"#,
                "Schema parameters must have string values.",
            ),
            (
                r#"{"schema":{"type":"map","keys":{"type":"string"},"values":{"type":"int8"}},"payload":[]}"#,
                "Maps with string fields should be encoded as JSON objects, but found ARRAY",
            ),
            (
                r#"{"schema":{"type":"map","keys":{"type":"int8"},"values":{"type":"int8"}},"payload":[[1]]}"#,
                "Found invalid map entry, expected length 2 but found :1",
            ),
            (
                r#"{"schema":{"type":"int32","name":"org.apache.kafka.connect.data.Date"},"payload":"2024-01-01"}"#,
                "Invalid type for Date, underlying representation should be integer but was STRING",
            ),
        ];
        for (json, message) in cases {
            assert_eq!(
                from_json(&c, json).unwrap_err().to_string(),
                message,
                "{json}"
            );
        }
        // Jackson's lenient accessors: a string where an int is expected reads as 0.
        assert_eq!(
            from_json(&c, r#"{"schema":{"type":"int32"},"payload":"12"}"#)
                .unwrap()
                .1,
            Value::Int32(0)
        );
        // Wrong Connect values.
        let err = c
            .from_connect_data(
                "t",
                Some(&prim(Type::Int32, false)),
                &Value::String("x".into()),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid type for INT32: class java.lang.String"
        );
        let err = c
            .from_connect_data("t", Some(&SchemaBuilder::date().build()), &Value::Int32(1))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid type for Date, expected Date but was class java.lang.Integer"
        );
        let other = SchemaBuilder::struct_builder()
            .field("a", prim(Type::Int8, true))
            .unwrap()
            .build();
        let schema = rich_schema();
        let err = c
            .from_connect_data("t", Some(&other), &rich_value(&schema))
            .unwrap_err();
        assert_eq!(err.to_string(), "Mismatching schema.");
    }
}
