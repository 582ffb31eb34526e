//! Tables as the connector knows them (columns from `information_schema`), their Connect
//! schemas as Debezium's MySQL connector maps the column types, and the conversion of
//! column values — from snapshot queries and from binlog rows — to Connect values.

use base64::Engine;
use mysql_async::prelude::Queryable;
use mysql_async::Value as MyValue;
use serde::{Deserialize, Serialize};

use super::config::{BinaryMode, DecimalMode, Filters, ValueModes};
use super::schema_change::jdbc_type;
use crate::connector::ConnectError;
use crate::connectors::debezium::{table_schemas, TableSchemas};
use crate::data::{SchemaBuilder, SchemaRef, Struct, Type, Value};

/// A column, as `information_schema.COLUMNS` describes it (field names after Debezium's
/// schema history `tableChanges` columns).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnDef {
    pub name: String,
    /// 1-based ordinal position.
    pub position: u32,
    /// `DATA_TYPE` upper-cased (`INT`, `VARCHAR`, `ENUM`...); `JSON` also for MariaDB's
    /// JSON alias (LONGTEXT checked by `json_valid`).
    pub type_name: String,
    /// `COLUMN_TYPE` (`int(10) unsigned`, `enum('a','b')`).
    pub type_expression: String,
    pub optional: bool,
    /// Character length, numeric precision or fractional seconds precision.
    pub length: Option<u64>,
    pub scale: Option<u64>,
    #[serde(default)]
    pub auto_incremented: bool,
    #[serde(default)]
    pub enum_values: Vec<String>,
    #[serde(default)]
    pub default_value_expression: Option<String>,
    /// `java.sql.Types` of the type (Debezium's `jdbcType`).
    #[serde(default)]
    pub jdbc_type: i32,
    /// The character set of a text column (`CHARACTER_SET_NAME`).
    #[serde(default)]
    pub charset_name: Option<String>,
}

/// A table's definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableDef {
    pub db: String,
    pub table: String,
    pub columns: Vec<ColumnDef>,
    pub primary_key_column_names: Vec<String>,
}

/// How a column's values are represented (Debezium's mapping of the MySQL type).
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Bool,
    Int16 {
        unsigned_bits: Option<u32>,
    },
    Int32 {
        unsigned_bits: Option<u32>,
    },
    Int64 {
        unsigned_bits: Option<u32>,
    },
    /// BIGINT UNSIGNED: int64 (wrapping) or, precise, Decimal(20, 0).
    BigUnsigned,
    Float32,
    Float64,
    Decimal {
        precision: u32,
        scale: u32,
    },
    String,
    Json,
    Enum,
    Set,
    Binary {
        fixed_length: Option<usize>,
    },
    Bits {
        length: u32,
    },
    Year,
    Date,
    Time,
    DateTime {
        precision: u32,
    },
    Timestamp {
        precision: u32,
    },
}

impl ColumnDef {
    pub fn unsigned(&self) -> bool {
        self.type_expression
            .to_ascii_lowercase()
            .contains("unsigned")
    }

