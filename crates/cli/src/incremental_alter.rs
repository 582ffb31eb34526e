//! IncrementalAlterConfigs (KIP-339) through librdkafka's C API.
//!
//! The rdkafka crate offers only the legacy AlterConfigs, which replaces every
//! override of a resource, and its result drops the per-resource error: a refused
//! change looked like a success. Here each key is set or deleted on its own and the
//! broker's error code and message come back as one line.

use std::ffi::{CStr, CString};
use std::ptr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use rdkafka::admin::{AdminClient, ResourceSpecifier};
use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::types::RDKafkaRespErr;

use crate::args::KeyValue;
use crate::client::QuietContext;

/// Owns a librdkafka object and destroys it on drop, on every return path.
pub(crate) struct Owned<T> {
    pub(crate) ptr: *mut T,
    pub(crate) destroy: unsafe extern "C" fn(*mut T),
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr` came from the matching librdkafka constructor and is
            // destroyed once, here.
            unsafe { (self.destroy)(self.ptr) }
        }
    }
}

pub(crate) fn c_string(s: &str) -> anyhow::Result<CString> {
    CString::new(s).with_context(|| format!("{s:?} contains a NUL byte"))
}

/// Sets `set` and deletes `delete` on one topic or broker, waiting at most `timeout`.
pub fn incremental_alter_configs(
    admin: &AdminClient<QuietContext>,
    spec: ResourceSpecifier<'_>,
    set: &[KeyValue],
    delete: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let (resource_type, name) = match spec {
        ResourceSpecifier::Topic(topic) => (
            rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            topic.to_string(),
        ),
        ResourceSpecifier::Broker(id) => (
            rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_BROKER,
            id.to_string(),
        ),
        ResourceSpecifier::Group(_) => bail!("group configs are not supported"),
    };
    let name = c_string(&name)?;
    let rk = admin.inner().native_ptr();
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);

    // SAFETY (whole block): every pointer passed to librdkafka is either one it
    // returned and that is still owned here, or a CString that outlives the call;
    // librdkafka copies names and values into the resource.
    unsafe {
        let resource = Owned {
            ptr: rd::rd_kafka_ConfigResource_new(resource_type, name.as_ptr()),
            destroy: rd::rd_kafka_ConfigResource_destroy,
        };
        if resource.ptr.is_null() {
            bail!("cannot build the config change");
        }
        let ops = set
            .iter()
            .map(|kv| (kv.key.as_str(), Some(kv.value.as_str())))
            .chain(delete.iter().map(|k| (k.as_str(), None)));
        for (key, value) in ops {
            let key_c = c_string(key)?;
            let value_c = value.map(c_string).transpose()?;
            let op = match value {
                Some(_) => rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                None => rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
            };
            let value_ptr = value_c.as_ref().map_or(ptr::null(), |v| v.as_ptr());
            let error = Owned {
                ptr: rd::rd_kafka_ConfigResource_add_incremental_config(
                    resource.ptr,
                    key_c.as_ptr(),
                    op,
                    value_ptr,
                ),
                destroy: rd::rd_kafka_error_destroy,
            };
            if !error.ptr.is_null() {
                let message =
                    CStr::from_ptr(rd::rd_kafka_error_string(error.ptr)).to_string_lossy();
                bail!("invalid config change for '{key}': {message}");
            }
        }

        let options = Owned {
            ptr: rd::rd_kafka_AdminOptions_new(
                rk,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
            ),
            destroy: rd::rd_kafka_AdminOptions_destroy,
        };
        let mut errstr = [0 as std::os::raw::c_char; 256];
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.ptr,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        let queue = Owned {
            ptr: rd::rd_kafka_queue_new(rk),
            destroy: rd::rd_kafka_queue_destroy,
        };
        let mut resources = [resource.ptr];
        rd::rd_kafka_IncrementalAlterConfigs(rk, resources.as_mut_ptr(), 1, options.ptr, queue.ptr);

        // librdkafka answers within the request timeout; the margin covers its bookkeeping.
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
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event.ptr);
        if result.is_null() {
            bail!("unexpected answer to IncrementalAlterConfigs");
        }
        let mut count = 0usize;
        let results = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        for i in 0..count {
            let resource = *results.add(i);
            let err = rd::rd_kafka_ConfigResource_error(resource);
            if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
                return Err(code_error(
                    err,
                    rd::rd_kafka_ConfigResource_error_string(resource),
                ));
            }
        }
    }
    Ok(())
}

/// "InvalidConfig (Broker: Configuration is invalid): <the broker's message>".
///
/// # Safety
/// `message` is null or a NUL-terminated string that is still alive.
pub(crate) unsafe fn code_error(
    err: RDKafkaRespErr,
    message: *const std::os::raw::c_char,
) -> anyhow::Error {
    let code = RDKafkaErrorCode::from(err);
    let message = if message.is_null() {
        String::new()
    } else {
        // SAFETY: non-null and NUL-terminated by the caller's contract.
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    };
    if message.is_empty() {
        anyhow!("{code}")
    } else {
        anyhow!("{code}: {message}")
    }
}
