//! Every version of the data-path APIs, on the wire, with data in the log.
//!
//! Old clients are real (Debian's kcat carries librdkafka 2.0.2): a response field that a
//! version lacks must stay at its default or the response cannot be encoded at all. This
//! sweep asks each supported version once and checks the answer.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::wire::WireClient;
use common::TestBroker;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Message, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::producer::FutureRecord;

const TOPIC: &str = "versions";

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

fn batch(value: &str, timestamp: i64) -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: None,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

async fn setup() -> (TestBroker, WireClient, uuid::Uuid) {
    let broker = TestBroker::start().await;
    broker.create_topic(TOPIC, 1).await;
    for i in 0..3i64 {
        broker
            .producer()
            .send(
                FutureRecord::<(), _>::to(TOPIC)
                    .payload("seed")
                    .timestamp(1_000 + i),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name())),
    ]));
    let response: MetadataResponse = client.call(ApiKey::Metadata, 12, &request).await;
    let topic_id = response.topics[0].topic_id;
    (broker, client, topic_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_of_the_data_path_apis_answers() {
    let (broker, mut client, topic_id) = setup().await;

    for version in ApiVersionsRequest::VERSIONS.min..=ApiVersionsRequest::VERSIONS.max {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sweep"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let response: ApiVersionsResponse =
            client.call(ApiKey::ApiVersions, version, &request).await;
        assert_eq!(response.error_code, 0, "ApiVersions v{version}");
    }

    for version in MetadataRequest::VERSIONS.min..=MetadataRequest::VERSIONS.max {
        let request = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name())),
        ]));
        let response: MetadataResponse = client.call(ApiKey::Metadata, version, &request).await;
        assert_eq!(response.topics.len(), 1, "Metadata v{version}");
        assert_eq!(response.topics[0].error_code, 0, "Metadata v{version}");
        assert_eq!(
            response.topics[0].partitions.len(),
            1,
            "Metadata v{version}"
        );
    }

    let mut expected_end = 3;
    for version in ProduceRequest::VERSIONS.min..=ProduceRequest::VERSIONS.max {
        let topic = if version >= 13 {
            TopicProduceData::default().with_topic_id(topic_id)
        } else {
            TopicProduceData::default().with_name(name())
        };
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![topic.with_partition_data(vec![
                PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(
                        &format!("v{version}"),
                        2_000 + i64::from(version),
                    ))),
            ])]);
        let response: ProduceResponse = client.call(ApiKey::Produce, version, &request).await;
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0, "Produce v{version}");
        assert_eq!(partition.base_offset, expected_end, "Produce v{version}");
        expected_end += 1;
    }

    for version in FetchRequest::VERSIONS.min..=FetchRequest::VERSIONS.max {
        let topic = if version >= 13 {
            FetchTopic::default().with_topic_id(topic_id)
        } else {
            FetchTopic::default().with_topic(name())
        };
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![topic.with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
        let response: FetchResponse = client.call(ApiKey::Fetch, version, &request).await;
        assert_eq!(response.error_code, 0, "Fetch v{version}");
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0, "Fetch v{version}");
        assert_eq!(partition.high_watermark, expected_end, "Fetch v{version}");
        let mut records = partition.records.clone().expect("records");
        let batches = RecordBatchDecoder::decode_all(&mut records).expect("batches decode");
        let offsets: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.records.iter().map(|r| r.offset))
            .collect();
        assert_eq!(offsets.first(), Some(&0), "Fetch v{version}");
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "Fetch v{version}: contiguous offsets {offsets:?}"
        );
    }

    for version in ListOffsetsRequest::VERSIONS.min..=ListOffsetsRequest::VERSIONS.max {
        for (timestamp, expected_offset) in [(-1, expected_end), (-2, 0), (1_001, 1)] {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(name())
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp)])]);
            let response: ListOffsetsResponse =
                client.call(ApiKey::ListOffsets, version, &request).await;
            let partition = &response.topics[0].partitions[0];
            assert_eq!(
                partition.error_code, 0,
                "ListOffsets v{version} ts {timestamp}"
            );
            assert_eq!(
                partition.offset, expected_offset,
                "ListOffsets v{version} ts {timestamp}"
            );
        }
    }

    for version in CreateTopicsRequest::VERSIONS.min..=CreateTopicsRequest::VERSIONS.max {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(format!(
                    "created-v{version}"
                ))))
                .with_num_partitions(2)
                .with_replication_factor(1)]);
        let response: CreateTopicsResponse =
            client.call(ApiKey::CreateTopics, version, &request).await;
        assert_eq!(response.topics[0].error_code, 0, "CreateTopics v{version}");
    }

    let mut producer_ids = Vec::new();
    for version in InitProducerIdRequest::VERSIONS.min..=InitProducerIdRequest::VERSIONS.max {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let response: InitProducerIdResponse =
            client.call(ApiKey::InitProducerId, version, &request).await;
        assert_eq!(response.error_code, 0, "InitProducerId v{version}");
        producer_ids.push(response.producer_id.0);
    }
    let mut unique = producer_ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        producer_ids.len(),
        "producer ids are never reused"
    );
    broker.shutdown().await;
}
