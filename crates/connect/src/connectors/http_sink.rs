//! An HTTP sink, `io.confluent.connect.http.HttpSinkConnector` (Moldau's own, with the
//! option names of Confluent's connector): each record value becomes part of a request
//! body sent to `http.api.url`.
//!
//! Implemented options: `http.api.url`, `request.method` (POST, PUT, PATCH), `headers`
//! (`Name:value` pairs separated by `header.separator`, default `|`; a static bearer token
//! is an `Authorization:Bearer ...` header), `auth.type` (NONE, BASIC with
//! `connection.user` / `connection.password`), `request.body.format` (string, json),
//! `batch.max.size`, `batch.json.as.array`, `batch.prefix`, `batch.suffix`,
//! `batch.separator`, `behavior.on.null.values` (ignore, fail), `max.retries`,
//! `retry.backoff.ms` (constant backoff), `retry.on.status.codes` (`400-` by default;
//! codes and inclusive ranges such as `429,500-599`), `http.connect.timeout.ms` and
//! `http.request.timeout.ms`.
//!
//! Bodies: a string value is sent as it is and bytes as UTF-8 text; with
//! `request.body.format=json` other values are rendered as Connect's `JsonConverter` with
//! `schemas.enable=false` and `decimal.format=NUMERIC` (a struct is a JSON object), with
//! `string` as Java's `toString` (`Struct{a=1,b=x}`). A batch of records is one request:
//! a JSON array with `batch.json.as.array`, otherwise the values joined by
//! `batch.separator` between `batch.prefix` and `batch.suffix`.
//!
//! Errors: 2xx is success; a status in `retry.on.status.codes` or a transport error is
//! retried `max.retries` times `retry.backoff.ms` apart; any other status, or retries
//! used up, fails the task naming the status, the response body's start and the records.
//!
//! Not implemented: OAUTH2 and proxy authentication, `${topic}`/`${key}` URL templates,
//! reporter topics, TLS client options, `behavior.on.null.values=delete`.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;

use super::jdbc::{date_of, decimal_text, location, time_of};
use crate::config::{
    key, parse_config, ConfigType, ConnectorType, DefaultValue, Key, Props, Validator,
};
use crate::connector::{ConnectError, Connector, ConnectorContext, Plugin, SinkTask, TaskContext};
use crate::convert::{Converter, DecimalFormat, JsonConverter};
use crate::data::{Type, Value};
use crate::record::ConnectRecord;

pub const CLASS: &str = "io.confluent.connect.http.HttpSinkConnector";

pub const HTTP_API_URL: &str = "http.api.url";
pub const REQUEST_METHOD: &str = "request.method";
pub const HEADERS: &str = "headers";
pub const HEADER_SEPARATOR: &str = "header.separator";
pub const AUTH_TYPE: &str = "auth.type";
pub const CONNECTION_USER: &str = "connection.user";
pub const CONNECTION_PASSWORD: &str = "connection.password";
pub const BATCH_MAX_SIZE: &str = "batch.max.size";
pub const BATCH_JSON_AS_ARRAY: &str = "batch.json.as.array";
pub const BATCH_PREFIX: &str = "batch.prefix";
pub const BATCH_SUFFIX: &str = "batch.suffix";
pub const BATCH_SEPARATOR: &str = "batch.separator";
pub const REQUEST_BODY_FORMAT: &str = "request.body.format";
pub const BEHAVIOR_ON_NULL_VALUES: &str = "behavior.on.null.values";
pub const MAX_RETRIES: &str = "max.retries";
pub const RETRY_BACKOFF_MS: &str = "retry.backoff.ms";
pub const RETRY_ON_STATUS_CODES: &str = "retry.on.status.codes";
pub const HTTP_CONNECT_TIMEOUT_MS: &str = "http.connect.timeout.ms";
pub const HTTP_REQUEST_TIMEOUT_MS: &str = "http.request.timeout.ms";

