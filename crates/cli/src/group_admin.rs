//! Group admin calls the rdkafka crate does not wrap, through librdkafka's C API:
//! ListConsumerGroups (with type), DescribeConsumerGroups (members, hosts, client ids
//! and assignments of classic and KIP-848 groups), ListConsumerGroupOffsets (every
//! committed partition) and DeleteConsumerGroupOffsets (per-partition errors).
//!
//! Each call builds its request, waits for its one result event on a private queue,
//! copies the answer into plain Rust values and frees everything through [`Owned`].

use std::ffi::CStr;
use std::os::raw::c_char;
use std::ptr;
use std::time::Duration;

use anyhow::{anyhow, bail};
use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaRespErr;

use crate::client::QuietContext;
use crate::incremental_alter::{c_string, code_error, Owned};

/// A group as ListGroups reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupListing {
    pub group: String,
    /// "classic", "consumer" or "unknown".
    #[serde(rename = "type")]
    pub group_type: String,
    pub state: String,
}

/// One member of a group with what it owns now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberInfo {
    pub consumer_id: String,
    pub client_id: String,
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
    pub assignment: Vec<AssignedPartition>,
}

/// One partition a member owns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct AssignedPartition {
    pub topic: String,
    pub partition: i32,
}

/// A group as DescribeGroups / ConsumerGroupDescribe report it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupDescription {
    pub group: String,
    #[serde(rename = "type")]
    pub group_type: String,
    pub state: String,
    /// The classic protocol's assignor, or the KIP-848 server-side assignor.
    pub assignor: String,
    pub coordinator: Option<i32>,
    pub members: Vec<MemberInfo>,
}

/// One partition with an offset or an error.
#[derive(Debug, Clone)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub error: Option<String>,
}

/// A librdkafka string, empty when null.
///
/// # Safety
/// `s` is null or NUL-terminated and alive.
unsafe fn string(s: *const c_char) -> String {
    if s.is_null() {
        String::new()
    } else {
        // SAFETY: per the contract above.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }
}

fn group_type_name(t: rd::rd_kafka_consumer_group_type_t) -> String {
    match t {
        rd::rd_kafka_consumer_group_type_t::RD_KAFKA_CONSUMER_GROUP_TYPE_CONSUMER => "consumer",
        rd::rd_kafka_consumer_group_type_t::RD_KAFKA_CONSUMER_GROUP_TYPE_CLASSIC => "classic",
        _ => "unknown",
    }
    .to_string()
}

fn state_name(s: rd::rd_kafka_consumer_group_state_t) -> String {
    // SAFETY: librdkafka returns a static string for every state value.
    unsafe { string(rd::rd_kafka_consumer_group_state_name(s)) }
}

/// Copies a borrowed partition list.
///
/// # Safety
/// `list` is null or a live list.
unsafe fn partitions(list: *const rd::rd_kafka_topic_partition_list_t) -> Vec<PartitionOffset> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: a live list has `cnt` initialised elements.
    unsafe {
        let count = usize::try_from((*list).cnt).unwrap_or(0);
        (0..count)
            .map(|i| {
                let p = &*(*list).elems.add(i);
                PartitionOffset {
                    topic: string(p.topic),
                    partition: p.partition,
                    offset: p.offset,
                    error: (p.err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
                        .then(|| rdkafka::error::RDKafkaErrorCode::from(p.err).to_string()),
                }
            })
            .collect()
    }
}

/// An owned partition list holding `partitions` (offsets unset).
fn partition_list(
    parts: &[(String, i32)],
) -> anyhow::Result<Owned<rd::rd_kafka_topic_partition_list_t>> {
    // SAFETY: the list is owned here; librdkafka copies topic names on add.
    unsafe {
        let list = Owned {
            ptr: rd::rd_kafka_topic_partition_list_new(i32::try_from(parts.len()).unwrap_or(0)),
            destroy: rd::rd_kafka_topic_partition_list_destroy,
        };
        for (topic, partition) in parts {
            let topic = c_string(topic)?;
            rd::rd_kafka_topic_partition_list_add(list.ptr, topic.as_ptr(), *partition);
        }
        Ok(list)
    }
}

/// The result event of one admin call; its error (timeouts, transport) already checked.
struct AdminCall {
    event: Owned<rd::rd_kafka_event_t>,
}

/// Runs `start(rk, options, queue)` and waits for its result event.
fn admin_call(
    admin: &AdminClient<QuietContext>,
    op: rd::rd_kafka_admin_op_t,
    timeout: Duration,
    configure: impl FnOnce(*mut rd::rd_kafka_AdminOptions_t) -> anyhow::Result<()>,
    start: impl FnOnce(*mut rd::rd_kafka_t, *mut rd::rd_kafka_AdminOptions_t, *mut rd::rd_kafka_queue_t),
) -> anyhow::Result<AdminCall> {
    let rk = admin.inner().native_ptr();
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: options and queue are owned here and outlive the call; the event is
    // owned by the returned value.
    unsafe {
        let options = Owned {
            ptr: rd::rd_kafka_AdminOptions_new(rk, op),
            destroy: rd::rd_kafka_AdminOptions_destroy,
        };
        let mut errstr = [0 as c_char; 256];
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.ptr,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        configure(options.ptr)?;
        let queue = Owned {
            ptr: rd::rd_kafka_queue_new(rk),
            destroy: rd::rd_kafka_queue_destroy,
        };
        start(rk, options.ptr, queue.ptr);
        let event = Owned {
            ptr: rd::rd_kafka_queue_poll(queue.ptr, timeout_ms.saturating_add(5_000)),
            destroy: rd::rd_kafka_event_destroy,
        };
        if event.ptr.is_null() {
            bail!("no answer within {} ms", timeout.as_millis());
        }
        let err = rd::rd_kafka_event_error(event.ptr);
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(code_error(err, rd::rd_kafka_event_error_string(event.ptr)));
        }
        Ok(AdminCall { event })
    }
}

