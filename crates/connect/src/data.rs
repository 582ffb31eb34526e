//! Connect's data model (Kafka's `org.apache.kafka.connect.data`): schemas of primitive,
//! array, map and struct types, optional with defaults, named and versioned, with Kafka's
//! logical types (Decimal, Date, Time, Timestamp), and the values they describe.
//!
//! Logical values are their own [`Value`] variants (Kafka keeps a `BigDecimal` or a
//! `java.util.Date` in memory): a Decimal is an `i128` unscaled value and the schema's
//! scale (38 digits, what databases' DECIMAL holds; larger is an error, never a silent
//! truncation), a Date days since the epoch, a Time milliseconds of the day, a Timestamp
//! milliseconds since the epoch.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Kafka's `Schema.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl Type {
    pub const ALL: [Type; 12] = [
        Type::Int8,
        Type::Int16,
        Type::Int32,
        Type::Int64,
        Type::Float32,
        Type::Float64,
        Type::Boolean,
        Type::String,
        Type::Bytes,
        Type::Array,
        Type::Map,
        Type::Struct,
    ];

    /// The lower-case name Connect's JSON schemas use (`int32`, `struct`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Type::Int8 => "int8",
            Type::Int16 => "int16",
            Type::Int32 => "int32",
            Type::Int64 => "int64",
            Type::Float32 => "float32",
            Type::Float64 => "float64",
            Type::Boolean => "boolean",
            Type::String => "string",
            Type::Bytes => "bytes",
            Type::Array => "array",
            Type::Map => "map",
            Type::Struct => "struct",
        }
    }

    /// Parses a name as Kafka does (case-insensitive).
    pub fn parse(name: &str) -> Option<Type> {
        Type::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    pub fn is_primitive(self) -> bool {
        !matches!(self, Type::Array | Type::Map | Type::Struct)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name().to_ascii_uppercase())
    }
}

/// A schema, shared.
pub type SchemaRef = Arc<Schema>;

/// Kafka's `ConnectSchema`.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub schema_type: Type,
    pub optional: bool,
    pub default: Option<Value>,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    pub parameters: BTreeMap<String, String>,
    /// Struct fields, in order.
    pub fields: Vec<Field>,
    /// Map keys.
    pub key_schema: Option<SchemaRef>,
    /// Map values and array elements.
    pub value_schema: Option<SchemaRef>,
}

/// A struct's field.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub index: usize,
    pub schema: SchemaRef,
}

/// Kafka's logical type names.
pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
pub const DATE: &str = "org.apache.kafka.connect.data.Date";
pub const TIME: &str = "org.apache.kafka.connect.data.Time";
pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
/// The Decimal schema's parameter holding its scale.
pub const DECIMAL_SCALE: &str = "scale";

/// A value that does not fit its schema (Kafka's `DataException`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

fn data_error(message: impl Into<String>) -> DataError {
    DataError(message.into())
}

impl Schema {
    fn of(schema_type: Type) -> Schema {
        Schema {
            schema_type,
            optional: false,
            default: None,
            name: None,
            version: None,
            doc: None,
            parameters: BTreeMap::new(),
            fields: Vec::new(),
            key_schema: None,
            value_schema: None,
        }
    }

    /// Kafka's `Schema.INT8_SCHEMA` ... `BYTES_SCHEMA` and their `OPTIONAL_` twins.
    pub fn primitive(schema_type: Type, optional: bool) -> SchemaRef {
        debug_assert!(schema_type.is_primitive());
        Arc::new(Schema {
            optional,
            ..Schema::of(schema_type)
        })
    }

