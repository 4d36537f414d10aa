//! Wall-clock time for the agent's reports: the `Clock` seam, the real
//! `SystemClock`, and `TokioClock` for tests.
//!
//! Only *timestamps* (pull and start times, `executionStoppedAt`, metadata
//! times, heartbeats, the engine's startTimeout and health start period)
//! come from a `Clock`. *Timers* (stopTimeout, the health-check interval,
//! the dependency re-check) stay on `tokio::time`: tokio already has a test
//! clock for them (`start_paused`, `tokio::time::advance`), and a second
//! timer seam would only let the two disagree. `TokioClock` closes the gap
//! the other way: it reads tokio's clock, so in a paused-time test the
//! timestamps move exactly when the timers fire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Tells the time of day as Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The host's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        millis(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }
}

/// A clock that starts at a fixed Unix time and moves with tokio's clock:
/// in a test with paused time it moves only when the test (or tokio's
/// auto-advance) moves time.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_ms: i64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start_ms` now.
    pub fn starting_at(start_ms: i64) -> Self {
        Self {
            start_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        self.start_ms
            .saturating_add(millis(tokio::time::Instant::now() - self.start))
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_moves_with_paused_time() {
        let clock = TokioClock::starting_at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        tokio::time::advance(Duration::from_millis(1_500)).await;
        assert_eq!(clock.now_ms(), 2_500);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(clock.now_ms(), 32_500, "a timer and the clock agree");
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