/// `Err` with the error's code and message when `error` is set.
///
/// # Safety
/// `error` is null or a live error object.
unsafe fn check_error(error: *const rd::rd_kafka_error_t) -> anyhow::Result<()> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: live per the contract.
    unsafe {
        Err(code_error(
            rd::rd_kafka_error_code(error),
            rd::rd_kafka_error_string(error),
        ))
    }
}

/// Every group of the cluster, of the given types (all types when empty).
pub fn list_groups(
    admin: &AdminClient<QuietContext>,
    types: &[&str],
    timeout: Duration,
) -> anyhow::Result<Vec<GroupListing>> {
    let codes: Vec<rd::rd_kafka_consumer_group_type_t> = types
        .iter()
        .map(|t| match *t {
            "classic" => {
                Ok(rd::rd_kafka_consumer_group_type_t::RD_KAFKA_CONSUMER_GROUP_TYPE_CLASSIC)
            }
            "consumer" => {
                Ok(rd::rd_kafka_consumer_group_type_t::RD_KAFKA_CONSUMER_GROUP_TYPE_CONSUMER)
            }
            other => Err(anyhow!(
                "unknown group type '{other}' (expected classic or consumer)"
            )),
        })
        .collect::<anyhow::Result<_>>()?;
    let call = admin_call(
        admin,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS,
        timeout,
        |options| {
            if codes.is_empty() {
                return Ok(());
            }
            // SAFETY: options is live; librdkafka copies the array.
            unsafe {
                let error = Owned {
                    ptr: rd::rd_kafka_AdminOptions_set_match_consumer_group_types(
                        options,
                        codes.as_ptr(),
                        codes.len(),
                    ),
                    destroy: rd::rd_kafka_error_destroy,
                };
                check_error(error.ptr)
            }
        },
        // SAFETY: all three pointers are live for the call.
        |rk, options, queue| unsafe { rd::rd_kafka_ListConsumerGroups(rk, options, queue) },
    )?;
    // SAFETY: the result and its listings live as long as the event.
    unsafe {
        let result = rd::rd_kafka_event_ListConsumerGroups_result(call.event.ptr);
        if result.is_null() {
            bail!("unexpected answer to ListGroups");
        }
        let mut count = 0usize;
        let errors = rd::rd_kafka_ListConsumerGroups_result_errors(result, &mut count);
        if count > 0 {
            check_error(*errors)?;
        }
        let valid = rd::rd_kafka_ListConsumerGroups_result_valid(result, &mut count);
        let mut groups: Vec<GroupListing> = (0..count)
            .map(|i| {
                let g = *valid.add(i);
                GroupListing {
                    group: string(rd::rd_kafka_ConsumerGroupListing_group_id(g)),
                    group_type: group_type_name(rd::rd_kafka_ConsumerGroupListing_type(g)),
                    state: state_name(rd::rd_kafka_ConsumerGroupListing_state(g)),
                }
            })
            .collect();
        groups.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(groups)
    }
}

