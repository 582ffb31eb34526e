//! Kafka's simple converters: `StringConverter`, `ByteArrayConverter`, the fixed-width
//! number converters and `BooleanConverter`.

use super::json_node::{big_decimal_string, java_double, java_float};
use super::{data_err, ConvertError, Converter, ConverterType, Props};
use crate::data::{Schema, SchemaRef, Type, Value};

/// A character set Java names (`converter.encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Ascii,
    Latin1,
    Utf16Be,
    Utf16Le,
    /// `UTF-16`: big-endian with a byte-order mark written; a mark honoured when read.
    Utf16,
}

impl Encoding {
    fn parse(key: &str, name: &str) -> Result<Encoding, ConvertError> {
        let normalized = name.trim().to_ascii_uppercase().replace('_', "-");
        Ok(match normalized.as_str() {
            "UTF-8" | "UTF8" | "UNICODE-1-1-UTF-8" => Encoding::Utf8,
            "US-ASCII" | "ASCII" | "ISO646-US" | "DEFAULT" => Encoding::Ascii,
            "ISO-8859-1" | "ISO8859-1" | "LATIN1" | "L1" | "ISO-LATIN-1" | "8859-1" | "CP819" => {
                Encoding::Latin1
            }
            "UTF-16BE" | "UNICODEBIGUNMARKED" | "X-UTF-16BE" => Encoding::Utf16Be,
            "UTF-16LE" | "UNICODELITTLEUNMARKED" | "X-UTF-16LE" => Encoding::Utf16Le,
            "UTF-16" | "UTF16" | "UNICODE" => Encoding::Utf16,
            _ => {
                return Err(ConvertError::Config {
                    key: key.into(),
                    value: name.into(),
                    reason: "Unsupported encoding (supported: UTF-8, US-ASCII, ISO-8859-1, UTF-16, UTF-16BE, UTF-16LE)".into(),
                });
            }
        })
    }

    /// Java's `String.getBytes(charset)`: unmappable characters become `?`.
    pub fn encode(self, s: &str) -> Vec<u8> {
        match self {
            Encoding::Utf8 => s.as_bytes().to_vec(),
            Encoding::Ascii => s
                .chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
                .collect(),
            Encoding::Latin1 => s
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
            Encoding::Utf16Be => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            Encoding::Utf16Le => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            Encoding::Utf16 => {
                let mut out = vec![0xFE, 0xFF];
                out.extend(s.encode_utf16().flat_map(u16::to_be_bytes));
                out
            }
        }
    }

    /// Java's `new String(bytes, charset)`: malformed input becomes U+FFFD.
    pub fn decode(self, bytes: &[u8]) -> String {
        let utf16 = |bytes: &[u8], big: bool| {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| match (c, big) {
                    ([a, b], true) => u16::from_be_bytes([*a, *b]),
                    ([a, b], false) => u16::from_le_bytes([*a, *b]),
                    _ => 0xFFFD,
                })
                .collect();
            char::decode_utf16(units)
                .map(|c| c.unwrap_or('\u{FFFD}'))
                .collect()
        };
        match self {
            Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Ascii => bytes
                .iter()
                .map(|&b| if b.is_ascii() { b as char } else { '\u{FFFD}' })
                .collect(),
            Encoding::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
            Encoding::Utf16Be => utf16(bytes, true),
            Encoding::Utf16Le => utf16(bytes, false),
            Encoding::Utf16 => match bytes {
                [0xFE, 0xFF, rest @ ..] => utf16(rest, true),
                [0xFF, 0xFE, rest @ ..] => utf16(rest, false),
                _ => utf16(bytes, true),
            },
        }
    }
}

/// Kafka's `org.apache.kafka.connect.storage.StringConverter`: values as their string
/// form, read back as optional strings. `converter.encoding` (default UTF-8) names the
/// character set; Kafka's serializer options `key.serializer.encoding` /
/// `value.serializer.encoding` and the deserializer twins override it for one direction
/// (a plain `serializer.encoding` is overwritten by `converter.encoding`, as in Kafka).
#[derive(Clone, Debug)]
pub struct StringConverter {
    pub serializer_encoding: Encoding,
    pub deserializer_encoding: Encoding,
}

