//! PostgreSQL column types to Connect schemas and values, as Debezium maps them.
//!
//! Values arrive in the types' text output format (pgoutput protocol 1 sends text, and the
//! snapshot reads with the simple query protocol, also text), with the session set to
//! `TimeZone=UTC`, `DateStyle=ISO`, `bytea_output=hex`, `extra_float_digits=3`, so one
//! parser serves both and timestamps with time zone arrive in UTC.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};

/// Debezium's placeholder for an unchanged TOASTed value that was not sent
/// (`unavailable.value.placeholder`).
pub const UNAVAILABLE_VALUE: &str = "__debezium_unavailable_value";

/// `decimal.handling.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalMode {
    Precise,
    Double,
    String,
}

/// `time.precision.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeMode {
    Adaptive,
    AdaptiveTimeMicroseconds,
    Connect,
}

/// `binary.handling.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryMode {
    Bytes,
    Base64,
    Base64UrlSafe,
    Hex,
}

/// How values are mapped (from the connector's configuration).
#[derive(Clone, Copy, Debug)]
pub struct Modes {
    pub decimal: DecimalMode,
    pub time: TimeMode,
    pub binary: BinaryMode,
}

/// A column as the catalog describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    /// The type's name (`pg_type.typname`, of the base type for a domain).
    pub type_name: String,
    pub type_modifier: i32,
    pub nullable: bool,
    /// The column's position in the primary key (0-based), if in it.
    pub key_position: Option<usize>,
    /// An enum type's labels in order.
    pub enum_labels: Option<Vec<String>>,
    /// The type as SQL spells it (`format_type`), for casts of key literals.
    pub sql_type: String,
    /// An array type's element type name (`pg_type.typname` of `typelem`).
    pub element_type: Option<String>,
}

impl Column {
    /// An array column's element, as a nullable column of the element type (the array's
    /// type modifier applies to its elements, as for `numeric(10,2)[]`).
    fn element(&self) -> Option<Column> {
        Some(Column {
            name: self.name.clone(),
            type_name: self.element_type.clone()?,
            type_modifier: self.type_modifier,
            nullable: true,
            key_position: None,
            enum_labels: None,
            sql_type: String::new(),
            element_type: None,
        })
    }
}

/// What a column's values become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// numeric with a fixed scale.
    Decimal {
        precision: i32,
        scale: i32,
    },
    /// numeric without a declared scale.
    VariableDecimal,
    String,
    Bytes,
    Date,
    Timestamp {
        precision: i32,
    },
    TimestampTz,
    Time {
        precision: i32,
    },
    TimeTz,
    Uuid,
    Json,
    Enum,
    /// Debezium's `io.debezium.time.MicroDuration` (`interval.handling.mode=numeric`).
    Interval,
    /// Text with a Debezium semantic name (`xml`, `ltree`).
    NamedString(&'static str),
}

fn kind_of(c: &Column) -> Kind {
    let precision = |m: i32| if m < 0 { 6 } else { m.min(6) };
    match c.type_name.as_str() {
        "bool" => Kind::Bool,
        "int2" => Kind::Int16,
        "int4" => Kind::Int32,
        "int8" | "oid" => Kind::Int64,
        "float4" => Kind::Float32,
        "float8" => Kind::Float64,
        "numeric" if c.type_modifier >= 4 => {
            let m = c.type_modifier - 4;
            // PostgreSQL keeps the scale as an 11-bit signed value.
            let scale = ((m & 0x7ff) ^ 1024) - 1024;
            Kind::Decimal {
                precision: (m >> 16) & 0xffff,
                scale,
            }
        }
        "numeric" => Kind::VariableDecimal,
        "bytea" => Kind::Bytes,
        "date" => Kind::Date,
        "timestamp" => Kind::Timestamp {
            precision: precision(c.type_modifier),
        },
        "timestamptz" => Kind::TimestampTz,
        "time" => Kind::Time {
            precision: precision(c.type_modifier),
        },
        "timetz" => Kind::TimeTz,
        "uuid" => Kind::Uuid,
        "json" | "jsonb" => Kind::Json,
        "interval" => Kind::Interval,
        "xml" => Kind::NamedString("io.debezium.data.Xml"),
        "ltree" => Kind::NamedString("io.debezium.data.Ltree"),
        _ if c.enum_labels.is_some() => Kind::Enum,
        // text, varchar, bpchar, name, char, xml, inet, ... and every other type: its text.
        _ => Kind::String,
    }
}