    pub fn is_logical(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name)
    }

    /// The scale of a Decimal schema.
    pub fn decimal_scale(&self) -> Result<i32, DataError> {
        self.parameters
            .get(DECIMAL_SCALE)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| data_error("Invalid Decimal schema: scale parameter not found."))
    }

    /// A struct field by name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Kafka's `ConnectSchema.validateValue`: whether `value` fits this schema.
    pub fn validate(&self, value: &Value) -> Result<(), DataError> {
        self.validate_named(None, value)
    }

    fn validate_named(&self, field: Option<&str>, value: &Value) -> Result<(), DataError> {
        let location = || match field {
            Some(name) => format!(" for field: \"{name}\""),
            None => String::new(),
        };
        if value.is_null() {
            if self.optional {
                return Ok(());
            }
            return Err(data_error(format!(
                "Invalid value: null used for required field: \"{}\", schema type: {}",
                field.unwrap_or("null"),
                self.schema_type
            )));
        }
        let expected = match self.name.as_deref() {
            Some(DECIMAL) => matches!(value, Value::Decimal(_)),
            Some(DATE) => matches!(value, Value::Date(_)),
            Some(TIME) => matches!(value, Value::Time(_)),
            Some(TIMESTAMP) => matches!(value, Value::Timestamp(_)),
            _ => value.fits_type(self.schema_type),
        };
        if !expected {
            return Err(data_error(format!(
                "Invalid Java object for schema{} with type {}: {}{}",
                self.name
                    .as_deref()
                    .map(|n| format!(" \"{n}\""))
                    .unwrap_or_default(),
                self.schema_type,
                value.kind(),
                location()
            )));
        }
        match (self.schema_type, value) {
            (Type::Struct, Value::Struct(s)) => {
                if *s.schema != *self {
                    return Err(data_error(format!(
                        "Struct schemas do not match{}.",
                        location()
                    )));
                }
                s.validate()
            }
            (Type::Array, Value::Array(items)) => {
                let element = self
                    .value_schema
                    .as_ref()
                    .ok_or_else(|| data_error("Array schema has no value schema"))?;
                items
                    .iter()
                    .try_for_each(|item| element.validate_named(field, item))
            }
            (Type::Map, Value::Map(entries)) => {
                let (keys, values) = match (&self.key_schema, &self.value_schema) {
                    (Some(k), Some(v)) => (k, v),
                    _ => return Err(data_error("Map schema has no key or value schema")),
                };
                entries.iter().try_for_each(|(k, v)| {
                    keys.validate_named(field, k)?;
                    values.validate_named(field, v)
                })
            }
            _ => Ok(()),
        }
    }
}

/// Builds schemas as Kafka's `SchemaBuilder`.
#[derive(Clone, Debug)]
pub struct SchemaBuilder {
    schema: Schema,
}

impl SchemaBuilder {
    pub fn new(schema_type: Type) -> SchemaBuilder {
        SchemaBuilder {
            schema: Schema::of(schema_type),
        }
    }

    pub fn struct_builder() -> SchemaBuilder {
        SchemaBuilder::new(Type::Struct)
    }

    pub fn array(element: SchemaRef) -> SchemaBuilder {
        let mut builder = SchemaBuilder::new(Type::Array);
        builder.schema.value_schema = Some(element);
        builder
    }

    pub fn map(keys: SchemaRef, values: SchemaRef) -> SchemaBuilder {
        let mut builder = SchemaBuilder::new(Type::Map);
        builder.schema.key_schema = Some(keys);
        builder.schema.value_schema = Some(values);
        builder
    }

    /// Kafka's `Decimal.builder(scale)`.
    pub fn decimal(scale: i32) -> SchemaBuilder {
        SchemaBuilder::new(Type::Bytes)
            .name(DECIMAL)
            .version(1)
            .parameter(DECIMAL_SCALE, scale.to_string())
    }

    /// Kafka's `Date.builder()`: days since the epoch.
    pub fn date() -> SchemaBuilder {
        SchemaBuilder::new(Type::Int32).name(DATE).version(1)
    }

    /// Kafka's `Time.builder()`: milliseconds of the day.
    pub fn time() -> SchemaBuilder {
        SchemaBuilder::new(Type::Int32).name(TIME).version(1)
    }

    /// Kafka's `Timestamp.builder()`: milliseconds since the epoch.
    pub fn timestamp() -> SchemaBuilder {
        SchemaBuilder::new(Type::Int64).name(TIMESTAMP).version(1)
    }

    pub fn optional(mut self) -> SchemaBuilder {
        self.schema.optional = true;
        self
    }