impl Default for StringConverter {
    fn default() -> Self {
        StringConverter {
            serializer_encoding: Encoding::Utf8,
            deserializer_encoding: Encoding::Utf8,
        }
    }
}

impl StringConverter {
    pub fn configure(props: &Props, kind: ConverterType) -> Result<StringConverter, ConvertError> {
        let base_key = "converter.encoding";
        let base = match props.get(base_key) {
            Some(name) => Encoding::parse(base_key, name)?,
            None => Encoding::Utf8,
        };
        let prefix = if kind == ConverterType::Key {
            "key"
        } else {
            "value"
        };
        let direction = |what: &str| -> Result<Encoding, ConvertError> {
            let key = format!("{prefix}.{what}.encoding");
            match props.get(&key) {
                Some(name) => Encoding::parse(&key, name),
                None => Ok(base),
            }
        };
        Ok(StringConverter {
            serializer_encoding: direction("serializer")?,
            deserializer_encoding: direction("deserializer")?,
        })
    }
}

/// Java's `toString()` of a Connect value (what `StringConverter` writes). Bytes have no
/// useful one in Java (`[B@1b6d3586`), so they are an error here; a Decimal needs its schema.
pub(crate) fn java_to_string(
    schema: Option<&Schema>,
    value: &Value,
) -> Result<String, ConvertError> {
    Ok(match value {
        Value::Null => "null".into(),
        Value::Int8(v) => v.to_string(),
        Value::Int16(v) => v.to_string(),
        Value::Int32(v) => v.to_string(),
        Value::Int64(v) => v.to_string(),
        Value::Float32(v) => java_float(*v),
        Value::Float64(v) => java_double(*v),
        Value::Boolean(v) => v.to_string(),
        Value::String(v) => v.clone(),
        Value::Decimal(unscaled) => match schema {
            Some(schema) => big_decimal_string(*unscaled, schema.decimal_scale()?),
            None => {
                return data_err(
                    "Failed to serialize to a string: a Decimal needs its schema for its scale",
                )
            }
        },
        Value::Date(days) => java_date_string(i64::from(*days) * 86_400_000),
        Value::Time(ms) => java_date_string(i64::from(*ms)),
        Value::Timestamp(ms) => java_date_string(*ms),
        Value::Bytes(_) => {
            return data_err("Failed to serialize to a string: bytes have no string form")
        }
        Value::Array(items) => {
            let element = schema.and_then(|s| s.value_schema.as_deref());
            let parts: Result<Vec<_>, _> =
                items.iter().map(|v| java_to_string(element, v)).collect();
            format!("[{}]", parts?.join(", "))
        }
        Value::Map(entries) => {
            let (ks, vs) = (
                schema.and_then(|s| s.key_schema.as_deref()),
                schema.and_then(|s| s.value_schema.as_deref()),
            );
            let mut parts = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                parts.push(format!(
                    "{}={}",
                    java_to_string(ks, k)?,
                    java_to_string(vs, v)?
                ));
            }
            format!("{{{}}}", parts.join(", "))
        }
        Value::Struct(s) => {
            let mut parts = Vec::new();
            for (field, v) in s.iter() {
                if !v.is_null() {
                    parts.push(format!(
                        "{}={}",
                        field.name,
                        java_to_string(Some(&field.schema), v)?
                    ));
                }
            }
            format!("Struct{{{}}}", parts.join(","))
        }
    })
}

/// Days since the epoch to (year, month, day), proleptic Gregorian.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since the epoch.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `java.util.Date.toString()` in UTC: `Thu Jan 01 00:00:00 UTC 1970`.
fn java_date_string(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000) / 1000;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60,
        year
    )
}

fn optional(t: Type) -> Option<SchemaRef> {
    Some(Schema::primitive(t, true))
}

