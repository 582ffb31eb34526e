//! Consumer lag health, in the manner of Burrow: one partition's status from a
//! sliding window of commit observations. Pure: no I/O, no clock (`now_ms` comes in).
//!
//! An observation is `(committed offset, log end offset, timestamp)`, where the
//! timestamp is when that offset was committed (or, for a sampler that only sees
//! committed offsets, when it first saw the offset at that value). `lag = log end
//! offset - committed offset`. The window is ordered oldest first. The rules, in the
//! order they are checked (the first that matches decides):
//!
//! 1. **ERROR**: the newest committed offset is beyond the newest log end offset
//!    (the log was truncated or deleted under the group), or the committed offset
//!    went backwards between two observations (an offset reset or a rewind).
//! 2. **STOP**: the newest lag is > 0 and no commit has been seen for longer than
//!    `stop_after_ms` (`now_ms - newest timestamp > stop_after_ms`).
//! 3. **OK**: some observation in the window has lag 0 (the consumer caught up).
//! 4. **STALL**: at least two observations, the committed offset never moved across
//!    the window, and the lag is > 0 (committing, or alive, without progress).
//! 5. **WARNING**: at least two observations and the lag grew between every two
//!    consecutive observations (the consumer falls behind).
//! 6. Otherwise **OK** (progressing, lag stable or shrinking). An empty window is OK.
//!
//! A group's status is the worst of its partitions (OK < WARNING < STALL < STOP < ERROR).

use std::fmt;

/// One commit of one partition, as seen by the evaluator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LagObservation {
    pub committed_offset: i64,
    pub log_end_offset: i64,
    pub timestamp_ms: i64,
}

impl LagObservation {
    /// Log end offset minus committed offset; negative when committed is beyond the end.
    pub fn lag(&self) -> i64 {
        self.log_end_offset.saturating_sub(self.committed_offset)
    }
}

/// Health of a partition (or, as the worst of its partitions, of a group).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LagStatus {
    Ok,
    Warning,
    Stall,
    Stop,
    Error,
}

impl LagStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LagStatus::Ok => "OK",
            LagStatus::Warning => "WARNING",
            LagStatus::Stall => "STALL",
            LagStatus::Stop => "STOP",
            LagStatus::Error => "ERROR",
        }
    }
}

impl fmt::Display for LagStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Thresholds of the evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LagRules {
    /// A lagging partition without a commit for longer than this is STOP.
    pub stop_after_ms: i64,
}

/// Status of one partition from its window (oldest first), see the module docs.
pub fn evaluate_partition(window: &[LagObservation], now_ms: i64, rules: LagRules) -> LagStatus {
    let Some(newest) = window.last() else {
        return LagStatus::Ok;
    };
    let went_back = window
        .windows(2)
        .any(|w| w[1].committed_offset < w[0].committed_offset);
    if newest.lag() < 0 || went_back {
        return LagStatus::Error;
    }
    if newest.lag() > 0 && now_ms.saturating_sub(newest.timestamp_ms) > rules.stop_after_ms {
        return LagStatus::Stop;
    }
    if window.iter().any(|o| o.lag() == 0) {
        return LagStatus::Ok;
    }
    if window.len() >= 2 {
        let first = window[0].committed_offset;
        if window.iter().all(|o| o.committed_offset == first) {
            return LagStatus::Stall;
        }
        if window.windows(2).all(|w| w[1].lag() > w[0].lag()) {
            return LagStatus::Warning;
        }
    }
    LagStatus::Ok
}

/// The worst of several statuses (OK when there are none).
pub fn worst(statuses: impl IntoIterator<Item = LagStatus>) -> LagStatus {
    statuses.into_iter().max().unwrap_or(LagStatus::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: LagRules = LagRules {
        stop_after_ms: 10_000,
    };

    fn obs(committed: i64, end: i64, ts: i64) -> LagObservation {
        LagObservation {
            committed_offset: committed,
            log_end_offset: end,
            timestamp_ms: ts,
        }
    }

    fn eval(window: &[LagObservation], now_ms: i64) -> LagStatus {
        evaluate_partition(window, now_ms, RULES)
    }

    #[test]
    fn empty_window_is_ok() {
        assert_eq!(eval(&[], 0), LagStatus::Ok);
    }

    #[test]
    fn committed_beyond_log_end_is_error() {
        assert_eq!(eval(&[obs(10, 20, 0), obs(25, 20, 1)], 1), LagStatus::Error);
    }

    #[test]
    fn offset_going_backwards_is_error() {
        assert_eq!(eval(&[obs(10, 20, 0), obs(5, 20, 1)], 1), LagStatus::Error);
    }

    #[test]
    fn error_wins_over_stop() {
        assert_eq!(
            eval(&[obs(10, 20, 0), obs(5, 20, 0)], 1_000_000),
            LagStatus::Error
        );
    }

    #[test]
    fn no_commit_for_long_with_lag_is_stop() {
        let window = [obs(10, 20, 0), obs(15, 30, 1_000)];
        assert_eq!(eval(&window, 11_001), LagStatus::Stop);
        assert_eq!(eval(&window, 11_000), LagStatus::Warning);
    }

    #[test]
    fn no_commit_for_long_without_lag_is_ok() {
        assert_eq!(eval(&[obs(20, 20, 0)], 1_000_000), LagStatus::Ok);
    }

    #[test]
    fn caught_up_once_in_window_is_ok() {
        let window = [obs(10, 10, 0), obs(12, 20, 1), obs(12, 30, 2)];
        assert_eq!(eval(&window, 2), LagStatus::Ok);
    }

    #[test]
    fn committing_without_moving_is_stall() {
        let window = [obs(10, 20, 0), obs(10, 20, 1), obs(10, 25, 2)];
        assert_eq!(eval(&window, 2), LagStatus::Stall);
    }

    #[test]
    fn lag_growing_at_every_step_is_warning() {
        let window = [obs(10, 20, 0), obs(11, 25, 1), obs(12, 30, 2)];
        assert_eq!(eval(&window, 2), LagStatus::Warning);
    }

    #[test]
    fn lag_growing_then_shrinking_is_ok() {
        let window = [obs(10, 20, 0), obs(11, 25, 1), obs(20, 26, 2)];
        assert_eq!(eval(&window, 2), LagStatus::Ok);
    }

    #[test]
    fn steady_progress_with_stable_lag_is_ok() {
        let window = [obs(10, 20, 0), obs(20, 30, 1), obs(30, 40, 2)];
        assert_eq!(eval(&window, 2), LagStatus::Ok);
    }

    #[test]
    fn single_lagging_observation_is_ok() {
        assert_eq!(eval(&[obs(10, 20, 0)], 0), LagStatus::Ok);
    }

    #[test]
    fn group_status_is_the_worst() {
        assert_eq!(
            worst([LagStatus::Ok, LagStatus::Stall, LagStatus::Warning]),
            LagStatus::Stall
        );
        assert_eq!(worst([]), LagStatus::Ok);
    }
}
