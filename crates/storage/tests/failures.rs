//! Storage failures stay local (issue #8 item 7): a corrupt tail found after a clean
//! shutdown is truncated, leftover temp files are removed, an I/O failure takes one log
//! offline with KAFKA_STORAGE_ERROR while the others serve, background passes carry on
//! past it, and a deleted topic's dir name fits 255 bytes however long the topic.

mod common;

use std::fs;

use common::*;
use moldau_storage::{LogConfig, StorageError, TopicPartition, Uuid};

const NOW: i64 = 1_700_000_000_000;
const KAFKA_STORAGE_ERROR: i16 = 56;

fn append_one(h: &Harness) {
    append(
        h.log(),
        &mut sized_batch(2, 30, Compression::None, NOW),
        NOW,
    )
    .unwrap();
}

#[test]
fn corrupt_tail_after_clean_shutdown_is_truncated() {
    let mut h = Harness::new(LogConfig::default());
    append_one(&h);
    append_one(&h);
    let good = read_all_batches(h.log());
    h.manager().shutdown().unwrap();
    h.close_without_shutdown();
    let path = h.partition_dir().join("00000000000000000000.log");
    let mut bytes = fs::read(&path).unwrap();
    // A tail that does not parse: a length prefix pointing past a garbage header.
    bytes.extend_from_slice(&[0xab; 80]);
    fs::write(&path, bytes).unwrap();
    assert!(h.log_dir().join(".kafka_cleanshutdown").exists());
    h.open();
    assert_eq!(h.log().log_end_offset(), 4);
    assert_eq!(read_all_batches(h.log()), good);
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        good.iter().map(Vec::len).sum::<usize>() as u64,
        "the garbage tail is cut off"
    );
    append_one(&h);
    assert_eq!(h.log().log_end_offset(), 6);
}

#[test]
fn leftover_checkpoint_temp_files_are_removed_at_open() {
    let mut h = Harness::new(LogConfig::default());
    append_one(&h);
    h.manager().shutdown().unwrap();
    h.close_without_shutdown();
    let root_tmp = h.log_dir().join("recovery-point-offset-checkpoint.tmp");
    let partition_tmp = h.partition_dir().join("leader-epoch-checkpoint.tmp");
    fs::write(&root_tmp, b"").unwrap();
    fs::write(&partition_tmp, b"0\n").unwrap();
    h.open();
    assert!(!root_tmp.exists());
    assert!(!partition_tmp.exists());
    assert_eq!(h.log().log_end_offset(), 2);
}

#[test]
fn io_failure_takes_only_that_log_offline() {
    let h = Harness::new(LogConfig::default());
    let other_tp = TopicPartition::new("other", 0);
    let other = h
        .manager()
        .get_or_create_log(&other_tp, Uuid::new_v4(), LogConfig::default())
        .unwrap();
    append_one(&h);
    append(&other, &mut sized_batch(2, 30, Compression::None, NOW), NOW).unwrap();
    // The segment loses its bytes underneath the log (a failing disk).
    let path = h.partition_dir().join("00000000000000000000.log");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(10)
        .unwrap();
    let err = h.log().read(0, 1 << 20, i64::MAX, true).unwrap_err();
    assert_eq!(err.kafka_error_code(), KAFKA_STORAGE_ERROR, "{err}");
    assert!(h.log().is_offline());
    let err = append(
        h.log(),
        &mut sized_batch(1, 10, Compression::None, NOW),
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, StorageError::KafkaStorage(_)), "{err}");
    assert_eq!(err.kafka_error_code(), KAFKA_STORAGE_ERROR);
    // The other log serves, and background passes skip the offline one.
    append(&other, &mut sized_batch(2, 30, Compression::None, NOW), NOW).unwrap();
    assert_eq!(read_all_batches(&other).len(), 2);
    h.manager().run_retention_once(NOW).unwrap();
    h.manager().checkpoint().unwrap();
    // Shutdown closes the healthy logs but leaves no clean marker, so the next
    // start recovers the damaged one.
    h.manager().shutdown().unwrap();
    assert!(!h.log_dir().join(".kafka_cleanshutdown").exists());
}

#[test]
fn recovery_after_offline_log_keeps_a_prefix() {
    let mut h = Harness::new(LogConfig::default());
    append_one(&h);
    append_one(&h);
    let path = h.partition_dir().join("00000000000000000000.log");
    let first_batch_len = read_all_batches(h.log())[0].len() as u64;
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(first_batch_len + 5)
        .unwrap();
    assert!(h.log().read(2, 1 << 20, i64::MAX, true).is_err());
    assert!(h.log().is_offline());
    h.manager().shutdown().unwrap();
    h.close_without_shutdown();
    h.open();
    assert!(!h.log().is_offline());
    assert_eq!(
        h.log().log_end_offset(),
        2,
        "recovered to the whole first batch"
    );
}

#[test]
fn deleting_a_249_character_topic_fits_the_file_name_limit() {
    let mut h = Harness::new(LogConfig::default());
    let topic = "t".repeat(249);
    let long = TopicPartition::new(topic.clone(), 99);
    let topic_id = Uuid::new_v4();
    let log = h
        .manager()
        .get_or_create_log(&long, topic_id, LogConfig::default())
        .unwrap();
    append(&log, &mut sized_batch(1, 10, Compression::None, NOW), NOW).unwrap();
    drop(log);
    // The removal of an earlier topic of the same name leaves this one alone.
    h.manager().delete_log(&long, Uuid::new_v4()).unwrap();
    assert!(h.manager().get_log(&long).is_some());
    h.manager().delete_log(&long, topic_id).unwrap();
    let names: Vec<String> = fs::read_dir(h.log_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let doomed: Vec<&String> = names.iter().filter(|n| n.ends_with("-delete")).collect();
    assert_eq!(doomed.len(), 1, "{names:?}");
    assert!(doomed[0].len() <= 255);
    assert!(doomed[0].starts_with("ttt") && doomed[0].contains("-99."));
    assert!(!h.log_dir().join(long.dir_name()).exists());
    // A restart removes the renamed dir and does not bring the partition back.
    h.reopen_clean();
    assert!(h.manager().get_log(&long).is_none());
    assert!(fs::read_dir(h.log_dir()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with("-delete")));
}