impl Converter for StringConverter {
    fn from_connect_data(
        &self,
        _topic: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        if value.is_null() {
            return Ok(None);
        }
        let text = java_to_string(schema.map(|s| &**s), value)?;
        Ok(Some(self.serializer_encoding.encode(&text)))
    }

    fn to_connect_data(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<SchemaRef>, Value), ConvertError> {
        let value = match bytes {
            Some(bytes) => Value::String(self.deserializer_encoding.decode(bytes)),
            None => Value::Null,
        };
        Ok((optional(Type::String), value))
    }
}

/// Kafka's `org.apache.kafka.connect.converters.ByteArrayConverter`: bytes as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByteArrayConverter;

impl Converter for ByteArrayConverter {
    fn from_connect_data(
        &self,
        _topic: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        if let Some(schema) = schema.filter(|s| s.schema_type != Type::Bytes) {
            return data_err(format!(
                "Invalid schema type for ByteArrayConverter: {}",
                schema.schema_type
            ));
        }
        match value {
            Value::Null => Ok(None),
            Value::Bytes(bytes) => Ok(Some(bytes.clone())),
            other => data_err(format!(
                "ByteArrayConverter is not compatible with objects of type class {}",
                other.kind()
            )),
        }
    }

    fn to_connect_data(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<SchemaRef>, Value), ConvertError> {
        Ok((
            optional(Type::Bytes),
            bytes.map_or(Value::Null, |b| Value::Bytes(b.to_vec())),
        ))
    }
}

/// Which of Kafka's number converters (`IntegerConverter`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberKind {
    Short,
    Integer,
    Long,
    Float,
    Double,
}

impl NumberKind {
    fn name(self) -> &'static str {
        match self {
            NumberKind::Short => "short",
            NumberKind::Integer => "integer",
            NumberKind::Long => "long",
            NumberKind::Float => "float",
            NumberKind::Double => "double",
        }
    }

    fn schema_type(self) -> Type {
        match self {
            NumberKind::Short => Type::Int16,
            NumberKind::Integer => Type::Int32,
            NumberKind::Long => Type::Int64,
            NumberKind::Float => Type::Float32,
            NumberKind::Double => Type::Float64,
        }
    }

    fn width(self) -> usize {
        match self {
            NumberKind::Short => 2,
            NumberKind::Integer | NumberKind::Float => 4,
            NumberKind::Long | NumberKind::Double => 8,
        }
    }

    fn deserializer(self) -> &'static str {
        match self {
            NumberKind::Short => "ShortDeserializer",
            NumberKind::Integer => "IntegerDeserializer",
            NumberKind::Long => "LongDeserializer",
            NumberKind::Float => "FloatDeserializer",
            NumberKind::Double => "DoubleDeserializer",
        }
    }
}

/// Kafka's `IntegerConverter`, `LongConverter`, `ShortConverter`, `FloatConverter` and
/// `DoubleConverter`: big-endian fixed-width numbers, read back with optional schemas.
#[derive(Clone, Copy, Debug)]
pub struct NumberConverter {
    pub kind: NumberKind,
}

impl NumberConverter {
    pub fn new(kind: NumberKind) -> NumberConverter {
        NumberConverter { kind }
    }
}

impl Converter for NumberConverter {
    fn from_connect_data(
        &self,
        _topic: &str,
        _schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        let bytes = match (self.kind, value) {
            (_, Value::Null) => return Ok(None),
            (NumberKind::Short, Value::Int16(v)) => v.to_be_bytes().to_vec(),
            (NumberKind::Integer, Value::Int32(v)) => v.to_be_bytes().to_vec(),
            (NumberKind::Long, Value::Int64(v)) => v.to_be_bytes().to_vec(),
            (NumberKind::Float, Value::Float32(v)) => v.to_bits().to_be_bytes().to_vec(),
            (NumberKind::Double, Value::Float64(v)) => v.to_bits().to_be_bytes().to_vec(),
            (kind, other) => {
                return data_err(format!(
                    "Failed to serialize to {} (was class {}): ",
                    kind.name(),
                    other.kind()
                ));
            }
        };
        Ok(Some(bytes))
    }

