//! What differs between PostgreSQL, MySQL/MariaDB and SQLite: identifier quoting, column
//! types for Connect schemas (`auto.create`), the upsert statement, and the text of
//! logical values.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

use crate::data::{Schema, Type, Value, DATE, DECIMAL, TIME, TIMESTAMP};

use super::config::Dialect;
use super::rows::Row;

/// How identifiers are written.
#[derive(Clone, Copy, Debug)]
pub struct Sql {
    pub dialect: Dialect,
    pub quote: bool,
}

/// What a row's statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Statement {
    Insert,
    Upsert,
    Update,
    Delete,
}

impl Sql {
    /// One identifier, quoted (doubling the quote character) or, with
    /// `quote.sql.identifiers=never`, checked to be a plain name: unquoted identifiers come
    /// from record field names and must never carry SQL.
    pub fn ident(&self, name: &str) -> Result<String, String> {
        if !self.quote {
            let plain = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
            return if plain {
                Ok(name.to_string())
            } else {
                Err(format!(
                    "Identifier '{name}' needs quoting but quote.sql.identifiers=never"
                ))
            };
        }
        let q = match self.dialect {
            Dialect::MySql => '`',
            Dialect::Postgres | Dialect::Sqlite => '"',
        };
        let mut out = String::with_capacity(name.len() + 2);
        out.push(q);
        for c in name.chars() {
            if c == q {
                out.push(q);
            }
            out.push(c);
        }
        out.push(q);
        Ok(out)
    }

    /// A table name: `schema.table` splits on the last dot for PostgreSQL and MySQL (as
    /// Confluent reads qualified names); SQLite keeps it whole (dots are common in topics).
    pub fn table(&self, table: &str) -> Result<String, String> {
        match (self.dialect, table.rsplit_once('.')) {
            (Dialect::Postgres | Dialect::MySql, Some((schema, name))) => {
                Ok(format!("{}.{}", self.ident(schema)?, self.ident(name)?))
            }
            _ => self.ident(table),
        }
    }

    fn placeholder(&self, index: usize) -> String {
        match self.dialect {
            Dialect::Postgres => format!("${index}"),
            Dialect::MySql | Dialect::Sqlite => "?".to_string(),
        }
    }

    /// The column type for a schema (`auto.create`, `auto.evolve`).
    pub fn column_type(&self, schema: &Schema, is_key: bool) -> Result<String, String> {
        let d = self.dialect;
        let name = schema.name.as_deref();
        let t = match (name, d) {
            (Some(DECIMAL), Dialect::Postgres) => "DECIMAL".to_string(),
            (Some(DECIMAL), Dialect::MySql) => {
                let scale = schema.decimal_scale().map_err(|e| e.0)?;
                format!("DECIMAL(65,{})", scale.clamp(0, 30))
            }
            (Some(DECIMAL), Dialect::Sqlite) => "NUMERIC".to_string(),
            (Some(DATE), Dialect::Sqlite) | (Some(TIME), Dialect::Sqlite) | (Some(TIMESTAMP), Dialect::Sqlite) => {
                "NUMERIC".to_string()
            }
            (Some(DATE), _) => "DATE".to_string(),
            (Some(TIME), Dialect::Postgres) => "TIME".to_string(),
            (Some(TIME), Dialect::MySql) => "TIME(3)".to_string(),
            (Some(TIMESTAMP), Dialect::Postgres) => "TIMESTAMP".to_string(),
            (Some(TIMESTAMP), Dialect::MySql) => "DATETIME(3)".to_string(),
            _ => match (schema.schema_type, d) {
                (Type::Int8, Dialect::Postgres) => "SMALLINT".into(),
                (Type::Int8, Dialect::MySql) => "TINYINT".into(),
                (Type::Int16, Dialect::Postgres | Dialect::MySql) => "SMALLINT".into(),
                (Type::Int32, Dialect::Postgres | Dialect::MySql) => "INT".into(),
                (Type::Int64, Dialect::Postgres | Dialect::MySql) => "BIGINT".into(),
                (Type::Int8 | Type::Int16 | Type::Int32 | Type::Int64, Dialect::Sqlite) => {
                    "INTEGER".into()
                }
                (Type::Float32, Dialect::Postgres | Dialect::Sqlite) => "REAL".into(),
                (Type::Float32, Dialect::MySql) => "FLOAT".into(),
                (Type::Float64, Dialect::Postgres) => "DOUBLE PRECISION".into(),
                (Type::Float64, Dialect::MySql) => "DOUBLE".into(),
                (Type::Float64, Dialect::Sqlite) => "REAL".into(),
                (Type::Boolean, Dialect::Postgres) => "BOOLEAN".into(),
                (Type::Boolean, Dialect::MySql) => "TINYINT".into(),
                (Type::Boolean, Dialect::Sqlite) => "INTEGER".into(),
                // MySQL cannot index TEXT/BLOB without a prefix length: keys get bounded types.
                (Type::String, Dialect::MySql) if is_key => "VARCHAR(256)".into(),
                (Type::String, _) => "TEXT".into(),
                (Type::Bytes, Dialect::Postgres) => "BYTEA".into(),
                (Type::Bytes, Dialect::MySql) if is_key => "VARBINARY(1024)".into(),
                (Type::Bytes, Dialect::MySql) => "LONGBLOB".into(),
                (Type::Bytes, Dialect::Sqlite) => "BLOB".into(),
                (other, _) => {
                    return Err(format!(
                        "{other} has no column type in {d:?} (arrays, maps and structs are not supported)"
                    ))
                }
            },
        };
        Ok(t)
    }

