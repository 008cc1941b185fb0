//! A step's retry policy as a sequence of delays (backon's exponential backoff).
//!
//! The executor drives the sequence itself instead of wrapping the call in backon's
//! `Retryable`, because between attempts it must report `attempt_failed`, decide
//! retryability from the error's kind, and give throttling a longer pause.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::runbook::model::RetryPolicy;

/// Delays between attempts of one step.
pub struct Backoff {
    inner: backon::ExponentialBackoff,
    /// Attempts made so far.
    pub attempts: u32,
    max_attempts: u32,
}

impl Backoff {
    /// The delays for `policy`. `seed` makes jitter reproducible (simulated runs).
    pub fn new(policy: &RetryPolicy, seed: Option<u64>) -> Self {
        let mut b = ExponentialBuilder::new()
            .with_min_delay(policy.initial)
            .with_max_delay(policy.max)
            .with_factor(2.0)
            .with_max_times(policy.attempts.saturating_sub(1) as usize)
            .with_total_delay(Some(policy.max_elapsed));
        if policy.jitter {
            b = match seed {
                Some(s) => b.with_jitter().with_jitter_seed(s),
                None => b.with_jitter(),
            };
        }
        Self {
            inner: b.build(),
            attempts: 0,
            max_attempts: policy.attempts,
        }
    }

    /// Records an attempt; returns the delay before the next one, or `None` when the
    /// policy is exhausted (attempt cap or wall-clock cap). Throttling doubles the delay.
    pub fn next_delay(&mut self, throttled: bool) -> Option<Duration> {
        self.attempts += 1;
        if self.attempts >= self.max_attempts {
            return None;
        }
        let d = self.inner.next()?;
        Some(if throttled { d.saturating_mul(2) } else { d })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: u32, jitter: bool) -> RetryPolicy {
        RetryPolicy {
            attempts,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            max_elapsed: Duration::from_secs(600),
            jitter,
        }
    }

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_and_stop_at_the_attempt_limit() {
        let mut b = Backoff::new(&policy(6, false), None);
        let delays: Vec<_> = std::iter::from_fn(|| b.next_delay(false)).collect();
        let secs: Vec<u64> = delays.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 8]);
        assert_eq!(b.attempts, 6);
    }

    #[test]
    fn one_attempt_means_no_retry() {
        let mut b = Backoff::new(&policy(1, false), None);
        assert_eq!(b.next_delay(false), None);
    }

    #[test]
    fn the_wall_clock_cap_ends_retries() {
        let mut p = policy(100, false);
        p.max_elapsed = Duration::from_secs(10);
        let mut b = Backoff::new(&p, None);
        let total: Duration = std::iter::from_fn(|| b.next_delay(false)).sum();
        assert!(total <= Duration::from_secs(10), "{total:?}");
        assert!(b.attempts < 100);
    }

    #[test]
    fn seeded_jitter_is_reproducible_and_throttling_waits_longer() {
        let run = |seed| {
            let mut b = Backoff::new(&policy(5, true), Some(seed));
            std::iter::from_fn(|| b.next_delay(false)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let mut plain = Backoff::new(&policy(3, false), None);
        let mut throttled = Backoff::new(&policy(3, false), None);
        assert_eq!(
            throttled.next_delay(true).unwrap(),
            plain.next_delay(false).unwrap() * 2
        );
    }
}
