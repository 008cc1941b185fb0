//! A step's retry policy as a sequence of delays (backon's exponential backoff).
//!
//! The executor drives the sequence itself instead of wrapping the call in backon's
//! `Retryable`, because between attempts it must report `attempt_failed`, decide
//! retryability from the error's kind, and give throttling a longer pause.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::runbook::model::RetryPolicy;

/// Delays between attempts of one step.
///
/// A throttled attempt does not use up the policy's `attempts`: the service answered
/// and asked to slow down, which says nothing about whether the call can succeed (and
/// in a regional failover every surviving control plane throttles). It waits twice
/// as long, and throttled attempts are bounded by `max_elapsed` and by
/// [`THROTTLED_PER_ATTEMPT`] times the attempts.
pub struct Backoff {
    inner: backon::ExponentialBackoff,
    /// Attempts made so far, throttled ones included.
    pub attempts: u32,
    /// Attempts that failed for a reason other than throttling.
    failures: u32,
    max_attempts: u32,
}

/// How many throttled attempts a step may make per attempt of its policy, on top of
/// them: a cap for a policy whose `max_elapsed` is long.
pub const THROTTLED_PER_ATTEMPT: u32 = 3;

impl Backoff {
    /// The delays for `policy`. `seed` makes jitter reproducible (simulated runs).
    pub fn new(policy: &RetryPolicy, seed: Option<u64>) -> Self {
        let mut b = ExponentialBuilder::new()
            .with_min_delay(policy.initial)
            .with_max_delay(policy.max)
            .with_factor(2.0)
            .with_max_times(
                (policy.attempts.saturating_mul(THROTTLED_PER_ATTEMPT + 1)).saturating_sub(1)
                    as usize,
            )
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
            failures: 0,
            max_attempts: policy.attempts,
        }
    }

    /// Records a failed attempt; returns the delay before the next one, or `None` when
    /// the policy is exhausted (attempt cap or wall-clock cap). A throttled attempt
    /// waits twice as long and does not count against the attempt cap.
    pub fn next_delay(&mut self, throttled: bool) -> Option<Duration> {
        self.attempts += 1;
        if !throttled {
            self.failures += 1;
        }
        if self.failures >= self.max_attempts || self.max_attempts <= 1 {
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
    fn throttled_attempts_do_not_use_up_the_attempts_but_are_bounded() {
        // Three attempts: two throttled ones in between still leave the third.
        let mut b = Backoff::new(&policy(3, false), None);
        assert!(b.next_delay(false).is_some());
        assert!(b.next_delay(true).is_some());
        assert!(b.next_delay(true).is_some());
        assert!(
            b.next_delay(false).is_some(),
            "a second failure: one attempt left"
        );
        assert!(
            b.next_delay(false).is_none(),
            "the third real failure ends it"
        );
        // Throttled forever: bounded by THROTTLED_PER_ATTEMPT per attempt.
        let mut b = Backoff::new(&policy(3, false), None);
        let n = std::iter::from_fn(|| b.next_delay(true)).count() as u32;
        assert_eq!(n, 3 * (THROTTLED_PER_ATTEMPT + 1) - 1);
        // And by the wall-clock cap.
        let mut p = policy(3, false);
        p.max_elapsed = Duration::from_secs(5);
        let mut b = Backoff::new(&p, None);
        let total: Duration = std::iter::from_fn(|| b.next_delay(true)).sum();
        assert!(total <= Duration::from_secs(10), "{total:?}");
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