    /// A column's definition: type, nullability and a literal default (DDL takes no
    /// parameters, so only numbers, booleans and escaped strings are written).
    pub fn column_definition(
        &self,
        name: &str,
        schema: &Schema,
        is_key: bool,
    ) -> Result<String, String> {
        let mut def = format!(
            "{} {}",
            self.ident(name)?,
            self.column_type(schema, is_key)?
        );
        if let Some(default) = schema
            .default
            .as_ref()
            .and_then(|v| self.literal(schema, v))
        {
            def.push_str(" DEFAULT ");
            def.push_str(&default);
        }
        def.push_str(if is_key || !schema.optional {
            " NOT NULL"
        } else {
            " NULL"
        });
        Ok(def)
    }

    fn literal(&self, schema: &Schema, value: &Value) -> Option<String> {
        if schema.name.is_some() {
            return match value {
                Value::Decimal(u) => Some(decimal_text(*u, schema.decimal_scale().ok()?)),
                _ => None,
            };
        }
        Some(match value {
            Value::Int8(v) => v.to_string(),
            Value::Int16(v) => v.to_string(),
            Value::Int32(v) => v.to_string(),
            Value::Int64(v) => v.to_string(),
            Value::Float32(v) if v.is_finite() => v.to_string(),
            Value::Float64(v) if v.is_finite() => v.to_string(),
            Value::Boolean(b) => match self.dialect {
                Dialect::Postgres => b.to_string().to_ascii_uppercase(),
                _ => u8::from(*b).to_string(),
            },
            // MySQL cannot default TEXT columns portably; other dialects quote.
            Value::String(s) if self.dialect != Dialect::MySql => {
                format!("'{}'", s.replace('\'', "''"))
            }
            _ => return None,
        })
    }

    pub fn create_table(
        &self,
        table: &str,
        columns: &[(String, Schema, bool)],
    ) -> Result<String, String> {
        let mut defs = Vec::new();
        for (name, schema, is_key) in columns {
            defs.push(self.column_definition(name, schema, *is_key)?);
        }
        let keys: Vec<String> = columns
            .iter()
            .filter(|(_, _, k)| *k)
            .map(|(n, _, _)| self.ident(n))
            .collect::<Result<_, _>>()?;
        if !keys.is_empty() {
            defs.push(format!("PRIMARY KEY({})", keys.join(",")));
        }
        Ok(format!(
            "CREATE TABLE {} (\n{})",
            self.table(table)?,
            defs.join(",\n")
        ))
    }

    pub fn add_column(&self, table: &str, name: &str, schema: &Schema) -> Result<String, String> {
        let column = match self.dialect {
            Dialect::Postgres => "ADD COLUMN",
            Dialect::MySql | Dialect::Sqlite => "ADD",
        };
        Ok(format!(
            "ALTER TABLE {} {column} {}",
            self.table(table)?,
            self.column_definition(name, schema, false)?
        ))
    }

