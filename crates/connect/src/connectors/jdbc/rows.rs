//! From a sink record to a table row: which columns form the key (by `pk.mode` and
//! `pk.fields`), which carry the value (`fields.whitelist`), and whether it is a delete.

use crate::data::{Schema, SchemaRef, Type, Value};
use crate::record::ConnectRecord;

use super::config::{JdbcSinkConfig, PkMode};

/// Confluent's column names for `pk.mode=kafka`.
pub const KAFKA_PK_DEFAULTS: [&str; 3] =
    ["__connect_topic", "__connect_partition", "__connect_offset"];

/// One column's value in a row.
#[derive(Clone, Debug)]
pub struct Cell {
    pub name: String,
    pub schema: SchemaRef,
    pub value: Value,
}

/// What one record becomes.
#[derive(Clone, Debug)]
pub struct Row {
    pub table: String,
    pub keys: Vec<Cell>,
    pub values: Vec<Cell>,
    /// A tombstone with `delete.enabled`: delete by key.
    pub delete: bool,
}

/// Where a record came from, for error messages.
pub fn location(record: &ConnectRecord) -> String {
    format!(
        "(topic='{}',partition={},offset={})",
        record.topic,
        record.partition.map_or("null".into(), |p| p.to_string()),
        record.kafka_offset.map_or("null".into(), |o| o.to_string()),
    )
}

fn schema_text(schema: Option<&SchemaRef>) -> &'static str {
    match schema {
        None => "null",
        Some(s) if s.schema_type == Type::Struct => "Struct",
        Some(_) => "non-Struct",
    }
}

fn value_text(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Struct(_) => "Struct",
        _ => "non-Struct",
    }
}

fn is_primitive(schema: &Schema) -> bool {
    schema.schema_type.is_primitive()
}

/// The table name for a topic (`table.name.format` with `${topic}`).
pub fn table_name(config: &JdbcSinkConfig, topic: &str) -> String {
    config.table_name_format.replace("${topic}", topic)
}

/// The row of a record, or why it cannot be written (the caller names the record).
pub fn row_of(config: &JdbcSinkConfig, record: &ConnectRecord) -> Result<Row, String> {
    let table = table_name(config, &record.topic);
    let pk_mode_name = match config.pk_mode {
        PkMode::None => "none",
        PkMode::Kafka => "kafka",
        PkMode::RecordKey => "record_key",
        PkMode::RecordValue => "record_value",
    };
    let value_struct = match (&record.value, &record.value_schema) {
        (Value::Struct(s), Some(schema)) if schema.schema_type == Type::Struct => Some(s),
        (Value::Null, _) if config.delete_enabled => None,
        _ => {
            return Err(format!(
                "Sink connector is configured with 'delete.enabled={}' and 'pk.mode={}' and \
                 therefore requires records with a non-null Struct value and non-null Struct \
                 schema, but found record at {} with a {} value and {} value schema.",
                config.delete_enabled,
                pk_mode_name,
                location(record),
                value_text(&record.value),
                schema_text(record.value_schema.as_ref()),
            ))
        }
    };
    let keys = key_cells(config, record, value_struct)?;
    let Some(value_struct) = value_struct else {
        return Ok(Row {
            table,
            keys,
            values: Vec::new(),
            delete: true,
        });
    };
    let mut values = Vec::new();
    for field in &value_struct.schema().fields {
        if keys.iter().any(|k| k.name == field.name) {
            continue;
        }
        if !config.fields_whitelist.is_empty() && !config.fields_whitelist.contains(&field.name) {
            continue;
        }
        if !is_primitive(&field.schema) {
            return Err(format!(
                "Unsupported type {} of field '{}' (arrays, maps and structs have no column \
                 type; flatten them first) in record at {}",
                field.schema.schema_type,
                field.name,
                location(record)
            ));
        }
        values.push(Cell {
            name: field.name.clone(),
            schema: field.schema.clone(),
            value: value_struct
                .get(&field.name)
                .cloned()
                .unwrap_or(Value::Null),
        });
    }
    Ok(Row {
        table,
        keys,
        values,
        delete: false,
    })
}