const CONNECTION: &str = "Connection";
const BATCHING: &str = "Batching";
const RETRIES: &str = "Retries";

fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err("must be an http:// or https:// URL".into());
    }
    url.parse::<ureq::http::Uri>()
        .map(|_| ())
        .map_err(|e| format!("not a valid URL: {e}"))
}

fn check_status_codes(codes: &str) -> Result<(), String> {
    StatusCodes::parse(codes).map(|_| ())
}

pub const KEYS: &[Key] = &[
    key(HTTP_API_URL, ConfigType::String, DefaultValue::Required, Validator::Custom(check_url))
        .doc("HTTP API URL.")
        .meta("HIGH", CONNECTION, 1, "LONG", "HTTP URL"),
    key(
        REQUEST_METHOD,
        ConfigType::String,
        DefaultValue::Value("POST"),
        Validator::InCaseInsensitive(&["POST", "PUT", "PATCH"]),
    )
    .doc("HTTP Request Method.")
    .meta("HIGH", CONNECTION, 2, "SHORT", "Request Method"),
    key(HEADERS, ConfigType::String, DefaultValue::Value(""), Validator::None)
        .doc("HTTP headers to be included in all requests, as Name:value separated by header.separator.")
        .meta("MEDIUM", CONNECTION, 3, "LONG", "Headers"),
    key(HEADER_SEPARATOR, ConfigType::String, DefaultValue::Value("|"), Validator::NonEmpty)
        .doc("Separator character used in headers property.")
        .meta("MEDIUM", CONNECTION, 4, "SHORT", "Header Separator"),
    key(
        AUTH_TYPE,
        ConfigType::String,
        DefaultValue::Value("NONE"),
        Validator::InCaseInsensitive(&["NONE", "BASIC"]),
    )
    .doc("Authentication type of the endpoint: NONE or BASIC (OAUTH2 is not supported).")
    .meta("HIGH", CONNECTION, 5, "SHORT", "Endpoint Authentication Type"),
    key(CONNECTION_USER, ConfigType::String, DefaultValue::Null, Validator::None)
        .doc("The username to be used with an endpoint requiring basic authentication.")
        .meta("HIGH", CONNECTION, 6, "MEDIUM", "Auth Username"),
    key(CONNECTION_PASSWORD, ConfigType::Password, DefaultValue::Null, Validator::None)
        .doc("The password to be used with an endpoint requiring basic authentication.")
        .meta("HIGH", CONNECTION, 7, "MEDIUM", "Auth Password"),
    key(HTTP_CONNECT_TIMEOUT_MS, ConfigType::Int, DefaultValue::Value("30000"), Validator::AtLeast(1))
        .doc("Time to wait for a connection to be established, in milliseconds.")
        .meta("LOW", CONNECTION, 8, "SHORT", "HTTP Connect Timeout (ms)"),
    key(HTTP_REQUEST_TIMEOUT_MS, ConfigType::Int, DefaultValue::Value("30000"), Validator::AtLeast(1))
        .doc("Time to wait for a request response to arrive, in milliseconds.")
        .meta("LOW", CONNECTION, 9, "SHORT", "HTTP Request Timeout (ms)"),
    key(
        REQUEST_BODY_FORMAT,
        ConfigType::String,
        DefaultValue::Value("string"),
        Validator::InCaseInsensitive(&["string", "json"]),
    )
    .doc("Used to produce request body in either JSON or String format.")
    .meta("MEDIUM", BATCHING, 1, "SHORT", "Request Body Format"),
    key(BATCH_MAX_SIZE, ConfigType::Int, DefaultValue::Value("1"), Validator::AtLeast(1))
        .doc("The number of records accumulated in a batch before the HTTP API is invoked.")
        .meta("MEDIUM", BATCHING, 2, "SHORT", "Batch max size"),
    key(BATCH_JSON_AS_ARRAY, ConfigType::Boolean, DefaultValue::Value("false"), Validator::None)
        .doc("Whether or not to use an array to bundle json records (batch.prefix, batch.suffix and batch.separator are then not used).")
        .meta("MEDIUM", BATCHING, 3, "SHORT", "Batch json as array"),
    key(BATCH_PREFIX, ConfigType::String, DefaultValue::Value(""), Validator::None)
        .doc("Prefix added to record batches.")
        .meta("MEDIUM", BATCHING, 4, "SHORT", "Batch prefix"),
    key(BATCH_SUFFIX, ConfigType::String, DefaultValue::Value(""), Validator::None)
        .doc("Suffix added to record batches.")
        .meta("MEDIUM", BATCHING, 5, "SHORT", "Batch suffix"),
    key(BATCH_SEPARATOR, ConfigType::String, DefaultValue::Value(","), Validator::None)
        .doc("Separator for records in a batch.")
        .meta("MEDIUM", BATCHING, 6, "SHORT", "Batch separator"),
    key(
        BEHAVIOR_ON_NULL_VALUES,
        ConfigType::String,
        DefaultValue::Value("ignore"),
        Validator::InCaseInsensitive(&["ignore", "fail"]),
    )
    .doc("How to handle records with a null value: ignore (skip) or fail.")
    .meta("LOW", BATCHING, 7, "SHORT", "Behavior for null valued records"),
    key(MAX_RETRIES, ConfigType::Int, DefaultValue::Value("10"), Validator::AtLeast(0))
        .doc("The maximum number of times to retry on errors before failing the task.")
        .meta("MEDIUM", RETRIES, 1, "SHORT", "Maximum Retries"),
    key(RETRY_BACKOFF_MS, ConfigType::Int, DefaultValue::Value("3000"), Validator::AtLeast(0))
        .doc("The time in milliseconds to wait following an error before a retry attempt is made.")
        .meta("MEDIUM", RETRIES, 2, "SHORT", "Retry Backoff (ms)"),
    key(
        RETRY_ON_STATUS_CODES,
        ConfigType::String,
        DefaultValue::Value("400-"),
        Validator::Custom(check_status_codes),
    )
    .doc("The HTTP error codes to retry on: codes and ranges with a start and optional inclusive end, comma separated (400- is every code from 400).")
    .meta("MEDIUM", RETRIES, 3, "SHORT", "Retry on status codes"),
];

