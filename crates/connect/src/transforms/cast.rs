//! Kafka's `Cast`: casts fields, or the whole key or value, to a primitive type.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::convert::{big_decimal_string, java_double, java_float};
use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value, DATE, TIME, TIMESTAMP};
use crate::record::ConnectRecord;

use super::timefmt::civil_from_days;
use super::util::{
    copy_basics_onto, field_value, java_class, map_get, map_put, parse_list, require_map,
    require_struct, Config, Side,
};
use super::{Props, TransformError, Transformation};

const PURPOSE: &str = "cast types";

const INPUT_TYPES: [Type; 9] = [
    Type::Int8,
    Type::Int16,
    Type::Int32,
    Type::Int64,
    Type::Float32,
    Type::Float64,
    Type::Boolean,
    Type::String,
    Type::Bytes,
];

const OUTPUT_TYPES: [Type; 8] = [
    Type::Int8,
    Type::Int16,
    Type::Int32,
    Type::Int64,
    Type::Float32,
    Type::Float64,
    Type::Boolean,
    Type::String,
];

fn type_list(types: &[Type]) -> String {
    let names: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    format!("[{}]", names.join(", "))
}

/// Java's `String.split(":")`: trailing empty parts dropped (but `""` is `[""]`).
fn java_split(s: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 1 {
        while parts.last() == Some(&"") {
            parts.pop();
        }
    }
    parts
}

fn output_type(name: &str) -> Result<Type, TransformError> {
    let t = Type::parse(name).ok_or_else(|| {
        TransformError::Config(format!("Invalid type found in casting spec: {name}"))
    })?;
    if !OUTPUT_TYPES.contains(&t) {
        return Err(TransformError::Config(format!(
            "Cast transformation does not support casting to {t}; supported types are {}",
            type_list(&OUTPUT_TYPES)
        )));
    }
    Ok(t)
}

#[derive(Debug)]
pub(crate) struct Cast {
    side: Side,
    /// Field casts in spec order (a field named twice: the last one).
    casts: Vec<(String, Type)>,
    whole: Option<Type>,
    replace_null_with_default: bool,
}

impl Cast {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let mappings = parse_list(
            c.string("spec")
                .ok_or_else(|| TransformError::missing("spec"))?,
        );
        if mappings.is_empty() {
            return Err(TransformError::Config(
                "Must specify at least one field to cast.".to_string(),
            ));
        }
        let mut casts: Vec<(String, Type)> = Vec::new();
        let mut whole = None;
        for mapping in &mappings {
            let parts = java_split(mapping);
            match parts.as_slice() {
                [t] => whole = Some(output_type(t.trim())?),
                [field, t] => {
                    let t = output_type(t.trim())?;
                    let field = field.trim().to_string();
                    casts.retain(|(f, _)| *f != field);
                    casts.push((field, t));
                }
                [] => {
                    return Err(TransformError::Config(format!(
                        "Invalid cast mapping: {mapping}"
                    )))
                }
                _ => {
                    return Err(TransformError::invalid(
                        "renames",
                        format!("[{}]", mappings.join(", ")),
                        &format!("Invalid rename mapping: {mapping}"),
                    ))
                }
            }
        }
        if whole.is_some() && mappings.len() > 1 {
            return Err(TransformError::Config(
                "Cast transformations that specify a type to cast the entire value to may only \
                 specify a single cast in their spec"
                    .to_string(),
            ));
        }
        Ok(Cast {
            side,
            casts,
            whole,
            replace_null_with_default: c.boolean("replace.null.with.default", true)?,
        })
    }

    fn cast_for(&self, field: &str) -> Option<Type> {
        self.casts.iter().find(|(f, _)| f == field).map(|(_, t)| *t)
    }

    /// Kafka's `getOrBuildSchema`.
    fn build_schema(&self, schema: &Schema) -> Result<SchemaRef, TransformError> {
        let (mut builder, builder_type) = match self.whole {
            Some(t) => (copy_basics_onto(schema, SchemaBuilder::new(t)), t),
            None => {
                if schema.schema_type != Type::Struct {
                    return Err(TransformError::data(
                        "Cannot list fields on non-struct type",
                    ));
                }
                let mut b = copy_basics_onto(schema, SchemaBuilder::struct_builder());
                for field in &schema.fields {
                    let field_schema = match self.cast_for(&field.name) {
                        Some(t) => {
                            let mut fb = SchemaBuilder::new(t);
                            if field.schema.optional {
                                fb = fb.optional();
                            }
                            if let Some(d) = &field.schema.default {
                                fb = fb.default_value(cast_value(Some(&field.schema), d, t)?)?;
                            }
                            fb.build()
                        }
                        None => field.schema.clone(),
                    };
                    b = b.field(field.name.clone(), field_schema)?;
                }
                (b, Type::Struct)
            }
        };
        if schema.optional {
            builder = builder.optional();
        }
        if let Some(d) = &schema.default {
            builder = builder.default_value(cast_value(Some(schema), d, builder_type)?)?;
        }
        Ok(builder.build())
    }
}