fn key_cells(
    config: &JdbcSinkConfig,
    record: &ConnectRecord,
    value_struct: Option<&crate::data::Struct>,
) -> Result<Vec<Cell>, String> {
    match config.pk_mode {
        PkMode::None => Ok(Vec::new()),
        PkMode::Kafka => {
            let names: Vec<String> = if config.pk_fields.len() == 3 {
                config.pk_fields.clone()
            } else {
                KAFKA_PK_DEFAULTS.iter().map(|s| s.to_string()).collect()
            };
            let (Some(partition), Some(offset)) = (record.partition, record.kafka_offset) else {
                return Err(format!(
                    "pk.mode=kafka needs the record's partition and offset, missing in record at {}",
                    location(record)
                ));
            };
            Ok(vec![
                Cell {
                    name: names[0].clone(),
                    schema: Schema::primitive(Type::String, false),
                    value: Value::String(record.topic.clone()),
                },
                Cell {
                    name: names[1].clone(),
                    schema: Schema::primitive(Type::Int32, false),
                    value: Value::Int32(partition),
                },
                Cell {
                    name: names[2].clone(),
                    schema: Schema::primitive(Type::Int64, false),
                    value: Value::Int64(offset),
                },
            ])
        }
        PkMode::RecordKey => {
            let Some(key_schema) = record.key_schema.as_ref().filter(|_| !record.key.is_null())
            else {
                return Err(format!(
                    "Sink connector is configured with 'pk.mode=record_key' and therefore \
                     requires records with a non-null key and non-null key schema, but found \
                     record at {} with a {} key and {} key schema.",
                    location(record),
                    if record.key.is_null() {
                        "null"
                    } else {
                        "non-null"
                    },
                    if record.key_schema.is_none() {
                        "null"
                    } else {
                        "non-null"
                    },
                ));
            };
            if is_primitive(key_schema) {
                if config.pk_fields.len() != 1 {
                    return Err(format!(
                        "Need exactly one PK column defined since the key schema for records is \
                         a primitive type, defined columns are: [{}] (record at {})",
                        config.pk_fields.join(", "),
                        location(record)
                    ));
                }
                return Ok(vec![Cell {
                    name: config.pk_fields[0].clone(),
                    schema: key_schema.clone(),
                    value: record.key.clone(),
                }]);
            }
            match (&record.key, key_schema.schema_type) {
                (Value::Struct(s), Type::Struct) => struct_cells(s, &config.pk_fields, "key", record),
                _ => Err(format!(
                    "Key schema must be primitive type or Struct, but is of type {} in record at {}",
                    key_schema.schema_type,
                    location(record)
                )),
            }
        }
        PkMode::RecordValue => match value_struct {
            Some(s) => struct_cells(s, &config.pk_fields, "value", record),
            // Deletes need record_key (checked with the configuration).
            None => Ok(Vec::new()),
        },
    }
}