fn new_connector() -> Box<dyn Connector> {
    Box::new(HttpSinkConnector::default())
}

fn new_task() -> Box<dyn SinkTask> {
    Box::new(HttpSinkTask::default())
}

pub const PLUGIN: Plugin = Plugin {
    class: CLASS,
    task_class: "io.confluent.connect.http.sink.HttpSinkTask",
    connector_type: ConnectorType::Sink,
    version: env!("CARGO_PKG_VERSION"),
    config_keys: KEYS,
    new_connector,
    new_source_task: None,
    new_sink_task: Some(new_task),
};

/// `retry.on.status.codes`: inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCodes(Vec<(u16, u16)>);

impl StatusCodes {
    pub fn parse(text: &str) -> Result<StatusCodes, String> {
        let mut ranges = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let code = |s: &str| {
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| format!("'{s}' is not an HTTP status code"))
            };
            let range = match item.split_once('-') {
                Some((from, "")) => (code(from)?, 599),
                Some((from, to)) => (code(from)?, code(to)?),
                None => (code(item)?, code(item)?),
            };
            if range.0 > range.1 {
                return Err(format!("empty status code range '{item}'"));
            }
            ranges.push(range);
        }
        Ok(StatusCodes(ranges))
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|(from, to)| (*from..=*to).contains(&status))
    }
}

