//! The invariants every run must keep, checked against what the clients were told and
//! what every node holds once the cluster has settled.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use moldau_broker::Broker;
use moldau_storage::{BatchHeader, TopicPartition};

use crate::transactions::Outcome;
use crate::workload::{Observations, TOPIC};

/// `Err` names the first invariant broken.
pub fn check(
    observations: &Observations,
    brokers: &BTreeMap<usize, Rc<Broker>>,
    partitions: i32,
) -> Result<(), String> {
    acknowledged_records_are_in_the_log(observations)?;
    transactions_are_atomic(observations)?;
    pipeline_is_exactly_once(observations)?;
    group_offsets_never_go_back(observations)?;
    replicas_agree(brokers, partitions)?;
    metadata_images_agree(brokers)
}

/// Every acknowledged record is in its partition once, at its offset, in the order sent.
fn acknowledged_records_are_in_the_log(observations: &Observations) -> Result<(), String> {
    let mut logs: BTreeMap<i32, HashMap<i64, &str>> = BTreeMap::new();
    for (partition, (_, records)) in &observations.read_back {
        let mut seen: HashMap<&str, i64> = HashMap::new();
        let mut previous: Option<(i64, i64)> = None;
        for (offset, value) in records {
            if let Some(first) = seen.insert(value.as_str(), *offset) {
                return Err(format!(
                    "p{partition}: {value} is in the log twice, at {first} and {offset}"
                ));
            }
            let sequence: i64 = value
                .rsplit_once("-s")
                .and_then(|(_, s)| s.parse().ok())
                .ok_or_else(|| format!("p{partition}: unexpected record {value} at {offset}"))?;
            if let Some((prev_offset, prev_sequence)) = previous {
                if *offset <= prev_offset || sequence <= prev_sequence {
                    return Err(format!(
                        "p{partition}: {value} at {offset} follows sequence {prev_sequence} at {prev_offset}"
                    ));
                }
            }
            previous = Some((*offset, sequence));
        }
        logs.insert(
            *partition,
            records.iter().map(|(o, v)| (*o, v.as_str())).collect(),
        );
    }
    for ack in &observations.acknowledged {
        let log = logs
            .get(&ack.partition)
            .ok_or_else(|| format!("p{} was never read back", ack.partition))?;
        for (i, value) in ack.values.iter().enumerate() {
            let offset = ack.base_offset + i as i64;
            match log.get(&offset) {
                Some(found) if found == value => {}
                Some(found) => {
                    return Err(format!(
                        "p{}: acknowledged {value} at {offset}, the log has {found} there",
                        ack.partition
                    ))
                }
                None => {
                    return Err(format!(
                        "p{}: acknowledged {value} at {offset} is lost",
                        ack.partition
                    ))
                }
            }
        }
    }
    Ok(())
}

/// `read_committed` shows each committed transaction whole, each aborted one not at all,
/// each of unknown outcome whole or not at all, and no record twice.
fn transactions_are_atomic(observations: &Observations) -> Result<(), String> {
    let mut seen: HashMap<&str, (i32, i64)> = HashMap::new();
    for (partition, records) in &observations.read_committed {
        for (offset, value) in records {
            if let Some((p, o)) = seen.insert(value.as_str(), (*partition, *offset)) {
                return Err(format!(
                    "read_committed shows {value} twice: p{p} at {o} and p{partition} at {offset}"
                ));
            }
        }
    }
    let mut accounted = 0;
    for txn in &observations.transactions {
        let mut visible = 0;
        let mut total = 0;
        for (partition, values) in &txn.records {
            for value in values {
                total += 1;
                match seen.get(value.as_str()) {
                    Some((p, _)) if p == partition => visible += 1,
                    Some((p, o)) => {
                        return Err(format!("{value} of p{partition} is in p{p} at {o}"))
                    }
                    None => {}
                }
            }
        }
        accounted += visible;
        let expected: &[usize] = match txn.outcome {
            Outcome::Committed => &[total],
            Outcome::Aborted => &[0],
            Outcome::Unknown => &[0, total],
        };
        if !expected.contains(&visible) {
            let shown: Vec<String> = txn
                .records
                .values()
                .flatten()
                .filter_map(|v| seen.get(v.as_str()).map(|(p, o)| format!("{v}@p{p}:{o}")))
                .collect();
            return Err(format!(
                "transaction {} ({:?}): read_committed shows {visible} of its {total} records: {shown:?}",
                txn.id, txn.outcome
            ));
        }
    }
    if accounted != seen.len() {
        return Err(format!(
            "read_committed shows {} records no transaction wrote",
            seen.len() - accounted
        ));
    }
    Ok(())
}

