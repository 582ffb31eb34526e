//! Debezium's schema change events (`include.schema.changes`, on by default): every DDL
//! of the captured databases as a record on the `<topic.prefix>` topic, keyed by database,
//! with the statement and the resulting table definitions.

use super::history::TableChange;
use super::schema::{ColumnDef, TableDef};
use crate::data::{DataError, Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};

fn column_schema() -> Result<SchemaRef, DataError> {
    let opt = |t| Schema::primitive(t, true);
    let req = |t| Schema::primitive(t, false);
    Ok(SchemaBuilder::struct_builder()
        .name("io.debezium.connector.schema.Column")
        .field("name", req(Type::String))?
        .field("jdbcType", req(Type::Int32))?
        .field("nativeType", opt(Type::Int32))?
        .field("typeName", req(Type::String))?
        .field("typeExpression", opt(Type::String))?
        .field("charsetName", opt(Type::String))?
        .field("length", opt(Type::Int32))?
        .field("scale", opt(Type::Int32))?
        .field("position", req(Type::Int32))?
        .field("optional", opt(Type::Boolean))?
        .field("autoIncremented", opt(Type::Boolean))?
        .field("generated", opt(Type::Boolean))?
        .field("comment", opt(Type::String))?
        .field("defaultValueExpression", opt(Type::String))?
        .field(
            "enumValues",
            SchemaBuilder::array(req(Type::String)).optional().build(),
        )?
        .build())
}

fn table_schema(column: SchemaRef) -> Result<SchemaRef, DataError> {
    Ok(SchemaBuilder::struct_builder()
        .name("io.debezium.connector.schema.Table")
        .field("defaultCharsetName", Schema::primitive(Type::String, true))?
        .field(
            "primaryKeyColumnNames",
            SchemaBuilder::array(Schema::primitive(Type::String, false))
                .optional()
                .build(),
        )?
        .field("columns", SchemaBuilder::array(column).build())?
        .field("comment", Schema::primitive(Type::String, true))?
        .build())
}

/// The schemas of schema change events.
#[derive(Clone, Debug)]
pub struct SchemaChangeSchemas {
    pub key: SchemaRef,
    pub value: SchemaRef,
    column: SchemaRef,
    table: SchemaRef,
    change: SchemaRef,
}

impl SchemaChangeSchemas {
    /// `connector` is `mysql` or `mariadb` (Debezium's schema names carry it).
    pub fn new(connector: &str, source: &SchemaRef) -> Result<SchemaChangeSchemas, DataError> {
        let column = column_schema()?;
        let table = table_schema(column.clone())?;
        // A DROP has no table definition: Debezium sends an empty table then; the field
        // stays required as in Debezium's Change schema.
        let change = SchemaBuilder::struct_builder()
            .name("io.debezium.connector.schema.Change")
            .field("type", Schema::primitive(Type::String, false))?
            .field("id", Schema::primitive(Type::String, false))?
            .field("table", table.clone())?
            .build();
        let key = SchemaBuilder::struct_builder()
            .name(format!("io.debezium.connector.{connector}.SchemaChangeKey"))
            .version(1)
            .field("databaseName", Schema::primitive(Type::String, false))?
            .build();
        let value = SchemaBuilder::struct_builder()
            .name(format!(
                "io.debezium.connector.{connector}.SchemaChangeValue"
            ))
            .version(1)
            .field("source", source.clone())?
            .field("ts_ms", Schema::primitive(Type::Int64, false))?
            .field("databaseName", Schema::primitive(Type::String, true))?
            .field("schemaName", Schema::primitive(Type::String, true))?
            .field("ddl", Schema::primitive(Type::String, true))?
            .field("tableChanges", SchemaBuilder::array(change.clone()).build())?
            .build();
        Ok(SchemaChangeSchemas {
            key,
            value,
            column,
            table,
            change,
        })
    }