impl Transformation for Cast {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        if self.side.value(&record).is_null() {
            return Ok(Some(record));
        }
        let (schema, value) = self.side.take(&mut record);
        match schema {
            None => {
                if let Some(t) = self.whole {
                    let v = cast_value(None, &value, t)?;
                    return Ok(Some(self.side.with(record, None, v)));
                }
                let entries = require_map(&value, PURPOSE)?;
                let mut updated = entries.to_vec();
                for (field, t) in &self.casts {
                    let v = cast_value(None, map_get(entries, field).unwrap_or(&Value::Null), *t)?;
                    map_put(&mut updated, field, v);
                }
                Ok(Some(self.side.with(record, None, Value::Map(updated))))
            }
            Some(schema) => {
                let updated_schema = self.build_schema(&schema)?;
                if let Some(t) = self.whole {
                    let v = cast_value(Some(&schema), &value, t)?;
                    return Ok(Some(self.side.with(record, Some(updated_schema), v)));
                }
                let value = require_struct(&value, PURPOSE)?;
                let mut updated = Struct::new(updated_schema.clone())?;
                for field in &value.schema().fields {
                    let orig = field_value(value, &field.name, self.replace_null_with_default);
                    let v = match self.cast_for(&field.name) {
                        Some(t) => cast_value(Some(&field.schema), &orig, t)?,
                        None => orig,
                    };
                    updated.put(&field.name, v)?;
                }
                Ok(Some(self.side.with(
                    record,
                    Some(updated_schema),
                    Value::Struct(updated),
                )))
            }
        }
    }
}

/// The Connect type of a schemaless value (Kafka's `ConnectSchema.schemaType` of its class);
/// logical values have none.
fn schemaless_type(value: &Value) -> Option<Type> {
    Some(match value {
        Value::Int8(_) => Type::Int8,
        Value::Int16(_) => Type::Int16,
        Value::Int32(_) => Type::Int32,
        Value::Int64(_) => Type::Int64,
        Value::Float32(_) => Type::Float32,
        Value::Float64(_) => Type::Float64,
        Value::Boolean(_) => Type::Boolean,
        Value::String(_) => Type::String,
        Value::Bytes(_) => Type::Bytes,
        Value::Array(_) => Type::Array,
        Value::Map(_) => Type::Map,
        Value::Struct(_) => Type::Struct,
        _ => return None,
    })
}

/// A Java `Number`.
enum Num {
    Int(i64),
    Float(f64),
    Decimal(i128, i32),
}

impl Num {
    /// Java's `longValue()`: floats saturate, a decimal truncates and keeps its low bits.
    fn long(&self) -> i64 {
        match *self {
            Num::Int(i) => i,
            Num::Float(f) => f as i64,
            Num::Decimal(u, scale) => decimal_integer(u, scale) as i64,
        }
    }

    /// Java's `intValue()`.
    fn int(&self) -> i32 {
        match *self {
            Num::Int(i) => i as i32,
            Num::Float(f) => f as i32,
            Num::Decimal(u, scale) => decimal_integer(u, scale) as i32,
        }
    }

    fn text(&self) -> String {
        match *self {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => format!("{f:e}"),
            Num::Decimal(u, scale) => format!("{u}e{}", -i64::from(scale)),
        }
    }
}

