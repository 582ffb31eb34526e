//! Kafka's small text files: offset checkpoints, `leader-epoch-checkpoint`,
//! `partition.metadata`. Every write goes to a tmp file, is fsynced, renamed over
//! the target, and the directory is fsynced, so a crash leaves the old or new file.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::Path;

use crate::{TopicPartition, Uuid};

/// Writes `contents` to `path` atomically and durably.
pub fn write_file_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_file_name(format!(
        "{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    {
        let mut f = File::create(&tmp)?;
        crate::seams::write_all(&mut f, &tmp, contents)?;
        crate::seams::sync_all(&f, &tmp)?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    crate::seams::sync_all(&File::open(dir)?, dir)
}

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// Reads a `version\ncount\nline...` checkpoint; `Ok(None)` if the file is missing.
fn read_lines(path: &Path, version: u32) -> io::Result<Option<Vec<String>>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut lines = text.lines();
    if lines.next().and_then(|l| l.trim().parse::<u32>().ok()) != Some(version) {
        return Err(invalid(path, "unsupported checkpoint version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| invalid(path, "bad entry count"))?;
    let entries: Vec<String> = lines
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if entries.len() != count {
        return Err(invalid(path, "entry count does not match"));
    }
    Ok(Some(entries))
}

fn write_lines(path: &Path, version: u32, entries: &[String]) -> io::Result<()> {
    let mut text = format!("{version}\n{}\n", entries.len());
    for e in entries {
        text.push_str(e);
        text.push('\n');
    }
    write_file_atomically(path, text.as_bytes())
}

/// `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
/// `cleaner-offset-checkpoint`: "topic partition offset" lines, version 0.
pub fn read_offset_checkpoint(path: &Path) -> io::Result<BTreeMap<TopicPartition, i64>> {
    let mut map = BTreeMap::new();
    for line in read_lines(path, 0)?.unwrap_or_default() {
        let mut parts = line.split_whitespace();
        let (Some(topic), Some(p), Some(o), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(path, "malformed line"));
        };
        let (Ok(partition), Ok(offset)) = (p.parse::<i32>(), o.parse::<i64>()) else {
            return Err(invalid(path, "malformed line"));
        };
        map.insert(TopicPartition::new(topic, partition), offset);
    }
    Ok(map)
}

pub fn write_offset_checkpoint(
    path: &Path,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> io::Result<()> {
    let lines: Vec<String> = offsets
        .iter()
        .map(|(tp, o)| format!("{} {} {o}", tp.topic, tp.partition))
        .collect();
    write_lines(path, 0, &lines)
}

/// `leader-epoch-checkpoint`: "epoch startOffset" lines, version 0.
pub fn read_epoch_checkpoint(path: &Path) -> io::Result<Vec<(i32, i64)>> {
    let mut out = Vec::new();
    for line in read_lines(path, 0)?.unwrap_or_default() {
        let mut parts = line.split_whitespace();
        match (
            parts.next().map(str::parse::<i32>),
            parts.next().map(str::parse::<i64>),
        ) {
            (Some(Ok(e)), Some(Ok(o))) => out.push((e, o)),
            _ => return Err(invalid(path, "malformed epoch line")),
        }
    }
    Ok(out)
}

pub fn write_epoch_checkpoint(path: &Path, epochs: &[(i32, i64)]) -> io::Result<()> {
    let lines: Vec<String> = epochs.iter().map(|(e, o)| format!("{e} {o}")).collect();
    write_lines(path, 0, &lines)
}

pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// `partition.metadata`: "version: 0\ntopic_id: <base64 uuid>".
pub fn write_partition_metadata(dir: &Path, topic_id: Uuid) -> io::Result<()> {
    let text = format!("version: 0\ntopic_id: {}\n", uuid_to_base64(topic_id));
    write_file_atomically(&dir.join(PARTITION_METADATA_FILE), text.as_bytes())
}

pub fn read_partition_metadata(dir: &Path) -> io::Result<Option<Uuid>> {
    let path = dir.join(PARTITION_METADATA_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .and_then(|v| uuid_from_base64(v.trim()))
        .ok_or_else(|| invalid(&path, "malformed partition metadata"))?;
    Ok(Some(id))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka renders topic ids as URL-safe base64 without padding (22 characters).
pub fn uuid_to_base64(id: Uuid) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub fn uuid_from_base64(s: &str) -> Option<Uuid> {
    if s.len() != 22 {
        return None;
    }
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(16);
    for c in s.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Uuid::from_slice(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_kafka() {
        // Kafka: Uuid(0x0123456789abcdef, 0xfedcba9876543210).toString()
        let id = Uuid::from_u128(0x0123456789abcdef_fedcba9876543210);
        let s = uuid_to_base64(id);
        assert_eq!(s, "ASNFZ4mrze_-3LqYdlQyEA");
        assert_eq!(uuid_from_base64(&s), Some(id));
        assert_eq!(uuid_from_base64("short"), None);
    }

    #[test]
    fn offset_checkpoint_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let mut map = BTreeMap::new();
        map.insert(TopicPartition::new("a-b", 3), 42);
        write_offset_checkpoint(&path, &map).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n1\na-b 3 42\n");
        assert_eq!(read_offset_checkpoint(&path).unwrap(), map);
        fs::write(&path, "0\n2\na 1 1\n").unwrap();
        assert!(read_offset_checkpoint(&path).is_err());
    }
}
