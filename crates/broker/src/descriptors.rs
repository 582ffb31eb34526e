//! File descriptors: the node's soft `RLIMIT_NOFILE`, raised to the hard limit at
//! start, and the room left under it for new partitions. Each partition holds about
//! one descriptor per segment (its `.log`), so creating partitions that would not fit
//! is refused before anything is committed, rather than failing half way and leaving
//! a node that cannot reopen its logs.

use std::io;

/// Descriptors kept out of the partitions' reach: connections, listeners, the
/// metadata log, checkpoints and temporary files. A tenth of the limit, at least 64.
fn reserve(soft_limit: u64) -> u64 {
    (soft_limit / 10).max(64)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (as Kafka's packaging expects
/// operators to) and returns (soft before, hard, soft after). Process-wide: only the
/// binary calls it, never a test process.
pub fn raise_nofile_limit() -> io::Result<(Option<u64>, Option<u64>, Option<u64>)> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let before = getrlimit(Resource::Nofile);
    // An infinite hard limit is refused for NOFILE by Linux: keep the soft one then.
    if before.maximum.is_some() && before.current != before.maximum {
        setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: before.maximum,
                maximum: before.maximum,
            },
        )?;
    }
    let after = getrlimit(Resource::Nofile);
    Ok((before.current, before.maximum, after.current))
}

/// What the process holds now, read from the kernel (`/proc/self/fd`, `getrlimit`).
pub struct DescriptorBudget {
    open: u64,
    soft_limit: u64,
    /// Descriptors promised to partitions planned earlier in the same request.
    planned: u64,
}

impl DescriptorBudget {
    /// None when there is no finite limit or the count cannot be read (then
    /// nothing is refused on this ground).
    pub fn measure() -> Option<Self> {
        let soft_limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current?;
        let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        Some(DescriptorBudget {
            open,
            soft_limit,
            planned: 0,
        })
    }

    /// Takes room for `partitions` new local partitions (one descriptor each: an
    /// empty log is one segment), or says why there is none.
    pub fn take(&mut self, partitions: u64) -> Result<(), String> {
        let reserve = reserve(self.soft_limit);
        let usable = self.soft_limit.saturating_sub(reserve);
        let wanted = self.open + self.planned + partitions;
        if wanted > usable {
            return Err(format!(
                "Creating {partitions} partition(s) needs about {partitions} more file descriptors, \
                 but this node holds {} of its limit of {} (with {reserve} kept for connections \
                 and internal files{}); raise the node's open-files limit or use fewer partitions.",
                self.open + self.planned,
                self.soft_limit,
                if self.planned > 0 {
                    ", counting the earlier topics of this request"
                } else {
                    ""
                }
            ));
        }
        self.planned += partitions;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_the_limit_less_the_reserve_and_what_is_held() {
        let mut budget = DescriptorBudget {
            open: 100,
            soft_limit: 1024,
            planned: 0,
        };
        // 1024 - 102 reserved - 100 open = 822 left.
        budget.take(800).unwrap();
        let refused = budget.take(23).unwrap_err();
        assert!(
            refused.contains("holds 900 of its limit of 1024"),
            "{refused}"
        );
        budget.take(22).unwrap();
        assert_eq!(reserve(100), 64);
    }

    #[test]
    fn the_measure_reads_this_process() {
        let budget = DescriptorBudget::measure().expect("Linux with a finite limit");
        assert!(budget.open >= 3 && budget.open <= budget.soft_limit);
    }
}
