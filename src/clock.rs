//! The run's clock: real, sped up, or virtual.
//!
//! The engine and the simulated world share one clock so that a `--sim-speed 20` run
//! compresses every wait (operations in the world, gate polls, retry delays, timeouts)
//! by the same factor, and a `--sim-speed max` run, on a paused tokio runtime, takes no
//! wall time at all while every duration still means what it says. Timestamps in
//! events are on this clock: `origin + elapsed`, so reports read like a real run.

use std::time::Duration;

use tokio::time::Instant;

/// A run's clock. Cheap to clone; clones share the origin.
#[derive(Clone, Debug)]
pub struct Clock {
    /// Virtual seconds per real second (1 = real time).
    speed: f64,
    /// Tokio instant at which this process started the clock.
    started: Instant,
    /// Virtual time that had already elapsed before (a resumed run continues from it).
    offset: Duration,
    /// The wall-clock time at virtual zero.
    origin: jiff::Timestamp,
}

impl Clock {
    /// Real time, starting now.
    pub fn real() -> Self {
        Self::with_speed(1.0)
    }

    /// Virtual time runs `speed` times faster than real time. With a paused tokio
    /// runtime and speed 1 this is fully virtual (`--sim-speed max`).
    pub fn with_speed(speed: f64) -> Self {
        assert!(
            speed.is_finite() && speed > 0.0,
            "clock speed must be positive"
        );
        Self {
            speed,
            started: Instant::now(),
            offset: Duration::ZERO,
            origin: jiff::Timestamp::now(),
        }
    }

    /// Continues a clock that had reached `elapsed` at `origin + elapsed`.
    pub fn resume(speed: f64, origin: jiff::Timestamp, elapsed: Duration) -> Self {
        let mut c = Self::with_speed(speed);
        c.origin = origin;
        c.offset = elapsed;
        c
    }

    /// The same time line with its zero at `origin` (no later than this clock's): a
    /// simulated world keeps the epoch it was built at, and reads a run clock that
    /// started later (the second phase of a drill, or its resumption) on that epoch.
    pub fn rebased(&self, origin: jiff::Timestamp) -> Self {
        match Duration::try_from(self.origin.duration_since(origin)) {
            Ok(earlier) => Self {
                speed: self.speed,
                started: self.started,
                offset: self.offset + earlier,
                origin,
            },
            // A later zero would need negative time: keep the clock as it is.
            Err(_) => self.clone(),
        }
    }

    /// The same time line with its zero now: the clock of a run that follows another in
    /// one simulated world (a drill's failback), whose times count from its own start.
    pub fn restarted(&self) -> Self {
        let at = Instant::now();
        let elapsed = self.offset + at.duration_since(self.started).mul_f64(self.speed);
        let since = jiff::SignedDuration::try_from(elapsed).unwrap_or(jiff::SignedDuration::MAX);
        Self {
            speed: self.speed,
            started: at,
            offset: Duration::ZERO,
            origin: self.origin.saturating_add(since).unwrap_or(self.origin),
        }
    }

    /// Virtual time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.offset + self.started.elapsed().mul_f64(self.speed)
    }

    /// The wall-clock time at virtual zero.
    pub fn origin(&self) -> jiff::Timestamp {
        self.origin
    }

    /// Now, on this clock.
    pub fn now(&self) -> jiff::Timestamp {
        let elapsed =
            jiff::SignedDuration::try_from(self.elapsed()).unwrap_or(jiff::SignedDuration::MAX);
        self.origin.saturating_add(elapsed).unwrap_or(self.origin)
    }

    /// The tokio instant at which `d` of virtual time will have passed from now.
    pub fn deadline(&self, d: Duration) -> Instant {
        Instant::now() + self.to_real(d)
    }

    /// Sleeps for `d` of virtual time.
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(self.to_real(d)).await;
    }

    /// The real duration that `d` of virtual time takes.
    pub fn to_real(&self, d: Duration) -> Duration {
        d.div_f64(self.speed)
    }

    /// Virtual seconds per real second.
    pub fn speed(&self) -> f64 {
        self.speed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_fast_clock_compresses_sleeps() {
        let c = Clock::with_speed(60.0);
        let before = Instant::now();
        c.sleep(Duration::from_secs(120)).await;
        assert_eq!(before.elapsed(), Duration::from_secs(2));
        assert_eq!(c.elapsed(), Duration::from_secs(120));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_clock_counts_from_zero_on_the_same_time_line() {
        let first = Clock::with_speed(10.0);
        first.sleep(Duration::from_secs(600)).await;
        let second = first.restarted();
        assert_eq!(second.elapsed(), Duration::ZERO);
        assert_eq!(second.origin(), first.now());
        second.sleep(Duration::from_secs(30)).await;
        assert_eq!(second.elapsed(), Duration::from_secs(30));
        assert_eq!(second.now(), first.now());
        // Read back on the first clock's epoch, as a restored world reads it.
        let rebased = second.rebased(first.origin());
        assert_eq!(rebased.elapsed(), Duration::from_secs(630));
        assert_eq!(rebased.now(), first.now());
        assert_eq!(rebased.origin(), first.origin());
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_clock_continues() {
        let origin = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let c = Clock::resume(1.0, origin, Duration::from_secs(90));
        c.sleep(Duration::from_secs(10)).await;
        assert_eq!(c.elapsed(), Duration::from_secs(100));
        assert_eq!(
            c.now(),
            jiff::Timestamp::from_second(1_700_000_100).unwrap()
        );
    }
}