/// The integer part of `unscaled * 10^-scale`, modulo 2^128 when it is larger.
fn decimal_integer(unscaled: i128, scale: i32) -> i128 {
    if scale >= 0 {
        10i128
            .checked_pow(scale as u32)
            .map(|p| unscaled / p)
            .unwrap_or(0)
    } else {
        let mut v = unscaled;
        for _ in 0..scale.unsigned_abs().min(200) {
            v = v.wrapping_mul(10);
        }
        v
    }
}

/// Java's `Double.parseDouble` grammar (without hexadecimal floats): surrounding
/// whitespace, a sign, `NaN`, `Infinity`, digits with a point and an exponent, a `f` / `d`
/// suffix. The number is returned in Rust's syntax.
fn java_float_text(s: &str) -> Option<String> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (sign, body) = match t.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", t.strip_prefix('+').unwrap_or(t)),
    };
    if body == "NaN" || body == "Infinity" {
        return Some(format!(
            "{sign}{}",
            if body == "NaN" { "NaN" } else { "inf" }
        ));
    }
    let body = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) || int.len() + frac.len() == 0 {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !digits(e) {
            return None;
        }
    }
    Some(format!("{sign}{body}"))
}

fn out_of_range(value: &Value) -> TransformError {
    let text = match value {
        Value::String(s) => s.clone(),
        other => format!("{other:?}"),
    };
    TransformError::data(format!(
        "Value ({text}) was out of range for requested data type"
    ))
}

fn unexpected(value: &Value) -> TransformError {
    TransformError::data(format!(
        "Unexpected type in Cast transformation: {}",
        java_class(value)
    ))
}

/// `yyyy-MM-dd`, `HH:mm:ss.SSS'Z'` or both (Kafka's `Values.dateFormatFor`), in UTC.
fn date_text(ms: i64) -> String {
    const DAY: i64 = 86_400_000;
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY));
    let t = ms.rem_euclid(DAY);
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        t / 3_600_000,
        t / 60_000 % 60,
        t / 1000 % 60,
        t % 1000
    );
    if ms < DAY {
        time
    } else if ms % DAY == 0 {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{time}")
    }
}