    pub fn required(mut self) -> SchemaBuilder {
        self.schema.optional = false;
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> SchemaBuilder {
        self.schema.name = Some(name.into());
        self
    }

    pub fn version(mut self, version: i32) -> SchemaBuilder {
        self.schema.version = Some(version);
        self
    }

    pub fn doc(mut self, doc: impl Into<String>) -> SchemaBuilder {
        self.schema.doc = Some(doc.into());
        self
    }

    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> SchemaBuilder {
        self.schema.parameters.insert(key.into(), value.into());
        self
    }

    /// A default value, checked against the schema as Kafka does.
    pub fn default_value(mut self, value: Value) -> Result<SchemaBuilder, DataError> {
        self.schema
            .validate(&value)
            .map_err(|e| data_error(format!("Invalid default value: {}", e.0)))?;
        self.schema.default = Some(value);
        Ok(self)
    }

    /// Adds a struct field; a name used twice is an error, as in Kafka.
    pub fn field(
        mut self,
        name: impl Into<String>,
        schema: SchemaRef,
    ) -> Result<SchemaBuilder, DataError> {
        let name = name.into();
        if self.schema.schema_type != Type::Struct {
            return Err(data_error(
                "Cannot create fields on type ".to_string() + &self.schema.schema_type.to_string(),
            ));
        }
        if name.is_empty() {
            return Err(data_error("fieldName cannot be null."));
        }
        if self.schema.field(&name).is_some() {
            return Err(data_error(format!(
                "Cannot create field because of field name duplication {name}"
            )));
        }
        let index = self.schema.fields.len();
        self.schema.fields.push(Field {
            name,
            index,
            schema,
        });
        Ok(self)
    }

    pub fn build(self) -> SchemaRef {
        Arc::new(self.schema)
    }
}

/// A value of the data model.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Boolean(bool),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    /// Entries in order (Connect maps may have any key type).
    Map(Vec<(Value, Value)>),
    Struct(Struct),
    /// Decimal: the unscaled value (the scale is the schema's).
    Decimal(i128),
    /// Date: days since 1970-01-01.
    Date(i32),
    /// Time: milliseconds since midnight.
    Time(i32),
    /// Timestamp: milliseconds since the epoch.
    Timestamp(i64),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    fn fits_type(&self, schema_type: Type) -> bool {
        matches!(
            (schema_type, self),
            (Type::Int8, Value::Int8(_))
                | (Type::Int16, Value::Int16(_))
                | (Type::Int32, Value::Int32(_))
                | (Type::Int64, Value::Int64(_))
                | (Type::Float32, Value::Float32(_))
                | (Type::Float64, Value::Float64(_))
                | (Type::Boolean, Value::Boolean(_))
                | (Type::String, Value::String(_))
                | (Type::Bytes, Value::Bytes(_))
                | (Type::Array, Value::Array(_))
                | (Type::Map, Value::Map(_))
                | (Type::Struct, Value::Struct(_))
        )
    }

    /// What the value is, in messages (Kafka names the Java class).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int8(_) => "java.lang.Byte",
            Value::Int16(_) => "java.lang.Short",
            Value::Int32(_) => "java.lang.Integer",
            Value::Int64(_) => "java.lang.Long",
            Value::Float32(_) => "java.lang.Float",
            Value::Float64(_) => "java.lang.Double",
            Value::Boolean(_) => "java.lang.Boolean",
            Value::String(_) => "java.lang.String",
            Value::Bytes(_) => "[B",
            Value::Array(_) => "java.util.ArrayList",
            Value::Map(_) => "java.util.HashMap",
            Value::Struct(_) => "org.apache.kafka.connect.data.Struct",
            Value::Decimal(_) => "java.math.BigDecimal",
            Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => "java.util.Date",
        }
    }

    /// The value of a schemaless map entry or struct field, by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(s) => s.get(name),
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::String(k) if k == name))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Kafka's `Struct`: a value per field of a struct schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Struct {
    schema: SchemaRef,
    values: Vec<Value>,
}

impl Struct {
    /// An empty struct of `schema` (every field null until put).
    pub fn new(schema: SchemaRef) -> Result<Struct, DataError> {
        if schema.schema_type != Type::Struct {
            return Err(data_error(
                "Not a struct schema: ".to_string() + &schema.schema_type.to_string(),
            ));
        }
        let values = vec![Value::Null; schema.fields.len()];
        Ok(Struct { schema, values })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// A field's value; a null one gives the field's default, as Kafka's `get`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let field = self.schema.field(name)?;
        let value = &self.values[field.index];
        match (value, &field.schema.default) {
            (Value::Null, Some(default)) => Some(default),
            _ => Some(value),
        }
    }

    /// The stored value, without the default (Kafka's `getWithoutDefault`).
    pub fn get_without_default(&self, name: &str) -> Option<&Value> {
        let field = self.schema.field(name)?;
        Some(&self.values[field.index])
    }