/// The pipeline finished, and `read_committed` shows of each partition of
/// `sim-pipeline-out` exactly the transform of the input below the group's committed
/// offset of that partition of `sim-events`, in order: nothing lost, repeated or extra.
fn pipeline_is_exactly_once(observations: &Observations) -> Result<(), String> {
    if let Some(failure) = &observations.pipeline_failure {
        return Err(format!("pipeline: {failure}"));
    }
    for (partition, (end, input)) in &observations.read_back {
        let committed = observations
            .pipeline_committed
            .get(partition)
            .copied()
            .unwrap_or(-1)
            .max(0);
        if committed != *end {
            return Err(format!(
                "pipeline p{partition}: committed offset {committed}, the input ends at {end}"
            ));
        }
        let expected: Vec<String> = input
            .iter()
            .filter(|(offset, _)| *offset < committed)
            .map(|(_, value)| crate::pipeline::transform(value))
            .collect();
        let output = observations
            .pipeline_output
            .get(partition)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let first_difference = (0..expected.len().max(output.len()))
            .find(|&i| output.get(i).map(|(_, v)| v) != expected.get(i));
        if let Some(i) = first_difference {
            let shown = output
                .get(i)
                .map_or("nothing".to_string(), |(o, v)| format!("{v} at offset {o}"));
            let wanted = expected.get(i).map_or("nothing", String::as_str);
            return Err(format!(
                "pipeline p{partition}: output record {i} is {shown}, expected {wanted} \
                 ({} output records for {} input records)",
                output.len(),
                expected.len()
            ));
        }
    }
    Ok(())
}

/// Each OffsetFetch shows, for every partition, at least the largest commit acknowledged
/// before it was sent, and never less than an earlier fetch showed.
fn group_offsets_never_go_back(observations: &Observations) -> Result<(), String> {
    let mut highest: HashMap<(&str, i32), i64> = HashMap::new();
    for group in ["sim-group", "sim-848"] {
        if !observations.offsets_seen.iter().any(|s| s.group == group) {
            return Err(format!("the offsets of {group} were never fetched"));
        }
    }
    for (i, seen) in observations.offsets_seen.iter().enumerate() {
        for (partition, acknowledged) in &seen.acknowledged_before {
            let fetched = seen.fetched.get(partition).copied().unwrap_or(-1);
            if fetched < *acknowledged {
                return Err(format!(
                    "OffsetFetch {i} of {} (answered by {} at {} ms): p{partition} at {fetched}, below the acknowledged commit {acknowledged}",
                    seen.group, seen.from, seen.at_ms
                ));
            }
        }
        for (partition, fetched) in &seen.fetched {
            let before = highest
                .entry((seen.group.as_str(), *partition))
                .or_insert(-1);
            if fetched < before {
                return Err(format!(
                    "OffsetFetch {i} of {} (answered by {} at {} ms): p{partition} went back from {before} to {fetched}",
                    seen.group, seen.from, seen.at_ms
                ));
            }
            *before = *fetched;
        }
    }
    Ok(())
}