/// The named fields of a struct (all of them when `names` is empty).
fn struct_cells(
    s: &crate::data::Struct,
    names: &[String],
    what: &str,
    record: &ConnectRecord,
) -> Result<Vec<Cell>, String> {
    let schema = s.schema();
    let fields: Vec<&crate::data::Field> = if names.is_empty() {
        schema.fields.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                schema.field(n).ok_or_else(|| {
                    format!(
                        "PK field '{n}' not found in the record {what} schema (fields: {}) of \
                         record at {}",
                        schema
                            .fields
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        location(record)
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    if fields.is_empty() {
        return Err(format!(
            "The record {what} struct has no fields to use as the primary key (record at {})",
            location(record)
        ));
    }
    fields
        .into_iter()
        .map(|f| {
            if !is_primitive(&f.schema) {
                return Err(format!(
                    "PK field '{}' has type {}, which cannot be a key column (record at {})",
                    f.name,
                    f.schema.schema_type,
                    location(record)
                ));
            }
            let value = s.get(&f.name).cloned().unwrap_or(Value::Null);
            if value.is_null() {
                return Err(format!(
                    "PK field '{}' is null in record at {}",
                    f.name,
                    location(record)
                ));
            }
            Ok(Cell {
                name: f.name.clone(),
                schema: f.schema.clone(),
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Props;
    use crate::data::{SchemaBuilder, Struct};

    fn config(extra: &[(&str, &str)]) -> JdbcSinkConfig {
        let mut p = Props::new();
        p.insert("connection.url".into(), "jdbc:sqlite:/tmp/x.db".into());
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        JdbcSinkConfig::parse(&p).unwrap()
    }

    fn value() -> (SchemaRef, Value) {
        let schema = SchemaBuilder::struct_builder()
            .field("a", Schema::primitive(Type::Int32, false))
            .unwrap()
            .field("b", Schema::primitive(Type::String, true))
            .unwrap()
            .field("c", Schema::primitive(Type::Boolean, true))
            .unwrap()
            .build();
        let s = Struct::new(schema.clone())
            .unwrap()
            .with("a", Value::Int32(1))
            .unwrap()
            .with("b", Value::String("x".into()))
            .unwrap()
            .with("c", Value::Boolean(true))
            .unwrap();
        (schema, Value::Struct(s))
    }

    fn record(key: Option<(SchemaRef, Value)>) -> ConnectRecord {
        let (schema, v) = value();
        let mut r = ConnectRecord::new("topic", Some(schema), v);
        if let Some((ks, k)) = key {
            r.key_schema = Some(ks);
            r.key = k;
        }
        r.partition = Some(2);
        r.kafka_offset = Some(9);
        r
    }

    fn names(cells: &[Cell]) -> Vec<&str> {
        cells.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn pk_modes_choose_the_key_columns() {
        let r = record(None);
        let row = row_of(&config(&[]), &r).unwrap();
        assert!(row.keys.is_empty());
        assert_eq!(names(&row.values), ["a", "b", "c"]);

        let row = row_of(&config(&[("pk.mode", "kafka")]), &r).unwrap();
        assert_eq!(names(&row.keys), KAFKA_PK_DEFAULTS);
        assert_eq!(row.keys[1].value, Value::Int32(2));
        assert_eq!(row.keys[2].value, Value::Int64(9));

        let row = row_of(
            &config(&[("pk.mode", "record_value"), ("pk.fields", "b")]),
            &r,
        )
        .unwrap();
        assert_eq!(
            (names(&row.keys), names(&row.values)),
            (vec!["b"], vec!["a", "c"])
        );
        let row = row_of(&config(&[("pk.mode", "record_value")]), &r).unwrap();
        assert_eq!(names(&row.keys), ["a", "b", "c"]);
        assert!(row.values.is_empty());

        // A primitive key needs exactly one pk.fields name.
        let keyed = record(Some((
            Schema::primitive(Type::Int64, false),
            Value::Int64(5),
        )));
        let err = row_of(&config(&[("pk.mode", "record_key")]), &keyed).unwrap_err();
        assert!(err.contains("exactly one PK column"), "{err}");
        let row = row_of(
            &config(&[("pk.mode", "record_key"), ("pk.fields", "id")]),
            &keyed,
        )
        .unwrap();
        assert_eq!(names(&row.keys), ["id"]);
        // A struct key: all its fields, or the listed ones (which must exist).
        let (ks, k) = value();
        let keyed = record(Some((ks, k)));
        let row = row_of(
            &config(&[("pk.mode", "record_key"), ("pk.fields", "a")]),
            &keyed,
        )
        .unwrap();
        assert_eq!(
            (names(&row.keys), names(&row.values)),
            (vec!["a"], vec!["b", "c"])
        );
        let err = row_of(
            &config(&[("pk.mode", "record_key"), ("pk.fields", "zz")]),
            &keyed,
        )
        .unwrap_err();
        assert!(
            err.contains("'zz' not found") && err.contains("offset=9"),
            "{err}"
        );
        let mut null_key = keyed.clone();
        if let Value::Struct(k) = &mut null_key.key {
            k.put("c", Value::Null).unwrap();
        }
        let err = row_of(
            &config(&[("pk.mode", "record_key"), ("pk.fields", "c")]),
            &null_key,
        )
        .unwrap_err();
        assert!(err.contains("'c' is null"), "{err}");
    }

    #[test]
    fn whitelist_and_table_format_apply() {
        let r = record(None);
        let c = config(&[
            ("fields.whitelist", "b"),
            ("table.name.format", "kafka_${topic}"),
        ]);
        let row = row_of(&c, &r).unwrap();
        assert_eq!(row.table, "kafka_topic");
        assert_eq!(names(&row.values), ["b"]);
        let c = config(&[("fields.include.list", "a,c")]);
        assert_eq!(names(&row_of(&c, &r).unwrap().values), ["a", "c"]);
    }

    #[test]
    fn records_without_struct_values_are_refused() {
        let mut r = record(None);
        r.value = Value::Null;
        r.value_schema = None;
        let err = row_of(&config(&[]), &r).unwrap_err();
        assert!(
            err.contains("null value and null value schema") && err.contains("partition=2"),
            "{err}"
        );
        let c = config(&[
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
            ("delete.enabled", "true"),
        ]);
        let err = row_of(&c, &r).unwrap_err();
        assert!(err.contains("non-null key"), "{err}");
        r.key_schema = Some(Schema::primitive(Type::Int64, false));
        r.key = Value::Int64(3);
        let row = row_of(&c, &r).unwrap();
        assert!(row.delete && row.values.is_empty() && names(&row.keys) == ["id"]);
        // A schemaless map is not a struct.
        r.value = Value::Map(vec![(Value::String("a".into()), Value::Int32(1))]);
        assert!(row_of(&c, &r).unwrap_err().contains("non-Struct value"));
    }
}