/// `headers` as (name, value) pairs.
pub fn parse_headers(headers: &str, separator: &str) -> Result<Vec<(String, String)>, String> {
    if headers.trim().is_empty() {
        return Ok(Vec::new());
    }
    headers
        .split(separator)
        .filter(|h| !h.trim().is_empty())
        .map(|h| {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("header '{h}' is not of the form Name:value"))?;
            let name = name.trim();
            ureq::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("'{name}' is not a valid header name"))?;
            let value = value.trim();
            ureq::http::HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header '{name}' is not a valid header value"))?;
            Ok((name.to_string(), value.to_string()))
        })
        .collect()
}

/// The parsed options.
#[derive(Clone, Debug)]
pub struct HttpSinkConfig {
    pub url: String,
    pub method: String,
    /// Every request's headers, Authorization included for BASIC.
    pub headers: Vec<(String, String)>,
    pub body_json: bool,
    pub batch_max_size: usize,
    pub batch_json_as_array: bool,
    pub batch_prefix: String,
    pub batch_suffix: String,
    pub batch_separator: String,
    pub fail_on_null_values: bool,
    pub max_retries: u32,
    pub retry_backoff_ms: u64,
    pub retry_on_status_codes: StatusCodes,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

impl HttpSinkConfig {
    pub fn parse(props: &Props) -> Result<HttpSinkConfig, ConnectError> {
        let c = parse_config(KEYS, props).map_err(|e| ConnectError::Config(e.to_string()))?;
        let errors = cross_check(props);
        if let Some((key, message)) = errors.first() {
            return Err(ConnectError::Config(format!(
                "Invalid configuration {key}: {message}"
            )));
        }
        let s = |k: &str| c.string(k).unwrap_or_default();
        let mut headers =
            parse_headers(&s(HEADERS), &s(HEADER_SEPARATOR)).map_err(ConnectError::Config)?;
        if s(AUTH_TYPE).eq_ignore_ascii_case("BASIC") {
            let credentials = format!(
                "{}:{}",
                s(CONNECTION_USER),
                c.password(CONNECTION_PASSWORD).unwrap_or_default()
            );
            headers.push((
                "Authorization".into(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(credentials)
                ),
            ));
        }
        let body_json = s(REQUEST_BODY_FORMAT).eq_ignore_ascii_case("json");
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            let content_type = if body_json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            headers.push(("Content-Type".into(), content_type.into()));
        }
        let num = |k: &str, default: i64| c.num(k).unwrap_or(default).max(0) as u64;
        Ok(HttpSinkConfig {
            url: s(HTTP_API_URL),
            method: s(REQUEST_METHOD).to_ascii_uppercase(),
            headers,
            body_json,
            batch_max_size: num(BATCH_MAX_SIZE, 1).max(1) as usize,
            batch_json_as_array: c.boolean(BATCH_JSON_AS_ARRAY),
            batch_prefix: s(BATCH_PREFIX),
            batch_suffix: s(BATCH_SUFFIX),
            batch_separator: s(BATCH_SEPARATOR),
            fail_on_null_values: s(BEHAVIOR_ON_NULL_VALUES).eq_ignore_ascii_case("fail"),
            max_retries: num(MAX_RETRIES, 10) as u32,
            retry_backoff_ms: num(RETRY_BACKOFF_MS, 3000),
            retry_on_status_codes: StatusCodes::parse(&s(RETRY_ON_STATUS_CODES))
                .map_err(ConnectError::Config)?,
            connect_timeout_ms: num(HTTP_CONNECT_TIMEOUT_MS, 30000),
            request_timeout_ms: num(HTTP_REQUEST_TIMEOUT_MS, 30000),
        })
    }
}

/// Checks between keys (key, message).
fn cross_check(props: &Props) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let get = |k: &str| props.get(k).map(String::as_str);
    let separator = get(HEADER_SEPARATOR).unwrap_or("|");
    if let Some(h) = get(HEADERS) {
        if !separator.is_empty() {
            if let Err(e) = parse_headers(h, separator) {
                errors.push((HEADERS.to_string(), e));
            }
        }
    }
    if get(AUTH_TYPE).is_some_and(|a| a.eq_ignore_ascii_case("BASIC"))
        && get(CONNECTION_USER).is_none_or(|u| u.is_empty())
    {
        errors.push((
            CONNECTION_USER.to_string(),
            "auth.type BASIC needs connection.user (and connection.password)".to_string(),
        ));
    }
    errors
}

