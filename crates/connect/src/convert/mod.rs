//! Kafka Connect's converters, behaving as Kafka 4.1's: between a record's Connect data
//! (schema and [`Value`]) and the bytes of a Kafka record's key, value or header.
//!
//! * [`Converter`]: keys and values, built by [`converter_for_class`] from a worker's or
//!   connector's `key.converter` / `value.converter` class and its `key.converter.*` /
//!   `value.converter.*` options (prefix stripped):
//!   [`JsonConverter`] (`org.apache.kafka.connect.json.JsonConverter`),
//!   [`StringConverter`], [`ByteArrayConverter`] and the fixed-width [`NumberConverter`]s
//!   and [`BooleanConverter`] of `org.apache.kafka.connect.converters`.
//! * [`HeaderConverter`]: headers, built by [`header_converter_for_class`]; Kafka's default
//!   `header.converter` is [`SimpleHeaderConverter`], and every converter above is one too.
//!
//! Errors carry Kafka's messages: a bad option is a [`ConvertError::Config`] naming the key
//! (Kafka's `ConfigException`), data that cannot be converted a [`ConvertError::Data`]
//! (Kafka's `DataException`). No input makes a converter panic.

mod header;
mod json;
mod json_node;
mod simple;

use std::collections::BTreeMap;

use crate::data::{DataError, SchemaRef, Value};

pub use header::SimpleHeaderConverter;
pub use json::{DecimalFormat, JsonConverter};
pub use simple::{
    BooleanConverter, ByteArrayConverter, NumberConverter, NumberKind, StringConverter,
};

/// Java's text of numbers, for the transforms (`Cast` to string).
pub(crate) use json_node::{big_decimal_string, java_double, java_float};
/// Proleptic Gregorian day arithmetic, for the transforms' date formats.
pub(crate) use simple::days_from_civil;

/// A configuration: option name to value.
pub type Props = BTreeMap<String, String>;

/// What goes wrong configuring or using a converter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A bad option (Kafka's `ConfigException`).
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    Config {
        key: String,
        value: String,
        reason: String,
    },
    /// A converter class this runtime does not know.
    #[error("Class {class} could not be found; known converters: {known}")]
    UnknownClass { class: String, known: String },
    /// Data that cannot be converted (Kafka's `DataException`), with Kafka's message.
    #[error("{0}")]
    Data(String),
}

impl From<DataError> for ConvertError {
    fn from(e: DataError) -> Self {
        ConvertError::Data(e.0)
    }
}

pub(crate) fn data_err<T>(message: impl Into<String>) -> Result<T, ConvertError> {
    Err(ConvertError::Data(message.into()))
}

/// Kafka's `ConverterType`: what a converter is configured for (`converter.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConverterType {
    Key,
    Value,
    Header,
}