/// Debezium's `io.debezium.data.VariableScaleDecimal` struct.
pub fn variable_scale_decimal_schema(optional: bool) -> SchemaRef {
    let mut b = SchemaBuilder::struct_builder()
        .name("io.debezium.data.VariableScaleDecimal")
        .version(1)
        .doc("Variable scaled decimal")
        .field("scale", Schema::primitive(Type::Int32, false))
        .and_then(|b| b.field("value", Schema::primitive(Type::Bytes, false)))
        .expect("static schema");
    if optional {
        b = b.optional();
    }
    b.build()
}

/// The Connect schema of a column.
pub fn column_schema(c: &Column, modes: &Modes) -> SchemaRef {
    if let Some(element) = c.element() {
        let b = SchemaBuilder::array(column_schema(&element, modes));
        return if c.nullable { b.optional() } else { b }.build();
    }
    let named = |t: Type, name: &str| SchemaBuilder::new(t).name(name).version(1);
    let b = match kind_of(c) {
        Kind::Bool => SchemaBuilder::new(Type::Boolean),
        Kind::Int16 => SchemaBuilder::new(Type::Int16),
        Kind::Int32 => SchemaBuilder::new(Type::Int32),
        Kind::Int64 => SchemaBuilder::new(Type::Int64),
        Kind::Float32 => SchemaBuilder::new(Type::Float32),
        Kind::Float64 => SchemaBuilder::new(Type::Float64),
        Kind::Decimal { precision, scale } => match modes.decimal {
            DecimalMode::Precise => SchemaBuilder::decimal(scale)
                .parameter("connect.decimal.precision", precision.to_string()),
            DecimalMode::Double => SchemaBuilder::new(Type::Float64),
            DecimalMode::String => SchemaBuilder::new(Type::String),
        },
        Kind::VariableDecimal => match modes.decimal {
            DecimalMode::Precise => return variable_scale_decimal_schema(c.nullable),
            DecimalMode::Double => SchemaBuilder::new(Type::Float64),
            DecimalMode::String => SchemaBuilder::new(Type::String),
        },
        Kind::String => SchemaBuilder::new(Type::String),
        Kind::Bytes => match modes.binary {
            BinaryMode::Bytes => SchemaBuilder::new(Type::Bytes),
            _ => SchemaBuilder::new(Type::String),
        },
        Kind::Date => match modes.time {
            TimeMode::Connect => SchemaBuilder::date(),
            _ => named(Type::Int32, "io.debezium.time.Date"),
        },
        Kind::Timestamp { precision } => match modes.time {
            TimeMode::Connect => SchemaBuilder::timestamp(),
            _ if precision <= 3 => named(Type::Int64, "io.debezium.time.Timestamp"),
            _ => named(Type::Int64, "io.debezium.time.MicroTimestamp"),
        },
        Kind::TimestampTz => named(Type::String, "io.debezium.time.ZonedTimestamp"),
        Kind::Time { precision } => match modes.time {
            TimeMode::Connect => SchemaBuilder::time(),
            TimeMode::Adaptive if precision <= 3 => named(Type::Int32, "io.debezium.time.Time"),
            _ => named(Type::Int64, "io.debezium.time.MicroTime"),
        },
        Kind::TimeTz => named(Type::String, "io.debezium.time.ZonedTime"),
        Kind::Uuid => named(Type::String, "io.debezium.data.Uuid"),
        Kind::Json => named(Type::String, "io.debezium.data.Json"),
        Kind::Interval => named(Type::Int64, "io.debezium.time.MicroDuration"),
        Kind::NamedString(name) => named(Type::String, name),
        Kind::Enum => named(Type::String, "io.debezium.data.Enum").parameter(
            "allowed",
            c.enum_labels.as_deref().unwrap_or_default().join(","),
        ),
    };
    if c.nullable {
        b.optional().build()
    } else {
        b.build()
    }
}

