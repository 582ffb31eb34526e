//! Kafka's `TimestampConverter`: converts a timestamp field (or the whole key or value)
//! between a formatted string, Unix time, and Connect's Date, Time and Timestamp, in UTC.

use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value, DATE, TIME, TIMESTAMP};
use crate::record::ConnectRecord;

use super::timefmt::DateFormat;
use super::util::{
    copy_basics_onto, field_value, java_class, map_get, map_put, require_map, require_struct,
    Config, Side,
};
use super::{Props, TransformError, Transformation};

const PURPOSE: &str = "converting timestamp formats";
const MS_PER_DAY: i64 = 86_400_000;

/// A timestamp representation (Kafka's `target.type` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    String,
    Unix,
    Date,
    Time,
    Timestamp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Unix => "unix",
            Kind::Date => "Date",
            Kind::Time => "Time",
            Kind::Timestamp => "Timestamp",
        }
    }

    fn schema(self, optional: bool) -> SchemaRef {
        let b = match self {
            Kind::String => return Schema::primitive(Type::String, optional),
            Kind::Unix => return Schema::primitive(Type::Int64, optional),
            Kind::Date => SchemaBuilder::date(),
            Kind::Time => SchemaBuilder::time(),
            Kind::Timestamp => SchemaBuilder::timestamp(),
        };
        if optional {
            b.optional().build()
        } else {
            b.build()
        }
    }

    /// Kafka's `timestampTypeFromSchema`.
    fn from_schema(schema: &Schema) -> Result<Kind, TransformError> {
        Ok(match schema.name.as_deref() {
            Some(TIMESTAMP) => Kind::Timestamp,
            Some(DATE) => Kind::Date,
            Some(TIME) => Kind::Time,
            _ if schema.schema_type == Type::String => Kind::String,
            _ if schema.schema_type == Type::Int64 => Kind::Unix,
            _ => {
                let shown = match &schema.name {
                    Some(n) => format!("Schema{{{n}:{}}}", schema.schema_type),
                    None => format!("Schema{{{}}}", schema.schema_type),
                };
                return Err(TransformError::data(format!(
                    "Schema {shown} does not correspond to a known timestamp type format"
                )));
            }
        })
    }

    /// Kafka's `inferTimestampType`.
    fn infer(value: &Value) -> Result<Kind, TransformError> {
        Ok(match value {
            Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => Kind::Timestamp,
            Value::Int64(_) => Kind::Unix,
            Value::String(_) => Kind::String,
            other => {
                return Err(TransformError::data(format!(
                    "TimestampConverter does not support {} objects as timestamps",
                    java_class(other)
                )))
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Precision {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

#[derive(Debug)]
pub(crate) struct TimestampConverter {
    side: Side,
    field: String,
    target: Kind,
    pattern: String,
    format: Option<DateFormat>,
    precision: Precision,
    replace_null_with_default: bool,
}

impl TimestampConverter {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let field = c.string("field").map(str::trim).unwrap_or("").to_string();
        c.required("target.type")?;
        let target = match c.one_of(
            "target.type",
            "",
            &["string", "unix", "Date", "Time", "Timestamp"],
        )? {
            "string" => Kind::String,
            "unix" => Kind::Unix,
            "Date" => Kind::Date,
            "Time" => Kind::Time,
            _ => Kind::Timestamp,
        };
        let pattern = c.string("format").map(str::trim).unwrap_or("").to_string();
        let precision = match c.one_of(
            "unix.precision",
            "milliseconds",
            &["nanoseconds", "microseconds", "milliseconds", "seconds"],
        )? {
            "nanoseconds" => Precision::Nanos,
            "microseconds" => Precision::Micros,
            "seconds" => Precision::Seconds,
            _ => Precision::Millis,
        };
        let replace_null_with_default = c.boolean("replace.null.with.default", true)?;
        if target == Kind::String && pattern.is_empty() {
            return Err(TransformError::Config(
                "TimestampConverter requires format option to be specified when using string \
                 timestamps"
                    .to_string(),
            ));
        }
        let format = if pattern.is_empty() {
            None
        } else {
            Some(DateFormat::parse(&pattern).map_err(|e| {
                TransformError::Config(format!(
                    "TimestampConverter requires a SimpleDateFormat-compatible pattern for \
                     string timestamps: {pattern} ({e})"
                ))
            })?)
        };
        Ok(TimestampConverter {
            side,
            field,
            target,
            pattern,
            format,
            precision,
            replace_null_with_default,
        })
    }

    fn format(&self) -> Result<&DateFormat, TransformError> {
        self.format.as_ref().ok_or_else(|| {
            TransformError::data(
                "TimestampConverter requires format option to be specified when using string \
                 timestamps",
            )
        })
    }

    /// Kafka's translators' `toRaw`: milliseconds since the epoch.
    fn to_raw(&self, kind: Kind, value: &Value) -> Result<i64, TransformError> {
        match kind {
            Kind::String => {
                let Value::String(s) = value else {
                    return Err(TransformError::data(format!(
                        "Expected string timestamp to be a String, but found {}",
                        java_class(value)
                    )));
                };
                self.format()?.parse_millis(s).ok_or_else(|| {
                    TransformError::data(format!(
                        "Could not parse timestamp: value ({s}) does not match pattern ({})",
                        self.pattern
                    ))
                })
            }
            Kind::Unix => {
                let Value::Int64(t) = *value else {
                    return Err(TransformError::data(format!(
                        "Expected Unix timestamp to be a Long, but found {}",
                        java_class(value)
                    )));
                };
                Ok(match self.precision {
                    Precision::Seconds => t.saturating_mul(1000),
                    Precision::Millis => t,
                    Precision::Micros => t / 1000,
                    Precision::Nanos => t / 1_000_000,
                })
            }
            Kind::Date | Kind::Time | Kind::Timestamp => match *value {
                Value::Date(d) => Ok(i64::from(d) * MS_PER_DAY),
                Value::Time(t) => Ok(i64::from(t)),
                Value::Timestamp(ms) => Ok(ms),
                _ => Err(TransformError::data(format!(
                    "Expected {} to be a java.util.Date, but found {}",
                    kind.name(),
                    java_class(value)
                ))),
            },
        }
    }

    /// Kafka's translators' `toType` for the target type.
    fn to_type(&self, ms: i64) -> Result<Value, TransformError> {
        Ok(match self.target {
            Kind::String => Value::String(self.format()?.format(ms)),
            Kind::Unix => Value::Int64(match self.precision {
                Precision::Seconds => ms / 1000,
                Precision::Millis => ms,
                Precision::Micros => ms.saturating_mul(1000),
                Precision::Nanos => ms.saturating_mul(1_000_000),
            }),
            Kind::Date => {
                let days = ms.div_euclid(MS_PER_DAY);
                Value::Date(i32::try_from(days).map_err(|_| {
                    TransformError::data(format!(
                        "Timestamp {ms} is out of range for a Connect Date"
                    ))
                })?)
            }
            Kind::Time => Value::Time(ms.rem_euclid(MS_PER_DAY) as i32),
            Kind::Timestamp => Value::Timestamp(ms),
        })
    }

    /// Kafka's `convertTimestamp`: `kind` is the input's representation, `None` to infer it.
    fn convert(&self, value: &Value, kind: Option<Kind>) -> Result<Value, TransformError> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        let kind = match kind {
            Some(k) => k,
            None => Kind::infer(value)?,
        };
        let ms = self.to_raw(kind, value)?;
        self.to_type(ms)
    }

    fn convert_struct(&self, value: &Struct, schema: &SchemaRef) -> Result<Struct, TransformError> {
        let mut updated = Struct::new(schema.clone())?;
        for field in &value.schema().fields {
            let v = field_value(value, &field.name, self.replace_null_with_default);
            let v = if field.name == self.field {
                self.convert(&v, Some(Kind::from_schema(&field.schema)?))?
            } else {
                v
            };
            updated.put(&field.name, v)?;
        }
        Ok(updated)
    }
}

impl Transformation for TimestampConverter {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        let (schema, value) = self.side.take(&mut record);
        match schema {
            None => {
                if value.is_null() || self.field.is_empty() {
                    let v = self.convert(&value, None)?;
                    return Ok(Some(self.side.with(record, None, v)));
                }
                let entries = require_map(&value, PURPOSE)?;
                let mut updated = entries.to_vec();
                let v =
                    self.convert(map_get(entries, &self.field).unwrap_or(&Value::Null), None)?;
                map_put(&mut updated, &self.field, v);
                Ok(Some(self.side.with(record, None, Value::Map(updated))))
            }
            Some(schema) if self.field.is_empty() => {
                let kind = Kind::from_schema(&schema)?;
                let updated_schema = self.target.schema(schema.optional);
                let v = self.convert(&value, Some(kind))?;
                Ok(Some(self.side.with(record, Some(updated_schema), v)))
            }
            Some(schema) => {
                if !value.is_null() {
                    require_struct(&value, PURPOSE)?;
                }
                if schema.schema_type != Type::Struct {
                    return Err(TransformError::data(
                        "Cannot list fields on non-struct type",
                    ));
                }
                let mut builder = copy_basics_onto(&schema, SchemaBuilder::struct_builder());
                for field in &schema.fields {
                    let s = if field.name == self.field {
                        self.target.schema(field.schema.optional)
                    } else {
                        field.schema.clone()
                    };
                    builder = builder.field(field.name.clone(), s)?;
                }
                if schema.optional {
                    builder = builder.optional();
                }
                if let Some(Value::Struct(default)) = &schema.default {
                    let plain = builder.clone().build();
                    let converted = self.convert_struct(default, &plain)?;
                    builder = builder.default_value(Value::Struct(converted))?;
                }
                let updated_schema = builder.build();
                let v = match &value {
                    Value::Struct(s) => Value::Struct(self.convert_struct(s, &updated_schema)?),
                    _ => Value::Null,
                };
                Ok(Some(self.side.with(record, Some(updated_schema), v)))
            }
        }
    }
}
