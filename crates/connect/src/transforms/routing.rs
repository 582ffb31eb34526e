//! Transforms that route or drop records: `RegexRouter`, `TimestampRouter`, `Filter`.

use regex::Regex;

use crate::record::ConnectRecord;

use super::timefmt::DateFormat;
use super::util::Config;
use super::{Props, TransformError, Transformation};

/// Kafka's `RegexRouter`: a topic matching `regex` (entirely) becomes `replacement`, with
/// Java's replacement syntax (`$1`, `${name}`, `\$` for a dollar).
#[derive(Debug)]
pub(crate) struct RegexRouter {
    regex: Regex,
    replacement: String,
}

impl RegexRouter {
    pub(crate) fn new(props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let pattern = c.required("regex")?;
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            TransformError::invalid("regex", pattern, &format!("Invalid regex: {e}"))
        })?;
        let replacement = c.required("replacement")?.to_string();
        Ok(RegexRouter { regex, replacement })
    }
}

/// Expands a Java replacement string (`Matcher.appendReplacement`).
pub(crate) fn java_replacement(
    caps: &regex::Captures<'_>,
    replacement: &str,
) -> Result<String, TransformError> {
    let mut out = String::new();
    let chars: Vec<char> = replacement.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some(&c) => out.push(c),
                    None => return Err(TransformError::data("character to be escaped is missing")),
                }
                i += 1;
            }
            '$' => {
                i += 1;
                if chars.get(i) == Some(&'{') {
                    let end = chars[i..].iter().position(|&c| c == '}').ok_or_else(|| {
                        TransformError::data("named capturing group is missing trailing '}'")
                    })?;
                    let name: String = chars[i + 1..i + end].iter().collect();
                    let m = caps.name(&name).ok_or_else(|| {
                        TransformError::data(format!("No group with name {{{name}}}"))
                    })?;
                    out.push_str(m.as_str());
                    i += end + 1;
                } else {
                    let first = chars
                        .get(i)
                        .and_then(|c| c.to_digit(10))
                        .ok_or_else(|| TransformError::data("Illegal group reference"))?
                        as usize;
                    let mut group = first;
                    i += 1;
                    // Java takes more digits while the number stays a valid group.
                    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                        let next = group * 10 + d as usize;
                        if next >= caps.len() {
                            break;
                        }
                        group = next;
                        i += 1;
                    }
                    if group >= caps.len() {
                        return Err(TransformError::data(format!("No group {group}")));
                    }
                    out.push_str(caps.get(group).map(|m| m.as_str()).unwrap_or(""));
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

impl Transformation for RegexRouter {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        if let Some(caps) = self.regex.captures(&record.topic) {
            record.topic = java_replacement(&caps, &self.replacement)?;
        }
        Ok(Some(record))
    }
}

/// Kafka's `TimestampRouter`: the topic becomes `topic.format` with `${topic}` and
/// `${timestamp}` (the record's timestamp formatted with `timestamp.format`, in UTC).
#[derive(Debug)]
pub(crate) struct TimestampRouter {
    topic_format: String,
    timestamp_format: DateFormat,
}

impl TimestampRouter {
    pub(crate) fn new(props: &Props) -> Result<Self, TransformError> {
        let c = Config(props);
        let topic_format = c
            .string("topic.format")
            .map(str::trim)
            .unwrap_or("${topic}-${timestamp}")
            .to_string();
        let fmt = c
            .string("timestamp.format")
            .map(str::trim)
            .unwrap_or("yyyyMMdd");
        let timestamp_format = DateFormat::parse(fmt)
            .map_err(|e| TransformError::invalid("timestamp.format", fmt, &e))?;
        Ok(TimestampRouter {
            topic_format,
            timestamp_format,
        })
    }
}

impl Transformation for TimestampRouter {
    fn apply(&self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        let ts = record.timestamp.ok_or_else(|| {
            TransformError::data(format!(
                "Timestamp missing on record: topic={} partition={:?}",
                record.topic, record.partition
            ))
        })?;
        let formatted = self.timestamp_format.format(ts);
        record.topic = self
            .topic_format
            .replace("${topic}", &record.topic)
            .replace("${timestamp}", &formatted);
        Ok(Some(record))
    }
}

/// Kafka's `Filter`: drops every record (use it with a predicate).
#[derive(Debug)]
pub(crate) struct Filter;

impl Filter {
    pub(crate) fn new(_props: &Props) -> Result<Self, TransformError> {
        Ok(Filter)
    }
}

impl Transformation for Filter {
    fn apply(&self, _record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        Ok(None)
    }
}
