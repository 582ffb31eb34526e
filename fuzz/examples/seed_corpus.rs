//! Writes seed inputs for both fuzz targets into `corpus/<target>/`: a well-formed request
//! frame for every version of each API the broker serves, and RecordBatches under every codec.
//! Run from `fuzz/`: `cargo run --example seed_corpus`.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion, Message, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn main() {
    let requests = Path::new("corpus/request_decode");
    let batches = Path::new("corpus/record_batch");
    std::fs::create_dir_all(requests).unwrap();
    std::fs::create_dir_all(batches).unwrap();

    macro_rules! every_version {
        ($($request:expr),* $(,)?) => {$(
            write_all_versions(requests, $request);
        )*};
    }
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(Compression::None)))])]);
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("t")))),
    ]));
    every_version!(
        produce,
        metadata,
        FetchRequest::default(),
        ListOffsetsRequest::default(),
        ApiVersionsRequest::default(),
        CreateTopicsRequest::default(),
        InitProducerIdRequest::default(),
        DeleteTopicsRequest::default(),
        CreatePartitionsRequest::default(),
        DescribeConfigsRequest::default(),
        AlterConfigsRequest::default(),
        IncrementalAlterConfigsRequest::default(),
        DeleteRecordsRequest::default(),
        DescribeClusterRequest::default(),
        DescribeLogDirsRequest::default(),
        OffsetForLeaderEpochRequest::default(),
        FindCoordinatorRequest::default(),
        JoinGroupRequest::default(),
        SyncGroupRequest::default(),
        HeartbeatRequest::default(),
        LeaveGroupRequest::default(),
        OffsetCommitRequest::default(),
        OffsetFetchRequest::default(),
        ListGroupsRequest::default(),
        DescribeGroupsRequest::default(),
        DeleteGroupsRequest::default(),
    );

    // record_batch inputs: flags byte, then the payload (see fuzz_targets/record_batch.rs).
    for (i, codec) in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .enumerate()
    {
        for flags in [0u8, 2, 4] {
            let mut input = vec![flags];
            input.extend_from_slice(&batch(codec));
            std::fs::write(batches.join(format!("batch-{i}-{flags}")), input).unwrap();
        }
        // Structured: codec, 3 records, key/value lengths and fill bytes, timestamp deltas.
        let structured = [8u8, i as u8, 2, 3, 10, b'k', b'v', 0, 0, 5, b'w', 1, 4, 0, b'k', 2];
        std::fs::write(batches.join(format!("structured-{i}")), structured).unwrap();
    }
}

fn write_all_versions<R: Request + Message + Encodable + HeaderVersion>(dir: &Path, request: R) {
    for version in R::VERSIONS.min..=R::VERSIONS.max {
        let mut frame = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("seed")));
        if header.encode(&mut frame, R::header_version(version)).is_err()
            || request.encode(&mut frame, version).is_err()
        {
            continue;
        }
        std::fs::write(dir.join(format!("api{}-v{version}", R::KEY)), &frame).unwrap();
    }
}

fn batch(compression: Compression) -> Bytes {
    let records: Vec<Record> = (0..3)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: -1,
            timestamp: 1_700_000_000_000 - 10 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: IndexMap::from([(
                StrBytes::from_static_str("h"),
                Some(Bytes::from_static(b"v")),
            )]),
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options).unwrap();
    out.freeze()
}