/// Confluent's connector: every task gets the same configuration.
#[derive(Default)]
pub struct HttpSinkConnector {
    props: Props,
}

#[async_trait]
impl Connector for HttpSinkConnector {
    async fn validate(&self, props: &Props) -> Vec<(String, String)> {
        cross_check(props)
    }

    async fn start(&mut self, props: &Props, _ctx: ConnectorContext) -> Result<(), ConnectError> {
        HttpSinkConfig::parse(props)?;
        self.props = props.clone();
        Ok(())
    }

    async fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<Props>, ConnectError> {
        Ok(vec![self.props.clone(); max_tasks])
    }

    async fn stop(&mut self) {}
}

/// A value as Java's `toString` would print it (`request.body.format=string`).
fn java_text(schema: Option<&crate::data::Schema>, value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Int8(v) => v.to_string(),
        Value::Int16(v) => v.to_string(),
        Value::Int32(v) => v.to_string(),
        Value::Int64(v) => v.to_string(),
        Value::Float32(v) => format!("{v:?}"),
        Value::Float64(v) => format!("{v:?}"),
        Value::Boolean(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Array(items) => {
            let element = schema.and_then(|s| s.value_schema.as_deref());
            let parts: Vec<String> = items.iter().map(|v| java_text(element, v)).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Map(entries) => {
            let (k, v) = (
                schema.and_then(|s| s.key_schema.as_deref()),
                schema.and_then(|s| s.value_schema.as_deref()),
            );
            let parts: Vec<String> = entries
                .iter()
                .map(|(key, val)| format!("{}={}", java_text(k, key), java_text(v, val)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        // Kafka's Struct.toString leaves out null fields.
        Value::Struct(s) => {
            let parts: Vec<String> = s
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(f, v)| format!("{}={}", f.name, java_text(Some(&f.schema), v)))
                .collect();
            format!("Struct{{{}}}", parts.join(","))
        }
        Value::Decimal(u) => {
            decimal_text(*u, schema.and_then(|s| s.decimal_scale().ok()).unwrap_or(0))
        }
        // ISO 8601 (Java's Date.toString depends on the JVM's zone; this does not).
        Value::Date(d) => {
            date_of(*d).map_or_else(|_| d.to_string(), |d| d.format("%Y-%m-%d").to_string())
        }
        Value::Time(ms) => {
            time_of(*ms).map_or_else(|_| ms.to_string(), |t| t.format("%H:%M:%S%.3f").to_string())
        }
        Value::Timestamp(ms) => chrono::DateTime::from_timestamp_millis(*ms).map_or_else(
            || ms.to_string(),
            |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        ),
    }
}

/// The sink task: sends records as they are put, `batch.max.size` per request.
#[derive(Default)]
pub struct HttpSinkTask {
    config: Option<HttpSinkConfig>,
    agent: Option<ureq::Agent>,
    json: Option<JsonConverter>,
}

/// A response: status and the start of the body.
struct Reply {
    status: u16,
    body_excerpt: String,
}

/// How much of a response body an error message quotes.
const BODY_EXCERPT_CHARS: usize = 256;

fn send_once(agent: &ureq::Agent, config: &HttpSinkConfig, body: Vec<u8>) -> Result<Reply, String> {
    let mut request = ureq::http::Request::builder()
        .method(config.method.as_str())
        .uri(config.url.as_str());
    for (name, value) in &config.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(body)
        .map_err(|e| format!("bad request: {e}"))?;
    let mut response = agent.run(request).map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    // Only the start of the body is kept (an error page may be large).
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    Ok(Reply {
        status,
        body_excerpt: text.chars().take(BODY_EXCERPT_CHARS).collect(),
    })
}

fn span(records: &[&ConnectRecord]) -> String {
    match (records.first(), records.last()) {
        (Some(a), Some(b)) if records.len() > 1 => {
            format!("records {} to {}", location(a), location(b))
        }
        (Some(a), _) => format!("record {}", location(a)),
        _ => "no records".into(),
    }
}

impl HttpSinkTask {
    fn render(
        &self,
        config: &HttpSinkConfig,
        record: &ConnectRecord,
    ) -> Result<String, ConnectError> {
        match &record.value {
            Value::String(s) => Ok(s.clone()),
            Value::Bytes(b)
                if record
                    .value_schema
                    .as_ref()
                    .is_none_or(|s| s.schema_type == Type::Bytes && s.name.is_none()) =>
            {
                Ok(String::from_utf8_lossy(b).into_owned())
            }
            value if config.body_json => {
                let converter = self
                    .json
                    .as_ref()
                    .ok_or_else(|| ConnectError::Fatal("HTTP sink used before start".into()))?;
                let bytes = converter
                    .from_connect_data(&record.topic, record.value_schema.as_ref(), value)
                    .map_err(|e| {
                        ConnectError::Fatal(format!(
                            "Could not render the value of {} as JSON: {e}",
                            span(&[record])
                        ))
                    })?;
                Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned())
            }
            value => Ok(java_text(record.value_schema.as_deref(), value)),
        }
    }

    async fn send(
        &self,
        config: &HttpSinkConfig,
        body: String,
        records: &[&ConnectRecord],
    ) -> Result<(), ConnectError> {
        let agent = self
            .agent
            .clone()
            .ok_or_else(|| ConnectError::Fatal("HTTP sink used before start".into()))?;
        let what = || format!("{} {} for {}", config.method, config.url, span(records));
        let mut last_failure = String::new();
        for attempt in 0..=config.max_retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(config.retry_backoff_ms)).await;
            }
            let (agent, send_config, body) =
                (agent.clone(), config.clone(), body.clone().into_bytes());
            let reply = tokio::task::spawn_blocking(move || send_once(&agent, &send_config, body))
                .await
                .map_err(|e| ConnectError::Fatal(format!("HTTP request thread failed: {e}")))?;
            match reply {
                Ok(r) if (200..300).contains(&r.status) => return Ok(()),
                Ok(r) if config.retry_on_status_codes.contains(r.status) => {
                    last_failure = format!("HTTP status {}: {}", r.status, r.body_excerpt);
                }
                Ok(r) => {
                    return Err(ConnectError::Fatal(format!(
                        "HTTP request {} failed with status {} (not retried): {}",
                        what(),
                        r.status,
                        r.body_excerpt
                    )))
                }
                Err(e) => last_failure = format!("request failed: {e}"),
            }
            tracing::warn!(
                "HTTP sink: {} (attempt {}/{})",
                last_failure,
                attempt + 1,
                config.max_retries + 1
            );
        }
        Err(ConnectError::Fatal(format!(
            "HTTP request {} failed after {} retries; last: {last_failure}",
            what(),
            config.max_retries
        )))
    }
}

