//! Debezium's `io.debezium.transforms.ExtractNewRecordState`: unwraps a change event's
//! envelope (`before`, `after`, `source`, `op`, `ts_ms`) to its new row state.
//!
//! Options: `drop.tombstones` (default true), `delete.handling.mode` (`drop`, the default,
//! `rewrite`: the deleted row's `before` state with `__deleted=true` and `__deleted=false` on
//! other rows, `none`: the delete passes as a null value), `add.fields` (envelope fields such
//! as `op`, `ts_ms`, or `source` fields as `table` or `source.table`, added as
//! `<prefix><name>` with dots as underscores), `add.fields.prefix` (default `__`). A record
//! that is not an envelope passes unchanged.

use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use crate::record::ConnectRecord;

use super::util::{copy_schema_basics, map_get, map_put, parse_list, Config};
use super::{Props, TransformError, Transformation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeleteMode {
    Drop,
    Rewrite,
    None,
}

#[derive(Debug)]
pub(crate) struct ExtractNewRecordState {
    drop_tombstones: bool,
    delete_mode: DeleteMode,
    /// (path in the envelope, added field name).
    add_fields: Vec<(String, String)>,
    deleted_field: String,
}

impl ExtractNewRecordState {
    pub(crate) fn new(props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let mode = c
            .string("delete.handling.mode")
            .map(str::trim)
            .unwrap_or("drop");
        let delete_mode = match mode.to_ascii_lowercase().as_str() {
            "drop" => DeleteMode::Drop,
            "rewrite" => DeleteMode::Rewrite,
            "none" => DeleteMode::None,
            _ => return Err(TransformError::invalid(
                "delete.handling.mode",
                mode,
                "The 'delete.handling.mode' value is invalid: must be one of drop, rewrite, none",
            )),
        };
        let prefix = c.string("add.fields.prefix").unwrap_or("__").to_string();
        let add_fields = c
            .string("add.fields")
            .map(parse_list)
            .unwrap_or_default()
            .into_iter()
            .filter(|f| !f.is_empty())
            .map(|f| {
                let name = format!("{prefix}{}", f.replace('.', "_"));
                (f, name)
            })
            .collect();
        Ok(ExtractNewRecordState {
            drop_tombstones: c.boolean("drop.tombstones", true)?,
            delete_mode,
            add_fields,
            deleted_field: format!("{prefix}deleted"),
        })
    }

    /// The envelope value (and schema) at `path`: an envelope field, else a `source` field.
    fn lookup(
        envelope: &Value,
        envelope_schema: Option<&SchemaRef>,
        path: &str,
    ) -> (Option<SchemaRef>, Value) {
        let steps: Vec<&str> = match path.strip_prefix("source.") {
            Some(rest) => vec!["source", rest],
            None if envelope.get(path).is_some() => vec![path],
            None => vec!["source", path],
        };
        let mut value = envelope.clone();
        let mut schema = envelope_schema.cloned();
        for step in steps {
            schema = schema.and_then(|s| s.field(step).map(|f| f.schema.clone()));
            value = value.get(step).cloned().unwrap_or(Value::Null);
        }
        (schema, value)
    }
}

fn optional(schema: &SchemaRef) -> SchemaRef {
    let mut s = (**schema).clone();
    s.optional = true;
    s.default = None;
    std::sync::Arc::new(s)
}

impl Transformation for ExtractNewRecordState {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        if record.value.is_null() {
            return Ok(if self.drop_tombstones {
                None
            } else {
                Some(record)
            });
        }
        let is_envelope = match &record.value {
            Value::Struct(s) => {
                s.schema().field("op").is_some() && s.schema().field("after").is_some()
            }
            Value::Map(m) => map_get(m, "op").is_some(),
            _ => false,
        };
        if !is_envelope {
            return Ok(Some(record));
        }
        let envelope = std::mem::replace(&mut record.value, Value::Null);
        let envelope_schema = record.value_schema.take();
        let op = match envelope.get("op") {
            Some(Value::String(op)) => op.clone(),
            _ => String::new(),
        };
        let deleted = op == "d";
        let state_field = if deleted { "before" } else { "after" };
        if deleted {
            match self.delete_mode {
                DeleteMode::Drop => return Ok(None),
                DeleteMode::None => {
                    let schema = envelope_schema
                        .as_ref()
                        .and_then(|s| s.field("after").map(|f| f.schema.clone()));
                    record.value_schema = schema;
                    return Ok(Some(record));
                }
                DeleteMode::Rewrite => {}
            }
        }
        let state = envelope.get(state_field).cloned().unwrap_or(Value::Null);
        let mut extras: Vec<(String, Option<SchemaRef>, Value)> = self
            .add_fields
            .iter()
            .map(|(path, name)| {
                let (s, v) = Self::lookup(&envelope, envelope_schema.as_ref(), path);
                (name.clone(), s, v)
            })
            .collect();
        if self.delete_mode == DeleteMode::Rewrite {
            extras.push((
                self.deleted_field.clone(),
                Some(Schema::primitive(Type::String, true)),
                Value::String(deleted.to_string()),
            ));
        }
        match envelope_schema {
            None => {
                let value = match state {
                    Value::Map(mut entries) => {
                        for (name, _, v) in extras {
                            map_put(&mut entries, &name, v);
                        }
                        Value::Map(entries)
                    }
                    other => other,
                };
                record.value = value;
                Ok(Some(record))
            }
            Some(env_schema) => {
                let state_schema = env_schema
                    .field(state_field)
                    .map(|f| f.schema.clone())
                    .ok_or_else(|| {
                        TransformError::data(format!("Envelope has no '{state_field}' field"))
                    })?;
                let state = match state {
                    Value::Struct(s) if !extras.is_empty() => s,
                    other => {
                        record.value_schema = Some(state_schema);
                        record.value = other;
                        return Ok(Some(record));
                    }
                };
                let mut builder: SchemaBuilder = copy_schema_basics(&state_schema);
                for f in &state_schema.fields {
                    builder = builder.field(f.name.clone(), f.schema.clone())?;
                }
                for (name, schema, _) in &extras {
                    let schema = schema
                        .as_ref()
                        .map(optional)
                        .unwrap_or_else(|| Schema::primitive(Type::String, true));
                    builder = builder.field(name.clone(), schema)?;
                }
                let schema = builder.build();
                let mut out = Struct::new(schema.clone())?;
                for (f, v) in state.iter() {
                    out.put(&f.name, v.clone())?;
                }
                for (name, _, v) in extras {
                    out.put(&name, v)?;
                }
                record.value_schema = Some(schema);
                record.value = Value::Struct(out);
                Ok(Some(record))
            }
        }
    }
}
