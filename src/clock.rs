//! The one clock. Production reads the system's wall clock; tests hold a movable clock and
//! move it forward instead of sleeping. Everything else takes `now` (Unix seconds, UTC) from
//! a `Clock` handed down from the application state; `clippy.toml` forbids other reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A cheap handle to the clock: clones share it, so moving a test's clock moves the
/// server's.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Seconds added to the wall clock; `None` for the system clock, which cannot be moved.
    offset: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self { offset: None }
    }

    /// A clock that runs with the wall clock and can be moved forward (tests, simulators).
    pub fn movable() -> Self {
        Self {
            offset: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// Seconds since the Unix epoch, UTC.
    pub fn now(&self) -> i64 {
        let offset = self
            .offset
            .as_ref()
            .map_or(0, |o| o.load(Ordering::Relaxed));
        wall_clock_millis() / 1000 + offset
    }

    /// Milliseconds since the Unix epoch, UTC (for the few timings finer than a second).
    pub fn now_millis(&self) -> i64 {
        let offset = self
            .offset
            .as_ref()
            .map_or(0, |o| o.load(Ordering::Relaxed));
        wall_clock_millis() + offset * 1000
    }

    /// A monotonic instant, moved as this clock is moved (for the timers of the simulators).
    pub fn instant(&self) -> std::time::Instant {
        let offset = self
            .offset
            .as_ref()
            .map_or(0, |o| o.load(Ordering::Relaxed));
        let now = std::time::Instant::now();
        let shift = std::time::Duration::from_secs(offset.unsigned_abs());
        let moved = if offset >= 0 {
            now.checked_add(shift)
        } else {
            now.checked_sub(shift)
        };
        moved.unwrap_or(now)
    }

    /// Moves a movable clock forward by `secs`. The system clock cannot be moved: that is a
    /// programming error, so it panics (only tests move clocks).
    #[allow(clippy::panic)]
    pub fn advance(&self, secs: i64) {
        match &self.offset {
            Some(o) => {
                o.fetch_add(secs, Ordering::Relaxed);
            }
            None => panic!("the system clock cannot be moved"),
        }
    }
}

/// The only read of the wall clock in the crate.
#[allow(clippy::disallowed_methods)]
fn wall_clock_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_movable_clock_moves_every_clone() {
        let clock = Clock::movable();
        let other = clock.clone();
        let before = other.now();
        clock.advance(3600);
        assert!(other.now() >= before + 3600);
        assert!(other.now() < before + 3600 + 5);
        assert!(other.now_millis() / 1000 >= before + 3600);
    }

    #[test]
    #[should_panic(expected = "cannot be moved")]
    fn the_system_clock_cannot_be_moved() {
        Clock::system().advance(1);
    }
}