/// Converts keys and values (Kafka's `org.apache.kafka.connect.storage.Converter`).
pub trait Converter: Send + Sync + std::fmt::Debug {
    /// Connect data to bytes; `None` is a null (e.g. a tombstone).
    #[allow(clippy::wrong_self_convention)] // Kafka's name
    fn from_connect_data(
        &self,
        topic: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConvertError>;

    /// Bytes (`None`: null) to Connect data.
    fn to_connect_data(
        &self,
        topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<SchemaRef>, Value), ConvertError>;
}

/// Converts header values (Kafka's `org.apache.kafka.connect.storage.HeaderConverter`).
pub trait HeaderConverter: Send + Sync + std::fmt::Debug {
    /// A header value to bytes; `None` is a null.
    #[allow(clippy::wrong_self_convention)] // Kafka's name
    fn from_connect_header(
        &self,
        topic: &str,
        header_key: &str,
        schema: Option<&SchemaRef>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConvertError>;

    /// Header bytes (`None`: null) to Connect data.
    fn to_connect_header(
        &self,
        topic: &str,
        header_key: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<SchemaRef>, Value), ConvertError>;
}

/// Every converter converts headers as it converts data (as Kafka's built-in ones do).
macro_rules! header_via_data {
    ($($t:ty),*) => {$(
        impl HeaderConverter for $t {
            fn from_connect_header(&self, topic: &str, _key: &str, schema: Option<&SchemaRef>, value: &Value) -> Result<Option<Vec<u8>>, ConvertError> {
                self.from_connect_data(topic, schema, value)
            }
            fn to_connect_header(&self, topic: &str, _key: &str, bytes: Option<&[u8]>) -> Result<(Option<SchemaRef>, Value), ConvertError> {
                self.to_connect_data(topic, bytes)
            }
        }
    )*};
}
header_via_data!(
    JsonConverter,
    StringConverter,
    ByteArrayConverter,
    NumberConverter,
    BooleanConverter
);

pub const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";
pub const STRING_CONVERTER: &str = "org.apache.kafka.connect.storage.StringConverter";
pub const BYTE_ARRAY_CONVERTER: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";
pub const SIMPLE_HEADER_CONVERTER: &str = "org.apache.kafka.connect.storage.SimpleHeaderConverter";
pub const BOOLEAN_CONVERTER: &str = "org.apache.kafka.connect.converters.BooleanConverter";

/// The key/value converter classes [`converter_for_class`] knows.
pub const CONVERTER_CLASSES: [&str; 9] = [
    JSON_CONVERTER,
    STRING_CONVERTER,
    BYTE_ARRAY_CONVERTER,
    "org.apache.kafka.connect.converters.IntegerConverter",
    "org.apache.kafka.connect.converters.LongConverter",
    "org.apache.kafka.connect.converters.ShortConverter",
    "org.apache.kafka.connect.converters.FloatConverter",
    "org.apache.kafka.connect.converters.DoubleConverter",
    BOOLEAN_CONVERTER,
];

fn number_kind(class_name: &str) -> Option<NumberKind> {
    Some(
        match class_name.strip_prefix("org.apache.kafka.connect.converters.")? {
            "IntegerConverter" => NumberKind::Integer,
            "LongConverter" => NumberKind::Long,
            "ShortConverter" => NumberKind::Short,
            "FloatConverter" => NumberKind::Float,
            "DoubleConverter" => NumberKind::Double,
            _ => return None,
        },
    )
}

fn build(
    class_name: &str,
    props: &Props,
    kind: ConverterType,
) -> Option<Result<Box<dyn ConverterBoth>, ConvertError>> {
    fn boxed<C: ConverterBoth + 'static>(
        r: Result<C, ConvertError>,
    ) -> Result<Box<dyn ConverterBoth>, ConvertError> {
        r.map(|c| Box::new(c) as Box<dyn ConverterBoth>)
    }
    let class_name = class_name.trim();
    Some(match class_name {
        JSON_CONVERTER => boxed(JsonConverter::configure(props, kind)),
        STRING_CONVERTER => boxed(StringConverter::configure(props, kind)),
        BYTE_ARRAY_CONVERTER => boxed(Ok(ByteArrayConverter)),
        BOOLEAN_CONVERTER => boxed(Ok(BooleanConverter)),
        other => boxed(Ok(NumberConverter::new(number_kind(other)?))),
    })
}

/// Both traits, so one registry serves data and headers.
trait ConverterBoth: Converter + HeaderConverter {
    fn into_converter(self: Box<Self>) -> Box<dyn Converter>;
    fn into_header_converter(self: Box<Self>) -> Box<dyn HeaderConverter>;
}

impl<T: Converter + HeaderConverter + 'static> ConverterBoth for T {
    fn into_converter(self: Box<Self>) -> Box<dyn Converter> {
        self
    }
    fn into_header_converter(self: Box<Self>) -> Box<dyn HeaderConverter> {
        self
    }
}

fn unknown(class_name: &str, known: &[&str]) -> ConvertError {
    ConvertError::UnknownClass {
        class: class_name.to_string(),
        known: known.join(", "),
    }
}

/// A key (`is_key`) or value converter of one of Kafka's classes ([`CONVERTER_CLASSES`]),
/// configured from its options (the `key.converter.` / `value.converter.` keys, prefix
/// stripped).
pub fn converter_for_class(
    class_name: &str,
    props: &Props,
    is_key: bool,
) -> Result<Box<dyn Converter>, ConvertError> {
    let kind = if is_key {
        ConverterType::Key
    } else {
        ConverterType::Value
    };
    match build(class_name, props, kind) {
        Some(converter) => Ok(converter?.into_converter()),
        None => Err(unknown(class_name, &CONVERTER_CLASSES)),
    }
}

/// A header converter (`header.converter` and its `header.converter.*` options): Kafka's
/// [`SIMPLE_HEADER_CONVERTER`] (the default) or any of [`CONVERTER_CLASSES`].
pub fn header_converter_for_class(
    class_name: &str,
    props: &Props,
) -> Result<Box<dyn HeaderConverter>, ConvertError> {
    if class_name.trim() == SIMPLE_HEADER_CONVERTER {
        return Ok(Box::new(SimpleHeaderConverter));
    }
    match build(class_name, props, ConverterType::Header) {
        Some(converter) => Ok(converter?.into_header_converter()),
        None => {
            let mut known = vec![SIMPLE_HEADER_CONVERTER];
            known.extend(CONVERTER_CLASSES);
            Err(unknown(class_name, &known))
        }
    }
}

