//! Header transforms: `InsertHeader`, `DropHeaders`, `HeaderFrom`.

use crate::data::{Schema, Struct, Type, Value};
use crate::record::{ConnectRecord, Header};

use super::util::{
    copy_schema_basics, field_value, map_get, require_map, require_struct, Config, Side,
};
use super::{Props, TransformError, Transformation};

/// Kafka's `Values.parseString`, for simple literals: `true`/`false` a boolean, an integer
/// the smallest integer type holding it, another number a float64, anything else a string.
fn parse_literal(s: &str) -> (Option<crate::data::SchemaRef>, Value) {
    let t = s.trim();
    let (ty, v) =
        if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
            (
                Type::Boolean,
                Value::Boolean(t.eq_ignore_ascii_case("true")),
            )
        } else if let Ok(n) = t.parse::<i64>() {
            if let Ok(n) = i8::try_from(n) {
                (Type::Int8, Value::Int8(n))
            } else if let Ok(n) = i16::try_from(n) {
                (Type::Int16, Value::Int16(n))
            } else if let Ok(n) = i32::try_from(n) {
                (Type::Int32, Value::Int32(n))
            } else {
                (Type::Int64, Value::Int64(n))
            }
        } else if let Some(f) = t.parse::<f64>().ok().filter(|f| {
            f.is_finite() && t.chars().all(|c| c.is_ascii_digit() || ".-+eE".contains(c))
        }) {
            (Type::Float64, Value::Float64(f))
        } else {
            (Type::String, Value::String(s.to_string()))
        };
    (Some(Schema::primitive(ty, false)), v)
}

/// Kafka's `InsertHeader`: adds header `header` with `value.literal`.
#[derive(Debug)]
pub(crate) struct InsertHeader {
    header: String,
    schema: Option<crate::data::SchemaRef>,
    value: Value,
}

impl InsertHeader {
    pub(crate) fn new(props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let header = c.non_empty("header")?.to_string();
        let literal = c
            .string("value.literal")
            .ok_or_else(|| TransformError::missing("value.literal"))?;
        let (schema, value) = parse_literal(literal);
        Ok(InsertHeader {
            header,
            schema,
            value,
        })
    }
}

impl Transformation for InsertHeader {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        record.headers.push(Header {
            key: self.header.clone(),
            schema: self.schema.clone(),
            value: self.value.clone(),
        });
        Ok(Some(record))
    }
}

/// Kafka's `DropHeaders`: removes every header with one of the `headers` keys.
#[derive(Debug)]
pub(crate) struct DropHeaders(Vec<String>);

impl DropHeaders {
    pub(crate) fn new(props: &Props) -> Result<Self, TransformError> {
        let headers = Config(props).required_list("headers")?;
        if headers.is_empty() {
            return Err(TransformError::invalid("headers", "", "Empty list"));
        }
        Ok(DropHeaders(headers))
    }
}

impl Transformation for DropHeaders {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        record.headers.retain(|h| !self.0.contains(&h.key));
        Ok(Some(record))
    }
}

/// Kafka's `HeaderFrom`: copies or moves fields of the key or value into headers.
#[derive(Debug)]
pub(crate) struct HeaderFrom {
    side: Side,
    fields: Vec<String>,
    headers: Vec<String>,
    moving: bool,
    replace_null_with_default: bool,
}

impl HeaderFrom {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let fields = c.required_list("fields")?;
        let headers = c.required_list("headers")?;
        let operation = match c.string("operation").map(str::trim) {
            None => return Err(TransformError::missing("operation")),
            Some(op @ ("move" | "copy")) => op,
            Some(op) => {
                return Err(TransformError::invalid(
                    "operation",
                    op,
                    "String must be one of: move, copy",
                ))
            }
        };
        if fields.len() != headers.len() {
            return Err(TransformError::Config(
                "'fields' config must have the same number of elements as 'headers' config."
                    .to_string(),
            ));
        }
        Ok(HeaderFrom {
            side,
            fields,
            headers,
            moving: operation == "move",
            replace_null_with_default: Config(props).boolean("replace.null.with.default", true)?,
        })
    }
}

impl Transformation for HeaderFrom {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        let purpose = if self.moving {
            "header move"
        } else {
            "header copy"
        };
        let (schema, value) = self.side.take(&mut record);
        match schema {
            None => {
                let entries = require_map(&value, purpose)?;
                let mut updated = entries.to_vec();
                for (field, header) in self.fields.iter().zip(&self.headers) {
                    let v = map_get(entries, field).cloned().unwrap_or(Value::Null);
                    if self.moving {
                        updated.retain(|(k, _)| !matches!(k, Value::String(k) if k == field));
                    }
                    record.headers.push(Header {
                        key: header.clone(),
                        schema: None,
                        value: v,
                    });
                }
                Ok(Some(self.side.with(record, None, Value::Map(updated))))
            }
            Some(schema) => {
                let s = require_struct(&value, purpose)?;
                let mut new_headers = Vec::new();
                for (field, header) in self.fields.iter().zip(&self.headers) {
                    let f = schema.field(field).ok_or_else(|| {
                        TransformError::data(format!("Field does not exist: {field}"))
                    })?;
                    new_headers.push(Header {
                        key: header.clone(),
                        schema: Some(f.schema.clone()),
                        value: field_value(s, field, self.replace_null_with_default),
                    });
                }
                let (schema, value) = if self.moving {
                    let mut builder = copy_schema_basics(&schema);
                    for f in &schema.fields {
                        if !self.fields.contains(&f.name) {
                            builder = builder.field(f.name.clone(), f.schema.clone())?;
                        }
                    }
                    let moved = builder.build();
                    let mut out = Struct::new(moved.clone())?;
                    for f in &moved.fields {
                        out.put(
                            &f.name,
                            field_value(s, &f.name, self.replace_null_with_default),
                        )?;
                    }
                    (moved, Value::Struct(out))
                } else {
                    (schema, value)
                };
                record.headers.extend(new_headers);
                Ok(Some(self.side.with(record, Some(schema), value)))
            }
        }
    }
}