    pub fn kind(&self) -> Kind {
        let unsigned = self.unsigned();
        let bits = |b: u32| unsigned.then_some(b);
        let len = self.length.unwrap_or(0);
        match self.type_name.as_str() {
            "BOOL" | "BOOLEAN" => Kind::Bool,
            "BIT" if len <= 1 => Kind::Bool,
            "BIT" => Kind::Bits { length: len as u32 },
            // TINYINT(1) stays INT16, as in Debezium (its TinyIntOneToBooleanConverter is opt-in).
            "TINYINT" => Kind::Int16 {
                unsigned_bits: bits(8),
            },
            "SMALLINT" if unsigned => Kind::Int32 {
                unsigned_bits: bits(16),
            },
            "SMALLINT" => Kind::Int16 {
                unsigned_bits: None,
            },
            "MEDIUMINT" => Kind::Int32 {
                unsigned_bits: bits(24),
            },
            "INT" | "INTEGER" if unsigned => Kind::Int64 {
                unsigned_bits: bits(32),
            },
            "INT" | "INTEGER" => Kind::Int32 {
                unsigned_bits: None,
            },
            "BIGINT" if unsigned => Kind::BigUnsigned,
            "BIGINT" => Kind::Int64 {
                unsigned_bits: None,
            },
            "FLOAT" if self.scale.is_none() || len <= 24 => Kind::Float32,
            "FLOAT" | "DOUBLE" | "REAL" | "DOUBLE PRECISION" => Kind::Float64,
            "DECIMAL" | "NUMERIC" | "DEC" | "FIXED" => Kind::Decimal {
                precision: len as u32,
                scale: self.scale.unwrap_or(0) as u32,
            },
            "JSON" => Kind::Json,
            "ENUM" => Kind::Enum,
            "SET" => Kind::Set,
            "BINARY" => Kind::Binary {
                fixed_length: Some(len as usize),
            },
            "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "GEOMETRY" => {
                Kind::Binary { fixed_length: None }
            }
            "YEAR" => Kind::Year,
            "DATE" => Kind::Date,
            "TIME" => Kind::Time,
            "DATETIME" => Kind::DateTime {
                precision: len as u32,
            },
            "TIMESTAMP" => Kind::Timestamp {
                precision: len as u32,
            },
            _ => Kind::String,
        }
    }

    /// The column's Connect schema (Debezium's names and parameters).
    pub fn schema(&self, modes: &ValueModes) -> SchemaRef {
        let b = match self.kind() {
            Kind::Bool => SchemaBuilder::new(Type::Boolean),
            Kind::Int16 { .. } => SchemaBuilder::new(Type::Int16),
            Kind::Int32 { .. } => SchemaBuilder::new(Type::Int32),
            Kind::Int64 { .. } => SchemaBuilder::new(Type::Int64),
            Kind::BigUnsigned if modes.bigint_unsigned_precise => {
                SchemaBuilder::decimal(0).parameter("connect.decimal.precision", "20")
            }
            Kind::BigUnsigned => SchemaBuilder::new(Type::Int64),
            Kind::Float32 => SchemaBuilder::new(Type::Float32),
            Kind::Float64 => SchemaBuilder::new(Type::Float64),
            Kind::Decimal { precision, scale } => match modes.decimal {
                DecimalMode::Precise => SchemaBuilder::decimal(scale as i32)
                    .parameter("connect.decimal.precision", precision.to_string()),
                DecimalMode::Double => SchemaBuilder::new(Type::Float64),
                DecimalMode::String => SchemaBuilder::new(Type::String),
            },
            Kind::String => SchemaBuilder::new(Type::String),
            Kind::Json => SchemaBuilder::new(Type::String)
                .name("io.debezium.data.Json")
                .version(1),
            Kind::Enum => SchemaBuilder::new(Type::String)
                .name("io.debezium.data.Enum")
                .version(1)
                .parameter("allowed", self.enum_values.join(",")),
            Kind::Set => SchemaBuilder::new(Type::String)
                .name("io.debezium.data.EnumSet")
                .version(1)
                .parameter("allowed", self.enum_values.join(",")),
            Kind::Binary { .. } => match modes.binary {
                BinaryMode::Bytes => SchemaBuilder::new(Type::Bytes),
                _ => SchemaBuilder::new(Type::String),
            },
            Kind::Bits { length } => SchemaBuilder::new(Type::Bytes)
                .name("io.debezium.data.Bits")
                .version(1)
                .parameter("length", length.to_string()),
            Kind::Year => SchemaBuilder::new(Type::Int32)
                .name("io.debezium.time.Year")
                .version(1),
            Kind::Date if modes.connect_time => SchemaBuilder::date(),
            Kind::Date => SchemaBuilder::new(Type::Int32)
                .name("io.debezium.time.Date")
                .version(1),
            Kind::Time if modes.connect_time => SchemaBuilder::time(),
            Kind::Time => SchemaBuilder::new(Type::Int64)
                .name("io.debezium.time.MicroTime")
                .version(1),
            Kind::DateTime { .. } if modes.connect_time => SchemaBuilder::timestamp(),
            Kind::DateTime { precision } if precision <= 3 => SchemaBuilder::new(Type::Int64)
                .name("io.debezium.time.Timestamp")
                .version(1),
            Kind::DateTime { .. } => SchemaBuilder::new(Type::Int64)
                .name("io.debezium.time.MicroTimestamp")
                .version(1),
            Kind::Timestamp { .. } => SchemaBuilder::new(Type::String)
                .name("io.debezium.time.ZonedTimestamp")
                .version(1),
        };
        let b = if self.optional { b.optional() } else { b };
        // The column's literal default as the field's default, as Debezium does; a
        // default that does not convert (an expression) is left out.
        match self.default_value(modes) {
            Some(d) => match b.clone().default_value(d) {
                Ok(with_default) => with_default.build(),
                Err(_) => b.build(),
            },
            None => b.build(),
        }
    }

    /// The column's default as a value of its schema: MariaDB's `COLUMN_DEFAULT` quotes
    /// string literals and writes `NULL` for no default; expressions have no value here.
    pub fn default_value(&self, modes: &ValueModes) -> Option<Value> {
        let expr = self.default_value_expression.as_deref()?.trim();
        if expr.eq_ignore_ascii_case("NULL") || expr.is_empty() {
            return None;
        }
        let raw = if expr.len() >= 2 && expr.starts_with('\'') && expr.ends_with('\'') {
            MyValue::Bytes(expr[1..expr.len() - 1].replace("''", "'").into_bytes())
        } else if let Some(bits) = expr.strip_prefix("b'").and_then(|b| b.strip_suffix('\'')) {
            MyValue::UInt(u64::from_str_radix(bits, 2).ok()?)
        } else if expr.parse::<f64>().is_ok() {
            MyValue::Bytes(expr.as_bytes().to_vec())
        } else {
            return None;
        };
        match self.convert(raw, modes) {
            Ok(Value::Null) | Err(_) => None,
            Ok(v) => Some(v),
        }
    }

    /// A column value (from a snapshot query or a binlog row) as a Connect value.
    pub fn convert(&self, v: MyValue, modes: &ValueModes) -> Result<Value, String> {
        if matches!(v, MyValue::NULL) {
            return Ok(Value::Null);
        }
        let bad = |v: &MyValue| {
            format!(
                "cannot convert {v:?} of column {} ({})",
                self.name, self.type_expression
            )
        };
        Ok(match self.kind() {
            Kind::Bool => match &v {
                MyValue::Bytes(b) if !b.is_empty() && !b.iter().all(u8::is_ascii_digit) => {
                    Value::Boolean(b.iter().any(|x| *x != 0))
                }
                _ => Value::Boolean(as_i128(&v).ok_or_else(|| bad(&v))? != 0),
            },
            Kind::Int16 { unsigned_bits } => {
                let n = unsigned_fix(as_i128(&v).ok_or_else(|| bad(&v))?, unsigned_bits);
                Value::Int16(i16::try_from(n).map_err(|_| bad(&v))?)
            }
            Kind::Int32 { unsigned_bits } => {
                let n = unsigned_fix(as_i128(&v).ok_or_else(|| bad(&v))?, unsigned_bits);
                Value::Int32(i32::try_from(n).map_err(|_| bad(&v))?)
            }
            Kind::Int64 { unsigned_bits } => {
                let n = unsigned_fix(as_i128(&v).ok_or_else(|| bad(&v))?, unsigned_bits);
                Value::Int64(i64::try_from(n).map_err(|_| bad(&v))?)
            }
            Kind::BigUnsigned => {
                let n = unsigned_fix(as_i128(&v).ok_or_else(|| bad(&v))?, Some(64));
                if modes.bigint_unsigned_precise {
                    Value::Decimal(n)
                } else {
                    // Debezium's `long` mode: values above 2^63-1 wrap.
                    Value::Int64(n as u64 as i64)
                }
            }
            Kind::Float32 => Value::Float32(as_f64(&v).ok_or_else(|| bad(&v))? as f32),
            Kind::Float64 => Value::Float64(as_f64(&v).ok_or_else(|| bad(&v))?),
            Kind::Decimal { scale, .. } => {
                let text = as_text(&v);
                match modes.decimal {
                    DecimalMode::Precise => {
                        Value::Decimal(parse_decimal(&text, scale).ok_or_else(|| bad(&v))?)
                    }
                    DecimalMode::Double => {
                        Value::Float64(text.trim().parse().map_err(|_| bad(&v))?)
                    }
                    DecimalMode::String => Value::String(text),
                }
            }
            Kind::String | Kind::Json => Value::String(as_text(&v)),
            Kind::Enum => match &v {
                // The binlog holds the 1-based index; 0 is MySQL's invalid-value ''.
                MyValue::Int(_) | MyValue::UInt(_) => {
                    let i = as_i128(&v).unwrap_or(0);
                    let label = usize::try_from(i - 1)
                        .ok()
                        .and_then(|i| self.enum_values.get(i))
                        .cloned()
                        .unwrap_or_default();
                    Value::String(label)
                }
                _ => Value::String(as_text(&v)),
            },
            Kind::Set => match &v {
                // The binlog holds a bitmap (little-endian) of the members.
                MyValue::Bytes(b) if self.is_binlog_set(b) => {
                    let mut members = Vec::new();
                    for (i, m) in self.enum_values.iter().enumerate() {
                        if b.get(i / 8).is_some_and(|byte| byte & (1 << (i % 8)) != 0) {
                            members.push(m.as_str());
                        }
                    }
                    Value::String(members.join(","))
                }
                MyValue::Int(_) | MyValue::UInt(_) => {
                    let bits = as_i128(&v).unwrap_or(0);
                    let members: Vec<&str> = self
                        .enum_values
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i < 64 && bits & (1 << i) != 0)
                        .map(|(_, m)| m.as_str())
                        .collect();
                    Value::String(members.join(","))
                }
                _ => Value::String(as_text(&v)),
            },
            Kind::Binary { fixed_length } => {
                let mut bytes = match v {
                    MyValue::Bytes(b) => b,
                    other => as_text(&other).into_bytes(),
                };
                // BINARY(n) is right-padded with 0x00 (the binlog drops the padding).
                if let Some(n) = fixed_length {
                    if bytes.len() < n {
                        bytes.resize(n, 0);
                    }
                }
                binary_value(bytes, modes.binary)
            }
            Kind::Bits { length } => {
                let n_bytes = (length as usize).div_ceil(8);
                let mut be = match &v {
                    MyValue::Bytes(b) => b.clone(),
                    _ => (as_i128(&v).ok_or_else(|| bad(&v))? as u64)
                        .to_be_bytes()
                        .to_vec(),
                };
                // Debezium's Bits are little-endian, of the column's byte length.
                be.reverse();
                be.resize(n_bytes, 0);
                Value::Bytes(be)
            }
            Kind::Year => {
                let y = match &v {
                    MyValue::Date(y, ..) => *y as i128,
                    _ => as_i128(&v).ok_or_else(|| bad(&v))?,
                };
                Value::Int32(y as i32)
            }
            Kind::Date => {
                let (y, m, d) = match &v {
                    MyValue::Date(y, m, d, ..) => (*y as i32, *m as u32, *d as u32),
                    MyValue::Bytes(b) => {
                        parse_date_text(&String::from_utf8_lossy(b)).ok_or_else(|| bad(&v))?
                    }
                    _ => return Err(bad(&v)),
                };
                // A zero date ('0000-00-00') has no day: null, as Debezium without an adjuster.
                match days_from_civil(y, m, d) {
                    Some(days) if modes.connect_time => Value::Date(days),
                    Some(days) => Value::Int32(days),
                    None if self.optional => Value::Null,
                    None => Value::Int32(0),
                }
            }
            Kind::Time => {
                let micros = match &v {
                    MyValue::Time(neg, days, h, m, s, us) => {
                        let t =
                            ((*days as i64 * 24 + *h as i64) * 3600 + *m as i64 * 60 + *s as i64)
                                * 1_000_000
                                + *us as i64;
                        if *neg {
                            -t
                        } else {
                            t
                        }
                    }
                    MyValue::Bytes(b) => {
                        parse_time_text(&String::from_utf8_lossy(b)).ok_or_else(|| bad(&v))?
                    }
                    _ => return Err(bad(&v)),
                };
                if modes.connect_time {
                    Value::Time((micros / 1000) as i32)
                } else {
                    Value::Int64(micros)
                }
            }
            Kind::DateTime { precision } => {
                let Some(micros) = datetime_micros(&v) else {
                    return if self.optional {
                        Ok(Value::Null)
                    } else {
                        Ok(Value::Int64(0))
                    };
                };
                if modes.connect_time {
                    Value::Timestamp(micros.div_euclid(1000))
                } else if precision <= 3 {
                    Value::Int64(micros.div_euclid(1000))
                } else {
                    Value::Int64(micros)
                }
            }
            Kind::Timestamp { precision } => {
                // The binlog holds seconds since the epoch ("sec[.usec]"); snapshot
                // sessions run in UTC so their values are UTC date-times.
                let micros = match &v {
                    MyValue::Bytes(b) => {
                        let t = String::from_utf8_lossy(b).to_string();
                        if t.contains('-') {
                            datetime_micros(&v)
                        } else {
                            parse_epoch_micros(&t)
                        }
                    }
                    MyValue::Int(s) => Some(s * 1_000_000),
                    MyValue::UInt(s) => Some(*s as i64 * 1_000_000),
                    _ => datetime_micros(&v),
                };
                match micros {
                    // MySQL's zero timestamp: null (or epoch for a NOT NULL column).
                    Some(0) | None if self.optional => Value::Null,
                    Some(m) => Value::String(zoned_timestamp(m, precision)),
                    None => Value::String(zoned_timestamp(0, precision)),
                }
            }
        })
    }

    /// A binlog text value in a single-byte Latin-1 column, as UTF-8.
    fn binlog_text_to_utf8(&self, v: MyValue) -> MyValue {
        let latin1 = self
            .charset_name
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("latin1"));
        match v {
            MyValue::Bytes(b) if latin1 && matches!(self.kind(), Kind::String | Kind::Json) => {
                MyValue::Bytes(cp1252_to_string(&b).into_bytes())
            }
            other => other,
        }
    }

    /// Whether bytes of a SET column look like the binlog's bitmap rather than text.
    fn is_binlog_set(&self, b: &[u8]) -> bool {
        let text = String::from_utf8_lossy(b);
        let is_members = b.is_empty()
            || text
                .split(',')
                .all(|m| self.enum_values.iter().any(|e| e == m));
        !is_members
    }
}

