//! Kafka's `Flatten`: nested structs (with a schema) or maps (without) become one level,
//! the field names joined with `delimiter`.

use crate::data::{Schema, SchemaBuilder, Struct, Type, Value};
use crate::record::ConnectRecord;

use super::util::{copy_basics, copy_basics_onto, map_put, require_map, require_struct, Side};
use super::util::{java_class, Config};
use super::{Props, TransformError, Transformation};

const PURPOSE: &str = "flattening";

#[derive(Debug)]
pub(crate) struct Flatten {
    side: Side,
    delimiter: String,
}

impl Flatten {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        let delimiter = Config(props)
            .string("delimiter")
            .map(str::trim)
            .unwrap_or(".")
            .to_string();
        Ok(Flatten { side, delimiter })
    }

    fn name(&self, prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}{}{name}", self.delimiter)
        }
    }

    fn flatten_map(
        &self,
        entries: &[(Value, Value)],
        prefix: &str,
        out: &mut Vec<(Value, Value)>,
    ) -> Result<(), TransformError> {
        for (k, v) in entries {
            let key = match k {
                Value::String(k) => k,
                other => {
                    return Err(TransformError::data(format!(
                        "{} cannot be cast to class java.lang.String",
                        java_class(other)
                    )))
                }
            };
            let name = self.name(prefix, key);
            match v {
                Value::Map(inner) => self.flatten_map(inner, &name, out)?,
                Value::Struct(_) => {
                    return Err(TransformError::data(format!(
                        "Flatten transformation does not support {} for record without schemas \
                         (for field {name}).",
                        java_class(v)
                    )))
                }
                Value::Decimal(_) | Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => {
                    return Err(TransformError::data(format!(
                        "Flatten transformation was passed a value of type {} which is not \
                         supported by Connect's data API",
                        java_class(v)
                    )))
                }
                _ => map_put(out, &name, v.clone()),
            }
        }
        Ok(())
    }

    fn unsupported(t: Type, name: &str) -> TransformError {
        TransformError::data(format!(
            "Flatten transformation does not support {t} for record with schemas (for field {name})."
        ))
    }

    /// Kafka's `buildUpdatedSchema`: every leaf field, optional when an ancestor is, with
    /// its own default or else the one its parent's default struct holds.
    fn build_schema(
        &self,
        schema: &Schema,
        prefix: &str,
        mut builder: SchemaBuilder,
        optional: bool,
        parent_default: Option<&Struct>,
    ) -> Result<SchemaBuilder, TransformError> {
        if schema.schema_type != Type::Struct {
            return Err(TransformError::data(
                "Cannot list fields on non-struct type",
            ));
        }
        for field in &schema.fields {
            let name = self.name(prefix, &field.name);
            let field_optional = optional || field.schema.optional;
            let default = match &field.schema.default {
                Some(d) => Some(d.clone()),
                None => parent_default
                    .and_then(|p| p.get(&field.name))
                    .filter(|v| !v.is_null())
                    .cloned(),
            };
            match field.schema.schema_type {
                Type::Struct => {
                    let default = match &default {
                        Some(Value::Struct(s)) => Some(s),
                        _ => None,
                    };
                    builder =
                        self.build_schema(&field.schema, &name, builder, field_optional, default)?;
                }
                Type::Map => return Err(Self::unsupported(Type::Map, &name)),
                _ => {
                    let mut b = copy_basics(&field.schema);
                    if field_optional {
                        b = b.optional();
                    }
                    if let Some(d) = default {
                        b = b.default_value(d)?;
                    }
                    builder = builder.field(name, b.build())?;
                }
            }
        }
        Ok(builder)
    }

    fn build_value(
        &self,
        s: &Struct,
        prefix: &str,
        out: &mut Struct,
    ) -> Result<(), TransformError> {
        for field in &s.schema().fields {
            let name = self.name(prefix, &field.name);
            match field.schema.schema_type {
                Type::Struct => {
                    if let Some(Value::Struct(inner)) = s.get(&field.name) {
                        self.build_value(inner, &name, out)?;
                    }
                }
                Type::Map => return Err(Self::unsupported(Type::Map, &name)),
                _ => out.put(&name, s.get(&field.name).cloned().unwrap_or(Value::Null))?,
            }
        }
        Ok(())
    }
}

impl Transformation for Flatten {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        if self.side.value(&record).is_null() {
            return Ok(Some(record));
        }
        let (schema, value) = self.side.take(&mut record);
        match schema {
            None => {
                let entries = require_map(&value, PURPOSE)?;
                let mut out = Vec::new();
                self.flatten_map(entries, "", &mut out)?;
                Ok(Some(self.side.with(record, None, Value::Map(out))))
            }
            Some(schema) => {
                let value = require_struct(&value, PURPOSE)?;
                let default = match &schema.default {
                    Some(Value::Struct(s)) => Some(s),
                    _ => None,
                };
                let builder = self.build_schema(
                    &schema,
                    "",
                    copy_basics_onto(&schema, SchemaBuilder::struct_builder()),
                    schema.optional,
                    default,
                )?;
                let updated_schema = builder.build();
                let mut updated = Struct::new(updated_schema.clone())?;
                self.build_value(value, "", &mut updated)?;
                Ok(Some(self.side.with(
                    record,
                    Some(updated_schema),
                    Value::Struct(updated),
                )))
            }
        }
    }
}