/// Every batch header of `tp`'s log on `broker` below `end`.
fn batches(broker: &Broker, tp: &TopicPartition, end: i64) -> Result<Vec<BatchHeader>, String> {
    let Some(log) = broker.partition_log(tp) else {
        return Ok(Vec::new());
    };
    let mut headers = Vec::new();
    let mut offset = log.log_start_offset();
    let end = end.min(log.log_end_offset());
    while offset < end {
        let data = log
            .read(offset, 1 << 20, i64::MAX, true)
            .and_then(|d| d.read_to_bytes().map_err(Into::into))
            .map_err(|e| format!("{tp}: read at {offset}: {e}"))?;
        if data.is_empty() {
            break;
        }
        let mut at = 0;
        while at < data.len() {
            let header = BatchHeader::parse(&data[at..])
                .map_err(|e| format!("{tp}: batch at byte {at}: {e}"))?;
            at += header.size_bytes();
            offset = header.next_offset();
            if header.base_offset < end {
                headers.push(header);
            }
        }
    }
    Ok(headers)
}

/// Replicas in the ISR hold the leader's batches below the high watermark; no two
/// replicas hold different batches for the same leader epoch and offset (two leaders of
/// one epoch would write those).
fn replicas_agree(brokers: &BTreeMap<usize, Rc<Broker>>, partitions: i32) -> Result<(), String> {
    let Some(image) = brokers.values().next().map(|b| b.metadata_image()) else {
        return Err("no node is running at the end".into());
    };
    for partition in 0..partitions {
        let tp = TopicPartition::new(TOPIC, partition);
        let state = image
            .topic_by_name(TOPIC)
            .and_then(|t| t.partitions.get(&partition))
            .ok_or_else(|| format!("{tp} is not in the metadata"))?;
        let leader = brokers
            .get(&((state.leader - 1) as usize))
            .ok_or_else(|| format!("{tp}: leader {} is not running", state.leader))?;
        let high_watermark = leader
            .partition_log(&tp)
            .ok_or_else(|| format!("{tp}: no log on its leader {}", state.leader))?
            .high_watermark();
        let reference = batches(leader, &tp, high_watermark)?;
        let mut by_epoch_offset: HashMap<(i32, i64), (u32, usize)> = HashMap::new();
        for (index, broker) in brokers {
            let Some(log) = broker.partition_log(&tp) else {
                continue;
            };
            let in_sync = state.isr.contains(&((*index + 1) as i32));
            if in_sync && log.log_end_offset() < high_watermark {
                return Err(format!(
                    "{tp}: n{} is in the ISR with log end {} below the high watermark {high_watermark}",
                    index + 1,
                    log.log_end_offset()
                ));
            }
            let held = batches(broker, &tp, i64::MAX)?;
            for header in &held {
                let key = (header.partition_leader_epoch, header.base_offset);
                if let Some((crc, other)) = by_epoch_offset.insert(key, (header.crc, *index)) {
                    if crc != header.crc {
                        return Err(format!(
                            "{tp}: epoch {} offset {} differs between n{} and n{}",
                            key.0,
                            key.1,
                            other + 1,
                            index + 1
                        ));
                    }
                }
            }
            if in_sync {
                let below: Vec<_> = held
                    .iter()
                    .filter(|h| h.base_offset < high_watermark)
                    .map(|h| (h.base_offset, h.crc))
                    .collect();
                let expected: Vec<_> = reference.iter().map(|h| (h.base_offset, h.crc)).collect();
                if below != expected {
                    return Err(format!(
                        "{tp}: n{} differs from leader n{} below the high watermark {high_watermark}",
                        index + 1,
                        state.leader
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Nodes that applied the metadata log to the same offset hold the same image.
fn metadata_images_agree(brokers: &BTreeMap<usize, Rc<Broker>>) -> Result<(), String> {
    let mut by_offset: BTreeMap<i64, (usize, std::sync::Arc<moldau_metadata::MetadataImage>)> =
        BTreeMap::new();
    for (index, broker) in brokers {
        let image = broker.metadata_image();
        match by_offset.get(&image.offset) {
            Some((other, theirs)) if **theirs != *image => {
                return Err(format!(
                    "metadata images of n{} and n{} differ at offset {}",
                    other + 1,
                    index + 1,
                    image.offset
                ))
            }
            Some(_) => {}
            None => {
                by_offset.insert(image.offset, (*index, image));
            }
        }
    }
    Ok(())
}