/// MySQL's `latin1` is Windows-1252.
fn cp1252_to_string(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}',
        '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}',
        '\u{2014}', '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}',
        '\u{178}',
    ];
    bytes
        .iter()
        .map(|b| match b {
            0x80..=0x9F => HIGH[(b - 0x80) as usize],
            _ => *b as char,
        })
        .collect()
}

fn unsigned_fix(n: i128, unsigned_bits: Option<u32>) -> i128 {
    // Without binlog_row_metadata=FULL the binlog does not say a column is unsigned, so the
    // driver reads large unsigned values as negative: undo the two's complement.
    match unsigned_bits {
        Some(bits) if n < 0 => n + (1i128 << bits),
        _ => n,
    }
}

fn as_text(v: &MyValue) -> String {
    match v {
        MyValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        MyValue::Int(i) => i.to_string(),
        MyValue::UInt(u) => u.to_string(),
        MyValue::Float(f) => f.to_string(),
        MyValue::Double(d) => d.to_string(),
        other => other.as_sql(true).trim_matches('\'').to_string(),
    }
}

fn as_i128(v: &MyValue) -> Option<i128> {
    match v {
        MyValue::Int(i) => Some(*i as i128),
        MyValue::UInt(u) => Some(*u as i128),
        MyValue::Float(f) => Some(*f as i128),
        MyValue::Double(d) => Some(*d as i128),
        MyValue::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn as_f64(v: &MyValue) -> Option<f64> {
    match v {
        MyValue::Float(f) => Some(*f as f64),
        MyValue::Double(d) => Some(*d),
        MyValue::Int(i) => Some(*i as f64),
        MyValue::UInt(u) => Some(*u as f64),
        MyValue::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn binary_value(bytes: Vec<u8>, mode: BinaryMode) -> Value {
    match mode {
        BinaryMode::Bytes => Value::Bytes(bytes),
        BinaryMode::Base64 => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        BinaryMode::Base64UrlSafe => {
            Value::String(base64::engine::general_purpose::URL_SAFE.encode(bytes))
        }
        BinaryMode::Hex => Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect()),
    }
}

/// A decimal's text ("-12.5") as the unscaled value at `scale`.
pub fn parse_decimal(text: &str, scale: u32) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if frac.len() > scale as usize
        || int.is_empty() && frac.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mut digits = String::with_capacity(int.len() + scale as usize);
    digits.push_str(int);
    digits.push_str(frac);
    for _ in frac.len()..scale as usize {
        digits.push('0');
    }
    let n: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some(if neg { -n } else { n })
}

/// Days since 1970-01-01 of a civil date; `None` for MySQL's zero dates.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> Option<i32> {
    let date = chrono::NaiveDate::from_ymd_opt(y, m, d)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

fn parse_date_text(t: &str) -> Option<(i32, u32, u32)> {
    let mut p = t.trim().splitn(3, '-');
    let y = p.next()?.parse().ok()?;
    let m = p.next()?.parse().ok()?;
    let d = p.next()?.get(..2)?.parse().ok()?;
    Some((y, m, d))
}

fn parse_time_text(t: &str) -> Option<i64> {
    let t = t.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
    let mut p = hms.split(':');
    let h: i64 = p.next()?.parse().ok()?;
    let m: i64 = p.next()?.parse().ok()?;
    let s: i64 = p.next()?.parse().ok()?;
    let mut us = format!("{frac:0<6}");
    us.truncate(6);
    let us: i64 = us.parse().ok()?;
    let v = (h * 3600 + m * 60 + s) * 1_000_000 + us;
    Some(if neg { -v } else { v })
}

/// Microseconds since the epoch of a date-time value read as UTC; `None` for zero dates.
fn datetime_micros(v: &MyValue) -> Option<i64> {
    let (y, mo, d, h, mi, s, us) = match v {
        MyValue::Date(y, mo, d, h, mi, s, us) => (
            *y as i32, *mo as u32, *d as u32, *h as i64, *mi as i64, *s as i64, *us as i64,
        ),
        MyValue::Bytes(b) => {
            let t = String::from_utf8_lossy(b);
            let (date, time) = t
                .trim()
                .split_once([' ', 'T'])
                .unwrap_or((t.trim(), "00:00:00"));
            let (y, mo, d) = parse_date_text(date)?;
            let micros = parse_time_text(time)?;
            let days = days_from_civil(y, mo, d)? as i64;
            return Some(days * 86_400_000_000 + micros);
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d)? as i64;
    Some(days * 86_400_000_000 + ((h * 60 + mi) * 60 + s) * 1_000_000 + us)
}

fn parse_epoch_micros(t: &str) -> Option<i64> {
    let (s, frac) = t.trim().split_once('.').unwrap_or((t.trim(), ""));
    let s: i64 = s.parse().ok()?;
    let mut us = format!("{frac:0<6}");
    us.truncate(6);
    Some(s * 1_000_000 + us.parse::<i64>().ok()?)
}

/// Debezium's ZonedTimestamp text in UTC: `2024-01-02T03:04:05Z`, with as many fraction
/// digits as the column's precision.
pub fn zoned_timestamp(micros: i64, precision: u32) -> String {
    let secs = micros.div_euclid(1_000_000);
    let us = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|e| e.checked_add_signed(chrono::Duration::days(days)))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into());
    let mut out = format!(
        "{date}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    );
    let p = precision.min(6) as usize;
    if p > 0 {
        let f = format!("{us:06}");
        out.push('.');
        out.push_str(&f[..p]);
    }
    out.push('Z');
    out
}

/// The members of `enum('a','b')` / `set('x','y')` (quotes doubled inside).
pub fn enum_values(type_expression: &str) -> Vec<String> {
    let Some(start) = type_expression.find('(') else {
        return Vec::new();
    };
    let body = &type_expression[start + 1..];
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    s.push('\'');
                } else {
                    break;
                }
            } else if c == '\\' {
                if let Some(n) = chars.next() {
                    s.push(n);
                }
            } else {
                s.push(c);
            }
        }
        out.push(s);
    }
    out
}