    fn to_connect_data(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<SchemaRef>, Value), ConvertError> {
        let schema = optional(self.kind.schema_type());
        let Some(bytes) = bytes else {
            return Ok((schema, Value::Null));
        };
        let width = self.kind.width();
        if bytes.len() != width {
            return data_err(format!(
                "Failed to deserialize {}: Size of data received by {} is not {width}",
                self.kind.name(),
                self.kind.deserializer()
            ));
        }
        let mut buf = [0u8; 8];
        buf[8 - width..].copy_from_slice(bytes);
        let raw = u64::from_be_bytes(buf);
        let value = match self.kind {
            NumberKind::Short => Value::Int16(raw as u16 as i16),
            NumberKind::Integer => Value::Int32(raw as u32 as i32),
            NumberKind::Long => Value::Int64(raw as i64),
            NumberKind::Float => Value::Float32(f32::from_bits(raw as u32)),
            NumberKind::Double => Value::Float64(f64::from_bits(raw)),
        };
        Ok((schema, value))
    }
}

/// Kafka's `org.apache.kafka.connect.converters.BooleanConverter`: one byte, 1 or 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct BooleanConverter;

impl Converter for BooleanConverter {
    fn from_connect_data(
        &self,
        _topic: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        if let Some(schema) = schema.filter(|s| s.schema_type != Type::Boolean) {
            return data_err(format!(
                "Invalid schema type for BooleanConverter: {}",
                schema.schema_type
            ));
        }
        match value {
            Value::Null => Ok(None),
            Value::Boolean(b) => Ok(Some(vec![u8::from(*b)])),
            other => data_err(format!(
                "BooleanConverter is not compatible with objects of type class {}",
                other.kind()
            )),
        }
    }

