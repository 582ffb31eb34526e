//! Kafka's `SimpleHeaderConverter` (the default `header.converter`): header values as
//! UTF-8 strings, their schemas inferred when read back (Kafka's `Values.parseString`).
//!
//! Written: numbers, booleans and strings as text, bytes as base64, dates as ISO-8601
//! (`2024-01-15`, `12:30:00.000Z`, `2024-01-15T12:30:00.000Z`, UTC), arrays, maps and
//! structs as Kafka's `[1,"a"]` / `{"k":1}` text, null as no value.
//!
//! Read: `null` as null, `true`/`false` as booleans, numbers as the narrowest of int8,
//! int16, int32, int64, then float32 / float64 for fractions (as Kafka does), and numbers
//! beyond those as Decimals; ISO-8601 dates, times and timestamps in the formats above as
//! Date / Time / Timestamp; the empty string and anything else as a string.
//! Not inferred (read back as a plain string, where Kafka builds an array, a map or a
//! struct-like map): `[...]` and `{...}` text, and quoted strings embedded in them.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::json_node::{big_decimal_string, java_double, java_float, Num};
use super::simple::{civil_from_days, days_from_civil};
use super::{ConvertError, HeaderConverter};
use crate::data::{Schema, SchemaBuilder, SchemaRef, Type, Value};

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Kafka's `org.apache.kafka.connect.storage.SimpleHeaderConverter` (no options).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimpleHeaderConverter;

impl HeaderConverter for SimpleHeaderConverter {
    fn from_connect_header(
        &self,
        _topic: &str,
        _header_key: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        if value.is_null() {
            return Ok(None);
        }
        let mut out = String::new();
        append(&mut out, schema.map(|s| &**s), value, false)?;
        Ok(Some(out.into_bytes()))
    }

    fn to_connect_header(
        &self,
        _topic: &str,
        _header_key: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<SchemaRef>, Value), ConvertError> {
        let Some(bytes) = bytes else {
            return Ok((None, Value::Null));
        };
        Ok(parse_string(&String::from_utf8_lossy(bytes)))
    }
}