    fn column(&self, c: &ColumnDef) -> Result<Value, DataError> {
        let mut s = Struct::new(self.column.clone())?;
        s.put("name", Value::String(c.name.clone()))?;
        s.put("jdbcType", Value::Int32(c.jdbc_type))?;
        s.put("typeName", Value::String(c.type_name.clone()))?;
        s.put("typeExpression", Value::String(c.type_expression.clone()))?;
        if let Some(cs) = &c.charset_name {
            s.put("charsetName", Value::String(cs.clone()))?;
        }
        if let Some(l) = c.length.and_then(|l| i32::try_from(l).ok()) {
            s.put("length", Value::Int32(l))?;
        }
        if let Some(sc) = c.scale.and_then(|l| i32::try_from(l).ok()) {
            s.put("scale", Value::Int32(sc))?;
        }
        s.put("position", Value::Int32(c.position as i32))?;
        s.put("optional", Value::Boolean(c.optional))?;
        s.put("autoIncremented", Value::Boolean(c.auto_incremented))?;
        s.put("generated", Value::Boolean(c.auto_incremented))?;
        if let Some(d) = &c.default_value_expression {
            s.put("defaultValueExpression", Value::String(d.clone()))?;
        }
        if !c.enum_values.is_empty() {
            s.put(
                "enumValues",
                Value::Array(c.enum_values.iter().cloned().map(Value::String).collect()),
            )?;
        }
        Ok(Value::Struct(s))
    }

    fn table(&self, def: Option<&TableDef>) -> Result<Value, DataError> {
        let mut s = Struct::new(self.table.clone())?;
        let columns = match def {
            Some(d) => {
                s.put(
                    "primaryKeyColumnNames",
                    Value::Array(
                        d.primary_key_column_names
                            .iter()
                            .cloned()
                            .map(Value::String)
                            .collect(),
                    ),
                )?;
                d.columns
                    .iter()
                    .map(|c| self.column(c))
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => Vec::new(),
        };
        s.put("columns", Value::Array(columns))?;
        Ok(Value::Struct(s))
    }

    /// The key and value of one schema change event.
    pub fn event(
        &self,
        source: Struct,
        db: &str,
        ddl: &str,
        changes: &[TableChange],
        now_ms: i64,
    ) -> Result<(Struct, Struct), DataError> {
        let key = Struct::new(self.key.clone())?.with("databaseName", Value::String(db.into()))?;
        let mut items = Vec::new();
        for c in changes {
            let (kind, db, table, def) = match c {
                TableChange::Define(kind, def) => (*kind, &def.db, &def.table, Some(def)),
                TableChange::Drop { db, table } => ("DROP", db, table, None),
            };
            let change = Struct::new(self.change.clone())?
                .with("type", Value::String(kind.into()))?
                .with("id", Value::String(format!("\"{db}\".\"{table}\"")))?
                .with("table", self.table(def)?)?;
            items.push(Value::Struct(change));
        }
        let value = Struct::new(self.value.clone())?
            .with("source", Value::Struct(source))?
            .with("ts_ms", Value::Int64(now_ms))?
            .with("databaseName", Value::String(db.into()))?
            .with("ddl", Value::String(ddl.into()))?
            .with("tableChanges", Value::Array(items))?;
        Ok((key, value))
    }
}

/// `java.sql.Types` of a MySQL type name, as Debezium's history and schema change events
/// carry it.
pub fn jdbc_type(type_name: &str, length: Option<u64>) -> i32 {
    match type_name {
        "BIT" if length.unwrap_or(1) <= 1 => -7,
        "BIT" => -7,
        "BOOL" | "BOOLEAN" => 16,
        "TINYINT" => 5,
        "SMALLINT" => 5,
        "MEDIUMINT" | "INT" | "INTEGER" => 4,
        "BIGINT" => -5,
        "FLOAT" => 6,
        "REAL" => 7,
        "DOUBLE" | "DOUBLE PRECISION" => 8,
        "DECIMAL" | "DEC" | "FIXED" => 3,
        "NUMERIC" => 2,
        "CHAR" => 1,
        "VARCHAR" | "ENUM" | "SET" | "JSON" => 12,
        "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" => 12,
        "BINARY" => -2,
        "VARBINARY" => -3,
        "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => 2004,
        "DATE" => 91,
        "TIME" => 92,
        "DATETIME" => 93,
        "TIMESTAMP" => 2014,
        "YEAR" => 4,
        _ => 1111,
    }
}