    fn to_connect_data(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<SchemaRef>, Value), ConvertError> {
        let schema = optional(Type::Boolean);
        match bytes {
            None => Ok((schema, Value::Null)),
            Some([1]) => Ok((schema, Value::Boolean(true))),
            Some([0]) => Ok((schema, Value::Boolean(false))),
            Some([_]) => data_err("Failed to deserialize boolean: Unexpected byte received by BooleanDeserializer"),
            Some(_) => data_err("Failed to deserialize boolean: Size of data received by BooleanDeserializer is not 1"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{SchemaBuilder, Struct};

    #[test]
    fn strings_with_encodings() {
        let c = StringConverter::default();
        assert_eq!(
            c.from_connect_data("t", None, &Value::String("héllo".into()))
                .unwrap(),
            Some("héllo".as_bytes().to_vec())
        );
        assert_eq!(
            c.from_connect_data("t", None, &Value::Int32(42)).unwrap(),
            Some(b"42".to_vec())
        );
        assert_eq!(
            c.from_connect_data("t", None, &Value::Float64(1.0))
                .unwrap(),
            Some(b"1.0".to_vec())
        );
        assert_eq!(c.from_connect_data("t", None, &Value::Null).unwrap(), None);
        assert_eq!(
            c.to_connect_data("t", Some(b"abc")).unwrap(),
            (optional(Type::String), Value::String("abc".into()))
        );
        assert_eq!(
            c.to_connect_data("t", None).unwrap(),
            (optional(Type::String), Value::Null)
        );
        assert_eq!(
            c.to_connect_data("t", Some(b"a\xffb")).unwrap().1,
            Value::String("a\u{FFFD}b".into())
        );
        let props: Props = [("converter.encoding".to_string(), "ISO-8859-1".to_string())].into();
        let latin = StringConverter::configure(&props, ConverterType::Value).unwrap();
        assert_eq!(
            latin
                .from_connect_data("t", None, &Value::String("é€".into()))
                .unwrap(),
            Some(vec![0xE9, b'?'])
        );
        assert_eq!(
            latin.to_connect_data("t", Some(&[0xE9])).unwrap().1,
            Value::String("é".into())
        );
        let props: Props = [
            ("converter.encoding".to_string(), "UTF-16".to_string()),
            ("key.deserializer.encoding".to_string(), "UTF-8".to_string()),
        ]
        .into();
        let key = StringConverter::configure(&props, ConverterType::Key).unwrap();
        assert_eq!(
            key.from_connect_data("t", None, &Value::String("A".into()))
                .unwrap(),
            Some(vec![0xFE, 0xFF, 0, 0x41])
        );
        assert_eq!(
            key.to_connect_data("t", Some(b"A")).unwrap().1,
            Value::String("A".into())
        );
        // Java's toString of structures.
        let schema = SchemaBuilder::struct_builder()
            .field("a", Schema::primitive(Type::Int32, false))
            .unwrap()
            .field("b", SchemaBuilder::decimal(2).optional().build())
            .unwrap()
            .field("c", Schema::primitive(Type::String, true))
            .unwrap()
            .build();
        let s = Struct::new(schema.clone())
            .unwrap()
            .with("a", Value::Int32(1))
            .unwrap()
            .with("b", Value::Decimal(150))
            .unwrap();
        assert_eq!(
            java_to_string(Some(&schema), &Value::Struct(s)).unwrap(),
            "Struct{a=1,b=1.50}"
        );
        assert_eq!(java_date_string(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(
            java_date_string(1_704_067_200_123),
            "Mon Jan 01 00:00:00 UTC 2024"
        );
        assert!(c
            .from_connect_data("t", None, &Value::Bytes(vec![1]))
            .is_err());
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-1_000_000, -719_468, -1, 0, 1, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn bytes_numbers_and_booleans() {
        let b = ByteArrayConverter;
        assert_eq!(
            b.from_connect_data("t", None, &Value::Bytes(vec![1, 2]))
                .unwrap(),
            Some(vec![1, 2])
        );
        assert_eq!(
            b.from_connect_data(
                "t",
                Some(&Schema::primitive(Type::Int32, false)),
                &Value::Int32(1)
            )
            .unwrap_err()
            .to_string(),
            "Invalid schema type for ByteArrayConverter: INT32"
        );
        assert_eq!(
            b.from_connect_data("t", None, &Value::String("x".into()))
                .unwrap_err()
                .to_string(),
            "ByteArrayConverter is not compatible with objects of type class java.lang.String"
        );
        assert_eq!(
            b.to_connect_data("t", Some(&[9])).unwrap(),
            (optional(Type::Bytes), Value::Bytes(vec![9]))
        );
        let i = NumberConverter::new(NumberKind::Integer);
        assert_eq!(
            i.from_connect_data("t", None, &Value::Int32(258)).unwrap(),
            Some(vec![0, 0, 1, 2])
        );
        assert_eq!(
            i.to_connect_data("t", Some(&[0xFF, 0xFF, 0xFF, 0xFE]))
                .unwrap()
                .1,
            Value::Int32(-2)
        );
        assert_eq!(
            i.to_connect_data("t", Some(&[1])).unwrap_err().to_string(),
            "Failed to deserialize integer: Size of data received by IntegerDeserializer is not 4"
        );
        assert!(i.from_connect_data("t", None, &Value::Int64(1)).is_err());
        let d = NumberConverter::new(NumberKind::Double);
        let bytes = d
            .from_connect_data("t", None, &Value::Float64(-2.5))
            .unwrap();
        assert_eq!(
            d.to_connect_data("t", bytes.as_deref()).unwrap(),
            (optional(Type::Float64), Value::Float64(-2.5))
        );
        let s = NumberConverter::new(NumberKind::Short);
        assert_eq!(
            s.to_connect_data("t", Some(&[0x80, 0])).unwrap().1,
            Value::Int16(i16::MIN)
        );
        let bo = BooleanConverter;
        assert_eq!(
            bo.from_connect_data("t", None, &Value::Boolean(true))
                .unwrap(),
            Some(vec![1])
        );
        assert_eq!(
            bo.to_connect_data("t", Some(&[0])).unwrap().1,
            Value::Boolean(false)
        );
        assert!(bo.to_connect_data("t", Some(&[2])).is_err());
        assert!(bo.to_connect_data("t", Some(&[])).is_err());
    }
}