/// Kafka's `Values.convertToString` / `append`.
fn append(
    out: &mut String,
    schema: Option<&Schema>,
    value: &Value,
    embedded: bool,
) -> Result<(), ConvertError> {
    let quoted = |out: &mut String, s: &str| {
        if embedded {
            out.push('"');
            out.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
            out.push('"');
        } else {
            out.push_str(s);
        }
    };
    match value {
        Value::Null => out.push_str("null"),
        Value::Int8(v) => out.push_str(&v.to_string()),
        Value::Int16(v) => out.push_str(&v.to_string()),
        Value::Int32(v) => out.push_str(&v.to_string()),
        Value::Int64(v) => out.push_str(&v.to_string()),
        Value::Float32(v) => out.push_str(&java_float(*v)),
        Value::Float64(v) => out.push_str(&java_double(*v)),
        Value::Boolean(v) => out.push_str(if *v { "true" } else { "false" }),
        Value::String(s) => quoted(out, s),
        Value::Bytes(b) => {
            let encoded = BASE64.encode(b);
            if embedded {
                out.push('"');
                out.push_str(&encoded);
                out.push('"');
            } else {
                out.push_str(&encoded);
            }
        }
        Value::Decimal(unscaled) => {
            let Some(schema) = schema else {
                return Err(ConvertError::Data(
                    "Failed to serialize a Decimal without its schema".into(),
                ));
            };
            out.push_str(&big_decimal_string(*unscaled, schema.decimal_scale()?));
        }
        Value::Date(days) => out.push_str(&format_date(i64::from(*days) * MILLIS_PER_DAY)),
        Value::Time(ms) => out.push_str(&format_date(i64::from(*ms))),
        Value::Timestamp(ms) => out.push_str(&format_date(*ms)),
        Value::Array(items) => {
            let element = schema.and_then(|s| s.value_schema.as_deref());
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                append(out, element, item, true)?;
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let (ks, vs) = (
                schema.and_then(|s| s.key_schema.as_deref()),
                schema.and_then(|s| s.value_schema.as_deref()),
            );
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                append(out, ks, k, true)?;
                out.push(':');
                append(out, vs, v, true)?;
            }
            out.push('}');
        }
        Value::Struct(s) => {
            out.push('{');
            for (i, field) in s.schema().fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                append(out, None, &Value::String(field.name.clone()), true)?;
                out.push(':');
                append(
                    out,
                    Some(&field.schema),
                    s.get(&field.name).unwrap_or(&Value::Null),
                    true,
                )?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Kafka's `Values.dateFormatFor`: a time of day before the first day's end, a date at
/// midnight, a timestamp otherwise (in UTC).
fn format_date(ms: i64) -> String {
    let days = ms.div_euclid(MILLIS_PER_DAY);
    let in_day = ms.rem_euclid(MILLIS_PER_DAY);
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    );
    let (y, m, d) = civil_from_days(days);
    let date = format!("{y:04}-{m:02}-{d:02}");
    if ms < MILLIS_PER_DAY {
        time
    } else if ms % MILLIS_PER_DAY == 0 {
        date
    } else {
        format!("{date}T{time}")
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_date(s: &str) -> Option<i64> {
    let (y, rest) = s.split_once('-')?;
    let (m, d) = rest.split_once('-')?;
    let (y, m, d) = (digits(y)?, digits(m)?, digits(d)?);
    if y.to_string().len() > 4 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    // No February 30th.
    (civil_from_days(days) == (y, m as u32, d as u32)).then_some(days)
}

fn parse_time(s: &str) -> Option<i64> {
    let body = s.strip_suffix('Z')?;
    let (hms, millis) = body.split_once('.')?;
    let mut parts = hms.split(':');
    let (h, m, sec) = (
        digits(parts.next()?)?,
        digits(parts.next()?)?,
        digits(parts.next()?)?,
    );
    if parts.next().is_some() || millis.len() != 3 || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    Some(((h * 60 + m) * 60 + sec) * 1000 + digits(millis)?)
}

fn parse_temporal(token: &str) -> Option<(SchemaRef, Value)> {
    let token = token.replace("\\:", ":");
    match token.len() {
        13 => parse_time(&token).map(|ms| (SchemaBuilder::time().build(), Value::Time(ms as i32))),
        24 => {
            let (date, time) = token.split_once('T')?;
            let ms = parse_date(date)?
                .checked_mul(MILLIS_PER_DAY)?
                .checked_add(parse_time(time)?)?;
            Some((SchemaBuilder::timestamp().build(), Value::Timestamp(ms)))
        }
        10 => {
            let days = i32::try_from(parse_date(&token)?).ok()?;
            Some((SchemaBuilder::date().build(), Value::Date(days)))
        }
        _ => None,
    }
}

fn parse_number(token: &str) -> Option<(SchemaRef, Value)> {
    let n = Num::parse(token)?;
    let scale = n.scale();
    // An integral value within 64 bits: the narrowest integer type holding it.
    if let Some(v) = n.unscaled_at(0).and_then(|v| i64::try_from(v).ok()) {
        {
            return Some(if let Ok(v) = i8::try_from(v) {
                (Schema::primitive(Type::Int8, false), Value::Int8(v))
            } else if let Ok(v) = i16::try_from(v) {
                (Schema::primitive(Type::Int16, false), Value::Int16(v))
            } else if let Ok(v) = i32::try_from(v) {
                (Schema::primitive(Type::Int32, false), Value::Int32(v))
            } else {
                (Schema::primitive(Type::Int64, false), Value::Int64(v))
            });
        }
    }
    if scale != 0 {
        let plain = token.trim_start_matches('+');
        if let Some(f) = plain.parse::<f32>().ok().filter(|f| f.is_finite()) {
            return Some((Schema::primitive(Type::Float32, false), Value::Float32(f)));
        }
        if let Some(f) = plain.parse::<f64>().ok().filter(|f| f.is_finite()) {
            return Some((Schema::primitive(Type::Float64, false), Value::Float64(f)));
        }
    }
    let scale = i32::try_from(scale).ok()?;
    let unscaled = n.unscaled_at(scale)?;
    Some((
        SchemaBuilder::decimal(scale).build(),
        Value::Decimal(unscaled),
    ))
}

/// Kafka's `Values.parseString`, for the cases the module documentation lists.
pub(crate) fn parse_string(s: &str) -> (Option<SchemaRef>, Value) {
    let string = || {
        (
            Some(Schema::primitive(Type::String, false)),
            Value::String(s.to_string()),
        )
    };
    match s {
        "" => return string(),
        "null" => return (None, Value::Null),
        "true" => {
            return (
                Some(Schema::primitive(Type::Boolean, false)),
                Value::Boolean(true),
            )
        }
        "false" => {
            return (
                Some(Schema::primitive(Type::Boolean, false)),
                Value::Boolean(false),
            )
        }
        _ => {}
    }
    let token = s.trim();
    let Some(first) = token.chars().next() else {
        return string();
    };
    if first.is_ascii_digit() {
        if let Some((schema, value)) = parse_temporal(token) {
            return (Some(schema), value);
        }
    }
    if first.is_ascii_digit() || first == '+' || first == '-' {
        if let Some((schema, value)) = parse_number(token) {
            return (Some(schema), value);
        }
    }
    string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Struct;

    fn round_trip(
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> (String, (Option<SchemaRef>, Value)) {
        let c = SimpleHeaderConverter;
        let bytes = c
            .from_connect_header("t", "h", schema, value)
            .unwrap()
            .unwrap();
        let back = c.to_connect_header("t", "h", Some(&bytes)).unwrap();
        (String::from_utf8(bytes).unwrap(), back)
    }

    #[test]
    fn infers_kafkas_schemas() {
        let prim = |t| Some(Schema::primitive(t, false));
        let cases = [
            ("42", prim(Type::Int8), Value::Int8(42)),
            ("-129", prim(Type::Int16), Value::Int16(-129)),
            ("100000", prim(Type::Int32), Value::Int32(100_000)),
            (
                "10000000000",
                prim(Type::Int64),
                Value::Int64(10_000_000_000),
            ),
            ("1.0", prim(Type::Int8), Value::Int8(1)),
            ("1.5", prim(Type::Float32), Value::Float32(1.5)),
            ("1e3", prim(Type::Int16), Value::Int16(1000)),
            ("true", prim(Type::Boolean), Value::Boolean(true)),
            ("false", prim(Type::Boolean), Value::Boolean(false)),
            ("null", None, Value::Null),
            ("", prim(Type::String), Value::String(String::new())),
            ("hello", prim(Type::String), Value::String("hello".into())),
            ("42abc", prim(Type::String), Value::String("42abc".into())),
            ("[1,2]", prim(Type::String), Value::String("[1,2]".into())),
            (
                "2024-01-15",
                Some(SchemaBuilder::date().build()),
                Value::Date(19_737),
            ),
            (
                "12:30:00.250Z",
                Some(SchemaBuilder::time().build()),
                Value::Time(45_000_250),
            ),
            (
                "2024-01-15T00:00:01.000Z",
                Some(SchemaBuilder::timestamp().build()),
                Value::Timestamp(1_705_276_801_000),
            ),
            (
                "2024-02-30",
                prim(Type::String),
                Value::String("2024-02-30".into()),
            ),
            (
                "12345678901234567890",
                Some(SchemaBuilder::decimal(0).build()),
                Value::Decimal(12_345_678_901_234_567_890),
            ),
        ];
        let c = SimpleHeaderConverter;
        for (text, schema, value) in cases {
            assert_eq!(
                c.to_connect_header("t", "h", Some(text.as_bytes()))
                    .unwrap(),
                (schema, value),
                "{text}"
            );
        }
        assert_eq!(
            c.to_connect_header("t", "h", None).unwrap(),
            (None, Value::Null)
        );
    }

    #[test]
    fn writes_kafkas_strings() {
        let (text, back) = round_trip(None, &Value::Int32(7));
        assert_eq!((text.as_str(), back.1), ("7", Value::Int8(7)));
        let (text, back) = round_trip(None, &Value::String("x y".into()));
        assert_eq!(
            (text.as_str(), back.1),
            ("x y", Value::String("x y".into()))
        );
        let (text, back) = round_trip(None, &Value::Float64(2.5));
        assert_eq!((text.as_str(), back.1), ("2.5", Value::Float32(2.5)));
        let (text, back) = round_trip(
            Some(&SchemaBuilder::timestamp().build()),
            &Value::Timestamp(1_705_276_801_000),
        );
        assert_eq!(
            (text.as_str(), back.1),
            (
                "2024-01-15T00:00:01.000Z",
                Value::Timestamp(1_705_276_801_000)
            )
        );
        let (text, _) = round_trip(Some(&SchemaBuilder::date().build()), &Value::Date(19_737));
        assert_eq!(text, "2024-01-15");
        let (text, _) = round_trip(Some(&SchemaBuilder::time().build()), &Value::Time(1));
        assert_eq!(text, "00:00:00.001Z");
        let (text, _) = round_trip(
            Some(&SchemaBuilder::decimal(3).build()),
            &Value::Decimal(-1500),
        );
        assert_eq!(text, "-1.500");
        let (text, _) = round_trip(None, &Value::Bytes(b"hi".to_vec()));
        assert_eq!(text, "aGk=");
        let list = Value::Array(vec![
            Value::String("a\"b".into()),
            Value::Null,
            Value::Int64(3),
        ]);
        assert_eq!(round_trip(None, &list).0, r#"["a\"b",null,3]"#);
        let map = Value::Map(vec![(Value::String("k".into()), Value::Boolean(true))]);
        assert_eq!(round_trip(None, &map).0, r#"{"k":true}"#);
        let schema = SchemaBuilder::struct_builder()
            .field("a", Schema::primitive(Type::Int32, false))
            .unwrap()
            .field("b", Schema::primitive(Type::String, true))
            .unwrap()
            .build();
        let s = Struct::new(schema.clone())
            .unwrap()
            .with("a", Value::Int32(1))
            .unwrap();
        assert_eq!(
            round_trip(Some(&schema), &Value::Struct(s)).0,
            r#"{"a":1,"b":null}"#
        );
        assert_eq!(
            SimpleHeaderConverter
                .from_connect_header("t", "h", None, &Value::Null)
                .unwrap(),
            None
        );
    }
}
