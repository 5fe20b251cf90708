//! Supervised background tasks: housekeeping, the metadata refresh and the sync schedule run
//! for as long as the server does, so a panic in one (a bug, a poisoned value) must not end
//! it silently. The supervisor logs the panic as an error, counts it
//! (`portvakt_task_restarts_total`) and starts the task again after a pause that grows while
//! it keeps panicking at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The first pause before a restart, doubled up to `MAX_PAUSE` while the task keeps failing
/// within `STABLE` of its start.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(60);
const STABLE: Duration = Duration::from_secs(300);

/// The supervised tasks of one server: cheap to clone.
#[derive(Clone, Default)]
pub struct Tasks {
    inner: Arc<Mutex<HashMap<&'static str, Watch>>>,
}

struct Watch {
    /// How many times the task has been started.
    starts: u64,
    /// Makes the running task panic (`inject_panic`, tests only).
    trip: Arc<Notify>,
}

impl Tasks {
    /// Runs `make()` as the task `name`, and again whenever it panics. A task that returns
    /// has finished its work and is not restarted.
    pub fn spawn<F, Fut>(&self, name: &'static str, make: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let trip = Arc::new(Notify::new());
        self.lock().insert(
            name,
            Watch {
                starts: 0,
                trip: trip.clone(),
            },
        );
        let tasks = self.clone();
        tokio::spawn(async move {
            let mut pause = FIRST_PAUSE;
            loop {
                if let Some(w) = tasks.lock().get_mut(name) {
                    w.starts += 1;
                }
                let started = Instant::now();
                let run = make();
                let trip = trip.clone();
                let handle = tokio::spawn(async move {
                    tokio::select! {
                        () = run => {}
                        () = trip.notified() => injected(name),
                    }
                });
                match handle.await {
                    Ok(()) => {
                        tracing::info!(task = name, "background task finished");
                        return;
                    }
                    Err(e) if e.is_panic() => {
                        if started.elapsed() >= STABLE {
                            pause = FIRST_PAUSE;
                        }
                        let why = panic_message(e.into_panic());
                        tracing::error!(
                            task = name,
                            "background task panicked: {why}; restarting in {}s",
                            pause.as_secs()
                        );
                        crate::metrics::task_restarted(name);
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                    // Cancelled: the runtime is shutting down.
                    Err(_) => return,
                }
            }
        });
    }

    /// How many times the task `name` has been started (1 until it first panics).
    pub fn starts(&self, name: &str) -> u64 {
        self.lock().get(name).map_or(0, |w| w.starts)
    }

    /// Makes the running task `name` panic, so tests can see it restarted. Reachable only
    /// from Rust code holding the server's state (the integration tests), never from HTTP,
    /// the command line or the configuration. False when no such task runs.
    #[doc(hidden)]
    pub fn inject_panic(&self, name: &str) -> bool {
        match self.lock().get(name) {
            Some(w) => {
                w.trip.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Watch>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[allow(clippy::panic)]
fn injected(name: &str) {
    panic!("panic injected into task {name} by a test");
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => match p.downcast::<&'static str>() {
            Ok(s) => (*s).to_string(),
            Err(_) => "(no message)".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn a_panicking_task_is_started_again() {
        let tasks = Tasks::default();
        let runs = Arc::new(AtomicU64::new(0));
        let r = runs.clone();
        tasks.spawn("unit", move || {
            let r = r.clone();
            async move {
                // The first run panics on its own; later ones wait for the test's trip.
                if r.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("first run fails");
                }
                std::future::pending::<()>().await;
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while tasks.starts("unit") < 2 {
            assert!(Instant::now() < deadline, "not restarted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(tasks.inject_panic("unit"));
        while tasks.starts("unit") < 3 {
            assert!(
                Instant::now() < deadline,
                "not restarted after an injected panic"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!tasks.inject_panic("no-such-task"));
    }
}
