//! Supervision of the broker's background tasks: a task that panics is logged and
//! restarted after a pause, never silently lost. Aborting the returned handle stops the
//! task and its supervisor together.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Pause before a panicked task is restarted, so a task that panics at once does not spin.
const RESTART_BACKOFF_MS: u64 = 1_000;

/// Aborts the running task when its supervisor is aborted (dropped).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `make_task()` as a tokio task, and again (after a pause) each time it panics. A
/// task that returns is done.
pub fn spawn_supervised<F, Fut>(name: &'static str, make_task: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let mut task = AbortOnDrop(tokio::spawn(make_task()));
            match (&mut task.0).await {
                Err(e) if e.is_panic() => {
                    tracing::error!(task = name, error = %e, "background task panicked; restarting it");
                    tokio::time::sleep(Duration::from_millis(RESTART_BACKOFF_MS)).await;
                }
                _ => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_restarted() {
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let handle = spawn_supervised("test", move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("timer bug");
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(60), handle)
            .await
            .expect("supervisor ends once the task returns")
            .expect("supervisor does not panic");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn aborting_the_supervisor_stops_the_task() {
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let handle = spawn_supervised("test", move || {
            let counter = counter.clone();
            async move {
                loop {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        handle.abort();
        let _ = handle.await;
        let seen = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(runs.load(Ordering::SeqCst), seen);
    }
}