    /// Sets a field, checking the value against the field's schema.
    pub fn put(&mut self, name: &str, value: Value) -> Result<(), DataError> {
        let field = self
            .schema
            .field(name)
            .ok_or_else(|| data_error(format!("{name} is not a valid field name")))?;
        field.schema.validate_named(Some(name), &value)?;
        self.values[field.index] = value;
        Ok(())
    }

    /// Builder style `put`.
    pub fn with(mut self, name: &str, value: Value) -> Result<Struct, DataError> {
        self.put(name, value)?;
        Ok(self)
    }

    /// Every required field is set (Kafka's `Struct.validate`).
    pub fn validate(&self) -> Result<(), DataError> {
        for field in &self.schema.fields {
            let value = match (&self.values[field.index], &field.schema.default) {
                (Value::Null, Some(default)) => default,
                (value, _) => value,
            };
            field.schema.validate_named(Some(&field.name), value)?;
        }
        Ok(())
    }

    /// (field, value) in field order.
    pub fn iter(&self) -> impl Iterator<Item = (&Field, &Value)> {
        self.schema.fields.iter().zip(self.values.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> SchemaRef {
        SchemaBuilder::struct_builder()
            .name("com.example.Person")
            .field("id", Schema::primitive(Type::Int64, false))
            .unwrap()
            .field("name", Schema::primitive(Type::String, true))
            .unwrap()
            .field("balance", SchemaBuilder::decimal(2).optional().build())
            .unwrap()
            .field("born", SchemaBuilder::date().optional().build())
            .unwrap()
            .build()
    }

    #[test]
    fn structs_check_their_values_against_the_schema() {
        let schema = person();
        let mut s = Struct::new(schema.clone()).unwrap();
        assert!(s.validate().is_err(), "id is required");
        s.put("id", Value::Int64(7)).unwrap();
        s.put("balance", Value::Decimal(12345)).unwrap();
        s.put("born", Value::Date(19000)).unwrap();
        s.validate().unwrap();
        schema.validate(&Value::Struct(s.clone())).unwrap();
        let err = s.put("id", Value::String("7".into())).unwrap_err();
        assert!(
            err.0.contains("INT64") && err.0.contains("java.lang.String"),
            "{err}"
        );
        assert!(s.put("missing", Value::Null).is_err());
        assert!(
            s.put("balance", Value::Bytes(vec![1])).is_err(),
            "a Decimal wants a decimal"
        );
        assert_eq!(
            schema.field("balance").unwrap().schema.decimal_scale(),
            Ok(2)
        );
        // A null field falls back to the default.
        let with_default = SchemaBuilder::struct_builder()
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
        let s = Struct::new(with_default).unwrap();
        assert_eq!(s.get("n"), Some(&Value::Int32(5)));
        assert_eq!(s.get_without_default("n"), Some(&Value::Null));
    }

    #[test]
    fn builders_refuse_what_kafka_refuses() {
        assert!(SchemaBuilder::struct_builder()
            .field("a", Schema::primitive(Type::Int8, false))
            .unwrap()
            .field("a", Schema::primitive(Type::Int8, false))
            .is_err());
        assert!(SchemaBuilder::new(Type::Int32)
            .field("a", Schema::primitive(Type::Int8, false))
            .is_err());
        assert!(SchemaBuilder::new(Type::Int32)
            .default_value(Value::String("x".into()))
            .is_err());
        assert_eq!(Type::parse("STRUCT"), Some(Type::Struct));
        assert_eq!(Type::parse("nope"), None);
    }

    #[test]
    fn arrays_and_maps_check_their_elements() {
        let ints = SchemaBuilder::array(Schema::primitive(Type::Int32, false)).build();
        ints.validate(&Value::Array(vec![Value::Int32(1), Value::Int32(2)]))
            .unwrap();
        assert!(ints.validate(&Value::Array(vec![Value::Int64(1)])).is_err());
        let map = SchemaBuilder::map(
            Schema::primitive(Type::String, false),
            Schema::primitive(Type::Float64, true),
        )
        .build();
        map.validate(&Value::Map(vec![(Value::String("a".into()), Value::Null)]))
            .unwrap();
        assert!(map
            .validate(&Value::Map(vec![(Value::Int8(1), Value::Null)]))
            .is_err());
    }
}