pub fn db_error(e: mysql_async::Error) -> ConnectError {
    match e {
        // The network or the server going away: the worker retries.
        mysql_async::Error::Io(_) => ConnectError::Retriable(e.to_string()),
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => {
            ConnectError::Retriable(e.to_string())
        }
        _ => ConnectError::Fatal(e.to_string()),
    }
}

type ColumnRow = (
    String,
    u32,
    String,
    String,
    String,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<String>,
    String,
    Option<String>,
);

/// Reads a table's definition from `information_schema`; `None` when it does not exist.
pub async fn read_table(
    conn: &mut mysql_async::Conn,
    db: &str,
    table: &str,
) -> Result<Option<TableDef>, ConnectError> {
    let rows: Vec<ColumnRow> = conn
        .exec(
            "SELECT COLUMN_NAME, ORDINAL_POSITION, UPPER(DATA_TYPE), COLUMN_TYPE, IS_NULLABLE, \
             NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_MAXIMUM_LENGTH, \
             COLUMN_DEFAULT, EXTRA, CHARACTER_SET_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .map_err(db_error)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let pk: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
             ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .map_err(db_error)?;
    // MariaDB's JSON is LONGTEXT with a json_valid check: find those columns.
    let checks: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .await
        .unwrap_or_default();
    let columns = rows
        .into_iter()
        .map(
            |(
                name,
                position,
                data_type,
                column_type,
                nullable,
                num_p,
                num_s,
                dt_p,
                char_len,
                default,
                extra,
                charset,
            )| {
                let is_json = data_type == "JSON"
                    || (data_type == "LONGTEXT"
                        && checks
                            .iter()
                            .any(|c| c.replace(' ', "") == format!("json_valid(`{name}`)")));
                let type_name = if is_json {
                    "JSON".to_string()
                } else {
                    data_type
                };
                let (length, scale) = match type_name.as_str() {
                    "DECIMAL" | "NUMERIC" => (num_p, num_s),
                    "FLOAT" | "DOUBLE" => (num_p, num_s),
                    "DATETIME" | "TIMESTAMP" | "TIME" => (Some(dt_p.unwrap_or(0)), None),
                    "BIT" => (num_p, None),
                    _ => (char_len.or(num_p), None),
                };
                let enum_values = if type_name == "ENUM" || type_name == "SET" {
                    enum_values(&column_type)
                } else {
                    Vec::new()
                };
                ColumnDef {
                    jdbc_type: jdbc_type(&type_name, length),
                    charset_name: charset,
                    name,
                    position,
                    type_name,
                    type_expression: column_type,
                    optional: nullable.eq_ignore_ascii_case("YES"),
                    length,
                    scale,
                    auto_incremented: extra.to_ascii_lowercase().contains("auto_increment"),
                    enum_values,
                    default_value_expression: default,
                }
            },
        )
        .collect();
    Ok(Some(TableDef {
        db: db.to_string(),
        table: table.to_string(),
        columns,
        primary_key_column_names: pk,
    }))
}

/// The captured tables (by the filters), as (db, table), sorted.
pub async fn list_tables(
    conn: &mut mysql_async::Conn,
    filters: &Filters,
) -> Result<Vec<(String, String)>, ConnectError> {
    let rows: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await
        .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .filter(|(d, t)| filters.table(d, t))
        .collect())
}