/// Kafka's `castValueToType`: `schema` is the value's (`None` schemaless).
fn cast_value(
    schema: Option<&Schema>,
    value: &Value,
    target: Type,
) -> Result<Value, TransformError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let inferred = match schema {
        Some(s) => s.schema_type,
        None => schemaless_type(value).ok_or_else(|| {
            TransformError::data(format!(
                "Cast transformation was passed a value of type {} which is not supported by \
                 Connect's data API",
                java_class(value)
            ))
        })?,
    };
    if !INPUT_TYPES.contains(&inferred) {
        return Err(TransformError::data(format!(
            "Cast transformation does not support casting from {inferred}; supported types are {}",
            type_list(&INPUT_TYPES)
        )));
    }
    // Kafka's encodeLogicalType: Date / Time / Timestamp become their numbers, but not for a
    // cast to string.
    let mut value = value.clone();
    if target != Type::String {
        if let Some(name) = schema.and_then(|s| s.name.as_deref()) {
            value = match (name, value) {
                (DATE, Value::Date(d)) => Value::Int32(d),
                (TIME, Value::Time(t)) => Value::Int32(t),
                (TIMESTAMP, Value::Timestamp(ms)) => Value::Int64(ms),
                (_, v) => v,
            };
        }
    }
    let number = match &value {
        Value::Int8(v) => Some(Num::Int(i64::from(*v))),
        Value::Int16(v) => Some(Num::Int(i64::from(*v))),
        Value::Int32(v) => Some(Num::Int(i64::from(*v))),
        Value::Int64(v) => Some(Num::Int(*v)),
        Value::Float32(v) => Some(Num::Float(f64::from(*v))),
        Value::Float64(v) => Some(Num::Float(*v)),
        Value::Decimal(u) if target != Type::String => {
            let scale = schema.map(|s| s.decimal_scale()).transpose()?.unwrap_or(0);
            Some(Num::Decimal(*u, scale))
        }
        _ => None,
    };
    if target == Type::String {
        return Ok(Value::String(match &value {
            Value::Int8(v) => v.to_string(),
            Value::Int16(v) => v.to_string(),
            Value::Int32(v) => v.to_string(),
            Value::Int64(v) => v.to_string(),
            Value::Float32(v) => java_float(*v),
            Value::Float64(v) => java_double(*v),
            Value::Boolean(v) => v.to_string(),
            Value::String(v) => v.clone(),
            Value::Bytes(b) => BASE64.encode(b),
            Value::Decimal(u) => {
                let scale = schema.map(|s| s.decimal_scale()).transpose()?;
                big_decimal_string(*u, scale.unwrap_or(0))
            }
            Value::Date(d) => date_text(i64::from(*d) * 86_400_000),
            Value::Time(t) => date_text(i64::from(*t)),
            Value::Timestamp(ms) => date_text(*ms),
            other => return Err(unexpected(other)),
        }));
    }
    if let Value::Boolean(b) = value {
        let one = i64::from(b);
        return Ok(match target {
            Type::Int8 => Value::Int8(one as i8),
            Type::Int16 => Value::Int16(one as i16),
            Type::Int32 => Value::Int32(one as i32),
            Type::Int64 => Value::Int64(one),
            Type::Float32 => Value::Float32(one as f32),
            Type::Float64 => Value::Float64(one as f64),
            _ => Value::Boolean(b),
        });
    }
    if let Value::String(s) = &value {
        let bad = || out_of_range(&value);
        return Ok(match target {
            Type::Int8 => Value::Int8(s.parse().map_err(|_| bad())?),
            Type::Int16 => Value::Int16(s.parse().map_err(|_| bad())?),
            Type::Int32 => Value::Int32(s.parse().map_err(|_| bad())?),
            Type::Int64 => Value::Int64(s.parse().map_err(|_| bad())?),
            Type::Float32 => Value::Float32(
                java_float_text(s)
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(bad)?,
            ),
            Type::Float64 => Value::Float64(
                java_float_text(s)
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(bad)?,
            ),
            _ => Value::Boolean(s.eq_ignore_ascii_case("true")),
        });
    }
    let n = number.ok_or_else(|| unexpected(&value))?;
    Ok(match target {
        Type::Int8 => Value::Int8(n.int() as i8),
        Type::Int16 => Value::Int16(n.int() as i16),
        Type::Int32 => Value::Int32(n.int()),
        Type::Int64 => Value::Int64(n.long()),
        Type::Float32 => Value::Float32(match n {
            Num::Int(i) => i as f32,
            Num::Float(f) => f as f32,
            Num::Decimal(..) => n.text().parse().unwrap_or(f32::NAN),
        }),
        Type::Float64 => Value::Float64(match n {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
            Num::Decimal(..) => n.text().parse().unwrap_or(f64::NAN),
        }),
        _ => Value::Boolean(n.long() != 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_number_parsing_and_narrowing() {
        assert_eq!(java_float_text(" 1.5f "), Some("1.5".into()));
        assert_eq!(java_float_text("-Infinity"), Some("-inf".into()));
        assert_eq!(java_float_text(".5e-3"), Some(".5e-3".into()));
        assert_eq!(java_float_text("inf"), None);
        assert_eq!(java_float_text("1e"), None);
        assert_eq!(java_float_text("."), None);
        assert_eq!(java_split("a:"), ["a"]);
        assert_eq!(java_split(":"), Vec::<&str>::new());
        assert_eq!(java_split(""), [""]);
        assert_eq!(decimal_integer(-12345, 2), -123);
        assert_eq!(decimal_integer(5, -2), 500);
        assert_eq!(decimal_integer(5, 60), 0);
        assert_eq!(Num::Float(1e20).int(), i32::MAX);
        assert_eq!(Num::Int(300).int() as i8, 44);
        assert_eq!(date_text(0), "00:00:00.000Z");
        assert_eq!(date_text(86_400_000), "1970-01-02");
        assert_eq!(date_text(86_400_001), "1970-01-02T00:00:00.001Z");
    }
}