/// A boolean option as Kafka's `ConfigDef` parses one (`true`/`false`, any case, trimmed).
pub(crate) fn bool_prop(props: &Props, key: &str, default: bool) -> Result<bool, ConvertError> {
    match props.get(key) {
        None => Ok(default),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConvertError::Config {
                key: key.into(),
                value: v.clone(),
                reason: "Expected value to be either true or false".into(),
            }),
        },
    }
}

/// An int option as Kafka's `ConfigDef` parses one.
pub(crate) fn int_prop(props: &Props, key: &str, default: i32) -> Result<i32, ConvertError> {
    match props.get(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConvertError::Config {
            key: key.into(),
            value: v.clone(),
            reason: "Not a number of type INT".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_knows_kafkas_classes() {
        let props = Props::new();
        for class in CONVERTER_CLASSES {
            converter_for_class(class, &props, false).unwrap();
            header_converter_for_class(class, &props).unwrap();
        }
        header_converter_for_class(SIMPLE_HEADER_CONVERTER, &props).unwrap();
        let err = converter_for_class("com.example.Nope", &props, true).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("com.example.Nope") && text.contains(JSON_CONVERTER),
            "{text}"
        );
        assert!(matches!(err, ConvertError::UnknownClass { .. }));
        assert!(converter_for_class(SIMPLE_HEADER_CONVERTER, &props, false).is_err());
    }

    #[test]
    fn config_errors_name_the_key() {
        let props: Props = [("schemas.enable".to_string(), "maybe".to_string())].into();
        let err = converter_for_class(JSON_CONVERTER, &props, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid value maybe for configuration schemas.enable: Expected value to be either true or false"
        );
        let props: Props = [("decimal.format".to_string(), "HEX".to_string())].into();
        let err = converter_for_class(JSON_CONVERTER, &props, false).unwrap_err();
        assert!(err.to_string().contains("decimal.format"), "{err}");
        let props: Props = [("schemas.cache.size".to_string(), "x".to_string())].into();
        assert!(converter_for_class(JSON_CONVERTER, &props, false)
            .unwrap_err()
            .to_string()
            .contains("schemas.cache.size"));
        let props: Props = [("converter.encoding".to_string(), "EBCDIC-42".to_string())].into();
        let err = converter_for_class(STRING_CONVERTER, &props, true).unwrap_err();
        assert!(err.to_string().contains("converter.encoding"), "{err}");
    }

    fn all_converters() -> Vec<(String, Box<dyn Converter>)> {
        let mut out = Vec::new();
        for class in CONVERTER_CLASSES {
            out.push((
                class.to_string(),
                converter_for_class(class, &Props::new(), false).unwrap(),
            ));
        }
        for (key, value) in [
            ("schemas.enable", "false"),
            ("replace.null.with.default", "false"),
            ("decimal.format", "NUMERIC"),
        ] {
            let props: Props = [(key.to_string(), value.to_string())].into();
            out.push((
                format!("json {key}"),
                converter_for_class(JSON_CONVERTER, &props, true).unwrap(),
            ));
        }
        out
    }

    /// Reads anything, writes back whatever it read: errors allowed, panics not.
    fn exercise(bytes: &[u8]) {
        for (_, c) in all_converters() {
            if let Ok((schema, value)) = c.to_connect_data("t", Some(bytes)) {
                let _ = c.from_connect_data("t", schema.as_ref(), &value);
            }
        }
        let header = SimpleHeaderConverter;
        if let Ok((schema, value)) = header.to_connect_header("t", "h", Some(bytes)) {
            let _ = header.from_connect_header("t", "h", schema.as_ref(), &value);
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        for open in ["[", "{\"a\":", "{\"schema\":{\"type\":\"array\",\"items\":"] {
            exercise(open.repeat(100_000).as_bytes());
        }
        let nested = "[".repeat(120) + &"]".repeat(120);
        let c = converter_for_class(
            JSON_CONVERTER,
            &[("schemas.enable".to_string(), "false".to_string())].into(),
            false,
        )
        .unwrap();
        c.to_connect_data("t", Some(nested.as_bytes())).unwrap();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            exercise(&bytes);
        }

        #[test]
        fn json_like_text_never_panics(text in r#"\{"schema":\{"type":"(int8|int32|int64|float|double|bytes|string|array|map|struct|boolean)"[ -~]{0,40}\},"payload":[ -~]{0,30}\}"#) {
            exercise(text.as_bytes());
        }

        #[test]
        fn json_tokens_never_panic(text in r#"([\[\]{}:,"0-9.eE+\-a-z ]|true|null|\\u[0-9a-fD]{4}){0,40}"#) {
            exercise(text.as_bytes());
        }
    }
}
