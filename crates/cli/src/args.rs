//! Argument types shared by several subcommands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// How to reach the cluster; flattened into every client subcommand.
#[derive(Args, Clone, Debug)]
pub struct ConnectArgs {
    /// Broker address(es) to bootstrap from, comma separated.
    #[arg(
        long,
        env = "MOLDAU_BOOTSTRAP_SERVER",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    pub bootstrap_server: String,

    /// Upper bound for each request to the cluster (metadata, admin, delivery).
    #[arg(long, default_value_t = 30_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub request_timeout_ms: u64,

    /// Extra librdkafka client property (repeatable), e.g. -X security.protocol=SSL.
    /// Wins over --command-config.
    #[arg(short = 'X', long = "client-property", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub client_properties: Vec<KeyValue>,

    /// A Java client properties file, as Kafka's tools take it (security.protocol,
    /// sasl.mechanism, sasl.jaas.config, ssl.truststore.*, ssl.keystore.*, ...).
    #[arg(long, value_name = "FILE", value_parser = parse_command_config)]
    pub command_config: Option<PathBuf>,
}

impl ConnectArgs {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Output for people (tables, sentences) or for scripts (JSON on stdout).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

#[derive(Args, Clone, Copy, Debug)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// A `key=value` pair from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// Parses `key=value`; the value may contain further `=` signs and may be empty.
pub fn parse_key_value(s: &str) -> Result<KeyValue, String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok(KeyValue {
            key: key.trim().to_string(),
            value: value.to_string(),
        }),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// A `--command-config` path; an empty one is refused here, a missing file when it is read.
pub fn parse_command_config(s: &str) -> Result<PathBuf, String> {
    if s.trim().is_empty() {
        return Err("expected a properties file".to_string());
    }
    Ok(PathBuf::from(s))
}

/// Parses kafka-configs' `--add-config` syntax: `k1=v1,k2=[a,b],k3=v3`.
/// Square brackets protect values that contain commas.
pub fn parse_config_list(s: &str) -> Result<Vec<KeyValue>, String> {
    let mut entries = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '[' => {
                depth += 1;
                if depth > 1 {
                    current.push(c);
                }
            }
            ']' => {
                if depth == 0 {
                    return Err(format!("unbalanced ']' in '{s}'"));
                }
                depth -= 1;
                if depth > 0 {
                    current.push(c);
                }
            }
            ',' if depth == 0 => {
                entries.push(parse_key_value(&current)?);
                current.clear();
            }
            _ => current.push(c),
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced '[' in '{s}'"));
    }
    if !current.is_empty() || entries.is_empty() {
        entries.push(parse_key_value(&current)?);
    }
    Ok(entries)
}

/// Parses a comma-separated list of config names.
pub fn parse_name_list(s: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = s
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Err("expected one or more config names".to_string());
    }
    Ok(names)
}

/// Parses a topic name, rejecting what Kafka would reject anyway, early and clearly.
pub fn parse_topic(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("topic name is empty".to_string());
    }
    if s.len() > 249 {
        return Err("topic name is longer than 249 characters".to_string());
    }
    if s == "." || s == ".." {
        return Err(format!("topic name '{s}' is not allowed"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name may only contain ASCII letters, digits, '.', '_' and '-', found {c:?}"
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn key_value_keeps_equals_in_value() {
        assert_eq!(parse_key_value("a=b=c").unwrap(), kv("a", "b=c"));
        assert_eq!(parse_key_value("a=").unwrap(), kv("a", ""));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }

    #[test]
    fn config_list_with_brackets() {
        assert_eq!(
            parse_config_list("retention.ms=100,cleanup.policy=[compact,delete]").unwrap(),
            vec![
                kv("retention.ms", "100"),
                kv("cleanup.policy", "compact,delete")
            ]
        );
        assert!(parse_config_list("a=[b").is_err());
        assert!(parse_config_list("a=b]").is_err());
        assert!(parse_config_list("").is_err());
    }

    #[test]
    fn topic_names() {
        assert!(parse_topic("orders.v1_x-y").is_ok());
        assert!(parse_topic("bad topic").is_err());
        assert!(parse_topic("").is_err());
        assert!(parse_topic("..").is_err());
        assert!(parse_topic(&"a".repeat(250)).is_err());
    }
}