/// A captured table: its definition, the captured columns and the Connect schemas.
#[derive(Clone, Debug)]
pub struct Captured {
    pub def: TableDef,
    /// Index in `def.columns` of each captured column.
    pub included: Vec<usize>,
    pub schemas: TableSchemas,
    pub topic: String,
}

impl Captured {
    pub fn new(
        def: TableDef,
        topic_prefix: &str,
        filters: &Filters,
        modes: &ValueModes,
        source: &SchemaRef,
    ) -> Result<Captured, ConnectError> {
        let included: Vec<usize> = def
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                filters.column(&def.db, &def.table, &c.name)
                    || def.primary_key_column_names.contains(&c.name)
            })
            .map(|(i, _)| i)
            .collect();
        let columns: Vec<(String, SchemaRef)> = included
            .iter()
            .map(|i| (def.columns[*i].name.clone(), def.columns[*i].schema(modes)))
            .collect();
        let base = format!("{topic_prefix}.{}.{}", def.db, def.table);
        let schemas = table_schemas(&base, &columns, &def.primary_key_column_names, source)
            .map_err(|e| ConnectError::Fatal(format!("schema of {}.{}: {e}", def.db, def.table)))?;
        Ok(Captured {
            def,
            included,
            schemas,
            topic: base,
        })
    }

    /// A row struct from all of the table's column values, in column order. Binlog text
    /// is in the column's own character set (queries answer in the connection's, UTF-8).
    pub fn row(
        &self,
        values: Vec<MyValue>,
        modes: &ValueModes,
        from_binlog: bool,
    ) -> Result<Struct, ConnectError> {
        if values.len() != self.def.columns.len() {
            return Err(ConnectError::Fatal(format!(
                "a row of {}.{} has {} values but the table has {} columns (is binlog_row_image FULL?)",
                self.def.db,
                self.def.table,
                values.len(),
                self.def.columns.len()
            )));
        }
        let mut s = Struct::new(self.schemas.row.clone()).map_err(data_err)?;
        let mut values: Vec<Option<MyValue>> = values.into_iter().map(Some).collect();
        for i in &self.included {
            let col = &self.def.columns[*i];
            let mut v = values[*i].take().unwrap_or(MyValue::NULL);
            if from_binlog {
                v = col.binlog_text_to_utf8(v);
            }
            let converted = col.convert(v, modes).map_err(|e| {
                ConnectError::Fatal(format!("{}.{}: {e}", self.def.db, self.def.table))
            })?;
            s.put(&col.name, converted).map_err(data_err)?;
        }
        Ok(s)
    }
}