/// A required field's stand-in when the row does not carry the column (a key-only `before`
/// of a delete under REPLICA IDENTITY DEFAULT): the type's zero, so the struct stays valid.
pub fn zero_value(schema: &Schema) -> Value {
    match (schema.name.as_deref(), schema.schema_type) {
        (Some(crate::data::DECIMAL), _) => Value::Decimal(0),
        (Some(crate::data::DATE), _) => Value::Date(0),
        (Some(crate::data::TIME), _) => Value::Time(0),
        (Some(crate::data::TIMESTAMP), _) => Value::Timestamp(0),
        (_, Type::Boolean) => Value::Boolean(false),
        (_, Type::Int8) => Value::Int8(0),
        (_, Type::Int16) => Value::Int16(0),
        (_, Type::Int32) => Value::Int32(0),
        (_, Type::Int64) => Value::Int64(0),
        (_, Type::Float32) => Value::Float32(0.0),
        (_, Type::Float64) => Value::Float64(0.0),
        (_, Type::String) => Value::String(String::new()),
        (_, Type::Bytes) => Value::Bytes(Vec::new()),
        (_, Type::Struct) => Struct::new(std::sync::Arc::new(schema.clone()))
            .map(|mut s| {
                for f in &schema.fields {
                    let _ = s.put(&f.name, zero_value(&f.schema));
                }
                Value::Struct(s)
            })
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// PostgreSQL JDBC's stand-ins for `infinity` / `-infinity` timestamps (milliseconds), which
/// Debezium passes on.
const POSITIVE_INFINITY_MS: i64 = 9_223_372_036_825_200_000;
const NEGATIVE_INFINITY_MS: i64 = -9_223_372_036_832_400_000;

/// The Connect value of a column's text. `Err` says what did not parse.
pub fn text_value(c: &Column, schema: &Schema, text: &str, modes: &Modes) -> Result<Value, String> {
    if let (Some(element), Some(element_schema)) = (c.element(), &schema.value_schema) {
        let items = parse_array(text).ok_or_else(|| {
            format!(
                "column {}: cannot read {text:?} as a one-dimensional array",
                c.name
            )
        })?;
        return items
            .into_iter()
            .map(|item| match item {
                None => Ok(Value::Null),
                Some(t) => text_value(&element, element_schema, &t, modes),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    let bad = |what: &str| format!("column {}: cannot read {text:?} as {what}", c.name);
    Ok(match kind_of(c) {
        Kind::Bool => Value::Boolean(matches!(text, "t" | "true")),
        Kind::Int16 => Value::Int16(text.parse().map_err(|_| bad("int2"))?),
        Kind::Int32 => Value::Int32(text.parse().map_err(|_| bad("int4"))?),
        Kind::Int64 => Value::Int64(text.parse().map_err(|_| bad("int8"))?),
        Kind::Float32 => Value::Float32(text.parse().map_err(|_| bad("float4"))?),
        Kind::Float64 => Value::Float64(text.parse().map_err(|_| bad("float8"))?),
        // NaN and infinities have no Decimal: null, as Debezium does.
        Kind::Decimal { .. } | Kind::VariableDecimal
            if modes.decimal == DecimalMode::Precise && is_special_numeric(text) =>
        {
            Value::Null
        }
        Kind::Decimal { scale, .. } => match modes.decimal {
            DecimalMode::Precise => {
                // Beyond 38 digits the data model has no Decimal: an error, never a
                // silent truncation.
                let (unscaled, s) =
                    parse_decimal(text).ok_or_else(|| bad("numeric(<=38 digits)"))?;
                Value::Decimal(rescale(unscaled, s, scale).ok_or_else(|| bad("numeric"))?)
            }
            DecimalMode::Double => Value::Float64(numeric_f64(text).ok_or_else(|| bad("numeric"))?),
            DecimalMode::String => Value::String(text.to_string()),
        },
        Kind::VariableDecimal => match modes.decimal {
            DecimalMode::Precise => match big_decimal(text) {
                None => return Err(bad("numeric")),
                Some((bytes, s)) => {
                    let st = Struct::new(variable_scale_decimal_schema(false))
                        .and_then(|st| st.with("scale", Value::Int32(s)))
                        .and_then(|st| st.with("value", Value::Bytes(bytes)))
                        .map_err(|e| e.0)?;
                    // Re-home onto the column's own (possibly optional) schema.
                    let mut out =
                        Struct::new(std::sync::Arc::new(schema.clone())).map_err(|e| e.0)?;
                    for (f, v) in st.iter() {
                        out.put(&f.name, v.clone()).map_err(|e| e.0)?;
                    }
                    Value::Struct(out)
                }
            },
            DecimalMode::Double => Value::Float64(numeric_f64(text).ok_or_else(|| bad("numeric"))?),
            DecimalMode::String => Value::String(text.to_string()),
        },
        Kind::String
        | Kind::Uuid
        | Kind::Json
        | Kind::Enum
        | Kind::TimeTz
        | Kind::NamedString(_) => match kind_of(c) {
            Kind::TimeTz => Value::String(zoned_time(text).ok_or_else(|| bad("timetz"))?),
            _ => Value::String(text.to_string()),
        },
        Kind::Bytes => {
            let bytes = parse_bytea(text).ok_or_else(|| bad("bytea"))?;
            match modes.binary {
                BinaryMode::Bytes => Value::Bytes(bytes),
                BinaryMode::Base64 => {
                    use base64::Engine;
                    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
                BinaryMode::Base64UrlSafe => {
                    use base64::Engine;
                    Value::String(base64::engine::general_purpose::URL_SAFE.encode(bytes))
                }
                BinaryMode::Hex => Value::String(text.trim_start_matches("\\x").to_string()),
            }
        }
        Kind::Date => {
            let days = match text {
                "infinity" => i32::MAX,
                "-infinity" => i32::MIN,
                _ => days_since_epoch(&parse_date(text).ok_or_else(|| bad("date"))?),
            };
            match modes.time {
                TimeMode::Connect => Value::Date(days),
                _ => Value::Int32(days),
            }
        }
        Kind::Timestamp { precision } => {
            let micros = match text {
                "infinity" => POSITIVE_INFINITY_MS,
                "-infinity" => NEGATIVE_INFINITY_MS,
                _ => micros_since_epoch(&parse_timestamp(text).ok_or_else(|| bad("timestamp"))?),
            };
            let infinite = matches!(text, "infinity" | "-infinity");
            let millis = if infinite {
                micros
            } else {
                micros.div_euclid(1000)
            };
            match modes.time {
                TimeMode::Connect => Value::Timestamp(millis),
                _ if precision <= 3 => Value::Int64(millis),
                _ => Value::Int64(micros),
            }
        }
        Kind::Interval => Value::Int64(interval_micros(text).ok_or_else(|| bad("interval"))?),
        Kind::TimestampTz => {
            Value::String(zoned_timestamp(text).ok_or_else(|| bad("timestamptz"))?)
        }
        Kind::Time { precision } => {
            let micros = parse_time_micros(text).ok_or_else(|| bad("time"))?;
            match modes.time {
                TimeMode::Connect => Value::Time((micros / 1000) as i32),
                TimeMode::Adaptive if precision <= 3 => Value::Int32((micros / 1000) as i32),
                _ => Value::Int64(micros),
            }
        }
    })
}

/// A one-dimensional array's text (`{1,NULL,"a \\"b\\""}`) as its elements' texts;
/// `None` for a multi-dimensional or malformed one.
pub fn parse_array(text: &str) -> Option<Vec<Option<String>>> {
    // A lower bound other than 1 is written first: `[0:1]={a,b}`.
    let body = match text.find("={") {
        Some(i) if text.starts_with('[') => &text[i + 1..],
        _ => text,
    };
    let inner = body.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    if inner.is_empty() {
        return Some(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let item = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next()? {
                    '\\' => v.push(chars.next()?),
                    '"' => break,
                    c => v.push(c),
                }
            }
            Some(v)
        } else {
            let mut v = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' || c == '"' {
                    return None;
                }
                v.push(c);
                chars.next();
            }
            let v = v.trim().to_string();
            (!v.eq_ignore_ascii_case("NULL")).then_some(v)
        };
        out.push(item);
        match chars.next() {
            None => return Some(out),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// Debezium's average month for durations: 365.25 / 12 days.
const DAYS_PER_MONTH_AVG: f64 = 365.25 / 12.0;

/// An interval's text (`IntervalStyle=postgres`: `1 year 2 mons -3 days +04:05:06.5`) as
/// approximate microseconds, months counted as [`DAYS_PER_MONTH_AVG`] days (Debezium's
/// `MicroDuration`).
fn interval_micros(text: &str) -> Option<i64> {
    let mut months = 0f64;
    let mut days = 0f64;
    let mut micros = 0f64;
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w.contains(':') {
            let (sign, hms) = match w.strip_prefix('-') {
                Some(rest) => (-1.0, rest),
                None => (1.0, w.strip_prefix('+').unwrap_or(w)),
            };
            let mut parts = hms.split(':');
            let h: f64 = parts.next()?.parse().ok()?;
            let m: f64 = parts.next()?.parse().ok()?;
            let sec: f64 = parts.next().unwrap_or("0").parse().ok()?;
            micros += sign * ((h * 3600.0 + m * 60.0) * 1e6 + (sec * 1e6).round());
            continue;
        }
        let n: f64 = w.parse().ok()?;
        match words.next()? {
            "year" | "years" => months += n * 12.0,
            "mon" | "mons" => months += n,
            "day" | "days" => days += n,
            _ => return None,
        }
    }
    let total = (months * DAYS_PER_MONTH_AVG + days) * 86_400e6 + micros;
    total.is_finite().then_some(total.round() as i64)
}

/// A numeric's text as (unscaled, scale); `None` for NaN and infinities or garbage.
pub fn parse_decimal(text: &str) -> Option<(i128, i32)> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut unscaled: i128 = 0;
    for ch in int.chars().chain(frac.chars()) {
        let d = ch.to_digit(10)?;
        unscaled = unscaled.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    let scale = i32::try_from(frac.len()).ok()?;
    Some((if neg { -unscaled } else { unscaled }, scale))
}

fn is_special_numeric(text: &str) -> bool {
    matches!(text, "NaN" | "Infinity" | "-Infinity")
}

/// A numeric's text of any size as (unscaled value as Java's `BigInteger.toByteArray`,
/// scale).
pub fn big_decimal(text: &str) -> Option<(Vec<u8>, i32)> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    // The magnitude in base 256, little-endian: multiply by ten and add each digit.
    let mut magnitude: Vec<u8> = vec![0];
    for ch in int.chars().chain(frac.chars()) {
        let mut carry = ch.to_digit(10)?;
        for byte in magnitude.iter_mut() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            magnitude.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    // One spare byte so the sign bit is free, then two's complement when negative.
    magnitude.push(0);
    if neg {
        let mut carry = 1u16;
        for byte in magnitude.iter_mut() {
            let v = u16::from(!*byte) + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
    }
    magnitude.reverse();
    // Minimal: drop leading bytes that only repeat the sign.
    let mut start = 0;
    while start + 1 < magnitude.len() {
        let (b, next) = (magnitude[start], magnitude[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    let scale = i32::try_from(frac.len()).ok()?;
    Some((magnitude[start..].to_vec(), scale))
}

fn rescale(unscaled: i128, from: i32, to: i32) -> Option<i128> {
    if from == to {
        return Some(unscaled);
    }
    if to > from {
        unscaled.checked_mul(10i128.checked_pow(u32::try_from(to - from).ok()?)?)
    } else {
        let div = 10i128.checked_pow(u32::try_from(from - to).ok()?)?;
        // Only exact: PostgreSQL already rounded to the column's scale.
        (unscaled % div == 0).then_some(unscaled / div)
    }
}

fn numeric_f64(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// Java's `BigInteger.toByteArray`: minimal big-endian two's complement.
pub fn twos_complement(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Splits a trailing ` BC`: (text, is BC).
fn bc(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    }
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    let (t, is_bc) = bc(text);
    let d = NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
    if is_bc {
        // 1 BC is year 0 in the proleptic calendar.
        use chrono::Datelike;
        d.with_year(1 - d.year())
    } else {
        Some(d)
    }
}

fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    let (t, is_bc) = bc(text);
    let dt = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    if is_bc {
        use chrono::Datelike;
        dt.with_year(1 - dt.year())
    } else {
        Some(dt)
    }
}

fn days_since_epoch(d: &NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (*d - epoch)
        .num_days()
        .clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn micros_since_epoch(dt: &NaiveDateTime) -> i64 {
    dt.and_utc().timestamp_micros()
}

fn parse_time_micros(text: &str) -> Option<i64> {
    if text.starts_with("24:00:00") {
        return Some(86_400_000_000);
    }
    let t = NaiveTime::parse_from_str(text, "%H:%M:%S%.f").ok()?;
    Some(i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1000))
}

/// `.ffffff` with trailing zeros removed (Java's ISO formatter), empty for whole seconds.
fn fraction(micros: u32) -> String {
    if micros == 0 {
        return String::new();
    }
    let s = format!(".{micros:06}");
    s.trim_end_matches('0').to_string()
}

/// Splits `...+02`, `...-05:30`, `...+00` into (local part, offset seconds east).
fn split_offset(text: &str, from: usize) -> Option<(&str, i32)> {
    let idx = text.get(from..)?.rfind(['+', '-'])? + from;
    let (local, off) = text.split_at(idx);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let mut parts = off[1..].split(':');
    let h: i32 = parts.next()?.parse().ok()?;
    let m: i32 = parts.next().map(str::parse).transpose().ok()?.unwrap_or(0);
    let s: i32 = parts.next().map(str::parse).transpose().ok()?.unwrap_or(0);
    Some((local, sign * (h * 3600 + m * 60 + s)))
}

/// Debezium's `ZonedTimestamp`: ISO-8601 in UTC, `2024-01-31T12:34:56.5Z`.
fn zoned_timestamp(text: &str) -> Option<String> {
    match text {
        "infinity" => return Some("infinity".into()),
        "-infinity" => return Some("-infinity".into()),
        _ => {}
    }
    let (t, is_bc) = bc(text);
    // The offset follows the time part, which starts after the date's space.
    let time_start = t.find(' ')? + 1;
    let (local, offset_s) = split_offset(t, time_start)?;
    let mut dt = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    if is_bc {
        use chrono::Datelike;
        dt = dt.with_year(1 - dt.year())?;
    }
    let utc = dt - chrono::Duration::seconds(i64::from(offset_s));
    Some(format!(
        "{}{}Z",
        utc.format("%Y-%m-%dT%H:%M:%S"),
        fraction(utc.nanosecond() / 1000)
    ))
}

/// Debezium's `ZonedTime`: `10:34:56.5Z` in UTC.
fn zoned_time(text: &str) -> Option<String> {
    let (local, offset_s) = split_offset(text, 1)?;
    let micros = parse_time_micros(local)?;
    let utc = (micros - i64::from(offset_s) * 1_000_000).rem_euclid(86_400_000_000);
    let secs = utc / 1_000_000;
    Some(format!(
        "{:02}:{:02}:{:02}{}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        fraction((utc % 1_000_000) as u32)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(type_name: &str, type_modifier: i32) -> Column {
        Column {
            name: "c".into(),
            type_name: type_name.into(),
            type_modifier,
            nullable: true,
            key_position: None,
            enum_labels: None,
            sql_type: type_name.into(),
            element_type: None,
        }
    }

    const MODES: Modes = Modes {
        decimal: DecimalMode::Precise,
        time: TimeMode::Adaptive,
        binary: BinaryMode::Bytes,
    };

    fn value(type_name: &str, type_modifier: i32, text: &str) -> Value {
        let c = col(type_name, type_modifier);
        let s = column_schema(&c, &MODES);
        let v = text_value(&c, &s, text, &MODES).unwrap();
        s.validate(&v).unwrap();
        v
    }

    #[test]
    fn numbers() {
        assert_eq!(value("int2", -1, "-7"), Value::Int16(-7));
        assert_eq!(value("int8", -1, "9000000000"), Value::Int64(9_000_000_000));
        assert_eq!(
            value("float8", -1, "Infinity"),
            Value::Float64(f64::INFINITY)
        );
        // numeric(10,2): typmod = (10 << 16 | 2) + 4.
        let tm = ((10 << 16) | 2) + 4;
        assert_eq!(value("numeric", tm, "-123.45"), Value::Decimal(-12345));
        assert_eq!(value("numeric", tm, "NaN"), Value::Null);
        let s = column_schema(&col("numeric", tm), &MODES);
        assert_eq!(s.decimal_scale(), Ok(2));
        match value("numeric", -1, "-1.5") {
            Value::Struct(st) => {
                assert_eq!(st.get("scale"), Some(&Value::Int32(1)));
                assert_eq!(st.get("value"), Some(&Value::Bytes(vec![0xf1])));
            }
            v => panic!("{v:?}"),
        }
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
            65535,
            -65536,
            i128::MAX,
            i128::MIN + 1,
        ] {
            assert_eq!(
                big_decimal(&v.to_string()),
                Some((twos_complement(v), 0)),
                "{v}"
            );
        }
        // Beyond i128: 2^128 is 0x01 followed by 16 zero bytes.
        let (b, s) = big_decimal("340282366920938463463374607431768211456.5").unwrap();
        assert_eq!(s, 1);
        assert_eq!(b.len(), 17);
        assert_eq!(big_decimal("1.2.3"), None);
        assert_eq!(value("numeric", -1, "NaN"), Value::Null);
        let big = col("numeric", (60 << 16) + 4);
        assert!(text_value(&big, &column_schema(&big, &MODES), &"9".repeat(50), &MODES).is_err());
        assert_eq!(twos_complement(128), vec![0, 128]);
        assert_eq!(twos_complement(-1), vec![0xff]);
        assert_eq!(twos_complement(0), vec![0]);
    }

    #[test]
    fn times() {
        assert_eq!(value("date", -1, "1970-01-02"), Value::Int32(1));
        assert_eq!(value("date", -1, "1969-12-31"), Value::Int32(-1));
        assert_eq!(
            value("timestamp", -1, "1970-01-01 00:00:01.000002"),
            Value::Int64(1_000_002)
        );
        assert_eq!(
            value("timestamp", 3, "1970-01-01 00:00:01.5"),
            Value::Int64(1500)
        );
        assert_eq!(
            value("timestamptz", -1, "2024-01-31 12:34:56.5+02"),
            Value::String("2024-01-31T10:34:56.5Z".into())
        );
        assert_eq!(
            value("timestamptz", -1, "2024-01-31 12:34:56-05:30"),
            Value::String("2024-01-31T18:04:56Z".into())
        );
        assert_eq!(
            value("time", -1, "01:00:00.25"),
            Value::Int64(3_600_250_000)
        );
        assert_eq!(value("time", 0, "01:00:00"), Value::Int32(3_600_000));
        assert_eq!(
            value("timetz", -1, "12:00:00+01"),
            Value::String("11:00:00Z".into())
        );
        assert_eq!(value("bytea", -1, "\\x00ff"), Value::Bytes(vec![0, 255]));
        assert_eq!(value("interval", -1, "00:00:01.5"), Value::Int64(1_500_000));
        let mut arr = col("_int4", -1);
        arr.element_type = Some("int4".into());
        let s = column_schema(&arr, &MODES);
        assert_eq!(
            text_value(&arr, &s, "{1,NULL,3}", &MODES),
            Ok(Value::Array(vec![
                Value::Int32(1),
                Value::Null,
                Value::Int32(3)
            ]))
        );
        assert_eq!(text_value(&arr, &s, "{}", &MODES), Ok(Value::Array(vec![])));
        assert!(text_value(&arr, &s, "{{1},{2}}", &MODES).is_err(), "2-D");
        assert_eq!(
            parse_array(r#"{"a,b","c\"d",NULL,"NULL", e }"#),
            Some(vec![
                Some("a,b".into()),
                Some("c\"d".into()),
                None,
                Some("NULL".into()),
                Some("e".into())
            ])
        );
        assert_eq!(parse_array("[0:1]={x,y}").map(|v| v.len()), Some(2));
        for bad in ["", "{", "{\"a", "{a}b", "x"] {
            assert_eq!(parse_array(bad), None, "{bad}");
        }
        assert_eq!(
            value("interval", -1, "1 day -01:00:00"),
            Value::Int64(82_800_000_000)
        );
        assert_eq!(
            value("interval", -1, "1 year 1 mon"),
            Value::Int64((13.0 * 30.4375 * 86_400e6) as i64)
        );
        assert_eq!(
            value("interval", -1, "-2 days"),
            Value::Int64(-172_800_000_000)
        );
        let c = col("date", -1);
        assert!(text_value(&c, &column_schema(&c, &MODES), "garbage", &MODES).is_err());
    }
}