    /// The statement for a row and the order of its parameters (indexes into
    /// `row.keys ++ row.values`); `None` when there is nothing to do (an update of a row
    /// with only key columns).
    pub fn statement(
        &self,
        row: &Row,
        kind: Statement,
    ) -> Result<Option<(String, Vec<usize>)>, String> {
        let table = self.table(&row.table)?;
        let n_keys = row.keys.len();
        let key_names: Vec<String> = row
            .keys
            .iter()
            .map(|c| self.ident(&c.name))
            .collect::<Result<_, _>>()?;
        let value_names: Vec<String> = row
            .values
            .iter()
            .map(|c| self.ident(&c.name))
            .collect::<Result<_, _>>()?;
        let where_keys = |first: usize| {
            key_names
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{k}={}", self.placeholder(first + i)))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        match kind {
            Statement::Delete => Ok(Some((
                format!("DELETE FROM {table} WHERE {}", where_keys(1)),
                (0..n_keys).collect(),
            ))),
            Statement::Update => {
                if value_names.is_empty() {
                    return Ok(None);
                }
                let set = value_names
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("{v}={}", self.placeholder(i + 1)))
                    .collect::<Vec<_>>()
                    .join(",");
                let order = (n_keys..n_keys + value_names.len())
                    .chain(0..n_keys)
                    .collect();
                Ok(Some((
                    format!(
                        "UPDATE {table} SET {set} WHERE {}",
                        where_keys(value_names.len() + 1)
                    ),
                    order,
                )))
            }
            Statement::Insert | Statement::Upsert => {
                let all: Vec<&String> = key_names.iter().chain(value_names.iter()).collect();
                let placeholders = (1..=all.len())
                    .map(|i| self.placeholder(i))
                    .collect::<Vec<_>>()
                    .join(",");
                let mut sql = format!(
                    "INSERT INTO {table}({}) VALUES({placeholders})",
                    all.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
                );
                if kind == Statement::Upsert {
                    sql.push_str(&self.upsert_clause(&key_names, &value_names));
                }
                Ok(Some((sql, (0..all.len()).collect())))
            }
        }
    }

    fn upsert_clause(&self, keys: &[String], values: &[String]) -> String {
        // Without a key there is no conflict to resolve (the task refuses such upserts).
        let Some(first_key) = keys.first() else {
            return String::new();
        };
        match self.dialect {
            Dialect::Postgres | Dialect::Sqlite => {
                if values.is_empty() {
                    format!(" ON CONFLICT ({}) DO NOTHING", keys.join(","))
                } else {
                    format!(
                        " ON CONFLICT ({}) DO UPDATE SET {}",
                        keys.join(","),
                        values
                            .iter()
                            .map(|v| format!("{v}=EXCLUDED.{v}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                }
            }
            Dialect::MySql => {
                if values.is_empty() {
                    // Nothing to change: a no-op assignment keeps the statement idempotent.
                    format!(" ON DUPLICATE KEY UPDATE {first_key}={first_key}")
                } else {
                    format!(
                        " ON DUPLICATE KEY UPDATE {}",
                        values
                            .iter()
                            .map(|v| format!("{v}=VALUES({v})"))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                }
            }
        }
    }
}

/// Beyond this scale decimals are written in E notation rather than with long zero runs.
const MAX_PLAIN_SCALE: u32 = 1000;

/// An unscaled decimal as text (`12345`, scale 2 → `123.45`).
pub fn decimal_text(unscaled: i128, scale: i32) -> String {
    if scale.unsigned_abs() > MAX_PLAIN_SCALE {
        return format!("{unscaled}E{}", -i64::from(scale));
    }
    let negative = unscaled < 0;
    let mut digits = unscaled.unsigned_abs().to_string();
    if scale <= 0 {
        digits.push_str(&"0".repeat(scale.unsigned_abs() as usize));
        return if negative && unscaled != 0 {
            format!("-{digits}")
        } else {
            digits
        };
    }
    let scale = scale as usize;
    if digits.len() <= scale {
        digits = "0".repeat(scale + 1 - digits.len()) + &digits;
    }
    let (int, frac) = digits.split_at(digits.len() - scale);
    format!("{}{int}.{frac}", if negative { "-" } else { "" })
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

pub fn date_of(days_since_epoch: i32) -> Result<NaiveDate, String> {
    days_since_epoch
        .checked_add(UNIX_EPOCH_DAYS_FROM_CE)
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| format!("Date {days_since_epoch} (days since the epoch) is out of range"))
}

pub fn time_of(millis_of_day: i32) -> Result<NaiveTime, String> {
    let ms = u32::try_from(millis_of_day)
        .ok()
        .filter(|ms| *ms < 86_400_000);
    ms.and_then(|ms| {
        NaiveTime::from_num_seconds_from_midnight_opt(ms / 1000, (ms % 1000) * 1_000_000)
    })
    .ok_or_else(|| format!("Time {millis_of_day} (milliseconds of the day) is out of range"))
}

/// A Timestamp as the wall-clock time in `db.timezone` (columns without a zone).
pub fn local_timestamp(millis: i64, zone: FixedOffset) -> Result<NaiveDateTime, String> {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.with_timezone(&zone).naive_local())
        .ok_or_else(|| format!("Timestamp {millis} (milliseconds since the epoch) is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SchemaBuilder;

    #[test]
    fn decimals_render_with_their_scale() {
        assert_eq!(decimal_text(12345, 2), "123.45");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(0, 2), "0.00");
        assert_eq!(decimal_text(7, -2), "700");
        assert_eq!(decimal_text(i128::MIN, 0), i128::MIN.to_string());
        assert_eq!(decimal_text(12, i32::MAX), "12E-2147483647");
    }

    #[test]
    fn identifiers_are_quoted_or_refused() {
        let pg = Sql {
            dialect: Dialect::Postgres,
            quote: true,
        };
        assert_eq!(pg.ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(pg.table("s.t").unwrap(), "\"s\".\"t\"");
        let my = Sql {
            dialect: Dialect::MySql,
            quote: true,
        };
        assert_eq!(my.ident("a`b").unwrap(), "`a``b`");
        let never = Sql {
            dialect: Dialect::Sqlite,
            quote: false,
        };
        assert_eq!(never.ident("plain_1").unwrap(), "plain_1");
        assert!(never.ident("x; DROP TABLE y").is_err());
    }

    #[test]
    fn connect_types_map_to_each_dialects_columns() {
        let pg = Sql {
            dialect: Dialect::Postgres,
            quote: true,
        };
        let my = Sql {
            dialect: Dialect::MySql,
            quote: true,
        };
        let lite = Sql {
            dialect: Dialect::Sqlite,
            quote: true,
        };
        let int8 = Schema::primitive(Type::Int8, false);
        assert_eq!(pg.column_type(&int8, false).unwrap(), "SMALLINT");
        assert_eq!(my.column_type(&int8, false).unwrap(), "TINYINT");
        let s = Schema::primitive(Type::String, false);
        assert_eq!(my.column_type(&s, true).unwrap(), "VARCHAR(256)");
        assert_eq!(my.column_type(&s, false).unwrap(), "TEXT");
        assert_eq!(lite.column_type(&s, true).unwrap(), "TEXT");
        let dec = SchemaBuilder::decimal(2).build();
        assert_eq!(my.column_type(&dec, false).unwrap(), "DECIMAL(65,2)");
        assert_eq!(pg.column_type(&dec, false).unwrap(), "DECIMAL");
        let ts = SchemaBuilder::timestamp().build();
        assert_eq!(my.column_type(&ts, false).unwrap(), "DATETIME(3)");
        assert_eq!(pg.column_type(&ts, false).unwrap(), "TIMESTAMP");
        let arr = SchemaBuilder::array(s.clone()).build();
        assert!(pg.column_type(&arr, false).is_err());
    }
}

#[cfg(test)]
mod statement_tests {
    use super::*;
    use crate::connectors::jdbc::rows::Cell;

    fn row() -> Row {
        let cell = |name: &str| Cell {
            name: name.into(),
            schema: Schema::primitive(Type::Int32, false),
            value: Value::Int32(1),
        };
        Row {
            table: "t".into(),
            keys: vec![cell("k")],
            values: vec![cell("a"), cell("b")],
            delete: false,
        }
    }

    #[test]
    fn each_dialect_writes_its_upsert() {
        let pg = Sql {
            dialect: Dialect::Postgres,
            quote: true,
        };
        let (sql, order) = pg.statement(&row(), Statement::Upsert).unwrap().unwrap();
        assert_eq!(
            sql,
            "INSERT INTO \"t\"(\"k\",\"a\",\"b\") VALUES($1,$2,$3) ON CONFLICT (\"k\") DO UPDATE SET \"a\"=EXCLUDED.\"a\",\"b\"=EXCLUDED.\"b\""
        );
        assert_eq!(order, vec![0, 1, 2]);
        let my = Sql {
            dialect: Dialect::MySql,
            quote: true,
        };
        let (sql, _) = my.statement(&row(), Statement::Upsert).unwrap().unwrap();
        assert_eq!(
            sql,
            "INSERT INTO `t`(`k`,`a`,`b`) VALUES(?,?,?) ON DUPLICATE KEY UPDATE `a`=VALUES(`a`),`b`=VALUES(`b`)"
        );
        let lite = Sql {
            dialect: Dialect::Sqlite,
            quote: false,
        };
        let (sql, order) = lite.statement(&row(), Statement::Update).unwrap().unwrap();
        assert_eq!(sql, "UPDATE t SET a=?,b=? WHERE k=?");
        assert_eq!(order, vec![1, 2, 0]);
        let (sql, order) = pg.statement(&row(), Statement::Delete).unwrap().unwrap();
        assert_eq!(
            (sql.as_str(), order),
            ("DELETE FROM \"t\" WHERE \"k\"=$1", vec![0])
        );
        let mut keys_only = row();
        keys_only.values.clear();
        assert!(pg
            .statement(&keys_only, Statement::Update)
            .unwrap()
            .is_none());
        let (sql, _) = my
            .statement(&keys_only, Statement::Upsert)
            .unwrap()
            .unwrap();
        assert!(sql.ends_with("ON DUPLICATE KEY UPDATE `k`=`k`"), "{sql}");
    }
}