/// Describes one group; an unknown group is described as Dead without members
/// (as Kafka answers).
pub fn describe_group(
    admin: &AdminClient<QuietContext>,
    group: &str,
    timeout: Duration,
) -> anyhow::Result<GroupDescription> {
    let group_c = c_string(group)?;
    let call = admin_call(
        admin,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
        timeout,
        |_| Ok(()),
        |rk, options, queue| {
            let mut groups = [group_c.as_ptr()];
            // SAFETY: the name outlives the call; librdkafka copies it.
            unsafe {
                rd::rd_kafka_DescribeConsumerGroups(rk, groups.as_mut_ptr(), 1, options, queue)
            }
        },
    )?;
    // SAFETY: the result and everything reached from it live as long as the event.
    unsafe {
        let result = rd::rd_kafka_event_DescribeConsumerGroups_result(call.event.ptr);
        if result.is_null() {
            bail!("unexpected answer to DescribeGroups");
        }
        let mut count = 0usize;
        let groups = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count);
        if count == 0 {
            bail!("no description of group '{group}'");
        }
        let g = *groups;
        check_error(rd::rd_kafka_ConsumerGroupDescription_error(g))?;
        let coordinator = rd::rd_kafka_ConsumerGroupDescription_coordinator(g);
        let members = (0..rd::rd_kafka_ConsumerGroupDescription_member_count(g))
            .map(|i| {
                let m = rd::rd_kafka_ConsumerGroupDescription_member(g, i);
                let assignment = rd::rd_kafka_MemberDescription_assignment(m);
                let parts = if assignment.is_null() {
                    Vec::new()
                } else {
                    partitions(rd::rd_kafka_MemberAssignment_partitions(assignment))
                };
                let instance = string(rd::rd_kafka_MemberDescription_group_instance_id(m));
                MemberInfo {
                    consumer_id: string(rd::rd_kafka_MemberDescription_consumer_id(m)),
                    client_id: string(rd::rd_kafka_MemberDescription_client_id(m)),
                    host: string(rd::rd_kafka_MemberDescription_host(m)),
                    group_instance_id: (!instance.is_empty()).then_some(instance),
                    assignment: parts
                        .into_iter()
                        .map(|p| AssignedPartition {
                            topic: p.topic,
                            partition: p.partition,
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(GroupDescription {
            group: string(rd::rd_kafka_ConsumerGroupDescription_group_id(g)),
            group_type: group_type_name(rd::rd_kafka_ConsumerGroupDescription_type(g)),
            state: state_name(rd::rd_kafka_ConsumerGroupDescription_state(g)),
            assignor: string(rd::rd_kafka_ConsumerGroupDescription_partition_assignor(g)),
            coordinator: (!coordinator.is_null()).then(|| rd::rd_kafka_Node_id(coordinator)),
            members,
        })
    }
}

/// Every partition the group has committed, with its offset (OffsetFetch, all topics).
pub fn committed_offsets(
    admin: &AdminClient<QuietContext>,
    group: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<PartitionOffset>> {
    let group_c = c_string(group)?;
    // SAFETY: the request object is owned until after the call.
    let request = unsafe {
        Owned {
            ptr: rd::rd_kafka_ListConsumerGroupOffsets_new(group_c.as_ptr(), ptr::null()),
            destroy: rd::rd_kafka_ListConsumerGroupOffsets_destroy,
        }
    };
    let call = admin_call(
        admin,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
        timeout,
        |_| Ok(()),
        |rk, options, queue| {
            let mut requests = [request.ptr];
            // SAFETY: librdkafka copies the request.
            unsafe {
                rd::rd_kafka_ListConsumerGroupOffsets(rk, requests.as_mut_ptr(), 1, options, queue)
            }
        },
    )?;
    // SAFETY: the result lives as long as the event.
    let mut offsets = unsafe {
        let result = rd::rd_kafka_event_ListConsumerGroupOffsets_result(call.event.ptr);
        group_result(result.is_null(), || {
            let mut count = 0usize;
            let groups = rd::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut count);
            (groups, count)
        })?
    };
    // Partitions without a commit come back as -1 (Kafka's "no offset").
    offsets.retain(|p| p.offset >= 0 || p.error.is_some());
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(offsets)
}

/// The partitions of the first group result, or its error.
///
/// # Safety
/// `results` returns a live array of `count` group results.
unsafe fn group_result(
    missing: bool,
    results: impl FnOnce() -> (*mut *const rd::rd_kafka_group_result_t, usize),
) -> anyhow::Result<Vec<PartitionOffset>> {
    if missing {
        bail!("unexpected answer from the group coordinator");
    }
    let (groups, count) = results();
    if count == 0 {
        bail!("no answer for the group");
    }
    // SAFETY: count > 0 and the array is live.
    unsafe {
        let g = *groups;
        check_error(rd::rd_kafka_group_result_error(g))?;
        Ok(partitions(rd::rd_kafka_group_result_partitions(g)))
    }
}

/// Deletes the group's committed offsets of `parts`; per-partition errors come back.
pub fn delete_offsets(
    admin: &AdminClient<QuietContext>,
    group: &str,
    parts: &[(String, i32)],
    timeout: Duration,
) -> anyhow::Result<Vec<PartitionOffset>> {
    let group_c = c_string(group)?;
    let list = partition_list(parts)?;
    // SAFETY: the request object is owned until after the call; it copies the list.
    let request = unsafe {
        Owned {
            ptr: rd::rd_kafka_DeleteConsumerGroupOffsets_new(group_c.as_ptr(), list.ptr),
            destroy: rd::rd_kafka_DeleteConsumerGroupOffsets_destroy,
        }
    };
    let call = admin_call(
        admin,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETECONSUMERGROUPOFFSETS,
        timeout,
        |_| Ok(()),
        |rk, options, queue| {
            let mut requests = [request.ptr];
            // SAFETY: librdkafka copies the request.
            unsafe {
                rd::rd_kafka_DeleteConsumerGroupOffsets(
                    rk,
                    requests.as_mut_ptr(),
                    1,
                    options,
                    queue,
                )
            }
        },
    )?;
    // SAFETY: the result lives as long as the event.
    unsafe {
        let result = rd::rd_kafka_event_DeleteConsumerGroupOffsets_result(call.event.ptr);
        group_result(result.is_null(), || {
            let mut count = 0usize;
            let groups = rd::rd_kafka_DeleteConsumerGroupOffsets_result_groups(result, &mut count);
            (groups, count)
        })
    }
}