#[async_trait]
impl SinkTask for HttpSinkTask {
    async fn start(&mut self, props: &Props, _ctx: TaskContext) -> Result<(), ConnectError> {
        let config = HttpSinkConfig::parse(props)?;
        let request_timeout = Duration::from_millis(config.request_timeout_ms);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_millis(config.connect_timeout_ms)))
            .timeout_send_body(Some(request_timeout))
            .timeout_recv_response(Some(request_timeout))
            .timeout_recv_body(Some(request_timeout))
            .build()
            .into();
        self.agent = Some(agent);
        self.json = Some(JsonConverter {
            schemas_enabled: false,
            decimal_format: DecimalFormat::Numeric,
            ..JsonConverter::default()
        });
        self.config = Some(config);
        Ok(())
    }

    async fn put(&mut self, records: Vec<ConnectRecord>) -> Result<(), ConnectError> {
        let config = self
            .config
            .clone()
            .ok_or_else(|| ConnectError::Fatal("HTTP sink used before start".into()))?;
        let mut kept: Vec<(&ConnectRecord, String)> = Vec::with_capacity(records.len());
        for record in &records {
            if record.value.is_null() {
                if config.fail_on_null_values {
                    return Err(ConnectError::Fatal(format!(
                        "Null valued {} and behavior.on.null.values=fail",
                        span(&[record])
                    )));
                }
                continue;
            }
            kept.push((record, self.render(&config, record)?));
        }
        for batch in kept.chunks(config.batch_max_size) {
            let parts: Vec<&str> = batch.iter().map(|(_, s)| s.as_str()).collect();
            let body = if config.batch_json_as_array {
                format!("[{}]", parts.join(","))
            } else {
                format!(
                    "{}{}{}",
                    config.batch_prefix,
                    parts.join(&config.batch_separator),
                    config.batch_suffix
                )
            };
            let records: Vec<&ConnectRecord> = batch.iter().map(|(r, _)| *r).collect();
            self.send(&config, body, &records).await?;
        }
        Ok(())
    }

    async fn stop(&mut self) {
        self.agent = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_codes_and_ranges() {
        let c = StatusCodes::parse("400-").unwrap();
        assert!(c.contains(400) && c.contains(503) && !c.contains(399));
        let c = StatusCodes::parse("429, 500-504").unwrap();
        assert!(c.contains(429) && c.contains(504) && !c.contains(505) && !c.contains(400));
        assert!(StatusCodes::parse("abc").is_err());
        assert!(StatusCodes::parse("500-400").is_err());
        assert!(StatusCodes::parse("").unwrap().0.is_empty());
    }

    #[test]
    fn headers_are_name_value_pairs() {
        let h = parse_headers("Authorization:Bearer abc|X-A: 1", "|").unwrap();
        assert_eq!(
            h,
            vec![
                ("Authorization".into(), "Bearer abc".into()),
                ("X-A".into(), "1".into())
            ]
        );
        assert!(parse_headers("nocolon", "|").is_err());
        assert!(parse_headers("Bad Name:x", "|").is_err());
        assert!(parse_headers("", "|").unwrap().is_empty());
    }

    #[test]
    fn string_bodies_print_as_java_does() {
        use crate::data::{Schema, SchemaBuilder, Struct};
        let schema = SchemaBuilder::struct_builder()
            .field("a", Schema::primitive(Type::Int32, false))
            .unwrap()
            .field("b", Schema::primitive(Type::String, true))
            .unwrap()
            .field("c", SchemaBuilder::decimal(1).optional().build())
            .unwrap()
            .build();
        let s = Struct::new(schema.clone())
            .unwrap()
            .with("a", Value::Int32(1))
            .unwrap()
            .with("c", Value::Decimal(15))
            .unwrap();
        assert_eq!(
            java_text(Some(&schema), &Value::Struct(s)),
            "Struct{a=1,c=1.5}"
        );
    }

    #[test]
    fn options_default_as_confluents() {
        let mut props = Props::new();
        props.insert(HTTP_API_URL.into(), "http://localhost:1/x".into());
        let c = HttpSinkConfig::parse(&props).unwrap();
        assert_eq!(c.method, "POST");
        assert_eq!(
            (c.batch_max_size, c.max_retries, c.retry_backoff_ms),
            (1, 10, 3000)
        );
        assert!(c.retry_on_status_codes.contains(400) && !c.body_json && !c.batch_json_as_array);
        props.insert(AUTH_TYPE.into(), "BASIC".into());
        assert!(HttpSinkConfig::parse(&props).is_err(), "BASIC needs a user");
        props.insert(HTTP_API_URL.into(), "ftp://x".into());
        assert!(HttpSinkConfig::parse(&props).is_err());
    }
}