pub fn data_err(e: crate::data::DataError) -> ConnectError {
    ConnectError::Fatal(e.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(type_name: &str, expr: &str, length: Option<u64>, scale: Option<u64>) -> ColumnDef {
        ColumnDef {
            name: "c".into(),
            position: 1,
            type_name: type_name.into(),
            type_expression: expr.into(),
            optional: true,
            length,
            scale,
            auto_incremented: false,
            enum_values: enum_values(expr),
            default_value_expression: None,
            jdbc_type: 0,
            charset_name: None,
        }
    }

    fn modes() -> ValueModes {
        ValueModes {
            binary: BinaryMode::Bytes,
            decimal: DecimalMode::Precise,
            connect_time: false,
            bigint_unsigned_precise: false,
        }
    }

    #[test]
    fn literal_defaults_become_schema_defaults() {
        let m = modes();
        let mut c = col("VARCHAR", "varchar(8)", Some(8), None);
        c.default_value_expression = Some("'it''s'".into());
        assert_eq!(c.schema(&m).default, Some(Value::String("it's".into())));
        let mut c = col("INT", "int(11)", Some(10), None);
        c.default_value_expression = Some("5".into());
        assert_eq!(c.schema(&m).default, Some(Value::Int32(5)));
        c.default_value_expression = Some("NULL".into());
        assert_eq!(c.schema(&m).default, None);
        let mut c = col("DATETIME", "datetime", Some(0), None);
        c.default_value_expression = Some("current_timestamp()".into());
        assert_eq!(c.schema(&m).default, None);
        let mut c = col("BIT", "bit(1)", Some(1), None);
        c.default_value_expression = Some("b'1'".into());
        assert_eq!(c.schema(&m).default, Some(Value::Boolean(true)));
        let mut c = col("DECIMAL", "decimal(5,2)", Some(5), Some(2));
        c.default_value_expression = Some("1.50".into());
        assert_eq!(c.schema(&m).default, Some(Value::Decimal(150)));
    }

    #[test]
    fn latin1_binlog_text_is_decoded() {
        assert_eq!(cp1252_to_string(&[0x63, 0xE9, 0x80]), "c\u{e9}\u{20ac}");
        let mut c = col("VARCHAR", "varchar(4)", Some(4), None);
        c.charset_name = Some("latin1".into());
        assert_eq!(
            c.binlog_text_to_utf8(MyValue::Bytes(vec![0xE9])),
            MyValue::Bytes("\u{e9}".as_bytes().to_vec())
        );
    }

    #[test]
    fn value_modes_change_representations() {
        let connect = ValueModes {
            connect_time: true,
            ..modes()
        };
        let d = col("DATE", "date", None, None);
        assert_eq!(
            d.convert(MyValue::Date(1970, 1, 2, 0, 0, 0, 0), &connect),
            Ok(Value::Date(1))
        );
        let t = col("TIME", "time(3)", Some(3), None);
        assert_eq!(
            t.convert(MyValue::Time(false, 0, 0, 0, 1, 500_000), &connect),
            Ok(Value::Time(1500))
        );
        let dt = col("DATETIME", "datetime(6)", Some(6), None);
        assert_eq!(
            dt.schema(&connect).name.as_deref(),
            Some(crate::data::TIMESTAMP)
        );
        let hex = ValueModes {
            binary: BinaryMode::Hex,
            ..modes()
        };
        let b = col("BLOB", "blob", None, None);
        assert_eq!(
            b.convert(MyValue::Bytes(vec![0xab, 1]), &hex),
            Ok(Value::String("ab01".into()))
        );
        let b64 = ValueModes {
            binary: BinaryMode::Base64,
            ..modes()
        };
        assert_eq!(
            b.convert(MyValue::Bytes(vec![0xff]), &b64),
            Ok(Value::String("/w==".into()))
        );
        let dec = col("DECIMAL", "decimal(5,2)", Some(5), Some(2));
        let double = ValueModes {
            decimal: DecimalMode::Double,
            ..modes()
        };
        assert_eq!(
            dec.convert(MyValue::Bytes(b"1.25".to_vec()), &double),
            Ok(Value::Float64(1.25))
        );
        let string = ValueModes {
            decimal: DecimalMode::String,
            ..modes()
        };
        assert_eq!(
            dec.convert(MyValue::Bytes(b"1.25".to_vec()), &string),
            Ok(Value::String("1.25".into()))
        );
    }

    #[test]
    fn decimals_parse_to_the_column_scale() {
        assert_eq!(parse_decimal("12.5", 2), Some(1250));
        assert_eq!(parse_decimal("-0.01", 2), Some(-1));
        assert_eq!(parse_decimal("7", 0), Some(7));
        assert_eq!(parse_decimal("1.234", 2), None);
        assert_eq!(parse_decimal("abc", 2), None);
    }

    #[test]
    fn types_map_as_debeziums() {
        let m = modes();
        let s = col("DECIMAL", "decimal(10,2)", Some(10), Some(2)).schema(&m);
        assert_eq!(s.name.as_deref(), Some(crate::data::DECIMAL));
        assert_eq!(s.parameters.get("scale").map(String::as_str), Some("2"));
        assert_eq!(
            s.parameters
                .get("connect.decimal.precision")
                .map(String::as_str),
            Some("10")
        );
        assert_eq!(
            col("INT", "int(10) unsigned", Some(10), None)
                .schema(&m)
                .schema_type,
            Type::Int64
        );
        assert_eq!(
            col("SMALLINT", "smallint(6)", Some(5), None)
                .schema(&m)
                .schema_type,
            Type::Int16
        );
        assert_eq!(
            col("BIT", "bit(1)", Some(1), None).schema(&m).schema_type,
            Type::Boolean
        );
        assert_eq!(
            col("DATETIME", "datetime(6)", Some(6), None)
                .schema(&m)
                .name
                .as_deref(),
            Some("io.debezium.time.MicroTimestamp")
        );
        let e = col("ENUM", "enum('a','b''c')", None, None);
        assert_eq!(e.enum_values, vec!["a", "b'c"]);
        assert_eq!(
            e.schema(&m).parameters.get("allowed").map(String::as_str),
            Some("a,b'c")
        );
    }

    #[test]
    fn binlog_and_snapshot_values_convert_alike() {
        let m = modes();
        let u = col("TINYINT", "tinyint(3) unsigned", Some(3), None);
        assert_eq!(u.convert(MyValue::Int(-56), &m), Ok(Value::Int16(200)));
        assert_eq!(
            u.convert(MyValue::Bytes(b"200".to_vec()), &m),
            Ok(Value::Int16(200))
        );
        let e = col("ENUM", "enum('x','y')", None, None);
        assert_eq!(
            e.convert(MyValue::Int(2), &m),
            Ok(Value::String("y".into()))
        );
        assert_eq!(
            e.convert(MyValue::Bytes(b"y".to_vec()), &m),
            Ok(Value::String("y".into()))
        );
        let s = col("SET", "set('a','b','c')", None, None);
        assert_eq!(
            s.convert(MyValue::Bytes(vec![0b101]), &m),
            Ok(Value::String("a,c".into()))
        );
        assert_eq!(
            s.convert(MyValue::Bytes(b"a,c".to_vec()), &m),
            Ok(Value::String("a,c".into()))
        );
        let ts = col("TIMESTAMP", "timestamp", Some(0), None);
        assert_eq!(
            ts.convert(MyValue::Bytes(b"1700000000".to_vec()), &m),
            Ok(Value::String("2023-11-14T22:13:20Z".into()))
        );
        assert_eq!(
            ts.convert(MyValue::Date(2023, 11, 14, 22, 13, 20, 0), &m),
            Ok(Value::String("2023-11-14T22:13:20Z".into()))
        );
        let dt = col("DATETIME", "datetime", Some(0), None);
        assert_eq!(
            dt.convert(MyValue::Date(1970, 1, 2, 0, 0, 1, 0), &m),
            Ok(Value::Int64(86_401_000))
        );
        let d = col("DATE", "date", None, None);
        assert_eq!(
            d.convert(MyValue::Date(1970, 1, 3, 0, 0, 0, 0), &m),
            Ok(Value::Int32(2))
        );
        assert_eq!(
            d.convert(MyValue::Date(0, 0, 0, 0, 0, 0, 0), &m),
            Ok(Value::Null)
        );
        let t = col("TIME", "time", Some(0), None);
        assert_eq!(
            t.convert(MyValue::Time(true, 0, 1, 0, 0, 0), &m),
            Ok(Value::Int64(-3_600_000_000))
        );
        let b = col("BINARY", "binary(4)", Some(4), None);
        assert_eq!(
            b.convert(MyValue::Bytes(vec![1]), &m),
            Ok(Value::Bytes(vec![1, 0, 0, 0]))
        );
        let big = col("BIGINT", "bigint(20) unsigned", Some(20), None);
        assert_eq!(big.convert(MyValue::Int(-1), &m), Ok(Value::Int64(-1)));
        let precise = ValueModes {
            bigint_unsigned_precise: true,
            ..m
        };
        assert_eq!(
            big.convert(MyValue::Int(-1), &precise),
            Ok(Value::Decimal(u64::MAX as i128))
        );
    }
}
